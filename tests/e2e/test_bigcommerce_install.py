"""BigCommerce stores connected through the install flow, end to end: the test plays the store
owner's browser (the connect link, then the control panel's Install, which lands on
/connect/bigcommerce/auth) against the live gateway, the simulator's login service and a real
worker. No webhook is made by hand: the gateway registers them, and its reconciliation repairs
them. Uninstalling stops routing; forged callbacks are refused and store nothing."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import admin_headers, bearer, running_worker, wait_for
from werkzeug.serving import make_server

from e2e.sides import BC_ADDRESS, SKUS
from e2e.test_reconcile import cycle, drain
from sandbox.local import free_port

CLIENT_ID = "gateway-e2e-app"
CLIENT_SECRET = "gateway-e2e-app-secret-0123456789abcdef"
BUYER_TOPICS = {"store/order/created", "store/order/statusUpdated"}
SELLER_TOPICS = {"store/shipment/created", "store/shipment/updated"}


@pytest.fixture
def gateway_settings(monkeypatch, gateway_env) -> dict[str, str]:
    """The gateway's BigCommerce app credentials, and a PUBLIC_URL the live server answers
    on (the app's callback URLs and the hooks' destination are made from it), for the web app
    and the worker alike."""
    settings = {
        **gateway_env,
        "PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "BIGCOMMERCE_CLIENT_ID": CLIENT_ID,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BIGCOMMERCE_LOGIN_URL": "http://login.invalid",  # each connect link names the sim's
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture
def app(gateway_settings, app):
    return app


@pytest.fixture
def worker(redis, gateway_settings) -> Iterator[subprocess.Popen]:
    with running_worker(redis, gateway_settings) as process:
        yield process


@pytest.fixture
def live_server(app, gateway_settings) -> Iterator[str]:
    """The app on a real threaded HTTP server at PUBLIC_URL."""
    url = gateway_settings["PUBLIC_URL"]
    server = make_server("127.0.0.1", int(url.rsplit(":", 1)[1]), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(5)


@pytest.fixture
def sim(bigcommerce_sim, live_server):
    """The simulator, knowing the gateway's app and its callback URLs."""
    bigcommerce_sim.register_app(
        f"{live_server}/connect/bigcommerce/auth",
        f"{live_server}/connect/bigcommerce/load",
        f"{live_server}/connect/bigcommerce/uninstall",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="store_v2_orders store_v2_information_read_only",
    )
    return bigcommerce_sim


def new_partner(client, name: str) -> dict:
    answer = client.post(
        "/api/v1/partners",
        json={"name": name, "email": f"{name.lower()}@example.com", "platform": "bigcommerce"},
        headers=admin_headers(),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def partner_view(client, partner: dict) -> dict:
    return client.get(f"/api/v1/partners/{partner['id']}", headers=admin_headers()).get_json()


def connect_link(client, sim, partner: dict, store_hash: str) -> str:
    answer = client.post(
        f"/api/v1/partners/{partner['id']}/connect",
        json={
            "store_hash": store_hash,
            "api_base_url": sim.base_url,
            "login_base_url": sim.base_url,
        },
        headers=admin_headers(),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["url"]


def install(client, sim, partner: dict, store_hash: str):
    """The store owner opens the connect link, then installs the app from the control panel."""
    store = sim.add_store(store_hash)
    url = connect_link(client, sim, partner, store_hash)
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "control panel" in page.text
    again = requests.get(url, timeout=10)
    assert again.status_code == 200 and "control panel" in again.text, "not used up"
    landed = requests.get(
        f"{sim.base_url}/_sim/stores/{store_hash}/apps/{CLIENT_ID}/install", timeout=10
    )
    assert landed.status_code == 200, landed.text
    assert "/connect/bigcommerce/auth?" in landed.url
    assert store.is_installed(CLIENT_ID)
    return store


def our_hooks(store) -> dict[str, dict]:
    return {h["scope"]: h for h in store.webhooks() if h["client_id"] == CLIENT_ID}


@pytest.fixture
def pair(client, worker, redis, sim, partnership, live_server):
    buyer, seller = new_partner(client, "Corner"), new_partner(client, "Acme")
    buyer_store = install(client, sim, buyer, "corner1")
    seller_store = install(client, sim, seller, "acme1")
    partnership(buyer, seller, SKUS)
    drain(redis)
    return buyer, seller, buyer_store, seller_store


def test_installed_stores_trade_orders_and_fulfillments(client, redis, sim, pair):
    buyer, seller, buyer_store, seller_store = pair
    for partner in (buyer, seller):
        view = partner_view(client, partner)
        assert view["connection_status"] == "connected"
        shown = str(view["connection"])
        assert "access_token" not in shown and "gateway_token" not in shown, "secrets stay in"
        raw = redis.get(f"gw:partner:{partner['id']}")
        assert raw and b'"installed"' in raw
        for store in (buyer_store, seller_store):
            assert store.app_token(CLIENT_ID).encode() not in raw, "sealed at rest"
    wait_for(lambda: set(our_hooks(buyer_store)) == BUYER_TOPICS, what="the buyer's hooks")
    wait_for(lambda: set(our_hooks(seller_store)) == SELLER_TOPICS, what="the seller's hooks")
    secret = next(iter(our_hooks(buyer_store).values()))["headers"]["X-Gateway-Secret"]
    assert secret and secret.encode() not in redis.get(f"gw:partner:{buyer['id']}")
    assert not [h for h in buyer_store.webhooks() if h["client_id"] != CLIENT_ID]

    placed = buyer_store.place_order(
        products=[
            {"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2, "price": 12.0},
            {"sku": "MUG-RED", "name": "Red mug", "quantity": 1, "price": 12.0},
        ],
        shipping_address=BC_ADDRESS,
        email="ada@example.com",
    )

    def routed() -> dict | None:
        orders = client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()
        found = orders["orders"]
        return found[0] if found and found[0]["seller_order_ref"] else None

    order = wait_for(routed, 20, "the order to reach the seller's store")
    assert order["buyer_order_ref"] == str(placed["id"])
    ref = int(order["seller_order_ref"])
    for sku, quantity, number in (
        ("AC-100", 2, "1Z5R89390357567127"),
        ("AC-200", 1, "1Z879E930346834440"),
    ):
        product = next(p for p in seller_store.products(ref) if p["sku"] == sku)
        seller_store.ship(
            ref, items=[(product["id"], quantity)], tracking_number=number, shipping_provider="ups"
        )

    def shipped() -> bool:
        numbers = {s["tracking_number"] for s in buyer_store.shipments(placed["id"])}
        return numbers == {"1Z5R89390357567127", "1Z879E930346834440"}

    wait_for(shipped, 20, "both shipments in the buyer's store")
    wait_for(lambda: buyer_store.order(placed["id"])["status_id"] == 2, 20, "Shipped")


def test_one_cycle_recreates_a_deleted_hook_and_re_enables_a_deactivated_one(
    client, redis, sim, pair
):
    buyer, _, buyer_store, _ = pair
    hooks = wait_for(
        lambda: (h := our_hooks(buyer_store)) and set(h) == BUYER_TOPICS and h, what="hooks"
    )
    drain(redis)  # the install's own jobs check the hooks too: this is the cycle's repair
    buyer_store.delete_hook(hooks["store/order/created"]["id"])
    buyer_store.deactivate_hook(hooks["store/order/statusUpdated"]["id"])

    cycle(redis)

    now = our_hooks(buyer_store)
    assert set(now) == BUYER_TOPICS
    assert all(h["is_active"] for h in now.values())
    assert now["store/order/statusUpdated"]["id"] == hooks["store/order/statusUpdated"]["id"]
    assert now["store/order/created"]["id"] != hooks["store/order/created"]["id"]
    states = {w["topic"]: w["state"] for w in partner_view(client, buyer)["webhooks"]}
    assert states == dict.fromkeys(BUYER_TOPICS, "active")


def test_uninstall_stops_routing_and_shows_uninstalled(client, redis, sim, pair):
    buyer, seller, buyer_store, seller_store = pair
    assert seller_store.uninstall_app(CLIENT_ID) == 200
    view = wait_for(
        lambda: (v := partner_view(client, seller))["connection_status"] == "uninstalled" and v,
        what="the seller uninstalled",
    )
    assert view["connection_status"] == "uninstalled"
    assert our_hooks(seller_store) == {}

    buyer_store.place_order(
        products=[{"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 1, "price": 12.0}],
        shipping_address=BC_ADDRESS,
        email="ada@example.com",
    )
    order = wait_for(
        lambda: client.get("/api/v1/orders", headers=bearer(buyer["api_key"])).get_json()["orders"],
        what="the buyer's order",
    )[0]
    drain(redis)
    time.sleep(0.5)
    order = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])).get_json()
    assert order["seller_order_ref"] is None
    assert seller_store.orders() == []

    def timeline() -> str:
        return " ".join(e.decode() for e in redis.lrange(f"gw:timeline:{order['id']}", 0, -1))

    wait_for(lambda: "uninstalled" in timeline(), what="the order's visible wait")

    # The owner installs the app again through a fresh link: the held order goes on.
    url = connect_link(client, sim, seller, "acme1")
    assert requests.get(url, timeout=10).status_code == 200
    again = requests.get(f"{sim.base_url}/_sim/stores/acme1/apps/{CLIENT_ID}/install", timeout=10)
    assert again.status_code == 200, again.text
    assert partner_view(client, seller)["connection_status"] == "connected"
    wait_for(lambda: len(seller_store.orders()) == 1, 30, "the held order in the seller's store")


def test_forged_callbacks_are_refused_and_store_nothing(client, redis, sim, live_server):
    partner = new_partner(client, "Corner")
    store = sim.add_store("corner1")
    sim.reset_calls()
    # An auth callback for a store no open link names: nothing exchanged, nothing stored.
    forged = requests.get(
        f"{live_server}/connect/bigcommerce/auth",
        params={
            "code": "made-up",
            "scope": "store_v2_orders",
            "context": "stores/corner1",
            "account_uuid": "x",
        },
        timeout=10,
    )
    assert forged.status_code == 403 and "connect link" in forged.text
    assert [c for c in sim.calls() if c["path"] == "/oauth2/token"] == []
    assert partner_view(client, partner)["connection_status"] == "not_connected"

    # With an open link, a made-up code is refused by the login service: nothing stored, and
    # the link still works.
    url = connect_link(client, sim, partner, "corner1")
    made_up = requests.get(
        f"{live_server}/connect/bigcommerce/auth",
        params={
            "code": "made-up",
            "scope": "store_v2_orders store_v2_information_read_only",
            "context": "stores/corner1",
            "account_uuid": "x",
        },
        timeout=10,
    )
    assert made_up.status_code == 400, made_up.text
    assert partner_view(client, partner)["connection_status"] == "not_connected"
    assert requests.get(url, timeout=10).status_code == 200

    # Load and uninstall callbacks signed with another key, or for another app.
    for token in (
        store.signed_payload_jwt(CLIENT_ID, secret="someone-else-0123456789abcdef0123456789"),
        store.signed_payload_jwt(CLIENT_ID, aud="another-app"),
        store.signed_payload_jwt(
            CLIENT_ID,
            iat=int(time.time()) - 90000,
            nbf=int(time.time()) - 90000,
            exp=int(time.time()) - 3600,
        ),
    ):
        for step in ("load", "uninstall"):
            answer = requests.get(
                f"{live_server}/connect/bigcommerce/{step}",
                params={"signed_payload_jwt": token},
                timeout=10,
            )
            assert answer.status_code == 401
    assert partner_view(client, partner)["connection_status"] == "not_connected"


def test_an_uninstall_whose_callback_never_came_is_found_by_the_next_cycle(
    client, redis, sim, pair
):
    buyer, _, buyer_store, _ = pair
    wait_for(lambda: set(our_hooks(buyer_store)) == BUYER_TOPICS, what="the buyer's hooks")
    sim.app(CLIENT_ID).uninstall_callback = ""  # the callback is lost: the token is revoked
    assert buyer_store.uninstall_app(CLIENT_ID) is None

    cycle(redis)  # the cycle's calls are refused (401): the store needs its owner

    view = partner_view(client, buyer)
    assert view["connection_status"] == "needs_reauth"
    assert "401" in view["connection_reason"]
