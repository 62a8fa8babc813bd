"""BigCommerce through the V2 Orders API: webhook checks, orders in and out, shipments.

Facts: ../shared/platforms/bigcommerce.md. Webhook bodies carry ids only, so jobs read the
details. Calls are paced from the `X-Rate-Limit-*` headers (the quota is shared by every app on
the store); a 429 waits `X-Rate-Limit-Time-Reset-Ms`.

A BigCommerce shipment holds one tracking number. A fulfillment with several is forwarded as one
shipment (its items, the first number as `tracking_number`, its link as `tracking_link`) whose
`comments` list every number with its link, so none is lost and the customer sees them all.

Sources named below: `O2` = bigcommerce/docs `reference/orders.v2.oas2.yml` (published as
developer.bigcommerce.com/docs/rest-management/orders), `OO` = bigcommerce/docs
`docs/store-operations/orders/index.mdx`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from email.utils import parsedate_to_datetime
from secrets import token_urlsafe
from typing import Any
from urllib.parse import quote

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
    CreatedOrder,
    Keyset,
    Platform,
    PlatformError,
    PlatformPort,
    StoreLine,
    StoreOrder,
    WebhookCall,
    http,
    refuse_status,
)
from gateway.settings import Settings
from gateway.validation import StrictSchema, secret, web_url

TIMESTAMP_TOLERANCE = 5 * 60  # seconds, as the Standard Webhooks libraries use
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

    # ---- transport ---------------------------------------------------------------------------

    def call(self, method: str, path: str, json: Any = None, missing_ok: bool = False) -> Any:
        """One V2 call, paced by the store's quota; the decoded body (None for 204)."""
        for _ in range(RATE_RETRIES + 1):
            self._wait_for_quota()
            try:
                answer = http.request(
                    method,
                    self.base + path,
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


class BigCommerce(Platform):
    name = "bigcommerce"
    label = "BigCommerce"
    connection_schema = BigCommerceConnection
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
        return f"stores/{connection['store_hash']}"

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
        # An installed connection's hooks are signed with the app's client secret.
        signing_key = (
            config.platform_setting("BIGCOMMERCE_CLIENT_SECRET", "")
            if connection.get("installed")
            else connection.get("webhook_secret", "")
        )
        return verify_webhook(signing_key, call.raw, call.headers, connection.get("gateway_token"))

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
