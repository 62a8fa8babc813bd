"""BigCommerce's install flow and webhook upkeep, the platform's own parts: the auth callback's
token exchange (mocked with `responses`), the load and uninstall callbacks' signed_payload_jwt,
ensure_webhooks over /v3/hooks, and the webhook check of an installed connection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest
import responses
from responses import matchers
from werkzeug.datastructures import MultiDict

from gateway.delivery import ConnectionDown
from gateway.platforms import adapter_for, bigcommerce, get
from gateway.platforms.base import (
    ConnectLink,
    CredentialsRefused,
    InstallAnswer,
    InstallRefused,
    InstallRequest,
    PlatformError,
    WebhookCall,
    WebhookCheck,
)
from gateway.platforms.bigcommerce import BigCommerceAdapter, verify_signed_payload
from gateway.runtime import connect
from gateway.settings import Settings

CLIENT_ID = "gateway-app-client-id"
CLIENT_SECRET = "gateway-app-client-secret-0123456789abcdef"
LOGIN = "http://login.test"
API_BASE = "http://bc.test"
STORE = "abc123"
HOOKS = f"{API_BASE}/stores/{STORE}/v3/hooks"
ADDRESS = "http://127.0.0.1:8000/webhooks/bigcommerce"
PLATFORM = get("bigcommerce")


class FakePort:
    """The core's side of an install, recorded."""

    def __init__(self, link: ConnectLink | None = None, partner: dict | None = None) -> None:
        self.link = link
        self.partner = partner
        self.completed: list[tuple[ConnectLink, dict, str, str]] = []
        self.uninstalls: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.refuse: str | None = None
        self.asked: list[tuple[str, str]] = []

    def link_for_store(self, platform: str, identity: str) -> ConnectLink | None:
        self.asked.append((platform, identity))
        named = self.link and f"stores/{self.link.hints.get('store_hash')}" == identity
        return self.link if named else None

    def partner_by_store(self, platform: str, identity: str) -> dict | None:
        self.asked.append((platform, identity))
        return self.partner if identity == f"stores/{STORE}" else None

    def complete(
        self, link: ConnectLink, connection: dict, status: str = "connected", reason: str = ""
    ) -> dict:
        if self.refuse:
            raise InstallRefused(self.refuse)
        self.completed.append((link, connection, status, reason))
        return {"id": link.partner_id}

    def uninstalled(self, partner_id: str, reason: str) -> None:
        self.uninstalls.append((partner_id, reason))

    def count(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def now(self) -> float:
        return time.time()


@pytest.fixture
def config(gateway_env) -> Settings:
    settings = Settings.from_env()
    return replace(
        settings,
        platform_settings={
            **settings.platform_settings,
            "BIGCOMMERCE_CLIENT_ID": CLIENT_ID,
            "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
            "BIGCOMMERCE_LOGIN_URL": "http://default-login.test",
        },
    )


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def link(trusted: bool = True, contact: str = "ops@partner.example", **hints: Any) -> ConnectLink:
    """An open link naming the store (by the operator, unless `trusted` is False)."""
    named = {"store_hash": STORE, **hints}
    return ConnectLink("lnk_1", "ptr_1", "bigcommerce", named, trusted, contact)


def request(**args: str) -> InstallRequest:
    query = "&".join(f"{k}={v}" for k, v in args.items()).encode()
    return InstallRequest("GET", MultiDict(args), query, b"", {})


def auth_args(**changes: str) -> dict[str, str]:
    return {
        "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
        "code": "qr6h3thvbvag2ffq",
        "context": f"stores/{STORE}",
        "scope": "store_v2_orders store_v2_information_read_only",
        **changes,
    }


def token_answer(**changes: Any) -> dict[str, Any]:
    owner = {"id": 12345, "username": "owner@example.com", "email": "owner@example.com"}
    return {
        "access_token": "xxxxalphanumstringxxxx",
        "scope": "store_v2_orders store_v2_information_read_only",
        "user": owner,
        "owner": owner,
        "context": f"stores/{STORE}",
        "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
        **changes,
    }


def signed(secret: str = CLIENT_SECRET, algorithm: str = "HS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "aud": CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
        "jti": str(uuid.uuid4()),
        "sub": f"stores/{STORE}",
        "user": {"id": 9876543, "email": "owner@example.com", "locale": "en-US"},
        "owner": {"id": 9876543, "email": "owner@example.com"},
        "url": "/",
        "channel_id": None,
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not ...}
    return jwt.encode(claims, secret, algorithm=algorithm)


# ---- the schema and the connect page -------------------------------------------------------------


def test_the_install_schema_asks_for_the_store_hash_and_keeps_urls_for_operators():
    schema = PLATFORM.install_schema()
    assert schema.fields["store_hash"].metadata == {"ask": "Store hash"}
    assert schema.fields["api_base_url"].metadata == {"operator_only": True}
    assert schema.fields["login_base_url"].metadata == {"operator_only": True}
    assert schema.load({"store_hash": STORE}) == {"store_hash": STORE}
    assert "store_hash" in schema.validate({"store_hash": "../evil"})
    assert PLATFORM.install_steps == {"auth": ("GET",), "load": ("GET",), "uninstall": ("GET",)}


def test_begin_install_is_a_page_that_uses_nothing_up(config):
    port = FakePort(link())
    answer = PLATFORM.begin_install(link(), port, config)
    assert isinstance(answer, InstallAnswer)
    assert answer.status == 200 and answer.redirect is None
    assert "control panel" in answer.title and STORE in answer.message
    assert port.completed == [] and port.asked == []


# ---- the auth callback ---------------------------------------------------------------------------


def test_auth_exchanges_the_code_and_completes_the_links_partner(config, rsps):
    rsps.post(
        f"{LOGIN}/oauth2/token",
        json=token_answer(),
        match=[
            matchers.json_params_matcher(
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "code": "qr6h3thvbvag2ffq",
                    "scope": "store_v2_orders store_v2_information_read_only",
                    "grant_type": "authorization_code",
                    "redirect_uri": "http://127.0.0.1:8000/connect/bigcommerce/auth",
                    "context": f"stores/{STORE}",
                }
            )
        ],
    )
    port = FakePort(link(api_base_url=API_BASE, login_base_url=LOGIN))
    answer = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert answer.status == 200 and answer.title == "Connected", answer
    assert port.asked == [("bigcommerce", f"stores/{STORE}")]
    [(bound, connection, status, reason)] = port.completed
    assert bound == port.link and status == "connected" and reason == ""
    assert connection["store_hash"] == STORE
    assert connection["access_token"] == "xxxxalphanumstringxxxx"
    assert connection["api_base_url"] == API_BASE and connection["installed"] is True
    assert len(connection["gateway_token"]) >= 32
    assert PLATFORM.webhook_headers(connection) == {"X-Gateway-Secret": connection["gateway_token"]}
    assert PLATFORM.store_identity(connection) == f"stores/{STORE}"


@pytest.mark.parametrize(
    ("installer", "bound"), [("OPS@partner.example", True), ("x@y.example", False)]
)
def test_a_store_named_by_the_partner_binds_only_when_its_contact_installs(
    config, rsps, installer, bound
):
    """Store hashes are public: a link whose store the partner named itself (or typed on the
    page) takes an install only from the partner's contact (`user` or `owner` email)."""
    someone = {"id": 1, "username": installer, "email": installer}
    rsps.post(f"{LOGIN}/oauth2/token", json=token_answer(user=someone, owner=someone))
    port = FakePort(link(trusted=False, login_base_url=LOGIN))
    answer = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert (answer.status, len(port.completed)) == ((200, 1) if bound else (403, 0))


def test_auth_uses_the_login_setting_without_a_hint_and_a_fresh_gateway_token_each_time(
    config, rsps
):
    rsps.post("http://default-login.test/oauth2/token", json=token_answer())
    rsps.post("http://default-login.test/oauth2/token", json=token_answer())
    port = FakePort(link())
    PLATFORM.install_step("auth", request(**auth_args()), port, config)
    PLATFORM.install_step("auth", request(**auth_args()), port, config)
    first, second = (c[1] for c in port.completed)
    assert "api_base_url" not in first
    assert first["gateway_token"] != second["gateway_token"]


@pytest.mark.parametrize(
    "args",
    [
        auth_args(context="stores/zzz999"),  # no open link names this store
        auth_args(context="stores/../../x"),
        auth_args(context="abc123"),
        auth_args(code=""),
    ],
)
def test_auth_without_a_link_or_from_nowhere_exchanges_nothing_and_stores_nothing(config, args):
    port = FakePort(link())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        answer = PLATFORM.install_step("auth", request(**args), port, config)
        assert len(mock.calls) == 0
    assert answer.status in (400, 403) and port.completed == []
    if args["context"] == "stores/zzz999":
        assert "connect link" in answer.message
    assert port.counts == {"install_refused_bigcommerce": 1}


def test_a_refused_or_odd_token_answer_stores_nothing(config, rsps):
    port = FakePort(link(login_base_url=LOGIN))
    rsps.post(f"{LOGIN}/oauth2/token", status=400, json={"error": "invalid_grant"})
    refused = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert refused.status == 400 and "invalid_grant" in refused.message
    rsps.post(f"{LOGIN}/oauth2/token", json=token_answer(context="stores/other9"))
    foreign = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert foreign.status == 400
    rsps.post(f"{LOGIN}/oauth2/token", status=503)
    down = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert down.status == 502
    assert port.completed == []


def test_a_grant_short_of_the_orders_scope_completes_as_needs_reauth(config, rsps):
    rsps.post(f"{LOGIN}/oauth2/token", json=token_answer(scope="store_v2_orders_read_only"))
    port = FakePort(link(login_base_url=LOGIN))
    answer = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    [(_, _, status, reason)] = port.completed
    assert status == "needs_reauth" and "store_v2_orders" in reason
    assert answer.title == "Permissions missing"


def test_a_store_another_partner_has_is_refused(config, rsps):
    rsps.post(f"{LOGIN}/oauth2/token", json=token_answer())
    port = FakePort(link(login_base_url=LOGIN))
    port.refuse = "Another partner has connected this store."
    answer = PLATFORM.install_step("auth", request(**auth_args()), port, config)
    assert answer.status == 409 and "Another partner" in answer.message


def test_auth_without_the_apps_credentials_is_not_set_up(config):
    bare = replace(config, platform_settings={})
    answer = PLATFORM.install_step("auth", request(**auth_args()), FakePort(link()), bare)
    assert answer.status == 503


# ---- load and uninstall --------------------------------------------------------------------------


def test_a_good_jwt_is_read():
    claims = verify_signed_payload(signed(), CLIENT_SECRET, CLIENT_ID)
    assert claims is not None and claims["sub"] == f"stores/{STORE}"


@pytest.mark.parametrize(
    "token",
    [
        signed(secret="another-secret-0123456789abcdef0123456789"),
        signed(aud="another-app"),
        signed(iss="someone"),
        signed(exp=int(time.time()) - 3600, iat=int(time.time()) - 90000),
        signed(nbf=int(time.time()) + 3600),
        signed(sub="stores/../x"),
        signed(sub=...),
        signed(exp=...),
        signed(algorithm="HS512"),
        jwt.encode({"aud": CLIENT_ID, "iss": "bc", "sub": f"stores/{STORE}"}, None, "none"),
        "not-a-jwt",
        "",
    ],
    ids=[
        "bad-signature",
        "other-audience",
        "other-issuer",
        "expired",
        "not-yet",
        "odd-store",
        "no-sub",
        "no-exp",
        "other-alg",
        "alg-none",
        "garbage",
        "empty",
    ],
)
def test_a_bad_jwt_is_refused_and_changes_nothing(config, token):
    assert verify_signed_payload(token, CLIENT_SECRET, CLIENT_ID) is None
    partner = {"id": "ptr_1", "connection": {"installed": True}, "connection_status": "connected"}
    port = FakePort(partner=partner)
    for step in ("load", "uninstall"):
        answer = PLATFORM.install_step(step, request(signed_payload_jwt=token), port, config)
        assert answer.status == 401
    assert port.uninstalls == [] and port.asked == []


def test_uninstall_marks_the_installed_connection_uninstalled(config):
    partner = {"id": "ptr_1", "connection": {"installed": True}, "connection_status": "connected"}
    port = FakePort(partner=partner)
    answer = PLATFORM.install_step("uninstall", request(signed_payload_jwt=signed()), port, config)
    assert answer.status == 200 and answer.body == "{}"
    assert port.uninstalls == [("ptr_1", "the app was uninstalled in BigCommerce")]
    assert port.asked == [("bigcommerce", f"stores/{STORE}")]

    static = FakePort(partner={**partner, "connection": {"store_hash": STORE}})
    PLATFORM.install_step("uninstall", request(signed_payload_jwt=signed()), static, config)
    assert static.uninstalls == [], "a static API account is not the app's to uninstall"
    nobody = FakePort()
    answer = PLATFORM.install_step(
        "uninstall", request(signed_payload_jwt=signed()), nobody, config
    )
    assert answer.status == 200 and nobody.uninstalls == []


def test_load_shows_the_connection(config):
    partner = {"id": "ptr_1", "name": "Acme", "connection_status": "connected"}
    answer = PLATFORM.install_step(
        "load", request(signed_payload_jwt=signed()), FakePort(partner=partner), config
    )
    assert answer.status == 200 and "Acme" in answer.message
    gone = {**partner, "connection_status": "uninstalled"}
    answer = PLATFORM.install_step(
        "load", request(signed_payload_jwt=signed()), FakePort(partner=gone), config
    )
    assert answer.title == "Not connected" and "uninstalled" in answer.message


# ---- webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def adapter(redis, config) -> BigCommerceAdapter:
    connection = {"store_hash": STORE, "access_token": "tok", "api_base_url": API_BASE}
    return BigCommerceAdapter(connection, connect(config), config, "orders@acme.example")


def hook(hid: int, scope: str, active: bool = True, destination: str = ADDRESS, **extra) -> dict:
    return {
        "id": hid,
        "client_id": CLIENT_ID,
        "store_hash": STORE,
        "scope": scope,
        "destination": destination,
        "headers": {"X-Gateway-Secret": "g"},
        "is_active": active,
        "created_at": 1,
        "updated_at": 1,
        **extra,
    }


def listing(*hooks: dict, page: int = 1, pages: int = 1) -> dict:
    return {
        "data": list(hooks),
        "meta": {"pagination": {"total_pages": pages, "current_page": page}},
    }


def test_ensure_webhooks_creates_the_missing_and_re_enables_the_disabled(adapter, rsps):
    rsps.get(
        f"{HOOKS}?page=1&limit=250",
        json=listing(
            hook(1, "store/order/created"),
            hook(2, "store/order/statusUpdated", active=False),
            hook(3, "store/shipment/created", destination="https://elsewhere.example/hooks"),
        ),
    )
    rsps.put(
        f"{HOOKS}/2",
        json={"data": hook(2, "store/order/statusUpdated")},
        match=[matchers.json_params_matcher({"is_active": True})],
    )
    rsps.post(
        HOOKS,
        json={"data": hook(4, "store/shipment/created")},
        match=[
            matchers.json_params_matcher(
                {
                    "scope": "store/shipment/created",
                    "destination": ADDRESS,
                    "is_active": True,
                    "headers": {"X-Gateway-Secret": "g"},
                }
            )
        ],
    )
    checks = adapter.ensure_webhooks(
        ADDRESS,
        ["store/order/created", "store/order/statusUpdated", "store/shipment/created"],
        {"X-Gateway-Secret": "g"},
    )
    assert checks == [
        WebhookCheck("store/order/created", "active", False),
        WebhookCheck("store/order/statusUpdated", "disabled", True),
        WebhookCheck("store/shipment/created", "missing", True),
    ]
    assert rsps.calls[0].request.headers["X-Auth-Token"] == "tok"


def test_ensure_webhooks_reads_every_page_fixes_headers_and_reports_a_failed_repair(adapter, rsps):
    rsps.get(f"{HOOKS}?page=1&limit=250", json=listing(hook(1, "store/order/created"), pages=2))
    rsps.get(
        f"{HOOKS}?page=2&limit=250",
        json=listing(hook(2, "store/shipment/updated", headers={"X-Gateway-Secret": "old"})),
    )
    rsps.put(
        f"{HOOKS}/2",
        json={"data": hook(2, "store/shipment/updated")},
        match=[matchers.json_params_matcher({"headers": {"X-Gateway-Secret": "g"}})],
    )
    rsps.post(HOOKS, status=422, json={"status": 422, "title": "JSON data is missing or invalid"})
    checks = adapter.ensure_webhooks(
        ADDRESS,
        ["store/order/created", "store/shipment/updated", "store/shipment/created"],
        {"X-Gateway-Secret": "g"},
    )
    assert checks[:2] == [
        WebhookCheck("store/order/created", "active", False),
        WebhookCheck("store/shipment/updated", "active", True),
    ]
    assert checks[2].found == "missing" and not checks[2].repaired
    assert "422" in checks[2].error


def test_ensure_webhooks_raises_when_the_listing_fails(adapter, rsps):
    rsps.get(f"{HOOKS}?page=1&limit=250", status=401, json={"status": 401})
    with pytest.raises(PlatformError) as refused:
        adapter.ensure_webhooks(ADDRESS, ["store/order/created"], {})
    assert refused.value.permanent


def test_a_refused_token_on_a_repair_is_the_connections_trouble(adapter, rsps):
    rsps.get(f"{HOOKS}?page=1&limit=250", json={"data": [], "meta": {}})
    rsps.post(HOOKS, status=401, json={"status": 401})
    with pytest.raises(CredentialsRefused):
        adapter.ensure_webhooks(ADDRESS, ["store/order/created"], {"X-Gateway-Secret": "g"})


def test_an_empty_listing_creates_every_topic(adapter, rsps):
    rsps.get(f"{HOOKS}?page=1&limit=250", json={"data": [], "meta": {}})
    rsps.post(HOOKS, json={"data": hook(9, "store/order/created")})
    checks = adapter.ensure_webhooks(ADDRESS, ["store/order/created"], {"X-Gateway-Secret": "g"})
    assert checks == [WebhookCheck("store/order/created", "missing", True)]
    assert json.loads(rsps.calls[1].request.body)["headers"] == {"X-Gateway-Secret": "g"}


# ---- webhook checks ------------------------------------------------------------------------------


def webhook_call(secret: str | None, gateway_token: str | None = None) -> WebhookCall:
    raw = json.dumps({"scope": "store/order/created", "producer": f"stores/{STORE}"}).encode()
    headers: dict[str, str] = {}
    if secret is not None:
        msg_id, stamp = "msg_1", str(int(time.time()))
        digest = hmac.new(secret.encode(), f"{msg_id}.{stamp}.".encode() + raw, hashlib.sha256)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
        }
    if gateway_token is not None:
        headers["X-Gateway-Secret"] = gateway_token
    return WebhookCall(headers, raw, "application/json", dict, json.loads)


def test_an_installed_connection_verifies_with_the_apps_client_secret(config):
    installed = {"store_hash": STORE, "installed": True, "gateway_token": "g" * 43}
    assert PLATFORM.verify_webhook(installed, webhook_call(CLIENT_SECRET), config)
    assert not PLATFORM.verify_webhook(installed, webhook_call("w" * 32), config)
    assert PLATFORM.verify_webhook(installed, webhook_call(None, "g" * 43), config)
    assert not PLATFORM.verify_webhook(installed, webhook_call(None, "h" * 43), config)

    static = {"store_hash": STORE, "webhook_secret": "w" * 32, "gateway_token": "g" * 43}
    assert PLATFORM.verify_webhook(static, webhook_call("w" * 32), config)
    assert not PLATFORM.verify_webhook(static, webhook_call(CLIENT_SECRET), config)
    assert PLATFORM.verify_webhook(static, webhook_call(None, "g" * 43), config)


def test_the_module_keeps_its_login_default():
    assert bigcommerce.LOGIN_URL == "https://login.bigcommerce.com"


# ---- a revoked token -----------------------------------------------------------------------------


class RecordingPort:
    """The store's port, with the connection failures it was told of recorded."""

    def __init__(self, store) -> None:
        self.store = store
        self.failed: list[tuple[str, str]] = []

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def connection_failed(self, partner_id: str, reason: str) -> None:
        self.failed.append((partner_id, reason))


def test_a_refused_token_asks_for_reauth_and_holds_the_work(redis, config, rsps):
    port = RecordingPort(connect(config))
    partner = {
        "id": "ptr_1",
        "email": "orders@acme.example",
        "connection": {"store_hash": STORE, "access_token": "revoked", "api_base_url": API_BASE},
    }
    partner = {**partner, "platform": "bigcommerce", "connection_status": "connected"}
    # A BigCommerce token does not expire (AU: "semi-permanent"): one refused was revoked (the
    # app uninstalled without its callback reaching us, its scopes or the owner's email
    # changed, the API account deleted). The guarded adapter (the core's) holds the work.
    adapter = adapter_for(partner, port, config)
    rsps.get(f"{API_BASE}/stores/{STORE}/v2/orders/100", status=401, json={"status": 401})
    with pytest.raises(ConnectionDown) as down:
        adapter.read_order("100")
    assert down.value.partner_id == "ptr_1" and down.value.status == "needs_reauth"
    [(partner_id, reason)] = port.failed
    assert partner_id == "ptr_1" and "401" in reason

    rsps.get(f"{API_BASE}/stores/{STORE}/v2/orders/101", status=403, json={"status": 403})
    with pytest.raises(PlatformError) as refused:
        adapter.read_order("101")
    assert refused.value.permanent and not isinstance(refused.value, ConnectionDown)
    assert len(port.failed) == 1
