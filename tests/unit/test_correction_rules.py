"""The operator's correction of a fulfillment's tracking (gateway/orders.py): checked as at
creation, kept with what it was, sent to the buyer once as an update, a held fulfillment
released, and the seller's store still heard afterwards. No Redis, no Flask."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from unit.test_orders import FEDEX_GROUND, FEDEX_URL, UPS_1, UPS_2, UPS_URL, ful, make_order
from unit.test_store_fulfillments import T1, T2, T3, apply, note_types, seen
from unit.test_store_fulfillments import make_order as make_synced_order

from gateway.model import SHIPPED, Delivery, Order, deliveries
from gateway.orders import (
    MAX_REASON_LENGTH,
    ProposedCorrection,
    ProposedFulfillment,
    ProposedLine,
    add_fulfillment,
    apply_correction,
    changes_nothing,
    check_correction,
    check_fulfillment,
    correction_refusal,
    needs_attention,
)

UPS_3 = "1Z410E7W0392751591"


def correction(
    numbers=(UPS_2,), carrier="UPS", urls=(), reason="Seller sent the wrong label number."
) -> ProposedCorrection:
    return ProposedCorrection(
        carrier=carrier, tracking_numbers=list(numbers), reason=reason, tracking_urls=list(urls)
    )


def shipped_order() -> tuple[Order, str]:
    """A shipped order whose one fulfillment (UPS_1) the buyer has, as version 1."""
    order, _ = add_fulfillment(make_order(), ful(("li_1", 2), ("li_2", 1)))
    fulfillment = order.fulfillments[0]
    fulfillment.delivery = Delivery("delivered", 1, None, "gid://shopify/Fulfillment/1", None, 1)
    return order, fulfillment.id


def corrected(order: Order, fid: str, proposal: ProposedCorrection, by: str = "api"):
    checked = check_correction(proposal)
    assert not checked.errors, checked.errors
    assert not changes_nothing(order.fulfillment(fid), checked)
    return apply_correction(order, fid, checked, proposal.reason, by)


# ---- the checks: exactly as at creation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("carrier", "numbers", "urls"),
    [
        ("UPS", ["1Z5R89390357567128"], []),  # bad check digit
        ("UPS", ["1Z999AA10123456784"], []),  # UPS's published sample: a dummy
        ("FedEx", [UPS_1], []),  # not the carrier's format
        ("UPS", [UPS_1, UPS_1], []),  # repeated
        ("UPS", [], []),  # none
        ("", [UPS_1], []),  # no carrier
        ("UPS", [UPS_1], ["javascript:alert(1)"]),  # a bad URL
        ("UPS", [UPS_1, UPS_2], [UPS_URL % UPS_1]),  # one URL for two numbers
        ("Acme Freight", ["ACME123"], []),  # a carrier we can't build links for, no URL
    ],
)
def test_tracking_is_refused_exactly_as_at_creation(carrier, numbers, urls):
    at_creation = check_fulfillment(
        make_order(),
        ProposedFulfillment(
            line_items=[ProposedLine(quantity=1, line_item_id="li_1")],
            carrier=carrier,
            tracking_numbers=numbers,
            tracking_urls=urls,
        ),
    ).errors
    errors = check_correction(correction(numbers, carrier, urls)).errors
    assert errors
    assert errors == at_creation  # the same function: the same fields, the same words


@pytest.mark.parametrize("reason", ["", "   ", "x" * (MAX_REASON_LENGTH + 1)])
def test_a_reason_is_required_up_to_500_characters(reason):
    assert list(check_correction(correction(reason=reason)).errors) == ["reason"]


def test_a_reason_of_500_characters_passes():
    assert not check_correction(correction(reason="x" * MAX_REASON_LENGTH)).errors


def test_numbers_and_carrier_are_normalized_and_urls_built_as_at_creation():
    checked = check_correction(correction([" 1z5r 8939 0357 5671 27 "], carrier="ups"))
    assert not checked.errors
    assert checked.carrier == "UPS"
    assert checked.tracking_numbers == [UPS_1]
    assert checked.tracking_urls == [UPS_URL % UPS_1]


def test_the_same_tracking_changes_nothing():
    order, fid = shipped_order()
    checked = check_correction(correction([UPS_1]))
    assert changes_nothing(order.fulfillment(fid), checked)
    assert not changes_nothing(order.fulfillment(fid), check_correction(correction([UPS_2])))


def test_a_cancelled_fulfillment_is_refused_other_states_are_not():
    fulfillment = ful(("li_1", 1))
    assert correction_refusal(fulfillment) is None
    fulfillment.status = "held"
    assert correction_refusal(fulfillment) is None
    fulfillment.status = "cancelled"
    assert correction_refusal(fulfillment)


# ---- applying it ------------------------------------------------------------------------------


def test_a_correction_after_shipped_replaces_the_tracking_and_keeps_what_it_was():
    order, fid = shipped_order()
    before = order.to_doc()

    done = corrected(order, fid, correction([FEDEX_GROUND], carrier="FedEx"), by="ops@example.com")

    assert order.to_doc() == before  # pure
    fulfillment = done.order.fulfillment(fid)
    assert fulfillment.id == fid  # keeps its id
    assert fulfillment.carrier == "FedEx"
    assert fulfillment.tracking_numbers == [FEDEX_GROUND]  # replaced, not merged
    assert fulfillment.tracking_urls == [FEDEX_URL % FEDEX_GROUND]
    (record,) = fulfillment.corrections
    assert record.by == "ops@example.com"
    assert record.reason == "Seller sent the wrong label number."
    assert record.at
    assert record.before == {
        "carrier": "UPS",
        "tracking_numbers": [UPS_1],
        "tracking_urls": [UPS_URL % UPS_1],
    }
    assert done.order.status == SHIPPED and not done.became_shipped
    assert done.forward and not done.released
    assert "ops@example.com" in done.note and UPS_1 in done.note and FEDEX_GROUND in done.note


def test_a_correction_goes_to_the_buyer_once_as_an_update():
    order, fid = shipped_order()
    order.fulfillments[0].delivery.attempts = 3

    fulfillment = corrected(order, fid, correction()).order.fulfillment(fid)

    assert fulfillment.version == 2  # one new version: one update, one event
    assert fulfillment.delivery.state == "pending"
    assert fulfillment.delivery.attempts == 0
    assert fulfillment.delivery.first_attempt_at is None
    assert fulfillment.delivery.buyer_ref == "gid://shopify/Fulfillment/1"  # an update there
    assert fulfillment.delivery.delivered_version == 1


def test_a_failed_delivery_is_pending_again_after_a_correction():
    order, fid = shipped_order()
    order.fulfillments[0].delivery = Delivery("failed", 6, "the buyer's store said no")

    delivery = corrected(order, fid, correction()).order.fulfillment(fid).delivery

    assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 0, None)


def test_two_corrections_keep_both_records_oldest_first():
    order, fid = shipped_order()
    once = corrected(order, fid, correction([UPS_2], reason="first")).order

    twice = corrected(once, fid, correction([UPS_3], reason="second")).order

    fulfillment = twice.fulfillment(fid)
    assert [c.reason for c in fulfillment.corrections] == ["first", "second"]
    assert fulfillment.corrections[1].before["tracking_numbers"] == [UPS_2]
    assert fulfillment.version == 3


def test_corrections_survive_the_document_round_trip():
    order, fid = shipped_order()
    done = corrected(order, fid, correction()).order
    assert Order.from_doc(done.to_doc()) == done


def test_a_held_fulfillment_whose_new_numbers_pass_is_released_and_ships_the_order():
    held = apply(make_synced_order(), seen(numbers=["1Z999AA10123456784"]))
    (fulfillment,) = held.order.fulfillments
    assert fulfillment.status == "held"

    done = corrected(held.order, fulfillment.id, correction([UPS_1]))

    released = done.order.fulfillment(fulfillment.id)
    assert released.status == "active" and released.held_reason is None
    assert done.released and done.forward and done.became_shipped
    assert done.order.status == SHIPPED
    assert released.delivery.state == "pending"
    assert f"forward:{fulfillment.id}" in deliveries(done.order)
    assert "released" in done.note


def test_a_held_fulfillment_that_does_not_fit_stays_held():
    order = make_synced_order()
    first = apply(order, seen(numbers=[UPS_1]))  # covers everything
    held = apply(
        first.order,
        seen(numbers=["1Z999AA10123456784"], ref="gid://shopify/Fulfillment/2", updated_at=T2),
    )
    fulfillment = held.order.fulfillments[1]
    assert fulfillment.status == "held"

    done = corrected(held.order, fulfillment.id, correction([UPS_2]))

    still = done.order.fulfillment(fulfillment.id)
    assert still.status == "held"
    assert still.tracking_numbers == [UPS_2]
    assert "more than remain" in still.held_reason
    assert not done.forward and not done.released


# ---- the seller's store afterwards ------------------------------------------------------------


def synced_and_corrected() -> tuple[Order, str]:
    """A synced fulfillment (the store shows UPS_1, updated T1), delivered, then corrected to
    UPS_2 by the operator."""
    synced = apply(make_synced_order(), seen(numbers=[UPS_1], updated_at=T1))
    order = synced.order
    fulfillment = order.fulfillments[0]
    fulfillment.delivery = Delivery("delivered", 1, None, "gid://shopify/Fulfillment/9", None, 1)
    return corrected(order, fulfillment.id, correction([UPS_2])).order, fulfillment.id


@pytest.mark.parametrize("updated_at", [T1, T2, None])
def test_the_store_still_showing_the_wrong_number_does_not_undo_a_correction(updated_at):
    order, fid = synced_and_corrected()

    synced = apply(order, seen(numbers=[UPS_1], updated_at=updated_at))

    assert not synced.changed
    assert synced.order.fulfillment(fid).tracking_numbers == [UPS_2]
    assert synced.order.fulfillment(fid).carrier == "UPS"


def test_a_later_change_in_the_sellers_store_still_applies_noted():
    order, fid = synced_and_corrected()

    synced = apply(order, seen(numbers=[UPS_1, UPS_3], updated_at=T3))

    fulfillment = synced.order.fulfillment(fid)
    assert fulfillment.tracking_numbers == [UPS_2, UPS_3]  # the wrong one stays away
    assert fulfillment.tracking_urls == [UPS_URL % UPS_2, UPS_URL % UPS_3]
    assert fulfillment.version == 3
    assert fulfillment.delivery.state == "pending"
    assert synced.forward == [fid]
    assert note_types(synced) == ["fulfillment.updated"]
    assert "after the operator's correction" in synced.notes[0][1]


def test_a_cancellation_in_the_sellers_store_after_a_correction_applies():
    order, fid = synced_and_corrected()

    synced = apply(order, seen(numbers=[UPS_1], status="cancelled", updated_at=T3))

    assert synced.order.fulfillment(fid).status == "cancelled"
    assert note_types(synced) == ["fulfillment.cancelled"]


# ---- what needs a person (the console's "needs attention") ------------------------------------


NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def test_a_quiet_order_needs_no_attention():
    order, _ = shipped_order()
    order.routing.state = "delivered"
    order.shipped_notice = Delivery("delivered", 1)
    assert needs_attention(order, NOW) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: setattr(o.fulfillments[0].delivery, "state", "failed"), "buyer failed"),
        (lambda o: setattr(o.routing, "state", "failed"), "the order to the seller failed"),
        (lambda o: setattr(o.fulfillments[0], "status", "held"), "a fulfillment is held"),
        (lambda o: setattr(o.routing, "state", "waiting"), "waiting on payment"),
        (
            lambda o: setattr(o.shipped_notice, "first_attempt_at", "2026-03-03T11:49:00.000Z"),
            "the shipped notice pending for over 10 minutes",
        ),
    ],
)
def test_what_needs_attention(change, reason):
    order, _ = shipped_order()
    order.routing.state = "delivered"
    order.shipped_notice = Delivery("pending", 1)
    change(order)
    assert any(reason in text for text in needs_attention(order, NOW)), needs_attention(order, NOW)


def test_pending_counts_from_the_first_attempt_and_connections_that_are_down():
    order, _ = shipped_order()
    order.routing.state = "delivered"
    order.shipped_notice = Delivery("pending", 1, first_attempt_at="2026-03-03T11:55:00.000Z")
    assert needs_attention(order, NOW) == []  # five minutes: not yet
    assert needs_attention(order, NOW, {order.buyer_id}) == [
        "the shipped notice waits on a store connection"
    ]
