"""Orders, their fulfillments and links to the order page."""

from __future__ import annotations

import base64
import binascii
import re

from flask import jsonify, request

from gateway import links
from gateway.api import api, load, read_json
from gateway.api.auth import Caller, authenticate, require_operator
from gateway.api.schemas import (
    CorrectionIn,
    FulfillmentIn,
    LinkIn,
    ListQuery,
    OrderIn,
    order_json,
)
from gateway.errors import ApiError, validation_failed
from gateway.jobs import JOB_OPTIONS, ROUTE_ORDER
from gateway.jobs.reconcile import reopen_failed, resync_jobs, run_now
from gateway.manual import correct_fulfillment, create_manual_fulfillment, refuse_unless_allowed
from gateway.model import Order
from gateway.orders import new_order, seller_skus
from gateway.runtime import settings, store
from gateway.store import JobSpec, event


def visible_order(caller: Caller, order_id: str) -> tuple[Order, str]:
    """The order and the caller's role on it; 404 when unknown or not the caller's."""
    order = store().order(order_id)
    role = caller.role_on(order) if order else None
    if order is None or role is None:
        raise ApiError(404, "not_found", "No such order.")
    return order, role


@api.post("/orders")
def post_order():
    """A buyer sends an order to one of its sellers; repeat-safe by buyer_order_ref."""
    caller = authenticate()
    if caller.is_operator:
        raise ApiError(403, "forbidden", "Orders are posted by the buyer, with its own key.")
    data = read_json(OrderIn())
    buyer_id = caller.partner_id
    partnership = store().partnership(buyer_id, data["seller_id"])
    if partnership is None:
        raise ApiError(403, "no_partnership", "You have no partnership with this seller.")
    existing = store().order_id_by_buyer_ref(buyer_id, data["seller_id"], data["buyer_order_ref"])
    earlier = store().repeated_order(existing) if existing else None
    if earlier is not None:
        return jsonify(order_json(earlier)), 200

    mapped, unmapped = seller_skus(
        [line["sku"] for line in data["line_items"]], partnership["skus"]
    )
    if unmapped:
        message = ["This SKU is not mapped to the seller in your partnership."]
        raise validation_failed({f"line_items.{i}.sku": message for i in unmapped})
    order = new_order(
        buyer_id,
        data["seller_id"],
        data["buyer_order_ref"],
        [
            (line["sku"], seller_sku, line.get("title"), line["quantity"], None)
            for line, seller_sku in zip(data["line_items"], mapped, strict=True)
        ],
        data["shipping_address"],
        data["customer_email"],
    )
    created = event("order.created", f"Order {order.buyer_order_ref} received through the API.")
    route = JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)
    stored = store().add_order(order, [created], [route])
    return jsonify(order_json(stored)), 201 if stored.id == order.id else 200


@api.get("/orders/<order_id>")
def get_order(order_id: str):
    """One order, to its buyer, its seller or the operator."""
    order, role = visible_order(authenticate(), order_id)
    return jsonify(order_json(order, role))


CURSOR = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z\|ord_[A-Za-z0-9]+")  # created_at|order id


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cursor) or not CURSOR.fullmatch(decoded):
        raise validation_failed({"cursor": ["Not a cursor from this API."]})
    return decoded


@api.get("/orders")
def list_orders():
    """The caller's own orders, oldest first, a page at a time."""
    caller = authenticate()
    if caller.is_operator:
        raise ApiError(403, "forbidden", "List orders with a partner's key.")
    query = load(ListQuery(), request.args.to_dict())
    orders, last = store().list_orders(
        caller.partner_id, query.get("status"), query["limit"], _decode_cursor(query.get("cursor"))
    )
    next_cursor = base64.urlsafe_b64encode(last.encode()).decode().rstrip("=") if last else None
    shown = [order_json(o, caller.role_on(o)) for o in orders]
    return jsonify({"orders": shown, "next_cursor": next_cursor})


@api.post("/orders/<order_id>/fulfillments")
def post_fulfillment(order_id: str):
    """The seller records a fulfillment (sellers whose platform takes them from our form)."""
    caller = authenticate()
    order, role = visible_order(caller, order_id)
    refuse_unless_allowed(store(), order, role)  # before the body: a buyer learns no more
    payload = read_json(FulfillmentIn())
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key and len(key) > 255:
        raise validation_failed({"Idempotency-Key": ["At most 255 characters."]})
    status, body = create_manual_fulfillment(
        store(), order, role, payload, key, settings().idempotency_ttl
    )
    return jsonify(body), status


@api.post("/orders/<order_id>/fulfillments/<fulfillment_id>/corrections")
def post_correction(order_id: str, fulfillment_id: str):
    """The operator corrects a fulfillment's tracking (also after Shipped); it reaches the
    buyer as an update."""
    require_operator(authenticate())
    payload = read_json(CorrectionIn())
    return jsonify(correct_fulfillment(store(), order_id, fulfillment_id, payload, "api")), 201


@api.post("/orders/<order_id>/links")
def post_link(order_id: str):
    """A fresh signed link to the order page for the caller's role."""
    caller = authenticate()
    order, role = visible_order(caller, order_id)
    data = read_json(LinkIn()) if request.get_data(cache=True) else {}
    if role == "operator":
        if "role" not in data:
            raise validation_failed({"role": ["The operator names the role: buyer or seller."]})
        role = data["role"]
    elif data.get("role", role) != role:
        raise ApiError(403, "forbidden", f"You are this order's {role}; ask for a {role} link.")
    partner_id = order.buyer_id if role == "buyer" else order.seller_id
    return jsonify(links.order_link(settings(), store(), order.id, role, partner_id)), 201


@api.post("/orders/<order_id>/links/revoke")
def post_revoke_links(order_id: str):
    """End every link to the order page, for both roles, and the sessions they opened."""
    caller = authenticate()
    require_operator(caller)
    if not links.revoke(store(), order_id, "by the operator's key"):
        raise ApiError(404, "not_found", "No such order.")
    return "", 204


@api.post("/orders/<order_id>/resync")
def post_resync(order_id: str):
    """Read the seller store's fulfillments now, shipped or not; retry failed deliveries.
    Another resync of the order within RESYNC_COOLDOWN seconds is coalesced into this one."""
    order, _ = visible_order(authenticate(), order_id)
    seller = store().partner(order.seller_id)
    jobs = resync_jobs(order, seller["platform"])
    done = store().resync_order(
        order.id, settings().resync_cooldown, lambda current: reopen_failed(store(), current, jobs)
    )
    if done is not None and done.result:
        body = {"status": "coalesced", "order_id": order.id, "retry_after": done.result}
        return jsonify(body), 202
    return jsonify({"status": "accepted", "order_id": order.id}), 202


@api.post("/reconcile")
def post_reconcile():
    """Run one reconciliation cycle now (operator); a cycle already running makes it a no-op."""
    require_operator(authenticate())
    job = run_now(store())
    if job is None:
        return jsonify({"job_id": None, "status": "already_running"}), 202
    return jsonify({"job_id": job.id, "status": "queued"}), 202
