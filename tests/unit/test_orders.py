"""The pure rules of gateway/orders.py (DESIGN.md rules 1, 2, 4 and 5): no Redis, no Flask."""

from __future__ import annotations

import itertools
import json

import pytest

from gateway.model import (
    CANCELLED,
    PAID,
    SHIPPED,
    UNPAID,
    UNSHIPPED,
    Delivery,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    Order,
    deliveries,
)
from gateway.orders import (
    MAX_TRACKING_NUMBERS,
    MAX_URL_LENGTH,
    ProposedFulfillment,
    ProposedLine,
    add_fulfillment,
    check_fulfillment,
    fulfilled_quantities,
    hold,
    is_covered,
    manual_fulfillment_refusal,
    missing_address,
    new_fulfillment,
    not_released,
    recheck_waiting,
    remaining,
    waiting_for,
)

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
UPS_BAD_CHECK = "1Z5R89390357567128"
FEDEX_GROUND = "449044304137821"
USPS_1 = "9400111899223197428497"
DHL_1 = "3318810025"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s"
FEDEX_URL = "https://www.fedex.com/apps/fedextrack/?tracknumbers=%s"


# ---- builders ----------------------------------------------------------------------------------


def make_order(*lines: tuple[str, int], status: str = UNSHIPPED) -> Order:
    """An order whose lines are (seller_sku, quantity), with ids li_1, li_2, ..."""
    lines = lines or (("AC-100", 2), ("AC-200", 1))
    return Order(
        id="ord_test",
        buyer_id="ptr_buyer",
        seller_id="ptr_seller",
        buyer_order_ref="1001",
        line_items=[
            LineItem(
                id=f"li_{n}",
                sku=f"BUY-{sku}",
                seller_sku=sku,
                title=f"Item {sku}",
                quantity=quantity,
            )
            for n, (sku, quantity) in enumerate(lines, start=1)
        ],
        created_at="2024-01-01T00:00:00.000Z",
        updated_at="2024-01-01T00:00:00.000Z",
        status=status,
    )


_counter = itertools.count(1)


def ful(*lines: tuple[str, int], number: str = UPS_1) -> Fulfillment:
    """A fulfillment of (line_item_id, quantity) pairs."""
    return Fulfillment(
        id=f"ful_{next(_counter)}",
        source="manual",
        carrier="UPS",
        tracking_numbers=[number],
        tracking_urls=[UPS_URL % number],
        line_items=[FulfillmentLine(line_id, qty) for line_id, qty in lines],
        created_at="2024-01-02T00:00:00.000Z",
        updated_at="2024-01-02T00:00:00.000Z",
    )


def proposal(
    lines: list[ProposedLine] | None = None,
    carrier: str = "UPS",
    numbers: list[str] | None = None,
    urls: list[str] | None = None,
) -> ProposedFulfillment:
    return ProposedFulfillment(
        line_items=[ProposedLine(quantity=1, line_item_id="li_1")] if lines is None else lines,
        carrier=carrier,
        tracking_numbers=[UPS_1] if numbers is None else numbers,
        tracking_urls=urls or [],
    )


def errors_of(order: Order, prop: ProposedFulfillment) -> dict[str, list[str]]:
    return check_fulfillment(order, prop).errors


# ---- remaining quantities and coverage (rules 1, 2) ------------------------------------------


def test_new_order_has_nothing_fulfilled_and_everything_remaining():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    assert fulfilled_quantities(order) == {"li_1": 0, "li_2": 0}
    assert remaining(order) == {"li_1": 2, "li_2": 1}
    assert not is_covered(order)


def test_remaining_subtracts_every_fulfillment_per_line():
    order = make_order(("AC-100", 5), ("AC-200", 3))
    order.fulfillments = [ful(("li_1", 2)), ful(("li_1", 1), ("li_2", 3))]
    assert fulfilled_quantities(order) == {"li_1": 3, "li_2": 3}
    assert remaining(order) == {"li_1": 2, "li_2": 0}
    assert not is_covered(order)


def test_covered_only_when_every_line_reaches_its_quantity():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    order.fulfillments = [ful(("li_2", 1))]
    assert not is_covered(order)
    order.fulfillments.append(ful(("li_1", 1)))
    assert not is_covered(order)
    order.fulfillments.append(ful(("li_1", 1)))
    assert is_covered(order)
    assert remaining(order) == {"li_1": 0, "li_2": 0}


# ---- the shipped transition (rule 2) -----------------------------------------------------------


def test_partial_fulfillment_leaves_order_unshipped():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    updated, shipped = add_fulfillment(order, ful(("li_1", 2)))
    assert shipped is False
    assert updated.status == UNSHIPPED
    assert updated.shipped_at is None
    assert updated.shipped_notice is None
    assert remaining(updated) == {"li_1": 0, "li_2": 1}


def test_last_unit_ships_the_order():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    order, _ = add_fulfillment(order, ful(("li_1", 2)))
    updated, shipped = add_fulfillment(order, ful(("li_2", 1)))
    assert shipped is True
    assert updated.status == SHIPPED
    assert updated.shipped_at == updated.updated_at
    assert updated.shipped_notice == Delivery()
    assert [len(f.line_items) for f in updated.fulfillments] == [1, 1]


def test_one_fulfillment_covering_everything_ships_at_once():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    updated, shipped = add_fulfillment(order, ful(("li_1", 2), ("li_2", 1)))
    assert shipped is True
    assert updated.status == SHIPPED


def test_add_fulfillment_leaves_the_given_order_untouched():
    order = make_order(("AC-100", 1))
    before = order.to_doc()
    updated, _ = add_fulfillment(order, ful(("li_1", 1)))
    assert order.to_doc() == before
    assert order.fulfillments == []
    assert updated is not order and len(updated.fulfillments) == 1


@pytest.mark.parametrize("sequence", list(itertools.permutations(["li_1", "li_1", "li_1", "li_2"])))
def test_shipped_exactly_at_the_last_unit_in_any_order(sequence):
    order = make_order(("AC-100", 3), ("AC-200", 1))
    for step, line_id in enumerate(sequence, start=1):
        order, shipped = add_fulfillment(order, ful((line_id, 1)))
        last = step == len(sequence)
        assert shipped is last
        assert order.status == (SHIPPED if last else UNSHIPPED)
        assert (order.shipped_at is not None) is last


def test_shipped_never_goes_back_and_ships_only_once():
    order = make_order(("AC-100", 1))
    order, shipped = add_fulfillment(order, ful(("li_1", 1)))
    assert shipped and order.status == SHIPPED
    shipped_at = order.shipped_at
    # Nothing more can be added to a fully covered order...
    with pytest.raises(ValueError):
        add_fulfillment(order, ful(("li_1", 1)))
    assert order.status == SHIPPED and order.shipped_at == shipped_at
    # ...and the state survives a trip through the store's document.
    assert Order.from_doc(json.loads(json.dumps(order.to_doc()))).status == SHIPPED


def test_a_shipped_order_stays_shipped_even_if_a_line_is_still_open():
    # E.g. an order marked shipped earlier: a later fulfillment never reopens or re-ships it.
    order = make_order(("AC-100", 3), status=SHIPPED)
    order.shipped_at = "2024-01-03T00:00:00.000Z"
    updated, shipped = add_fulfillment(order, ful(("li_1", 1)))
    assert shipped is False
    assert updated.status == SHIPPED
    assert updated.shipped_at == "2024-01-03T00:00:00.000Z"
    updated, shipped = add_fulfillment(updated, ful(("li_1", 2)))
    assert shipped is False and updated.status == SHIPPED
    assert updated.shipped_at == "2024-01-03T00:00:00.000Z"


# ---- add_fulfillment refuses overfill (rule 1) -------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        [("li_1", 3)],  # more than ordered
        [("li_1", 2), ("li_1", 1)],  # the same line twice, together too many
        [("li_9", 1)],  # not a line of this order
        [("li_1", 0)],  # not positive
        [("li_1", -1)],
        [("li_2", 1), ("li_1", 5)],  # one good line does not save a bad one
    ],
)
def test_add_fulfillment_refuses_overfill(lines):
    order = make_order(("AC-100", 2), ("AC-200", 1))
    before = order.to_doc()
    with pytest.raises(ValueError):
        add_fulfillment(order, ful(*lines))
    assert order.to_doc() == before


def test_add_fulfillment_refuses_more_than_what_remains_after_earlier_fulfillments():
    order = make_order(("AC-100", 2))
    order, _ = add_fulfillment(order, ful(("li_1", 1)))
    with pytest.raises(ValueError):
        add_fulfillment(order, ful(("li_1", 2)))
    order, shipped = add_fulfillment(order, ful(("li_1", 1)))
    assert shipped


# ---- check_fulfillment: lines ------------------------------------------------------------------


def test_a_valid_proposal_has_no_errors_and_builds_a_fulfillment():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    checked = check_fulfillment(
        order,
        proposal(
            [ProposedLine(quantity=2, line_item_id="li_1"), ProposedLine(quantity=1, sku="AC-200")],
            numbers=[UPS_1, UPS_2],
        ),
    )
    assert checked.errors == {}
    assert checked.line_items == [FulfillmentLine("li_1", 2), FulfillmentLine("li_2", 1)]
    assert checked.carrier == "UPS"
    assert checked.tracking_numbers == [UPS_1, UPS_2]
    assert checked.tracking_urls == [UPS_URL % UPS_1, UPS_URL % UPS_2]
    fulfillment = new_fulfillment(checked)
    assert fulfillment.source == "manual" and fulfillment.id.startswith("ful_")
    assert fulfillment.delivery == Delivery()
    updated, shipped = add_fulfillment(order, fulfillment)
    assert shipped and updated.status == SHIPPED


def test_unknown_line_item_id():
    errors = errors_of(make_order(), proposal([ProposedLine(quantity=1, line_item_id="li_nope")]))
    assert set(errors) == {"line_items.0.line_item_id"}


@pytest.mark.parametrize("quantity", [0, -1, -100, 1.5, 1.0, "1", True, False, None])
def test_quantity_not_a_positive_integer(quantity):
    errors = errors_of(
        make_order(), proposal([ProposedLine(quantity=quantity, line_item_id="li_1")])
    )
    assert set(errors) == {"line_items.0.quantity"}


def test_more_than_remains():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    errors = errors_of(order, proposal([ProposedLine(quantity=3, line_item_id="li_1")]))
    assert set(errors) == {"line_items.0.quantity"}
    assert "Only 2 of 2" in errors["line_items.0.quantity"][0]


def test_more_than_remains_counts_earlier_fulfillments():
    order = make_order(("AC-100", 3))
    order, _ = add_fulfillment(order, ful(("li_1", 2)))
    errors = errors_of(order, proposal([ProposedLine(quantity=2, line_item_id="li_1")]))
    assert "Only 1 of 3" in errors["line_items.0.quantity"][0]
    assert errors_of(order, proposal([ProposedLine(quantity=1, line_item_id="li_1")])) == {}


def test_second_line_is_the_one_named():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    errors = errors_of(
        order,
        proposal(
            [ProposedLine(quantity=1, line_item_id="li_1"), ProposedLine(quantity=2, sku="AC-200")]
        ),
    )
    assert set(errors) == {"line_items.1.quantity"}


def test_no_lines():
    assert set(errors_of(make_order(), proposal([]))) == {"line_items"}


@pytest.mark.parametrize(
    "second",
    [ProposedLine(quantity=1, line_item_id="li_1"), ProposedLine(quantity=1, sku="AC-100")],
)
def test_line_named_twice(second):
    order = make_order(("AC-100", 5))
    errors = errors_of(order, proposal([ProposedLine(quantity=1, line_item_id="li_1"), second]))
    assert set(errors) == {"line_items.1"}


def test_sku_resolves_to_the_sellers_line():
    order = make_order(("AC-100", 2), ("AC-200", 1))
    checked = check_fulfillment(order, proposal([ProposedLine(quantity=1, sku="AC-200")]))
    assert checked.errors == {}
    assert checked.line_items == [FulfillmentLine("li_2", 1)]


def test_sku_is_the_sellers_not_the_buyers():
    order = make_order(("AC-100", 2))
    errors = errors_of(order, proposal([ProposedLine(quantity=1, sku="BUY-AC-100")]))
    assert set(errors) == {"line_items.0.sku"}


def test_unknown_sku():
    errors = errors_of(make_order(), proposal([ProposedLine(quantity=1, sku="NOPE")]))
    assert set(errors) == {"line_items.0.sku"}


def test_ambiguous_sku_asks_for_the_line_item_id():
    order = make_order(("AC-100", 1), ("AC-100", 1))
    errors = errors_of(order, proposal([ProposedLine(quantity=1, sku="AC-100")]))
    assert set(errors) == {"line_items.0.sku"}
    assert "line_item_id" in errors["line_items.0.sku"][0]
    # Naming the line by id works.
    assert errors_of(order, proposal([ProposedLine(quantity=1, line_item_id="li_2")])) == {}


def test_line_named_by_neither_id_nor_sku():
    errors = errors_of(make_order(), proposal([ProposedLine(quantity=1)]))
    assert set(errors) == {"line_items.0"}


def test_line_named_by_both_id_and_sku():
    # The rule, not only the API's schema: every entry point refuses it alike.
    line = ProposedLine(quantity=1, line_item_id="li_1", sku="AC-100")
    errors = errors_of(make_order(("AC-100", 2)), proposal([line]))
    assert set(errors) == {"line_items.0"}


# ---- check_fulfillment: carrier and tracking ---------------------------------------------------


@pytest.mark.parametrize("carrier", ["", "   "])
def test_no_carrier(carrier):
    errors = errors_of(make_order(), proposal(carrier=carrier, numbers=[UPS_1]))
    assert "carrier" in errors


def test_carrier_is_canonicalized():
    checked = check_fulfillment(make_order(), proposal(carrier="fedex", numbers=[FEDEX_GROUND]))
    assert checked.errors == {}
    assert checked.carrier == "FedEx"
    assert checked.tracking_urls == [FEDEX_URL % FEDEX_GROUND]


def test_no_tracking_numbers():
    assert set(errors_of(make_order(), proposal(numbers=[]))) == {"tracking_numbers"}


def test_too_many_tracking_numbers():
    numbers = [UPS_1] * (MAX_TRACKING_NUMBERS + 1)
    assert "tracking_numbers" in errors_of(make_order(), proposal(numbers=numbers))


@pytest.mark.parametrize(
    ("carrier", "number"),
    [
        ("UPS", UPS_BAD_CHECK),
        ("USPS", "9400111899223197428490"),
        ("UPS", FEDEX_GROUND),  # a FedEx number given as UPS
        ("UPS", "1Z5R8939"),
        ("UPS", "ABC$%^"),
        ("", "NOTANUMBER99"),  # no carrier and an unknown format
    ],
)
def test_invalid_tracking_number(carrier, number):
    errors = errors_of(make_order(), proposal(carrier=carrier, numbers=[number]))
    assert "tracking_numbers.0" in errors


@pytest.mark.parametrize(
    ("carrier", "number"),
    [
        ("UPS", "1Z999AA10123456784"),  # UPS's published sample
        ("DHL", "0000000000"),
        ("UPS", "TEST12345678"),
        ("FedEx", "DUMMY"),
        ("DHL", "1234567890"),
        ("USPS", "N/A"),
        ("Royal Mail", "11111111"),
    ],
)
def test_dummy_tracking_number(carrier, number):
    errors = errors_of(make_order(), proposal(carrier=carrier, numbers=[number], urls=[]))
    assert "tracking_numbers.0" in errors


def test_error_names_the_index_of_the_bad_number():
    errors = errors_of(make_order(), proposal(numbers=[UPS_1, UPS_BAD_CHECK]))
    assert "tracking_numbers.1" in errors
    assert "tracking_numbers.0" not in errors


@pytest.mark.parametrize("repeat", [UPS_1, "1z5r 8939 0357 5671 27", "1Z5R-8939-0357-5671-27"])
def test_repeated_tracking_numbers(repeat):
    errors = errors_of(make_order(), proposal(numbers=[UPS_1, repeat]))
    assert set(errors) == {"tracking_numbers.1"}


def test_tracking_numbers_are_normalized():
    checked = check_fulfillment(make_order(), proposal(numbers=["1z5r 8939-0357 5671 27"]))
    assert checked.errors == {}
    assert checked.tracking_numbers == [UPS_1]


@pytest.mark.parametrize(
    ("carrier", "number"),
    [("UPS", UPS_1), ("USPS", USPS_1), ("FedEx", FEDEX_GROUND), ("DHL", DHL_1)],
)
def test_valid_numbers_of_each_carrier(carrier, number):
    checked = check_fulfillment(make_order(), proposal(carrier=carrier, numbers=[number]))
    assert checked.errors == {}
    assert len(checked.tracking_urls) == 1 and number in checked.tracking_urls[0]


# ---- check_fulfillment: tracking URLs ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "not a url",
        "ftp://example.com/track",
        "http://",
        "https:///path",
        "http://user:pw@example.com/",
        "https://example.com/" + "a" * MAX_URL_LENGTH,
        "data:text/html,hi",
        "http://[::1",  # urlsplit cannot parse it
        "https://[x]/track",
        "https://example.com:99999/track",  # port out of range
    ],
)
def test_bad_url(url):
    errors = errors_of(make_order(), proposal(urls=[url]))
    assert set(errors) == {"tracking_urls.0"}


def test_given_urls_are_kept():
    url = "https://track.example.com/?n=1"
    checked = check_fulfillment(make_order(), proposal(urls=[f"  {url} "]))
    assert checked.errors == {}
    assert checked.tracking_urls == [url]


def test_url_count_must_match_the_numbers():
    errors = errors_of(
        make_order(), proposal(numbers=[UPS_1, UPS_2], urls=["https://track.example.com/1"])
    )
    assert set(errors) == {"tracking_urls"}


def test_unknown_carrier_requires_urls():
    errors = errors_of(make_order(), proposal(carrier="Royal Mail", numbers=["RM123456789GB"]))
    assert set(errors) == {"tracking_urls"}
    checked = check_fulfillment(
        make_order(),
        proposal(
            carrier="Royal Mail",
            numbers=["RM123456789GB"],
            urls=["https://www.royalmail.com/track?n=RM123456789GB"],
        ),
    )
    assert checked.errors == {}
    assert checked.carrier == "Royal Mail"
    assert checked.tracking_urls == ["https://www.royalmail.com/track?n=RM123456789GB"]


def test_a_known_carriers_product_we_cannot_check_also_requires_urls():
    errors = errors_of(make_order(), proposal(carrier="UPS Freight", numbers=["784512963"]))
    assert set(errors) == {"tracking_urls"}


def test_urls_built_from_the_carrier_when_none_given():
    checked = check_fulfillment(make_order(), proposal(numbers=[UPS_1, UPS_2]))
    assert checked.tracking_urls == [UPS_URL % UPS_1, UPS_URL % UPS_2]


def test_urls_built_from_the_detected_carrier_when_the_carrier_is_missing():
    checked = check_fulfillment(make_order(), proposal(carrier="", numbers=[UPS_1]))
    assert set(checked.errors) == {"carrier"}
    assert checked.tracking_urls == [UPS_URL % UPS_1]


def test_every_problem_is_reported_at_once():
    errors = errors_of(
        make_order(),
        proposal(
            [ProposedLine(quantity=0, line_item_id="li_1"), ProposedLine(quantity=1, sku="NOPE")],
            carrier="",
            numbers=[UPS_BAD_CHECK],
            urls=["javascript:alert(1)"],
        ),
    )
    assert {
        "line_items.0.quantity",
        "line_items.1.sku",
        "carrier",
        "tracking_numbers.0",
        "tracking_urls.0",
    } <= set(errors)


# ---- who may create a manual fulfillment (rule 4) ----------------------------------------------


@pytest.mark.parametrize(
    ("role", "platform", "allowed"),
    [
        ("seller", "woocommerce", True),
        ("seller", "none", True),
        ("seller", "shopify", False),
        ("seller", "bigcommerce", False),
        ("buyer", "none", False),
        ("buyer", "woocommerce", False),
        ("operator", "none", False),
        ("", "none", False),
    ],
)
def test_manual_fulfillment_refusal(role, platform, allowed):
    refusal = manual_fulfillment_refusal(role, platform)
    if allowed:
        assert refusal is None
    else:
        assert isinstance(refusal, str) and refusal


def test_refusal_of_a_store_seller_names_the_store():
    assert "shopify" in manual_fulfillment_refusal("seller", "shopify")


# ---- the stored document -----------------------------------------------------------------------


def _busy_order() -> Order:
    order = make_order(("AC-100", 2), ("AC-200", 1))
    order.line_items[0].buyer_ref = "b-1"
    order.line_items[1].seller_ref = "s-2"
    order.shipping_address = {"name": "Ada", "country_code": "US"}
    order.customer_email = "ada@example.com"
    order.seller_order_ref = "5005"
    order.routing = Delivery(state="done", attempts=1, retry_at=1704067201.5)
    order, _ = add_fulfillment(order, ful(("li_1", 1)))
    order.fulfillments[0].delivery = Delivery(
        state="failed", attempts=3, last_error="HTTP 500", buyer_ref="gid://1"
    )
    order.fulfillments[0].source_ref = "shopify-ful-9"
    order, _ = add_fulfillment(order, ful(("li_1", 1), ("li_2", 1), number=UPS_2))
    return order


def test_to_doc_from_doc_round_trip():
    order = _busy_order()
    assert order.status == SHIPPED and order.shipped_notice is not None
    doc = order.to_doc()
    again = Order.from_doc(json.loads(json.dumps(doc)))
    assert again == order
    assert again.to_doc() == doc
    assert isinstance(again.line_items[0], LineItem)
    assert isinstance(again.fulfillments[0], Fulfillment)
    assert isinstance(again.fulfillments[0].line_items[0], FulfillmentLine)
    assert isinstance(again.fulfillments[0].delivery, Delivery)
    assert isinstance(again.routing, Delivery)
    assert isinstance(again.shipped_notice, Delivery)
    assert remaining(again) == {"li_1": 0, "li_2": 0}


def test_round_trip_of_a_new_order():
    order = make_order()
    again = Order.from_doc(json.loads(json.dumps(order.to_doc())))
    assert again == order
    assert again.shipped_notice is None and again.fulfillments == []


def test_from_doc_does_not_change_the_document():
    doc = _busy_order().to_doc()
    copy = json.loads(json.dumps(doc))
    Order.from_doc(doc)
    assert doc == copy


# ---- routing waits for payment and an address in the buyer's store (issue 10, points 1, 13) ----

STORE_ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "zip": "62701",
    "country_code": "US",
}


def test_what_an_order_waits_for():
    assert waiting_for(PAID, STORE_ADDRESS) is None
    assert waiting_for(UNPAID, STORE_ADDRESS) == "payment"
    assert waiting_for(PAID, {}) == "address"
    assert waiting_for(PAID, None) == "address"
    # Redacted customer data: the fields are there, empty.
    assert waiting_for(PAID, {**STORE_ADDRESS, "address1": None, "name": ""}) == "address"
    assert missing_address({**STORE_ADDRESS, "city": "  "}) == ["city"]


def test_an_unpaid_order_waits_and_the_seller_may_not_act_on_it():
    waiting = hold(make_order(), "payment")
    assert waiting.routing.state == "waiting"
    assert waiting.waiting_for == "payment"
    assert "paid" in not_released(waiting)
    assert "route" in deliveries(waiting)  # visible, but not pending: nothing enqueues it
    assert not_released(make_order()) is None


def test_payment_with_an_address_releases_a_waiting_order_once():
    waiting = hold(make_order(), "payment")
    assert recheck_waiting(waiting, UNPAID, STORE_ADDRESS) is None

    released, note = recheck_waiting(waiting, PAID, STORE_ADDRESS)

    assert released.routing.state == "pending"
    assert released.waiting_for is None
    assert released.shipping_address == STORE_ADDRESS
    assert not_released(released) is None
    assert "passing it to the seller" in note
    assert recheck_waiting(released, PAID, STORE_ADDRESS) is None  # never released twice
    assert recheck_waiting(released, CANCELLED, STORE_ADDRESS) is None  # nor ended once routed


def test_paid_without_an_address_goes_on_waiting_for_the_address():
    waiting = hold(make_order(), "payment")

    still, note = recheck_waiting(waiting, PAID, {"country_code": "US"})

    assert still.routing.state == "waiting"
    assert still.waiting_for == "address"
    assert "address" in note and "address" in not_released(still)
    assert recheck_waiting(still, PAID, {}) is None
    released, _ = recheck_waiting(still, PAID, STORE_ADDRESS, "ada@example.com")
    assert released.routing.state == "pending"
    assert released.customer_email == "ada@example.com"  # withheld with the address, given now


def test_a_cancelled_waiting_order_is_never_routed():
    ended, note = recheck_waiting(hold(make_order(), "payment"), CANCELLED, STORE_ADDRESS)

    assert ended.routing.state == "cancelled"
    assert ended.waiting_for is None
    assert "cancelled" in not_released(ended)
    assert recheck_waiting(ended, PAID, STORE_ADDRESS) is None
    assert "never sent" in note
