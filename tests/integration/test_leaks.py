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


# ---- what each party sees ---------------------------------------------------------------------


def _page_as(app, client, order_id: str, api_key: str) -> str:
    """The order page's HTML, opened through a fresh link of the key's role in a new browser."""
    link = client.post(f"/api/v1/orders/{order_id}/links", headers=bearer(api_key))
    browser = app.test_client()
    assert browser.get(link.get_json()["url"].removeprefix("http://127.0.0.1:8000")).status_code
    return browser.get(f"/orders/{order_id}").get_data(as_text=True)


def test_the_buyer_sees_no_seller_email_outbox_or_smtp_error(
    app, client, pair, make_order, mailbox, monkeypatch
):
    from conftest import free_port

    from gateway.jobs.routing import route_order

    buyer, seller = pair()
    order = make_order(buyer, seller)
    monkeypatch.setenv("MAIL_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    assert route_order(order["id"]) == "retrying"
    monkeypatch.setenv("MAIL_URL", "")  # the outbox
    assert route_order(order["id"]) == "delivered"

    as_buyer = _page_as(app, client, order["id"], buyer["api_key"])
    as_seller = _page_as(app, client, order["id"], seller["api_key"])

    for private in (seller["email"], "outbox", "email not sent", "Refused"):
        assert private not in as_buyer
    assert seller["email"] in as_seller and "outbox file" in as_seller
    assert "email not sent: ConnectionRefusedError" in as_seller
    assert "received through the API" in as_buyer  # what is everyone's stays everyone's


def test_a_delivery_error_to_the_buyer_is_the_buyers(
    app, client, pair, make_order, callback_receiver
):
    from gateway.jobs.forwarding import forward_fulfillment

    buyer, seller = pair({"callback_url": callback_receiver.url})
    order = make_order(buyer, seller, lines=[{"sku": "MUG-BLUE", "quantity": 1}])
    created = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        headers=bearer(seller["api_key"]),
        json={
            "line_items": [{"sku": "AC-100", "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": ["1Z5R89390357567127"],
        },
    ).get_json()
    callback_receiver.statuses = [500]
    assert forward_fulfillment(order["id"], created["fulfillment"]["id"]) == "retrying"

    def delivery(key: str) -> dict:
        answer = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(key))
        listed = client.get("/api/v1/orders", headers=bearer(key)).get_json()["orders"]
        assert listed[0]["fulfillments"] == answer.get_json()["fulfillments"]
        return answer.get_json()["fulfillments"][0]["delivery"]

    assert delivery(buyer["api_key"])["last_error"] == "callback answered HTTP 500"
    assert delivery(seller["api_key"]) == {**delivery(buyer["api_key"]), "last_error": None}
    assert "HTTP 500" in _page_as(app, client, order["id"], buyer["api_key"])
    assert "HTTP 500" not in _page_as(app, client, order["id"], seller["api_key"])


# ---- headers ------------------------------------------------------------------------------------


def _assert_protected(answer) -> None:
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy


def test_the_order_page_is_not_cached_framed_or_referred(app, client, pair, make_order):
    import re

    buyer, seller = pair()
    order = make_order(buyer, seller)
    link = client.post(f"/api/v1/orders/{order['id']}/links", headers=bearer(seller["api_key"]))
    opened = client.get(link.get_json()["url"].removeprefix("http://127.0.0.1:8000"))
    _assert_protected(opened)  # the 303 that takes the token
    page = client.get(f"/orders/{order['id']}")
    assert page.status_code == 200
    _assert_protected(page)
    (nonce,) = re.findall(r'<style nonce="([^"]+)">', page.get_data(as_text=True))
    policy = page.headers["Content-Security-Policy"]
    assert f"style-src 'nonce-{nonce}'" in policy and "script-src" not in policy
    again = client.get(f"/orders/{order['id']}")
    assert f"'nonce-{nonce}'" not in again.headers["Content-Security-Policy"]  # one per answer


def test_api_answers_are_not_cached_either(client, make_partner):
    answer = client.post(
        "/api/v1/partners",
        json={"name": "A", "email": "a@example.com", "platform": "none"},
        headers=admin_headers(),
    )
    assert answer.status_code == 201 and "api_key" in answer.get_json()  # shown once: not kept
    _assert_protected(answer)
    _assert_protected(client.get("/api/v1/orders/nope", headers=admin_headers()))
    _assert_protected(client.get("/healthz"))
