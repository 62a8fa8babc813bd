"""POST /webhooks/shopify through the Flask client: HMAC on the raw body, dedupe, enqueue.

API.md (Shopify webhook row), DESIGN.md rule 6, /work/shared/platforms/shopify.md section 1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from conftest import free_port
from rq import Queue

from gateway.jobs import INGEST_ORDER, SYNC_SELLER_REF, job_queue
from gateway.store import key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
BUYER_SHOP = "buyer-shop.myshopify.com"
SELLER_SHOP = "seller-shop.myshopify.com"
BUYER_SECRET = "buyer-webhook-secret"
SELLER_SECRET = "seller-webhook-secret"
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def raw_fixture(name: str) -> bytes:
    """The fixture's exact bytes (pretty-printed: re-serializing would change them)."""
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(secret: str, raw: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def deliver(
    client,
    raw: bytes,
    *,
    topic: str = "orders/create",
    shop: str = BUYER_SHOP,
    secret: str | None = BUYER_SECRET,
    webhook_id: str | None = WEBHOOK_ID,
    signature: str | None = None,
    prefix: str = "X-Shopify-",
    **headers: str,
):
    """POST a delivery as Shopify sends it; signed with `secret` unless `signature` is given.
    `prefix` "Shopify-" names the headers as Shopify's Events deliveries do."""
    sent = {
        f"{prefix}Topic": topic,
        f"{prefix}Shop-Domain": shop,
        f"{prefix}API-Version": "2026-10",
        f"{prefix}Triggered-At": "2026-03-02T15:15:01.123456789Z",
        **headers,
    }
    if webhook_id is not None:
        sent[f"{prefix}Webhook-Id"] = webhook_id
    if signature is None and secret is not None:
        signature = sign(secret, raw)
    if signature is not None:
        sent[f"{prefix}Hmac-Sha256"] = signature
    return client.post("/webhooks/shopify", data=raw, headers=sent, content_type="application/json")


def snapshot(redis) -> dict[bytes, bytes]:
    """Every key (but the counters) with its serialized value."""
    return {k: redis.dump(k) for k in redis.keys("*") if k != key("metrics").encode()}


def queued(redis) -> Queue:
    return job_queue(redis)


def dedupe_key(shop: str, delivery_id: str) -> str:
    return key("delivery", f"shopify:{shop}:{delivery_id}")


@pytest.fixture
def buyer(make_partner):
    connection = {
        "shop_domain": BUYER_SHOP,
        "access_token": "shpat_buyer_access_token",
        "webhook_secret": BUYER_SECRET,
        "api_base_url": "http://127.0.0.1:9",
    }
    return make_partner("shopify", connection=connection)


@pytest.fixture
def seller(make_partner):
    connection = {
        "shop_domain": SELLER_SHOP,
        "access_token": "shpat_seller_access_token",
        "webhook_secret": SELLER_SECRET,
        "api_base_url": "http://127.0.0.1:9",
    }
    return make_partner("shopify", connection=connection)


def assert_refused(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["details"] == {}


# ---- accepted, duplicate -------------------------------------------------------------------------


def test_orders_create_is_accepted_with_one_ingest_job_and_a_dedupe_key(client, redis, buyer):
    raw = raw_fixture("orders_create")

    answer = deliver(client, raw)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.func_name == INGEST_ORDER
    assert job.args == [buyer["id"], "820982911946154508"]
    dedupe = dedupe_key(BUYER_SHOP, WEBHOOK_ID)
    assert redis.exists(dedupe)
    assert redis.ttl(dedupe) > 24 * 3600  # longer than Shopify's 4 h retry window


def test_the_same_webhook_id_again_is_a_duplicate_and_enqueues_nothing(client, redis, buyer):
    raw = raw_fixture("orders_create")
    assert deliver(client, raw).get_json() == {"status": "accepted"}

    again = deliver(client, raw)

    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_a_retry_with_the_same_id_but_another_body_is_still_a_duplicate(client, redis, buyer):
    assert deliver(client, raw_fixture("orders_create")).get_json() == {"status": "accepted"}
    other = json.dumps({"id": 1, "line_items": []}).encode()

    again = deliver(client, other)

    assert again.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_another_webhook_id_is_another_delivery(client, redis, buyer):
    raw = raw_fixture("orders_create")
    deliver(client, raw)
    later = json.loads(raw)
    later["updated_at"] = "2026-03-02T10:16:07-05:00"  # another event: another body

    answer = deliver(client, json.dumps(later).encode(), webhook_id="0b6c8a1e-9a0e-4b8f")

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).count == 2  # the job is idempotent; the dedupe is per delivery id


def test_the_same_body_under_another_webhook_id_is_a_replay(client, redis, buyer):
    raw = raw_fixture("orders_create")
    deliver(client, raw)

    answer = deliver(client, raw, webhook_id="0b6c8a1e-9a0e-4b8f-8f0a-2f1f3c5d7e90")

    # The HMAC covers the body only: anyone holding a captured delivery could send it again
    # under a new id (issue 11). Its body's hash is remembered for as long as its id.
    assert answer.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_the_event_id_dedupes_when_no_webhook_id_is_sent(client, redis, buyer):
    raw = raw_fixture("orders_create")
    headers = {"X-Shopify-Event-Id": "evt-98880550-7158-44d4-b7cd-2c97c8a091b5"}

    first = deliver(client, raw, webhook_id=None, **headers)
    second = deliver(client, raw, webhook_id=None, **headers)

    assert first.get_json() == {"status": "accepted"}
    assert second.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1
    assert redis.exists(dedupe_key(BUYER_SHOP, headers["X-Shopify-Event-Id"]))


def test_the_shop_domain_header_is_matched_case_insensitively(client, redis, buyer):
    answer = deliver(client, raw_fixture("orders_create"), shop="Buyer-Shop.MyShopify.com")

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).count == 1


@pytest.mark.parametrize("topic", ["fulfillments/create", "fulfillments/update"])
def test_fulfillment_topics_enqueue_a_sync_of_the_seller_order(client, redis, seller, topic):
    raw = raw_fixture("fulfillments_create")

    answer = deliver(client, raw, topic=topic, shop=SELLER_SHOP, secret=SELLER_SECRET)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert queue.count == 1
    assert queue.jobs[0].func_name == SYNC_SELLER_REF
    assert queue.jobs[0].args == [seller["id"], "5523429081345"]
    assert redis.exists(dedupe_key(SELLER_SHOP, WEBHOOK_ID))


@pytest.mark.parametrize("topic", ["orders/paid", "orders/cancelled"])
def test_payment_and_cancellation_read_the_buyer_order_again(client, redis, buyer, topic):
    # The orders/* payload is the REST Order, as for orders/create: its `id` names the order.
    answer = deliver(client, raw_fixture("orders_create"), topic=topic)

    assert answer.get_json() == {"status": "accepted"}
    [job] = queued(redis).jobs
    assert (job.func_name, job.args) == (INGEST_ORDER, [buyer["id"], "820982911946154508"])


def test_an_unhandled_topic_is_ignored_and_enqueues_nothing(client, redis, buyer):
    answer = deliver(client, raw_fixture("orders_create"), topic="orders/fulfilled")

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored"}
    assert queued(redis).count == 0
    assert not redis.exists(dedupe_key(BUYER_SHOP, WEBHOOK_ID))


# ---- the same headers without the X- prefix (Shopify's Events deliveries) ------------------------


@pytest.mark.parametrize("prefix", ["Shopify-", "shopify-"])
@pytest.mark.parametrize(
    ("topic", "fixture", "job_name", "ref"),
    [
        ("orders/create", "orders_create", INGEST_ORDER, "820982911946154508"),
        ("fulfillments/update", "fulfillments_create", SYNC_SELLER_REF, "5523429081345"),
    ],
    ids=["orders-create", "fulfillments-update"],
)
def test_unprefixed_headers_are_verified_deduplicated_and_enqueued_alike(
    client, redis, buyer, seller, prefix, topic, fixture, job_name, ref
):
    partner, shop, secret = (
        (buyer, BUYER_SHOP, BUYER_SECRET)
        if job_name == INGEST_ORDER
        else (seller, SELLER_SHOP, SELLER_SECRET)
    )
    raw = raw_fixture(fixture)

    answer = deliver(client, raw, topic=topic, shop=shop, secret=secret, prefix=prefix)
    again = deliver(client, raw, topic=topic, shop=shop, secret=secret, prefix=prefix)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "accepted"}
    assert again.get_json() == {"status": "duplicate"}
    queue = queued(redis)
    assert queue.count == 1
    assert (queue.jobs[0].func_name, queue.jobs[0].args) == (job_name, [partner["id"], ref])
    assert redis.exists(dedupe_key(shop, WEBHOOK_ID))


def test_one_webhook_id_in_either_header_style_is_one_delivery(client, redis, buyer):
    raw = raw_fixture("orders_create")
    assert deliver(client, raw).get_json() == {"status": "accepted"}

    again = deliver(client, raw, prefix="Shopify-")

    assert again.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_the_unprefixed_event_id_dedupes_when_no_webhook_id_is_sent(client, redis, buyer):
    raw = raw_fixture("orders_create")
    headers = {"Shopify-Event-Id": "evt-98880550-7158-44d4-b7cd-2c97c8a091b5"}

    first = deliver(client, raw, webhook_id=None, prefix="Shopify-", **headers)
    second = deliver(client, raw, webhook_id=None, prefix="Shopify-", **headers)

    assert (first.get_json(), second.get_json()) == (
        {"status": "accepted"},
        {"status": "duplicate"},
    )
    assert redis.exists(dedupe_key(BUYER_SHOP, headers["Shopify-Event-Id"]))


@pytest.mark.parametrize("forgery", ["wrong-secret", "missing"])
def test_a_forged_or_missing_unprefixed_signature_is_401(client, redis, buyer, forgery):
    signature = _forgeries()[forgery]
    before = snapshot(redis)

    answer = deliver(
        client, raw_fixture("orders_create"), secret=None, signature=signature, prefix="Shopify-"
    )

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


# ---- refusals: nothing stored, nothing enqueued --------------------------------------------------


def _forgeries() -> dict[str, str | None]:
    raw = raw_fixture("orders_create")
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    return {
        "wrong-secret": sign("not-the-secret", raw),
        "re-serialized-body": sign(BUYER_SECRET, compact),  # same JSON, other bytes
        "hex-not-base64": hmac.new(BUYER_SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        "garbage": "!!!not base64!!!",
        "empty": "",
        "missing": None,
    }


@pytest.mark.parametrize("forgery", list(_forgeries()))
def test_a_forged_or_missing_signature_is_401_and_stores_nothing(client, redis, buyer, forgery):
    signature = _forgeries()[forgery]
    before = snapshot(redis)

    answer = deliver(client, raw_fixture("orders_create"), secret=None, signature=signature)

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_a_signature_with_another_shops_secret_is_401(client, redis, buyer, seller):
    before = snapshot(redis)

    answer = deliver(client, raw_fixture("orders_create"), secret=SELLER_SECRET)

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before


@pytest.mark.parametrize("shop", ["stranger.myshopify.com", ""])
def test_an_unknown_or_missing_shop_is_401(client, redis, buyer, shop):
    before = snapshot(redis)

    answer = deliver(client, raw_fixture("orders_create"), shop=shop)

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"", "malformed_json"),
        (b"[1, 2, 3]", "malformed_body"),
        (b'{"id": NaN}', "malformed_json"),
        (b'{"id": "\\ud800"}', "malformed_json"),
    ],
    ids=["broken", "empty", "array", "nan", "lone-surrogate"],
)
def test_a_signed_body_that_is_not_a_json_object_is_400(client, redis, buyer, raw, code):
    before = snapshot(redis)

    answer = deliver(client, raw)

    assert_refused(answer, 400, code)
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_a_body_over_1_mib_is_413(client, redis, buyer):
    body = json.loads(raw_fixture("orders_create"))
    body["note"] = "x" * (1024 * 1024)
    raw = json.dumps(body).encode()
    before = snapshot(redis)

    answer = deliver(client, raw)  # correctly signed: the size alone refuses it

    assert_refused(answer, 413, "body_too_large")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_a_body_of_exactly_1_mib_is_accepted(client, redis, buyer):
    body = json.loads(raw_fixture("orders_create"))
    body["note"] = ""
    padding = 1024 * 1024 - len(json.dumps(body).encode())
    body["note"] = "x" * padding
    raw = json.dumps(body).encode()
    assert len(raw) == 1024 * 1024

    assert deliver(client, raw).get_json() == {"status": "accepted"}


# ---- the store down ------------------------------------------------------------------------------


def test_redis_down_is_503_in_the_error_shape(gateway_env):
    from gateway import create_app
    from gateway.settings import Settings

    app = create_app(Settings.from_env(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    raw = raw_fixture("orders_create")

    answer = deliver(app.test_client(), raw)

    assert_refused(answer, 503, "unavailable")
