"""Abuse (issue 11, item 4): rate limits per partner key and per person, a resync cooldown,
capped timelines. Real Redis; the limits are set low through the app's settings."""

from __future__ import annotations

import time
from dataclasses import replace

from conftest import admin_headers, bearer
from rq import Queue

from gateway import create_app
from gateway.jobs import QUEUE, SYNC_SELLER
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import Change, event, key

UPS = "1Z5R89390357567127"
PUBLIC = "http://127.0.0.1:8000"
SHOP = "seller-shop.myshopify.com"
SHOP_SECRET = "seller-webhook-secret"


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
        Queue(QUEUE, connection=redis).count,
    )


# ---- resync cooldown ---------------------------------------------------------------------------


def test_a_resync_within_the_cooldown_is_coalesced(client, pair, make_order, redis):
    connection = {"shop_domain": SHOP, "access_token": "shpat_x", "webhook_secret": SHOP_SECRET}
    buyer, seller = pair(seller_platform="shopify", seller_connection=connection)
    order = make_order(buyer, seller)
    store = connect(Settings.from_env())
    store.change_order(order["id"], lambda o: Change(order=replace(o, seller_order_ref="5001")))
    queue = Queue(QUEUE, connection=redis)
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
