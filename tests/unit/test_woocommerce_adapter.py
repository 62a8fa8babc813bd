"""The WooCommerce REST v3 adapter against a mocked store (`responses`).

Payload shapes: ../fixtures/woocommerce (see /work/shared/platforms/woocommerce.md).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from gateway.model import (
    CANCELLED,
    PAID,
    UNPAID,
    Delivery,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    Order,
)
from gateway.platforms.base import (
    ChangedOrder,
    ChangedPage,
    CreatedOrder,
    Keyset,
    PlatformError,
    StoreLine,
)
from gateway.platforms.woocommerce import (
    PAGE_SIZE,
    WooCommerce,
    WooCommerceAdapter,
    normalize_store_url,
    store_key,
)
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "woocommerce"
SITE = "https://shop.example.com"
ORDERS = f"{SITE}/wp-json/wc/v3/orders"
TRACKINGS = f"{SITE}/wp-json/wc-shipment-tracking/v3/orders/727/shipment-trackings"
NOTES = f"{ORDERS}/727/notes"
CONSUMER_KEY = "ck_4e2a1f0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
CONSUMER_SECRET = "cs_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"

BUYER_ORDER_REF = "727"
UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s"
EXISTING_ID = "a4b6c3b3f9d1e8e2c2d1b0a9f8e7d6c5"  # tracking_items.json: UPS_1
CREATED_ID = "7f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c"  # tracking_item_created.json
SINCE = "2026-03-01T00:00:00Z"


def load(name: str):
    """A fixture payload, fresh each time (tests may change it)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def config(redis) -> Settings:
    return Settings.from_env()


@pytest.fixture
def store(redis, config):
    return connect(config)


@pytest.fixture
def adapter(store, config) -> WooCommerceAdapter:
    connection = {
        "store_url": SITE + "/",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "webhook_secret": "woo-webhook-secret",
    }
    return WooCommerceAdapter(connection, store, config)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def sent(rsps, index: int) -> dict:
    """The JSON body of the index-th call."""
    return json.loads(rsps.calls[index].request.body)


def counters(redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis.hgetall(key("metrics")).items()}


# ---- builders ------------------------------------------------------------------------------------


def make_order(**changes) -> Order:
    order = Order(
        id="ord_test",
        buyer_id="ptr_buyer",
        seller_id="ptr_seller",
        buyer_order_ref=BUYER_ORDER_REF,
        line_items=[
            LineItem("li_1", "MUG-BLUE", "AC-100", "Blue mug", 2, buyer_ref="315"),
            LineItem("li_2", "MUG-RED", "AC-200", "Red mug", 1, buyer_ref="316"),
        ],
        created_at="2026-03-02T15:15:05.000Z",
        updated_at="2026-03-02T15:15:05.000Z",
        shipping_address={
            "name": "Ada Lovelace",
            "company": "Analytical Engines",
            "address1": "1 Main St",
            "city": "Springfield",
            "province": "IL",
            "zip": "62701",
            "country_code": "US",
            "phone": "+1 217 555 0100",
        },
        customer_email="ada@example.com",
    )
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def make_fulfillment(
    numbers=(UPS_1, UPS_2), carrier: str = "UPS", urls=None, version: int = 1
) -> Fulfillment:
    return Fulfillment(
        id="ful_test",
        source="manual",
        carrier=carrier,
        tracking_numbers=list(numbers),
        tracking_urls=list(urls) if urls is not None else [UPS_URL % n for n in numbers],
        line_items=[FulfillmentLine("li_1", 2), FulfillmentLine("li_2", 1)],
        created_at="2026-03-03T14:00:01.000Z",
        updated_at="2026-03-03T14:00:01.000Z",
        delivery=Delivery(),
        version=version,
    )


def no_tracking_extension(rsps) -> None:
    rsps.get(TRACKINGS, json=load("rest_no_route"), status=404)


# ---- read_order ----------------------------------------------------------------------------------


def test_read_order_maps_lines_shipping_address_and_billing_email(adapter, rsps):
    rsps.get(f"{ORDERS}/727", json=load("order"))

    order = adapter.read_order("727")

    assert order.ref == "727"
    assert order.lines == [
        StoreLine("315", "MUG-BLUE", 2, "Blue mug"),
        StoreLine("316", "MUG-RED", 1, "Red mug"),
        StoreLine("317", "", 1, "Gift wrap"),  # null sku -> ""
    ]
    assert order.shipping_address == {
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "address1": "1 Main St",
        "address2": "Suite 2",
        "city": "Springfield",
        "province": "IL",
        "zip": "62701",
        "country_code": "US",
    }  # the empty phone is left out; the billing address is not the shipping one
    assert order.email == "ada@example.com"


def test_read_order_says_when_the_order_was_placed(adapter, rsps):
    # an update webhook can name an order from before the store was connected
    rsps.get(f"{ORDERS}/727", json=load("order"))

    assert adapter.read_order("727").created_at == "2026-03-02T16:15:00Z"


def test_calls_send_the_consumer_key_and_secret_as_http_basic(adapter, rsps):
    rsps.get(f"{ORDERS}/727", json=load("order"))

    adapter.read_order("727")

    expected = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    assert rsps.calls[0].request.headers["Authorization"] == f"Basic {expected}"
    assert "consumer_secret" not in rsps.calls[0].request.url


def test_read_order_of_an_unknown_order_is_none(adapter, rsps):
    rsps.get(f"{ORDERS}/999", json=load("order_not_found"), status=404)

    assert adapter.read_order("999") is None


def test_read_order_without_billing_email_has_none(adapter, rsps):
    order = load("order")
    order["billing"]["email"] = ""
    rsps.get(f"{ORDERS}/727", json=order)

    assert adapter.read_order("727").email is None


@pytest.mark.parametrize(
    ("status", "date_paid_gmt", "payment"),
    [
        ("pending", None, UNPAID),  # order.created fires for these: the checkout is not paid
        ("failed", None, UNPAID),
        ("on-hold", None, UNPAID),  # bank transfer or cheque, awaiting confirmation
        ("checkout-draft", None, UNPAID),
        ("processing", "2026-03-02T16:15:01", PAID),
        ("completed", "2026-03-02T16:15:01", PAID),
        ("cancelled", None, CANCELLED),
        ("refunded", "2026-03-02T16:15:01", CANCELLED),
        ("trash", None, CANCELLED),
        ("awaiting-shipment", "2026-03-02T16:15:01", PAID),  # a plugin's status, paid
        ("awaiting-review", None, UNPAID),  # a plugin's status, no payment recorded
    ],
)
def test_read_order_translates_the_status_into_payment(
    adapter, rsps, status, date_paid_gmt, payment
):
    rsps.get(
        f"{ORDERS}/727", json={**load("order"), "status": status, "date_paid_gmt": date_paid_gmt}
    )

    assert adapter.read_order("727").payment == payment


# ---- create_order --------------------------------------------------------------------------------

LOOKUP_AFTER = "2026-03-02T15:14:05"  # a minute before make_order's created_at, GMT, no zone


def lookup(page: int = 1):
    """The look-up for an order an earlier attempt created, page `page`."""
    return matchers.query_param_matcher(
        {
            "after": LOOKUP_AFTER,
            "dates_are_gmt": "true",
            "orderby": "date",
            "order": "asc",
            "per_page": "100",
            "page": str(page),
        }
    )


def no_earlier_order(rsps) -> None:
    rsps.get(ORDERS, json=[], match=[lookup()])


PRODUCTS = f"{SITE}/wp-json/wc/v3/products"
PRODUCT_IDS = {"AC-100": 93, "AC-200": 94}  # as order_created_in_store.json links them


def catalog(rsps, *skus: str) -> None:
    """The seller's catalog asked for the order's SKUs at once; it has `skus`."""
    rsps.get(
        PRODUCTS,
        json=[
            {"id": PRODUCT_IDS[sku], "sku": sku, "name": f"Acme {sku}", "type": "simple"}
            for sku in skus
        ],
        match=[matchers.query_param_matcher({"sku": "AC-100,AC-200", "per_page": "100"})],
    )


def store_orders(count: int, first_id: int = 1000) -> list[dict]:
    """Orders in the seller's store that are not ours: store sales and other gateway orders."""
    orders = []
    for n in range(count):
        meta = [{"id": 9000 + n, "key": "gateway_order_id", "value": f"ord_other{n}"}]
        orders.append({**load("order"), "id": first_id + n, "meta_data": meta if n % 2 else []})
    return orders


def test_create_order_posts_a_processing_order_and_maps_the_store_line_ids(adapter, rsps):
    no_earlier_order(rsps)
    catalog(rsps, "AC-100", "AC-200")
    rsps.post(ORDERS, json=load("order_created_in_store"), status=201)

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(ref="728", line_refs={"li_1": "401", "li_2": "402"})
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "POST"]
    body = sent(rsps, 2)
    assert body["status"] == "processing"
    assert body["set_paid"] is False
    # On the seller's products, at our price (the shop's own would apply without totals)
    assert body["line_items"] == [
        {
            "product_id": 93,
            "quantity": 2,
            "subtotal": "0.00",
            "total": "0.00",
            "meta_data": [{"key": "gateway_sku", "value": "AC-100"}],
        },
        {
            "product_id": 94,
            "quantity": 1,
            "subtotal": "0.00",
            "total": "0.00",
            "meta_data": [{"key": "gateway_sku", "value": "AC-200"}],
        },
    ]
    assert {"key": "gateway_order_id", "value": "ord_test"} in body["meta_data"]
    assert body["shipping"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines",
        "address_1": "1 Main St",
        "address_2": "",
        "city": "Springfield",
        "state": "IL",
        "postcode": "62701",
        "country": "US",
        "phone": "+1 217 555 0100",
    }
    # No email: WooCommerce would mail the customer "order received" from the seller's shop
    assert body["billing"] == body["shipping"]
    assert BUYER_ORDER_REF in body["customer_note"]


@pytest.mark.parametrize("customer_email", ["ada@example.com", None])
def test_create_order_never_sends_a_billing_email(adapter, rsps, customer_email):
    no_earlier_order(rsps)
    catalog(rsps, "AC-100", "AC-200")
    rsps.post(ORDERS, json=load("order_created_in_store"), status=201)

    adapter.create_order(make_order(customer_email=customer_email))

    billing = sent(rsps, 2)["billing"]
    assert "email" not in billing  # "" is refused (400), a real one is mailed by the store
    assert billing["first_name"] == "Ada"


def test_a_sku_the_seller_has_no_product_for_is_a_line_by_name_noted_for_the_timeline(
    adapter, rsps
):
    no_earlier_order(rsps)
    catalog(rsps, "AC-100")  # no AC-200 in the seller's store
    answer = load("order_created_in_store")
    answer["line_items"][1].update(product_id=0, sku=None)  # as WooCommerce holds it
    rsps.post(ORDERS, json=answer, status=201)

    created = adapter.create_order(make_order())

    line = sent(rsps, 2)["line_items"][1]
    assert line == {
        "sku": "AC-200",  # a product_id or a sku is required; this one resolves to no product
        "name": "Red mug",
        "quantity": 1,
        "subtotal": "0.00",
        "total": "0.00",
        "meta_data": [{"key": "gateway_sku", "value": "AC-200"}],
    }
    assert created.line_refs == {"li_1": "401", "li_2": "402"}
    (note,) = created.notes
    assert "AC-200 is not a product in the seller's WooCommerce store" in note
    assert "Red mug" in note


def test_an_earlier_attempts_order_brings_its_notes_back(adapter, rsps):
    earlier = load("order_created_in_store")
    earlier["line_items"][0].update(product_id=0, sku=None)
    rsps.get(ORDERS, json=[earlier], match=[lookup()])

    created = adapter.create_order(make_order())

    assert [n.split(" is not")[0] for n in created.notes] == ["AC-100"]
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_create_order_refused_by_the_store_is_permanent(adapter, rsps):
    no_earlier_order(rsps)
    catalog(rsps, "AC-100", "AC-200")
    rsps.post(
        ORDERS,
        json={
            "code": "rest_invalid_param",
            "message": "Invalid parameter(s): line_items",
            "data": {"status": 400},
        },
        status=400,
    )

    with pytest.raises(PlatformError) as raised:
        adapter.create_order(make_order())

    assert raised.value.permanent is True
    assert "line_items" in str(raised.value)


def test_create_order_returns_an_order_an_earlier_attempt_created_without_posting(adapter, rsps):
    near_miss = {  # another gateway order whose id starts like ours
        **load("order"),
        "id": 726,
        "meta_data": [{"id": 1499, "key": "gateway_order_id", "value": "ord_testing"}],
    }
    earlier = load("order_created_in_store")  # gateway_order_id ord_test
    rsps.get(ORDERS, json=[near_miss, *store_orders(2), earlier], match=[lookup()])
    # no POST registered: creating the order again would fail the test

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(ref="728", line_refs={"li_1": "401", "li_2": "402"})
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_create_order_posts_when_a_short_page_of_orders_has_none_of_ours(adapter, rsps):
    rsps.get(ORDERS, json=store_orders(99), match=[lookup()])  # one short of full
    catalog(rsps, "AC-100", "AC-200")
    rsps.post(ORDERS, json=load("order_created_in_store"), status=201)

    assert adapter.create_order(make_order()).ref == "728"
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "POST"]  # orders, products


def test_create_order_reads_the_next_page_after_a_full_one(adapter, rsps):
    rsps.get(ORDERS, json=store_orders(100), match=[lookup()])  # full, none ours
    rsps.get(ORDERS, json=[load("order_created_in_store")], match=[lookup(2)])

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(ref="728", line_refs={"li_1": "401", "li_2": "402"})
    assert [c.request.method for c in rsps.calls] == ["GET", "GET"]  # no POST


def test_create_order_looks_through_at_most_four_pages_then_posts(adapter, rsps):
    for page in range(1, 5):
        rsps.get(ORDERS, json=store_orders(100, 1000 * page), match=[lookup(page)])
    catalog(rsps, "AC-100", "AC-200")
    rsps.post(ORDERS, json=load("order_created_in_store"), status=201)

    assert adapter.create_order(make_order()).ref == "728"
    # four pages of orders (no page 5), then the products
    assert [c.request.method for c in rsps.calls] == ["GET"] * 5 + ["POST"]


def test_read_fulfillments_reads_nothing_from_a_woocommerce_seller(adapter, rsps):
    assert adapter.read_fulfillments("728") == []
    assert len(rsps.calls) == 0


# ---- forward_fulfillment with a tracking plugin (the extension, or AST) --------------------------


def test_forward_posts_one_tracking_item_per_new_number(adapter, rsps):
    rsps.get(TRACKINGS, json=load("tracking_items"))  # UPS_1 is there already
    rsps.post(TRACKINGS, json=load("tracking_item_created"), status=201)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == f"tracking:{EXISTING_ID},{CREATED_ID}"
    assert len(rsps.calls) == 2  # UPS_1 not posted again
    assert sent(rsps, 1) == {
        "tracking_number": UPS_2,
        "custom_tracking_provider": "UPS",
        "custom_tracking_link": UPS_URL % UPS_2,
    }


def test_forward_posts_every_number_when_the_order_has_no_tracking_yet(adapter, rsps):
    second = {**load("tracking_item_created"), "tracking_id": "0000aaaa", "tracking_number": UPS_1}
    rsps.get(TRACKINGS, json=[])
    rsps.post(TRACKINGS, json=second, status=201)
    rsps.post(TRACKINGS, json=load("tracking_item_created"), status=201)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == f"tracking:0000aaaa,{CREATED_ID}"
    assert [sent(rsps, i)["tracking_number"] for i in (1, 2)] == [UPS_1, UPS_2]
    assert len(rsps.calls) == 3


def test_forward_posts_nothing_when_every_number_is_there(adapter, rsps):
    rsps.get(TRACKINGS, json=[*load("tracking_items"), load("tracking_item_created")])

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == f"tracking:{EXISTING_ID},{CREATED_ID}"
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("carrier", ["UPS", "USPS", "FedEx", "DHL"])
def test_forward_names_every_carrier_as_a_custom_provider_with_our_link(adapter, rsps, carrier):
    # The extension's predefined names ("Fedex", "DHL US") are not AST's, and a predefined
    # provider drops our link; AST finds a custom provider's name in its own table.
    rsps.get(TRACKINGS, json=[])
    rsps.post(TRACKINGS, json=load("tracking_item_created"), status=201)

    adapter.forward_fulfillment(make_order(), make_fulfillment(numbers=[UPS_2], carrier=carrier))

    body = sent(rsps, 1)
    assert body == {
        "tracking_number": UPS_2,
        "custom_tracking_provider": carrier,
        "custom_tracking_link": UPS_URL % UPS_2,
    }
    assert "date_shipped" not in body  # AST may read an ISO date day-for-month


def test_forward_sends_an_unknown_carrier_as_custom_provider_and_link(adapter, rsps):
    url = "https://track.acme-courier.example/ACX123456789"
    rsps.get(TRACKINGS, json=[])
    rsps.post(TRACKINGS, json=load("tracking_item_created"), status=201)

    adapter.forward_fulfillment(
        make_order(), make_fulfillment(numbers=["ACX123456789"], carrier="Acme Courier", urls=[url])
    )

    assert sent(rsps, 1) == {
        "tracking_number": "ACX123456789",
        "custom_tracking_provider": "Acme Courier",
        "custom_tracking_link": url,
    }


AST_REFUSAL = {  # zorem's AST, for a number with anything but letters, digits, "-" and spaces
    "code": "woocommerce_rest_order_invalid_id",
    "message": "Special character not allowd in tracking number",
    "data": {"status": 404},
}


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (404, AST_REFUSAL),
        (400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): tracking_provider"}),
    ],
)
def test_forward_a_tracking_item_refused_goes_as_a_customer_note(adapter, rsps, status, refusal):
    number = "JD0146.0000.4417"  # a carrier's number with dots
    rsps.get(TRACKINGS, json=[])
    rsps.post(TRACKINGS, json=refusal, status=status)
    rsps.get(NOTES, json=load("notes"))
    rsps.post(NOTES, json=load("note_created"), status=201)

    ref = adapter.forward_fulfillment(
        make_order(), make_fulfillment(numbers=[number], carrier="DHL", urls=[])
    )

    assert ref == "note:282"  # delivered, not failed
    note = sent(rsps, 3)
    assert note["customer_note"] is True and number in note["note"]


def test_forward_a_tracking_plugin_down_is_retried_not_noted(adapter, rsps):
    rsps.get(TRACKINGS, json=[])
    rsps.post(TRACKINGS, body="<html>Bad gateway</html>", status=502)

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment(numbers=[UPS_1]))

    assert raised.value.permanent is False
    assert len(rsps.calls) == 2  # no note: the tracking is retried


# ---- forward_fulfillment without it: a customer note ---------------------------------------------


def test_forward_without_the_extension_posts_one_customer_note(adapter, rsps):
    no_tracking_extension(rsps)
    rsps.get(NOTES, json=load("notes"))
    rsps.post(NOTES, json=load("note_created"), status=201)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "note:282"
    assert len(rsps.calls) == 3
    body = sent(rsps, 2)
    assert body["customer_note"] is True  # shown to the customer, who is notified
    note = body["note"]
    for part in ("UPS", UPS_1, UPS_2, UPS_URL % UPS_1, UPS_URL % UPS_2, "[ful_test v1]"):
        assert part in note
    assert "2 x MUG-BLUE" in note and "1 x MUG-RED" in note  # the buyer's SKUs


def test_forward_adopts_a_note_with_our_marker_instead_of_posting_again(adapter, rsps):
    notes = [load("note_created"), *load("notes")]
    no_tracking_extension(rsps)
    rsps.get(NOTES, json=notes)  # no POST registered

    assert adapter.forward_fulfillment(make_order(), make_fulfillment()) == "note:282"
    assert len(rsps.calls) == 2


def test_forward_a_tracking_change_posts_a_new_note(adapter, rsps):
    no_tracking_extension(rsps)
    rsps.get(NOTES, json=[load("note_created"), *load("notes")])  # the v1 note
    rsps.post(NOTES, json={**load("note_created"), "id": 290}, status=201)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment(version=2))

    assert ref == "note:290"
    assert "[ful_test v2]" in sent(rsps, 2)["note"]


# ---- mark_shipped --------------------------------------------------------------------------------


def test_mark_shipped_completes_the_order(adapter, rsps):
    rsps.put(f"{ORDERS}/727", json={**load("order"), "status": "completed"})

    note = adapter.mark_shipped(make_order())

    assert sent(rsps, 0) == {"status": "completed"}
    assert "completed" in note


# ---- changed_orders ------------------------------------------------------------------------------


SECOND_BEFORE_SINCE = "2026-02-28T23:59:59"  # *_after is exclusive; GMT, no zone


def listing(field: str = "modified_after", page: int = 1, after: str = SECOND_BEFORE_SINCE):
    return matchers.query_param_matcher(
        {
            field: after,
            "dates_are_gmt": "true",
            "orderby": "date" if field == "after" else "modified",
            "order": "asc",
            "per_page": "100",
            "page": str(page),
        }
    )


def test_changed_orders_lists_modified_after_with_utc_dates(adapter, rsps):
    other = {**load("order"), "id": 730, "date_modified_gmt": "2026-03-03T09:00:00"}
    rsps.get(ORDERS, json=[load("order"), other], match=[listing()])

    page = adapter.changed_orders(SINCE, None)

    assert page == ChangedPage(
        [
            ChangedOrder(ref="727", updated_at="2026-03-02T16:15:01Z"),
            ChangedOrder(ref="730", updated_at="2026-03-03T09:00:00Z"),
        ],
        None,
    )


def test_changed_orders_pages_100_at_a_time(adapter, rsps):
    full = [{**load("order"), "id": 1000 + n} for n in range(100)]
    rsps.get(ORDERS, json=full, match=[listing()])
    # again from the newest time seen (16:15:01), a second before it as *_after is exclusive
    rsps.get(ORDERS, json=[load("order")], match=[listing(after="2026-03-02T16:15:00")])

    first = adapter.changed_orders(SINCE, None)
    second = adapter.changed_orders(SINCE, first.next_page)

    ids = tuple(str(1000 + n) for n in range(100))
    assert Keyset.parse(first.next_page, SINCE) == Keyset("2026-03-02T16:15:01Z", ids, 1)
    assert len(first.orders) == 100
    assert [o.ref for o in second.orders] == ["727"]
    assert second.next_page is None


def test_changed_orders_by_creation_uses_after_sorted_by_date_with_the_creation_time(adapter, rsps):
    other = {**load("order"), "id": 730, "date_created_gmt": "2026-03-03T09:00:00"}
    rsps.get(ORDERS, json=[load("order"), other], match=[listing("after")])

    page = adapter.changed_orders(SINCE, None, created=True)

    assert page == ChangedPage(
        [
            ChangedOrder(ref="727", updated_at="2026-03-02T16:15:00Z"),  # not 16:15:01, modified
            ChangedOrder(ref="730", updated_at="2026-03-03T09:00:00Z"),
        ],
        None,
    )


def test_changed_orders_does_not_skip_an_order_when_one_listed_already_changes(adapter, rsps):
    # page 1: A..J at 09:00:00, 09:00:01, ...; J, the last, at T
    def stamp(second: int) -> str:
        return f"2026-03-03T09:{second // 60:02d}:{second % 60:02d}"

    first_page = [
        {**load("order"), "id": 1000 + n, "date_modified_gmt": stamp(n)} for n in range(PAGE_SIZE)
    ]
    j, t = str(1000 + PAGE_SIZE - 1), stamp(PAGE_SIZE - 1) + "Z"
    # meanwhile C (listed already) changed and moved to the end: by page number, page 2 would
    # start one order too late and K, now at offset PAGE_SIZE - 1, would never be listed
    k = {**load("order"), "id": 2000, "date_modified_gmt": stamp(PAGE_SIZE - 1)}  # also at T
    c = {**first_page[2], "date_modified_gmt": "2026-03-03T10:00:00"}
    rsps.get(ORDERS, json=first_page, match=[listing()])
    t_less_a_second = stamp(PAGE_SIZE - 2)  # modified_after is exclusive
    rsps.get(ORDERS, json=[first_page[-1], k, c], match=[listing(after=t_less_a_second)])

    first = adapter.changed_orders(SINCE, None)
    second = adapter.changed_orders(SINCE, first.next_page)

    assert first.orders[-1] == ChangedOrder(ref=j, updated_at=t)
    assert second == ChangedPage(
        [
            ChangedOrder(ref="2000", updated_at=t),  # K, at the same time as J
            ChangedOrder(ref="1002", updated_at="2026-03-03T10:00:00Z"),  # C, changed again
        ],
        None,
    )
    refs = [o.ref for o in first.orders + second.orders]
    assert refs.count(j) == 1


# ---- HTTP errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent(adapter, rsps, status):
    rsps.get(f"{ORDERS}/727", json=load("unauthorized"), status=status)

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("727")

    assert raised.value.permanent is True


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(adapter, rsps, status):
    rsps.get(f"{ORDERS}/727", body="<html>Bad gateway</html>", status=status)

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("727")

    assert raised.value.permanent is False
    assert str(status) in str(raised.value)


def test_429_is_retryable_with_retry_after(adapter, rsps):
    rsps.put(f"{ORDERS}/727", status=429, headers={"Retry-After": "12"})

    with pytest.raises(PlatformError) as raised:
        adapter.mark_shipped(make_order())

    assert raised.value.permanent is False
    assert raised.value.retry_after == 12.0


def test_unreachable_store_is_retryable(adapter, rsps):
    rsps.get(f"{ORDERS}/727", body=requests.ConnectionError("connection refused"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("727")

    assert raised.value.permanent is False


def test_an_html_answer_is_an_error_not_a_crash(adapter, rsps):
    rsps.get(f"{ORDERS}/727", body="<html>Maintenance mode</html>", status=200)

    with pytest.raises(PlatformError):
        adapter.read_order("727")


def test_each_call_is_counted(adapter, rsps, redis):
    rsps.get(f"{ORDERS}/727", json=load("order"))
    rsps.put(f"{ORDERS}/727", json=load("order"))

    adapter.read_order("727")
    adapter.mark_shipped(make_order())

    assert counters(redis)["platform_calls_woocommerce"] == 2


def test_a_store_url_with_a_path_keeps_it(store, config, rsps):
    connection = {
        "store_url": "https://example.com/shop/",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "webhook_secret": "s",
    }
    rsps.get("https://example.com/shop/wp-json/wc/v3/orders/727", json=load("order"))

    assert WooCommerceAdapter(connection, store, config).read_order("727").ref == "727"


# ---- normalize_store_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM/", "https://shop.example.com"),
        ("https://shop.example.com:443/", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("https://shop.example.com:8443/", "https://shop.example.com:8443"),
        ("http://shop.example.com:443", "http://shop.example.com:443"),
        ("https://Example.com/Shop/", "https://example.com/Shop"),  # the path keeps its case
        ("https://example.com/shop//", "https://example.com/shop"),
        ("  https://example.com/shop  ", "https://example.com/shop"),
    ],
)
def test_normalize_store_url(given, normal):
    assert normalize_store_url(given) == normal


def test_normalize_store_url_tells_scheme_and_path_apart():
    assert normalize_store_url("http://example.com") != normalize_store_url("https://example.com")
    assert normalize_store_url("https://example.com/a") != normalize_store_url(
        "https://example.com/b"
    )


# ---- the store a webhook names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "source"),
    [
        ("https://shop.example.com", "https://shop.example.com/"),
        # home_url('/') is http when the delivering request is not https (get_home_url)
        ("https://shop.example.com", "http://shop.example.com/"),
        ("https://shop.example.com", "https://www.shop.example.com/"),  # the site's own `home`
        ("http://www.shop.example.com/", "https://shop.example.com/"),
        ("https://example.com/shop", "https://www.example.com/shop/"),
        ("https://shop.example.com:8443", "http://www.shop.example.com:8443/"),
    ],
)
def test_a_store_is_found_under_any_form_of_its_url_the_webhook_names(configured, source):
    assert WooCommerce().store_identity({"store_url": configured}) == store_key(source)


@pytest.mark.parametrize(
    "source",
    [
        "https://other.example.com/",
        "https://shop.example.com/store/",  # another site of a multisite
        "https://shop.example.com:8443/",
        "https://api.shop.example.com/",
        "https://wwwshop.example.com/",
    ],
)
def test_another_store_stays_another(source):
    assert WooCommerce().store_identity({"store_url": "https://shop.example.com"}) != store_key(
        source
    )


@pytest.mark.parametrize("text", ["", "shop.example.com", "ftp://shop.example.com/", "https://"])
def test_no_store_is_named_by_no_web_url(text):
    assert store_key(text) is None
