"""Shopify in both directions, against the simulator, with a real worker and live webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests
from conftest import bearer, wait_for
from rq import Queue

from e2e.sides import SIM_ADDRESS

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1ZV5W4500395539416"
FEDEX = "449044304137821"
DHL = "3318810025"


def _connect_two_shops(
    shopify_sim,
    live_server,
    connect,
    partnership,
    header_style="webhooks",
    skus=None,
    buyer_topics=("orders/create",),
    seller_topics=("orders/create", "fulfillments/create", "fulfillments/update"),
):
    """A buyer's and a seller's shop with static tokens, the hooks made by hand."""
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
        "Corner Shop",
    )
    seller = connect(
        "shopify",
        {
            "shop_domain": "acme.myshopify.com",
            "access_token": "shpat_acme_token",
            "webhook_secret": "acme-webhook-secret",
            "api_base_url": base,
        },
        "Acme Supply",
    )
    partnership(buyer, seller, skus or {"MUG-BLUE": "AC-100", "MUG-RED": "AC-200"})
    hook = f"{live_server}/webhooks/shopify"
    for shop, topics in ((buyer_shop, buyer_topics), (seller_shop, seller_topics)):
        for topic in topics:
            shop.add_webhook(topic, hook, header_style=header_style)
    return buyer_shop, seller_shop, buyer, seller


def _one_mug_in_the_sellers_shop(client, buyer_shop, seller_shop, buyer):
    """A customer's order of one blue mug in the buyer's shop, once the gateway has created it
    in the seller's: (the buyer's shop order, the seller's shop order)."""
    placed = buyer_shop.place_order(
        line_items=[{"sku": "MUG-BLUE", "quantity": 1, "title": "Blue mug", "price": "12.00"}],
        shipping_address=SIM_ADDRESS,
    )
    order = wait_for(lambda: _our_orders(client, buyer), what="the ingested order")[0]
    wait_for(
        lambda: client.get(
            f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])
        ).get_json()["seller_order_ref"],
        what="the order in the seller's shop",
    )
    (seller_order,) = seller_shop.orders()
    return placed, seller_order


def _our_orders(client, buyer):
    return client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()["orders"]


def _numbers(shop, order_gid):
    return sorted(
        n
        for f in shop.fulfillments(order_gid)
        if f["status"] != "CANCELLED"
        for n in f["tracking_numbers"]
    )


def test_order_in_buyer_shop_reaches_seller_and_fulfillments_come_back(
    client, live_server, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim, live_server, connect, partnership
    )
    placed = buyer_shop.place_order(
        line_items=[
            {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"},
            {"sku": "MUG-RED", "quantity": 1, "title": "Red mug", "price": "12.00"},
            {"sku": "OWN-THING", "quantity": 1, "title": "The buyer's own", "price": "5.00"},
        ],
        shipping_address=SIM_ADDRESS,
        email="ada@example.com",
    )

    # Created here once (the buyer's own line left alone), then in the seller's shop.
    orders = wait_for(lambda: _our_orders(client, buyer), what="the ingested order")
    assert len(orders) == 1
    order = orders[0]
    assert order["buyer_order_ref"] == placed["legacy_id"]
    assert sorted(li["seller_sku"] for li in order["line_items"]) == ["AC-100", "AC-200"]

    def routed():
        current = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]))
        return current.get_json()["seller_order_ref"]

    seller_ref = wait_for(routed, what="the order created in the seller's shop")
    (seller_order,) = seller_shop.orders()
    assert seller_order["legacy_id"] == seller_ref
    assert sorted((li["sku"], li["quantity"]) for li in seller_order["line_items"]) == [
        ("AC-100", 2),
        ("AC-200", 1),
    ]

    # A partial fulfillment in the seller's shop reaches the buyer's shop; still unshipped.
    first = seller_shop.fulfill(
        seller_order["id"], lines=[("AC-100", 2)], company="UPS", numbers=[UPS_1]
    )
    wait_for(lambda: _numbers(buyer_shop, placed["id"]) == [UPS_1], what="the first fulfillment")
    buyer_order = buyer_shop.order(placed["id"])
    assert {li["sku"]: li["fulfilled_quantity"] for li in buyer_order["line_items"]} == {
        "MUG-BLUE": 2,
        "MUG-RED": 0,
        "OWN-THING": 0,
    }
    ours = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])).get_json()
    assert ours["status"] == "unshipped"

    # The rest: shipped.
    seller_shop.fulfill(seller_order["id"], lines=[("AC-200", 1)], company="FedEx", numbers=[FEDEX])
    wait_for(
        lambda: _numbers(buyer_shop, placed["id"]) == sorted([UPS_1, FEDEX]),
        what="the second fulfillment",
    )

    def shipped():
        current = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]))
        return current.get_json()["status"] == "shipped"

    wait_for(shipped, what="the order to turn shipped")

    # A tracking change in the seller's shop after shipping reaches the buyer's shop (rule 8).
    seller_shop.update_tracking(first, company="UPS", numbers=[UPS_1, UPS_2])
    wait_for(
        lambda: _numbers(buyer_shop, placed["id"]) == sorted([UPS_1, UPS_2, FEDEX]),
        what="the tracking change",
    )
    assert len(buyer_shop.fulfillments(placed["id"])) == 2  # updated, not created again

    # Duplicated and replayed deliveries change nothing.
    before = json.dumps(buyer_shop.fulfillments(placed["id"]), sort_keys=True)
    shopify_sim.set_webhook_mode("duplicate")
    seller_shop.update_tracking(first, company="UPS", numbers=[UPS_1, UPS_2])
    shopify_sim.wait_for_webhooks()
    for delivery in shopify_sim.deliveries(topic="orders/create"):
        _replay(live_server, delivery)
    wait_for(lambda: Queue("gateway", connection=redis).count == 0, what="an idle queue")
    assert json.dumps(buyer_shop.fulfillments(placed["id"]), sort_keys=True) == before
    assert len(_our_orders(client, buyer)) == 1
    assert len(seller_shop.orders()) == 1


def _replay(live_server, delivery):
    payload = delivery["payload"]
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    shop = delivery.get("shop") or "corner.myshopify.com"
    secret = "corner-webhook-secret" if shop.startswith("corner") else "acme-webhook-secret"
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    answer = requests.post(
        f"{live_server}/webhooks/shopify",
        data=raw,
        headers={
            "X-Shopify-Topic": delivery["topic"],
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": delivery["webhook_id"],
            "X-Shopify-Hmac-Sha256": signature,
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "duplicate"


def test_forged_signature_is_refused_and_nothing_is_stored(
    client, live_server, shopify_sim, connect, partnership, redis
):
    _connect_two_shops(shopify_sim, live_server, connect, partnership)
    before = {k: redis.dump(k) for k in redis.keys("gw:*") if k != b"gw:metrics"}
    raw = json.dumps({"id": 1, "line_items": []}).encode()
    forged = base64.b64encode(hmac.new(b"not-the-secret", raw, hashlib.sha256).digest()).decode()
    answer = requests.post(
        f"{live_server}/webhooks/shopify",
        data=raw,
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": "corner.myshopify.com",
            "X-Shopify-Webhook-Id": "forged-1",
            "X-Shopify-Hmac-Sha256": forged,
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    after = {k: redis.dump(k) for k in redis.keys("gw:*") if k != b"gw:metrics"}
    assert after == before
    assert Queue("gateway", connection=redis).count == 0


def test_a_dummy_tracking_number_is_held_told_and_released_by_the_correction(
    client, live_server, worker, shopify_sim, connect, partnership, mailbox
):
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim, live_server, connect, partnership
    )
    placed = buyer_shop.place_order(
        line_items=[{"sku": "MUG-BLUE", "quantity": 1, "title": "Blue mug", "price": "12.00"}],
        shipping_address=SIM_ADDRESS,
    )
    order = wait_for(lambda: _our_orders(client, buyer), what="the ingested order")[0]

    def current():
        return client.get(
            f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])
        ).get_json()

    wait_for(lambda: current()["seller_order_ref"], what="the order in the seller's shop")
    (seller_order,) = seller_shop.orders()
    fulfillment = seller_shop.fulfill(
        seller_order["id"], lines=[("AC-100", 1)], company="UPS", numbers=["1Z999AA10123456784"]
    )

    held = wait_for(lambda: current()["fulfillments"], what="the held fulfillment")[0]
    assert held["status"] == "held" and "placeholder" in held["held_reason"]
    assert current()["status"] == "unshipped"  # not counted
    told = wait_for(lambda: [m for m in mailbox.messages if "held" in m["data"]], what="the email")
    assert told[0]["to"] == ["acme.supply@example.com"]
    assert buyer_shop.fulfillments(placed["id"]) == []  # not forwarded

    seller_shop.update_tracking(fulfillment, company="UPS", numbers=[UPS_1])
    wait_for(lambda: current()["status"] == "shipped", what="the release")
    released = current()["fulfillments"][0]
    assert released["status"] == "active" and released["tracking_numbers"] == [UPS_1]
    wait_for(lambda: _numbers(buyer_shop, placed["id"]) == [UPS_1], what="the forward")


def test_a_carrier_reaches_the_buyers_shop_by_a_name_it_recognizes(
    client, live_server, worker, shopify_sim, connect, partnership
):
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim, live_server, connect, partnership
    )
    placed, seller_order = _one_mug_in_the_sellers_shop(client, buyer_shop, seller_shop, buyer)

    seller_shop.fulfill(
        seller_order["id"], lines=[("AC-100", 1)], company="DHL Express", numbers=[DHL]
    )

    forwarded = wait_for(lambda: buyer_shop.fulfillments(placed["id"]), what="the forward")[0]
    assert forwarded["tracking_numbers"] == [DHL]
    assert forwarded["tracking_company"] == "DHL Express"  # ours is "DHL": Shopify lists it so
    assert forwarded["tracking_company_recognized"] is True


def test_deliveries_with_headers_named_as_shopify_events_name_them_work_alike(
    client, live_server, worker, shopify_sim, connect, partnership
):
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim, live_server, connect, partnership, header_style="events"
    )
    placed, seller_order = _one_mug_in_the_sellers_shop(client, buyer_shop, seller_shop, buyer)

    seller_shop.fulfill(seller_order["id"], lines=[("AC-100", 1)], company="UPS", numbers=[UPS_1])

    wait_for(lambda: _numbers(buyer_shop, placed["id"]) == [UPS_1], what="the forward")
    assert shopify_sim.wait_for_webhooks()
    # Those to this test's hooks (the gateway also registers its own, at PUBLIC_URL).
    answered = {
        (d["topic"], d["status"])
        for d in shopify_sim.deliveries()
        if d["url"].startswith(live_server)
    }
    assert answered == {("orders/create", 200), ("fulfillments/create", 200)}


def test_an_order_whose_answer_was_lost_is_created_once_though_the_search_index_lags(
    client, live_server, worker, shopify_sim, connect, partnership
):
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim, live_server, connect, partnership
    )
    seller_shop.set_search_lag(3600)  # new orders reach the shop's search an hour late
    seller_shop.lose_next_answer("orderCreate")  # created, but the answer never reaches us
    buyer_shop.place_order(
        line_items=[{"sku": "MUG-BLUE", "quantity": 1, "title": "Blue mug", "price": "12.00"}],
        shipping_address=SIM_ADDRESS,
    )
    order = wait_for(lambda: _our_orders(client, buyer), what="the ingested order")[0]

    seller_ref = wait_for(
        lambda: client.get(
            f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])
        ).get_json()["seller_order_ref"],
        what="the order in the seller's shop",
    )

    (seller_order,) = seller_shop.orders()  # the retry found it: one order, not two
    assert seller_order["legacy_id"] == seller_ref
    creates = shopify_sim.calls(shop="acme.myshopify.com", field="orderCreate")
    assert [call["status"] for call in creates] == [502]
