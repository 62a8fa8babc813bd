"""The pure rules for fulfillments synced from a seller's store (DESIGN.md rules 1, 2, 5 and 8):
apply_store_fulfillments and split_by_seller in gateway/orders.py. No Redis, no Flask."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.model import (
    SHIPPED,
    UNSHIPPED,
    Delivery,
    FulfillmentLine,
    LineItem,
    ObservedFulfillment,
    Order,
    deliveries,
)
from gateway.orders import (
    apply_store_fulfillments,
    fulfilled_quantities,
    remaining,
    split_by_seller,
)
from gateway.platforms.base import StoreLine

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s"
SELLER_LINE_1 = "gid://shopify/LineItem/13822279467265"
SELLER_LINE_2 = "gid://shopify/LineItem/13822279499999"
NOT_OURS = "gid://shopify/LineItem/99999"
FULFILLMENT_REF = "gid://shopify/Fulfillment/4903611252993"
T0 = "2026-03-03T13:00:00Z"
T1 = "2026-03-03T14:00:00Z"
T2 = "2026-03-03T15:00:00Z"
T3 = "2026-03-03T16:00:00Z"
ALL_LINES = ((SELLER_LINE_1, 2), (SELLER_LINE_2, 1))


def make_order() -> Order:
    """An order routed to a Shopify seller: 2 x AC-100 (li_1) and 1 x AC-200 (li_2)."""
    return Order(
        id="ord_test",
        buyer_id="ptr_buyer",
        seller_id="ptr_seller",
        buyer_order_ref="820982911946154508",
        line_items=[
            LineItem("li_1", "MUG-BLUE", "AC-100", "Blue mug", 2, seller_ref=SELLER_LINE_1),
            LineItem("li_2", "MUG-RED", "AC-200", "Red mug", 1, seller_ref=SELLER_LINE_2),
        ],
        created_at="2026-03-02T15:15:05.000Z",
        updated_at="2026-03-02T15:15:05.000Z",
        seller_order_ref="5523429081345",
    )


def seen(
    *,
    numbers=(UPS_1,),
    carrier="UPS",
    urls=(),
    lines=ALL_LINES,
    status="success",
    updated_at: str | None = T1,
    ref=FULFILLMENT_REF,
) -> ObservedFulfillment:
    return ObservedFulfillment(
        source_ref=ref,
        status=status,
        carrier=carrier,
        tracking_numbers=list(numbers),
        tracking_urls=list(urls),
        lines=list(lines),
        updated_at=updated_at,
    )


def apply(order: Order, *observed: ObservedFulfillment):
    return apply_store_fulfillments(order, "shopify", list(observed))


def note_types(synced) -> list[str]:
    return [kind for kind, _, _ in synced.notes]


# ---- a new fulfillment ---------------------------------------------------------------------------


def test_a_new_fulfillment_applies_and_is_forwarded():
    order = make_order()
    before = order.to_doc()

    synced = apply(order, seen())

    assert order.to_doc() == before  # pure: the input is not changed
    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "active"
    assert fulfillment.source == "shopify"
    assert fulfillment.source_ref == FULFILLMENT_REF
    assert fulfillment.source_updated_at == T1
    assert fulfillment.carrier == "UPS"
    assert fulfillment.tracking_numbers == [UPS_1]
    assert fulfillment.tracking_urls == [UPS_URL % UPS_1]  # built for a known carrier
    assert fulfillment.line_items == [FulfillmentLine("li_1", 2), FulfillmentLine("li_2", 1)]
    assert fulfillment.version == 1
    assert fulfillment.delivery.state == "pending"
    assert synced.forward == [fulfillment.id]
    assert synced.held == []
    assert note_types(synced) == ["fulfillment.created"]
    assert synced.changed
    assert synced.became_shipped
    assert synced.order.status == SHIPPED
    assert synced.order.shipped_notice == Delivery()
    assert f"forward:{fulfillment.id}" in deliveries(synced.order)


def test_a_partial_fulfillment_counts_without_shipping_the_order():
    synced = apply(make_order(), seen(lines=[(SELLER_LINE_1, 1)]))

    assert synced.forward == [synced.order.fulfillments[0].id]
    assert remaining(synced.order) == {"li_1": 1, "li_2": 1}
    assert synced.order.status == UNSHIPPED
    assert not synced.became_shipped


def test_the_stores_urls_are_kept_as_given():
    url = "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums=" + UPS_1
    synced = apply(make_order(), seen(urls=[url]))

    assert synced.order.fulfillments[0].tracking_urls == [url]


def test_numbers_are_normalized_and_the_carrier_named_canonically():
    synced = apply(
        make_order(), seen(numbers=["1z5r 8939-0357 5671 27"], carrier="United Parcel Service")
    )

    fulfillment = synced.order.fulfillments[0]
    assert fulfillment.tracking_numbers == [UPS_1]
    assert fulfillment.carrier == "UPS"
    assert synced.forward == [fulfillment.id]


def test_a_fulfillment_already_cancelled_in_the_store_is_not_added():
    synced = apply(make_order(), seen(status="cancelled"))

    assert synced.order.fulfillments == []
    assert not synced.changed


def test_more_than_remains_is_held_not_counted():
    synced = apply(make_order(), seen(lines=[(SELLER_LINE_1, 3)]))

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "held"
    assert "more than remain" in fulfillment.held_reason
    assert synced.forward == []
    assert synced.held == [fulfillment.id]
    assert remaining(synced.order) == {"li_1": 2, "li_2": 1}


# ---- idempotence and ordering --------------------------------------------------------------------


def test_the_same_observation_twice_changes_nothing():
    first = apply(make_order(), seen())

    second = apply(first.order, seen())

    assert not second.changed
    assert second.forward == [] and second.held == [] and second.notes == []
    assert not second.became_shipped
    assert second.order.to_doc() == first.order.to_doc()


def test_the_same_observation_twice_in_one_read_adds_one_fulfillment():
    synced = apply(make_order(), seen(lines=[(SELLER_LINE_1, 1)]), seen(lines=[(SELLER_LINE_1, 1)]))

    assert len(synced.order.fulfillments) == 1
    assert fulfilled_quantities(synced.order) == {"li_1": 1, "li_2": 0}
    assert len(synced.forward) == 1


@pytest.mark.parametrize(
    "late",
    [
        seen(numbers=[UPS_2], updated_at=T1),
        seen(status="cancelled", updated_at=T1),
    ],
    ids=["older-tracking", "older-cancellation"],
)
def test_an_older_observation_is_ignored(late):
    applied = apply(make_order(), seen(updated_at=T2))

    synced = apply(applied.order, late)

    assert not synced.changed
    assert synced.order.to_doc() == applied.order.to_doc()
    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "active"
    assert fulfillment.tracking_numbers == [UPS_1]
    assert fulfillment.source_updated_at == T2


# ---- cancelled -----------------------------------------------------------------------------------


def test_a_cancelled_fulfillment_stops_counting():
    status = "cancelled"  # adapters translate their stores' words for it (Shopify's ERROR...)
    applied = apply(make_order(), seen(lines=[(SELLER_LINE_1, 2)]))
    assert remaining(applied.order) == {"li_1": 0, "li_2": 1}

    synced = apply(applied.order, seen(lines=[(SELLER_LINE_1, 2)], status=status, updated_at=T2))

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "cancelled"
    assert fulfillment.source_updated_at == T2
    assert remaining(synced.order) == {"li_1": 2, "li_2": 1}
    assert synced.forward == []
    assert note_types(synced) == ["fulfillment.cancelled"]
    assert synced.order.status == UNSHIPPED
    assert f"forward:{fulfillment.id}" not in deliveries(synced.order)


def test_a_cancelled_fulfillment_leaves_room_for_a_new_one():
    applied = apply(make_order(), seen(lines=[(SELLER_LINE_1, 2)]))
    cancelled = apply(
        applied.order, seen(lines=[(SELLER_LINE_1, 2)], status="cancelled", updated_at=T2)
    )

    synced = apply(
        cancelled.order, seen(ref="gid://shopify/Fulfillment/2", numbers=[UPS_2], updated_at=T3)
    )

    assert [f.status for f in synced.order.fulfillments] == ["cancelled", "active"]
    assert synced.became_shipped


def test_a_shipped_order_never_goes_back_when_a_fulfillment_is_cancelled():
    shipped = apply(make_order(), seen())
    assert shipped.order.status == SHIPPED
    shipped_at = shipped.order.shipped_at

    synced = apply(shipped.order, seen(status="cancelled", updated_at=T2))

    assert synced.order.fulfillments[0].status == "cancelled"
    assert remaining(synced.order) == {"li_1": 2, "li_2": 1}
    assert synced.order.status == SHIPPED
    assert synced.order.shipped_at == shipped_at
    assert not synced.became_shipped


def test_a_cancelled_fulfillment_is_not_revived_by_a_later_success():
    applied = apply(make_order(), seen())
    cancelled = apply(applied.order, seen(status="cancelled", updated_at=T2))

    synced = apply(cancelled.order, seen(numbers=[UPS_2], updated_at=T3))

    assert synced.order.fulfillments[0].status == "cancelled"
    assert synced.forward == []


# ---- held for a dummy tracking number, released by a correction ----------------------------------


@pytest.mark.parametrize(
    ("carrier", "number"),
    [("UPS", "1Z999AA10123456784"), ("DHL", "0000000000"), ("FedEx", "TEST-12345678"), ("UPS", "")],
    ids=["ups-sample", "repeated-digit", "placeholder-word", "no-number"],
)
def test_a_dummy_tracking_number_holds_the_fulfillment(carrier, number):
    synced = apply(make_order(), seen(carrier=carrier, numbers=[number] if number else []))

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "held"
    assert fulfillment.held_reason
    assert synced.held == [fulfillment.id]
    assert synced.forward == []
    assert note_types(synced) == ["fulfillment.held"]
    assert synced.notes[0][2] == "warning"
    assert fulfilled_quantities(synced.order) == {"li_1": 0, "li_2": 0}  # not counted
    assert synced.order.status == UNSHIPPED
    assert not synced.became_shipped
    assert f"forward:{fulfillment.id}" not in deliveries(synced.order)


def test_a_held_fulfillment_stays_held_while_the_number_is_still_a_dummy():
    held = apply(make_order(), seen(numbers=["1Z999AA10123456784"]))

    synced = apply(held.order, seen(numbers=["0000000000"], carrier="DHL", updated_at=T2))

    assert synced.order.fulfillments[0].status == "held"
    assert not synced.changed
    assert synced.held == []  # the seller was told already


def test_a_corrected_observation_releases_a_held_fulfillment():
    held = apply(make_order(), seen(numbers=["1Z999AA10123456784"]))
    (fulfillment,) = held.order.fulfillments

    synced = apply(held.order, seen(numbers=[UPS_1], updated_at=T2))

    released = synced.order.fulfillment(fulfillment.id)
    assert released.status == "active"
    assert released.held_reason is None
    assert released.tracking_numbers == [UPS_1]  # the correction replaces the dummy
    assert released.tracking_urls == [UPS_URL % UPS_1]
    assert released.source_updated_at == T2
    assert synced.forward == [fulfillment.id]
    assert synced.held == []
    assert note_types(synced) == ["fulfillment.released"]
    assert synced.became_shipped
    assert synced.order.status == SHIPPED


# ---- numbers in a format we do not know ----------------------------------------------------------


def test_a_number_in_an_unknown_format_passes_flagged():
    url = "https://track.example-carrier.com/ZX1234567890"

    synced = apply(make_order(), seen(carrier="", numbers=["zx1234567890"], urls=[url]))

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "active"
    assert fulfillment.tracking_numbers == ["ZX1234567890"]
    assert fulfillment.tracking_urls == [url]
    assert synced.forward == [fulfillment.id]
    assert synced.held == []
    assert note_types(synced) == ["fulfillment.created", "tracking.unverified"]
    unverified = synced.notes[1]
    assert "ZX1234567890" in unverified[1]
    assert unverified[2] == "warning"


def test_a_number_of_a_carrier_we_cannot_check_passes_flagged():
    url = "https://www.canadapost-postescanada.ca/track-reperage/en#/details/7023210039414604"

    synced = apply(
        make_order(), seen(carrier="Canada Post", numbers=["7023210039414604"], urls=[url])
    )

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.status == "active"
    assert fulfillment.carrier == "Canada Post"
    assert fulfillment.tracking_urls == [url]
    assert "tracking.unverified" in note_types(synced)


@pytest.mark.parametrize("first", ["1Z999AA10123456784", UPS_1], ids=["release", "update"])
def test_an_unknown_format_number_arriving_later_is_flagged(first):
    url = "https://track.example-carrier.com/ZX1234567890"
    applied = apply(make_order(), seen(numbers=[first]))

    synced = apply(
        applied.order, seen(carrier="", numbers=["ZX1234567890"], urls=[url], updated_at=T2)
    )

    assert synced.forward  # released / updated and forwarded
    assert "tracking.unverified" in note_types(synced)


# ---- tracking changed after shipping (rule 8) ----------------------------------------------------


def _delivered(synced, buyer_ref="gid://shopify/Fulfillment/255858046") -> Order:
    """The order after the forward job delivered its only fulfillment (version 1)."""
    order = Order.from_doc(synced.order.to_doc())
    fulfillment = order.fulfillments[0]
    fulfillment.delivery = Delivery(
        state="delivered",
        attempts=1,
        buyer_ref=buyer_ref,
        delivered_version=1,
    )
    return order


def test_a_tracking_change_after_shipping_is_applied_and_forwarded_again():
    order = _delivered(apply(make_order(), seen()))
    assert order.status == SHIPPED

    synced = apply(order, seen(numbers=[UPS_2], updated_at=T2))

    fulfillment = synced.order.fulfillments[0]
    assert fulfillment.tracking_numbers == [UPS_1, UPS_2]  # merged: the old one is kept
    assert fulfillment.tracking_urls == [UPS_URL % UPS_1, UPS_URL % UPS_2]
    assert fulfillment.version == 2
    assert fulfillment.source_updated_at == T2
    assert fulfillment.delivery.state == "pending"
    assert fulfillment.delivery.attempts == 0
    assert fulfillment.delivery.buyer_ref == "gid://shopify/Fulfillment/255858046"  # update there
    assert fulfillment.delivery.delivered_version == 1
    assert synced.forward == [fulfillment.id]
    assert note_types(synced) == ["fulfillment.updated"]
    assert synced.order.status == SHIPPED
    assert not synced.became_shipped
    assert f"forward:{fulfillment.id}" in deliveries(synced.order)


def test_a_tracking_change_listing_old_and_new_numbers_merges_without_duplicates():
    order = _delivered(apply(make_order(), seen()))

    synced = apply(order, seen(numbers=[UPS_2, UPS_1], updated_at=T2))

    assert synced.order.fulfillments[0].tracking_numbers == [UPS_1, UPS_2]
    assert synced.order.fulfillments[0].version == 2


def test_the_same_tracking_change_twice_bumps_the_version_once():
    order = _delivered(apply(make_order(), seen()))
    changed = apply(order, seen(numbers=[UPS_2], updated_at=T2))

    again = apply(changed.order, seen(numbers=[UPS_2], updated_at=T2))
    later = apply(changed.order, seen(numbers=[UPS_1, UPS_2], updated_at=T3))

    assert not again.changed
    assert again.order.fulfillments[0].version == 2
    assert not later.forward
    assert later.order.fulfillments[0].version == 2


def test_a_change_to_a_dummy_number_after_shipping_is_not_applied():
    order = _delivered(apply(make_order(), seen()))

    synced = apply(order, seen(numbers=["1Z999AA10123456784"], updated_at=T2))

    fulfillment = synced.order.fulfillments[0]
    assert fulfillment.tracking_numbers == [UPS_1]
    assert fulfillment.version == 1
    assert fulfillment.delivery.state == "delivered"
    assert synced.forward == []


def test_a_tracking_change_while_the_first_forward_is_pending_keeps_it_pending():
    first = apply(make_order(), seen())  # delivery still pending, never sent

    synced = apply(first.order, seen(numbers=[UPS_2], updated_at=T2))

    fulfillment = synced.order.fulfillments[0]
    assert fulfillment.version == 2
    assert fulfillment.delivery == first.order.fulfillments[0].delivery
    assert synced.forward == [fulfillment.id]


# ---- lines ---------------------------------------------------------------------------------------


def test_lines_not_mapped_to_ours_are_ignored():
    synced = apply(
        make_order(),
        seen(lines=[(SELLER_LINE_1, 1), (NOT_OURS, 5), (SELLER_LINE_2, 0)]),
    )

    (fulfillment,) = synced.order.fulfillments
    assert fulfillment.line_items == [FulfillmentLine("li_1", 1)]
    assert fulfilled_quantities(synced.order) == {"li_1": 1, "li_2": 0}


def test_a_fulfillment_of_only_lines_not_ours_is_not_added():
    synced = apply(make_order(), seen(lines=[(NOT_OURS, 2)]))

    assert synced.order.fulfillments == []
    assert not synced.changed


def test_lines_of_an_order_without_seller_line_ids_map_to_nothing():
    order = make_order()
    order.line_items = [replace(li, seller_ref=None) for li in order.line_items]

    synced = apply(order, seen())

    assert synced.order.fulfillments == []


def test_the_same_store_line_twice_is_summed():
    synced = apply(make_order(), seen(lines=[(SELLER_LINE_1, 1), (SELLER_LINE_1, 1)]))

    assert synced.order.fulfillments[0].line_items == [FulfillmentLine("li_1", 2)]


# ---- split_by_seller -----------------------------------------------------------------------------


def test_split_by_seller_groups_mapped_skus_and_leaves_the_rest_out():
    blue = StoreLine("gid://shopify/LineItem/1", "MUG-BLUE", 2, "Blue mug")
    red = StoreLine("gid://shopify/LineItem/2", "MUG-RED", 1, "Red mug")
    green = StoreLine("gid://shopify/LineItem/3", "MUG-GREEN", 4, "Green mug")
    wrap = StoreLine("gid://shopify/LineItem/4", "GIFT-WRAP", 1, "Gift wrap")
    no_sku = StoreLine("gid://shopify/LineItem/5", "", 1, "Custom item")
    none_left = StoreLine("gid://shopify/LineItem/6", "MUG-BLUE", 0, "Removed blue mug")
    sku_map = {
        "MUG-BLUE": ("ptr_a", "AC-100"),
        "MUG-GREEN": ("ptr_a", "AC-300"),
        "MUG-RED": ("ptr_b", "BX-7"),
    }

    split = split_by_seller([blue, wrap, red, no_sku, green, none_left], sku_map)

    assert split == {
        "ptr_a": [(blue, "AC-100"), (green, "AC-300")],
        "ptr_b": [(red, "BX-7")],
    }


def test_split_by_seller_of_only_unmapped_skus_is_empty():
    lines = [StoreLine("gid://shopify/LineItem/4", "GIFT-WRAP", 1, "Gift wrap")]

    assert split_by_seller(lines, {"MUG-BLUE": ("ptr_a", "AC-100")}) == {}
