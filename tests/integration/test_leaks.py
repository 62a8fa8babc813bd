"""What the gateway lets out (issue 11): which stores are connected, partner ids on /metrics,
the seller's email and errors on the buyer's page, and the headers pages and answers carry."""

from __future__ import annotations

import base64
import hashlib
import hmac

from conftest import admin_headers, bearer

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


def test_metrics_need_the_operators_key_or_the_metrics_token(client, pair, make_order, redis):
    from gateway import create_app
    from gateway.settings import Settings

    buyer, seller = pair()
    make_order(buyer, seller)
    redis.hset("gw:gauges", f'reconcile_duration_seconds{{partner="{seller["id"]}"}}', 1.5)
    for headers in ({}, bearer(buyer["api_key"]), bearer("wrong")):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "unauthorized"
        assert seller["id"] not in answer.get_data(as_text=True)
    assert seller["id"] in client.get("/metrics", headers=admin_headers()).get_data(as_text=True)
    scraper = create_app(Settings.from_env(metrics_token="m" * 32)).test_client()
    assert scraper.get("/metrics", headers=bearer("m" * 32)).status_code == 200


def test_healthz_stays_public_and_names_no_one(client, pair, make_order):
    buyer, seller = pair()
    make_order(buyer, seller)
    answer = client.get("/healthz")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert set(answer.get_json()) == {
        "status",
        "redis",
        "queued",
        "scheduled",
        "failed_jobs",
        "workers",
    }
    assert seller["id"] not in text and "redis://" not in text
