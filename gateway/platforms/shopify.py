"""Shopify through the GraphQL Admin API: webhook signatures, reads, orders out, fulfillments out.

Facts: ../shared/platforms/shopify.md. Calls are paced by the query cost Shopify reports
(`extensions.cost.throttleStatus`), shared by every process through Redis; `THROTTLED` (with 200
or 429) waits and retries; 5xx and time-outs are retryable; `userErrors` are failures.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from marshmallow import fields, validate

from gateway.delivery import ConnectionDown
from gateway.model import CANCELLED, PAID, UNPAID, Fulfillment, ObservedFulfillment, Order
from gateway.platforms import register
from gateway.platforms.base import (
    DATA_REQUEST,
    INGEST_ORDER,
    NEEDS_REAUTH,
    REDACT_CUSTOMER,
    REDACT_SHOP,
    SYNC_SELLER,
    UNINSTALLED_EVENT,
    ChangedOrder,
    ChangedPage,
    ConnectionEvent,
    ConnectLink,
    CreatedOrder,
    InstallAnswer,
    InstallPort,
    InstallRefused,
    InstallRequest,
    Platform,
    PlatformError,
    PlatformPort,
    StoreLine,
    StoreOrder,
    WebhookCall,
    WebhookCheck,
    base64_hmac_matches,
    http,
    refuse_status,
)
from gateway.settings import Settings
from gateway.validation import StrictSchema, secret, text, web_url

log = logging.getLogger(__name__)

API_VERSION = "2026-10"  # the default of SHOPIFY_API_VERSION
THROTTLE_RETRIES = 3
MAX_PACING_WAIT = 10.0  # seconds one call may wait for the bucket before giving up for now
ASSUMED_QUERY_COST = 100  # until Shopify tells us, a read is assumed to cost this much
# read_orders reaches "the default window of orders created within the last 60 days"; older
# ones need read_all_orders (shopify.dev/docs/api/usage/access-scopes), or read as none.
NOT_IN_REACH = " (or, created more than 60 days ago, out of reach without read_all_orders)"
SHOP_FACTS_TTL = 3600.0  # seconds a process trusts the currency and plan it read of a shop
# orderCreate on a development or trial store: "a maximum of five new orders per minute"
# (shopify.dev/docs/api/admin-graphql/latest/mutations/orderCreate). One every 12 s keeps any
# minute at five. Those shops are told by their plan: partnerDevelopment, or publicDisplayName
# (shopify.dev/docs/api/admin-graphql/latest/objects/ShopPlan).
ORDER_INTERVAL = 60.0 / 5
ORDER_LIMITED_PLANS = ("Development", "Trial", "Plus Trial")
# The refusal past the limit: the REST API's is recorded as HTTP 429 "Exceeded order API rate
# limit, please try again in a minute" (Shopify/shopify-api-ruby#899); the GraphQL one is not
# documented, so its words are looked for in an error of any shape. After one, the shop's orders
# wait that minute.
ORDER_REFUSAL = "Exceeded order API rate limit"
ORDER_REFUSAL_WAIT = 60.0
# The changed-orders listing nests fulfillments in small numbers to stay under Shopify's
# 1,000-point single-query cost (10 orders x 3 fulfillments x 10 lines ~ 800 points); an order
# that fills any of them is read on its own, with the larger numbers of READ_FULFILLMENTS.
LISTED_FULFILLMENTS, LISTED_NUMBERS, LISTED_LINES = 3, 3, 10

# Shopify's supported tracking companies for shops in any country, spelled as Shopify lists them
# (FulfillmentTrackingInfo.company, "Supported tracking companies": shopify.dev/docs/api/
# admin-graphql/latest/objects/FulfillmentTrackingInfo; the same list is in the 2026-01 schema,
# nozzlegear/ShopifySharp graphql-schemas/2026-01.schema.graphql). Capitalization matters: a
# listed name gets its tracking URLs built and its shipment followed by the shop; any other name
# is kept as given and is clickable only through the URL we send.
TRACKING_COMPANIES = (
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
)  # fmt: skip
# Our carriers (gateway/tracking.py) by their names on that list; tracking.canonical_carrier
# reads each of these back as ours when a seller's Shopify store reports it.
OUR_CARRIERS = {"UPS": "UPS", "USPS": "USPS", "FedEx": "FedEx", "DHL": "DHL Express"}
_LISTED = {name.lower(): name for name in TRACKING_COMPANIES}


# ---- the app: scopes, install, tokens -----------------------------------------------------------

# SHOPIFY_SCOPES' default: what the adapter's calls and webhooks need, one line each in the
# README's scope table (a write scope grants its read scope: shopify.dev/docs/api/usage/
# access-scopes; Shopify/shopify-app-js packages/apps/shopify-api/lib/auth/scopes/index.ts).
SCOPES = (
    "write_orders",  # read an order, list orders, orderCreate, orders/* webhooks
    "read_all_orders",  # orders created more than 60 days ago
    "read_fulfillments",  # fulfillments/create|update webhooks
    "write_merchant_managed_fulfillment_orders",  # fulfillmentCreate, tracking updates
)
CALLBACK_PATH = "/connect/shopify/callback"
# Shopify's libraries refuse a callback whose `timestamp` is more than 90 s from now
# (HMAC_TIMESTAMP_PERMITTED_CLOCK_TOLERANCE_SEC, Shopify/shopify-app-js packages/apps/shopify-api/
# lib/utils/hmac-validator.ts).
CALLBACK_TOLERANCE = 90
# Expiring offline tokens live an hour; refresh "a few minutes before they expire, and when you
# receive a 401" (shopify.dev/changelog/offline-access-tokens-now-support-expiry-and-refresh).
REFRESH_AHEAD = 300
REFRESH_LEASE = 30  # seconds one worker holds the right to refresh a store's token
REFRESH_WAIT = 10.0  # seconds a worker waits for another's refresh before trying later
# X-Shopify-API-Deprecated-Reason values logged already by this process (each once).
DEPRECATIONS_LOGGED: set[str] = set()


def scopes_setting(config: Settings) -> list[str]:
    """SHOPIFY_SCOPES (comma-separated), default SCOPES."""
    text = config.platform_setting("SHOPIFY_SCOPES", ",".join(SCOPES))
    return [s.strip() for s in text.split(",") if s.strip()]


def expand_scopes(scopes: list[str] | tuple[str, ...]) -> set[str]:
    """Scopes and those they imply: write_X grants read_X (shopify-app-js AuthScopes)."""
    found = {s.strip() for s in scopes if s.strip()}
    for scope in list(found):
        match = re.match(r"^(unauthenticated_)?write_(.*)$", scope)
        if match:
            found.add(f"{match[1] or ''}read_{match[2]}")
    return found


def missing_scopes(required: list[str], granted: list[str]) -> list[str]:
    """The required scopes a grant lacks (implied ones count as granted)."""
    have = expand_scopes(granted)
    return [s for s in required if s not in have]


def callback_hmac_ok(query_string: bytes | str, secret: str) -> bool:
    """The OAuth callback's `hmac`: hex HMAC-SHA256, keyed by the client secret, of the other
    parameters of the query string as received, sorted, `k=v` joined by `&` (shopify.dev/docs/
    apps/build/authentication-authorization/get-access-tokens/authorization-code-grant, "Verify
    the installation request"; Shopify/shopify-app-js packages/apps/shopify-api/lib/utils/
    hmac-validator.ts `generateLocalHmac`, which re-encodes the parsed values the way they
    arrive). Compared in constant time; a repeated `hmac` is refused."""
    if not secret:
        return False
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    pairs = [p for p in text.split("&") if p]
    given = [p.partition("=")[2] for p in pairs if p.partition("=")[0] == "hmac"]
    if len(given) != 1:
        return False
    rest = sorted(
        (p for p in pairs if p.partition("=")[0] != "hmac"), key=lambda p: p.partition("=")
    )
    digest = hmac.new(secret.encode(), "&".join(rest).encode("latin-1"), hashlib.sha256)
    return hmac.compare_digest(digest.hexdigest(), given[0].lower())


def _iso_in(seconds: float, now: float) -> str:
    return datetime.fromtimestamp(now + seconds, UTC).isoformat().replace("+00:00", "Z")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def note_deprecation(answer: requests.Response, port: Any, shop: str) -> None:
    """X-Shopify-API-Deprecated-Reason on an answer: counted on /metrics, logged once per process
    and reason (shopify.dev/changelog/graphql-return-actual-deprecation-reasons: from 2025-04 it
    lists the deprecated fields used). The reason is Shopify's text, never a credential."""
    reason = answer.headers.get("X-Shopify-API-Deprecated-Reason")
    if not reason:
        return
    port.count("shopify_deprecated_calls")
    reason = "".join(c for c in reason if c.isprintable())[:200]
    if reason not in DEPRECATIONS_LOGGED:
        DEPRECATIONS_LOGGED.add(reason)
        log.warning("Shopify reports deprecated API use (%s): %s", shop, reason)


def api_version(config: Settings) -> str:
    """The Admin API version the gateway speaks (quarterly: YYYY-01/04/07/10)."""
    return config.platform_setting("SHOPIFY_API_VERSION", API_VERSION)


def verify_webhook(secret: str, raw_body: bytes, signature: str | None) -> bool:
    """X-Shopify-Hmac-Sha256 is base64 HMAC-SHA256 of the raw body with the app's secret."""
    return base64_hmac_matches(secret, raw_body, signature)


def order_gid(ref: str) -> str:
    """The GraphQL id of an order from its numeric id (legacyResourceId)."""
    return ref if ref.startswith("gid://") else f"gid://shopify/Order/{ref}"


READ_ORDER = """
query GatewayReadOrder($id: ID!) {
  order(id: $id) {
    id legacyResourceId updatedAt email displayFinancialStatus cancelledAt
    shippingAddress { firstName lastName name company address1 address2 city provinceCode zip
                      countryCodeV2 phone }
    lineItems(first: 250) { nodes { id sku title quantity } }
  }
}"""


def _fulfillments_selection(fulfillments: int, numbers: int, lines: int) -> str:
    """The fulfillment fields both reads ask for, in the numbers given."""
    return (
        f"fulfillments(first: {fulfillments}) {{ id status updatedAt"
        f" trackingInfo(first: {numbers}) {{ company number url }}"
        f" fulfillmentLineItems(first: {lines}) {{ nodes {{ quantity lineItem {{ id }} }} }} }}"
    )


READ_FULFILLMENTS = (
    "query GatewayReadFulfillments($id: ID!) {\n"
    "  order(id: $id) { id updatedAt " + _fulfillments_selection(10, 5, 30) + " }\n"
    "}"
)

CHANGED_ORDERS = (
    "query GatewayChangedOrders($q: String!, $after: String, $first: Int!) {\n"
    "  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $q) {\n"
    "    pageInfo { hasNextPage endCursor }\n"
    "    nodes { legacyResourceId updatedAt "
    + _fulfillments_selection(LISTED_FULFILLMENTS, LISTED_NUMBERS, LISTED_LINES)
    + " }\n"
    "  }\n"
    "}"
)

CREATED_ORDERS = """
query GatewayCreatedOrders($q: String!, $after: String, $first: Int!) {
  orders(first: $first, after: $after, sortKey: CREATED_AT, query: $q) {
    pageInfo { hasNextPage endCursor }
    nodes { legacyResourceId createdAt updatedAt }
  }
}"""

# Our id on each order we create in a seller's store, as a custom ID: an `id` metafield (values
# unique) in the app's reserved namespace, which orderByIdentifier reads directly (since 2025-04;
# shopify.dev/docs/apps/build/custom-data/metafields/working-with-custom-ids, changelog
# "custom-ids-more-lookups"). A `query:` search (the `gateway-<id>` tag) goes through Shopify's
# search index, which can be behind a just-created order: a retry in that window would create the
# order again. orderCreate takes no idempotency key: the @idempotent directive works only on the
# mutations whose description says so, and orderCreate's doesn't (2026-01 schema,
# nozzlegear/ShopifySharp graphql-schemas/2026-01.schema.graphql; shopify.dev/docs/api/usage/
# idempotent-requests).
ORDER_ID_KEY = {"namespace": "$app", "key": "gateway_order_id"}

DEFINE_ORDER_ID = """
mutation GatewayDefineOrderId($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id }
    userErrors { field message code }
  }
}"""

FIND_CREATED_ORDER = """
query GatewayFindCreatedOrder($identifier: OrderIdentifierInput!) {
  orderByIdentifier(identifier: $identifier) {
    id legacyResourceId lineItems(first: 250) { nodes { id sku quantity } }
  }
}"""

SHOP_FACTS = """
query GatewayShopFacts {
  shop { currencyCode plan { partnerDevelopment publicDisplayName } }
}"""

CREATE_ORDER = """
mutation GatewayCreateOrder($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order { id legacyResourceId lineItems(first: 250) { nodes { id sku quantity } } }
    userErrors { field message }
  }
}"""

READ_FULFILLMENT_ORDERS = """
query GatewayFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 10) {
      id status
      trackingInfo(first: 5) { number }
      fulfillmentLineItems(first: 10) { nodes { quantity lineItem { id } } }
    }
    fulfillmentOrders(first: 5) {
      nodes {
        id status
        assignedLocation { location { id } }
        lineItems(first: 50) { nodes { id remainingQuantity lineItem { id } } }
      }
    }
  }
}"""

CREATE_FULFILLMENT = """
mutation GatewayCreateFulfillment($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}"""

UPDATE_TRACKING = """
mutation GatewayUpdateTracking($id: ID!, $tracking: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking,
                                notifyCustomer: true) {
    fulfillment { id }
    userErrors { field message }
  }
}"""


LIST_WEBHOOKS = """
query GatewayWebhooks($uri: String, $after: String) {
  webhookSubscriptions(first: 100, uri: $uri, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}"""

CREATE_WEBHOOK = """
mutation GatewayCreateWebhook($topic: WebhookSubscriptionTopic!,
                              $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""

ACCESS_SCOPES = """
query GatewayAccessScopes { currentAppInstallation { accessScopes { handle } } }"""


@dataclass(frozen=True)
class ShopFacts:
    """What creating an order needs to know of the seller's shop."""

    currency: str  # orderCreate's money is in the shop's currency (MoneyBagInput.shopMoney)
    orders_limited: bool  # a development or trial store: five orderCreate a minute


# Per process: (GraphQL URL, shop) -> (when read, its facts), so an order costs no extra call.
SHOP_FACTS_CACHE: dict[tuple[str, str], tuple[float, ShopFacts]] = {}


class ShopifyAdapter:
    """One shop's connection: `shop_domain`, `access_token`, optional `api_base_url`; an
    installed one (`installed`) also `refresh_token` and `token_expires_at`, refreshed here."""

    def __init__(
        self,
        connection: dict[str, Any],
        port: PlatformPort,
        config: Settings,
        partner_id: str | None = None,
    ) -> None:
        self.shop = connection["shop_domain"]
        self.base = (connection.get("api_base_url") or f"https://{self.shop}").rstrip("/")
        self.url = f"{self.base}/admin/api/{api_version(config)}/graphql.json"
        self.port = port
        self.timeout = config.http_timeout
        self.page_size = config.reconcile_page_size
        self.partner_id = partner_id
        self.config = config
        self._adopt(connection)

    def _adopt(self, connection: dict[str, Any]) -> None:
        """Take a connection's tokens (as stored now)."""
        self.token = connection["access_token"]
        self.refresh_token = connection.get("refresh_token")
        self.expires_at = _epoch(connection.get("token_expires_at"))
        self.installed = bool(connection.get("installed"))
        self.expiring = bool(self.installed and self.refresh_token)

    # ---- the interface -----------------------------------------------------------------------

    def read_order(self, ref: str) -> StoreOrder | None:
        """A buyer store's order, re-read through GraphQL (webhook bodies are only hints)."""
        node = self.execute(READ_ORDER, {"id": order_gid(ref)}, _customer_data_withheld)["order"]
        if node is None:
            return None
        address = node.get("shippingAddress") or {}  # what is withheld is null: no usable address
        return StoreOrder(
            ref=node["legacyResourceId"],
            lines=[
                StoreLine(li["id"], li.get("sku") or "", li["quantity"], li.get("title") or "")
                for li in node["lineItems"]["nodes"]
            ],
            shipping_address=_our_address(address),
            email=node.get("email"),
            payment=_payment(node),
        )

    def create_order(self, order: Order) -> CreatedOrder:
        """orderCreate in the seller's store: inventory bypassed, no receipt to anyone.

        Exactly once: the order carries our id as a custom ID, and an earlier attempt's order
        (created, but its answer lost or not recorded before a crash) is found by it instead of
        created again, however far behind Shopify's search index is.
        """
        tag = f"gateway-{order.id}"
        custom_id = {**ORDER_ID_KEY, "value": order.id}
        self._define_order_id()
        found = self.execute(FIND_CREATED_ORDER, {"identifier": {"customId": custom_id}})[
            "orderByIdentifier"
        ]
        if found:
            return CreatedOrder(found["legacyResourceId"], _line_refs(order, found))
        facts = self._shop_facts()
        if facts.orders_limited and (wait := self._order_turn(order.id)):
            raise PlatformError(
                f"the seller's development or trial store takes 5 new orders a minute: "
                f"this one's turn is in {wait:.0f}s",
                retry_after=wait,
            )
        # Prices are 0 in the shop's own currency: the order's currency defaults to it, and
        # shopMoney is "amount in shop currency" (shopify.dev/docs/api/admin-graphql/latest/
        # input-objects/OrderCreateOrderInput, .../MoneyBagInput).
        money = {"amount": "0.00", "currencyCode": facts.currency}
        variables = {
            "order": {
                "currency": facts.currency,
                "lineItems": [
                    {
                        "title": li.title,
                        "sku": li.seller_sku,
                        "quantity": li.quantity,
                        "priceSet": {"shopMoney": money},
                        "requiresShipping": True,
                    }
                    for li in order.line_items
                ],
                "shippingAddress": _shopify_address(order.shipping_address),
                "sourceIdentifier": order.id,
                "metafields": [{**custom_id, "type": "id"}],
                "tags": ["fulfillment-gateway", tag],
                "note": f"Dropship order {order.buyer_order_ref} via the fulfillment gateway",
            },
            "options": {
                "inventoryBehaviour": "BYPASS",
                "sendReceipt": False,
                "sendFulfillmentReceipt": False,
            },
        }
        if order.customer_email:
            variables["order"]["email"] = order.customer_email
        try:
            result = self.execute(CREATE_ORDER, variables)["orderCreate"]
        except PlatformError as error:
            refused = not error.permanent or ORDER_REFUSAL in str(error)
            if not (facts.orders_limited and refused):
                raise
            wait = self._order_turn(order.id, not_before=ORDER_REFUSAL_WAIT)
            raise PlatformError(
                f"{error} (a development or trial store past its 5 orders a minute)",
                retry_after=max(wait, error.retry_after or 0.0),
            ) from error
        errors = (result or {}).get("userErrors") or []
        if any("currencyCode" in (e.get("field") or []) for e in errors):
            # The shop's currency changed since it was read: the retry reads it again.
            SHOP_FACTS_CACHE.pop((self.url, self.shop), None)
            raise PlatformError(f"Shopify refused the order in {facts.currency}, not the shop's")
        _raise_user_errors(result)
        created = result["order"]
        return CreatedOrder(ref=created["legacyResourceId"], line_refs=_line_refs(order, created))

    def _define_order_id(self) -> None:
        """The `id` metafield definition our custom ID is looked up through, on the store's
        orders; TAKEN: an earlier call made it."""
        result = self.execute(
            DEFINE_ORDER_ID,
            {
                "definition": {
                    **ORDER_ID_KEY,
                    "name": "Fulfillment gateway order",
                    "ownerType": "ORDER",
                    "type": "id",
                }
            },
        )["metafieldDefinitionCreate"]
        if result and all(error.get("code") == "TAKEN" for error in result["userErrors"]):
            return
        _raise_user_errors(result)

    def read_fulfillments(self, ref: str) -> list[ObservedFulfillment]:
        """The seller order's fulfillments as Shopify has them now."""
        node = self.execute(READ_FULFILLMENTS, {"id": order_gid(ref)})["order"]
        if node is None:
            raise PlatformError(
                f"the seller's store has no order {ref}{NOT_IN_REACH}", permanent=True
            )
        return [_observed(f) for f in node["fulfillments"]]

    def changed_orders(self, since: str, page: str | None, created: bool = False) -> ChangedPage:
        """One page of `orders(query: "updated_at:>=...")`, fulfillments nested, so a changed
        order costs no call of its own (or `created_at`, for buyer stores)."""
        field = "created_at" if created else "updated_at"
        data = self.execute(
            CREATED_ORDERS if created else CHANGED_ORDERS,
            {"q": f"{field}:>='{since}'", "after": page, "first": self.page_size},
        )["orders"]
        orders = [
            ChangedOrder(
                ref=node["legacyResourceId"],
                updated_at=node["createdAt"] if created else node["updatedAt"],
                fulfillments=None if created else _complete(node["fulfillments"]),
            )
            for node in data["nodes"]
        ]
        info = data["pageInfo"]
        return ChangedPage(orders, info["endCursor"] if info["hasNextPage"] else None)

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str:
        """Create the fulfillment in the buyer's store, or update its tracking there.

        Exactly once: before creating, look for one an earlier attempt created (same tracking
        numbers) whose success we never recorded.
        """
        tracking = _tracking_input(fulfillment)
        if fulfillment.delivery.buyer_ref:
            result = self.execute(
                UPDATE_TRACKING, {"id": fulfillment.delivery.buyer_ref, "tracking": tracking}
            )["fulfillmentTrackingInfoUpdate"]
            _raise_user_errors(result)
            return fulfillment.delivery.buyer_ref
        node = self.execute(READ_FULFILLMENT_ORDERS, {"id": order_gid(order.buyer_order_ref)})[
            "order"
        ]
        if node is None:
            raise PlatformError(
                f"the buyer's store has no order {order.buyer_order_ref}{NOT_IN_REACH}",
                permanent=True,
            )
        ours = set(fulfillment.tracking_numbers)
        our_lines = sorted(
            (order.line(fl.line_item_id).buyer_ref, fl.quantity) for fl in fulfillment.line_items
        )
        claimed = {f.delivery.buyer_ref for f in order.fulfillments if f.id != fulfillment.id}
        for existing in node["fulfillments"]:
            numbers = {i["number"] for i in existing.get("trackingInfo") or [] if i.get("number")}
            lines = sorted(
                (n["lineItem"]["id"], n["quantity"])
                for n in (existing.get("fulfillmentLineItems") or {}).get("nodes") or []
            )
            if (
                existing.get("status") != "CANCELLED"
                and existing["id"] not in claimed  # a sibling of ours with the same numbers
                and numbers
                and numbers <= ours
                and lines == our_lines
            ):
                log.info("%s already exists in %s as %s", fulfillment.id, self.shop, existing["id"])
                if numbers != ours:  # an earlier attempt made it; tracking changed since
                    result = self.execute(
                        UPDATE_TRACKING, {"id": existing["id"], "tracking": tracking}
                    )["fulfillmentTrackingInfoUpdate"]
                    _raise_user_errors(result)
                return existing["id"]
        by_fulfillment_order = _allocate(order, fulfillment, node["fulfillmentOrders"]["nodes"])
        result = self.execute(
            CREATE_FULFILLMENT,
            {
                "fulfillment": {
                    "lineItemsByFulfillmentOrder": by_fulfillment_order,
                    "trackingInfo": tracking,
                    "notifyCustomer": True,
                }
            },
        )["fulfillmentCreate"]
        _raise_user_errors(result)
        return result["fulfillment"]["id"]

    def mark_shipped(self, order: Order) -> str:
        """Nothing to do: Shopify closes the order when its fulfillment orders are fulfilled."""
        return "the buyer's Shopify store closes the order itself"

    # ---- the seller's shop: its currency and plan, its turns at orderCreate -----------------

    def _shop_facts(self) -> ShopFacts:
        """The shop's currency and plan, read at most once an hour per process."""
        cached = SHOP_FACTS_CACHE.get((self.url, self.shop))
        if cached and time.time() - cached[0] < SHOP_FACTS_TTL:
            return cached[1]
        shop = self.execute(SHOP_FACTS, {})["shop"]
        plan = shop["plan"]
        facts = ShopFacts(
            currency=shop["currencyCode"],
            orders_limited=plan["partnerDevelopment"]
            or plan["publicDisplayName"] in ORDER_LIMITED_PLANS,
        )
        SHOP_FACTS_CACHE[(self.url, self.shop)] = (time.time(), facts)
        return facts

    def _order_turn(self, order_id: str, not_before: float = 0.0) -> float:
        """Seconds until `order_id` may be created in a shop limited to five orders a minute
        (0: now). Each order gets its own turn, ORDER_INTERVAL after the last one given, shared
        by every process; an order sent away keeps its turn, so its retry takes it, not a new
        one at the end of the line."""
        key = f"pace:shopify-orders:{self.shop}"
        now = time.time()
        # Turns an order never came back for are dropped after a while.
        state = {k: at for k, at in (self.port.pace(key) or {}).items() if at > now - 3600}
        turn = state.pop(order_id, None)
        if turn is None:
            turn = max(state.get("next", 0.0), now + not_before)
            state["next"] = turn + ORDER_INTERVAL
        if turn > now:
            state[order_id] = turn
        self.port.set_pace(key, state)
        return max(0.0, turn - now)

    # ---- transport ---------------------------------------------------------------------------

    def execute(
        self,
        query: str,
        variables: dict[str, Any],
        withheld: Callable[[Any], bool] | None = None,
    ) -> dict[str, Any]:
        """One GraphQL call, paced by the shop's cost bucket; returns `data`. Errors are failures,
        but those `withheld` accepts: fields Shopify redacted, left null in `data`."""
        refreshed = False
        throttled = 0
        while throttled <= THROTTLE_RETRIES:
            if self.expiring and not refreshed and self._expires_soon():
                self._refresh("the access token expires soon")
                refreshed = True
            self._wait_for_bucket()
            try:
                answer = http.post(
                    self.url,
                    json={"query": query, "variables": variables},
                    headers={"X-Shopify-Access-Token": self.token},
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                raise PlatformError(f"Shopify unreachable: {type(error).__name__}") from error
            self.port.count("platform_calls_shopify")
            note_deprecation(answer, self.port, self.shop)
            if answer.status_code == 401 and self.installed:
                if refreshed:  # refused right after a refresh: the merchant must connect again
                    self._down("Shopify refused the refreshed access token (HTTP 401)")
                if not self.expiring:  # a non-expiring token refused: revoked (uninstalled)
                    self._down("Shopify refused the access token (HTTP 401)")
                self._refresh("Shopify answered 401")
                refreshed = True
                continue
            body = _json(answer)
            cost = (body.get("extensions") or {}).get("cost") or {}
            self._remember_bucket(cost.get("throttleStatus"))
            if _throttled(answer, body):
                self._note_throttled(cost)
                throttled += 1
                continue
            if answer.status_code != 200:
                refuse_status("Shopify", answer)
                raise PlatformError(f"Shopify answered HTTP {answer.status_code}")
            if body.get("errors"):
                errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
                if withheld and body.get("data") and all(withheld(e) for e in errors):
                    log.warning(
                        "%s withholds %s: the app is not approved for protected customer data"
                        " (the Partner Dashboard's protected customer data access)",
                        self.shop,
                        ", ".join(".".join(map(str, e["path"])) for e in errors),
                    )
                    return body["data"]
                messages = "; ".join(
                    e.get("message", "?") if isinstance(e, dict) else str(e) for e in errors
                )
                transient = any(
                    isinstance(e, dict)
                    and (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
                    for e in errors
                )  # Shopify answers most of its own faults with 200 and this code
                raise PlatformError(f"Shopify GraphQL errors: {messages}", permanent=not transient)
            return body.get("data") or {}
        raise PlatformError("Shopify kept throttling the shop's calls", retry_after=5)

    # ---- expiring offline tokens -----------------------------------------------------------

    def _expires_soon(self) -> bool:
        return self.expires_at is not None and self.expires_at - time.time() < REFRESH_AHEAD

    def _down(self, reason: str) -> None:
        """The store's tokens are refused: needs_reauth, and the work waits (ConnectionDown)."""
        if self.partner_id:
            self.port.connection_failed(self.partner_id, reason)
        raise ConnectionDown(self.partner_id or "", NEEDS_REAUTH, reason)

    def _refresh(self, why: str) -> None:
        """Swap the refresh token for a new pair, one worker per store at a time.

        A Redis lease (`refresh:<partner id>`) makes the others wait and read what the winner
        saved. The new pair replaces the old in one transaction, and only if the stored access
        token is still the one refreshed. A lost answer (time-out, 5xx, a crash before saving)
        leaves the old pair stored: Shopify keeps the previous refresh token usable "until an
        app begins using its replacement" (shopify.dev/changelog/more-resilient-refreshes-for-
        expiring-offline-access-tokens, 2026-08-28), so a later retry with it still works.
        """
        port = self.port
        if not self.partner_id:
            raise PlatformError("an expiring Shopify token with no partner to save it to")
        name = f"refresh:{self.partner_id}"
        lease = port.acquire(name, REFRESH_LEASE)
        if lease is None:
            deadline = time.monotonic() + REFRESH_WAIT
            while lease is None:
                time.sleep(0.2)
                stored = port.stored_connection(self.partner_id)
                if stored and stored.get("access_token") != self.token:
                    self._adopt(stored)  # another worker refreshed it
                    return
                if time.monotonic() > deadline:
                    raise PlatformError(
                        "another worker is refreshing the shop's access token", retry_after=5
                    )
                lease = port.acquire(name, REFRESH_LEASE)
        try:
            stored = port.stored_connection(self.partner_id) or {}
            if not stored.get("refresh_token"):
                self._down("the Shopify connection has no refresh token: connect the store again")
            if stored.get("access_token") != self.token:
                self._adopt(stored)  # refreshed by another worker since we read it
                if not self._expires_soon():
                    return
            self._exchange_refresh(stored, why)
        finally:
            port.release(name, lease)

    def _exchange_refresh(self, stored: dict[str, Any], why: str) -> None:
        """One refresh call with the stored refresh token; the answer saved with the access
        token it replaces (caller holds the lease)."""
        port = self.port
        body = {
            "client_id": self.config.platform_setting("SHOPIFY_CLIENT_ID", ""),
            "client_secret": self.config.platform_setting("SHOPIFY_CLIENT_SECRET", ""),
            "grant_type": "refresh_token",
            "refresh_token": stored["refresh_token"],
        }
        try:
            answer = http.post(
                f"{self.base}/admin/oauth/access_token",
                json=body,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            # The refresh may have happened: the stored refresh token stays usable (above).
            raise PlatformError(
                f"Shopify token refresh unanswered ({type(error).__name__}): retried later",
                retry_after=5,
            ) from error
        port.count("shopify_token_refreshes")
        note_deprecation(answer, port, self.shop)
        if answer.status_code == 429 or answer.status_code >= 500:
            raise PlatformError(
                f"Shopify token refresh answered HTTP {answer.status_code}: retried later",
                retry_after=5,
            )
        tokens = _json(answer)
        if answer.status_code != 200 or not tokens.get("access_token"):
            error = tokens.get("error") or f"HTTP {answer.status_code}"
            self._down(f"Shopify refused the token refresh ({error}): connect the store again")
        now = time.time()
        changes = {
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token") or stored["refresh_token"],
            "token_expires_at": _iso_in(float(tokens.get("expires_in") or 3600), now),
        }
        if not port.save_tokens(self.partner_id, stored["access_token"], changes):
            # Changed under us (the lease lapsed?): what is stored now wins.
            self._adopt(port.stored_connection(self.partner_id) or stored)
            return
        log.info("refreshed the Shopify access token of %s (%s)", self.shop, why)
        self._adopt({**stored, **changes})

    # ---- webhooks the gateway registers ---------------------------------------------------------

    def ensure_webhooks(
        self, address: str, topics: list[str], headers: dict[str, str]
    ) -> list[WebhookCheck]:
        """Each topic delivered to `address`: our subscriptions (same uri) listed, the missing
        ones created (`webhookSubscriptionCreate(topic:, webhookSubscription: {uri:})`; `uri`
        replaced `callbackUrl` from 2025-04). Shopify has no disabled state: it deletes
        subscriptions that keep failing, so a removed one is "missing" (shopify.md). Shopify
        webhooks take no custom headers: `headers` is not used."""
        found: set[str] = set()
        after = None
        while True:
            page = self.execute(LIST_WEBHOOKS, {"uri": address, "after": after})[
                "webhookSubscriptions"
            ]
            found |= {n["topic"] for n in page["nodes"] if n.get("uri") == address}
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        checks = []
        for topic in topics:
            enum = topic.upper().replace("/", "_")
            if enum in found:
                checks.append(WebhookCheck(topic, "active", False))
                continue
            result = self.execute(
                CREATE_WEBHOOK, {"topic": enum, "subscription": {"uri": address}}
            )["webhookSubscriptionCreate"]
            errors = (result or {}).get("userErrors") or []
            if result is None or errors:
                message = "; ".join(e.get("message", "?") for e in errors) or "no result"
                checks.append(WebhookCheck(topic, "missing", False, message[:200]))
            else:
                checks.append(WebhookCheck(topic, "missing", True))
        return checks

    def granted_scopes(self) -> list[str]:
        """The scopes the app holds in this shop (`currentAppInstallation.accessScopes`)."""
        data = self.execute(ACCESS_SCOPES, {}).get("currentAppInstallation")
        scopes = data.get("accessScopes") if isinstance(data, dict) else None
        if not isinstance(scopes, list):
            raise PlatformError("Shopify answered no accessScopes", permanent=True)
        return [s["handle"] for s in scopes if isinstance(s, dict) and "handle" in s]

    def _pace_key(self) -> str:
        return f"pace:shopify:{self.shop}"

    def _wait_for_bucket(self) -> None:
        state = self.port.pace(self._pace_key())
        if not state:
            return
        restore = max(state["restore"], 1.0)
        available = min(state["max"], state["available"] + (time.time() - state["at"]) * restore)
        if available >= ASSUMED_QUERY_COST:
            return
        wait = (ASSUMED_QUERY_COST - available) / restore
        if wait > MAX_PACING_WAIT:
            raise PlatformError("the shop's API budget is spent for now", retry_after=wait)
        time.sleep(wait)

    def _remember_bucket(self, status: dict[str, Any] | None) -> None:
        if status:
            self.port.set_pace(
                self._pace_key(),
                {
                    "available": float(status.get("currentlyAvailable", 0)),
                    "max": float(status.get("maximumAvailable", 1000)),
                    "restore": float(status.get("restoreRate", 50)),
                    "at": time.time(),
                },
            )

    def _note_throttled(self, cost: dict[str, Any]) -> None:
        self.port.count("platform_throttled_shopify")
        status = cost.get("throttleStatus") or {}
        needed = float(cost.get("requestedQueryCost") or ASSUMED_QUERY_COST)
        available = float(status.get("currentlyAvailable", 0))
        restore = max(float(status.get("restoreRate", 50)), 1.0)
        time.sleep(min(MAX_PACING_WAIT, max(0.2, (needed - available) / restore)))


def _complete(nested: list[dict[str, Any]]) -> list[ObservedFulfillment] | None:
    """The fulfillments a listing carried, or None when the listing's small page sizes may
    have cut some off (then the order is read on its own)."""
    if len(nested) >= LISTED_FULFILLMENTS or any(
        len(f["trackingInfo"]) >= LISTED_NUMBERS
        or len(f["fulfillmentLineItems"]["nodes"]) >= LISTED_LINES
        for f in nested
    ):
        return None
    return [_observed(f) for f in nested]


def _line_refs(order: Order, created: dict[str, Any]) -> dict[str, str]:
    """Our line ids to the store's: Shopify keeps the input order; match by SKU to be sure."""
    store_lines = list(created["lineItems"]["nodes"])
    line_refs: dict[str, str] = {}
    for li in order.line_items:
        match = next((s for s in store_lines if s.get("sku") == li.seller_sku), None)
        match = match or (store_lines[0] if store_lines else None)
        if match is None:
            break
        store_lines.remove(match)
        line_refs[li.id] = match["id"]
    return line_refs


# OrderDisplayFinancialStatus (shopify.dev/docs/api/admin-graphql/latest/enums/
# OrderDisplayFinancialStatus) in our terms. AUTHORIZED ships: a shop that captures "automatically
# when the order is fulfilled" keeps its orders AUTHORIZED until they are fulfilled
# (help.shopify.com/manual/payments/payment-authorization), so holding them would hold them for
# good. VOIDED (an authorization cancelled) and REFUNDED (all money returned) will never be paid.
# PENDING (manual payment methods: bank deposit, cash on delivery, money order, payment terms),
# PARTIALLY_PAID and EXPIRED wait until the merchant marks the order paid (orders/paid).
PAID_FINANCIAL_STATUSES = ("PAID", "PARTIALLY_REFUNDED", "AUTHORIZED")
ENDED_FINANCIAL_STATUSES = ("VOIDED", "REFUNDED")


def _payment(node: dict[str, Any]) -> str:
    """Whether the shop's order may ship: PAID, UNPAID, or CANCELLED (cancelledAt set)."""
    status = node.get("displayFinancialStatus")
    if node.get("cancelledAt") or status in ENDED_FINANCIAL_STATUSES:
        return CANCELLED
    return PAID if status in PAID_FINANCIAL_STATUSES else UNPAID


# Protected customer data (shopify.dev/docs/apps/launch/protected-customer-data): since 2022-10
# an app not approved for the name, address, email and phone fields gets them redacted, each null
# in `data` with an `errors` entry naming its path, with HTTP 200. The order is read anyway: with
# no usable address it waits for one (the core's waiting_for "address"), and is read again once
# the app is approved. An error anywhere else (the order itself denied) still fails the read.
PROTECTED_ORDER_FIELDS = ("email", "shippingAddress")  # those READ_ORDER asks for


def _customer_data_withheld(error: Any) -> bool:
    """An error Shopify adds for a protected customer data field of the order it redacted."""
    path = error.get("path") if isinstance(error, dict) else None
    return (
        isinstance(path, list)
        and len(path) > 1
        and path[0] == "order"
        and path[1] in PROTECTED_ORDER_FIELDS
    )


# FulfillmentStatus values that mean the shipment is off (shopify.md): our "cancelled".
CANCELLED_STATUSES = ("CANCELLED", "ERROR", "FAILURE")


def _observed(f: dict[str, Any]) -> ObservedFulfillment:
    infos = f.get("trackingInfo") or []
    status = f.get("status") or ""
    return ObservedFulfillment(
        source_ref=f["id"],
        status="cancelled" if status in CANCELLED_STATUSES else status.lower(),
        carrier=next((i["company"] for i in infos if i.get("company")), ""),
        tracking_numbers=[i["number"] for i in infos if i.get("number")],
        tracking_urls=[i["url"] for i in infos if i.get("url")],
        lines=[(n["lineItem"]["id"], n["quantity"]) for n in f["fulfillmentLineItems"]["nodes"]],
        updated_at=f.get("updatedAt"),
    )


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _throttled(answer: requests.Response, body: dict[str, Any]) -> bool:
    errors = body.get("errors")
    if isinstance(errors, list) and any(
        (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
        if isinstance(e, dict)
    ):
        return True
    return answer.status_code == 429 and "cost" in (body.get("extensions") or {})


def _raise_user_errors(result: dict[str, Any] | None) -> None:
    if result is None:
        raise PlatformError("Shopify returned no result", permanent=True)
    errors = result.get("userErrors") or []
    if errors:
        messages = "; ".join(
            f"{'.'.join(e.get('field') or []) or 'input'}: {e.get('message')}" for e in errors
        )
        raise PlatformError(f"Shopify refused it: {messages}", permanent=True)


def tracking_company(carrier: str) -> str:
    """Our carrier as Shopify's list spells it; a carrier it doesn't list, as given."""
    return OUR_CARRIERS.get(carrier) or _LISTED.get(carrier.strip().lower(), carrier)


def _tracking_input(fulfillment: Fulfillment) -> dict[str, Any]:
    tracking: dict[str, Any] = {
        "company": tracking_company(fulfillment.carrier),
        "numbers": fulfillment.tracking_numbers,
    }
    if fulfillment.tracking_urls:
        tracking["urls"] = fulfillment.tracking_urls
    return tracking


def _allocate(order: Order, fulfillment: Fulfillment, fulfillment_orders: list[dict]) -> list[dict]:
    """Our lines onto the buyer's fulfillment-order lines with enough remainingQuantity."""
    chosen: dict[str, list[dict]] = {}
    locations = set()
    for fl in fulfillment.line_items:
        line = order.line(fl.line_item_id)
        wanted = fl.quantity
        for fo in fulfillment_orders:
            if fo.get("status") not in ("OPEN", "IN_PROGRESS"):
                continue
            for item in fo["lineItems"]["nodes"]:
                if wanted == 0 or item["lineItem"]["id"] != line.buyer_ref:
                    continue
                take = min(wanted, item["remainingQuantity"])
                if take > 0:
                    chosen.setdefault(fo["id"], []).append({"id": item["id"], "quantity": take})
                    locations.add(
                        ((fo.get("assignedLocation") or {}).get("location") or {}).get("id")
                    )
                    wanted -= take
        if wanted:
            raise PlatformError(
                f"the buyer's order has not enough left to fulfil of {line.sku} ({wanted} short)",
                permanent=True,
            )
    if len(locations) > 1:
        raise PlatformError(
            "the lines sit at several locations in the buyer's store", permanent=True
        )
    return [
        {"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items}
        for fo_id, items in chosen.items()
    ]


def _our_address(address: dict[str, Any]) -> dict[str, Any]:
    name = address.get("name") or " ".join(
        p for p in (address.get("firstName"), address.get("lastName")) if p
    )
    ours = {
        "name": name,
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("provinceCode"),
        "zip": address.get("zip"),
        "country_code": address.get("countryCodeV2"),
        "phone": address.get("phone"),
    }
    return {k: v for k, v in ours.items() if v}


def _shopify_address(address: dict[str, Any]) -> dict[str, Any]:
    first, _, last = (address.get("name") or "").partition(" ")
    theirs = {
        "firstName": first,
        "lastName": last or first,
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "provinceCode": address.get("province"),
        "zip": address.get("zip"),
        "countryCode": address.get("country_code"),
        "phone": address.get("phone"),
    }
    return {k: v for k, v in theirs.items() if v}


# ---- the platform's declaration ---------------------------------------------------------------

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com$")  # one DNS label


class ShopifyConnection(StrictSchema):
    shop_domain = fields.String(
        required=True,
        validate=validate.Regexp(SHOP_DOMAIN, error="Must be like acme.myshopify.com."),
    )
    access_token = secret(required=True)
    webhook_secret = secret(required=True)
    api_base_url = web_url()
    location_id = text(100)


class ShopifyInstall(StrictSchema):
    """The hints of a Shopify connect link: the shop (asked on the page when missing) and, for
    an operator, the simulator's address of that shop."""

    shop_domain = fields.String(
        validate=validate.Regexp(SHOP_DOMAIN, error="Must be like acme.myshopify.com."),
        metadata={"ask": "Shop domain"},
    )
    api_base_url = web_url(metadata={"operator_only": True})


def _page(status: int, title: str, message: str) -> InstallAnswer:
    return InstallAnswer(status=status, title=title, message=message)


def _refused(message: str, status: int = 403) -> InstallAnswer:
    return _page(status, "Shopify store not connected", message)


def _header(call: WebhookCall, name: str) -> str:
    """A Shopify delivery header in either spelling: `X-Shopify-<name>` as webhooks send it
    (shopify.dev/docs/apps/build/webhooks/delivery-structure), or `Shopify-<name>` as Events
    deliveries do, same values and signature (shopify.dev/docs/apps/build/events/
    delivery-structure and /verify-deliveries; Shopify/shopify-app-js, packages/apps/shopify-api/
    lib/types.ts `ShopifyEventsHeader`, lib/webhooks/validate.ts)."""
    return call.header(f"X-Shopify-{name}") or call.header(f"Shopify-{name}")


class Shopify(Platform):
    name = "shopify"
    label = "Shopify"
    connection_schema = ShopifyConnection
    install_schema = ShopifyInstall
    install_steps = {"callback": ("GET",)}
    extra_secrets = ("refresh_token",)
    # Every installed shop tells us it uninstalled the app (WebhookSubscriptionTopic
    # APP_UNINSTALLED). The compliance topics are not subscribed: they come to the URLs in the
    # app's configuration (shopify.dev/docs/apps/build/compliance/privacy-law-compliance).
    lifecycle_topics = ("app/uninstalled",)
    # A buyer's order is read again when it is paid or cancelled (it may wait for payment); both
    # topics need read_orders (shopify.dev/docs/api/admin-graphql/latest/enums/
    # WebhookSubscriptionTopic). orders/updated would also say so, but fires for every change of
    # every order (the fulfillments we write included); the rare changes the narrow topics miss
    # (PENDING to AUTHORIZED, an address fixed) are read by each reconciliation cycle.
    topics = {
        "orders/create": INGEST_ORDER,
        "orders/paid": INGEST_ORDER,
        "orders/cancelled": INGEST_ORDER,
        "fulfillments/create": SYNC_SELLER,
        "fulfillments/update": SYNC_SELLER,
    }
    webhook_auth = (
        "X-Shopify-Hmac-Sha256 (or Shopify-Hmac-Sha256) over the raw body; store by "
        "X-Shopify-Shop-Domain (or Shopify-Shop-Domain)"
    )

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        return connection.get("shop_domain")  # none before the store is installed

    def adapter(
        self, partner: dict[str, Any], port: PlatformPort, config: Settings
    ) -> ShopifyAdapter:
        return ShopifyAdapter(partner["connection"], port, config, partner.get("id"))

    # ---- install: the authorization code grant with expiring offline tokens --------------------

    def begin_install(
        self, link: ConnectLink, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """To the shop's grant screen: `https://{shop}/admin/oauth/authorize?client_id&scope&
        redirect_uri&state` (shopify.dev/docs/apps/build/authentication-authorization/
        get-access-tokens/authorization-code-grant), `state` a single-use nonce bound to the link.
        """
        shop = link.hints["shop_domain"]
        base = (link.hints.get("api_base_url") or f"https://{shop}").rstrip("/")
        query = urlencode(
            {
                "client_id": config.platform_setting("SHOPIFY_CLIENT_ID", ""),
                "scope": ",".join(scopes_setting(config)),
                "redirect_uri": f"{config.public_url.rstrip('/')}{CALLBACK_PATH}",
                "state": port.new_state(link, {"shop_domain": shop}),
            }
        )
        return InstallAnswer(status=302, redirect=f"{base}/admin/oauth/authorize?{query}")

    def install_step(
        self, step: str, request: InstallRequest, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """`GET /connect/shopify/callback?code&hmac&host&shop&state&timestamp`: hmac, timestamp,
        shop name and state checked (in that order: a forged request uses up no state), the code
        exchanged for an expiring offline token, the granted scopes checked, the connection
        stored. A refusal stores nothing."""
        if step != "callback":
            return _refused("Unknown step.", 404)
        secret_key = config.platform_setting("SHOPIFY_CLIENT_SECRET", "")
        args = request.args
        if not secret_key or not config.platform_setting("SHOPIFY_CLIENT_ID", ""):
            return _refused("The gateway's Shopify app is not configured.", 503)
        if not callback_hmac_ok(request.query_string, secret_key):
            port.count("shopify_install_refused")
            return _refused("This request is not signed by Shopify.")
        try:
            stamp = int(args.get("timestamp", ""))
        except ValueError:
            stamp = None
        now = port.now()
        if stamp is None or abs(now - stamp) > CALLBACK_TOLERANCE:
            port.count("shopify_install_refused")
            return _refused("This request is too old: start again from your connect link.")
        shop = (args.get("shop") or "").strip().lower()
        if not SHOP_DOMAIN.fullmatch(shop):
            port.count("shopify_install_refused")
            return _refused("That is not a myshopify.com store.", 400)
        taken = port.take_state(args.get("state") or "")
        if taken is None:
            port.count("shopify_install_refused")
            return _refused(
                "This install is unknown, used or expired: open your connect link again."
            )
        link, _data = taken
        if link.hints.get("shop_domain") and link.hints["shop_domain"] != shop:
            port.count("shopify_install_refused")
            return _refused(f"This connect link is for {link.hints['shop_domain']}, not {shop}.")
        base = (link.hints.get("api_base_url") or f"https://{shop}").rstrip("/")
        tokens = self._exchange_code(base, args.get("code") or "", port, config)
        if isinstance(tokens, InstallAnswer):
            return tokens
        connection: dict[str, Any] = {
            "shop_domain": shop,
            "access_token": tokens["access_token"],
            "installed": True,
        }
        if tokens.get("refresh_token"):
            connection["refresh_token"] = tokens["refresh_token"]
            connection["token_expires_at"] = _iso_in(
                float(tokens.get("expires_in") or 3600), time.time()
            )
        if link.hints.get("api_base_url"):
            connection["api_base_url"] = link.hints["api_base_url"]
        status, reason = "connected", ""
        missing = missing_scopes(scopes_setting(config), self._granted(connection, tokens, config))
        if missing:
            status = "needs_reauth"
            reason = f"the store granted the app too few scopes: {', '.join(missing)} missing"
        try:
            port.complete(link, connection, status=status, reason=reason)
        except InstallRefused as refusal:
            return _refused(str(refusal), 409)
        if missing:
            return _page(
                200,
                "Shopify store connected, with too few permissions",
                f"{shop} is connected but did not grant {', '.join(missing)}: "
                "open a new connect link and approve every permission.",
            )
        return _page(200, "Shopify store connected", f"{shop} is connected to the gateway.")

    def _exchange_code(
        self, base: str, code: str, port: Any, config: Settings
    ) -> dict[str, Any] | InstallAnswer:
        """`POST {shop}/admin/oauth/access_token` {client_id, client_secret, code, expiring: 1}
        (as shopify-app-js `callback` sends it, packages/apps/shopify-api/lib/auth/oauth/
        oauth.ts) -> {access_token, scope, expires_in, refresh_token, refresh_token_expires_in}."""
        try:
            answer = http.post(
                f"{base}/admin/oauth/access_token",
                json={
                    "client_id": config.platform_setting("SHOPIFY_CLIENT_ID", ""),
                    "client_secret": config.platform_setting("SHOPIFY_CLIENT_SECRET", ""),
                    "code": code,
                    "expiring": 1,
                },
                headers={"Accept": "application/json"},
                timeout=config.http_timeout,
            )
        except requests.RequestException as error:
            return _refused(f"Shopify did not answer ({type(error).__name__}): try again.", 502)
        note_deprecation(answer, port, base)
        tokens = _json(answer)
        if answer.status_code != 200 or not tokens.get("access_token"):
            error = tokens.get("error") or f"HTTP {answer.status_code}"
            return _refused(f"Shopify refused the installation ({error}): try again.", 502)
        return tokens

    def _granted(
        self, connection: dict[str, Any], tokens: dict[str, Any], config: Settings
    ) -> list[str]:
        """The scopes granted: `currentAppInstallation.accessScopes`, else (that call failing)
        the token answer's `scope`."""
        adapter = ShopifyAdapter({**connection, "installed": False}, _NoPort(), config)
        try:
            return adapter.granted_scopes()
        except PlatformError as error:
            log.warning(
                "could not read the scopes granted by %s: %s", connection["shop_domain"], error
            )
            return [s for s in str(tokens.get("scope") or "").split(",") if s]

    def connection_event(self, topic: str, call: WebhookCall) -> ConnectionEvent | None:
        """`app/uninstalled`, and the compliance webhooks (shopify.dev/docs/apps/build/
        compliance/privacy-law-compliance): customers/data_request {shop_id, shop_domain,
        orders_requested, customer {id, email, phone}, data_request {id}}; customers/redact
        {shop_id, shop_domain, customer {id, email, phone}, orders_to_redact}; shop/redact
        {shop_id, shop_domain}, 48 hours after an uninstall."""
        if topic == "app/uninstalled":  # its time: a late one must not undo a reinstall
            return ConnectionEvent(UNINSTALLED_EVENT, at=_header(call, "Triggered-At"))
        if topic == "shop/redact":
            return ConnectionEvent(REDACT_SHOP)
        if topic not in ("customers/redact", "customers/data_request"):
            return None
        body = call.body()
        customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
        email = customer.get("email")
        key = "orders_to_redact" if topic == "customers/redact" else "orders_requested"
        orders = body.get(key) if isinstance(body.get(key), list) else []
        return ConnectionEvent(
            REDACT_CUSTOMER if topic == "customers/redact" else DATA_REQUEST,
            emails=(email,) if isinstance(email, str) and email else (),
            order_refs=tuple(str(ref) for ref in orders if isinstance(ref, int | str)),
        )

    def webhook_store(self, call: WebhookCall) -> str | None:
        domain = _header(call, "Shop-Domain").strip().lower()
        return domain if SHOP_DOMAIN.fullmatch(domain) else None

    def verify_webhook(
        self, connection: dict[str, Any], call: WebhookCall, config: Settings
    ) -> bool:
        """An installed connection's webhooks are signed with the app's client secret; a custom
        app's with the secret given with the connection."""
        if connection.get("installed"):
            key = config.platform_setting("SHOPIFY_CLIENT_SECRET", "")
        else:
            key = connection.get("webhook_secret") or ""
        return verify_webhook(key, call.raw, _header(call, "Hmac-Sha256"))

    def delivery_id(self, call: WebhookCall) -> str | None:
        return (
            _header(call, "Webhook-Id")
            or _header(call, "Event-Id")
            or hashlib.sha256(self.topic(call).encode() + call.raw).hexdigest()
        )

    def topic(self, call: WebhookCall) -> str:
        return _header(call, "Topic")

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        body = call.body()
        ref = body.get("order_id") if self.topics[topic] == SYNC_SELLER else body.get("id")
        return None if ref is None else str(ref)


class _NoPort:
    """The port of a call made before the store is anyone's (the install's scope check)."""

    def count(self, name: str, amount: int = 1) -> None:
        pass

    def pace(self, name: str) -> None:
        return None

    def set_pace(self, name: str, state: dict[str, float]) -> None:
        pass


register(Shopify())
