"""Partners' secrets at rest: encrypted in Redis under ENCRYPTION_KEYS (the first encrypts, all
decrypt), plain records from before still read, and `flask secrets rotate` moving every record
to the first key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import admin_headers
from cryptography.fernet import Fernet
from flask.testing import FlaskCliRunner
from marshmallow import fields

from gateway import create_app, platforms
from gateway.platforms.base import Platform
from gateway.settings import DEV_ENCRYPTION_KEY, Settings
from gateway.store import key
from gateway.validation import StrictSchema, text


class VaultConnection(StrictSchema):
    account = fields.String(required=True)
    api_secret = text(100, required=True, load_only=True)


class Vault(Platform):
    """A made-up platform: its secret is known only by being load_only in its schema."""

    name = "vaultmarket"
    label = "Vault Market"
    connection_schema = VaultConnection

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        return connection["account"]


CONNECTIONS = {
    "shopify": {
        "shop_domain": "acme.myshopify.com",
        "access_token": "shpat_secret-token-0001",
        "webhook_secret": "shopify-secret-0002",
    },
    "bigcommerce": {
        "store_hash": "abc123",
        "access_token": "bc-secret-token-0003",
        "webhook_secret": "bc-webhook-secret-0004",
    },
    "woocommerce": {
        "store_url": "https://shop.example.com",
        "consumer_key": "ck_secret-key-0005",
        "consumer_secret": "cs_consumer-secret-0006",
        "webhook_secret": "woo-webhook-secret-0007",
    },
    "vaultmarket": {"account": "acct-1", "api_secret": "vault-secret-0008"},
}


def every_value(redis) -> bytes:
    """Every key and every value in Redis, whatever its type, as one text to search."""
    readers = {
        b"string": lambda k: [redis.get(k)],
        b"hash": lambda k: [b for pair in redis.hgetall(k).items() for b in pair],
        b"list": lambda k: redis.lrange(k, 0, -1),
        b"set": lambda k: list(redis.smembers(k)),
        b"zset": lambda k: [m for m, _ in redis.zrange(k, 0, -1, withscores=True)],
        b"stream": lambda k: [repr(entry).encode() for entry in redis.xrange(k)],
    }
    parts = []
    for name in redis.scan_iter():
        parts += [name, *readers[redis.type(name)](name)]
    return b"\n".join(parts)


def create(client, platform: str, connection: dict, **extra) -> dict:
    body = {"name": platform, "email": "ops@example.com", "platform": platform, **extra}
    answer = client.post(
        "/api/v1/partners", json={**body, "connection": connection}, headers=admin_headers()
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def store_with(keys: str):
    """A store of an app whose ENCRYPTION_KEYS are `keys`, and that app."""
    app = create_app(Settings.from_env(encryption_keys=keys, flask={"TESTING": True}))
    return app.extensions["gateway.store"], app


@pytest.fixture
def vault(monkeypatch):
    monkeypatch.setitem(platforms.REGISTRY, Vault.name, Vault())


def test_no_secret_is_in_redis_in_the_clear(client, redis, app, vault):
    created = [create(client, platform, connection) for platform, connection in CONNECTIONS.items()]
    created.append(create(client, "none", {}, callback_url="https://buyer.example/events"))
    secrets = [v for c in CONNECTIONS.values() for v in c.values() if "secret" in v]
    secrets += [partner["event_signing_secret"] for partner in created]
    secrets += [partner["api_key"] for partner in created]
    # and what the gateway makes: BigCommerce's unsigned-hook token, shown once
    secrets += [v for partner in created for v in partner["webhook_headers"].values()]
    assert len(secrets) == 8 + 5 + 5 + 1

    stored = every_value(redis)
    assert b"acme.myshopify.com" in stored  # what isn't secret stays readable
    for secret in secrets:
        assert secret.encode() not in stored, secret

    store = app.extensions["gateway.store"]
    for partner, connection in zip(created, CONNECTIONS.values(), strict=False):
        read = store.partner(partner["id"])
        headers = partner["webhook_headers"]
        made = {"gateway_token": headers["X-Gateway-Secret"]} if headers else {}
        assert read["connection"] == {**connection, **made}
        assert read["event_signing_secret"] == partner["event_signing_secret"]


def test_a_plain_record_from_before_is_read_then_encrypted(client, redis, app):
    plain = {
        "id": "ptr_before",
        "name": "Before",
        "email": "ops@example.com",
        "platform": "woocommerce",
        "connection": CONNECTIONS["woocommerce"],
        "callback_url": None,
        "event_signing_secret": "whsec_before-0009",
        "created_at": "2026-01-01T00:00:00Z",
    }
    redis.set(key("partner", "ptr_before"), json.dumps(plain))

    assert app.extensions["gateway.store"].partner("ptr_before") == plain
    stored = every_value(redis)
    for secret in (
        "ck_secret-key-0005",
        "cs_consumer-secret-0006",
        "woo-webhook-secret-0007",
        "whsec_before-0009",
    ):
        assert secret.encode() not in stored
    assert app.extensions["gateway.store"].partner("ptr_before") == plain


def test_rotation_reencrypts_every_partner_with_the_first_key(client, redis, gateway_env):
    old, new = gateway_env["ENCRYPTION_KEYS"], Fernet.generate_key().decode()
    partner = create(client, "shopify", CONNECTIONS["shopify"])
    redis.set(key("partner", "ptr_plain"), json.dumps({**partner, "id": "ptr_plain"}))

    both, app = store_with(f"{new},{old}")
    assert both.partner(partner["id"])["connection"] == CONNECTIONS["shopify"]
    result = FlaskCliRunner(app).invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "2 partners' secrets encrypted with the first key" in result.output

    new_only, _ = store_with(new)
    assert new_only.partner(partner["id"])["connection"] == CONNECTIONS["shopify"]
    assert new_only.partner("ptr_plain")["event_signing_secret"] == partner["event_signing_secret"]
    old_only, _ = store_with(old)
    with pytest.raises(RuntimeError, match=partner["id"]):
        old_only.partner(partner["id"])


def test_rotate_names_the_partners_no_key_decrypts(client, redis):
    partner = create(client, "none", {})
    _, app = store_with(Fernet.generate_key().decode())
    result = FlaskCliRunner(app).invoke(args=["secrets", "rotate"])
    assert result.exit_code == 1
    assert partner["id"] in result.output


def test_production_refuses_to_start_without_encryption_keys(redis):
    https = {
        "PUBLIC_URL": "https://gateway.example",
        "SECRET_KEY": "s" * 40,
        "GATEWAY_ADMIN_TOKEN": "t" * 40,  # production needs one too (issue 11)
    }
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        Settings.from_env(https)
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        Settings.from_env({**https, "ENCRYPTION_KEYS": DEV_ENCRYPTION_KEY})
    # the loopback but not http: production too
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        Settings.from_env({"PUBLIC_URL": "https://127.0.0.1:8443"})
    assert Settings.from_env({**https, "ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    assert Settings.from_env({"PUBLIC_URL": "http://localhost:8000"}).development


def test_a_malformed_key_stops_the_app_without_showing_it(redis):
    with pytest.raises(ValueError, match="Fernet keys") as refused:
        create_app(Settings.from_env(encryption_keys="not-a-key-hunter2"))
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="Fernet keys"):
        create_app(Settings.from_env(encryption_keys=" , "))
