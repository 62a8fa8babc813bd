"""The partner portal (/portal): a signed-in partner contact's orders, each opening the order
page with the partner's role (no token in the link), and its store connection's health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request

from gateway import connect, platforms
from gateway.api.partners import partner_view
from gateway.api.schemas import PartnerOut
from gateway.model import SHIPPED, UNSHIPPED, Order
from gateway.orders import not_released
from gateway.pages.csrf import require_csrf
from gateway.people import Person, limit_forms, partner_contact
from gateway.runtime import settings, store

portal = Blueprint("portal", __name__, url_prefix="/portal", template_folder="templates")

PAGE = 50
STATUSES = {
    "": "Waiting for you",  # a seller's unshipped orders released to it; a buyer's, all
    UNSHIPPED: "Unshipped",
    SHIPPED: "Shipped",
    "all": "All",
}


def role_of(person: Person, order: Order) -> str:
    """The role the person's partner holds on the order (the seller's, if it holds both)."""
    return "seller" if order.seller_id in person.partner_ids else "buyer"


def waits_for(person: Person, order: Order) -> bool:
    """The default list: a seller's orders that wait for its fulfillment (unshipped and
    released to it); every order of a buyer."""
    if role_of(person, order) == "buyer":
        return True
    return order.status == UNSHIPPED and not_released(order) is None


@portal.get("/")
def index():
    """The portal starts at the orders."""
    return redirect("/portal/orders", code=303)


@portal.get("/orders")
def orders():
    """The orders of every partner whose contact is the signed-in address, newest first."""
    person = partner_contact()
    status = request.args.get("status", "")
    errors: dict[str, list[str]] = {}
    if status not in STATUSES:
        errors["status"] = [f"Choose one of: {', '.join(s or 'the default' for s in STATUSES)}."]
        status = ""
    if status == "":
        keep = lambda order: waits_for(person, order)  # noqa: E731
    elif status == "all":
        keep = lambda order: True  # noqa: E731
    else:
        keep = lambda order: order.status == status  # noqa: E731
    found, next_cursor = store().newest_orders(
        person.partner_ids, keep, PAGE, request.args.get("before") or None
    )
    names = {pid: (store().partner(pid) or {}).get("name", pid) for pid in person.partner_ids}
    rows = [_row(person, order, names) for order in found]
    return render_template(
        "portal_orders.html",
        rows=rows,
        status=status,
        statuses=STATUSES,
        errors=errors,
        next_cursor=next_cursor,
    ), (422 if errors else 200)


def _row(person: Person, order: Order, names: dict[str, str]) -> dict[str, Any]:
    role = role_of(person, order)
    ours = order.seller_id if role == "seller" else order.buyer_id
    other = store().partner(order.buyer_id if role == "seller" else order.seller_id) or {}
    return {
        "order": order,
        "role": role,
        "partner": names.get(ours, ours),
        "other": other.get("name", ""),
        "ref": order.seller_order_ref if role == "seller" and order.seller_order_ref else None,
        "waiting": not_released(order),
    }


def health(partner: dict[str, Any]) -> dict[str, Any]:
    """What a person is shown of a partner's store connection (no secret among it)."""
    shown = PartnerOut().dump(partner_view(partner))
    declared = platforms.get(partner["platform"])
    return {
        **shown,
        "label": declared.label,
        "has_store": declared.has_store,
        # Connect links need the platform's install flow (API.md "Store connections").
        "connectable": declared.install_schema is not None,
    }


@portal.get("/connection")
def connection():
    """Each of the contact's partners' store connection, with a (re)connect button."""
    person = partner_contact()
    partners = [store().partner(pid) for pid in person.partner_ids]
    return render_template(
        "portal_connection.html", partners=[health(p) for p in partners if p is not None]
    )


@portal.post("/connection/<partner_id>")
def reconnect(partner_id: str):
    """A fresh connect link for the store, and the browser sent on to it."""
    person = partner_contact()
    require_csrf()
    limit_forms(person)
    partner = store().partner(partner_id) if partner_id in person.partner_ids else None
    if partner is None or platforms.get(partner["platform"]).install_schema is None:
        abort(404)
    link = connect.fresh_link(settings(), store(), partner)
    return redirect(link["url"], code=303)
