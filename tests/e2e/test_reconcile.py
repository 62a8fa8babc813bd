"""The 15-minute reconciliation with every webhook dropped: it alone keeps orders in sync."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from conftest import bearer
from rq import Queue
from rq.registry import StartedJobRegistry

from e2e.sides import SIM_ADDRESS
from gateway.jobs.reconcile import reconcile, reconcile_store
from gateway.platforms import shopify
from gateway.platforms.base import PlatformError
from gateway.store import key

UPS = "1Z5R89390357567127"
FEDEX = "449044304137821"


def drain(redis, timeout: float = 30) -> None:
    """Wait until the worker has nothing queued or running, on any queue it takes."""
    queues = [Queue(name, connection=redis) for name in ("connections", "gateway", "callbacks")]
    started = [StartedJobRegistry(queue=queue) for queue in queues]

    def idle() -> bool:
        return not any(q.count for q in queues) and not any(s.count for s in started)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle():
            time.sleep(0.3)
            if idle():
                return
        time.sleep(0.05)
    raise AssertionError("the worker did not go idle")


def cycle(redis) -> None:
    """One reconciliation cycle, as the cron would enqueue it, run to the end by the worker."""
    assert "skipped" not in reconcile()
    drain(redis)


def _shops(shopify_sim, connect, partnership):
    base = shopify_sim.base_url
    buyer_shop = shopify_sim.add_shop(
        "corner.myshopify.com", "shpat_corner_token", "corner-webhook-secret"
    )
    seller_shop = shopify_sim.add_shop(
        "acme.myshopify.com", "shpat_acme_token", "acme-webhook-secret"
    )
    buyer = connect(
        "shopify",
        {
            "shop_domain": "corner.myshopify.com",
            "access_token": "shpat_corner_token",
            "webhook_secret": "corner-webhook-secret",
            "api_base_url": base,
        },
        "Corner",
    )
    seller = connect(
        "shopify",
        {
            "shop_domain": "acme.myshopify.com",
            "access_token": "shpat_acme_token",
            "webhook_secret": "acme-webhook-secret",
            "api_base_url": base,
        },
        "Acme",
    )
    partnership(buyer, seller, {"MUG-BLUE": "AC-100", "MUG-RED": "AC-200"})
    shopify_sim.set_webhook_mode("drop")  # every webhook is lost
    return buyer_shop, seller_shop, buyer, seller


def _timelines(redis) -> dict[bytes, int]:
    return {k: redis.llen(k) for k in redis.keys("gw:timeline:*")}


def test_missed_order_and_fulfillments_are_caught_up_then_nothing_twice(
    client, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer, _ = _shops(shopify_sim, connect, partnership)
    placed = buyer_shop.place_order(
        line_items=[
            {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"},
            {"sku": "MUG-RED", "quantity": 1, "title": "Red mug"},
        ],
        shipping_address=SIM_ADDRESS,
    )
    cycle(redis)  # finds the buyer's order, which is created here and in the seller's shop
    orders = client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()["orders"]
    assert len(orders) == 1 and orders[0]["seller_order_ref"]
    (seller_order,) = seller_shop.orders()

    cycle(redis)  # a second run creates nothing new
    assert (
        len(client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()["orders"])
        == 1
    )
    assert len(seller_shop.orders()) == 1

    seller_shop.fulfill(seller_order["id"], lines=[("AC-100", 2)], company="UPS", numbers=[UPS])
    cycle(redis)
    assert [f["tracking_numbers"] for f in buyer_shop.fulfillments(placed["id"])] == [[UPS]]

    seller_shop.fulfill(seller_order["id"], lines=[("AC-200", 1)], company="FedEx", numbers=[FEDEX])
    cycle(redis)
    order = client.get(
        f"/api/v1/orders/{orders[0]['id']}", headers=bearer(buyer["api_key"])
    ).get_json()
    assert order["status"] == "shipped"
    assert len(buyer_shop.fulfillments(placed["id"])) == 2

    before = _timelines(redis)
    buyer_fulfillments = buyer_shop.fulfillments(placed["id"])
    cycle(redis)  # nothing changed: nothing happens
    assert _timelines(redis) == before
    assert buyer_shop.fulfillments(placed["id"]) == buyer_fulfillments

    # Rule 3: the shipped order is never polled; the seller has no unshipped order left. (The
    # cycle's one call there is its check of the gateway's webhooks: API.md, "Store connections".)
    shopify_sim.reset_calls()
    cycle(redis)
    calls = shopify_sim.calls(shop="acme.myshopify.com")
    assert [c["fields"] for c in calls] == [["webhookSubscriptions"]]


def _seller_with_orders(client, shopify_sim, connect, partnership, redis, count):
    """A no-platform buyer's orders routed to a Shopify seller (webhooks dropped)."""
    seller_shop = shopify_sim.add_shop(
        "acme.myshopify.com", "shpat_acme_token", "acme-webhook-secret"
    )
    seller = connect(
        "shopify",
        {
            "shop_domain": "acme.myshopify.com",
            "access_token": "shpat_acme_token",
            "webhook_secret": "acme-webhook-secret",
            "api_base_url": shopify_sim.base_url,
        },
        "Acme",
    )
    buyer = connect("none", {}, "Corner")
    partnership(buyer, seller, {"MUG-BLUE": "AC-100"})
    shopify_sim.set_webhook_mode("drop")
    for n in range(count):
        answer = client.post(
            "/api/v1/orders",
            headers=bearer(buyer["api_key"]),
            json={
                "seller_id": seller["id"],
                "buyer_order_ref": f"R{n}",
                "line_items": [{"sku": "MUG-BLUE", "quantity": 1}],
                "shipping_address": {
                    "name": "Ada Lovelace",
                    "address1": "1 Main St",
                    "city": "Springfield",
                    "country_code": "US",
                },
            },
        )
        assert answer.status_code == 201
    drain(redis)
    assert len(seller_shop.orders()) == count
    return seller_shop, seller


def test_a_run_that_fails_half_way_resumes_from_the_old_cursor(
    client, worker, shopify_sim, connect, partnership, redis, monkeypatch
):
    seller_shop, seller = _seller_with_orders(client, shopify_sim, connect, partnership, redis, 25)
    for order in seller_shop.orders():
        seller_shop.fulfill(order["id"], company="UPS", numbers=[UPS])
    cursor_key = f"{seller['id']}:seller"

    seller_shop.fail_next(count=1, status=500)  # the first listing call fails
    with pytest.raises(PlatformError, match="HTTP 500"):
        reconcile_store(seller["id"])
    assert redis.hget(key("cursors"), cursor_key) is None  # the cursor did not move

    # The connection drops on the second page (page size 10): page one stays applied.
    real_post = shopify.http.post
    calls = {"n": 0}

    def flaky_post(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise requests.ConnectionError("connection reset")
        return real_post(*args, **kwargs)

    monkeypatch.setattr(shopify.http, "post", flaky_post)
    with pytest.raises(PlatformError, match="unreachable"):
        reconcile_store(seller["id"])
    after_page_one = redis.hget(key("cursors"), cursor_key)
    assert after_page_one is not None
    drain(redis)
    shipped = _orders(client, seller, "shipped")
    assert len(shipped) == 10  # page one only

    monkeypatch.setattr(shopify.http, "post", real_post)
    reconcile_store(seller["id"])  # resumes from page one's cursor and finishes
    drain(redis)
    shipped = _orders(client, seller, "shipped")
    assert len(shipped) == 25
    assert all(len(o["fulfillments"]) == 1 for o in shipped)  # each applied exactly once
    assert redis.hget(key("cursors"), cursor_key) >= after_page_one


def _orders(client, partner, status):
    answer = client.get(
        f"/api/v1/orders?status={status}&limit=100", headers=bearer(partner["api_key"])
    )
    return answer.get_json()["orders"]


def test_two_runs_at_once_do_the_work_once(
    client, worker, shopify_sim, connect, partnership, redis
):
    seller_shop, seller = _seller_with_orders(client, shopify_sim, connect, partnership, redis, 3)
    for order in seller_shop.orders():
        seller_shop.fulfill(order["id"], company="UPS", numbers=[UPS])
    results = []
    gate = threading.Barrier(2)
    # The first run's listing answers late, so it still holds the lock when the second asks,
    # however the threads are scheduled on a busy machine.
    shopify_sim.slow_next(1, 0.5, shop="acme.myshopify.com")

    def run():
        gate.wait()
        results.append(reconcile_store(seller["id"]))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted("skipped" in r for r in results) == [False, True]
    drain(redis)
    orders = _orders(client, seller, "shipped")
    assert len(orders) == 3
    assert all(len(o["fulfillments"]) == 1 for o in orders)
