"""Forward fulfillments, and the shipped notice, to the buyer: its store or its callback URL."""

from __future__ import annotations

from dataclasses import replace

from gateway import platforms
from gateway.jobs import (
    ANNOUNCE_SHIPPED,
    FORWARD_FULFILLMENT,
    JOB_OPTIONS,
    context,
    current_queue,
)
from gateway.jobs.attempts import Sent, attempt
from gateway.model import Delivery, Order
from gateway.store import JobSpec, attempt_lock


def forward_fulfillment(order_id: str, fulfillment_id: str) -> str:
    """Deliver one fulfillment (or its latest tracking change) to the buyer once."""
    config, store = context()
    queue = current_queue()  # retries and what follows stay on the buyer's delivery queue
    sending = {"version": 0}  # the version `send` passed on, for `put`

    def due(order: Order) -> bool:
        fulfillment = order.fulfillment(fulfillment_id)
        return (
            fulfillment is not None
            and fulfillment.status == "active"
            and fulfillment.delivery.state == "pending"
        )

    def send(order: Order) -> Sent:
        current = order.fulfillment(fulfillment_id)
        sending["version"] = current.version
        buyer = store.partner(order.buyer_id)
        platform = platforms.get(buyer["platform"])
        adapter = platform.adapter(buyer, store, config)
        return Sent(*platform.forward_fulfillment(adapter, order, current))

    def put(order: Order, delivery: Delivery) -> Order:
        current = order.fulfillment(fulfillment_id)
        if delivery.state == "delivered":
            delivery = replace(delivery, delivered_version=sending["version"])
            if current.version > sending["version"]:  # tracking changed while we were sending
                delivery = replace(delivery, state="pending")
        fulfillments = [
            replace(f, delivery=delivery) if f.id == fulfillment_id else f
            for f in order.fulfillments
        ]
        return replace(order, fulfillments=fulfillments)

    return attempt(
        store,
        order_id,
        attempt_lock(order_id, f"forward:{fulfillment_id}"),
        send,
        get=lambda o: o.fulfillment(fulfillment_id).delivery,
        put=put,
        what=f"fulfillment {fulfillment_id}",
        retry=JobSpec(
            FORWARD_FULFILLMENT, (order_id, fulfillment_id), options=JOB_OPTIONS, queue=queue
        ),
        schedule=config.delivery_retry_schedule,
        audience="buyer",
        due=due,
        follow_up=lambda o: (
            [JobSpec(ANNOUNCE_SHIPPED, (order_id,), options=JOB_OPTIONS, queue=queue)]
            if notice_due(o)
            else []
        ),
    )


def announce_shipped(order_id: str) -> str:
    """Tell the buyer the order is shipped (the `order.shipped` event) once."""
    config, store = context()

    def send(order: Order) -> Sent:
        buyer = store.partner(order.buyer_id)
        platform = platforms.get(buyer["platform"])
        return Sent(*platform.mark_shipped(platform.adapter(buyer, store, config), order))

    return attempt(
        store,
        order_id,
        attempt_lock(order_id, "shipped"),
        send,
        get=lambda o: o.shipped_notice,
        put=lambda o, d: replace(o, shipped_notice=d),
        what="the shipped notice",
        retry=JobSpec(ANNOUNCE_SHIPPED, (order_id,), options=JOB_OPTIONS, queue=current_queue()),
        schedule=config.delivery_retry_schedule,
        audience="buyer",
        due=notice_due,
    )


def notice_due(order: Order) -> bool:
    """The shipped notice goes once the order is shipped and no fulfillment is still on its way
    to the buyer: the buyer hears "shipped" after the last fulfillment, not before it. Until
    then it waits without using an attempt; the forward that clears the way enqueues it."""
    return (
        order.shipped_notice is not None
        and order.shipped_notice.state == "pending"
        and not any(
            f.status == "active" and f.delivery.state == "pending" for f in order.fulfillments
        )
    )
