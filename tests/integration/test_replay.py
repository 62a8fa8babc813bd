"""A captured webhook replayed under a new delivery id (issue 11): the body's hash is remembered
beside the id, per platform and store, for the same window, in the same one script (one
round trip, atomic as a MULTI/EXEC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from rq import Queue

from gateway.jobs import QUEUE
from gateway.store import key
from gateway.store.deliveries import ACCEPT
from gateway.webhooks import DEDUPE_SECONDS

SECRET = "replay-webhook-secret"
SHOP = "replayed.myshopify.com"


def _deliver(client, raw: bytes, webhook_id: str, shop: str = SHOP):
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest())
    return client.post(
        "/webhooks/shopify",
        data=raw,
        content_type="application/json",
        headers={
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Hmac-Sha256": signature.decode(),
        },
    )


def _commands(redis) -> dict[str, int]:
    stats = redis.info("commandstats")
    names = ("multi", "exec", "evalsha")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in names}


def test_a_replayed_body_is_a_duplicate_in_one_script(client, make_partner, redis):
    for shop in (SHOP, "other.myshopify.com"):
        connection = {"shop_domain": shop, "access_token": SECRET, "webhook_secret": SECRET}
        make_partner("shopify", connection=connection)
    raw = json.dumps({"id": 820982911946154508, "updated_at": "2026-03-02T10:15:01-05:00"})
    raw = raw.encode()

    redis.script_load(ACCEPT.source)  # as after the first webhook a process takes
    before = _commands(redis)
    assert _deliver(client, raw, "w-1").get_json() == {"status": "accepted"}
    after = _commands(redis)
    assert {name: after[name] - before[name] for name in after} == {
        "multi": 0,
        "exec": 0,
        "evalsha": 1,
    }

    assert _deliver(client, raw, "w-2-replayed").get_json() == {"status": "duplicate"}
    assert Queue(QUEUE, connection=redis).count == 1
    body = key("delivery", f"shopify:{SHOP}:body:{hashlib.sha256(raw).hexdigest()}")
    assert DEDUPE_SECONDS - 5 < redis.ttl(body) <= DEDUPE_SECONDS
    # Per store: the same bytes from another store are that store's own delivery.
    assert _deliver(client, raw, "w-3", "other.myshopify.com").get_json() == {"status": "accepted"}
