"""Orders from a buyer's store: read the order, split its lines by seller, store one order each."""

from __future__ import annotations

import logging

from gateway.jobs import JOB_OPTIONS, ROUTE_ORDER, context
from gateway.orders import new_order, split_by_seller
from gateway.platforms import adapter_for
from gateway.store import JobSpec, event

log = logging.getLogger(__name__)


def ingest_order(buyer_id: str, ref: str) -> list[str]:
    """Create the stored orders for a buyer store's order once; returns their ids.

    The webhook body is only a hint: the order is read again from the store. A second run (a
    re-delivery, a reconciliation) finds each seller's order by the buyer's ref and adds none.
    """
    config, store = context()
    buyer = store.partner(buyer_id)
    if buyer is None:
        return []
    store_order = adapter_for(buyer, store, config).read_order(ref)
    if store_order is None:
        log.info("buyer %s has no order %s any more", buyer_id, ref)
        return []
    sku_map = store.sku_map(buyer_id)
    stored = []
    for seller_id, lines in split_by_seller(store_order.lines, sku_map).items():
        if store.order_id_by_buyer_ref(buyer_id, seller_id, store_order.ref):
            continue
        order = new_order(
            buyer_id,
            seller_id,
            store_order.ref,
            [
                (line.sku, seller_sku, line.title, line.quantity, line.ref)
                for line, seller_sku in lines
            ],
            store_order.shipping_address,
            store_order.email,
        )
        created = event(
            "order.created",
            f"Order {store_order.ref} received from the buyer's {buyer['platform']} store.",
        )
        route = JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)
        stored.append(store.add_order(order, [created], [route]).id)
        store.count("orders_ingested")
    store.mark_buyer_ref_seen(buyer_id, store_order.ref)
    return stored
