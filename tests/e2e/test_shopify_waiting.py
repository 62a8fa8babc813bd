"""A Shopify buyer's order that can't go to its seller yet waits, visibly, in our API: not paid
yet (a manual payment method), cancelled first, or its address withheld (an app not approved for
protected customer data); payment or cancellation reach us by webhook or, when that webhook is
lost, by the next reconciliation cycle, which also finds the address once the app is approved."""

from __future__ import annotations

from conftest import bearer, wait_for

from e2e.sides import SIM_ADDRESS
from e2e.test_reconcile import cycle, drain
from e2e.test_shopify_flow import _connect_two_shops
from gateway import runtime


def _connect(shopify_sim, live_server, connect, partnership):
    """A buyer's and a seller's shop, subscribed to what the gateway acts on."""
    buyer_shop, seller_shop, buyer, _ = _connect_two_shops(
        shopify_sim,
        live_server,
        connect,
        partnership,
        skus={"MUG-BLUE": "AC-100"},
        buyer_topics=("orders/create", "orders/paid", "orders/cancelled"),
        seller_topics=("fulfillments/create", "fulfillments/update"),
    )
    return buyer_shop, seller_shop, buyer


def _place(buyer_shop, **extra) -> dict:
    return buyer_shop.place_order(
        line_items=[{"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"}],
        shipping_address=SIM_ADDRESS,
        email="ada@example.com",
        **extra,
    )


def _waiting_order(client, buyer, redis) -> dict:
    """Our one order, once ingested and every job it started has run."""
    key = bearer(buyer["api_key"])
    wait_for(lambda: client.get("/api/v1/orders", headers=key).get_json()["orders"], 20, "ingest")
    drain(redis)
    [order] = client.get("/api/v1/orders", headers=key).get_json()["orders"]
    return order


def _current(client, buyer, order: dict) -> dict:
    return client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])).get_json()


def test_an_unpaid_order_waits_and_goes_to_the_seller_once_paid(
    client, live_server, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer = _connect(shopify_sim, live_server, connect, partnership)
    placed = _place(buyer_shop, financial_status="PENDING")  # bank deposit: not paid yet

    order = _waiting_order(client, buyer, redis)
    assert (order["waiting_for"], order["seller_order_ref"]) == ("payment", None)
    assert seller_shop.orders() == []

    buyer_shop.mark_as_paid(placed["id"])  # orders/paid

    routed = wait_for(
        lambda: _current(client, buyer, order)["seller_order_ref"], 20, "the routed order"
    )
    assert _current(client, buyer, order)["waiting_for"] is None
    [in_seller_shop] = seller_shop.orders()
    assert in_seller_shop["legacy_id"] == routed
    assert [(li["sku"], li["quantity"]) for li in in_seller_shop["line_items"]] == [("AC-100", 2)]


def test_a_payment_whose_webhook_was_lost_is_found_by_the_next_cycle(
    client, live_server, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer = _connect(shopify_sim, live_server, connect, partnership)
    placed = _place(buyer_shop, financial_status="PENDING")
    order = _waiting_order(client, buyer, redis)

    shopify_sim.set_webhook_mode("drop")
    buyer_shop.mark_as_paid(placed["id"])  # its orders/paid never arrives
    drain(redis)
    assert _current(client, buyer, order)["waiting_for"] == "payment"

    cycle(redis)

    current = _current(client, buyer, order)
    assert current["waiting_for"] is None and current["seller_order_ref"]
    assert [o["legacy_id"] for o in seller_shop.orders()] == [current["seller_order_ref"]]


def test_an_order_cancelled_before_it_was_paid_never_reaches_the_seller(
    app, client, live_server, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer = _connect(shopify_sim, live_server, connect, partnership)
    placed = _place(buyer_shop, financial_status="PENDING")
    order = _waiting_order(client, buyer, redis)

    buyer_shop.cancel_order(placed["id"])  # orders/cancelled

    with app.app_context():
        store = runtime.store()
    wait_for(lambda: store.order(order["id"]).routing.state == "cancelled", 20, "the end")
    cycle(redis)  # and no later cycle sends it
    current = _current(client, buyer, order)
    assert (current["waiting_for"], current["seller_order_ref"]) == (None, None)
    assert seller_shop.orders() == []


def test_an_order_whose_address_is_withheld_waits_until_the_app_is_approved(
    client, live_server, worker, shopify_sim, connect, partnership, redis
):
    buyer_shop, seller_shop, buyer = _connect(shopify_sim, live_server, connect, partnership)
    buyer_shop.set_customer_data_access(False)  # not approved for protected customer data
    _place(buyer_shop)

    order = _waiting_order(client, buyer, redis)
    assert (order["waiting_for"], order["seller_order_ref"]) == ("address", None)
    assert order["shipping_address"] == {"province": "IL", "country_code": "US"}
    assert seller_shop.orders() == []

    buyer_shop.set_customer_data_access(True)
    cycle(redis)

    current = _current(client, buyer, order)
    assert current["waiting_for"] is None and current["seller_order_ref"]
    assert current["shipping_address"]["address1"] == "1 Main St"
    [in_seller_shop] = seller_shop.orders()
    assert in_seller_shop["legacy_id"] == current["seller_order_ref"]
    shipping_to = in_seller_shop["shipping_address"]
    assert (shipping_to["name"], shipping_to["address1"], shipping_to["city"]) == (
        "Ada Lovelace",
        "1 Main St",
        "Springfield",
    )
