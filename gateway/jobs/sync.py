"""Fulfillments from a seller's store: read them again, let the rules apply them, forward."""

from __future__ import annotations

import logging

from gateway import links, mail
from gateway.delivery import ConnectionDown
from gateway.jobs import (
    RETRIED_OPTIONS,
    TELL_SELLER_HELD,
    context,
    delivery_queue,
    passing_on,
)
from gateway.model import ObservedFulfillment, Order
from gateway.orders import apply_store_fulfillments
from gateway.platforms import adapter_for
from gateway.platforms.base import PlatformError
from gateway.store import Change, JobSpec, Store, event

log = logging.getLogger(__name__)


def sync_seller_ref(seller_id: str, seller_order_ref: str) -> str:
    """A seller store's webhook named its order: sync ours, if it is one of ours."""
    _, store = context()
    order_id = store.order_id_by_seller_ref(seller_id, seller_order_ref)
    if order_id is None:
        return "not one of our orders"
    return sync_seller(order_id)


def sync_seller(order_id: str, seen_updated_at: str | None = None) -> str:
    """Read the seller order's fulfillments and apply them, shipped or not (rule 8).

    Webhooks arrive late, twice or out of order; reading the current state makes each run
    converge on the same result, and the rules ignore what was already applied.
    """
    config, store = context()
    order = store.order(order_id)
    if order is None or not order.seller_order_ref:
        return "nothing to sync"
    seller = store.partner(order.seller_id)
    try:
        observed = adapter_for(seller, store, config).read_fulfillments(order.seller_order_ref)
    except ConnectionDown as down:  # read again once the store is connected (shipped or not:
        store.hold_for_connection(down.partner_id, order_id, "sync")  # no cycle reads shipped)
        return "waiting for the store connection"
    except PlatformError as error:
        if not error.permanent:
            raise  # RQ retries with backoff
        store.add_timeline(
            order_id,
            event(
                "sync.failed",
                f"Reading the seller's store failed: {error}",
                level="error",
                audience="seller",
            ),
        )
        return "failed"

    store.count("seller_syncs")
    outcome = apply_observed(store, order_id, seller["platform"], observed, seen_updated_at)
    store.paid_sync(order.seller_id, order_id)
    return outcome


def apply_observed(
    store: Store,
    order_id: str,
    platform: str,
    observed: list[ObservedFulfillment],
    seen_updated_at: str | None = None,
) -> str:
    """Let the rules apply what a seller's store shows; enqueue what follows, atomically."""

    def decide(current: Order) -> Change | None:
        synced = apply_store_fulfillments(current, platform, observed)
        seen_newer = bool(seen_updated_at) and (current.seller_updated_at or "") < seen_updated_at
        if not synced.changed and not seen_newer:
            return None
        if seen_newer:
            synced.order.seller_updated_at = seen_updated_at
        events = [event(kind, message, level=level) for kind, message, level in synced.notes]
        queue = delivery_queue(store, current.buyer_id)
        shipped_events, jobs = passing_on(order_id, synced.forward, synced.became_shipped, queue)
        events += shipped_events
        jobs += [
            JobSpec(TELL_SELLER_HELD, (order_id, fid), options=RETRIED_OPTIONS)
            for fid in synced.held
        ]
        result = "changed" if synced.changed else "unchanged"
        return Change(order=synced.order, events=events, jobs=jobs, result=result)

    change = store.change_order(order_id, decide)
    return change.result if change else "unchanged"


def tell_seller_held(order_id: str, fulfillment_id: str) -> str:
    """Email the seller that a fulfillment from their store is held, and why."""
    config, store = context()
    order = store.order(order_id)
    fulfillment = order.fulfillment(fulfillment_id) if order else None
    if fulfillment is None or fulfillment.status != "held":
        return "nothing to tell"
    seller = store.partner(order.seller_id)
    link = links.order_link(config, store, order.id, "seller", seller["id"])
    text = (
        f"Hello {seller['name']},\n\n"
        f"A fulfillment you recorded for order {order.buyer_order_ref} is held and was not passed "
        f"on to the buyer:\n\n  {fulfillment.held_reason}\n\n"
        "Correct its tracking in your store and it will be released automatically.\n"
        f"The order page: {link['url']}\n"
    )
    message = mail.compose(
        config, seller["email"], f"Order {order.buyer_order_ref}: fulfillment held", text
    )
    where = mail.send(config, message)
    told = f"Told the seller the fulfillment is held ({where})."
    store.add_timeline(order_id, event("seller.told", told, audience="seller"))
    return "told"
