"""The one interface every platform adapter implements, and the values they translate to.

Adapters translate; they don't decide: the rules in gateway/orders.py decide what happens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import requests
from marshmallow import Schema

from gateway.delivery import DeliveryFailed, retry_after_seconds
from gateway.model import PAID, Fulfillment, ObservedFulfillment, Order
from gateway.outbound import check_connections
from gateway.settings import Settings

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # far above any answer we read (a page of orders is < 1 MiB)
DEADLINE_FACTOR = 3  # a call's whole answer must arrive within this many of its `timeout`s


class OutboundSession(requests.Session):
    """Every call to a platform or a callback URL: redirects are never followed (a cross-host
    redirect would carry the store's credentials along), and an answer is read whole only while
    it stays under MAX_ANSWER_BYTES and within its deadline (`timeout` bounds each socket
    operation, not the whole answer, so a slow drip could hold a worker for ever)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        timeout = kwargs.get("timeout")
        answer = super().request(method, url, *args, **kwargs)
        deadline = time.monotonic() + DEADLINE_FACTOR * (timeout or 10)
        body = bytearray()
        try:
            # read1: what one socket read brings (decoded), so the deadline is checked as the
            # bytes come, not only when a whole chunk has arrived.
            while chunk := answer.raw.read1(64 * 1024, decode_content=True):
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise requests.ConnectionError(f"answer over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise requests.Timeout("answer not whole within its deadline")
        finally:
            answer.close()
        answer._content = bytes(body)
        return answer


# One connection pool per process for every platform and callback call: a worker reuses its
# connections to a store instead of opening one per call. Each connection it opens is checked
# against private addresses (gateway/outbound.py).
http = check_connections(OutboundSession())


def short_reason(answer: requests.Response) -> str:
    """What we keep of a refusal: the other side's own short message when its body has one
    (`message`, `error`, first of a list), else the HTTP reason; one line, at most 120
    characters. Never the raw body: it reaches the partners' view of a delivery."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, list) and body:
        body = body[0]
    text = ""
    if isinstance(body, dict):
        found = body.get("message") or body.get("error") or body.get("title") or ""
        text = found if isinstance(found, str) else ""
    text = " ".join((text or answer.reason or "").split())
    return "".join(c for c in text if c.isprintable())[:120]


class PlatformError(DeliveryFailed):
    """A platform call that failed; `permanent` unless retrying may help (5xx, 429, time-outs)."""


class CredentialsRefused(PlatformError):  # noqa: N818 (an outcome, as PlatformError)
    """The store refused the connection's credentials (HTTP 401): a revoked key or token, an
    app removed without a word. The connection then needs its owner (`adapter_for`)."""


@dataclass(frozen=True)
class StoreLine:
    """A line of an order as a store has it."""

    ref: str  # the store's line id
    sku: str
    quantity: int
    title: str


@dataclass(frozen=True)
class StoreOrder:
    """A buyer store's order, read through the platform's API."""

    ref: str  # the store's order id, as API.md's buyer_order_ref
    lines: list[StoreLine]
    shipping_address: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    # PAID: the merchant ships it (paid, or authorized where the platform's merchants ship on
    # authorization); UNPAID: not yet; CANCELLED: cancelled, voided or declined.
    payment: str = PAID
    created_at: str | None = None  # ISO-8601 UTC, where an update webhook can name old orders


@dataclass(frozen=True)
class CreatedOrder:
    """The order as created in a seller's store: its id and the id of each of our lines there."""

    ref: str
    line_refs: dict[str, str]  # our line item id -> the store's line id
    notes: list[str] = field(default_factory=list)  # how the store took it, for the timeline


@dataclass(frozen=True)
class ChangedOrder:
    """An order a store lists as changed since a cursor; with its fulfillments when the listing
    can carry them (Shopify), so reconciling it costs no further call."""

    ref: str
    updated_at: str  # the time the listing is ordered by: updated, or created for new orders
    fulfillments: list[ObservedFulfillment] | None = None


@dataclass(frozen=True)
class ChangedPage:
    """One page of changed orders and the cursor to ask for the next (None at the end)."""

    orders: list[ChangedOrder]
    next_page: str | None


@dataclass(frozen=True)
class Keyset:
    """Where a listing ordered by time resumes: at a time, past the ids already seen at it.

    Page numbers shift when an order already listed changes during the run (it moves to the
    end), and the order that slides onto the page read already would be skipped for good;
    starting each page again at the newest time seen cannot skip one.
    """

    at: str
    seen: tuple[str, ...] = ()
    number: int = 1  # pages into one time, when more orders than a page share it

    @classmethod
    def parse(cls, page: str | None, since: str) -> Keyset:
        """The page token handed out before, or the first page at `since`."""
        if not page:
            return cls(since)
        at, seen, number = json.loads(page)
        return cls(at, tuple(seen), number)

    def fresh(self, listed: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(id, time) pairs of a page, less those seen already."""
        return [(ref, at) for ref, at in listed if not (at == self.at and ref in self.seen)]

    def next_page(self, listed: list[tuple[str, str]], page_size: int) -> str | None:
        """The token of the page after `listed`, or None at the end."""
        if len(listed) < page_size:
            return None
        last = listed[-1][1]
        if last == self.at:  # a whole page at one time: go on by page number within it
            seen = (*self.seen, *(ref for ref, _ in listed))
            return json.dumps([self.at, seen, self.number + 1])
        return json.dumps([last, [ref for ref, at in listed if at == last], 1])


class Adapter(Protocol):
    """What the jobs need from a platform, for one store connection."""

    def read_order(self, ref: str) -> StoreOrder | None:
        """A buyer store's order by its id, or None if the store has no such order."""

    def create_order(self, order: Order) -> CreatedOrder:
        """Create our order in the seller's store (or find the one an earlier attempt created)."""

    def read_fulfillments(self, ref: str) -> list[ObservedFulfillment]:
        """The fulfillments the seller's store shows now for its order `ref`."""

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str:
        """Create, or update the tracking of, the fulfillment in the buyer's store; its id there."""

    def mark_shipped(self, order: Order) -> str:
        """What the buyer's store needs once every line is fulfilled; a note for the timeline."""

    def changed_orders(self, since: str, page: str | None, created: bool = False) -> ChangedPage:
        """Orders updated (or, with `created`, created) at or after `since`, oldest first."""

    def ensure_webhooks(
        self, address: str, topics: list[str], headers: dict[str, str]
    ) -> list[WebhookCheck]:
        """Make the store deliver each topic to `address` (with `headers` where hooks carry
        them): create the missing hooks, enable the disabled ones; one check per topic."""


class PlatformPort(Protocol):
    """What an adapter may reach of our Redis store: its counters, pacing state, and its
    connection's tokens (refreshed under a lease, saved in one transaction)."""

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter shown on /metrics."""

    def pace(self, name: str) -> dict[str, float] | None:
        """A platform's rate-limit state for one store, shared by every process."""

    def set_pace(self, name: str, state: dict[str, float]) -> None:
        """Remember a store's rate-limit state for a while."""

    def acquire(self, name: str, seconds: int) -> str | None:
        """A lease for one process at a time (a token to release it with), or None."""

    def release(self, name: str, token: str) -> None:
        """Give back a lease taken with `acquire`."""

    def stored_connection(self, partner_id: str) -> dict[str, Any] | None:
        """The partner's connection as stored now, secrets included (no process cache)."""

    def save_tokens(self, partner_id: str, expected_token: str, changes: dict[str, Any]) -> bool:
        """Merge `changes` into the connection in one transaction, only while its
        `access_token` is still `expected_token`; False (nothing written) otherwise."""

    def connection_failed(self, partner_id: str, reason: str) -> None:
        """The store refused the connection for good: mark it needs_reauth and ask its owner."""


def base64_hmac_matches(secret: str, raw_body: bytes, signature: str | None) -> bool:
    """Shopify's and WooCommerce's signature: base64 HMAC-SHA256 of the raw body, compared in
    constant time."""
    if not signature or not secret:
        return False
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode())


def minute_before(iso_time: str) -> datetime:
    """A minute before our order was stored: no store order made for it can be older (the
    earliest a look-up for an earlier attempt's order needs to search)."""
    return datetime.fromisoformat(iso_time) - timedelta(minutes=1)


def refuse_status(platform: str, answer: Any) -> None:
    """Raise the PlatformError an HTTP status means: 429/5xx retryable, auth refusals permanent."""
    status = answer.status_code
    if status == 429 or status >= 500:
        raise PlatformError(
            f"{platform} answered HTTP {status}",
            retry_after=retry_after_seconds(answer.headers.get("Retry-After")),
        )
    if status == 401:
        raise CredentialsRefused(
            f"{platform} refused the credentials (HTTP 401): check the connection",
            permanent=True,
        )
    if status == 403:
        raise PlatformError(
            f"{platform} refused the call (HTTP 403): the connection lacks a permission",
            permanent=True,
        )
    if status >= 400:
        raise PlatformError(
            f"{platform} refused the call (HTTP {status}): {short_reason(answer)}", permanent=True
        )
    if 300 <= status < 400:
        raise PlatformError(f"{platform} answered HTTP {status}: a redirect, not followed")


# ---- store connections: statuses, install flows, webhook registration ------------------------

NOT_CONNECTED = "not_connected"
CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
UNINSTALLED = "uninstalled"
CONNECTION_STATUSES = (NOT_CONNECTED, CONNECTED, NEEDS_REAUTH, UNINSTALLED)

# What a verified delivery about the connection (not an order) asks for.
UNINSTALLED_EVENT = "uninstalled"
REDACT_CUSTOMER = "redact_customer"  # erase one customer's name, address, email in our orders
REDACT_SHOP = "redact_shop"  # erase every customer's personal data of the store
DATA_REQUEST = "data_request"  # a customer asked what we hold: recorded for the operator


@dataclass(frozen=True)
class ConnectionEvent:
    """A delivery about the store connection: an uninstall, a privacy-law request."""

    kind: str
    emails: tuple[str, ...] = ()
    order_refs: tuple[str, ...] = ()  # the store's own order ids
    at: str = ""  # when it happened, as the platform says (ISO-8601), if it says


@dataclass(frozen=True)
class WebhookCheck:
    """One topic's hook in a store, as found and after any repair."""

    topic: str  # as the platform names it in its deliveries
    found: str  # "active", "missing" or "disabled"
    repaired: bool = False  # created or re-enabled now
    error: str = ""  # a repair that failed: the found state stays

    @property
    def state(self) -> str:
        """The hook's state now."""
        return "active" if self.repaired else self.found


@dataclass(frozen=True)
class ConnectLink:
    """An open connect link, as the install hooks see it."""

    id: str
    partner_id: str
    platform: str
    hints: dict[str, Any]  # what the link's body and the connect page's form named
    # The store the hints name was named by the operator, or is the partner's own earlier
    # connection; else (named by the partner or typed on the page) a platform that binds by
    # the store's name alone checks that the installer is the partner's contact.
    trusted: bool = False
    contact_email: str = ""


@dataclass(frozen=True)
class InstallRequest:
    """One request to /connect/<platform>/<step>: a browser coming back, or the platform."""

    method: str
    args: Any  # the query parameters (a MultiDict)
    query_string: bytes  # as received: signatures over the query are computed on it
    raw: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class InstallAnswer:
    """What an install step answers: a redirect, a page for a person, or a plain body."""

    status: int = 200
    redirect: str | None = None
    title: str = ""
    message: str = ""
    body: str | None = None  # a server-to-server answer, sent as it is


class InstallRefused(Exception):  # noqa: N818 (an outcome shown to a person)
    """An installation that can't be bound (another partner has that store, a used link)."""


class InstallPort(Protocol):
    """The gateway's side of an install flow (gateway/connect.py)."""

    def new_state(self, link: ConnectLink, data: dict[str, Any], seconds: int = 3600) -> str:
        """A random single-use nonce bound to the link (a `state`, a `user_id`)."""

    def take_state(self, nonce: str) -> tuple[ConnectLink, dict[str, Any]] | None:
        """The open link and data of a nonce, once; None when unknown, used or expired."""

    def link_for_store(self, platform: str, identity: str) -> ConnectLink | None:
        """The open connect link whose hints name this store."""

    def partner_by_store(self, platform: str, identity: str) -> dict[str, Any] | None:
        """The partner connected to this store."""

    def complete(
        self,
        link: ConnectLink,
        connection: dict[str, Any],
        status: str = CONNECTED,
        reason: str = "",
    ) -> dict[str, Any]:
        """Keep the connection on the link's partner and use the link up; InstallRefused."""

    def uninstalled(self, partner_id: str, reason: str) -> None:
        """The store's owner removed the app."""

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter shown on /metrics."""

    def now(self) -> float:
        """The time (epoch seconds) a callback's timestamp is checked against."""


# ---- the declaration each platform module registers ---------------------------------------------

# What a webhook topic starts: the jobs map these to their functions (gateway/webhooks).
INGEST_ORDER = "ingest_order"  # a buyer store's new order: read it, split it, store ours
SYNC_SELLER = "sync_seller"  # a seller store's fulfillments changed: read them, apply them


@dataclass
class WebhookCall:
    """One webhook request as the platform hooks see it; the body is parsed on first use (the
    parser answers 400 for a body that is no JSON object)."""

    headers: Mapping[str, str]
    raw: bytes
    mimetype: str
    form: Callable[[], Mapping[str, str]]
    parse: Callable[[bytes], dict[str, Any]]
    _body: dict[str, Any] | None = None

    def header(self, name: str) -> str:
        """A header's value, or "" when absent."""
        return self.headers.get(name) or ""

    def body(self) -> dict[str, Any]:
        """The body as a JSON object."""
        if self._body is None:
            self._body = self.parse(self.raw)
        return self._body


class Platform:
    """What a platform is to the gateway. One module in gateway/platforms/ subclasses it and
    registers an instance; everything that lists or tells platforms apart asks the registry.

    A store identity (`store_identity`, `webhook_store`) is what finds the partner whose store
    sent a webhook: the same text from the connection and from the request.
    """

    name: ClassVar[str]  # as API.md's `platform`; also a fulfillment's `source` when synced
    label: ClassVar[str]  # for people: "Shopify"
    connection_schema: ClassVar[type[Schema]]  # the `connection` of POST /api/v1/partners
    # Orders are created in the seller's store / read from the buyer's; reconciled every cycle.
    has_store: ClassVar[bool] = True
    # Sellers' fulfillments are read from their store; else they use our form (and the emailed
    # link), and a seller's own fulfillments can't be edited or deleted (rule 4).
    fulfillments_from_store: ClassVar[bool] = True
    # A buyer on this platform may give a callback_url for events.
    callbacks: ClassVar[bool] = False
    topics: ClassVar[dict[str, str]] = {}  # webhook topic -> INGEST_ORDER or SYNC_SELLER
    # The queue of deliveries to a buyer on this platform (None: the gateway's own).
    delivery_queue: ClassVar[str | None] = None
    webhook_auth: ClassVar[str] = ""  # how its webhooks are signed and matched, for OpenAPI
    # The install flow (API.md "Store connections"): the hints a connect link takes (a field
    # with metadata {"operator_only": True} is the operator's alone; one with {"ask": label} is
    # asked on the connect page when the link left it out), the steps served under
    # /connect/<name>/<step> with their methods, connection fields sealed at rest beside the
    # schema's load_only ones, and topics registered whatever the partner's role.
    install_schema: ClassVar[type[Schema] | None] = None
    install_steps: ClassVar[dict[str, tuple[str, ...]]] = {}
    extra_secrets: ClassVar[tuple[str, ...]] = ()
    lifecycle_topics: ClassVar[tuple[str, ...]] = ()
    # The sites that may show the install steps' pages in a frame (a platform whose admin
    # loads the app's pages inside itself); none by default.
    install_frame_ancestors: ClassVar[str] = ""

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        """The identity webhooks find this connection's store by (None: no store)."""
        return None

    def webhook_headers(self, connection: dict[str, Any]) -> dict[str, str]:
        """Headers the store's hooks must send (set when a hook is made; shown once when the
        partner is created, for hooks made by hand)."""
        return {}

    def adapter(self, partner: dict[str, Any], port: PlatformPort, config: Settings) -> Any:
        """The adapter of the partner's store connection (see `Adapter`)."""
        raise PlatformError(f"{self.label} has no store to call", permanent=True)

    # ---- connecting a store ----------------------------------------------------------------------

    def begin_install(
        self, link: ConnectLink, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """The connect page's last step: send the browser to the platform (or tell the owner
        what to do there)."""
        raise NotImplementedError

    def install_step(
        self, step: str, request: InstallRequest, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """One of `install_steps`: the platform or the browser coming back."""
        raise NotImplementedError

    def webhook_topics(self, roles: set[str]) -> list[str]:
        """The topics a store connection registers for the partner's roles."""
        wanted = {INGEST_ORDER} if "buyer" in roles else set()
        if "seller" in roles and self.fulfillments_from_store:
            wanted.add(SYNC_SELLER)
        return [t for t, job in self.topics.items() if job in wanted] + list(self.lifecycle_topics)

    def connection_event(self, topic: str, call: WebhookCall) -> ConnectionEvent | None:
        """A verified delivery about the connection itself (not an order), if this is one."""
        return None

    # ---- webhooks (only for platforms with `topics`) ---------------------------------------------

    def is_ping(self, call: WebhookCall) -> bool:
        """A platform's unsigned test delivery, answered 200 and otherwise ignored."""
        return False

    def webhook_store(self, call: WebhookCall) -> str | None:
        """The store identity a webhook names, before it is verified."""
        raise NotImplementedError

    def verify_webhook(
        self, connection: dict[str, Any], call: WebhookCall, config: Settings
    ) -> bool:
        """True when the request is signed for this connection (on the raw body); an installed
        connection's key may be the app's own secret, a setting."""
        raise NotImplementedError

    def delivery_id(self, call: WebhookCall) -> str | None:
        """What makes a delivery unique within its store (dedupe); None refuses it."""
        raise NotImplementedError

    def topic(self, call: WebhookCall) -> str:
        """The delivery's topic, as the platform names it."""
        raise NotImplementedError

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        """The store order a delivery of one of `topics` is about."""
        raise NotImplementedError

    # ---- the buyer's side: how a fulfillment and the shipped notice reach it ---------------------

    def forward_fulfillment(
        self, adapter: Any, order: Order, fulfillment: Fulfillment
    ) -> tuple[str | None, str]:
        """Deliver one fulfillment (or its tracking change); (its id there, a timeline note)."""
        ref = adapter.forward_fulfillment(order, fulfillment)
        verb = "updated" if fulfillment.delivery.buyer_ref else "created"
        return ref, f"{verb} in the buyer's {self.name} store as {ref}"

    def mark_shipped(self, adapter: Any, order: Order) -> tuple[str | None, str]:
        """What the buyer's side needs once every line is fulfilled; (a ref, a timeline note)."""
        return None, adapter.mark_shipped(order)
