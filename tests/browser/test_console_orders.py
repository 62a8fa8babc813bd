"""The console's order pages in real headless Chromium, signed in through the emailed link (real
SMTP, a real worker): filters and search, retry, a correction of a shipped order's tracking that
reaches the buyer's Shopify store in the simulator, revoking links, a forged CSRF token refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from conftest import admin_headers, bearer, edit_order, wait_for
from e2e.sides import SKUS, side
from playwright.sync_api import Page, expect

from sandbox.shopify import ShopifySimulator

OPERATOR = "support@marketplace.example"
UPS = "1Z5R89390357567127"
UPS_FIXED = "1Z879E930346834440"
FEDEX = "449044304137821"


@pytest.fixture
def operator_page(app, page: Page, live_server: str, mailbox, worker) -> Page:
    """The page of a browser signed in as an operator, through the emailed link."""
    from gateway.runtime import store

    with app.app_context():
        store().add_operator(OPERATOR)
    page.goto(f"{live_server}/signin")
    page.get_by_label(re.compile("email", re.I)).fill(OPERATOR)
    page.locator("form button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("Check your email")

    def link() -> str | None:
        for message in mailbox.messages:
            if OPERATOR in message["to"]:
                found = re.search(r"https?://[^/\s]+(/signin/[\w-]+)", message["data"])
                if found:
                    return found.group(1)
        return None

    path = wait_for(link, 20, "the sign-in email")
    page.goto(f"{live_server}{path}")
    page.click("#confirm")  # the one button before signing in (mail scanners open links)
    expect(page.locator("#signed-in-as")).to_have_text(OPERATOR)
    return page


@pytest.fixture
def shopify_sim() -> Iterator[ShopifySimulator]:
    with ShopifySimulator() as sim:
        yield sim


def fulfill(client, seller: dict, order: dict, sku: str, number: str, carrier: str = "UPS"):
    line = next(li for li in order["line_items"] if li["seller_sku"] == sku)
    answer = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"line_item_id": line["id"], "quantity": line["quantity"]}],
            "carrier": carrier,
            "tracking_numbers": [number],
        },
        headers=bearer(seller["api_key"]),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def api_order(client, order_id: str) -> dict:
    return client.get(f"/api/v1/orders/{order_id}", headers=admin_headers()).get_json()


def listed(page: Page) -> list[str]:
    return page.locator("#orders tbody tr").evaluate_all("rows => rows.map(r => r.dataset.order)")


def test_filters_and_search(operator_page: Page, live_server, client, pair, make_order, redis):
    page = operator_page
    buyer, seller = pair()
    first = make_order(buyer, seller, ref="1001")
    fulfill(client, seller, first, "AC-100", UPS)
    fulfill(client, seller, first, "AC-200", FEDEX, "FedEx")  # shipped
    second = make_order(buyer, seller, ref="1002")

    def failed(order):
        order.routing.state = "failed"
        order.routing.last_error = "SMTP refused the seller's address"

    edit_order(redis, second["id"], failed)

    page.goto(f"{live_server}/admin/orders")
    assert listed(page) == [second["id"], first["id"]]  # newest first
    page.get_by_label("Status").select_option("shipped")
    page.click("#apply-filters")
    assert listed(page) == [first["id"]]
    page.get_by_label("Status").select_option("")
    page.get_by_label("Needs attention only").check()
    page.click("#apply-filters")
    assert listed(page) == [second["id"]]
    expect(page.locator("#orders")).to_contain_text("the order to the seller failed")

    page.goto(f"{live_server}/admin/orders")
    page.get_by_label("Find").fill(f"  {FEDEX.lower()} ")  # one match: straight to the order
    page.get_by_label("Find").press("Enter")
    expect(page.locator("#order-id")).to_have_text(first["id"])
    expect(page.locator("#order-status")).to_have_text("shipped")
    page.goto(f"{live_server}/admin/orders?q=no-such-ref")
    expect(page.locator("#no-orders")).to_be_visible()

    page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing wider than it
    for path in ("/admin/orders", f"/admin/orders/{first['id']}"):
        page.goto(f"{live_server}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path


def test_retry_a_failed_delivery(
    operator_page: Page, live_server, client, pair, make_order, redis, callback_receiver
):
    page = operator_page
    buyer, seller = pair({"callback_url": callback_receiver.url})
    order = make_order(buyer, seller)
    made = fulfill(client, seller, order, "AC-100", UPS)
    fid = made["fulfillment"]["id"]
    wait_for(lambda: callback_receiver.events(), what="the first delivery")

    def failed(o):
        o.fulfillments[0].delivery.state = "failed"
        o.fulfillments[0].delivery.attempts = 6
        o.fulfillments[0].delivery.last_error = "the buyer's URL answered 502"

    edit_order(redis, order["id"], failed)
    page.goto(f"{live_server}/admin/orders/{order['id']}")
    row = page.locator(f'#deliveries tr[data-delivery="forward:{fid}"]')
    expect(row.locator(".attempts")).to_have_text("6")
    expect(row.locator(".last-error")).to_have_text("the buyer's URL answered 502")
    page.click(f"#retry-{fid}")
    expect(page.locator(".flash.ok")).to_contain_text("attempts start again from 0")
    wait_for(
        lambda: (
            api_order(client, order["id"])["fulfillments"][0]["delivery"]["state"] == "delivered"
        ),
        what="the retried delivery",
    )
    page.reload()
    expect(row.locator(".state")).to_have_text("delivered")
    expect(row.locator(".attempts")).to_have_text("1")  # counted from 0 again
    expect(page.locator(f"#retry-{fid}")).to_have_count(0)


def test_correct_a_shipped_orders_tracking_reaching_the_buyers_shopify_store(
    operator_page: Page, live_server, client, shopify_sim, mailbox
):
    page = operator_page

    def connect(platform: str, connection: dict, name: str, **fields) -> dict:
        body = {"name": name, "email": f"{name}@example.com", "platform": platform}
        answer = client.post(
            "/api/v1/partners",
            json={**body, "connection": connection, **fields},
            headers=admin_headers(),
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    env = SimpleNamespace(client=client, live_server=live_server, connect=connect)
    env.shopify = shopify_sim
    buyer, seller = side(env, "shopify", "buyer"), side(env, "none", "seller")
    buyer.connect()
    seller.connect()
    pairs = [{"buyer_sku": b, "seller_sku": s} for b, s in SKUS.items()]
    client.post(
        "/api/v1/partnerships",
        json={"buyer_id": buyer.partner["id"], "seller_id": seller.partner["id"], "skus": pairs},
        headers=admin_headers(),
    )
    ref = buyer.place_order(seller.partner)
    key = bearer(buyer.partner["api_key"])
    order = wait_for(
        lambda: (client.get("/api/v1/orders", headers=key).get_json()["orders"] or [None])[0],
        20,
        "the order from the buyer's shop",
    )
    seller.fulfill(order, "AC-100", 2, "UPS", UPS)
    seller.fulfill(order, "AC-200", 1, "FedEx", FEDEX)
    wait_for(lambda: buyer.sees_shipped(ref), 20, "the buyer's shop to show it shipped")
    assert buyer.tracking_seen(ref) == {UPS, FEDEX}
    ups = next(f for f in api_order(client, order["id"])["fulfillments"] if f["carrier"] == "UPS")

    page.goto(f"{live_server}/admin/orders?q={ref}")
    expect(page.locator("#order-status")).to_have_text("shipped")
    section = page.locator(f"#fulfillment-{ups['id']}")
    section.locator("summary").click()
    # A dummy number is refused beside the field, and nothing changes.
    section.get_by_label("Tracking numbers").fill("1Z999AA10123456784")
    section.get_by_label(re.compile("^Reason")).fill("Wrong label number in the ticket 4411.")
    section.locator("button[type=submit]").click()
    error = page.locator(f"#error-tracking_numbers-{ups['id']}")
    expect(error).to_contain_text("1Z999AA10123456784")
    assert api_order(client, order["id"])["fulfillments"][0]["tracking_numbers"] == [UPS]

    section = page.locator(f"#fulfillment-{ups['id']}")
    expect(section.get_by_label(re.compile("^Reason"))).to_have_value(
        "Wrong label number in the ticket 4411."
    )  # what was typed is kept
    section.get_by_label("Tracking numbers").fill(f"{UPS_FIXED}\n")
    section.locator("button[type=submit]").click()
    expect(page.locator(".flash.ok")).to_contain_text("Tracking corrected")
    expect(page.locator(f"#fulfillment-{ups['id']} .tracking")).to_contain_text(UPS_FIXED)
    expect(page.locator(f"#fulfillment-{ups['id']} .corrections")).to_contain_text(
        f"by {OPERATOR}: was UPS {UPS}. Reason: Wrong label number in the ticket 4411."
    )
    expect(page.locator("#timeline")).to_contain_text(f"{OPERATOR} corrected the tracking")

    wait_for(lambda: UPS_FIXED in buyer.tracking_seen(ref), 20, "the correction in the shop")
    assert buyer.tracking_seen(ref) == {UPS_FIXED, FEDEX}  # updated there, not added
    assert buyer.sees_shipped(ref)


def test_revoke_ends_the_links_of_the_order(
    operator_page: Page, live_server, client, pair, make_order, new_context
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    link = client.post(
        f"/api/v1/orders/{order['id']}/links", headers=bearer(seller["api_key"])
    ).get_json()
    parts = urlsplit(link["url"])
    seller_page = new_context().new_page()
    assert seller_page.goto(f"{live_server}{parts.path}?{parts.query}").status == 200

    operator_page.goto(f"{live_server}/admin/orders/{order['id']}")
    operator_page.click("#revoke-links")
    expect(operator_page.locator(".flash.ok")).to_contain_text("revoked")

    assert seller_page.reload().status == 403  # the session the link opened ends too
    expect(seller_page.locator("body")).to_contain_text("revoked")
    fresh = new_context().new_page()
    assert fresh.goto(f"{live_server}{parts.path}?{parts.query}").status == 403


def test_a_forged_csrf_token_is_refused(
    operator_page: Page, live_server, client, pair, make_order, redis
):
    from gateway.store import key

    buyer, seller = pair()
    order = make_order(buyer, seller)
    operator_page.goto(f"{live_server}/admin/orders/{order['id']}")
    operator_page.locator("input[name=csrf_token]").evaluate_all(
        "inputs => inputs.forEach(i => { i.value = 'forged' })"
    )
    with operator_page.expect_navigation() as navigation:
        operator_page.click("#revoke-links")
    assert navigation.value.status == 400
    timeline = [json.loads(e) for e in redis.lrange(key("timeline", order["id"]), 0, -1)]
    assert not [e for e in timeline if e["type"] == "links.revoked"]  # nothing revoked
