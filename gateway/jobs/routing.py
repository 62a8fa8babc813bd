"""Pass a new order to its seller: create it in their store, or email them a signed link."""

from __future__ import annotations

import smtplib
from dataclasses import replace

from gateway import links, mail, platforms
from gateway.delivery import DeliveryFailed
from gateway.jobs import JOB_OPTIONS, ROUTE_ORDER, context
from gateway.jobs.attempts import Sent, attempt
from gateway.model import Order
from gateway.platforms import adapter_for
from gateway.settings import Settings
from gateway.store import Change, JobSpec, Store, attempt_lock, event


def route_order(order_id: str) -> str:
    """Route the order to its seller once; reschedules itself on failure."""
    config, store = context()

    def send(order: Order) -> Sent:
        seller = store.partner(order.seller_id)
        platform = platforms.get(seller["platform"])
        notes = []
        ref = None
        if platform.has_store:
            ref = order.seller_order_ref or _create_in_store(store, config, order, seller)
            notes.append(f"order {ref} is in the seller's {platform.name} store")
        if not platform.fulfillments_from_store:  # they fulfil through our form: send the link
            notes.append(_email_seller(config, store, order, seller))
        return Sent(ref, "; ".join(notes))

    return attempt(
        store,
        order_id,
        attempt_lock(order_id, "route"),
        send,
        get=lambda o: o.routing,
        put=lambda o, d: replace(o, routing=d),
        what="routing to the seller",
        retry=JobSpec(ROUTE_ORDER, (order_id,), options=JOB_OPTIONS),
        schedule=config.mail_retry_schedule,
        audience="seller",  # its notes and errors name the seller's address, outbox, SMTP
    )


def _create_in_store(store: Store, config: Settings, order: Order, seller: dict) -> str:
    """Create the order in the seller's store and keep its ids at once, so a retry (after the
    email failed, say) never creates it twice."""
    created = adapter_for(seller, store, config).create_order(order)

    def keep_refs(current: Order) -> Change:
        lines = [replace(li, seller_ref=created.line_refs.get(li.id)) for li in current.line_items]
        note = f"Created as order {created.ref} in the seller's {seller['platform']} store."
        return Change(
            order=replace(current, seller_order_ref=created.ref, line_items=lines),
            events=[event("order.created_in_seller_store", note)]
            + [event("order.seller_store_note", n, level="warning") for n in created.notes],
        )

    store.change_order(order.id, keep_refs)
    return created.ref


def _email_seller(config: Settings, store: Store, order: Order, seller: dict) -> str:
    link = links.order_link(config, store, order.id, "seller", seller["id"])
    lines = "\n".join(f"  {li.quantity} x {li.seller_sku}  {li.title}" for li in order.line_items)
    text = (
        f"Hello {seller['name']},\n\n"
        f"You have a new order ({order.buyer_order_ref}) to ship:\n\n{lines}\n\n"
        f"Open the order page to see the address and record what you ship:\n{link['url']}\n\n"
        f"This link is yours alone and works until {link['expires_at']}.\n"
    )
    message = mail.compose(
        config, seller["email"], f"New order {order.buyer_order_ref} to ship", text
    )
    try:
        where = mail.send(config, message)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"email not sent: {type(error).__name__}: {error}") from error
    return f"emailed the order link to {seller['email']} ({where})"
