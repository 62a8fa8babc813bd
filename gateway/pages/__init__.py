"""The order page: reached through a signed link, usable without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError

from gateway import links, tracking
from gateway.api.schemas import FulfillmentIn, flatten
from gateway.errors import ApiError
from gateway.manual import create_manual_fulfillment
from gateway.model import UNSHIPPED, Order
from gateway.orders import fulfilled_quantities, manual_fulfillment_refusal, not_released
from gateway.pages.csrf import require_csrf
from gateway.people import signed_in
from gateway.runtime import settings, store
from gateway.store import shown_to

pages = Blueprint("pages", __name__, template_folder="templates")

OTHER = "Other"
SESSION_ORDERS = 20  # order pages a browser session keeps open at once


REFUSED = {
    links.INVALID: "The link is wrong or has expired. Ask for a new one.",
    links.EXPIRED: "This link has expired. Ask for a new one.",
    links.REVOKED: "This link was revoked, with every other link to this order. Ask for a new one.",
}


def _role(order_id: str) -> str | None:
    """The role this session holds on the order, None if none: a signed-in contact of its
    seller or buyer holds that partner's role (no link needed); else the role a link gave,
    LinkRefused (the role then forgotten) once that link has expired or been revoked."""
    person = signed_in()
    if person is not None and person.partner_ids:
        order = store().order(order_id)
        if order is not None and order.seller_id in person.partner_ids:
            return "seller"
        if order is not None and order.buyer_id in person.partner_ids:
            return "buyer"
    grant = links.Grant.from_session(order_id, (session.get("orders") or {}).get(order_id))
    if grant is None:
        return None
    try:
        links.check(store(), grant)
    except links.LinkRefused:
        session["orders"] = {k: v for k, v in session["orders"].items() if k != order_id}
        raise
    return grant.role


def _refused(refusal: links.LinkRefused):
    return render_template(
        "message.html", title="This link is not valid", text=REFUSED[refusal.reason]
    ), 403


def _page(
    order: Order,
    role: str,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    form: Any = None,
):
    seller = store().partner(order.seller_id)
    may_fulfill = (
        manual_fulfillment_refusal(role, seller["platform"]) is None
        and order.status == UNSHIPPED
        and not_released(order) is None
    )
    done = fulfilled_quantities(order)
    html = render_template(
        "order.html",
        order=order,
        role=role,
        seller=seller,
        lines=[(li, done[li.id], li.quantity - done[li.id]) for li in order.line_items],
        timeline=[e for e in reversed(store().timeline(order.id)) if shown_to(e, role)],
        timeline_dropped=store().timeline_dropped(order.id),
        timeline_cap=store().timeline_cap,
        may_fulfill=may_fulfill,
        waiting=not_released(order),
        carriers=[*tracking.CARRIERS, OTHER],
        errors=errors or {},
        form=form or {},
        csrf_token=generate_csrf(),
    )
    return html, status


@pages.get("/orders/<order_id>")
def order_page(order_id: str):
    """Show the order to the holder of its link (the token is then kept in the session)."""
    token = request.args.get("t")
    if token is not None:
        try:
            grant = links.open_link(settings(), store(), token, order_id)
        except links.LinkRefused as refusal:
            return _refused(refusal)
        opened = {k: v for k, v in (session.get("orders") or {}).items() if k != order_id}
        opened[order_id] = grant.to_session()  # the role, no longer than the link's life
        # The cookie keeps the most recent orders only, well under browsers' 4 KB.
        session["orders"] = dict(list(opened.items())[-SESSION_ORDERS:])
        return redirect(url_for("pages.order_page", order_id=order_id), code=303)
    try:
        role = _role(order_id)
    except links.LinkRefused as refusal:
        return _refused(refusal)
    order = store().order(order_id) if role else None
    if order is None:
        return render_template(
            "message.html",
            title="Open the link you were sent",
            text="This page opens from the signed link in your email.",
        ), 403
    return _page(order, role)


@pages.post("/orders/<order_id>/fulfillments")
def create_fulfillment(order_id: str):
    """The Create Fulfillment form: same checks as the API; errors shown beside the fields."""
    require_csrf()
    try:
        role = _role(order_id)
    except links.LinkRefused as refusal:
        return _refused(refusal)
    order = store().order(order_id) if role else None
    if order is None:
        abort(403)
    # Counted per person: the holder of this order's link, whatever their address.
    retry_after = store().over_limit(settings().rate_limit_person, "person", order_id, role)
    if retry_after is not None:
        text = f"Wait {retry_after} seconds, then send the form again."
        page = render_template("message.html", title="Too many requests", text=text)
        return page, 429, {"Retry-After": str(retry_after)}
    payload, errors = _payload_from_form(order)
    if not errors:
        try:
            payload = FulfillmentIn().load(payload)
        except ValidationError as error:
            errors = _by_form_field(order, payload, flatten(error.messages))
    if not errors:
        try:
            create_manual_fulfillment(store(), order, role, payload)
        except ApiError as refusal:
            if refusal.status != 422:
                flash(refusal.message, "error")
                return redirect(url_for("pages.order_page", order_id=order_id), code=303)
            errors = _by_form_field(order, payload, refusal.details)
    if errors:
        return _page(store().order(order_id), role, 422, errors, request.form)
    flash("Fulfillment recorded.", "ok")
    return redirect(url_for("pages.order_page", order_id=order_id), code=303)


def _payload_from_form(order: Order) -> tuple[dict[str, Any], dict[str, list[str]]]:
    form = request.form
    errors: dict[str, list[str]] = {}
    line_items = []
    for li in order.line_items:
        text = form.get(f"quantity-{li.id}", "").strip()
        if not text or text == "0":
            continue
        if not re.fullmatch(r"\d{1,7}", text):
            errors[f"quantity-{li.id}"] = ["Must be a whole number."]
            continue
        line_items.append({"line_item_id": li.id, "quantity": int(text)})
    carrier = form.get("carrier", "").strip()
    if carrier == OTHER:
        carrier = form.get("carrier_other", "").strip()
    payload = {
        "line_items": line_items,
        "carrier": carrier,
        "tracking_numbers": [
            n for n in re.split(r"[\s,;]+", form.get("tracking_numbers", "")) if n
        ],
        "tracking_urls": [u for u in form.get("tracking_urls", "").split() if u],
    }
    return payload, errors


def _by_form_field(
    order: Order, payload: dict[str, Any], details: dict[str, list[str]]
) -> dict[str, list[str]]:
    """API error paths (line_items.0.quantity, tracking_numbers.1) as the form's field names."""
    errors: dict[str, list[str]] = {}
    for path, texts in details.items():
        parts = path.split(".")
        name = parts[0]
        if name == "line_items" and len(parts) > 1 and parts[1].isdigit():
            line_id = payload["line_items"][int(parts[1])].get("line_item_id")
            name = f"quantity-{line_id}" if line_id else "line_items"
        elif name in ("tracking_numbers", "tracking_urls") and len(parts) > 1:
            value = payload[name][int(parts[1])]
            texts = [f"{value}: {text}" for text in texts]
        errors.setdefault(name, []).extend(texts)
    return errors


def init_app(app: Flask) -> None:
    """Register the order page, the connect pages, sign-in and the partner portal."""
    from gateway.pages import connect, portal, signin

    app.register_blueprint(pages)
    app.register_blueprint(signin.signin)
    app.register_blueprint(portal.portal)
    connect.init_app(app)
