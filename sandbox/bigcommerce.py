"""BigCommerce simulator: Orders V2, Shipments, Webhooks V3 (per shared/platforms/bigcommerce.md).

One threaded werkzeug server on 127.0.0.1 stands in for https://api.bigcommerce.com, so a store's
API is `{base_url}/stores/{store_hash}/v2/...` and `/v3/hooks`. Python use (tests, demo)::

    sim = BigCommerceSimulator(); base_url = sim.start()
    store = sim.add_store("abc123", token="tok", client_secret="secret")
    store.add_webhook("store/shipment/*", "http://127.0.0.1:8000/webhooks/bigcommerce",
                      headers={"X-Gateway-Secret": "secret"})
    order = store.place_order(products=[{"sku": "AC-1", "name": "Mug", "quantity": 2, "price": 9}])
    unpaid = store.place_order(products=[...], paid=False)  # Incomplete until store.pay(id)
    store.emails()  # every email the store sent a customer (to an order's billing email)
    store.ship(order["id"], items=[(line_id, 1)], tracking_number="1Z...", shipping_provider="ups")
    sim.stop()

It also stands in for https://login.bigcommerce.com and the store's control panel, for a
single-click app (the gateway's): `POST {base_url}/oauth2/token` exchanges a code::

    app = sim.register_app("https://gw/connect/bigcommerce/auth", ".../load", ".../uninstall")
    url = store.install_url(app.client_id)  # the merchant installs: the browser goes there
    store.load_url(app.client_id); store.uninstall_app(app.client_id)  # JWT callbacks

(or over HTTP: GET /_sim/stores/{hash}/apps/{client_id}/install and /load answer 302 to the
callback, POST .../uninstall uninstalls). A hook is seen only by the token that made it; a hook
whose deliveries keep failing is deactivated once `sim.retry_delays` are spent (shorten them in
tests), and `PUT /v3/hooks/{id}` `{"is_active": true}` turns it on again.

The same process can be driven from another one through the JSON control endpoints under
`/_sim/` (see `_control`) or the CLI: `python -m sandbox.bigcommerce --port N --store h:tok:secret`.

The platform-neutral parts (clock, call log, failure switches, webhook dispatcher, server, the
shared control endpoints) are in sandbox.common.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from werkzeug.wrappers import Request, Response

from sandbox.common import (
    StoreSimulator,
    WebhookDispatcher,
    WebhookJob,
    WebhookMode,
    common_control,
    json_response,
    parse_json_body,
    send_http,
    wait_forever,
)

STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}

INCOMPLETE, AWAITING_FULFILLMENT = 0, 11

SHIPPING_PROVIDERS = (
    "",
    "auspost",
    "canadapost",
    "endicia",
    "usps",
    "fedex",
    "royalmail",
    "ups",
    "upsready",
    "shipperhq",
)

# What BC shows as `generated_tracking_link`: its integrated providers, else AfterShip.
# The URL shapes are illustrative; the docs name the behaviour, not the URLs.
_PROVIDER_LINKS = {
    "ups": "https://www.ups.com/track?tracknum={n}",
    "upsready": "https://www.ups.com/track?tracknum={n}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "endicia": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={n}",
    "auspost": "https://auspost.com.au/mypost/track/#/details/{n}",
    "canadapost": "https://www.canadapost-postescanada.ca/track-reperage/en#/details/{n}",
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
}
_PROVIDER_NAMES = {
    "ups": "UPS",
    "upsready": "UPS Ready",
    "usps": "USPS",
    "endicia": "Endicia",
    "fedex": "FedEx",
    "auspost": "Australia Post",
    "canadapost": "Canada Post",
    "royalmail": "Royal Mail",
    "shipperhq": "ShipperHQ",
}

# Retries after a failed delivery, in seconds [OV/HT]; then the hook is deactivated.
BC_RETRY_DELAYS = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)

_COUNTRIES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "AU": "Australia",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "NZ": "New Zealand",
}

_ADDRESS_KEYS = (
    "first_name",
    "last_name",
    "company",
    "street_1",
    "street_2",
    "city",
    "state",
    "zip",
    "country",
    "country_iso2",
    "phone",
    "email",
)
_ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
_API_HOST = "https://api.bigcommerce.com"


class BCError(Exception):
    """A refusal, answered in BigCommerce's v2 shape `[{"status", "message"}]`."""

    def __init__(self, status: int, message: str) -> None:
        """Remember the status and message."""
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        """The v2 error answer."""
        return json_response([{"status": self.status, "message": self.message}], self.status)


class BCV3Error(Exception):
    """A refusal, answered in BigCommerce's v3 shape `{status, title, type, errors}`."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None) -> None:
        """Remember the status, title and field errors."""
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors

    def response(self) -> Response:
        """The v3 error answer."""
        body: dict[str, Any] = {"status": self.status, "title": self.title, "type": _ERROR_TYPE}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status)


def rfc2822(when: datetime | None) -> str:
    """A time as BigCommerce prints it: `Tue, 05 Mar 2019 21:40:11 +0000` ('' for none)."""
    if when is None:
        return ""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0))


def parse_bc_date(value: str) -> datetime:
    """An RFC-2822 or ISO-8601 time (naive means UTC); ValueError otherwise."""
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(value) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _money(value: float) -> str:
    return f"{value:.4f}"


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def standard_webhooks_signature(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` per the Standard Webhooks spec."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class BCApp:
    """An API account or app installed on a store: its token, client id and client secret."""

    client_id: str
    token: str
    client_secret: str


@dataclass
class BCAppProfile:
    """An app registered in the Developer Portal, as the login service and the control panel
    know it: its credentials, its callback URLs and the OAuth scopes it asks for."""

    client_id: str
    client_secret: str
    auth_callback: str
    load_callback: str = ""
    uninstall_callback: str = ""
    scope: str = "store_v2_orders store_v2_information_read_only"
    # "The ID of the Developer Portal account that registered the app profile" (auth.mdx).
    account_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class _AuthCode:
    """A code handed to the app's auth callback: single-use, short-lived, for one store."""

    code: str
    client_id: str
    store_hash: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class BCHook:
    """A webhook subscription (`/v3/hooks`)."""

    id: int
    client_id: str
    store_hash: str
    scope: str
    destination: str
    headers: dict[str, str] | None
    is_active: bool
    created_at: int
    updated_at: int
    deactivated: bool = False
    # The token that created it: "Webhooks created with one token are not visible when you
    # retrieve webhooks using a different token" (bigcommerce/docs
    # docs/integrations/webhooks/overview.mdx, "Unable to view your webhook").
    token: str = ""

    def matches(self, scope: str) -> bool:
        """Whether an event of `scope` fires this hook (`store/order/*` style wildcards)."""
        if self.scope.endswith("/*"):
            return scope.startswith(self.scope[:-1])
        return scope == self.scope

    def to_json(self) -> dict[str, Any]:
        """The hook as the API shows it."""
        return {
            "id": self.id,
            "client_id": self.client_id,
            "store_hash": self.store_hash,
            "scope": self.scope,
            "destination": self.destination,
            "headers": dict(self.headers) if self.headers is not None else None,
            "is_active": self.is_active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class _Line:
    id: int
    order_id: int
    product_id: int
    order_address_id: int
    name: str
    sku: str
    quantity: int
    price_ex_tax: float
    price_inc_tax: float
    quantity_shipped: int = 0


@dataclass
class _Shipment:
    id: int
    order_id: int
    order_address_id: int
    date_created: datetime
    tracking_number: str
    shipping_method: str
    shipping_provider: str
    tracking_carrier: str
    tracking_link: str
    comments: str
    merchant_shipping_cost: float
    items: list[tuple[int, int]]  # (order_product_id, quantity)


@dataclass
class _Order:
    id: int
    customer_id: int
    date_created: datetime
    date_modified: datetime
    status_id: int
    billing_address: dict[str, Any]
    lines: list[_Line]
    addresses: list[dict[str, Any]]
    shipments: list[_Shipment] = field(default_factory=list)
    date_shipped: datetime | None = None
    customer_message: str = ""
    staff_notes: str = ""
    external_order_id: str | None = None
    external_source: str | None = None
    order_source: str = "external"
    payment_method: str = "Manual"
    payment_status: str = ""
    is_deleted: bool = False


class _BCDelivery(WebhookJob):
    """One event for one hook; retried on failure per BigCommerce's schedule."""

    def __init__(self, store: BigCommerceStore, hook_id: int, scope: str, body: bytes) -> None:
        """One message id for every attempt and copy of this event to this hook."""
        self.store = store
        self.hook_id = hook_id
        self.scope = scope
        self.body = body
        self.msg_id = f"msg_{uuid.uuid4().hex}"
        self.attempt = 0

    def discard(self) -> None:
        """Log the drop."""
        self.store._sim._log_delivery(self, status=None, error="dropped (webhook_mode=drop)")

    def run(self, dispatcher: WebhookDispatcher) -> None:
        """Sign (when the store signs), send, and schedule a retry or deactivate on failure."""
        sim = self.store._sim
        with sim._lock:
            hook = self.store._hooks.get(self.hook_id)
            if hook is None or not hook.is_active:
                sim._log_delivery(self, status=None, error="skipped: hook deleted or inactive")
                return
            url = hook.destination
            headers = {"Content-Type": "application/json", **(hook.headers or {})}
            app = self.store._app_by_client(hook.client_id)
        domain = urlsplit(url).netloc
        blocked_for = sim._blocked_for(domain)
        if blocked_for > 0:
            sim._log_delivery(self, status=None, error=f"blocklisted: {domain}", url=url)
            dispatcher.schedule(self, blocked_for)
            return
        if self.store.signed and app is not None:
            timestamp = int(time.time())
            headers["webhook-id"] = self.msg_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = standard_webhooks_signature(
                app.client_secret.encode(), self.msg_id, timestamp, self.body
            )
        self.attempt += 1
        ok = False
        for _ in range(self.copies):
            status, error, took = send_http(
                sim._session, url, self.body, headers, sim.delivery_timeout
            )
            success = status is not None and 200 <= status < 300
            ok = ok or success
            sim._record_result(domain, success, status, error)
            sim._log_delivery(self, status=status, error=error, url=url, headers=headers, took=took)
        self.copies = 1
        if ok:
            return
        delays = sim.retry_delays
        if self.attempt <= len(delays):
            dispatcher.schedule(self, delays[self.attempt - 1])
            return
        with sim._lock:
            hook = self.store._hooks.get(self.hook_id)
            if hook is not None:
                hook.is_active = False
                hook.deactivated = True
                hook.updated_at = int(time.time())
        sim._log_delivery(self, status=None, error="retries exhausted: hook deactivated", url=url)


class BigCommerceStore:
    """One simulated store: its apps, orders, shipments, hooks and rate-limit window."""

    def __init__(
        self,
        sim: BigCommerceSimulator,
        store_hash: str,
        app: BCApp,
        signed: bool,
        quota: int,
        window_ms: int,
        store_id: str,
    ) -> None:
        """Use BigCommerceSimulator.add_store."""
        self._sim = sim
        self.store_hash = store_hash
        self.store_id = store_id
        self.signed = signed
        self.quota = quota
        self.window_ms = window_ms
        # UNCONFIRMED (bigcommerce.md §3): whether BC moves an order to 3 Partially Shipped /
        # 2 Shipped when shipments are created. The simulator does by default; turn this off to
        # test an adapter that sets status_id itself.
        self.auto_ship_status = True
        self._emails: list[dict[str, Any]] = []
        self.webhook_mode: WebhookMode | None = None  # None: the simulator-wide mode applies
        self._apps: dict[str, BCApp] = {app.token: app}
        # The store owner, as the token answer and the callbacks' JWT name them (auth.mdx,
        # callbacks.mdx). Numeric ids, as there.
        self.owner: dict[str, Any] = {
            "id": 7000000 + int(store_id) % 1000000,
            "username": f"owner@{store_hash}.example",
            "email": f"owner@{store_hash}.example",
        }
        self._installed: set[str] = set()  # client ids of apps installed through the flow
        self._hooks: dict[int, BCHook] = {}
        self._orders: dict[int, _Order] = {}
        self._catalog: dict[int, dict[str, Any]] = {}
        self._order_ids = itertools.count(100)
        self._line_ids = itertools.count(1)
        self._address_ids = itertools.count(1)
        self._shipment_ids = itertools.count(1)
        self._product_ids = itertools.count(77)
        self._window_start: float | None = None
        self._used = 0

    # -- credentials ------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The first app's access token."""
        return next(iter(self._apps.values())).token

    @property
    def client_secret(self) -> str:
        """The first app's client secret (the Standard Webhooks signing key)."""
        return next(iter(self._apps.values())).client_secret

    @property
    def client_id(self) -> str:
        """The first app's client id."""
        return next(iter(self._apps.values())).client_id

    def add_app(self, token: str, client_secret: str, client_id: str | None = None) -> BCApp:
        """Install another app/API account (it shares the store's rate-limit quota)."""
        app = BCApp(client_id or f"client-{secrets.token_hex(8)}", token, client_secret)
        with self._sim._lock:
            self._apps[token] = app
        return app

    def _app_by_client(self, client_id: str) -> BCApp | None:
        return next((a for a in self._apps.values() if a.client_id == client_id), None)

    # -- single-click apps: install, load, uninstall ------------------------------------------
    #
    # Sources: bigcommerce/docs docs/integrations/apps/guide/auth.mdx ("Single-Click App OAuth
    # Flow") and callbacks.mdx ("Single-Click App Callback Handlers"); the libraries it names:
    # bigcommerce/node-bigcommerce lib/bigcommerce.js (`authorize` posts JSON to
    # {loginUrl}/oauth2/token; `verifyJWT` is jwt.verify(token, secret, {algorithms: ['HS256'],
    # audience: client_id})).

    def install_url(self, client_id: str) -> str:
        """The merchant clicks Install in the control panel and accepts the scopes: the URL the
        merchant's browser is sent to, the app's auth callback with a fresh code. Query as in
        auth.mdx's example: `account_uuid`, `code`, `context=stores/{hash}`, `scope` (space
        separated)."""
        profile = self._sim.app(client_id)
        code = self._sim._new_code(profile, self.store_hash)
        query = urlencode(
            {
                "account_uuid": profile.account_uuid,
                "code": code,
                "context": f"stores/{self.store_hash}",
                "scope": profile.scope,
            }
        )
        return f"{profile.auth_callback}?{query}"

    def is_installed(self, client_id: str) -> bool:
        """Whether the app holds a token for this store (installed, not uninstalled)."""
        with self._sim._lock:
            return client_id in self._installed

    def app_token(self, client_id: str) -> str | None:
        """The token the app was given at install (None when not installed)."""
        with self._sim._lock:
            app = self._app_by_client(client_id)
            return app.token if app is not None and client_id in self._installed else None

    def signed_payload_jwt(self, client_id: str, secret: str | None = None, **claims: Any) -> str:
        """The `signed_payload_jwt` of the load and uninstall callbacks: HS256, keyed by the
        app's client secret, claims as callbacks.mdx lists them (`aud` the client id, `iss`
        "bc", `nbf` = `iat`, `exp` 24 h after `nbf`, `jti` a UUID, `sub` "stores/{hash}",
        `user`, `owner`, `url` "/", `channel_id` null). `secret` and `claims` override, for
        tests of forged or expired payloads."""
        profile = self._sim.app(client_id)
        now = int(time.time())
        user = {"id": self.owner["id"], "email": self.owner["email"], "locale": "en-US"}
        payload = {
            "aud": profile.client_id,
            "iss": "bc",
            "iat": now,
            "nbf": now,
            "exp": now + int(self._sim.jwt_seconds),
            "jti": str(uuid.uuid4()),
            "sub": f"stores/{self.store_hash}",
            "user": user,
            "owner": {"id": self.owner["id"], "email": self.owner["email"]},
            "url": "/",
            "channel_id": None,
            **claims,
        }
        return jwt.encode(payload, secret or profile.client_secret, algorithm="HS256")

    def load_url(self, client_id: str) -> str:
        """A user opens the installed app: the load callback URL the browser is sent to."""
        profile = self._sim.app(client_id)
        if not self.is_installed(client_id):
            raise BCError(404, f"app {client_id} is not installed on {self.store_hash}")
        query = urlencode({"signed_payload_jwt": self.signed_payload_jwt(client_id)})
        return f"{profile.load_callback}?{query}"

    def uninstall_app(self, client_id: str) -> int | None:
        """The merchant clicks Uninstall. The app's token stops working and its hooks go
        ("Webhooks do not persist upon account deletion": docs/start/authentication/
        api-accounts.mdx); then BigCommerce's server calls the uninstall callback (GET, JWT,
        `Accept: application/json`; callbacks.mdx: "If you do not write a handler ...
        BigCommerce will still uninstall your app"). The callback's HTTP status (None when
        none was reached or the app has no uninstall URL)."""
        profile = self._sim.app(client_id)
        with self._sim._lock:
            if client_id not in self._installed:
                raise BCError(404, f"app {client_id} is not installed on {self.store_hash}")
            token = self.signed_payload_jwt(client_id)
            self._installed.discard(client_id)
            for key in [k for k, a in self._apps.items() if a.client_id == client_id]:
                del self._apps[key]
            for hid in [h.id for h in self._hooks.values() if h.client_id == client_id]:
                del self._hooks[hid]
        if not profile.uninstall_callback:
            return None
        try:
            answer = self._sim._session.get(
                profile.uninstall_callback,
                params={"signed_payload_jwt": token},
                headers={"Accept": "application/json"},
                timeout=self._sim.delivery_timeout,
                allow_redirects=False,
            )
        except requests.RequestException:  # the store uninstalls whatever the app answers
            return None
        return answer.status_code

    def _grant(self, profile: BCAppProfile) -> BCApp:
        """A token for the app on this store (a reinstall or re-authorization replaces the old
        one; the app's hooks follow its new token: UNCONFIRMED, the docs only say a changed
        scope invalidates the old token). Caller holds the lock."""
        for key in [k for k, a in self._apps.items() if a.client_id == profile.client_id]:
            del self._apps[key]
        app = BCApp(profile.client_id, secrets.token_hex(16), profile.client_secret)
        self._apps[app.token] = app
        self._installed.add(profile.client_id)
        for hook in self._hooks.values():
            if hook.client_id == profile.client_id:
                hook.token = app.token
        return app

    def deactivate_hook(self, hook_id: int) -> None:
        """What retries exhausted do to a hook (`is_active: false`), without waiting for them."""
        with self._sim._lock:
            hook = self._hooks[hook_id]
            hook.is_active = False
            hook.deactivated = True
            hook.updated_at = int(time.time())

    def delete_hook(self, hook_id: int) -> None:
        """A hook disappears (deleted by someone else, or by the platform)."""
        with self._sim._lock:
            del self._hooks[hook_id]

    def set_webhook_mode(self, mode: str | None, seconds: float = 0.0, hold: int = 2) -> None:
        """This store's own failure mode (None: back to the simulator-wide one)."""
        self.webhook_mode = None if mode is None else WebhookMode(mode, seconds, hold)

    def set_rate_limit(self, quota: int, window_ms: int = 30000) -> None:
        """Change the per-store quota (requests per window) and start a fresh window."""
        with self._sim._lock:
            self.quota = quota
            self.window_ms = window_ms
            self._window_start = None
            self._used = 0

    def _consume(self) -> tuple[bool, dict[str, str]]:
        """Count one request against the window; (allowed, X-Rate-Limit-* headers)."""
        with self._sim._lock:
            now = time.monotonic()
            window = self.window_ms / 1000
            if self._window_start is None or now - self._window_start >= window:
                self._window_start = now
                self._used = 0
            allowed = self._used < self.quota
            if allowed:
                self._used += 1
            return allowed, self._rate_headers(now)

    def _peek_rate_headers(self) -> dict[str, str]:
        with self._sim._lock:
            now = time.monotonic()
            if self._window_start is None or now - self._window_start >= self.window_ms / 1000:
                self._window_start = now
                self._used = 0
            return self._rate_headers(now)

    def _rate_headers(self, now: float) -> dict[str, str]:
        assert self._window_start is not None
        reset_ms = max(0, int((self._window_start + self.window_ms / 1000 - now) * 1000))
        return {
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
            "X-Rate-Limit-Requests-Left": str(max(0, self.quota - self._used)),
        }

    # -- hooks ------------------------------------------------------------------------------

    def add_webhook(
        self,
        scope: str,
        destination: str,
        headers: dict[str, str] | None = None,
        is_active: bool = True,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Subscribe `destination` to `scope` (as POST /v3/hooks would); the hook as JSON."""
        return self._create_hook(
            client_id or self.client_id,
            {
                "scope": scope,
                "destination": destination,
                "headers": headers,
                "is_active": is_active,
            },
        ).to_json()

    def webhooks(self) -> list[dict[str, Any]]:
        """Every hook of the store (all apps), as JSON."""
        with self._sim._lock:
            return [h.to_json() for h in self._hooks.values()]

    def _create_hook(self, client_id: str, body: Any, token: str | None = None) -> BCHook:
        if not isinstance(body, dict):
            raise BCV3Error(
                422, "JSON data is missing or invalid", {"body": "error.expected.object"}
            )
        errors = {}
        for name in ("scope", "destination"):
            if not isinstance(body.get(name), str) or not body.get(name):
                errors[name] = "error.path.missing"
        headers = body.get("headers")
        if headers is not None and (
            not isinstance(headers, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            errors["headers"] = "error.expected.jsobject"
        if errors:
            raise BCV3Error(422, "JSON data is missing or invalid", errors)
        # Destinations must be on port 443 in production [OV]; the simulator accepts any port.
        with self._sim._lock:
            same = [
                h
                for h in self._hooks.values()
                if h.client_id == client_id and h.scope == body["scope"]
            ]
            if any(h.destination == body["destination"] for h in same):
                raise BCV3Error(
                    422,
                    "JSON data is missing or invalid",
                    {"destination": "a hook with this scope and destination already exists"},
                )
            if len(same) >= 10:
                raise BCV3Error(
                    422,
                    "JSON data is missing or invalid",
                    {"scope": "at most 10 hooks per scope and client_id"},
                )
            now = int(time.time())
            hook = BCHook(
                id=self._sim._next_hook_id(),
                client_id=client_id,
                store_hash=self.store_hash,
                scope=body["scope"],
                destination=body["destination"],
                headers=dict(headers) if headers is not None else None,
                is_active=bool(body.get("is_active", True)),
                created_at=now,
                updated_at=now,
                token=token or getattr(self._app_by_client(client_id), "token", ""),
            )
            self._hooks[hook.id] = hook
            return hook

    def _visible_hook(self, app: BCApp, hook_id: int) -> BCHook:
        hook = self._hooks.get(hook_id)
        if hook is None or hook.token != app.token:
            raise BCV3Error(404, f"Webhook with id [{hook_id}] not found")
        return hook

    def _emit(self, scope: str, data: dict[str, Any]) -> None:
        """Queue `scope` for every active hook that listens to it (caller holds the lock)."""
        hooks = [h for h in self._hooks.values() if h.is_active and h.matches(scope)]
        if not hooks:
            return
        created_at = int(self._sim.clock.now().timestamp())
        unsigned = {
            "scope": scope,
            "store_id": self.store_id,
            "data": data,
            "created_at": created_at,
            "producer": f"stores/{self.store_hash}",
        }
        # `hash` = SHA-1 of the JSON payload [EV]. Which exact serialization BC hashes is not
        # documented; here it is the compact JSON of the payload without `hash`, keys in this
        # order, so a duplicate delivery of the same event carries the same hash.
        digest = hashlib.sha1(
            json.dumps(unsigned, separators=(",", ":")).encode(), usedforsecurity=False
        ).hexdigest()
        payload = {
            "scope": scope,
            "store_id": self.store_id,
            "data": data,
            "hash": digest,
            "created_at": created_at,
            "producer": f"stores/{self.store_hash}",
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        for hook in hooks:
            self._sim._dispatcher.submit(_BCDelivery(self, hook.id, scope, body), self.webhook_mode)

    # -- catalog and orders ----------------------------------------------------------------

    def add_product(self, sku: str, name: str, price: float) -> int:
        """Add a catalog product; its product_id (for `products: [{product_id, quantity}]`)."""
        with self._sim._lock:
            for product in self._catalog.values():
                if product["sku"] == sku:
                    return product["id"]
            product_id = next(self._product_ids)
            self._catalog[product_id] = {"id": product_id, "sku": sku, "name": name, "price": price}
            return product_id

    def place_order(
        self,
        products: list[dict[str, Any]],
        shipping_address: dict[str, Any] | None = None,
        email: str | None = None,
        billing_address: dict[str, Any] | None = None,
        paid: bool = True,
        customer_message: str = "",
    ) -> dict[str, Any]:
        """A shopper checks out. The order is created Incomplete, before its payment, and
        store/order/created fires then ("Completing a checkout creates an incomplete order until
        you process the payment": bigcommerce/docs docs/storefront/headless/end-to-end-guides/
        graphql-storefront.mdx; events/index.mdx: created "also fires for incomplete orders").
        With `paid` the payment goes through at once (`pay`); without, the order stays
        Incomplete until a test pays it, or cancels it with `set_status`."""
        address = _bc_address(shipping_address or {}, email)
        billing = _bc_address(billing_address or shipping_address or {}, email)
        body = {
            "status_id": INCOMPLETE,
            "customer_id": 0,
            "billing_address": billing,
            "shipping_addresses": [address],
            "customer_message": customer_message,
            "products": [self._product_for_order(p) for p in products],
        }
        with self._sim._lock:  # a paid checkout is read paid, never half-way
            order = self.create_order(body, order_source="www")
            return self.pay(order["id"]) if paid else order

    def pay(self, order_id: int) -> dict[str, Any]:
        """The shopper's payment is captured: the order moves to Awaiting Fulfillment ("If the
        purchase was successful ... the order is then automatically moved to an Awaiting
        Fulfillment status": docs/store-operations/payments/index.mdx), firing
        store/order/updated and store/order/statusUpdated."""
        with self._sim._lock:
            self._order(order_id).payment_status = "captured"
            return self.update_order(order_id, {"status_id": AWAITING_FULFILLMENT})

    def _product_for_order(self, product: dict[str, Any]) -> dict[str, Any]:
        if "product_id" in product:
            return {"product_id": product["product_id"], "quantity": product.get("quantity", 1)}
        price = product.get("price", 10.0)
        item = {
            "name": product.get("name") or product.get("sku") or "Item",
            "quantity": product.get("quantity", 1),
            "price_inc_tax": product.get("price_inc_tax", price),
            "price_ex_tax": product.get("price_ex_tax", price),
        }
        if product.get("sku"):
            item["sku"] = product["sku"]
        return item

    def create_order(
        self, body: Any, fire: bool = True, order_source: str = "external"
    ) -> dict[str, Any]:
        """POST /v2/orders semantics; the order as JSON. BCError when refused."""
        with self._sim._lock:
            order = self._build_order(body, order_source)
            self._orders[order.id] = order
            if fire:
                self._emit("store/order/created", {"type": "order", "id": order.id})
            return self._order_json(order)

    def _build_order(self, body: Any, order_source: str) -> _Order:
        if not isinstance(body, dict):
            raise BCError(400, "The request body must be a JSON object.")
        if "consignments" in body:
            raise BCError(400, "The field 'consignments' is not supported by this simulator.")
        billing = body.get("billing_address")
        if not isinstance(billing, dict):
            raise BCError(400, "The required field 'billing_address' was not supplied.")
        products = body.get("products")
        if not isinstance(products, list) or not products:
            raise BCError(400, "The required field 'products' was not supplied.")
        status_id = body.get("status_id", 1)
        if status_id not in STATUS_NAMES:
            raise BCError(400, "The field 'status_id' is invalid.")
        addresses_in = body.get("shipping_addresses") or []
        if not isinstance(addresses_in, list) or not all(isinstance(a, dict) for a in addresses_in):
            raise BCError(400, "The field 'shipping_addresses' is invalid.")
        # The billing zip is required, "two or more characters" (orders.v2.oas2.yml,
        # billingAddress_Base); each address names its country, by name or by code, either being
        # enough (dev-docs orders-api-overview.md FAQ). The messages are the simulator's words.
        if len(str(billing.get("zip") or "").strip()) < 2:
            raise BCError(400, "The field 'billing_address.zip' must be two or more characters.")
        for name, address in [("billing_address", billing)] + [
            ("shipping_addresses", a) for a in addresses_in
        ]:
            if not (address.get("country") or address.get("country_iso2")):
                raise BCError(
                    400, f"The field '{name}.country' or '{name}.country_iso2' is required."
                )
        order_id = next(self._order_ids)
        addresses = []
        for given in addresses_in:
            address = _bc_address(given, None)
            address["id"] = next(self._address_ids)
            address["shipping_method"] = given.get("shipping_method", "None")
            addresses.append(address)
        # Without shipping_addresses the products get order_address_id 0 and cannot be shipped
        # through the API: a simulator choice, BC does not document this case.
        address_id = addresses[0]["id"] if addresses else 0
        lines = [self._build_line(order_id, p, address_id) for p in products]
        now = self._now()
        return _Order(
            id=order_id,
            customer_id=int(body.get("customer_id") or 0),
            date_created=now,
            date_modified=now,
            status_id=status_id,
            billing_address=_bc_address(billing, None),
            lines=lines,
            addresses=addresses,
            customer_message=str(body.get("customer_message") or ""),
            staff_notes=str(body.get("staff_notes") or ""),
            external_order_id=body.get("external_order_id"),
            external_source=body.get("external_source"),
            order_source=order_source,
        )

    def _build_line(self, order_id: int, product: Any, address_id: int) -> _Line:
        if not isinstance(product, dict):
            raise BCError(400, "The field 'products' is invalid.")
        quantity = product.get("quantity", 1)
        if not _positive_int(quantity):
            raise BCError(400, "The field 'quantity' must be a positive integer.")
        if "product_id" in product:
            catalog = self._catalog.get(product["product_id"])
            if catalog is None:
                raise BCError(400, f"The product_id {product['product_id']!r} is invalid.")
            price = float(catalog["price"])
            return _Line(
                id=next(self._line_ids),
                order_id=order_id,
                product_id=catalog["id"],
                order_address_id=address_id,
                name=catalog["name"],
                sku=catalog["sku"],
                quantity=quantity,
                price_ex_tax=price,
                price_inc_tax=price,
            )
        name = product.get("name")
        inc = _number(product.get("price_inc_tax"))
        ex = _number(product.get("price_ex_tax"))
        if not isinstance(name, str) or not name:
            raise BCError(400, "A custom product requires 'name' (or give 'product_id').")
        if inc is None or ex is None:
            raise BCError(400, "A custom product requires 'price_inc_tax' and 'price_ex_tax'.")
        return _Line(
            id=next(self._line_ids),
            order_id=order_id,
            product_id=0,
            order_address_id=address_id,
            name=name,
            sku=str(product.get("sku") or ""),
            quantity=quantity,
            price_ex_tax=ex,
            price_inc_tax=inc,
        )

    def bulk_load_orders(
        self,
        n: int,
        products: list[dict[str, Any]] | None = None,
        start: datetime | None = None,
        step_seconds: float = 0.0,
        status_id: int = 11,
    ) -> list[int]:
        """Create `n` orders without firing webhooks; date_modified from `start` by `step`."""
        ids = []
        base = start or self._now()
        with self._sim._lock:
            for i in range(n):
                body = {
                    "status_id": status_id,
                    "billing_address": _bc_address({}, f"bulk{i}@example.com"),
                    "shipping_addresses": [_bc_address({}, f"bulk{i}@example.com")],
                    "products": [
                        self._product_for_order(p)
                        for p in (products or [{"sku": f"BULK-{i % 7}", "quantity": 1}])
                    ],
                }
                order = self._build_order(body, "external")
                when = (base + timedelta(seconds=step_seconds * i)).replace(microsecond=0)
                order.date_created = order.date_modified = when
                self._orders[order.id] = order
                ids.append(order.id)
        return ids

    def update_order(self, order_id: int, body: Any, fire: bool = True) -> dict[str, Any]:
        """PUT /v2/orders/{id} semantics (status_id, addresses, notes); the order as JSON."""
        if not isinstance(body, dict):
            raise BCError(400, "The request body must be a JSON object.")
        if "products" in body:
            raise BCError(400, "Editing products is not supported by this simulator.")
        if "status_id" in body and body["status_id"] not in STATUS_NAMES:
            raise BCError(400, "The field 'status_id' is invalid.")
        with self._sim._lock:
            order = self._order(order_id)
            previous = order.status_id
            if "status_id" in body:
                order.status_id = body["status_id"]
                if order.status_id == 2 and order.date_shipped is None:
                    order.date_shipped = self._now()
            if isinstance(body.get("billing_address"), dict):
                order.billing_address.update(body["billing_address"])
            for name in ("customer_message", "staff_notes", "external_source"):
                if name in body:
                    setattr(order, name, str(body[name] or ""))
            if "external_order_id" in body:
                order.external_order_id = body["external_order_id"]
            order.date_modified = self._now()
            if fire:
                self._order_changed(order, previous)
            return self._order_json(order)

    def set_status(self, order_id: int, status_id: int) -> dict[str, Any]:
        """The merchant changes the order status; fires updated (+ statusUpdated)."""
        return self.update_order(order_id, {"status_id": status_id})

    def archive_order(self, order_id: int) -> None:
        """DELETE /v2/orders/{id}: the order is archived; fires store/order/archived."""
        with self._sim._lock:
            order = self._order(order_id)
            order.is_deleted = True
            order.date_modified = self._now()
            self._emit("store/order/archived", {"type": "order", "id": order.id})

    def _order_changed(self, order: _Order, previous_status: int) -> None:
        self._emit("store/order/updated", {"type": "order", "id": order.id})
        if order.status_id != previous_status:
            self._email_status(order, previous_status)
            self._emit(
                "store/order/statusUpdated",
                {
                    "type": "order",
                    "id": order.id,
                    "status": {
                        "previous_status_id": previous_status,
                        "new_status_id": order.status_id,
                    },
                },
            )

    # -- customer emails ---------------------------------------------------------------------

    def emails(self) -> list[dict[str, Any]]:
        """Every email the store sent a customer, oldest first: {to, order_id, kind, status}."""
        with self._sim._lock:
            return [dict(e) for e in self._emails]

    def _email_customer(self, order: _Order, kind: str) -> None:
        """Record an email BigCommerce sends the order's customer: for a guest order (ours),
        the billing address's email (caller holds the lock)."""
        self._emails.append(
            {
                "to": order.billing_address.get("email", ""),
                "order_id": order.id,
                "kind": kind,
                "status": STATUS_NAMES[order.status_id],
                "at": self._now().isoformat(),
            }
        )

    def _email_status(self, order: _Order, previous_status: int) -> None:
        """The email a status change sends. A storefront order leaving Incomplete sends its
        order confirmation ("sent immediately after" a storefront order; never for a V2 API
        order: orders.v2.oas2.yml, Create an Order). Other changes email the customer on the
        statuses the store picks (Settings > Order notifications > "Email customers when",
        store-wide: support.bigcommerce.com/s/article/Customer-Order-Notifications); which are
        on by default is not documented, so here every one is: the most a store would send."""
        first = previous_status == INCOMPLETE and order.order_source == "www"
        self._email_customer(order, "order_confirmation" if first else "status_changed")

    def _order(self, order_id: int) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise BCError(404, "The requested resource was not found.")
        return order

    def _now(self) -> datetime:
        return self._sim.clock.now()

    # -- shipments ---------------------------------------------------------------------------

    def ship(
        self,
        order_id: int,
        items: Iterable[tuple[int, int]] | None = None,
        tracking_number: str = "",
        shipping_provider: str = "",
        tracking_carrier: str = "",
        tracking_link: str = "",
        order_address_id: int | None = None,
        comments: str = "",
        shipping_method: str = "",
    ) -> dict[str, Any]:
        """The merchant ships items [(order_product_id, qty)] (all that remain when None)."""
        with self._sim._lock:
            order = self._order(order_id)
            if items is None:
                items = [(ln.id, ln.quantity - ln.quantity_shipped) for ln in order.lines]
                items = [(i, q) for i, q in items if q > 0]
            item_list = [{"order_product_id": i, "quantity": q} for i, q in items]
            if order_address_id is None:
                first = (
                    next(
                        (ln for ln in order.lines if ln.id == item_list[0]["order_product_id"]),
                        None,
                    )
                    if item_list
                    else None
                )
                order_address_id = first.order_address_id if first else 0
            body = {
                "order_address_id": order_address_id,
                "items": item_list,
                "tracking_number": tracking_number,
                "shipping_provider": shipping_provider,
                "tracking_carrier": tracking_carrier,
                "tracking_link": tracking_link,
                "comments": comments,
                "shipping_method": shipping_method,
            }
            return self.create_shipment(order_id, body)

    def create_shipment(self, order_id: int, body: Any) -> dict[str, Any]:
        """POST /v2/orders/{id}/shipments semantics; the shipment as JSON. BCError if refused."""
        with self._sim._lock:
            order = self._order(order_id)
            if not isinstance(body, dict):
                raise BCError(400, "The request body must be a JSON object.")
            address_id = body.get("order_address_id")
            if address_id is None:
                raise BCError(400, "The required field 'order_address_id' was not supplied.")
            if not any(a["id"] == address_id for a in order.addresses):
                raise BCError(400, "The field 'order_address_id' is invalid.")
            raw_items = body.get("items")
            if not isinstance(raw_items, list) or not raw_items:
                raise BCError(400, "The required field 'items' was not supplied.")
            wanted: dict[int, int] = {}
            for item in raw_items:
                if not isinstance(item, dict) or "order_product_id" not in item:
                    raise BCError(400, "The field 'items' is invalid: order_product_id missing.")
                quantity = item.get("quantity")
                if not _positive_int(quantity):
                    raise BCError(400, "The field 'quantity' must be a positive integer.")
                line = next((ln for ln in order.lines if ln.id == item["order_product_id"]), None)
                if line is None:
                    raise BCError(
                        400, f"The order_product_id {item['order_product_id']!r} is invalid."
                    )
                if line.order_address_id != address_id:
                    raise BCError(
                        400,
                        f"The order product {line.id} does not belong to "
                        f"shipping address {address_id}.",
                    )
                wanted[line.id] = wanted.get(line.id, 0) + quantity
            for line in order.lines:
                if wanted.get(line.id, 0) > line.quantity - line.quantity_shipped:
                    raise BCError(
                        400,
                        f"The quantity specified for order product {line.id} is greater than "
                        f"the quantity of the product that is available to ship "
                        f"({line.quantity - line.quantity_shipped}).",
                    )
            fields = self._shipment_fields(body)
            shipment = _Shipment(
                id=next(self._shipment_ids),
                order_id=order.id,
                order_address_id=address_id,
                date_created=self._now(),
                tracking_number=fields.get("tracking_number", ""),
                shipping_method=fields.get("shipping_method", ""),
                shipping_provider=fields.get("shipping_provider", ""),
                tracking_carrier=fields.get("tracking_carrier", ""),
                tracking_link=fields.get("tracking_link", ""),
                comments=fields.get("comments", ""),
                merchant_shipping_cost=fields.get("merchant_shipping_cost", 0.0),
                items=list(wanted.items()),
            )
            for line in order.lines:
                line.quantity_shipped += wanted.get(line.id, 0)
            order.shipments.append(shipment)
            previous = order.status_id
            total = sum(ln.quantity for ln in order.lines)
            shipped = sum(ln.quantity_shipped for ln in order.lines)
            if self.auto_ship_status:
                # UNCONFIRMED (bigcommerce.md §3): the automatic move to 3 then 2.
                order.status_id = 2 if shipped >= total else 3
                if order.status_id == 2 and order.date_shipped is None:
                    order.date_shipped = self._now()
            order.date_modified = self._now()
            self._emit(
                "store/shipment/created",
                {"type": "shipment", "id": shipment.id, "orderId": order.id},
            )
            # "Creating order shipments triggers email notifications" (bigcommerce/docs
            # docs/store-operations/orders/index.mdx), besides the status change's own.
            self._email_customer(order, "shipment")
            self._order_changed(order, previous)
            return self._shipment_json(order, shipment)

    def _shipment_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in ("tracking_number", "shipping_method", "tracking_carrier", "comments"):
            if name in body:
                value = body[name]
                if value is not None and not isinstance(value, str):
                    raise BCError(400, f"The field '{name}' must be a string.")
                fields[name] = value or ""
        if len(fields.get("tracking_number", "")) > 50:
            raise BCError(400, "The field 'tracking_number' must be 50 characters or less.")
        if "tracking_link" in body:
            link = body["tracking_link"] or ""
            if not isinstance(link, str) or len(link) > 500:
                raise BCError(400, "The field 'tracking_link' must be 500 characters or less.")
            fields["tracking_link"] = link
        if "shipping_provider" in body:
            provider = body["shipping_provider"] or ""
            if provider not in SHIPPING_PROVIDERS and not re.fullmatch(r"carrier_\w+", provider):
                raise BCError(400, f"The shipping_provider '{provider}' is invalid.")
            fields["shipping_provider"] = provider
        if "merchant_shipping_cost" in body:
            cost = _number(body["merchant_shipping_cost"])
            if cost is None:
                raise BCError(400, "The field 'merchant_shipping_cost' is invalid.")
            fields["merchant_shipping_cost"] = cost
        return fields

    def update_shipment(self, order_id: int, shipment_id: int, **fields: Any) -> dict[str, Any]:
        """The merchant edits a shipment (tracking etc.); fires store/shipment/updated."""
        return self.put_shipment(order_id, shipment_id, fields)

    def put_shipment(self, order_id: int, shipment_id: int, body: Any) -> dict[str, Any]:
        """PUT /v2/orders/{id}/shipments/{sid} semantics (every field but items)."""
        with self._sim._lock:
            order = self._order(order_id)
            shipment = self._shipment(order, shipment_id)
            if not isinstance(body, dict):
                raise BCError(400, "The request body must be a JSON object.")
            if "items" in body:
                raise BCError(400, "The field 'items' cannot be written to.")
            if "order_address_id" in body and body["order_address_id"] != shipment.order_address_id:
                if not any(a["id"] == body["order_address_id"] for a in order.addresses):
                    raise BCError(400, "The field 'order_address_id' is invalid.")
                shipment.order_address_id = body["order_address_id"]
            for name, value in self._shipment_fields(body).items():
                setattr(shipment, name, value)
            # UNCONFIRMED: whether editing a shipment touches the order's date_modified; here
            # it does not (only the shipment changes), so only store/shipment/updated fires.
            self._emit(
                "store/shipment/updated",
                {"type": "shipment", "id": shipment.id, "orderId": order.id},
            )
            return self._shipment_json(order, shipment)

    def delete_shipment(self, order_id: int, shipment_id: int) -> None:
        """Delete a shipment: its quantities can ship again; the status stays (docs §3)."""
        with self._sim._lock:
            order = self._order(order_id)
            shipment = self._shipment(order, shipment_id)
            self._drop_shipment(order, shipment)

    def _drop_shipment(self, order: _Order, shipment: _Shipment) -> None:
        for product_id, quantity in shipment.items:
            for line in order.lines:
                if line.id == product_id:
                    line.quantity_shipped = max(0, line.quantity_shipped - quantity)
        order.shipments.remove(shipment)
        order.date_modified = self._now()
        self._emit(
            "store/shipment/deleted", {"type": "shipment", "id": shipment.id, "orderId": order.id}
        )
        self._emit("store/order/updated", {"type": "order", "id": order.id})

    def _shipment(self, order: _Order, shipment_id: int) -> _Shipment:
        shipment = next((s for s in order.shipments if s.id == shipment_id), None)
        if shipment is None:
            raise BCError(404, "The requested resource was not found.")
        return shipment

    # -- read helpers -------------------------------------------------------------------------

    def order(self, order_id: int) -> dict[str, Any]:
        """GET /v2/orders/{id}."""
        with self._sim._lock:
            return self._order_json(self._order(order_id))

    def orders(self) -> list[dict[str, Any]]:
        """Every order (archived included), by id."""
        with self._sim._lock:
            return [self._order_json(o) for _, o in sorted(self._orders.items())]

    def products(self, order_id: int) -> list[dict[str, Any]]:
        """GET /v2/orders/{id}/products."""
        with self._sim._lock:
            order = self._order(order_id)
            return [self._line_json(order, ln) for ln in order.lines]

    def shipping_addresses(self, order_id: int) -> list[dict[str, Any]]:
        """GET /v2/orders/{id}/shipping_addresses."""
        with self._sim._lock:
            order = self._order(order_id)
            return [self._address_json(order, a) for a in order.addresses]

    def shipments(self, order_id: int) -> list[dict[str, Any]]:
        """GET /v2/orders/{id}/shipments (an empty list where the API answers 204)."""
        with self._sim._lock:
            order = self._order(order_id)
            return [self._shipment_json(order, s) for s in order.shipments]

    # -- JSON shapes --------------------------------------------------------------------------

    def _url(self, resource: str) -> dict[str, str]:
        base = self._sim.base_url or _API_HOST
        return {"url": f"{base}/stores/{self.store_hash}/v2{resource}", "resource": resource}

    def _order_json(self, o: _Order) -> dict[str, Any]:
        ex = sum(ln.price_ex_tax * ln.quantity for ln in o.lines)
        inc = sum(ln.price_inc_tax * ln.quantity for ln in o.lines)
        zero = _money(0)
        billing = dict(o.billing_address)
        billing.setdefault("form_fields", [])
        return {
            "id": o.id,
            "customer_id": o.customer_id,
            "date_created": rfc2822(o.date_created),
            "date_modified": rfc2822(o.date_modified),
            "date_shipped": rfc2822(o.date_shipped),
            "status_id": o.status_id,
            "status": STATUS_NAMES[o.status_id],
            "custom_status": STATUS_NAMES[o.status_id],
            "subtotal_ex_tax": _money(ex),
            "subtotal_inc_tax": _money(inc),
            "subtotal_tax": _money(inc - ex),
            "base_shipping_cost": zero,
            "shipping_cost_ex_tax": zero,
            "shipping_cost_inc_tax": zero,
            "shipping_cost_tax": zero,
            "shipping_cost_tax_class_id": 2,
            "base_handling_cost": zero,
            "handling_cost_ex_tax": zero,
            "handling_cost_inc_tax": zero,
            "handling_cost_tax": zero,
            "handling_cost_tax_class_id": 2,
            "base_wrapping_cost": zero,
            "wrapping_cost_ex_tax": zero,
            "wrapping_cost_inc_tax": zero,
            "wrapping_cost_tax": zero,
            "wrapping_cost_tax_class_id": 3,
            "total_ex_tax": _money(ex),
            "total_inc_tax": _money(inc),
            "total_tax": _money(inc - ex),
            "is_tax_inclusive_pricing": False,
            "items_total": sum(ln.quantity for ln in o.lines),
            "items_shipped": sum(ln.quantity_shipped for ln in o.lines),
            "payment_method": o.payment_method,
            "payment_provider_id": "",
            "payment_status": o.payment_status,
            "refunded_amount": zero,
            "order_is_digital": False,
            "store_credit_amount": zero,
            "gift_certificate_amount": zero,
            "ip_address": "",
            "ip_address_v6": "",
            "geoip_country": "",
            "geoip_country_iso2": "",
            "currency_id": 1,
            "currency_code": "USD",
            "currency_exchange_rate": "1.0000000000",
            "default_currency_id": 1,
            "default_currency_code": "USD",
            "staff_notes": o.staff_notes,
            "customer_message": o.customer_message,
            "discount_amount": zero,
            "coupon_discount": zero,
            "shipping_address_count": len(o.addresses),
            "is_deleted": o.is_deleted,
            "ebay_order_id": "0",
            "cart_id": "",
            "billing_address": billing,
            "is_email_opt_in": False,
            "credit_card_type": None,
            "order_source": o.order_source,
            "channel_id": 1,
            "external_source": o.external_source,
            "products": self._url(f"/orders/{o.id}/products"),
            "shipping_addresses": self._url(f"/orders/{o.id}/shippingaddresses"),
            "coupons": self._url(f"/orders/{o.id}/coupons"),
            "external_id": None,
            "external_merchant_id": None,
            "tax_provider_id": "BasicTaxProvider",
            "store_default_currency_code": "",
            "store_default_to_transactional_exchange_rate": "1.0000000000",
            "customer_locale": "en",
            "external_order_id": o.external_order_id,
        }

    def _line_json(self, o: _Order, ln: _Line) -> dict[str, Any]:
        return {
            "id": ln.id,
            "order_id": o.id,
            "product_id": ln.product_id,
            "variant_id": 0,
            "order_pickup_method_id": 0,
            "order_address_id": ln.order_address_id,
            "name": ln.name,
            "name_customer": ln.name,
            "name_merchant": ln.name,
            "sku": ln.sku,
            "upc": "",
            "type": "physical",
            "base_price": _money(ln.price_ex_tax),
            "price_ex_tax": _money(ln.price_ex_tax),
            "price_inc_tax": _money(ln.price_inc_tax),
            "price_tax": _money(ln.price_inc_tax - ln.price_ex_tax),
            "base_total": _money(ln.price_ex_tax * ln.quantity),
            "total_ex_tax": _money(ln.price_ex_tax * ln.quantity),
            "total_inc_tax": _money(ln.price_inc_tax * ln.quantity),
            "total_tax": _money((ln.price_inc_tax - ln.price_ex_tax) * ln.quantity),
            "weight": "0.0000",
            "quantity": ln.quantity,
            "base_cost_price": "0.0000",
            "is_refunded": False,
            "quantity_refunded": 0,
            "refund_amount": "0.0000",
            "return_id": 0,
            "quantity_shipped": ln.quantity_shipped,
            "fixed_shipping_cost": "0.0000",
            "is_bundled_product": False,
            "parent_order_product_id": None,
            "product_options": [],
            "configurable_fields": [],
            "applied_discounts": [],
            "external_id": None,
            "fulfillment_source": "",
            "brand": "",
        }

    def _address_json(self, o: _Order, a: dict[str, Any]) -> dict[str, Any]:
        lines = [ln for ln in o.lines if ln.order_address_id == a["id"]]
        zero = _money(0)
        return {
            "id": a["id"],
            "order_id": o.id,
            "first_name": a["first_name"],
            "last_name": a["last_name"],
            "company": a["company"],
            "street_1": a["street_1"],
            "street_2": a["street_2"],
            "city": a["city"],
            "zip": a["zip"],
            "country": a["country"],
            "country_iso2": a["country_iso2"],
            "state": a["state"],
            "email": a["email"],
            "phone": a["phone"],
            "items_total": sum(ln.quantity for ln in lines),
            "items_shipped": sum(ln.quantity_shipped for ln in lines),
            "shipping_method": a.get("shipping_method", "None"),
            "base_cost": zero,
            "cost_ex_tax": zero,
            "cost_inc_tax": zero,
            "cost_tax": zero,
            "cost_tax_class_id": 2,
            "base_handling_cost": zero,
            "handling_cost_ex_tax": zero,
            "handling_cost_inc_tax": zero,
            "handling_cost_tax": zero,
            "handling_cost_tax_class_id": 2,
            "shipping_zone_id": 1,
            "shipping_zone_name": a["country"],
            "shipping_quotes": self._url(
                f"/orders/{o.id}/shipping_addresses/{a['id']}/shipping_quotes"
            ),
            "form_fields": [],
        }

    def _shipment_json(self, o: _Order, s: _Shipment) -> dict[str, Any]:
        address = next((a for a in o.addresses if a["id"] == s.order_address_id), {})
        generated = ""
        if s.tracking_number and (s.shipping_provider or s.tracking_carrier):
            template = _PROVIDER_LINKS.get(s.shipping_provider)
            if template:
                generated = template.format(n=s.tracking_number)
            else:
                slug = s.tracking_carrier or s.shipping_provider
                generated = f"https://track.aftership.com/{slug}/{s.tracking_number}"
        product_ids = {ln.id: ln.product_id for ln in o.lines}
        return {
            "id": s.id,
            "order_id": o.id,
            "customer_id": o.customer_id,
            "order_address_id": s.order_address_id,
            "date_created": rfc2822(s.date_created),
            "tracking_number": s.tracking_number,
            "merchant_shipping_cost": _money(s.merchant_shipping_cost),
            "shipping_method": s.shipping_method,
            "comments": s.comments,
            "shipping_provider": s.shipping_provider,
            "shipping_provider_display_name": _PROVIDER_NAMES.get(s.shipping_provider, ""),
            "tracking_carrier": s.tracking_carrier,
            "tracking_link": s.tracking_link,
            "generated_tracking_link": generated,
            "billing_address": {k: o.billing_address.get(k, "") for k in _ADDRESS_KEYS},
            "shipping_address": {k: address.get(k, "") for k in _ADDRESS_KEYS},
            "items": [
                {"order_product_id": pid, "product_id": product_ids.get(pid, 0), "quantity": q}
                for pid, q in s.items
            ],
        }


def _bc_address(given: dict[str, Any], email: str | None) -> dict[str, Any]:
    """A BigCommerce address from BC-native keys (or `name`/`address1`/`province`/... ones)."""
    first = given.get("first_name")
    last = given.get("last_name")
    if first is None and last is None and given.get("name"):
        first, _, last = str(given["name"]).partition(" ")
    iso2 = given.get("country_iso2") or given.get("country_code") or "US"
    return {
        "first_name": first or "Jane",
        "last_name": last or "Doe",
        "company": given.get("company", ""),
        "street_1": given.get("street_1") or given.get("address1") or "1 Main St",
        "street_2": given.get("street_2") or given.get("address2") or "",
        "city": given.get("city", "Austin"),
        "state": given.get("state") or given.get("province") or "Texas",
        "zip": str(given.get("zip", "78751")),
        "country": given.get("country") or _COUNTRIES.get(iso2, iso2),
        "country_iso2": iso2,
        "phone": given.get("phone", ""),
        "email": given.get("email") or email or "janedoe@example.com",
    }


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("GET", r"/v2/orders", "_h_list_orders"),
        ("POST", r"/v2/orders", "_h_create_order"),
        ("GET", r"/v2/orders/(\d+)", "_h_get_order"),
        ("PUT", r"/v2/orders/(\d+)", "_h_put_order"),
        ("DELETE", r"/v2/orders/(\d+)", "_h_delete_order"),
        ("GET", r"/v2/orders/(\d+)/products", "_h_products"),
        ("GET", r"/v2/orders/(\d+)/products/(\d+)", "_h_product"),
        ("GET", r"/v2/orders/(\d+)/(?:shipping_addresses|shippingaddresses)", "_h_addresses"),
        ("GET", r"/v2/orders/(\d+)/shipping_addresses/(\d+)", "_h_address"),
        ("GET", r"/v2/orders/(\d+)/shipments", "_h_list_shipments"),
        ("POST", r"/v2/orders/(\d+)/shipments", "_h_create_shipment"),
        ("DELETE", r"/v2/orders/(\d+)/shipments", "_h_delete_shipments"),
        ("GET", r"/v2/orders/(\d+)/shipments/count", "_h_count_shipments"),
        ("GET", r"/v2/orders/(\d+)/shipments/(\d+)", "_h_get_shipment"),
        ("PUT", r"/v2/orders/(\d+)/shipments/(\d+)", "_h_put_shipment"),
        ("DELETE", r"/v2/orders/(\d+)/shipments/(\d+)", "_h_delete_shipment"),
        ("GET", r"/v2/order_statuses", "_h_statuses"),
        ("GET", r"/v3/hooks", "_h_list_hooks"),
        ("POST", r"/v3/hooks", "_h_create_hook"),
        ("GET", r"/v3/hooks/admin", "_h_hooks_admin"),
        ("GET", r"/v3/hooks/(\d+)", "_h_get_hook"),
        ("PUT", r"/v3/hooks/(\d+)", "_h_put_hook"),
        ("DELETE", r"/v3/hooks/(\d+)", "_h_delete_hook"),
    ]
]

_SORT_FIELDS = ("id", "customer_id", "date_created", "date_modified", "status_id", "channel_id")


class BigCommerceSimulator(StoreSimulator["BigCommerceStore"]):
    """Many BigCommerce stores behind one local server that stands in for api.bigcommerce.com.

    `start` answers the base URL that replaces https://api.bigcommerce.com.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Configure; nothing listens until `start`."""
        super().__init__(host, port)
        self.retry_delays: tuple[float, ...] = BC_RETRY_DELAYS
        self.delivery_timeout = 10.0  # UNCONFIRMED: BC documents no timeout, only "respond now"
        self.default_quota = 150
        self.default_window_ms = 30000
        # Blocklist [OV]: per destination domain, over a sliding window, once enough requests.
        self.blocklist_window = 120.0
        self.blocklist_min_requests = 100
        self.blocklist_min_success = 0.9
        self.blocklist_seconds = 180.0
        self._hook_ids = itertools.count(18048287)
        self._store_ids = itertools.count(1025646)
        self._domain_results: dict[str, deque[tuple[float, bool, str]]] = {}
        self._blocked_until: dict[str, float] = {}
        # The login service (https://login.bigcommerce.com): apps registered in the Developer
        # Portal and the codes handed to their auth callbacks. A code's lifetime is not
        # documented (UNCONFIRMED); RFC 6749 §4.1.2 recommends at most 10 minutes.
        self._app_profiles: dict[str, BCAppProfile] = {}
        self._codes: dict[str, _AuthCode] = {}
        self.code_seconds = 600.0
        self.jwt_seconds = 24 * 3600  # callbacks.mdx: `exp` "currently, 24 hours after nbf"

    # -- stores ------------------------------------------------------------------------------

    def add_store(
        self,
        store_hash: str | None = None,
        token: str | None = None,
        client_secret: str | None = None,
        *,
        client_id: str | None = None,
        signed: bool = True,
        quota: int | None = None,
        window_ms: int | None = None,
    ) -> BigCommerceStore:
        """A new store; `signed` turns Standard Webhooks headers on its callbacks on or off."""
        store_hash = store_hash or secrets.token_hex(5)
        app = BCApp(
            client_id or f"client-{store_hash}",
            token or secrets.token_hex(16),
            client_secret or secrets.token_hex(16),
        )
        with self._lock:
            if store_hash in self._stores:
                raise ValueError(f"store {store_hash} exists")
            store = BigCommerceStore(
                self,
                store_hash,
                app,
                signed,
                quota if quota is not None else self.default_quota,
                window_ms if window_ms is not None else self.default_window_ms,
                str(next(self._store_ids)),
            )
            self._stores[store_hash] = store
            return store

    def _next_hook_id(self) -> int:
        return next(self._hook_ids)

    # -- apps and the login service -----------------------------------------------------------

    def register_app(
        self,
        auth_callback: str,
        load_callback: str = "",
        uninstall_callback: str = "",
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
    ) -> BCAppProfile:
        """An app made in the Developer Portal with its callback URLs (the login base URL is
        this simulator's `base_url`: `POST {base_url}/oauth2/token`)."""
        profile = BCAppProfile(
            client_id or f"app-{secrets.token_hex(8)}",
            client_secret or secrets.token_hex(16),
            auth_callback,
            load_callback,
            uninstall_callback,
        )
        if scope is not None:
            profile.scope = scope
        with self._lock:
            self._app_profiles[profile.client_id] = profile
        return profile

    def app(self, client_id: str) -> BCAppProfile:
        """A registered app; KeyError for an unknown client id."""
        with self._lock:
            return self._app_profiles[client_id]

    def _new_code(self, profile: BCAppProfile, store_hash: str) -> str:
        code = secrets.token_hex(8)
        with self._lock:
            self._codes[code] = _AuthCode(
                code,
                profile.client_id,
                store_hash,
                profile.scope,
                time.monotonic() + self.code_seconds,
            )
        return code

    def _h_token(self, request: Request) -> Response:
        """`POST /oauth2/token`: the code grant's exchange (auth.mdx, "Requesting the
        access_token"). The body is JSON as in the docs (bigcommerce/node-bigcommerce posts JSON);
        a form body is read too (bigcommerce/bigcommerce-api-python's `fetch_token` sends one).
        Refusals use RFC 6749 §5.2's `{"error", "error_description"}`: BigCommerce's own
        wording is not documented (UNCONFIRMED)."""

        def refuse(status: int, error: str, description: str) -> Response:
            return json_response({"error": error, "error_description": description}, status)

        if request.method != "POST":
            return refuse(405, "invalid_request", "POST only")
        if request.mimetype == "application/json":
            try:
                body = parse_json_body(request)
            except ValueError:
                return refuse(400, "invalid_request", "the body is not JSON")
        else:
            body = request.form.to_dict()
        if not isinstance(body, dict):
            return refuse(400, "invalid_request", "the body is not an object")
        wanted = ("client_id", "client_secret", "code", "scope", "grant_type", "redirect_uri")
        missing = [name for name in (*wanted, "context") if not isinstance(body.get(name), str)]
        if missing:
            return refuse(400, "invalid_request", f"missing: {', '.join(missing)}")
        if body["grant_type"] != "authorization_code":
            return refuse(400, "unsupported_grant_type", "grant_type must be authorization_code")
        with self._lock:
            profile = self._app_profiles.get(body["client_id"])
            if profile is None or not hmac.compare_digest(
                profile.client_secret.encode(), body["client_secret"].encode()
            ):
                return refuse(401, "invalid_client", "Invalid client id or secret")
            code = self._codes.get(body["code"])
            if code is None or code.client_id != profile.client_id:
                return refuse(400, "invalid_grant", "Invalid authorization code")
            if code.used or time.monotonic() > code.expires_at:
                code.used = True
                return refuse(400, "invalid_grant", "The authorization code was used or expired")
            code.used = True  # single use, even when the rest of the request is wrong
            if body["redirect_uri"] != profile.auth_callback:
                return refuse(400, "invalid_grant", "redirect_uri differs from the auth callback")
            if body["context"] != f"stores/{code.store_hash}" or body["scope"] != code.scope:
                return refuse(400, "invalid_grant", "context or scope differ from the callback's")
            store = self._stores.get(code.store_hash)
            if store is None:
                return refuse(400, "invalid_grant", "the store is gone")
            app = store._grant(profile)
            owner = dict(store.owner)
        self._calls.add(
            {
                "store": code.store_hash,
                "method": "POST",
                "path": "/oauth2/token",
                "query": "",
                "status": 200,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        return json_response(
            {
                "access_token": app.token,
                "scope": code.scope,
                # The installing user; here always the owner (no multi-user apps).
                "user": owner,
                "owner": owner,
                "context": f"stores/{code.store_hash}",
                "account_uuid": profile.account_uuid,
            }
        )

    # -- logs ------------------------------------------------------------------------------

    def deliveries(
        self, store: str | None = None, scope: str | None = None
    ) -> list[dict[str, Any]]:
        """Every webhook attempt (sent, failed, dropped, skipped), oldest first."""
        with self._lock:
            return [
                d
                for d in self._deliveries
                if (store is None or d["store"] == store) and (scope is None or d["scope"] == scope)
            ]

    def _log_delivery(
        self,
        job: _BCDelivery,
        status: int | None,
        error: str | None,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        took: float = 0.0,
    ) -> None:
        with self._lock:
            self._deliveries.append(
                {
                    "store": job.store.store_hash,
                    "hook_id": job.hook_id,
                    "scope": job.scope,
                    "url": url,
                    "attempt": job.attempt,
                    "status": status,
                    "error": error,
                    "headers": dict(headers or {}),
                    "body": job.body.decode(),
                    "seconds": round(took, 4),
                    "at": datetime.now(UTC).isoformat(),
                }
            )

    def _record_result(self, domain: str, ok: bool, status: int | None, error: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            results = self._domain_results.setdefault(domain, deque())
            results.append((now, ok, error or f"HTTP {status}"))
            while results and results[0][0] < now - self.blocklist_window:
                results.popleft()
            if len(results) >= self.blocklist_min_requests:
                rate = sum(1 for _, good, _ in results if good) / len(results)
                if rate < self.blocklist_min_success:
                    self._blocked_until[domain] = now + self.blocklist_seconds
                    results.clear()

    def _blocked_for(self, domain: str) -> float:
        with self._lock:
            return max(0.0, self._blocked_until.get(domain, 0.0) - time.monotonic())

    def unblock(self, domain: str | None = None) -> None:
        """Lift the blocklist for one destination domain (host:port), or all."""
        with self._lock:
            if domain is None:
                self._blocked_until.clear()
            else:
                self._blocked_until.pop(domain, None)

    # -- HTTP ------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path.startswith("/_sim/") or request.path == "/_sim":
            response = self._control(request)
        elif request.path == "/oauth2/token":
            response = self._h_token(request)
        else:
            response = self._api(request)
        return response(environ, start_response)

    def _api(self, request: Request) -> Response:
        match = re.fullmatch(r"/stores/([^/]+)(/.*)", request.path.rstrip("/") or "/")
        store_hash = match.group(1) if match else None
        response = self._api_answer(request, store_hash, match.group(2) if match else "")
        self._calls.add(
            {
                "store": store_hash,
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode(),
                "status": response.status_code,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        return response

    def _api_answer(self, request: Request, store_hash: str | None, rest: str) -> Response:
        with self._lock:
            store = self._stores.get(store_hash) if store_hash else None
        if store is None:
            return BCV3Error(404, "Store not found").response()
        rule = self._failures.take(store_hash)
        # An injected failure stands for platform trouble, so it carries no X-Rate-Limit-*
        # headers (a 429 without them means platform load, per the docs).
        if rule is not None:
            headers = {"Retry-After": str(int(rule.retry_after))} if rule.retry_after else {}
            body = {"status": rule.status, "title": "Simulated failure", "type": _ERROR_TYPE}
            return json_response(body, rule.status, headers)
        with self._lock:
            app = store._apps.get(request.headers.get("X-Auth-Token", ""))
        if app is None:
            response = BCV3Error(
                401,
                "Unauthorized - the v3 Auth client ID or token in the request are not a valid "
                "combination for this store.",
            ).response()
            response.headers.update(store._peek_rate_headers())
            return response
        allowed, rate_headers = store._consume()
        if not allowed:
            response = json_response(
                {"status": 429, "title": "Too many requests", "type": _ERROR_TYPE}, 429
            )
            response.headers.update(rate_headers)
            return response
        slow = self._slow.take(store_hash)
        if self.latency or slow:
            time.sleep(self.latency + (slow.retry_after or 0.0 if slow else 0.0))
        response = self._route(store, app, request, rest)
        response.headers.update(rate_headers)
        return response

    def _route(self, store: BigCommerceStore, app: BCApp, request: Request, rest: str) -> Response:
        allowed_methods = []
        for method, pattern, handler in _ROUTES:
            found = pattern.fullmatch(rest)
            if not found:
                continue
            if method != request.method:
                allowed_methods.append(method)
                continue
            args = [int(g) for g in found.groups()]
            try:
                return getattr(self, handler)(store, app, request, *args)
            except BCError as exc:
                return exc.response()
            except BCV3Error as exc:
                return exc.response()
            except ValueError:
                return BCError(400, "The request body is not valid JSON.").response()
        if allowed_methods:
            return json_response(
                [{"status": 405, "message": "The requested method is not supported."}],
                405,
                {"Allow": ", ".join(sorted(set(allowed_methods)))},
            )
        return BCError(404, "The requested resource was not found.").response()

    @staticmethod
    def _page(request: Request, default_limit: int = 50) -> tuple[int, int]:
        try:
            page = int(request.args.get("page", 1))
            limit = int(request.args.get("limit", default_limit))
        except ValueError as exc:
            raise BCError(400, "The field 'page' or 'limit' is invalid.") from exc
        if page < 1 or limit < 1:
            raise BCError(400, "The field 'page' or 'limit' is invalid.")
        # 50 by default (orders.v2.oas2.yml, parameter `limit`), 250 at most: "The maximum limit
        # is 250" in the v2 reference of each collection (developer.bigcommerce.com/api/stores/
        # v2/orders/products, mirrored in zmaniar/Api-sub api_stores_v2_orders_products.md).
        return page, min(limit, 250)

    @staticmethod
    def _list(items: list[Any], page: int, limit: int) -> Response:
        chunk = items[(page - 1) * limit : page * limit]
        if not chunk:
            return Response(status=204)  # v2 collections answer 204 No Content when empty
        return json_response(chunk)

    # v2 orders

    def _h_list_orders(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        args = request.args
        page, limit = self._page(request)
        filters: list[Callable[[_Order], bool]] = []
        for name, attr, op in (
            ("min_date_modified", "date_modified", "ge"),
            ("max_date_modified", "date_modified", "le"),
            ("min_date_created", "date_created", "ge"),
            ("max_date_created", "date_created", "le"),
        ):
            if name in args:
                try:
                    bound = parse_bc_date(args[name])
                except ValueError as exc:
                    raise BCError(400, f"The field '{name}' is invalid.") from exc
                # Inclusive bounds at second precision (BC dates carry whole seconds).
                if op == "ge":
                    filters.append(lambda o, a=attr, b=bound: getattr(o, a) >= b)
                else:
                    filters.append(lambda o, a=attr, b=bound: getattr(o, a) <= b)
        for name, attr, op in (
            ("min_id", "id", "ge"),
            ("max_id", "id", "le"),
            ("status_id", "status_id", "eq"),
            ("customer_id", "customer_id", "eq"),
        ):
            if name in args:
                try:
                    value = int(args[name])
                except ValueError as exc:
                    raise BCError(400, f"The field '{name}' is invalid.") from exc
                if op == "ge":
                    filters.append(lambda o, a=attr, v=value: getattr(o, a) >= v)
                elif op == "le":
                    filters.append(lambda o, a=attr, v=value: getattr(o, a) <= v)
                else:
                    filters.append(lambda o, a=attr, v=value: getattr(o, a) == v)
        if "email" in args:
            filters.append(lambda o, v=args["email"]: o.billing_address.get("email") == v)
        if "external_order_id" in args:
            filters.append(lambda o, v=args["external_order_id"]: o.external_order_id == v)
        deleted = args.get("is_deleted", "false").lower() == "true"
        sort = args.get("sort", "id:asc")
        field_name, _, direction = sort.partition(":")
        if field_name not in _SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise BCError(400, "The field 'sort' is invalid.")
        with self._lock:
            chosen = [
                o
                for o in store._orders.values()
                if o.is_deleted == deleted and all(f(o) for f in filters)
            ]
            key_attr = "id" if field_name == "channel_id" else field_name
            chosen.sort(key=lambda o: (getattr(o, key_attr), o.id), reverse=direction == "desc")
            items = [store._order_json(o) for o in chosen]
        return self._list(items, page, limit)

    def _h_create_order(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        # The O2 spec lists 200 for this POST; BC's status-code page says 201 for a POST. 201 here.
        return json_response(store.create_order(parse_json_body(request)), 201)

    def _h_get_order(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        return json_response(store.order(oid))

    def _h_put_order(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        return json_response(store.update_order(oid, parse_json_body(request)))

    def _h_delete_order(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        store.archive_order(oid)
        return Response(status=204)

    def _h_products(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        page, limit = self._page(request)
        return self._list(store.products(oid), page, limit)

    def _h_product(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int, pid: int
    ) -> Response:
        found = [p for p in store.products(oid) if p["id"] == pid]
        if not found:
            raise BCError(404, "The requested resource was not found.")
        return json_response(found[0])

    def _h_addresses(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        page, limit = self._page(request)
        return self._list(store.shipping_addresses(oid), page, limit)

    def _h_address(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int, aid: int
    ) -> Response:
        found = [a for a in store.shipping_addresses(oid) if a["id"] == aid]
        if not found:
            raise BCError(404, "The requested resource was not found.")
        return json_response(found[0])

    # v2 shipments

    def _h_list_shipments(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        page, limit = self._page(request)
        return self._list(store.shipments(oid), page, limit)

    def _h_create_shipment(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        return json_response(store.create_shipment(oid, parse_json_body(request)), 201)

    def _h_delete_shipments(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        with self._lock:
            order = store._order(oid)
            for shipment in list(order.shipments):
                store._drop_shipment(order, shipment)
        return Response(status=204)

    def _h_count_shipments(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int
    ) -> Response:
        return json_response({"count": len(store.shipments(oid))})

    def _h_get_shipment(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int, sid: int
    ) -> Response:
        with self._lock:
            order = store._order(oid)
            return json_response(store._shipment_json(order, store._shipment(order, sid)))

    def _h_put_shipment(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int, sid: int
    ) -> Response:
        return json_response(store.put_shipment(oid, sid, parse_json_body(request)))

    def _h_delete_shipment(
        self, store: BigCommerceStore, app: BCApp, request: Request, oid: int, sid: int
    ) -> Response:
        store.delete_shipment(oid, sid)
        return Response(status=204)

    def _h_statuses(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        return json_response(
            [
                {"id": k, "name": v, "system_label": v, "custom_label": v, "order": k}
                for k, v in STATUS_NAMES.items()
            ]
        )

    # v3 hooks

    def _h_list_hooks(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        args = request.args
        with self._lock:
            hooks = [h for h in store._hooks.values() if h.token == app.token]
        if "is_active" in args:
            wanted = args["is_active"].lower() == "true"
            hooks = [h for h in hooks if h.is_active == wanted]
        if "scope" in args:
            hooks = [h for h in hooks if h.scope == args["scope"]]
        if "destination" in args:
            hooks = [h for h in hooks if h.destination == args["destination"]]
        page = max(1, int(args.get("page", 1)))
        limit = max(1, int(args.get("limit", 50)))
        chunk = hooks[(page - 1) * limit : page * limit]
        pages = max(1, -(-len(hooks) // limit))
        return json_response(
            {
                "data": [h.to_json() for h in chunk],
                "meta": {
                    "pagination": {
                        "total": len(hooks),
                        "count": len(chunk),
                        "per_page": limit,
                        "current_page": page,
                        "total_pages": pages,
                        "links": {"current": f"?page={page}&limit={limit}"},
                    }
                },
            }
        )

    def _h_create_hook(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        try:
            body = parse_json_body(request)
        except ValueError as exc:
            raise BCV3Error(400, "Input is invalid.") from exc
        hook = store._create_hook(app.client_id, body, app.token)
        return json_response({"data": hook.to_json(), "meta": {}})  # 200, as the spec says

    def _h_get_hook(
        self, store: BigCommerceStore, app: BCApp, request: Request, hid: int
    ) -> Response:
        with self._lock:
            return json_response({"data": store._visible_hook(app, hid).to_json()})

    def _h_put_hook(
        self, store: BigCommerceStore, app: BCApp, request: Request, hid: int
    ) -> Response:
        try:
            body = parse_json_body(request)
        except ValueError as exc:
            raise BCV3Error(400, "Input is invalid.") from exc
        if not isinstance(body, dict):
            raise BCV3Error(422, "JSON data is missing or invalid", {"body": "expected object"})
        with self._lock:
            hook = store._visible_hook(app, hid)
            if "scope" in body:
                hook.scope = str(body["scope"])
            if "destination" in body:
                hook.destination = str(body["destination"])
            if "headers" in body:
                headers = body["headers"]
                hook.headers = dict(headers) if isinstance(headers, dict) else None
            if "is_active" in body:
                hook.is_active = bool(body["is_active"])
                if hook.is_active:
                    hook.deactivated = False
            hook.updated_at = int(time.time())
            return json_response({"data": hook.to_json(), "meta": {}})

    def _h_delete_hook(
        self, store: BigCommerceStore, app: BCApp, request: Request, hid: int
    ) -> Response:
        with self._lock:
            hook = store._visible_hook(app, hid)
            del store._hooks[hid]
            return json_response({"data": hook.to_json(), "meta": {}})

    def _h_hooks_admin(self, store: BigCommerceStore, app: BCApp, request: Request) -> Response:
        with self._lock:
            hooks = [h for h in store._hooks.values() if h.token == app.token]
            if "is_active" in request.args:
                wanted = request.args["is_active"].lower() == "true"
                hooks = [h for h in hooks if h.is_active == wanted]
            destinations = {urlsplit(h.destination).netloc for h in hooks}
            now = time.monotonic()
            blocked = [
                {
                    "destination": domain,
                    "time_left": int(until - now),
                    "reasons": [
                        {
                            "failure_description": "success ratio below 90%",
                            "count": 1,
                            "timestamp": int(time.time()),
                        }
                    ],
                }
                for domain, until in self._blocked_until.items()
                if until > now and domain in destinations
            ]
            listing = []
            for h in hooks:
                entry = h.to_json()
                entry["status"] = (
                    "active" if h.is_active else "deactivated" if h.deactivated else "inactive"
                )
                listing.append(entry)
        return json_response(
            {
                "data": {"emails": [], "hooks_list": listing, "blocked_domains": blocked},
                "meta": {},
            }
        )

    # -- control endpoints (/_sim/...) -------------------------------------------------------

    def _control(self, request: Request) -> Response:
        try:
            body = parse_json_body(request) if request.method in ("POST", "PUT") else {}
        except ValueError:
            return json_response({"error": "body is not JSON"}, 400)
        try:
            return self._control_route(request, request.path[len("/_sim") :], body or {})
        except (BCError, BCV3Error) as exc:
            return json_response({"error": str(exc), "status": exc.status}, exc.status)
        except KeyError as exc:
            return json_response({"error": f"unknown: {exc}"}, 404)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)

    def _control_route(self, request: Request, path: str, body: dict[str, Any]) -> Response:
        method = request.method
        parts = [p for p in path.split("/") if p]
        if parts == ["health"]:
            return json_response({"ok": True, "base_url": self.base_url})
        if parts == ["stores"] and method == "GET":
            return json_response([_store_info(s) for s in self.stores()])
        if parts == ["stores"] and method == "POST":
            store = self.add_store(
                body.get("store_hash"),
                body.get("token"),
                body.get("client_secret"),
                client_id=body.get("client_id"),
                signed=body.get("signed", True),
                quota=body.get("quota"),
                window_ms=body.get("window_ms"),
            )
            return json_response(_store_info(store), 201)
        if parts == ["apps"] and method == "POST":
            profile = self.register_app(
                body["auth_callback"],
                body.get("load_callback", ""),
                body.get("uninstall_callback", ""),
                client_id=body.get("client_id"),
                client_secret=body.get("client_secret"),
                scope=body.get("scope"),
            )
            return json_response(_app_info(profile), 201)
        if len(parts) >= 2 and parts[0] == "stores":
            return self._control_store(request, self.store(parts[1]), parts[2:], body)
        common = common_control(self, request, parts, body)
        if common is not None:
            return common
        return json_response({"error": "unknown control endpoint"}, 404)

    def _control_store(
        self, request: Request, store: BigCommerceStore, parts: list[str], body: dict[str, Any]
    ) -> Response:
        method = request.method
        if not parts:
            if method in ("POST", "PUT"):
                if "signed" in body:
                    store.signed = bool(body["signed"])
                if "auto_ship_status" in body:
                    store.auto_ship_status = bool(body["auto_ship_status"])
                if "quota" in body or "window_ms" in body:
                    store.set_rate_limit(
                        int(body.get("quota", store.quota)),
                        int(body.get("window_ms", store.window_ms)),
                    )
            return json_response(_store_info(store))
        if len(parts) == 3 and parts[0] == "apps":
            # The control panel, as the merchant's browser sees it: GET .../install and
            # GET .../load answer 302 to the app's callback; POST .../uninstall uninstalls.
            client_id, action = parts[1], parts[2]
            if action == "install" and method == "GET":
                return Response(status=302, headers={"Location": store.install_url(client_id)})
            if action == "load" and method == "GET":
                return Response(status=302, headers={"Location": store.load_url(client_id)})
            if action == "uninstall" and method == "POST":
                return json_response({"callback_status": store.uninstall_app(client_id)})
        if parts == ["webhooks"]:
            if method == "POST":
                hook = store.add_webhook(
                    body["scope"],
                    body["destination"],
                    body.get("headers"),
                    body.get("is_active", True),
                )
                return json_response(hook, 201)
            return json_response(store.webhooks())
        if parts == ["orders"]:
            if method == "POST":
                order = store.place_order(
                    body["products"],
                    body.get("shipping_address"),
                    body.get("email"),
                    body.get("billing_address"),
                    bool(body.get("paid", True)),
                )
                return json_response(order, 201)
            return json_response(store.orders())
        if parts == ["emails"]:
            return json_response(store.emails())
        if parts == ["bulk"] and method == "POST":
            ids = store.bulk_load_orders(
                int(body.get("n", 1)), step_seconds=float(body.get("step_seconds", 0))
            )
            return json_response({"ids": ids}, 201)
        if len(parts) >= 2 and parts[0] == "orders":
            oid = int(parts[1])
            tail = parts[2:]
            if not tail:
                return json_response(
                    {
                        "order": store.order(oid),
                        "products": store.products(oid),
                        "shipping_addresses": store.shipping_addresses(oid),
                        "shipments": store.shipments(oid),
                    }
                )
            if tail == ["status"] and method in ("POST", "PUT"):
                return json_response(store.set_status(oid, int(body["status_id"])))
            if tail == ["pay"] and method == "POST":
                return json_response(store.pay(oid))
            if tail == ["shipments"] and method == "POST":
                items = body.get("items")
                if items is not None:
                    items = [
                        (i["order_product_id"], i["quantity"]) if isinstance(i, dict) else tuple(i)
                        for i in items
                    ]
                shipment = store.ship(
                    oid,
                    items,
                    body.get("tracking_number", ""),
                    body.get("shipping_provider", ""),
                    body.get("tracking_carrier", ""),
                    body.get("tracking_link", ""),
                    body.get("order_address_id"),
                    body.get("comments", ""),
                )
                return json_response(shipment, 201)
            if len(tail) == 2 and tail[0] == "shipments":
                if method in ("POST", "PUT"):
                    return json_response(store.update_shipment(oid, int(tail[1]), **body))
                if method == "DELETE":
                    store.delete_shipment(oid, int(tail[1]))
                    return json_response({"ok": True})
        return json_response({"error": "unknown control endpoint"}, 404)


def _app_info(profile: BCAppProfile) -> dict[str, Any]:
    return {
        "client_id": profile.client_id,
        "client_secret": profile.client_secret,
        "auth_callback": profile.auth_callback,
        "load_callback": profile.load_callback,
        "uninstall_callback": profile.uninstall_callback,
        "scope": profile.scope,
        "account_uuid": profile.account_uuid,
    }


def _store_info(store: BigCommerceStore) -> dict[str, Any]:
    return {
        "store_hash": store.store_hash,
        "store_id": store.store_id,
        "token": store.token,
        "client_id": store.client_id,
        "client_secret": store.client_secret,
        "signed": store.signed,
        "quota": store.quota,
        "window_ms": store.window_ms,
        "auto_ship_status": store.auto_ship_status,
        "api_base_url": store._sim.base_url,
        "login_base_url": store._sim.base_url,
        "installed_apps": sorted(store._installed),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: serve stores given as `hash:token:client_secret` until interrupted."""
    parser = argparse.ArgumentParser(description="BigCommerce simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--store", action="append", default=[], help="hash:token:client_secret")
    parser.add_argument("--unsigned", action="store_true", help="no Standard Webhooks headers")
    parser.add_argument("--quota", type=int, default=150)
    parser.add_argument("--window-ms", type=int, default=30000)
    parser.add_argument("--retry-delays", default=None, help="comma-separated seconds")
    args = parser.parse_args(argv)
    sim = BigCommerceSimulator(args.host, args.port)
    sim.default_quota = args.quota
    sim.default_window_ms = args.window_ms
    if args.retry_delays:
        sim.retry_delays = tuple(float(x) for x in args.retry_delays.split(","))
    base_url = sim.start()
    for spec in args.store:
        store_hash, token, client_secret = [*spec.split(":", 2), "", ""][:3]
        sim.add_store(store_hash, token or None, client_secret or None, signed=not args.unsigned)
    print(
        json.dumps({"base_url": base_url, "stores": [_store_info(s) for s in sim.stores()]}),
        flush=True,
    )
    wait_forever(sim.stop)


if __name__ == "__main__":
    main()
