"""Shopify's install flow, expiring-token refresh, webhook registration and connection events,
against a mocked Shopify (`responses`) and in-memory ports (the core's InstallPort and the
Store's token methods, as /work/i9-design.md names them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import responses

from gateway.platforms import shopify
from gateway.platforms.base import PlatformError, WebhookCall
from gateway.platforms.shopify import (
    ConnectionDown,
    ConnectLink,
    InstallRefused,
    InstallRequest,
    Shopify,
    ShopifyAdapter,
    callback_hmac_ok,
    missing_scopes,
)
from gateway.settings import Settings

SHOP = "acme.myshopify.com"
BASE = "http://shop.test"
CLIENT_ID, CLIENT_SECRET = "client-id-1", "client-secret-1"
TOKEN_URL = f"{BASE}/admin/oauth/access_token"
PLATFORM = Shopify()


@pytest.fixture
def config() -> Settings:
    return Settings(
        platform_settings={"SHOPIFY_CLIENT_ID": CLIENT_ID, "SHOPIFY_CLIENT_SECRET": CLIENT_SECRET},
        http_timeout=2,
    )


@pytest.fixture
def graphql(config) -> str:
    return f"{BASE}/admin/api/{shopify.api_version(config)}/graphql.json"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


class FakeInstallPort:
    """The core's InstallPort, in memory."""

    def __init__(self, link: ConnectLink) -> None:
        self.link = link
        self.states: dict[str, tuple[ConnectLink, dict]] = {}
        self.completed: list[tuple[dict, str, str]] = []
        self.counts: dict[str, int] = {}
        self.refuse: str | None = None
        self.clock = time.time()

    def new_state(self, link, data, seconds=3600):
        nonce = f"state-{len(self.states) + 1}"
        self.states[nonce] = (link, data)
        return nonce

    def take_state(self, nonce):
        return self.states.pop(nonce, None)

    def complete(self, link, connection, status="connected", reason=""):
        if self.refuse:
            raise InstallRefused(self.refuse)
        self.completed.append((connection, status, reason))
        return {"id": link.partner_id}

    def count(self, name, amount=1):
        self.counts[name] = self.counts.get(name, 0) + amount

    def now(self):
        return self.clock


class FakeStorePort:
    """The Store's PlatformPort with the design's token methods, in memory (one lock = Redis)."""

    def __init__(self, connection: dict) -> None:
        self.connection = dict(connection)
        self.lock = threading.Lock()
        self.leases: dict[str, str] = {}
        self.failed: list[str] = []
        self.counts: dict[str, int] = {}
        self.saves = 0

    def count(self, name, amount=1):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + amount

    def pace(self, name):
        return None

    def set_pace(self, name, state):
        pass

    def acquire(self, name, seconds):
        with self.lock:
            if name in self.leases:
                return None
            self.leases[name] = f"lease-{time.monotonic()}"
            return self.leases[name]

    def release(self, name, token):
        with self.lock:
            if self.leases.get(name) == token:
                del self.leases[name]

    def stored_connection(self, partner_id):
        with self.lock:
            return dict(self.connection)

    def save_tokens(self, partner_id, expected_access_token, changes):
        with self.lock:
            if self.connection["access_token"] != expected_access_token:
                return False
            self.connection.update(changes)
            self.saves += 1
            return True

    def connection_failed(self, partner_id, reason):
        self.failed.append(reason)


def signed_query(params: dict[str, str], secret: str = CLIENT_SECRET) -> str:
    """A callback query as Shopify signs it (sandbox.shopify.oauth_query's rule)."""
    message = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}&hmac={digest}"


def callback_request(query: str) -> InstallRequest:
    args = {k: v[0] for k, v in parse_qs(query).items()}
    return InstallRequest("GET", args, query.encode(), b"", {})


def link(**hints) -> ConnectLink:
    return ConnectLink("lnk_1", "ptr_1", "shopify", {"shop_domain": SHOP, **hints})


def callback_params(port: FakeInstallPort, **changes) -> dict[str, str]:
    state = port.new_state(port.link, {"shop_domain": SHOP})
    params = {
        "code": "code-1",
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ==",
        "shop": SHOP,
        "state": state,
        "timestamp": str(int(port.now())),
    }
    params.update(changes)
    return params


def scopes_answer(*handles: str) -> dict:
    return {"data": {"currentAppInstallation": {"accessScopes": [{"handle": h} for h in handles]}}}


TOKENS = {
    "access_token": "shpua_new",
    "scope": ",".join(shopify.SCOPES),
    "expires_in": 3600,
    "refresh_token": "shprt_new",
    "refresh_token_expires_in": 7776000,
}


# ---- the callback's checks -----------------------------------------------------------------------


def test_callback_hmac_is_over_the_sorted_query_as_received():
    query = signed_query({"shop": SHOP, "code": "a b", "state": "x", "timestamp": "1"})
    assert callback_hmac_ok(query, CLIENT_SECRET)
    reordered = "&".join(reversed(query.split("&")))
    assert callback_hmac_ok(reordered.encode(), CLIENT_SECRET)
    assert not callback_hmac_ok(query, "other-secret")
    assert not callback_hmac_ok(query.replace("state=x", "state=y"), CLIENT_SECRET)
    assert not callback_hmac_ok(query + "&hmac=00", CLIENT_SECRET)  # two hmacs
    assert not callback_hmac_ok(query.split("&hmac=")[0], CLIENT_SECRET)
    assert not callback_hmac_ok(query, "")


def test_begin_install_redirects_to_the_shops_grant_screen(config):
    port = FakeInstallPort(link())
    answer = PLATFORM.begin_install(link(api_base_url=BASE), port, config)
    assert answer.status == 302
    url = urlsplit(answer.redirect)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{BASE}/admin/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {
        "client_id": CLIENT_ID,
        "scope": ",".join(shopify.SCOPES),
        "redirect_uri": "http://127.0.0.1:8000/connect/shopify/callback",
        "state": "state-1",
    }
    no_base = PLATFORM.begin_install(link(), port, config)
    assert no_base.redirect.startswith(f"https://{SHOP}/admin/oauth/authorize?")


def test_a_good_callback_exchanges_the_code_and_stores_the_connection(config, rsps, graphql):
    port = FakeInstallPort(link(api_base_url=BASE))
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, json=scopes_answer("write_orders", "read_orders", *shopify.SCOPES[1:]))
    answer = PLATFORM.install_step(
        "callback", callback_request(signed_query(callback_params(port))), port, config
    )
    assert answer.status == 200, answer
    sent = json.loads(rsps.calls[0].request.body)
    assert sent == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": "code-1",
        "expiring": 1,
    }
    assert rsps.calls[1].request.headers["X-Shopify-Access-Token"] == "shpua_new"
    [(connection, status, reason)] = port.completed
    assert status == "connected" and reason == ""
    expires = datetime.fromisoformat(connection.pop("token_expires_at").replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(hours=1)) < timedelta(seconds=30)
    assert connection == {
        "shop_domain": SHOP,
        "access_token": "shpua_new",
        "refresh_token": "shprt_new",
        "installed": True,
        "api_base_url": BASE,
    }


def test_short_scopes_give_needs_reauth(config, rsps, graphql):
    port = FakeInstallPort(link(api_base_url=BASE))
    rsps.post(TOKEN_URL, json={**TOKENS, "scope": "read_orders"})
    rsps.post(graphql, json=scopes_answer("read_orders"))
    answer = PLATFORM.install_step(
        "callback", callback_request(signed_query(callback_params(port))), port, config
    )
    assert answer.status == 200 and "too few" in answer.title
    [(_, status, reason)] = port.completed
    assert status == "needs_reauth"
    assert "write_orders" in reason and "read_all_orders" in reason


def test_missing_scopes_count_implied_reads():
    assert missing_scopes(["read_orders", "write_orders"], ["write_orders"]) == []
    assert missing_scopes(["write_orders"], ["read_orders"]) == ["write_orders"]


@pytest.mark.parametrize(
    "forgery",
    ["bad_hmac", "stale", "unknown_state", "foreign_shop", "not_myshopify", "no_hmac"],
)
def test_a_forged_callback_is_refused_and_stores_nothing(config, rsps, forgery):
    port = FakeInstallPort(link(api_base_url=BASE))
    params = callback_params(port)
    if forgery == "stale":
        params["timestamp"] = str(int(port.now()) - 3600)
    elif forgery == "unknown_state":
        params["state"] = "state-forged"
    elif forgery == "foreign_shop":
        params["shop"] = "evil.myshopify.com"
    elif forgery == "not_myshopify":
        params["shop"] = "evil.example.com"
    query = signed_query(params, "wrong-secret" if forgery == "bad_hmac" else CLIENT_SECRET)
    if forgery == "no_hmac":
        query = query.split("&hmac=")[0]
    answer = PLATFORM.install_step("callback", callback_request(query), port, config)
    assert answer.status in (400, 403) and answer.redirect is None
    assert port.completed == [] and len(rsps.calls) == 0
    if forgery in ("bad_hmac", "stale", "no_hmac"):
        assert "state-1" in port.states  # a forged request uses up no state


def test_a_refused_code_or_a_store_taken_stores_nothing(config, rsps, graphql):
    port = FakeInstallPort(link(api_base_url=BASE))
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    answer = PLATFORM.install_step(
        "callback", callback_request(signed_query(callback_params(port))), port, config
    )
    assert answer.status == 502 and "invalid_grant" in answer.message and port.completed == []
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, json=scopes_answer(*shopify.SCOPES))
    port.refuse = "Another partner has that store."
    answer = PLATFORM.install_step(
        "callback", callback_request(signed_query(callback_params(port))), port, config
    )
    assert answer.status == 409 and port.completed == []


# ---- token refresh ---------------------------------------------------------------------------


def installed(expires_in: float) -> dict:
    at = datetime.now(UTC) + timedelta(seconds=expires_in)
    return {
        "shop_domain": SHOP,
        "api_base_url": BASE,
        "access_token": "shpua_old",
        "refresh_token": "shprt_old",
        "token_expires_at": at.isoformat().replace("+00:00", "Z"),
        "installed": True,
    }


SHOP_QUERY = "{ shop { name } }"


def test_refresh_ahead_of_expiry_saves_the_rotated_pair(config, rsps, graphql):
    port = FakeStorePort(installed(120))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, json={"data": {"shop": {"name": "Acme"}}})
    assert adapter.execute(SHOP_QUERY, {}) == {"shop": {"name": "Acme"}}
    assert json.loads(rsps.calls[0].request.body) == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": "shprt_old",
    }
    assert rsps.calls[1].request.headers["X-Shopify-Access-Token"] == "shpua_new"
    assert port.connection["access_token"] == "shpua_new"
    assert port.connection["refresh_token"] == "shprt_new" and port.saves == 1
    assert port.leases == {}


def test_refresh_once_on_a_401(config, rsps, graphql):
    port = FakeStorePort(installed(3000))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    rsps.post(graphql, status=401, json={"errors": "[API] Invalid API key or access token"})
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, json={"data": {"shop": {"name": "Acme"}}})
    assert adapter.execute(SHOP_QUERY, {})["shop"]["name"] == "Acme"
    assert port.connection["access_token"] == "shpua_new" and port.failed == []


def test_401_after_a_refresh_marks_the_connection_failed(config, rsps, graphql):
    port = FakeStorePort(installed(3000))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    rsps.post(graphql, status=401, json={"errors": "x"})
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, status=401, json={"errors": "x"})
    with pytest.raises(ConnectionDown):
        adapter.execute(SHOP_QUERY, {})
    assert len(port.failed) == 1 and "401" in port.failed[0]


def test_a_refused_refresh_marks_the_connection_failed(config, rsps, graphql):
    port = FakeStorePort(installed(60))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(ConnectionDown):
        adapter.execute(SHOP_QUERY, {})
    assert "invalid_grant" in port.failed[0]
    assert port.connection["access_token"] == "shpua_old"  # nothing overwritten


def test_a_lost_refresh_answer_keeps_the_old_pair_and_is_retried_with_it(config, rsps, graphql):
    port = FakeStorePort(installed(60))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    rsps.post(TOKEN_URL, body=requests.ConnectionError("reset"))
    with pytest.raises(PlatformError) as raised:
        adapter.execute(SHOP_QUERY, {})
    assert not raised.value.permanent and not isinstance(raised.value, ConnectionDown)
    assert port.connection["refresh_token"] == "shprt_old" and port.failed == []
    assert port.leases == {}  # released for the retry
    rsps.post(TOKEN_URL, json=TOKENS)
    rsps.post(graphql, json={"data": {"shop": {"name": "Acme"}}})
    retry = ShopifyAdapter(port.stored_connection("ptr_1"), port, config, "ptr_1")
    assert retry.execute(SHOP_QUERY, {})["shop"]["name"] == "Acme"
    assert json.loads(rsps.calls[1].request.body)["refresh_token"] == "shprt_old"


def test_two_workers_refresh_a_store_once(config, rsps, graphql, monkeypatch):
    port = FakeStorePort(installed(60))
    refreshes = []

    def refresh(request):
        refreshes.append(json.loads(request.body)["refresh_token"])
        time.sleep(0.5)  # the other worker arrives meanwhile
        return 200, {}, json.dumps(TOKENS)

    rsps.add_callback(responses.POST, TOKEN_URL, callback=refresh)
    rsps.post(graphql, json={"data": {"shop": {"name": "Acme"}}})
    results, errors = [], []

    def work():
        adapter = ShopifyAdapter(port.stored_connection("ptr_1"), port, config, "ptr_1")
        try:
            results.append(adapter.execute(SHOP_QUERY, {}))
        except Exception as error:
            errors.append(error)
        results.append(adapter.token)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == [] and refreshes == ["shprt_old"]
    assert results.count("shpua_new") == 2 and port.saves == 1


def test_a_static_connection_is_never_refreshed(config, rsps, graphql):
    static = {"shop_domain": SHOP, "api_base_url": BASE, "access_token": "shpat_static"}
    port = FakeStorePort(static)
    rsps.post(graphql, status=401, json={"errors": "x"})
    with pytest.raises(PlatformError) as raised:
        ShopifyAdapter(static, port, config, "ptr_1").execute(SHOP_QUERY, {})
    assert raised.value.permanent and port.failed == []


def test_deprecated_reason_is_counted_and_logged_once(config, rsps, graphql, caplog, monkeypatch):
    monkeypatch.setattr(shopify, "DEPRECATIONS_LOGGED", set())
    port = FakeStorePort(installed(3000))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    header = {"X-Shopify-API-Deprecated-Reason": "Shop.products"}
    for _ in range(2):
        rsps.post(graphql, json={"data": {"shop": {"name": "Acme"}}}, headers=header)
    with caplog.at_level(logging.WARNING, logger="gateway.platforms.shopify"):
        adapter.execute(SHOP_QUERY, {})
        adapter.execute(SHOP_QUERY, {})
    assert port.counts["shopify_deprecated_calls"] == 2
    logged = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(logged) == 1 and "Shop.products" in logged[0]
    assert "shpua_old" not in logged[0] and "shprt_old" not in logged[0]


# ---- webhooks and connection events ---------------------------------------------------------


def test_ensure_webhooks_creates_the_missing_ones(config, rsps, graphql):
    port = FakeStorePort(installed(3000))
    adapter = ShopifyAdapter(port.connection, port, config, "ptr_1")
    ours = "https://gw.example/webhooks/shopify"
    rsps.post(
        graphql,
        json={
            "data": {
                "webhookSubscriptions": {
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                    "nodes": [
                        {"id": "gid://1", "topic": "ORDERS_CREATE", "uri": ours},
                        {"id": "gid://2", "topic": "APP_UNINSTALLED", "uri": "https://other"},
                    ],
                }
            }
        },
    )
    created = {"webhookSubscription": {"id": "gid://3"}, "userErrors": []}
    rsps.post(graphql, json={"data": {"webhookSubscriptionCreate": created}})
    refused = {"webhookSubscription": None, "userErrors": [{"field": ["x"], "message": "no"}]}
    rsps.post(graphql, json={"data": {"webhookSubscriptionCreate": refused}})
    checks = adapter.ensure_webhooks(ours, ["orders/create", "app/uninstalled", "orders/paid"], {})
    assert [(c.topic, c.found, c.repaired, c.error) for c in checks] == [
        ("orders/create", "active", False, ""),
        ("app/uninstalled", "missing", True, ""),
        ("orders/paid", "missing", False, "no"),
    ]
    assert json.loads(rsps.calls[1].request.body)["variables"] == {
        "topic": "APP_UNINSTALLED",
        "subscription": {"uri": ours},
    }


def call(topic: str, body: dict, secret: str = CLIENT_SECRET) -> WebhookCall:
    raw = json.dumps(body).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest}
    return WebhookCall(headers, raw, "application/json", dict, json.loads)


def test_connection_events_of_shopifys_topics():
    assert PLATFORM.lifecycle_topics == ("app/uninstalled",)
    assert PLATFORM.connection_event("app/uninstalled", call("app/uninstalled", {})).kind == (
        shopify.UNINSTALLED_EVENT
    )
    redact = {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": 5, "email": "ada@example.com", "phone": None},
        "orders_to_redact": [1001, 1002],
    }
    event = PLATFORM.connection_event("customers/redact", call("customers/redact", redact))
    assert event.kind == shopify.REDACT_CUSTOMER
    assert event.emails == ("ada@example.com",) and event.order_refs == ("1001", "1002")
    request = {
        "shop_id": 1,
        "shop_domain": SHOP,
        "orders_requested": [7],
        "customer": {"id": 5, "email": "ada@example.com"},
        "data_request": {"id": 9},
    }
    data = PLATFORM.connection_event("customers/data_request", call("x", request))
    assert data.kind == shopify.DATA_REQUEST and data.order_refs == ("7",)
    assert PLATFORM.connection_event("shop/redact", call("x", {})).kind == shopify.REDACT_SHOP
    assert PLATFORM.connection_event("orders/create", call("x", {})) is None
    assert PLATFORM.extra_secrets == ("refresh_token",)


def test_installed_connections_verify_with_the_client_secret(config):
    signed = call("orders/create", {"id": 1})
    assert PLATFORM.verify_webhook({"installed": True}, signed, config)
    assert not PLATFORM.verify_webhook({"installed": True}, call("x", {}, "forged"), config)
    unset = Settings()  # no SHOPIFY_CLIENT_SECRET: nothing verifies
    assert not PLATFORM.verify_webhook({"installed": True, "webhook_secret": "x"}, signed, unset)
    static = {"webhook_secret": "custom-app-secret-1"}
    assert PLATFORM.verify_webhook(static, call("x", {}, "custom-app-secret-1"), config)


def test_an_installed_non_expiring_token_refused_is_needs_reauth(config, rsps, graphql):
    connection = {**installed(3000), "refresh_token": None, "token_expires_at": None}
    port = FakeStorePort(connection)
    rsps.post(graphql, status=401, json={"errors": "x"})
    with pytest.raises(ConnectionDown):
        ShopifyAdapter(connection, port, config, "ptr_1").execute(SHOP_QUERY, {})
    assert port.failed == ["Shopify refused the access token (HTTP 401)"]
