"""A store's owner connects a Shopify store in real headless Chromium, with JavaScript off:
the connect link's page asks for the shop (errors beside the field), sends the browser to the
shop's grant page (the simulator), Install brings it back connected; the link is then used up,
and a forged form is refused. The gateway listens where its PUBLIC_URL says, with a worker, so
it registers its webhooks in the shop by itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import wait_for
from playwright.sync_api import Page, expect

from sandbox.shopify import ShopifySimulator

CLIENT_ID = "shopify-test-client-id"  # tests/conftest.py gateway_env
CLIENT_SECRET = "shopify-test-client-secret"


@pytest.fixture
def sim(installed_gateway) -> Iterator[ShopifySimulator]:
    with ShopifySimulator() as simulator:
        simulator.configure_app(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_urls=[f"{installed_gateway.url}/connect/shopify/callback"],
        )
        yield simulator


@pytest.fixture
def no_script_page(new_context) -> Page:
    """A page in a context with JavaScript off: the flow must not need it."""
    return new_context(java_script_enabled=False).new_page()


def test_an_owner_connects_a_shopify_store_without_javascript(
    installed_gateway, sim, no_script_page: Page
):
    gw, page = installed_gateway, no_script_page
    shop = sim.add_shop("corner.myshopify.com")
    partner = gw.api(
        "POST",
        "/api/v1/partners",
        json={"name": "Corner Shop", "email": "owner@corner.example", "platform": "shopify"},
    ).json()
    link = gw.api(
        "POST",
        f"/api/v1/partners/{partner['id']}/connect",
        json={"api_base_url": shop.base_url},  # the simulator; the owner names the shop
    ).json()["url"]

    page.goto(link)
    expect(page.locator("h1")).to_have_text("Connect your Shopify store")
    field = page.get_by_label("Shop domain")
    field.fill("corner shop")
    page.click("text=Continue to Shopify")
    expect(page.locator("#shop_domain-error")).to_be_visible()  # beside the field
    assert "connect" in page.url

    page.get_by_label("Shop domain").fill("corner.myshopify.com")
    page.click("text=Continue to Shopify")
    expect(page).to_have_url(re.compile(rf"^{re.escape(shop.base_url)}/admin/oauth/authorize\?"))
    page.get_by_role("button", name="Install").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(gw.url)}/connect/shopify/callback\?"))
    expect(page.locator("h1")).to_contain_text("connected")

    shown = gw.api("GET", f"/api/v1/partners/{partner['id']}").json()
    assert shown["connection_status"] == "connected"
    assert shown["token_expires_at"] is not None
    wait_for(
        lambda: "app/uninstalled" in {h["topic"] for h in shop.webhooks()},
        what="the gateway's own webhook in the shop",
    )

    response = page.goto(link)  # used up by the installation
    assert response is not None and response.status == 410
    expect(page.locator("h1")).to_have_text("This link can't be used")


def test_the_connect_form_refuses_a_forged_csrf_token(installed_gateway, sim, page: Page):
    gw = installed_gateway
    partner = gw.api(
        "POST",
        "/api/v1/partners",
        json={"name": "Acme", "email": "owner@acme.example", "platform": "shopify"},
    ).json()
    link = gw.api("POST", f"/api/v1/partners/{partner['id']}/connect").json()["url"]
    page.goto(link)
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    page.get_by_label("Shop domain").fill("acme.myshopify.com")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("text=Continue to Shopify")
    assert posted.value.status == 400
    shown = gw.api("GET", f"/api/v1/partners/{partner['id']}").json()
    assert shown["connection_status"] == "not_connected"
