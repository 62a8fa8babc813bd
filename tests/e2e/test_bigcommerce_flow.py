"""A BigCommerce buyer's orders as a checkout makes them: created Incomplete, paid (or
cancelled) later. Each waits, visibly, until paid; the payment's status change routes it, or
the reconciliation when that webhook is lost; a cancelled one never reaches the seller. And a
BigCommerce seller's store, which emails its order's customer, never emails the buyer's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import bearer, wait_for

from e2e.sides import BC_ADDRESS, SKUS, side
from e2e.test_reconcile import cycle, drain
from gateway import runtime

CANCELLED = 5  # BigCommerce's status_id
UPS, FEDEX = "1Z5R89390357567127", "449044304137821"


@pytest.fixture
def sim(bigcommerce_sim):
    return bigcommerce_sim


@pytest.fixture
def pair(client, live_server, connect, partnership, sim):
    """A buyer and a seller, each with a BigCommerce store, partnered on SKUS."""
    env = SimpleNamespace(client=client, live_server=live_server, connect=connect, bigcommerce=sim)
    buyer, seller = side(env, "bigcommerce", "buyer"), side(env, "bigcommerce", "seller")
    buyer.connect()
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)
    return buyer, seller


def checkout(buyer, paid: bool = False) -> int:
    """A shopper checks out two blue mugs and a red one in the buyer's store."""
    placed = buyer.store.place_order(
        products=[
            {"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2, "price": 12.0},
            {"sku": "MUG-RED", "name": "Red mug", "quantity": 1, "price": 12.0},
        ],
        shipping_address=BC_ADDRESS,
        email="ada@example.com",
        paid=paid,
    )
    return placed["id"]


def our_order(client, buyer) -> dict | None:
    """The buyer's one order in the gateway, as the API shows it."""
    orders = client.get("/api/v1/orders", headers=bearer(buyer.partner["api_key"])).get_json()
    return orders["orders"][0] if orders["orders"] else None


def waiting(client, buyer) -> dict:
    """The buyer's order, once it is in and waits for its payment."""
    order = wait_for(lambda: our_order(client, buyer), what="the order from the buyer's store")
    assert order["waiting_for"] == "payment"
    assert order["seller_order_ref"] is None
    return order


def routed(client, buyer) -> dict:
    """The buyer's order, once it reached the seller's store."""

    def at_seller() -> dict | None:
        order = our_order(client, buyer)
        return order if order and order["seller_order_ref"] else None

    return wait_for(at_seller, 20, "the order to reach the seller's store")


def test_an_unpaid_order_waits_then_goes_to_the_seller_once_paid(client, worker, redis, pair):
    buyer, seller = pair
    ref = checkout(buyer)

    order = waiting(client, buyer)
    drain(redis)
    assert our_order(client, buyer)["waiting_for"] == "payment"
    assert seller.store.orders() == []

    buyer.store.pay(ref)  # store/order/statusUpdated: Incomplete -> Awaiting Fulfillment

    order = routed(client, buyer)
    assert order["waiting_for"] is None
    assert [o["id"] for o in seller.store.orders()] == [int(order["seller_order_ref"])]


def test_a_payment_whose_webhook_is_lost_is_found_by_the_reconciliation(
    client, worker, redis, sim, pair
):
    buyer, seller = pair
    ref = checkout(buyer)
    waiting(client, buyer)
    drain(redis)
    sim.webhook_mode = "drop"

    buyer.store.pay(ref)
    sim.wait_for_webhooks()
    drain(redis)
    assert our_order(client, buyer)["waiting_for"] == "payment"  # nobody told us

    cycle(redis)

    order = our_order(client, buyer)
    assert order["waiting_for"] is None and order["seller_order_ref"]
    assert len(seller.store.orders()) == 1


def test_an_order_cancelled_before_its_payment_never_reaches_the_seller(
    app, client, worker, redis, pair
):
    buyer, seller = pair
    ref = checkout(buyer)
    order = waiting(client, buyer)

    buyer.store.set_status(ref, CANCELLED)

    with app.app_context():
        store = runtime.store()
        wait_for(lambda: store.order(order["id"]).routing.state == "cancelled", what="the end")
    cycle(redis)  # a waiting order is asked about again each cycle; this one no more
    assert our_order(client, buyer)["seller_order_ref"] is None
    assert seller.store.orders() == []


def test_status_changes_of_a_routed_order_cost_no_call_to_the_buyers_store(
    client, worker, redis, sim, pair, live_server
):
    buyer, _ = pair
    ref = checkout(buyer, paid=True)
    routed(client, buyer)
    drain(redis)
    sim.reset_calls()

    buyer.store.set_status(ref, 9)  # the buyer's merchant moves it on: Awaiting Shipment

    sim.wait_for_webhooks()
    [delivery] = [
        d
        for d in sim.deliveries(buyer.store.store_hash, "store/order/statusUpdated")
        # the hooks made here; those the gateway registers go to PUBLIC_URL, no server in tests
        if '"new_status_id":9' in d["body"] and (d["url"] or "").startswith(live_server)
    ]
    assert delivery["status"] == 200  # the gateway took it
    drain(redis)
    assert sim.calls(store=buyer.store.store_hash) == []


def test_the_sellers_store_never_emails_the_buyers_customer(client, worker, pair):
    buyer, seller = pair
    ref = checkout(buyer, paid=True)  # ada@example.com, a customer of the buyer's store
    order = routed(client, buyer)

    seller.fulfill(order, "AC-100", 2, "UPS", UPS)
    seller.fulfill(order, "AC-200", 1, "FedEx", FEDEX)

    wait_for(lambda: buyer.sees_shipped(str(ref)), 20, "the buyer's order to show shipped")
    told = seller.store.emails()
    assert {e["kind"] for e in told} >= {"shipment", "status_changed"}
    assert {e["to"] for e in told} == {seller.partner["email"]}  # the seller's own inbox
    assert "ada@example.com" in {e["to"] for e in buyer.store.emails()}  # her store tells her
