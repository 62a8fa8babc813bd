"""The BigCommerce V2 adapter against a mocked API (`responses`); quota state in real Redis.

Payload shapes: ../fixtures/bigcommerce (see /work/shared/platforms/bigcommerce.md).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers
from standardwebhooks import Webhook

from gateway.model import (
    CANCELLED,
    PAID,
    UNPAID,
    Delivery,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    ObservedFulfillment,
    Order,
)
from gateway.platforms import bigcommerce
from gateway.platforms.base import (
    ChangedOrder,
    ChangedPage,
    CreatedOrder,
    Keyset,
    PlatformError,
    StoreLine,
)
from gateway.platforms.bigcommerce import MAX_RATE_WAIT, RATE_RETRIES, BigCommerceAdapter
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bigcommerce"
STORE_HASH = "abc123"
BASE = "http://bc.test"
API = f"{BASE}/stores/{STORE_HASH}/v2"
TOKEN = "bc_test_access_token"
PACE_KEY = f"pace:bigcommerce:{STORE_HASH}"
OWNER_EMAIL = "orders@acme.example"  # the contact of the partner who owns the store

BUYER_ORDER_REF = "100"
UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s"
DHL_NUMBER = "JD014600003828136020"
DHL_URL = "https://www.dhl.com/en/express/tracking.html?AWB=JD014600003828136020"
SINCE = "2026-03-01T00:00:00.000Z"


def load(name: str):
    """A fixture payload, fresh each time (tests may change it)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


class FakeClock:
    """The adapter's `time`: sleeping records the wait and moves the clock on."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def config(redis) -> Settings:
    return Settings.from_env()


@pytest.fixture
def store(redis, config):
    return connect(config)


@pytest.fixture
def adapter(store, config) -> BigCommerceAdapter:
    connection = {"store_hash": STORE_HASH, "access_token": TOKEN, "api_base_url": BASE + "/"}
    return BigCommerceAdapter(connection, store, config, OWNER_EMAIL)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(bigcommerce, "time", fake)
    return fake


def sent(rsps, index: int) -> dict:
    """The JSON body of the index-th call."""
    return json.loads(rsps.calls[index].request.body)


def counters(redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis.hgetall(key("metrics")).items()}


def quota(left: int, reset_ms: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Time-Window-Ms": "30000",
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Requests-Quota": "150",
        "X-Rate-Limit-Requests-Left": str(left),
    }


# ---- builders ------------------------------------------------------------------------------------


def make_order(**changes) -> Order:
    order = Order(
        id="ord_test",
        buyer_id="ptr_buyer",
        seller_id="ptr_seller",
        buyer_order_ref=BUYER_ORDER_REF,
        line_items=[
            LineItem("li_1", "MUG-BLUE", "AC-100", "Blue mug", 2, buyer_ref="201"),
            LineItem("li_2", "MUG-RED", "AC-200", "Red mug", 1, buyer_ref="202"),
        ],
        created_at="2026-03-02T15:15:05.000Z",
        updated_at="2026-03-02T15:15:05.000Z",
        shipping_address={
            "name": "Ada Lovelace",
            "address1": "1 Main St",
            "city": "Springfield",
            "province": "IL",
            "zip": "62701",
            "country_code": "US",
        },
        customer_email="ada@example.com",
    )
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def make_fulfillment(
    lines=(("li_1", 2), ("li_2", 1)),
    numbers=(UPS_1, UPS_2),
    carrier: str = "UPS",
    urls=None,
    buyer_ref: str | None = None,
) -> Fulfillment:
    return Fulfillment(
        id="ful_test",
        source="shopify",
        carrier=carrier,
        tracking_numbers=list(numbers),
        tracking_urls=list(urls) if urls is not None else [UPS_URL % n for n in numbers],
        line_items=[FulfillmentLine(line_id, quantity) for line_id, quantity in lines],
        created_at="2026-03-03T14:00:01.000Z",
        updated_at="2026-03-03T14:00:01.000Z",
        source_ref="gid://shopify/Fulfillment/4903611252993",
        delivery=Delivery(buyer_ref=buyer_ref),
    )


def no_shipments_yet(rsps) -> None:
    rsps.get(f"{API}/orders/{BUYER_ORDER_REF}/shipments", status=204)


# ---- read_order ----------------------------------------------------------------------------------


def test_read_order_maps_products_and_the_first_shipping_address(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("order"))
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=load("shipping_addresses"))

    order = adapter.read_order("100")

    assert order.ref == "100"
    assert order.lines == [
        StoreLine("201", "MUG-BLUE", 2, "Blue mug"),  # the ref is the order_product_id
        StoreLine("202", "MUG-RED", 1, "Red mug"),
        StoreLine("203", "", 1, "Gift wrap"),
    ]
    assert order.shipping_address == {
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "address1": "1 Main St",
        "city": "Springfield",
        "province": "Illinois",
        "zip": "62701",
        "country_code": "US",
        "phone": "+1 217 555 0100",
    }  # empty fields (street_2) are left out
    assert order.email == "ada@example.com"  # the billing email
    request = rsps.calls[0].request
    assert request.headers["X-Auth-Token"] == TOKEN
    assert request.headers["Accept"] == "application/json"
    assert "X-Auth-Client" not in request.headers


def test_read_order_without_shipping_addresses_uses_the_billing_address(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("order"))
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=[])

    order = adapter.read_order("100")

    assert order.shipping_address == {
        "name": "Ada Lovelace",
        "address1": "9 Billing Rd",
        "city": "Chicago",
        "province": "Illinois",
        "zip": "60601",
        "country_code": "US",
    }
    assert order.email == "ada@example.com"


def test_read_order_of_an_unknown_order_is_none(adapter, rsps):
    rsps.get(f"{API}/orders/999", json=load("not_found"), status=404)

    assert adapter.read_order("999") is None
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("status_id", "payment"),
    [
        (0, UNPAID),  # Incomplete: store/order/created fires for these too
        (1, UNPAID),  # Pending
        (7, UNPAID),  # Awaiting Payment
        (12, UNPAID),  # Manual Verification Required
        (13, UNPAID),  # Disputed
        (14, UNPAID),  # Partially Refunded: unpaid to BigCommerce, a person decides
        (11, PAID),  # Awaiting Fulfillment
        (9, PAID),  # Awaiting Shipment
        (8, PAID),  # Awaiting Pickup
        (3, PAID),  # Partially Shipped
        (2, PAID),  # Shipped
        (10, PAID),  # Completed
        (5, CANCELLED),  # Cancelled
        (6, CANCELLED),  # Declined
        (4, CANCELLED),  # Refunded
    ],
)
def test_read_order_tells_the_payment_by_the_status(adapter, rsps, status_id, payment):
    rsps.get(f"{API}/orders/100", json={**load("order"), "status_id": status_id})
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=load("shipping_addresses"))

    assert adapter.read_order("100").payment == payment


def many_products(first: int, count: int) -> list[dict]:
    """`count` products of order 100 from id `first`, each a mug of its own SKU."""
    product = load("products")[0]
    return [{**product, "id": first + n, "sku": f"MUG-{first + n}"} for n in range(count)]


def test_read_order_reads_every_page_of_products(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("order"))
    for page, products in ((1, many_products(1000, 250)), (2, many_products(2000, 3))):
        rsps.get(
            f"{API}/orders/100/products",
            json=products,
            match=[matchers.query_param_matcher({"limit": "250", "page": str(page)})],
        )
    rsps.get(f"{API}/orders/100/shipping_addresses", json=load("shipping_addresses"))

    order = adapter.read_order("100")

    assert len(order.lines) == 253
    assert order.lines[-1].ref == "2002"


def test_a_full_last_page_of_products_ends_at_the_empty_next_page(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("order"))
    rsps.get(
        f"{API}/orders/100/products",
        json=many_products(1000, 250),
        match=[matchers.query_param_matcher({"limit": "250", "page": "1"})],
    )
    rsps.get(
        f"{API}/orders/100/products",
        status=204,  # a page past the end: no content
        match=[matchers.query_param_matcher({"limit": "250", "page": "2"})],
    )
    rsps.get(f"{API}/orders/100/shipping_addresses", json=load("shipping_addresses"))

    assert len(adapter.read_order("100").lines) == 250


# ---- create_order --------------------------------------------------------------------------------


def no_earlier_order(rsps) -> None:
    """No order of the store carries our id: 204, no body."""
    rsps.get(
        f"{API}/orders",
        status=204,
        match=[matchers.query_param_matcher({"external_order_id": "ord_test"})],
    )


def test_create_order_posts_custom_products_and_maps_them_by_sku(adapter, rsps):
    no_earlier_order(rsps)
    rsps.post(f"{API}/orders", json=load("order_created_in_store"), status=201)
    rsps.get(f"{API}/orders/5001/products", json=load("products_created_in_store"))  # reversed

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(ref="5001", line_refs={"li_1": "301", "li_2": "302"})
    assert [c.request.method for c in rsps.calls] == ["GET", "POST", "GET"]
    body = sent(rsps, 1)
    assert body["external_order_id"] == "ord_test"  # what a later attempt looks for
    assert body["customer_id"] == 0  # a guest order
    assert body["products"] == [
        {"name": "Blue mug", "sku": "AC-100", "quantity": 2, "price_inc_tax": 0, "price_ex_tax": 0},
        {"name": "Red mug", "sku": "AC-200", "quantity": 1, "price_inc_tax": 0, "price_ex_tax": 0},
    ]  # custom products (no product_id), with the seller's SKU
    billing = body["billing_address"]
    assert {k: billing[k] for k in ("first_name", "last_name", "street_1", "city", "zip")} == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "street_1": "1 Main St",
        "city": "Springfield",
        "zip": "62701",
    }
    assert billing["country_iso2"] == "US"
    assert billing["email"] == OWNER_EMAIL  # BigCommerce emails the billing address
    assert body["shipping_addresses"] == [billing]
    assert "ord_test" in body["staff_notes"]  # for the seller, who reads the order
    assert rsps.calls[1].request.headers["X-Auth-Token"] == TOKEN


def test_create_order_with_a_one_word_name_fills_both_name_fields(adapter, rsps):
    no_earlier_order(rsps)
    rsps.post(f"{API}/orders", json=load("order_created_in_store"), status=201)
    rsps.get(f"{API}/orders/5001/products", json=load("products_created_in_store"))
    order = make_order()
    order.shipping_address = {**order.shipping_address, "name": "Cher"}

    adapter.create_order(order)

    billing = sent(rsps, 1)["billing_address"]
    assert (billing["first_name"], billing["last_name"]) == ("Cher", "Cher")


def test_create_order_maps_a_product_without_sku_by_name_and_repeated_skus_once_each(adapter, rsps):
    order = make_order()
    order.line_items = [
        LineItem("li_1", "MUG-BLUE", "AC-100", "Blue mug", 2),
        LineItem("li_2", "MUG-BLUE-GIFT", "AC-100", "Blue mug (gift)", 1),
        LineItem("li_3", "MUG-RED", "AC-200", "Red mug", 1),
    ]
    products = load("products_created_in_store")
    products[0]["sku"] = ""  # the red mug came back without its SKU
    products.append({**products[1], "id": 303, "quantity": 1, "name": "Blue mug (gift)"})
    no_earlier_order(rsps)
    rsps.post(f"{API}/orders", json=load("order_created_in_store"), status=201)
    rsps.get(f"{API}/orders/5001/products", json=products)

    created = adapter.create_order(order)

    assert created.line_refs == {"li_1": "301", "li_2": "303", "li_3": "302"}


@pytest.mark.parametrize(
    ("country", "province", "state"),
    [
        ("US", "IL", "Illinois"),
        ("us", "dc", "District of Columbia"),
        ("CA", "QC", "Quebec"),
        ("AU", "NSW", "New South Wales"),
        ("US", "Illinois", "Illinois"),  # a name already
        ("GB", "Kent", "Kent"),  # a county, as given
        ("NL", "", ""),
    ],
)
def test_create_order_names_the_state_and_sends_the_country_code(
    adapter, rsps, country, province, state
):
    no_earlier_order(rsps)
    rsps.post(f"{API}/orders", json=load("order_created_in_store"), status=201)
    rsps.get(f"{API}/orders/5001/products", json=load("products_created_in_store"))
    order = make_order()
    order.shipping_address = {
        **order.shipping_address,
        "country_code": country,
        "province": province,
    }

    adapter.create_order(order)

    body = sent(rsps, 1)
    for address in (body["billing_address"], body["shipping_addresses"][0]):
        assert (address["state"], address["country_iso2"]) == (state, country.upper())


@pytest.mark.parametrize("given", [None, "", " ", "9"])
def test_create_order_without_a_postcode_bills_to_one_that_says_so(adapter, rsps, given):
    no_earlier_order(rsps)
    rsps.post(f"{API}/orders", json=load("order_created_in_store"), status=201)
    rsps.get(f"{API}/orders/5001/products", json=load("products_created_in_store"))
    order = make_order()
    order.shipping_address = {
        "name": "Ada Lovelace",
        "address1": "1 Queen's Road Central",
        "city": "Hong Kong",
        "zip": given,
        "country_code": "HK",
    }

    adapter.create_order(order)

    body = sent(rsps, 1)
    assert body["billing_address"]["zip"] == "N/A"  # BigCommerce needs two characters or more
    assert body["shipping_addresses"][0]["zip"] == (given or "").strip()


def test_create_order_returns_an_order_an_earlier_attempt_created_without_posting(adapter, rsps):
    earlier = {**load("order_created_in_store"), "external_order_id": "ord_test"}
    rsps.get(
        f"{API}/orders",
        json=[earlier],
        match=[matchers.query_param_matcher({"external_order_id": "ord_test"})],
    )
    rsps.get(f"{API}/orders/5001/products", json=load("products_created_in_store"))
    # no POST registered: creating the order again would fail the test

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(ref="5001", line_refs={"li_1": "301", "li_2": "302"})
    assert [(c.request.method, c.request.url.split("?")[0]) for c in rsps.calls] == [
        ("GET", f"{API}/orders"),
        ("GET", f"{API}/orders/5001/products"),
    ]


# ---- read_fulfillments ---------------------------------------------------------------------------


def test_read_fulfillments_of_an_order_without_shipments_is_empty(adapter, rsps):
    rsps.get(f"{API}/orders/5001/shipments", status=204)  # BigCommerce's "none", with no body

    assert adapter.read_fulfillments("5001") == []


def test_read_fulfillments_maps_each_shipment(adapter, rsps):
    rsps.get(f"{API}/orders/5001/shipments", json=load("shipments"))

    ups, dhl, courier = adapter.read_fulfillments("5001")

    assert ups == ObservedFulfillment(
        source_ref="shipment:9",
        status="success",
        carrier="UPS",  # shipping_provider "ups"
        tracking_numbers=[UPS_1],
        tracking_urls=["https://www.ups.com/track?tracknum=1Z5R89390357567127"],  # generated
        lines=[("301", 2)],
        updated_at=None,
    )
    assert dhl.carrier == "DHL"  # tracking_carrier "dhl" (an AfterShip slug)
    assert dhl.tracking_numbers == [DHL_NUMBER]
    assert dhl.tracking_urls == [DHL_URL]
    assert dhl.lines == [("302", 1)]
    assert courier.source_ref == "shipment:11"
    assert courier.carrier == "Local Courier"  # no provider or slug: the shipping method
    assert courier.tracking_numbers == []
    assert courier.tracking_urls == ["https://courier.example/track/LC-20260303-7"]
    assert courier.lines == []


def test_read_fulfillments_prefers_the_custom_tracking_link(adapter, rsps):
    shipment = load("shipments")[0]
    shipment["tracking_link"] = "https://example.com/own-link"
    rsps.get(f"{API}/orders/5001/shipments", json=[shipment])

    (seen,) = adapter.read_fulfillments("5001")

    assert seen.tracking_urls == ["https://example.com/own-link"]


# ---- forward_fulfillment -------------------------------------------------------------------------


def test_forward_creates_a_shipment_with_items_address_and_every_number(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "shipment:9"
    assert len(rsps.calls) == 3
    assert sent(rsps, 2) == {
        "order_address_id": 51,
        "items": [
            {"order_product_id": 201, "quantity": 2},
            {"order_product_id": 202, "quantity": 1},
        ],
        "tracking_number": UPS_1,  # BigCommerce holds one number per shipment
        "shipping_provider": "ups",  # BigCommerce builds the link itself
        "tracking_carrier": "",
        "comments": f"UPS tracking: {UPS_1}: {UPS_URL % UPS_1}; {UPS_2}: {UPS_URL % UPS_2}",
    }


@pytest.mark.parametrize(
    ("carrier", "provider"), [("UPS", "ups"), ("USPS", "usps"), ("FedEx", "fedex")]
)
def test_forward_names_known_carriers_as_shipping_provider(adapter, rsps, carrier, provider):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(make_order(), make_fulfillment(carrier=carrier, numbers=[UPS_1]))

    body = sent(rsps, 2)
    assert body["shipping_provider"] == provider
    assert body["tracking_carrier"] == ""
    assert "tracking_link" not in body


def test_forward_sends_dhl_as_the_aftership_tracking_carrier(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(
        make_order(), make_fulfillment(carrier="DHL", numbers=[DHL_NUMBER], urls=[DHL_URL])
    )

    body = sent(rsps, 2)
    assert body["shipping_provider"] == ""
    assert body["tracking_carrier"] == "dhl"
    assert body["tracking_number"] == DHL_NUMBER
    assert body["tracking_link"] == DHL_URL


def test_forward_with_an_unknown_carrier_sends_our_own_tracking_link(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)
    url = "https://track.acme-courier.example/ACX123456789"

    adapter.forward_fulfillment(
        make_order(), make_fulfillment(carrier="Acme Courier", numbers=["ACX123456789"], urls=[url])
    )

    body = sent(rsps, 2)
    assert (body["shipping_provider"], body["tracking_carrier"]) == ("", "")
    assert body["tracking_link"] == url
    assert body["comments"] == f"Acme Courier tracking: ACX123456789: {url}"


def test_forward_leaves_out_a_tracking_link_over_500_characters(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)
    url = "https://track.acme-courier.example/?n=ACX123456789&pad=" + "x" * 500

    adapter.forward_fulfillment(
        make_order(), make_fulfillment(carrier="Acme Courier", numbers=["ACX123456789"], urls=[url])
    )

    body = sent(rsps, 2)
    assert "tracking_link" not in body
    assert "ACX123456789" in body["comments"]


def test_forward_keeps_tracking_number_within_50_characters_and_lists_all_in_comments(
    adapter, rsps
):
    long_number = "LX" + "7" * 58  # 60 characters, as a seller store may hold
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(
        make_order(),
        make_fulfillment(carrier="Acme Courier", numbers=[long_number, "ACX123456789"], urls=[]),
    )

    body = sent(rsps, 2)
    assert 0 < len(body["tracking_number"]) <= 50
    assert long_number in body["comments"]
    assert "ACX123456789" in body["comments"]


def test_forward_a_partial_fulfillment_ships_only_its_quantity(adapter, rsps):
    products = load("products")
    products[0]["quantity_shipped"] = 1  # one blue mug went out already
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=products)
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(make_order(), make_fulfillment(lines=[("li_1", 1)]))

    assert sent(rsps, 2)["items"] == [{"order_product_id": 201, "quantity": 1}]


def test_forward_refuses_more_than_the_buyer_order_has_left_to_ship(adapter, rsps):
    products = load("products")
    products[0]["quantity_shipped"] = 1  # 2 ordered - 1 shipped = 1 left
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=products)

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert "MUG-BLUE" in str(raised.value) and "only 1" in str(raised.value)
    assert len(rsps.calls) == 2  # no shipment created


def test_forward_refuses_a_line_the_buyer_order_does_not_have(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products")[1:])  # no product 201

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert "MUG-BLUE" in str(raised.value)
    assert len(rsps.calls) == 2


def test_forward_finds_a_line_on_a_later_page_of_products(adapter, rsps):
    order = make_order()
    order.line_items[1].buyer_ref = "2000"  # the 251st product of the buyer's order
    no_shipments_yet(rsps)
    pages = {1: load("products")[:1] + many_products(1000, 249), 2: many_products(2000, 1)}
    for page, products in pages.items():
        rsps.get(
            f"{API}/orders/100/products",
            json=products,
            match=[matchers.query_param_matcher({"limit": "250", "page": str(page)})],
        )
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(order, make_fulfillment())

    assert sent(rsps, 3)["items"] == [
        {"order_product_id": 201, "quantity": 2},
        {"order_product_id": 2000, "quantity": 1},
    ]


def test_forward_reads_the_address_id_from_shipping_addresses_when_products_lack_it(adapter, rsps):
    products = load("products")
    for product in products:
        del product["order_address_id"]
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=products)
    rsps.get(f"{API}/orders/100/shipping_addresses", json=load("shipping_addresses"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert sent(rsps, 3)["order_address_id"] == 51


def test_forward_updates_the_tracking_of_a_known_shipment(adapter, rsps):
    rsps.put(f"{API}/orders/100/shipments/9", json=load("shipment_created"))

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment(buyer_ref="shipment:9"))

    assert ref == "shipment:9"
    assert len(rsps.calls) == 1  # no look-up, no create
    assert sent(rsps, 0) == {
        "tracking_number": UPS_1,
        "shipping_provider": "ups",
        "tracking_carrier": "",
        "comments": f"UPS tracking: {UPS_1}: {UPS_URL % UPS_1}; {UPS_2}: {UPS_URL % UPS_2}",
    }  # PUT takes no items or address


def test_forward_looks_before_creating_and_adopts_a_shipment_with_our_number(adapter, rsps):
    comments = f"UPS tracking: {UPS_1}: {UPS_URL % UPS_1}; {UPS_2}: {UPS_URL % UPS_2}"
    earlier = {**load("shipment_created"), "id": 12, "tracking_number": UPS_2, "comments": comments}
    rsps.get(f"{API}/orders/100/shipments", json=[earlier])  # no POST or PUT registered

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "shipment:12"
    assert len(rsps.calls) == 1  # its comments are what we would send: nothing to bring up


def test_forward_adopts_a_shipment_whose_comments_differ_and_puts_our_fields_once(adapter, rsps):
    earlier = {**load("shipment_created"), "id": 12, "tracking_number": UPS_2}  # links missing
    rsps.get(f"{API}/orders/100/shipments", json=[earlier])
    rsps.put(f"{API}/orders/100/shipments/12", json=earlier)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "shipment:12"
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT"]
    assert rsps.calls[1].request.url == f"{API}/orders/100/shipments/12"
    assert sent(rsps, 1) == {
        "tracking_number": UPS_1,
        "shipping_provider": "ups",
        "tracking_carrier": "",
        "comments": f"UPS tracking: {UPS_1}: {UPS_URL % UPS_1}; {UPS_2}: {UPS_URL % UPS_2}",
    }  # no items or address: a PUT only changes the tracking


def test_forward_creates_when_no_shipment_has_our_numbers(adapter, rsps):
    other = {**load("shipment_created"), "id": 12, "tracking_number": "1Z0000000000000000"}
    rsps.get(f"{API}/orders/100/shipments", json=[other])
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)

    assert adapter.forward_fulfillment(make_order(), make_fulfillment()) == "shipment:9"
    assert rsps.calls[2].request.method == "POST"


def test_forward_creates_when_our_number_ships_other_items(adapter, rsps):
    shipment = load("shipment_created")
    other_items = {**shipment, "id": 12, "tracking_number": UPS_1, "items": shipment["items"][:1]}
    rsps.get(f"{API}/orders/100/shipments", json=[other_items])
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=shipment, status=201)

    assert adapter.forward_fulfillment(make_order(), make_fulfillment()) == "shipment:9"
    assert rsps.calls[2].request.method == "POST"


def test_forward_creates_when_a_sibling_already_claimed_the_matching_shipment(adapter, rsps):
    earlier = {**load("shipment_created"), "id": 12, "tracking_number": UPS_1}
    rsps.get(f"{API}/orders/100/shipments", json=[earlier])
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(f"{API}/orders/100/shipments", json=load("shipment_created"), status=201)
    order = make_order()
    order.fulfillments.append(
        replace(
            make_fulfillment(),
            id="ful_sibling",
            delivery=Delivery("delivered", 1, None, "shipment:12"),
        )
    )

    assert adapter.forward_fulfillment(order, make_fulfillment()) == "shipment:9"
    assert rsps.calls[2].request.method == "POST"


def test_forward_adopts_an_earlier_attempts_shipment_for_a_number_over_50_characters(adapter, rsps):
    long_number = "LX" + "7" * 58  # the store kept only its first 50 characters
    earlier = {
        **load("shipment_created"),
        "id": 12,
        "tracking_number": long_number[:50],
        "comments": f"Acme Courier tracking: {long_number}",
    }
    rsps.get(f"{API}/orders/100/shipments", json=[earlier])  # no POST or PUT registered

    ref = adapter.forward_fulfillment(
        make_order(), make_fulfillment(carrier="Acme Courier", numbers=[long_number], urls=[])
    )

    assert ref == "shipment:12"
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_forward_brings_an_adopted_shipment_up_to_date(adapter, rsps):
    # attempt 1 created the shipment with UPS_1 only and died before recording it; UPS_2 was
    # added since
    earlier = {**load("shipment_created"), "id": 12, "comments": f"UPS tracking: {UPS_1}"}
    rsps.get(f"{API}/orders/100/shipments", json=[earlier])
    rsps.put(f"{API}/orders/100/shipments/12", json=earlier)

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment(numbers=(UPS_1, UPS_2)))

    assert ref == "shipment:12"
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT"]
    assert sent(rsps, 1)["comments"] == (
        f"UPS tracking: {UPS_1}: {UPS_URL % UPS_1}; {UPS_2}: {UPS_URL % UPS_2}"
    )
    assert "items" not in sent(rsps, 1)


# ---- mark_shipped --------------------------------------------------------------------------------


def test_mark_shipped_sets_status_2(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("order"))  # status_id 11
    rsps.put(f"{API}/orders/100", json={**load("order"), "status_id": 2, "status": "Shipped"})

    note = adapter.mark_shipped(make_order())

    assert sent(rsps, 1) == {"status_id": 2}
    assert "Shipped" in note


def test_mark_shipped_leaves_an_order_that_is_already_shipped(adapter, rsps):
    rsps.get(f"{API}/orders/100", json={**load("order"), "status_id": 2, "status": "Shipped"})

    note = adapter.mark_shipped(make_order())

    assert len(rsps.calls) == 1  # no PUT
    assert "Shipped" in note


def test_mark_shipped_on_an_unknown_order_is_permanent(adapter, rsps):
    rsps.get(f"{API}/orders/100", json=load("not_found"), status=404)

    with pytest.raises(PlatformError) as raised:
        adapter.mark_shipped(make_order())

    assert raised.value.permanent is True


# ---- changed_orders ------------------------------------------------------------------------------


def listing(field: str = "date_modified", page: int = 1, since: str = SINCE):
    return matchers.query_param_matcher(
        {f"min_{field}": since, "sort": f"{field}:asc", "limit": "50", "page": str(page)}
    )


def test_changed_orders_lists_by_date_modified_with_iso_dates(adapter, rsps):
    rsps.get(f"{API}/orders", json=load("orders_list"), match=[listing()])

    page = adapter.changed_orders(SINCE, None)

    assert page == ChangedPage(
        [
            ChangedOrder(ref="5001", updated_at="2026-03-03T14:00:05Z"),
            ChangedOrder(ref="5003", updated_at="2026-03-03T14:45:10Z"),  # -0500 made UTC
        ],
        None,  # a short page is the last
    )


def test_changed_orders_pages_while_pages_are_full(adapter, rsps):
    at = "2026-03-03T14:00:05Z"
    full = [
        {
            **load("orders_list")[0],
            "id": 6000 + n,
            "date_modified": "Tue, 03 Mar 2026 14:00:05 +0000",
        }
        for n in range(50)
    ]
    ids = tuple(str(6000 + n) for n in range(50))
    rsps.get(f"{API}/orders", json=full, match=[listing()])
    # the next page starts again at the newest time seen: the same 50, all seen already
    rsps.get(f"{API}/orders", json=full, match=[listing(since=at)])
    # a whole page at that one time: on by page number within it
    rsps.get(f"{API}/orders", status=204, match=[listing(page=2, since=at)])  # nothing more

    first = adapter.changed_orders(SINCE, None)
    second = adapter.changed_orders(SINCE, first.next_page)
    third = adapter.changed_orders(SINCE, second.next_page)

    assert len(first.orders) == 50
    assert Keyset.parse(first.next_page, SINCE) == Keyset(at, ids, 1)
    assert second.orders == []
    keyset = Keyset.parse(second.next_page, SINCE)
    assert (keyset.at, set(keyset.seen), keyset.number) == (at, set(ids), 2)
    assert third == ChangedPage([], None)


def test_changed_orders_by_creation_filters_and_sorts_on_date_created(adapter, rsps):
    rsps.get(f"{API}/orders", json=load("orders_list"), match=[listing("date_created")])

    page = adapter.changed_orders(SINCE, None, created=True)

    assert page == ChangedPage(
        [
            ChangedOrder(ref="5001", updated_at="2026-03-02T15:16:00Z"),  # date_created
            ChangedOrder(ref="5003", updated_at="2026-03-03T14:30:00Z"),  # -0500 made UTC
        ],
        None,
    )  # the time the listing is ordered by, not date_modified


def test_changed_orders_by_creation_pages_while_pages_are_full(adapter, rsps):
    full = [{**load("orders_list")[0], "id": 6000 + n} for n in range(50)]
    rsps.get(f"{API}/orders", json=full, match=[listing("date_created")])

    page = adapter.changed_orders(SINCE, None, created=True)

    ids = tuple(str(6000 + n) for n in range(50))
    assert Keyset.parse(page.next_page, SINCE) == Keyset("2026-03-02T15:16:00Z", ids, 1)
    assert {o.updated_at for o in page.orders} == {"2026-03-02T15:16:00Z"}


def test_changed_orders_does_not_skip_an_order_when_one_listed_already_changes(adapter, rsps):
    # page 1: A..J at 14:00:00, 14:00:01, ...; J, the last, at T
    def stamp(second: int) -> str:
        return f"Tue, 03 Mar 2026 14:{second // 60:02d}:{second % 60:02d} +0000"

    size = adapter.page_size
    first_page = [
        {**load("orders_list")[0], "id": 6000 + n, "date_modified": stamp(n)} for n in range(size)
    ]
    j, t = str(6000 + size - 1), f"2026-03-03T14:{(size - 1) // 60:02d}:{(size - 1) % 60:02d}Z"
    # meanwhile C (listed already) changed and moved to the end: by page number, page 2 would
    # start one order too late and K, now at offset `size - 1`, would never be listed
    k = {**load("orders_list")[0], "id": 7000, "date_modified": stamp(size - 1)}  # also at T
    c = {**first_page[2], "date_modified": "Tue, 03 Mar 2026 15:00:00 +0000"}
    rsps.get(f"{API}/orders", json=first_page, match=[listing()])
    rsps.get(f"{API}/orders", json=[first_page[-1], k, c], match=[listing(since=t)])

    first = adapter.changed_orders(SINCE, None)
    second = adapter.changed_orders(SINCE, first.next_page)

    assert first.orders[-1] == ChangedOrder(ref=j, updated_at=t)
    assert "min_date_modified=" + t.replace(":", "%3A") in rsps.calls[1].request.url
    assert second == ChangedPage(
        [
            ChangedOrder(ref="7000", updated_at=t),  # K, at the same time as J
            ChangedOrder(ref="6002", updated_at="2026-03-03T15:00:00Z"),  # C, changed again
        ],
        None,
    )
    refs = [o.ref for o in first.orders + second.orders]
    assert refs.count(j) == 1


def test_changed_orders_escapes_the_cursor(adapter, rsps):
    since = "2026-03-01T10:00:00+01:00"  # a bare "+" would arrive as a space
    rsps.get(f"{API}/orders", json=[], match=[listing(since=since)])

    assert adapter.changed_orders(since, None) == ChangedPage([], None)
    assert "min_date_modified=2026-03-01T10%3A00%3A00%2B01%3A00" in rsps.calls[0].request.url


# ---- rate limits ---------------------------------------------------------------------------------


def test_each_answer_remembers_the_quota_in_redis(adapter, rsps, redis):
    rsps.get(f"{API}/orders/100", json=load("order"), headers=quota(120, 25000))
    rsps.get(f"{API}/orders/100/products", json=load("products"), headers=quota(119, 24000))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=[], headers=quota(118, 23500))
    before = time.time()

    adapter.read_order("100")

    state = json.loads(redis.get(key(PACE_KEY)))
    assert state["left"] == 118
    assert before + 23.5 <= state["reset_at"] <= time.time() + 23.5
    assert 0 < redis.ttl(key(PACE_KEY)) <= 3600
    assert counters(redis)["platform_calls_bigcommerce"] == 3


def test_a_nearly_spent_quota_waits_before_the_next_call(adapter, rsps, clock):
    rsps.get(f"{API}/orders/100", json=load("order"), headers=quota(1, 1500))
    rsps.get(f"{API}/orders/100/products", json=load("products"), headers=quota(149, 30000))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=[], headers=quota(148, 29900))

    adapter.read_order("100")

    assert clock.sleeps == [pytest.approx(1.5)]  # before the second call only
    assert len(rsps.calls) == 3


def test_plenty_of_quota_left_does_not_wait(adapter, rsps, clock):
    rsps.get(f"{API}/orders/100", json=load("order"), headers=quota(2, 29000))
    rsps.get(f"{API}/orders/100/products", json=load("products"), headers=quota(140, 29000))
    rsps.get(f"{API}/orders/100/shipping_addresses", json=[], headers=quota(139, 28000))

    adapter.read_order("100")

    assert clock.sleeps == []


def test_a_quota_spent_by_another_process_paces_this_one(adapter, rsps, store, clock):
    store.set_pace(PACE_KEY, {"left": 0.0, "reset_at": clock.now + 2.5})
    rsps.get(f"{API}/orders/100", json=load("not_found"), status=404)

    adapter.read_order("100")

    assert clock.sleeps == [pytest.approx(2.5)]


def test_a_quota_spent_for_long_gives_up_for_now_without_calling(adapter, rsps, store, clock):
    store.set_pace(PACE_KEY, {"left": 0.0, "reset_at": clock.now + 25})

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False
    assert raised.value.retry_after == pytest.approx(25)
    assert raised.value.retry_after > MAX_RATE_WAIT
    assert clock.sleeps == []
    assert len(rsps.calls) == 0


def test_a_spent_quota_whose_window_has_passed_does_not_wait(adapter, rsps, store, clock):
    store.set_pace(PACE_KEY, {"left": 0.0, "reset_at": clock.now - 1})
    rsps.get(f"{API}/orders/100", json=load("not_found"), status=404)

    assert adapter.read_order("100") is None
    assert clock.sleeps == []


def test_429_with_a_short_reset_waits_it_out_and_retries(adapter, rsps, clock):
    rsps.get(f"{API}/orders/100", json={"status": 429}, status=429, headers=quota(0, 1200))
    rsps.get(f"{API}/orders/100", json=load("not_found"), status=404, headers=quota(149, 30000))

    assert adapter.read_order("100") is None

    assert clock.sleeps == [pytest.approx(1.2)]  # the reset, once
    assert len(rsps.calls) == 2


def test_a_mutation_throttled_with_429_is_sent_again_once_the_quota_resets(adapter, rsps, clock):
    rsps.put(f"{API}/orders/100", status=429, headers=quota(0, 800))
    rsps.put(f"{API}/orders/100", json=load("order"), headers=quota(149, 30000))

    adapter.call("PUT", "/orders/100", json={"status_id": 2})

    assert len(rsps.calls) == 2
    assert sent(rsps, 0) == sent(rsps, 1) == {"status_id": 2}
    assert sum(clock.sleeps) == pytest.approx(0.8)


def test_429_with_a_long_reset_is_retryable_with_retry_after(adapter, rsps, clock):
    rsps.get(f"{API}/orders/100", status=429, headers=quota(0, 20000))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False
    assert raised.value.retry_after == pytest.approx(20)
    assert clock.sleeps == []
    assert len(rsps.calls) == 1


def test_429_without_rate_headers_is_retryable(adapter, rsps, clock):
    rsps.get(f"{API}/orders/100", status=429)  # platform load, not the store's quota

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False
    assert raised.value.retry_after and raised.value.retry_after > 0
    assert clock.sleeps == []


def test_429_again_and_again_gives_up_retryable(adapter, rsps, clock):
    for _ in range(RATE_RETRIES + 1):
        rsps.get(f"{API}/orders/100", status=429, headers=quota(0, 500))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False
    assert raised.value.retry_after and raised.value.retry_after > 0
    assert len(rsps.calls) == RATE_RETRIES + 1


# ---- HTTP errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retryable(adapter, rsps, status):
    rsps.get(
        f"{API}/orders/100",
        body="<html>upstream trouble</html>",
        status=status,
        headers={"Retry-After": "7"},
    )

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False
    assert raised.value.retry_after == 7.0
    assert str(status) in str(raised.value)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent(adapter, rsps, status):
    rsps.get(
        f"{API}/orders/100",
        json=[{"status": status, "message": "You are not authorized to access this resource."}],
        status=status,
    )

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is True
    assert len(rsps.calls) == 1


def test_a_refused_shipment_is_permanent_with_the_message(adapter, rsps):
    no_shipments_yet(rsps)
    rsps.get(f"{API}/orders/100/products", json=load("products"))
    rsps.post(
        f"{API}/orders/100/shipments",
        json=[{"status": 400, "message": "The field 'order_address_id' is invalid."}],
        status=400,
    )

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert "order_address_id" in str(raised.value)


def test_unreachable_bigcommerce_is_retryable(adapter, rsps):
    rsps.get(f"{API}/orders/100", body=requests.ConnectionError("connection refused"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order("100")

    assert raised.value.permanent is False


def test_an_answer_that_is_not_json_is_an_error(adapter, rsps):
    rsps.get(f"{API}/orders/100", body="<html>maintenance</html>", status=200)

    with pytest.raises(PlatformError):
        adapter.read_order("100")


def test_the_default_base_is_the_bigcommerce_api(store, config, rsps):
    adapter = BigCommerceAdapter(
        {"store_hash": "xyz9", "access_token": TOKEN}, store, config, OWNER_EMAIL
    )
    rsps.get("https://api.bigcommerce.com/stores/xyz9/v2/orders/1", status=404)

    assert adapter.read_order("1") is None


def test_the_secret_of_a_signed_hook_is_its_raw_bytes():
    """verify_webhook matches BigCommerce's sample: Webhook(base64(client_secret))."""
    secret, raw, stamp = "client-secret-abc", b'{"scope":"store/order/created"}', int(time.time())
    signature = Webhook(base64.b64encode(secret.encode()).decode()).sign(
        "msg_1", datetime.fromtimestamp(stamp, UTC), raw.decode()
    )
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }

    assert bigcommerce.verify_webhook(secret, raw, headers) is True
    assert bigcommerce.verify_webhook("other-secret", raw, headers) is False
