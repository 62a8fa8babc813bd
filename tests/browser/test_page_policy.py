"""The order page under its Content-Security-Policy, in Chromium: its own style applies, the
form posts, and the browser reports no violation."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .test_order_page import fill_form, lines_by_sku, open_link, signed_url, submit


def test_the_page_keeps_its_style_and_form_under_its_policy(
    live_server, client, page: Page, pair, make_order
):
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    buyer, seller = pair()
    order = make_order(buyer, seller)
    url = signed_url(client, live_server, order["id"], seller["api_key"])
    open_link(page, url, live_server, order["id"])

    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "960px"  # its 60rem
    fill_form(page, {lines_by_sku(order)["AC-100"]: 1}, "UPS", "1Z5R89390357567127")
    assert submit(page).status == 200
    expect(page.locator(".flash.ok")).to_have_text("Fulfillment recorded.")
    assert [text for text in violations if "Content Security Policy" in text] == []
