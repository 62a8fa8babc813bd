"""Store connections, whatever the platform: connect links and their page, an installation
bound to its link, statuses, work held while a store can't be used and resumed once it is
connected again, one email to the owner, webhook registration, and what a platform says about
the connection (an uninstall, privacy requests).

A made-up platform (Bazaar) registered at test time runs the install hooks, so these tests
show the core alone; each real platform's flow runs against its simulator in tests/e2e. The
jobs are run in this process (a worker could not import Bazaar)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from email import message_from_string
from email.policy import default
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses as responses_lib
from conftest import admin_headers, bearer
from marshmallow import fields
from rq import Queue

from gateway import platforms
from gateway.jobs import CONNECTION_EVENT, CONNECTIONS_QUEUE, REGISTER_WEBHOOKS, job_queue
from gateway.jobs.connections import (
    connection_event,
    register_webhooks,
    resume_connection,
    tell_owner_to_reconnect,
)
from gateway.jobs.routing import route_order
from gateway.platforms.base import (
    INGEST_ORDER,
    REDACT_CUSTOMER,
    REDACT_SHOP,
    SYNC_SELLER,
    UNINSTALLED_EVENT,
    ConnectionEvent,
    CreatedOrder,
    InstallAnswer,
    Platform,
    WebhookCall,
    WebhookCheck,
)
from gateway.validation import StrictSchema, secret, text, web_url

PUBLIC = "http://127.0.0.1:8000"
APP_SECRET = "bazaar-app-secret-for-tests"


class BazaarConnection(StrictSchema):
    store_id = text(40, required=True)
    token = secret(required=True)


class BazaarInstall(StrictSchema):
    store_id = fields.String(
        metadata={"ask": "Store id"},
        validate=lambda v: bool(re.fullmatch(r"[a-z0-9-]{3,40}", v)) or _bad("3-40 of a-z 0-9 -"),
    )
    api_base_url = web_url(metadata={"operator_only": True})


def _bad(message: str):
    from marshmallow import ValidationError

    raise ValidationError(message)


class BazaarStore:
    """The made-up store's side: hooks it has, orders created in it."""

    def __init__(self) -> None:
        self.hooks: dict[str, str] = {}  # topic -> "active" | "disabled"
        self.created: list[str] = []


STORES: dict[str, BazaarStore] = {}


class BazaarAdapter:
    def __init__(self, partner: dict[str, Any]) -> None:
        self.store = STORES.setdefault(partner["connection"]["store_id"], BazaarStore())

    def create_order(self, order) -> CreatedOrder:
        self.store.created.append(order.id)
        return CreatedOrder(f"B-{len(self.store.created)}", {})

    def ensure_webhooks(self, address, topics, headers) -> list[WebhookCheck]:
        checks = []
        for topic in topics:
            found = self.store.hooks.get(topic, "missing")
            self.store.hooks[topic] = "active"
            checks.append(WebhookCheck(topic, found, repaired=found != "active"))
        return checks


class Bazaar(Platform):
    """A marketplace whose app is installed by a redirect with a `state` and a `code`."""

    name = "bazaar"
    label = "Bazaar"
    connection_schema = BazaarConnection
    install_schema = BazaarInstall
    install_steps = {"callback": ("GET",)}
    topics = {"order.placed": INGEST_ORDER, "shipment.made": SYNC_SELLER}
    lifecycle_topics = ("app.removed",)

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        return connection.get("store_id")

    def adapter(self, partner, port, config) -> BazaarAdapter:
        return BazaarAdapter(partner)

    def begin_install(self, link, port, config) -> InstallAnswer:
        state = port.new_state(link, {"store_id": link.hints["store_id"]})
        base = link.hints.get("api_base_url") or "https://bazaar.example"
        return InstallAnswer(
            redirect=f"{base}/authorize?store={link.hints['store_id']}&state={state}"
        )

    def install_step(self, step, request, port, config) -> InstallAnswer:
        bound = port.take_state(request.args.get("state", ""))
        if bound is None:
            return InstallAnswer(403, title="Refused", message="Unknown state.")
        link, data = bound
        port.complete(
            link, {"store_id": data["store_id"], "token": request.args["code"], "installed": True}
        )
        return InstallAnswer(title="Connected", message="Your store is connected.")

    def webhook_store(self, call: WebhookCall) -> str | None:
        return call.header("X-Bazaar-Store") or None

    def verify_webhook(self, connection, call, config) -> bool:
        expected = hmac.new(APP_SECRET.encode(), call.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, call.header("X-Bazaar-Signature"))

    def delivery_id(self, call: WebhookCall) -> str | None:
        return call.header("X-Bazaar-Delivery") or None

    def topic(self, call: WebhookCall) -> str:
        return str(call.body().get("event", ""))

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        return str(call.body().get("order", "")) or None

    def connection_event(self, topic: str, call: WebhookCall) -> ConnectionEvent | None:
        return ConnectionEvent(UNINSTALLED_EVENT) if topic == "app.removed" else None


@pytest.fixture
def bazaar(monkeypatch):
    STORES.clear()
    monkeypatch.setitem(platforms.REGISTRY, Bazaar.name, Bazaar())


def make_partner(client, platform: str = "bazaar", **extra) -> dict:
    body = {"name": f"{platform} partner", "email": f"ops@{platform}.example", "platform": platform}
    answer = client.post("/api/v1/partners", json={**body, **extra}, headers=admin_headers())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def connect_link(client, partner: dict, body: dict | None = None, headers=None) -> Any:
    return client.post(
        f"/api/v1/partners/{partner['id']}/connect",
        json=body,
        headers=headers or admin_headers(),
    )


def local(url: str) -> str:
    return url.removeprefix(PUBLIC)


def install(client, partner: dict, store_id: str = "corner-shop", code: str = "c0de") -> Any:
    """The owner opens a link naming the store, approves on Bazaar, comes back."""
    url = connect_link(client, partner, {"store_id": store_id}).get_json()["url"]
    sent = client.get(local(url))
    assert sent.status_code == 302, sent.get_data(as_text=True)
    state = parse_qs(urlsplit(sent.headers["Location"]).query)["state"][0]
    return client.get(f"/connect/bazaar/callback?state={state}&code={code}")


def partner_up(client, buyer: dict, seller: dict) -> Any:
    """The partnership in which the buyer's MUG is the seller's AC-1."""
    body = {"buyer_id": buyer["id"], "seller_id": seller["id"]}
    body["skus"] = [{"buyer_sku": "MUG", "seller_sku": "AC-1"}]
    return client.post("/api/v1/partnerships", json=body, headers=admin_headers())


def installed_seller_and_buyer(client) -> tuple[dict, dict]:
    """A seller whose store is connected through the flow, and its buyer without a platform."""
    seller = make_partner(client)
    install(client, seller)
    buyer = make_partner(client, "none")
    partner_up(client, buyer, seller)
    return seller, buyer


def upkeep_jobs(redis) -> list:
    return Queue(CONNECTIONS_QUEUE, connection=redis, serializer=job_queue(redis).serializer).jobs


def test_a_store_partner_may_be_created_without_a_connection(bazaar, client, redis):
    partner = make_partner(client, connection=None)
    shown = client.get(f"/api/v1/partners/{partner['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "not_connected"
    assert shown["webhooks"] == [] and shown["token_expires_at"] is None
    assert shown["last_webhook_at"] is None
    assert upkeep_jobs(redis) == []  # nothing to register before a store is there


def test_connect_links_are_for_the_operator_or_the_partner_itself(bazaar, client, redis):
    partner = make_partner(client)
    other = make_partner(client, "none")
    assert connect_link(client, other).status_code == 409  # no store to connect
    assert (
        client.post("/api/v1/partners/ptr_nope/connect", headers=admin_headers()).status_code == 404
    )
    foreign = connect_link(client, partner, {}, headers=bearer(other["api_key"]))
    assert foreign.status_code == 404

    own = bearer(partner["api_key"])
    refused = connect_link(client, partner, {"api_base_url": "http://127.0.0.1:9"}, headers=own)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "operator_only"
    bad = connect_link(client, partner, {"store_id": "No Spaces!"}, headers=own)
    assert bad.status_code == 422 and "store_id" in bad.get_json()["error"]["details"]
    assert not list(redis.scan_iter("gw:connect-link:*"))  # nothing stored for refusals

    made = connect_link(client, partner, {"store_id": "corner-shop"}, headers=own)
    assert made.status_code == 201
    link = made.get_json()
    assert link["url"].startswith(f"{PUBLIC}/connect/")
    ttl = redis.ttl(next(redis.scan_iter("gw:connect-link:*")))
    assert 24 * 3600 - 60 < ttl <= 24 * 3600


def test_the_page_asks_for_the_store_then_sends_the_owner_to_the_platform(bazaar, client, redis):
    partner = make_partner(client)
    url = local(connect_link(client, partner).get_json()["url"])

    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="store_id"' in html and 'name="csrf_token"' in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    assert client.post(url, data={"store_id": "corner-shop"}).status_code == 400  # no CSRF
    wrong = client.post(url, data={"store_id": "No Spaces!", "csrf_token": csrf})
    assert wrong.status_code == 422 and 'id="store_id-error"' in wrong.get_data(as_text=True)

    sent = client.post(url, data={"store_id": "corner-shop", "csrf_token": csrf})
    assert sent.status_code == 302
    assert sent.headers["Location"].startswith("https://bazaar.example/authorize?store=corner-shop")
    # The browser checks the form's redirect against its page's form-action: the platform's
    # https address is allowed there (and http in development, for the simulators).
    assert "form-action 'self' https: http:;" in page.headers["Content-Security-Policy"]


def test_an_installation_binds_once_and_a_forged_callback_stores_nothing(bazaar, client, redis):
    partner = make_partner(client)
    url = local(connect_link(client, partner, {"store_id": "corner-shop"}).get_json()["url"])
    sent = client.get(url)
    state = parse_qs(urlsplit(sent.headers["Location"]).query)["state"][0]

    forged = client.get("/connect/bazaar/callback?state=made-up&code=x")
    assert forged.status_code == 403
    assert client.post(f"/connect/bazaar/callback?state={state}&code=x").status_code == 405
    shown = client.get(f"/api/v1/partners/{partner['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "not_connected"

    done = client.get(f"/connect/bazaar/callback?state={state}&code=c0de")
    assert done.status_code == 200, done.get_data(as_text=True)
    shown = client.get(f"/api/v1/partners/{partner['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "connected"
    assert shown["connection"] == {"store_id": "corner-shop"}  # the token is never shown
    assert client.get(url).status_code == 410  # used up
    assert client.get(f"/connect/bazaar/callback?state={state}&code=c0de").status_code == 403
    assert client.get("/connect/not-a-token").status_code == 410
    jobs = {job.func_name for job in upkeep_jobs(redis)}
    assert REGISTER_WEBHOOKS in jobs  # the store's hooks are made at once


def test_registration_covers_the_roles_and_repairs_are_on_the_timeline(bazaar, client, redis):
    seller = make_partner(client)
    install(client, seller)
    assert register_webhooks(seller["id"]) == 1  # no partnership yet: the lifecycle topic only
    assert STORES["corner-shop"].hooks == {"app.removed": "active"}

    buyer = make_partner(client, "none")
    assert partner_up(client, buyer, seller).status_code == 201
    assert [j.args for j in upkeep_jobs(redis) if j.func_name == REGISTER_WEBHOOKS][-1] == [
        seller["id"]
    ]
    assert register_webhooks(seller["id"]) == 1  # the seller's topic now
    STORES["corner-shop"].hooks["shipment.made"] = "disabled"
    del STORES["corner-shop"].hooks["app.removed"]
    assert register_webhooks(seller["id"]) == 2

    shown = client.get(f"/api/v1/partners/{seller['id']}", headers=admin_headers()).get_json()
    assert {h["topic"]: h["state"] for h in shown["webhooks"]} == {
        "shipment.made": "active",
        "app.removed": "active",
    }
    store = client.application.extensions["gateway.store"]
    messages = [e["message"] for e in store.partner_timeline(seller["id"])]
    assert "The shipment.made webhook was disabled: re-enabled." in messages
    assert "The app.removed webhook was missing: created." in messages
    assert store.counters()["webhooks_repaired_bazaar"] == 2


def test_work_for_an_unusable_store_waits_and_resumes_once_reconnected(
    bazaar, client, redis, mailbox
):
    seller, buyer = installed_seller_and_buyer(client)
    store = client.application.extensions["gateway.store"]
    store.connection_failed(seller["id"], "the token was refused after a refresh")
    store.connection_failed(seller["id"], "the token was refused after a refresh")  # again
    asks = [j for j in upkeep_jobs(redis) if j.func_name.endswith("tell_owner_to_reconnect")]
    assert len(asks) == 1  # one email per change, however often the store refuses

    order = client.post(
        "/api/v1/orders",
        json={
            "seller_id": seller["id"],
            "buyer_order_ref": "1001",
            "line_items": [{"sku": "MUG", "quantity": 1}],
            "shipping_address": {
                "name": "Ada Lovelace",
                "address1": "1 Main St",
                "city": "Springfield",
                "zip": "62701",
                "country_code": "US",
            },
            "customer_email": "ada@example.com",
        },
        headers=bearer(buyer["api_key"]),
    ).get_json()
    assert route_order(order["id"]) == "waiting"
    assert route_order(order["id"]) == "waiting"
    held = store.order(order["id"])
    assert held.routing.state == "pending" and held.routing.attempts == 0
    assert "waiting for the store to be connected again (needs_reauth" in held.routing.last_error
    waits = [e for e in store.timeline(order["id"]) if e["type"] == "delivery.waiting"]
    assert len(waits) == 1  # said once, not at every check
    assert "corner-shop" not in STORES  # the store was never called

    assert tell_owner_to_reconnect(seller["id"], "needs_reauth")
    (message,) = mailbox.messages
    assert message["to"] == [seller["email"]]
    text = message_from_string(message["data"], policy=default).get_content()
    link = re.search(rf"{PUBLIC}/connect/\S+", text).group(0)

    sent = client.get(local(link))  # the link names the store already: straight to Bazaar
    state = parse_qs(urlsplit(sent.headers["Location"]).query)["state"][0]
    assert client.get(f"/connect/bazaar/callback?state={state}&code=new").status_code == 200
    assert resume_connection(seller["id"]) == 1
    (route,) = [j for j in job_queue(redis).jobs if j.args == [order["id"]]][-1:]
    assert route.func_name.endswith("route_order")
    assert route_order(order["id"]) == "delivered"
    assert store.order(order["id"]).seller_order_ref == "B-1"


def test_an_uninstall_delivery_is_verified_and_marks_the_connection(bazaar, client, redis):
    partner = make_partner(client)
    install(client, partner)
    raw = json.dumps({"event": "app.removed"}).encode()

    def deliver(signature: str):
        headers = {
            "X-Bazaar-Store": "corner-shop",
            "X-Bazaar-Delivery": "d-1",
            "X-Bazaar-Signature": signature,
        }
        return client.post(
            "/webhooks/bazaar", data=raw, headers=headers, content_type="application/json"
        )

    before = len(upkeep_jobs(redis))
    assert deliver("0" * 64).status_code == 401
    assert len(upkeep_jobs(redis)) == before
    good = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert deliver(good).get_json() == {"status": "accepted"}
    job = upkeep_jobs(redis)[-1]
    assert job.func_name == CONNECTION_EVENT
    assert connection_event(*job.args) == "uninstalled"
    shown = client.get(f"/api/v1/partners/{partner['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "uninstalled"
    assert shown["last_webhook_at"] is not None


def test_privacy_requests_erase_the_customers_data(client, redis, pair, make_order):
    buyer, seller = pair()
    ada = make_order(buyer, seller, ref="A-1")
    bob = make_order(buyer, seller, ref="B-1", email="bob@example.com")
    store = client.application.extensions["gateway.store"]

    assert connection_event(buyer["id"], REDACT_CUSTOMER, ["ADA@example.com"], []) == (
        "1 orders redacted"
    )
    erased, kept = store.order(ada["id"]), store.order(bob["id"])
    assert erased.customer_email is None
    assert erased.shipping_address["name"] == "(redacted)"
    assert erased.shipping_address["country_code"] == "US"
    assert (
        kept.customer_email == "bob@example.com" and kept.shipping_address["name"] != "(redacted)"
    )

    assert connection_event(buyer["id"], REDACT_SHOP, [], []) == "2 orders redacted"
    assert store.order(bob["id"]).customer_email is None


@responses_lib.activate
def test_a_store_that_refuses_its_credentials_needs_its_owner(client, redis, pair, make_order):
    """A revoked key (HTTP 401) holds the work and asks the owner once; nothing fails."""
    connection = {
        "store_hash": "acme123",
        "access_token": "revoked-token-0123456789",
        "webhook_secret": "acme-webhook-secret-0123",
    }
    buyer, seller = pair(seller_platform="bigcommerce", seller_connection=connection)
    for method in (responses_lib.GET, responses_lib.POST):
        store_api = re.compile(r"https://api\.bigcommerce\.com/.*")
        responses_lib.add(
            method, store_api, status=401, json={"status": 401, "title": "Unauthorized"}
        )
    order = make_order(buyer, seller)
    assert route_order(order["id"]) == "waiting"
    store = client.application.extensions["gateway.store"]
    routing = store.order(order["id"]).routing
    assert routing.state == "pending" and routing.attempts == 0
    shown = client.get(f"/api/v1/partners/{seller['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "needs_reauth"
    assert "HTTP 401" in shown["connection_reason"]
    assert route_order(order["id"]) == "waiting"  # a held delivery checks the status, not the store
    asks = [j for j in upkeep_jobs(redis) if j.func_name.endswith("tell_owner_to_reconnect")]
    assert len(asks) == 1


def test_a_link_may_not_name_a_store_another_partner_has_or_has_a_link_for(bazaar, client, redis):
    """An installation started from the store's side binds to the open link naming the store:
    a second partner's link naming it could capture the first one's install."""
    first, second = make_partner(client), make_partner(client)
    assert connect_link(client, first, {"store_id": "corner-shop"}).status_code == 201
    taken = connect_link(client, second, {"store_id": "corner-shop"})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "store_taken"
    assert connect_link(client, first, {"store_id": "corner-shop"}).status_code == 201  # its own

    url = local(connect_link(client, second).get_json()["url"])  # the page asks for the store
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True))
    asked = client.post(url, data={"store_id": "corner-shop", "csrf_token": csrf.group(1)})
    assert asked.status_code == 409
    assert install(client, first).status_code == 200
    shown = client.get(f"/api/v1/partners/{second['id']}", headers=admin_headers()).get_json()
    assert shown["connection_status"] == "not_connected"
    later = connect_link(
        client, second, {"store_id": "corner-shop"}, headers=bearer(second["api_key"])
    )
    assert later.status_code == 409  # connected to the first now


def test_partnerships_stored_before_the_seller_index_still_give_the_seller_role(
    bazaar, client, redis
):
    seller = make_partner(client)
    buyer = make_partner(client, "none")
    partner_up(client, buyer, seller)
    redis.delete(f"gw:buyers-of:{seller['id']}", "gw:buyers-of-built")  # as an older version kept
    store = client.application.extensions["gateway.store"]
    assert store.roles(seller["id"]) == {"seller"}
    assert store.roles(buyer["id"]) == {"buyer"}


def test_a_sync_held_for_the_connection_is_read_again_once_reconnected(
    bazaar, client, redis, pair, make_order
):
    """A fulfillment webhook met a store that can't be used: no cycle reads a shipped order,
    so the read itself is held and done once the store is back."""
    from gateway.jobs import SYNC_SELLER
    from gateway.jobs.sync import sync_seller

    seller, buyer = installed_seller_and_buyer(client)
    order = make_order(buyer, seller, lines=[{"sku": "MUG", "quantity": 1}])
    assert route_order(order["id"]) == "delivered"
    store = client.application.extensions["gateway.store"]
    store.connection_failed(seller["id"], "refused")

    assert sync_seller(order["id"]) == "waiting for the store connection"
    assert store.take_awaiting(seller["id"]) == [(order["id"], "sync")]
    store.hold_for_connection(seller["id"], order["id"], "sync")  # as it was
    install(client, seller, code="again")
    assert resume_connection(seller["id"]) == 1
    assert [j.args for j in job_queue(redis).jobs if j.func_name == SYNC_SELLER] == [[order["id"]]]


def test_a_store_address_typed_on_the_page_is_checked_as_the_apis(client, redis):
    """The gateway calls the address the owner types: a private one is refused beside the
    field (http in development is allowed, as for the simulators)."""
    partner = make_partner(client, "woocommerce", connection=None)
    url = local(connect_link(client, partner).get_json()["url"])
    html = client.get(url).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    refused = client.post(url, data={"store_url": "http://10.0.0.5/shop", "csrf_token": csrf})
    assert refused.status_code == 422
    assert 'id="store_url-error"' in refused.get_data(as_text=True)
    assert not list(redis.scan_iter("gw:install-state:*"))  # nothing begun


def test_a_late_uninstall_does_not_undo_a_reinstall(bazaar, client, redis):
    partner = make_partner(client)
    install(client, partner)
    store = client.application.extensions["gateway.store"]
    connected_at = store.partner(partner["id"])["connected_at"]
    earlier = "2020-01-01T00:00:00Z"
    assert "ignored" in connection_event(partner["id"], UNINSTALLED_EVENT, [], [], earlier)
    assert store.partner(partner["id"])["connection_status"] == "connected"
    assert connection_event(partner["id"], UNINSTALLED_EVENT, [], [], connected_at) == (
        "uninstalled"
    )
