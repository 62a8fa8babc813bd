"""Connecting a WooCommerce store: the key flow's URL and callback, and the webhooks the gateway
keeps registered (platforms/woocommerce.md; WooCommerce's class-wc-auth.php)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from gateway.platforms.base import (
    ConnectLink,
    InstallAnswer,
    InstallRefused,
    InstallRequest,
    PlatformError,
    WebhookCheck,
)
from gateway.platforms.woocommerce import (
    PAGE_SIZE,
    HookPlan,
    WooCommerce,
    WooCommerceAdapter,
    authorize_url,
    hook_name,
    plan_webhooks,
    read_key_callback,
    secret_mark,
)

PUBLIC = "https://gateway.example"
ADDRESS = f"{PUBLIC}/webhooks/woocommerce"
SECRET = "s" * 43
KEY = "ck_" + "a" * 40
KEY_SECRET = "cs_" + "b" * 40


def callback(**changes) -> bytes:
    body = {
        "key_id": 7,
        "user_id": "nonce-1",
        "consumer_key": KEY,
        "consumer_secret": KEY_SECRET,
        "key_permissions": "read_write",
        **changes,
    }
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_the_authorize_url_names_our_app_scope_nonce_and_urls():
    url = authorize_url("https://Shop.Example/", "nonce-1", PUBLIC + "/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://shop.example/wc-auth/v1/authorize"
    )
    assert parse_qs(parts.query) == {
        "app_name": ["Fulfillment gateway"],
        "scope": ["read_write"],
        "user_id": ["nonce-1"],
        "return_url": [f"{PUBLIC}/connect/done"],
        "callback_url": [f"{PUBLIC}/connect/woocommerce/callback"],
    }
    assert "+" not in parts.query, "spaces as %20: the URL is all encoded (WRD notes)"


def test_a_store_in_a_subdirectory_keeps_its_path():
    url = authorize_url("https://example.com/shop", "n", PUBLIC)
    assert url.startswith("https://example.com/shop/wc-auth/v1/authorize?")


def test_the_key_callback_is_read():
    assert read_key_callback(callback()) == {
        "user_id": "nonce-1",
        "key_id": "7",
        "consumer_key": KEY,
        "consumer_secret": KEY_SECRET,
    }
    assert read_key_callback(callback(user_id=123))["user_id"] == "123"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (callback(user_id=None), "no user_id"),
        (callback(user_id=""), "no user_id"),
        (callback(consumer_key="pk_x" * 8), "no consumer_key"),
        (callback(consumer_secret=None), "no consumer_secret"),
        (callback(key_permissions="read"), "not read_write"),
        (callback(key_permissions="write"), "not read_write"),
        (b"{" + b" " * 5000 + b"}", "too large"),
    ],
)
def test_a_callback_that_is_no_read_write_key_is_refused(raw, reason):
    with pytest.raises(ValueError, match=reason):
        read_key_callback(raw)


def hook(hook_id, topic, status="active", url=ADDRESS, name=None):
    return {
        "id": hook_id,
        "topic": topic,
        "status": status,
        "delivery_url": url,
        "name": name if name is not None else hook_name(topic, SECRET),
    }


def test_plans_create_missing_enable_disabled_and_paused_keep_active():
    listed = [
        hook(1, "order.created"),
        hook(2, "order.updated", "disabled"),
        hook(3, "order.deleted", "paused"),
        hook(4, "product.created", url="https://elsewhere.example/hook"),
    ]
    topics = ["order.created", "order.updated", "order.deleted", "product.created"]
    assert plan_webhooks(listed, ADDRESS, topics, SECRET) == [
        HookPlan("order.created", "active", "", 1),
        HookPlan("order.updated", "disabled", "enable", 2),
        HookPlan("order.deleted", "disabled", "enable", 3),
        HookPlan("product.created", "missing", "create"),
    ]


def test_an_active_hook_of_ours_with_another_secret_gets_ours():
    listed = [
        hook(5, "order.created", "disabled"),
        hook(6, "order.created", name="Webhook created on Mar 01, 2026 @ 10:00 AM"),
        hook(7, "order.updated", name=hook_name("order.updated", "an earlier install's")),
    ]
    plans = plan_webhooks(listed, ADDRESS + "/", ["order.created", "order.updated"], SECRET)
    assert plans == [
        HookPlan("order.created", "active", "secret", 6),
        HookPlan("order.updated", "active", "secret", 7),
    ]


def test_the_secret_mark_tells_secrets_apart_without_showing_them():
    assert secret_mark(SECRET) != secret_mark(SECRET + "x")
    assert SECRET[:8] not in hook_name("order.created", SECRET)


# ---- the install hooks, with a stand-in for the gateway's side (InstallPort) -------------------

SITE = "https://shop.example"
LINK = ConnectLink("link-1", "partner-1", "woocommerce", {"store_url": SITE + "/"})


class Port:
    """InstallPort: single-use nonces, and what `complete` was given."""

    def __init__(self, refuse: str = "") -> None:
        self.states: dict[str, tuple[ConnectLink, dict]] = {}
        self.completed: list[tuple[ConnectLink, dict]] = []
        self.counted: list[str] = []
        self.refuse = refuse

    def new_state(self, link, data, seconds=3600):
        nonce = f"nonce-{len(self.states) + 1}"
        self.states[nonce] = (link, data)
        return nonce

    def take_state(self, nonce):
        return self.states.pop(nonce, None)

    def complete(self, link, connection, status="connected", reason=""):
        if self.refuse:
            raise InstallRefused(self.refuse)
        self.completed.append((link, connection))
        return {"id": link.partner_id}

    def count(self, name, amount=1):
        self.counted.append(name)


def post(raw: bytes) -> InstallRequest:
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    return InstallRequest("POST", {}, b"", raw, headers)


CONFIG = SimpleNamespace(public_url=PUBLIC, http_timeout=5.0)


def begun(port: Port) -> str:
    answer = WooCommerce().begin_install(LINK, port, CONFIG)
    assert answer.status == 302 and answer.redirect
    return parse_qs(urlsplit(answer.redirect).query)["user_id"][0]


def test_begin_install_sends_the_owner_to_the_stores_grant_page():
    port = Port()
    answer = WooCommerce().begin_install(LINK, port, CONFIG)
    nonce = parse_qs(urlsplit(answer.redirect).query)["user_id"][0]
    assert answer.redirect == authorize_url(SITE, nonce, PUBLIC)
    assert port.states[nonce] == (LINK, {"store_url": SITE})


@responses.activate
def test_the_stores_key_callback_connects_the_partner_and_is_answered_exactly_200():
    port = Port()
    nonce = begun(port)
    keys_open_the_store()

    answer = WooCommerce().install_step("callback", post(callback(user_id=nonce)), port, CONFIG)

    assert answer == InstallAnswer(200, body="")
    ((link, connection),) = port.completed
    assert link == LINK
    assert connection == {
        "store_url": SITE,
        "consumer_key": KEY,
        "consumer_secret": KEY_SECRET,
        "webhook_secret": connection["webhook_secret"],
        "installed": True,
    }
    assert len(connection["webhook_secret"]) >= 32
    static = {k: v for k, v in connection.items() if k != "installed"}
    assert WooCommerce.connection_schema().load(static), "a valid connection, secrets and all"


@responses.activate
def test_an_unknown_or_used_user_id_is_refused_and_nothing_is_kept():
    port = Port()
    nonce = begun(port)
    keys_open_the_store()
    woo = WooCommerce()
    forged = woo.install_step("callback", post(callback(user_id="made-up")), port, CONFIG)
    assert forged.status == 403 and port.completed == []
    assert woo.install_step("callback", post(callback(user_id=nonce)), port, CONFIG).status == 200
    again = woo.install_step("callback", post(callback(user_id=nonce)), port, CONFIG)
    assert again.status == 403 and len(port.completed) == 1


@pytest.mark.parametrize("permissions", ["read", "write"])
def test_a_key_short_of_read_write_is_refused_so_the_store_deletes_it(permissions):
    port = Port()
    nonce = begun(port)
    raw = callback(user_id=nonce, key_permissions=permissions)
    answer = WooCommerce().install_step("callback", post(raw), port, CONFIG)
    assert answer.status == 400 and answer.status != 200
    assert port.completed == [] and "install_refused_woocommerce" in port.counted


@responses.activate
def test_a_store_another_partner_has_is_refused():
    port = Port(refuse="Another partner of the marketplace is connected to this store.")
    nonce = begun(port)
    keys_open_the_store()
    answer = WooCommerce().install_step("callback", post(callback(user_id=nonce)), port, CONFIG)
    assert answer.status == 409 and "Another partner" in answer.body


@responses.activate
def test_keys_that_do_not_open_the_store_claim_nothing():
    """A made-up key pair, or one from another store, posted with a valid user_id."""
    port = Port()
    nonce = begun(port)
    responses.add(
        responses.GET,
        f"{SITE}/wp-json/wc/v3/webhooks",
        status=401,
        json={
            "code": "woocommerce_rest_authentication_error",
            "message": "Consumer key is invalid.",
        },
    )
    answer = WooCommerce().install_step("callback", post(callback(user_id=nonce)), port, CONFIG)
    assert answer.status == 403 and port.completed == []
    assert "install_refused_woocommerce" in port.counted


def keys_open_the_store() -> None:
    """The store answers the posted keys' first call (the callback tries them)."""
    responses.add(responses.GET, f"{SITE}/wp-json/wc/v3/webhooks", json=[])


def test_no_other_step():
    assert WooCommerce().install_steps == {"callback": ("POST",)}
    assert WooCommerce().install_step("auth", post(b"{}"), Port(), CONFIG).status == 404


def test_the_install_schema_asks_for_the_store_address():
    fields = WooCommerce.install_schema().fields
    assert fields["store_url"].metadata == {"ask": "Store address"}
    assert WooCommerce.install_schema().load({}) == {}
    with pytest.raises(Exception, match="store_url"):
        WooCommerce.install_schema().load({"store_url": "https://shop.example/?x=1"})


# ---- ensure_webhooks against a mocked store ---------------------------------------------------

HOOKS = f"{SITE}/wp-json/wc/v3/webhooks"


class Counter:
    def count(self, name, amount=1):
        pass


def adapter(secret: str = SECRET) -> WooCommerceAdapter:
    connection = {
        "store_url": SITE,
        "consumer_key": KEY,
        "consumer_secret": KEY_SECRET,
        "webhook_secret": secret,
    }
    return WooCommerceAdapter(connection, Counter(), CONFIG)


def listing(*hooks, page=1):
    responses.get(
        HOOKS,
        match=[matchers.query_param_matcher({"per_page": str(PAGE_SIZE), "page": str(page)})],
        json=list(hooks),
    )


@responses.activate
def test_ensure_webhooks_creates_the_missing_hooks_with_the_connections_secret():
    listing(hook(1, "order.created", url="https://other.example/hook"))
    made = [
        responses.post(
            HOOKS,
            match=[
                matchers.json_params_matcher(
                    {
                        "name": hook_name(topic, SECRET),
                        "topic": topic,
                        "delivery_url": ADDRESS,
                        "secret": SECRET,
                        "status": "active",
                    }
                )
            ],
            json={"id": 10 + i, "topic": topic, "status": "active"},
            status=201,
        )
        for i, topic in enumerate(["order.created", "order.updated"])
    ]

    checks = adapter().ensure_webhooks(ADDRESS, ["order.created", "order.updated"], {})

    assert checks == [
        WebhookCheck("order.created", "missing", repaired=True),
        WebhookCheck("order.updated", "missing", repaired=True),
    ]
    assert [m.call_count for m in made] == [1, 1]


@responses.activate
def test_ensure_webhooks_enables_disabled_and_paused_hooks_and_leaves_active_ones():
    listing(
        hook(1, "order.created"),
        hook(2, "order.updated", "disabled"),
        hook(3, "order.deleted", "paused"),
    )
    enabled = [
        responses.put(
            f"{HOOKS}/{hook_id}",
            match=[
                matchers.json_params_matcher(
                    {"name": hook_name(topic, SECRET), "secret": SECRET, "status": "active"}
                )
            ],
            json={"id": hook_id, "status": "active"},
        )
        for hook_id, topic in ((2, "order.updated"), (3, "order.deleted"))
    ]

    checks = adapter().ensure_webhooks(
        ADDRESS, ["order.created", "order.updated", "order.deleted"], {}
    )

    assert [(c.topic, c.found, c.repaired, c.state) for c in checks] == [
        ("order.created", "active", False, "active"),
        ("order.updated", "disabled", True, "active"),
        ("order.deleted", "disabled", True, "active"),
    ]
    assert [e.call_count for e in enabled] == [1, 1]
    assert len(responses.calls) == 3, "nothing done to the active hook"


@responses.activate
def test_an_active_hook_made_with_another_secret_gets_the_connections():
    listing(hook(4, "order.created", name="Order created (made by hand)"))
    fixed = responses.put(
        f"{HOOKS}/4",
        match=[
            matchers.json_params_matcher(
                {"name": hook_name("order.created", SECRET), "secret": SECRET}
            )
        ],
        json={"id": 4, "status": "active"},
    )
    (check,) = adapter().ensure_webhooks(ADDRESS, ["order.created"], {})
    assert check == WebhookCheck("order.created", "active") and fixed.call_count == 1


@responses.activate
def test_every_page_of_hooks_is_read():
    others = [hook(100 + i, "product.updated", url=f"https://x.example/{i}") for i in range(100)]
    listing(*others, page=1)
    listing(hook(7, "order.created"), page=2)
    (check,) = adapter().ensure_webhooks(ADDRESS, ["order.created"], {})
    assert check == WebhookCheck("order.created", "active")


@responses.activate
def test_a_refused_repair_is_the_checks_error_and_a_refused_listing_raises():
    listing()
    responses.post(
        HOOKS,
        status=401,
        json={
            "code": "woocommerce_rest_authentication_error",
            "message": "The API key provided does not have write permissions.",
            "data": {"status": 401},
        },
    )
    (check,) = adapter().ensure_webhooks(ADDRESS, ["order.created"], {})
    assert check.found == "missing" and not check.repaired and "401" in check.error
    assert check.state == "missing"

    responses.replace(responses.GET, HOOKS, status=401, json={})
    with pytest.raises(PlatformError):
        adapter().ensure_webhooks(ADDRESS, ["order.created"], {})
