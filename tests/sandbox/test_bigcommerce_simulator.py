"""The BigCommerce simulator behaves as platforms/bigcommerce.md documents (no Redis needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from sandbox.bigcommerce import BigCommerceSimulator, BigCommerceStore

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-abc"
SECRET = "client-secret-abc"


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
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def sim() -> Iterator[BigCommerceSimulator]:
    simulator = BigCommerceSimulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def store(sim: BigCommerceSimulator) -> BigCommerceStore:
    return sim.add_store("abc123", token=TOKEN, client_secret=SECRET)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def api(sim: BigCommerceSimulator, path: str, store_hash: str = "abc123") -> str:
    return f"{sim.base_url}/stores/{store_hash}{path}"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"X-Auth-Token": token, "Accept": "application/json"}


ORDER_BODY = {
    "billing_address": {
        "first_name": "Jane",
        "last_name": "Doe",
        "street_1": "123 Main Street",
        "city": "Austin",
        "state": "Texas",
        "zip": "78751",
        "country": "United States",
        "country_iso2": "US",
        "email": "janedoe@example.com",
    },
    "shipping_addresses": [
        {
            "first_name": "Trish",
            "last_name": "Smith",
            "street_1": "666 Sussex St",
            "city": "Austin",
            "state": "Texas",
            "zip": "78751",
            "country": "United States",
            "country_iso2": "US",
            "email": "elsie@example.com",
        }
    ],
    "products": [
        {"name": "Coffee Mug", "quantity": 2, "price_inc_tax": 10, "price_ex_tax": 9, "sku": "MUG"},
        {"name": "Poster", "quantity": 1, "price_inc_tax": 5, "price_ex_tax": 5},
    ],
}


def create_order(sim: BigCommerceSimulator) -> dict:
    answer = requests.post(api(sim, "/v2/orders"), json=ORDER_BODY, headers=auth(), timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_auth_is_refused_without_the_store_token(sim, store):
    for headers in ({}, auth("wrong")):
        answer = requests.get(api(sim, "/v2/orders"), headers=headers, timeout=5)
        assert answer.status_code == 401
        body = answer.json()
        assert body["status"] == 401 and "title" in body and "type" in body
        assert "X-Rate-Limit-Requests-Quota" in answer.headers
    other = sim.add_store("other", token="tok-other", client_secret="x")
    answer = requests.get(api(sim, "/v2/orders", other.store_hash), headers=auth(), timeout=5)
    assert answer.status_code == 401, "a token is valid for its own store only"
    assert (
        requests.get(api(sim, "/v2/orders", "nope"), headers=auth(), timeout=5).status_code == 404
    )
    assert sim.calls(store="abc123")[0]["status"] == 401


def test_created_order_exposes_products_and_shipping_addresses(sim, store):
    order = create_order(sim)
    assert order["status_id"] == 1 and order["status"] == "Pending"  # POST default
    assert order["items_total"] == 3 and order["items_shipped"] == 0
    assert order["billing_address"]["email"] == "janedoe@example.com"
    assert parsedate_to_datetime(order["date_modified"]).tzinfo is not None  # RFC-2822
    assert order["date_shipped"] == ""
    assert order["products"]["resource"] == f"/orders/{order['id']}/products"

    got = requests.get(api(sim, f"/v2/orders/{order['id']}"), headers=auth(), timeout=5)
    assert got.json()["id"] == order["id"]
    products = requests.get(
        api(sim, f"/v2/orders/{order['id']}/products"), headers=auth(), timeout=5
    ).json()
    addresses = requests.get(
        api(sim, f"/v2/orders/{order['id']}/shipping_addresses"), headers=auth(), timeout=5
    ).json()
    assert [(p["name"], p["sku"], p["quantity"], p["quantity_shipped"]) for p in products] == [
        ("Coffee Mug", "MUG", 2, 0),
        ("Poster", "", 1, 0),
    ]
    assert len(addresses) == 1 and addresses[0]["first_name"] == "Trish"
    assert {p["order_address_id"] for p in products} == {addresses[0]["id"]}
    assert addresses[0]["items_total"] == 3

    missing = requests.post(
        api(sim, "/v2/orders"), json={"products": ORDER_BODY["products"]}, headers=auth(), timeout=5
    )
    assert missing.status_code == 400
    assert missing.json()[0]["status"] == 400 and "billing_address" in missing.json()[0]["message"]
    assert requests.get(api(sim, "/v2/orders/999999"), headers=auth(), timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("billing", "shipping", "field"),
    [
        ({"zip": ""}, {}, "billing_address.zip"),
        ({"zip": "7"}, {}, "billing_address.zip"),
        ({"zip": None}, {}, "billing_address.zip"),
        ({"country": "", "country_iso2": ""}, {}, "billing_address.country"),
        ({}, {"country": None, "country_iso2": None}, "shipping_addresses.country"),
    ],
)
def test_an_order_without_a_billing_zip_or_a_country_is_refused(
    sim, store, billing, shipping, field
):
    body = {
        **ORDER_BODY,
        "billing_address": {**ORDER_BODY["billing_address"], **billing},
        "shipping_addresses": [{**ORDER_BODY["shipping_addresses"][0], **shipping}],
    }

    answer = requests.post(api(sim, "/v2/orders"), json=body, headers=auth(), timeout=5)

    assert answer.status_code == 400
    [error] = answer.json()  # the v2 shape: a list of {status, message}
    assert error["status"] == 400 and field in error["message"]
    assert store.orders() == []


def test_a_country_by_code_alone_and_a_two_character_zip_are_enough(sim, store):
    billing = {**ORDER_BODY["billing_address"], "zip": "99", "country": "", "country_iso2": "HK"}
    body = {**ORDER_BODY, "billing_address": billing, "shipping_addresses": []}

    answer = requests.post(api(sim, "/v2/orders"), json=body, headers=auth(), timeout=5)

    assert answer.status_code == 201, answer.text


def test_shipments_partial_then_complete_and_overship_refused(sim, store):
    order = create_order(sim)
    oid = order["id"]
    shipments_url = api(sim, f"/v2/orders/{oid}/shipments")
    empty = requests.get(shipments_url, headers=auth(), timeout=5)
    assert empty.status_code == 204 and empty.content == b""
    count = requests.get(shipments_url + "/count", headers=auth(), timeout=5)
    assert count.json() == {"count": 0}

    mug, poster = store.products(oid)
    address_id = store.shipping_addresses(oid)[0]["id"]

    def post(body: dict) -> requests.Response:
        return requests.post(shipments_url, json=body, headers=auth(), timeout=5)

    assert post({"items": [{"order_product_id": mug["id"], "quantity": 1}]}).status_code == 400
    assert post({"order_address_id": address_id}).status_code == 400
    assert (
        post(
            {
                "order_address_id": address_id,
                "items": [{"order_product_id": mug["id"], "quantity": 1}],
                "tracking_number": "1" * 51,
            }
        ).status_code
        == 400
    )
    assert (
        post(
            {
                "order_address_id": address_id,
                "items": [{"order_product_id": mug["id"], "quantity": 1}],
                "tracking_link": "https://t.example/" + "x" * 500,
            }
        ).status_code
        == 400
    )

    first = post(
        {
            "order_address_id": address_id,
            "items": [{"order_product_id": mug["id"], "quantity": 1}],
            "tracking_number": "1Z5R89390357567127",
            "shipping_provider": "ups",
        }
    )
    assert first.status_code == 201, first.text
    shipment = first.json()
    assert shipment["items"] == [{"order_product_id": mug["id"], "product_id": 0, "quantity": 1}]
    assert shipment["generated_tracking_link"] and shipment["tracking_link"] == ""
    assert store.order(oid)["status_id"] == 3  # Partially Shipped (UNCONFIRMED auto-move)

    over = post(
        {"order_address_id": address_id, "items": [{"order_product_id": mug["id"], "quantity": 2}]}
    )
    assert over.status_code == 400 and "available to ship" in over.json()[0]["message"]
    assert store.products(oid)[0]["quantity_shipped"] == 1, "a refused shipment changes nothing"

    rest = post(
        {
            "order_address_id": address_id,
            "items": [
                {"order_product_id": mug["id"], "quantity": 1},
                {"order_product_id": poster["id"], "quantity": 1},
            ],
            "tracking_link": "https://carrier.example/track/ABC",
        }
    )
    assert rest.status_code == 201
    order = store.order(oid)
    assert order["status_id"] == 2 and order["status"] == "Shipped" and order["date_shipped"]
    assert order["items_shipped"] == 3
    listed = requests.get(shipments_url, headers=auth(), timeout=5).json()
    assert [s["id"] for s in listed] == [shipment["id"], rest.json()["id"]]
    assert requests.get(shipments_url + "/count", headers=auth(), timeout=5).json()["count"] == 2

    put = requests.put(
        f"{shipments_url}/{shipment['id']}",
        json={"tracking_number": "1Z5R89390357567128"},
        headers=auth(),
        timeout=5,
    )
    assert put.status_code == 200 and put.json()["tracking_number"] == "1Z5R89390357567128"
    put_items = requests.put(
        f"{shipments_url}/{shipment['id']}", json={"items": []}, headers=auth(), timeout=5
    )
    assert put_items.status_code == 400

    deleted = requests.delete(f"{shipments_url}/{shipment['id']}", headers=auth(), timeout=5)
    assert deleted.status_code == 204
    assert store.products(oid)[0]["quantity_shipped"] == 1
    assert store.order(oid)["status_id"] == 2, "deleting a shipment does not leave Shipped"


def test_the_store_emails_the_billing_address_of_each_shipment_and_status_change(sim, store):
    order = create_order(sim)  # through the V2 API: no order confirmation
    assert store.emails() == []
    line = store.products(order["id"])[0]

    store.ship(order["id"], [(line["id"], 1)], "1Z5R89390357567127", "ups")
    store.set_status(order["id"], 10)

    sent = [(e["to"], e["kind"], e["status"]) for e in store.emails()]
    assert sent == [
        ("janedoe@example.com", "shipment", "Partially Shipped"),
        ("janedoe@example.com", "status_changed", "Partially Shipped"),
        ("janedoe@example.com", "status_changed", "Completed"),
    ]  # the billing address's, not the shipping address's (elsie@example.com)


def test_a_storefront_checkout_confirms_the_order_once_paid(sim, store):
    order = store.place_order(
        products=[{"sku": "A", "quantity": 1}], email="ada@example.com", paid=False
    )
    assert store.emails() == []

    store.pay(order["id"])

    assert [(e["to"], e["kind"]) for e in store.emails()] == [
        ("ada@example.com", "order_confirmation")
    ]


def test_rate_limit_headers_on_every_answer_and_429_when_exhausted(sim):
    sim.add_store("small", token=TOKEN, client_secret=SECRET, quota=3, window_ms=800)
    url = api(sim, "/v2/orders", "small")
    lefts = []
    for _ in range(3):
        answer = requests.get(url, headers=auth(), timeout=5)
        assert answer.status_code == 204  # no orders yet
        assert answer.headers["X-Rate-Limit-Time-Window-Ms"] == "800"
        assert answer.headers["X-Rate-Limit-Requests-Quota"] == "3"
        assert 0 <= int(answer.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 800
        lefts.append(int(answer.headers["X-Rate-Limit-Requests-Left"]))
    assert lefts == [2, 1, 0]
    limited = requests.get(url, headers=auth(), timeout=5)
    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit-Requests-Left"] == "0"
    time.sleep(int(limited.headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000 + 0.05)
    assert requests.get(url, headers=auth(), timeout=5).status_code == 204


def test_fail_next_answers_platform_trouble_then_recovers(sim, store):
    sim.fail_next(2, 503, retry_after=3)
    for _ in range(2):
        answer = requests.get(api(sim, "/v2/orders"), headers=auth(), timeout=5)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "3"
        assert "X-Rate-Limit-Requests-Left" not in answer.headers
    assert requests.get(api(sim, "/v2/orders"), headers=auth(), timeout=5).status_code == 204
    assert [c["status"] for c in sim.calls(store="abc123", path_contains="/v2/orders")] == [
        503,
        503,
        204,
    ]
    sim.reset_calls()
    assert sim.calls() == []


def test_min_date_modified_filter_and_paging_visit_each_order_once(sim, store):
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    sim.clock.set(t0)
    ids = store.bulk_load_orders(7, start=t0, step_seconds=60)
    # A later change moves one early order past the others.
    sim.clock.set(t0 + timedelta(hours=1))
    store.set_status(ids[0], 9)

    since = t0 + timedelta(seconds=120)
    expected = [*ids[2:], ids[0]]  # date_modified ascending
    for value in (
        since.isoformat(),  # 2026-03-01T12:02:00+00:00
        since.astimezone(timezone(timedelta(hours=-4))).isoformat(timespec="milliseconds"),
        format_datetime(since),  # Sun, 01 Mar 2026 12:02:00 +0000
    ):
        seen = []
        page = 1
        while True:
            answer = requests.get(
                api(sim, "/v2/orders"),
                params={
                    "min_date_modified": value,
                    "sort": "date_modified:asc",
                    "limit": 2,
                    "page": page,
                },
                headers=auth(),
                timeout=5,
            )
            if answer.status_code == 204:
                break
            assert answer.status_code == 200
            assert len(answer.json()) <= 2
            seen.extend(o["id"] for o in answer.json())
            page += 1
        assert seen == expected, value
        assert page == 4  # 2 + 2 + 2, then 204

    inclusive = requests.get(
        api(sim, "/v2/orders"),
        params={
            "min_date_modified": format_datetime(since),
            "max_date_modified": since.isoformat(),
        },
        headers=auth(),
        timeout=5,
    )
    assert [o["id"] for o in inclusive.json()] == [ids[2]], "both bounds are inclusive"
    by_status = requests.get(
        api(sim, "/v2/orders"), params={"status_id": 9}, headers=auth(), timeout=5
    )
    assert [o["id"] for o in by_status.json()] == [ids[0]]
    by_id = requests.get(
        api(sim, "/v2/orders"), params={"min_id": ids[5]}, headers=auth(), timeout=5
    )
    assert [o["id"] for o in by_id.json()] == ids[5:]
    default = requests.get(api(sim, "/v2/orders"), headers=auth(), timeout=5).json()
    assert [o["id"] for o in default] == ids, "default order: id ascending"
    bad = requests.get(
        api(sim, "/v2/orders"), params={"min_date_modified": "yesterday"}, headers=auth(), timeout=5
    )
    assert bad.status_code == 400


def test_order_products_page_at_50_by_default_and_250_at_most(sim, store):
    order = store.place_order(
        products=[{"sku": f"SKU-{n}", "name": f"Item {n}", "quantity": 1} for n in range(260)]
    )
    path = api(sim, f"/v2/orders/{order['id']}/products")

    def ids(**params) -> list[int]:
        answer = requests.get(path, params=params, headers=auth(), timeout=5)
        return [] if answer.status_code == 204 else [p["id"] for p in answer.json()]

    every = [p["id"] for p in store.products(order["id"])]
    assert ids() == every[:50]
    assert ids(page=2) == every[50:100]
    assert ids(limit=500) == every[:250]
    assert ids(limit=250, page=2) == every[250:]
    assert ids(limit=250, page=3) == []  # 204 past the end


def test_an_order_is_found_by_the_external_order_id_it_was_created_with(sim, store):
    """orders.v2.oas2.yml: `external_order_id` is a field of a new order and a filter of
    GET /v2/orders."""
    create_order(sim)
    body = {**ORDER_BODY, "external_order_id": "ord_4fKx"}
    ours = requests.post(api(sim, "/v2/orders"), json=body, headers=auth(), timeout=5).json()
    assert ours["external_order_id"] == "ord_4fKx"

    found = requests.get(
        api(sim, "/v2/orders"), params={"external_order_id": "ord_4fKx"}, headers=auth(), timeout=5
    )
    assert [o["id"] for o in found.json()] == [ours["id"]]
    none = requests.get(
        api(sim, "/v2/orders"), params={"external_order_id": "ord_other"}, headers=auth(), timeout=5
    )
    assert none.status_code == 204


def expected_hash(payload: dict) -> str:
    unsigned = {k: payload[k] for k in ("scope", "store_id", "data", "created_at", "producer")}
    return hashlib.sha1(json.dumps(unsigned, separators=(",", ":")).encode()).hexdigest()


def test_webhook_payload_hash_custom_headers_and_signature(sim, store, receiver):
    store.add_webhook("store/order/created", receiver.url, headers={"X-Gateway-Secret": "g-s"})
    store.add_webhook("store/shipment/*", receiver.url, headers={"X-Gateway-Secret": "g-s"})
    order = store.place_order(
        products=[{"sku": "AC-100", "name": "Mug", "quantity": 2, "price": 9.5}],
        shipping_address={"first_name": "Ada", "city": "London", "country_iso2": "GB"},
        email="ada@example.com",
    )
    assert order["status_id"] == 11 and order["status"] == "Awaiting Fulfillment"
    line = store.products(order["id"])[0]
    shipment = store.ship(order["id"], [(line["id"], 2)], "1Z5R89390357567127", "ups")
    created, shipped = receiver.wait_for(2)

    for request in (created, shipped):
        payload = json.loads(request["body"])
        assert set(payload) == {"scope", "store_id", "data", "hash", "created_at", "producer"}
        assert payload["producer"] == "stores/abc123"
        assert isinstance(payload["store_id"], str) and isinstance(payload["created_at"], int)
        assert payload["hash"] == expected_hash(payload)
        headers = request["headers"]
        assert headers["X-Gateway-Secret"] == "g-s"
        # The library, keyed as BigCommerce's sample does: base64 of the client secret.
        verified = Webhook(base64.b64encode(SECRET.encode()).decode()).verify(
            request["body"], headers
        )
        assert verified == payload
        # bigcommerce.md's "Equivalent check": HMAC keyed with the secret's raw bytes.
        message = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode()
        digest = hmac.new(SECRET.encode(), message + request["body"], hashlib.sha256).digest()
        assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert json.loads(created["body"])["scope"] == "store/order/created"
    assert json.loads(created["body"])["data"] == {"type": "order", "id": order["id"]}
    assert json.loads(shipped["body"])["scope"] == "store/shipment/created"
    assert json.loads(shipped["body"])["data"] == {
        "type": "shipment",
        "id": shipment["id"],
        "orderId": order["id"],
    }

    store.update_shipment(order["id"], shipment["id"], tracking_number="1Z5R89390357567128")
    updated = receiver.wait_for(3)[2]
    assert json.loads(updated["body"])["scope"] == "store/shipment/updated"

    store.signed = False
    store.delete_shipment(order["id"], shipment["id"])
    deleted = receiver.wait_for(4)[3]
    assert json.loads(deleted["body"])["scope"] == "store/shipment/deleted"
    assert "webhook-signature" not in deleted["headers"]
    assert deleted["headers"]["X-Gateway-Secret"] == "g-s"


def test_order_status_change_fires_updated_and_status_updated(sim, store, receiver):
    store.add_webhook("store/order/updated", receiver.url)
    store.add_webhook("store/order/statusUpdated", receiver.url)
    oid = store.bulk_load_orders(1)[0]
    store.set_status(oid, 9)
    bodies = sorted((json.loads(r["body"]) for r in receiver.wait_for(2)), key=lambda p: p["scope"])
    assert [p["scope"] for p in bodies] == ["store/order/statusUpdated", "store/order/updated"]
    assert bodies[0]["data"]["status"] == {"previous_status_id": 11, "new_status_id": 9}


def test_a_checkout_creates_its_order_incomplete_and_the_payment_moves_it_on(sim, store, receiver):
    store.add_webhook("store/order/created", receiver.url)
    store.add_webhook("store/order/statusUpdated", receiver.url)

    order = store.place_order(products=[{"sku": "A", "quantity": 1}], paid=False)

    assert (order["status_id"], order["status"], order["payment_status"]) == (0, "Incomplete", "")
    [created] = receiver.wait_for(1)
    assert json.loads(created["body"])["scope"] == "store/order/created"

    paid = store.pay(order["id"])

    assert (paid["status_id"], paid["payment_status"]) == (11, "captured")
    status = json.loads(receiver.wait_for(2)[1]["body"])
    assert status["scope"] == "store/order/statusUpdated"
    assert status["data"]["status"] == {"previous_status_id": 0, "new_status_id": 11}


def test_a_paid_checkout_fires_created_then_its_status_change(sim, store, receiver):
    store.add_webhook("store/order/*", receiver.url)

    order = store.place_order(products=[{"sku": "A", "quantity": 1}])

    assert order["status_id"] == 11
    scopes = [json.loads(r["body"])["scope"] for r in receiver.wait_for(3)]
    assert scopes == ["store/order/created", "store/order/updated", "store/order/statusUpdated"]


def test_drop_duplicate_delay_and_reorder_modes(sim, store, receiver):
    store.add_webhook("store/order/created", receiver.url)
    sim.webhook_mode = "drop"
    store.place_order(products=[{"sku": "A", "quantity": 1}])
    assert sim.wait_for_webhooks()
    assert receiver.requests == []
    assert sim.deliveries(store="abc123")[-1]["error"].startswith("dropped")

    sim.webhook_mode = "duplicate"
    store.place_order(products=[{"sku": "B", "quantity": 1}])
    first, second = receiver.wait_for(2)
    assert first["body"] == second["body"]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]

    receiver.requests.clear()
    sim.webhook_mode = "delay"
    a = store.place_order(products=[{"sku": "C", "quantity": 1}])
    b = store.place_order(products=[{"sku": "D", "quantity": 1}])
    time.sleep(0.2)
    assert receiver.requests == []
    assert sim.flush() == 2
    got = [json.loads(r["body"])["data"]["id"] for r in receiver.wait_for(2)]
    assert got == [a["id"], b["id"]]

    receiver.requests.clear()
    sim.webhook_mode = "reorder"
    c = store.place_order(products=[{"sku": "E", "quantity": 1}])
    d = store.place_order(products=[{"sku": "F", "quantity": 1}])
    assert sim.flush_webhooks() == 2
    got = [json.loads(r["body"])["data"]["id"] for r in receiver.wait_for(2)]
    assert got == [d["id"], c["id"]]

    receiver.requests.clear()
    sim.set_webhook_mode("reorder", hold=2)  # the Shopify simulator's form: release every 2
    e = store.place_order(products=[{"sku": "G", "quantity": 1}])
    f = store.place_order(products=[{"sku": "H", "quantity": 1}])
    got = [json.loads(r["body"])["data"]["id"] for r in receiver.wait_for(2)]
    assert got == [f["id"], e["id"]]


def test_failed_deliveries_are_retried_then_the_hook_is_deactivated(sim, store, receiver):
    sim.retry_delays = (0.05, 0.05)
    receiver.status = 500
    hook = store.add_webhook("store/order/created", receiver.url)
    store.place_order(products=[{"sku": "A", "quantity": 1}])
    attempts = receiver.wait_for(3)
    assert len({r["headers"]["webhook-id"] for r in attempts}) == 1, "retries keep the id"
    assert len({json.loads(r["body"])["hash"] for r in attempts}) == 1
    assert sim.wait_for_webhooks(include_retries=True)
    listed = requests.get(api(sim, "/v3/hooks"), headers=auth(), timeout=5).json()["data"]
    assert listed[0]["id"] == hook["id"] and listed[0]["is_active"] is False
    admin = requests.get(api(sim, "/v3/hooks/admin"), headers=auth(), timeout=5).json()
    assert admin["data"]["hooks_list"][0]["status"] == "deactivated"

    receiver.status = 200
    put = requests.put(
        api(sim, f"/v3/hooks/{hook['id']}"), json={"is_active": True}, headers=auth(), timeout=5
    )
    assert put.json()["data"]["is_active"] is True
    store.place_order(products=[{"sku": "B", "quantity": 1}])
    receiver.wait_for(4)


def test_hooks_api_create_list_update_delete_per_token(sim, store):
    body = {
        "scope": "store/order/created",
        "destination": "https://gateway.example/webhooks/bigcommerce",
        "is_active": True,
        "headers": {"X-Gateway-Secret": "g-s"},
    }
    created = requests.post(api(sim, "/v3/hooks"), json=body, headers=auth(), timeout=5)
    assert created.status_code == 200
    hook = created.json()["data"]
    assert hook["headers"] == {"X-Gateway-Secret": "g-s"} and hook["store_hash"] == "abc123"
    again = requests.post(api(sim, "/v3/hooks"), json=body, headers=auth(), timeout=5)
    assert again.status_code == 422
    missing = requests.post(api(sim, "/v3/hooks"), json={"scope": "x"}, headers=auth(), timeout=5)
    assert missing.status_code == 422 and "destination" in missing.json()["errors"]

    store.add_app("tok-second-app", "second-secret")
    listed = requests.get(api(sim, "/v3/hooks"), headers=auth("tok-second-app"), timeout=5)
    assert listed.json()["data"] == [], "a hook is visible only to the app that created it"
    hidden = requests.get(
        api(sim, f"/v3/hooks/{hook['id']}"), headers=auth("tok-second-app"), timeout=5
    )
    assert hidden.status_code == 404

    updated = requests.put(
        api(sim, f"/v3/hooks/{hook['id']}"),
        json={"destination": "https://gateway.example/v2"},
        headers=auth(),
        timeout=5,
    )
    assert updated.json()["data"]["destination"] == "https://gateway.example/v2"
    gone = requests.delete(api(sim, f"/v3/hooks/{hook['id']}"), headers=auth(), timeout=5)
    assert gone.status_code == 200 and gone.json()["data"]["id"] == hook["id"]
    assert requests.get(api(sim, "/v3/hooks"), headers=auth(), timeout=5).json()["data"] == []


def test_cli_and_control_endpoints():
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.bigcommerce", "--store", "h1:t1:s1", "--quota", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        base = info["base_url"]
        assert info["stores"][0]["store_hash"] == "h1" and info["stores"][0]["quota"] == 5
        placed = requests.post(
            f"{base}/_sim/stores/h1/orders",
            json={"products": [{"sku": "X-1", "name": "X", "quantity": 2, "price": 3}]},
            timeout=5,
        )
        assert placed.status_code == 201
        oid = placed.json()["id"]
        shipped = requests.post(
            f"{base}/_sim/stores/h1/orders/{oid}/shipments",
            json={"tracking_number": "9400111899223197428490", "shipping_provider": "usps"},
            timeout=5,
        )
        assert shipped.status_code == 201
        seen = requests.get(f"{base}/stores/h1/v2/orders/{oid}", headers=auth("t1"), timeout=5)
        assert seen.json()["status_id"] == 2
        calls = requests.get(f"{base}/_sim/calls", params={"store": "h1"}, timeout=5).json()
        assert calls["count"] == 1
        unpaid = requests.post(
            f"{base}/_sim/stores/h1/orders",
            json={"products": [{"sku": "X-2", "quantity": 1}], "paid": False},
            timeout=5,
        ).json()
        assert unpaid["status_id"] == 0
        paid = requests.post(f"{base}/_sim/stores/h1/orders/{unpaid['id']}/pay", timeout=5)
        assert paid.json()["status_id"] == 11
        emails = requests.get(f"{base}/_sim/stores/h1/emails", timeout=5).json()
        assert [e["kind"] for e in emails][-1] == "order_confirmation"
        assert requests.post(f"{base}/_sim/webhook_mode", json={"mode": "drop"}, timeout=5).ok
        clock = requests.post(
            f"{base}/_sim/clock", json={"set": "2026-01-01T00:00:00Z"}, timeout=5
        ).json()
        assert clock["frozen"] is True and clock["now"].startswith("2026-01-01T00:00:00")
    finally:
        process.terminate()
        process.wait(timeout=5)
