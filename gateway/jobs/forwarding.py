"""Forward fulfillments, and the shipped notice, to the buyer: its store or its callback URL."""

from __future__ import annotations

from dataclasses import replace

from gateway import callbacks
from gateway.api.schemas import fulfillment_json, order_json
from gateway.jobs import ANNOUNCE_SHIPPED, FORWARD_FULFILLMENT, JOB_OPTIONS, context
from gateway.jobs.attempts import DeliveryFailed, Sent, attempt
from gateway.orders import Delivery, Order
from gateway.store import JobSpec


def forward_fulfillment(order_id: str, fulfillment_id: str) -> str:
    """Deliver one fulfillment to the buyer once; reschedules itself on failure."""
    config, store = context()
    order = store.order(order_id)
    fulfillment = order.fulfillment(fulfillment_id) if order else None
    if fulfillment is None or fulfillment.delivery.state != "pending":
        return "nothing to do"

    def send(order: Order) -> Sent:
        buyer = store.partner(order.buyer_id)
        if buyer["platform"] != "none":
            raise DeliveryFailed(f"forwarding to {buyer['platform']} stores is not available yet")
        if not buyer.get("callback_url"):
            return Sent(None, "no callback URL; the buyer polls the API")
        data = {"order": order_json(order), "fulfillment": fulfillment_json(order, fulfillment_id)}
        event_id = f"evt_{fulfillment_id}_created"
        body = callbacks.event_body("fulfillment.created", data)
        callbacks.post_event(
            buyer["callback_url"],
            buyer["event_signing_secret"],
            event_id,
            body,
            config.http_timeout,
        )
        return Sent(event_id, f"sent to the buyer's callback URL as {event_id}")

    return attempt(
        store,
        order_id,
        f"forward:{fulfillment_id}",
        send,
        get=lambda o: o.fulfillment(fulfillment_id).delivery,
        put=lambda o, d: _set_fulfillment_delivery(o, fulfillment_id, d),
        what=f"fulfillment {fulfillment_id}",
        retry=JobSpec(FORWARD_FULFILLMENT, (order_id, fulfillment_id), options=JOB_OPTIONS),
        schedule=config.delivery_retry_schedule,
    )


def announce_shipped(order_id: str) -> str:
    """Tell the buyer the order is shipped (the `order.shipped` event) once."""
    config, store = context()
    order = store.order(order_id)
    if order is None or order.shipped_notice is None or order.shipped_notice.state != "pending":
        return "nothing to do"

    def send(order: Order) -> Sent:
        buyer = store.partner(order.buyer_id)
        if buyer["platform"] != "none":
            raise DeliveryFailed(f"forwarding to {buyer['platform']} stores is not available yet")
        if not buyer.get("callback_url"):
            return Sent(None, "no callback URL; the buyer polls the API")
        event_id = f"evt_{order_id}_shipped"
        body = callbacks.event_body("order.shipped", {"order": order_json(order)})
        callbacks.post_event(
            buyer["callback_url"],
            buyer["event_signing_secret"],
            event_id,
            body,
            config.http_timeout,
        )
        return Sent(event_id, f"sent to the buyer's callback URL as {event_id}")

    return attempt(
        store,
        order_id,
        f"shipped:{order_id}",
        send,
        get=lambda o: o.shipped_notice,
        put=lambda o, d: replace(o, shipped_notice=d),
        what="the shipped notice",
        retry=JobSpec(ANNOUNCE_SHIPPED, (order_id,), options=JOB_OPTIONS),
        schedule=config.delivery_retry_schedule,
    )


def _set_fulfillment_delivery(order: Order, fulfillment_id: str, delivery: Delivery) -> Order:
    fulfillments = [
        replace(f, delivery=delivery) if f.id == fulfillment_id else f for f in order.fulfillments
    ]
    return replace(order, fulfillments=fulfillments)
