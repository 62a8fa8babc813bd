"""Shopify stores connected through the app install flow, against the simulator, with a real
worker: the test's HTTP session plays the store owner's browser (connect link, the shop's grant
page, Install, back to the gateway's callback). No webhook is made by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from conftest import bearer, wait_for

from e2e.sides import SIM_ADDRESS
from e2e.test_reconcile import drain
from sandbox.shopify import Shop, ShopifySimulator

CLIENT_ID = "shopify-test-client-id"  # tests/conftest.py gateway_env
CLIENT_SECRET = "shopify-test-client-secret"
UPS_1 = "1Z5R89390357567127"
FEDEX = "449044304137821"
LINES = [
    {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"},
    {"sku": "MUG-RED", "quantity": 1, "title": "Red mug", "price": "12.00"},
]


@pytest.fixture
def sim(installed_gateway) -> Iterator[ShopifySimulator]:
    """The simulator knowing the gateway as its app (the test settings' credentials)."""
    with ShopifySimulator() as simulator:
        simulator.configure_app(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_urls=[f"{installed_gateway.url}/connect/shopify/callback"],
            compliance_url=f"{installed_gateway.url}/webhooks/shopify",
        )
        yield simulator


def new_partner(gw, name: str) -> dict:
    body = {"name": name, "email": f"{name.lower().replace(' ', '.')}@example.com"}
    answer = gw.api("POST", "/api/v1/partners", json={**body, "platform": "shopify"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def partner(gw, partner_id: str) -> dict:
    return gw.api("GET", f"/api/v1/partners/{partner_id}").json()


def connect_link(gw, partner_id: str, shop: Shop, named: bool = True) -> str:
    body = {"api_base_url": shop.base_url, **({"shop_domain": shop.domain} if named else {})}
    answer = gw.api("POST", f"/api/v1/partners/{partner_id}/connect", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["url"]


def to_grant_page(gw, url: str, shop: Shop) -> str:
    """Open the connect link (filling the shop in when the page asks); the shop's authorize
    URL the gateway sends the browser to."""
    browser = gw.browser
    opened = browser.get(url, allow_redirects=False, timeout=10)
    if opened.status_code == 200:  # the page asks for the shop
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', opened.text).group(1)
        opened = browser.post(
            url,
            data={"csrf_token": csrf, "shop_domain": shop.domain},
            allow_redirects=False,
            timeout=10,
        )
    assert opened.status_code in (302, 303), opened.text
    location = opened.headers["Location"]
    assert location.startswith(f"{shop.base_url}/admin/oauth/authorize?")
    return location


def press_install(gw, authorize_url: str) -> str:
    """The grant page's Install button; the callback URL Shopify redirects to."""
    page = gw.browser.get(authorize_url, timeout=10)
    assert page.status_code == 200 and "Install" in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    base = urlsplit(authorize_url)
    done = gw.browser.post(
        f"{base.scheme}://{base.netloc}{action}",
        data={**form, "action": "install"},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302
    callback = done.headers["Location"]
    assert callback.startswith(f"{gw.url}/connect/shopify/callback?")
    return callback


def install(gw, partner_id: str, shop: Shop, named: bool = True) -> requests.Response:
    callback = press_install(gw, to_grant_page(gw, connect_link(gw, partner_id, shop, named), shop))
    return gw.browser.get(callback, allow_redirects=False, timeout=10)


def connected_pair(gw, sim) -> tuple[Shop, Shop, dict, dict]:
    buyer_shop = sim.add_shop("corner.myshopify.com")
    seller_shop = sim.add_shop("acme.myshopify.com")
    buyer, seller = new_partner(gw, "Corner Shop"), new_partner(gw, "Acme Supply")
    pairs = [{"buyer_sku": "MUG-BLUE", "seller_sku": "AC-100"}]
    pairs.append({"buyer_sku": "MUG-RED", "seller_sku": "AC-200"})
    made = gw.api(
        "POST",
        "/api/v1/partnerships",
        json={"buyer_id": buyer["id"], "seller_id": seller["id"], "skus": pairs},
    )
    assert made.status_code == 201, made.text
    done = install(gw, buyer["id"], buyer_shop, named=False)  # the page asks for the shop
    assert done.status_code == 200 and "connected" in done.text, done.text
    done = install(gw, seller["id"], seller_shop)
    assert done.status_code == 200, done.text
    for shop, topics in (
        (buyer_shop, {"orders/create", "orders/paid", "orders/cancelled", "app/uninstalled"}),
        (seller_shop, {"fulfillments/create", "fulfillments/update", "app/uninstalled"}),
    ):
        wait_for(
            lambda shop=shop, topics=topics: topics <= {h["topic"] for h in shop.webhooks()},
            what=f"the gateway's webhooks in {shop.domain}",
        )
        assert {h["url"] for h in shop.webhooks()} == {f"{gw.url}/webhooks/shopify"}
    return buyer_shop, seller_shop, buyer, seller


def our_order(gw, buyer: dict) -> dict | None:
    found = requests.get(
        f"{gw.url}/api/v1/orders", headers=bearer(buyer["api_key"]), timeout=10
    ).json()["orders"]
    return found[0] if found else None


def numbers(shop: Shop, order_gid: str) -> list[str]:
    return sorted(n for f in shop.fulfillments(order_gid) for n in f["tracking_numbers"])


def test_connected_through_the_flow_an_order_travels_and_an_expired_token_is_refreshed(
    installed_gateway, sim
):
    gw = installed_gateway
    buyer_shop, seller_shop, buyer, seller = connected_pair(gw, sim)
    shown = partner(gw, seller["id"])
    assert shown["connection_status"] == "connected" and shown["token_expires_at"]
    wait_for(
        lambda: {h["state"] for h in partner(gw, seller["id"])["webhooks"]} == {"active"},
        what="the webhooks shown on the partner",
    )
    assert "access_token" not in shown["connection"] and "refresh_token" not in shown["connection"]

    placed = buyer_shop.place_order(
        line_items=LINES, shipping_address=SIM_ADDRESS, email="a@b.example"
    )
    wait_for(lambda: seller_shop.orders(), what="the order created in the seller's shop")
    (seller_order,) = seller_shop.orders()
    seller_shop.fulfill(seller_order["id"], lines=[("AC-100", 2)], company="UPS", numbers=[UPS_1])
    wait_for(lambda: numbers(buyer_shop, placed["id"]) == [UPS_1], what="the first fulfillment")

    # Both stores' tokens expire mid-run: the next calls get 401, refresh once, go on.
    refreshed_before = len(buyer_shop.access_tokens()) + len(seller_shop.access_tokens())
    buyer_shop.expire_tokens()
    seller_shop.expire_tokens()
    seller_shop.fulfill(seller_order["id"], lines=[("AC-200", 1)], company="FedEx", numbers=[FEDEX])
    wait_for(
        lambda: numbers(buyer_shop, placed["id"]) == sorted([UPS_1, FEDEX]),
        what="the second fulfillment, after the refresh",
    )
    order = our_order(gw, buyer)
    wait_for(lambda: our_order(gw, buyer)["status"] == "shipped", what="the order to turn shipped")
    assert len(buyer_shop.access_tokens()) + len(seller_shop.access_tokens()) > refreshed_before
    assert any(c["status"] == 401 for c in sim.calls())
    for who in (buyer, seller):
        assert partner(gw, who["id"])["connection_status"] == "connected"
    assert order["buyer_order_ref"] == placed["legacy_id"]


def test_a_deleted_webhook_is_recreated_by_one_reconciliation(installed_gateway, sim, redis):
    from gateway.jobs.reconcile import reconcile_store
    from gateway.store import key

    gw = installed_gateway
    _, seller_shop, _, seller = connected_pair(gw, sim)
    drain(redis)  # the install's own jobs check the hooks too, and hold the store's lock
    hook = next(h for h in seller_shop.webhooks() if h["topic"] == "fulfillments/create")
    assert seller_shop.remove_webhook(hook["id"])  # as Shopify removes a failing one
    done = reconcile_store(seller["id"])
    assert done["webhooks_repaired"] == 1
    assert "fulfillments/create" in {h["topic"] for h in seller_shop.webhooks()}
    shown = {h["topic"]: h["state"] for h in partner(gw, seller["id"])["webhooks"]}
    assert shown["fulfillments/create"] == "active"
    assert int(redis.hget(key("metrics"), "webhooks_repaired_shopify")) == 1


def test_uninstall_stops_routing_and_shows_uninstalled(installed_gateway, sim):
    gw = installed_gateway
    buyer_shop, seller_shop, buyer, seller = connected_pair(gw, sim)
    seller_shop.uninstall()  # app/uninstalled reaches the gateway
    wait_for(
        lambda: partner(gw, seller["id"])["connection_status"] == "uninstalled",
        what="the seller's connection marked uninstalled",
    )
    assert seller_shop.webhooks() == []
    buyer_shop.place_order(line_items=LINES, shipping_address=SIM_ADDRESS, email="a@b.example")
    wait_for(lambda: our_order(gw, buyer), what="the buyer's order ingested")
    time.sleep(2)  # time for a worker to (wrongly) route it
    assert seller_shop.orders() == []
    assert our_order(gw, buyer)["seller_order_ref"] is None


def signed(params: dict[str, str], secret: str = CLIENT_SECRET) -> str:
    message = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}&hmac={digest}"


def test_forged_callbacks_are_refused_and_store_nothing(installed_gateway, sim):
    gw = installed_gateway
    shop = sim.add_shop("acme.myshopify.com")
    sim.add_shop("evil.myshopify.com")
    seller = new_partner(gw, "Acme Supply")
    authorize = to_grant_page(gw, connect_link(gw, seller["id"], shop), shop)
    state = dict(parse_qsl(urlsplit(authorize).query))["state"]
    callback = f"{gw.url}/connect/shopify/callback"
    base = {
        "code": "forged-code",
        "host": base64.b64encode(b"admin.shopify.com/store/acme").decode(),
        "shop": shop.domain,
        "timestamp": str(int(time.time())),
    }
    forgeries = {
        "bad hmac": signed({**base, "state": state}, "not-the-client-secret"),
        "unknown state": signed({**base, "state": "made-up-state"}),
        "foreign shop": signed({**base, "state": state, "shop": "evil.myshopify.com"}),
    }
    for what, query in forgeries.items():
        answer = gw.browser.get(f"{callback}?{query}", allow_redirects=False, timeout=10)
        assert answer.status_code in (400, 403), what
        shown = partner(gw, seller["id"])
        assert shown["connection_status"] == "not_connected", what
        assert shown["connection"] == {}, what
    assert not any(c["fields"] for c in sim.calls())  # no token exchanged, nothing called
    # The link itself is still good: the owner connects for real.
    assert install(gw, seller["id"], shop).status_code == 200
    assert partner(gw, seller["id"])["connection_status"] == "connected"


def test_compliance_webhooks_are_verified_and_acted_on(installed_gateway, sim):
    gw = installed_gateway
    buyer_shop, _, buyer, _ = connected_pair(gw, sim)
    buyer_shop.place_order(line_items=LINES, shipping_address=SIM_ADDRESS, email="ada@example.com")
    wait_for(lambda: our_order(gw, buyer), what="the buyer's order ingested")
    payload = {
        "shop_id": buyer_shop.id,
        "shop_domain": buyer_shop.domain,
        "customer": {"id": 1, "email": "ada@example.com", "phone": None},
        "orders_to_redact": [],
    }
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "customers/redact",
        "X-Shopify-Shop-Domain": buyer_shop.domain,
        "X-Shopify-Webhook-Id": "forged-1",
        "X-Shopify-Hmac-Sha256": base64.b64encode(
            hmac.new(b"forged", body, hashlib.sha256).digest()
        ).decode(),
    }
    forged = requests.post(f"{gw.url}/webhooks/shopify", data=body, headers=headers, timeout=10)
    assert forged.status_code == 401
    time.sleep(1)
    order = our_order(gw, buyer)
    full = requests.get(
        f"{gw.url}/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]), timeout=10
    ).json()
    assert "Ada" in json.dumps(full) or "ada@example.com" in json.dumps(full)

    buyer_shop.redact_customer("ada@example.com")  # the real one, signed with the app's secret
    assert sim.wait_for_webhooks()
    assert [d["status"] for d in sim.deliveries(topic="customers/redact")] == [200]

    def redacted():
        current = requests.get(
            f"{gw.url}/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]), timeout=10
        ).json()
        return "Lovelace" not in json.dumps(current) and "ada@example.com" not in json.dumps(
            current
        )

    wait_for(redacted, what="the customer's data erased")
