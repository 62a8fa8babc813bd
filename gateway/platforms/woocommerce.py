"""WooCommerce through REST v3: webhook checks, orders in and out, tracking to buyers.

Facts: ../shared/platforms/woocommerce.md. Core WooCommerce has no tracking fields: a buyer
store with a tracking plugin (the official Shipment Tracking extension, or zorem's Advanced
Shipment Tracking, which serves the same route) gets one tracking item per number; one without,
or whose plugin refuses the number, gets a customer note (carrier, numbers, links), and the
order is set `completed` when shipped. WooCommerce sellers enter fulfillments in our form, so
there is nothing to read back from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from gateway.model import (
    CANCELLED,
    PAID,
    UNPAID,
    Fulfillment,
    LineItem,
    ObservedFulfillment,
    Order,
)
from gateway.platforms import register
from gateway.platforms.base import (
    INGEST_ORDER,
    ChangedOrder,
    ChangedPage,
    ConnectLink,
    CreatedOrder,
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
    base64_hmac_matches,
    http,
    minute_before,
    refuse_status,
)
from gateway.settings import Settings
from gateway.validation import StrictSchema, secret, site_url

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # WordPress's largest per_page
LOOKUP_PAGES = 4  # pages of recent orders searched for an earlier attempt's order
# The official Shipment Tracking extension's route, which zorem's Advanced Shipment Tracking
# (AST) serves too (github.com/zorem/woo-advanced-shipment-tracking,
# includes/api/class-wc-advanced-shipment-tracking-rest-api-controller.php).
TRACKING_PATH = "/wp-json/wc-shipment-tracking/v3/orders/{id}/shipment-trackings"
# Where an order's status leaves its payment. WooCommerce's statuses, as its OrderStatus enum
# documents them (woocommerce.github.io/code-reference/classes/
# Automattic-WooCommerce-Enums-OrderStatus.html): pending "received, but no payment has been
# made", failed "payment failed or was declined", on-hold "awaiting payment confirmation" (bank
# transfer, cheque), checkout-draft / draft / auto-draft / new: a checkout not finished;
# processing "payment has been received", completed "fulfilled"; cancelled, refunded (the whole
# amount), trash. `order.created` fires for pending orders too, so the status decides.
PAYMENT = {
    "pending": UNPAID,
    "failed": UNPAID,
    "on-hold": UNPAID,
    "checkout-draft": UNPAID,
    "draft": UNPAID,
    "auto-draft": UNPAID,
    "new": UNPAID,
    "processing": PAID,
    "completed": PAID,
    "cancelled": CANCELLED,
    "refunded": CANCELLED,
    "trash": CANCELLED,
}


def normalize_store_url(url: str) -> str:
    """Scheme, host, port and path, lower-cased host, no trailing slash (API.md); "" when the
    text is no URL at all (a header from anyone)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = (parts.hostname or "").lower() + (f":{port}" if port and port != default else "")
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def store_key(url: str) -> str | None:
    """The store a URL names, whatever form of it WooCommerce sends: host (less a leading
    `www.`), port and path, as normalize_store_url writes them; the scheme dropped. None for
    no http(s) URL.

    X-WC-Webhook-Source is `home_url('/')` (class-wc-webhook.php, deliver()), the site's `home`
    option, which need not be the URL the merchant gave us (www or not), and whose scheme is
    https whenever the request that delivers is (get_home_url: is_ssl()), else the option's:
    one store can send both. The path stays: two sites of a multisite are two stores. Matching
    this loosely lets no store pass as another: the HMAC with the matched connection's own
    secret must still verify, and two connections with one key are refused (store_taken).
    """
    scheme, _, rest = normalize_store_url(url).partition("://")
    if scheme not in ("http", "https") or not rest or rest.startswith("/"):
        return None
    return rest.removeprefix("www.")


# ---- connecting a store: the key flow and the gateway's own webhooks ---------------------------

APP_NAME = "Fulfillment gateway"  # what the store's grant page names us
SCOPE = "read_write"  # orders read and written, and "Create webhooks" (WC_Auth scopes)
CALLBACK_STEP = "callback"
WEBHOOKS_PATH = "/wp-json/wc/v3/webhooks"
MAX_CALLBACK_BYTES = 4096  # five short fields


def authorize_url(store_url: str, nonce: str, public_url: str) -> str:
    """Where the store's owner approves our key: the Application Authentication Endpoint
    (woocommerce-rest-api-docs, _authentication.md, "Auto generating API keys using our
    Application Authentication Endpoint"). `user_id` is ours to choose ("User ID in your APP");
    it comes back in the key's POST and on return_url, so it is the single-use nonce that binds
    the key to the connect link. WooCommerce takes only an https:// callback_url
    (WC_Auth::make_validation), so a real PUBLIC_URL is https."""
    public = public_url.rstrip("/")
    query = urlencode(
        {
            "app_name": APP_NAME,
            "scope": SCOPE,
            "user_id": nonce,
            "return_url": f"{public}/connect/done",
            "callback_url": f"{public}/connect/woocommerce/{CALLBACK_STEP}",
        },
        quote_via=quote,
    )
    return f"{normalize_store_url(store_url)}/wc-auth/v1/authorize?{query}"


def read_key_callback(raw: bytes) -> dict[str, str]:
    """The key WooCommerce POSTs to callback_url: JSON {key_id, user_id, consumer_key,
    consumer_secret, key_permissions} (WC_Auth::create_keys, post_consumer_data). ValueError
    with a reason for anything else, or a key that is not read_write (we register webhooks and
    write orders: a read or write key can't do both)."""
    if len(raw) > MAX_CALLBACK_BYTES:
        raise ValueError("too large")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    user_id = body.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("no user_id")
    key, secret = body.get("consumer_key"), body.get("consumer_secret")
    for name, value, prefix in (("consumer_key", key, "ck_"), ("consumer_secret", secret, "cs_")):
        if (
            not isinstance(value, str)
            or not value.startswith(prefix)
            or not 16 <= len(value) <= 255
        ):
            raise ValueError(f"no {name}")
    if body.get("key_permissions") != SCOPE:
        raise ValueError(f"the key is {body.get('key_permissions')!r}, not {SCOPE}")
    return {
        "user_id": user_id,
        "key_id": str(body.get("key_id", "")),
        "consumer_key": key,
        "consumer_secret": secret,
    }


def secret_mark(secret: str) -> str:
    """A short fingerprint of a webhook secret, kept in the names of the hooks we make.

    WooCommerce never shows a hook's secret (write-only in the REST schema), so the name tells
    whether a hook of ours signs with the connection's secret: a hook made by hand, or by an
    earlier install with another secret, has its secret set again."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def hook_name(topic: str, secret: str) -> str:
    return f"{APP_NAME}: {topic} [{secret_mark(secret)}]"


@dataclass(frozen=True)
class HookPlan:
    """What ensure_webhooks does for one topic: `found` active | missing | disabled, and the
    call: "" (nothing), "create", "enable" (PUT status active and the secret), "secret" (PUT the
    secret of an active hook that may sign with another); `hook_id` for the PUT."""

    topic: str
    found: str
    action: str
    hook_id: int | None = None


def plan_webhooks(
    listed: list[dict[str, Any]], address: str, topics: list[str], secret: str
) -> list[HookPlan]:
    """One plan per topic from the store's hooks: ours are those delivering to `address`.

    Statuses: active (delivers), paused (by an admin), disabled (by WooCommerce after repeated
    failures) (WRD _webhooks.md); paused and disabled ones are both enabled again. The first
    active hook of a topic is enough; else the first of ours for it is enabled.
    """
    ours = [h for h in listed if _same_address(h.get("delivery_url") or "", address)]
    plans = []
    for topic in topics:
        hooks = [h for h in ours if h.get("topic") == topic]
        active = [h for h in hooks if h.get("status") == "active"]
        if active:
            hook = active[0]
            signed = hook.get("name") == hook_name(topic, secret)
            plans.append(HookPlan(topic, "active", "" if signed else "secret", int(hook["id"])))
        elif hooks:
            plans.append(HookPlan(topic, "disabled", "enable", int(hooks[0]["id"])))
        else:
            plans.append(HookPlan(topic, "missing", "create"))
    return plans


def _same_address(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def verify_webhook(secret: str, raw_body: bytes, signature: str | None) -> bool:
    """X-WC-Webhook-Signature is base64 HMAC-SHA256 of the raw body with the webhook secret."""
    return base64_hmac_matches(secret, raw_body, signature)


class WooCommerceAdapter:
    """One store's connection: `store_url`, `consumer_key`, `consumer_secret`."""

    def __init__(self, connection: dict[str, Any], port: PlatformPort, config: Settings) -> None:
        self.site = connection["store_url"].rstrip("/")
        self.auth = (connection["consumer_key"], connection["consumer_secret"])
        # The secret of the hooks the gateway makes (an installed connection's is generated at
        # install; a static one's is the one its partner gave).
        self.webhook_secret = connection.get("webhook_secret") or ""
        self.port = port
        self.timeout = config.http_timeout

    # ---- the interface -----------------------------------------------------------------------

    def read_order(self, ref: str) -> StoreOrder | None:
        """GET /orders/<id>: lines, shipping address and the billing email."""
        order = self.call("GET", f"/wp-json/wc/v3/orders/{ref}", missing_ok=True)
        if order is None:
            return None
        return StoreOrder(
            ref=str(order["id"]),
            lines=[
                StoreLine(
                    str(li["id"]), li.get("sku") or "", int(li["quantity"]), li.get("name") or ""
                )
                for li in order.get("line_items") or []
            ],
            shipping_address=_our_address(order.get("shipping") or {}),
            email=(order.get("billing") or {}).get("email") or None,
            payment=_payment(order),
            created_at=_gmt(order.get("date_created_gmt")),
        )

    def create_order(self, order: Order) -> CreatedOrder:
        """POST /orders as `processing`, without the customer's email, our ids in its meta data,
        each line on the seller's product with its SKU (GET /products?sku=) at our price.

        Exactly once: an earlier attempt's order (created, but not recorded before a crash) is
        found by its `gateway_order_id` among the store's orders created since ours.
        """
        earlier = self._created_earlier(order)
        if earlier is not None:
            return _created(order, earlier)
        catalog = self._catalog([li.seller_sku for li in order.line_items])
        shipping = _woo_address(order.shipping_address)
        created = self.call(
            "POST",
            "/wp-json/wc/v3/orders",
            json={
                "status": "processing",
                "set_paid": False,
                "shipping": shipping,
                # No billing email, ever. WooCommerce saves a REST order `pending`, then sets
                # the status asked for (WC_REST_Orders_V2_Controller::save_object), and
                # pending -> processing mails the billing email "Your order has been received!"
                # (WC_Email_Customer_Processing_Order), completed mails it again: the buyer's
                # customer would hear from the seller's shop. And "" is refused: the schema's
                # billing.email is {type: [string, null], format: email}.
                "billing": shipping,
                "customer_note": f"Dropship order {order.buyer_order_ref} via the gateway",
                "line_items": [
                    _woo_line(li, catalog.get(li.seller_sku)) for li in order.line_items
                ],
                "meta_data": [{"key": "gateway_order_id", "value": order.id}],
            },
        )
        return _created(order, created)

    def _catalog(self, skus: list[str]) -> dict[str, dict[str, Any]]:
        """The seller's products (variations too) with these SKUs, by SKU. `sku=A,B` matches
        exact SKUs, commas separating them (WC_REST_Products_Controller::prepare_objects_query)."""
        wanted = sorted({sku for sku in skus if sku})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), PAGE_SIZE):
            chunk = ",".join(wanted[start : start + PAGE_SIZE])
            products = self.call(
                "GET", f"/wp-json/wc/v3/products?sku={quote(chunk)}&per_page={PAGE_SIZE}"
            )
            for product in products or []:
                found.setdefault(product.get("sku") or "", product)
        return found

    def _created_earlier(self, order: Order) -> dict[str, Any] | None:
        since = quote(minute_before(order.created_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        for page in range(1, LOOKUP_PAGES + 1):
            listed = (
                self.call(
                    "GET",
                    f"/wp-json/wc/v3/orders?after={since}&dates_are_gmt=true&orderby=date&order=asc"
                    f"&per_page={PAGE_SIZE}&page={page}",
                )
                or []
            )
            for candidate in listed:
                meta = {m.get("key"): m.get("value") for m in candidate.get("meta_data") or []}
                if meta.get("gateway_order_id") == order.id:
                    return candidate
            if len(listed) < PAGE_SIZE:
                return None
        return None

    def read_fulfillments(self, ref: str) -> list[ObservedFulfillment]:
        """WooCommerce sellers record fulfillments in our form: there is nothing to read."""
        return []

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str:
        """Tracking items through the store's tracking plugin, else (none, or it refuses the
        number) a customer note; never twice."""
        ref = order.buyer_order_ref
        trackings = self.call("GET", TRACKING_PATH.format(id=ref), missing_ok=True)
        if trackings is not None:
            try:
                return self._post_trackings(ref, order, fulfillment, trackings)
            except PlatformError as refused:
                if not refused.permanent:
                    raise
                # AST answers 404 to a number with anything but letters, digits, "-" and
                # spaces: the customer still gets it, as a note, and the delivery is not failed.
                log.warning("order %s: tracking refused (%s), sent as a note", order.id, refused)
        return self._post_note(order, fulfillment)

    def _post_trackings(
        self, ref: str, order: Order, fulfillment: Fulfillment, trackings: list[dict[str, Any]]
    ) -> str:
        """One tracking item per number the order does not have yet; every number's item ids.
        An operator's correction also takes away the items of the numbers it replaced."""
        wrong = corrected_away(order, fulfillment)
        for item in trackings:
            if item.get("tracking_number") in wrong:
                path = f"{TRACKING_PATH.format(id=ref)}/{item['tracking_id']}"
                self.call("DELETE", path, missing_ok=True)  # gone already: a retry
        have = {t.get("tracking_number") for t in trackings}
        ids = [
            str(t["tracking_id"])
            for t in trackings
            if t.get("tracking_number") in fulfillment.tracking_numbers
        ]
        for index, number in enumerate(fulfillment.tracking_numbers):
            if number in have:
                continue
            item = self.call(
                "POST", TRACKING_PATH.format(id=ref), json=_tracking_item(fulfillment, index)
            )
            ids.append(str(item["tracking_id"]))
        return "tracking:" + ",".join(ids)

    def _post_note(self, order: Order, fulfillment: Fulfillment) -> str:
        """A customer note with carrier, numbers and links, marked so a retry finds it."""
        ref = order.buyer_order_ref
        marker = f"[{fulfillment.id} v{fulfillment.version}]"
        notes = self.call("GET", f"/wp-json/wc/v3/orders/{ref}/notes") or []
        for note in notes:
            if marker in (note.get("note") or ""):
                return f"note:{note['id']}"
        note = self.call(
            "POST",
            f"/wp-json/wc/v3/orders/{ref}/notes",
            json={"note": _note_text(order, fulfillment, marker), "customer_note": True},
        )
        return f"note:{note['id']}"

    def mark_shipped(self, order: Order) -> str:
        """Set the buyer's order `completed`."""
        self.call(
            "PUT", f"/wp-json/wc/v3/orders/{order.buyer_order_ref}", json={"status": "completed"}
        )
        return "set the buyer's WooCommerce order to completed"

    def changed_orders(self, since: str, page: str | None, created: bool = False) -> ChangedPage:
        """GET /orders?modified_after=... (or after=, by creation), oldest first, by page."""
        keyset = Keyset.parse(page, since)
        field = "after" if created else "modified_after"
        stamp = "date_created_gmt" if created else "date_modified_gmt"
        after = _second_before(keyset.at)  # WooCommerce's *_after is exclusive
        listed = [
            (str(o["id"]), _gmt(o.get(stamp)) or keyset.at)
            for o in self.call(
                "GET",
                f"/wp-json/wc/v3/orders?{field}={quote(after)}&dates_are_gmt=true"
                f"&orderby={'date' if created else 'modified'}&order=asc&per_page={PAGE_SIZE}"
                f"&page={keyset.number}",
            )
            or []
        ]
        orders = [ChangedOrder(ref, at) for ref, at in keyset.fresh(listed)]
        return ChangedPage(orders, keyset.next_page(listed, PAGE_SIZE))

    def ensure_webhooks(
        self, address: str, topics: list[str], headers: dict[str, str]
    ) -> list[WebhookCheck]:
        """The store's hooks delivering to `address`, one per topic, each signing with the
        connection's webhook secret (WooCommerce takes no custom headers: `headers` unused).

        `GET /webhooks` (every page), then per topic (plan_webhooks): `POST /webhooks` {name,
        topic, delivery_url, secret, status: active} for a missing one, `PUT /webhooks/<id>`
        {status: active, secret, name} for a paused or disabled one, and {secret, name} for an
        active one whose name does not carry this secret's mark. A key without write access
        (a static `read` key) can't make hooks: each repair fails with WooCommerce's 401, in
        its check's error. WooCommerce pings a hook it saves active and not yet delivered
        (`webhook_id=N`, answered 200 by our webhook route); re-enabling leaves its
        failure_count as it was (6 after a disable: class-wc-webhook.php resets it only on a
        delivery answered 2xx, 301 or 302), so one more failure disables it again.
        """
        if not self.webhook_secret:
            raise PlatformError("the connection has no webhook secret to sign with", permanent=True)
        listed = self._webhooks()
        return [
            self._carry_out(plan, address)
            for plan in plan_webhooks(listed, address, topics, self.webhook_secret)
        ]

    def _webhooks(self) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = []
        page = 1
        while True:
            listed = self.call("GET", f"{WEBHOOKS_PATH}?per_page={PAGE_SIZE}&page={page}") or []
            hooks.extend(listed)
            if len(listed) < PAGE_SIZE:
                return hooks
            page += 1

    def _carry_out(self, plan: HookPlan, address: str) -> WebhookCheck:
        mine = {"name": hook_name(plan.topic, self.webhook_secret), "secret": self.webhook_secret}
        try:
            if plan.action == "create":
                self.call(
                    "POST",
                    WEBHOOKS_PATH,
                    json={**mine, "topic": plan.topic, "delivery_url": address, "status": "active"},
                )
            elif plan.action == "enable":
                self.call(
                    "PUT", f"{WEBHOOKS_PATH}/{plan.hook_id}", json={**mine, "status": "active"}
                )
            elif plan.action == "secret":
                self.call("PUT", f"{WEBHOOKS_PATH}/{plan.hook_id}", json=mine)
        except PlatformError as error:
            # CredentialsRefused too: a `read` key's 401 on a write ("does not have write
            # permissions") is this check's error, not a connection to redo (it still reads).
            # A revoked key fails the listing first, which the core's guard (adapter_for)
            # turns into needs_reauth.
            log.warning(
                "WooCommerce %s: %s of %s failed: %s", self.site, plan.action, plan.topic, error
            )
            return WebhookCheck(plan.topic, plan.found, error=str(error))
        return WebhookCheck(plan.topic, plan.found, repaired=plan.action in ("create", "enable"))

    # ---- transport ---------------------------------------------------------------------------

    def call(self, method: str, path: str, json: Any = None, missing_ok: bool = False) -> Any:
        """One REST call with the store's keys (HTTP Basic); the decoded body."""
        try:
            answer = http.request(
                method, self.site + path, json=json, auth=self.auth, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise PlatformError(f"WooCommerce unreachable: {type(error).__name__}") from error
        self.port.count("platform_calls_woocommerce")
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code >= 300:
            refuse_status("WooCommerce", answer)
        try:
            return answer.json()
        except ValueError:
            raise PlatformError("WooCommerce answered something that is not JSON") from None


def _woo_line(line: LineItem, product: dict[str, Any] | None) -> dict[str, Any]:
    """A line for POST /orders: on the seller's product when their catalog has its SKU, else
    by name. At our price, 0.00, either way: the buyer and seller settle outside the seller's
    store, and without `subtotal`/`total` WooCommerce prices the line at the product's price
    (WC_REST_Orders_V2_Controller::prepare_line_items)."""
    posted: dict[str, Any] = {
        "quantity": line.quantity,
        "subtotal": "0.00",  # strings: the schema's type, refused as numbers
        "total": "0.00",
        "meta_data": [{"key": "gateway_sku", "value": line.seller_sku}],
    }
    if product is not None:
        # The seller's own product and name; WooCommerce reduces its stock as for any sale
        # reaching `processing` (wc_maybe_reduce_stock_levels).
        posted["product_id"] = product["id"]
    else:
        # A line needs a product_id or a sku (woocommerce_rest_required_product_reference); an
        # unknown sku leaves it a line without product: our name, no stock, no catalog price.
        posted.update(sku=line.seller_sku, name=line.title)
    return posted


def _created(order: Order, created: dict[str, Any]) -> CreatedOrder:
    """Our order as the seller's store holds it: its ids, and a timeline note for each line it
    holds without a product (its SKU is not in their catalog)."""
    store_lines = list(created.get("line_items") or [])
    notes = [
        f"{li.seller_sku} is not a product in the seller's WooCommerce store: its line is there "
        f'by name ("{li.title}"), without their price or stock.'
        for li, held in zip(order.line_items, store_lines, strict=False)
        if not held.get("product_id")
    ]
    return CreatedOrder(ref=str(created["id"]), line_refs=_line_refs(order, created), notes=notes)


def _line_refs(order: Order, created: dict[str, Any]) -> dict[str, str]:
    """Our line ids to the store's: WooCommerce keeps the order lines were sent in."""
    store_lines = list(created.get("line_items") or [])
    return {
        li.id: str(store_lines[i]["id"])
        for i, li in enumerate(order.line_items)
        if i < len(store_lines)
    }


def _payment(order: dict[str, Any]) -> str:
    """PAID, UNPAID or CANCELLED from the order's status (PAYMENT)."""
    status = order.get("status") or ""
    if status in PAYMENT:
        return PAYMENT[status]
    # A plugin's own status ("shipped", "awaiting-shipment"...): paid once WooCommerce recorded
    # the payment, which sets date_paid (WC_Order::maybe_set_date_paid, payment_complete).
    return PAID if order.get("date_paid_gmt") else UNPAID


def _second_before(iso_time: str) -> str:
    """One second earlier, as WooCommerce's GMT filters take it (no zone)."""
    at = datetime.fromisoformat(iso_time) - timedelta(seconds=1)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _gmt(value: str | None) -> str | None:
    """WooCommerce's *_gmt dates carry no zone: mark them UTC."""
    return None if not value else value if value.endswith("Z") else value + "Z"


def corrected_away(order: Order, fulfillment: Fulfillment) -> set[str]:
    """The numbers an operator's correction replaced that no fulfillment of the order has now."""
    replaced = {n for c in fulfillment.corrections for n in c.before["tracking_numbers"]}
    kept = {n for f in order.fulfillments if f.status == "active" for n in f.tracking_numbers}
    return replaced - kept


def _tracking_item(fulfillment: Fulfillment, index: int) -> dict[str, Any]:
    """A tracking item both plugins take the same way.

    The carrier goes as `custom_tracking_provider` with our link: the official extension shows
    a custom provider with its custom link (its predefined `tracking_provider` names would
    ignore ours, and they are not AST's: "Fedex", "DHL US"), and AST looks the name up in its
    own provider table, keeping ours when it has none. No `date_shipped`: both default to the
    day it is added, and AST reads a date back through its `wc_ast_api_date_format` setting
    (d-m-Y or m-d-Y), which swaps day and month of an ISO date when set to m-d-Y.
    """
    item: dict[str, Any] = {
        "tracking_number": fulfillment.tracking_numbers[index],
        "custom_tracking_provider": fulfillment.carrier,
    }
    if index < len(fulfillment.tracking_urls):
        item["custom_tracking_link"] = fulfillment.tracking_urls[index]
    return item


def _note_text(order: Order, fulfillment: Fulfillment, marker: str) -> str:
    items = ", ".join(
        f"{fl.quantity} x {order.line(fl.line_item_id).sku}" for fl in fulfillment.line_items
    )
    urls = fulfillment.tracking_urls
    numbers = "; ".join(
        f"{n} ({urls[i]})" if i < len(urls) else n
        for i, n in enumerate(fulfillment.tracking_numbers)
    )
    verb = "Shipped" if fulfillment.version == 1 else "Tracking updated for"
    return f"{verb} {items} via {fulfillment.carrier}: {numbers} {marker}"


def _our_address(address: dict[str, Any]) -> dict[str, Any]:
    ours = {
        "name": " ".join(p for p in (address.get("first_name"), address.get("last_name")) if p),
        "company": address.get("company"),
        "address1": address.get("address_1"),
        "address2": address.get("address_2"),
        "city": address.get("city"),
        "province": address.get("state"),
        "zip": address.get("postcode"),
        "country_code": address.get("country"),
        "phone": address.get("phone"),
    }
    return {k: v for k, v in ours.items() if v}


def _woo_address(address: dict[str, Any]) -> dict[str, Any]:
    first, _, last = (address.get("name") or "").partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "company": address.get("company") or "",
        "address_1": address.get("address1") or "",
        "address_2": address.get("address2") or "",
        "city": address.get("city") or "",
        "state": address.get("province") or "",
        "postcode": address.get("zip") or "",
        "country": address.get("country_code") or "",
        "phone": address.get("phone") or "",
    }


# ---- the platform's declaration ---------------------------------------------------------------


class WooCommerceConnection(StrictSchema):
    store_url = site_url(required=True)
    consumer_key = secret(required=True)
    consumer_secret = secret(required=True)
    webhook_secret = secret(required=True)


class WooCommerceInstall(StrictSchema):
    """A connect link's hints: the store's address, asked on the connect page when left out."""

    store_url = site_url(metadata={"ask": "Store address"})


class WooCommerce(Platform):
    name = "woocommerce"
    label = "WooCommerce"
    connection_schema = WooCommerceConnection
    install_schema = WooCommerceInstall
    install_steps = {CALLBACK_STEP: ("POST",)}
    fulfillments_from_store = False  # sellers use our form; the order is also in their store
    # order.updated too: a checkout's order is often still pending when order.created fires, and
    # its payment (or cancellation) is only an update. It fires on every change of every order;
    # ingest answers one about an order it has in and routed without reading it again.
    topics = {"order.created": INGEST_ORDER, "order.updated": INGEST_ORDER}
    webhook_auth = (
        "X-WC-Webhook-Signature over the raw body; store by X-WC-Webhook-Source (host without "
        "www., port and path; any scheme)"
    )

    def store_identity(self, connection: dict[str, Any]) -> str | None:
        # None for a partner made without a connection (its owner connects the store later)
        return store_key(connection.get("store_url") or "")

    def adapter(
        self, partner: dict[str, Any], port: PlatformPort, config: Settings
    ) -> WooCommerceAdapter:
        return WooCommerceAdapter(partner["connection"], port, config)

    # ---- connecting a store: the key flow (API.md "Store connections (install)") ------------

    def begin_install(
        self, link: ConnectLink, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """To the store's grant page, `user_id` a nonce bound to the link."""
        store_url = normalize_store_url(link.hints["store_url"])
        nonce = port.new_state(link, {"store_url": store_url})
        return InstallAnswer(302, redirect=authorize_url(store_url, nonce, config.public_url))

    def install_step(
        self, step: str, request: InstallRequest, port: InstallPort, config: Settings
    ) -> InstallAnswer:
        """The store POSTs the key its owner approved. Answered exactly 200 once it is kept:
        any other answer makes WooCommerce delete the key and show its owner an error
        (WC_Auth::post_consumer_data, maybe_delete_key), so a refusal leaves nothing behind
        on either side. `user_id` must be a nonce we gave for an open link, once."""
        if step != CALLBACK_STEP:
            return InstallAnswer(404, body="")
        try:
            keys = read_key_callback(request.raw)
        except ValueError as error:
            port.count("install_refused_woocommerce")
            return InstallAnswer(400, body=f"refused: {error}")
        taken = port.take_state(keys["user_id"])
        if taken is None:
            port.count("install_refused_woocommerce")
            return InstallAnswer(403, body="refused: unknown or used user_id")
        link, data = taken
        connection = {
            "store_url": data["store_url"],
            "consumer_key": keys["consumer_key"],
            "consumer_secret": keys["consumer_secret"],
            # The secret of the hooks the gateway makes for this store (ensure_webhooks);
            # WooCommerce's key flow gives none.
            "webhook_secret": secrets.token_urlsafe(32),
            "installed": True,
        }
        # The keys must open the store the link was started for: a key pair made up, or made
        # in another store, claims nothing (one call; a refusal leaves nothing on either side).
        try:
            WooCommerceAdapter(connection, port, config).call(
                "GET", "/wp-json/wc/v3/webhooks?per_page=1"
            )
        except PlatformError as error:
            port.count("install_refused_woocommerce")
            return InstallAnswer(403, body=f"refused: the keys do not open the store ({error})")
        try:
            port.complete(link, connection)
        except InstallRefused as refused:
            port.count("install_refused_woocommerce")
            return InstallAnswer(409, body=f"refused: {refused}")
        return InstallAnswer(200, body="")

    def is_ping(self, call: WebhookCall) -> bool:
        # WooCommerce's save-time ping: a form body `webhook_id=N` and no X-WC-* headers.
        return (
            "X-WC-Webhook-Source" not in call.headers
            and call.mimetype == "application/x-www-form-urlencoded"
            and call.form().get("webhook_id", "").isdigit()
        )

    def webhook_store(self, call: WebhookCall) -> str | None:
        return store_key(call.header("X-WC-Webhook-Source"))

    def verify_webhook(
        self, connection: dict[str, Any], call: WebhookCall, config: Settings
    ) -> bool:
        return verify_webhook(
            connection.get("webhook_secret", ""), call.raw, call.header("X-WC-Webhook-Signature")
        )

    def delivery_id(self, call: WebhookCall) -> str | None:
        delivery = call.header("X-WC-Webhook-Delivery-ID")
        if not delivery:
            return None
        # WooCommerce derives the delivery id from the webhook id and the current second, so
        # two orders in one second share it: the resource and its version make the key unique.
        body = call.body()
        version = body.get("date_modified_gmt") or ""
        return f"{delivery}:{self.topic(call)}:{body.get('id')}:{version}"

    def topic(self, call: WebhookCall) -> str:
        return call.header("X-WC-Webhook-Topic")

    def order_ref(self, topic: str, call: WebhookCall) -> str | None:
        ref = call.body().get("id")
        return None if ref is None else str(ref)


register(WooCommerce())
