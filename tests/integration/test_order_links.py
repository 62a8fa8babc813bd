"""Order-page links (issue 11, item 3): revocable by generation, shorter for sellers, and a
session's remembered role ends with the link that gave it. Real Redis, Flask test client."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

from conftest import admin_headers, bearer
from flask.testing import FlaskCliRunner

from gateway import links
from gateway.runtime import connect
from gateway.settings import Settings

UPS = "1Z5R89390357567127"
PUBLIC = "http://127.0.0.1:8000"
DAY = 86400


def api_link(client, order_id: str, key: str) -> str:
    """A fresh link from the API, as a path for the test client."""
    answer = client.post(f"/api/v1/orders/{order_id}/links", headers=bearer(key))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["url"].removeprefix(PUBLIC)


def link_signed_ago(order_id: str, role: str, partner_id: str, seconds: float) -> str:
    """A link as the gateway would have signed it `seconds` ago."""
    config = Settings.from_env()
    with mock.patch("itsdangerous.timed.time.time", return_value=time.time() - seconds):
        url = links.order_link(config, connect(config), order_id, role, partner_id)["url"]
    return url.removeprefix(PUBLIC)


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def form(csrf: str, line_id: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        f"quantity-{line_id}": "1",
        "carrier": "UPS",
        "tracking_numbers": UPS,
    }


def refusal_text(answer) -> str:
    assert answer.status_code == 403, answer.status_code
    text = answer.get_data(as_text=True)
    assert "This link is not valid" in text
    return text


def test_a_revoke_ends_every_link_of_both_roles_and_the_sessions_that_opened_them(
    app, client, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    other = make_order(buyer, seller, ref="1002")
    seller_links = [api_link(client, order["id"], seller["api_key"]) for _ in range(2)]
    buyer_link = api_link(client, order["id"], buyer["api_key"])
    other_link = api_link(client, other["id"], seller["api_key"])

    seller_browser, buyer_browser = app.test_client(), app.test_client()
    assert seller_browser.get(seller_links[0]).status_code == 303
    assert seller_browser.get(other_link).status_code == 303
    page = seller_browser.get(f"/orders/{order['id']}")
    assert page.status_code == 200 and "Create Fulfillment" in page.get_data(as_text=True)
    csrf = csrf_of(page)
    assert buyer_browser.get(buyer_link).status_code == 303
    assert buyer_browser.get(f"/orders/{order['id']}").status_code == 200

    answer = client.post(f"/api/v1/orders/{order['id']}/links/revoke", headers=admin_headers())
    assert answer.status_code == 204 and answer.get_data() == b""

    # Every link of the order, both roles, no longer opens it: the page says it was revoked.
    for path in [*seller_links, buyer_link]:
        assert "was revoked" in refusal_text(app.test_client().get(path))
    # The sessions those links opened have lost the role, for viewing and for the form.
    assert "was revoked" in refusal_text(seller_browser.get(f"/orders/{order['id']}"))
    assert "was revoked" in refusal_text(buyer_browser.get(f"/orders/{order['id']}"))
    line_id = order["line_items"][0]["id"]
    posted = seller_browser.post(f"/orders/{order['id']}/fulfillments", data=form(csrf, line_id))
    assert posted.status_code == 403
    stored = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(seller["api_key"]))
    assert stored.get_json()["fulfillments"] == []
    # Another order's link in the same session is untouched.
    assert seller_browser.get(f"/orders/{other['id']}").status_code == 200

    # A link asked for after the revoke works; the revoke is on the order's timeline.
    fresh = api_link(client, order["id"], seller["api_key"])
    assert seller_browser.get(fresh).status_code == 303
    assert seller_browser.get(f"/orders/{order['id']}").status_code == 200
    timeline = connect(Settings.from_env()).timeline(order["id"])
    assert [e["type"] for e in timeline].count("links.revoked") == 1


def test_only_the_operator_revokes_and_an_unknown_order_is_404(client, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    path = f"/api/v1/orders/{order['id']}/links/revoke"
    for key in (buyer["api_key"], seller["api_key"]):
        answer = client.post(path, headers=bearer(key))
        assert answer.status_code == 403
        assert answer.get_json()["error"]["code"] == "forbidden"
    assert client.post(path).status_code == 401
    missing = client.post("/api/v1/orders/ord_missing/links/revoke", headers=admin_headers())
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    # Nothing was revoked by the refusals.
    link = api_link(client, order["id"], seller["api_key"])
    assert client.get(link).status_code == 303


def test_the_cli_revokes_links(app, client, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    link = api_link(client, order["id"], seller["api_key"])
    result = FlaskCliRunner(app).invoke(args=["orders", "revoke-links", order["id"]])
    assert result.exit_code == 0, result.output
    assert order["id"] in result.output
    assert "was revoked" in refusal_text(app.test_client().get(link))
    missing = FlaskCliRunner(app).invoke(args=["orders", "revoke-links", "ord_missing"])
    assert missing.exit_code != 0 and "no order ord_missing" in missing.output


def test_seller_links_last_seven_days_a_renewed_one_works_beside_older_ones(
    client, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    now = datetime.now(UTC)
    for key, days in ((seller["api_key"], 7), (buyer["api_key"], 30)):
        answer = client.post(f"/api/v1/orders/{order['id']}/links", headers=bearer(key))
        expires = datetime.fromisoformat(answer.get_json()["expires_at"].replace("Z", "+00:00"))
        assert abs(expires - (now + timedelta(days=days))) < timedelta(minutes=1)

    six_days_old = link_signed_ago(order["id"], "seller", seller["id"], 6 * DAY)
    eight_days_old = link_signed_ago(order["id"], "seller", seller["id"], 8 * DAY)
    buyer_eight_days_old = link_signed_ago(order["id"], "buyer", buyer["id"], 8 * DAY)
    renewed = api_link(client, order["id"], seller["api_key"])
    # The renewed link and an older one of the same generation both work until they expire.
    for path in (renewed, six_days_old, buyer_eight_days_old):
        assert client.get(path).status_code == 303, path
    assert "has expired" in refusal_text(client.get(eight_days_old))

    # A revoke ends them all, expired or not.
    client.post(f"/api/v1/orders/{order['id']}/links/revoke", headers=admin_headers())
    for path in (renewed, six_days_old, buyer_eight_days_old):
        assert "was revoked" in refusal_text(client.get(path))


def test_the_role_a_session_keeps_ends_when_its_link_expires(app, client, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    almost_expired = link_signed_ago(order["id"], "seller", seller["id"], 7 * DAY - 60)
    browser = app.test_client()
    assert browser.get(almost_expired).status_code == 303
    page = browser.get(f"/orders/{order['id']}")
    assert page.status_code == 200
    csrf = csrf_of(page)

    two_minutes_on = time.time() + 120
    with mock.patch("gateway.links.time.time", return_value=two_minutes_on):
        assert "has expired" in refusal_text(browser.get(f"/orders/{order['id']}"))
        line_id = order["line_items"][0]["id"]
        posted = browser.post(f"/orders/{order['id']}/fulfillments", data=form(csrf, line_id))
        assert posted.status_code == 403
    stored = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(seller["api_key"]))
    assert stored.get_json()["fulfillments"] == []
    # The expired role was forgotten: the session no longer names the order at all.
    assert "Open the link you were sent" in browser.get(f"/orders/{order['id']}").get_data(
        as_text=True
    )
