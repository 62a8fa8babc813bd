"""An operator's correction of a shipped order's tracking reaches the buyer's store in its
simulator as an update (Shopify fulfillmentTrackingInfoUpdate, BigCommerce shipment update,
WooCommerce tracking items or a note, a `fulfillment.updated` callback); a seller store that
still shows the wrong number does not undo it."""

from __future__ import annotations

import json
import time

import pytest
from conftest import admin_headers, bearer, wait_for

from e2e.sides import SKUS, side

UPS = "1Z5R89390357567127"
UPS_FIXED = "1Z879E930346834440"
UPS_LATER = "1Z410E7W0392751591"
FEDEX = "449044304137821"
REASON = "Support ticket 4411: the label's number was typed wrong."


@pytest.fixture
def env(sides_env):
    return sides_env


def shipped_order(env, buyer_platform: str, seller_platform: str):
    """A buyer's order shipped by the seller in two fulfillments (UPS, then FedEx), both in the
    buyer's store; (buyer side, seller side, buyer's ref, our order)."""
    buyer, seller = side(env, buyer_platform, "buyer"), side(env, seller_platform, "seller")
    buyer.connect()
    seller.connect()
    env.partnership(buyer.partner, seller.partner, SKUS)
    ref = buyer.place_order(seller.partner)
    key = bearer(buyer.partner["api_key"])

    def our_order():
        orders = env.client.get("/api/v1/orders", headers=key).get_json()["orders"]
        return orders[0] if orders and seller.has_order(orders[0]) else None

    order = wait_for(our_order, 20, "the order to reach the seller")
    seller.fulfill(order, "AC-100", 2, "UPS", UPS)
    seller.fulfill(order, "AC-200", 1, "FedEx", FEDEX)
    wait_for(lambda: {UPS, FEDEX} <= buyer.tracking_seen(ref), 20, "both at the buyer")
    wait_for(lambda: buyer.sees_shipped(ref), 20, "the buyer's side to show it shipped")
    order = env.client.get(f"/api/v1/orders/{order['id']}", headers=admin_headers()).get_json()
    assert order["status"] == "shipped"
    return buyer, seller, ref, order


def correct_ups(env, order: dict) -> dict:
    fulfillment = next(f for f in order["fulfillments"] if UPS in f["tracking_numbers"])
    answer = env.client.post(
        f"/api/v1/orders/{order['id']}/fulfillments/{fulfillment['id']}/corrections",
        json={"carrier": "UPS", "tracking_numbers": [UPS_FIXED], "reason": REASON},
        headers=admin_headers(),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["fulfillment"]


def delivered(env, order_id: str, fulfillment_id: str) -> bool:
    current = env.client.get(f"/api/v1/orders/{order_id}", headers=admin_headers()).get_json()
    found = next(f for f in current["fulfillments"] if f["id"] == fulfillment_id)
    return found["delivery"]["state"] == "delivered"


@pytest.mark.parametrize(
    ("buyer_platform", "woo_tracking"),
    [
        ("shopify", None),
        ("bigcommerce", None),
        ("woocommerce", "shipment-tracking"),
        ("woocommerce", "ast"),
        ("woocommerce", None),  # no tracking plugin: a customer note
        ("none", None),
    ],
)
def test_a_correction_after_shipped_reaches_the_buyers_store(env, buyer_platform, woo_tracking):
    env.woo_tracking = woo_tracking
    buyer, _, ref, order = shipped_order(env, buyer_platform, "none")

    fulfillment = correct_ups(env, order)

    wait_for(lambda: UPS_FIXED in buyer.tracking_seen(ref), 20, "the corrected number at the buyer")
    wait_for(lambda: delivered(env, order["id"], fulfillment["id"]), what="the update delivered")
    seen = buyer.tracking_seen(ref)
    if buyer_platform == "none":
        updates = [e for e in env.callbacks.events() if e["type"] == "fulfillment.updated"]
        assert len(updates) == 1
        assert updates[0]["data"]["fulfillment"]["tracking_numbers"] == [UPS_FIXED]
        assert updates[0]["data"]["fulfillment"]["corrections"][0]["reason"] == REASON
    elif buyer_platform == "woocommerce" and woo_tracking is None:
        notes = [n["note"] for n in buyer.store.notes(int(ref)) if UPS_FIXED in n["note"]]
        assert len(notes) == 1 and notes[0].startswith("Tracking updated for")
    else:  # the store's own record is replaced: the wrong number is gone, the other one stays
        assert seen == {UPS_FIXED, FEDEX}
    assert buyer.sees_shipped(ref)


def test_a_shopify_sellers_store_still_showing_the_wrong_number_does_not_undo_it(env, redis):
    buyer, seller, ref, order = shipped_order(env, "shopify", "shopify")

    fulfillment = correct_ups(env, order)
    wait_for(lambda: UPS_FIXED in buyer.tracking_seen(ref), 20, "the corrected number at the buyer")
    wait_for(lambda: delivered(env, order["id"], fulfillment["id"]), what="the update delivered")

    # A resync reads the seller's store, which still shows the wrong number: nothing changes.
    key = admin_headers()
    assert env.client.post(f"/api/v1/orders/{order['id']}/resync", headers=key).status_code == 202
    time.sleep(2)
    current = env.client.get(f"/api/v1/orders/{order['id']}", headers=key).get_json()
    ours = next(f for f in current["fulfillments"] if f["id"] == fulfillment["id"])
    assert ours["tracking_numbers"] == [UPS_FIXED]
    assert ours["delivery"]["state"] == "delivered"
    assert buyer.tracking_seen(ref) == {UPS_FIXED, FEDEX}

    # A later change in the seller's store still applies, noted on the timeline, and reaches
    # the buyer: the number the operator corrected away stays away.
    gid = f"gid://shopify/Order/{order['seller_order_ref']}"
    theirs = next(f for f in seller.store.fulfillments(gid) if UPS in f["tracking_numbers"])
    seller.store.update_tracking(theirs["id"], "UPS", [UPS, UPS_LATER])
    wait_for(lambda: UPS_LATER in buyer.tracking_seen(ref), 20, "the seller's later change")
    assert buyer.tracking_seen(ref) == {UPS_FIXED, UPS_LATER, FEDEX}
    current = env.client.get(f"/api/v1/orders/{order['id']}", headers=key).get_json()
    ours = next(f for f in current["fulfillments"] if f["id"] == fulfillment["id"])
    assert ours["tracking_numbers"] == [UPS_FIXED, UPS_LATER]
    from gateway.store import key as store_key

    timeline = [json.loads(e) for e in redis.lrange(store_key("timeline", order["id"]), 0, -1)]
    notes = [e["message"] for e in timeline if e["type"] == "fulfillment.updated"]
    assert any("after the operator's correction" in note for note in notes), notes
