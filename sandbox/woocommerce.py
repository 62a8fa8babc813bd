"""WooCommerce simulator: REST v3 orders, products and notes, webhooks, and a tracking plugin:
the official Shipment Tracking extension, zorem's Advanced Shipment Tracking or none
(woocommerce.md).

Many stores share one local server; each lives under a path prefix, so a store's URL is
`{base_url}/stores/{name}` and its REST API `{store_url}/wp-json/wc/v3/...`. Python use::

    sim = WooCommerceSimulator(); sim.start()
    store = sim.add_store("corner", "ck_1", "cs_1", webhook_secret="s3cret",
                          tracking_plugin="shipment-tracking")  # or "ast", or None
    store.add_webhook("order.created", "http://127.0.0.1:8000/webhooks/woocommerce")  # pings
    order = store.place_order(line_items=[{"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2}])
    store.complete(order["id"])
    sim.stop()

Behaviour taken from WooCommerce core where the doc is silent (class-wc-webhook.php): the
payload is built at delivery time, deliveries for the same webhook + order coalesce while one is
pending, success is HTTP 200-302, no retries, the 7th consecutive failure disables the webhook,
and `X-WC-Webhook-Delivery-ID` is `wp_hash(webhook_id . unix_seconds)`: two deliveries of one
webhook in the same second share it (a real trap for dedupe on that header).

A store's owner connects an app through the application authentication endpoint,
`{store_url}/wc-auth/v1/authorize?app_name&scope&user_id&return_url&callback_url`: a page
where the owner (`store.admin_user` / `store.admin_password`) approves or denies; approving
creates a key and POSTs it to callback_url (kept only if that answers exactly 200), then sends
the browser to return_url with success=1 (see _wc_auth). `store.revoke_key(ck)` is the owner
revoking a key. Webhooks are made by REST (`/wp-json/wc/v3/webhooks`) or `store.add_webhook`.

Other processes drive it through `/_sim/` JSON endpoints or the CLI:
`python -m sandbox.woocommerce --port N --store name:ck:cs:webhook_secret[:tracking|:ast]`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

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

WC_VERSION = "9.1.2"
WP_VERSION = "6.6.1"
USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"

ORDER_STATUSES = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
    "trash": "Trash",
}

# The customer emails a status change sends to the order's billing email, as each
# WC_Email_Customer_* class hooks them (woocommerce/includes/emails/): new status -> (email id,
# the previous statuses that trigger it, None for any; subject). No billing email, no email.
CUSTOMER_EMAILS: dict[str, tuple[str, tuple[str, ...] | None, str]] = {
    "processing": (
        "customer_processing_order",
        ("pending", "failed", "on-hold", "cancelled"),
        "Your {site} order has been received!",
    ),
    "on-hold": (
        "customer_on_hold_order",
        ("pending", "failed", "cancelled"),
        "Your {site} order has been received!",
    ),
    "completed": ("customer_completed_order", None, "Your {site} order is now complete"),
}

TOPIC_HOOKS = {
    "order.created": ["woocommerce_new_order"],
    "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded"],
    "order.deleted": ["wp_trash_post"],
    "order.restored": ["untrashed_post"],
    "product.created": ["woocommerce_new_product"],
    "product.updated": ["woocommerce_update_product"],
    "product.deleted": ["wp_trash_post"],
    "product.restored": ["untrashed_post"],
    "customer.created": ["woocommerce_new_customer"],
    "customer.updated": ["woocommerce_update_customer"],
    "customer.deleted": ["delete_user"],
    "coupon.created": ["woocommerce_new_coupon"],
    "coupon.updated": ["woocommerce_update_coupon"],
    "coupon.deleted": ["wp_trash_post"],
    "coupon.restored": ["untrashed_post"],
}

# The Shipment Tracking extension's provider list (a subset; URLs illustrative), %1$s = number.
PROVIDERS: dict[str, dict[str, str]] = {
    "Australia": {
        "Australia Post": "https://auspost.com.au/mypost/track/#/details/%1$s",
        "Fastway Couriers": "https://www.fastway.com.au/tools/track/?l=%1$s",
    },
    "Canada": {
        "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/details/%1$s",
        "Purolator": "https://www.purolator.com/en/shipping/tracker?pin=%1$s",
    },
    "United Kingdom": {
        "DHL": "https://www.dhl.com/content/g0/en/express/tracking.shtml?brand=DHL&AWB=%1$s",
        "DPD.co.uk": "https://www.dpd.co.uk/apps/tracking/?reference=%1$s",
        "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/%1$s",
    },
    "United States": {
        "Fedex": "https://www.fedex.com/apps/fedextrack/?action=track&tracknumbers=%1$s",
        "FedEx Sameday": "https://www.fedexsameday.com/fdx_dotracking_ua.aspx?tracknum=%1$s",
        "OnTrac": "https://www.ontrac.com/trackingdetail.asp?tracking=%1$s",
        "UPS": "https://www.ups.com/track?loc=en_US&tracknum=%1$s",
        "USPS": "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=%1$s",
        "DHL US": "https://www.logistics.dhl/us-en/home/tracking.html?tracking-id=%1$s",
    },
}

TRACKING_META_KEY = "_wc_shipment_tracking_items"
TRACKING_PLUGINS = ("shipment-tracking", "ast")

# Zorem's Advanced Shipment Tracking (AST) answers the extension's route with its own rules
# (github.com/zorem/woo-advanced-shipment-tracking: includes/api/
# class-wc-advanced-shipment-tracking-rest-api-controller.php, create_item and
# prepare_item_for_response; includes/class-wc-advanced-shipment-tracking.php, add_tracking_item
# and get_formatted_tracking_item): its providers by ts_slug (name, URL with %number%; a
# subset, URLs illustrative), found by name, the custom provider's name first.
AST_PROVIDERS = {
    "ups": ("UPS", "https://www.ups.com/track?loc=en_US&tracknum=%number%"),
    "usps": ("USPS", "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=%number%"),
    "fedex": ("FedEx", "https://www.fedex.com/fedextrack/?trknbr=%number%"),
    "dhl-express": ("DHL Express", "https://www.dhl.com/en/express/tracking.html?AWB=%number%"),
}
# create_item refuses a tracking number with anything but letters, digits, "-" and spaces
# (preg_match('/[^a-z0-9- \b]+/i')), as a 404.
AST_REFUSED_NUMBER = re.compile(r"[^a-z0-9\- \x08]", re.IGNORECASE)
# PHP date() letters the stores' date formats use, as strftime's (a subset).
PHP_DATE = {"d": "%d", "j": "{day}", "m": "%m", "n": "{month}", "Y": "%Y", "F": "%B", "M": "%b"}
_ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
)


def php_json(data: Any) -> bytes:
    """JSON as PHP's wp_json_encode writes it: compact, ASCII-only, with `/` escaped as `\\/`."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def wp_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A WordPress REST answer."""
    return Response(
        php_json(data),
        status=status,
        headers=headers or {},
        content_type="application/json; charset=UTF-8",
    )


def sanitize_title(value: str) -> str:
    """WordPress's sanitize_title, roughly: lower case, dashes, letters and digits."""
    value = re.sub(r"[^a-z0-9\s-]", "", value.lower())
    return re.sub(r"[\s-]+", "-", value).strip("-")


class WooError(Exception):
    """A refusal in WordPress REST's shape `{code, message, data: {status}}`."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        params: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Remember the code, message, status and parameter errors (with their details)."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.params = params
        self.details = details

    def response(self) -> Response:
        """The error answer."""
        data: dict[str, Any] = {"status": self.status}
        if self.params is not None:
            data["params"] = self.params
        if self.details is not None:
            data["details"] = self.details
        return wp_response({"code": self.code, "message": self.message, "data": data}, self.status)


def _no_route() -> WooError:
    return WooError("rest_no_route", "No route was found matching the URL and request method.", 404)


def _invalid_param(name: str, why: str) -> WooError:
    return WooError("rest_invalid_param", f"Invalid parameter(s): {name}", 400, {name: why})


def _missing(names: list[str]) -> WooError:
    return WooError(
        "rest_missing_callback_param",
        f"Missing parameter(s): {', '.join(names)}",
        400,
        {"params": names},
    )


def is_email(value: str) -> bool:
    """WordPress's is_email (wp-includes/formatting.php): 6 characters at least, an `@` after
    the first, a local part of the allowed characters, a domain of two or more labels of
    letters, digits and inner hyphens, with no empty label."""
    if len(value) < 6 or "@" not in value[1:]:
        return False
    local, domain = value.split("@", 1)
    if not re.fullmatch(r"[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]+", local):
        return False
    if ".." in domain or domain.strip(" \t\n\r\0\x0b.") != domain:
        return False
    labels = domain.split(".")
    return len(labels) > 1 and all(
        re.fullmatch(r"[a-zA-Z0-9-]+", label) and label.strip("-") == label for label in labels
    )


def _check_billing_email(body: dict[str, Any]) -> None:
    """The order schema's `billing.email` is `{type: [string, null], format: email}`: WordPress's
    REST validation refuses "" and anything is_email refuses, before the order exists
    (WC_REST_Orders_V2_Controller::get_item_schema; WP_REST_Request::has_valid_params)."""
    billing = body.get("billing")
    if not isinstance(billing, dict) or billing.get("email") is None:
        return
    if not isinstance(billing["email"], str) or not is_email(billing["email"]):
        raise WooError(
            "rest_invalid_param",
            "Invalid parameter(s): billing",
            400,
            {"billing": "Invalid email address."},
            {
                "billing": {
                    "code": "rest_invalid_email",
                    "message": "Invalid email address.",
                    "data": None,
                }
            },
        )


def php_date(fmt: str, when: datetime) -> str:
    """PHP's date(`fmt`) for the letters in PHP_DATE; other characters as they are."""
    text = "".join(PHP_DATE.get(c, c.replace("%", "%%")) for c in fmt)
    return when.strftime(text).format(day=when.day, month=when.month)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _money(value: float) -> str:
    return f"{value:.2f}"


@dataclass
class _Line:
    id: int
    name: str
    product_id: int
    quantity: int
    subtotal: float
    total: float
    sku: str | None


@dataclass
class _Note:
    id: int
    author: str
    date_created: datetime
    note: str
    customer_note: bool


@dataclass
class _Order:
    id: int
    status: str
    order_key: str
    created_via: str
    date_created: datetime
    date_modified: datetime
    billing: dict[str, str]
    shipping: dict[str, str]
    line_items: list[_Line]
    customer_note: str = ""
    customer_id: int = 0
    payment_method: str = ""
    payment_method_title: str = ""
    date_paid: datetime | None = None
    date_completed: datetime | None = None
    meta_data: list[dict[str, Any]] = field(default_factory=list)
    notes: list[_Note] = field(default_factory=list)
    stock_reduced: bool = False  # the order's `_order_stock_reduced`


@dataclass
class _Webhook:
    id: int
    name: str
    status: str
    topic: str
    delivery_url: str
    secret: str
    date_created: datetime
    date_modified: datetime
    failure_count: int = 0
    pending_delivery: bool = True

    @property
    def resource(self) -> str:
        """`order` for `order.updated`."""
        return self.topic.split(".")[0]

    @property
    def event(self) -> str:
        """`updated` for `order.updated`."""
        parts = self.topic.split(".")
        return parts[1] if len(parts) > 1 else ""


class _WooDelivery(WebhookJob):
    """One delivery of one webhook for one order; the body is built when it is sent."""

    def __init__(self, store: WooCommerceStore, webhook_id: int, order_id: int) -> None:
        """Deliver `webhook_id` for `order_id`."""
        self.store = store
        self.webhook_id = webhook_id
        self.order_id = order_id
        self.topic = ""

    def discard(self) -> None:
        """Log the drop and free the webhook + order slot."""
        with self.store._sim._lock:
            self.store._pending.discard((self.webhook_id, self.order_id))
            webhook = self.store._webhooks.get(self.webhook_id)
            self.topic = webhook.topic if webhook else ""
        self.store._sim._log_delivery(
            self.store, "webhook", self.webhook_id, self.topic, None, None, "dropped", {}, b""
        )

    def run(self, dispatcher: WebhookDispatcher) -> None:
        """Build the payload now, sign it, send it once (no retries), count the result."""
        store = self.store
        sim = store._sim
        with sim._lock:
            store._pending.discard((self.webhook_id, self.order_id))
            webhook = store._webhooks.get(self.webhook_id)
            if webhook is None:
                return
            self.topic = webhook.topic
            body = php_json(store._payload(webhook, self.order_id))
            url = webhook.delivery_url
            secret = webhook.secret
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # home_url('/') (class-wc-webhook.php): the site's `home`, not the API's URL.
            "X-WC-Webhook-Source": store.home_url.rstrip("/") + "/",
            "X-WC-Webhook-Topic": webhook.topic,
            "X-WC-Webhook-Resource": webhook.resource,
            "X-WC-Webhook-Event": webhook.event,
            "X-WC-Webhook-Signature": base64.b64encode(
                hmac.new(secret.encode(), body, hashlib.sha256).digest()
            ).decode(),
            "X-WC-Webhook-ID": str(webhook.id),
            # wp_hash( id . strtotime('now') ): second resolution, as WooCommerce core does.
            "X-WC-Webhook-Delivery-ID": store._wp_hash(f"{webhook.id}{int(time.time())}"),
        }
        for _ in range(self.copies):
            status, error, took = send_http(sim._session, url, body, headers, sim.delivery_timeout)
            sim._log_delivery(
                store, "webhook", webhook.id, webhook.topic, url, status, error, headers, body, took
            )
            store._delivery_result(webhook.id, status)


class WooCommerceStore:
    """One simulated WordPress + WooCommerce site."""

    def __init__(
        self,
        sim: WooCommerceSimulator,
        name: str,
        consumer_key: str,
        consumer_secret: str,
        webhook_secret: str,
        tracking_plugin: str | None,
        utc_offset_hours: float,
        home_url: str | None = None,
        admin_password: str | None = None,
    ) -> None:
        """Use WooCommerceSimulator.add_store."""
        if tracking_plugin not in (None, *TRACKING_PLUGINS):
            raise ValueError(f"tracking_plugin must be one of {TRACKING_PLUGINS} or None")
        self._sim = sim
        self.name = name
        self.webhook_secret = webhook_secret
        self.tracking_plugin = tracking_plugin
        self.utc_offset_hours = utc_offset_hours
        self._home_url = home_url
        self.date_format = "F j, Y"  # WordPress's `date_format` option (its default)
        self.ast_api_date_format = "d-m-Y"  # AST's `wc_ast_api_date_format` (or "m-d-Y")
        self._keys: dict[str, tuple[str, str]] = {consumer_key: (consumer_secret, "read_write")}
        self._first_key = consumer_key
        # WooCommerce > Settings > Advanced > REST API: each key's row (woocommerce_api_keys).
        self._key_ids = itertools.count(1)
        self._key_rows: dict[str, dict[str, Any]] = {}
        self._key_row(consumer_key, "read_write", "Key made by hand")
        # The store's administrator (manage_woocommerce), who logs in to approve an app.
        self.admin_user = "admin"
        self.admin_password = admin_password or secrets.token_urlsafe(12)
        self._salt = secrets.token_bytes(32)
        self._orders: dict[int, _Order] = {}
        self._products: dict[int, dict[str, Any]] = {}
        self._webhooks: dict[int, _Webhook] = {}
        self.webhook_mode: WebhookMode | None = None  # None: the simulator-wide mode applies
        self._pending: set[tuple[int, int]] = set()
        self._emails: list[dict[str, Any]] = []
        self._post_ids = itertools.count(100)  # orders and products share WordPress post ids
        self._line_ids = itertools.count(1)
        self._comment_ids = itertools.count(1)
        self._meta_ids = itertools.count(1000)
        self._webhook_ids = itertools.count(1)

    # -- identity ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The site URL, e.g. http://127.0.0.1:PORT/stores/corner (no trailing slash)."""
        if not self._sim.base_url:
            raise RuntimeError("start the simulator first")
        return f"{self._sim.base_url}/stores/{self.name}"

    @property
    def home_url(self) -> str:
        """WordPress's `home` (Settings > General > Site Address), which webhooks name as their
        source: the site URL unless set otherwise (www, https, as the merchant configured)."""
        return self._home_url or self.url

    @home_url.setter
    def home_url(self, value: str | None) -> None:
        self._home_url = value

    @property
    def has_shipment_tracking(self) -> bool:
        """A tracking plugin answers /wc-shipment-tracking/v3 (the extension or AST)."""
        return self.tracking_plugin is not None

    @property
    def api_url(self) -> str:
        """`{url}/wp-json/wc/v3`."""
        return f"{self.url}/wp-json/wc/v3"

    @property
    def consumer_key(self) -> str:
        """The first REST key."""
        return self._first_key

    @property
    def consumer_secret(self) -> str:
        """The first REST key's secret."""
        return self._keys[self._first_key][0]

    def set_webhook_mode(self, mode: str | None, seconds: float = 0.0, hold: int = 2) -> None:
        """This store's own failure mode (None: back to the simulator-wide one)."""
        self.webhook_mode = None if mode is None else WebhookMode(mode, seconds, hold)

    def add_key(
        self, consumer_key: str, consumer_secret: str, permissions: str = "read_write"
    ) -> None:
        """Another REST API key (`read`, `write` or `read_write`)."""
        with self._sim._lock:
            self._keys[consumer_key] = (consumer_secret, permissions)
            self._key_row(consumer_key, permissions, "Key made by hand")

    def _key_row(self, consumer_key: str, permissions: str, description: str) -> dict[str, Any]:
        row = {
            "key_id": next(self._key_ids),
            "description": description,
            "permissions": permissions,
            "truncated_key": consumer_key[-7:],  # what the admin screen shows
        }
        self._key_rows[consumer_key] = row
        return row

    def api_keys(self) -> list[dict[str, Any]]:
        """The REST keys as the admin screen lists them (key_id, description, permissions,
        truncated_key; never the secret)."""
        with self._sim._lock:
            return [dict(row) for row in self._key_rows.values()]

    def revoke_key(self, key: str | int) -> bool:
        """The merchant's "Revoke" on a key (its consumer key or key_id): the key's calls get
        401 "Consumer key is invalid." from then on. False when there is no such key."""
        with self._sim._lock:
            for consumer_key, row in list(self._key_rows.items()):
                if key in (consumer_key, row["key_id"]):
                    del self._key_rows[consumer_key]
                    self._keys.pop(consumer_key, None)
                    return True
        return False

    def _create_app_key(self, app_name: str, scope: str) -> dict[str, Any]:
        """WC_Auth::create_keys: `ck_`/`cs_` + wc_rand_hash() (40 hex), the scope as the key's
        permissions, described "{app_name} - API ({date})"."""
        consumer_key = "ck_" + secrets.token_hex(20)
        consumer_secret = "cs_" + secrets.token_hex(20)
        with self._sim._lock:
            self._keys[consumer_key] = (consumer_secret, scope)
            row = self._key_row(
                consumer_key,
                scope,
                f"{app_name[:170]} - API ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')})",
            )
        return {
            "key_id": row["key_id"],
            "consumer_key": consumer_key,
            "consumer_secret": consumer_secret,
            "key_permissions": scope,
        }

    def _wp_hash(self, data: str) -> str:
        return hmac.new(self._salt, data.encode(), hashlib.md5).hexdigest()

    def _tz(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_hours))

    def _local(self, when: datetime | None) -> str | None:
        if when is None:
            return None
        return when.astimezone(self._tz()).strftime("%Y-%m-%dT%H:%M:%S")

    @staticmethod
    def _gmt(when: datetime | None) -> str | None:
        if when is None:
            return None
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def _now(self) -> datetime:
        return self._sim.clock.now()

    # -- products ----------------------------------------------------------------------------

    def add_product(
        self, sku: str, name: str, price: float = 10.0, stock: int | None = None
    ) -> int:
        """A catalog product (its stock managed when `stock` is given); its id. Order lines get
        a sku only from a matching product."""
        with self._sim._lock:
            existing = self._product_by_sku(sku)
            if existing is not None:
                return existing["id"]
            product_id = next(self._post_ids)
            self._products[product_id] = {
                "id": product_id,
                "sku": sku,
                "name": name,
                "price": price,
                "stock": stock,
            }
            return product_id

    def remove_product(self, sku: str) -> None:
        """The merchant deletes the product with this SKU for good."""
        with self._sim._lock:
            product = self._product_by_sku(sku)
            if product is not None:
                del self._products[product["id"]]

    def product(self, product_id: int) -> dict[str, Any]:
        """GET /wc/v3/products/{id}, the fields the simulator keeps."""
        with self._sim._lock:
            return self._product_json(self._products[product_id])

    def _product_json(self, p: dict[str, Any]) -> dict[str, Any]:
        in_stock = p["stock"] is None or p["stock"] > 0
        return {
            "id": p["id"],
            "name": p["name"],
            "slug": sanitize_title(p["name"]),
            "type": "simple",
            "status": "publish",
            "sku": p["sku"],
            "price": _money(p["price"]),
            "regular_price": _money(p["price"]),
            "sale_price": "",
            "manage_stock": p["stock"] is not None,
            "stock_quantity": p["stock"],
            "stock_status": "instock" if in_stock else "outofstock",
            "parent_id": 0,
            "_links": {
                "self": [{"href": f"{self.api_url}/products/{p['id']}"}],
                "collection": [{"href": f"{self.api_url}/products"}],
            },
        }

    def _reduce_stock(self, order: _Order) -> None:
        """wc_maybe_reduce_stock_levels, hooked to processing, completed and on-hold: once per
        order, each managed product's stock less its line's quantity."""
        if order.stock_reduced:
            return
        order.stock_reduced = True
        for line in order.line_items:
            product = self._products.get(line.product_id)
            if product is not None and product["stock"] is not None:
                product["stock"] -= line.quantity

    def _product_by_sku(self, sku: str) -> dict[str, Any] | None:
        return next((p for p in self._products.values() if p["sku"] == sku), None)

    # -- webhooks ------------------------------------------------------------------------------

    def add_webhook(
        self,
        topic: str,
        delivery_url: str,
        secret: str | None = None,
        name: str | None = None,
        status: str = "active",
    ) -> dict[str, Any]:
        """Save a webhook (secret: the store's webhook_secret) and ping it; REST JSON + `ping`."""
        webhook = self._create_webhook(
            {
                "topic": topic,
                "delivery_url": delivery_url,
                "secret": secret or self.webhook_secret,
                "name": name,
                "status": status,
            }
        )
        ping = self._ping(webhook) if webhook.status == "active" else None
        with self._sim._lock:
            data = self._webhook_json(webhook)
        data["ping"] = ping
        return data

    def webhook(self, webhook_id: int) -> dict[str, Any]:
        """A webhook with its internals (secret, failure_count, pending_delivery)."""
        with self._sim._lock:
            w = self._webhooks[webhook_id]
            data = self._webhook_json(w)
            data.update(
                secret=w.secret, failure_count=w.failure_count, pending_delivery=w.pending_delivery
            )
            return data

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook with its internals."""
        with self._sim._lock:
            ids = list(self._webhooks)
        return [self.webhook(i) for i in ids]

    def set_webhook_status(self, webhook_id: int, status: str) -> dict[str, Any]:
        """Set a webhook `active`, `paused` or `disabled` (re-enabling resets nothing else)."""
        with self._sim._lock:
            self._webhooks[webhook_id].status = status
        return self.webhook(webhook_id)

    def _create_webhook(self, body: Any) -> _Webhook:
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        missing = [n for n in ("topic", "delivery_url") if not body.get(n)]
        if missing:
            raise _missing(missing)
        topic = str(body["topic"]).strip().lower()
        if topic not in TOPIC_HOOKS and not topic.startswith("action."):
            raise WooError(
                "woocommerce_rest_webhook_invalid_topic",
                "Webhook topic is required and must be valid.",
                400,
            )
        status = body.get("status") or "active"
        if status not in ("active", "paused", "disabled"):
            raise _invalid_param("status", "status is not one of active, paused, and disabled.")
        now = self._now()
        with self._sim._lock:
            webhook = _Webhook(
                id=next(self._webhook_ids),
                name=body.get("name")
                or f"Webhook created on {now.strftime('%b %d, %Y @ %I:%M %p')}",
                status=status,
                topic=topic,
                delivery_url=str(body["delivery_url"]),
                secret=str(body.get("secret") or secrets.token_urlsafe(37)),
                date_created=now,
                date_modified=now,
            )
            self._webhooks[webhook.id] = webhook
            return webhook

    def _ping(self, webhook: _Webhook) -> dict[str, Any]:
        """The save-time ping: form body `webhook_id=N`, no X-WC-* headers, needs exactly 200."""
        body = f"webhook_id={webhook.id}".encode()
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        with requests.Session() as session:
            status, error, took = send_http(
                session, webhook.delivery_url, body, headers, self._sim.delivery_timeout, True
            )
        self._sim._log_delivery(
            self,
            "ping",
            webhook.id,
            webhook.topic,
            webhook.delivery_url,
            status,
            error,
            headers,
            body,
            took,
        )
        ok = status == 200
        with self._sim._lock:
            if ok:
                webhook.pending_delivery = False
        if ok:
            return {"ok": True, "status": status}
        message = (
            f"Error: Delivery URL cannot be reached: {error}"
            if status is None
            else f"Error: Delivery URL returned response code: {status}"
        )
        return {"ok": False, "status": status, "error": message}

    def _fire(self, event: str, order_id: int) -> None:
        """Queue `order.{event}` for each active webhook on it (caller holds the lock)."""
        topic = f"order.{event}"
        for webhook in self._webhooks.values():
            if webhook.status != "active" or webhook.topic != topic:
                continue
            key = (webhook.id, order_id)
            if key in self._pending:
                continue  # coalesced: one pending delivery per webhook + resource
            self._pending.add(key)
            self._sim._dispatcher.submit(
                _WooDelivery(self, webhook.id, order_id), self.webhook_mode
            )

    def _payload(self, webhook: _Webhook, order_id: int) -> Any:
        if webhook.event == "deleted":
            return {"id": order_id}
        order = self._orders.get(order_id)
        if order is None:
            return {
                "code": "woocommerce_rest_shop_order_invalid_id",
                "message": "Invalid ID.",
                "data": {"status": 404},
            }
        return self._order_json(order)

    def _delivery_result(self, webhook_id: int, status: int | None) -> None:
        """Success (200-302) resets the failure count; the 7th failure in a row disables."""
        with self._sim._lock:
            webhook = self._webhooks.get(webhook_id)
            if webhook is None:
                return
            if status is not None and 200 <= status < 303:
                webhook.failure_count = 0
            elif webhook.failure_count > self._sim.max_delivery_failures:
                webhook.status = "disabled"
            else:
                webhook.failure_count += 1

    # -- orders --------------------------------------------------------------------------------

    def place_order(
        self,
        line_items: list[dict[str, Any]],
        shipping: dict[str, Any] | None = None,
        billing: dict[str, Any] | None = None,
        customer_note: str = "",
        paid: bool = True,
    ) -> dict[str, Any]:
        """A shopper checks out and pays by card: the order is created `pending` (order.created
        fires), then the payment gateway completes the payment (order.updated). Unpaid (the
        shopper left the payment page), it stays `pending` until `mark_paid` or a cancel."""
        with self._sim._lock:
            lines = []
            for item in line_items:
                sku = item.get("sku")
                product_id = item.get("product_id")
                if sku and product_id is None:
                    product_id = self.add_product(
                        sku, item.get("name") or sku, float(item.get("price", 10.0))
                    )
                lines.append({"product_id": product_id, "quantity": item.get("quantity", 1)})
                if item.get("name"):
                    lines[-1]["name"] = item["name"]
            order = self._build_order(
                {
                    "status": "pending",
                    "billing": _wc_address(billing or shipping or {}, True),
                    "shipping": _wc_address(shipping or billing or {}, False),
                    "customer_note": customer_note,
                    "line_items": lines,
                    "payment_method": "stripe",
                    "payment_method_title": "Credit / Debit Card",
                },
                "checkout",
            )
            self._orders[order.id] = order
            self._fire("created", order.id)
            if paid:
                self._payment_complete(order)
            return self._order_json(order)

    def mark_paid(self, order_id: int) -> dict[str, Any]:
        """The payment gateway confirms an order's payment; fires order.updated."""
        with self._sim._lock:
            order = self._order(order_id)
            self._payment_complete(order)
            return self._order_json(order)

    def _payment_complete(self, order: _Order) -> None:
        """WC_Order::payment_complete: from a status that awaits payment, `processing` with its
        date paid (anything else is left alone, as WooCommerce does)."""
        if order.status not in ("on-hold", "pending", "failed", "cancelled", "checkout-draft"):
            return
        self._set_status(order, "processing")
        order.date_modified = self._now()
        self._fire("updated", order.id)

    def create_order(self, body: Any, fire: bool = True) -> dict[str, Any]:
        """POST /wc/v3/orders semantics; the order as JSON. WooError when refused.

        As WC_REST_Orders_V2_Controller::save_object does, the order is saved `pending` first
        (order.created), then moved to the status asked for (order.updated): a transition like
        any other, with its note and its customer emails (pending -> processing mails the
        billing email "Your order has been received!")."""
        with self._sim._lock:
            if isinstance(body, dict):
                _check_billing_email(body)
            order = self._build_order(body, "rest-api")
            self._orders[order.id] = order
            if fire:
                self._fire("created", order.id)
            self._set_status(order, body.get("status") or "pending")
            if _as_bool(body.get("set_paid", False)):
                self._set_status(order, "processing")
            if fire and order.status != "pending":
                self._fire("updated", order.id)
            return self._order_json(order)

    def _build_order(self, body: Any, created_via: str) -> _Order:
        """A new `pending` order from a REST body whose `status` (checked here) the caller
        applies."""
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        status = body.get("status", "pending")
        if status not in ORDER_STATUSES or status == "trash":
            raise _invalid_param("status", f"status is not one of {', '.join(ORDER_STATUSES)}.")
        raw_lines = body.get("line_items") or []
        if not isinstance(raw_lines, list):
            raise _invalid_param("line_items", "line_items is not of type array.")
        now = self._now()
        order = _Order(
            id=next(self._post_ids),
            status="pending",
            order_key=f"wc_order_{secrets.token_hex(6)}",
            created_via=created_via,
            date_created=now,
            date_modified=now,
            billing=_wc_address(body.get("billing") or {}, True, defaults=False),
            shipping=_wc_address(body.get("shipping") or {}, False, defaults=False),
            line_items=[self._build_line(n, item) for n, item in enumerate(raw_lines)],
            customer_note=str(body.get("customer_note") or ""),
            customer_id=int(body.get("customer_id") or 0),
            payment_method=str(body.get("payment_method") or ""),
            payment_method_title=str(body.get("payment_method_title") or ""),
        )
        self._apply_meta(order, body.get("meta_data"))
        return order

    def _build_line(self, index: int, posted: Any) -> _Line:
        if not isinstance(posted, dict):
            raise _invalid_param("line_items", f"line_items[{index}] is not of type object.")
        for money in ("subtotal", "total"):  # the schema's type: a number is refused
            if money in posted and not isinstance(posted[money], str):
                raise _invalid_param(
                    "line_items", f"line_items[{index}][{money}] is not of type string."
                )
        # WC_REST_Orders_Controller::get_product_id: sku first, then product_id; a line with
        # neither is refused. An unknown sku/product leaves a line without product: product_id 0
        # and sku null in the answer (the sku comes from the product, not from the request).
        if posted.get("sku"):
            product = self._product_by_sku(str(posted["sku"]))
        elif posted.get("product_id"):
            product = self._products.get(int(posted["product_id"]))
        else:
            raise WooError(
                "woocommerce_rest_required_product_reference", "Product ID or SKU is required.", 400
            )
        quantity = posted.get("quantity", 1)
        if not isinstance(quantity, (int, float)) or isinstance(quantity, bool) or quantity <= 0:
            raise WooError(
                "woocommerce_rest_invalid_product_quantity",
                "Product quantity must be a positive float.",
                400,
            )
        quantity = int(quantity)
        if "total" in posted:
            total = float(posted["total"])
        elif product is not None:
            total = float(product["price"]) * quantity
        else:
            total = 0.0
        subtotal = float(posted.get("subtotal", total))
        return _Line(
            id=next(self._line_ids),
            name=str(posted.get("name") or (product["name"] if product else "")),
            product_id=product["id"] if product else 0,
            quantity=quantity,
            subtotal=subtotal,
            total=total,
            sku=product["sku"] if product else None,
        )

    def _apply_meta(self, order: _Order, meta: Any) -> None:
        if not isinstance(meta, list):
            return
        for entry in meta:
            if not isinstance(entry, dict) or "key" not in entry:
                continue
            existing = next(
                (
                    m
                    for m in order.meta_data
                    if m["id"] == entry.get("id") or m["key"] == entry["key"]
                ),
                None,
            )
            if existing is not None:
                existing["value"] = entry.get("value")
            else:
                order.meta_data.append(
                    {"id": next(self._meta_ids), "key": entry["key"], "value": entry.get("value")}
                )

    def _set_status(self, order: _Order, status: str, note: str = "") -> None:
        """Change status as WC_Order::set_status + save do: a note, dates, emails."""
        previous = order.status
        if previous == status:
            return
        order.status = status
        now = self._now()
        if status in ("processing", "completed") and order.date_paid is None:
            order.date_paid = now
        if status == "completed":
            order.date_completed = now
        if status in ("processing", "completed", "on-hold"):
            self._reduce_stock(order)
        text = (
            f"{note} " if note else ""
        ) + f"Order status changed from {ORDER_STATUSES[previous]} to {ORDER_STATUSES[status]}."
        order.notes.append(_Note(next(self._comment_ids), "WooCommerce", now, text, False))
        email = CUSTOMER_EMAILS.get(status)
        if email and (email[1] is None or previous in email[1]) and order.billing.get("email"):
            self._emails.append(
                {
                    "email": email[0],
                    "to": order.billing["email"],
                    "subject": email[2].format(site=self.name),
                    "order_id": order.id,
                    "trackings": self._tracking_items(order),
                }
            )

    def update_order(self, order_id: int, body: Any, fire: bool = True) -> dict[str, Any]:
        """PUT /wc/v3/orders/{id} semantics (status, addresses, note, meta); fires order.updated."""
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        _check_billing_email(body)
        with self._sim._lock:
            order = self._order(order_id)
            if "status" in body:
                status = body["status"]
                if status not in ORDER_STATUSES:
                    raise _invalid_param(
                        "status", f"status is not one of {', '.join(ORDER_STATUSES)}."
                    )
                self._set_status(order, status)
            if _as_bool(body.get("set_paid", False)):
                self._set_status(order, "processing")
            for name in ("billing", "shipping"):
                if isinstance(body.get(name), dict):
                    getattr(order, name).update({k: str(v) for k, v in body[name].items()})
            if "customer_note" in body:
                order.customer_note = str(body["customer_note"] or "")
            self._apply_meta(order, body.get("meta_data"))
            order.date_modified = self._now()
            if fire:
                self._fire("updated", order.id)
            return self._order_json(order)

    def complete(self, order_id: int) -> dict[str, Any]:
        """The merchant marks the order completed; fires order.updated."""
        return self.update_order(order_id, {"status": "completed"})

    def set_status(self, order_id: int, status: str) -> dict[str, Any]:
        """The merchant sets any status; fires order.updated."""
        return self.update_order(order_id, {"status": status})

    def delete_order(self, order_id: int, force: bool = False) -> dict[str, Any]:
        """Trash the order (fires order.deleted with `{"id": N}`), or delete it for good."""
        with self._sim._lock:
            order = self._order(order_id)
            data = self._order_json(order)
            if force:
                # order.deleted hooks wp_trash_post only: a forced delete sends no webhook.
                del self._orders[order_id]
            else:
                order.status = "trash"
                order.date_modified = self._now()
                data = self._order_json(order)
                self._fire("deleted", order_id)
            return data

    def bulk_load_orders(
        self,
        n: int,
        start: datetime | None = None,
        step_seconds: float = 0.0,
        status: str = "processing",
    ) -> list[int]:
        """Create `n` orders without webhooks; date_modified from `start` by `step_seconds`."""
        base = start or self._now()
        ids = []
        with self._sim._lock:
            product_id = self.add_product("BULK-1", "Bulk item", 5.0)
            for i in range(n):
                order = self._build_order(
                    {
                        "status": status,
                        "billing": _wc_address({"email": f"bulk{i}@example.com"}, True),
                        "shipping": _wc_address({}, False),
                        "line_items": [{"product_id": product_id, "quantity": 1 + i % 3}],
                    },
                    "checkout",
                )
                when = (base + timedelta(seconds=step_seconds * i)).replace(microsecond=0)
                order.date_created = order.date_modified = when
                order.status = status  # seeded as they were, no transition
                if status in ("processing", "completed"):
                    order.date_paid = when
                self._orders[order.id] = order
                ids.append(order.id)
        return ids

    def _order(self, order_id: int) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise WooError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        return order

    # -- notes --------------------------------------------------------------------------------

    def add_note(
        self, order_id: int, note: str, customer_note: bool = False, added_by_user: bool = False
    ) -> dict[str, Any]:
        """Add an order note; a customer note is emailed to the customer (see `emails`)."""
        with self._sim._lock:
            order = self._order(order_id)
            author = "admin" if added_by_user else "WooCommerce"
            entry = _Note(next(self._comment_ids), author, self._now(), note, customer_note)
            order.notes.append(entry)
            # Notes are comments: adding one does not save the order, so no order.updated.
            if customer_note and order.billing.get("email"):
                self._emails.append(
                    {
                        "email": "customer_note",
                        "to": order.billing["email"],
                        "subject": f"Note added to your {self.name} order",
                        "order_id": order.id,
                        "note": note,
                    }
                )
            return self._note_json(order, entry)

    def notes(self, order_id: int, note_type: str = "any") -> list[dict[str, Any]]:
        """GET /orders/{id}/notes (newest first; type any | customer | internal)."""
        with self._sim._lock:
            order = self._order(order_id)
            chosen = [
                n
                for n in order.notes
                if note_type == "any"
                or (note_type == "customer" and n.customer_note)
                or (note_type == "internal" and not n.customer_note)
            ]
            chosen.sort(key=lambda n: (n.date_created, n.id), reverse=True)
            return [self._note_json(order, n) for n in chosen]

    # -- shipment tracking (extension) ------------------------------------------------------

    def add_tracking(
        self,
        order_id: int,
        tracking_number: str,
        tracking_provider: str = "",
        custom_tracking_provider: str = "",
        custom_tracking_link: str = "",
        date_shipped: str | None = None,
    ) -> dict[str, Any]:
        """Add a Shipment Tracking item (the extension must be active); the item as JSON."""
        return self._create_tracking(
            order_id,
            {
                "tracking_number": tracking_number,
                "tracking_provider": tracking_provider,
                "custom_tracking_provider": custom_tracking_provider,
                "custom_tracking_link": custom_tracking_link,
                "date_shipped": date_shipped,
            },
        )

    def trackings(self, order_id: int) -> list[dict[str, Any]]:
        """The order's tracking items as the store's tracking plugin's REST API shows them."""
        with self._sim._lock:
            order = self._order(order_id)
            return [self._item_json(order, t) for t in self._tracking_items(order)]

    def _item_json(self, order: _Order, item: dict[str, Any]) -> dict[str, Any]:
        if self.tracking_plugin == "ast":
            return self._ast_tracking_json(order, item)
        return self._tracking_json(order, item)

    def _tracking_items(self, order: _Order) -> list[dict[str, Any]]:
        meta = next((m for m in order.meta_data if m["key"] == TRACKING_META_KEY), None)
        return list(meta["value"]) if meta else []

    def _create_tracking(self, order_id: int, body: Any) -> dict[str, Any]:
        if not self.has_shipment_tracking:
            raise _no_route()
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        if not body.get("tracking_number"):
            raise _missing(["tracking_number"])
        if self.tracking_plugin == "ast":
            return self._create_ast_tracking(order_id, body)
        with self._sim._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            provider = str(body.get("tracking_provider") or "")
            custom = str(body.get("custom_tracking_provider") or "")
            shipped = body.get("date_shipped")
            try:
                if shipped in (None, ""):
                    day = self._sim.clock.now().astimezone(self._tz()).date()
                    when = datetime(day.year, day.month, day.day, tzinfo=UTC)
                elif isinstance(shipped, (int, float)) or str(shipped).isdigit():
                    when = datetime.fromtimestamp(int(shipped), UTC)
                else:
                    when = datetime.strptime(str(shipped)[:10], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise _invalid_param("date_shipped", "Invalid date.") from exc
            item = {
                "tracking_provider": sanitize_title(provider) if provider and not custom else "",
                "custom_tracking_provider": custom
                or ("" if self._provider(provider) else provider),
                "custom_tracking_link": str(body.get("custom_tracking_link") or ""),
                "tracking_number": str(body["tracking_number"]),
                "date_shipped": str(int(when.timestamp())),
                "tracking_id": hashlib.md5(
                    f"{body['tracking_number']}{time.time_ns()}".encode(), usedforsecurity=False
                ).hexdigest(),
            }
            if item["custom_tracking_provider"]:
                item["tracking_provider"] = ""
            items = [*self._tracking_items(order), item]
            self._apply_meta(order, [{"key": TRACKING_META_KEY, "value": items}])
            # UNCONFIRMED: whether saving the tracking meta fires order.updated; the extension
            # saves the order, so here it bumps date_modified and fires it.
            order.date_modified = self._now()
            self._fire("updated", order.id)
            return self._tracking_json(order, item)

    def _delete_tracking(self, order_id: int, tracking_id: str) -> dict[str, Any]:
        with self._sim._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            items = self._tracking_items(order)
            found = next((t for t in items if t["tracking_id"] == tracking_id), None)
            if found is None:
                raise WooError("woocommerce_rest_invalid_id", "Invalid tracking ID.", 404)
            items.remove(found)
            self._apply_meta(order, [{"key": TRACKING_META_KEY, "value": items}])
            order.date_modified = self._now()
            self._fire("updated", order.id)
            return self._item_json(order, found)

    def _create_ast_tracking(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """AST's create_item: the order, then the number's characters, then the provider by
        name (its table, else the name as it is), the date, a private note, 201."""
        number = str(body["tracking_number"])
        with self._sim._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            if AST_REFUSED_NUMBER.search(number):
                raise WooError(
                    "woocommerce_rest_order_invalid_id",
                    "Special character not allowd in tracking number",
                    404,
                )
            name = str(body.get("custom_tracking_provider") or body.get("tracking_provider") or "")
            # get_provider_slug_from_name: a SQL match on the name (MySQL's collation ignores
            # case), else the name itself is kept as the provider.
            slug = next(
                (s for s, (known, _) in AST_PROVIDERS.items() if known.lower() == name.lower()),
                name,
            )
            item = {
                "tracking_provider": slug,
                "custom_tracking_provider": "",  # create_item passes only the slug on
                "custom_tracking_link": str(body.get("custom_tracking_link") or ""),
                "tracking_number": number,
                "date_shipped": str(int(self._ast_date_shipped(body.get("date_shipped")))),
                "tracking_id": hashlib.md5(
                    f"{slug}-{number}{time.time_ns()}".encode(), usedforsecurity=False
                ).hexdigest(),
                "status_shipped": "",
            }
            items = [*self._tracking_items(order), item]
            self._apply_meta(order, [{"key": TRACKING_META_KEY, "value": items}])
            shown = self._ast_tracking_json(order, item)
            order.notes.append(
                _Note(
                    next(self._comment_ids),
                    "WooCommerce",
                    self._now(),
                    f"Order was shipped with {shown['tracking_provider']} and tracking number "
                    f"is: {number}",
                    False,
                )
            )
            order.date_modified = self._now()
            self._fire("updated", order.id)
            return shown

    def _ast_date_shipped(self, shipped: Any) -> float:
        """AST reads `date_shipped` with strtotime, writes it in its `wc_ast_api_date_format`
        and reads that with strtotime again, which takes dd-mm-yyyy: set to m-d-Y, day and
        month swap. No date (or none strtotime reads): now."""
        now = self._now()
        try:
            when = datetime.strptime(str(shipped or "")[:10], "%Y-%m-%d")
        except ValueError:
            return now.timestamp()
        written = when.strftime("%m-%d-%Y" if self.ast_api_date_format == "m-d-Y" else "%d-%m-%Y")
        try:
            return datetime.strptime(written, "%d-%m-%Y").replace(tzinfo=UTC).timestamp()
        except ValueError:  # no 13th month: strtotime fails, add_tracking_item takes now
            return now.timestamp()

    def _ast_tracking_json(self, order: _Order, item: dict[str, Any]) -> dict[str, Any]:
        """AST's prepare_item_for_response: the provider's name and link from its table, or
        no name and the custom link; the date in the site's own `date_format`."""
        number = item["tracking_number"]
        known = AST_PROVIDERS.get(item["tracking_provider"])
        base = f"{self.url}/wp-json/wc-shipment-tracking/v3/orders/{order.id}/shipment-trackings"
        shipped = datetime.fromtimestamp(int(item["date_shipped"]), UTC)
        return {
            "tracking_id": item["tracking_id"],
            "tracking_provider": known[0] if known else "",
            "tracking_link": known[1].replace("%number%", number)
            if known
            else item["custom_tracking_link"],
            "tracking_number": number,
            "date_shipped": php_date(self.date_format, shipped),
            "_links": {
                "self": [{"href": f"{base}/{item['tracking_id']}"}],
                "collection": [{"href": base}],
                "up": [{"href": f"{self.url}/wp-json/wc-shipment-tracking/v3/orders/{order.id}"}],
            },
        }

    @staticmethod
    def _provider(name: str) -> tuple[str, str] | None:
        """(display name, URL template) for a provider name or slug in the list."""
        slug = sanitize_title(name)
        for providers in PROVIDERS.values():
            for display, template in providers.items():
                if slug and sanitize_title(display) == slug:
                    return display, template
        return None

    def _tracking_json(self, order: _Order, item: dict[str, Any]) -> dict[str, Any]:
        number = item["tracking_number"]
        if item.get("custom_tracking_provider"):
            display = item["custom_tracking_provider"]
            link = item.get("custom_tracking_link", "").replace("%1$s", number)
        else:
            known = self._provider(item.get("tracking_provider", ""))
            display = known[0] if known else item.get("tracking_provider", "")
            link = known[1].replace("%1$s", number) if known else ""
        base = f"{self.url}/wp-json/wc-shipment-tracking/v3/orders/{order.id}/shipment-trackings"
        return {
            "tracking_id": item["tracking_id"],
            "tracking_provider": display,
            "tracking_link": link,
            "tracking_number": number,
            "date_shipped": datetime.fromtimestamp(int(item["date_shipped"]), UTC).strftime(
                "%Y-%m-%d"
            ),
            "_links": {
                "self": [{"href": f"{base}/{item['tracking_id']}"}],
                "collection": [{"href": base}],
                "up": [{"href": f"{self.api_url}/orders/{order.id}"}],
            },
        }

    # -- read helpers -------------------------------------------------------------------------

    def order(self, order_id: int) -> dict[str, Any]:
        """GET /wc/v3/orders/{id}."""
        with self._sim._lock:
            return self._order_json(self._order(order_id))

    def orders(self) -> list[dict[str, Any]]:
        """Every order, by id."""
        with self._sim._lock:
            return [self._order_json(o) for _, o in sorted(self._orders.items())]

    def emails(self) -> list[dict[str, Any]]:
        """Customer emails the store sent (`email`: processing, on-hold and completed orders,
        customer notes), each to the order's billing email."""
        with self._sim._lock:
            return list(self._emails)

    # -- JSON shapes ----------------------------------------------------------------------------

    def _order_json(self, o: _Order) -> dict[str, Any]:
        total = sum(line.total for line in o.line_items)
        links = {
            "self": [{"href": f"{self.api_url}/orders/{o.id}"}],
            "collection": [{"href": f"{self.api_url}/orders"}],
        }
        return {
            "id": o.id,
            "parent_id": 0,
            "status": o.status,
            "currency": "USD",
            "version": WC_VERSION,
            "prices_include_tax": False,
            "date_created": self._local(o.date_created),
            "date_modified": self._local(o.date_modified),
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "0.00",
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": _money(total),
            "total_tax": "0.00",
            "customer_id": o.customer_id,
            "order_key": o.order_key,
            "billing": dict(o.billing),
            "shipping": dict(o.shipping),
            "payment_method": o.payment_method,
            "payment_method_title": o.payment_method_title,
            "transaction_id": "",
            "customer_ip_address": "",
            "customer_user_agent": "",
            "created_via": o.created_via,
            "customer_note": o.customer_note,
            "date_completed": self._local(o.date_completed),
            "date_paid": self._local(o.date_paid),
            "cart_hash": "",
            "number": str(o.id),
            "meta_data": [dict(m) for m in o.meta_data],
            "line_items": [
                {
                    "id": line.id,
                    "name": line.name,
                    "product_id": line.product_id,
                    "variation_id": 0,
                    "quantity": line.quantity,
                    "tax_class": "",
                    "subtotal": _money(line.subtotal),
                    "subtotal_tax": "0.00",
                    "total": _money(line.total),
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [],
                    "sku": line.sku,
                    "price": line.total / line.quantity if line.quantity else 0,
                    "image": {"id": "", "src": ""},
                    "parent_name": None,
                }
                for line in o.line_items
            ],
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "payment_url": f"{self.url}/checkout/order-pay/{o.id}/?pay_for_order=true"
            f"&key={o.order_key}",
            "is_editable": o.status in ("pending", "on-hold", "checkout-draft"),
            "needs_payment": o.status in ("pending", "failed") and total > 0,
            "needs_processing": True,
            "date_created_gmt": self._gmt(o.date_created),
            "date_modified_gmt": self._gmt(o.date_modified),
            "date_completed_gmt": self._gmt(o.date_completed),
            "date_paid_gmt": self._gmt(o.date_paid),
            "currency_symbol": "$",
            "_links": links,
        }

    def _note_json(self, order: _Order, n: _Note) -> dict[str, Any]:
        base = f"{self.api_url}/orders/{order.id}/notes"
        return {
            "id": n.id,
            "author": "system" if n.author == "WooCommerce" else n.author,
            "date_created": self._local(n.date_created),
            "date_created_gmt": self._gmt(n.date_created),
            "note": n.note,
            "customer_note": n.customer_note,
            "_links": {
                "self": [{"href": f"{base}/{n.id}"}],
                "collection": [{"href": base}],
                "up": [{"href": f"{self.api_url}/orders/{order.id}"}],
            },
        }

    def _webhook_json(self, w: _Webhook) -> dict[str, Any]:
        return {
            "id": w.id,
            "name": w.name,
            "status": w.status,
            "topic": w.topic,
            "resource": w.resource,
            "event": w.event,
            "hooks": TOPIC_HOOKS.get(w.topic, [w.event]),
            "delivery_url": w.delivery_url,
            "date_created": self._local(w.date_created),
            "date_created_gmt": self._gmt(w.date_created),
            "date_modified": self._local(w.date_modified),
            "date_modified_gmt": self._gmt(w.date_modified),
            "_links": {
                "self": [{"href": f"{self.api_url}/webhooks/{w.id}"}],
                "collection": [{"href": f"{self.api_url}/webhooks"}],
            },
        }


def _wc_address(given: dict[str, Any], with_email: bool, defaults: bool = True) -> dict[str, str]:
    """A WooCommerce address from WC keys (or `name`/`address1`/`province`/`zip` ones)."""
    first = given.get("first_name")
    last = given.get("last_name")
    if first is None and last is None and given.get("name"):
        first, _, last = str(given["name"]).partition(" ")
    fallback = {
        "first_name": "Jane",
        "last_name": "Doe",
        "address_1": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "postcode": "62701",
        "country": "US",
        "email": "jane@example.com",
    }
    values = {
        "first_name": first,
        "last_name": last,
        "company": given.get("company"),
        "address_1": given.get("address_1") or given.get("address1"),
        "address_2": given.get("address_2") or given.get("address2"),
        "city": given.get("city"),
        "state": given.get("state") or given.get("province"),
        "postcode": given.get("postcode") or given.get("zip"),
        "country": given.get("country") or given.get("country_code"),
    }
    if with_email:
        values["email"] = given.get("email")
    values["phone"] = given.get("phone")
    return {
        k: str(v) if v is not None else (fallback.get(k, "") if defaults else "")
        for k, v in values.items()
    }


def _parse_wc_date(name: str, value: str) -> datetime:
    """An ISO-8601 date-time as WordPress's rest_parse_date accepts; WooError when invalid."""
    text = value.strip()
    if len(text) < 19:
        raise _invalid_param(name, "Invalid date.")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _invalid_param(name, "Invalid date.") from exc


_ROUTES: list[tuple[tuple[str, ...], re.Pattern[str], str, str, bool]] = [
    (methods, re.compile(pattern), handler, action, extension)
    for methods, pattern, handler, action, extension in [
        (("GET",), r"wc/v3/products", "_h_list_products", "list", False),
        (("GET",), r"wc/v3/orders", "_h_list_orders", "list", False),
        (("POST",), r"wc/v3/orders", "_h_create_order", "create", False),
        (("GET",), r"wc/v3/orders/(\d+)", "_h_get_order", "view", False),
        (("PUT", "POST", "PATCH"), r"wc/v3/orders/(\d+)", "_h_update_order", "edit", False),
        (("DELETE",), r"wc/v3/orders/(\d+)", "_h_delete_order", "delete", False),
        (("GET",), r"wc/v3/orders/(\d+)/notes", "_h_list_notes", "list", False),
        (("POST",), r"wc/v3/orders/(\d+)/notes", "_h_create_note", "create", False),
        (("GET",), r"wc/v3/orders/(\d+)/notes/(\d+)", "_h_get_note", "view", False),
        (("DELETE",), r"wc/v3/orders/(\d+)/notes/(\d+)", "_h_delete_note", "delete", False),
        (("GET",), r"wc/v3/webhooks", "_h_list_webhooks", "list", False),
        (("POST",), r"wc/v3/webhooks", "_h_create_webhook", "create", False),
        (("GET",), r"wc/v3/webhooks/(\d+)", "_h_get_webhook", "view", False),
        (("PUT", "POST", "PATCH"), r"wc/v3/webhooks/(\d+)", "_h_update_webhook", "edit", False),
        (("DELETE",), r"wc/v3/webhooks/(\d+)", "_h_delete_webhook", "delete", False),
        (
            ("GET",),
            r"wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings",
            "_h_list_trackings",
            "list",
            True,
        ),
        (
            ("POST",),
            r"wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings",
            "_h_create_tracking",
            "create",
            True,
        ),
        (
            ("GET",),
            r"wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings/([0-9a-f]+)",
            "_h_get_tracking",
            "view",
            True,
        ),
        (
            ("DELETE",),
            r"wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings/([0-9a-f]+)",
            "_h_delete_tracking",
            "delete",
            True,
        ),
        (
            ("GET",),
            r"wc-shipment-tracking/v3/shipment-trackings/providers",
            "_h_providers",
            "public",
            True,
        ),
    ]
]

_DENIED = {
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "delete": (
        "woocommerce_rest_cannot_delete",
        "Sorry, you are not allowed to delete this resource.",
    ),
}


class WooCommerceSimulator(StoreSimulator["WooCommerceStore"]):
    """Many WooCommerce sites, each under `{base_url}/stores/{name}`, on one local server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Configure; nothing listens until `start`."""
        super().__init__(host, port)
        self.delivery_timeout = 60.0  # WooCommerce core's webhook timeout
        self.max_delivery_failures = 5  # woocommerce_max_webhook_delivery_failures
        # WC_Auth::make_validation refuses a callback_url that is not https:// ("The
        # callback_url needs to be over SSL"). The simulator serves http on loopback, so it takes
        # http callbacks unless this is set: a real store never does.
        self.require_https_callback = False

    # -- stores ----------------------------------------------------------------------------------

    def add_store(
        self,
        name: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        webhook_secret: str | None = None,
        *,
        has_shipment_tracking: bool = False,
        tracking_plugin: str | None = None,
        utc_offset_hours: float = 0.0,
        home_url: str | None = None,
        admin_password: str | None = None,
    ) -> WooCommerceStore:
        """A new site with a tracking plugin: `tracking_plugin` "shipment-tracking" (the official
        extension, also `has_shipment_tracking=True`), "ast" (zorem's plugin) or None; its
        webhooks name `home_url` (default: the site URL) as their source. Its administrator
        (`admin` / `admin_password`, random by default) approves apps at /wc-auth/v1/."""
        name = name or f"shop{secrets.token_hex(3)}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError("store name must be URL-safe")
        with self._lock:
            if name in self._stores:
                raise ValueError(f"store {name} exists")
            store = WooCommerceStore(
                self,
                name,
                consumer_key or f"ck_{secrets.token_hex(20)}",
                consumer_secret or f"cs_{secrets.token_hex(20)}",
                webhook_secret or secrets.token_urlsafe(24),
                tracking_plugin or ("shipment-tracking" if has_shipment_tracking else None),
                utc_offset_hours,
                home_url,
                admin_password,
            )
            self._stores[name] = store
            return store

    def store(self, name: str) -> WooCommerceStore:
        """The store called `name` (or whose URL is `name`)."""
        with self._lock:
            if name in self._stores:
                return self._stores[name]
            for store in self._stores.values():
                if self.base_url and store.url == name.rstrip("/"):
                    return store
        raise KeyError(name)

    # -- logs ------------------------------------------------------------------------------

    def deliveries(
        self, store: str | None = None, topic: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Webhook deliveries and pings (`kind` webhook | ping), oldest first."""
        with self._lock:
            return [
                d
                for d in self._deliveries
                if (store is None or d["store"] == store)
                and (topic is None or d["topic"] == topic)
                and (kind is None or d["kind"] == kind)
            ]

    def _log_delivery(
        self,
        store: WooCommerceStore,
        kind: str,
        webhook_id: int,
        topic: str,
        url: str | None,
        status: int | None,
        error: str | None,
        headers: dict[str, str],
        body: bytes,
        took: float = 0.0,
    ) -> None:
        with self._lock:
            self._deliveries.append(
                {
                    "store": store.name,
                    "kind": kind,
                    "webhook_id": webhook_id,
                    "topic": topic,
                    "url": url,
                    "status": status,
                    "error": error,
                    "headers": dict(headers),
                    "body": body.decode(),
                    "seconds": round(took, 4),
                    "at": datetime.now(UTC).isoformat(),
                }
            )

    # -- HTTP -------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path.startswith("/_sim/") or request.path == "/_sim":
            response = self._control(request)
        else:
            match = re.fullmatch(r"/stores/([^/]+)(/.*)?", request.path)
            name = match.group(1) if match else None
            response = self._api(request, name, (match.group(2) or "") if match else "")
            self._calls.add(
                {
                    "store": name,
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string.decode(),
                    "status": response.status_code,
                    "at": datetime.now(UTC).isoformat(),
                }
            )
        return response(environ, start_response)

    def _api(self, request: Request, name: str | None, rest: str) -> Response:
        with self._lock:
            store = self._stores.get(name) if name else None
        if store is None:
            return _no_route().response()
        rule = self._failures.take(name)
        if rule is not None:
            headers = {"Retry-After": str(int(rule.retry_after))} if rule.retry_after else {}
            return wp_response(
                {
                    "code": "simulated_failure",
                    "message": "Simulated failure.",
                    "data": {"status": rule.status},
                },
                rule.status,
                headers,
            )
        slow = self._slow.take(name)
        if self.latency or slow:
            time.sleep(self.latency + (slow.retry_after or 0.0 if slow else 0.0))
        auth = re.fullmatch(r"/wc-auth/v1/([a-z_]+)/?", rest)
        if auth:
            return self._wc_auth(store, request, auth.group(1))
        if not rest.startswith("/wp-json"):
            return Response("<html><body>WordPress</body></html>", 200, mimetype="text/html")
        route = rest[len("/wp-json") :].strip("/")
        try:
            authenticated = self._authenticate(store, request)
            if route == "":
                return wp_response(self._index(store))
            return self._route(store, request, route, authenticated)
        except WooError as exc:
            return exc.response()

    @staticmethod
    def _index(store: WooCommerceStore) -> dict[str, Any]:
        namespaces = ["wp/v2", "wc/v3"]
        if store.has_shipment_tracking:
            namespaces.append("wc-shipment-tracking/v3")
        return {
            "name": store.name,
            "url": store.url,
            "home": store.home_url,
            "namespaces": namespaces,
        }

    @staticmethod
    def _authenticate(store: WooCommerceStore, request: Request) -> bool:
        """True for a valid key, False for none; WooError for wrong ones (before routing)."""
        key = secret = None
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            key, secret = auth.username, auth.password
        elif "consumer_key" in request.args:
            key = request.args.get("consumer_key")
            secret = request.args.get("consumer_secret")
        if key is None:
            return False
        # The site stands in for an HTTPS one, so Basic/query keys are accepted over plain HTTP
        # here (OAuth 1.0a, which WooCommerce needs over real plain HTTP, is not simulated).
        with store._sim._lock:
            known = store._keys.get(key)
        if known is None:
            raise WooError("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        if not hmac.compare_digest(known[0], secret or ""):
            raise WooError(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        permissions = known[1]
        writing = request.method not in ("GET", "HEAD", "OPTIONS")
        if writing and permissions == "read":
            raise WooError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
                401,
            )
        if not writing and permissions == "write":
            raise WooError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have read permissions.",
                401,
            )
        return True

    def _route(
        self, store: WooCommerceStore, request: Request, route: str, authenticated: bool
    ) -> Response:
        for methods, pattern, handler, action, extension in _ROUTES:
            found = pattern.fullmatch(route)
            if not found or request.method not in methods:
                continue
            if extension and not store.has_shipment_tracking:
                break
            if action != "public" and not authenticated:
                code, message = _DENIED[action]
                raise WooError(code, message, 401)
            args = [int(g) if g.isdigit() else g for g in found.groups()]
            try:
                return getattr(self, handler)(store, request, *args)
            except ValueError as exc:
                raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400) from exc
        raise _no_route()

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if request.mimetype == "application/x-www-form-urlencoded" or request.form:
            return dict(request.form)
        body = parse_json_body(request)
        if not isinstance(body, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        return body

    @staticmethod
    def _paging(request: Request) -> tuple[int, int, int | None]:
        def number(name: str, default: int, low: int, high: int | None) -> int:
            raw = request.args.get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise _invalid_param(name, f"{name} is not of type integer.") from exc
            if value < low or (high is not None and value > high):
                bound = f"between {low} (inclusive) and {high} (inclusive)"
                raise _invalid_param(
                    name, f"{name} must be {bound}" if high else f"{name} must be >= {low}"
                )
            return value

        per_page = number("per_page", 10, 1, 100)
        page = number("page", 1, 1, None)
        offset = number("offset", 0, 0, None) if "offset" in request.args else None
        return page, per_page, offset

    def _collection(
        self, store: WooCommerceStore, request: Request, route: str, items: list[Any]
    ) -> Response:
        page, per_page, offset = self._paging(request)
        total = len(items)
        pages = math.ceil(total / per_page) if total else 0
        start = offset if offset is not None else (page - 1) * per_page
        chunk = items[start : start + per_page]
        query = {k: v for k, v in request.args.items(multi=False) if k != "page"}
        base = f"{store.url}/wp-json/{route}"
        links = []
        if page > 1:
            prev_page = min(page - 1, pages) if pages else 1
            links.append(f'<{base}?{urlencode({**query, "page": prev_page})}>; rel="prev"')
        if pages > page:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return wp_response(chunk, 200, headers)

    # products

    def _h_list_products(self, store: WooCommerceStore, request: Request) -> Response:
        # `sku=A,B`: exact SKUs, commas separating them, the whole text counted as one too
        # (WC_REST_Products_Controller::prepare_objects_query).
        raw = request.args.get("sku", "")
        skus = set(raw.split(",")) | {raw} if raw else set()
        with self._lock:
            items = [
                store._product_json(p)
                for p in sorted(store._products.values(), key=lambda p: p["id"], reverse=True)
                if not skus or p["sku"] in skus
            ]
        return self._collection(store, request, "wc/v3/products", items)

    # orders

    def _h_list_orders(self, store: WooCommerceStore, request: Request) -> Response:
        args = request.args
        statuses: list[str] = []
        for raw in args.getlist("status") + args.getlist("status[]"):
            statuses.extend(s.strip() for s in raw.split(",") if s.strip())
        statuses = statuses or ["any"]
        for status in statuses:
            if status != "any" and status not in ORDER_STATUSES:
                raise _invalid_param(
                    "status", f"status[0] is not one of any, {', '.join(ORDER_STATUSES)}."
                )
        order_dir = args.get("order", "desc")
        if order_dir not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc and desc.")
        orderby = args.get("orderby", "date")
        if orderby not in ("date", "id", "include", "title", "slug", "modified"):
            raise _invalid_param(
                "orderby", "orderby is not one of date, id, include, title, slug, and modified."
            )
        gmt = _as_bool(args.get("dates_are_gmt", "false"))
        zone = UTC if gmt else store._tz()
        bounds = []
        for name, attr, after in (
            ("after", "date_created", True),
            ("before", "date_created", False),
            ("modified_after", "date_modified", True),
            ("modified_before", "date_modified", False),
        ):
            if name in args:
                value = _parse_wc_date(name, args[name])
                # A value with an offset is converted to the compared column's zone (GMT with
                # dates_are_gmt, else the site's); a bare one is read in that zone. Bounds are
                # exclusive, as WP_Date_Query's default.
                if value.tzinfo is None:
                    value = value.replace(tzinfo=zone)
                bounds.append((attr, after, value.astimezone(UTC).replace(microsecond=0)))
        include = [int(i) for i in args.get("include", "").split(",") if i.strip().isdigit()]
        self._paging(request)  # refuse bad paging before doing the work
        with self._lock:
            chosen = []
            for o in store._orders.values():
                if "any" in statuses:
                    if o.status == "trash":
                        continue
                elif o.status not in statuses:
                    continue
                if include and o.id not in include:
                    continue
                if any(
                    not (getattr(o, attr) > v if after else getattr(o, attr) < v)
                    for attr, after, v in bounds
                ):
                    continue
                chosen.append(o)
            if orderby == "include" and include:
                chosen.sort(key=lambda o: include.index(o.id))
            else:
                attr = {"date": "date_created", "modified": "date_modified"}.get(orderby, "id")
                chosen.sort(key=lambda o: (getattr(o, attr), o.id), reverse=order_dir == "desc")
            items = [store._order_json(o) for o in chosen]
        return self._collection(store, request, "wc/v3/orders", items)

    def _h_create_order(self, store: WooCommerceStore, request: Request) -> Response:
        order = store.create_order(self._body(request))
        return wp_response(order, 201, {"Location": f"{store.api_url}/orders/{order['id']}"})

    def _h_get_order(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        return wp_response(store.order(oid))

    def _h_update_order(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        return wp_response(store.update_order(oid, self._body(request)))

    def _h_delete_order(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        return wp_response(store.delete_order(oid, _as_bool(request.args.get("force", "false"))))

    # notes

    def _h_list_notes(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        note_type = request.args.get("type", "any")
        if note_type not in ("any", "customer", "internal"):
            raise _invalid_param("type", "type is not one of any, customer, and internal.")
        return wp_response(store.notes(oid, note_type))

    def _h_create_note(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        body = self._body(request)
        if not body.get("note"):
            raise _missing(["note"])
        note = store.add_note(
            oid,
            str(body["note"]),
            _as_bool(body.get("customer_note", False)),
            _as_bool(body.get("added_by_user", False)),
        )
        return wp_response(note, 201, {"Location": note["_links"]["self"][0]["href"]})

    def _h_get_note(
        self, store: WooCommerceStore, request: Request, oid: int, nid: int
    ) -> Response:
        found = [n for n in store.notes(oid) if n["id"] == nid]
        if not found:
            raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
        return wp_response(found[0])

    def _h_delete_note(
        self, store: WooCommerceStore, request: Request, oid: int, nid: int
    ) -> Response:
        if not _as_bool(request.args.get("force", "false")):
            raise WooError(
                "woocommerce_rest_trash_not_supported", "Resource does not support trashing.", 501
            )
        with self._lock:
            order = store._order(oid)
            note = next((n for n in order.notes if n.id == nid), None)
            if note is None:
                raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
            data = store._note_json(order, note)
            order.notes.remove(note)
        return wp_response(data)

    # webhooks

    def _h_list_webhooks(self, store: WooCommerceStore, request: Request) -> Response:
        status = request.args.get("status", "all")
        with self._lock:
            items = [
                store._webhook_json(w)
                for w in store._webhooks.values()
                if status == "all" or w.status == status
            ]
        return self._collection(store, request, "wc/v3/webhooks", items)

    def _h_create_webhook(self, store: WooCommerceStore, request: Request) -> Response:
        webhook = store._create_webhook(self._body(request))
        with self._lock:
            data = store._webhook_json(webhook)
        if webhook.status == "active":
            store._ping(webhook)  # REST create pings and ignores the result
        return wp_response(data, 201, {"Location": data["_links"]["self"][0]["href"]})

    def _h_get_webhook(self, store: WooCommerceStore, request: Request, wid: int) -> Response:
        with self._lock:
            webhook = store._webhooks.get(wid)
            if webhook is None:
                raise WooError("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
            return wp_response(store._webhook_json(webhook))

    def _h_update_webhook(self, store: WooCommerceStore, request: Request, wid: int) -> Response:
        body = self._body(request)
        with self._lock:
            webhook = store._webhooks.get(wid)
            if webhook is None:
                raise WooError("woocommerce_rest_webhook_invalid_id", "ID is invalid.", 400)
            if "topic" in body:
                topic = str(body["topic"]).lower()
                if topic not in TOPIC_HOOKS and not topic.startswith("action."):
                    raise WooError(
                        "woocommerce_rest_webhook_invalid_topic",
                        "Webhook topic must be valid.",
                        400,
                    )
                webhook.topic = topic
            if "status" in body:
                if body["status"] not in ("active", "paused", "disabled"):
                    raise _invalid_param("status", "status is not one of active, paused, disabled.")
                webhook.status = body["status"]
            for name in ("name", "delivery_url", "secret"):
                if body.get(name):
                    setattr(webhook, name, str(body[name]))
            webhook.date_modified = store._now()
            ping = webhook.status == "active" and webhook.pending_delivery
            data = store._webhook_json(webhook)
        if ping:
            store._ping(webhook)  # the data store pings an active webhook still pending delivery
        return wp_response(data)

    def _h_delete_webhook(self, store: WooCommerceStore, request: Request, wid: int) -> Response:
        if not _as_bool(request.args.get("force", "false")):
            raise WooError(
                "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501
            )
        with self._lock:
            webhook = store._webhooks.pop(wid, None)
            if webhook is None:
                raise WooError("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
            return wp_response(store._webhook_json(webhook))

    # shipment tracking

    def _h_list_trackings(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        with self._lock:
            if oid not in store._orders:
                raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        return wp_response(store.trackings(oid))

    def _h_create_tracking(self, store: WooCommerceStore, request: Request, oid: int) -> Response:
        item = store._create_tracking(oid, self._body(request))
        return wp_response(item, 201)

    def _h_get_tracking(
        self, store: WooCommerceStore, request: Request, oid: int, tid: str
    ) -> Response:
        with self._lock:
            if oid not in store._orders:
                raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        found = [t for t in store.trackings(oid) if t["tracking_id"] == str(tid)]
        if not found:
            raise WooError("woocommerce_rest_invalid_id", "Invalid tracking ID.", 404)
        return wp_response(found[0])

    def _h_delete_tracking(
        self, store: WooCommerceStore, request: Request, oid: int, tid: str
    ) -> Response:
        return wp_response(store._delete_tracking(oid, str(tid)))

    def _h_providers(self, store: WooCommerceStore, request: Request) -> Response:
        if store.tracking_plugin != "shipment-tracking":  # AST lists its own elsewhere
            raise _no_route()
        return wp_response(PROVIDERS)

    # -- the application authentication endpoint (/wc-auth/v1/) ---------------------------------
    #
    # "Auto generating API keys using our Application Authentication Endpoint" (WRD
    # _authentication.md) as WC_Auth implements it (woocommerce plugins/woocommerce/includes/
    # class-wc-auth.php, auth_endpoint): every route first validates app_name, user_id,
    # return_url, callback_url and scope (make_validation: all present and scalar, scope one of
    # read / write / read_write, both URLs valid once get_formatted_url has urldecoded them and
    # put https:// before one without a scheme, callback_url https only). A store owner not
    # logged in is sent to /login, then /authorize shows the grant page: the app's name, the
    # scope's permissions, an Approve link (GET /access_granted with a wc_auth_nonce) and a
    # Deny link (return_url with success=0&user_id). access_granted creates the key
    # (create_keys), POSTs {key_id, user_id, consumer_key, consumer_secret, key_permissions} as
    # JSON to callback_url (post_consumer_data: wp_safe_remote_post, 60 s timeout) and, only
    # if that answer is exactly 200, redirects to return_url with success=1&user_id; otherwise
    # the key is deleted (maybe_delete_key) and the owner sees wp_die "Error: ..." (401).
    #
    # Simplified here: login and grant are one page, a form (POST, no JavaScript) with the
    # owner's user name and password and two buttons; Approve posts to /access_granted, Deny
    # posts there too and is answered with the same redirect WooCommerce's Deny link makes.
    # http callback URLs are taken unless `require_https_callback` is set; a real store also
    # refuses, through wp_safe_remote_post, a callback on a private address or an unusual port.

    AUTH_PARAMS = ("app_name", "user_id", "return_url", "callback_url", "scope")
    SCOPES = {"read": "Read", "write": "Write", "read_write": "Read/Write"}
    # WC_Auth::get_permissions_in_scope
    SCOPE_PERMISSIONS = {
        "read": [
            "View coupons",
            "View customers",
            "View orders and sales reports",
            "View products",
        ],
        "write": [
            "Create webhooks",
            "Create coupons",
            "Create customers",
            "Create orders",
            "Create products",
        ],
        "read_write": [
            "Create webhooks",
            "View and manage coupons",
            "View and manage customers",
            "View and manage orders and sales reports",
            "View and manage products",
        ],
    }

    def _wc_auth(self, store: WooCommerceStore, request: Request, route: str) -> Response:
        try:
            data = self._auth_params(request)
            if route in ("login", "authorize") and request.method == "GET":
                return self._grant_page(store, data)
            if route == "access_granted" and request.method == "POST":
                return self._access_granted(store, request, data)
            raise _AuthError("You do not have permission to access this page")
        except _AuthError as denied:
            return _wp_die(f"Error: {denied}.", "Access denied", 401)

    def _auth_params(self, request: Request) -> dict[str, str]:
        """WC_Auth::make_validation, over the query and form ($_REQUEST)."""
        data: dict[str, str] = {}
        for name in self.AUTH_PARAMS:
            values = request.values.getlist(name)
            if not values or not values[0]:
                raise _AuthError(f"Missing parameter {name}")
            if len(values) > 1:
                raise _AuthError(f"Invalid parameter {name}")
            data[name] = values[0]
        if data["scope"] not in self.SCOPES:
            raise _AuthError(f"Invalid scope {data['scope']}")
        for name in ("return_url", "callback_url"):
            url = _formatted_url(data[name])
            parts = urlsplit(url)
            if not parts.scheme or not parts.netloc or " " in url:
                raise _AuthError(f"The {url} is not a valid URL")
        if self.require_https_callback and not _formatted_url(
            data["callback_url"]
        ).lower().startswith("https://"):
            raise _AuthError("The callback_url needs to be over SSL")
        return data

    def _auth_nonce(self, store: WooCommerceStore, data: dict[str, str]) -> str:
        """wp_nonce_url(..., 'wc_auth_grant_access'): here bound to the request's parameters."""
        text = "wc_auth_grant_access|" + "|".join(data[n] for n in self.AUTH_PARAMS)
        return store._wp_hash(text)[:10]

    def _grant_page(
        self, store: WooCommerceStore, data: dict[str, str], error: str = ""
    ) -> Response:
        """form-login.php and form-grant-access.php as one page."""
        esc = html.escape
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{esc(data[n])}">' for n in self.AUTH_PARAMS
        )
        permissions = "".join(f"<li>{esc(p)}</li>" for p in self.SCOPE_PERMISSIONS[data["scope"]])
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{esc(store.name)} &rsaquo; Grant access</title></head><body>"
            f"<h1>{esc(data['app_name'])} would like to connect to your store</h1>"
            + (f'<p class="error">{esc(error)}</p>' if error else "")
            + f"<p>This will give &quot;{esc(data['app_name'])}&quot; "
            f"<strong>{self.SCOPES[data['scope']]}</strong> access which will allow it to:</p>"
            f"<ul>{permissions}</ul>"
            f'<form method="post" action="{esc(store.url)}/wc-auth/v1/access_granted">'
            f"{hidden}"
            f'<input type="hidden" name="wc_auth_nonce" value="{self._auth_nonce(store, data)}">'
            '<p><label>Username <input type="text" name="username"></label></p>'
            '<p><label>Password <input type="password" name="password"></label></p>'
            '<button type="submit" name="wc_auth_action" value="approve">Approve</button> '
            '<button type="submit" name="wc_auth_action" value="deny">Deny</button>'
            "</form></body></html>"
        )
        return Response(page, 200, mimetype="text/html")

    def _access_granted(
        self, store: WooCommerceStore, request: Request, data: dict[str, str]
    ) -> Response:
        nonce = request.form.get("wc_auth_nonce", "")
        if not hmac.compare_digest(nonce, self._auth_nonce(store, data)):
            raise _AuthError("Invalid nonce verification")
        return_url = _formatted_url(data["return_url"])
        if request.form.get("wc_auth_action") == "deny":
            location = _add_query_arg(return_url, success="0", user_id=data["user_id"])
            return Response("", 302, headers={"Location": location})
        user = request.form.get("username", "")
        password = request.form.get("password", "")
        if not (
            hmac.compare_digest(user, store.admin_user)
            and hmac.compare_digest(password, store.admin_password)
        ):
            return self._grant_page(store, data, "The username or password is incorrect.")
        keys = store._create_app_key(data["app_name"], data["scope"])
        consumer_data = {
            "key_id": keys["key_id"],
            "user_id": data["user_id"],  # the app's own reference, as it was sent (a string)
            "consumer_key": keys["consumer_key"],
            "consumer_secret": keys["consumer_secret"],
            "key_permissions": keys["key_permissions"],
        }
        body = php_json(consumer_data)
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "User-Agent": f"WordPress/{WP_VERSION}; {store.home_url}",
        }
        url = _formatted_url(data["callback_url"])
        with requests.Session() as session:
            # wp_safe_remote_post follows redirects (WP_Http's default `redirection` 5).
            status, error, took = send_http(session, url, body, headers, 60.0, True)
        self._log_delivery(
            store, "keys", keys["key_id"], "", url, status, error, headers, body, took
        )
        if status != 200:
            store.revoke_key(keys["consumer_key"])  # maybe_delete_key
            message = error or (
                "An error occurred in the request and at the time were unable to send the "
                "consumer data"
            )
            raise _AuthError(message)
        location = _add_query_arg(return_url, success="1", user_id=data["user_id"])
        return Response("", 302, headers={"Location": location})

    # -- control endpoints (/_sim/...) -----------------------------------------------------------

    def _control(self, request: Request) -> Response:
        try:
            body = parse_json_body(request) if request.method in ("POST", "PUT") else {}
        except ValueError:
            return json_response({"error": "body is not JSON"}, 400)
        parts = [p for p in request.path[len("/_sim") :].split("/") if p]
        try:
            return self._control_route(request, parts, body or {})
        except WooError as exc:
            return json_response({"error": exc.message, "code": exc.code}, exc.status)
        except KeyError as exc:
            return json_response({"error": f"unknown: {exc}"}, 404)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)

    def _control_route(self, request: Request, parts: list[str], body: dict[str, Any]) -> Response:
        method = request.method
        if parts == ["health"]:
            return json_response({"ok": True, "base_url": self.base_url})
        if parts == ["stores"] and method == "GET":
            return json_response([_store_info(s) for s in self.stores()])
        if parts == ["stores"] and method == "POST":
            store = self.add_store(
                body.get("name"),
                body.get("consumer_key"),
                body.get("consumer_secret"),
                body.get("webhook_secret"),
                has_shipment_tracking=bool(body.get("has_shipment_tracking", False)),
                tracking_plugin=body.get("tracking_plugin"),
                utc_offset_hours=float(body.get("utc_offset_hours", 0.0)),
                home_url=body.get("home_url"),
            )
            return json_response(_store_info(store), 201)
        if len(parts) >= 2 and parts[0] == "stores":
            return self._control_store(request, self.store(parts[1]), parts[2:], body)
        common = common_control(self, request, parts, body)
        if common is not None:
            return common
        return json_response({"error": "unknown control endpoint"}, 404)

    def _control_store(
        self, request: Request, store: WooCommerceStore, parts: list[str], body: dict[str, Any]
    ) -> Response:
        method = request.method
        if not parts:
            if method in ("POST", "PUT"):
                if "has_shipment_tracking" in body:
                    store.tracking_plugin = (
                        "shipment-tracking" if body["has_shipment_tracking"] else None
                    )
                if "tracking_plugin" in body:
                    store.tracking_plugin = body["tracking_plugin"]
                if "home_url" in body:
                    store.home_url = body["home_url"]
                if "utc_offset_hours" in body:
                    store.utc_offset_hours = float(body["utc_offset_hours"])
            return json_response(_store_info(store))
        if parts == ["products"] and method == "POST":
            product_id = store.add_product(
                body["sku"],
                body.get("name", body["sku"]),
                body.get("price", 10.0),
                body.get("stock"),
            )
            return json_response({"id": product_id}, 201)
        if parts == ["webhooks"]:
            if method == "POST":
                hook = store.add_webhook(
                    body["topic"],
                    body["delivery_url"],
                    body.get("secret"),
                    body.get("name"),
                    body.get("status", "active"),
                )
                return json_response(hook, 201)
            return json_response(store.webhooks())
        if len(parts) == 2 and parts[0] == "webhooks" and method in ("POST", "PUT"):
            return json_response(store.set_webhook_status(int(parts[1]), body["status"]))
        if parts == ["keys"]:
            return json_response(store.api_keys())
        if len(parts) == 2 and parts[0] == "keys" and method in ("DELETE", "POST"):
            key: str | int = int(parts[1]) if parts[1].isdigit() else parts[1]
            if not store.revoke_key(key):
                return json_response({"error": "no such key"}, 404)
            return json_response({"revoked": parts[1]})
        if parts == ["emails"]:
            return json_response(store.emails())
        if parts == ["orders"]:
            if method == "POST":
                order = store.place_order(
                    body["line_items"],
                    body.get("shipping"),
                    body.get("billing"),
                    body.get("customer_note", ""),
                    body.get("paid", True),
                )
                return json_response(order, 201)
            return json_response(store.orders())
        if parts == ["bulk"] and method == "POST":
            ids = store.bulk_load_orders(
                int(body.get("n", 1)), step_seconds=float(body.get("step_seconds", 0))
            )
            return json_response({"ids": ids}, 201)
        if len(parts) >= 2 and parts[0] == "orders":
            oid = int(parts[1])
            tail = parts[2:]
            if not tail:
                trackings = store.trackings(oid) if store.has_shipment_tracking else []
                return json_response(
                    {"order": store.order(oid), "notes": store.notes(oid), "trackings": trackings}
                )
            if tail == ["complete"] and method == "POST":
                return json_response(store.complete(oid))
            if tail == ["pay"] and method == "POST":
                return json_response(store.mark_paid(oid))
            if tail == ["status"] and method in ("POST", "PUT"):
                return json_response(store.set_status(oid, body["status"]))
            if tail == ["notes"] and method == "POST":
                note = store.add_note(oid, body["note"], bool(body.get("customer_note", False)))
                return json_response(note, 201)
            if tail == ["trackings"] and method == "POST":
                item = store.add_tracking(
                    oid,
                    body["tracking_number"],
                    body.get("tracking_provider", ""),
                    body.get("custom_tracking_provider", ""),
                    body.get("custom_tracking_link", ""),
                    body.get("date_shipped"),
                )
                return json_response(item, 201)
        return json_response({"error": "unknown control endpoint"}, 404)


class _AuthError(Exception):
    """A WC_Auth exception: shown with wp_die as "Error: {message}." (401)."""


def _wp_die(message: str, title: str, status: int) -> Response:
    page = (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
        f'<body id="error-page"><div class="wp-die-message">{html.escape(message)}</div>'
        "</body></html>"
    )
    return Response(page, status, mimetype="text/html")


def _formatted_url(url: str) -> str:
    """WC_Auth::get_formatted_url: urldecode, and https:// before a URL without a scheme."""
    url = unquote(url)
    return url if "://" in url else "https://" + url


def _add_query_arg(url: str, **args: str) -> str:
    """WordPress's add_query_arg: set these parameters on the URL, keeping its others."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in args]
    query.extend(args.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _store_info(store: WooCommerceStore) -> dict[str, Any]:
    return {
        "name": store.name,
        "store_url": store.url,
        "home_url": store.home_url,
        "api_url": store.api_url,
        "consumer_key": store.consumer_key,
        "consumer_secret": store.consumer_secret,
        "webhook_secret": store.webhook_secret,
        "admin_user": store.admin_user,
        "admin_password": store.admin_password,
        "has_shipment_tracking": store.has_shipment_tracking,
        "tracking_plugin": store.tracking_plugin,
        "utc_offset_hours": store.utc_offset_hours,
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: serve sites given as `name:ck:cs:webhook_secret[:tracking|:ast]` until interrupted."""
    parser = argparse.ArgumentParser(description="WooCommerce simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--store",
        action="append",
        default=[],
        help="name:ck:cs:webhook_secret[:tracking|:ast]",
    )
    parser.add_argument("--utc-offset-hours", type=float, default=0.0)
    args = parser.parse_args(argv)
    sim = WooCommerceSimulator(args.host, args.port)
    base_url = sim.start()
    for spec in args.store:
        name, ck, cs, secret, tracking = [*spec.split(":", 4), "", "", "", ""][:5]
        sim.add_store(
            name,
            ck or None,
            cs or None,
            secret or None,
            tracking_plugin={"tracking": "shipment-tracking", "ast": "ast"}.get(tracking),
            utc_offset_hours=args.utc_offset_hours,
        )
    print(
        json.dumps({"base_url": base_url, "stores": [_store_info(s) for s in sim.stores()]}),
        flush=True,
    )
    wait_forever(sim.stop)


if __name__ == "__main__":
    main()
