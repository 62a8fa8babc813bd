"""The Shopify simulator behaves as shopify.md and Shopify's docs say (no Redis needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from sandbox.shopify import SearchQuery, Shop, ShopifySimulator

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "shpat_acme"
SECRET = "acme-secret"
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province": "IL",
    "zip": "62701",
    "country_code": "US",
}

ORDER_QUERY = """
query($id: ID!) {
  order(id: $id) {
    id name legacyResourceId displayFulfillmentStatus updatedAt
    lineItems(first: 10) { nodes { id sku quantity unfulfilledQuantity } }
    fulfillmentOrders(first: 5) {
      nodes {
        id status
        assignedLocation { location { id name } }
        lineItems(first: 10) { nodes { id totalQuantity remainingQuantity sku lineItem { id } } }
      }
    }
    fulfillments(first: 10) {
      id name status
      trackingInfo(first: 5) { company number url }
      fulfillmentLineItems(first: 10) { nodes { quantity lineItem { id sku } } }
    }
  }
}
"""

FULFILL = """
mutation($f: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $f) {
    fulfillment { id status trackingInfo(first: 5) { company number url } }
    userErrors { field message }
  }
}
"""


# ---- fixtures --------------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint that keeps each request's raw bytes and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.url = ""
        self.lock = threading.Lock()

    def bodies(self, topic: str | None = None) -> list[dict]:
        """The JSON bodies received (optionally of one topic)."""
        return [
            json.loads(r["body"])
            for r in self.requests
            if topic is None or r["headers"]["x-shopify-topic"] == topic
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server standing in for the gateway's /webhooks/shopify."""
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with box.lock:
                status = box.statuses.pop(0) if box.statuses else 200
                box.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/shopify"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield box
    server.shutdown()


@pytest.fixture
def sim() -> Iterator[ShopifySimulator]:
    """A running simulator."""
    simulator = ShopifySimulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def shop(sim: ShopifySimulator) -> Shop:
    """One shop, as the gateway's connection would name it."""
    return sim.add_shop(
        "acme.myshopify.com", access_token=TOKEN, client_secret=SECRET, location_name="Main"
    )


def gql(
    sim: ShopifySimulator,
    query: str,
    variables: dict | None = None,
    token: str = TOKEN,
    version: str = "2026-01",
) -> requests.Response:
    """POST a document the way the gateway does."""
    return requests.post(
        f"{sim.base_url}/admin/api/{version}/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
        timeout=10,
    )


def place(shop: Shop, **extra) -> dict:
    """A customer order with two lines (2 x AC-100, 1 x AC-200)."""
    return shop.place_order(
        line_items=[
            {"sku": "AC-100", "quantity": 2, "title": "Blue mug", "price": "12.50"},
            {"sku": "AC-200", "quantity": 1, "title": "Red mug"},
        ],
        shipping_address=ADDRESS,
        email="ada@example.com",
        **extra,
    )


def fulfill_input(*groups: tuple[str, list | None], tracking: dict | None = None) -> dict:
    """FulfillmentInput variables: (fulfillment order id, [(FO line id, qty)] or None) pairs."""
    by_fo = []
    for fo_id, lines in groups:
        group: dict = {"fulfillmentOrderId": fo_id}
        if lines is not None:
            group["fulfillmentOrderLineItems"] = [{"id": i, "quantity": q} for i, q in lines]
        by_fo.append(group)
    fulfillment: dict = {"lineItemsByFulfillmentOrder": by_fo}
    if tracking is not None:
        fulfillment["trackingInfo"] = tracking
    return {"f": fulfillment}


def read_order(sim: ShopifySimulator, order_id: str) -> dict:
    answer = gql(sim, ORDER_QUERY, {"id": order_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]["order"]


# ---- schema and reading ------------------------------------------------------------------------


def test_misspelled_field_is_rejected_like_shopify(sim, shop):
    answer = gql(sim, "{ orders(first: 1) { nodes { id nmae } } }")
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["message"] == "Field 'nmae' doesn't exist on type 'Order'"
    assert error["extensions"] == {
        "code": "undefinedField",
        "typeName": "Order",
        "fieldName": "nmae",
    }
    assert error["locations"] == [{"line": 1, "column": 33}]
    assert "cost" in body["extensions"]


def test_unknown_argument_and_deprecated_v2_mutation_are_rejected(sim, shop):
    body = gql(sim, '{ order(id: "gid://shopify/Order/1", foo: 1) { id } }').json()
    assert body["errors"][0]["extensions"]["code"] == "argumentNotAccepted"
    body = gql(sim, "mutation { fulfillmentCreateV2(fulfillment: {}) { userErrors { message } } }")
    assert body.json()["errors"][0]["extensions"]["code"] == "undefinedField"
    # fulfillmentCreate's userErrors are plain UserError objects: no `code`.
    no_code = "mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors { code } } }"  # noqa: E501
    body = gql(sim, no_code, fulfill_input())
    assert body.json()["errors"][0]["extensions"]["typeName"] == "UserError"


def test_bad_variables_get_graphql_ruby_style_problems(sim, shop):
    body = gql(sim, FULFILL, {"f": {"lineItemsByFulfillmentOrder": [{"id": "x"}]}}).json()
    [error] = body["errors"]
    assert error["message"].startswith("Variable $f of type FulfillmentInput! was provided invalid")
    assert error["extensions"]["problems"]


def test_unknown_token_is_401_and_bad_version_404(sim, shop):
    answer = gql(sim, "{ shop { name } }", token="shpat_nobody")
    assert answer.status_code == 401
    assert answer.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert gql(sim, "{ shop { name } }", version="latest-ish").status_code == 404
    assert gql(sim, "{ shop { myshopifyDomain } }", version="2025-07").status_code == 200
    assert "2025-07" in sim.versions


def test_unknown_order_is_null_and_bad_gid_is_an_error(sim, shop):
    body = gql(sim, '{ order(id: "gid://shopify/Order/42") { id } }').json()
    assert body["data"] == {"order": None}
    body = gql(sim, '{ order(id: "42") { id } }').json()
    assert body["errors"][0]["message"] == "Invalid global id '42'"


def test_many_shops_are_told_apart_by_token(sim, shop):
    other = sim.add_shop("other.myshopify.com", "shpat_other", "other-secret")
    order = place(other)
    assert gql(sim, ORDER_QUERY, {"id": order["id"]}).json()["data"]["order"] is None
    body = gql(sim, ORDER_QUERY, {"id": order["id"]}, token="shpat_other").json()
    assert body["data"]["order"]["name"] == "#1001"


# ---- orderCreate -------------------------------------------------------------------------------

ORDER_CREATE = """
mutation($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id name email
      shippingAddress { name address1 city provinceCode zip countryCodeV2 }
      lineItems(first: 5) { nodes { id sku title quantity } }
      fulfillmentOrders(first: 5) {
        nodes { id status lineItems(first: 5) { nodes { id remainingQuantity } } }
      }
    }
    userErrors { field message code }
  }
}
"""


def test_order_create_makes_an_order_with_an_open_fulfillment_order(sim, shop, receiver):
    shop.add_webhook("orders/create", receiver.url)
    variables = {
        "order": {
            "email": "ada@example.com",
            "lineItems": [
                {
                    "title": "Blue mug",
                    "sku": "AC-100",
                    "quantity": 2,
                    "priceSet": {"shopMoney": {"amount": "12.50", "currencyCode": "USD"}},
                }
            ],
            "shippingAddress": {
                "firstName": "Ada",
                "lastName": "Lovelace",
                "address1": "1 Main St",
                "city": "Springfield",
                "provinceCode": "IL",
                "zip": "62701",
                "countryCode": "US",
            },
            "sourceName": "fulfillment-gateway",
            "sourceIdentifier": "gw-123",
            "tags": ["dropship"],
        },
        "options": {"inventoryBehaviour": "BYPASS", "sendReceipt": False},
    }
    body = gql(sim, ORDER_CREATE, variables).json()
    result = body["data"]["orderCreate"]
    assert result["userErrors"] == []
    order = result["order"]
    assert order["name"] == "#1001"
    assert order["shippingAddress"]["name"] == "Ada Lovelace"
    assert order["shippingAddress"]["countryCodeV2"] == "US"
    [fo] = order["fulfillmentOrders"]["nodes"]
    assert fo["status"] == "OPEN"
    assert fo["lineItems"]["nodes"][0]["remainingQuantity"] == 2
    assert body["extensions"]["cost"]["requestedQueryCost"] >= 10

    read = read_order(sim, order["id"])
    assert read["displayFulfillmentStatus"] == "UNFULFILLED"
    assert read["fulfillmentOrders"]["nodes"][0]["assignedLocation"]["location"]["name"] == "Main"

    assert sim.wait_for_webhooks()
    [payload] = receiver.bodies("orders/create")
    assert payload["admin_graphql_api_id"] == order["id"]
    assert payload["source_identifier"] == "gw-123"
    assert payload["line_items"][0]["fulfillable_quantity"] == 2


def test_order_create_user_errors(sim, shop):
    empty = gql(sim, ORDER_CREATE, {"order": {"lineItems": []}}).json()
    errors = empty["data"]["orderCreate"]["userErrors"]
    assert errors[0]["field"] == ["order", "lineItems"]
    assert errors[0]["code"] == "INVALID"
    zero = gql(sim, ORDER_CREATE, {"order": {"lineItems": [{"title": "x", "quantity": 0}]}}).json()
    [error] = zero["data"]["orderCreate"]["userErrors"]
    assert error["field"] == ["order", "lineItems", "0", "quantity"]
    assert zero["data"]["orderCreate"]["order"] is None
    assert shop.orders() == []


def one_line(currency: str) -> dict:
    """orderCreate variables: one line, priced in `currency`."""
    money = {"amount": "0.00", "currencyCode": currency}
    return {
        "order": {"lineItems": [{"title": "Mug", "quantity": 1, "priceSet": {"shopMoney": money}}]}
    }


def test_order_create_prices_in_the_shops_currency(sim):
    euro = sim.add_shop("euro.myshopify.com", "shpat_euro", "euro-secret", currency="EUR")
    assert gql(sim, "{ shop { currencyCode } }", token="shpat_euro").json()["data"] == {
        "shop": {"currencyCode": "EUR"}
    }

    refused = gql(sim, ORDER_CREATE, one_line("USD"), token="shpat_euro").json()
    [error] = refused["data"]["orderCreate"]["userErrors"]
    assert error["field"] == ["order", "lineItems", "0", "priceSet", "shopMoney", "currencyCode"]
    assert error["code"] == "INVALID" and "EUR" in error["message"]
    assert euro.orders() == []

    created = gql(sim, ORDER_CREATE, one_line("EUR"), token="shpat_euro").json()
    assert created["data"]["orderCreate"]["userErrors"] == []
    order_id = created["data"]["orderCreate"]["order"]["id"]
    currency = "query($id: ID!) { order(id: $id) { currencyCode } }"
    assert gql(sim, currency, {"id": order_id}, token="shpat_euro").json()["data"] == {
        "order": {"currencyCode": "EUR"}
    }


def test_a_development_store_takes_five_orders_a_minute(sim, shop):
    sim.add_shop("dev.myshopify.com", "shpat_dev", "dev-secret", plan="Development")
    plan = "{ shop { plan { partnerDevelopment publicDisplayName } } }"
    assert gql(sim, plan, token="shpat_dev").json()["data"]["shop"]["plan"] == {
        "partnerDevelopment": True,
        "publicDisplayName": "Development",
    }
    sim.clock.freeze(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    for _ in range(5):
        answer = gql(sim, ORDER_CREATE, one_line("USD"), token="shpat_dev")
        assert answer.json()["data"]["orderCreate"]["userErrors"] == []

    sixth = gql(sim, ORDER_CREATE, one_line("USD"), token="shpat_dev")

    assert sixth.status_code == 429
    assert sixth.json() == {
        "errors": "Exceeded order API rate limit, please try again in a minute. "
        "Upgrade to a paid account to remove this limit."
    }
    assert len(sim.shop("dev.myshopify.com").orders()) == 5
    sim.clock.advance(61)
    assert gql(sim, ORDER_CREATE, one_line("USD"), token="shpat_dev").status_code == 200
    # A shop on a paid plan has no such limit.
    assert gql(sim, plan).json()["data"]["shop"]["plan"]["partnerDevelopment"] is False
    for _ in range(6):
        assert gql(sim, ORDER_CREATE, one_line("USD")).status_code == 200


# ---- fulfillmentCreate / tracking ----------------------------------------------------------------


def test_partial_then_rest_and_overfill_is_refused(sim, shop, receiver):
    shop.add_webhook("fulfillments/create", receiver.url)
    order = place(shop)
    [fo] = read_order(sim, order["id"])["fulfillmentOrders"]["nodes"]
    mug = fo["lineItems"]["nodes"][0]

    variables = fulfill_input(
        (fo["id"], [(mug["id"], 1)]), tracking={"company": "UPS", "number": "1Z5R89390357567127"}
    )
    variables["f"]["notifyCustomer"] = True
    first = gql(sim, FULFILL, variables).json()["data"]["fulfillmentCreate"]
    assert first["userErrors"] == []
    assert first["fulfillment"]["status"] == "SUCCESS"
    [tracking] = first["fulfillment"]["trackingInfo"]
    assert tracking["number"] == "1Z5R89390357567127"
    assert tracking["url"].startswith("https://www.ups.com/")

    after_first = read_order(sim, order["id"])
    assert after_first["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert after_first["updatedAt"] >= order["updated_at"]
    fo_now = after_first["fulfillmentOrders"]["nodes"][0]
    assert fo_now["status"] == "IN_PROGRESS"
    assert [n["remainingQuantity"] for n in fo_now["lineItems"]["nodes"]] == [1, 1]

    over = gql(sim, FULFILL, fulfill_input((fo["id"], [(mug["id"], 2)]))).json()
    assert over["data"]["fulfillmentCreate"]["fulfillment"] is None
    [error] = over["data"]["fulfillmentCreate"]["userErrors"]
    assert "quantity" in error["message"]
    assert len(shop.fulfillments(order["id"])) == 1

    numbers = ["1Z5R89390357567128", "1Z5R89390357567129"]
    variables = fulfill_input((fo["id"], None), tracking={"company": "UPS", "numbers": numbers})
    rest = gql(sim, FULFILL, variables).json()["data"]["fulfillmentCreate"]
    assert rest["userErrors"] == []
    assert len(rest["fulfillment"]["trackingInfo"]) == 2

    done = read_order(sim, order["id"])
    assert done["displayFulfillmentStatus"] == "FULFILLED"
    assert done["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    assert [f["name"] for f in done["fulfillments"]] == ["#1001.1", "#1001.2"]
    lines = done["fulfillments"][1]["fulfillmentLineItems"]["nodes"]
    assert {(n["lineItem"]["sku"], n["quantity"]) for n in lines} == {("AC-100", 1), ("AC-200", 1)}

    closed = gql(sim, FULFILL, fulfill_input((fo["id"], None)))
    [error] = closed.json()["data"]["fulfillmentCreate"]["userErrors"]
    assert "unfulfillable status= closed" in error["message"]

    assert sim.wait_for_webhooks()
    created = receiver.bodies("fulfillments/create")
    assert len(created) == 2
    assert created[0]["order_id"] == int(order["legacy_id"])
    assert created[0]["tracking_numbers"] == ["1Z5R89390357567127"]
    assert created[0]["line_items"][0]["id"] == int(order["line_items"][0]["legacy_id"])
    assert created[0]["status"] == "success"
    assert "fulfillment_order_id" not in created[0]


def test_fulfillment_create_other_user_errors(sim, shop):
    one, two = place(shop), place(shop)
    fo_one = one["fulfillment_orders"][0]["id"]
    fo_two = two["fulfillment_orders"][0]["id"]

    def user_errors(variables: dict) -> list[dict]:
        return gql(sim, FULFILL, variables).json()["data"]["fulfillmentCreate"]["userErrors"]

    both_numbers = user_errors(
        fulfill_input((fo_one, None), tracking={"number": "1", "numbers": ["2"]})
    )
    assert both_numbers[0]["field"] == ["fulfillment", "trackingInfo", "numbers"]
    two_orders = user_errors(fulfill_input((fo_one, None), (fo_two, None)))
    assert "same order" in two_orders[0]["message"]
    unknown = user_errors(fulfill_input(("gid://shopify/FulfillmentOrder/1", None)))
    assert unknown[0]["message"] == "Fulfillment order does not exist."
    # A LineItem gid where a FulfillmentOrderLineItem gid belongs is refused, not guessed.
    assert user_errors(fulfill_input((fo_one, [(one["line_items"][0]["id"], 1)])))
    assert shop.order(one["id"])["fulfillments"] == []


def test_tracking_info_update_replaces_tracking(sim, shop, receiver):
    shop.add_webhook("fulfillments/update", receiver.url)
    order = place(shop)
    fulfillment_id = shop.fulfill(order["id"], company="UPS", numbers=["1Z5R89390357567127"])
    sim.clock.freeze(datetime.now(UTC) + timedelta(minutes=5))
    mutation = """
    mutation($id: ID!, $t: FulfillmentTrackingInput!) {
      fulfillmentTrackingInfoUpdate(
        fulfillmentId: $id, trackingInfoInput: $t, notifyCustomer: true
      ) {
        fulfillment { id updatedAt trackingInfo { company number url } }
        userErrors { field message }
      }
    }"""
    tracking = {
        "company": "FedEx",
        "numbers": ["794644790138"],
        "urls": ["https://example.com/t/1"],
    }
    result = gql(sim, mutation, {"id": fulfillment_id, "t": tracking}).json()
    update = result["data"]["fulfillmentTrackingInfoUpdate"]
    assert update["userErrors"] == []
    assert update["fulfillment"]["trackingInfo"] == [
        {"company": "FedEx", "number": "794644790138", "url": "https://example.com/t/1"}
    ]
    assert update["fulfillment"]["updatedAt"] == sim.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert shop.order(order["id"])["updated_at"] == update["fulfillment"]["updatedAt"]
    missing = gql(sim, mutation, {"id": "gid://shopify/Fulfillment/9", "t": tracking}).json()
    assert missing["data"]["fulfillmentTrackingInfoUpdate"]["userErrors"][0]["field"] == [
        "fulfillmentId"
    ]
    assert sim.wait_for_webhooks()
    [payload] = receiver.bodies("fulfillments/update")
    assert payload["tracking_company"] == "FedEx"
    assert payload["tracking_numbers"] == ["794644790138"]


def test_only_listed_tracking_companies_are_recognized_in_their_exact_case(sim, shop):
    def company_of(company: str) -> dict:
        order = place(shop)
        fo = order["fulfillment_orders"][0]["id"]
        tracking = {"company": company, "numbers": ["3318810025"]}
        result = gql(sim, FULFILL, fulfill_input((fo, None), tracking=tracking)).json()
        assert result["data"]["fulfillmentCreate"]["userErrors"] == []
        [fulfillment] = shop.fulfillments(order["id"])
        return fulfillment

    listed = company_of("DHL Express")
    assert listed["tracking_company_recognized"] is True
    assert listed["tracking_urls"] and "3318810025" in listed["tracking_urls"][0]
    for unknown in ("DHL", "dhl express"):  # accepted as given, but the shop doesn't know it
        kept = company_of(unknown)
        assert kept["tracking_company"] == unknown
        assert kept["tracking_company_recognized"] is False
        assert kept["tracking_urls"] == []


DEFINE = """
mutation($d: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $d) {
    createdDefinition { id key namespace ownerType }
    userErrors { field message code }
  }
}"""
CREATE_ORDER = """
mutation($o: OrderCreateOrderInput!) {
  orderCreate(order: $o) { order { id } userErrors { field message code } }
}"""
BY_IDENTIFIER = """
query($i: OrderIdentifierInput!) { orderByIdentifier(identifier: $i) { id } }"""
ORDER_IDS = """
query($q: String) { orders(first: 5, query: $q) { nodes { id } } }"""
CUSTOM_ID = {"namespace": "$app", "key": "gateway_order_id", "value": "ord_1"}
WITH_CUSTOM_ID = {
    "lineItems": [{"title": "Mug", "quantity": 1}],
    "tags": ["gateway-ord_1"],
    "metafields": [{**CUSTOM_ID, "type": "id"}],
}


def data(answer: requests.Response) -> dict:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def test_a_custom_id_finds_a_new_order_at_once_while_searches_lag_behind(sim, shop):
    sim.clock.freeze(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    shop.set_search_lag(60)

    def by_custom_id() -> dict | None:
        return data(gql(sim, BY_IDENTIFIER, {"i": {"customId": CUSTOM_ID}}))["orderByIdentifier"]

    def searched(query: str | None) -> list[str]:
        return [o["id"] for o in data(gql(sim, ORDER_IDS, {"q": query}))["orders"]["nodes"]]

    definition = {"name": "Gateway order", "namespace": "$app", "key": "gateway_order_id"}
    definition |= {"ownerType": "ORDER", "type": "id"}
    made = data(gql(sim, DEFINE, {"d": definition}))["metafieldDefinitionCreate"]
    assert made["userErrors"] == []
    assert made["createdDefinition"]["namespace"].startswith("app--")  # $app: the app's own
    taken = data(gql(sim, DEFINE, {"d": definition}))["metafieldDefinitionCreate"]
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [
        (["definition", "key"], "TAKEN")
    ]
    assert by_custom_id() is None

    created = data(gql(sim, CREATE_ORDER, {"o": WITH_CUSTOM_ID}))["orderCreate"]
    assert created["userErrors"] == []
    order_id = created["order"]["id"]

    assert by_custom_id() == {"id": order_id}  # at once
    assert searched("tag:'gateway-ord_1'") == []  # the search index is a minute behind
    assert searched("source_name:api") == []
    assert searched(None) == [order_id]  # a listing with no search is not
    # The custom ID's values are unique: a second order with it is refused.
    again = data(gql(sim, CREATE_ORDER, {"o": WITH_CUSTOM_ID}))["orderCreate"]
    assert again["order"] is None
    assert again["userErrors"][0]["field"] == ["order", "metafields", "0", "value"]
    assert len(shop.orders()) == 1
    sim.clock.advance(60)
    assert searched("tag:'gateway-ord_1'") == [order_id]


def test_a_lost_answer_leaves_the_write_done(sim, shop):
    shop.lose_next_answer("orderCreate")
    order = {"lineItems": [{"title": "Mug", "quantity": 1}]}

    lost = gql(sim, CREATE_ORDER, {"o": order})

    assert lost.status_code == 502
    assert len(shop.orders()) == 1  # created all the same
    assert [c["status"] for c in sim.calls(field="orderCreate")] == [502]
    assert gql(sim, CREATE_ORDER, {"o": order}).status_code == 200  # once only
    assert len(shop.orders()) == 2


def test_merchant_actions_and_cancel(sim, shop, receiver):
    shop.add_webhook("fulfillments/update", receiver.url)
    order = place(shop)
    mug = order["line_items"][0]["id"]
    fulfillment_id = shop.fulfill(
        order["id"], [(mug, 2)], company="USPS", numbers=["9400100000000000000000"]
    )
    snapshot = shop.order(order["id"])
    assert snapshot["line_items"][0]["fulfilled_quantity"] == 2
    assert snapshot["fulfillment_orders"][0]["status"] == "IN_PROGRESS"
    with pytest.raises(ValueError):
        shop.fulfill(order["id"], [(mug, 1)])
    shop.cancel_fulfillment(fulfillment_id)
    snapshot = shop.order(order["id"])
    assert snapshot["fulfillments"][0]["status"] == "CANCELLED"
    assert snapshot["line_items"][0]["unfulfilled_quantity"] == 2
    assert snapshot["fulfillment_orders"][0]["status"] == "OPEN"
    assert snapshot["display_fulfillment_status"] == "UNFULFILLED"
    assert sim.wait_for_webhooks()
    [payload] = receiver.bodies("fulfillments/update")
    assert payload["status"] == "cancelled"


FINANCES = "query($id: ID!) { order(id: $id) { displayFinancialStatus cancelledAt } }"


def read_finances(sim: ShopifySimulator, order_id: str) -> dict:
    return gql(sim, FINANCES, {"id": order_id}).json()["data"]["order"]


def test_unpaid_order_marked_paid_or_cancelled_fires_shopifys_topics(sim, shop, receiver):
    for topic in ("orders/paid", "orders/cancelled", "orders/updated"):
        shop.add_webhook(topic, receiver.url)
    pending = place(shop, financial_status="PENDING")  # bank deposit: not paid at checkout
    assert read_finances(sim, pending["id"]) == {
        "displayFinancialStatus": "PENDING",
        "cancelledAt": None,
    }

    shop.mark_as_paid(pending["id"])
    assert read_finances(sim, pending["id"])["displayFinancialStatus"] == "PAID"
    with pytest.raises(ValueError):  # orderMarkAsPaid refuses an order already PAID
        shop.mark_as_paid(pending["id"])

    authorized = place(shop, financial_status="AUTHORIZED")
    shop.cancel_order(authorized["id"])
    cancelled = read_finances(sim, authorized["id"])
    assert cancelled["displayFinancialStatus"] == "VOIDED"  # an authorization cancelled
    assert cancelled["cancelledAt"] is not None
    with pytest.raises(ValueError):
        place(shop, financial_status="UNPAID")  # not an OrderDisplayFinancialStatus

    assert sim.wait_for_webhooks()
    [paid] = receiver.bodies("orders/paid")
    assert (paid["admin_graphql_api_id"], paid["financial_status"]) == (pending["id"], "paid")
    [gone] = receiver.bodies("orders/cancelled")
    assert (gone["admin_graphql_api_id"], gone["financial_status"]) == (authorized["id"], "voided")
    assert gone["cancelled_at"] and gone["cancel_reason"] == "other"
    updated = [body["admin_graphql_api_id"] for body in receiver.bodies("orders/updated")]
    assert updated == [pending["id"], authorized["id"]]


CUSTOMER = """
query($id: ID!) {
  order(id: $id) {
    name email
    shippingAddress { name address1 city zip provinceCode countryCodeV2 }
  }
}
"""


def test_an_app_not_approved_for_customer_data_gets_those_fields_redacted(sim, shop):
    order = place(shop)
    shop.set_customer_data_access(False)

    answer = gql(sim, CUSTOMER, {"id": order["id"]})

    assert answer.status_code == 200
    body = answer.json()
    assert body["data"]["order"] == {
        "name": "#1001",
        "email": None,
        "shippingAddress": {
            "name": None,
            "address1": None,
            "city": None,
            "zip": None,
            "provinceCode": "IL",
            "countryCodeV2": "US",
        },
    }
    paths = sorted(error["path"] for error in body["errors"])
    assert paths == [
        ["order", "email"],
        ["order", "shippingAddress", "address1"],
        ["order", "shippingAddress", "city"],
        ["order", "shippingAddress", "name"],
        ["order", "shippingAddress", "zip"],
    ]
    assert all("not approved to use the" in error["message"] for error in body["errors"])

    shop.set_customer_data_access(True)
    approved = gql(sim, CUSTOMER, {"id": order["id"]}).json()
    assert "errors" not in approved
    assert approved["data"]["order"]["shippingAddress"]["address1"] == "1 Main St"


def test_without_read_all_orders_an_order_older_than_60_days_is_out_of_reach(sim, shop):
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    sim.clock.freeze(now)
    old = place(shop, created_at=now - timedelta(days=61))
    recent = place(shop, created_at=now - timedelta(days=59))
    listing = "{ orders(first: 10) { nodes { id } } }"
    shop.set_all_orders_access(False)

    assert gql(sim, ORDER_QUERY, {"id": old["id"]}).json()["data"] == {"order": None}
    assert read_order(sim, recent["id"])["id"] == recent["id"]
    nodes = gql(sim, listing).json()["data"]["orders"]["nodes"]
    assert [n["id"] for n in nodes] == [recent["id"]]

    shop.set_all_orders_access(True)
    assert read_order(sim, old["id"])["id"] == old["id"]
    assert len(gql(sim, listing).json()["data"]["orders"]["nodes"]) == 2


# ---- listing changed orders ----------------------------------------------------------------------

ORDERS_PAGE = """
query($q: String!, $after: String) {
  orders(first: 3, after: $after, sortKey: UPDATED_AT, query: $q) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt fulfillments(first: 5) { id } }
  }
}
"""


def test_orders_updated_since_paginate_each_order_once(sim, shop):
    base = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    old = shop.bulk_load_orders(4, updated_at=base, step_seconds=60)
    sim.clock.freeze(base + timedelta(hours=1))
    recent = [place(shop)["id"] for _ in range(5)]
    sim.clock.advance(30)
    shop.touch(old[0])  # an old order that changed since the cursor
    query = "updated_at:>'2026-11-27T09:30:00Z'"
    seen, after, pages = [], None, 0
    while True:
        body = gql(sim, ORDERS_PAGE, {"q": query, "after": after}).json()
        page = body["data"]["orders"]
        seen += [node["id"] for node in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted([*recent, old[0]])
    assert len(seen) == len(set(seen)) == 6
    assert pages == 2
    assert seen[-1] == old[0]  # sorted by updatedAt
    unquoted = gql(sim, ORDERS_PAGE, {"q": "updated_at:>=2026-11-27T10:00:30Z"}).json()
    assert [n["id"] for n in unquoted["data"]["orders"]["nodes"]] == [old[0]]
    window = "created_at:>='2026-11-27T09:01:00Z' AND created_at:<'2026-11-27T09:03:00Z'"
    body = gql(sim, ORDERS_PAGE, {"q": window}).json()
    assert [n["id"] for n in body["data"]["orders"]["nodes"]] == old[1:3]


def test_reverse_and_before_pagination(sim, shop):
    ids = shop.bulk_load_orders(5)
    query = "query($b: String) { orders(last: 2, before: $b, sortKey: ID) { pageInfo { hasPreviousPage startCursor } nodes { id } } }"  # noqa: E501
    page = gql(sim, query).json()["data"]["orders"]
    assert [n["id"] for n in page["nodes"]] == ids[3:]
    page = gql(sim, query, {"b": page["pageInfo"]["startCursor"]}).json()["data"]["orders"]
    assert [n["id"] for n in page["nodes"]] == ids[1:3]
    assert page["pageInfo"]["hasPreviousPage"] is True
    reverse = gql(sim, "{ orders(first: 2, reverse: true, sortKey: ID) { nodes { id } } }").json()
    assert [n["id"] for n in reverse["data"]["orders"]["nodes"]] == ids[-2:][::-1]


def test_order_fulfillments_query_filter_and_clock_source(sim, shop):
    moment = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    sim.clock = lambda: moment
    order = place(shop)
    shop.fulfill(order["id"], [(order["line_items"][0]["id"], 1)])
    moment = moment + timedelta(hours=1)
    shop.fulfill(order["id"], [(order["line_items"][1]["id"], 1)])
    query = """query($id: ID!, $q: String) {
      order(id: $id) { updatedAt fulfillments(first: 5, query: $q) { name createdAt } } }"""
    body = gql(sim, query, {"id": order["id"], "q": "created_at:>'2026-11-27T10:30:00Z'"}).json()
    assert body["data"]["order"]["fulfillments"] == [
        {"name": "#1001.2", "createdAt": "2026-11-27T11:00:00Z"}
    ]
    assert body["data"]["order"]["updatedAt"] == "2026-11-27T11:00:00Z"
    sim.clock.unfreeze()


def test_connections_need_first_and_cap_at_250(sim, shop):
    body = gql(sim, '{ orders(query: "x") { nodes { id } } }').json()
    assert body["errors"][0]["message"] == "you must provide one of first or last"
    body = gql(sim, "{ orders(first: 251) { nodes { id } } }").json()
    assert "250" in body["errors"][0]["message"]
    assert "data" not in body


def test_search_syntax():
    assert SearchQuery("updated_at:>'2026-11-27T10:00:00Z'").groups[0][0].op == ">"
    terms = SearchQuery('status:open -tag:"do not ship" OR sku:AC-1*').groups
    assert len(terms) == 2
    assert terms[0][1].negate is True


# ---- cost and throttling --------------------------------------------------------------------


def test_cost_extension_and_throttled_with_200(sim, shop):
    body = gql(sim, "{ shop { name } }").json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1
    assert cost["actualQueryCost"] == 1
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    shop.set_rate_limit(maximum_available=60, restore_rate=1, currently_available=60)
    expensive = "{ orders(first: 50) { nodes { id } } }"  # requests 52 points
    ok = gql(sim, expensive)
    assert ok.status_code == 200 and "data" in ok.json()
    assert ok.json()["extensions"]["cost"]["actualQueryCost"] == 2  # no orders came back
    shop.set_rate_limit(currently_available=10)
    throttled = gql(sim, expensive)
    assert throttled.status_code == 200
    body = throttled.json()
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    assert body["extensions"]["cost"]["requestedQueryCost"] == 52
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] <= 11
    assert sim.calls(shop=shop.domain)[-1]["throttled"] is True


def test_throttled_with_429_when_configured():
    simulator = ShopifySimulator(throttle_http_status=429, bucket_size=20, restore_rate=1)
    simulator.start()
    try:
        simulator.add_shop("acme.myshopify.com", TOKEN, SECRET)
        answer = gql(simulator, "{ orders(first: 50) { nodes { id } } }")
        assert answer.status_code == 429
        assert answer.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert int(answer.headers["Retry-After"]) >= 1
        simulator.throttle_next(1)
        assert gql(simulator, "{ shop { name } }").status_code == 429
        assert gql(simulator, "{ shop { name } }").status_code == 200
    finally:
        simulator.stop()


def test_single_query_max_cost(sim, shop):
    query = """{ orders(first: 25) { nodes { id
      fulfillments(first: 10) { trackingInfo(first: 5) { number }
        fulfillmentLineItems(first: 50) { nodes { quantity lineItem { sku } } } } } } }"""
    body = gql(sim, query).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["message"].startswith(
        f"Query cost is {error['extensions']['cost']}, which exceeds"
    )


# ---- failure switches -----------------------------------------------------------------------


def test_fail_next_and_slow_next(sim, shop):
    sim.fail_next(count=2, status=503)
    assert gql(sim, "{ shop { name } }").status_code == 503
    assert gql(sim, "{ shop { name } }").status_code == 503
    assert gql(sim, "{ shop { name } }").status_code == 200
    shop.fail_next(status=429, retry_after=2)
    limited = gql(sim, "{ shop { name } }")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    sim.fail_next(status=500)
    error = gql(sim, "{ shop { name } }")
    assert error.status_code == 500
    assert error.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    shop.slow_next(1, 0.3)
    started = time.monotonic()
    assert gql(sim, "{ shop { name } }").status_code == 200
    assert time.monotonic() - started >= 0.3
    other = sim.add_shop("other.myshopify.com", "shpat_other", "s")
    other.fail_next(status=502)
    assert gql(sim, "{ shop { name } }").status_code == 200  # acme is not affected
    assert gql(sim, "{ shop { name } }", token="shpat_other").status_code == 502


def test_call_log_counts_calls(sim, shop):
    order = place(shop)
    sim.reset_calls()
    for _ in range(3):
        read_order(sim, order["id"])
    gql(sim, FULFILL, fulfill_input((order["fulfillment_orders"][0]["id"], None)))
    sim.fail_next(status=500)
    gql(sim, "{ shop { name } }")
    assert len(sim.calls(shop=shop.domain, field="order")) == 3
    [create] = sim.calls(field="fulfillmentCreate")
    assert create["operation"] == "mutation"
    assert create["status"] == 200
    assert create["cost"] >= 10
    assert sim.calls()[-1]["status"] == 500
    assert len(sim.calls()) == 5
    sim.reset_calls()
    assert sim.calls() == []


# ---- webhooks ------------------------------------------------------------------------------------


def test_webhook_headers_and_hmac_over_exact_bytes(sim, shop, receiver):
    shop.add_webhook("orders/create", receiver.url, name="gateway-orders")
    order = shop.place_order(
        line_items=[{"sku": "AC-100", "quantity": 1, "title": "Café crème — 🍵"}],
        shipping_address=ADDRESS,
        email="ada@example.com",
    )
    assert sim.wait_for_webhooks()
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], expected)
    # Re-serialising the parsed body changes the bytes (non-ASCII), so it must not verify.
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    assert headers["x-shopify-topic"] == "orders/create"
    assert headers["x-shopify-shop-domain"] == "acme.myshopify.com"
    assert headers["x-shopify-api-version"] == "2026-01"
    assert headers["x-shopify-name"] == "gateway-orders"
    assert headers["content-type"] == "application/json"
    assert len(headers["x-shopify-webhook-id"]) == 36
    assert len(headers["x-shopify-event-id"]) == 36
    assert datetime.fromisoformat(headers["x-shopify-triggered-at"])
    payload = json.loads(body)
    assert payload["id"] == int(order["legacy_id"])
    assert payload["name"] == "#1001"
    assert payload["email"] == "ada@example.com"
    assert payload["shipping_address"]["province_code"] == "IL"
    line = payload["line_items"][0]
    keys = {"id", "admin_graphql_api_id", "sku", "quantity", "title", "name", "variant_id"}
    assert keys | {"fulfillable_quantity"} <= set(line)
    [logged] = sim.deliveries(topic="orders/create")
    assert logged["status"] == 200 and logged["webhook_id"] == headers["x-shopify-webhook-id"]


def test_an_events_style_subscription_sends_the_same_headers_without_the_x_prefix(
    sim, shop, receiver
):
    shop.add_webhook("orders/create", receiver.url, name="gateway-orders", header_style="events")
    shop.place_order(line_items=[{"sku": "AC-100", "quantity": 1}], shipping_address=ADDRESS)
    assert sim.wait_for_webhooks()
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert not [name for name in headers if name.startswith("x-shopify-")]
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(headers["shopify-hmac-sha256"], expected)
    assert headers["shopify-topic"] == "orders/create"
    assert headers["shopify-shop-domain"] == "acme.myshopify.com"
    assert headers["shopify-api-version"] == "2026-01"
    assert headers["shopify-handle"] == "gateway-orders"
    assert len(headers["shopify-webhook-id"]) == 36
    assert len(headers["shopify-event-id"]) == 36
    assert datetime.fromisoformat(headers["shopify-triggered-at"])
    [logged] = sim.deliveries(topic="orders/create")
    assert logged["webhook_id"] == headers["shopify-webhook-id"]
    assert shop.webhooks()[0]["header_style"] == "events"
    with pytest.raises(ValueError, match="header_style"):
        shop.add_webhook("orders/create", receiver.url, header_style="pubsub")


def test_webhook_drop_and_duplicate_modes(sim, shop, receiver):
    shop.add_webhook("orders/create", receiver.url)
    sim.set_webhook_mode("drop")
    place(shop)
    assert sim.wait_for_webhooks()
    assert receiver.requests == []
    assert sim.deliveries()[-1]["outcome"] == "dropped"
    shop.set_webhook_mode("duplicate")  # per shop, overrides the global "drop"
    place(shop)
    assert sim.wait_for_webhooks()
    first, second = receiver.requests
    assert first["headers"]["x-shopify-webhook-id"] == second["headers"]["x-shopify-webhook-id"]
    assert first["body"] == second["body"]


def test_webhook_reorder_and_flush(sim, shop, receiver):
    shop.add_webhook("orders/create", receiver.url)
    sim.set_webhook_mode("reorder", hold=3)
    names = [place(shop)["name"] for _ in range(3)]
    assert sim.wait_for_webhooks()
    assert [b["name"] for b in receiver.bodies()] == names[::-1]
    place(shop)
    assert sim.wait_for_webhooks()
    assert len(receiver.requests) == 3  # held until three pile up, or a flush
    assert sim.flush_webhooks() == 1
    assert sim.wait_for_webhooks()
    assert len(receiver.requests) == 4


def test_webhook_delay_and_retries(receiver):
    simulator = ShopifySimulator(webhook_retry_schedule=[0.05, 0.05])
    simulator.start()
    try:
        shop = simulator.add_shop("acme.myshopify.com", TOKEN, SECRET)
        shop.add_webhook("orders/create", receiver.url)
        receiver.statuses = [500, 302]
        place(shop)
        assert simulator.wait_for_webhooks()
        attempts = simulator.deliveries()
        assert [a["status"] for a in attempts] == [500, 302, 200]
        assert len({a["webhook_id"] for a in attempts}) == 1
        simulator.set_webhook_mode("delay", seconds=0.3)
        started = time.monotonic()
        place(shop)
        assert simulator.wait_for_webhooks()
        assert time.monotonic() - started >= 0.3
        assert len(receiver.requests) == 4
    finally:
        simulator.stop()


def test_api_webhook_subscription_and_fulfillment_topics(sim, shop, receiver):
    create = """mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
      webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
        webhookSubscription { id topic uri } userErrors { field message } } }"""
    body = gql(sim, create, {"topic": "FULFILLMENTS_CREATE", "sub": {"uri": receiver.url}}).json()
    assert body["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["topic"] == (
        "FULFILLMENTS_CREATE"
    )
    order = place(shop)
    shop.fulfill(order["id"], company="UPS", numbers=["1Z5R89390357567127"])
    assert sim.wait_for_webhooks()
    [payload] = receiver.bodies("fulfillments/create")
    keys = [
        "id",
        "order_id",
        "status",
        "created_at",
        "updated_at",
        "location_id",
        "shipment_status",
        "tracking_company",
        "tracking_number",
        "tracking_numbers",
        "tracking_url",
        "tracking_urls",
        "name",
        "admin_graphql_api_id",
        "line_items",
    ]
    assert set(keys) <= set(payload)
    assert payload["name"] == "#1001.1"


# ---- control API and CLI -----------------------------------------------------------------------


def test_control_endpoints(sim, shop, receiver):
    base = f"{sim.base_url}/_sim"
    hook = {"topic": "orders/create", "url": receiver.url}
    requests.post(f"{base}/shops/{shop.domain}/webhooks", json=hook, timeout=5)
    made = requests.post(
        f"{base}/shops/{shop.domain}/orders",
        json={"line_items": [{"sku": "AC-100", "quantity": 2, "title": "Mug"}], "email": "a@b.c"},
        timeout=5,
    )
    assert made.status_code == 201
    order = made.json()
    fulfilled = requests.post(
        f"{base}/shops/{shop.domain}/fulfillments",
        json={"order_id": order["id"], "company": "UPS", "numbers": ["1Z5R89390357567127"]},
        timeout=5,
    )
    assert fulfilled.status_code == 201
    requests.post(f"{base}/webhook_mode", json={"mode": "drop"}, timeout=5)
    assert sim.webhook_mode.name == "drop"
    requests.post(f"{base}/fail_next", json={"count": 1, "status": 502}, timeout=5)
    assert gql(sim, "{ shop { name } }").status_code == 502
    calls = requests.get(f"{base}/calls", params={"shop": shop.domain}, timeout=5).json()
    assert calls[-1]["status"] == 502
    assert shop.order(order["id"])["display_fulfillment_status"] == "FULFILLED"
    bad = requests.post(
        f"{base}/shops/{shop.domain}/fulfillments", json={"order_id": "nope"}, timeout=5
    )
    assert bad.status_code == 404


def test_cli_serves_shops():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.shopify",
            "--port",
            str(port),
            "--shop",
            "acme.myshopify.com:shpat_acme:acme-secret",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                shops = requests.get(f"http://127.0.0.1:{port}/_sim/shops", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, process.stdout.read1().decode()
                time.sleep(0.1)
        assert shops[0]["domain"] == "acme.myshopify.com"
        answer = requests.post(
            f"http://127.0.0.1:{port}/admin/api/2026-01/graphql.json",
            json={"query": "{ shop { myshopifyDomain } }"},
            headers={"X-Shopify-Access-Token": "shpat_acme"},
            timeout=5,
        )
        assert answer.json()["data"]["shop"]["myshopifyDomain"] == "acme.myshopify.com"
    finally:
        process.terminate()
        process.wait(10)
