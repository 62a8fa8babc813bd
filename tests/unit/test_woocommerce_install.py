"""Connecting a WooCommerce store: the key flow's URL and callback, and the webhooks the gateway
keeps registered (platforms/woocommerce.md; WooCommerce's class-wc-auth.php)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.platforms.woocommerce import (
    HookPlan,
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
