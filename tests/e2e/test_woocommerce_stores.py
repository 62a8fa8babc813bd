"""WooCommerce stores as real merchants run them, end to end against the simulator: orders
placed unpaid, payments and cancellations as updates, webhooks lost, old orders updated, a
seller's shop that must mail no one and may lack a SKU, a site whose home URL is not the one we
were given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from conftest import bearer, wait_for

from e2e.sides import SKUS, WOO_ADDRESS, WooCommerceSide
from e2e.test_reconcile import cycle, drain

LINES = [
    {"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2},
    {"sku": "MUG-RED", "name": "Red mug", "quantity": 1},
]


@pytest.fixture
def stores(client, live_server, worker, connect, partnership, woocommerce_sim, callback_receiver):
    """A WooCommerce buyer store (webhooks order.created and order.updated) and a WooCommerce
    seller store, partners of each other; the worker runs the jobs."""
    env = SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        callbacks=callback_receiver,
        woocommerce=woocommerce_sim,
        woo_tracking=False,
    )
    buyer = WooCommerceSide(env, "woocommerce", "buyer")
    seller = WooCommerceSide(env, "woocommerce", "seller")
    buyer.connect()
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)
    return buyer, seller


def our_order(client, buyer: dict) -> dict | None:
    """The buyer partner's one order in the gateway, as the API shows it (None before it is in)."""
    orders = client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()
    return orders["orders"][0] if orders["orders"] else None


def place_unpaid(buyer) -> int:
    """A shopper checks out and leaves the card payment page: the order stays `pending`."""
    placed = buyer.store.place_order(LINES, shipping=WOO_ADDRESS, billing=WOO_ADDRESS, paid=False)
    assert placed["status"] == "pending"
    return placed["id"]


def waiting_for_payment(client, buyer, redis) -> dict:
    """The order once ingested, checked to wait on payment and not to be at the seller."""
    order = wait_for(
        lambda: our_order(client, buyer.partner), 20, "the unpaid order to be ingested"
    )
    drain(redis)
    order = our_order(client, buyer.partner)
    assert order["waiting_for"] == "payment"
    assert order["seller_order_ref"] is None
    return order


def test_an_unpaid_order_waits_and_goes_to_the_seller_once_paid(client, stores, redis):
    buyer, seller = stores
    ref = place_unpaid(buyer)

    waiting_for_payment(client, buyer, redis)
    assert seller.store.orders() == []

    buyer.store.mark_paid(ref)  # the payment gateway confirms: processing, order.updated

    routed = wait_for(
        lambda: (o := our_order(client, buyer.partner)) and o["seller_order_ref"] and o,
        20,
        "the paid order to reach the seller",
    )
    assert routed["waiting_for"] is None
    (in_seller_store,) = seller.store.orders()
    assert in_seller_store["id"] == int(routed["seller_order_ref"])
    assert in_seller_store["status"] == "processing"
    # The seller's shop mails nobody: the buyer's customer never hears from it.
    assert seller.store.emails() == []
    assert in_seller_store["billing"]["email"] == ""


def test_a_payment_whose_webhook_is_lost_is_found_by_the_reconciliation(
    client, stores, woocommerce_sim, redis
):
    buyer, seller = stores
    ref = place_unpaid(buyer)
    waiting_for_payment(client, buyer, redis)

    woocommerce_sim.webhook_mode = "drop"  # WooCommerce never retries a delivery
    buyer.store.mark_paid(ref)
    drain(redis)
    assert our_order(client, buyer.partner)["seller_order_ref"] is None

    cycle(redis)

    routed = wait_for(
        lambda: (o := our_order(client, buyer.partner)) and o["seller_order_ref"] and o,
        20,
        "the reconciliation to route the paid order",
    )
    assert routed["waiting_for"] is None
    assert len(seller.store.orders()) == 1


def test_an_order_cancelled_before_it_was_paid_never_reaches_the_seller(
    client, stores, woocommerce_sim, redis
):
    buyer, seller = stores
    ref = place_unpaid(buyer)
    order = waiting_for_payment(client, buyer, redis)

    buyer.store.set_status(ref, "cancelled")  # the shopper gave up; order.updated

    wait_for(
        lambda: our_order(client, buyer.partner)["waiting_for"] is None,
        20,
        "the cancelled order to stop waiting",
    )
    cycle(redis)  # asked again, it stays unrouted
    assert our_order(client, buyer.partner)["seller_order_ref"] is None
    assert seller.store.orders() == []
    timeline = redis.lrange(f"gw:timeline:{order['id']}", 0, -1)
    assert any(b"Cancelled in the buyer's store before it was sent" in entry for entry in timeline)


def test_updates_of_an_order_already_routed_cost_no_read(
    client, live_server, stores, woocommerce_sim, redis
):
    buyer, _ = stores

    def to_us() -> list[dict]:
        # The hooks made by hand here; the gateway registers its own at PUBLIC_URL too, which
        # in these tests is not where live_server listens.
        sent = woocommerce_sim.deliveries(store=buyer.name, topic="order.updated")
        return [d for d in sent if d["url"].startswith(live_server)]

    ref = buyer.store.place_order(LINES, shipping=WOO_ADDRESS, billing=WOO_ADDRESS)["id"]
    wait_for(
        lambda: (o := our_order(client, buyer.partner)) and o["seller_order_ref"],
        20,
        "the paid order to reach the seller",
    )
    drain(redis)
    woocommerce_sim.reset_calls()
    deliveries = len(to_us())

    for n in range(3):  # the merchant edits the order: order.updated each time
        buyer.store.update_order(ref, {"customer_note": f"gift wrap, take {n}"})
        assert woocommerce_sim.wait_for_webhooks()
    drain(redis)

    sent = to_us()[deliveries:]
    assert [d["status"] for d in sent] == [200, 200, 200]
    assert woocommerce_sim.calls(store=buyer.name) == []  # the buyer's store was not read again


def test_an_order_from_before_the_store_connected_is_not_taken_by_its_update(
    client, live_server, worker, connect, partnership, woocommerce_sim, callback_receiver, redis
):
    env = SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        callbacks=callback_receiver,
        woocommerce=woocommerce_sim,
        woo_tracking=None,
    )
    buyer, seller = (
        WooCommerceSide(env, "woocommerce", "buyer"),
        WooCommerceSide(env, "woocommerce", "seller"),
    )
    buyer.open_store()  # the merchant's shop, selling before it was connected
    woocommerce_sim.clock.set(datetime.now(UTC) - timedelta(hours=2))
    old = buyer.store.place_order(LINES, shipping=WOO_ADDRESS, billing=WOO_ADDRESS)["id"]
    woocommerce_sim.clock.reset()
    connection = {
        "store_url": buyer.store.url,
        "consumer_key": buyer.store.consumer_key,
        "consumer_secret": buyer.store.consumer_secret,
        "webhook_secret": buyer.store.webhook_secret,
    }
    buyer.partner = connect("woocommerce", connection, "Corner")
    for topic in ("order.created", "order.updated"):
        buyer.store.add_webhook(topic, f"{live_server}/webhooks/woocommerce")
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)

    buyer.store.complete(old)  # the merchant ships it as before: order.updated
    assert woocommerce_sim.wait_for_webhooks()
    drain(redis)

    (delivery,) = woocommerce_sim.deliveries(store=buyer.name, kind="webhook")
    assert delivery["status"] == 200
    assert our_order(client, buyer.partner) is None
    assert seller.store.orders() == []


def test_a_sku_missing_from_the_sellers_catalog_is_created_by_name_and_said_so(
    client, stores, redis
):
    buyer, seller = stores
    blue_mug = seller.store.add_product("AC-100", "Product AC-100")  # the side's, as it was
    seller.store.remove_product("AC-200")  # the seller no longer sells it
    buyer.store.place_order(LINES, shipping=WOO_ADDRESS, billing=WOO_ADDRESS)

    order = wait_for(
        lambda: (o := our_order(client, buyer.partner)) and o["seller_order_ref"] and o,
        20,
        "the order to reach the seller",
    )

    in_store = seller.store.order(int(order["seller_order_ref"]))
    blue, red = in_store["line_items"]
    assert (blue["product_id"], blue["sku"], blue["quantity"]) == (blue_mug, "AC-100", 2)
    assert (red["product_id"], red["sku"], red["name"]) == (0, None, "Red mug")
    assert [line["total"] for line in in_store["line_items"]] == ["0.00", "0.00"]
    drain(redis)
    timeline = [e.decode() for e in redis.lrange(f"gw:timeline:{order['id']}", 0, -1)]
    assert any("AC-200 is not a product in the seller's WooCommerce store" in e for e in timeline)
    assert not any("AC-100 is not a product" in e for e in timeline)


def test_webhooks_naming_the_sites_own_home_url_are_taken(
    client,
    live_server,
    worker,
    connect,
    partnership,
    woocommerce_sim,
    callback_receiver,
):
    env = SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        callbacks=callback_receiver,
        woocommerce=woocommerce_sim,
        woo_tracking=None,
    )
    seller = WooCommerceSide(env, "woocommerce", "seller")
    seller.connect()
    shop = woocommerce_sim.add_store(
        "homely", "ck_homely_store_key", "cs_homely_store_secret", "homely-webhook-secret"
    )
    port = urlsplit(shop.url).port
    # WordPress's `home` is www and https; the merchant gave us the bare http URL.
    shop.home_url = f"https://www.localhost:{port}/stores/homely"
    for topic in ("order.created", "order.updated"):
        shop.add_webhook(topic, f"{live_server}/webhooks/woocommerce")
    buyer = connect(
        "woocommerce",
        {
            "store_url": f"http://localhost:{port}/stores/homely",
            "consumer_key": "ck_homely_store_key",
            "consumer_secret": "cs_homely_store_secret",
            "webhook_secret": "homely-webhook-secret",
        },
        "Homely",
    )
    partnership(buyer, seller.partner, SKUS)

    shop.place_order(LINES, shipping=WOO_ADDRESS, billing=WOO_ADDRESS)

    wait_for(
        lambda: (o := our_order(client, buyer)) and o["seller_order_ref"],
        20,
        "the order to reach the seller",
    )
    sent = woocommerce_sim.deliveries(store="homely", kind="webhook")
    assert (
        sent[0]["headers"]["X-WC-Webhook-Source"] == f"https://www.localhost:{port}/stores/homely/"
    )
    assert {d["status"] for d in sent} == {200}  # not 401 until WooCommerce disables the hook
