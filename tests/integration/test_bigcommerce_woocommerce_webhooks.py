"""POST /webhooks/bigcommerce and /webhooks/woocommerce through the Flask client.

API.md (Webhooks table), /work/shared/platforms/bigcommerce.md section 1 and
/work/shared/platforms/woocommerce.md section 2. Partners are created through the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import admin_headers
from rq import Queue
from standardwebhooks import Webhook

from gateway.jobs import INGEST_ORDER, SYNC_SELLER_REF, job_queue
from gateway.store import key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

BC_BUYER_HASH = "abc123"
BC_SELLER_HASH = "seller1"
BC_BUYER_SECRET = "bc-buyer-client-secret-7Qp2"
BC_SELLER_SECRET = "bc-seller-client-secret-Zk81"
MSG_ID = "msg_2Zq6xYkVb3Qm9Tn1"

WOO_SITE = "https://shop.example.com"
WOO_SECRET = "woo-webhook-secret-4Fh"
DELIVERY_ID = "4e7d2c1b0a9f8e7d6c5b4a3f2e1d0c9b"


def raw_fixture(platform: str, name: str) -> bytes:
    """The fixture's exact bytes (re-serializing would change them)."""
    return (FIXTURES / platform / f"{name}.json").read_bytes()


def snapshot(redis) -> dict[bytes, bytes]:
    """Every key (but the counters) with its serialized value."""
    return {k: redis.dump(k) for k in redis.keys("*") if k != key("metrics").encode()}


def queued(redis) -> Queue:
    return job_queue(redis)


def assert_refused(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code


def create_partner(client, platform: str, connection: dict) -> dict:
    """A partner created through the operator API, as API.md lists its connection."""
    answer = client.post(
        "/api/v1/partners",
        json={
            "name": f"{platform} store",
            "email": "ops@example.com",
            "platform": platform,
            "connection": connection,
        },
        headers=admin_headers(),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


# ---- BigCommerce ---------------------------------------------------------------------------------


def standard_signature(secret: str, msg_id: str, stamp: str, raw: bytes) -> str:
    """Standard Webhooks: v1,base64(HMAC-SHA256("{id}.{ts}.{body}")), keyed with the secret."""
    signed = f"{msg_id}.{stamp}.".encode() + raw
    return (
        "v1,"
        + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    )


def deliver_bc(
    client,
    raw: bytes,
    *,
    secret: str | None = BC_BUYER_SECRET,
    msg_id: str = MSG_ID,
    stamp: int | None = None,
    signature: str | None = None,
    gateway_secret: str | None = None,
):
    """POST a BigCommerce callback: Standard-Webhooks-signed with `secret` (None: unsigned)."""
    headers: dict[str, str] = {}
    if secret is not None or signature is not None:
        stamp_text = str(int(time.time()) if stamp is None else stamp)
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = stamp_text
        headers["webhook-signature"] = signature or standard_signature(
            secret, msg_id, stamp_text, raw
        )
    if gateway_secret is not None:
        headers["X-Gateway-Secret"] = gateway_secret
    return client.post(
        "/webhooks/bigcommerce", data=raw, headers=headers, content_type="application/json"
    )


def bc_dedupe_key(store_hash: str, delivery_id: str) -> str:
    return key("delivery", f"bigcommerce:stores/{store_hash}:{delivery_id}")


@pytest.fixture
def bc_buyer(client, redis):
    return create_partner(
        client,
        "bigcommerce",
        {
            "store_hash": BC_BUYER_HASH,
            "access_token": "bc-buyer-access-token",
            "webhook_secret": BC_BUYER_SECRET,
            "api_base_url": "http://127.0.0.1:9",
        },
    )


@pytest.fixture
def bc_seller(client, redis):
    return create_partner(
        client,
        "bigcommerce",
        {
            "store_hash": BC_SELLER_HASH,
            "access_token": "bc-seller-access-token",
            "webhook_secret": BC_SELLER_SECRET,
            "api_base_url": "http://127.0.0.1:9",
        },
    )


def test_bc_signed_order_created_is_accepted_with_one_ingest_job(client, redis, bc_buyer):
    answer = deliver_bc(client, raw_fixture("bigcommerce", "webhook_order_created"))

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert queue.count == 1
    assert queue.jobs[0].func_name == INGEST_ORDER
    assert queue.jobs[0].args == [bc_buyer["id"], "100"]
    dedupe = bc_dedupe_key(BC_BUYER_HASH, MSG_ID)
    assert redis.exists(dedupe)
    assert redis.ttl(dedupe) > 48 * 3600  # BigCommerce retries for about 48 h


def test_bc_signature_from_the_standard_webhooks_library_is_accepted(client, redis, bc_buyer):
    # BigCommerce's sample: Webhook(base64(client_secret)); the library decodes it again
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    stamp = int(time.time())
    signature = Webhook(base64.b64encode(BC_BUYER_SECRET.encode()).decode()).sign(
        MSG_ID, datetime.fromtimestamp(stamp, UTC), raw.decode()
    )

    answer = deliver_bc(client, raw, stamp=stamp, signature=signature)

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).count == 1


def test_bc_one_valid_signature_among_several_is_enough(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    stamp = str(int(time.time()))
    good = standard_signature(BC_BUYER_SECRET, MSG_ID, stamp, raw)
    old = standard_signature("rotated-out-secret", MSG_ID, stamp, raw)

    answer = deliver_bc(client, raw, stamp=int(stamp), signature=f"{old} {good}")

    assert answer.get_json() == {"status": "accepted"}


# Ten seconds past the 300-second tolerance: the stamp is taken in whole seconds, so a margin of one
# second could be eaten by the clock moving on before the check.
@pytest.mark.parametrize("age", [310, 3600, -310], ids=["just-stale", "an-hour", "future"])
def test_bc_a_timestamp_over_5_minutes_off_is_401(client, redis, bc_buyer, age):
    before = snapshot(redis)

    answer = deliver_bc(
        client, raw_fixture("bigcommerce", "webhook_order_created"), stamp=int(time.time()) - age
    )  # correctly signed, with that timestamp

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_bc_a_timestamp_within_5_minutes_is_accepted(client, redis, bc_buyer):
    answer = deliver_bc(
        client, raw_fixture("bigcommerce", "webhook_order_created"), stamp=int(time.time()) - 240
    )

    assert answer.get_json() == {"status": "accepted"}


def _bc_forgery(name: str, stamp: int) -> dict:
    """deliver_bc arguments for a delivery whose signature must not verify."""
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    good = standard_signature(BC_BUYER_SECRET, MSG_ID, str(stamp), raw)
    wrong = standard_signature("not-the-secret", MSG_ID, str(stamp), raw)
    return {
        "wrong-secret": {"signature": wrong},
        "other-msg-id": {"signature": good, "msg_id": "msg_other"},
        "other-timestamp": {"signature": good, "stamp": stamp - 1},
        "no-version": {"signature": good.removeprefix("v1,")},
        "v2-prefix": {"signature": "v2," + good.removeprefix("v1,")},
        "wrong-but-right-custom-header": {"signature": wrong, "gateway_secret": BC_BUYER_SECRET},
    }[name]


@pytest.mark.parametrize(
    "forgery",
    [
        "wrong-secret",
        "other-msg-id",
        "other-timestamp",
        "no-version",
        "v2-prefix",
        "wrong-but-right-custom-header",
    ],
)
def test_bc_a_wrong_signature_is_401_and_stores_nothing(client, redis, bc_buyer, forgery):
    stamp = int(time.time())
    fields = {"stamp": stamp, **_bc_forgery(forgery, stamp)}
    before = snapshot(redis)

    answer = deliver_bc(client, raw_fixture("bigcommerce", "webhook_order_created"), **fields)

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_bc_a_signature_over_other_bytes_of_the_same_json_is_401(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    signature = standard_signature(BC_BUYER_SECRET, MSG_ID, stamp, compact)

    answer = deliver_bc(client, raw, stamp=int(stamp), signature=signature)

    assert_refused(answer, 401, "unauthorized")


def test_bc_unsigned_with_the_custom_secret_header_is_accepted(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")

    token = bc_buyer["webhook_headers"]["X-Gateway-Secret"]  # made by the gateway, shown once
    assert token != BC_BUYER_SECRET and len(token) >= 32

    answer = deliver_bc(client, raw, secret=None, gateway_secret=token)

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).jobs[0].args == [bc_buyer["id"], "100"]
    hash_ = json.loads(raw)["hash"]
    assert redis.exists(bc_dedupe_key(BC_BUYER_HASH, hash_))  # no webhook-id: the hash


@pytest.mark.parametrize(
    "gateway_secret",
    [None, "", "wrong-secret", "another-stores", "the-signing-key"],
)
def test_bc_unsigned_without_the_right_custom_secret_is_401(
    client, redis, bc_buyer, bc_seller, gateway_secret
):
    gateway_secret = {
        "another-stores": bc_seller["webhook_headers"]["X-Gateway-Secret"],
        # The header is the connection's own token, never the signing key (issue 11): a
        # header can leak where a signature can't.
        "the-signing-key": BC_BUYER_SECRET,
    }.get(gateway_secret, gateway_secret)
    before = snapshot(redis)

    answer = deliver_bc(
        client,
        raw_fixture("bigcommerce", "webhook_order_created"),
        secret=None,
        gateway_secret=gateway_secret,
    )

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


@pytest.mark.parametrize("producer", ["stores/zzz999", "abc123", "", None])
def test_bc_an_unknown_producer_is_401(client, redis, bc_buyer, producer):
    body = json.loads(raw_fixture("bigcommerce", "webhook_order_created"))
    body["producer"] = producer
    raw = json.dumps(body).encode()
    before = snapshot(redis)

    answer = deliver_bc(client, raw, gateway_secret=BC_BUYER_SECRET)  # signed with our secret

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before


def test_bc_the_same_webhook_id_again_is_a_duplicate(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    assert deliver_bc(client, raw).get_json() == {"status": "accepted"}

    again = deliver_bc(client, raw)  # a retry: same id, a fresh timestamp and signature

    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_bc_another_webhook_id_is_another_delivery(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    deliver_bc(client, raw)
    later = json.loads(raw)
    later["created_at"] += 61  # another event: another body (and `hash`)
    later["hash"] = "2222222222222222222222222222222222222222"

    answer = deliver_bc(client, json.dumps(later).encode(), msg_id="msg_9Kx0")

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).count == 2


def test_bc_the_same_body_under_another_webhook_id_is_a_duplicate(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    deliver_bc(client, raw)

    answer = deliver_bc(client, raw, msg_id="msg_9Kx0")

    # BigCommerce: "duplicates happen; dedupe on hash" (its body's own): the same body is the
    # same event, whatever its webhook-id (issue 11).
    assert answer.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_bc_unsigned_deliveries_dedupe_on_hash(client, redis, bc_buyer):
    raw = raw_fixture("bigcommerce", "webhook_order_created")
    other = json.loads(raw)
    other["hash"] = "1111111111111111111111111111111111111111"
    other["data"]["id"] = 101

    token = bc_buyer["webhook_headers"]["X-Gateway-Secret"]
    first = deliver_bc(client, raw, secret=None, gateway_secret=token)
    second = deliver_bc(client, raw, secret=None, gateway_secret=token)
    third = deliver_bc(client, json.dumps(other).encode(), secret=None, gateway_secret=token)

    assert first.get_json() == {"status": "accepted"}
    assert second.get_json() == {"status": "duplicate"}
    assert third.get_json() == {"status": "accepted"}
    assert [job.args for job in queued(redis).jobs] == [
        [bc_buyer["id"], "100"],
        [bc_buyer["id"], "101"],
    ]


@pytest.mark.parametrize("scope", ["store/shipment/created", "store/shipment/updated"])
def test_bc_shipment_scopes_enqueue_a_sync_of_the_seller_order(client, redis, bc_seller, scope):
    body = json.loads(raw_fixture("bigcommerce", "webhook_shipment_created"))
    body["scope"] = scope
    raw = json.dumps(body).encode()

    answer = deliver_bc(client, raw, secret=BC_SELLER_SECRET)

    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert queue.count == 1
    assert queue.jobs[0].func_name == SYNC_SELLER_REF
    assert queue.jobs[0].args == [bc_seller["id"], "5001"]  # data.orderId, not the shipment id
    assert redis.exists(bc_dedupe_key(BC_SELLER_HASH, MSG_ID))


def test_bc_an_order_status_update_reads_the_order_again(client, redis, bc_buyer):
    """A checkout's order is created before its payment: its move to a paid status (or to
    Cancelled) comes as store/order/statusUpdated, which ingests the order again."""
    body = json.loads(raw_fixture("bigcommerce", "webhook_order_status_updated"))
    body["data"]["status"] = {"previous_status_id": 0, "new_status_id": 11}

    answer = deliver_bc(client, json.dumps(body).encode())

    assert answer.get_json() == {"status": "accepted"}
    [job] = queued(redis).jobs
    assert (job.func_name, job.args) == (INGEST_ORDER, [bc_buyer["id"], "100"])


@pytest.mark.parametrize(
    "scope",
    [
        "store/order/updated",
        "store/order/archived",
        "store/shipment/deleted",
    ],
)
def test_bc_other_scopes_are_ignored(client, redis, bc_buyer, scope):
    body = json.loads(raw_fixture("bigcommerce", "webhook_order_status_updated"))
    body["scope"] = scope
    raw = json.dumps(body).encode()

    answer = deliver_bc(client, raw)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored"}
    assert queued(redis).count == 0
    assert not redis.exists(bc_dedupe_key(BC_BUYER_HASH, MSG_ID))


def test_bc_a_body_over_1_mib_is_413(client, redis, bc_buyer):
    body = json.loads(raw_fixture("bigcommerce", "webhook_order_created"))
    body["padding"] = "x" * (1024 * 1024)
    before = snapshot(redis)

    answer = deliver_bc(client, json.dumps(body).encode())

    assert_refused(answer, 413, "body_too_large")
    assert snapshot(redis) == before


# ---- WooCommerce ---------------------------------------------------------------------------------


def wc_signature(secret: str, raw: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def deliver_woo(
    client,
    raw: bytes,
    *,
    topic: str = "order.created",
    source: str = WOO_SITE + "/",
    secret: str | None = WOO_SECRET,
    signature: str | None = None,
    delivery_id: str = DELIVERY_ID,
    content_type: str = "application/json",
):
    """POST a WooCommerce delivery with its X-WC-* headers, signed with `secret`."""
    resource, _, event = topic.partition(".")
    headers = {
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "5",
        "X-WC-Webhook-Delivery-ID": delivery_id,
        "User-Agent": "WooCommerce/8.6.1 Hookshot (WordPress/6.4.3)",
    }
    if signature is None and secret is not None:
        signature = wc_signature(secret, raw)
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    return client.post(
        "/webhooks/woocommerce", data=raw, headers=headers, content_type=content_type
    )


@pytest.fixture
def woo_buyer(client, redis):
    return create_partner(
        client,
        "woocommerce",
        {
            "store_url": WOO_SITE,
            "consumer_key": "ck_buyer_consumer_key",
            "consumer_secret": "cs_buyer_consumer_secret",
            "webhook_secret": WOO_SECRET,
        },
    )


def test_woo_the_save_time_ping_gets_exactly_200_and_stores_nothing(client, redis, woo_buyer):
    before = snapshot(redis)

    answer = client.post(
        "/webhooks/woocommerce",
        data="webhook_id=5",
        content_type="application/x-www-form-urlencoded",
        headers={"User-Agent": "WooCommerce/8.6.1 Hookshot (WordPress/6.4.3)"},
    )  # no X-WC-* headers, no signature

    assert answer.status_code == 200
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_woo_the_ping_is_answered_before_any_partner_exists(client, redis):
    answer = client.post(
        "/webhooks/woocommerce",
        data={"webhook_id": "12"},
        content_type="application/x-www-form-urlencoded",
    )

    assert answer.status_code == 200


@pytest.mark.parametrize(
    "source",
    [
        "https://shop.example.com/",
        "https://shop.example.com",
        "https://Shop.EXAMPLE.com/",
        "https://shop.example.com:443/",
        # home_url('/'): http when the delivering request is not https, and the site's own
        # `home`, www or not
        "http://shop.example.com/",
        "https://www.shop.example.com/",
        "http://WWW.shop.example.com:80/",
    ],
)
def test_woo_signed_order_created_is_accepted_with_one_ingest_job(client, redis, woo_buyer, source):
    answer = deliver_woo(client, raw_fixture("woocommerce", "webhook_order_created"), source=source)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert queue.count == 1
    assert queue.jobs[0].func_name == INGEST_ORDER
    assert queue.jobs[0].args == [woo_buyer["id"], "727"]


def test_woo_a_store_url_with_a_slash_and_capitals_matches_its_source(client, redis):
    partner = create_partner(
        client,
        "woocommerce",
        {
            "store_url": "https://Example.ORG/Shop/",
            "consumer_key": "ck_example_consumer_key",
            "consumer_secret": "cs_example_consumer_secret",
            "webhook_secret": WOO_SECRET,
        },
    )

    answer = deliver_woo(
        client,
        raw_fixture("woocommerce", "webhook_order_created"),
        source="https://example.org/Shop",
    )

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).jobs[0].args == [partner["id"], "727"]


def _woo_forgeries() -> dict[str, str | None]:
    raw = raw_fixture("woocommerce", "webhook_order_created")
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    return {
        "wrong-secret": wc_signature("not-the-secret", raw),
        "re-serialized-body": wc_signature(WOO_SECRET, compact),
        "hex-not-base64": hmac.new(WOO_SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        "empty": "",
        "missing": None,
    }


@pytest.mark.parametrize("forgery", list(_woo_forgeries()))
def test_woo_a_wrong_or_missing_signature_is_401_and_stores_nothing(
    client, redis, woo_buyer, forgery
):
    before = snapshot(redis)

    answer = deliver_woo(
        client,
        raw_fixture("woocommerce", "webhook_order_created"),
        secret=None,
        signature=_woo_forgeries()[forgery],
    )

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


@pytest.mark.parametrize(
    "source",
    [
        "https://other.example.com/",
        "https://shop.example.com/store/",  # another path: another site of a multisite
        "https://shop.example.com:8443/",
        "https://api.shop.example.com/",
        "https://wwwshop.example.com/",
        "shop.example.com",
        "",
    ],
)
def test_woo_an_unknown_source_is_401_and_stores_nothing(client, redis, woo_buyer, source):
    before = snapshot(redis)

    answer = deliver_woo(
        client, raw_fixture("woocommerce", "webhook_order_created"), source=source
    )  # signed with the right secret

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_woo_a_store_passes_as_no_other_whatever_the_source_says(client, redis, woo_buyer):
    other = create_partner(
        client,
        "woocommerce",
        {
            "store_url": "https://other.example.com",
            "consumer_key": "ck_other_store_key",
            "consumer_secret": "cs_other_store_secret",
            "webhook_secret": "other-webhook-secret",
        },
    )
    raw = raw_fixture("woocommerce", "webhook_order_created")
    before = snapshot(redis)

    # signed by shop.example.com's secret, naming the other store (www, http: same store)
    forged = deliver_woo(client, raw, source="http://www.other.example.com/")

    assert_refused(forged, 401, "unauthorized")
    assert snapshot(redis) == before
    own = deliver_woo(
        client, raw, source="http://www.other.example.com/", secret="other-webhook-secret"
    )
    assert own.get_json() == {"status": "accepted"}
    assert queued(redis).jobs[0].args == [other["id"], "727"]


def test_woo_one_store_under_another_form_of_its_url_is_taken(client, redis, woo_buyer):
    answer = client.post(
        "/api/v1/partners",
        json={
            "name": "Same shop",
            "email": "ops@example.com",
            "platform": "woocommerce",
            "connection": {
                "store_url": "http://www.shop.example.com/",
                "consumer_key": "ck_same_shop_key_2",
                "consumer_secret": "cs_same_shop_secret_2",
                "webhook_secret": "another-webhook-secret",
            },
        },
        headers=admin_headers(),
    )

    assert_refused(answer, 409, "store_taken")


def test_woo_a_form_body_with_x_wc_headers_is_no_ping(client, redis, woo_buyer):
    before = snapshot(redis)

    answer = deliver_woo(
        client, b"webhook_id=5", secret=None, content_type="application/x-www-form-urlencoded"
    )

    assert_refused(answer, 401, "unauthorized")
    assert snapshot(redis) == before


def test_woo_the_same_delivery_of_the_same_order_is_a_duplicate(client, redis, woo_buyer):
    raw = raw_fixture("woocommerce", "webhook_order_created")
    assert deliver_woo(client, raw).get_json() == {"status": "accepted"}

    again = deliver_woo(client, raw)

    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


def test_woo_a_reused_delivery_id_for_another_order_is_accepted(client, redis, woo_buyer):
    # WooCommerce derives the delivery id from the webhook id and the current second
    raw = raw_fixture("woocommerce", "webhook_order_created")
    other = json.loads(raw)
    other["id"] = 731
    other["number"] = "731"

    first = deliver_woo(client, raw)
    second = deliver_woo(client, json.dumps(other).encode())

    assert first.get_json() == {"status": "accepted"}
    assert second.get_json() == {"status": "accepted"}
    assert [job.args for job in queued(redis).jobs] == [
        [woo_buyer["id"], "727"],
        [woo_buyer["id"], "731"],
    ]


def test_woo_another_delivery_id_is_another_delivery(client, redis, woo_buyer):
    raw = raw_fixture("woocommerce", "webhook_order_created")
    deliver_woo(client, raw)
    later = json.loads(raw)
    later["date_modified_gmt"] = "2026-03-02T16:17:42"  # another event: another body

    answer = deliver_woo(
        client, json.dumps(later).encode(), delivery_id="0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    )

    assert answer.get_json() == {"status": "accepted"}
    assert queued(redis).count == 2


def test_woo_the_same_body_under_another_delivery_id_is_a_replay(client, redis, woo_buyer):
    raw = raw_fixture("woocommerce", "webhook_order_created")
    deliver_woo(client, raw)

    answer = deliver_woo(client, raw, delivery_id="0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e")

    # The signature covers the body only: the delivery id can be changed by anyone (issue 11).
    assert answer.get_json() == {"status": "duplicate"}
    assert queued(redis).count == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"{not json", "malformed_json"), (b"", "malformed_json"), (b"[727]", "malformed_body")],
    ids=["broken", "empty", "array"],
)
def test_woo_a_signed_body_that_is_not_a_json_object_is_400(client, redis, woo_buyer, raw, code):
    before = snapshot(redis)

    answer = deliver_woo(client, raw)

    assert_refused(answer, 400, code)
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_woo_a_body_over_1_mib_is_413(client, redis, woo_buyer):
    body = json.loads(raw_fixture("woocommerce", "webhook_order_created"))
    body["customer_note"] = "x" * (1024 * 1024)
    before = snapshot(redis)

    answer = deliver_woo(client, json.dumps(body).encode())  # correctly signed

    assert_refused(answer, 413, "body_too_large")
    assert snapshot(redis) == before
    assert queued(redis).count == 0


def test_woo_order_updated_asks_for_the_order_again(client, redis, woo_buyer):
    # A checkout's order can be `pending` when order.created fires; its payment is an update.
    answer = deliver_woo(
        client, raw_fixture("woocommerce", "webhook_order_created"), topic="order.updated"
    )

    assert answer.get_json() == {"status": "accepted"}
    queue = queued(redis)
    assert [(job.func_name, job.args) for job in queue.jobs] == [
        (INGEST_ORDER, [woo_buyer["id"], "727"])
    ]


@pytest.mark.parametrize("topic", ["order.deleted", "product.created"])
def test_woo_other_topics_are_ignored(client, redis, woo_buyer, topic):
    answer = deliver_woo(client, raw_fixture("woocommerce", "webhook_order_created"), topic=topic)

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored"}
    assert queued(redis).count == 0
