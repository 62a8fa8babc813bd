"""WooCommerce stores connected through the key flow, end to end: the test plays the store
owner's browser (the connect link, the store's grant page, approve, back to the gateway), the
simulated store POSTs the key to the gateway's callback, the gateway registers its own webhooks;
then an order travels as before. One reconciliation cycle repairs the hooks; a forged callback
is refused and stores nothing; a revoked key holds the work until the store is connected again.
"""

from __future__ import annotations

import html
import json
import re
from email import message_from_string
from email.policy import default
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import admin_headers, bearer, wait_for

from e2e.sides import SKUS, WOO_ADDRESS, WooCommerceSide
from e2e.test_reconcile import cycle, drain

UPS = "1Z5R89390357567127"
FEDEX = "449044304137821"


def partner(gw, name: str) -> dict:
    """A WooCommerce partner made without a connection: its store is connected by its owner."""
    body = {"name": name, "email": f"{name.lower()}@example.com", "platform": "woocommerce"}
    answer = gw.api("POST", "/api/v1/partners", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def shown(gw, partner_id: str) -> dict:
    return gw.api("GET", f"/api/v1/partners/{partner_id}").json()


def grant_form(page: str) -> tuple[str, dict[str, str]]:
    """The store's grant page form, read as a browser would."""
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return action, {k: html.unescape(v) for k, v in hidden}


def open_grant_page(gw, store, who: dict) -> requests.Response:
    """The owner opens a connect link naming the store, and is sent to its grant page."""
    link = gw.api("POST", f"/api/v1/partners/{who['id']}/connect", json={"store_url": store.url})
    assert link.status_code == 201, link.text
    sent = gw.browser.get(link.json()["url"], allow_redirects=False, timeout=10)
    assert sent.status_code == 302, sent.text
    location = sent.headers["Location"]
    assert location.startswith(f"{store.url}/wc-auth/v1/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["scope"] == ["read_write"]
    assert query["callback_url"] == [f"{gw.url}/connect/woocommerce/callback"]
    assert query["return_url"] == [f"{gw.url}/connect/done"]
    page = gw.browser.get(location, allow_redirects=False, timeout=10)
    assert page.status_code == 200
    return page


def choose(gw, store, page: requests.Response, action: str) -> requests.Response:
    """Approve or deny on the grant page, then follow the store's redirect back to us."""
    target, fields = grant_form(page.text)
    fields.update(wc_auth_action=action, username=store.admin_user, password=store.admin_password)
    answer = gw.browser.post(target, data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(f"{gw.url}/connect/done?success={1 if action == 'approve' else 0}")
    return gw.browser.get(back, allow_redirects=False, timeout=10)


def install(gw, store, who: dict) -> dict:
    """Connect the partner's store through the key flow; the partner as the API shows it."""
    done = choose(gw, store, open_grant_page(gw, store, who), "approve")
    assert done.status_code == 200 and "Thank you" in done.text
    seen = shown(gw, who["id"])
    assert seen["connection_status"] == "connected"
    assert seen["connection"]["store_url"] == store.url
    assert "consumer_secret" not in seen["connection"], "secrets are never shown"
    return seen


@pytest.fixture
def woo(installed_gateway, woocommerce_sim):
    """Two WooCommerce stores (a buyer's, a seller's with the SKUs), partners made for them."""
    gw = installed_gateway
    env = SimpleNamespace(client=gw.app.test_client(), woocommerce=woocommerce_sim, gw=gw)
    sides = []
    for role in ("buyer", "seller"):
        side = WooCommerceSide(env, "woocommerce", role)
        # The stores' own keys stay with their owners: the gateway gets its key by the flow.
        side.store = woocommerce_sim.add_store(
            side.name, f"ck_own_{role}_0123456789", f"cs_own_{role}_0123456789"
        )
        side.partner = partner(gw, side.name)
        sides.append(side)
    buyer, seller = sides
    for sku in SKUS.values():
        seller.store.add_product(sku, f"Product {sku}", 4.0)
    return SimpleNamespace(gw=gw, sim=woocommerce_sim, env=env, buyer=buyer, seller=seller)


def partners_of_each_other(woo) -> None:
    pairs = [{"buyer_sku": b, "seller_sku": s} for b, s in SKUS.items()]
    body = {"buyer_id": woo.buyer.partner["id"], "seller_id": woo.seller.partner["id"]}
    answer = woo.gw.api("POST", "/api/v1/partnerships", json={**body, "skus": pairs})
    assert answer.status_code == 201, answer.text


def our_hooks(store, gw) -> dict[str, dict]:
    return {
        h["topic"]: h
        for h in store.webhooks()
        if h["delivery_url"] == f"{gw.url}/webhooks/woocommerce"
    }


def registered(woo) -> dict[str, dict]:
    """Wait for the gateway to register the buyer's hooks; them by topic."""
    wait_for(
        lambda: (
            {(h["topic"], h["state"]) for h in shown(woo.gw, woo.buyer.partner["id"])["webhooks"]}
            == {("order.created", "active"), ("order.updated", "active")}
        ),
        20,
        "the buyer's hooks registered",
    )
    return our_hooks(woo.buyer.store, woo.gw)


def test_stores_connected_by_their_owners_carry_an_order_to_shipped(woo, redis):
    buyer, seller = woo.buyer, woo.seller
    buyer.partner.update(install(woo.gw, buyer.store, buyer.partner))
    seller.partner.update(install(woo.gw, seller.store, seller.partner))
    keys = [k for k in buyer.store.api_keys() if k["description"].startswith("Fulfillment")]
    assert len(keys) == 1 and keys[0]["permissions"] == "read_write"
    (posted,) = woo.sim.deliveries(store=buyer.name, kind="keys")
    assert posted["status"] == 200 and posted["url"] == f"{woo.gw.url}/connect/woocommerce/callback"

    partners_of_each_other(woo)  # the buyer's role: its hooks, made by the gateway
    hooks = registered(woo)
    assert set(hooks) == {"order.created", "order.updated"}
    assert all(h["status"] == "active" for h in hooks.values())
    assert our_hooks(seller.store, woo.gw) == {}, "a WooCommerce seller needs no hook"
    pings = woo.sim.deliveries(store=buyer.name, kind="ping")
    assert pings and all(p["status"] == 200 for p in pings)

    ref = buyer.place_order(seller.partner)
    key = bearer(buyer.partner["api_key"])
    client = woo.env.client

    def our_order():
        orders = client.get("/api/v1/orders", headers=key).get_json()["orders"]
        return orders[0] if orders and orders[0]["seller_order_ref"] else None

    order = wait_for(our_order, 30, "the order to reach the seller's store")
    assert order["buyer_order_ref"] == ref
    (in_seller_store,) = seller.store.orders()
    assert str(in_seller_store["id"]) == order["seller_order_ref"]
    delivered = woo.sim.deliveries(store=buyer.name, kind="webhook")
    assert delivered and delivered[0]["status"] == 200, "signed with the connection's secret"

    seller.fulfill(order, "AC-100", 2, "UPS", UPS)  # in the order page's API, as Woo sellers do
    seller.fulfill(order, "AC-200", 1, "FedEx", FEDEX)
    wait_for(lambda: {UPS, FEDEX} <= buyer.tracking_seen(ref), 30, "tracking at the buyer")
    wait_for(lambda: buyer.sees_shipped(ref), 30, "the buyer's order completed")


def test_one_reconciliation_recreates_a_deleted_hook_and_re_enables_a_disabled_one(woo, redis):
    buyer = woo.buyer
    buyer.partner.update(install(woo.gw, buyer.store, buyer.partner))
    woo.seller.partner.update(install(woo.gw, woo.seller.store, woo.seller.partner))
    partners_of_each_other(woo)
    hooks = registered(woo)
    drain(redis)
    own = ("ck_own_buyer_0123456789", "cs_own_buyer_0123456789")  # the merchant, in their own admin
    gone = requests.delete(
        f"{buyer.store.api_url}/webhooks/{hooks['order.created']['id']}",
        params={"force": "true"},
        auth=own,
        timeout=5,
    )
    assert gone.status_code == 200
    buyer.store.set_webhook_status(hooks["order.updated"]["id"], "disabled")

    cycle(redis)

    now = our_hooks(buyer.store, woo.gw)
    assert now["order.created"]["status"] == "active"
    assert now["order.created"]["id"] != hooks["order.created"]["id"], "made again"
    assert now["order.updated"]["id"] == hooks["order.updated"]["id"]
    assert now["order.updated"]["status"] == "active", "re-enabled"
    seen = shown(woo.gw, buyer.partner["id"])
    assert {h["topic"]: h["state"] for h in seen["webhooks"]} == {
        "order.created": "active",
        "order.updated": "active",
    }
    store = woo.gw.app.extensions["gateway.store"]
    messages = [e["message"] for e in store.partner_timeline(buyer.partner["id"])]
    assert "The order.created webhook was missing: created." in messages
    assert "The order.updated webhook was disabled: re-enabled." in messages
    metrics = requests.get(f"{woo.gw.url}/metrics", headers=admin_headers(), timeout=5).text
    assert "webhooks_repaired_woocommerce" in metrics

    ref = buyer.place_order(woo.seller.partner)  # the repaired hook delivers, and verifies
    key = bearer(buyer.partner["api_key"])
    wait_for(
        lambda: woo.env.client.get("/api/v1/orders", headers=key).get_json()["orders"],
        30,
        "the order delivered by the recreated hook",
    )
    assert woo.sim.deliveries(store=buyer.name, kind="webhook")[-1]["status"] == 200
    assert ref


def test_a_forged_or_replayed_key_callback_is_refused_and_stores_nothing(woo, redis):
    buyer = woo.buyer
    callback = f"{woo.gw.url}/connect/woocommerce/callback"
    forged = {
        "key_id": 99,
        "user_id": "made-up-nonce",
        "consumer_key": "ck_" + "f" * 40,
        "consumer_secret": "cs_" + "f" * 40,
        "key_permissions": "read_write",
    }
    answer = requests.post(callback, json=forged, timeout=5)
    assert answer.status_code == 403
    assert shown(woo.gw, buyer.partner["id"])["connection_status"] == "not_connected"
    assert requests.get(callback, timeout=5).status_code == 405, "the store POSTs, only"

    page = open_grant_page(woo.gw, buyer.store, buyer.partner)
    nonce = grant_form(page.text)[1]["user_id"]
    short = requests.post(callback, json={**forged, "user_id": nonce, "key_permissions": "read"})
    assert short.status_code == 400, "a key short of read_write is refused"
    choose(woo.gw, buyer.store, page, "approve")  # the real one, with the same nonce
    assert shown(woo.gw, buyer.partner["id"])["connection_status"] == "connected"
    replayed = requests.post(callback, json={**forged, "user_id": nonce}, timeout=5)
    assert replayed.status_code == 403, "a nonce works once"
    assert shown(woo.gw, buyer.partner["id"])["connection"]["store_url"] == buyer.store.url
    (sent,) = woo.sim.deliveries(store=buyer.name, kind="keys")
    kept = woo.gw.app.extensions["gateway.store"].stored_connection(buyer.partner["id"])
    assert kept["consumer_key"] == json.loads(sent["body"])["consumer_key"], "the store's key"
    assert kept["consumer_key"] != forged["consumer_key"], "nothing of the forged key kept"


def test_an_owner_who_denies_leaves_the_store_unconnected_and_may_try_again(woo, redis):
    buyer = woo.buyer
    page = open_grant_page(woo.gw, buyer.store, buyer.partner)
    denied = choose(woo.gw, buyer.store, page, "deny")
    assert denied.status_code == 200 and "not connected" in denied.text
    assert shown(woo.gw, buyer.partner["id"])["connection_status"] == "not_connected"
    assert len(buyer.store.api_keys()) == 1, "no key made"
    assert woo.sim.deliveries(store=buyer.name, kind="keys") == []


def test_a_revoked_key_holds_the_work_until_the_owner_connects_again(woo, redis, mailbox):
    buyer, seller = woo.buyer, woo.seller
    buyer.partner.update(install(woo.gw, buyer.store, buyer.partner))
    seller.partner.update(install(woo.gw, seller.store, seller.partner))
    partners_of_each_other(woo)
    registered(woo)
    drain(redis)
    (ours,) = [k for k in seller.store.api_keys() if k["description"].startswith("Fulfillment")]
    assert seller.store.revoke_key(ours["key_id"])  # the merchant, in their REST API screen

    buyer.place_order(seller.partner)
    wait_for(
        lambda: shown(woo.gw, seller.partner["id"])["connection_status"] == "needs_reauth",
        30,
        "the seller's connection to need its owner",
    )
    drain(redis)
    assert seller.store.orders() == []

    def reconnect_mail():
        for message in mailbox.messages:
            mail = message_from_string(message["data"], policy=default)
            if "Reconnect" in mail["subject"] and message["to"] == [seller.partner["email"]]:
                return mail.get_content()
        return None

    text = wait_for(reconnect_mail, 20, "the owner's email with a fresh link")
    link = re.search(rf"{re.escape(woo.gw.url)}/connect/\S+", text).group(0)

    sent = woo.gw.browser.get(link, allow_redirects=False, timeout=10)
    page = woo.gw.browser.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    assert choose(woo.gw, seller.store, page, "approve").status_code == 200
    wait_for(lambda: len(seller.store.orders()) == 1, 30, "the held order created once reconnected")
    assert shown(woo.gw, seller.partner["id"])["connection_status"] == "connected"
    assert WOO_ADDRESS["city"] == seller.store.orders()[0]["shipping"]["city"]


def test_static_keys_get_the_same_registration_when_they_may_write(woo, redis):
    buyer = woo.buyer
    static = {
        "store_url": buyer.store.url,
        "consumer_key": "ck_own_buyer_0123456789",
        "consumer_secret": "cs_own_buyer_0123456789",
        "webhook_secret": "buyer-static-webhook-secret",
    }
    body = {"name": "Static", "email": "static@example.com", "platform": "woocommerce"}
    made = woo.gw.api("POST", "/api/v1/partners", json={**body, "connection": static})
    assert made.status_code == 201, made.text
    pairs = [{"buyer_sku": b, "seller_sku": s} for b, s in SKUS.items()]
    woo.seller.partner.update(install(woo.gw, woo.seller.store, woo.seller.partner))
    link = {"buyer_id": made.json()["id"], "seller_id": woo.seller.partner["id"], "skus": pairs}
    assert woo.gw.api("POST", "/api/v1/partnerships", json=link).status_code == 201
    hooks = wait_for(
        lambda: len(h := our_hooks(buyer.store, woo.gw)) == 2 and h, 20, "the static key's hooks"
    )
    assert set(hooks) == {"order.created", "order.updated"}
    assert {h["secret"] for h in hooks.values()} == {"buyer-static-webhook-secret"}

    reader = woo.sim.add_store("reader")
    reader.add_key("ck_reader_0123456789", "cs_reader_0123456789", "read")  # Read access
    ro = {"store_url": reader.url, "webhook_secret": "reader-static-webhook-secret"}
    ro.update(consumer_key="ck_reader_0123456789", consumer_secret="cs_reader_0123456789")
    other = woo.gw.api("POST", "/api/v1/partners", json={**body, "name": "Ro", "connection": ro})
    assert other.status_code == 201, other.text
    link = {"buyer_id": other.json()["id"], "seller_id": woo.seller.partner["id"], "skus": pairs}
    assert woo.gw.api("POST", "/api/v1/partnerships", json=link).status_code == 201
    store = woo.gw.app.extensions["gateway.store"]

    def refusals():
        timeline = store.partner_timeline(other.json()["id"])
        return [e for e in timeline if "could not be repaired" in e["message"]]

    # Asked at the partner's creation and at the partnership's: one or two checks, by timing.
    found = wait_for(lambda: len(r := refusals()) >= 2 and r, 20, "the read key's refusals")
    assert all("HTTP 401" in e["message"] for e in found)
    assert our_hooks(reader, woo.gw) == {}
    seen = shown(woo.gw, other.json()["id"])
    assert {h["state"] for h in seen["webhooks"]} == {"missing"}
