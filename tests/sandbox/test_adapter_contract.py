"""Every platform adapter against its platform's simulator: the same contract for each.

A store is opened through the e2e `Side` of its platform (connection, seeding, the store's own
view through the simulator); the adapter gets the session's real Store as its port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from conftest import ADDRESS
from e2e.sides import SKUS, Side, side

from gateway import platforms, runtime
from gateway.model import Delivery, Fulfillment, FulfillmentLine, Order, iso_utc, new_id
from gateway.orders import new_order
from gateway.platforms.base import Adapter, StoreOrder
from sandbox.bigcommerce import BigCommerceSimulator
from sandbox.common import StoreSimulator
from sandbox.shopify import ShopifySimulator
from sandbox.woocommerce import WooCommerceSimulator

# The simulator of each platform with a store: a new platform's module adds its own here.
SIMULATORS = {
    "shopify": ShopifySimulator,
    "bigcommerce": BigCommerceSimulator,
    "woocommerce": WooCommerceSimulator,
}
UPS_1, UPS_2 = "1Z5R89390357567127", "1Z879E930346834440"
FEDEX = "449044304137821"
LINES = [("MUG-BLUE", 2, "Blue mug"), ("MUG-RED", 1, "Red mug")]  # as Side.place_order orders
SHIPS_TO = (ADDRESS["name"], ADDRESS["address1"], ADDRESS["city"], ADDRESS["zip"])


def test_every_platform_with_a_store_has_a_simulator():
    assert sorted(SIMULATORS) == [p.name for p in platforms.every() if p.has_store]


@pytest.fixture(params=sorted(SIMULATORS))
def platform(request) -> str:
    return request.param


@pytest.fixture
def simulator(platform) -> Iterator[StoreSimulator]:
    """The platform's simulator on a free loopback port."""
    with SIMULATORS[platform]() as sim:
        yield sim


@pytest.fixture
def open_store(platform, simulator, app) -> Callable[[str], tuple[Side, Adapter]]:
    """A buyer's or seller's store in the simulator, and our adapter to it."""
    env = SimpleNamespace(**{platform: simulator}, woo_tracking=True)
    with app.app_context():
        port, config = runtime.store(), runtime.settings()

    def open_(role: str) -> tuple[Side, Adapter]:
        opened = side(env, platform, role)
        partner = {
            "id": f"ptr_{role}",
            "platform": platform,
            "email": f"{role}@example.com",
            "connection": opened.open_store(),
        }
        return opened, platforms.adapter_for(partner, port, config)

    return open_


def ours(store_order: StoreOrder) -> Order:
    """Our order for a buyer store's order, its lines mapped to the seller's SKUs."""
    return new_order(
        "ptr_buyer",
        "ptr_seller",
        store_order.ref,
        [
            (line.sku, SKUS[line.sku], line.title, line.quantity, line.ref)
            for line in store_order.lines
        ],
        store_order.shipping_address,
        store_order.email,
    )


def for_seller() -> Order:
    """Our order as a seller's store gets it: from a buyer with no platform."""
    lines = [(sku, SKUS[sku], title, quantity, None) for sku, quantity, title in LINES]
    return new_order("ptr_buyer", "ptr_seller", "1001", lines, ADDRESS, "ada@example.com")


def shipping(order: Order, sku: str, quantity: int, carrier: str, number: str) -> Fulfillment:
    """A fulfillment of one of the order's lines, as the order holds it."""
    line = next(li for li in order.line_items if li.sku == sku)
    at = iso_utc(datetime.now(UTC))
    fulfillment = Fulfillment(
        new_id("ful"), "manual", carrier, [number], [], [FulfillmentLine(line.id, quantity)], at, at
    )
    order.fulfillments.append(fulfillment)
    return fulfillment


def listed(adapter: Adapter, since: str, created: bool = False) -> dict[str, datetime]:
    """Every order a store lists as changed (or created) since `since`, page by page."""
    found: dict[str, datetime] = {}
    page = None
    while True:
        answer = adapter.changed_orders(since, page, created=created)
        found.update({o.ref: datetime.fromisoformat(o.updated_at) for o in answer.orders})
        if answer.next_page is None:
            return found
        page = answer.next_page


def test_read_order(open_store):
    buyer, adapter = open_store("buyer")
    ref = buyer.place_order({})

    read = adapter.read_order(ref)

    assert read.ref == ref
    assert {line.ref: (line.sku, line.quantity) for line in read.lines} == buyer.lines_in_store(ref)
    assert sorted((line.sku, line.quantity, line.title) for line in read.lines) == sorted(LINES)
    a = read.shipping_address
    assert (a["name"], a["address1"], a["city"], a["zip"], a["country_code"]) == (*SHIPS_TO, "US")
    assert read.email == "ada@example.com"
    assert adapter.read_order("999999") is None


def test_create_order_once(open_store):
    seller, adapter = open_store("seller")
    order = for_seller()

    created = adapter.create_order(order)

    in_store = seller.lines_in_store(created.ref)
    assert sorted(in_store.values()) == [("AC-100", 2), ("AC-200", 1)]
    assert {li.id: in_store[created.line_refs[li.id]] for li in order.line_items} == {
        li.id: (li.seller_sku, li.quantity) for li in order.line_items
    }
    assert seller.address_in_store(created.ref) == SHIPS_TO
    # A retry (the first answer lost) finds the order instead of creating it again.
    assert adapter.create_order(order) == created
    assert len(seller.store.orders()) == 1


def test_read_fulfillments(platform, open_store):
    seller, adapter = open_store("seller")
    order = for_seller()
    created = adapter.create_order(order)
    assert adapter.read_fulfillments(created.ref) == []
    if platform == "woocommerce":
        return  # WooCommerce sellers record fulfillments in our form: nothing to read back

    placed = {"seller_order_ref": created.ref, "line_items": [{"seller_sku": "AC-100"}]}
    seller.fulfill(placed, "AC-100", 2, "UPS", UPS_1)

    [seen] = adapter.read_fulfillments(created.ref)
    blue = next(li for li in order.line_items if li.seller_sku == "AC-100")
    assert seen.lines == [(created.line_refs[blue.id], 2)]
    assert (seen.status, seen.carrier, seen.tracking_numbers) == ("success", "UPS", [UPS_1])


def test_forward_fulfillment_update_and_mark_shipped(open_store):
    buyer, adapter = open_store("buyer")
    ref = buyer.place_order({})
    order = ours(adapter.read_order(ref))

    blue = shipping(order, "MUG-BLUE", 2, "UPS", UPS_1)
    blue.delivery.buyer_ref = adapter.forward_fulfillment(order, blue)
    assert buyer.tracking_seen(ref) == {UPS_1}
    assert not buyer.sees_shipped(ref)
    # A retry that never heard of the first attempt finds its fulfillment, creates none.
    retry = replace(blue, delivery=Delivery())
    assert adapter.forward_fulfillment(order, retry) == blue.delivery.buyer_ref

    blue.tracking_numbers.append(UPS_2)  # tracking changed in the seller's store
    blue.version += 1
    adapter.forward_fulfillment(order, blue)
    assert buyer.tracking_seen(ref) == {UPS_1, UPS_2}

    red = shipping(order, "MUG-RED", 1, "FedEx", FEDEX)
    red.delivery.buyer_ref = adapter.forward_fulfillment(order, red)
    assert buyer.tracking_seen(ref) == {UPS_1, UPS_2, FEDEX}
    adapter.mark_shipped(order)
    assert buyer.sees_shipped(ref)


def test_changed_orders(simulator, open_store):
    buyer, adapter = open_store("buyer")
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    simulator.clock.set(start)
    old = buyer.place_order({})
    cursor = start + timedelta(hours=1)
    simulator.clock.set(cursor)
    since = iso_utc(cursor)
    assert old not in listed(adapter, since)

    buyer.touch(old)
    assert listed(adapter, since) == {old: cursor}
    assert listed(adapter, since, created=True) == {}  # changed, but created before the cursor

    simulator.clock.advance(60)
    new = buyer.place_order({})
    assert listed(adapter, since, created=True) == {new: cursor + timedelta(seconds=60)}
    assert listed(adapter, since) == {old: cursor, new: cursor + timedelta(seconds=60)}
