"""The Shopify simulator's app install flow, expiring tokens, app subscriptions, uninstall and
compliance webhooks (no Redis needed)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from sandbox.shopify import ShopifySimulator, expand_scopes
from tests.sandbox import test_shopify_simulator as base

receiver = base.receiver  # the webhook receiver fixture
CLIENT_ID, CLIENT_SECRET = "test-client-id", "test-client-secret"
REDIRECT = "https://gateway.example/connect/shopify/callback"
SCOPES = "write_orders,read_fulfillments"
SCOPES_QUERY = "{ currentAppInstallation { accessScopes { handle } } }"


@pytest.fixture
def sim() -> Iterator[ShopifySimulator]:
    simulator = ShopifySimulator(webhook_retry_schedule=[0.01] * 8)
    simulator.configure_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    simulator.start()
    simulator.add_shop("acme.myshopify.com")
    yield simulator
    simulator.stop()


def authorize(sim: ShopifySimulator, state: str = "nonce-1", scope: str = SCOPES) -> dict:
    """Play the merchant's browser: open the grant page, press Install; the redirect's query."""
    url = sim.install_url("acme.myshopify.com", scope, REDIRECT, state)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "Install" in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    base = urlsplit(url)
    done = requests.post(
        f"{base.scheme}://{base.netloc}{action}",
        data={**form, "action": "install"},
        allow_redirects=False,
        timeout=5,
    )
    assert done.status_code == 302
    location = done.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {"raw": urlsplit(location).query, "params": dict(parse_qsl(urlsplit(location).query))}


def exchange(sim: ShopifySimulator, body: dict, json: bool = True) -> requests.Response:
    url = f"{sim.shop('acme.myshopify.com').base_url}/admin/oauth/access_token"
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **body}
    if json:
        return requests.post(url, json=body, timeout=5)
    return requests.post(url, data=body, timeout=5)


def gql(sim: ShopifySimulator, token: str, query: str, variables: dict | None = None):
    url = f"{sim.shop('acme.myshopify.com').base_url}/admin/api/2026-10/graphql.json"
    return requests.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
        timeout=5,
    )


def install(sim: ShopifySimulator, **kwargs) -> dict:
    code = authorize(sim, **kwargs)["params"]["code"]
    answer = exchange(sim, {"code": code, "expiring": 1})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_install_redirects_with_a_signed_query(sim):
    redirect = authorize(sim)
    params = redirect["params"]
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == "acme.myshopify.com" and params["state"] == "nonce-1"
    # hmac: hex HMAC-SHA256 of the other parameters, sorted, k=v joined by & (as received)
    pairs = sorted(p for p in redirect["raw"].split("&") if not p.startswith("hmac="))
    expected = hmac.new(CLIENT_SECRET.encode(), "&".join(pairs).encode(), hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), params["hmac"])


def test_authorize_refuses_an_unknown_client_or_redirect(sim):
    sim.configure_app(redirect_urls=[REDIRECT])
    url = sim.install_url("acme.myshopify.com", SCOPES, "https://evil.example/cb", "s")
    assert requests.get(url, timeout=5).status_code == 400
    bad = url.replace(CLIENT_ID, "other")
    assert requests.get(bad, timeout=5).status_code == 400
    assert requests.get(f"{sim.base_url}/admin/oauth/authorize", timeout=5).status_code == 404


def test_code_exchange_gives_an_expiring_token_and_a_refresh_token(sim):
    tokens = install(sim)
    assert tokens["expires_in"] == 3600 and tokens["scope"] == SCOPES
    assert tokens["refresh_token"] and tokens["refresh_token_expires_in"] == 90 * 86400
    scopes = gql(sim, tokens["access_token"], SCOPES_QUERY).json()["data"]
    handles = {s["handle"] for s in scopes["currentAppInstallation"]["accessScopes"]}
    assert handles == {"write_orders", "read_orders", "read_fulfillments"}


def test_a_code_is_single_use_and_form_bodies_work(sim):
    code = authorize(sim)["params"]["code"]
    assert exchange(sim, {"code": code, "expiring": "1"}, json=False).status_code == 200
    again = exchange(sim, {"code": code, "expiring": 1})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    wrong = exchange(sim, {"code": "x", "client_secret": "nope"})
    assert wrong.status_code == 401


def test_short_grant_is_configurable(sim):
    sim.configure_app(grant_scopes=["read_orders"])
    tokens = install(sim)
    assert tokens["scope"] == "read_orders"
    scopes = gql(sim, tokens["access_token"], SCOPES_QUERY).json()["data"]
    assert [s["handle"] for s in scopes["currentAppInstallation"]["accessScopes"]] == [
        "read_orders"
    ]


def test_expired_token_is_401_and_refresh_rotates(sim):
    tokens = install(sim)
    assert gql(sim, tokens["access_token"], "{ shop { name } }").status_code == 200
    sim.shop("acme.myshopify.com").expire_tokens()
    refused = gql(sim, tokens["access_token"], "{ shop { name } }")
    assert refused.status_code == 401 and "Invalid API key or access token" in refused.text
    fresh = exchange(sim, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    new = fresh.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"] and new["expires_in"] == 3600
    assert gql(sim, new["access_token"], "{ shop { name } }").status_code == 200
    # the new access token used: the old refresh token is retired
    old = exchange(sim, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"


def test_the_clock_expires_tokens_after_an_hour(sim):
    tokens = install(sim)
    sim.clock.advance(3599)
    assert gql(sim, tokens["access_token"], "{ shop { name } }").status_code == 200
    sim.clock.advance(2)
    assert gql(sim, tokens["access_token"], "{ shop { name } }").status_code == 401


def test_a_lost_refresh_answer_can_be_retried_with_the_same_refresh_token(sim):
    tokens = install(sim)
    sim.lose_next_answer("oauth/access_token")
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert exchange(sim, body).status_code == 502  # Shopify rotated; the app never heard
    retry = exchange(sim, body)
    assert retry.status_code == 200
    assert gql(sim, retry.json()["access_token"], "{ shop { name } }").status_code == 200


def test_app_subscriptions_are_the_apps_own_and_signed_with_its_secret(sim, receiver):
    tokens = install(sim)
    shop = sim.shop("acme.myshopify.com")
    shop.client_secret = "custom-app-secret"  # the merchant's own custom app, besides ours
    shop.add_webhook("orders/create", receiver.url + "?static")
    create = """mutation($t: WebhookSubscriptionTopic!, $s: WebhookSubscriptionInput!) {
      webhookSubscriptionCreate(topic: $t, webhookSubscription: $s) {
        webhookSubscription { id topic uri } userErrors { field message } } }"""
    made = gql(
        sim, tokens["access_token"], create, {"t": "ORDERS_CREATE", "s": {"uri": receiver.url}}
    )
    assert made.json()["data"]["webhookSubscriptionCreate"]["userErrors"] == []
    listed = gql(
        sim, tokens["access_token"], "{ webhookSubscriptions(first: 50) { nodes { topic uri } } }"
    ).json()["data"]["webhookSubscriptions"]["nodes"]
    assert listed == [{"topic": "ORDERS_CREATE", "uri": receiver.url}]
    shop.place_order([{"sku": "A", "quantity": 1, "title": "A"}])
    assert sim.wait_for_webhooks()
    assert len(receiver.requests) == 2
    signatures = {r["headers"]["x-shopify-hmac-sha256"] for r in receiver.requests}
    assert len(signatures) == 2  # one per app secret


def test_a_subscription_that_keeps_failing_is_removed(sim, receiver):
    sim.subscription_failure_limit = 3
    shop = sim.shop("acme.myshopify.com")
    shop.add_webhook("orders/create", receiver.url)
    receiver.statuses = [500] * 10
    shop.place_order([{"sku": "A", "quantity": 1, "title": "A"}])
    assert sim.wait_for_webhooks()
    assert shop.webhooks() == []
    assert shop.removed_subscriptions[0]["topic"] == "orders/create"
    assert len(receiver.requests) == 3


def test_uninstall_revokes_tokens_removes_subscriptions_and_tells_the_app(sim, receiver):
    tokens = install(sim)
    shop = sim.shop("acme.myshopify.com")
    shop.add_webhook("app/uninstalled", receiver.url, owner="app")
    shop.add_webhook("orders/create", receiver.url, owner="app")
    shop.uninstall()
    assert sim.wait_for_webhooks()
    assert receiver.bodies("app/uninstalled")[0]["myshopify_domain"] == "acme.myshopify.com"
    signature = receiver.requests[0]["headers"]["x-shopify-hmac-sha256"]
    assert signature == __import__("sandbox.shopify").shopify.sign(
        receiver.requests[0]["body"], CLIENT_SECRET
    )
    assert shop.webhooks() == [] and not shop.installed
    assert gql(sim, tokens["access_token"], "{ shop { name } }").status_code == 401
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert exchange(sim, body).status_code == 400


def test_compliance_webhooks_go_to_the_configured_url_signed(sim, receiver):
    sim.configure_app(compliance_url=receiver.url)
    shop = sim.shop("acme.myshopify.com")
    order = shop.place_order([{"sku": "A", "quantity": 1, "title": "A"}], email="ada@example.com")
    shop.redact_customer("ada@example.com")
    shop.request_customer_data("ada@example.com")
    shop.redact_shop()
    assert sim.wait_for_webhooks()
    redact = receiver.bodies("customers/redact")[0]
    assert redact["customer"]["email"] == "ada@example.com"
    assert redact["orders_to_redact"] == [int(order["id"].rsplit("/", 1)[-1])]
    assert receiver.bodies("customers/data_request")[0]["data_request"]["id"]
    assert receiver.bodies("shop/redact")[0] == {
        "shop_id": shop.id,
        "shop_domain": "acme.myshopify.com",
    }


def test_deprecated_reason_header_is_a_switch(sim):
    tokens = install(sim)
    sim.shop("acme.myshopify.com").set_deprecated_reason("Shop.products")
    answer = gql(sim, tokens["access_token"], "{ shop { name } }")
    assert answer.headers["X-Shopify-API-Deprecated-Reason"] == "Shop.products"


def test_expand_scopes():
    assert expand_scopes(["write_orders", "read_all_orders"]) == [
        "write_orders",
        "read_all_orders",
        "read_orders",
    ]
