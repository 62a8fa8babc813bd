"""The WooCommerce simulator behaves as platforms/woocommerce.md documents (no Redis needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from sandbox.woocommerce import WooCommerceSimulator, WooCommerceStore

ROOT = Path(__file__).resolve().parents[2]
CK, CS, SECRET = "ck_test", "cs_test", "wh-secret"


class Receiver:
    """A local webhook endpoint that records each request and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append({"headers": dict(self.headers.items()), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/woocommerce"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def deliveries(self) -> list[dict]:
        """The requests that are not the save-time ping."""
        with self._lock:
            return [r for r in self.requests if "X-WC-Webhook-Topic" in r["headers"]]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.deliveries()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries())}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def sim() -> Iterator[WooCommerceSimulator]:
    simulator = WooCommerceSimulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def store(sim: WooCommerceSimulator) -> WooCommerceStore:
    return sim.add_store("corner", CK, CS, SECRET)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


KEYS = (CK, CS)


def test_basic_auth_and_query_keys_or_refusal(sim, store):
    orders = f"{store.api_url}/orders"
    anonymous = requests.get(orders, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }
    assert requests.post(orders, json={}, timeout=5).json()["code"] == (
        "woocommerce_rest_cannot_create"
    )
    wrong_key = requests.get(orders, auth=("ck_nope", CS), timeout=5)
    assert wrong_key.status_code == 401
    assert wrong_key.json()["message"] == "Consumer key is invalid."
    wrong_secret = requests.get(orders, auth=(CK, "cs_nope"), timeout=5)
    assert wrong_secret.json()["code"] == "woocommerce_rest_authentication_error"
    assert requests.get(orders, auth=KEYS, timeout=5).status_code == 200
    by_query = requests.get(orders, params={"consumer_key": CK, "consumer_secret": CS}, timeout=5)
    assert by_query.status_code == 200

    store.add_key("ck_read", "cs_read", "read")
    assert requests.get(orders, auth=("ck_read", "cs_read"), timeout=5).status_code == 200
    read_only = requests.post(orders, json={}, auth=("ck_read", "cs_read"), timeout=5)
    assert read_only.status_code == 401 and "write permissions" in read_only.json()["message"]
    assert [c["status"] for c in sim.calls(store="corner")][:3] == [401, 401, 401]


def test_rest_order_fields_and_sku_from_the_catalog(sim, store):
    store.add_product("AC-100", "Acme mug", 7.5)
    created = requests.post(
        f"{store.api_url}/orders",
        json={
            "status": "processing",
            "billing": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            "shipping": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address_1": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "postcode": "62701",
                "country": "US",
            },
            "line_items": [
                {"sku": "AC-100", "quantity": 2},
                {"sku": "NOT-IN-CATALOG", "name": "Mystery", "quantity": 1},
            ],
            "meta_data": [{"key": "gateway_order_id", "value": "g-1"}],
        },
        auth=KEYS,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert created.headers["Location"].endswith(f"/wc/v3/orders/{order['id']}")
    assert order["status"] == "processing" and order["created_via"] == "rest-api"
    assert order["shipping"]["city"] == "Springfield" and order["billing"]["email"]
    for key in ("date_created", "date_modified", "date_modified_gmt", "date_paid"):
        datetime.fromisoformat(order[key])
    first, second = order["line_items"]
    assert (first["sku"], first["quantity"], first["total"]) == ("AC-100", 2, "15.00")
    assert first["product_id"] > 0 and isinstance(first["id"], int)
    # WooCommerce takes a line's sku from its product: no product, no sku.
    assert (second["sku"], second["product_id"], second["name"]) == (None, 0, "Mystery")
    assert order["meta_data"][0]["key"] == "gateway_order_id"

    fetched = requests.get(f"{store.api_url}/orders/{order['id']}", auth=KEYS, timeout=5)
    assert fetched.json()["line_items"] == order["line_items"]
    missing = requests.get(f"{store.api_url}/orders/99999", auth=KEYS, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["code"] == "woocommerce_rest_shop_order_invalid_id"
    no_ref = requests.post(
        f"{store.api_url}/orders", json={"line_items": [{"quantity": 1}]}, auth=KEYS, timeout=5
    )
    assert no_ref.status_code == 400
    assert no_ref.json()["code"] == "woocommerce_rest_required_product_reference"

    done = requests.put(
        f"{store.api_url}/orders/{order['id']}", json={"status": "completed"}, auth=KEYS, timeout=5
    )
    assert done.json()["status"] == "completed" and done.json()["date_completed"]
    assert store.notes(order["id"])[0]["note"] == (
        "Order status changed from Processing to Completed."
    )
    bad = requests.put(
        f"{store.api_url}/orders/{order['id']}", json={"status": "shipped"}, auth=KEYS, timeout=5
    )
    assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"


@pytest.mark.parametrize("email", ["", "ada", "ada@example", "ada @example.com"])
def test_an_empty_or_invalid_billing_email_is_refused_and_no_order_is_made(sim, store, email):
    body = {"billing": {"first_name": "Ada", "email": email}, "line_items": [{"sku": "A"}]}

    refused = requests.post(f"{store.api_url}/orders", json=body, auth=KEYS, timeout=5)

    assert refused.status_code == 400
    assert refused.json() == {
        "code": "rest_invalid_param",
        "message": "Invalid parameter(s): billing",
        "data": {
            "status": 400,
            "params": {"billing": "Invalid email address."},
            "details": {
                "billing": {
                    "code": "rest_invalid_email",
                    "message": "Invalid email address.",
                    "data": None,
                }
            },
        },
    }
    assert store.orders() == []
    for allowed in ({"first_name": "Ada"}, {"email": None}, {"email": "ada@example.com"}):
        body["billing"] = allowed
        made = requests.post(f"{store.api_url}/orders", json=body, auth=KEYS, timeout=5)
        assert made.status_code == 201, made.text
    oid = store.orders()[-1]["id"]
    update = requests.put(
        f"{store.api_url}/orders/{oid}", json={"billing": {"email": ""}}, auth=KEYS, timeout=5
    )
    assert update.status_code == 400 and store.order(oid)["billing"]["email"] == "ada@example.com"


def test_status_changes_email_the_billing_address_as_woocommerce_does(sim, store):
    def created(billing: dict) -> int:
        body = {"status": "processing", "billing": billing, "line_items": [{"sku": "A"}]}
        answer = requests.post(f"{store.api_url}/orders", json=body, auth=KEYS, timeout=5)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    mailed = created({"first_name": "Ada", "email": "ada@example.com"})
    # saved pending, then set processing: the customer's "order received" email
    assert [(e["email"], e["to"], e["order_id"]) for e in store.emails()] == [
        ("customer_processing_order", "ada@example.com", mailed)
    ]
    assert (
        store.notes(mailed)[0]["note"] == "Order status changed from Pending payment to Processing."
    )
    store.complete(mailed)
    assert store.emails()[-1]["email"] == "customer_completed_order"

    silent = created({"first_name": "Ada"})
    store.complete(silent)
    store.add_note(silent, "Shipped", customer_note=True)
    assert [e for e in store.emails() if e["order_id"] == silent] == []  # no billing email

    held = store.place_order([{"sku": "A"}], billing={"email": "bo@example.com"}, paid=False)
    store.set_status(held["id"], "on-hold")  # a bank transfer awaited
    store.mark_paid(held["id"])
    assert [e["email"] for e in store.emails() if e["order_id"] == held["id"]] == [
        "customer_on_hold_order",
        "customer_processing_order",
    ]


def test_products_by_sku_and_lines_on_them_at_the_price_posted(sim, store):
    mug = store.add_product("AC-100", "Acme mug", 7.5, stock=5)
    store.add_product("AC-300", "Acme jug", 9.0)
    url = f"{store.api_url}/products"

    found = requests.get(url, params={"sku": "AC-100,AC-200"}, auth=KEYS, timeout=5).json()
    assert [(p["id"], p["sku"], p["price"]) for p in found] == [(mug, "AC-100", "7.50")]
    assert found[0]["manage_stock"] is True and found[0]["stock_quantity"] == 5
    assert requests.get(url, params={"sku": "AC-1"}, auth=KEYS, timeout=5).json() == []
    assert requests.get(url, timeout=5).status_code == 401

    def order(line: dict) -> requests.Response:
        body = {"status": "processing", "line_items": [line]}
        return requests.post(f"{store.api_url}/orders", json=body, auth=KEYS, timeout=5)

    as_number = order({"product_id": mug, "quantity": 2, "total": 0})
    assert as_number.status_code == 400
    assert as_number.json()["data"]["params"] == {
        "line_items": "line_items[0][total] is not of type string."
    }
    linked = order({"product_id": mug, "quantity": 2, "subtotal": "0.00", "total": "0.00"})
    (line,) = linked.json()["line_items"]
    assert (line["product_id"], line["sku"], line["name"], line["total"]) == (
        mug,
        "AC-100",
        "Acme mug",
        "0.00",
    )
    assert store.product(mug)["stock_quantity"] == 3, "processing reduces the stock, once"
    store.complete(linked.json()["id"])
    assert store.product(mug)["stock_quantity"] == 3
    priced = order({"product_id": mug, "quantity": 1})
    assert priced.json()["line_items"][0]["total"] == "7.50", "no total: the shop's price"
    by_name = order({"sku": "AC-200", "name": "Red mug", "quantity": 1, "total": "0.00"})
    (line,) = by_name.json()["line_items"]
    assert (line["product_id"], line["sku"], line["name"]) == (0, None, "Red mug")


def test_listing_headers_paging_and_modified_after(sim):
    store = sim.add_store("tz", CK, CS, SECRET, utc_offset_hours=-5)
    sim.clock.set(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    ids = store.bulk_load_orders(5, step_seconds=60)  # modified 12:00..12:04 UTC = 07:00..07:04
    url = f"{store.api_url}/orders"

    seen: list[int] = []
    for page in (1, 2, 3):
        answer = requests.get(
            url,
            params={"per_page": 2, "page": page, "orderby": "modified", "order": "asc"},
            auth=KEYS,
            timeout=5,
        )
        assert answer.headers["X-WP-Total"] == "5"
        assert answer.headers["X-WP-TotalPages"] == "3"
        link = answer.headers.get("Link", "")
        assert ('rel="next"' in link) == (page < 3)
        assert ('rel="prev"' in link) == (page > 1)
        if page < 3:
            assert f"page={page + 1}" in link and "per_page=2" in link
        seen.extend(o["id"] for o in answer.json())
    assert seen == ids, "each order once, oldest change first"
    beyond = requests.get(url, params={"per_page": 2, "page": 4}, auth=KEYS, timeout=5)
    assert beyond.status_code == 200 and beyond.json() == []
    default = requests.get(url, auth=KEYS, timeout=5).json()
    assert [o["id"] for o in default] == ids[::-1], "default: newest first, 10 per page"
    too_many = requests.get(url, params={"per_page": 101}, auth=KEYS, timeout=5)
    assert too_many.status_code == 400 and too_many.json()["data"]["params"]["per_page"]

    def modified(**params: str) -> list[int]:
        answer = requests.get(
            url, params={"orderby": "id", "order": "asc", **params}, auth=KEYS, timeout=5
        )
        assert answer.status_code == 200, answer.text
        return [o["id"] for o in answer.json()]

    assert modified(modified_after="2026-01-10T07:01:00") == ids[2:], "site time, exclusive"
    assert modified(modified_after="2026-01-10T12:01:00", dates_are_gmt="true") == ids[2:]
    assert modified(modified_after="2026-01-10T12:01:00Z") == ids[2:], "an offset is honoured"
    assert modified(modified_before="2026-01-10T07:02:00") == ids[:2]
    assert modified(status="completed") == []
    assert modified(status="processing,completed") == ids
    assert requests.get(
        url, params={"modified_after": "soon"}, auth=KEYS, timeout=5
    ).status_code == (400)
    order = store.order(ids[0])
    assert order["date_modified"] == "2026-01-10T07:00:00"
    assert order["date_modified_gmt"] == "2026-01-10T12:00:00"


def test_notes_customer_and_private(sim, store):
    oid = store.place_order([{"sku": "MUG", "name": "Mug", "quantity": 1}], paid=False)["id"]
    url = f"{store.api_url}/orders/{oid}/notes"
    added = requests.post(
        url,
        json={"note": "UPS 1Z5R89390357567127 https://ups.example/1Z", "customer_note": True},
        auth=KEYS,
        timeout=5,
    )
    assert added.status_code == 201
    note = added.json()
    assert note["customer_note"] is True and note["author"] == "system"
    private = requests.post(url, json={"note": "internal"}, auth=KEYS, timeout=5).json()
    assert private["customer_note"] is False
    listed = requests.get(url, auth=KEYS, timeout=5).json()
    assert [n["id"] for n in listed] == [private["id"], note["id"]], "newest first"
    customer_only = requests.get(url, params={"type": "customer"}, auth=KEYS, timeout=5).json()
    assert [n["id"] for n in customer_only] == [note["id"]]
    assert store.emails()[-1]["note"].startswith("UPS 1Z5R")
    assert requests.post(url, json={}, auth=KEYS, timeout=5).json()["code"] == (
        "rest_missing_callback_param"
    )


def test_shipment_tracking_present_and_absent(sim, store):
    tracked = sim.add_store("tracked", CK, CS, SECRET, has_shipment_tracking=True)
    for site, present in ((tracked, True), (store, False)):
        oid = site.place_order([{"sku": "MUG", "quantity": 1}])["id"]
        base = f"{site.url}/wp-json/wc-shipment-tracking/v3/orders/{oid}/shipment-trackings"
        index = requests.get(f"{site.url}/wp-json/", timeout=5).json()
        assert ("wc-shipment-tracking/v3" in index["namespaces"]) is present
        created = requests.post(
            base,
            json={"tracking_provider": "UPS", "tracking_number": "1Z5R89390357567127"},
            auth=KEYS,
            timeout=5,
        )
        if not present:
            assert created.status_code == 404
            assert created.json()["code"] == "rest_no_route"
            assert requests.get(base, auth=KEYS, timeout=5).status_code == 404
            continue
        assert created.status_code == 201, created.text
        item = created.json()
        assert (
            item["tracking_provider"] == "UPS" and item["tracking_number"] == "1Z5R89390357567127"
        )
        assert "1Z5R89390357567127" in item["tracking_link"]
        assert len(item["date_shipped"]) == 10
        custom = requests.post(
            base,
            json={
                "custom_tracking_provider": "Acme Freight",
                "custom_tracking_link": "https://acme.example/t/%1$s",
                "tracking_number": "AF123",
                "date_shipped": "2026-02-03",
            },
            auth=KEYS,
            timeout=5,
        ).json()
        assert custom["tracking_link"] == "https://acme.example/t/AF123"
        assert custom["date_shipped"] == "2026-02-03"
        listed = requests.get(base, auth=KEYS, timeout=5).json()
        assert [t["tracking_id"] for t in listed] == [item["tracking_id"], custom["tracking_id"]]
        meta = {m["key"]: m["value"] for m in site.order(oid)["meta_data"]}
        assert len(meta["_wc_shipment_tracking_items"]) == 2
        assert requests.post(base, json={}, auth=KEYS, timeout=5).status_code == 400
        providers = requests.get(
            f"{site.url}/wp-json/wc-shipment-tracking/v3/shipment-trackings/providers", timeout=5
        ).json()
        assert "UPS" in providers["United States"]
        gone = requests.delete(f"{base}/{custom['tracking_id']}", auth=KEYS, timeout=5)
        assert gone.status_code == 200 and len(site.trackings(oid)) == 1


def test_advanced_shipment_tracking_answers_the_route_its_own_way(sim):
    ast = sim.add_store("ast", CK, CS, SECRET, tracking_plugin="ast")
    oid = ast.place_order([{"sku": "MUG", "quantity": 1}])["id"]
    base = f"{ast.url}/wp-json/wc-shipment-tracking/v3/orders/{oid}/shipment-trackings"
    assert (
        "wc-shipment-tracking/v3"
        in requests.get(f"{ast.url}/wp-json/", timeout=5).json()["namespaces"]
    )

    def post(**body: str) -> requests.Response:
        return requests.post(base, json=body, auth=KEYS, timeout=5)

    known = post(
        tracking_number="1Z5R89390357567127",
        custom_tracking_provider="ups",  # found by name in its table, case aside
        custom_tracking_link="https://ours.example/1Z5R89390357567127",
    )
    assert known.status_code == 201, known.text
    item = known.json()
    assert item["tracking_provider"] == "UPS"
    assert item["tracking_link"].startswith("https://www.ups.com/"), "its own link, not ours"
    today = sim.clock.now()
    assert item["date_shipped"] == f"{today:%B} {today.day}, {today.year}", "site date_format"
    other = post(
        tracking_number="AC123456789",
        custom_tracking_provider="Acme Courier",
        custom_tracking_link="https://acme.example/t/AC123456789",
    ).json()
    assert (other["tracking_provider"], other["tracking_link"]) == (
        "",
        "https://acme.example/t/AC123456789",
    )
    refused = post(tracking_number="JD0146.0000.4417", custom_tracking_provider="DHL")
    assert refused.status_code == 404
    assert refused.json()["code"] == "woocommerce_rest_order_invalid_id"
    assert refused.json()["message"] == "Special character not allowd in tracking number"
    ast.ast_api_date_format = "m-d-Y"
    swapped = post(tracking_number="FX449044304137821", date_shipped="2026-03-05").json()
    assert swapped["date_shipped"] == "May 3, 2026", "an ISO date read day-for-month"
    listed = requests.get(base, auth=KEYS, timeout=5).json()
    assert [t["tracking_number"] for t in listed] == [
        "1Z5R89390357567127",
        "AC123456789",
        "FX449044304137821",
    ]
    assert ast.notes(oid)[0]["note"].startswith("Order was shipped with")
    providers = f"{ast.url}/wp-json/wc-shipment-tracking/v3/shipment-trackings/providers"
    assert requests.get(providers, timeout=5).status_code == 404, "the extension's route only"


def test_ping_then_signed_delivery_with_wc_headers(sim, store, receiver):
    hook = store.add_webhook("order.created", receiver.url)
    assert hook["ping"] == {"ok": True, "status": 200}
    ping = receiver.requests[0]
    assert ping["body"] == f"webhook_id={hook['id']}".encode()
    assert not any(h.startswith("X-WC-") for h in ping["headers"])
    assert ping["headers"]["User-Agent"].startswith("WooCommerce/")

    order = store.place_order(
        [{"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2}],
        shipping={"first_name": "Ada", "last_name": "Lovelace", "city": "Springfield"},
        billing={"email": "ada@example.com"},
    )
    (delivery,) = receiver.wait_for(1)
    headers, body = delivery["headers"], delivery["body"]
    assert headers["X-WC-Webhook-Source"] == store.url + "/"
    assert headers["X-WC-Webhook-Topic"] == "order.created"
    assert headers["X-WC-Webhook-Resource"] == "order"
    assert headers["X-WC-Webhook-Event"] == "created"
    assert headers["X-WC-Webhook-ID"] == str(hook["id"])
    assert len(headers["X-WC-Webhook-Delivery-ID"]) == 32
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    assert hmac.compare_digest(expected, headers["X-WC-Webhook-Signature"].encode())
    assert b"\\/" in body, "PHP-style escaped slashes: verify the raw bytes, not re-serialized JSON"
    payload = json.loads(body)
    # Built at delivery time: the order had already moved on to processing.
    assert payload == store.order(order["id"])
    assert payload["status"] == "processing"
    assert payload["line_items"][0]["sku"] == "MUG-BLUE"


def test_an_unpaid_checkout_stays_pending_until_paid_or_cancelled(sim, store, receiver):
    store.add_webhook("order.created", receiver.url)
    store.add_webhook("order.updated", receiver.url)
    unpaid = store.place_order([{"sku": "A", "quantity": 1}], paid=False)
    (created,) = receiver.wait_for(1)
    assert created["headers"]["X-WC-Webhook-Topic"] == "order.created"
    assert json.loads(created["body"])["status"] == "pending"
    assert unpaid["date_paid"] is None and unpaid["needs_payment"] is True

    paid = store.mark_paid(unpaid["id"])  # the payment gateway's payment_complete()

    assert paid["status"] == "processing" and paid["date_paid_gmt"]
    updated = receiver.wait_for(2)[1]
    assert updated["headers"]["X-WC-Webhook-Topic"] == "order.updated"
    assert json.loads(updated["body"])["status"] == "processing"
    assert store.mark_paid(unpaid["id"])["status"] == "processing", "paid once"
    other = store.place_order([{"sku": "B", "quantity": 1}], paid=False)["id"]
    assert store.set_status(other, "cancelled")["date_paid"] is None


def test_deliveries_name_the_sites_home_url_as_their_source(sim, receiver):
    shop = sim.add_store("homed", CK, CS, SECRET, home_url="https://www.shop.example")
    shop.add_webhook("order.created", receiver.url)
    shop.place_order([{"sku": "A", "quantity": 1}])
    (delivery,) = receiver.wait_for(1)
    assert delivery["headers"]["X-WC-Webhook-Source"] == "https://www.shop.example/"
    assert requests.get(f"{shop.url}/wp-json/", timeout=5).json()["home"] == shop.home_url


def test_ping_needs_exactly_200(sim, store, receiver):
    receiver.status = 204
    hook = store.add_webhook("order.created", receiver.url)
    assert hook["ping"]["ok"] is False
    assert hook["ping"]["error"] == "Error: Delivery URL returned response code: 204"
    assert store.webhook(hook["id"])["pending_delivery"] is True
    created = requests.post(
        f"{store.api_url}/webhooks",
        json={"topic": "order.updated", "delivery_url": receiver.url, "secret": "x"},
        auth=KEYS,
        timeout=5,
    )
    assert created.status_code == 201, "REST create pings and ignores the result"
    assert created.json()["topic"] == "order.updated" and "secret" not in created.json()
    assert [d["kind"] for d in sim.deliveries(store="corner")] == ["ping", "ping"]


def test_no_retries_and_disabled_after_seven_consecutive_failures(sim, store, receiver):
    hook = store.add_webhook("order.updated", receiver.url)
    receiver.status = 500
    oid = store.place_order([{"sku": "A", "quantity": 1}], paid=False)["id"]
    for i in range(7):
        store.add_note(oid, f"n{i}")  # notes do not fire order.updated
        store.update_order(oid, {"customer_note": f"change {i}"})
        assert sim.wait_for_webhooks()
        assert len(receiver.deliveries()) == i + 1, "one attempt per event: no retries"
    state = store.webhook(hook["id"])
    assert state["status"] == "disabled" and state["failure_count"] == 6
    store.update_order(oid, {"customer_note": "after"})
    assert sim.wait_for_webhooks()
    assert len(receiver.deliveries()) == 7, "a disabled webhook sends nothing"

    store.set_webhook_status(hook["id"], "active")
    receiver.status = 302  # 200-302 counts as success
    store.update_order(oid, {"customer_note": "again"})
    receiver.wait_for(8)
    assert sim.wait_for_webhooks()
    assert store.webhook(hook["id"])["failure_count"] == 0


def test_drop_duplicate_and_coalescing_while_pending(sim, store, receiver):
    store.add_webhook("order.updated", receiver.url)
    oid = store.place_order([{"sku": "A", "quantity": 1}], paid=False)["id"]
    sim.webhook_mode = "drop"
    store.complete(oid)
    assert sim.wait_for_webhooks()
    assert receiver.deliveries() == []
    assert sim.deliveries(kind="webhook")[-1]["error"] == "dropped"

    sim.webhook_mode = "duplicate"
    store.set_status(oid, "on-hold")
    first, second = receiver.wait_for(2)
    assert first["body"] == second["body"]
    assert (
        first["headers"]["X-WC-Webhook-Delivery-ID"]
        == (second["headers"]["X-WC-Webhook-Delivery-ID"])
    )

    sim.webhook_mode = "delay"
    for status in ("processing", "completed", "on-hold", "completed"):
        store.set_status(oid, status)
    assert sim.flush() == 1, "one pending delivery per webhook + order: updates coalesce"
    third = receiver.wait_for(3)[2]
    assert json.loads(third["body"])["status"] == "completed", "payload built at delivery time"
    sim.webhook_mode = "normal"


def test_delivery_id_is_second_resolution_per_webhook(sim, store, receiver):
    hook = store.add_webhook("order.created", receiver.url)
    started = int(time.time())
    store.place_order([{"sku": "A", "quantity": 1}])
    store.place_order([{"sku": "B", "quantity": 1}])
    first, second = receiver.wait_for(2)
    ended = int(time.time())
    candidates = {store._wp_hash(f"{hook['id']}{s}") for s in range(started, ended + 1)}
    ids = [r["headers"]["X-WC-Webhook-Delivery-ID"] for r in (first, second)]
    assert set(ids) <= candidates, "wp_hash(webhook id . unix seconds), as WooCommerce core"
    assert json.loads(first["body"])["id"] != json.loads(second["body"])["id"]
    if started == ended:
        assert ids[0] == ids[1], "two orders, one second: the same Delivery-ID"


def test_cli_and_control_endpoints():
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.woocommerce", "--store", "shop1:ck_1:cs_1:sec:tracking"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        base = info["base_url"]
        shop = info["stores"][0]
        assert shop["store_url"] == f"{base}/stores/shop1" and shop["has_shipment_tracking"]
        placed = requests.post(
            f"{base}/_sim/stores/shop1/orders",
            json={"line_items": [{"sku": "X-1", "name": "X", "quantity": 2}]},
            timeout=5,
        )
        assert placed.status_code == 201
        oid = placed.json()["id"]
        listed = requests.get(f"{shop['api_url']}/orders", auth=("ck_1", "cs_1"), timeout=5)
        assert [o["id"] for o in listed.json()] == [oid]
        done = requests.post(f"{base}/_sim/stores/shop1/orders/{oid}/complete", timeout=5)
        assert done.json()["status"] == "completed"
        seen = requests.get(f"{base}/_sim/stores/shop1/orders/{oid}", timeout=5).json()
        assert seen["notes"] and seen["trackings"] == []
        calls = requests.get(f"{base}/_sim/calls", params={"store": "shop1"}, timeout=5).json()
        assert calls["count"] == 1
        failing = requests.post(
            f"{base}/_sim/fail_next", json={"count": 1, "status": 503, "retry_after": 2}, timeout=5
        )
        assert failing.ok
        answer = requests.get(f"{shop['api_url']}/orders", auth=("ck_1", "cs_1"), timeout=5)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    finally:
        process.terminate()
        process.wait(timeout=5)


# ---- the application authentication endpoint (/wc-auth/v1/) -----------------------------------


def _form(page: str) -> tuple[str, dict[str, str]]:
    """The grant page's form: its action and hidden fields, as a browser would read them."""
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def _authorize(store: WooCommerceStore, callback: str, **extra: str) -> requests.Response:
    params = {
        "app_name": "Fulfillment gateway",
        "scope": "read_write",
        "user_id": "nonce-123",
        "return_url": "http://gateway.test/connect/done",
        "callback_url": callback,
        **extra,
    }
    return requests.get(f"{store.url}/wc-auth/v1/authorize", params=params, timeout=5)


def _choose(store: WooCommerceStore, page: requests.Response, action: str, password=None):
    target, fields = _form(page.text)
    fields.update(
        wc_auth_action=action,
        username=store.admin_user,
        password=store.admin_password if password is None else password,
    )
    return requests.post(target, data=fields, allow_redirects=False, timeout=10)


def test_approving_an_app_posts_its_new_key_then_returns_with_success(sim, store, receiver):
    page = _authorize(store, receiver.url)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "Fulfillment gateway" in page.text and "Read/Write" in page.text
    assert "Create webhooks" in page.text and "<script" not in page.text

    answer = _choose(store, page, "approve")

    assert answer.status_code == 302
    assert answer.headers["Location"] == (
        "http://gateway.test/connect/done?success=1&user_id=nonce-123"
    )
    (posted,) = receiver.requests
    assert posted["headers"]["Content-Type"] == "application/json;charset=UTF-8"
    keys = json.loads(posted["body"])
    assert list(keys) == ["key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions"]
    assert keys["user_id"] == "nonce-123" and keys["key_permissions"] == "read_write"
    assert re.fullmatch(r"ck_[0-9a-f]{40}", keys["consumer_key"])
    assert re.fullmatch(r"cs_[0-9a-f]{40}", keys["consumer_secret"])
    auth = (keys["consumer_key"], keys["consumer_secret"])
    assert requests.get(f"{store.api_url}/orders", auth=auth, timeout=5).status_code == 200
    row = next(k for k in store.api_keys() if k["key_id"] == keys["key_id"])
    assert row["description"].startswith("Fulfillment gateway - API (")
    assert row["truncated_key"] == keys["consumer_key"][-7:] and "consumer_secret" not in row
    assert sim.deliveries(kind="keys")[0]["status"] == 200


@pytest.mark.parametrize("status", [201, 204, 302, 500])
def test_a_key_whose_callback_does_not_answer_exactly_200_is_deleted(sim, store, receiver, status):
    receiver.status = status
    before = store.api_keys()
    answer = _choose(store, _authorize(store, receiver.url), "approve")
    assert answer.status_code == 401
    assert "unable to send the consumer data" in answer.text and "Location" not in answer.headers
    keys = json.loads(receiver.requests[0]["body"])
    assert store.api_keys() == before, "maybe_delete_key"
    refused = requests.get(
        f"{store.api_url}/orders", auth=(keys["consumer_key"], keys["consumer_secret"]), timeout=5
    )
    assert refused.status_code == 401


def test_an_unreachable_callback_deletes_the_key_too(sim, store):
    answer = _choose(store, _authorize(store, "http://127.0.0.1:9/cb"), "approve")
    assert answer.status_code == 401 and len(store.api_keys()) == 1


def test_denying_returns_with_success_0_and_makes_no_key(sim, store, receiver):
    answer = _choose(store, _authorize(store, receiver.url), "deny")
    assert answer.status_code == 302
    assert answer.headers["Location"] == (
        "http://gateway.test/connect/done?success=0&user_id=nonce-123"
    )
    assert receiver.requests == [] and len(store.api_keys()) == 1


def test_a_wrong_password_or_a_forged_form_makes_no_key(sim, store, receiver):
    page = _authorize(store, receiver.url)
    again = _choose(store, page, "approve", password="wrong")
    assert again.status_code == 200 and "incorrect" in again.text
    target, fields = _form(page.text)
    fields.update(
        callback_url="http://evil.test/cb",
        wc_auth_action="approve",
        username=store.admin_user,
        password=store.admin_password,
    )
    forged = requests.post(target, data=fields, allow_redirects=False, timeout=5)
    assert forged.status_code == 401 and "Invalid nonce verification" in forged.text
    assert receiver.requests == [] and len(store.api_keys()) == 1


def test_the_authorize_parameters_are_validated_as_wc_auth_does(sim, store, receiver):
    missing = requests.get(f"{store.url}/wc-auth/v1/authorize", params={"app_name": "x"}, timeout=5)
    assert missing.status_code == 401 and "Missing parameter user_id" in missing.text
    assert "Invalid scope admin" in _authorize(store, receiver.url, scope="admin").text
    assert _authorize(store, "shop.example/cb").status_code == 200, "https:// is put in front"
    sim.require_https_callback = True
    refused = _authorize(store, receiver.url)
    assert refused.status_code == 401 and "The callback_url needs to be over SSL" in refused.text
    assert _authorize(store, "https://gateway.example/cb").status_code == 200


def test_a_revoked_key_is_refused(sim, store):
    store.add_key("ck_other", "cs_other")
    assert store.revoke_key("ck_other") is True
    answer = requests.get(f"{store.api_url}/orders", auth=("ck_other", "cs_other"), timeout=5)
    assert answer.status_code == 401
    assert answer.json()["code"] == "woocommerce_rest_authentication_error"
    key_id = store.api_keys()[0]["key_id"]
    revoked = requests.delete(f"{sim.base_url}/_sim/stores/corner/keys/{key_id}", timeout=5)
    assert revoked.status_code == 200 and store.api_keys() == []
    assert requests.get(f"{store.api_url}/orders", auth=KEYS, timeout=5).status_code == 401
    assert store.revoke_key("ck_other") is False


def test_webhooks_by_rest_deliver_only_while_active_and_signed_with_their_secret(
    sim, store, receiver
):
    api = f"{store.api_url}/webhooks"
    made = requests.post(
        api,
        json={"topic": "order.created", "delivery_url": receiver.url, "secret": "ours"},
        auth=KEYS,
        timeout=5,
    ).json()
    store.place_order([{"sku": "A", "quantity": 1}])
    (first,) = receiver.wait_for(1)
    expected = base64.b64encode(hmac.new(b"ours", first["body"], hashlib.sha256).digest())
    assert first["headers"]["X-WC-Webhook-Signature"].encode() == expected

    paused = requests.put(f"{api}/{made['id']}", json={"status": "paused"}, auth=KEYS, timeout=5)
    assert paused.json()["status"] == "paused"
    store.place_order([{"sku": "B", "quantity": 1}])
    assert sim.wait_for_webhooks() and len(receiver.deliveries()) == 1
    listed = requests.get(api, params={"status": "paused"}, auth=KEYS, timeout=5).json()
    assert [w["id"] for w in listed] == [made["id"]]

    active = requests.put(f"{api}/{made['id']}", json={"status": "active"}, auth=KEYS, timeout=5)
    assert active.json()["status"] == "active"
    store.place_order([{"sku": "C", "quantity": 1}])
    receiver.wait_for(2)

    gone = requests.delete(f"{api}/{made['id']}", params={"force": "true"}, auth=KEYS, timeout=5)
    assert gone.status_code == 200
    store.place_order([{"sku": "D", "quantity": 1}])
    assert sim.wait_for_webhooks() and len(receiver.deliveries()) == 2
    assert requests.get(api, auth=KEYS, timeout=5).json() == []
