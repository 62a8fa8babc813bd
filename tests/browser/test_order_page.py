"""The order page in real headless Chromium: signed links, the Create Fulfillment form, errors.

The app runs on a real threaded HTTP server (live_server); links come from the API. No RQ
worker: the jobs a fulfillment enqueues simply wait in Redis.
"""

from __future__ import annotations

import re
from unittest import mock
from urllib.parse import urlsplit

from conftest import admin_headers, bearer
from playwright.sync_api import Page, Response, expect

UPS_1 = "1Z5R89390357567127"
UPS_BAD_CHECK_DIGIT = "1Z5R89390357567128"
UPS_DUMMY = "1Z999AA10123456784"
FEDEX_GROUND = "449044304137821"
UPS_URL = "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums={}"
FEDEX_URL = "https://www.fedex.com/apps/fedextrack/?tracknumbers={}"
SCREENSHOT = "/tmp/order-page.png"
SHOPIFY_CONNECTION = {
    "shop_domain": "acme.myshopify.com",
    "access_token": "shpat_test_access_token",
    "webhook_secret": "test-webhook-secret",
}


# ---- helpers -----------------------------------------------------------------------------------


def signed_url(client, base: str, order_id: str, api_key: str) -> str:
    """A fresh signed link from the API, pointed at the live server instead of PUBLIC_URL."""
    answer = client.post(f"/api/v1/orders/{order_id}/links", headers=bearer(api_key))
    assert answer.status_code == 201, answer.get_json()
    parts = urlsplit(answer.get_json()["url"])
    assert parts.path == f"/orders/{order_id}" and parts.query.startswith("t=")
    return f"{base}{parts.path}?{parts.query}"


def open_link(page: Page, url: str, base: str, order_id: str) -> None:
    """Open a signed link: 200 after the redirect that drops the token from the address bar."""
    response = page.goto(url)
    assert response is not None and response.status == 200, response and response.status
    assert page.url == f"{base}/orders/{order_id}"


def lines_by_sku(order: dict) -> dict[str, str]:
    return {li["seller_sku"]: li["id"] for li in order["line_items"]}


def expect_line(page: Page, line_id: str, ordered: int, fulfilled: int, remaining: int) -> None:
    row = page.locator(f'#lines tr[data-line="{line_id}"]')
    expect(row.locator("td.ordered")).to_have_text(str(ordered))
    expect(row.locator("td.fulfilled")).to_have_text(str(fulfilled))
    expect(row.locator("td.remaining")).to_have_text(str(remaining))


def fill_form(page: Page, quantities: dict[str, int], carrier: str, numbers: str) -> None:
    for line_id, quantity in quantities.items():
        page.fill(f'input[name="quantity-{line_id}"]', str(quantity))
    page.select_option("#carrier", carrier)
    page.fill("#tracking_numbers", numbers)


def submit(page: Page) -> Response:
    """Click Create Fulfillment; the response the browser ends up showing."""
    with page.expect_navigation() as navigation:
        page.click("#create-fulfillment")
    return navigation.value


def api_order(client, order_id: str, api_key: str) -> dict:
    answer = client.get(f"/api/v1/orders/{order_id}", headers=bearer(api_key))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def expect_no_form(page: Page) -> None:
    expect(page.locator("#fulfillment-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Create Fulfillment")).to_have_count(0)
    expect(page.get_by_text("Create Fulfillment")).to_have_count(0)
    expect(page.locator('input[name^="quantity-"]')).to_have_count(0)


def post_form_with_session_csrf(page: Page, base: str, order_id: str, line_id: str) -> Response:
    """POST the form directly (as a hand-made request would), with the session's CSRF token.

    The token is read from the form of a page that shows one in this same browser session.
    """
    csrf = page.locator('#fulfillment-form input[name="csrf_token"]').input_value()
    return page.request.post(
        f"{base}/orders/{order_id}/fulfillments",
        form={
            "csrf_token": csrf,
            f"quantity-{line_id}": "1",
            "carrier": "UPS",
            "tracking_numbers": UPS_1,
        },
    )


# ---- 1. the seller fulfills in two steps -------------------------------------------------------


def test_seller_fulfills_in_two_steps_then_order_is_shipped(
    live_server, client, page, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    open_link(
        page,
        signed_url(client, live_server, order["id"], seller["api_key"]),
        live_server,
        order["id"],
    )

    expect(page.locator(".hint").first).to_have_text("Viewing as the seller")
    expect(page.locator("#order-status")).to_have_text("unshipped")
    expect_line(page, lines["AC-100"], 2, 0, 2)
    expect_line(page, lines["AC-200"], 1, 0, 1)
    expect(page.locator("#fulfillments")).to_have_count(0)
    expect(page.get_by_role("button", name="Create Fulfillment")).to_be_visible()

    # Part of the order: one of the two blue mugs, by UPS.
    fill_form(page, {lines["AC-100"]: 1}, "UPS", UPS_1)
    response = submit(page)
    assert response.status == 200
    posted = response.request.redirected_from
    assert posted is not None and posted.method == "POST"  # post/redirect/get
    assert page.url == f"{live_server}/orders/{order['id']}"
    expect(page.locator(".flash.ok")).to_have_text("Fulfillment recorded.")

    rows = page.locator("#fulfillments tbody tr")
    expect(rows).to_have_count(1)
    link = rows.first.get_by_role("link", name=UPS_1)
    expect(link).to_have_attribute("href", UPS_URL.format(UPS_1))
    expect(rows.first.locator("td").nth(1)).to_have_text(
        re.compile("1\\s*\N{MULTIPLICATION SIGN}\\s*AC-100")
    )
    expect(rows.first.locator("td").nth(2)).to_have_text("UPS")
    expect_line(page, lines["AC-100"], 2, 1, 1)
    expect_line(page, lines["AC-200"], 1, 0, 1)
    expect(page.locator("#order-status")).to_have_text("unshipped")
    expect(page.locator(f'input[name="quantity-{lines["AC-100"]}"]')).to_have_attribute("max", "1")
    expect(page.locator(f'input[name="quantity-{lines["AC-100"]}"]')).to_have_value("")
    expect(page.locator(".timeline")).to_contain_text(f"via UPS {UPS_1}")

    page.screenshot(path=SCREENSHOT, full_page=True)

    stored = api_order(client, order["id"], seller["api_key"])
    assert stored["status"] == "unshipped"
    assert [f["tracking_urls"] for f in stored["fulfillments"]] == [[UPS_URL.format(UPS_1)]]

    # The rest: the other blue mug and the red mug, by FedEx.
    fill_form(page, {lines["AC-100"]: 1, lines["AC-200"]: 1}, "FedEx", FEDEX_GROUND)
    assert submit(page).status == 200
    expect(page.locator("#order-status")).to_have_text("shipped")
    expect(rows).to_have_count(2)
    expect(page.get_by_role("link", name=FEDEX_GROUND)).to_have_attribute(
        "href", FEDEX_URL.format(FEDEX_GROUND)
    )
    expect_line(page, lines["AC-100"], 2, 2, 0)
    expect_line(page, lines["AC-200"], 1, 1, 0)
    expect_no_form(page)

    # Reloading the page after the redirect does not post again.
    page.reload()
    expect(rows).to_have_count(2)
    stored = api_order(client, order["id"], seller["api_key"])
    assert stored["status"] == "shipped"
    assert len(stored["fulfillments"]) == 2


# ---- 2. the buyer sees the order but cannot fulfill -------------------------------------------


def test_buyer_sees_order_and_fulfillments_but_no_form(live_server, client, page, pair, make_order):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    made = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"line_item_id": lines["AC-100"], "quantity": 2}],
            "carrier": "UPS",
            "tracking_numbers": [UPS_1],
        },
        headers=bearer(seller["api_key"]),
    )
    assert made.status_code == 201, made.get_json()

    open_link(
        page,
        signed_url(client, live_server, order["id"], buyer["api_key"]),
        live_server,
        order["id"],
    )
    expect(page.locator(".hint").first).to_have_text("Viewing as the buyer")
    expect(page.locator("h1")).to_contain_text("Order 1001")
    expect(page.locator("#order-status")).to_have_text("unshipped")  # still not shipped
    expect_line(page, lines["AC-100"], 2, 2, 0)
    expect_line(page, lines["AC-200"], 1, 0, 1)
    expect(page.get_by_role("link", name=UPS_1)).to_have_attribute("href", UPS_URL.format(UPS_1))
    expect_no_form(page)

    # Even with a CSRF token of this session (from an order the same browser may fulfill),
    # a hand-made POST as the buyer is refused and records nothing.
    other_buyer, other_seller = pair()
    other = make_order(other_buyer, other_seller, ref="2002")
    open_link(
        page,
        signed_url(client, live_server, other["id"], other_seller["api_key"]),
        live_server,
        other["id"],
    )
    answer = post_form_with_session_csrf(page, live_server, order["id"], lines["AC-200"])
    assert answer.status == 200 and answer.url == f"{live_server}/orders/{order['id']}"
    assert "Only the order&#39;s seller can create fulfillments." in answer.text()
    assert len(api_order(client, order["id"], buyer["api_key"])["fulfillments"]) == 1


# ---- 3. bad input is shown beside its field and stores nothing --------------------------------


def test_bad_tracking_numbers_show_errors_beside_the_field(
    live_server, client, page, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    open_link(
        page,
        signed_url(client, live_server, order["id"], seller["api_key"]),
        live_server,
        order["id"],
    )

    beside = page.locator("#tracking_numbers + #error-tracking_numbers")
    for number, message in [
        (UPS_BAD_CHECK_DIGIT, "Not a valid UPS tracking number (check digit)."),
        (UPS_DUMMY, "Looks like a placeholder, not a real tracking number."),
    ]:
        fill_form(page, {lines["AC-100"]: 2}, "UPS", number)
        response = submit(page)
        assert response.status == 422, number
        assert page.url == f"{live_server}/orders/{order['id']}/fulfillments"
        expect(beside).to_be_visible()
        expect(beside).to_have_text(f"{number}: {message}")
        expect(page.locator(".error")).to_have_count(1)
        # What the seller typed is kept.
        expect(page.locator("#tracking_numbers")).to_have_value(number)
        expect(page.locator("#carrier")).to_have_value("UPS")
        expect(page.locator(f'input[name="quantity-{lines["AC-100"]}"]')).to_have_value("2")
        # Nothing was recorded.
        expect(page.locator("#fulfillments")).to_have_count(0)
        expect_line(page, lines["AC-100"], 2, 0, 2)
        stored = api_order(client, order["id"], seller["api_key"])
        assert stored["fulfillments"] == [] and stored["status"] == "unshipped"

    # A quantity over what remains is shown beside that quantity.
    fill_form(page, {lines["AC-100"]: 3}, "UPS", UPS_1)
    assert submit(page).status == 422
    expect(
        page.locator(f"#quantity-{lines['AC-100']} + #error-quantity-{lines['AC-100']}")
    ).to_have_text("Only 2 of 2 remain to be fulfilled for AC-100.")
    expect(page.locator("#error-tracking_numbers")).to_have_count(0)
    assert api_order(client, order["id"], seller["api_key"])["fulfillments"] == []

    # Two bad numbers at once: both messages, beside the field, in one element.
    fill_form(page, {lines["AC-100"]: 2}, "UPS", f"{UPS_BAD_CHECK_DIGIT}\n{UPS_DUMMY}")
    assert submit(page).status == 422
    expect(beside).to_contain_text(UPS_BAD_CHECK_DIGIT)
    expect(beside).to_contain_text(UPS_DUMMY)
    expect(page.locator('[id="error-tracking_numbers"]')).to_have_count(1)
    assert api_order(client, order["id"], seller["api_key"])["fulfillments"] == []

    # The re-rendered form (and its CSRF token) still works once corrected.
    fill_form(page, {lines["AC-100"]: 2}, "UPS", UPS_1)
    assert submit(page).status == 200
    expect(page.locator(".error")).to_have_count(0)
    expect_line(page, lines["AC-100"], 2, 2, 0)
    assert len(api_order(client, order["id"], seller["api_key"])["fulfillments"]) == 1


# ---- 4. a Shopify seller records fulfillments in Shopify, not here ----------------------------


def test_shopify_seller_gets_no_form(live_server, client, page, pair, make_order):
    buyer, seller = pair(seller_platform="shopify", seller_connection=SHOPIFY_CONNECTION)
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    open_link(
        page,
        signed_url(client, live_server, order["id"], seller["api_key"]),
        live_server,
        order["id"],
    )
    expect(page.locator(".hint").first).to_have_text("Viewing as the seller")
    expect(page.locator("#order-status")).to_have_text("unshipped")
    expect_line(page, lines["AC-100"], 2, 0, 2)
    expect_no_form(page)

    # A hand-made POST with a valid CSRF token of this session is refused too.
    manual_buyer, manual_seller = pair()
    manual = make_order(manual_buyer, manual_seller, ref="3003")
    open_link(
        page,
        signed_url(client, live_server, manual["id"], manual_seller["api_key"]),
        live_server,
        manual["id"],
    )
    answer = post_form_with_session_csrf(page, live_server, order["id"], lines["AC-100"])
    assert answer.status == 200 and answer.url == f"{live_server}/orders/{order['id']}"
    assert "come from their shopify store; record them there." in answer.text()
    assert api_order(client, order["id"], seller["api_key"])["fulfillments"] == []


# ---- 5. links that are not valid ---------------------------------------------------------------


def test_tampered_wrong_order_expired_or_missing_token_gets_403(
    live_server, client, new_context, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    other = make_order(buyer, seller, ref="1002")
    good = signed_url(client, live_server, order["id"], seller["api_key"])
    token = good.partition("?t=")[2]
    payload, _, signature = token.rpartition(".")
    page_url = f"{live_server}/orders/{order['id']}"

    from gateway import links
    from gateway.runtime import connect
    from gateway.settings import Settings

    config = Settings.from_env()
    stale_at = 1_000_000_000  # 2001: long past the link's lifetime
    with mock.patch("itsdangerous.timed.time.time", return_value=stale_at):
        link = links.order_link(config, connect(config), order["id"], "seller", seller["id"])
        expired = urlsplit(link["url"])

    tampered_tokens = {
        "payload changed": ("A" if payload[0] != "A" else "B") + token[1:],
        "signature replaced": f"{payload}.{'A' * len(signature)}",
        "garbage": "nonsense",
        "another order's token": signed_url(
            client, live_server, other["id"], seller["api_key"]
        ).partition("?t=")[2],
        "expired": expired.query.removeprefix("t="),
    }
    for what, bad in tampered_tokens.items():
        page = new_context().new_page()
        response = page.goto(f"{page_url}?t={bad}")
        assert response is not None and response.status == 403, what
        expect(page.locator("h1")).to_have_text("This link is not valid")
        expect(page.locator("body")).not_to_contain_text("AC-100")
        # Nor did the bad link leave anything in the session.
        assert page.goto(page_url).status == 403, what
        expect(page.locator("h1")).to_have_text("Open the link you were sent")

    # Never had a token at all.
    page = new_context().new_page()
    response = page.goto(page_url)
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Open the link you were sent")
    expect(page.locator("body")).not_to_contain_text("AC-100")

    # Holding a link to one order does not open another.
    open_link(page, good, live_server, order["id"])
    assert page.goto(f"{live_server}/orders/{other['id']}").status == 403


# ---- 6. the form without JavaScript ------------------------------------------------------------


def test_form_works_without_javascript(live_server, client, new_context, pair, make_order):
    page = new_context(java_script_enabled=False).new_page()
    page.set_content("<p id=probe>off</p><script>probe.textContent = 'on'</script>")
    expect(page.locator("#probe")).to_have_text("off")  # scripts really do not run

    buyer, seller = pair()
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    open_link(
        page,
        signed_url(client, live_server, order["id"], seller["api_key"]),
        live_server,
        order["id"],
    )

    fill_form(page, {lines["AC-100"]: 2, lines["AC-200"]: 1}, "UPS", UPS_BAD_CHECK_DIGIT)
    assert submit(page).status == 422
    expect(page.locator("#tracking_numbers + #error-tracking_numbers")).to_contain_text(
        "check digit"
    )

    page.fill("#tracking_numbers", UPS_1)
    assert submit(page).status == 200
    expect(page.locator(".flash.ok")).to_have_text("Fulfillment recorded.")
    expect(page.locator("#order-status")).to_have_text("shipped")
    expect(page.get_by_role("link", name=UPS_1)).to_have_attribute("href", UPS_URL.format(UPS_1))
    expect_line(page, lines["AC-100"], 2, 2, 0)
    expect_line(page, lines["AC-200"], 1, 1, 0)
    expect_no_form(page)
    stored = api_order(client, order["id"], seller["api_key"])
    assert stored["status"] == "shipped" and len(stored["fulfillments"]) == 1


# ---- 7. a revoked link, and the session it opened ----------------------------------------------


def test_a_revoke_ends_the_link_and_the_open_page_and_says_so(
    live_server, client, new_context, pair, make_order
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    lines = lines_by_sku(order)
    link = signed_url(client, live_server, order["id"], seller["api_key"])
    page = new_context().new_page()
    open_link(page, link, live_server, order["id"])
    fill_form(page, {lines["AC-100"]: 1}, "UPS", UPS_1)

    revoked = client.post(f"/api/v1/orders/{order['id']}/links/revoke", headers=admin_headers())
    assert revoked.status_code == 204

    # The form already on screen no longer records anything: the session's role is gone.
    assert submit(page).status == 403
    expect(page.locator("h1")).to_have_text("This link is not valid")
    expect(page.locator("p")).to_contain_text("This link was revoked")
    expect(page.locator("body")).not_to_contain_text("AC-100")
    page.screenshot(path="/tmp/order-page-revoked.png")
    assert page.goto(f"{live_server}/orders/{order['id']}").status == 403
    assert api_order(client, order["id"], seller["api_key"])["fulfillments"] == []

    # The link itself, opened anew, says so too; a link asked for since works.
    fresh = new_context().new_page()
    assert fresh.goto(link).status == 403
    expect(fresh.locator("p")).to_contain_text("This link was revoked")
    open_link(
        fresh,
        signed_url(client, live_server, order["id"], seller["api_key"]),
        live_server,
        order["id"],
    )
    expect(fresh.locator(".hint").first).to_have_text("Viewing as the seller")
    expect(fresh.get_by_role("button", name="Create Fulfillment")).to_be_visible()
