"""Every buyer platform x seller platform pairing, from the buyer's order to shipped in the
buyer's store (or at its callback URL), with a partial fulfillment on the way."""

from __future__ import annotations

import itertools

import pytest
from conftest import bearer, wait_for

from e2e.sides import SIDES, SKUS, side
from gateway import platforms

PLATFORMS = platforms.names()
UPS = "1Z5R89390357567127"
FEDEX = "449044304137821"


def test_every_registered_platform_has_a_side():
    assert sorted(SIDES) == PLATFORMS


@pytest.mark.parametrize(
    ("buyer_platform", "seller_platform"), list(itertools.product(PLATFORMS, PLATFORMS))
)
def test_order_to_shipped(buyer_platform, seller_platform, sides_env, client, partnership, mailbox):
    env = sides_env
    # every WooCommerce buyer path gets a turn: each tracking plugin, and notes without one
    env.woo_tracking = {"shopify": "shipment-tracking", "none": "ast"}.get(seller_platform)
    buyer, seller = side(env, buyer_platform, "buyer"), side(env, seller_platform, "seller")
    buyer.connect()
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)

    ref = buyer.place_order(seller.partner)
    key = bearer(buyer.partner["api_key"])

    def our_order():
        orders = client.get("/api/v1/orders", headers=key).get_json()["orders"]
        return orders[0] if orders and seller.has_order(orders[0]) else None

    order = wait_for(our_order, 20, "the order to reach the seller")
    assert order["buyer_order_ref"] == ref
    if not platforms.get(seller_platform).fulfillments_from_store:
        wait_for(lambda: mailbox.messages, what="the seller's email with the order link")

    seller.fulfill(order, "AC-100", 2, "UPS", UPS)
    wait_for(lambda: UPS in buyer.tracking_seen(ref), 20, "the partial fulfillment at the buyer")
    current = client.get(f"/api/v1/orders/{order['id']}", headers=key).get_json()
    assert current["status"] == "unshipped"
    assert not buyer.sees_shipped(ref)

    seller.fulfill(order, "AC-200", 1, "FedEx", FEDEX)
    wait_for(lambda: {UPS, FEDEX} <= buyer.tracking_seen(ref), 20, "both fulfillments at the buyer")
    wait_for(
        lambda: (
            client.get(f"/api/v1/orders/{order['id']}", headers=key).get_json()["status"]
            == "shipped"
        ),
        what="the order to turn shipped",
    )
    wait_for(lambda: buyer.sees_shipped(ref), 20, "the buyer's side to show it shipped")
