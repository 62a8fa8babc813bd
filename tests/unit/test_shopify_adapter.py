"""The Shopify GraphQL adapter against a mocked Admin API (`responses`); pacing state in real Redis.

Payload shapes: ../fixtures/shopify (see /work/shared/platforms/shopify.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import responses

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
from gateway.platforms import shopify
from gateway.platforms.base import CreatedOrder, PlatformError, StoreLine
from gateway.platforms.shopify import (
    MAX_PACING_WAIT,
    THROTTLE_RETRIES,
    ShopFacts,
    ShopifyAdapter,
)
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import key
from gateway.tracking import canonical_carrier

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SHOP = "acme.myshopify.com"
BASE = "http://shop.test"
TOKEN = "shpat_test_token"
PACE_KEY = f"pace:shopify:{SHOP}"

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s"

BUYER_ORDER_REF = "820982911946154508"
BUYER_LINE_BLUE = "gid://shopify/LineItem/466157049"
BUYER_LINE_RED = "gid://shopify/LineItem/518995019"
FO_OPEN = "gid://shopify/FulfillmentOrder/1046000801"
FO_IN_PROGRESS = "gid://shopify/FulfillmentOrder/1046000802"


def load(name: str) -> dict:
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
def adapter(store, config, monkeypatch) -> ShopifyAdapter:
    connection = {"shop_domain": SHOP, "access_token": TOKEN, "api_base_url": BASE + "/"}
    adapter = ShopifyAdapter(connection, store, config)
    # A USD shop on a paid plan, read already: creating an order asks nothing more of it.
    facts = {(adapter.url, SHOP): (time.time(), ShopFacts("USD", orders_limited=False))}
    monkeypatch.setattr(shopify, "SHOP_FACTS_CACHE", facts)
    return adapter


@pytest.fixture
def url(config) -> str:
    return f"{BASE}/admin/api/{shopify.api_version(config)}/graphql.json"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Replace the adapter's time.sleep with a recorder (time.time stays real)."""
    recorded: list[float] = []
    monkeypatch.setattr(shopify, "time", SimpleNamespace(time=time.time, sleep=recorded.append))
    return recorded


def sent(rsps, index: int) -> dict:
    """The GraphQL document and variables of the index-th call."""
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
            LineItem("li_1", "MUG-BLUE", "AC-100", "Blue mug", 2, buyer_ref=BUYER_LINE_BLUE),
            LineItem("li_2", "MUG-RED", "AC-200", "Red mug", 1, buyer_ref=BUYER_LINE_RED),
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
    lines=(("li_1", 2), ("li_2", 1)), numbers=(UPS_1, UPS_2), buyer_ref: str | None = None
) -> Fulfillment:
    return Fulfillment(
        id="ful_test",
        source="shopify",
        carrier="UPS",
        tracking_numbers=list(numbers),
        tracking_urls=[UPS_URL % n for n in numbers],
        line_items=[FulfillmentLine(line_id, quantity) for line_id, quantity in lines],
        created_at="2026-03-03T14:00:01.000Z",
        updated_at="2026-03-03T14:00:01.000Z",
        source_ref="gid://shopify/Fulfillment/4903611252993",
        delivery=Delivery(buyer_ref=buyer_ref),
    )


# ---- read_order ----------------------------------------------------------------------------------


def test_read_order_maps_lines_address_and_email(adapter, rsps, url):
    rsps.post(url, json=load("graphql_read_order"))

    order = adapter.read_order(BUYER_ORDER_REF)

    assert order.ref == BUYER_ORDER_REF
    assert order.lines == [
        StoreLine(BUYER_LINE_BLUE, "MUG-BLUE", 2, "Blue mug"),
        StoreLine(BUYER_LINE_RED, "MUG-RED", 1, "Red mug"),
        StoreLine("gid://shopify/LineItem/703073504", "", 1, "Gift wrap"),  # null sku -> ""
    ]
    assert order.shipping_address == {
        "name": "Ada Lovelace",
        "address1": "1 Main St",
        "city": "Springfield",
        "province": "IL",
        "zip": "62701",
        "country_code": "US",
        "phone": "+1 217 555 0100",
    }  # null fields (company, address2) are left out
    assert order.email == "ada@example.com"

    request = rsps.calls[0].request
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    body = sent(rsps, 0)
    assert "GatewayReadOrder" in body["query"]
    assert body["variables"] == {"id": f"gid://shopify/Order/{BUYER_ORDER_REF}"}


def test_read_order_builds_the_name_from_first_and_last_when_absent(adapter, rsps, url):
    payload = load("graphql_read_order")
    del payload["data"]["order"]["shippingAddress"]["name"]
    rsps.post(url, json=payload)

    assert adapter.read_order(BUYER_ORDER_REF).shipping_address["name"] == "Ada Lovelace"


def test_read_order_passes_a_gid_through(adapter, rsps, url):
    rsps.post(url, json=load("graphql_read_order"))

    adapter.read_order(f"gid://shopify/Order/{BUYER_ORDER_REF}")

    assert sent(rsps, 0)["variables"]["id"] == f"gid://shopify/Order/{BUYER_ORDER_REF}"


def test_read_order_of_an_unknown_order_is_none(adapter, rsps, url):
    rsps.post(url, json=load("graphql_order_missing"))

    assert adapter.read_order("999") is None


def withheld(path: list[str]) -> dict:
    """The error Shopify adds for a protected customer data field it redacted (HTTP 200)."""
    return {
        "message": f"This app is not approved to use the {path[-1]} field. See "
        "https://partners.shopify.com/123/apps/456/customer_data for more details.",
        "locations": [{"line": 3, "column": 5}],
        "path": path,
    }


def test_read_order_with_customer_data_withheld_has_no_usable_address(adapter, rsps, url):
    answer = load("graphql_read_order")
    node = answer["data"]["order"]
    node["email"] = None
    address = node["shippingAddress"]
    redacted = ["firstName", "lastName", "name", "address1", "city", "zip", "phone"]
    for field in redacted:
        address[field] = None
    answer["errors"] = [withheld(["order", "email"])] + [
        withheld(["order", "shippingAddress", field]) for field in redacted
    ]
    rsps.post(url, json=answer)

    order = adapter.read_order(BUYER_ORDER_REF)  # no crash: the order is read, what is left

    assert order.shipping_address == {"province": "IL", "country_code": "US"}
    assert order.email is None
    assert [line.sku for line in order.lines] == ["MUG-BLUE", "MUG-RED", ""]
    assert order.payment == PAID


def test_read_order_denied_the_order_itself_is_still_a_permanent_error(adapter, rsps, url):
    denied = {
        "message": "This app is not approved to access the Order object. See "
        "https://partners.shopify.com/123/apps/456/customer_data for more details.",
        "path": ["order"],
    }
    rsps.post(url, json={"data": {"order": None}, "errors": [denied]})

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is True
    assert "not approved to access the Order object" in str(raised.value)


@pytest.mark.parametrize(
    ("financial_status", "cancelled_at", "payment"),
    [
        ("PAID", None, PAID),
        ("PARTIALLY_REFUNDED", None, PAID),
        ("AUTHORIZED", None, PAID),  # captured when fulfilled: it must travel to be paid
        ("PENDING", None, UNPAID),  # bank deposit, cash on delivery, payment terms...
        ("PARTIALLY_PAID", None, UNPAID),
        ("EXPIRED", None, UNPAID),
        (None, None, UNPAID),
        ("VOIDED", None, CANCELLED),
        ("REFUNDED", None, CANCELLED),
        ("PENDING", "2026-03-02T16:00:00Z", CANCELLED),
        ("PAID", "2026-03-02T16:00:00Z", CANCELLED),
    ],
)
def test_read_order_translates_the_financial_status_and_cancellation(
    adapter, rsps, url, financial_status, cancelled_at, payment
):
    answer = load("graphql_read_order")
    answer["data"]["order"].update(
        displayFinancialStatus=financial_status, cancelledAt=cancelled_at
    )
    rsps.post(url, json=answer)

    assert adapter.read_order(BUYER_ORDER_REF).payment == payment
    query = sent(rsps, 0)["query"]
    assert "displayFinancialStatus" in query and "cancelledAt" in query


# ---- create_order --------------------------------------------------------------------------------


DEFINED = {
    "data": {
        "metafieldDefinitionCreate": {
            "createdDefinition": {"id": "gid://shopify/MetafieldDefinition/1071567612"},
            "userErrors": [],
        }
    }
}
ALREADY_DEFINED = {
    "data": {
        "metafieldDefinitionCreate": {
            "createdDefinition": None,
            "userErrors": [
                {
                    "field": ["definition", "key"],
                    "message": "Key is in use for Order metafields on the 'app--1' namespace.",
                    "code": "TAKEN",
                }
            ],
        }
    }
}
NOT_CREATED_YET = {"data": {"orderByIdentifier": None}}
OUR_CUSTOM_ID = {"namespace": "$app", "key": "gateway_order_id", "value": "ord_test"}


def test_create_order_bypasses_inventory_sends_no_receipt_and_maps_lines_by_sku(adapter, rsps, url):
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=load("graphql_order_create"))  # its lines come back in reverse order

    created = adapter.create_order(make_order())

    assert created == CreatedOrder(
        ref="5523429081345",
        line_refs={
            "li_1": "gid://shopify/LineItem/13822279467265",  # AC-100
            "li_2": "gid://shopify/LineItem/13822279499999",  # AC-200
        },
    )
    # Looked up by our custom ID, not by a search (Shopify's search index can be behind).
    definition = sent(rsps, 0)
    assert "metafieldDefinitionCreate" in definition["query"]
    assert definition["variables"]["definition"] == {
        "namespace": "$app",
        "key": "gateway_order_id",
        "name": "Fulfillment gateway order",
        "ownerType": "ORDER",
        "type": "id",
    }
    look = sent(rsps, 1)
    assert "orderByIdentifier" in look["query"] and "query:" not in look["query"]
    assert look["variables"] == {"identifier": {"customId": OUR_CUSTOM_ID}}
    body = sent(rsps, 2)
    assert "orderCreate" in body["query"]
    variables = body["variables"]
    assert variables["order"]["metafields"] == [{**OUR_CUSTOM_ID, "type": "id"}]
    assert "gateway-ord_test" in variables["order"]["tags"]
    assert variables["options"]["inventoryBehaviour"] == "BYPASS"
    assert variables["options"]["sendReceipt"] is False
    assert variables["options"]["sendFulfillmentReceipt"] is False
    lines = variables["order"]["lineItems"]
    assert [(li["sku"], li["quantity"], li["title"]) for li in lines] == [
        ("AC-100", 2, "Blue mug"),
        ("AC-200", 1, "Red mug"),
    ]
    assert all(li["requiresShipping"] is True for li in lines)
    assert variables["order"]["email"] == "ada@example.com"
    assert variables["order"]["sourceIdentifier"] == "ord_test"
    assert variables["order"]["shippingAddress"] == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "address1": "1 Main St",
        "city": "Springfield",
        "provinceCode": "IL",
        "zip": "62701",
        "countryCode": "US",
    }


def test_create_order_without_customer_email_sends_none(adapter, rsps, url):
    rsps.post(url, json=ALREADY_DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=load("graphql_order_create"))

    adapter.create_order(make_order(customer_email=None))

    assert "email" not in sent(rsps, 2)["variables"]["order"]


def test_create_order_finds_an_earlier_attempts_order_instead_of_creating_again(adapter, rsps, url):
    created = load("graphql_order_create")["data"]["orderCreate"]["order"]
    rsps.post(url, json=ALREADY_DEFINED)  # an earlier call made the definition: fine
    rsps.post(url, json={"data": {"orderByIdentifier": created}})

    found = adapter.create_order(make_order())

    assert found.ref == "5523429081345"
    assert found.line_refs["li_1"] == "gid://shopify/LineItem/13822279467265"
    assert len(rsps.calls) == 2  # no orderCreate


def test_create_order_stops_at_a_definition_shopify_refuses(adapter, rsps, url):
    refused = {
        "data": {
            "metafieldDefinitionCreate": {
                "createdDefinition": None,
                "userErrors": [
                    {
                        "field": ["definition"],
                        "message": "Definitions limit reached for this owner type",
                        "code": "RESOURCE_TYPE_LIMIT_EXCEEDED",
                    }
                ],
            }
        }
    }
    rsps.post(url, json=refused)

    with pytest.raises(PlatformError) as raised:
        adapter.create_order(make_order())

    assert raised.value.permanent is True
    assert "Definitions limit reached" in str(raised.value)
    assert len(rsps.calls) == 1  # neither looked up nor created


def test_create_order_user_errors_are_permanent_and_keep_every_message(adapter, rsps, url):
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=load("graphql_order_create_user_errors"))

    with pytest.raises(PlatformError) as raised:
        adapter.create_order(make_order())

    assert raised.value.permanent is True
    message = str(raised.value)
    assert "order.lineItems.0.quantity: Quantity must be greater than or equal to 1" in message
    assert "order.shippingAddress.countryCode: Country code is invalid" in message


def shop_facts(currency: str = "USD", plan: str = "Basic") -> dict:
    """The shop's currency and plan, as GatewayShopFacts reads them."""
    shop = {
        "currencyCode": currency,
        "plan": {"partnerDevelopment": plan == "Development", "publicDisplayName": plan},
    }
    return {"data": {"shop": shop}}


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The adapter's time.time, moved by hand (clock[0] += seconds)."""
    now = [time.time()]
    monkeypatch.setattr(shopify, "time", SimpleNamespace(time=lambda: now[0], sleep=time.sleep))
    return now


def test_create_order_prices_in_the_shops_currency_read_once(adapter, rsps, url, monkeypatch):
    monkeypatch.setattr(shopify, "SHOP_FACTS_CACHE", {})  # a shop not read yet
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=shop_facts("EUR"))
    rsps.post(url, json=load("graphql_order_create"))
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=load("graphql_order_create"))

    adapter.create_order(make_order())
    adapter.create_order(make_order(id="ord_other"))  # no second read of the shop

    assert "GatewayShopFacts" in sent(rsps, 2)["query"]
    for index in (3, 6):
        order = sent(rsps, index)["variables"]["order"]
        assert order["currency"] == "EUR"
        assert {li["priceSet"]["shopMoney"]["currencyCode"] for li in order["lineItems"]} == {"EUR"}


def test_a_currency_refused_is_read_again_for_the_retry(adapter, rsps, url):
    refused = {
        "data": {
            "orderCreate": {
                "order": None,
                "userErrors": [
                    {
                        "field": [
                            "order",
                            "lineItems",
                            "0",
                            "priceSet",
                            "shopMoney",
                            "currencyCode",
                        ],
                        "message": "Currency code must be the order's currency (EUR)",
                        "code": "INVALID",
                    }
                ],
            }
        }
    }
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=refused)  # the shop changed its currency after we read it
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=shop_facts("EUR"))
    rsps.post(url, json=load("graphql_order_create"))

    with pytest.raises(PlatformError) as raised:
        adapter.create_order(make_order())
    assert raised.value.permanent is False
    adapter.create_order(make_order())

    assert sent(rsps, 6)["variables"]["order"]["currency"] == "EUR"


@pytest.mark.parametrize("plan", ["Development", "Trial", "Plus Trial"])
def test_a_development_or_trial_store_gets_one_new_order_every_12_seconds(
    adapter, rsps, url, monkeypatch, clock, plan
):
    monkeypatch.setattr(shopify, "SHOP_FACTS_CACHE", {})
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=shop_facts(plan=plan))
    rsps.post(url, json=load("graphql_order_create"))
    adapter.create_order(make_order(id="ord_1"))

    rsps.post(url, json=DEFINED)

    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    with pytest.raises(PlatformError) as second:
        adapter.create_order(make_order(id="ord_2"))
    with pytest.raises(PlatformError) as third:
        adapter.create_order(make_order(id="ord_3"))
    assert len(rsps.calls) == 8  # looked for, not created: orderCreate is not called
    assert (second.value.permanent, second.value.retry_after) == (False, 12)
    assert (third.value.permanent, third.value.retry_after) == (False, 24)

    clock[0] += 12  # the second's turn: its retry takes it, not a new one behind the third
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=load("graphql_order_create"))
    adapter.create_order(make_order(id="ord_2"))
    assert "orderCreate" in sent(rsps, 10)["query"]


REFUSAL = (
    "Exceeded order API rate limit, please try again in a minute. "
    "Upgrade to a paid account to remove this limit."
)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, {"errors": REFUSAL}),  # as the REST API refuses it
        (200, {"errors": [{"message": REFUSAL}]}),  # GraphQL's shape is not documented
    ],
)
def test_a_development_store_refusing_an_order_is_retried_a_minute_later(
    adapter, rsps, url, monkeypatch, clock, status, body
):
    monkeypatch.setattr(shopify, "SHOP_FACTS_CACHE", {})
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    rsps.post(url, json=shop_facts(plan="Development"))
    rsps.post(url, status=status, json=body)  # another app took the minute's five

    with pytest.raises(PlatformError) as raised:
        adapter.create_order(make_order())

    assert raised.value.permanent is False
    assert raised.value.retry_after == 60
    rsps.post(url, json=DEFINED)
    rsps.post(url, json=NOT_CREATED_YET)
    with pytest.raises(PlatformError) as next_one:  # the orders behind it wait their turn
        adapter.create_order(make_order(id="ord_next"))
    assert next_one.value.retry_after == 72


# ---- read_fulfillments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("SUCCESS", "success"),
        ("CANCELLED", "cancelled"),
        ("ERROR", "cancelled"),
        ("FAILURE", "cancelled"),
    ],
)
def test_read_fulfillments_translates_failed_states_to_cancelled(adapter, rsps, url, status, ours):
    answer = load("graphql_read_fulfillments")
    answer["data"]["order"]["fulfillments"][0]["status"] = status
    rsps.post(url, json=answer)

    first = adapter.read_fulfillments("5523429081345")[0]

    assert first.status == ours


def test_read_fulfillments_maps_tracking_lines_and_status(adapter, rsps, url):
    rsps.post(url, json=load("graphql_read_fulfillments"))

    shipped, cancelled = adapter.read_fulfillments("5523429081345")

    assert shipped.source_ref == "gid://shopify/Fulfillment/4903611252993"
    assert shipped.status == "success"
    assert shipped.carrier == "UPS"
    assert shipped.tracking_numbers == [UPS_1, UPS_2]
    assert shipped.tracking_urls == [
        "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums=1Z5R89390357567127"
    ]  # the null url is dropped
    assert shipped.lines == [
        ("gid://shopify/LineItem/13822279467265", 2),
        ("gid://shopify/LineItem/13822279499999", 1),
    ]
    assert shipped.updated_at == "2026-03-03T14:00:00Z"
    assert cancelled.status == "cancelled"
    assert cancelled.tracking_numbers == []
    assert cancelled.carrier == ""
    assert sent(rsps, 0)["variables"] == {"id": "gid://shopify/Order/5523429081345"}


def test_read_fulfillments_of_an_unknown_order_is_a_permanent_error(adapter, rsps, url):
    rsps.post(url, json=load("graphql_order_missing"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_fulfillments("5523429081345")

    assert raised.value.permanent is True


# ---- changed_orders ------------------------------------------------------------------------------


def listing(*nested_fulfillments: list) -> dict:
    """An orders listing (one order per argument, with those fulfillments nested), no next page."""
    nodes = [
        {
            "legacyResourceId": str(5523429081345 + n),
            "updatedAt": "2026-03-03T14:05:00Z",
            "fulfillments": fulfillments,
        }
        for n, fulfillments in enumerate(nested_fulfillments)
    ]
    page = {"pageInfo": {"hasNextPage": False, "endCursor": "c1"}, "nodes": nodes}
    return {"data": {"orders": page}}


def test_a_listing_that_may_have_cut_tracking_numbers_off_asks_for_a_full_read(adapter, rsps, url):
    shipped = load("graphql_read_fulfillments")["data"]["order"]["fulfillments"][0]
    many = dict(shipped, trackingInfo=shipped["trackingInfo"] + shipped["trackingInfo"][:1])
    rsps.post(url, json=listing([shipped], [many]))

    first, second = adapter.changed_orders("2026-03-03T14:00:00Z", None).orders

    assert [f.tracking_numbers for f in first.fulfillments] == [[UPS_1, UPS_2]]
    assert second.fulfillments is None  # three numbers fill the listing's three: read it whole
    assert f"trackingInfo(first: {shopify.LISTED_NUMBERS})" in sent(rsps, 0)["query"]


# ---- forward_fulfillment -------------------------------------------------------------------------


def test_forward_creates_on_fulfillment_order_lines_with_remaining_quantity(adapter, rsps, url):
    rsps.post(url, json=load("graphql_fulfillment_orders"))
    rsps.post(url, json=load("graphql_fulfillment_create"))

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "gid://shopify/Fulfillment/255858046"
    assert len(rsps.calls) == 2
    look = sent(rsps, 0)
    assert "GatewayFulfillmentOrders" in look["query"]
    assert look["variables"] == {"id": f"gid://shopify/Order/{BUYER_ORDER_REF}"}
    create = sent(rsps, 1)
    assert "fulfillmentCreate" in create["query"]
    fulfillment = create["variables"]["fulfillment"]
    # CLOSED fulfillment orders are skipped; the blue mug's 2 units are taken from the OPEN one
    # (1 remaining) and the IN_PROGRESS one (0 then 3 remaining); the gift wrap is not touched.
    assert fulfillment["lineItemsByFulfillmentOrder"] == [
        {
            "fulfillmentOrderId": FO_OPEN,
            "fulfillmentOrderLineItems": [
                {"id": "gid://shopify/FulfillmentOrderLineItem/1058737481", "quantity": 1},
                {"id": "gid://shopify/FulfillmentOrderLineItem/1058737482", "quantity": 1},
            ],
        },
        {
            "fulfillmentOrderId": FO_IN_PROGRESS,
            "fulfillmentOrderLineItems": [
                {"id": "gid://shopify/FulfillmentOrderLineItem/1058737492", "quantity": 1},
            ],
        },
    ]
    assert fulfillment["trackingInfo"] == {
        "company": "UPS",
        "numbers": [UPS_1, UPS_2],
        "urls": [UPS_URL % UPS_1, UPS_URL % UPS_2],
    }  # numbers/urls, never number/url as well (shopify.md: one or the other)
    assert fulfillment["notifyCustomer"] is True


def test_forward_a_partial_fulfillment_takes_only_its_quantity(adapter, rsps, url):
    rsps.post(url, json=load("graphql_fulfillment_orders"))
    rsps.post(url, json=load("graphql_fulfillment_create"))

    adapter.forward_fulfillment(make_order(), make_fulfillment(lines=[("li_2", 1)]))

    assert sent(rsps, 1)["variables"]["fulfillment"]["lineItemsByFulfillmentOrder"] == [
        {
            "fulfillmentOrderId": FO_OPEN,
            "fulfillmentOrderLineItems": [
                {"id": "gid://shopify/FulfillmentOrderLineItem/1058737482", "quantity": 1}
            ],
        }
    ]


def test_forward_refuses_more_than_the_buyer_order_has_left(adapter, rsps, url):
    rsps.post(url, json=load("graphql_fulfillment_orders"))  # 1 + 3 blue mugs remain open

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment(lines=[("li_1", 5)]))

    assert raised.value.permanent is True
    assert "MUG-BLUE" in str(raised.value) and "1 short" in str(raised.value)
    assert len(rsps.calls) == 1  # nothing created


def test_forward_refuses_lines_at_several_locations(adapter, rsps, url):
    payload = load("graphql_fulfillment_orders")
    nodes = payload["data"]["order"]["fulfillmentOrders"]["nodes"]
    nodes[2]["assignedLocation"]["location"]["id"] = "gid://shopify/Location/2"
    rsps.post(url, json=payload)

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert len(rsps.calls) == 1


def test_forward_updates_tracking_when_the_buyer_ref_is_known(adapter, rsps, url):
    rsps.post(url, json=load("graphql_tracking_update"))
    buyer_ref = "gid://shopify/Fulfillment/255858046"

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment(buyer_ref=buyer_ref))

    assert ref == buyer_ref
    assert len(rsps.calls) == 1  # no look-up, no create
    body = sent(rsps, 0)
    assert "fulfillmentTrackingInfoUpdate" in body["query"]
    assert body["variables"] == {
        "id": buyer_ref,
        "tracking": {
            "company": "UPS",
            "numbers": [UPS_1, UPS_2],
            "urls": [UPS_URL % UPS_1, UPS_URL % UPS_2],
        },
    }


@pytest.mark.parametrize(
    ("carrier", "company"),
    [
        ("DHL", "DHL Express"),  # Shopify lists DHL's express service, which our DHL checks
        ("UPS", "UPS"),
        ("USPS", "USPS"),
        ("FedEx", "FedEx"),
        ("royal mail", "Royal Mail"),  # another listed carrier, in Shopify's exact case
        ("Acme Freight", "Acme Freight"),  # not listed: as given, with our URLs
    ],
)
def test_forward_names_the_carrier_as_shopifys_tracking_companies_do(
    adapter, rsps, url, carrier, company
):
    rsps.post(url, json=load("graphql_tracking_update"))
    buyer_ref = "gid://shopify/Fulfillment/255858046"
    fulfillment = replace(make_fulfillment(buyer_ref=buyer_ref), carrier=carrier)

    adapter.forward_fulfillment(make_order(), fulfillment)

    tracking = sent(rsps, 0)["variables"]["tracking"]
    assert tracking["company"] == company
    assert tracking["urls"] == [UPS_URL % UPS_1, UPS_URL % UPS_2]


def test_shopifys_names_for_our_carriers_read_back_as_ours():
    for ours, theirs in shopify.OUR_CARRIERS.items():
        assert theirs in shopify.TRACKING_COMPANIES
        assert canonical_carrier(theirs) == ours
    # Every listed company our carrier names take for one of ours is the one we send it as:
    # DHL's eCommerce services, for one, are not DHL Express.
    for name in shopify.TRACKING_COMPANIES:
        ours = canonical_carrier(name)
        assert ours is None or shopify.OUR_CARRIERS[ours] == name, name


def test_forward_tracking_update_user_errors_are_permanent(adapter, rsps, url):
    payload = load("graphql_tracking_update")
    payload["data"]["fulfillmentTrackingInfoUpdate"] = {
        "fulfillment": None,
        "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}],
    }
    rsps.post(url, json=payload)

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(
            make_order(), make_fulfillment(buyer_ref="gid://shopify/Fulfillment/1")
        )

    assert raised.value.permanent is True
    assert "fulfillmentId: Fulfillment does not exist." in str(raised.value)


OUR_LINES = {
    "nodes": [
        {"quantity": 2, "lineItem": {"id": BUYER_LINE_BLUE}},
        {"quantity": 1, "lineItem": {"id": BUYER_LINE_RED}},
    ]
}
NO_LINES = {"nodes": []}


def test_forward_looks_before_creating_and_finds_an_earlier_attempt(adapter, rsps, url):
    payload = load("graphql_fulfillment_orders")
    payload["data"]["order"]["fulfillments"] = [
        {
            "id": "gid://shopify/Fulfillment/777",
            "status": "SUCCESS",
            "trackingInfo": [{"number": UPS_1}, {"number": UPS_2}],
            "fulfillmentLineItems": OUR_LINES,
        }
    ]
    rsps.post(url, json=payload)  # no fulfillmentCreate registered: a create would fail

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "gid://shopify/Fulfillment/777"
    assert len(rsps.calls) == 1


def test_forward_brings_an_earlier_attempts_fulfillment_up_to_date(adapter, rsps, url):
    # attempt 1 created it with UPS_1 and died before recording; then UPS_2 was added (version 2)
    payload = load("graphql_fulfillment_orders")
    payload["data"]["order"]["fulfillments"] = [
        {
            "id": "gid://shopify/Fulfillment/777",
            "status": "SUCCESS",
            "trackingInfo": [{"number": UPS_1}],
            "fulfillmentLineItems": OUR_LINES,
        }
    ]
    rsps.assert_all_requests_are_fired = False
    rsps.post(url, json=payload)
    rsps.post(url, json=load("graphql_tracking_update"))

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment(numbers=(UPS_1, UPS_2)))

    assert ref == "gid://shopify/Fulfillment/777"
    assert len(rsps.calls) == 2
    update = sent(rsps, 1)
    assert "fulfillmentTrackingInfoUpdate" in update["query"]
    assert update["variables"]["id"] == "gid://shopify/Fulfillment/777"
    assert update["variables"]["tracking"]["numbers"] == [UPS_1, UPS_2]


@pytest.mark.parametrize(
    "existing",
    [
        {
            "id": "gid://shopify/Fulfillment/1",
            "status": "CANCELLED",
            "trackingInfo": [{"number": UPS_1}],
            "fulfillmentLineItems": OUR_LINES,
        },
        {
            "id": "gid://shopify/Fulfillment/2",
            "status": "SUCCESS",
            "trackingInfo": [{"number": "1Z0000"}],
            "fulfillmentLineItems": OUR_LINES,
        },
        {
            "id": "gid://shopify/Fulfillment/3",
            "status": "SUCCESS",
            "trackingInfo": [],
            "fulfillmentLineItems": OUR_LINES,
        },
        {  # same number, other lines: another fulfillment of this order, not ours
            "id": "gid://shopify/Fulfillment/4",
            "status": "SUCCESS",
            "trackingInfo": [{"number": UPS_1}],
            "fulfillmentLineItems": {
                "nodes": [{"quantity": 1, "lineItem": {"id": BUYER_LINE_BLUE}}]
            },
        },
        {  # same number and lines, but a sibling of ours already claimed it
            "id": "gid://shopify/Fulfillment/5",
            "status": "SUCCESS",
            "trackingInfo": [{"number": UPS_1}],
            "fulfillmentLineItems": OUR_LINES,
        },
    ],
    ids=["cancelled-same-number", "other-number", "no-number", "other-lines", "claimed"],
)
def test_forward_creates_when_no_live_fulfillment_has_our_numbers(adapter, rsps, url, existing):
    payload = load("graphql_fulfillment_orders")
    payload["data"]["order"]["fulfillments"] = [existing]
    rsps.post(url, json=payload)
    rsps.post(url, json=load("graphql_fulfillment_create"))
    order = make_order()
    sibling = make_fulfillment(buyer_ref="gid://shopify/Fulfillment/5")
    order.fulfillments.append(replace(sibling, id="ful_sibling"))

    ref = adapter.forward_fulfillment(order, make_fulfillment())

    assert ref == "gid://shopify/Fulfillment/255858046"
    assert "fulfillmentCreate" in sent(rsps, 1)["query"]


def test_forward_to_an_unknown_buyer_order_is_permanent(adapter, rsps, url):
    rsps.post(url, json=load("graphql_order_missing"))

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert len(rsps.calls) == 1


def test_forward_create_user_errors_are_permanent_with_the_message(adapter, rsps, url):
    rsps.post(url, json=load("graphql_fulfillment_orders"))
    rsps.post(url, json=load("graphql_fulfillment_create_user_errors"))

    with pytest.raises(PlatformError) as raised:
        adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert raised.value.permanent is True
    assert "Invalid fulfillment order line item quantity requested." in str(raised.value)
    assert "fulfillment.lineItemsByFulfillmentOrder.0.fulfillmentOrderLineItems" in str(
        raised.value
    )


# ---- throttling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 429])
def test_throttled_is_waited_out_and_retried(adapter, rsps, url, redis, status):
    # requestedQueryCost 100, nothing available, restoreRate 1000/s: the wait is the 0.2 s floor
    rsps.post(url, json=load("graphql_throttled"), status=status)
    rsps.post(url, json=load("graphql_read_order"))

    started = time.monotonic()
    order = adapter.read_order(BUYER_ORDER_REF)
    elapsed = time.monotonic() - started

    assert order.ref == BUYER_ORDER_REF
    assert len(rsps.calls) == 2
    assert sent(rsps, 0) == sent(rsps, 1)  # the same call again
    assert 0.18 <= elapsed < 2
    assert counters(redis)["platform_throttled_shopify"] == 1
    assert counters(redis)["platform_calls_shopify"] == 2


def test_throttled_wait_follows_the_reported_cost(adapter, rsps, url, sleeps):
    throttled = load("graphql_throttled")
    throttled["extensions"]["cost"]["requestedQueryCost"] = 400
    throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] = 100
    rsps.post(url, json=throttled)
    rsps.post(url, json=load("graphql_read_order"))

    adapter.read_order(BUYER_ORDER_REF)

    # (400 needed - 100 available) / 1000 per second; the bucket then holds the 100 points a
    # call is assumed to cost, so the retry does not wait again
    assert sleeps == [pytest.approx(0.3)]
    assert len(rsps.calls) == 2


def test_throttled_for_good_gives_up_retryable_after_the_retries(adapter, rsps, url):
    for _ in range(THROTTLE_RETRIES + 1):
        rsps.post(url, json=load("graphql_throttled"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False
    assert raised.value.retry_after == 5
    assert len(rsps.calls) == THROTTLE_RETRIES + 1


def test_throttled_mutation_is_retried_and_creates_once(adapter, rsps, url):
    rsps.post(url, json=load("graphql_fulfillment_orders"))
    rsps.post(url, json=load("graphql_throttled"), status=429)
    rsps.post(url, json=load("graphql_fulfillment_create"))

    ref = adapter.forward_fulfillment(make_order(), make_fulfillment())

    assert ref == "gid://shopify/Fulfillment/255858046"
    assert len(rsps.calls) == 3
    assert sent(rsps, 1) == sent(rsps, 2)


# ---- HTTP and GraphQL errors ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retryable_with_retry_after(adapter, rsps, url, status):
    rsps.post(
        url, body="<html>upstream trouble</html>", status=status, headers={"Retry-After": "7"}
    )

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False
    assert raised.value.retry_after == 7.0
    assert str(status) in str(raised.value)
    assert len(rsps.calls) == 1


def test_5xx_without_retry_after_is_retryable_with_no_hint(adapter, rsps, url):
    rsps.post(url, json={"errors": "Internal Server Error"}, status=500)

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False
    assert raised.value.retry_after is None


def test_plain_429_is_retryable_with_retry_after(adapter, rsps, url):
    rsps.post(
        url,
        json={"errors": "Exceeded 2 calls per second"},
        status=429,
        headers={"Retry-After": "2.0"},
    )

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False
    assert raised.value.retry_after == 2.0
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent(adapter, rsps, url, status):
    rsps.post(
        url,
        json={
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        },
        status=status,
    )

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is True
    assert len(rsps.calls) == 1


def test_top_level_graphql_errors_are_permanent(adapter, rsps, url):
    rsps.post(url, json=load("graphql_syntax_error"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is True
    assert "Field 'nope' doesn't exist on type 'Order'" in str(raised.value)
    assert len(rsps.calls) == 1


def test_internal_server_error_in_errors_is_retryable(adapter, rsps, url):
    # Shopify answers most of its own faults with HTTP 200 and this code (shopify.dev response
    # codes): retrying may help
    rsps.post(url, json=load("graphql_internal_error"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False


def test_unreachable_shopify_is_retryable(adapter, rsps, url):
    rsps.post(url, body=requests.ConnectionError("connection refused"))

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False


# ---- pacing from extensions.cost.throttleStatus --------------------------------------------------


def test_each_answer_stores_the_bucket_in_redis(adapter, rsps, url, redis):
    payload = load("graphql_read_order")
    payload["extensions"]["cost"]["throttleStatus"] = {
        "maximumAvailable": 1000.0,
        "currentlyAvailable": 640,
        "restoreRate": 50.0,
    }
    rsps.post(url, json=payload)
    before = time.time()

    adapter.read_order(BUYER_ORDER_REF)

    state = json.loads(redis.get(key(PACE_KEY)))
    assert state["available"] == 640 and state["max"] == 1000 and state["restore"] == 50
    assert before <= state["at"] <= time.time()
    assert 0 < redis.ttl(key(PACE_KEY)) <= 3600


def test_a_nearly_empty_bucket_makes_the_next_call_wait(adapter, rsps, url, sleeps):
    low = load("graphql_read_order")
    low["extensions"]["cost"]["throttleStatus"] = {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 40,
        "restoreRate": 200.0,
    }
    rsps.post(url, json=low)
    rsps.post(url, json=load("graphql_read_order"))

    adapter.read_order(BUYER_ORDER_REF)
    assert sleeps == []  # nothing known before the first call
    adapter.read_order(BUYER_ORDER_REF)

    # (100 assumed cost - 40 available) / 200 per second, less the few ms since the answer
    assert len(sleeps) == 1
    assert sleeps[0] == pytest.approx(0.3, abs=0.02)
    assert len(rsps.calls) == 2


def test_a_bucket_stored_by_another_process_paces_this_one(adapter, rsps, url, store):
    store.set_pace(
        PACE_KEY, {"available": 80.0, "max": 2000.0, "restore": 100.0, "at": time.time()}
    )
    rsps.post(url, json=load("graphql_read_order"))

    started = time.monotonic()
    adapter.read_order(BUYER_ORDER_REF)
    elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 1.5  # (100 - 80) / 100 = 0.2 s


def test_a_refilled_bucket_does_not_wait(adapter, rsps, url, store, sleeps):
    # empty 10 s ago at 100/s: 1000 points back, plenty for a call
    store.set_pace(
        PACE_KEY, {"available": 0.0, "max": 2000.0, "restore": 100.0, "at": time.time() - 10}
    )
    rsps.post(url, json=load("graphql_read_order"))

    adapter.read_order(BUYER_ORDER_REF)

    assert sleeps == []


def test_a_long_wait_gives_up_for_now_without_calling(adapter, rsps, url, store, sleeps):
    store.set_pace(PACE_KEY, {"available": 0.0, "max": 1000.0, "restore": 1.0, "at": time.time()})

    with pytest.raises(PlatformError) as raised:
        adapter.read_order(BUYER_ORDER_REF)

    assert raised.value.permanent is False
    assert raised.value.retry_after > MAX_PACING_WAIT
    assert raised.value.retry_after == pytest.approx(100, abs=0.5)
    assert sleeps == []
    assert len(rsps.calls) == 0
