"""What the gateway lets out (issue 11): which stores are connected, partner ids on /metrics,
the seller's email and errors on the buyer's page, and the headers pages and answers carry."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET = "s" * 32
SHOP = "known-shop.myshopify.com"


def _shopify_delivery(client, shop: str, signature: str):
    return client.post(
        "/webhooks/shopify",
        data=b'{"id": 1}',
        content_type="application/json",
        headers={
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": "w-1",
            "X-Shopify-Hmac-Sha256": signature,
        },
    )


def test_a_webhook_401_does_not_tell_whether_a_store_is_connected(client, make_partner, redis):
    connection = {"shop_domain": SHOP, "access_token": SECRET, "webhook_secret": SECRET}
    make_partner("shopify", connection=connection)
    wrong = base64.b64encode(hmac.new(b"guess", b'{"id": 1}', hashlib.sha256).digest()).decode()

    unknown = _shopify_delivery(client, "nobody.myshopify.com", wrong)
    known = _shopify_delivery(client, SHOP, wrong)

    assert unknown.status_code == known.status_code == 401
    assert unknown.get_json() == known.get_json()
    assert int(redis.hget("gw:metrics", "webhooks_refused_shopify")) == 2
