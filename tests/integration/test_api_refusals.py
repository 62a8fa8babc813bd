"""Every refusal of API.md through the Flask test client, against the real Redis.

After each refusal the stored order is byte-for-byte what it was, its timeline is unchanged,
nothing was enqueued (RQ queue and scheduled registry) and no other key changed.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from conftest import ADDRESS, admin_headers, bearer
from rq import Queue
from rq.registry import ScheduledJobRegistry

QUEUE, CALLBACKS_QUEUE = "gateway", "callbacks"
UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
FEDEX_GROUND = "449044304137821"
DHL_1 = "3318810025"
ORDER_PAGE_PREFIX = "http://127.0.0.1:8000/orders/"

SECRET = "test-webhook-secret"  # credentials are 16 characters or more
SHOPIFY = {"shop_domain": "acme.myshopify.com", "access_token": SECRET, "webhook_secret": SECRET}
BIGCOMMERCE = {"store_hash": "abc123", "access_token": SECRET, "webhook_secret": SECRET}
WOOCOMMERCE = {
    "store_url": "http://wc.example.com",
    "consumer_key": SECRET,
    "consumer_secret": SECRET,
    "webhook_secret": SECRET,
}


# ---- snapshots of the store --------------------------------------------------------------------


def queue_state(redis) -> tuple[int, int]:
    """Jobs queued and scheduled, on every queue (deliveries to callback URLs have their own)."""
    queues = [Queue(name, connection=redis) for name in (QUEUE, CALLBACKS_QUEUE)]
    return (
        sum(queue.count for queue in queues),
        sum(ScheduledJobRegistry(queue=queue).count for queue in queues),
    )


def keyspace(redis) -> dict[bytes, bytes]:
    """Every key with its serialized value (counters of /metrics and of rate limits aside)."""
    return {
        k: redis.dump(k)
        for k in redis.scan_iter()
        if k != b"gw:metrics" and not k.startswith(b"gw:ratelimit:")
    }


def snapshot(redis, order_id: str | None = None) -> dict:
    state = {"queue": queue_state(redis), "keys": keyspace(redis)}
    if order_id:
        state["order"] = redis.get(f"gw:order:{order_id}".encode())
        state["timeline"] = redis.lrange(f"gw:timeline:{order_id}".encode(), 0, -1)
    return state


def assert_unchanged(before: dict, after: dict) -> None:
    if "order" in before:
        assert after["order"] == before["order"], "the stored order changed"
        assert after["timeline"] == before["timeline"], "the timeline changed"
    assert after["queue"] == before["queue"], "something was enqueued"
    assert after["keys"].keys() == before["keys"].keys(), "keys were added or removed"
    assert after["keys"] == before["keys"], "a stored value changed"


def assert_error_shape(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    for field, messages in error["details"].items():
        assert isinstance(field, str)
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)
    assert "Traceback" not in answer.get_data(as_text=True)
    if code is not None:
        assert error["code"] == code, error
    return error


def refused(redis, order_id, call, status: int, code: str | None = None) -> dict:
    """Run `call()`, check the error answer, and that nothing was stored or enqueued."""
    before = snapshot(redis, order_id)
    error = assert_error_shape(call(), status, code)
    assert_unchanged(before, snapshot(redis, order_id))
    return error


# ---- fixtures ----------------------------------------------------------------------------------


class Setup:
    def __init__(self, client, buyer, seller, order):
        self.client = client
        self.buyer = buyer
        self.seller = seller
        self.order = order
        self.lines = {li["seller_sku"]: li["id"] for li in order["line_items"]}
        self.path = f"/api/v1/orders/{order['id']}/fulfillments"

    def body(self, **changes) -> dict:
        body = {
            "line_items": [{"line_item_id": self.lines["AC-100"], "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": [UPS_1],
        }
        body.update(changes)
        return body

    def post(self, body=None, headers=None, **kwargs):
        if "data" not in kwargs and "json" not in kwargs:
            kwargs["json"] = self.body() if body is None else body
        return self.client.post(
            self.path,
            headers=bearer(self.seller["api_key"]) if headers is None else headers,
            **kwargs,
        )

    def ship(self):
        answer = self.post(
            {
                "line_items": [
                    {"line_item_id": self.lines["AC-100"], "quantity": 2},
                    {"line_item_id": self.lines["AC-200"], "quantity": 1},
                ],
                "carrier": "FedEx",
                "tracking_numbers": [FEDEX_GROUND],
            }
        )
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["order"]["status"] == "shipped"


@pytest.fixture
def setup(client, pair, make_order) -> Setup:
    """A no-platform buyer and seller and one unshipped order (AC-100 x2, AC-200 x1)."""
    buyer, seller = pair()
    return Setup(client, buyer, seller, make_order(buyer, seller))


def _store_setup(client, pair, make_order, platform, connection) -> Setup:
    buyer, seller = pair(seller_platform=platform, seller_connection=connection)
    return Setup(client, buyer, seller, make_order(buyer, seller))


# ---- 400 / 413 / 415: the body cannot be read ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b'{"line_items": [', b"{'carrier': 'UPS'}", b"", b'{"carrier": NaN}', b"\xff\xfe{}"],
)
def test_malformed_json_is_400(setup, redis, data):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(data=data, content_type="application/json"),
        400,
    )
    assert error["code"] == "malformed_json"


@pytest.mark.parametrize("data", [b"[]", b'[{"carrier": "UPS"}]', b"null", b"1", b'"x"'])
def test_body_not_an_object_is_400(setup, redis, data):
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(data=data, content_type="application/json"),
        400,
        "malformed_body",
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_not_json_content_type_is_415(setup, redis, content_type):
    data = json.dumps(setup.body())
    kwargs = (
        {"data": data} if content_type is None else {"data": data, "content_type": content_type}
    )
    refused(redis, setup.order["id"], lambda: setup.post(**kwargs), 415, "unsupported_media_type")


def test_body_over_one_mib_is_413(setup, redis):
    data = json.dumps(setup.body(carrier="x" * (1024 * 1024))).encode()
    assert len(data) > 1024 * 1024
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(data=data, content_type="application/json"),
        413,
        "body_too_large",
    )


def test_body_over_one_mib_on_order_creation_is_413(setup, redis):
    body = {
        "seller_id": setup.seller["id"],
        "buyer_order_ref": "big",
        "line_items": [{"sku": "MUG-BLUE", "quantity": 1, "title": "x" * (1024 * 1024)}],
        "shipping_address": ADDRESS,
    }
    refused(
        redis,
        None,
        lambda: setup.client.post(
            "/api/v1/orders", json=body, headers=bearer(setup.buyer["api_key"])
        ),
        413,
        "body_too_large",
    )


# ---- 401 ---------------------------------------------------------------------------------------


def _auth_variants(setup: Setup) -> list[dict]:
    key = setup.seller["api_key"]
    return [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer gk_not_a_key"},
        {"Authorization": f"Bearer {key}x"},
        {"Authorization": f"Basic {base64.b64encode(f'{key}:'.encode()).decode()}"},
        {"Authorization": f"Token {key}"},
        {"Authorization": key},
        {"X-Api-Key": key},
    ]


def test_missing_or_wrong_credentials_are_401(setup, redis):
    for headers in _auth_variants(setup):
        refused(
            redis,
            setup.order["id"],
            lambda headers=headers: setup.post(headers=headers),
            401,
            "unauthorized",
        )


def test_bad_credentials_are_401_on_every_endpoint(setup, redis):
    order_id = setup.order["id"]
    calls = [
        ("get", f"/api/v1/orders/{order_id}"),
        ("get", "/api/v1/orders"),
        ("post", "/api/v1/orders"),
        ("post", f"/api/v1/orders/{order_id}/links"),
        ("post", "/api/v1/partners"),
        ("get", f"/api/v1/partners/{setup.seller['id']}"),
        ("post", "/api/v1/partnerships"),
    ]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused(
                redis,
                order_id,
                lambda m=method, p=path, h=headers: getattr(setup.client, m)(p, headers=h, json={}),
                401,
                "unauthorized",
            )


# ---- 404 ---------------------------------------------------------------------------------------


def test_another_partners_order_is_404_like_an_unknown_one(setup, redis, pair, make_order):
    other_buyer, other_seller = pair()
    make_order(other_buyer, other_seller, ref="9001")
    for stranger in (other_seller, other_buyer):
        headers = bearer(stranger["api_key"])
        mine = refused(redis, setup.order["id"], lambda h=headers: setup.post(headers=h), 404)
        unknown = assert_error_shape(
            setup.client.post(
                "/api/v1/orders/ord_doesnotexist/fulfillments", json=setup.body(), headers=headers
            ),
            404,
        )
        assert mine == unknown
        assert mine["code"] == "not_found"
        seen = refused(
            redis,
            setup.order["id"],
            lambda h=headers: setup.client.get(f"/api/v1/orders/{setup.order['id']}", headers=h),
            404,
        )
        assert seen == assert_error_shape(
            setup.client.get("/api/v1/orders/ord_doesnotexist", headers=headers), 404
        )
        refused(
            redis,
            setup.order["id"],
            lambda h=headers: setup.client.post(
                f"/api/v1/orders/{setup.order['id']}/links", headers=h
            ),
            404,
            "not_found",
        )


def test_unknown_order_is_404(setup, redis):
    setup.path = "/api/v1/orders/ord_doesnotexist/fulfillments"
    refused(redis, setup.order["id"], setup.post, 404, "not_found")


def test_unknown_api_path_is_json_404(client, redis):
    for path in ("/api/v1/nope", "/api/v2/orders", "/api/v1/orders/x/y/z"):
        assert_error_shape(client.get(path, headers=admin_headers()), 404, "not_found")


def test_wrong_method_is_json_405(setup):
    answer = setup.client.delete(
        f"/api/v1/orders/{setup.order['id']}", headers=bearer(setup.seller["api_key"])
    )
    assert_error_shape(answer, 405)


# ---- 403 fulfillment_not_allowed ----------------------------------------------------------------


def test_buyer_may_not_post_a_fulfillment(setup, redis):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(headers=bearer(setup.buyer["api_key"])),
        403,
        "fulfillment_not_allowed",
    )
    assert error["message"]


def test_operator_may_not_post_a_fulfillment(setup, redis):
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(headers=admin_headers()),
        403,
        "fulfillment_not_allowed",
    )


@pytest.mark.parametrize(
    ("platform", "connection"), [("shopify", SHOPIFY), ("bigcommerce", BIGCOMMERCE)]
)
def test_store_seller_may_not_post_a_fulfillment(
    client, redis, pair, make_order, platform, connection
):
    setup = _store_setup(client, pair, make_order, platform, connection)
    error = refused(redis, setup.order["id"], setup.post, 403, "fulfillment_not_allowed")
    assert platform in error["message"]


def test_woocommerce_seller_may_post_a_fulfillment(client, redis, pair, make_order):
    setup = _store_setup(client, pair, make_order, "woocommerce", WOOCOMMERCE)
    queued_before = queue_state(redis)[0]
    answer = setup.post()
    assert answer.status_code == 201, answer.get_json()
    assert queue_state(redis)[0] == queued_before + 1  # the forwarding job


# ---- 409 order_shipped --------------------------------------------------------------------------


def test_shipped_order_refuses_another_fulfillment(setup, redis):
    setup.ship()
    refused(redis, setup.order["id"], setup.post, 409, "order_shipped")
    # Even a body that is itself invalid gets the state conflict, not a change.
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(setup.body(tracking_numbers=[UPS_1, UPS_1])),
        409,
        "order_shipped",
    )


# ---- 422 validation_failed ----------------------------------------------------------------------


def _line(setup: Setup, **changes) -> list[dict]:
    return [{"line_item_id": setup.lines["AC-100"], "quantity": 1, **changes}]


CASES_422 = {
    "unknown top-level field": (lambda s: s.body(note="hi"), "note"),
    "unknown nested field": (lambda s: s.body(line_items=_line(s, price=3)), "line_items.0.price"),
    "quantity as string": (
        lambda s: s.body(line_items=_line(s, quantity="1")),
        "line_items.0.quantity",
    ),
    "quantity fractional 1.5": (
        lambda s: s.body(line_items=_line(s, quantity=1.5)),
        "line_items.0.quantity",
    ),
    "quantity 1.0": (lambda s: s.body(line_items=_line(s, quantity=1.0)), "line_items.0.quantity"),
    "quantity true": (
        lambda s: s.body(line_items=_line(s, quantity=True)),
        "line_items.0.quantity",
    ),
    "quantity null": (
        lambda s: s.body(line_items=_line(s, quantity=None)),
        "line_items.0.quantity",
    ),
    "quantity zero": (lambda s: s.body(line_items=_line(s, quantity=0)), "line_items.0.quantity"),
    "quantity negative": (
        lambda s: s.body(line_items=_line(s, quantity=-1)),
        "line_items.0.quantity",
    ),
    "quantity huge": (
        lambda s: s.body(line_items=_line(s, quantity=10**12)),
        "line_items.0.quantity",
    ),
    "quantity missing": (
        lambda s: s.body(line_items=[{"line_item_id": s.lines["AC-100"]}]),
        "line_items.0.quantity",
    ),
    "unknown line_item_id": (
        lambda s: s.body(line_items=[{"line_item_id": "li_nope", "quantity": 1}]),
        "line_items.0.line_item_id",
    ),
    "unknown sku": (
        lambda s: s.body(line_items=[{"sku": "NOPE", "quantity": 1}]),
        "line_items.0.sku",
    ),
    "buyer's sku instead of the seller's": (
        lambda s: s.body(line_items=[{"sku": "MUG-BLUE", "quantity": 1}]),
        "line_items.0.sku",
    ),
    "line named by both id and sku": (
        lambda s: s.body(line_items=_line(s, sku="AC-100")),
        "line_items.0",
    ),
    "line named by neither": (lambda s: s.body(line_items=[{"quantity": 1}]), "line_items.0"),
    "line is null": (lambda s: s.body(line_items=[None]), "line_items.0"),
    "more than remains": (
        lambda s: s.body(line_items=_line(s, quantity=3)),
        "line_items.0.quantity",
    ),
    "second line bad, first good": (
        lambda s: s.body(
            line_items=[
                {"line_item_id": s.lines["AC-100"], "quantity": 1},
                {"line_item_id": s.lines["AC-200"], "quantity": 2},
            ]
        ),
        "line_items.1.quantity",
    ),
    "line named twice": (
        lambda s: s.body(
            line_items=[
                {"line_item_id": s.lines["AC-100"], "quantity": 1},
                {"sku": "AC-100", "quantity": 1},
            ]
        ),
        "line_items.1",
    ),
    "no lines": (lambda s: s.body(line_items=[]), "line_items"),
    "line_items missing": (
        lambda s: {"carrier": "UPS", "tracking_numbers": [UPS_1]},
        "line_items",
    ),
    "line_items not a list": (lambda s: s.body(line_items={"x": 1}), "line_items"),
    "carrier missing": (
        lambda s: {"line_items": _line(s), "tracking_numbers": [UPS_1]},
        "carrier",
    ),
    "carrier empty": (lambda s: s.body(carrier=""), "carrier"),
    "carrier blank": (lambda s: s.body(carrier="   "), "carrier"),
    "carrier null": (lambda s: s.body(carrier=None), "carrier"),
    "carrier a number": (lambda s: s.body(carrier=5), "carrier"),
    "no tracking numbers": (lambda s: s.body(tracking_numbers=[]), "tracking_numbers"),
    "tracking_numbers missing": (
        lambda s: {"line_items": _line(s), "carrier": "UPS"},
        "tracking_numbers",
    ),
    "tracking_numbers a string": (lambda s: s.body(tracking_numbers=UPS_1), "tracking_numbers"),
    "tracking number empty": (lambda s: s.body(tracking_numbers=[""]), "tracking_numbers.0"),
    "tracking number a number": (
        lambda s: s.body(tracking_numbers=[3318810025]),
        "tracking_numbers.0",
    ),
    "invalid check digit": (
        lambda s: s.body(tracking_numbers=["1Z5R89390357567128"]),
        "tracking_numbers.0",
    ),
    "second number invalid": (
        lambda s: s.body(tracking_numbers=[UPS_1, "1Z879E930346834441"]),
        "tracking_numbers.1",
    ),
    "FedEx number as UPS": (
        lambda s: s.body(tracking_numbers=[FEDEX_GROUND]),
        "tracking_numbers.0",
    ),
    "dummy UPS sample": (
        lambda s: s.body(tracking_numbers=["1Z999AA10123456784"]),
        "tracking_numbers.0",
    ),
    "dummy zeros with DHL": (
        lambda s: s.body(carrier="DHL", tracking_numbers=["0000000000"]),
        "tracking_numbers.0",
    ),
    "dummy TEST word": (lambda s: s.body(tracking_numbers=["TEST12345678"]), "tracking_numbers.0"),
    "dummy sequence with DHL": (
        lambda s: s.body(carrier="DHL", tracking_numbers=["1234567890"]),
        "tracking_numbers.0",
    ),
    "repeated tracking numbers": (
        lambda s: s.body(tracking_numbers=[UPS_1, UPS_1]),
        "tracking_numbers.1",
    ),
    "repeated after normalizing": (
        lambda s: s.body(tracking_numbers=[UPS_1, "1z5r 8939 0357 5671 27"]),
        "tracking_numbers.1",
    ),
    "too many tracking numbers": (
        lambda s: s.body(tracking_numbers=[UPS_1] * 21),
        "tracking_numbers",
    ),
    "javascript URL": (lambda s: s.body(tracking_urls=["javascript:alert(1)"]), "tracking_urls.0"),
    "not a URL": (lambda s: s.body(tracking_urls=["not a url"]), "tracking_urls.0"),
    "ftp URL": (lambda s: s.body(tracking_urls=["ftp://example.com/x"]), "tracking_urls.0"),
    "URL count mismatch": (
        lambda s: s.body(
            tracking_numbers=[UPS_1, UPS_2], tracking_urls=["https://track.example.com/1"]
        ),
        "tracking_urls",
    ),
    "tracking_urls null": (lambda s: s.body(tracking_urls=None), "tracking_urls"),
    "unknown carrier without URLs": (
        lambda s: s.body(carrier="Royal Mail", tracking_numbers=["RM123456789GB"]),
        "tracking_urls",
    ),
}


@pytest.mark.parametrize("case", list(CASES_422))
def test_invalid_fulfillment_is_422_naming_the_field(setup, redis, case):
    make_body, field = CASES_422[case]
    error = refused(
        redis, setup.order["id"], lambda: setup.post(make_body(setup)), 422, "validation_failed"
    )
    assert field in error["details"], error
    assert all(error["details"][field])


def test_more_than_remains_after_an_earlier_fulfillment(setup, redis):
    first = setup.post(setup.body(line_items=_line(setup, quantity=1)))
    assert first.status_code == 201
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(
            setup.body(line_items=_line(setup, quantity=2), tracking_numbers=[UPS_2])
        ),
        422,
        "validation_failed",
    )
    assert "line_items.0.quantity" in error["details"]
    # Exactly what remains is accepted.
    last = setup.post(setup.body(line_items=_line(setup, quantity=1), tracking_numbers=[UPS_2]))
    assert last.status_code == 201
    line = next(li for li in last.get_json()["order"]["line_items"] if li["seller_sku"] == "AC-100")
    assert line["fulfilled_quantity"] == 2


def test_every_field_at_fault_is_named_at_once(setup, redis):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(
            {
                "line_items": [{"line_item_id": "li_nope", "quantity": 1}],
                "carrier": "",
                "tracking_numbers": ["1Z5R89390357567128"],
                "tracking_urls": ["javascript:alert(1)"],
            }
        ),
        422,
        "validation_failed",
    )
    assert {"line_items.0.line_item_id", "carrier", "tracking_numbers.0", "tracking_urls.0"} <= set(
        error["details"]
    )


def test_a_valid_fulfillment_after_the_refusals_is_accepted(setup, redis):
    """The refusals above are refusals of the body, not of the caller: a good body passes."""
    before = queue_state(redis)[0]
    answer = setup.post(setup.body(tracking_urls=["https://track.example.com/1"]))
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["fulfillment"]["tracking_urls"] == ["https://track.example.com/1"]
    assert body["order"]["status"] == "unshipped"
    assert queue_state(redis)[0] == before + 1
    stored = json.loads(redis.get(f"gw:order:{setup.order['id']}".encode()))
    assert [f["id"] for f in stored["fulfillments"]] == [body["fulfillment"]["id"]]


# ---- order creation refusals store nothing ------------------------------------------------------


def _order_body(seller_id: str, ref: str = "2001", **changes) -> dict:
    body = {
        "seller_id": seller_id,
        "buyer_order_ref": ref,
        "line_items": [{"sku": "MUG-BLUE", "quantity": 1, "title": "Blue mug"}],
        "shipping_address": ADDRESS,
        "customer_email": "ada@example.com",
    }
    body.update(changes)
    return body


def _order_keys(redis) -> set[bytes]:
    return set(redis.scan_iter(match="gw:order:*"))


def order_refused(client, redis, body, headers, status, code) -> dict:
    orders = _order_keys(redis)
    error = refused(
        redis, None, lambda: client.post("/api/v1/orders", json=body, headers=headers), status, code
    )
    assert _order_keys(redis) == orders
    return error


def test_order_without_partnership_is_403(setup, redis, make_partner):
    stranger = make_partner("none")
    order_refused(
        setup.client,
        redis,
        _order_body(stranger["id"]),
        bearer(setup.buyer["api_key"]),
        403,
        "no_partnership",
    )
    # The seller has no partnership as a buyer of the buyer either.
    order_refused(
        setup.client,
        redis,
        _order_body(setup.buyer["id"]),
        bearer(setup.seller["api_key"]),
        403,
        "no_partnership",
    )
    order_refused(
        setup.client,
        redis,
        _order_body("ptr_doesnotexist"),
        bearer(setup.buyer["api_key"]),
        403,
        "no_partnership",
    )


def test_operator_may_not_post_an_order(setup, redis):
    order_refused(
        setup.client, redis, _order_body(setup.seller["id"]), admin_headers(), 403, "forbidden"
    )


ORDER_422 = {
    "bad country code": (
        lambda: {"shipping_address": {**ADDRESS, "country_code": "usa"}},
        "shipping_address.country_code",
    ),
    "address missing city": (
        lambda: {"shipping_address": {k: v for k, v in ADDRESS.items() if k != "city"}},
        "shipping_address.city",
    ),
    "address unknown field": (
        lambda: {"shipping_address": {**ADDRESS, "planet": "Mars"}},
        "shipping_address.planet",
    ),
    "address missing": (lambda: {"shipping_address": None}, "shipping_address"),
    "sku not mapped": (
        lambda: {"line_items": [{"sku": "MUG-GREEN", "quantity": 1}]},
        "line_items.0.sku",
    ),
    "second sku not mapped": (
        lambda: {
            "line_items": [{"sku": "MUG-BLUE", "quantity": 1}, {"sku": "AC-100", "quantity": 1}]
        },
        "line_items.1.sku",
    ),
    "empty line_items": (lambda: {"line_items": []}, "line_items"),
    "quantity zero": (
        lambda: {"line_items": [{"sku": "MUG-BLUE", "quantity": 0}]},
        "line_items.0.quantity",
    ),
    "quantity as string": (
        lambda: {"line_items": [{"sku": "MUG-BLUE", "quantity": "2"}]},
        "line_items.0.quantity",
    ),
    "bad buyer_order_ref": (lambda: {"buyer_order_ref": "has space"}, "buyer_order_ref"),
    "bad email": (lambda: {"customer_email": "not-an-email"}, "customer_email"),
    "unknown field": (lambda: {"priority": "high"}, "priority"),
}


@pytest.mark.parametrize("case", list(ORDER_422))
def test_invalid_order_is_422_and_stores_nothing(setup, redis, case):
    changes, field = ORDER_422[case]
    error = order_refused(
        setup.client,
        redis,
        _order_body(setup.seller["id"], **changes()),
        bearer(setup.buyer["api_key"]),
        422,
        "validation_failed",
    )
    assert field in error["details"], error


def test_repeat_order_returns_the_same_order(setup, redis):
    headers = bearer(setup.buyer["api_key"])
    body = _order_body(setup.seller["id"], ref="3001")
    first = setup.client.post("/api/v1/orders", json=body, headers=headers)
    assert first.status_code == 201
    orders = _order_keys(redis)
    before = snapshot(redis, first.get_json()["id"])
    again = setup.client.post("/api/v1/orders", json=body, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json() == first.get_json()
    assert _order_keys(redis) == orders
    assert_unchanged(before, snapshot(redis, first.get_json()["id"]))
    # Even with other lines, the ref names the order already sent.
    changed = {**body, "line_items": [{"sku": "MUG-RED", "quantity": 5}]}
    third = setup.client.post("/api/v1/orders", json=changed, headers=headers)
    assert third.status_code == 200 and third.get_json()["id"] == first.get_json()["id"]
    assert _order_keys(redis) == orders


# ---- Idempotency-Key ----------------------------------------------------------------------------


def test_idempotency_key_repeat_returns_the_first_answer(setup, redis):
    key = {"Idempotency-Key": "abc-123", **bearer(setup.seller["api_key"])}
    first = setup.post(headers=key)
    assert first.status_code == 201, first.get_json()
    before = snapshot(redis, setup.order["id"])
    again = setup.post(headers=key)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert_unchanged(before, snapshot(redis, setup.order["id"]))
    stored = json.loads(redis.get(f"gw:order:{setup.order['id']}".encode()))
    assert [f["id"] for f in stored["fulfillments"]] == [first.get_json()["fulfillment"]["id"]]
    # Without the key the same body is a second fulfillment.
    other = setup.post(setup.body(tracking_numbers=[UPS_2]))
    assert other.status_code == 201
    assert other.get_json()["fulfillment"]["id"] != first.get_json()["fulfillment"]["id"]


def test_idempotency_key_with_another_body_is_422(setup, redis):
    key = {"Idempotency-Key": "abc-123", **bearer(setup.seller["api_key"])}
    assert setup.post(headers=key).status_code == 201
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(setup.body(tracking_numbers=[UPS_2]), headers=key),
        422,
        "idempotency_key_reused",
    )


def test_idempotency_key_after_a_refusal_is_still_free(setup, redis):
    key = {"Idempotency-Key": "k-1", **bearer(setup.seller["api_key"])}
    refused(
        redis,
        setup.order["id"],
        lambda: setup.post(setup.body(carrier=""), headers=key),
        422,
        "validation_failed",
    )
    assert setup.post(headers=key).status_code == 201


def test_idempotency_key_too_long_is_422(setup, redis):
    key = {"Idempotency-Key": "k" * 256, **bearer(setup.seller["api_key"])}
    error = refused(redis, setup.order["id"], lambda: setup.post(headers=key), 422)
    assert "Idempotency-Key" in error["details"]


# ---- listing orders -----------------------------------------------------------------------------


def _walk(client, headers, query: str = "limit=2") -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        url = f"/api/v1/orders?{query}" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"orders", "next_cursor"}
        pages.append([o["id"] for o in body["orders"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor never ends"


def test_list_orders_pages_through_all_exactly_once(client, pair, make_order, make_partner):
    buyer, seller = pair()
    ids = [make_order(buyer, seller, ref=f"50{n}")["id"] for n in range(5)]
    pages = _walk(client, bearer(buyer["api_key"]), "limit=2")
    assert [len(p) for p in pages] == [2, 2, 1]
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    assert seen == ids  # oldest first
    # The seller sees the same five; a partner with no orders sees none.
    seller_seen = [i for page in _walk(client, bearer(seller["api_key"]), "limit=2") for i in page]
    assert seller_seen == ids
    loner = make_partner("none")
    assert _walk(client, bearer(loner["api_key"])) == [[]]


def test_list_orders_by_status(client, pair, make_order):
    buyer, seller = pair()
    orders = [make_order(buyer, seller, ref=f"60{n}") for n in range(5)]
    setup = Setup(client, buyer, seller, orders[2])
    setup.ship()
    headers = bearer(buyer["api_key"])
    shipped = [i for page in _walk(client, headers, "status=shipped&limit=1") for i in page]
    assert shipped == [orders[2]["id"]]
    unshipped = [i for page in _walk(client, headers, "status=unshipped&limit=2") for i in page]
    assert unshipped == [o["id"] for o in orders if o is not orders[2]]
    listed = client.get("/api/v1/orders?status=shipped", headers=headers).get_json()["orders"]
    assert [o["status"] for o in listed] == ["shipped"]


def test_partner_sees_only_its_own_orders(client, pair, make_order, make_partner):
    buyer, seller = pair()
    mine = [make_order(buyer, seller, ref=f"70{n}")["id"] for n in range(3)]
    other_buyer, other_seller = pair()
    theirs = make_order(other_buyer, other_seller, ref="7100")["id"]

    def listed(partner):
        return {i for page in _walk(client, bearer(partner["api_key"]), "limit=2") for i in page}

    assert listed(buyer) == set(mine)
    assert listed(seller) == set(mine)
    assert listed(other_buyer) == {theirs}
    assert listed(other_seller) == {theirs}


@pytest.mark.parametrize(
    "query",
    [
        "cursor=abcde",
        "cursor=!!!",
        "cursor=aGVsbG8",  # base64 of "hello": decodable, but not a cursor of this API
        "cursor=not%20a%20cursor!",
        "cursor=" + "A" * 201,
        "status=lost",
        "limit=0",
        "limit=201",
        "limit=abc",
        "limit=-1",
        "sort=desc",
    ],
)
def test_list_orders_bad_query_is_422(setup, redis, query):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.client.get(f"/api/v1/orders?{query}", headers=bearer(setup.buyer["api_key"])),
        422,
        "validation_failed",
    )
    assert query.split("=")[0] in error["details"]


def test_operator_may_not_list_orders(setup, redis):
    refused(
        redis,
        setup.order["id"],
        lambda: setup.client.get("/api/v1/orders", headers=admin_headers()),
        403,
        "forbidden",
    )


# ---- links --------------------------------------------------------------------------------------


def _link(setup: Setup, headers, **kwargs):
    return setup.client.post(f"/api/v1/orders/{setup.order['id']}/links", headers=headers, **kwargs)


def _check_link(setup: Setup, answer, role: str) -> str:
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert set(body) == {"url", "role", "expires_at"}
    assert body["role"] == role
    assert body["url"].startswith(f"{ORDER_PAGE_PREFIX}{setup.order['id']}?t=")
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo is not None and expires > datetime.now(expires.tzinfo)
    parts = urlsplit(body["url"])
    return f"{parts.path}?{parts.query}"


def test_buyer_gets_a_buyer_link(setup, redis):
    before = snapshot(redis, setup.order["id"])
    page = _check_link(setup, _link(setup, bearer(setup.buyer["api_key"])), "buyer")
    assert_unchanged(before, snapshot(redis, setup.order["id"]))
    shown = setup.client.get(page, follow_redirects=True)
    assert shown.status_code == 200
    assert b"Create Fulfillment" not in shown.data


def test_seller_gets_a_seller_link(setup):
    page = _check_link(setup, _link(setup, bearer(setup.seller["api_key"])), "seller")
    shown = setup.client.get(page, follow_redirects=True)
    assert shown.status_code == 200
    assert b"Create Fulfillment" in shown.data


def test_operator_must_name_the_role(setup, redis):
    for kwargs in ({}, {"json": {}}):
        error = refused(
            redis,
            setup.order["id"],
            lambda kwargs=kwargs: _link(setup, admin_headers(), **kwargs),
            422,
            "validation_failed",
        )
        assert "role" in error["details"]
    error = refused(
        redis,
        setup.order["id"],
        lambda: _link(setup, admin_headers(), json={"role": "operator"}),
        422,
        "validation_failed",
    )
    assert "role" in error["details"]
    _check_link(setup, _link(setup, admin_headers(), json={"role": "seller"}), "seller")
    _check_link(setup, _link(setup, admin_headers(), json={"role": "buyer"}), "buyer")


def test_link_body_refusals(setup, redis):
    refused(
        redis,
        setup.order["id"],
        lambda: _link(setup, bearer(setup.buyer["api_key"]), json={"colour": "red"}),
        422,
        "validation_failed",
    )
    refused(
        redis,
        setup.order["id"],
        lambda: _link(
            setup, bearer(setup.buyer["api_key"]), data="{", content_type="application/json"
        ),
        400,
    )


# ---- OpenAPI and health -------------------------------------------------------------------------

API_PATHS = {
    "/api/v1/partners": {"post"},
    "/api/v1/partners/{partner_id}": {"get"},
    "/api/v1/partnerships": {"post"},
    "/api/v1/orders": {"post", "get"},
    "/api/v1/orders/{order_id}": {"get"},
    "/api/v1/orders/{order_id}/fulfillments": {"post"},
    "/api/v1/orders/{order_id}/fulfillments/{fulfillment_id}/corrections": {"post"},
    "/api/v1/orders/{order_id}/links": {"post"},
    "/healthz": {"get"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def test_openapi_document_is_valid_openapi_3(client):
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    doc = answer.get_json()
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    for path, operations in API_PATHS.items():
        assert path in doc["paths"], path
        assert operations <= set(doc["paths"][path]), (path, set(doc["paths"][path]))
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            assert operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|default", status), (path, status)
                assert response.get("description"), (path, method, status)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (path, method)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"path", "query", "header", "cookie"}
                if parameter["in"] == "path":
                    assert parameter["required"] is True
    for ref in _refs(doc):
        _resolve(doc, ref)
    schemas = doc["components"]["schemas"]
    assert {"Error", "Order", "Fulfillment", "FulfillmentIn", "OrderIn"} <= set(schemas)
    fulfillment_in = schemas["FulfillmentIn"]["properties"]
    assert {"line_items", "carrier", "tracking_numbers", "tracking_urls"} <= set(fulfillment_in)
    post = doc["paths"]["/api/v1/orders/{order_id}/fulfillments"]["post"]
    assert {"201", "403", "404", "409", "422"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


def test_openapi_links_lead_from_what_is_created_to_the_operations_on_its_id(client):
    doc = client.get("/openapi.json").get_json()
    operations = {
        operation["operationId"]: (path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and "operationId" in operation
    }
    assert len(operations) == sum(
        1
        for path, item in doc["paths"].items()
        if path.startswith("/api/")
        for method in item
        if method in HTTP_METHODS
    )  # every API operation has an id, each its own
    creators = {
        ("/api/v1/partners", "post"): {"getPartner", "createConnectLink"},
        ("/api/v1/orders", "post"): {"getOrder", "createFulfillment", "resyncOrder"},
        ("/api/v1/orders/{order_id}/fulfillments", "post"): {"correctFulfillment"},
    }
    for (path, method), expected in creators.items():
        links = doc["paths"][path][method]["responses"]["201"]["links"]
        assert expected <= {link["operationId"] for link in links.values()}
        for link in links.values():
            target_path, _ = operations[link["operationId"]]
            # Each link fills exactly the path parameters of the operation it leads to.
            assert set(link["parameters"]) == set(re.findall(r"{([^}]+)}", target_path))
            assert all(v.startswith("$response.body#/") for v in link["parameters"].values())


def test_openapi_and_routes_include_resync_and_reconcile(setup):
    doc = setup.client.get("/openapi.json").get_json()
    assert "post" in doc["paths"].get("/api/v1/orders/{order_id}/resync", {})
    assert "post" in doc["paths"].get("/api/v1/reconcile", {})
    resync = setup.client.post(
        f"/api/v1/orders/{setup.order['id']}/resync", headers=bearer(setup.buyer["api_key"])
    )
    assert resync.status_code == 202
    reconcile = setup.client.post("/api/v1/reconcile", headers=admin_headers())
    assert reconcile.status_code == 202


def test_healthz(client, redis):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ok" and body["redis"] == "ok"


# ---- never a 500 --------------------------------------------------------------------------------

GARBAGE = [
    b"",
    b" ",
    b"null",
    b"true",
    b"-1",
    b'"string"',
    b"[]",
    b"[{}]",
    b"{",
    b"}",
    b'{"a":}',
    b"\x00",
    b"\xff\xfe\x00\x00",
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b"[" * 100_000,
    b'{"a":' * 100_000,
    b"1" * 5000,
    b"{}",
    b'{"line_items": "x", "carrier": [], "tracking_numbers": {}}',
    b'{"line_items": [[[[[]]]]], "carrier": {"a": 1}}',
    b'{"line_items": [{"line_item_id": {"$gt": ""}, "quantity": 1}]}',
    b'{"line_items": [{"sku": null, "quantity": 1}], "carrier": "UPS", "tracking_numbers": [null]}',
    b'{"line_items": [{"sku": "AC-100", "quantity": 1e400}]}',
    b'{"line_items": [{"sku": "AC-100", "quantity": 99999999999999999999999999999}]}',
    b'{"carrier": "\\u0000", "tracking_numbers": ["\\u0000"], "tracking_urls": ["\\u0000"]}',
    b'{"carrier": "\\uff35\\uff30\\uff33", "tracking_numbers": ["\\uff11\\uff3a\\uff15"]}',
    b'{"seller_id": {}, "buyer_order_ref": [], "line_items": [{}], "shipping_address": "x"}',
    b'{"name": 1, "email": [], "platform": "mars", "connection": "x"}',
    b'{"name": "x", "email": "a@b.co", "platform": "shopify", "connection": {"shop_domain": 5}}',
    b'{"buyer_id": 1, "seller_id": null, "skus": [{"buyer_sku": 1}]}',
    b'{"role": ["buyer"]}',
]


def test_garbage_bodies_never_get_a_500(setup, redis):
    order_id = setup.order["id"]
    endpoints = [
        (f"/api/v1/orders/{order_id}/fulfillments", bearer(setup.seller["api_key"])),
        (f"/api/v1/orders/{order_id}/fulfillments", bearer(setup.buyer["api_key"])),
        ("/api/v1/orders", bearer(setup.buyer["api_key"])),
        (f"/api/v1/orders/{order_id}/links", bearer(setup.buyer["api_key"])),
        (f"/api/v1/orders/{order_id}/links", admin_headers()),
        ("/api/v1/partners", admin_headers()),
        ("/api/v1/partnerships", admin_headers()),
    ]
    for path, headers in endpoints:
        for data in GARBAGE:
            before = snapshot(redis, order_id)
            answer = setup.client.post(
                path, data=data, content_type="application/json", headers=headers
            )
            assert answer.status_code < 500, (path, data[:80], answer.get_data(as_text=True))
            if answer.status_code >= 400:
                assert_error_shape(answer, answer.status_code)
                assert_unchanged(before, snapshot(redis, order_id))


@pytest.mark.parametrize("url", ["http://[::1", "https://[x]/track"])
def test_unparseable_tracking_url_is_422_not_500(setup, redis, url):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(setup.body(tracking_urls=[url])),
        422,
        "validation_failed",
    )
    assert "tracking_urls.0" in error["details"]


def test_woocommerce_store_url_with_bad_port_is_422_not_500(client, redis):
    body = {
        "name": "Bad port",
        "email": "ops@example.com",
        "platform": "woocommerce",
        "connection": {**WOOCOMMERCE, "store_url": "http://wc.example.com:99999"},
    }
    error = refused(
        redis,
        None,
        lambda: client.post("/api/v1/partners", json=body, headers=admin_headers()),
        422,
        "validation_failed",
    )
    assert "connection.store_url" in error["details"]


LONE_SURROGATE = "\ud800"  # valid JSON ("\\ud800"), but not encodable as UTF-8


@pytest.mark.parametrize("case", ["order seller_id", "partnership buyer_id", "store_url"])
def test_lone_surrogate_in_an_id_is_4xx_not_500(setup, redis, case):
    if case == "order seller_id":
        path, headers = "/api/v1/orders", bearer(setup.buyer["api_key"])
        body = _order_body(LONE_SURROGATE)
    elif case == "partnership buyer_id":
        path, headers = "/api/v1/partnerships", admin_headers()
        body = {"buyer_id": LONE_SURROGATE, "seller_id": setup.seller["id"]}
    else:
        path, headers = "/api/v1/partners", admin_headers()
        connection = {**WOOCOMMERCE, "store_url": f"http://wc.example.com/{LONE_SURROGATE}"}
        body = {"name": "x", "email": "a@b.co", "platform": "woocommerce", "connection": connection}
    data = json.dumps(body)  # ensure_ascii: the surrogate travels as the escape \\ud800
    assert "\\ud800" in data
    before = snapshot(redis, setup.order["id"])
    answer = setup.client.post(path, data=data, content_type="application/json", headers=headers)
    assert 400 <= answer.status_code < 500, answer.get_data(as_text=True)
    assert_error_shape(answer, answer.status_code)
    assert_unchanged(before, snapshot(redis, setup.order["id"]))


# ---- who may, before what ----------------------------------------------------------------------


def test_a_buyer_is_refused_before_its_body_is_read(setup, redis):
    error = refused(
        redis,
        setup.order["id"],
        lambda: setup.post(
            data=b"{not json",
            content_type="application/json",
            headers=bearer(setup.buyer["api_key"]),
        ),
        403,
        "fulfillment_not_allowed",
    )
    assert "seller" in error["message"]


def test_a_partner_cannot_ask_for_the_other_roles_link(setup, redis):
    answer = setup.client.post(
        f"/api/v1/orders/{setup.order['id']}/links",
        json={"role": "seller"},
        headers=bearer(setup.buyer["api_key"]),
    )
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    own = setup.client.post(
        f"/api/v1/orders/{setup.order['id']}/links",
        json={"role": "buyer"},
        headers=bearer(setup.buyer["api_key"]),
    )
    assert own.status_code == 201 and own.get_json()["role"] == "buyer"
