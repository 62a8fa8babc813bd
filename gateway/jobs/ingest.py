"""Orders from a buyer's store: read the order, split its lines by seller, store one order each;
route each once the store says it is paid and gives its shipping address."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.delivery import ConnectionDown
from gateway.jobs import JOB_OPTIONS, ROUTE_ORDER, context
from gateway.model import CANCELLED, Order
from gateway.orders import WAITING, hold, new_order, recheck_waiting, split_by_seller, waiting_for
from gateway.platforms import adapter_for
from gateway.platforms.base import StoreOrder
from gateway.settings import Settings
from gateway.store import Change, JobSpec, Store, event

log = logging.getLogger(__name__)


def ingest_order(buyer_id: str, ref: str) -> list[str]:
    """Create the stored orders for a buyer store's order once, and route them once it is paid;
    returns the ids of the orders it created.

    The webhook body is only a hint: the order is read again from the store. A second run (a
    re-delivery, a payment or cancellation webhook, a reconciliation) finds each seller's order
    by the buyer's ref and adds none; it releases an order that waits once nothing is missing,
    and ends one cancelled first. An order ingested whose routing does not wait costs no read.
    """
    config, store = context()
    buyer = store.partner(buyer_id)
    if buyer is None:
        return []
    waiting = _waiting_orders(store, buyer_id, ref)
    if not waiting and all(store.buyer_refs_seen(buyer_id, [ref])):
        return []  # in, and routed: nothing a new read could change
    try:
        store_order = adapter_for(buyer, store, config).read_order(ref)
    except ConnectionDown as down:  # the reconciliation reads it once the store is back
        log.info("buyer %s order %s: %s", buyer_id, ref, down)
        return []
    if store_order is None:
        log.info("buyer %s has no order %s any more", buyer_id, ref)
        return []
    for order_id in waiting:
        _recheck(store, order_id, store_order)
    stored = []
    # Cancelled before we saw it: never routed. Placed before the buyer connected (as the
    # reconciliation counts it), and named now by an update webhook: the merchant dealt with
    # it without us, and it does not become ours.
    if store_order.payment != CANCELLED and not _placed_before(buyer, store_order, config):
        stored = _store_new_orders(store, buyer, store_order)
    store.mark_buyer_ref_seen(buyer_id, store_order.ref)
    return stored


def _placed_before(buyer: dict, store_order: StoreOrder, config: Settings) -> bool:
    """True for a store order created before the buyer connected, less the reconciliation's
    overlap (the earliest creation it lists)."""
    if store_order.created_at is None:
        return False
    connected = datetime.fromisoformat(buyer["created_at"])
    return datetime.fromisoformat(store_order.created_at) < connected - timedelta(
        seconds=config.reconcile_overlap
    )


def _waiting_orders(store: Store, buyer_id: str, ref: str) -> list[str]:
    """The buyer's orders from this store order whose routing waits."""
    return [
        order_id
        for order_id in store.waiting_orders(buyer_id)
        if (order := store.order(order_id)) is not None and order.buyer_order_ref == ref
    ]


def _recheck(store: Store, order_id: str, store_order: StoreOrder) -> None:
    def decide(current: Order) -> Change | None:
        changed = recheck_waiting(
            current, store_order.payment, store_order.shipping_address, store_order.email
        )
        if changed is None:
            return None
        order, note = changed
        released = order.routing.state == "pending"
        jobs = [JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)] if released else []
        return Change(order=order, events=[event("order.waiting", note)], jobs=jobs)

    store.change_order(order_id, decide)


def _store_new_orders(store: Store, buyer: dict, store_order: StoreOrder) -> list[str]:
    stored = []
    for seller_id, lines in split_by_seller(store_order.lines, store.sku_map(buyer["id"])).items():
        if store.order_id_by_buyer_ref(buyer["id"], seller_id, store_order.ref):
            continue
        order = new_order(
            buyer["id"],
            seller_id,
            store_order.ref,
            [
                (line.sku, seller_sku, line.title, line.quantity, line.ref)
                for line, seller_sku in lines
            ],
            store_order.shipping_address,
            store_order.email,
        )
        events = [
            event(
                "order.created",
                f"Order {store_order.ref} received from the buyer's {buyer['platform']} store.",
            )
        ]
        jobs = [JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)]
        reason = waiting_for(store_order.payment, store_order.shipping_address)
        if reason is not None:
            order, jobs = hold(order, reason), []
            events.append(event("order.waiting", WAITING[reason], level="warning"))
        stored.append(store.add_order(order, events, jobs).id)
        store.count("orders_ingested")
    return stored
