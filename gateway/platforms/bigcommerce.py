"""BigCommerce through the V2 Orders API: webhook checks, orders in and out, shipments.

Facts: ../shared/platforms/bigcommerce.md. Webhook bodies carry ids only, so jobs read the
details. Calls are paced from the `X-Rate-Limit-*` headers (the quota is shared by every app on
the store); a 429 waits `X-Rate-Limit-Time-Reset-Ms`.

A BigCommerce shipment holds one tracking number. A fulfillment with several is forwarded as one
shipment (its items, the first number as `tracking_number`, its link as `tracking_link`) whose
`comments` list every number with its link, so none is lost and the customer sees them all.

A store is connected by installing the gateway's single-click app in its control panel
(API.md, "Store connections (install)"): the auth callback exchanges a code for the store's token
at the login service and binds the store to the partner whose open connect link names its hash;
the load and uninstall callbacks carry a `signed_payload_jwt`. The gateway then keeps its hooks
(`/v3/hooks`) itself.

Sources named below: `O2` = bigcommerce/docs `reference/orders.v2.oas2.yml` (published as
developer.bigcommerce.com/docs/rest-management/orders), `OO` = bigcommerce/docs
`docs/store-operations/orders/index.mdx`, `AU` = bigcommerce/docs
`docs/integrations/apps/guide/auth.mdx` (the OAuth flow), `CB` = bigcommerce/docs
`docs/integrations/apps/guide/callbacks.mdx` (load, uninstall, the JWT's claims), `WH` =
bigcommerce/docs `docs/integrations/webhooks/overview.mdx`, `AA` = bigcommerce/docs
`docs/start/authentication/api-accounts.mdx` (scopes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import warnings
from email.utils import parsedate_to_datetime
from secrets import token_urlsafe
from typing import Any
from urllib.parse import quote

import jwt
import requests
from marshmallow import fields, post_load, validate

from gateway import tracking
from gateway.model import CANCELLED, PAID, UNPAID, Fulfillment, ObservedFulfillment, Order, iso_utc
from gateway.platforms import register
from gateway.platforms.base import (
    INGEST_ORDER,
    SYNC_SELLER,
    ChangedOrder,
    ChangedPage,
    ConnectLink,
    CreatedOrder,
    CredentialsRefused,
    InstallAnswer,
    InstallPort,
    InstallRefused,
    InstallRequest,
    Keyset,
    Platform,
    PlatformError,
    PlatformPort,
    StoreLine,
    StoreOrder,
    WebhookCall,
    WebhookCheck,
    http,
    refuse_status,
)
from gateway.settings import Settings
from gateway.validation import StrictSchema, secret, web_url

TIMESTAMP_TOLERANCE = 5 * 60  # seconds, as the Standard Webhooks libraries use
LOGIN_URL = "https://login.bigcommerce.com"  # AU: POST https://login.bigcommerce.com/oauth2/token
# The scopes the gateway's app needs (AA, "OAuth scopes"): Orders, modify (`store_v2_orders`:
# Orders V2 with their products, addresses, shipments and statuses). Webhooks need none ("Webhooks
# are accessible from the default scope that is automatically accessible to all API accounts").
REQUIRED_SCOPES = ("store_v2_orders",)
JWT_LEEWAY = 60  # seconds of clock skew allowed on the JWT's iat/nbf/exp
HOOKS_PAGE = 250
# PyJWT warns about HMAC keys under 32 bytes; the key here is BigCommerce's client secret, whose
# length is BigCommerce's choice, not ours.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
MAX_RATE_WAIT = 10.0
RATE_RETRIES = 2
SHIPPED_STATUS_ID = 2
# Our carrier names as BigCommerce's shipping_provider values; others go by tracking_carrier
# (an AfterShip slug) or our own tracking_link.
PROVIDERS = {"UPS": "ups", "USPS": "usps", "FedEx": "fedex"}
AFTERSHIP_SLUGS = {"DHL": "dhl"}
MAX_TRACKING_LINK = 500
# GET /orders/{id}/products pages at 50 by default (O2, parameter `limit`) and at most 250 (the
# v2 reference: "The maximum limit is 250", developer.bigcommerce.com/api/stores/v2/orders/
# products, mirrored in zmaniar/Api-sub api_stores_v2_orders_products.md): read every page.
PRODUCTS_PAGE = 250
# What an order's status says of its payment. BigCommerce counts these six statuses "of the paid
# type", every other status unpaid, and Refunded neither (bigcommerce/dev-docs
# docs/api-docs/orders/orders-api-overview.md, "Order status"; the list: O2 GET /order_statuses).
# 0 Incomplete (payment page reached, not completed), 1 Pending, 7 Awaiting Payment (authorized
# or offline, not captured), 12 Manual Verification Required, 13 Disputed and 14 Partially
# Refunded are unpaid: the order waits, visibly, for a status change or a person. Cancelled,
# Declined and Refunded will never ship. The status decides alone: `payment_status` stays empty
# or "pending" on offline and API orders that a merchant marks paid by moving them to Awaiting
# Fulfillment, and a capture moves the order out of Awaiting Payment itself.
PAID_STATUSES = frozenset({2, 3, 8, 9, 10, 11})
CANCELLED_STATUSES = frozenset({4, 5, 6})
# The billing address needs a zip of two or more characters, whatever the country (O2,
# billingAddress_Base.zip, required); an address from a country without postcodes (Hong Kong,
# the UAE) says so in it instead of being refused. The shipping address keeps the real (empty) one.
NO_POSTCODE = "N/A"
# Order addresses hold state names, not codes (O2 examples "Texas"; OO: "Abbreviated state names
# (ex: CA instead of California) in an order address will cause tax document submission to
# fail"). Names as BigCommerce spells them: bigcommerce/docs examples/countries.json.
STATE_NAMES = {
    "US": {
        "AL": "Alabama",
        "AK": "Alaska",
        "AS": "American Samoa",
        "AZ": "Arizona",
        "AR": "Arkansas",
        "AA": "Armed Forces Americas",
        "AP": "Armed Forces Pacific",
        "CA": "California",
        "CO": "Colorado",
        "CT": "Connecticut",
        "DE": "Delaware",
        "DC": "District of Columbia",
        "FM": "Federated States Of Micronesia",
        "FL": "Florida",
        "GA": "Georgia",
        "GU": "Guam",
        "HI": "Hawaii",
        "ID": "Idaho",
        "IL": "Illinois",
        "IN": "Indiana",
        "IA": "Iowa",
        "KS": "Kansas",
        "KY": "Kentucky",
        "LA": "Louisiana",
        "ME": "Maine",
        "MH": "Marshall Islands",
        "MD": "Maryland",
        "MA": "Massachusetts",
        "MI": "Michigan",
        "MN": "Minnesota",
        "MS": "Mississippi",
        "MO": "Missouri",
        "MT": "Montana",
        "NE": "Nebraska",
        "NV": "Nevada",
        "NH": "New Hampshire",
        "NJ": "New Jersey",
        "NM": "New Mexico",
        "NY": "New York",
        "NC": "North Carolina",
        "ND": "North Dakota",
        "MP": "Northern Mariana Islands",
        "OH": "Ohio",
        "OK": "Oklahoma",
        "OR": "Oregon",
        "PW": "Palau",
        "PA": "Pennsylvania",
        "PR": "Puerto Rico",
        "RI": "Rhode Island",
        "SC": "South Carolina",
        "SD": "South Dakota",
        "TN": "Tennessee",
        "TX": "Texas",
        "UT": "Utah",
        "VT": "Vermont",
        "VI": "Virgin Islands",
        "VA": "Virginia",
        "WA": "Washington",
        "WV": "West Virginia",
        "WI": "Wisconsin",
        "WY": "Wyoming",
    },
    "CA": {
        "AB": "Alberta",
        "BC": "British Columbia",
        "MB": "Manitoba",
        "NL": "Newfoundland and Labrador",
        "NB": "New Brunswick",
        "NS": "Nova Scotia",
        "NT": "Northwest Territories",
        "NU": "Nunavut",
        "ON": "Ontario",
        "PE": "Prince Edward Island",
        "QC": "Quebec",
        "SK": "Saskatchewan",
        "YT": "Yukon Territory",
    },
    "AU": {
        "ACT": "Australian Capital Territory",
        "NSW": "New South Wales",
        "NT": "Northern Territory",
        "QLD": "Queensland",
        "SA": "South Australia",
        "TAS": "Tasmania",
        "VIC": "Victoria",
        "WA": "Western Australia",
    },
}


def verify_webhook(secret: str, raw_body: bytes, headers: Any, token: str | None = None) -> bool:
    """Standard Webhooks signature when present (HMAC key: the secret's raw bytes), else the
    custom `X-Gateway-Secret` header set when the hook was created: the connection's own random
    `token`, never the signing key itself (a header can be read where a signature can't)."""
    if not secret:
        return False
    signatures = headers.get("webhook-signature")
    if signatures:
        msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        if not msg_id or not re.fullmatch(r"[0-9]{1,12}", stamp):
            return False
        if abs(time.time() - int(stamp)) > TIMESTAMP_TOLERANCE:
            return False
        signed = f"{msg_id}.{stamp}.".encode() + raw_body
        expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
        return any(
            hmac.compare_digest(expected, part.partition(",")[2].encode())
            for part in signatures.split()
            if part.startswith("v1,")
        )
    given = headers.get("X-Gateway-Secret", "")
    return bool(given and token) and hmac.compare_digest(given.encode(), token.encode())


class BigCommerceAdapter:
    """One store's connection: `store_hash`, `access_token`, optional `api_base_url`; and the
    email of the partner who owns the store, which the orders we create there bill to."""

    def __init__(
        self, connection: dict[str, Any], port: PlatformPort, config: Settings, owner_email: str
    ) -> None:
        self.owner_email = owner_email
        self.store_hash = connection["store_hash"]
        base = (connection.get("api_base_url") or "https://api.bigcommerce.com").rstrip("/")
        self.base = f"{base}/stores/{self.store_hash}/v2"
        self.v3 = f"{base}/stores/{self.store_hash}/v3"
        self.token = connection["access_token"]
        self.port = port
        self.timeout = config.http_timeout
        self.page_size = max(config.reconcile_page_size, 50)

    # ---- the interface -----------------------------------------------------------------------

    def read_order(self, ref: str) -> StoreOrder | None:
        """The order, its products, its first shipping address, and what its status says of
        its payment: `store/order/created` fires for incomplete and failed-payment orders too
        (bigcommerce/docs docs/integrations/webhooks/events/index.mdx)."""
        order = self.call("GET", f"/orders/{ref}", missing_ok=True)
        if order is None:
            return None
        products = self._products(ref)
        addresses = self.call("GET", f"/orders/{ref}/shipping_addresses") or []
        address = addresses[0] if addresses else order.get("billing_address") or {}
        return StoreOrder(
            ref=str(order["id"]),
            lines=[
                StoreLine(str(p["id"]), p.get("sku") or "", int(p["quantity"]), p.get("name") or "")
                for p in products
            ],
            shipping_address=_our_address(address),
            email=(order.get("billing_address") or {}).get("email") or address.get("email"),
            payment=_payment(order.get("status_id")),
        )

    def create_order(self, order: Order) -> CreatedOrder:
        """POST /v2/orders with custom products (no order email is sent), then map its products.

        Exactly once: the new order's `external_order_id` is our order id, so an earlier
        attempt's order (created, but not recorded before a crash) is found with the
        `external_order_id` filter of GET /v2/orders instead of created again (O2: a field of
        order_Post, and a query parameter of Get All Orders).

        White label: the store emails the order's billing address at each shipment and status
        change (OO: "Creating order shipments triggers email notifications"; the customer
        notifications of support.bigcommerce.com/s/article/Customer-Order-Notifications are
        store-wide, with no per-order switch in the API), so the order bills to the seller's own
        email: the buyer's end customer never hears from the seller's store.
        """
        earlier = self.call("GET", f"/orders?external_order_id={quote(order.id)}") or []
        if earlier:
            ref = str(earlier[0]["id"])
            return CreatedOrder(ref=ref, line_refs=self._line_refs(order, ref))
        shipping = _bc_address(order.shipping_address, self.owner_email)
        created = self.call(
            "POST",
            "/orders",
            json={
                "customer_id": 0,
                "status_id": 11,  # Awaiting Fulfillment
                "billing_address": {**shipping, "zip": _billing_zip(shipping["zip"])},
                "shipping_addresses": [shipping],
                "products": [
                    {
                        "name": li.title,
                        "sku": li.seller_sku,
                        "quantity": li.quantity,
                        "price_inc_tax": 0,
                        "price_ex_tax": 0,
                    }
                    for li in order.line_items
                ],
                "external_order_id": order.id,
                "staff_notes": f"Dropship order {order.buyer_order_ref} ({order.id}), gateway",
            },
        )
        ref = str(created["id"])
        return CreatedOrder(ref=ref, line_refs=self._line_refs(order, ref))

    def _products(self, ref: str) -> list[dict[str, Any]]:
        """Every product of the order, page by page (an empty page answers 204)."""
        products: list[dict[str, Any]] = []
        page = 1
        while True:
            path = f"/orders/{ref}/products?limit={PRODUCTS_PAGE}&page={page}"
            listed = self.call("GET", path) or []
            products.extend(listed)
            if len(listed) < PRODUCTS_PAGE:
                return products
            page += 1

    def _line_refs(self, order: Order, ref: str) -> dict[str, str]:
        products = self._products(ref)
        line_refs: dict[str, str] = {}
        for li in order.line_items:
            match = next((p for p in products if p.get("sku") == li.seller_sku), None)
            match = match or next((p for p in products if p.get("name") == li.title), None)
            if match is not None:
                products.remove(match)
                line_refs[li.id] = str(match["id"])
        return line_refs

    def read_fulfillments(self, ref: str) -> list[ObservedFulfillment]:
        """The order's shipments (204, no body, when there are none)."""
        shipments = self.call("GET", f"/orders/{ref}/shipments") or []
        return [
            ObservedFulfillment(
                source_ref=f"shipment:{s['id']}",
                status="success",  # a deleted shipment is gone, not cancelled
                carrier=_carrier_name(s),
                tracking_numbers=[s["tracking_number"]] if s.get("tracking_number") else [],
                tracking_urls=[
                    u for u in [s.get("tracking_link") or s.get("generated_tracking_link")] if u
                ],
                lines=[
                    (str(i["order_product_id"]), int(i["quantity"])) for i in s.get("items") or []
                ],
                updated_at=None,
            )
            for s in shipments
        ]

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str:
        """A shipment in the buyer's store; PUT its tracking on a change; looks before creating."""
        ref = order.buyer_order_ref
        fields = _shipment_fields(fulfillment)
        if fulfillment.delivery.buyer_ref:
            shipment_id = fulfillment.delivery.buyer_ref.removeprefix("shipment:")
            self.call("PUT", f"/orders/{ref}/shipments/{shipment_id}", json=fields)
            return fulfillment.delivery.buyer_ref
        ours = {number[: tracking.MAX_LENGTH] for number in fulfillment.tracking_numbers}
        our_items = sorted(
            (str(order.line(fl.line_item_id).buyer_ref), fl.quantity)
            for fl in fulfillment.line_items
        )
        claimed = {f.delivery.buyer_ref for f in order.fulfillments if f.id != fulfillment.id}
        for shipment in self.call("GET", f"/orders/{ref}/shipments") or []:
            items = sorted(
                (str(i["order_product_id"]), int(i["quantity"]))
                for i in shipment.get("items") or []
            )
            if (
                shipment.get("tracking_number") in ours
                and items == our_items
                and f"shipment:{shipment['id']}" not in claimed  # a sibling with the same number
            ):  # an earlier attempt created it
                if shipment.get("comments") != fields["comments"]:  # tracking changed since
                    self.call("PUT", f"/orders/{ref}/shipments/{shipment['id']}", json=fields)
                return f"shipment:{shipment['id']}"
        products = {str(p["id"]): p for p in self._products(ref)}
        items = []
        for fl in fulfillment.line_items:
            line = order.line(fl.line_item_id)
            product = products.get(line.buyer_ref or "")
            if product is None:
                raise PlatformError(f"the buyer's order has no product {line.sku}", permanent=True)
            left = int(product["quantity"]) - int(product.get("quantity_shipped") or 0)
            if left < fl.quantity:
                raise PlatformError(
                    f"the buyer's order has only {left} of {line.sku} left to ship", permanent=True
                )
            items.append({"order_product_id": int(product["id"]), "quantity": fl.quantity})
        address_id = next(iter(products.values()), {}).get("order_address_id")
        if address_id is None:
            addresses = self.call("GET", f"/orders/{ref}/shipping_addresses") or []
            address_id = addresses[0]["id"] if addresses else None
        created = self.call(
            "POST",
            f"/orders/{ref}/shipments",
            json={**fields, "order_address_id": address_id, "items": items},
        )
        return f"shipment:{created['id']}"

    def mark_shipped(self, order: Order) -> str:
        """Set the buyer's order to Shipped if the shipments did not move it there."""
        current = self.call("GET", f"/orders/{order.buyer_order_ref}")
        if int(current.get("status_id") or 0) == SHIPPED_STATUS_ID:
            return "the buyer's BigCommerce order is Shipped"
        self.call("PUT", f"/orders/{order.buyer_order_ref}", json={"status_id": SHIPPED_STATUS_ID})
        return "set the buyer's BigCommerce order to Shipped"

    def changed_orders(self, since: str, page: str | None, created: bool = False) -> ChangedPage:
        """GET /orders?min_date_modified=...&sort=date_modified:asc (or by creation), a page at
        a time; shipments are not in the listing, so each changed order is synced on its own."""
        keyset = Keyset.parse(page, since)
        field = "date_created" if created else "date_modified"
        listed = [
            (str(o["id"]), _iso(o.get(field)) or keyset.at)
            for o in self.call(
                "GET",
                f"/orders?min_{field}={quote(keyset.at)}&sort={field}:asc"
                f"&limit={self.page_size}&page={keyset.number}",
            )
            or []
        ]
        orders = [ChangedOrder(ref, at) for ref, at in keyset.fresh(listed)]
        return ChangedPage(orders, keyset.next_page(listed, self.page_size))

    # ---- webhooks the gateway keeps -----------------------------------------------------------

    def ensure_webhooks(
        self, address: str, topics: list[str], headers: dict[str, str]
    ) -> list[WebhookCheck]:
        """One hook per topic to `address`, with `headers` (the X-Gateway-Secret): missing ones
        created, deactivated ones (`is_active: false`, after ~48 h of failed retries: WH) turned
        on again with PUT, ones whose headers differ given ours. The listing is only this
        token's hooks (WH: "Webhooks created with one token are not visible when you retrieve
        webhooks using a different token"); of those, ours are the ones to `address`."""
        ours: dict[str, dict[str, Any]] = {}
        for hook in self._hooks():
            if hook.get("destination") == address and isinstance(hook.get("scope"), str):
                known = ours.get(hook["scope"])
                if known is None or (hook.get("is_active") and not known.get("is_active")):
                    ours[hook["scope"]] = hook
        checks = []
        for topic in topics:
            hook = ours.get(topic)
            if hook is None:
                found = "missing"
                body: dict[str, Any] = {
                    "scope": topic,
                    "destination": address,
                    "is_active": True,
                    "headers": headers,
                }
                method, path = "POST", "/hooks"
            else:
                found = "active" if hook.get("is_active") else "disabled"
                change: dict[str, Any] = {}
                if not hook.get("is_active"):
                    change["is_active"] = True
                if (hook.get("headers") or {}) != headers:
                    change["headers"] = headers
                if not change:
                    checks.append(WebhookCheck(topic, found, False))
                    continue
                body, method, path = change, "PUT", f"/hooks/{hook['id']}"
            try:
                self.call(method, path, json=body, version="v3")
            except CredentialsRefused:
                raise  # the connection needs its owner: not one hook's trouble
            except PlatformError as error:
                checks.append(WebhookCheck(topic, found, False, error=str(error)))
                continue
            checks.append(WebhookCheck(topic, found, True))
        return checks

    def _hooks(self) -> list[dict[str, Any]]:
        """Every hook this token sees, page by page (`meta.pagination.total_pages`)."""
        hooks: list[dict[str, Any]] = []
        page = 1
        while True:
            listed = self.call("GET", f"/hooks?page={page}&limit={HOOKS_PAGE}", version="v3")
            listed = listed if isinstance(listed, dict) else {}
            data = listed.get("data")
            if not isinstance(data, list) or not data:
                return hooks
            hooks.extend(h for h in data if isinstance(h, dict))
            pages = ((listed.get("meta") or {}).get("pagination") or {}).get("total_pages")
            if not isinstance(pages, int) or page >= pages:
                return hooks
            page += 1

    # ---- transport ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        missing_ok: bool = False,
        version: str = "v2",
    ) -> Any:
        """One V2 (or V3) call, paced by the store's quota; the decoded body (None for 204)."""
        base = self.v3 if version == "v3" else self.base
        for _ in range(RATE_RETRIES + 1):
            self._wait_for_quota()
            try:
                answer = http.request(
                    method,
                    base + path,
                    json=json,
                    headers={"X-Auth-Token": self.token, "Accept": "application/json"},
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                raise PlatformError(f"BigCommerce unreachable: {type(error).__name__}") from error
            self.port.count("platform_calls_bigcommerce")
            reset = self._remember_quota(answer)
            if answer.status_code == 429 and reset is not None and reset <= MAX_RATE_WAIT:
                time.sleep(reset)
                continue
            if answer.status_code == 404 and missing_ok:
                return None
            if answer.status_code == 204:
                return None
            if answer.status_code >= 300:
                if answer.status_code == 429:
                    raise PlatformError("BigCommerce rate limit", retry_after=reset or 30)
                refuse_status("BigCommerce", answer)
            try:
                return answer.json()
            except ValueError:
                raise PlatformError("BigCommerce answered something that is not JSON") from None
        raise PlatformError("BigCommerce kept answering 429", retry_after=30)

    def _pace_key(self) -> str:
        return f"pace:bigcommerce:{self.store_hash}"

    def _wait_for_quota(self) -> None:
        state = self.port.pace(self._pace_key())
        if not state or state["left"] > 1:
            return
        wait = state["reset_at"] - time.time()
        if wait > MAX_RATE_WAIT:
            raise PlatformError("the store's API quota is spent for now", retry_after=wait)
        if wait > 0:
            time.sleep(wait)

    def _remember_quota(self, answer: requests.Response) -> float | None:
        left = answer.headers.get("X-Rate-Limit-Requests-Left")
        reset_ms = answer.headers.get("X-Rate-Limit-Time-Reset-Ms")
        if left is None or reset_ms is None:
            return None
        try:
            reset = float(reset_ms) / 1000
            self.port.set_pace(
                self._pace_key(), {"left": float(left), "reset_at": time.time() + reset}
            )
        except ValueError:
            return None
        return reset


def _iso(value: str | None) -> str | None:
    """BigCommerce's RFC-2822 dates as ISO-8601 UTC."""
    if not value:
        return None
    try:
        return iso_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None  # the caller falls back to its own cursor


def _carrier_name(shipment: dict[str, Any]) -> str:
    provider = (shipment.get("shipping_provider") or "").lower()
    for name, value in PROVIDERS.items():
        if provider == value:
            return name
    slug = (shipment.get("tracking_carrier") or "").lower()
    for name, value in AFTERSHIP_SLUGS.items():
        if slug == value:
            return name
    return shipment.get("shipping_method") or provider or slug


def _shipment_fields(fulfillment: Fulfillment) -> dict[str, Any]:
    numbers, urls = fulfillment.tracking_numbers, fulfillment.tracking_urls
    lines = [
        f"{number}: {urls[i]}" if i < len(urls) else number for i, number in enumerate(numbers)
    ]
    fields = {
        "tracking_number": numbers[0][: tracking.MAX_LENGTH] if numbers else "",
        "shipping_provider": PROVIDERS.get(fulfillment.carrier, ""),
        "tracking_carrier": AFTERSHIP_SLUGS.get(fulfillment.carrier, ""),
        "comments": f"{fulfillment.carrier} tracking: " + "; ".join(lines),
    }
    if urls and not fields["shipping_provider"] and len(urls[0]) <= MAX_TRACKING_LINK:
        fields["tracking_link"] = urls[0]
    return fields


def _our_address(address: dict[str, Any]) -> dict[str, Any]:
    ours = {
        "name": " ".join(p for p in (address.get("first_name"), address.get("last_name")) if p),
        "company": address.get("company"),
        "address1": address.get("street_1"),
        "address2": address.get("street_2"),
        "city": address.get("city"),
        "province": address.get("state"),
        "zip": address.get("zip"),
        "country_code": address.get("country_iso2"),
        "phone": address.get("phone"),
    }
    return {k: v for k, v in ours.items() if v}


def _payment(status_id: Any) -> str:
    """PAID, UNPAID or CANCELLED from an order's `status_id` (see PAID_STATUSES)."""
    if status_id in PAID_STATUSES:
        return PAID
    if status_id in CANCELLED_STATUSES:
        return CANCELLED
    return UNPAID


def _bc_address(address: dict[str, Any], email: str) -> dict[str, Any]:
    """Our address as an order address: the country by `country_iso2` (enough without `country`:
    dev-docs orders-api-overview.md FAQ), the state by its name."""
    first, _, last = (address.get("name") or "").partition(" ")
    country = (address.get("country_code") or "").upper()
    province = address.get("province") or ""
    return {
        "first_name": first,
        "last_name": last or first,
        "company": address.get("company") or "",
        "street_1": address.get("address1") or "",
        "street_2": address.get("address2") or "",
        "city": address.get("city") or "",
        "state": STATE_NAMES.get(country, {}).get(province.upper(), province),
        "zip": (address.get("zip") or "").strip(),
        "country_iso2": country,
        "phone": address.get("phone") or "",
        "email": email,
    }


def _billing_zip(zip_code: str) -> str:
    """The zip a billing address can carry: two characters at least."""
    return zip_code if len(zip_code) >= 2 else NO_POSTCODE


# ---- the platform's declaration ---------------------------------------------------------------


STORE_HASH = r"[a-z0-9]{1,32}"


# ---- install: the app's auth, load and uninstall callbacks ---------------------------------------


def store_hash_of(context: Any) -> str | None:
    """The hash of a `stores/{hash}` context (AU) or JWT `sub` (CB); None for anything else."""
    if isinstance(context, str):
        found = re.fullmatch(rf"stores/({STORE_HASH})", context)
        if found:
            return found.group(1)
    return None


def verify_signed_payload(
    token: str | None, client_secret: str, client_id: str
) -> dict[str, Any] | None:
    """The claims of a load or uninstall callback's `signed_payload_jwt`, or None when it is not
    BigCommerce's for our app: HS256 keyed by the client secret, `aud` our client id, `iss`
    "bc", within `nbf`..`exp` (24 h: CB), `sub` a store. As node-bigcommerce's `verifyJWT`
    (lib/bigcommerce.js: jwt.verify(token, secret, {algorithms: ['HS256'], audience})), with
    the issuer and the times required."""
    if not token or not client_secret or not client_id:
        return None
    try:
        claims = jwt.decode(
            token,
            client_secret,
            algorithms=["HS256"],  # never the token's own choice (no "none", no RS/HS mix-up)
            audience=client_id,
            issuer="bc",
            leeway=JWT_LEEWAY,
            options={"require": ["aud", "iss", "iat", "nbf", "exp", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    if store_hash_of(claims.get("sub")) is None:
        return None
    return claims


def exchange_code(
    login_url: str,
    client_id: str,
    client_secret: str,
    args: Any,
    redirect_uri: str,
    timeout: float,
) -> dict[str, Any]:
    """POST {login}/oauth2/token with the auth callback's `code`, `scope` and `context` (AU,
    "Requesting the access_token": a JSON body); the answer `{access_token, scope, user, owner,
    context, account_uuid}`. PlatformError when refused or unreachable, or when the answer is not
    a token for the callback's store."""
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "code": args.get("code") or "",
        "scope": args.get("scope") or "",
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
        "context": args.get("context") or "",
    }
    try:
        answer = http.post(
            f"{login_url.rstrip('/')}/oauth2/token",
            json=body,
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as error:
        raise PlatformError(f"BigCommerce login unreachable: {type(error).__name__}") from error
    if answer.status_code != 200:
        refuse_status("BigCommerce login", answer)
        raise PlatformError(f"BigCommerce login answered HTTP {answer.status_code}")
    try:
        token = answer.json()
    except ValueError:
        raise PlatformError("BigCommerce login answered something that is not JSON") from None
    if (
        not isinstance(token, dict)
        or not isinstance(token.get("access_token"), str)
        or not token["access_token"]
        or token.get("context") != body["context"]
    ):
        raise PlatformError("BigCommerce login answered no token for this store", permanent=True)
    return token


def _page(title: str, message: str, status: int = 200) -> InstallAnswer:
    return InstallAnswer(status=status, title=title, message=message)


class BigCommerceConnection(StrictSchema):
    store_hash = fields.String(required=True, validate=validate.Regexp(rf"^{STORE_HASH}$"))
    access_token = secret(required=True)
    webhook_secret = secret(required=True)
    api_base_url = web_url()
    # The X-Gateway-Secret of hooks without a signature: made here, shown once (load_only keeps
    # it a secret, encrypted at rest); given in the request, it is refused.
    gateway_token = fields.String(
        load_only=True, validate=validate.Length(max=0, error="Made by the gateway; leave it out.")
    )

    @post_load
    def _new_gateway_token(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {**data, "gateway_token": token_urlsafe(32)}


class BigCommerceInstall(StrictSchema):
    """The hints of a connect link: the store, and (operator only) where a simulator answers."""

    store_hash = fields.String(
        validate=validate.Regexp(rf"^{STORE_HASH}$", error="A store hash: letters and digits."),
        metadata={"ask": "Store hash"},
    )
    api_base_url = web_url(metadata={"operator_only": True})
    login_base_url = web_url(metadata={"operator_only": True})


class BigCommerce(Platform):
    name = "bigcommerce"
    label = "BigCommerce"
    connection_schema = BigCommerceConnection
    install_schema = BigCommerceInstall
    # The app's callback URLs, <PUBLIC_URL>/connect/bigcommerce/<step> (CB: all GET; auth and
    # load come from the merchant's browser, uninstall from BigCommerce's server).
    install_steps = {"auth": ("GET",), "load": ("GET",), "uninstall": ("GET",)}
    # The auth and load answers are shown in an iframe of the store's control panel (AU:
    # "BigCommerce renders the response view inside an iFrame"). Which origin frames them is not
    # documented (UNCONFIRMED): the control panel is https://{store}.mybigcommerce.com/manage
    # (bigcommerce/docs docs/b2b-edition/headless.mdx), the auth callback's Referer
    # https://login.bigcommerce.com/ (AU).
    install_frame_ancestors = "https://*.mybigcommerce.com https://*.bigcommerce.com"
    # A checkout creates its order Incomplete, before payment (bigcommerce/docs
    # docs/storefront/headless/orders.mdx), and `store/order/created` fires then; the payment
    # shows later as a status change, which reads the order again (events/index.mdx:
    # statusUpdated "fires only if the order status has changed"). Status changes of an order
    # already routed cost no read: ingest_order returns before reading a known, settled order.
    topics = {
        "store/order/created": INGEST_ORDER,
        "store/order/statusUpdated": INGEST_ORDER,
        "store/shipment/created": SYNC_SELLER,
        "store/shipment/updated": SYNC_SELLER,
    }
    webhook_auth = "Standard Webhooks headers, else X-Gateway-Secret; store by producer"

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        # A connection, or a connect link's hints (the link is found by the store it names).
        store = connection.get("store_hash")
        return f"stores/{store}" if store else None

    def adapter(
        self, partner: dict[str, Any], port: PlatformPort, config: Settings
    ) -> BigCommerceAdapter:
        return BigCommerceAdapter(partner["connection"], port, config, partner["email"])

    def webhook_store(self, call: WebhookCall) -> str | None:
        # The store is named inside the body (`producer`): parsed to find the secret, and
        # verified before anything is acted on.
        producer = call.body().get("producer")
        named = isinstance(producer, str) and re.fullmatch(rf"stores/{STORE_HASH}", producer)
        return producer if named else None

    def verify_webhook(
        self, connection: dict[str, Any], call: WebhookCall, config: Settings
    ) -> bool:
        """An installed connection's hooks are the app's: signed with its client secret
        (shared/platforms/bigcommerce.md, Authenticity); else the connection's webhook_secret.
        Either way an unsigned delivery needs the hook's X-Gateway-Secret."""
        if connection.get("installed"):
            key = config.platform_setting("BIGCOMMERCE_CLIENT_SECRET", "")
        else:
            key = connection.get("webhook_secret") or ""
        return verify_webhook(key, call.raw, call.headers, connection.get("gateway_token"))

    # ---- install ----------------------------------------------------------------------------

    def begin_install(
        self, link: ConnectLink, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """BigCommerce starts an install itself, from the store's control panel (AU: the
        merchant clicks Install in the App Marketplace or follows a direct installation link):
        a page telling the owner how. The link is not used up: the installation binds to it."""
        store = link.hints.get("store_hash") or ""
        return _page(
            "Install the app from your BigCommerce control panel",
            f"Sign in to the control panel of BigCommerce store {store}, open Apps, find our "
            "app (from the App Marketplace or the install link we gave you) and click Install, "
            "then accept the permissions it asks for. Your store is connected when the "
            "installation finishes; you can close this page. This link stays valid until then.",
        )

    def install_step(
        self, step: str, request: InstallRequest, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        if step == "auth":
            return self._auth(request, port, config)
        claims = verify_signed_payload(
            request.args.get("signed_payload_jwt"),
            config.platform_setting("BIGCOMMERCE_CLIENT_SECRET", ""),
            config.platform_setting("BIGCOMMERCE_CLIENT_ID", ""),
        )
        if claims is None:
            port.count("install_refused_bigcommerce")
            return _page("Refused", "This request is not signed by BigCommerce for this app.", 401)
        identity = str(claims["sub"])
        partner = port.partner_by_store(self.name, identity)
        if step == "uninstall":
            # CB: sent by BigCommerce's server, which expects JSON and needs no answer.
            if partner is not None and (partner.get("connection") or {}).get("installed"):
                port.uninstalled(partner["id"], "the app was uninstalled in BigCommerce")
            return InstallAnswer(body="{}")
        if step == "load":
            if partner is None or partner.get("connection_status") != "connected":
                status = (partner or {}).get("connection_status") or "not connected"
                return _page(
                    "Not connected",
                    f"Store {identity.removeprefix('stores/')} is {status.replace('_', ' ')} "
                    "here. Ask the marketplace for a new connect link.",
                )
            return _page(
                "Connected",
                f"Store {identity.removeprefix('stores/')} is connected as "
                f"{partner.get('name') or partner['id']}; orders and fulfillments sync by "
                "themselves.",
            )
        return _page("Not found", "No such step.", 404)

    def _auth(self, request: InstallRequest, port: InstallPort, config: Settings) -> InstallAnswer:
        """The auth callback (AU): the merchant's browser, from the control panel, with `code`,
        `scope`, `context=stores/{hash}` and `account_uuid`. Bound to the open connect link that
        names the store (no link: nothing exchanged, nothing stored); the code exchanged; the
        connection completed on the link's partner."""
        store = store_hash_of(request.args.get("context"))
        if store is None or not request.args.get("code"):
            port.count("install_refused_bigcommerce")
            return _page("Refused", "This is not an installation from BigCommerce.", 400)
        link = port.link_for_store(self.name, f"stores/{store}")
        if link is None:
            port.count("install_refused_bigcommerce")
            return _page(
                "No connect link for this store",
                f"We have no open connect link for BigCommerce store {store}. Ask the "
                "marketplace for a connect link naming this store, open it, then install the "
                "app again.",
                403,
            )
        client_id = config.platform_setting("BIGCOMMERCE_CLIENT_ID", "")
        client_secret = config.platform_setting("BIGCOMMERCE_CLIENT_SECRET", "")
        if not client_id or not client_secret:
            return _page("Not set up", "The gateway's BigCommerce app is not configured yet.", 503)
        login = link.hints.get("login_base_url") or config.platform_setting(
            "BIGCOMMERCE_LOGIN_URL", LOGIN_URL
        )
        try:
            token = exchange_code(
                login,
                client_id,
                client_secret,
                request.args,
                f"{config.public_url.rstrip('/')}/connect/bigcommerce/auth",
                config.http_timeout,
            )
        except PlatformError as error:
            return _page(
                "BigCommerce did not complete the installation",
                f"{error} Install the app again from the control panel.",
                502 if not error.permanent else 400,
            )
        if not link.trusted and not _installed_by_contact(token, link.contact_email):
            # A store hash named by the partner itself (or typed on the connect page) is bound
            # only when the installer is the partner's contact: store hashes are public, and
            # an install would otherwise go to whoever named the store first.
            port.count("install_refused_bigcommerce")
            return _page(
                "Not connected",
                f"BigCommerce store {store} was installed by someone other than the marketplace"
                " partner's contact. Ask the marketplace for a connect link naming this store.",
                403,
            )
        granted = set(str(token.get("scope") or "").split())
        short = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        connection: dict[str, Any] = {
            "store_hash": store,
            "access_token": token["access_token"],
            "installed": True,
            "scope": " ".join(sorted(granted)),
            "gateway_token": token_urlsafe(32),
        }
        if link.hints.get("api_base_url"):
            connection["api_base_url"] = link.hints["api_base_url"]
        try:
            if short:
                port.complete(
                    link,
                    connection,
                    status="needs_reauth",
                    reason=f"the app was granted no {', '.join(short)} scope",
                )
            else:
                port.complete(link, connection)
        except InstallRefused as refused:
            return _page("Not connected", str(refused), 409)
        if short:
            return _page(
                "Permissions missing",
                f"The app needs the {', '.join(short)} permission to sync orders. Ask the "
                "marketplace for a new connect link and install the app again.",
            )
        return _page(
            "Connected",
            f"BigCommerce store {store} is connected. Orders and fulfillments now sync by "
            "themselves.",
        )

    def webhook_headers(self, connection: dict[str, Any]) -> dict[str, str]:
        return {"X-Gateway-Secret": connection["gateway_token"]}

    def delivery_id(self, call: WebhookCall) -> str | None:
        return call.header("webhook-id") or str(call.body().get("hash") or "") or None

    def topic(self, call: WebhookCall) -> str:
        scope = call.body().get("scope")
        return scope if isinstance(scope, str) else ""

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        data = call.body().get("data")
        data = data if isinstance(data, dict) else {}
        if self.topics[topic] == SYNC_SELLER:
            return str(data["orderId"]) if data.get("orderId") else None
        return None if data.get("id") is None else str(data["id"])


register(BigCommerce())


def _installed_by_contact(token: dict[str, Any], contact_email: str) -> bool:
    """True when the installing user or the store's owner (the token answer's `user.email`,
    `owner.email`: BigCommerce's auth callback docs) is the partner's contact."""
    wanted = contact_email.strip().casefold()
    emails = {
        str((token.get(who) or {}).get("email") or "").strip().casefold()
        for who in ("user", "owner")
    }
    return bool(wanted) and wanted in emails
