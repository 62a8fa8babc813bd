"""The console's orders: a list with filters, "needs attention" and search; one order with
every delivery's attempts and errors; resync, retry, correct and revoke, each a form (CSRF)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError

from gateway import links, platforms, tracking
from gateway.api.schemas import CorrectionIn, flatten
from gateway.console import admin
from gateway.errors import ApiError
from gateway.jobs import FORWARD_FULFILLMENT, JOB_OPTIONS, delivery_queue
from gateway.jobs.reconcile import reopen_failed, resync_jobs
from gateway.manual import correct_fulfillment
from gateway.model import Order, deliveries
from gateway.orders import (
    DELIVERY_LABELS,
    fulfilled_quantities,
    needs_attention,
    not_released,
    retry_failed_delivery,
)
from gateway.people import operator_only
from gateway.runtime import settings, store
from gateway.store import Change, JobSpec, event

PAGE_SIZE = 50
STATUSES = ("unshipped", "shipped")
OTHER = "Other"
CURSOR = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z\|ord_[A-Za-z0-9]+")  # created_at|order id


def _down_partners(partners: dict[str, dict[str, Any]]) -> set[str]:
    """The partners whose store connection can't be used now: their work waits on it."""
    return {
        pid
        for pid, partner in partners.items()
        if platforms.get(partner["platform"]).has_store
        and platforms.connection_status(partner) != platforms.base.CONNECTED
    }


def _partners() -> dict[str, dict[str, Any]]:
    every = (store().partner(pid) for pid in store().partner_ids())
    return {p["id"]: p for p in every if p}


@admin.get("/orders")
def orders():
    """Orders, newest first, 50 a page; by status, partner, those that need attention; `q`
    finds one by our id, either order ref or a tracking number (exactly, any case)."""
    args = request.args
    status = args.get("status", "") if args.get("status") in STATUSES else ""
    partners = _partners()
    partner = args.get("partner", "") if args.get("partner") in partners else ""
    attention = args.get("attention") == "1"
    q = args.get("q", "").strip()
    cursor = args.get("cursor") if CURSOR.fullmatch(args.get("cursor", "")) else None
    now, down = datetime.now(UTC), _down_partners(partners)

    def keep(order: Order) -> bool:
        if status and order.status != status:
            return False
        if partner and partner not in (order.buyer_id, order.seller_id):
            return False
        return not attention or bool(needs_attention(order, now, down))

    if q:
        found = [o for o in (store().order(i) for i in store().find_orders(q)) if o and keep(o)]
        if len(found) == 1 and not cursor:
            return redirect(url_for("admin.order", order_id=found[0].id), code=303)
        shown = sorted(found, key=lambda o: (o.created_at, o.id), reverse=True)
        next_cursor = None
    else:
        shown, next_cursor = store().orders_page(partner or None, keep, PAGE_SIZE, cursor)
    filters = {"status": status, "partner": partner, "attention": "1" if attention else "", "q": q}
    next_url = None
    if next_cursor:
        query = {k: v for k, v in filters.items() if v}
        next_url = url_for("admin.orders", **query, cursor=next_cursor)
    return render_template(
        "console_orders.html",
        rows=[(o, needs_attention(o, now, down)) for o in shown],
        partners=partners,
        filters=filters,
        statuses=STATUSES,
        next_url=next_url,
        searched=bool(q),
    )


def _order_or_404(order_id: str) -> Order:
    order = store().order(order_id)
    if order is None:
        abort(404)
    return order


def _page(order: Order, status: int = 200, correcting: str | None = None, errors=None, form=None):
    partners = {pid: store().partner(pid) for pid in (order.buyer_id, order.seller_id)}
    down = _down_partners({k: v for k, v in partners.items() if v})
    done = fulfilled_quantities(order)
    rows = [
        (name, DELIVERY_LABELS.get(name) or f"fulfillment {name.partition(':')[2]}", delivery)
        for name, delivery in deliveries(order).items()
    ]
    html = render_template(
        "console_order.html",
        order=order,
        buyer=partners[order.buyer_id],
        seller=partners[order.seller_id],
        lines=[(li, done[li.id], li.quantity - done[li.id]) for li in order.line_items],
        deliveries=rows,
        attention=needs_attention(order, datetime.now(UTC), down),
        waiting=not_released(order),
        timeline=list(reversed(store().timeline(order.id))),
        timeline_dropped=store().timeline_dropped(order.id),
        timeline_cap=store().timeline_cap,
        carriers=[*tracking.CARRIERS, OTHER],
        correcting=correcting,
        errors=errors or {},
        form=form or {},
        csrf=generate_csrf(),
    )
    return html, status


@admin.get("/orders/<order_id>")
def order(order_id: str):
    """The order page's content for the operator, every delivery's attempts and errors, the
    whole timeline, and the forms that act on it."""
    return _page(_order_or_404(order_id))


def _operator_email() -> str:
    """Who sends the form (its CSRF token checked and counted by the console's guard)."""
    return operator_only().email


def _back(order_id: str):
    return redirect(url_for("admin.order", order_id=order_id), code=303)


@admin.post("/orders/<order_id>/resync")
def resync(order_id: str):
    """Read the seller store's fulfillments now and retry failed deliveries, as the API's."""
    email = _operator_email()
    current = _order_or_404(order_id)
    seller = store().partner(current.seller_id)
    jobs = resync_jobs(current, seller["platform"])

    def decide(order: Order) -> Change:
        change = reopen_failed(store(), order, jobs)
        change.events[0]["message"] += f" ({email}, in the console)"
        return change

    done = store().resync_order(order_id, settings().resync_cooldown, decide)
    if done is not None and done.result:
        flash(f"A resync ran moments ago; the next one is possible in {done.result}s.", "error")
    else:
        flash("Resync started: the seller's store is read again; failed deliveries retried.", "ok")
    return _back(order_id)


@admin.post("/orders/<order_id>/fulfillments/<fulfillment_id>/retry")
def retry(order_id: str, fulfillment_id: str):
    """A failed delivery of a fulfillment to the buyer, pending again with attempts from 0."""
    email = _operator_email()
    current = _order_or_404(order_id)
    if current.fulfillment(fulfillment_id) is None:
        abort(404)
    queue = delivery_queue(store(), current.buyer_id)

    def decide(order: Order) -> Change | None:
        reopened = retry_failed_delivery(order, fulfillment_id)
        if reopened is None:
            return None
        note = f"{email} retried the failed delivery of fulfillment {fulfillment_id}."
        job = JobSpec(
            FORWARD_FULFILLMENT, (order_id, fulfillment_id), options=JOB_OPTIONS, queue=queue
        )
        return Change(order=reopened, events=[event("delivery.retried", note)], jobs=[job])

    if store().change_order(order_id, decide) is None:
        flash("Only a failed delivery can be retried; this one has not failed.", "error")
    else:
        flash("Delivery retried: its attempts start again from 0.", "ok")
    return _back(order_id)


@admin.post("/orders/<order_id>/fulfillments/<fulfillment_id>/correct")
def correct(order_id: str, fulfillment_id: str):
    """Correct a fulfillment's tracking (also after Shipped) with the API's own checks; the
    refusals beside the fields."""
    email = _operator_email()
    current = _order_or_404(order_id)
    if current.fulfillment(fulfillment_id) is None:
        abort(404)
    form = request.form
    carrier = form.get("carrier", "").strip()
    if carrier == OTHER:
        carrier = form.get("carrier_other", "").strip()
    payload = {
        "carrier": carrier,
        "tracking_numbers": [n.strip() for n in form.get("tracking_numbers", "").splitlines()],
        "tracking_urls": form.get("tracking_urls", "").split(),
        "reason": " ".join(form.get("reason", "").split()),  # one line, as the API takes it
    }
    payload["tracking_numbers"] = [n for n in payload["tracking_numbers"] if n]
    try:
        loaded = CorrectionIn().load(payload)
        correct_fulfillment(store(), order_id, fulfillment_id, loaded, email)
    except ValidationError as error:
        errors = _by_field(payload, flatten(error.messages))
    except ApiError as refusal:
        if refusal.status != 422:
            flash(refusal.message, "error")
            return _back(order_id)
        errors = _by_field(payload, refusal.details)
    else:
        flash("Tracking corrected; the buyer's store gets the update.", "ok")
        return _back(order_id)
    return _page(store().order(order_id), 422, fulfillment_id, errors, form)


def _by_field(payload: dict[str, Any], details: dict[str, list[str]]) -> dict[str, list[str]]:
    """The API's error paths (tracking_numbers.1) as the form's fields, naming the value."""
    errors: dict[str, list[str]] = {}
    for path, texts in details.items():
        name, _, index = path.partition(".")
        if name in ("tracking_numbers", "tracking_urls") and index.isdigit():
            value = payload[name][int(index)]
            texts = [f"{value}: {text}" for text in texts]
        errors.setdefault(name if name in payload else "tracking_numbers", []).extend(texts)
    return errors


@admin.post("/orders/<order_id>/links/revoke")
def revoke_links(order_id: str):
    """End every link to the order page, both roles', and the sessions they opened."""
    email = _operator_email()
    if not links.revoke(store(), order_id, f"by {email}, in the console"):
        abort(404)
    flash("Every link to this order's page is revoked, for buyer and seller.", "ok")
    return _back(order_id)
