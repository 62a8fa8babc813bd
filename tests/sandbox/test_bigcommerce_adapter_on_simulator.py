"""The BigCommerce adapter against its simulator where BigCommerce's API is stricter than the
common contract (tests/sandbox/test_adapter_contract.py) shows: paging, addresses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import ADDRESS

from gateway import platforms, runtime
from gateway.model import Fulfillment, FulfillmentLine, Order, now_iso
from gateway.orders import new_order
from gateway.platforms.bigcommerce import BigCommerceAdapter
from sandbox.bigcommerce import BigCommerceSimulator, BigCommerceStore

MANY = 60  # more products than one page holds by default (50)


@pytest.fixture
def sim() -> Iterator[BigCommerceSimulator]:
    with BigCommerceSimulator() as simulator:
        yield simulator


@pytest.fixture
def store(sim) -> BigCommerceStore:
    return sim.add_store("acme", token="tok-acme", client_secret="acme-secret")


@pytest.fixture
def adapter(app, sim, store) -> BigCommerceAdapter:
    partner = {
        "id": "ptr_acme",
        "platform": "bigcommerce",
        "email": "orders@acme.example",
        "connection": {
            "store_hash": "acme",
            "access_token": "tok-acme",
            "webhook_secret": "acme-secret",
            "api_base_url": sim.base_url,
        },
    }
    with app.app_context():
        return platforms.adapter_for(partner, runtime.store(), runtime.settings())


def test_an_order_of_more_products_than_a_page_is_read_whole(store, adapter):
    placed = store.place_order(
        products=[{"sku": f"MUG-{n}", "name": f"Mug {n}", "quantity": 1} for n in range(MANY)]
    )

    read = adapter.read_order(str(placed["id"]))

    assert sorted(line.sku for line in read.lines) == sorted(f"MUG-{n}" for n in range(MANY))


def test_an_order_of_more_lines_than_a_page_is_created_and_shipped_whole(store, adapter):
    lines = [(f"MUG-{n}", f"AC-{n}", f"Mug {n}", 1, None) for n in range(MANY)]
    order = new_order("ptr_buyer", "ptr_seller", "1001", lines, ADDRESS, "ada@example.com")

    created = adapter.create_order(order)

    assert len(created.line_refs) == MANY
    for line in order.line_items:
        line.buyer_ref = created.line_refs[line.id]
    order.buyer_order_ref = created.ref  # the order, as a buyer store that we forward to
    last = order.line_items[-1]
    at = now_iso()
    number = "1Z5R89390357567127"
    shipping = Fulfillment(
        "ful_1", "manual", "UPS", [number], [], [FulfillmentLine(last.id, 1)], at, at
    )
    adapter.forward_fulfillment(order, shipping)

    [shipment] = store.shipments(int(created.ref))
    assert shipment["items"][0]["order_product_id"] == int(last.buyer_ref)


def seller_order(address: dict) -> Order:
    """Our order of one blue mug for the seller's store, to ship to `address`."""
    lines = [("MUG-BLUE", "AC-100", "Blue mug", 1, None)]
    return new_order("ptr_buyer", "ptr_seller", "1001", lines, address, "ada@example.com")


def test_an_address_without_a_postcode_is_created_in_the_store(store, adapter):
    hong_kong = {
        "name": "Ada Lovelace",
        "address1": "1 Queen's Road Central",
        "city": "Hong Kong",
        "country_code": "HK",
    }

    created = adapter.create_order(seller_order(hong_kong))

    assert store.shipping_addresses(int(created.ref))[0]["country_iso2"] == "HK"


def test_a_state_code_reaches_the_store_as_the_state_name(store, adapter):
    created = adapter.create_order(seller_order(ADDRESS))  # province "IL"

    billing = store.order(int(created.ref))["billing_address"]
    shipping = store.shipping_addresses(int(created.ref))[0]
    assert (billing["state"], shipping["state"]) == ("Illinois", "Illinois")
