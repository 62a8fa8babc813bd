"""Our adapter to Shopify shops unlike the simulator's default: a seller's shop in another
currency, a development store with its five orderCreate a minute, a buyer's shop whose app lacks
read_all_orders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from conftest import ADDRESS

from gateway import platforms, runtime
from gateway.model import Fulfillment, FulfillmentLine, now_iso
from gateway.orders import new_order
from gateway.platforms.base import PlatformError
from sandbox.shopify import ShopifySimulator


@pytest.fixture
def sim() -> Iterator[ShopifySimulator]:
    with ShopifySimulator() as simulator:
        yield simulator


@pytest.fixture
def adapter_for(sim, app):
    """Our adapter to a shop made in the simulator with `shop_fields`."""
    with app.app_context():
        port, config = runtime.store(), runtime.settings()

    def make(name: str, **shop_fields):
        domain = f"{name}.myshopify.com"
        sim.add_shop(domain, f"shpat_{name}", f"{name}-secret", **shop_fields)
        connection = {
            "shop_domain": domain,
            "access_token": f"shpat_{name}",
            "webhook_secret": f"{name}-secret",
            "api_base_url": sim.base_url,
        }
        return platforms.adapter_for(
            {"id": f"ptr_{name}", "platform": "shopify", "connection": connection}, port, config
        )

    return make


def an_order():
    lines = [("MUG-BLUE", "AC-100", "Blue mug", 2, None)]
    return new_order("ptr_buyer", "ptr_seller", "1001", lines, ADDRESS, "ada@example.com")


def test_an_order_in_a_euro_shop_is_priced_in_euros(sim, adapter_for):
    adapter = adapter_for("euro", currency="EUR")

    created = adapter.create_order(an_order())

    [order] = sim.shop("euro.myshopify.com").orders_by_id.values()
    assert str(order.id) == created.ref
    assert order.currency == "EUR"


def test_a_development_store_gets_its_orders_paced_and_its_refusal_retried(sim, adapter_for):
    adapter = adapter_for("dev", plan="Development")
    adapter.create_order(an_order())

    with pytest.raises(PlatformError) as paced:  # the next one waits its turn, unsent
        adapter.create_order(an_order())
    assert not paced.value.permanent and 0 < paced.value.retry_after <= 12
    assert [c["status"] for c in sim.calls(shop="dev.myshopify.com", field="orderCreate")] == [200]

    # Another app's five orders fill the minute of a shop we have not created an order in yet.
    other = adapter_for("devtwo", plan="Development")
    for _ in range(5):
        requests.post(
            f"{sim.base_url}/admin/api/2026-10/graphql.json",
            json={
                "query": "mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) "
                "{ userErrors { message } } }",
                "variables": {"o": {"lineItems": [{"title": "Mug", "quantity": 1}]}},
            },
            headers={"X-Shopify-Access-Token": "shpat_devtwo"},
            timeout=10,
        ).raise_for_status()

    with pytest.raises(PlatformError) as refused:
        other.create_order(an_order())
    assert not refused.value.permanent and refused.value.retry_after == pytest.approx(60, abs=1)
    statuses = [c["status"] for c in sim.calls(shop="devtwo.myshopify.com", field="orderCreate")]
    assert statuses == [200] * 5 + [429]


def test_a_buyer_order_past_60_days_needs_read_all_orders(sim, adapter_for):
    adapter = adapter_for("corner")
    shop = sim.shop("corner.myshopify.com")
    old = shop.place_order(
        line_items=[{"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"}],
        shipping_address=ADDRESS,
        created_at=sim.clock.now() - timedelta(days=61),  # a backorder shipped at last
    )
    order = new_order(
        "ptr_buyer",
        "ptr_seller",
        old["legacy_id"],
        [("MUG-BLUE", "AC-100", "Blue mug", 2, old["line_items"][0]["id"])],
        ADDRESS,
        None,
    )
    at = now_iso()
    shipped = Fulfillment(
        "ful_1",
        "shopify",
        "UPS",
        ["1Z5R89390357567127"],
        [],
        [FulfillmentLine(order.line_items[0].id, 2)],
        at,
        at,
    )
    order.fulfillments.append(shipped)
    shop.set_all_orders_access(False)

    with pytest.raises(PlatformError) as refused:
        adapter.forward_fulfillment(order, shipped)
    assert refused.value.permanent and "read_all_orders" in str(refused.value)

    shop.set_all_orders_access(True)  # the scope granted
    adapter.forward_fulfillment(order, shipped)
    assert [f["tracking_numbers"] for f in shop.fulfillments(old["id"])] == [["1Z5R89390357567127"]]
