"""Abuse (issue 11, item 4): rate limits per partner key and per person, a resync cooldown,
capped timelines. Real Redis; the limits are set low through the app's settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import replace

import pytest
from conftest import admin_headers, bearer

from gateway import create_app
from gateway.jobs import SYNC_SELLER, job_queue
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import Change, event, key

UPS = "1Z5R89390357567127"
PUBLIC = "http://127.0.0.1:8000"
SHOP = "seller-shop.myshopify.com"
SHOP_SECRET = "seller-webhook-secret"
SHOP_TOKEN = "shpat_abuse_test_token"


def app_with(**settings):
    """The app under test with some settings changed."""
    return create_app(Settings.from_env(flask={"TESTING": True}, **settings))


def assert_rate_limited(answer) -> int:
    """429 rate_limited in the documented shape; the Retry-After seconds."""
    assert answer.status_code == 429, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "rate_limited" and body["error"]["message"]
    retry_after = int(answer.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def order_keys(redis, order_id: str) -> tuple:
    """What a refused request must leave as it was: the order, its timeline, the queue."""
    return (
        redis.get(key("order", order_id)),
        redis.lrange(key("timeline", order_id), 0, -1),
        job_queue(redis).count,
    )


# ---- per partner key ---------------------------------------------------------------------------


def test_a_partner_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(
    client, pair, make_order, redis
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    limited = app_with(rate_limit_partner="3/minute").test_client()
    path = f"/api/v1/orders/{order['id']}"
    for _ in range(3):
        assert limited.get(path, headers=bearer(seller["api_key"])).status_code == 200
    before = order_keys(redis, order["id"])
    assert_rate_limited(limited.get(path, headers=bearer(seller["api_key"])))
    body = {
        "line_items": [{"sku": "AC-100", "quantity": 1}],
        "carrier": "UPS",
        "tracking_numbers": [UPS],
    }
    fulfilled = limited.post(f"{path}/fulfillments", json=body, headers=bearer(seller["api_key"]))
    assert_rate_limited(fulfilled)
    assert order_keys(redis, order["id"]) == before

    # Each key has its own count; the operator's key is not limited.
    assert limited.get(path, headers=bearer(buyer["api_key"])).status_code == 200
    for _ in range(10):
        assert limited.get(path, headers=admin_headers()).status_code == 200
    # An unknown key is still told so, not counted.
    assert limited.get(path, headers=bearer("not-a-key")).status_code == 401


def test_platform_webhooks_are_not_limited_by_the_partners_limit(make_partner, redis):
    connection = {"shop_domain": SHOP, "access_token": SHOP_TOKEN, "webhook_secret": SHOP_SECRET}
    seller = make_partner("shopify", connection=connection)
    limited = app_with(rate_limit_partner="2/minute").test_client()
    for _ in range(2):
        assert limited.get("/api/v1/orders", headers=bearer(seller["api_key"])).status_code == 200
    assert_rate_limited(limited.get("/api/v1/orders", headers=bearer(seller["api_key"])))
    for n in range(5):
        raw = json.dumps({"id": 100 + n, "order_id": 4242}).encode()
        signature = hmac.new(SHOP_SECRET.encode(), raw, hashlib.sha256).digest()
        answer = limited.post(
            "/webhooks/shopify",
            data=raw,
            content_type="application/json",
            headers={
                "X-Shopify-Topic": "fulfillments/create",
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-Webhook-Id": f"delivery-{n}",
                "X-Shopify-Hmac-Sha256": base64.b64encode(signature).decode(),
            },
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)


def test_rate_limits_are_settings_checked_at_start():
    with pytest.raises(RuntimeError, match="RATE_LIMIT_PARTNER"):
        app_with(rate_limit_partner="lots")
    with pytest.raises(RuntimeError, match="TIMELINE_MAX_ENTRIES"):
        app_with(timeline_max_entries=1)
    assert app_with(rate_limit_partner="", rate_limit_person="")  # empty: no limit


# ---- per person, on the order page --------------------------------------------------------------


def test_order_page_posts_are_limited_per_link_holder(client, pair, make_order, redis):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    other = make_order(buyer, seller, ref="1002")
    app = app_with(rate_limit_person="2/minute")
    browser = app.test_client()

    def open_order(order_id: str) -> str:
        link = client.post(
            f"/api/v1/orders/{order_id}/links", headers=bearer(seller["api_key"])
        ).get_json()["url"]
        assert browser.get(link.removeprefix(PUBLIC)).status_code == 303
        page = browser.get(f"/orders/{order_id}").get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    csrf = open_order(order["id"])
    line_id = order["line_items"][0]["id"]
    bad = {"csrf_token": csrf, f"quantity-{line_id}": "1", "carrier": "UPS"}  # no tracking
    for _ in range(2):
        assert browser.post(f"/orders/{order['id']}/fulfillments", data=bad).status_code == 422
    before = order_keys(redis, order["id"])
    good = {**bad, "tracking_numbers": UPS}
    answer = browser.post(f"/orders/{order['id']}/fulfillments", data=good)
    assert answer.status_code == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert "Too many requests" in answer.get_data(as_text=True)
    assert order_keys(redis, order["id"]) == before

    # Another order's link, held in the same browser, is another person's count.
    csrf = open_order(other["id"])
    other_line = other["line_items"][0]["id"]
    posted = browser.post(
        f"/orders/{other['id']}/fulfillments",
        data={**good, "csrf_token": csrf, f"quantity-{other_line}": "1"},
    )
    assert posted.status_code == 303


# ---- resync cooldown ---------------------------------------------------------------------------


def test_a_resync_within_the_cooldown_is_coalesced(client, pair, make_order, redis):
    connection = {"shop_domain": SHOP, "access_token": SHOP_TOKEN, "webhook_secret": SHOP_SECRET}
    buyer, seller = pair(seller_platform="shopify", seller_connection=connection)
    order = make_order(buyer, seller)
    store = connect(Settings.from_env())
    store.change_order(order["id"], lambda o: Change(order=replace(o, seller_order_ref="5001")))
    queue = job_queue(redis)
    app = app_with(resync_cooldown=2)
    api = app.test_client()
    path = f"/api/v1/orders/{order['id']}/resync"

    def store_reads() -> int:
        return sum(job.func_name == SYNC_SELLER for job in queue.get_jobs())

    first = api.post(path, headers=bearer(buyer["api_key"]))
    assert first.status_code == 202 and first.get_json()["status"] == "accepted"
    timeline = redis.lrange(key("timeline", order["id"]), 0, -1)
    assert store_reads() == 1

    for headers in (bearer(seller["api_key"]), admin_headers()):
        again = api.post(path, headers=headers)
        assert again.status_code == 202
        body = again.get_json()
        assert body["status"] == "coalesced" and body["order_id"] == order["id"]
        assert 1 <= body["retry_after"] <= 2
    assert redis.lrange(key("timeline", order["id"]), 0, -1) == timeline
    assert store_reads() == 1

    time.sleep(2.1)  # the cooldown is over: the next resync reads the store again
    assert api.post(path, headers=bearer(buyer["api_key"])).get_json()["status"] == "accepted"
    assert store_reads() == 2


# ---- capped timelines ---------------------------------------------------------------------------


def test_a_timeline_keeps_its_first_entry_and_the_newest_and_the_page_says_so(
    client, pair, make_order, redis
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    store = connect(Settings.from_env(timeline_max_entries=5))
    first = store.timeline(order["id"])[0]
    assert first["type"] == "order.created"
    for n in range(4):
        store.add_timeline(order["id"], event("note", f"single {n}"))
    # Several entries in one transaction, with the change that wrote them.
    store.change_order(
        order["id"], lambda o: Change(events=[event("note", f"batch {n}") for n in range(3)])
    )
    kept = store.timeline(order["id"])
    assert [e["message"] for e in kept] == [
        first["message"],
        "single 3",
        "batch 0",
        "batch 1",
        "batch 2",
    ]
    assert store.timeline_dropped(order["id"]) == 3  # 1 + 4 + 3 written, 5 kept

    app = app_with(timeline_max_entries=5)
    browser = app.test_client()
    link = client.post(
        f"/api/v1/orders/{order['id']}/links", headers=bearer(buyer["api_key"])
    ).get_json()["url"]
    assert browser.get(link.removeprefix(PUBLIC)).status_code == 303
    page = browser.get(f"/orders/{order['id']}").get_data(as_text=True)
    assert "3 older entries were dropped" in page
    assert "keeps its first entry and the newest 4" in page
    assert first["message"] in page and "batch 2" in page and "single 0" not in page
