"""A platform is one module: registering a throwaway one at test time is all the webhook route,
the API's connection validation and /openapi.json need to serve it (README "Adding a platform")."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from conftest import admin_headers
from marshmallow import fields
from rq import Queue

from gateway import platforms
from gateway.jobs import INGEST_ORDER, QUEUE, job_queue
from gateway.platforms.base import INGEST_ORDER as INGEST
from gateway.platforms.base import Platform, WebhookCall
from gateway.validation import StrictSchema, text


class AcmeConnection(StrictSchema):
    market_id = fields.Integer(required=True, strict=True)
    signing_key = text(100, required=True, load_only=True)


class Acme(Platform):
    """A made-up marketplace: hex HMAC in X-Acme-Signature, the store in X-Acme-Market."""

    name = "acmemarket"
    label = "Acme Market"
    connection_schema = AcmeConnection
    topics = {"order.placed": INGEST}
    webhook_auth = "X-Acme-Signature (hex HMAC-SHA256 of the body); store by X-Acme-Market"

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        return str(connection["market_id"])

    def webhook_store(self, call: WebhookCall) -> str | None:
        return call.header("X-Acme-Market") or None

    def verify_webhook(self, connection: dict[str, Any], call: WebhookCall, config) -> bool:
        expected = hmac.new(connection["signing_key"].encode(), call.raw, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), call.header("X-Acme-Signature"))

    def delivery_id(self, call: WebhookCall) -> str | None:
        return call.header("X-Acme-Delivery") or None

    def topic(self, call: WebhookCall) -> str:
        return str(call.body().get("event", ""))

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        ref = call.body().get("order_number")
        return None if ref is None else str(ref)


@pytest.fixture
def acme(monkeypatch):
    monkeypatch.setitem(platforms.REGISTRY, Acme.name, Acme())


def create(client, connection: dict) -> Any:
    body = {"name": "Acme seller", "email": "ops@acme.example", "platform": "acmemarket"}
    return client.post(
        "/api/v1/partners", json={**body, "connection": connection}, headers=admin_headers()
    )


def deliver(client, body: dict, key: str = "k3y", delivery: str = "d-1", market: str = "42"):
    raw = json.dumps(body).encode()
    headers = {
        "X-Acme-Market": market,
        "X-Acme-Delivery": delivery,
        "X-Acme-Signature": hmac.new(key.encode(), raw, hashlib.sha256).hexdigest(),
    }
    return client.post(
        "/webhooks/acmemarket", data=raw, headers=headers, content_type="application/json"
    )


def test_an_unregistered_platform_is_refused_everywhere(client, redis):
    assert create(client, {"market_id": 42, "signing_key": "k3y"}).status_code == 422
    assert deliver(client, {"event": "order.placed", "order_number": 7}).status_code == 404
    assert "acmemarket" not in client.get("/openapi.json").get_data(as_text=True)


def test_the_api_validates_its_connection_with_its_schema(acme, client, redis):
    refused = create(client, {"market_id": "forty-two", "signing_key": "k3y", "extra": 1})
    assert refused.status_code == 422
    details = refused.get_json()["error"]["details"]
    assert set(details) == {"connection.market_id", "connection.extra"}

    created = create(client, {"market_id": 42, "signing_key": "k3y"})
    assert created.status_code == 201
    assert created.get_json()["connection"] == {"market_id": 42}  # the key is load-only
    assert create(client, {"market_id": 42, "signing_key": "other"}).status_code == 409


def test_the_webhook_route_verifies_dedupes_and_enqueues_its_topics(acme, client, redis):
    partner = create(client, {"market_id": 42, "signing_key": "k3y"}).get_json()
    placed = {"event": "order.placed", "order_number": 7}

    assert deliver(client, placed, key="wrong").status_code == 401
    assert deliver(client, placed, market="43").status_code == 401
    assert Queue(QUEUE, connection=redis).count == 0

    assert deliver(client, placed).get_json() == {"status": "accepted"}
    assert deliver(client, placed).get_json() == {"status": "duplicate"}
    other = {"event": "order.refunded", "order_number": 7}
    assert deliver(client, other, delivery="d-2").get_json() == {"status": "ignored"}

    (job,) = job_queue(redis).jobs
    assert job.func_name == INGEST_ORDER
    assert job.args == [partner["id"], "7"]


def test_openapi_lists_it(acme, client, redis):
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert "acmemarket" in schemas["PartnerIn"]["properties"]["platform"]["enum"]
    assert set(schemas["acmemarket_connection"]["properties"]) == {"market_id", "signing_key"}
    webhook = document["paths"]["/webhooks/acmemarket"]["post"]
    assert "X-Acme-Signature" in webhook["summary"]
    assert "order.placed" in webhook["description"]
    # Its fulfillments come from its store (the default): a fulfillment's source may name it.
    assert "acmemarket" in schemas["Fulfillment"]["properties"]["source"]["enum"]
