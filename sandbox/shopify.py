"""A local Shopify stand-in: Admin GraphQL subset, signed webhooks and failure modes, many shops.

It follows ../shared/platforms/shopify.md and Shopify's documentation, not the gateway's adapter:
the schema in shopify_schema.graphql uses Shopify's names, every document is validated against it,
responses carry `extensions.cost` from a per-shop leaky bucket, and webhooks are REST-shaped,
HMAC-signed and sent from a background thread.

    sim = ShopifySimulator()
    base_url = sim.start()
    shop = sim.add_shop("acme.myshopify.com", access_token="shpat_acme",
                        client_secret="acme-secret", location_name="Main")
    shop.add_webhook("orders/create", "http://127.0.0.1:8000/webhooks/shopify")
    order = shop.place_order(line_items=[{"sku": "AC-100", "quantity": 2, "title": "Mug"}])
    ...
    sim.stop()

The clock, call log, failure switches, webhook dispatcher, server and the common `/_sim/` control
endpoints are sandbox.common's, as for the BigCommerce and WooCommerce simulators. Run
`python -m sandbox.shopify --help` for the stand-alone server and its `/_sim/` control API.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import html
import itertools
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    parse,
    print_ast,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_argument_values, get_variable_values
from werkzeug.wrappers import Request, Response

from sandbox.common import (
    FailRule,
    FailureSwitch,
    StoreSimulator,
    WebhookDispatcher,
    WebhookJob,
    WebhookMode,
    as_utc,
    common_control,
    json_response,
    send_http,
    wait_forever,
)

SCHEMA_PATH = Path(__file__).with_name("shopify_schema.graphql")
DEFAULT_API_VERSION = "2026-01"
MAX_PAGE_SIZE = 250  # SD/api/usage/limits: inputs and pages are capped at 250
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_TOKEN_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
# The app every simulated shop's access token belongs to: `$app` namespaces are its reserved
# `app--{id}` ones (shopify.dev/docs/apps/build/custom-data/ownership).
APP_ID = 7_000_000_000
VERSION_PATTERN = re.compile(r"^(\d{4}-(0[1-9]|1[0-2])|unstable)$")
GRAPHQL_PATH = re.compile(r"^/admin/api/([^/]+)/graphql\.json$")
# A shop's own host, as a path prefix: https://{shop}/admin/... is served at
# {base_url}/store/{shop}/admin/... (`Shop.base_url`), so the install flow knows the shop.
STORE_PREFIX = re.compile(r"^/store/([a-z0-9][a-z0-9-]*\.myshopify\.com)(/.*)$")

# ---- the app (the gateway as a Shopify public app) ----------------------------------------------
# Expiring offline access tokens live 60 minutes ("expires_in ... (3600 seconds)"); refresh tokens
# have a "normal 90-day lifetime" (shopify.dev/changelog/offline-access-tokens-now-support-expiry-
# and-refresh; .../more-resilient-refreshes-for-expiring-offline-access-tokens).
ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 90 * 86400
# "the previously used refresh token [is retained] until an app begins using its replacement",
# at most "30 days from the original refresh token's first use" (the 2026-08-28 changelog above).
# The simulator retires it when the app first uses the new access token or the new refresh token.
REFRESH_RECOVERY = 30 * 86400
AUTHORIZATION_CODE_TTL = 600  # UNCONFIRMED: Shopify documents no lifetime; codes are single-use
# "Shopify retries failed webhook calls up to eight times in a four-hour period, but if failures
# persist past that point the webhook subscription is removed" when it "was configured using the
# Admin API" (shopify.dev/docs/apps/build/webhooks/troubleshooting-webhooks and .../subscribe/
# https, quoted at hookrescue.com/shopify-webhook-subscription-auto-deleted; the 8 retries over
# 4 h: shopify.dev/changelog/updates-to-webhook-retry-mechanism). Shopify has no disabled state.
SUBSCRIPTION_FAILURE_LIMIT = 8
SUBSCRIPTION_FAILURE_WINDOW = timedelta(hours=4)
# What a custom app's static token may do in a simulated shop (its scopes are the merchant's pick).
STATIC_TOKEN_SCOPES = (
    "write_orders", "read_all_orders", "read_fulfillments", "write_fulfillments",
    "write_merchant_managed_fulfillment_orders", "write_third_party_fulfillment_orders",
)  # fmt: skip
# The mandatory compliance topics, sent to the URLs in the app's configuration, never subscribed
# by API (shopify.dev/docs/apps/build/compliance/privacy-law-compliance).
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def expand_scopes(scopes: Iterable[str]) -> list[str]:
    """Scopes with those they imply: a write_X grants read_X (Shopify/shopify-app-js,
    packages/apps/shopify-api/lib/auth/scopes/index.ts `getImpliedScopes`)."""
    found = [s.strip() for s in scopes if s.strip()]
    for scope in list(found):
        match = re.match(r"^(unauthenticated_)?write_(.*)$", scope)
        if match and f"{match[1] or ''}read_{match[2]}" not in found:
            found.append(f"{match[1] or ''}read_{match[2]}")
    return found


@dataclass
class App:
    """The public app as the Partner Dashboard (or Dev Dashboard) knows it: its credentials, the
    redirection URLs it allows (empty: any http(s) URL), its compliance webhook URL(s), and the
    scopes a merchant grants (None: what the app asks for; a list: those, e.g. short ones)."""

    client_id: str = "sim-shopify-client-id"
    client_secret: str = "sim-shopify-client-secret"
    redirect_urls: list[str] = field(default_factory=list)
    compliance_url: str | None = None
    grant_scopes: list[str] | None = None
    name: str = "Fulfillment gateway"


@dataclass
class RefreshGrant:
    """One refresh token: its shop, lifetime, and what its use gave (to retire it later)."""

    shop: str
    expires_at: datetime
    first_used: datetime | None = None
    successor_access: str | None = None
    successor_refresh: str | None = None
    retired: bool = False


@dataclass
class Installation:
    """The app installed on a shop: the scopes granted and the live tokens."""

    scopes: list[str]
    access_tokens: dict[str, datetime | None] = field(default_factory=dict)  # -> expiry
    used_tokens: set[str] = field(default_factory=set)


# GraphQL WebhookSubscriptionTopic value -> the REST-style topic sent in X-Shopify-Topic.
TOPICS = {
    "APP_UNINSTALLED": "app/uninstalled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENTS_UPDATE": "fulfillments/update",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_CREATE": "orders/create",
    "ORDERS_EDITED": "orders/edited",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "ORDERS_UPDATED": "orders/updated",
}
TOPIC_ENUMS = {rest: enum for enum, rest in TOPICS.items()}
# How a subscription names its delivery headers: "webhooks" as Shopify's webhooks do
# (X-Shopify-Topic, ...: shopify.dev/docs/apps/build/webhooks/delivery-structure), "events" as
# its Events deliveries do, with no X- prefix and the subscription's name as Shopify-Handle
# (shopify.dev/docs/apps/build/events/delivery-structure). Body and signature are the same.
HEADER_STYLES = {"webhooks": ("X-Shopify-", "Name"), "events": ("Shopify-", "Handle")}

# The tracking companies a shop recognizes (FulfillmentTrackingInfo.company, "Supported tracking
# companies", shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentTrackingInfo): those
# listed for shops in any country, and those for shops in the United States, where simulated
# shops are. Exact case: "DHL Express" is known, "DHL" and "dhl express" are not. Any other
# company is stored as given, with no URL but the ones sent.
SUPPORTED_TRACKING_COMPANIES = frozenset({
    "4PX", "AGS", "Amazon", "Amazon Logistics UK", "An Post", "Anjun Logistics", "APC",
    "Asendia USA", "Australia Post", "Bonshaw", "BPost", "BPost International", "Canada Post",
    "Canpar", "CDL Last Mile", "China Post", "Chronopost", "Chukou1", "Colissimo", "Comingle",
    "Coordinadora", "Correios", "Correos", "CTT", "CTT Express", "Cyprus Post", "Delnext",
    "Deutsche Post", "DHL eCommerce", "DHL eCommerce Asia", "DHL Express", "DPD", "DPD Local",
    "DPD UK", "DTD Express", "DX", "Eagle", "Estes", "Evri", "FedEx", "First Global Logistics",
    "First Line", "FSC", "Fulfilla", "GLS", "Guangdong Weisuyi Information Technology (WSE)",
    "Heppner Internationale Spedition GmbH & Co.", "Iceland Post", "IDEX", "Israel Post",
    "Japan Post (EN)", "Japan Post (JA)", "La Poste Colissimo", "La Poste Burkina Faso",
    "Lasership", "Latvia Post", "Lietuvos Paštas", "Logisters", "Lone Star Overnight",
    "M3 Logistics", "Meteor Space", "Mondial Relay", "New Zealand Post", "NinjaVan",
    "North Russia Supply Chain (Shenzhen) Co.", "OnTrac", "Packeta", "Pago Logistics",
    "Ping An Da Tengfei Express", "Pitney Bowes", "Portal PostNord", "Poste Italiane", "PostNL",
    "PostNord DK", "PostNord NO", "PostNord SE", "Purolator", "Qxpress", "Qyun Express",
    "Royal Mail", "Royal Shipments", "Sagawa (EN)", "Sagawa (JA)", "Sendle", "SF Express",
    "SFC Fulfillment", "SHREE NANDAN COURIER", "Singapore Post", "Southwest Air Cargo",
    "StarTrack", "Step Forward Freight", "Swiss Post", "TForce Final Mile", "Tinghao", "TNT",
    "Toll IPEC", "United Delivery Service", "UPS", "USPS", "Venipak", "We Post", "Whistl", "Wizmo",
    "WMYC", "Xpedigo", "XPO Logistics", "Yamato (EN)", "Yamato (JA)", "YiFan Express",
    "YunExpress",
    # and for shops in the United States:
    "Alliance Air Freight", "Pilot Freight", "LSO", "Old Dominion", "Pandion", "R+L Carriers",
})  # fmt: skip

ALL_ORDERS_WINDOW = timedelta(days=60)  # what read_orders reaches without read_all_orders

# orderCreate on a development or trial store: "a maximum of five new orders per minute"
# (shopify.dev/docs/api/admin-graphql/latest/mutations/orderCreate); ShopPlan.publicDisplayName
# names those plans. The refusal is the one recorded for the REST API's orders (HTTP 429,
# Shopify/shopify-api-ruby#899): the GraphQL one is not documented.
ORDER_LIMITED_PLANS = ("Development", "Trial", "Plus Trial")
ORDER_LIMIT, ORDER_LIMIT_WINDOW = 5, timedelta(minutes=1)
ORDER_LIMIT_MESSAGE = (
    "Exceeded order API rate limit, please try again in a minute. "
    "Upgrade to a paid account to remove this limit."
)

# Shopify builds tracking URLs for carriers on its list (exact case). The URL shapes are the
# carriers' public tracking pages; Shopify's exact templates are not documented.
CARRIER_TRACKING_URLS = {
    "UPS": "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums={number}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={number}&brand=DHL",
    "DHL eCommerce": "https://webtrack.dhlecs.com/?trackingnumber={number}",
    "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    "DPD": "https://tracking.dpd.de/parcelstatus?query={number}",
    "PostNL": "https://postnl.nl/tracktrace/?B={number}",
    "Australia Post": "https://auspost.com.au/mypost/track/#/details/{number}",
}
COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "BE": "Belgium",
    "ES": "Spain",
    "IT": "Italy",
    "AT": "Austria",
    "CH": "Switzerland",
    "SE": "Sweden",
    "DK": "Denmark",
    "NO": "Norway",
    "FI": "Finland",
    "PL": "Poland",
    "AU": "Australia",
    "NZ": "New Zealand",
    "JP": "Japan",
    "MX": "Mexico",
    "BR": "Brazil",
}
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip


# ---- time and ids ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    """GraphQL DateTime: `2026-11-27T10:00:00Z`."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rest_time(value: datetime | None) -> str | None:
    """REST timestamps carry the shop's offset; simulated shops run on UTC."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _gid(kind: str, number: int) -> str:
    """A Shopify global id."""
    return f"gid://shopify/{kind}/{number}"


_GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?.*)?$")


def _invalid_gid(value: object) -> GraphQLError:
    """The top-level error Shopify answers for an id that is not a global id."""
    return GraphQLError(
        f"Invalid global id '{value}'",
        extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
    )


def _gid_number(value: object, kind: str) -> int | None:
    """The number in a gid of `kind`; None for a well-formed gid of another kind."""
    match = _GID.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise _invalid_gid(value)
    return int(match.group(2)) if match.group(1) == kind else None


def _lookup_number(value: object, kind: str) -> int:
    """Python-API ids: a gid of `kind`, a numeric id, or its string."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    match = _GID.match(text)
    if not match or match.group(1) != kind:
        raise KeyError(f"not a {kind} id: {value!r}")
    return int(match.group(2))


def _money(amount: Decimal) -> str:
    """Shopify's decimal strings: two places."""
    return str(amount.quantize(Decimal("0.01")))


# ---- the in-memory store -------------------------------------------------------------------------


@dataclass(eq=False)
class Address:
    """A mailing address (shipping or billing)."""

    id: int
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    phone: str | None = None

    @property
    def name(self) -> str | None:
        """First and last name together."""
        return " ".join(p for p in (self.first_name, self.last_name) if p) or None


@dataclass(eq=False)
class Location:
    """A shop location (every simulated shop has one)."""

    id: int
    name: str


@dataclass(eq=False)
class LineItem:
    """An order line."""

    id: int
    order: Order
    title: str
    quantity: int
    price: Decimal
    sku: str | None = None
    variant_id: int | None = None
    product_id: int | None = None
    variant_title: str | None = None
    vendor: str | None = None
    requires_shipping: bool = True
    properties: list[dict] = field(default_factory=list)
    fulfilled_quantity: int = 0

    @property
    def unfulfilled_quantity(self) -> int:
        """Ordered minus fulfilled (cancelled fulfillments give quantity back)."""
        return self.quantity - self.fulfilled_quantity

    @property
    def name(self) -> str:
        """Title plus variant title, as Shopify shows it."""
        return f"{self.title} - {self.variant_title}" if self.variant_title else self.title

    @property
    def fulfillment_status(self) -> str:
        """The deprecated per-line status string."""
        if self.fulfilled_quantity >= self.quantity:
            return "fulfilled"
        return "partial" if self.fulfilled_quantity else "unfulfilled"


@dataclass(eq=False)
class FulfillmentOrderLineItem:
    """A line of a fulfillment order: what is left to fulfil of one order line."""

    id: int
    fulfillment_order: FulfillmentOrder
    line_item: LineItem
    total_quantity: int
    remaining_quantity: int


@dataclass(eq=False)
class FulfillmentOrder:
    """The work to fulfil (part of) an order from one location."""

    id: int
    order: Order
    location: Location
    status: str
    created_at: datetime
    updated_at: datetime
    line_items: list[FulfillmentOrderLineItem] = field(default_factory=list)

    def refresh_status(self) -> None:
        """OPEN until something is fulfilled, IN_PROGRESS when partly, CLOSED when all is."""
        if self.status == "CANCELLED":
            return
        remaining = sum(line.remaining_quantity for line in self.line_items)
        total = sum(line.total_quantity for line in self.line_items)
        if remaining == 0:
            self.status = "CLOSED"
        elif remaining == total:
            self.status = "OPEN"
        else:
            self.status = "IN_PROGRESS"


@dataclass(eq=False)
class FulfillmentLineItem:
    """How many of one order line a fulfillment ships."""

    id: int
    line_item: LineItem
    quantity: int
    parts: list[tuple[FulfillmentOrderLineItem, int]] = field(default_factory=list)


@dataclass(eq=False)
class Fulfillment:
    """A shipment of some order lines, with its tracking."""

    id: int
    order: Order
    sequence: int
    location: Location
    created_at: datetime
    updated_at: datetime
    status: str = "SUCCESS"
    company: str | None = None
    numbers: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    line_items: list[FulfillmentLineItem] = field(default_factory=list)
    fulfillment_orders: list[FulfillmentOrder] = field(default_factory=list)
    notify_customer: bool = False

    @property
    def name(self) -> str:
        """`#1001.1`, `#1001.2`, ..."""
        return f"{self.order.name}.{self.sequence}"

    @property
    def company_recognized(self) -> bool:
        """Whether the shop knows the tracking company (it builds no links for others)."""
        return self.company in SUPPORTED_TRACKING_COMPANIES

    def tracking(self) -> list[dict]:
        """One {company, number, url} per tracking number (or one with no number)."""
        if not self.numbers:
            if self.company or self.urls:
                url = self.urls[0] if self.urls else None
                return [{"company": self.company, "number": None, "url": url}]
            return []
        return [
            {"company": self.company, "number": number, "url": _at(self.urls, i)}
            for i, number in enumerate(self.numbers)
        ]


def _at(values: list, index: int) -> Any:
    """values[index], or None past the end."""
    return values[index] if index < len(values) else None


@dataclass(eq=False)
class Order:
    """An order with its lines, fulfillment orders and fulfillments."""

    id: int
    shop: Shop
    number: int
    name: str
    created_at: datetime
    updated_at: datetime
    processed_at: datetime
    email: str | None = None
    phone: str | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    source_name: str | None = None
    source_identifier: str | None = None
    po_number: str | None = None
    currency: str = "USD"
    financial_status: str = "PAID"
    test: bool = False
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    customer: dict | None = None
    custom_attributes: list[dict] = field(default_factory=list)
    shipping_lines: list[dict] = field(default_factory=list)
    line_items: list[LineItem] = field(default_factory=list)
    fulfillment_orders: list[FulfillmentOrder] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    # (namespace, key) -> (type, value)
    metafields: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    searchable_at: datetime | None = None  # when `query:` searches start to find it (search lag)

    @property
    def display_fulfillment_status(self) -> str:
        """UNFULFILLED, PARTIALLY_FULFILLED or FULFILLED, from the lines' fulfilled counts."""
        fulfilled = sum(line.fulfilled_quantity for line in self.line_items)
        if fulfilled == 0:
            return "UNFULFILLED"
        if all(line.unfulfilled_quantity == 0 for line in self.line_items):
            return "FULFILLED"
        return "PARTIALLY_FULFILLED"

    @property
    def subtotal(self) -> Decimal:
        """Sum of line prices times quantities."""
        return sum((line.price * line.quantity for line in self.line_items), Decimal("0"))

    @property
    def total(self) -> Decimal:
        """Subtotal plus shipping lines."""
        shipping = sum((Decimal(line["price"]) for line in self.shipping_lines), Decimal("0"))
        return self.subtotal + shipping


@dataclass(eq=False)
class WebhookSubscription:
    """Where one topic's webhooks go."""

    id: int
    topic: str  # REST style: orders/create
    uri: str
    name: str
    api_version: str
    created_at: datetime
    updated_at: datetime
    include_fields: list[str] = field(default_factory=list)
    filter: str | None = None
    format: str = "JSON"
    header_style: str = "webhooks"  # a key of HEADER_STYLES
    owner: str = "static"  # "app": made with an installed app's token (the app's own list)
    secret: str = ""  # what its deliveries are signed with (its app's client secret)
    failures: list[datetime] = field(default_factory=list)  # failed attempts since a success


# ---- search syntax (`query:` arguments) ----------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()|(?P<close>\))
        |(?P<term>-?[A-Za-z_]+:(?:<=|>=|<|>)?(?:'[^']*'|"[^"]*"|[^\s()]+))
        |(?P<quoted>'[^']*'|"[^"]*")
        |(?P<word>[^\s()]+)
    )""",
    re.VERBOSE,
)


@dataclass
class _Term:
    field: str | None
    op: str
    value: str
    negate: bool = False


class SearchQuery:
    """Shopify search syntax, the part the simulator needs.

    Terms `field:value`, `field:>value` (also >=, <, <=), quoted or not, joined by spaces or AND,
    alternatives with OR, negation with a leading `-` or NOT. Parentheses are ignored (AND binds
    tighter than OR). Unknown fields match everything, as Shopify ignores filters it doesn't know.
    """

    def __init__(self, text: str | None) -> None:
        self.groups: list[list[_Term]] = [[]]
        negate_next = False
        for match in _TOKEN.finditer(text or ""):
            kind = match.lastgroup
            token = match.group(kind)
            if kind in ("open", "close"):
                continue
            if kind == "word" and token in ("AND", "OR", "NOT"):
                if token == "OR":
                    self.groups.append([])
                elif token == "NOT":
                    negate_next = True
                continue
            term = self._term(kind, token)
            term.negate = term.negate or negate_next
            negate_next = False
            self.groups[-1].append(term)
        self.groups = [group for group in self.groups if group] or [[]]

    @staticmethod
    def _term(kind: str, token: str) -> _Term:
        negate = token.startswith("-") and kind == "term"
        if negate:
            token = token[1:]
        if kind == "term":
            name, rest = token.split(":", 1)
            op = "="
            for candidate in (">=", "<=", ">", "<"):
                if rest.startswith(candidate):
                    op, rest = candidate, rest[len(candidate) :]
                    break
            return _Term(name.lower(), op, _unquote(rest), negate)
        return _Term(None, "=", _unquote(token))

    def matches(self, accessor: Callable[[str | None], list | None]) -> bool:
        """True when any OR-group has all its terms true; `accessor(field)` gives the values."""
        return any(all(self._holds(term, accessor) for term in group) for group in self.groups)

    @staticmethod
    def _holds(term: _Term, accessor: Callable[[str | None], list | None]) -> bool:
        values = accessor(term.field)
        if values is None:  # a filter Shopify doesn't know for this resource: ignored
            return True
        result = any(_compare(value, term.op, term.value) for value in values)
        return not result if term.negate else result


def _unquote(text: str) -> str:
    """Strip one pair of surrounding quotes."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _compare(actual: object, op: str, wanted: str) -> bool:
    """Compare one stored value with a search value, typed by the stored value."""
    if actual is None:
        return False
    if isinstance(actual, datetime):
        try:
            when, date_only = _search_time(wanted)
        except ValueError:
            return False
        if op == "=":
            return actual.date() == when.date() if date_only else actual == when
        if date_only and op in (">", "<="):
            when = when + timedelta(days=1) - timedelta(seconds=1)
        return _ordered(actual, op, when)
    if isinstance(actual, int):
        match = re.search(r"(\d+)$", wanted)
        return bool(match) and _ordered(actual, op, int(match.group(1)))
    text, want = str(actual).lower(), wanted.lower()
    if op != "=":
        return _ordered(text, op, want)
    if want.endswith("*"):
        return text.startswith(want[:-1])
    return text == want


def _ordered(actual: Any, op: str, wanted: Any) -> bool:
    """actual <op> wanted for =, >, >=, <, <=."""
    return {
        "=": actual == wanted,
        ">": actual > wanted,
        ">=": actual >= wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
    }[op]


@lru_cache(maxsize=256)
def _search_time(text: str) -> tuple[datetime, bool]:
    """A search value as UTC time; dates alone mean midnight UTC of that day."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC), True
    return as_utc(text), False


_ORDER_FULFILLMENT_FILTERS = {
    "UNFULFILLED": ["unshipped", "unfulfilled", "any"],
    "PARTIALLY_FULFILLED": ["partial", "unfulfilled", "any"],
    "FULFILLED": ["shipped", "fulfilled", "any"],
}
_ORDER_ATTRIBUTE_FILTERS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "processed_at": "processed_at",
    "id": "id",
    "email": "email",
    "source_name": "source_name",
    "source_identifier": "source_identifier",
}


def _order_accessor(order: Order) -> Callable[[str | None], list | None]:
    """The values of an order for each search field Shopify documents for `orders`."""

    def values(name: str | None) -> list | None:
        attribute = _ORDER_ATTRIBUTE_FILTERS.get(name or "")
        if attribute is not None:
            return [getattr(order, attribute)]
        if name is None:
            skus = [line.sku for line in order.line_items if line.sku]
            return [order.name, order.name.lstrip("#"), order.email or "", *skus]
        if name == "name":
            return [order.name, order.name.lstrip("#")]
        if name == "sku":
            return [line.sku for line in order.line_items]
        if name == "tag":
            return list(order.tags)
        if name == "financial_status":
            return [order.financial_status.lower()]
        if name == "test":
            return [str(order.test).lower()]
        if name == "status":
            state = "cancelled" if order.cancelled_at else "closed" if order.closed_at else "open"
            return [state, "any"] + (["not_closed"] if state != "closed" else [])
        if name == "fulfillment_status":
            return _ORDER_FULFILLMENT_FILTERS[order.display_fulfillment_status]
        return None

    return values


def _timestamps_accessor(item: Any) -> Callable[[str | None], list | None]:
    """Search fields of fulfillments: created_at and updated_at."""

    def values(name: str | None) -> list | None:
        if name == "created_at":
            return [item.created_at]
        if name == "updated_at":
            return [item.updated_at]
        if name == "id":
            return [item.id]
        return None

    return values


# ---- pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sorter:
    """How a connection orders its items and writes/reads cursor values."""

    key: Callable[[Any], tuple]
    value: Callable[[Any], str]
    parse: Callable[[str], Any]


def _time_value(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _time_parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


BY_ID = _Sorter(key=lambda item: (item.id, item.id), value=lambda item: str(item.id), parse=int)
ORDER_SORTERS = {
    "ID": BY_ID,
    "CREATED_AT": _Sorter(
        lambda o: (o.created_at, o.id), lambda o: _time_value(o.created_at), _time_parse
    ),
    "UPDATED_AT": _Sorter(
        lambda o: (o.updated_at, o.id), lambda o: _time_value(o.updated_at), _time_parse
    ),
    "PROCESSED_AT": _Sorter(
        lambda o: (o.processed_at, o.id), lambda o: _time_value(o.processed_at), _time_parse
    ),
    "ORDER_NUMBER": _Sorter(lambda o: (o.number, o.id), lambda o: str(o.number), int),
    "TOTAL_PRICE": _Sorter(lambda o: (o.total, o.id), lambda o: str(o.total), Decimal),
    "CURRENT_TOTAL_PRICE": _Sorter(lambda o: (o.total, o.id), lambda o: str(o.total), Decimal),
}


def _encode_cursor(sorter: _Sorter, item: Any) -> str:
    """Opaque cursors shaped like Shopify's: base64 of {"last_id", "last_value"}."""
    raw = json.dumps({"last_id": item.id, "last_value": sorter.value(item)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(sorter: _Sorter, cursor: str) -> tuple:
    """The (sort value, id) a cursor points at."""
    try:
        raw = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return sorter.parse(raw["last_value"]), int(raw["last_id"])
    except (ValueError, KeyError, TypeError, InvalidOperation) as error:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from error


def paginate(items: Iterable[Any], args: dict, sorter: _Sorter = BY_ID) -> dict:
    """A Relay connection ({edges, nodes, pageInfo}) over `items`, keyset-paginated."""
    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=sorter.key, reverse=reverse)
    keys = [sorter.key(item) for item in ordered]

    def beyond(key: tuple, mark: tuple) -> bool:
        return key < mark if reverse else key > mark

    low, high = 0, len(ordered)
    if args.get("after"):
        mark = _decode_cursor(sorter, args["after"])
        low = next((i for i, key in enumerate(keys) if beyond(key, mark)), len(ordered))
    if args.get("before"):
        mark = _decode_cursor(sorter, args["before"])
        high = next((i for i, key in enumerate(keys) if not beyond(mark, key)), len(ordered))
        high = max(high, low)
    start, end = low, high
    if args.get("first") is not None:
        end = min(end, start + args["first"])
    if args.get("last") is not None:
        start = max(start, end - args["last"])
    page = ordered[start:end]
    edges = [{"cursor": _encode_cursor(sorter, item), "node": item} for item in page]
    return {
        "edges": edges,
        "nodes": page,
        "pageInfo": {
            "hasNextPage": end < len(ordered),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# ---- leaky bucket and query cost ----------------------------------------------------------------


class CostBucket:
    """Shopify's leaky bucket for one app + store: points restore continuously up to the max."""

    def __init__(self, maximum: float, restore_rate: float) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._available = float(maximum)
        self._stamp = time.monotonic()

    def available(self) -> float:
        """Points available now."""
        now = time.monotonic()
        self._available = min(
            self.maximum, self._available + (now - self._stamp) * self.restore_rate
        )
        self._stamp = now
        return self._available

    def take(self, points: float) -> None:
        """Spend points (the caller checked there are enough)."""
        self._available = self.available() - points

    def give(self, points: float) -> None:
        """Refund points (requested minus actual)."""
        self._available = min(self.maximum, self.available() + points)

    def configure(
        self,
        maximum: float | None = None,
        restore_rate: float | None = None,
        currently_available: float | None = None,
    ) -> None:
        """Change the bucket size, restore rate or current level."""
        if maximum is not None:
            self.maximum = float(maximum)
        if restore_rate is not None:
            self.restore_rate = float(restore_rate)
        self._available = min(self.maximum, self.available())
        if currently_available is not None:
            self._available = float(currently_available)
            self._stamp = time.monotonic()

    def status(self) -> dict:
        """The `throttleStatus` object."""
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": int(self.available()),
            "restoreRate": self.restore_rate,
        }


_MISSING = object()


class QueryCost:
    """Static checks and the calculated cost of one operation, approximating Shopify's rules.

    From shopify.dev (GraphQL Admin API rate limits) and Shopify's engineering write-up:
    scalars and enums cost 0; an object costs 1; a connection costs 2 plus, for each of the
    `first`/`last` nodes it may return, the cost of one node (1 + its own selections); a list
    of objects sized by `first` costs `first` times one item, and an unsized list counts one
    item; a mutation's root field costs 10, and the objects directly inside its payload are
    free (their own connections still count). `requestedQueryCost` uses the requested sizes,
    `actualQueryCost` the numbers of objects really returned. Directives (@skip/@include) are
    not taken into account.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        document: Any,
        operation: OperationDefinitionNode,
        variables: dict,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.errors: list[GraphQLError] = []
        self.is_mutation = operation.operation.value == "mutation"
        root = schema.mutation_type if self.is_mutation else schema.query_type
        self.root: GraphQLObjectType = root
        self.requested = self._root_cost(_MISSING, check=True)

    def actual(self, data: dict | None) -> int:
        """The cost of what the response really holds."""
        if data is None:
            return 0
        return self._root_cost(data, check=False)

    def _root_cost(self, data: Any, check: bool) -> int:
        if not self.is_mutation:
            return self._selection_cost(self.root, self.operation.selection_set, data, [], check)
        total = 0
        for node in self._collect(self.operation.selection_set):
            definition = self.root.fields.get(node.name.value)
            if definition is None:
                continue
            key = _response_key(node)
            value = data.get(key) if isinstance(data, dict) else _MISSING
            if value is None:
                total += 10
                continue
            payload = get_named_type(definition.type)
            if check:
                self._check_arguments(definition, node, [key])
            total += 10 + self._selection_cost(payload, node.selection_set, value, [key], check, 0)
        return total

    def _collect(self, selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._collect(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    yield from self._collect(fragment.selection_set)

    def _selection_cost(
        self,
        parent: GraphQLObjectType,
        selection_set: SelectionSetNode | None,
        data: Any,
        path: list,
        check: bool,
        unit: int = 1,
    ) -> int:
        total = 0
        for node in self._collect(selection_set):
            name = node.name.value
            definition = parent.fields.get(name)
            if definition is None:
                continue
            key = _response_key(node)
            if data is _MISSING:
                value = _MISSING
            else:
                value = data.get(key) if isinstance(data, dict) else None
            total += self._field_cost(definition, node, value, [*path, key], check, unit)
        return total

    def _field_cost(
        self, definition: Any, node: FieldNode, value: Any, path: list, check: bool, unit: int
    ) -> int:
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType):
            return 0
        args = get_argument_values(definition, node, self.variables)
        if check:
            self._check_arguments(definition, node, path, args)
        static = value is _MISSING
        size = args.get("first") if args.get("first") is not None else args.get("last")
        if named.name.endswith("Connection"):
            if not static and value is None:
                return 0
            return 2 + self._connection_nodes_cost(named, node, value, path, check, size or 0)
        if is_list_type(get_nullable_type(definition.type)):
            if static:
                count = size if size is not None else 1
                item = self._selection_cost(named, node.selection_set, _MISSING, path, check)
                return count * (unit + item)
            return sum(
                unit + self._selection_cost(named, node.selection_set, item, path, False)
                for item in value or []
            )
        if not static and value is None:
            return 0
        return unit + self._selection_cost(named, node.selection_set, value, path, check)

    def _connection_nodes_cost(
        self,
        connection: GraphQLObjectType,
        node: FieldNode,
        value: Any,
        path: list,
        check: bool,
        size: int,
    ) -> int:
        node_type = get_named_type(connection.fields["nodes"].type)
        total = 0
        for sub in self._collect(node.selection_set):
            key = _response_key(sub)
            if sub.name.value == "nodes":
                if value is _MISSING:
                    one = self._selection_cost(node_type, sub.selection_set, _MISSING, path, check)
                    total += size * (1 + one)
                else:
                    for item in value.get(key) or []:
                        total += 1 + self._selection_cost(
                            node_type, sub.selection_set, item, path, False
                        )
            elif sub.name.value == "edges":
                for inner in self._collect(sub.selection_set):
                    if inner.name.value != "node":
                        continue
                    inner_key = _response_key(inner)
                    if value is _MISSING:
                        one = self._selection_cost(
                            node_type, inner.selection_set, _MISSING, path, check
                        )
                        total += size * (1 + one)
                    else:
                        for edge in value.get(key) or []:
                            total += 1 + self._selection_cost(
                                node_type, inner.selection_set, edge.get(inner_key), path, False
                            )
        return total

    def _check_arguments(
        self, definition: Any, node: FieldNode, path: list, args: dict | None = None
    ) -> None:
        """Page-size rules Shopify enforces before running a query."""
        if args is None:
            args = get_argument_values(definition, node, self.variables)
        named = get_named_type(definition.type)
        nodes = [node]
        if named.name.endswith("Connection") and "first" in definition.args:
            if args.get("first") is None and args.get("last") is None:
                self.errors.append(
                    GraphQLError("you must provide one of first or last", nodes, path=path)
                )
            if args.get("first") is not None and args.get("last") is not None:
                self.errors.append(
                    GraphQLError("providing both first and last is not supported", nodes, path=path)
                )
        for name in ("first", "last"):
            size = args.get(name)
            if size is None:
                continue
            if size < 0:
                self.errors.append(
                    GraphQLError(
                        f"Argument '{name}' on Field '{node.name.value}' has an "
                        f"invalid value ({size}). Expected a non-negative integer.",
                        nodes,
                        path=path,
                    )
                )
            elif size > MAX_PAGE_SIZE:
                self.errors.append(
                    GraphQLError(
                        f"The {name} argument on Field '{node.name.value}' can't be larger "
                        f"than {MAX_PAGE_SIZE} (requested {size}).",
                        nodes,
                        path=path,
                        extensions={"code": "MAX_PAGE_SIZE_EXCEEDED"},
                    )
                )


def _response_key(node: FieldNode) -> str:
    """The key a field has in the response: its alias or its name."""
    return node.alias.value if node.alias else node.name.value


# ---- Shopify-shaped errors ---------------------------------------------------------------------

_VALIDATION_REWRITES: list[tuple[re.Pattern, Callable[[re.Match], tuple[str, dict]]]] = [
    (
        re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'\."),
        lambda m: (
            f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
            {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]},
        ),
    ),
    (
        re.compile(r"^Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\."),
        lambda m: (
            f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
            {
                "code": "argumentNotAccepted",
                "name": m[3],
                "typeName": "Field",
                "argumentName": m[1],
            },
        ),
    ),
    (
        re.compile(r"^Field '(\w+)' argument '(\w+)' of type '(.+)' is required"),
        lambda m: (
            f"Field '{m[1]}' is missing required arguments: {m[2]}",
            {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": m[1],
                "arguments": m[2],
            },
        ),
    ),
    (
        re.compile(r"^Field '(\w+)' of type '(.+)' must have a selection of subfields"),
        lambda m: (
            f"Field must have selections (field '{m[1]}' returns {m[2].strip('[]!')} but has "
            f"no selections. Did you mean '{m[1]} {{ ... }}'?)",
            {
                "code": "selectionMismatch",
                "nodeName": f"field '{m[1]}'",
                "typeName": m[2].strip("[]!"),
            },
        ),
    ),
    (
        re.compile(r"^Field '(\w+)' must not have a selection since type '(.+)' has no subfields"),
        lambda m: (
            f"Selections can't be made on scalars (field '{m[1]}' returns {m[2]} but has "
            "selections)",
            {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2]},
        ),
    ),
    (
        re.compile(r"^Expected value of type '(\w+)' not to include unknown field '(\w+)'"),
        lambda m: (
            f"InputObject '{m[1]}' doesn't accept argument '{m[2]}'",
            {
                "code": "argumentNotAccepted",
                "name": m[1],
                "typeName": "InputObject",
                "argumentName": m[2],
            },
        ),
    ),
    (
        re.compile(r"^Value '(\w+)' does not exist in '(\w+)' enum"),
        lambda m: (
            f"Argument has an invalid value ({m[1]}). Expected type '{m[2]}'.",
            {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        ),
    ),
    (
        re.compile(r"^Variable '\$(\w+)' is never used"),
        lambda m: (
            f"Variable ${m[1]} is declared by anonymous query but not used",
            {"code": "variableNotUsed", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"^Variable '\$(\w+)' is not defined"),
        lambda m: (
            f"Variable ${m[1]} is used by anonymous query but not declared",
            {"code": "variableNotDefined", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"^Unknown type '(\w+)'"),
        lambda m: (
            f"{m[1]} isn't a defined input type",
            {"code": "variableRequiresValidType", "typeName": m[1]},
        ),
    ),
]


def _validation_error(error: GraphQLError) -> dict:
    """A graphql-core validation error reworded the way Shopify (graphql-ruby) words it."""
    formatted = error.formatted
    for pattern, rewrite in _VALIDATION_REWRITES:
        match = pattern.match(error.message)
        if match:
            message, extensions = rewrite(match)
            break
    else:
        message, extensions = error.message, {"code": "invalidQuery"}
    result: dict = {"message": message}
    if formatted.get("locations"):
        result["locations"] = formatted["locations"]
    result["extensions"] = extensions
    return result


def _variable_errors(
    errors: list[GraphQLError], operation: OperationDefinitionNode, raw: dict
) -> list[dict]:
    """graphql-core variable errors as graphql-ruby words them: one per variable, with problems."""
    types = {d.variable.name.value: print_ast(d.type) for d in operation.variable_definitions or ()}
    pattern = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at ([^:]+))?: (.*)$")
    grouped: dict[str, dict] = {}
    result: list[dict] = []
    for error in errors:
        match = pattern.match(error.message)
        if not match:
            result.append({"message": error.message})
            continue
        name, where, explanation = match.group(1), match.group(2), match.group(3)
        if "non-null type" in explanation and "to be provided" in explanation:
            explanation = "Expected value to not be null"
        path = [a or b for a, b in re.findall(r"\.(\w+)|\[(\d+)\]", where or "")]
        if name in grouped:
            grouped[name]["extensions"]["problems"].append(
                {"path": path, "explanation": explanation}
            )
            continue
        message = f"Variable ${name} of type {types.get(name, '?')} was provided invalid value"
        if path:
            message += f" for {'.'.join(path)}"
        grouped[name] = {
            "message": f"{message} ({explanation})",
            "locations": error.formatted.get("locations", []),
            "extensions": {
                "value": raw.get(name),
                "problems": [{"path": path, "explanation": explanation}],
            },
        }
        result.append(grouped[name])
    return result


def _user_error(path: list[str | int] | None, message: str, code: str | None = None) -> dict:
    """A userErrors entry."""
    entry: dict = {
        "field": [str(p) for p in path] if path is not None else None,
        "message": message,
    }
    if code is not None:
        entry["code"] = code
    return entry


# ---- GraphQL resolvers --------------------------------------------------------------------------


@dataclass
class _Context:
    sim: ShopifySimulator
    shop: Shop
    version: str
    app: bool = False  # the caller is the installed app (else the shop's static token)

    @property
    def owner(self) -> str:
        return "app" if self.app else "static"


@lru_cache(maxsize=512)
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _default_resolver(source: Any, info: Any, **_args: Any) -> Any:
    """Dict keys by field name; otherwise the snake_case attribute of the model object."""
    if isinstance(source, dict):
        return source.get(info.field_name)
    return getattr(source, _snake(info.field_name), None)


def _money_bag(amount: Decimal, currency: str) -> dict:
    money = {"amount": _money(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def _address_lines(address: Address, with_name: bool, with_company: bool) -> list[str]:
    lines = []
    if with_name and address.name:
        lines.append(address.name)
    if with_company and address.company:
        lines.append(address.company)
    lines += [p for p in (address.address1, address.address2) if p]
    city_line = " ".join(p for p in (address.city, address.province_code, address.zip) if p)
    if city_line:
        lines.append(city_line)
    if address.country:
        lines.append(address.country)
    return lines


def _country_enum(code: str | None) -> str | None:
    return code if code in _country_codes() else None


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    return frozenset(_schema().type_map["CountryCode"].values)


def _resolve_formatted(
    address: Address,
    info: Any,
    withName: bool = False,  # noqa: N803 (GraphQL's argument name)
    withCompany: bool = True,  # noqa: N803
) -> list[str]:
    return _address_lines(address, withName, withCompany)


def _resolve_order_fulfillments(
    order: Order, info: Any, first: int | None = None, query: str | None = None
) -> list:
    search = SearchQuery(query)
    found = [f for f in order.fulfillments if search.matches(_timestamps_accessor(f))]
    return found[:first] if first is not None else found


def _resolve_orders(_root: Any, info: Any, **args: Any) -> dict:
    shop: Shop = info.context.shop
    search = SearchQuery(args.get("query"))
    found = [
        o
        for o in shop.orders_by_id.values()
        if shop.order_visible(o) and search.matches(_order_accessor(o))
    ]
    if args.get("query"):  # a search: orders its index doesn't have yet are not found
        now = info.context.sim.clock.now()
        found = [o for o in found if o.searchable_at is None or o.searchable_at <= now]
    sorter = ORDER_SORTERS.get(args.get("sortKey") or "PROCESSED_AT", BY_ID)
    return paginate(found, args, sorter)


def _resolve_order(_root: Any, info: Any, id: str) -> Order | None:
    shop: Shop = info.context.shop
    number = _gid_number(id, "Order")
    order = shop.orders_by_id.get(number) if number is not None else None
    return order if order is not None and shop.order_visible(order) else None


def _resolve_order_by_identifier(_root: Any, info: Any, identifier: dict) -> Order | None:
    """orderByIdentifier: by id, or by a custom ID, an `id` metafield read directly, not
    through the search index (shopify.dev/docs/apps/build/custom-data/metafields/
    working-with-custom-ids)."""
    shop: Shop = info.context.shop
    if identifier.get("id") is not None:
        return _resolve_order(_root, info, identifier["id"])
    custom = identifier.get("customId") or {}
    namespace = _namespace(custom.get("namespace"))
    definition = shop.metafield_definitions.get(("ORDER", namespace, custom.get("key")))
    # A custom ID is an `id` metafield with its definition; what Shopify answers for a key with
    # none is not documented: null here.
    if definition is None or definition["type"] != "id":
        return None
    path, wanted = (namespace, custom.get("key")), ("id", custom.get("value"))
    return next((o for o in shop.orders_by_id.values() if o.metafields.get(path) == wanted), None)


def _namespace(namespace: str | None) -> str:
    """A metafield namespace as stored: `$app` (the default) and `$app:x` are the app's reserved
    `app--{id}` and `app--{id}--x` (shopify.dev/docs/apps/build/custom-data/ownership)."""
    if not namespace or namespace == "$app":
        return f"app--{APP_ID}"
    if namespace.startswith("$app:"):
        return f"app--{APP_ID}--{namespace.removeprefix('$app:')}"
    return namespace


def _resolve_node(kind: str, table: str) -> Callable:
    def resolve(_root: Any, info: Any, id: str) -> Any:
        number = _gid_number(id, kind)
        return getattr(info.context.shop, table).get(number) if number is not None else None

    return resolve


def _resolve_location(_root: Any, info: Any, id: str | None = None) -> Location | None:
    location = info.context.shop.location
    if id is None:
        return location
    return location if _gid_number(id, "Location") == location.id else None


def _resolve_webhook_subscriptions(_root: Any, info: Any, **args: Any) -> dict:
    # An app lists only its own subscriptions.
    owner = info.context.owner
    subs = [s for s in info.context.shop.subscriptions.values() if s.owner == owner]
    if args.get("topics"):
        subs = [s for s in subs if TOPIC_ENUMS.get(s.topic) in args["topics"]]
    if args.get("uri"):
        subs = [s for s in subs if s.uri == args["uri"]]
    if args.get("format"):
        subs = [s for s in subs if s.format == args["format"]]
    return paginate(subs, args)


def _line_item_variant(line: LineItem, info: Any) -> dict | None:
    if line.variant_id is None:
        return None
    return {
        "id": _gid("ProductVariant", line.variant_id),
        "legacyResourceId": str(line.variant_id),
        "sku": line.sku,
        "title": line.variant_title or "Default Title",
    }


def _supported_actions(fo: FulfillmentOrder, info: Any) -> list[dict]:
    if fo.status in ("OPEN", "IN_PROGRESS"):
        actions = ["CREATE_FULFILLMENT", "HOLD", "MOVE", "SPLIT", "MERGE", "REQUEST_FULFILLMENT"]
        return [{"action": action} for action in actions]
    return []


def _assigned_location(fo: FulfillmentOrder, info: Any) -> dict:
    return {
        "name": fo.location.name,
        "location": fo.location,
        "countryCode": "US",
        "address1": None,
        "address2": None,
        "city": None,
        "phone": None,
        "province": None,
        "zip": None,
    }


def _current_installation(_root: Any, info: Any) -> dict:
    shop = info.context.shop
    if info.context.app and shop.installation is not None:
        granted = expand_scopes(shop.installation.scopes)
    else:
        granted = expand_scopes(STATIC_TOKEN_SCOPES)
    return {
        "id": _gid("AppInstallation", shop.id),
        "launchUrl": f"https://admin.shopify.com/store/{shop.domain.split('.')[0]}/apps/gateway",
        "accessScopes": [{"handle": h, "description": h.replace("_", " ")} for h in granted],
    }


def _api_version(sub: WebhookSubscription, info: Any) -> dict:
    return {"handle": sub.api_version, "displayName": sub.api_version, "supported": True}


def _connection(attribute: str) -> Callable:
    def resolve(source: Any, info: Any, **args: Any) -> dict:
        return paginate(getattr(source, attribute), args)

    return resolve


def _line_fulfillment_total(fli: FulfillmentLineItem, info: Any) -> dict:
    line = fli.line_item
    return _money_bag(line.price * fli.quantity, line.order.currency)


RESOLVERS: dict[str, dict[str, Callable]] = {
    "QueryRoot": {
        "currentAppInstallation": _current_installation,
        "order": _resolve_order,
        "orderByIdentifier": _resolve_order_by_identifier,
        "orders": _resolve_orders,
        "fulfillment": _resolve_node("Fulfillment", "fulfillments_by_id"),
        "fulfillmentOrder": _resolve_node("FulfillmentOrder", "fulfillment_orders_by_id"),
        "location": _resolve_location,
        "locations": lambda _r, info, **args: paginate([info.context.shop.location], args),
        "shop": lambda _r, info: info.context.shop,
        "webhookSubscription": _resolve_node("WebhookSubscription", "subscriptions"),
        "webhookSubscriptions": _resolve_webhook_subscriptions,
    },
    "Mutation": {
        "orderCreate": lambda _r, info, **args: info.context.shop.api_order_create(**args),
        "fulfillmentCreate": lambda _r, info, **args: info.context.shop.api_fulfillment_create(
            **args
        ),
        "fulfillmentTrackingInfoUpdate": lambda _r, info, **args: (
            info.context.shop.api_tracking_update(**args)
        ),
        "fulfillmentCancel": lambda _r, info, id: info.context.shop.api_fulfillment_cancel(id),
        "metafieldDefinitionCreate": lambda _r, info, definition: (
            info.context.shop.api_metafield_definition_create(definition)
        ),
        "webhookSubscriptionCreate": lambda _r, info, **args: info.context.shop.api_webhook_create(
            info.context.version, **args, owner=info.context.owner
        ),
        "webhookSubscriptionDelete": lambda _r, info, id: info.context.shop.api_webhook_delete(
            id, owner=info.context.owner
        ),
    },
    "Shop": {
        "id": lambda s, info: _gid("Shop", s.id),
        "name": lambda s, info: s.name,
        "myshopifyDomain": lambda s, info: s.domain,
        "email": lambda s, info: f"owner@{s.domain}",
        "currencyCode": lambda s, info: s.currency,
        "ianaTimezone": lambda s, info: "Etc/UTC",
        "plan": lambda s, info: {
            "partnerDevelopment": s.plan == "Development",
            "publicDisplayName": s.plan,
        },
    },
    "Location": {
        "id": lambda loc, info: _gid("Location", loc.id),
        "legacyResourceId": lambda loc, info: str(loc.id),
        "isActive": lambda loc, info: True,
        "fulfillsOnlineOrders": lambda loc, info: True,
    },
    "Order": {
        "id": lambda o, info: _gid("Order", o.id),
        "legacyResourceId": lambda o, info: str(o.id),
        "createdAt": lambda o, info: _iso(o.created_at),
        "updatedAt": lambda o, info: _iso(o.updated_at),
        "processedAt": lambda o, info: _iso(o.processed_at),
        "cancelledAt": lambda o, info: _iso(o.cancelled_at),
        "closedAt": lambda o, info: _iso(o.closed_at),
        "closed": lambda o, info: o.closed_at is not None,
        "confirmed": lambda o, info: True,
        "cancelReason": lambda o, info: "OTHER" if o.cancelled_at else None,
        "currencyCode": lambda o, info: o.currency,
        "displayFinancialStatus": lambda o, info: o.financial_status,
        "fulfillable": lambda o, info: (
            o.cancelled_at is None and any(line.unfulfilled_quantity for line in o.line_items)
        ),
        "fulfillments": _resolve_order_fulfillments,
        "fulfillmentsCount": lambda o, info: {"count": len(o.fulfillments), "precision": "EXACT"},
        "fulfillmentOrders": _connection("fulfillment_orders"),
        "lineItems": _connection("line_items"),
        "totalPriceSet": lambda o, info: _money_bag(o.total, o.currency),
        "subtotalPriceSet": lambda o, info: _money_bag(o.subtotal, o.currency),
    },
    "LineItem": {
        "id": lambda li, info: _gid("LineItem", li.id),
        "currentQuantity": lambda li, info: li.quantity,
        "customAttributes": lambda li, info: [
            {"key": p["name"], "value": p["value"]} for p in li.properties
        ],
        "fulfillableQuantity": lambda li, info: li.unfulfilled_quantity,
        "nonFulfillableQuantity": lambda li, info: 0,
        "refundableQuantity": lambda li, info: li.quantity,
        "originalUnitPriceSet": lambda li, info: _money_bag(li.price, li.order.currency),
        "variant": _line_item_variant,
    },
    "MailingAddress": {
        "id": lambda a, info: f"gid://shopify/MailingAddress/{a.id}?model_name=Address",
        "countryCodeV2": lambda a, info: _country_enum(a.country_code),
        "formatted": _resolve_formatted,
    },
    "FulfillmentOrder": {
        "id": lambda fo, info: _gid("FulfillmentOrder", fo.id),
        "createdAt": lambda fo, info: _iso(fo.created_at),
        "updatedAt": lambda fo, info: _iso(fo.updated_at),
        "fulfillAt": lambda fo, info: None,
        "orderId": lambda fo, info: _gid("Order", fo.order.id),
        "orderName": lambda fo, info: fo.order.name,
        "requestStatus": lambda fo, info: "UNSUBMITTED",
        "assignedLocation": _assigned_location,
        "lineItems": _connection("line_items"),
        "supportedActions": _supported_actions,
    },
    "FulfillmentOrderLineItem": {
        "id": lambda foli, info: _gid("FulfillmentOrderLineItem", foli.id),
        "productTitle": lambda foli, info: foli.line_item.title,
        "sku": lambda foli, info: foli.line_item.sku,
        "requiresShipping": lambda foli, info: foli.line_item.requires_shipping,
        "variantTitle": lambda foli, info: foli.line_item.variant_title,
        "vendor": lambda foli, info: foli.line_item.vendor,
    },
    "Fulfillment": {
        "id": lambda f, info: _gid("Fulfillment", f.id),
        "legacyResourceId": lambda f, info: str(f.id),
        "createdAt": lambda f, info: _iso(f.created_at),
        "updatedAt": lambda f, info: _iso(f.updated_at),
        "deliveredAt": lambda f, info: None,
        "estimatedDeliveryAt": lambda f, info: None,
        "inTransitAt": lambda f, info: None,
        "requiresShipping": lambda f, info: True,
        "totalQuantity": lambda f, info: sum(fli.quantity for fli in f.line_items),
        "trackingInfo": lambda f, info, first=None: (
            f.tracking()[:first] if first is not None else f.tracking()
        ),
        "fulfillmentLineItems": _connection("line_items"),
        "fulfillmentOrders": _connection("fulfillment_orders"),
    },
    "FulfillmentLineItem": {
        "id": lambda fli, info: _gid("FulfillmentLineItem", fli.id),
        "originalTotalSet": _line_fulfillment_total,
    },
    "WebhookSubscription": {
        "id": lambda s, info: _gid("WebhookSubscription", s.id),
        "legacyResourceId": lambda s, info: str(s.id),
        "topic": lambda s, info: TOPIC_ENUMS.get(s.topic),
        "callbackUrl": lambda s, info: s.uri,
        "createdAt": lambda s, info: _iso(s.created_at),
        "updatedAt": lambda s, info: _iso(s.updated_at),
        "metafieldNamespaces": lambda s, info: [],
        "apiVersion": _api_version,
    },
}


# Protected customer data (shopify.dev/docs/apps/launch/protected-customer-data): since 2022-10 an
# app not approved for the name, address, email and phone fields gets them redacted: null in
# `data`, with an `errors` entry whose path names the field (HTTP 200); an address keeps its
# country and province. The message follows that page's examples.
PROTECTED_FIELDS = {
    "Order": ("email", "phone"),
    "MailingAddress": (
        "address1",
        "address2",
        "city",
        "company",
        "firstName",
        "formatted",
        "lastName",
        "name",
        "phone",
        "zip",
    ),
}


def _protected(field_name: str, resolve: Callable) -> Callable:
    """A resolver that redacts the field for a shop whose app is not approved for it."""

    def resolver(source: Any, info: Any, **args: Any) -> Any:
        if not info.context.shop.customer_data_approved:
            raise GraphQLError(
                f"This app is not approved to use the {field_name} field. See "
                "https://partners.shopify.com/0/apps/0/customer_data for more details."
            )
        return resolve(source, info, **args)

    return resolver


@lru_cache(maxsize=1)
def _schema() -> GraphQLSchema:
    """The SDL subset with the resolvers attached (built once)."""
    schema = build_schema(SCHEMA_PATH.read_text())
    for type_name, fields in RESOLVERS.items():
        graphql_type = schema.type_map[type_name]
        for field_name, resolver in fields.items():
            graphql_type.fields[field_name].resolve = resolver
    for type_name, names in PROTECTED_FIELDS.items():
        for field_name in names:
            field = schema.type_map[type_name].fields[field_name]
            field.resolve = _protected(field_name, field.resolve or _default_resolver)
    return schema


# ---- webhooks -----------------------------------------------------------------------------------


class _Delivery(WebhookJob):
    """One webhook POST to one subscription; its retries and duplicate keep its id and body."""

    def __init__(
        self,
        shop: Shop,
        topic: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        payload: dict,
        subscription: int | None = None,
    ) -> None:
        """The first attempt of one event to one subscription (None: a compliance webhook)."""
        self.shop = shop
        self.subscription = subscription
        self.topic = topic
        self.url = url
        self.body = body
        self.headers = headers
        self.payload = payload
        self.attempt = 1
        self.duplicate = False

    def discard(self) -> None:
        """Log the drop."""
        self.shop.sim._log_delivery(self, None, "dropped")

    def run(self, dispatcher: WebhookDispatcher) -> None:
        """Send it, and in duplicate mode a copy marked `duplicate`; each failure is retried."""
        copies, self.copies = self.copies, 1
        twins = [self]
        for _ in range(copies - 1):
            twin = copy.copy(self)
            twin.duplicate = True
            twins.append(twin)
        for delivery in twins:
            delivery._send(dispatcher)

    def _send(self, dispatcher: WebhookDispatcher) -> None:
        sim = self.shop.sim
        # Redirects are not followed: Shopify counts a 3xx as a failed delivery.
        status, error, _ = send_http(
            sim._session, self.url, self.body, self.headers, sim.delivery_timeout
        )
        ok = status is not None and 200 <= status < 300
        sim._log_delivery(self, status, "delivered" if ok else "failed", error)
        if self.subscription is not None and self.shop._delivery_outcome(self.subscription, ok):
            return  # the subscription was removed: no more attempts
        if not ok and self.attempt <= len(sim.retry_delays):
            retry = copy.copy(self)
            retry.attempt += 1
            dispatcher.schedule(retry, sim.retry_delays[self.attempt - 1])


def _delivery_header(delivery: _Delivery, name: str) -> str:
    """One of a delivery's Shopify headers, in whichever style its subscription names them."""
    return next(
        delivery.headers[f"{prefix}{name}"]
        for prefix, _ in HEADER_STYLES.values()
        if f"{prefix}{name}" in delivery.headers
    )


def sign(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# ---- REST-shaped webhook payloads ----------------------------------------------------------------


def _rest_address(address: Address | None) -> dict | None:
    if address is None:
        return None
    return {
        "first_name": address.first_name,
        "address1": address.address1,
        "phone": address.phone,
        "city": address.city,
        "zip": address.zip,
        "province": address.province,
        "country": address.country,
        "last_name": address.last_name,
        "address2": address.address2,
        "company": address.company,
        "latitude": None,
        "longitude": None,
        "name": address.name,
        "country_code": address.country_code,
        "province_code": address.province_code,
    }


def _rest_price_set(amount: Decimal, currency: str) -> dict:
    money = {"amount": _money(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _rest_line_item(line: LineItem, quantity: int | None = None) -> dict:
    return {
        "id": line.id,
        "admin_graphql_api_id": _gid("LineItem", line.id),
        "fulfillable_quantity": line.unfulfilled_quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None if line.fulfilled_quantity == 0 else line.fulfillment_status,
        "gift_card": False,
        "grams": 0,
        "name": line.name,
        "price": _money(line.price),
        "price_set": _rest_price_set(line.price, line.order.currency),
        "product_exists": line.product_id is not None,
        "product_id": line.product_id,
        "properties": [dict(p) for p in line.properties],
        "quantity": line.quantity if quantity is None else quantity,
        "current_quantity": line.quantity,
        "requires_shipping": line.requires_shipping,
        "sku": line.sku,
        "taxable": True,
        "title": line.title,
        "total_discount": "0.00",
        "variant_id": line.variant_id,
        "variant_title": line.variant_title,
        "vendor": line.vendor,
    }


def _rest_fulfillment(fulfillment: Fulfillment) -> dict:
    """The REST Fulfillment resource (the body of fulfillments/create and /update)."""
    numbers, urls = fulfillment.numbers, fulfillment.urls
    return {
        "id": fulfillment.id,
        "admin_graphql_api_id": _gid("Fulfillment", fulfillment.id),
        "created_at": _rest_time(fulfillment.created_at),
        "location_id": fulfillment.location.id,
        "name": fulfillment.name,
        "order_id": fulfillment.order.id,
        "origin_address": {},
        "receipt": {},
        "service": "manual",
        "shipment_status": None,
        "status": fulfillment.status.lower(),
        "tracking_company": fulfillment.company,
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": list(numbers),
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": list(urls),
        "updated_at": _rest_time(fulfillment.updated_at),
        "line_items": [
            _rest_line_item(fli.line_item, fli.quantity) for fli in fulfillment.line_items
        ],
    }


def _rest_shop(shop: Shop) -> dict:
    """The REST Shop resource, the body of `app/uninstalled` (a subset of its keys)."""
    return {
        "id": shop.id,
        "name": shop.name,
        "email": f"owner@{shop.domain}",
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "currency": shop.currency,
        "plan_display_name": shop.plan,
    }


def _rest_order(order: Order) -> dict:
    """The REST Order resource (the body of orders/* webhooks)."""
    status = order.display_fulfillment_status
    customer = None
    if order.email or order.customer:
        customer = {
            "id": order.shop.customer_id(order.email or ""),
            "email": order.email,
            "admin_graphql_api_id": _gid("Customer", order.shop.customer_id(order.email or "")),
            "first_name": (order.customer or {}).get("firstName"),
            "last_name": (order.customer or {}).get("lastName"),
        }
    return {
        "id": order.id,
        "admin_graphql_api_id": _gid("Order", order.id),
        "app_id": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": "other" if order.cancelled_at else None,
        "cancelled_at": _rest_time(order.cancelled_at),
        "closed_at": _rest_time(order.closed_at),
        "confirmed": True,
        "contact_email": order.email,
        "created_at": _rest_time(order.created_at),
        "currency": order.currency,
        "current_subtotal_price": _money(order.subtotal),
        "current_total_price": _money(order.total),
        "email": order.email,
        "financial_status": order.financial_status.lower(),
        "fulfillment_status": {"UNFULFILLED": None, "PARTIALLY_FULFILLED": "partial"}.get(
            status, "fulfilled"
        ),
        "name": order.name,
        "note": order.note,
        "note_attributes": [
            {"name": a["key"], "value": a["value"]} for a in order.custom_attributes
        ],
        "number": order.number - 1000,
        "order_number": order.number,
        "phone": order.phone,
        "po_number": order.po_number,
        "presentment_currency": order.currency,
        "processed_at": _rest_time(order.processed_at),
        "source_identifier": order.source_identifier,
        "source_name": order.source_name,
        "subtotal_price": _money(order.subtotal),
        "tags": ", ".join(order.tags),
        "test": order.test,
        "total_price": _money(order.total),
        "updated_at": _rest_time(order.updated_at),
        "billing_address": _rest_address(order.billing_address),
        "customer": customer,
        "fulfillments": [_rest_fulfillment(f) for f in order.fulfillments],
        "line_items": [_rest_line_item(line) for line in order.line_items],
        "shipping_address": _rest_address(order.shipping_address),
        "shipping_lines": [dict(line) for line in order.shipping_lines],
        "refunds": [],
    }


# ---- a shop --------------------------------------------------------------------------------------


class Shop:
    """One simulated store: its data, webhooks, rate limit, and the merchant's own actions."""

    def __init__(
        self,
        sim: ShopifySimulator,
        domain: str,
        access_token: str | None,
        client_secret: str,
        location_name: str = "Main",
        currency: str = "USD",
        plan: str = "Basic",
    ) -> None:
        self.sim = sim
        self.id = sim.next_id()
        self.domain = domain
        self.name = domain.split(".")[0].replace("-", " ").title()
        self.access_token = access_token
        self.client_secret = client_secret
        self.currency = currency
        self.plan = plan  # ShopPlan.publicDisplayName: Development and Trial limit orderCreate
        self.api_orders: list[datetime] = []  # when orderCreate made each of the last ones
        self.customer_data_approved = True  # the app's protected customer data access
        self.all_orders_access = True  # the app's read_all_orders scope
        self.location = Location(sim.next_id(), location_name)
        self.bucket = CostBucket(sim.bucket_size, sim.restore_rate)
        self.webhook_mode: WebhookMode | None = None  # None: the simulator-wide mode applies
        self.lock = threading.RLock()
        self.orders_by_id: dict[int, Order] = {}
        self.fulfillments_by_id: dict[int, Fulfillment] = {}
        self.fulfillment_orders_by_id: dict[int, FulfillmentOrder] = {}
        self.line_items_by_id: dict[int, LineItem] = {}
        self.fo_line_items_by_id: dict[int, FulfillmentOrderLineItem] = {}
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self.removed_subscriptions: list[dict] = []  # removed by Shopify for failing
        self._customers: dict[str, int] = {}
        self._next_number = 1001
        # (owner type, namespace, key) -> MetafieldDefinition fields, and whether values are unique
        self.metafield_definitions: dict[tuple[str, str, str], dict] = {}
        self.search_lag = 0.0  # seconds before a new order is found by `query:` searches
        self.installation: Installation | None = None  # the app, once the merchant installs it
        self.deprecated_reason: str | None = None  # X-Shopify-API-Deprecated-Reason to answer

    def __repr__(self) -> str:
        return f"<Shop {self.domain}>"

    @property
    def base_url(self) -> str:
        """Where this shop's own host (https://{shop}) is served: the `api_base_url` of a
        connection that installs the app through the simulator."""
        return f"{self.sim.base_url}/store/{self.domain}"

    # ---- the app: install, tokens, uninstall, compliance -----------------------------------

    @property
    def installed(self) -> bool:
        """Whether the app is installed here."""
        return self.installation is not None

    def access_tokens(self) -> list[str]:
        """The app's live access tokens in this shop (expired ones included until revoked)."""
        with self.lock:
            return list(self.installation.access_tokens) if self.installation else []

    def expire_tokens(self) -> None:
        """Make every app access token of this shop expire now (refresh tokens stay valid)."""
        with self.lock:
            if self.installation:
                past = self.sim.clock.now() - timedelta(seconds=1)
                for token in self.installation.access_tokens:
                    self.installation.access_tokens[token] = past

    def uninstall(self) -> None:
        """The merchant uninstalls the app: its tokens are revoked, its subscriptions removed,
        and `app/uninstalled` goes to those of its subscriptions registered for that topic
        (shopify.dev/docs/api/admin-graphql/latest/enums/WebhookSubscriptionTopic APP_UNINSTALLED;
        "A non-expiring offline access token stays valid until the store uninstalls your app",
        shopify.dev/docs/apps/build/security/credentials-and-data/use-expiring-offline-access-tokens)."""
        with self.lock:
            if self.installation is None:
                return
            self.sim._revoke(self)
            self.installation = None
            targets = [
                s
                for s in self.subscriptions.values()
                if s.owner == "app" and s.topic == "app/uninstalled"
            ]
            for sub in [s for s in self.subscriptions.values() if s.owner == "app"]:
                del self.subscriptions[sub.id]
            self._emit("app/uninstalled", _rest_shop(self), targets)

    def request_customer_data(self, email: str, secret: str | None = None) -> dict:
        """A customer asks the merchant for their data: `customers/data_request` to the app's
        compliance URL. Returns the payload. `secret` signs it with another key (a forgery)."""
        with self.lock:
            orders = [o.id for o in self.orders_by_id.values() if o.email == email]
            payload = {
                "shop_id": self.id,
                "shop_domain": self.domain,
                "orders_requested": orders,
                "customer": {"id": self.customer_id(email), "email": email, "phone": None},
                "data_request": {"id": self.sim.next_id()},
            }
        self.sim.send_compliance(self, "customers/data_request", payload, secret)
        return payload

    def redact_customer(self, email: str, secret: str | None = None) -> dict:
        """The merchant asks to erase a customer: `customers/redact` (with the ids of the
        customer's orders) to the app's compliance URL. Returns the payload."""
        with self.lock:
            orders = [o.id for o in self.orders_by_id.values() if o.email == email]
            payload = {
                "shop_id": self.id,
                "shop_domain": self.domain,
                "customer": {"id": self.customer_id(email), "email": email, "phone": None},
                "orders_to_redact": orders,
            }
        self.sim.send_compliance(self, "customers/redact", payload, secret)
        return payload

    def redact_shop(self, secret: str | None = None) -> dict:
        """`shop/redact` (Shopify sends it 48 hours after an uninstall) to the compliance URL."""
        payload = {"shop_id": self.id, "shop_domain": self.domain}
        self.sim.send_compliance(self, "shop/redact", payload, secret)
        return payload

    def set_deprecated_reason(self, reason: str | None) -> None:
        """Answer this shop's Admin API calls with `X-Shopify-API-Deprecated-Reason: reason`
        (as of 2025-04 it lists the deprecated fields used, e.g. "Shop.products":
        shopify.dev/changelog/graphql-return-actual-deprecation-reasons); None: no header."""
        self.deprecated_reason = reason

    def _delivery_outcome(self, subscription: int, ok: bool) -> bool:
        """Count a delivery attempt of a subscription; True when it was removed for failing."""
        limit = self.sim.subscription_failure_limit
        with self.lock:
            sub = self.subscriptions.get(subscription)
            if sub is None:
                return False
            if ok:
                sub.failures.clear()
                return False
            now = self.sim.clock.now()
            sub.failures = [at for at in sub.failures if at > now - SUBSCRIPTION_FAILURE_WINDOW] + [
                now
            ]
            if limit is None or len(sub.failures) < limit:
                return False
            del self.subscriptions[subscription]
            self.removed_subscriptions.append(
                {"id": _gid("WebhookSubscription", sub.id), "topic": sub.topic, "uri": sub.uri}
            )
            return True

    # ---- configuration -----------------------------------------------------------------

    def add_webhook(
        self,
        topic: str,
        url: str,
        name: str | None = None,
        include_fields: list[str] | None = None,
        api_version: str = DEFAULT_API_VERSION,
        header_style: str = "webhooks",
        owner: str = "static",
    ) -> str:
        """Subscribe `url` to a topic (`orders/create` or `ORDERS_CREATE`); returns its gid.
        `header_style` "events" names the delivery headers as Shopify's Events do; `owner`
        "app" makes it the installed app's (signed with the app's client secret)."""
        rest_topic = TOPICS.get(topic, topic)
        if rest_topic not in TOPIC_ENUMS:
            raise ValueError(f"unsupported topic {topic!r}; known: {sorted(TOPIC_ENUMS)}")
        if header_style not in HEADER_STYLES:
            raise ValueError(f"header_style must be one of {sorted(HEADER_STYLES)}")
        now = self.sim.clock.now()
        subscription = WebhookSubscription(
            id=self.sim.next_id(),
            topic=rest_topic,
            uri=url,
            name=name or rest_topic.replace("/", "-"),
            api_version=api_version,
            created_at=now,
            updated_at=now,
            include_fields=list(include_fields or []),
            header_style=header_style,
            owner=owner,
            secret=self.sim.app.client_secret if owner == "app" else self.client_secret,
        )
        with self.lock:
            self.subscriptions[subscription.id] = subscription
        return _gid("WebhookSubscription", subscription.id)

    def remove_webhook(self, subscription: str) -> bool:
        """Delete a subscription by gid or by URL (all topics); True when one was removed."""
        with self.lock:
            doomed = [
                s.id
                for s in self.subscriptions.values()
                if s.uri == subscription or _gid("WebhookSubscription", s.id) == subscription
            ]
            for number in doomed:
                del self.subscriptions[number]
            return bool(doomed)

    def webhooks(self) -> list[dict]:
        """The subscriptions as plain dicts."""
        with self.lock:
            return [
                {
                    "id": _gid("WebhookSubscription", s.id),
                    "topic": s.topic,
                    "url": s.uri,
                    "name": s.name,
                    "api_version": s.api_version,
                    "header_style": s.header_style,
                }
                for s in self.subscriptions.values()
            ]

    def set_webhook_mode(self, mode: str | None, seconds: float = 0.0, hold: int = 2) -> None:
        """This shop's webhook failure mode; None falls back to the simulator-wide one."""
        self.webhook_mode = None if mode is None else WebhookMode(mode, seconds, hold)

    def set_rate_limit(
        self,
        maximum_available: float | None = None,
        restore_rate: float | None = None,
        currently_available: float | None = None,
    ) -> None:
        """Resize this shop's cost bucket (e.g. a tiny bucket to provoke THROTTLED)."""
        with self.lock:
            self.bucket.configure(maximum_available, restore_rate, currently_available)

    def set_all_orders_access(self, granted: bool) -> None:
        """Whether the app has the read_all_orders scope in this shop: without it, it sees only
        "the default window of orders created within the last 60 days"
        (shopify.dev/docs/api/usage/access-scopes); an older order reads as none."""
        self.all_orders_access = granted

    def order_visible(self, order: Order) -> bool:
        """Whether the app's scopes let it read the order."""
        window = self.sim.clock.now() - ALL_ORDERS_WINDOW
        return self.all_orders_access or order.created_at >= window

    def set_customer_data_access(self, approved: bool) -> None:
        """Whether the app is approved for protected customer data (name, address, email and
        phone fields) in this shop; unapproved, the API redacts them."""
        self.customer_data_approved = approved

    def fail_next(
        self, count: int = 1, status: int = 500, retry_after: float | None = None
    ) -> None:
        """Answer this shop's next `count` GraphQL calls with `status`."""
        self.sim.fail_next(count, status, retry_after, shop=self.domain)

    def slow_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Delay this shop's next `count` GraphQL answers by `seconds`."""
        self.sim.slow_next(count, seconds, shop=self.domain)

    def throttle_next(self, count: int = 1) -> None:
        """Answer this shop's next `count` GraphQL calls with THROTTLED."""
        self.sim.throttle_next(count, shop=self.domain)

    def lose_next_answer(self, field: str) -> None:
        """Run this shop's next call of the root `field` (orderCreate, say); lose its answer."""
        self.sim.lose_next_answer(field, shop=self.domain)

    def set_search_lag(self, seconds: float) -> None:
        """Orders created from now on are found by `query:` searches only `seconds` later (of the
        simulator's clock), as a search index behind its writes; lookups by id are not behind."""
        with self.lock:
            self.search_lag = float(seconds)

    # ---- merchant / customer actions -----------------------------------------------------

    def place_order(
        self,
        line_items: list[dict],
        shipping_address: dict | None = None,
        email: str | None = None,
        billing_address: dict | None = None,
        note: str | None = None,
        tags: list[str] | None = None,
        created_at: datetime | str | None = None,
        source_name: str = "web",
        financial_status: str = "PAID",
    ) -> dict:
        """A customer checks out: creates the order, fires orders/create; returns its snapshot.

        Each line: {"sku", "quantity", "title", "price"?, "variant_id"?, "variant_title"?}.
        `financial_status` is an OrderDisplayFinancialStatus: PENDING for a manual payment method
        (bank deposit, cash on delivery, payment terms), AUTHORIZED for a card captured later.
        """
        lines = [_line_input(line) for line in line_items]
        if not lines or any(line["quantity"] < 1 for line in lines):
            raise ValueError("an order needs lines with quantities of at least 1")
        if financial_status not in _schema().type_map["OrderDisplayFinancialStatus"].values:
            raise ValueError(f"unknown financial status {financial_status!r}")
        with self.lock:
            order = self._create_order(
                lines,
                shipping=_address_input(self.sim, shipping_address),
                billing=_address_input(self.sim, billing_address),
                email=email,
                note=note,
                tags=tags or [],
                source_name=source_name,
                created_at=as_utc(created_at) if created_at else None,
                financial_status=financial_status,
            )
            self._emit_order_created(order)
            return self._order_snapshot(order)

    def mark_as_paid(self, order_id: str | int) -> None:
        """The merchant marks the order paid, or captures its authorization (what
        orderMarkAsPaid does: refused for an order already PAID); fires orders/paid and
        orders/updated."""
        with self.lock:
            order = self._order(order_id)
            if order.financial_status == "PAID":
                raise ValueError(f"order {order.name} is already paid")
            order.financial_status = "PAID"
            order.updated_at = self.sim.clock.now()
            body = _rest_order(order)
            self._emit("orders/paid", body)
            self._emit("orders/updated", body)

    def cancel_order(self, order_id: str | int) -> None:
        """The merchant cancels the order: an authorized payment is voided (VOIDED is "an unpaid
        order manually canceled"); fires orders/cancelled and orders/updated."""
        with self.lock:
            order = self._order(order_id)
            if order.cancelled_at is not None:
                raise ValueError(f"order {order.name} is already cancelled")
            order.cancelled_at = order.updated_at = self.sim.clock.now()
            if order.financial_status == "AUTHORIZED":
                order.financial_status = "VOIDED"
            body = _rest_order(order)
            self._emit("orders/cancelled", body)
            self._emit("orders/updated", body)

    def fulfill(
        self,
        order_id: str | int,
        lines: list[tuple[str, int]] | None = None,
        company: str | None = None,
        numbers: list[str] | None = None,
        urls: list[str] | None = None,
        notify_customer: bool = False,
    ) -> str:
        """The merchant fulfils in the admin (through the fulfillment orders); returns its gid.

        `lines` pairs an order line (its gid, number or SKU) with a quantity; None ships all
        that remains. Fires fulfillments/create (and orders/updated, orders/[partially_]fulfilled).
        """
        with self.lock:
            order = self._order(order_id)
            wanted: list[tuple[LineItem, int]] = []
            if lines is None:
                wanted = [(li, li.unfulfilled_quantity) for li in order.line_items]
                wanted = [(li, qty) for li, qty in wanted if qty > 0]
            else:
                for reference, quantity in lines:
                    wanted.append((self._order_line(order, reference), int(quantity)))
            allocations: list[tuple[FulfillmentOrderLineItem, int]] = []
            for line, quantity in wanted:
                if quantity < 1:
                    raise ValueError(f"quantity must be at least 1, not {quantity}")
                left = quantity
                for fo in order.fulfillment_orders:
                    if fo.status not in ("OPEN", "IN_PROGRESS"):
                        continue
                    for foli in fo.line_items:
                        already = sum(q for a, q in allocations if a is foli)
                        free = foli.remaining_quantity - already
                        if foli.line_item is line and free > 0 and left > 0:
                            take = min(free, left)
                            allocations.append((foli, take))
                            left -= take
                if left:
                    raise ValueError(
                        f"line {_gid('LineItem', line.id)} has only "
                        f"{quantity - left} of {quantity} left to fulfil"
                    )
            if not allocations:
                raise ValueError("nothing left to fulfil on this order")
            fulfillment = self._create_fulfillment(
                order, allocations, company, list(numbers or []), list(urls or []), notify_customer
            )
            return _gid("Fulfillment", fulfillment.id)

    def update_tracking(
        self,
        fulfillment_id: str | int,
        company: str | None = None,
        numbers: list[str] | None = None,
        urls: list[str] | None = None,
    ) -> None:
        """The merchant edits tracking in the admin: replaces it, fires fulfillments/update."""
        with self.lock:
            fulfillment = self._fulfillment(fulfillment_id)
            self._update_tracking(fulfillment, company, list(numbers or []), list(urls or []))

    def cancel_fulfillment(self, fulfillment_id: str | int) -> None:
        """The merchant cancels a fulfillment: quantities go back, fires fulfillments/update."""
        with self.lock:
            fulfillment = self._fulfillment(fulfillment_id)
            if fulfillment.status == "CANCELLED":
                raise ValueError("fulfillment is already cancelled")
            self._cancel_fulfillment(fulfillment)

    def touch(self, order_id: str | int, at: datetime | str | None = None) -> None:
        """Set an order's updatedAt (default: now) without any webhook (for window tests)."""
        with self.lock:
            order = self._order(order_id)
            order.updated_at = as_utc(at).replace(microsecond=0) if at else self.sim.clock.now()

    def bulk_load_orders(
        self,
        n: int,
        line_items: list[dict] | None = None,
        updated_at: datetime | str | None = None,
        step_seconds: float = 0.0,
    ) -> list[str]:
        """Create `n` orders fast, WITHOUT webhooks (benchmarks); returns their gids.

        Orders get the same lines (default: one line, SKU BULK-1, quantity 1); created/updated
        times start at `updated_at` (default now) and grow by `step_seconds` per order.
        """
        lines = [_line_input(line) for line in (line_items or [{"sku": "BULK-1", "quantity": 1}])]
        start = as_utc(updated_at) if updated_at else self.sim.clock.now()
        gids = []
        with self.lock:
            for index in range(n):
                moment = (start + timedelta(seconds=index * step_seconds)).replace(microsecond=0)
                order = self._create_order(
                    lines, email=f"bulk{index}@example.com", created_at=moment
                )
                gids.append(_gid("Order", order.id))
        return gids

    # ---- read helpers -------------------------------------------------------------------------

    def order(self, order_id: str | int) -> dict:
        """An order's snapshot (lines, fulfillment orders, fulfillments) as plain data."""
        with self.lock:
            return self._order_snapshot(self._order(order_id))

    def orders(self) -> list[dict]:
        """Every order's snapshot, oldest first."""
        with self.lock:
            return [self._order_snapshot(o) for o in self.orders_by_id.values()]

    def fulfillments(self, order_id: str | int) -> list[dict]:
        """An order's fulfillments as plain data."""
        with self.lock:
            return [self._fulfillment_snapshot(f) for f in self._order(order_id).fulfillments]

    # ---- GraphQL mutations ------------------------------------------------------------------

    def api_order_create(self, order: dict, options: dict | None = None) -> dict:
        """orderCreate: creates the order and its fulfillment order, fires orders/create."""
        del options  # inventory and notifications have no visible effect here
        errors = []
        lines_in = order.get("lineItems") or []
        if not lines_in:
            errors.append(
                _user_error(
                    ["order", "lineItems"], "Line items must have at least one item", "INVALID"
                )
            )
        # MoneyBagInput.shopMoney is the "amount in shop currency": the order's (`currency`, by
        # default the shop's). Shopify's wording for a mismatch is not documented.
        currency = order.get("currency") or self.currency
        lines = []
        for index, line in enumerate(lines_in):
            money = (line.get("priceSet") or {}).get("shopMoney") or {}
            if money.get("currencyCode", currency) != currency:
                errors.append(
                    _user_error(
                        ["order", "lineItems", index, "priceSet", "shopMoney", "currencyCode"],
                        f"Currency code must be the order's currency ({currency})",
                        "INVALID",
                    )
                )
            if line["quantity"] < 1:
                errors.append(
                    _user_error(
                        ["order", "lineItems", index, "quantity"],
                        "Quantity must be greater than or equal to 1",
                        "INVALID",
                    )
                )
            if not line.get("title") and not line.get("variantId"):
                errors.append(
                    _user_error(
                        ["order", "lineItems", index, "title"],
                        "Title can't be blank for a custom line item",
                        "INVALID",
                    )
                )
            variant_id = (
                _gid_number(line["variantId"], "ProductVariant") if line.get("variantId") else None
            )
            product_id = (
                _gid_number(line["productId"], "Product") if line.get("productId") else None
            )
            price = (line.get("priceSet") or {}).get("shopMoney", {}).get("amount", "0")
            try:
                price = Decimal(str(price))
            except InvalidOperation:
                errors.append(
                    _user_error(
                        ["order", "lineItems", index, "priceSet"], "Price is invalid", "INVALID"
                    )
                )
                price = Decimal("0")
            lines.append(
                {
                    "title": line.get("title") or line.get("sku") or "Untitled",
                    "sku": line.get("sku"),
                    "quantity": line["quantity"],
                    "price": price,
                    "variant_id": variant_id,
                    "product_id": product_id,
                    "variant_title": line.get("variantTitle"),
                    "vendor": line.get("vendor"),
                    "requires_shipping": line.get("requiresShipping", True) is not False,
                    "properties": [dict(p) for p in line.get("properties") or []],
                }
            )
        processed_at = as_utc(order["processedAt"]) if order.get("processedAt") else None
        if processed_at and processed_at > self.sim.clock.now() + timedelta(minutes=1):
            errors.append(
                _user_error(
                    ["order", "processedAt"],
                    "Processed at can't be in the future",
                    "PROCESSED_AT_INVALID",
                )
            )
        metafields, metafield_errors = self._order_metafields(order.get("metafields") or [])
        errors += metafield_errors
        if errors:
            return {"order": None, "userErrors": errors}
        customer = order.get("customer") or {}
        upsert = customer.get("toUpsert") or {}
        created = self._create_order(
            lines,
            shipping=_address_input(self.sim, order.get("shippingAddress")),
            billing=_address_input(self.sim, order.get("billingAddress")),
            email=order.get("email") or upsert.get("email"),
            phone=order.get("phone"),
            note=order.get("note"),
            tags=list(order.get("tags") or []),
            source_name=order.get("sourceName") or "api",
            source_identifier=order.get("sourceIdentifier"),
            po_number=order.get("poNumber"),
            currency=currency,
            name=order.get("name"),
            financial_status=order.get("financialStatus") or "PAID",
            test=bool(order.get("test")),
            processed_at=processed_at,
            customer=upsert or None,
            custom_attributes=[dict(a) for a in order.get("customAttributes") or []],
            shipping_lines=[
                {
                    "title": s["title"],
                    "code": s.get("code"),
                    "source": s.get("source"),
                    "price": str(s["priceSet"]["shopMoney"]["amount"]),
                }
                for s in order.get("shippingLines") or []
            ],
            metafields=metafields,
        )
        self.api_orders.append(self.sim.clock.now())
        self._emit_order_created(created)
        return {"order": created, "userErrors": []}

    def _order_metafields(self, inputs: list[dict]) -> tuple[dict, list[dict]]:
        """An order's metafields from its MetafieldInputs, and the userErrors they earn. The type
        comes from the definition, else must be given; a definition with unique values (every
        `id` one) refuses a value another order has (shopify.dev changelog "Adding unique
        values to metafields"; how orderCreate words that is not documented)."""
        metafields: dict[tuple[str, str], tuple[str, str]] = {}
        errors: list[dict] = []
        for index, given in enumerate(inputs):
            path = ["order", "metafields", index]
            namespace, key = _namespace(given.get("namespace")), given.get("key")
            definition = self.metafield_definitions.get(("ORDER", namespace, key))
            kind = definition["type"] if definition else given.get("type")
            if not key or not kind or given.get("value") is None:
                errors.append(_user_error(path, "Metafield needs a key, a type and a value"))
                continue
            value = (kind, str(given["value"]))
            if definition and definition["unique"]:
                taken = (o.metafields.get((namespace, key)) for o in self.orders_by_id.values())
                if value in taken:
                    errors.append(
                        _user_error([*path, "value"], "Value is already taken", "INVALID")
                    )
                    continue
            metafields[(namespace, key)] = value
        return metafields, errors

    def api_metafield_definition_create(self, definition: dict) -> dict:
        """metafieldDefinitionCreate: one per owner type, namespace and key (else TAKEN); an `id`
        type always has unique values (working-with-custom-ids)."""
        owner, key = definition["ownerType"], definition["key"]
        namespace = _namespace(definition.get("namespace"))
        if (owner, namespace, key) in self.metafield_definitions:
            message = (
                f"Key is in use for {owner.title()} metafields on the '{namespace}' namespace."
            )
            error = _user_error(["definition", "key"], message, "TAKEN")
            return {"createdDefinition": None, "userErrors": [error]}
        unique_values = ((definition.get("capabilities") or {}).get("uniqueValues")) or {}
        created = {
            "id": _gid("MetafieldDefinition", self.sim.next_id()),
            "key": key,
            "name": definition["name"],
            "namespace": namespace,
            "ownerType": owner,
            "type": definition["type"],
            "unique": definition["type"] == "id" or bool(unique_values.get("enabled")),
        }
        self.metafield_definitions[(owner, namespace, key)] = created
        return {"createdDefinition": created, "userErrors": []}

    def order_create_refused(self) -> bool:
        """Whether a development or trial store already made its five orders of the minute."""
        if self.plan not in ORDER_LIMITED_PLANS:
            return False
        since = self.sim.clock.now() - ORDER_LIMIT_WINDOW
        self.api_orders = [at for at in self.api_orders if at > since]
        return len(self.api_orders) >= ORDER_LIMIT

    def api_fulfillment_create(self, fulfillment: dict, message: str | None = None) -> dict:
        """fulfillmentCreate: all-or-nothing over the given fulfillment orders and lines."""
        del message
        errors: list[dict] = []
        tracking = fulfillment.get("trackingInfo") or {}
        errors += _tracking_errors(tracking, ["fulfillment", "trackingInfo"])
        groups = fulfillment.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            errors.append(
                _user_error(
                    ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "Line items by fulfillment order can't be blank",
                )
            )
        allocations: list[tuple[FulfillmentOrderLineItem, int]] = []
        orders: set[int] = set()
        for index, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", index]
            number = _gid_number(group["fulfillmentOrderId"], "FulfillmentOrder")
            fo = self.fulfillment_orders_by_id.get(number) if number is not None else None
            if fo is None:
                errors.append(
                    _user_error([*path, "fulfillmentOrderId"], "Fulfillment order does not exist.")
                )
                continue
            orders.add(fo.order.id)
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                errors.append(
                    _user_error(
                        [*path, "fulfillmentOrderId"],
                        f"Fulfillment order {_gid('FulfillmentOrder', fo.id)} has an "
                        f"unfulfillable status= {fo.status.lower()}.",
                    )
                )
                continue
            requested = group.get("fulfillmentOrderLineItems")
            if requested is None:
                allocations += [
                    (li, li.remaining_quantity) for li in fo.line_items if li.remaining_quantity
                ]
                continue
            wanted: dict[int, int] = {}
            for line_index, item in enumerate(requested):
                item_path = [*path, "fulfillmentOrderLineItems", line_index]
                line_number = _gid_number(item["id"], "FulfillmentOrderLineItem")
                foli = (
                    self.fo_line_items_by_id.get(line_number) if line_number is not None else None
                )
                if foli is None or foli.fulfillment_order is not fo:
                    errors.append(
                        _user_error(
                            [*item_path, "id"],
                            f"Fulfillment order line item {item['id']} does not belong to "
                            f"fulfillment order {_gid('FulfillmentOrder', fo.id)}.",
                        )
                    )
                    continue
                if item["quantity"] < 1:
                    errors.append(
                        _user_error([*item_path, "quantity"], "Quantity must be greater than 0.")
                    )
                    continue
                wanted[foli.id] = wanted.get(foli.id, 0) + item["quantity"]
            for foli_id, quantity in wanted.items():
                foli = self.fo_line_items_by_id[foli_id]
                if quantity > foli.remaining_quantity:
                    errors.append(
                        _user_error(
                            [*path, "fulfillmentOrderLineItems"],
                            "Invalid fulfillment order line item quantity requested.",
                        )
                    )
                else:
                    allocations.append((foli, quantity))
        if len(orders) > 1:
            errors.append(
                _user_error(
                    ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "All fulfillment orders must belong to the same order.",
                )
            )
        if not errors and not allocations:
            errors.append(
                _user_error(
                    ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "Nothing left to fulfill on the given fulfillment orders.",
                )
            )
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        order = allocations[0][0].fulfillment_order.order
        numbers, urls = _tracking_lists(tracking)
        created = self._create_fulfillment(
            order,
            allocations,
            tracking.get("company"),
            numbers,
            urls,
            bool(fulfillment.get("notifyCustomer")),
        )
        return {"fulfillment": created, "userErrors": []}

    def api_tracking_update(
        self,
        fulfillmentId: str,  # noqa: N803 (GraphQL argument names)
        trackingInfoInput: dict,  # noqa: N803
        notifyCustomer: bool | None = None,  # noqa: N803
    ) -> dict:
        """fulfillmentTrackingInfoUpdate: replaces the tracking, fires fulfillments/update."""
        del notifyCustomer
        errors = _tracking_errors(trackingInfoInput, ["trackingInfoInput"])
        number = _gid_number(fulfillmentId, "Fulfillment")
        fulfillment = self.fulfillments_by_id.get(number) if number is not None else None
        if fulfillment is None:
            errors.append(_user_error(["fulfillmentId"], "Fulfillment does not exist."))
        elif fulfillment.status == "CANCELLED":
            errors.append(
                _user_error(["fulfillmentId"], "Cannot update tracking of a cancelled fulfillment.")
            )
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        numbers, urls = _tracking_lists(trackingInfoInput)
        self._update_tracking(fulfillment, trackingInfoInput.get("company"), numbers, urls)
        return {"fulfillment": fulfillment, "userErrors": []}

    def api_fulfillment_cancel(self, fulfillment_id: str) -> dict:
        """fulfillmentCancel."""
        number = _gid_number(fulfillment_id, "Fulfillment")
        fulfillment = self.fulfillments_by_id.get(number) if number is not None else None
        if fulfillment is None:
            return {
                "fulfillment": None,
                "userErrors": [_user_error(["id"], "Fulfillment does not exist.")],
            }
        if fulfillment.status == "CANCELLED":
            return {
                "fulfillment": None,
                "userErrors": [_user_error(["id"], "Fulfillment is already cancelled.")],
            }
        self._cancel_fulfillment(fulfillment)
        return {"fulfillment": fulfillment, "userErrors": []}

    def api_webhook_create(
        self,
        version: str,
        topic: str,
        webhookSubscription: dict,  # noqa: N803
        owner: str = "static",
    ) -> dict:
        """webhookSubscriptionCreate (JSON over HTTPS/HTTP only), as the caller's own."""
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri or not re.match(r"^https?://", uri):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    _user_error(["webhookSubscription", "callbackUrl"], "Address is invalid")
                ],
            }
        if any(
            s.uri == uri and s.topic == TOPICS[topic] and s.owner == owner
            for s in self.subscriptions.values()
        ):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    _user_error(
                        ["webhookSubscription", "callbackUrl"],
                        "Address for this topic has already been taken",
                    )
                ],
            }
        gid = self.add_webhook(
            topic,
            uri,
            include_fields=webhookSubscription.get("includeFields"),
            api_version=version,
            owner=owner,
        )
        sub = self.subscriptions[_gid_number(gid, "WebhookSubscription")]
        sub.filter = webhookSubscription.get("filter")
        sub.format = webhookSubscription.get("format") or "JSON"
        return {"webhookSubscription": sub, "userErrors": []}

    def api_webhook_delete(self, subscription_id: str, owner: str = "static") -> dict:
        """webhookSubscriptionDelete (of the caller's own subscriptions)."""
        number = _gid_number(subscription_id, "WebhookSubscription")
        if (
            number is None
            or number not in self.subscriptions
            or (self.subscriptions[number].owner != owner)
        ):
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [_user_error(["id"], "Webhook subscription does not exist")],
            }
        del self.subscriptions[number]
        return {"deletedWebhookSubscriptionId": subscription_id, "userErrors": []}

    # ---- internals (caller holds self.lock) ------------------------------------------------

    def customer_id(self, email: str) -> int:
        """A stable customer id per email."""
        if email not in self._customers:
            self._customers[email] = self.sim.next_id()
        return self._customers[email]

    def _create_order(
        self,
        lines: list[dict],
        shipping: Address | None = None,
        billing: Address | None = None,
        email: str | None = None,
        created_at: datetime | None = None,
        name: str | None = None,
        **fields: Any,
    ) -> Order:
        now = created_at or self.sim.clock.now()
        number = self._next_number
        self._next_number += 1
        order = Order(
            id=self.sim.next_id(),
            shop=self,
            number=number,
            name=name or f"#{number}",
            created_at=now,
            updated_at=now,
            processed_at=fields.pop("processed_at", None) or now,
            email=email,
            shipping_address=shipping,
            billing_address=billing,
            currency=fields.pop("currency", None) or self.currency,
            searchable_at=(
                self.sim.clock.now() + timedelta(seconds=self.search_lag)
                if self.search_lag
                else None
            ),
            **fields,
        )
        for line in lines:
            fields_of_line = {**line, "properties": [dict(p) for p in line.get("properties", [])]}
            item = LineItem(id=self.sim.next_id(), order=order, **fields_of_line)
            order.line_items.append(item)
            self.line_items_by_id[item.id] = item
        fo = FulfillmentOrder(self.sim.next_id(), order, self.location, "OPEN", now, now)
        for item in order.line_items:
            foli = FulfillmentOrderLineItem(
                self.sim.next_id(), fo, item, item.quantity, item.quantity
            )
            fo.line_items.append(foli)
            self.fo_line_items_by_id[foli.id] = foli
        order.fulfillment_orders.append(fo)
        self.fulfillment_orders_by_id[fo.id] = fo
        self.orders_by_id[order.id] = order
        return order

    def _create_fulfillment(
        self,
        order: Order,
        allocations: list[tuple[FulfillmentOrderLineItem, int]],
        company: str | None,
        numbers: list[str],
        urls: list[str],
        notify_customer: bool,
    ) -> Fulfillment:
        now = self.sim.clock.now()
        fulfillment = Fulfillment(
            id=self.sim.next_id(),
            order=order,
            sequence=len(order.fulfillments) + 1,
            location=allocations[0][0].fulfillment_order.location,
            created_at=now,
            updated_at=now,
            notify_customer=notify_customer,
        )
        _set_tracking(fulfillment, company, numbers, urls)
        by_line: dict[int, FulfillmentLineItem] = {}
        for foli, quantity in allocations:
            foli.remaining_quantity -= quantity
            foli.line_item.fulfilled_quantity += quantity
            fo = foli.fulfillment_order
            fo.updated_at = now
            if fo not in fulfillment.fulfillment_orders:
                fulfillment.fulfillment_orders.append(fo)
            line = foli.line_item
            if line.id not in by_line:
                by_line[line.id] = FulfillmentLineItem(self.sim.next_id(), line, 0)
                fulfillment.line_items.append(by_line[line.id])
            by_line[line.id].quantity += quantity
            by_line[line.id].parts.append((foli, quantity))
        for fo in fulfillment.fulfillment_orders:
            fo.refresh_status()
        order.fulfillments.append(fulfillment)
        order.updated_at = now
        self.fulfillments_by_id[fulfillment.id] = fulfillment
        self._emit("fulfillments/create", _rest_fulfillment(fulfillment))
        self._emit_order_changed(order, fulfilled=True)
        return fulfillment

    def _update_tracking(
        self, fulfillment: Fulfillment, company: str | None, numbers: list[str], urls: list[str]
    ) -> None:
        _set_tracking(fulfillment, company, numbers, urls)
        now = self.sim.clock.now()
        fulfillment.updated_at = now
        fulfillment.order.updated_at = now
        self._emit("fulfillments/update", _rest_fulfillment(fulfillment))
        self._emit_order_changed(fulfillment.order, fulfilled=False)

    def _cancel_fulfillment(self, fulfillment: Fulfillment) -> None:
        now = self.sim.clock.now()
        fulfillment.status = "CANCELLED"
        fulfillment.updated_at = now
        for fli in fulfillment.line_items:
            for foli, quantity in fli.parts:
                foli.remaining_quantity += quantity
                foli.line_item.fulfilled_quantity -= quantity
                foli.fulfillment_order.updated_at = now
        for fo in fulfillment.fulfillment_orders:
            fo.refresh_status()
        fulfillment.order.updated_at = now
        self._emit("fulfillments/update", _rest_fulfillment(fulfillment))
        self._emit_order_changed(fulfillment.order, fulfilled=False)

    def _emit_order_created(self, order: Order) -> None:
        self._emit("orders/create", _rest_order(order))

    def _emit_order_changed(self, order: Order, fulfilled: bool) -> None:
        if not self._subscribed("orders/updated", "orders/fulfilled", "orders/partially_fulfilled"):
            return
        body = _rest_order(order)
        self._emit("orders/updated", body)
        if fulfilled:
            status = order.display_fulfillment_status
            if status == "FULFILLED":
                self._emit("orders/fulfilled", body)
            elif status == "PARTIALLY_FULFILLED":
                self._emit("orders/partially_fulfilled", body)

    def _subscribed(self, *topics: str) -> bool:
        return any(s.topic in topics for s in self.subscriptions.values())

    def _emit(
        self, topic: str, payload: dict, targets: list[WebhookSubscription] | None = None
    ) -> None:
        """One event: a delivery per subscription to the topic (or to `targets`), queued for the
        sender thread."""
        if targets is None:
            targets = [s for s in self.subscriptions.values() if s.topic == topic]
        if not targets:
            return
        event_id = str(uuid.uuid4())
        triggered_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not self.sim.clock.is_real:
            triggered_at = _iso(self.sim.clock.now())
        for subscription in targets:
            body_data = payload
            if subscription.include_fields:
                body_data = {k: v for k, v in payload.items() if k in subscription.include_fields}
            body = json.dumps(body_data, separators=(",", ":"), ensure_ascii=False).encode()
            prefix, name = HEADER_STYLES[subscription.header_style]
            headers = {
                "Content-Type": "application/json",
                f"{prefix}Topic": topic,
                f"{prefix}Hmac-Sha256": sign(body, subscription.secret or self.client_secret),
                f"{prefix}Shop-Domain": self.domain,
                f"{prefix}API-Version": subscription.api_version,
                f"{prefix}Webhook-Id": str(uuid.uuid4()),
                f"{prefix}Event-Id": event_id,
                f"{prefix}Triggered-At": triggered_at,
                f"{prefix}{name}": subscription.name,
                "User-Agent": "Shopify-Captain-Hook",
            }
            delivery = _Delivery(
                self, topic, subscription.uri, body, headers, body_data, subscription.id
            )
            self.sim._dispatcher.submit(delivery, self.webhook_mode)

    def _order(self, reference: str | int) -> Order:
        number = _lookup_number(reference, "Order")
        if number not in self.orders_by_id:
            raise KeyError(f"no order {reference!r} in {self.domain}")
        return self.orders_by_id[number]

    def _fulfillment(self, reference: str | int) -> Fulfillment:
        number = _lookup_number(reference, "Fulfillment")
        if number not in self.fulfillments_by_id:
            raise KeyError(f"no fulfillment {reference!r} in {self.domain}")
        return self.fulfillments_by_id[number]

    @staticmethod
    def _order_line(order: Order, reference: str | int) -> LineItem:
        for line in order.line_items:
            if reference in (line.id, str(line.id), _gid("LineItem", line.id), line.sku):
                return line
        raise KeyError(f"no line {reference!r} on order {order.name}")

    def _order_snapshot(self, order: Order) -> dict:
        return {
            "id": _gid("Order", order.id),
            "legacy_id": str(order.id),
            "name": order.name,
            "email": order.email,
            "created_at": _iso(order.created_at),
            "updated_at": _iso(order.updated_at),
            "display_fulfillment_status": order.display_fulfillment_status,
            "display_financial_status": order.financial_status,
            "cancelled_at": _iso(order.cancelled_at),
            "shipping_address": _rest_address(order.shipping_address),
            "line_items": [
                {
                    "id": _gid("LineItem", line.id),
                    "legacy_id": str(line.id),
                    "sku": line.sku,
                    "title": line.title,
                    "quantity": line.quantity,
                    "price": _money(line.price),
                    "fulfilled_quantity": line.fulfilled_quantity,
                    "unfulfilled_quantity": line.unfulfilled_quantity,
                }
                for line in order.line_items
            ],
            "fulfillment_orders": [
                {
                    "id": _gid("FulfillmentOrder", fo.id),
                    "status": fo.status,
                    "location_id": _gid("Location", fo.location.id),
                    "line_items": [
                        {
                            "id": _gid("FulfillmentOrderLineItem", foli.id),
                            "line_item_id": _gid("LineItem", foli.line_item.id),
                            "sku": foli.line_item.sku,
                            "total_quantity": foli.total_quantity,
                            "remaining_quantity": foli.remaining_quantity,
                        }
                        for foli in fo.line_items
                    ],
                }
                for fo in order.fulfillment_orders
            ],
            "fulfillments": [self._fulfillment_snapshot(f) for f in order.fulfillments],
        }

    @staticmethod
    def _fulfillment_snapshot(fulfillment: Fulfillment) -> dict:
        return {
            "id": _gid("Fulfillment", fulfillment.id),
            "legacy_id": str(fulfillment.id),
            "name": fulfillment.name,
            "order_id": _gid("Order", fulfillment.order.id),
            "status": fulfillment.status,
            "created_at": _iso(fulfillment.created_at),
            "updated_at": _iso(fulfillment.updated_at),
            "tracking_company": fulfillment.company,
            "tracking_company_recognized": fulfillment.company_recognized,
            "tracking_numbers": list(fulfillment.numbers),
            "tracking_urls": list(fulfillment.urls),
            "line_items": [
                {
                    "id": _gid("FulfillmentLineItem", fli.id),
                    "line_item_id": _gid("LineItem", fli.line_item.id),
                    "sku": fli.line_item.sku,
                    "quantity": fli.quantity,
                }
                for fli in fulfillment.line_items
            ],
        }


def _line_input(line: dict) -> dict:
    """A Python-API order line in the store's terms."""
    if "quantity" not in line:
        raise ValueError(f"line {line!r} has no quantity")
    variant = line.get("variant_id")
    return {
        "title": line.get("title") or line.get("sku") or "Untitled",
        "sku": line.get("sku"),
        "quantity": int(line["quantity"]),
        "price": Decimal(str(line.get("price", "10.00"))),
        "variant_id": _lookup_number(variant, "ProductVariant") if variant else None,
        "product_id": None,
        "variant_title": line.get("variant_title"),
        "vendor": line.get("vendor"),
        "requires_shipping": bool(line.get("requires_shipping", True)),
        "properties": list(line.get("properties") or []),
    }


def _address_input(sim: ShopifySimulator, data: dict | None) -> Address | None:
    """An address from REST (snake_case) or GraphQL (camelCase) keys; "name" is split."""
    if not data:
        return None

    def pick(*keys: str) -> str | None:
        for key in keys:
            if data.get(key):
                return str(data[key])
        return None

    first, last = pick("first_name", "firstName"), pick("last_name", "lastName")
    if not first and not last and data.get("name"):
        first, _, last = str(data["name"]).partition(" ")
        last = last or None
    country_code = pick("country_code", "countryCode")
    country_code = country_code.upper() if country_code else None
    province_code = pick("province_code", "provinceCode")
    province = pick("province")
    if province and not province_code and len(province) <= 3:
        province_code, province = province.upper(), None
    if province_code and not province:
        province = (
            US_STATES.get(province_code, province_code) if country_code == "US" else province_code
        )
    return Address(
        id=sim.next_id(),
        first_name=first,
        last_name=last,
        company=pick("company"),
        address1=pick("address1"),
        address2=pick("address2"),
        city=pick("city"),
        province=province,
        province_code=province_code,
        zip=pick("zip"),
        country=pick("country") or COUNTRY_NAMES.get(country_code or "", country_code),
        country_code=country_code,
        phone=pick("phone"),
    )


def _tracking_errors(tracking: dict, path: list) -> list[dict]:
    """FulfillmentTrackingInput rules: number xor numbers, url xor urls."""
    errors = []
    if tracking.get("number") is not None and tracking.get("numbers") is not None:
        errors.append(
            _user_error([*path, "numbers"], "Only one of number or numbers can be provided.")
        )
    if tracking.get("url") is not None and tracking.get("urls") is not None:
        errors.append(_user_error([*path, "urls"], "Only one of url or urls can be provided."))
    for url in [tracking.get("url"), *(tracking.get("urls") or [])]:
        if url is not None and not re.match(r"^https?://\S+$", str(url)):
            errors.append(_user_error([*path, "url"], f"Tracking url {url} is not a valid URL."))
    return errors


def _tracking_lists(tracking: dict) -> tuple[list[str], list[str]]:
    """Numbers and URLs from a FulfillmentTrackingInput (single or plural forms)."""
    numbers = tracking.get("numbers")
    if numbers is None:
        numbers = [tracking["number"]] if tracking.get("number") else []
    urls = tracking.get("urls")
    if urls is None:
        urls = [tracking["url"]] if tracking.get("url") else []
    return list(numbers), list(urls)


def _set_tracking(
    fulfillment: Fulfillment, company: str | None, numbers: list[str], urls: list[str]
) -> None:
    """Store tracking; known carriers get URLs built for numbers that came without one."""
    fulfillment.company = company
    fulfillment.numbers = list(numbers)
    template = CARRIER_TRACKING_URLS.get(company or "")
    built = []
    for index, number in enumerate(numbers):
        url = _at(urls, index)
        if url is None and template:
            url = template.format(number=number)
        built.append(url)
    extra = urls[len(numbers) :]
    fulfillment.urls = [u for u in built if u is not None] + list(extra)


# ---- the simulator -------------------------------------------------------------------------------


class ShopifySimulator(StoreSimulator[Shop]):
    """One HTTP server hosting many simulated shops (told apart by access token)."""

    def __init__(
        self,
        throttle_http_status: int = 200,
        bucket_size: float = 2000,
        restore_rate: float = 100,
        max_query_cost: int | None = 1000,
        webhook_retry_schedule: list[float] | tuple[float, ...] | None = None,
        webhook_timeout: float = 5.0,
        app: App | None = None,
        subscription_failure_limit: int | None = SUBSCRIPTION_FAILURE_LIMIT,
    ) -> None:
        """Configure; nothing listens until `start`. Failed webhooks are not retried unless a
        `webhook_retry_schedule` (seconds before each retry) is given. A subscription whose
        deliveries fail `subscription_failure_limit` times in a row (within 4 h) is removed
        (None: never)."""
        super().__init__()
        self.app = app or App()
        self.subscription_failure_limit = subscription_failure_limit
        self.deprecated_reason: str | None = None  # for every shop's answers (Shop's wins)
        self._app_tokens: dict[str, Shop] = {}  # installed app's access tokens
        self._refresh_grants: dict[str, RefreshGrant] = {}
        self._codes: dict[str, tuple[str, list[str], datetime]] = {}  # code -> shop, scopes, exp
        self._predecessors: dict[str, str] = {}  # new token (access or refresh) -> old refresh
        self.throttle_http_status = throttle_http_status
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.max_query_cost = max_query_cost
        self.retry_delays: tuple[float, ...] = tuple(webhook_retry_schedule or ())
        self.delivery_timeout = webhook_timeout
        self.versions: set[str] = set()
        self._ids = itertools.count(7_000_000_001)
        self._by_token: dict[str, Shop] = {}
        self._throttles = FailureSwitch()
        self._lost_answers: list[tuple[str, str | None]] = []  # (root field, shop or None)
        self._documents: dict[str, tuple[Any, list[dict]]] = {}
        _schema()  # build once, early: a broken SDL fails at construction

    # ---- shops ----------------------------------------------------------------------------

    def add_shop(
        self,
        domain: str,
        access_token: str | None = None,
        client_secret: str | None = None,
        location_name: str = "Main",
        currency: str = "USD",
        plan: str = "Basic",
    ) -> Shop:
        """A new shop; reachable with `access_token` (a custom app's static token) when given,
        else only once the app is installed through the OAuth flow; static-token webhooks signed
        with `client_secret` (default: the app's); its `plan` as ShopPlan.publicDisplayName
        names it (Development and Trial limit orderCreate)."""
        with self._lock:
            if domain in self._stores:
                raise ValueError(f"shop {domain} exists")
            if access_token is not None and access_token in self._by_token:
                raise ValueError("access token already used by another shop")
            secret = client_secret or self.app.client_secret
            shop = Shop(self, domain, access_token, secret, location_name, currency, plan)
            self._stores[domain] = shop
            if access_token is not None:
                self._by_token[access_token] = shop
            return shop

    def configure_app(self, **changes: Any) -> App:
        """Change the app's settings (client_id, client_secret, redirect_urls, compliance_url,
        grant_scopes, name)."""
        for name, value in changes.items():
            if not hasattr(self.app, name):
                raise ValueError(f"the app has no setting {name!r}")
            setattr(self.app, name, value)
        return self.app

    def install_url(self, shop: str, scope: str, redirect_uri: str, state: str) -> str:
        """The authorize URL an app sends a merchant to (what the gateway builds)."""
        query = urlencode(
            {
                "client_id": self.app.client_id,
                "scope": scope,
                "redirect_uri": redirect_uri,
                "state": state,
            }
        )
        return f"{self.shop(shop).base_url}/admin/oauth/authorize?{query}"

    def send_compliance(
        self, shop: Shop, topic: str, payload: dict, secret: str | None = None
    ) -> None:
        """POST a mandatory compliance webhook to the app's configured URL, signed with the
        app's client secret (or `secret`) like every webhook; JSON with Content-Type
        application/json (shopify.dev/docs/apps/build/compliance/privacy-law-compliance)."""
        if topic not in COMPLIANCE_TOPICS:
            raise ValueError(f"not a compliance topic: {topic}")
        if not self.app.compliance_url:
            raise ValueError("the app has no compliance_url configured")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret or self.app.client_secret),
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-API-Version": DEFAULT_API_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _iso(self.clock.now()) or "",
            "User-Agent": "Shopify-Captain-Hook",
        }
        delivery = _Delivery(shop, topic, self.app.compliance_url, body, headers, payload)
        self._dispatcher.submit(delivery, shop.webhook_mode)

    def _revoke(self, shop: Shop) -> None:
        """Forget every app token of a shop (caller holds shop.lock)."""
        with self._lock:
            for token in [t for t, s in self._app_tokens.items() if s is shop]:
                del self._app_tokens[token]
            for token in [t for t, g in self._refresh_grants.items() if g.shop == shop.domain]:
                del self._refresh_grants[token]
            for code in [c for c, v in self._codes.items() if v[0] == shop.domain]:
                del self._codes[code]

    def shop(self, domain: str) -> Shop:
        """A shop by its myshopify domain."""
        return self.store(domain)

    def shops(self) -> list[Shop]:
        """All shops."""
        return self.stores()

    def next_id(self) -> int:
        """A fresh numeric id (one sequence for every kind, so ids of kinds never collide)."""
        return next(self._ids)

    # ---- switches and logs -------------------------------------------------------------------

    def wait_for_webhooks(self, timeout: float = 5.0, include_retries: bool = True) -> bool:
        """Wait until no delivery is queued, delayed or in flight (retries included, unless
        asked otherwise); False on timeout."""
        return super().wait_for_webhooks(timeout, include_retries)

    def deliveries(self, shop: str | None = None, topic: str | None = None) -> list[dict]:
        """Every delivery attempt so far (topic, webhook_id, status, outcome, payload, ...)."""
        with self._lock:
            return [
                entry
                for entry in self._deliveries
                if (shop is None or entry["shop"] == shop)
                and (topic is None or entry["topic"] == topic)
            ]

    def _log_delivery(
        self, delivery: _Delivery, status: int | None, outcome: str, error: str | None = None
    ) -> None:
        with self._lock:
            self._deliveries.append(
                {
                    "shop": delivery.shop.domain,
                    "topic": delivery.topic,
                    "url": delivery.url,
                    "webhook_id": _delivery_header(delivery, "Webhook-Id"),
                    "event_id": _delivery_header(delivery, "Event-Id"),
                    "attempt": delivery.attempt,
                    "duplicate": delivery.duplicate,
                    "status": status,
                    "outcome": outcome,
                    "error": error,
                    "at": time.time(),
                    "payload": delivery.payload,
                }
            )

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        retry_after: float | None = None,
        shop: str | None = None,
    ) -> None:
        """Answer the next `count` GraphQL calls (of one shop, or any) with `status`."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError("status must be 429, 500, 502, 503 or 504")
        super().fail_next(count, status, retry_after, shop)

    def slow_next(self, count: int = 1, seconds: float = 1.0, shop: str | None = None) -> None:
        """Delay the next `count` GraphQL answers (of one shop, or any) by `seconds`."""
        super().slow_next(count, seconds, shop)

    def throttle_next(self, count: int = 1, shop: str | None = None) -> None:
        """Answer the next `count` GraphQL calls with THROTTLED, whatever the bucket says."""
        self._throttles.arm(count, 0, None, shop)

    def lose_next_answer(self, field: str, shop: str | None = None) -> None:
        """Run the next call of the root `field` (of one shop, or any), then answer it 502 as a
        proxy that lost Shopify's answer would: the write is done, the caller never hears of it."""
        with self._lock:
            self._lost_answers.append((field, shop))

    def _answer_lost(self, shop: Shop, fields: list[str]) -> bool:
        """Whether this call's answer is to be lost (consuming the switch)."""
        with self._lock:
            for lost in self._lost_answers:
                if lost[0] in fields and lost[1] in (None, shop.domain):
                    self._lost_answers.remove(lost)
                    return True
        return False

    def calls(self, shop: str | None = None, field: str | None = None) -> list[dict]:
        """GraphQL calls so far: shop, fields, operation, cost, status, ... (filtered)."""
        return self._calls.where(
            lambda call: (
                (shop is None or call["shop"] == shop)
                and (field is None or field in call["fields"])
            )
        )

    # ---- HTTP ------------------------------------------------------------------------------

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The WSGI entry point: the Admin API and the /_sim/ control API."""
        request = Request(environ)
        try:
            response = self._route(request)
        except Exception as exc:  # a simulator bug must not look like a platform answer
            response = json_response(
                {"errors": f"simulator error: {type(exc).__name__}: {exc}"}, 599
            )
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path, host = request.path, None
        prefixed = STORE_PREFIX.match(path)
        if prefixed:
            host, path = prefixed.group(1), prefixed.group(2)
            if host not in self._stores:
                return _page("Store not found", "There's no store at this address.", 404)
        if path == "/admin/oauth/authorize" and request.method in ("GET", "POST"):
            return self._authorize(request, host)
        if path == "/admin/oauth/access_token" and request.method == "POST":
            return self._access_token(request, host)
        match = GRAPHQL_PATH.match(path)
        if match and request.method == "POST":
            return self._graphql(request, match.group(1), host)
        if request.path.startswith("/_sim/"):
            return _control(self, request)
        return json_response({"errors": "Not Found"}, 404)

    # ---- OAuth: authorization code grant, expiring offline tokens ----------------------------

    def _authorize(self, request: Request, host: str | None) -> Response:
        """The merchant's grant screen (`https://{shop}/admin/oauth/authorize?client_id&scope&
        redirect_uri&state`, shopify.dev/docs/apps/build/authentication-authorization/
        get-access-tokens/authorization-code-grant): a page with an Install button (a form POST,
        no script); installing redirects to redirect_uri with code, hmac, host, shop, state and
        timestamp, hmac the hex HMAC-SHA256 (client secret) of the other parameters sorted."""
        if host is None:
            return _page(
                "Which store?", "Open the authorize URL on a shop's host: /store/{shop}/...", 404
            )
        params = request.form if request.method == "POST" else request.args
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        # Error wording UNCONFIRMED beyond the "redirect_uri is not whitelisted" one developers
        # quote (community.shopify.com, "Oauth error invalid_request").
        if client_id != self.app.client_id:
            return _page("Oauth error", "Oauth error invalid_request: unknown client_id", 400)
        allowed = self.app.redirect_urls
        if not re.match(r"^https?://", redirect_uri) or (allowed and redirect_uri not in allowed):
            return _page(
                "Oauth error",
                "Oauth error invalid_request: The redirect_uri is not whitelisted",
                400,
            )
        shop = self.shop(host)
        requested = [p.strip() for p in params.get("scope", "").split(",") if p.strip()]
        if request.method == "GET":
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
            )
            scopes = "".join(f"<li>{html.escape(p)}</li>" for p in requested)
            body = (
                f"<p>{html.escape(self.app.name)} wants to access {html.escape(shop.name)}:</p>"
                f"<ul>{scopes}</ul>"
                f'<form method="post" action="{html.escape(request.path)}">{hidden}'
                '<button type="submit" name="action" value="install">Install</button></form>'
            )
            return _page(f"Install {self.app.name}", body, 200, raw=True)
        granted = list(self.app.grant_scopes) if self.app.grant_scopes is not None else requested
        code = secrets.token_hex(16)
        expires = self.clock.now() + timedelta(seconds=AUTHORIZATION_CODE_TTL)
        with self._lock:
            self._codes[code] = (shop.domain, granted, expires)
        name = shop.domain.split(".")[0]
        answer = {
            "code": code,
            "host": base64.b64encode(f"admin.shopify.com/store/{name}".encode()).decode(),
            "shop": shop.domain,
            "state": params.get("state", ""),
            "timestamp": str(int(self.clock.now().timestamp())),
        }
        query = oauth_query(answer, self.app.client_secret)
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})

    def _access_token(self, request: Request, host: str | None) -> Response:
        """`POST https://{shop}/admin/oauth/access_token` (JSON or form): a code exchanged, with
        `expiring: 1` for an expiring offline token and its refresh token, or
        `grant_type=refresh_token` for a new pair (the changelogs cited at ACCESS_TOKEN_TTL).
        Refusals in OAuth 2.0's shape, {"error", "error_description"}: invalid_grant with 400
        (Shopify/shopify-app-js, packages/apps/shopify-api/lib/auth/oauth/__tests__/
        refresh-token.test.ts)."""
        if request.mimetype == "application/json":
            data = request.get_json(silent=True) or {}
        else:
            data = request.form.to_dict()
        if not isinstance(data, dict):
            return _oauth_error("invalid_request", "the body is not an object", 400)
        if data.get("client_id") != self.app.client_id or not hmac.compare_digest(
            str(data.get("client_secret", "")), self.app.client_secret
        ):
            return _oauth_error("invalid_client", "Client authentication failed", 401)
        now = self.clock.now()
        if data.get("grant_type") == "refresh_token":
            token = str(data.get("refresh_token", ""))
            with self._lock:
                grant = self._refresh_grants.get(token)
                shop = self._stores.get(grant.shop) if grant else None
                usable = (
                    grant is not None
                    and shop is not None
                    and shop.installed
                    and not grant.retired
                    and grant.expires_at > now
                    and (host is None or host == shop.domain)
                    and (
                        grant.first_used is None
                        or now < grant.first_used + timedelta(seconds=REFRESH_RECOVERY)
                    )
                )
                if not usable:
                    return _oauth_error(
                        "invalid_grant", "The refresh token is invalid or expired", 400
                    )
                self._use(token)
                grant.first_used = grant.first_used or now
                answer = self._issue(shop, expiring=True)
                grant.successor_access = answer["access_token"]
                grant.successor_refresh = answer["refresh_token"]
                self._predecessors[answer["access_token"]] = token
                self._predecessors[answer["refresh_token"]] = token
        else:
            with self._lock:
                entry = self._codes.pop(str(data.get("code", "")), None)
                shop = self._stores.get(entry[0]) if entry else None
                if entry is None or shop is None or entry[2] < now or host not in (None, entry[0]):
                    return _oauth_error(
                        "invalid_grant", "The authorization code is invalid or expired", 400
                    )
                with shop.lock:
                    if shop.installation is None:
                        shop.installation = Installation(scopes=list(entry[1]))
                    else:  # a new grant of scopes (a merchant approving more)
                        shop.installation.scopes = list(entry[1])
                expiring = str(data.get("expiring", "0")).lower() in ("1", "true")
                answer = self._issue(shop, expiring)
        if self._answer_lost(shop, ["oauth/access_token"]):
            return _failure(FailRule(1, 502))
        return json_response(answer)

    def _issue(self, shop: Shop, expiring: bool) -> dict:
        """New app tokens for a shop (caller holds self._lock)."""
        now = self.clock.now()
        access = f"shpua_{secrets.token_hex(16)}"
        assert shop.installation is not None
        with shop.lock:
            shop.installation.access_tokens[access] = (
                now + timedelta(seconds=ACCESS_TOKEN_TTL) if expiring else None
            )
            scope = ",".join(shop.installation.scopes)
        self._app_tokens[access] = shop
        answer: dict[str, Any] = {"access_token": access, "scope": scope}
        if expiring:
            refresh = f"shprt_{secrets.token_hex(16)}"
            self._refresh_grants[refresh] = RefreshGrant(
                shop.domain, now + timedelta(seconds=REFRESH_TOKEN_TTL)
            )
            answer.update(
                expires_in=ACCESS_TOKEN_TTL,
                refresh_token=refresh,
                refresh_token_expires_in=REFRESH_TOKEN_TTL,
            )
        return answer

    def _use(self, token: str) -> None:
        """A token's first use retires the refresh token it replaced (caller holds self._lock)."""
        old = self._predecessors.pop(token, None)
        if old and old in self._refresh_grants:
            self._refresh_grants[old].retired = True

    def _authenticate(self, token: str, host: str | None) -> tuple[Shop | None, bool]:
        """The shop a token opens and whether it is the installed app's; (None, _) when it is
        unknown, revoked or expired (Shopify answers all of them alike: 401 with
        INVALID_TOKEN_MESSAGE; no distinct answer for an expired token is documented)."""
        shop, app = self._by_token.get(token), False
        if shop is None:
            with self._lock:
                shop, app = self._app_tokens.get(token), True
                if shop is not None:
                    installation = shop.installation
                    expires = (
                        installation.access_tokens.get(token, self.clock.now())
                        if installation
                        else self.clock.now()
                    )
                    if expires is not None and expires <= self.clock.now():
                        shop = None
                    else:
                        self._use(token)
        if shop is not None and host is not None and shop.domain != host:
            shop = None
        return shop, app

    def _graphql(self, request: Request, version: str, host: str | None = None) -> Response:
        started = time.time()
        shop, app = self._authenticate(request.headers.get("X-Shopify-Access-Token", ""), host)
        if shop is None:
            self._record_call(None, version, [], None, None, 0, 0, 401, started)
            return json_response({"errors": INVALID_TOKEN_MESSAGE}, 401)
        if not VERSION_PATTERN.match(version):
            self._record_call(shop, version, [], None, None, 0, 0, 404, started)
            return json_response({"errors": "Not Found"}, 404)
        self.versions.add(version)
        slow = self._slow.take(shop.domain)
        fail = self._failures.take(shop.domain)
        forced_throttle = self._throttles.take(shop.domain) is not None
        if self.latency or slow:
            time.sleep(self.latency + (slow.retry_after or 0.0 if slow else 0.0))
        if fail:
            self._record_call(shop, version, [], None, None, 0, 0, fail.status, started)
            return _failure(fail)
        body = _request_body(request)
        if body is None:
            self._record_call(shop, version, [], None, None, 0, 0, 400, started)
            return json_response(
                {"errors": {"query": "Required parameter missing or invalid"}}, 400
            )
        query, variables, operation_name = body
        payload, status, headers, meta = self.execute(
            shop, query, variables, operation_name, version, forced_throttle, app=app
        )
        lost = status == 200 and self._answer_lost(shop, meta["fields"])
        if lost:
            status = 502
        self._record_call(
            shop,
            version,
            meta["fields"],
            meta["operation"],
            operation_name,
            meta["cost"],
            meta["actual"],
            status,
            started,
            throttled=meta["throttled"],
            variables=variables,
        )
        if lost:
            return _failure(FailRule(1, status))
        response = json_response(payload, status)
        response.headers["X-Shopify-API-Version"] = version
        response.headers["X-Request-Id"] = str(uuid.uuid4())
        for name, value in headers.items():
            response.headers[name] = value
        reason = shop.deprecated_reason or self.deprecated_reason
        if reason:
            response.headers["X-Shopify-API-Deprecated-Reason"] = reason
        return response

    def execute(
        self,
        shop: Shop,
        query: str,
        variables: dict | None = None,
        operation_name: str | None = None,
        version: str = DEFAULT_API_VERSION,
        forced_throttle: bool = False,
        app: bool = False,
    ) -> tuple[dict, int, dict, dict]:
        """Run one GraphQL document for a shop: (body, HTTP status, extra headers, call facts)."""
        variables = variables or {}
        meta: dict = {"fields": [], "operation": None, "cost": 0, "actual": 0, "throttled": False}
        schema = _schema()
        document, errors = self._document(query)
        if errors:
            return self._with_cost(shop, {"errors": errors}, 0, 0), 200, {}, meta
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f'No operation named "{operation_name}"'
                if operation_name
                else "An operation name is required"
            )
            return self._with_cost(shop, {"errors": [{"message": message}]}, 0, 0), 200, {}, meta
        meta["operation"] = operation.operation.value
        meta["fields"] = [
            s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)
        ]
        if meta["operation"] == "mutation" and "orderCreate" in meta["fields"]:
            with shop.lock:
                if shop.order_create_refused():
                    return {"errors": ORDER_LIMIT_MESSAGE}, 429, {}, meta
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            body = {"errors": _variable_errors(coerced, operation, variables)}
            return self._with_cost(shop, body, 0, 0), 200, {}, meta
        analysis = QueryCost(schema, document, operation, coerced)
        meta["cost"] = requested = analysis.requested
        if analysis.errors:
            body = {"errors": [e.formatted for e in analysis.errors]}
            return self._with_cost(shop, body, requested, 0), 200, {}, meta
        if self.max_query_cost is not None and requested > self.max_query_cost:
            message = (
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({self.max_query_cost}).\n\nSee https://shopify.dev/concepts/about-apis/rate-"
                "limits for more information on how the\ncost of a query is calculated.\n\nTo "
                "query larger amounts of data with fewer limits, bulk operations should be "
                "used instead.\nSee https://shopify.dev/api/usage/bulk-operations/queries for "
                "usage details.\n"
            )
            error = {
                "message": message,
                "extensions": {
                    "code": "MAX_COST_EXCEEDED",
                    "cost": requested,
                    "maxCost": self.max_query_cost,
                    "documentation": RATE_LIMIT_DOCS,
                },
            }
            return self._with_cost(shop, {"errors": [error]}, requested, None), 200, {}, meta
        with shop.lock:
            available = shop.bucket.available()
            if forced_throttle or requested > available:
                meta["throttled"] = True
                error = {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
                }
                body = self._with_cost(shop, {"errors": [error]}, requested, None)
                headers = {}
                if self.throttle_http_status == 429:
                    missing = max(0.0, requested - available)
                    wait = missing / shop.bucket.restore_rate if shop.bucket.restore_rate else 1
                    headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return body, self.throttle_http_status, headers, meta
            shop.bucket.take(requested)
            result = execute_sync(
                schema,
                document,
                context_value=_Context(self, shop, version, app),
                variable_values=variables,
                operation_name=operation_name,
                field_resolver=_default_resolver,
            )
            actual = min(requested, analysis.actual(result.data))
            shop.bucket.give(requested - actual)
            meta["actual"] = actual
            body: dict = {}
            if result.errors:
                body["errors"] = [e.formatted for e in result.errors]
            body["data"] = result.data
            return self._with_cost(shop, body, requested, actual), 200, {}, meta

    def _document(self, query: str) -> tuple[Any, list[dict]]:
        """Parsed and validated documents, cached by their text."""
        cached = self._documents.get(query)
        if cached is not None:
            return cached
        try:
            document = parse(query)
        except GraphQLSyntaxError as error:
            location = error.locations[0] if error.locations else None
            where = f" at [{location.line}, {location.column}]" if location else ""
            detail = error.message.removeprefix("Syntax Error: ")
            entry = {"message": f"syntax error, {detail}{where}"}
            if location:
                entry["locations"] = [{"line": location.line, "column": location.column}]
            return None, [entry]
        errors = [_validation_error(e) for e in validate(_schema(), document)]
        if len(self._documents) > 512:
            self._documents.clear()
        self._documents[query] = (document, errors)
        return document, errors

    @staticmethod
    def _with_cost(shop: Shop, body: dict, requested: int, actual: int | None) -> dict:
        body["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": shop.bucket.status(),
            }
        }
        return body

    def _record_call(
        self,
        shop: Shop | None,
        version: str,
        fields: list[str],
        operation: str | None,
        operation_name: str | None,
        cost: int,
        actual: int,
        status: int,
        started: float,
        throttled: bool = False,
        variables: dict | None = None,
    ) -> None:
        self._calls.add(
            {
                "shop": shop.domain if shop else None,
                "version": version,
                "fields": fields,
                "operation": operation,
                "operation_name": operation_name,
                "cost": cost,
                "actual_cost": actual,
                "status": status,
                "throttled": throttled,
                "variables": variables,
                "at": started,
                "duration": time.time() - started,
            }
        )


def oauth_query(params: dict[str, str], secret: str) -> str:
    """The query string of an OAuth redirect: the parameters sorted, each value percent-encoded
    as URLSearchParams does, `hmac` the hex HMAC-SHA256 (client secret) of that string
    (Shopify/shopify-app-js, packages/apps/shopify-api/lib/utils/hmac-validator.ts
    `generateLocalHmac`, `stringifyQueryForAdmin`; lib/utils/processed-query.ts)."""
    message = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}&hmac={digest}"


def _page(title: str, message: str, status: int, raw: bool = False) -> Response:
    """A small HTML page for a person (the merchant's browser)."""
    content = message if raw else f"<p>{html.escape(message)}</p>"
    text = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{content}</body></html>"
    )
    return Response(text, status=status, mimetype="text/html")


def _oauth_error(error: str, description: str, status: int) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def _request_body(request: Request) -> tuple[str, dict, str | None] | None:
    """(query, variables, operationName) from a JSON or application/graphql body."""
    if request.mimetype == "application/graphql":
        text = request.get_data(as_text=True)
        return (text, {}, None) if text.strip() else None
    try:
        data = json.loads(request.get_data() or b"null")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        return None
    return data["query"], variables, data.get("operationName")


def _failure(rule: FailRule) -> Response:
    """An injected failure, shaped like what Shopify's edge returns for that status."""
    if rule.status == 429:
        response = json_response(
            {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}, 429
        )
    elif rule.status == 500:
        request_id = str(uuid.uuid4())
        response = json_response(
            {
                "errors": [
                    {
                        "message": "Internal error. Looks like something went wrong on our end.\n"
                        f"Request ID: {request_id} (include this in support requests).",
                        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                    }
                ]
            },
            500,
        )
    else:
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
        html = f"<html><body><h1>{rule.status} {reason[rule.status]}</h1></body></html>"
        response = Response(html, status=rule.status, mimetype="text/html")
    if rule.retry_after is not None:
        response.headers["Retry-After"] = str(rule.retry_after).removesuffix(".0")
    return response


# ---- /_sim/ control API (for demo scripts in another process) ---------------------------------


def _control(sim: ShopifySimulator, request: Request) -> Response:
    """JSON control endpoints: the shops, THROTTLED on demand and the logs as lists here; the
    rest is common_control's. See the module's CLI help for the list."""
    path = request.path.removeprefix("/_sim").rstrip("/")
    data = request.get_json(silent=True) or {}
    method = request.method
    try:
        if path == "/shops" and method == "GET":
            return json_response([_shop_info(s) for s in sim.shops()])
        if path == "/app" and method == "POST":
            app = sim.configure_app(**data)
            return json_response({"client_id": app.client_id, "grant_scopes": app.grant_scopes})
        if path == "/shops" and method == "POST":
            shop = sim.add_shop(
                data["domain"],
                data.get("access_token"),
                data.get("client_secret"),
                data.get("location_name", "Main"),
                data.get("currency", "USD"),
                data.get("plan", "Basic"),
            )
            return json_response(_shop_info(shop), 201)
        match = re.match(r"^/shops/([^/]+)(/.*)?$", path)
        if match:
            return _control_shop(sim.shop(match.group(1)), match.group(2) or "", method, data)
        if path == "/throttle_next" and method == "POST":
            sim.throttle_next(int(data.get("count", 1)), data.get("shop"))
            return json_response({"ok": True})
        if path == "/deliveries" and method == "GET":
            return json_response(
                sim.deliveries(request.args.get("shop"), request.args.get("topic"))
            )
        if path == "/calls" and method == "GET":
            return json_response(sim.calls(request.args.get("shop"), request.args.get("field")))
        common = common_control(sim, request, [p for p in path.split("/") if p], data)
        if common is not None:
            return common
    except KeyError as exc:
        return json_response({"error": f"not found: {exc}"}, 404)
    except (ValueError, TypeError) as exc:
        return json_response({"error": str(exc)}, 422)
    return json_response({"error": "unknown control endpoint"}, 404)


def _control_shop(shop: Shop, path: str, method: str, data: dict) -> Response:
    if path == "" and method == "GET":
        return json_response(_shop_info(shop))
    if path == "/webhooks" and method == "POST":
        gid = shop.add_webhook(
            data["topic"],
            data["url"],
            data.get("name"),
            header_style=data.get("header_style", "webhooks"),
        )
        return json_response({"id": gid}, 201)
    if path == "/webhooks" and method == "GET":
        return json_response(shop.webhooks())
    if path == "/uninstall" and method == "POST":
        shop.uninstall()
        return json_response({"ok": True})
    if path == "/expire_tokens" and method == "POST":
        shop.expire_tokens()
        return json_response({"ok": True})
    if path == "/deprecated_reason" and method == "POST":
        shop.set_deprecated_reason(data.get("reason"))
        return json_response({"ok": True})
    if path == "/compliance" and method == "POST":
        topic = data["topic"]
        if topic == "shop/redact":
            return json_response(shop.redact_shop(), 201)
        if topic == "customers/redact":
            return json_response(shop.redact_customer(data["email"]), 201)
        return json_response(shop.request_customer_data(data["email"]), 201)
    if path == "/orders" and method == "POST":
        order = shop.place_order(
            data["line_items"],
            shipping_address=data.get("shipping_address"),
            email=data.get("email"),
            note=data.get("note"),
            financial_status=data.get("financial_status", "PAID"),
        )
        return json_response(order, 201)
    if path == "/orders/paid" and method == "POST":
        shop.mark_as_paid(data["order_id"])
        return json_response({"ok": True})
    if path == "/orders/cancel" and method == "POST":
        shop.cancel_order(data["order_id"])
        return json_response({"ok": True})
    if path == "/orders" and method == "GET":
        return json_response(shop.orders())
    if path == "/orders/get" and method == "POST":
        return json_response(shop.order(data["order_id"]))
    if path == "/bulk_orders" and method == "POST":
        gids = shop.bulk_load_orders(
            int(data.get("n", 1)), data.get("line_items"), data.get("updated_at")
        )
        return json_response({"ids": gids}, 201)
    if path == "/fulfillments" and method == "POST":
        lines = data.get("lines")
        if lines is not None:
            lines = [
                (line["line_item_id"], line["quantity"]) if isinstance(line, dict) else tuple(line)
                for line in lines
            ]
        fulfillment_id = shop.fulfill(
            data["order_id"], lines, data.get("company"), data.get("numbers"), data.get("urls")
        )
        return json_response({"id": fulfillment_id}, 201)
    if path == "/fulfillments/tracking" and method == "POST":
        shop.update_tracking(
            data["fulfillment_id"], data.get("company"), data.get("numbers"), data.get("urls")
        )
        return json_response({"ok": True})
    if path == "/fulfillments/cancel" and method == "POST":
        shop.cancel_fulfillment(data["fulfillment_id"])
        return json_response({"ok": True})
    if path == "/search_lag" and method == "POST":
        shop.set_search_lag(float(data["seconds"]))
        return json_response({"ok": True})
    if path == "/lose_next_answer" and method == "POST":
        shop.lose_next_answer(data["field"])
        return json_response({"ok": True})
    if path == "/all_orders" and method == "POST":
        shop.set_all_orders_access(bool(data["granted"]))
        return json_response({"ok": True})
    if path == "/customer_data" and method == "POST":
        shop.set_customer_data_access(bool(data["approved"]))
        return json_response({"ok": True})
    if path == "/rate_limit" and method == "POST":
        shop.set_rate_limit(
            data.get("maximum_available"), data.get("restore_rate"), data.get("currently_available")
        )
        return json_response({"ok": True})
    return json_response({"error": "unknown control endpoint"}, 404)


def _shop_info(shop: Shop) -> dict:
    return {
        "domain": shop.domain,
        "location_id": _gid("Location", shop.location.id),
        "location_name": shop.location.name,
        "orders": len(shop.orders_by_id),
        "webhooks": shop.webhooks(),
        "throttle_status": shop.bucket.status(),
        "customer_data_approved": shop.customer_data_approved,
        "all_orders_access": shop.all_orders_access,
        "currency": shop.currency,
        "plan": shop.plan,
        "installed": shop.installed,
        "base_url": shop.base_url,
    }


# ---- CLI -------------------------------------------------------------------------------------

CLI_HELP = """\
Control API (JSON bodies), all under /_sim:
  GET  /shops                          POST /shops {domain, access_token?, client_secret?,
                                                  currency?, plan?}
  POST /app {client_id?, client_secret?, redirect_urls?, compliance_url?, grant_scopes?}
  POST /shops/<domain>/uninstall       POST /shops/<domain>/expire_tokens
  POST /shops/<domain>/compliance {topic, email?}  POST /shops/<domain>/deprecated_reason {reason}
  GET  /shops/<domain>                 POST /shops/<domain>/webhooks {topic, url,
                                                                    header_style?}
  POST /shops/<domain>/orders {line_items:[{sku,quantity,title,price}], shipping_address, email,
                               financial_status?}
  GET  /shops/<domain>/orders          POST /shops/<domain>/orders/get {order_id}
  POST /shops/<domain>/orders/paid {order_id}    POST /shops/<domain>/orders/cancel {order_id}
  POST /shops/<domain>/bulk_orders {n}
  POST /shops/<domain>/fulfillments {order_id, lines:[{line_item_id,quantity}]?, company,
                                     numbers, urls}
  POST /shops/<domain>/fulfillments/tracking {fulfillment_id, company, numbers, urls}
  POST /shops/<domain>/fulfillments/cancel {fulfillment_id}
  POST /shops/<domain>/rate_limit {maximum_available, restore_rate, currently_available}
  POST /shops/<domain>/search_lag {seconds}     POST /shops/<domain>/lose_next_answer {field}
  POST /shops/<domain>/customer_data {approved}    POST /shops/<domain>/all_orders {granted}
  POST /webhook_mode {mode, seconds?, hold?, shop?}     POST /flush_webhooks
  POST /fail_next {count, status, retry_after?, shop?}  POST /slow_next {count, seconds, shop?}
  POST /throttle_next {count, shop?}
  POST /clock {now?|advance?|resume?|real?}             POST /config {latency?, delivery_timeout?,
                                                                      retry_delays?}
  GET  /calls?shop=&field=   DELETE /calls              GET /deliveries?shop=&topic=
  DELETE /deliveries
"""


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator until killed."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.shopify",
        description="Local Shopify Admin API simulator.",
        epilog=CLI_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument(
        "--shop",
        action="append",
        default=[],
        metavar="DOMAIN:TOKEN:SECRET",
        help="a shop to create (repeatable)",
    )
    parser.add_argument(
        "--webhook-url",
        help="subscribe every shop to orders/create, fulfillments/create and /update here",
    )
    parser.add_argument("--throttle-http-status", type=int, default=200, choices=(200, 429))
    parser.add_argument("--bucket-size", type=float, default=2000)
    parser.add_argument("--restore-rate", type=float, default=100)
    args = parser.parse_args(argv)
    sim = ShopifySimulator(
        throttle_http_status=args.throttle_http_status,
        bucket_size=args.bucket_size,
        restore_rate=args.restore_rate,
    )
    for spec in args.shop:
        domain, token, secret = spec.split(":", 2)
        shop = sim.add_shop(domain, token, secret)
        if args.webhook_url:
            for topic in ("orders/create", "fulfillments/create", "fulfillments/update"):
                shop.add_webhook(topic, args.webhook_url)
    base_url = sim.start(args.host, args.port)
    print(f"Shopify simulator on {base_url} ({len(args.shop)} shop(s)); Ctrl-C to stop", flush=True)
    wait_forever(sim.stop)


if __name__ == "__main__":
    main()
