"""The console's order pages over real Redis (the browser tests drive the same through
Chromium): filters, search, "needs attention", paging, and the forms' refusals."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from conftest import admin_headers, bearer, edit_order

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
OPERATOR = "ops-console@example.com"


def sign_in(app, client, email: str) -> None:
    """Start a server-side session for the address, as opening an emailed sign-in link does."""
    from gateway.people import SESSION_KEY, SESSION_SECONDS
    from gateway.runtime import store

    session_id = secrets.token_urlsafe(32)
    with app.app_context():
        store().start_session(session_id, email, SESSION_SECONDS)
    with client.session_transaction() as session:
        session[SESSION_KEY] = session_id


@pytest.fixture
def operator(app, client):
    """The test client, signed in as an operator."""
    from gateway.runtime import store

    with app.app_context():
        store().add_operator(OPERATOR)
    sign_in(app, client, OPERATOR)
    return client


def csrf_of(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.data[:500]
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def fulfill(client, seller, order, number=UPS_1, quantity=None):
    line = order["line_items"][0]
    answer = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"line_item_id": line["id"], "quantity": quantity or line["quantity"]}],
            "carrier": "UPS",
            "tracking_numbers": [number],
        },
        headers=bearer(seller["api_key"]),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_everything_under_admin_is_404_but_to_a_signed_in_operator(
    app, client, pair, make_order, redis
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    paths = [
        ("get", "/admin/orders"),
        ("get", f"/admin/orders/{order['id']}"),
        ("post", f"/admin/orders/{order['id']}/resync"),
        ("post", f"/admin/orders/{order['id']}/links/revoke"),
        ("post", f"/admin/orders/{order['id']}/fulfillments/ful_x/retry"),
        ("post", f"/admin/orders/{order['id']}/fulfillments/ful_x/correct"),
    ]
    for method, path in paths:  # signed out; the operator's Bearer key is not a sign-in
        assert getattr(client, method)(path).status_code == 404, path
        assert getattr(client, method)(path, headers=admin_headers()).status_code == 404, path
    sign_in(app, client, seller["email"])  # a partner's contact
    for method, path in paths:
        assert getattr(client, method)(path).status_code == 404, path


def test_the_list_filters_by_status_partner_and_attention(operator, pair, make_order, redis):
    buyer, seller = pair()
    shipped = make_order(buyer, seller, ref="A-1", lines=[{"sku": "MUG-BLUE", "quantity": 1}])
    fulfill(operator, seller, shipped)
    waiting = make_order(buyer, seller, ref="A-2")
    failed = make_order(buyer, seller, ref="A-3")
    fulfill(operator, seller, failed, UPS_2, quantity=1)
    quiet = make_order(buyer, seller, ref="A-4")

    def fail_forward(order):
        order.fulfillments[0].delivery.state = "failed"
        order.fulfillments[0].delivery.last_error = "the buyer's store said 500"

    edit_order(redis, failed["id"], fail_forward)

    def slow_route(order):
        order.routing.state = "pending"
        order.routing.first_attempt_at = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()

    edit_order(redis, waiting["id"], slow_route)

    def listed(query: str) -> list[str]:
        page = operator.get(f"/admin/orders{query}")
        assert page.status_code == 200
        return re.findall(r'data-order="([^"]+)"', page.get_data(as_text=True))

    ids = {o["id"]: o["buyer_order_ref"] for o in (shipped, waiting, failed, quiet)}
    assert [ids[i] for i in listed("")] == ["A-4", "A-3", "A-2", "A-1"]  # newest first
    assert [ids[i] for i in listed("?status=shipped")] == ["A-1"]
    assert [ids[i] for i in listed("?status=unshipped")] == ["A-4", "A-3", "A-2"]
    assert [ids[i] for i in listed("?attention=1")] == ["A-3", "A-2"]
    page = operator.get("/admin/orders?attention=1").get_data(as_text=True)
    assert "a fulfillment to the buyer failed" in page
    assert "the order to the seller pending for over 10 minutes" in page
    other_buyer, _ = pair()
    assert listed(f"?partner={other_buyer['id']}") == []
    assert len(listed(f"?partner={seller['id']}")) == 4
    assert listed("?status=bogus&partner=nobody") == listed("")  # unknown values: no filter


def test_search_finds_by_id_refs_and_tracking_number_exactly_any_case(operator, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller, ref="Ref-77")
    make_order(buyer, seller, ref="Ref-770")
    fulfill(operator, seller, order, UPS_1, quantity=1)
    for term in (order["id"], "ref-77", "  REF-77 ", UPS_1.lower(), f" {UPS_1} "):
        answer = operator.get("/admin/orders", query_string={"q": term})
        assert answer.status_code == 303, term  # one match: straight to the order
        assert answer.headers["Location"].endswith(f"/admin/orders/{order['id']}")
    for term in ("Ref-7", "1Z5R8939035756712", "ord_nope"):  # exact matches only
        page = operator.get("/admin/orders", query_string={"q": term})
        assert page.status_code == 200
        assert b'id="no-orders"' in page.data


def test_pages_of_50_with_a_next_link(operator, app, pair):
    from gateway.orders import new_order
    from gateway.runtime import store

    buyer, seller = pair()
    with app.app_context():  # straight into the store: the API would rate-limit the buyer
        for n in range(53):
            order = new_order(
                buyer["id"],
                seller["id"],
                f"P-{n:03d}",
                [("MUG-BLUE", "AC-100", None, 1, None)],
                {},
                None,
            )
            store().add_order(order, [], [])
    first = operator.get("/admin/orders").get_data(as_text=True)
    shown = re.findall(r'data-order="([^"]+)"', first)
    assert len(shown) == 50
    next_url = re.search(r'href="([^"]+)" id="next"', first).group(1).replace("&amp;", "&")
    second = operator.get(next_url).get_data(as_text=True)
    rest = re.findall(r'data-order="([^"]+)"', second)
    assert len(rest) == 3
    assert len(set(shown + rest)) == 53  # every order once
    assert 'id="next"' not in second


def test_the_order_page_shows_every_delivery_with_attempts_errors_and_the_timeline(
    operator, pair, make_order, redis
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    fulfill(operator, seller, order, quantity=1)

    def failed(o):
        o.fulfillments[0].delivery.state = "failed"
        o.fulfillments[0].delivery.attempts = 6
        o.fulfillments[0].delivery.last_error = "callback answered 502"

    edit_order(redis, order["id"], failed)
    page = operator.get(f"/admin/orders/{order['id']}").get_data(as_text=True)
    assert 'data-delivery="route"' in page
    assert "callback answered 502" in page
    assert "Seller recorded 1 unit(s)" in page  # the timeline
    assert 'id="retry-' in page and "Correct the tracking" in page
    assert operator.get("/admin/orders/ord_nope").status_code == 404


def test_forms_without_a_csrf_token_are_refused_and_change_nothing(
    operator, pair, make_order, redis
):
    from gateway.store import key

    buyer, seller = pair()
    order = make_order(buyer, seller)
    made = fulfill(operator, seller, order, quantity=1)
    fid = made["fulfillment"]["id"]
    before = redis.get(key("order", order["id"])), redis.llen(key("timeline", order["id"]))
    for path, form in [
        (f"/admin/orders/{order['id']}/resync", {}),
        (f"/admin/orders/{order['id']}/links/revoke", {}),
        (f"/admin/orders/{order['id']}/fulfillments/{fid}/retry", {}),
        (
            f"/admin/orders/{order['id']}/fulfillments/{fid}/correct",
            {"carrier": "UPS", "tracking_numbers": UPS_2, "reason": "typo"},
        ),
    ]:
        assert operator.post(path, data=form).status_code == 400, path
        assert operator.post(path, data={**form, "csrf_token": "forged"}).status_code == 400
    assert (
        redis.get(key("order", order["id"])),
        redis.llen(key("timeline", order["id"])),
    ) == before


def test_retry_applies_to_a_failed_delivery_only_and_starts_from_0(
    operator, pair, make_order, redis
):
    from gateway.model import Order
    from gateway.store import key

    buyer, seller = pair()
    order = make_order(buyer, seller)
    fid = fulfill(operator, seller, order, quantity=1)["fulfillment"]["id"]
    token = csrf_of(operator, f"/admin/orders/{order['id']}")
    path = f"/admin/orders/{order['id']}/fulfillments/{fid}/retry"

    not_failed = operator.post(path, data={"csrf_token": token}, follow_redirects=True)
    assert b"Only a failed delivery can be retried" in not_failed.data

    def failed(o):
        o.fulfillments[0].delivery.state = "failed"
        o.fulfillments[0].delivery.attempts = 6
        o.fulfillments[0].delivery.first_attempt_at = "2026-01-01T00:00:00.000Z"

    edit_order(redis, order["id"], failed)
    done = operator.post(path, data={"csrf_token": token}, follow_redirects=True)
    assert b"attempts start again from 0" in done.data
    stored = Order.from_doc(json.loads(redis.get(key("order", order["id"]))))
    delivery = stored.fulfillments[0].delivery
    assert (delivery.state, delivery.attempts, delivery.first_attempt_at) == ("pending", 0, None)
    timeline = [json.loads(e) for e in redis.lrange(key("timeline", order["id"]), 0, -1)]
    assert any(e["type"] == "delivery.retried" and OPERATOR in e["message"] for e in timeline)


def test_the_correction_form_shows_refusals_beside_the_fields_and_stores_nothing(
    operator, pair, make_order, redis
):
    from gateway.store import key

    buyer, seller = pair()
    order = make_order(buyer, seller)
    fid = fulfill(operator, seller, order, quantity=1)["fulfillment"]["id"]
    page = f"/admin/orders/{order['id']}"
    token = csrf_of(operator, page)
    before = redis.get(key("order", order["id"]))

    refused = operator.post(
        f"{page}/fulfillments/{fid}/correct",
        data={
            "csrf_token": token,
            "carrier": "UPS",
            "tracking_numbers": f"{UPS_2}\n1Z999AA10123456784",
            "reason": "  ",
        },
    )
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert f'id="error-tracking_numbers-{fid}"' in html
    assert "1Z999AA10123456784:" in html
    assert f'id="error-reason-{fid}"' in html
    assert redis.get(key("order", order["id"])) == before

    same = operator.post(
        f"{page}/fulfillments/{fid}/correct",
        data={"csrf_token": token, "carrier": "UPS", "tracking_numbers": UPS_1, "reason": "x"},
    )
    assert same.status_code == 422 and b"nothing would change" in same.data

    done = operator.post(
        f"{page}/fulfillments/{fid}/correct",
        data={
            "csrf_token": token,
            "carrier": "UPS",
            "tracking_numbers": f"  {UPS_2}  \n\n",
            "reason": "Label\nreprinted",
        },
        follow_redirects=True,
    )
    assert done.status_code == 200 and b"Tracking corrected" in done.data
    answer = operator.get(f"/api/v1/orders/{order['id']}", headers=admin_headers()).get_json()
    fulfillment = answer["fulfillments"][0]
    assert fulfillment["tracking_numbers"] == [UPS_2]
    assert fulfillment["corrections"][0]["by"] == OPERATOR
    assert fulfillment["corrections"][0]["reason"] == "Label reprinted"


def test_revoke_ends_every_link_of_the_order(operator, app, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    link = operator.post(
        f"/api/v1/orders/{order['id']}/links", json={"role": "seller"}, headers=admin_headers()
    ).get_json()
    token = csrf_of(operator, f"/admin/orders/{order['id']}")
    done = operator.post(
        f"/admin/orders/{order['id']}/links/revoke",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert b"revoked" in done.data
    parts = urlsplit(link["url"])
    assert app.test_client().get(f"{parts.path}?{parts.query}").status_code == 403


def test_every_console_form_is_counted_per_person(operator):
    """Not only the order forms: a burst of "run now" posts is told to wait (RATE_LIMIT_PERSON,
    5 a second by default), with Retry-After."""
    token = csrf_of(operator, "/admin/reconcile")
    answers = [
        operator.post("/admin/reconcile", data={"csrf_token": token}).status_code for _ in range(8)
    ]
    assert 429 in answers and answers[0] != 429
    limited = operator.post("/admin/reconcile", data={"csrf_token": token})
    assert limited.status_code == 429 and limited.headers["Retry-After"]
