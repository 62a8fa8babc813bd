"""The gateway's Shopify install flow and token refresh against the simulator (no Redis: the
core's ports in memory, from tests/unit/test_shopify_install.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from gateway.platforms.shopify import ConnectionDown, InstallRequest, Shopify, ShopifyAdapter
from gateway.settings import Settings
from sandbox.shopify import ShopifySimulator
from tests.unit.test_shopify_install import FakeInstallPort, FakeStorePort, link

CLIENT_ID, CLIENT_SECRET = "sim-client", "sim-client-secret"
PLATFORM = Shopify()
SHOP = "acme.myshopify.com"


@pytest.fixture
def sim() -> Iterator[ShopifySimulator]:
    simulator = ShopifySimulator()
    simulator.configure_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    simulator.start()
    simulator.add_shop(SHOP)
    yield simulator
    simulator.stop()


@pytest.fixture
def config() -> Settings:
    return Settings(
        platform_settings={"SHOPIFY_CLIENT_ID": CLIENT_ID, "SHOPIFY_CLIENT_SECRET": CLIENT_SECRET},
        http_timeout=5,
    )


def browse_install(sim: ShopifySimulator, config: Settings, port: FakeInstallPort) -> str:
    """The merchant's browser: the gateway's redirect, the grant page, Install; the callback
    URL the simulator redirects to."""
    begin = PLATFORM.begin_install(port.link, port, config)
    page = requests.get(begin.redirect, timeout=5)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    done = requests.post(
        f"{sim.base_url}{action}", data={**form, "action": "install"}, allow_redirects=False
    )
    return done.headers["Location"]


def call_back(location: str, port: FakeInstallPort, config: Settings):
    query = urlsplit(location).query
    args = dict(parse_qsl(query))
    request = InstallRequest("GET", args, query.encode(), b"", {})
    return PLATFORM.install_step("callback", request, port, config)


def test_install_then_calls_refresh_and_survive_an_expiry(sim, config):
    shop = sim.shop(SHOP)
    port = FakeInstallPort(link(api_base_url=shop.base_url))
    location = browse_install(sim, config, port)
    assert location.startswith("http://127.0.0.1:8000/connect/shopify/callback?")
    answer = call_back(location, port, config)
    assert answer.status == 200, answer
    [(connection, status, _)] = port.completed
    assert status == "connected" and connection["installed"] is True
    store = FakeStorePort(connection)
    adapter = ShopifyAdapter(connection, store, config, "ptr_1")
    address = "http://127.0.0.1:8000/webhooks/shopify"
    checks = adapter.ensure_webhooks(address, ["orders/create", "app/uninstalled"], {})
    assert [c.repaired for c in checks] == [True, True]
    assert [c.found for c in adapter.ensure_webhooks(address, ["orders/create"], {})] == ["active"]
    shop.expire_tokens()  # mid-run: the next call gets 401, refreshes, goes on
    assert adapter.execute("{ shop { name } }", {})["shop"]["name"] == "Acme"
    assert store.connection["access_token"] != connection["access_token"]
    assert store.connection["refresh_token"] != connection["refresh_token"]
    shop.uninstall()
    with pytest.raises(ConnectionDown):
        adapter.execute("{ shop { name } }", {})
    assert store.failed


def test_a_short_grant_is_needs_reauth_and_a_replayed_callback_is_refused(sim, config):
    sim.configure_app(grant_scopes=["read_orders"])
    port = FakeInstallPort(link(api_base_url=sim.shop(SHOP).base_url))
    location = browse_install(sim, config, port)
    assert call_back(location, port, config).status == 200
    assert port.completed[0][1] == "needs_reauth"
    replay = call_back(location, port, config)  # the same state again
    assert replay.status == 403 and len(port.completed) == 1
