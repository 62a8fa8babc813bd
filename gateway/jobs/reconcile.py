"""The periodic safety net: lost work (a killed worker, a dropped job) is enqueued again."""

from __future__ import annotations

import logging

from gateway.jobs import (
    ANNOUNCE_SHIPPED,
    FORWARD_FULFILLMENT,
    JOB_OPTIONS,
    PLATFORM_READ_OPTIONS,
    ROUTE_ORDER,
    SYNC_SELLER,
    context,
)
from gateway.orders import MANUAL_PLATFORMS, Order, deliveries, reopen_failed_deliveries
from gateway.store import Change, JobSpec, event

log = logging.getLogger(__name__)

LOCK = "reconcile"
LOCK_SECONDS = 14 * 60  # shorter than the 15-minute schedule, longer than any run


def job_for(order_id: str, name: str) -> JobSpec:
    """The job that carries the named delivery of an order."""
    if name == "route":
        return JobSpec(ROUTE_ORDER, (order_id,), options=JOB_OPTIONS)
    if name == "shipped":
        return JobSpec(ANNOUNCE_SHIPPED, (order_id,), options=JOB_OPTIONS)
    return JobSpec(
        FORWARD_FULFILLMENT, (order_id, name.removeprefix("forward:")), options=JOB_OPTIONS
    )


def resync_jobs(order: Order, seller_platform: str) -> list[JobSpec]:
    """A resync reads the seller's store again (where it has one)."""
    if seller_platform in MANUAL_PLATFORMS or not order.seller_order_ref:
        return []
    return [JobSpec(SYNC_SELLER, (order.id,), options=PLATFORM_READ_OPTIONS)]


def reopen_failed(order: Order, jobs: list[JobSpec]) -> Change:
    """Failed deliveries go back to pending, with a fresh set of attempts, and are enqueued."""
    reopened = reopen_failed_deliveries(order)
    names = [name for name, d in deliveries(order).items() if d.state == "failed"]
    events = [
        event(
            "order.resync",
            "Resync asked for" + (f"; retrying {len(names)} failed deliveries." if names else "."),
        )
    ]
    return Change(
        order=reopened,
        events=events,
        jobs=jobs + [job_for(order.id, name) for name in names],
    )


def reconcile() -> dict[str, int]:
    """One cycle under a Redis lock: a second scheduler or an overlapping run does nothing."""
    _, store = context()
    token = store.acquire(LOCK, LOCK_SECONDS)
    if token is None:
        log.info("reconcile: another run holds the lock; nothing to do")
        return {"skipped": 1}
    try:
        stuck = store.stuck_deliveries()
        for order_id, name in stuck:
            store.enqueue(job_for(order_id, name))
            store.postpone_stuck(order_id, name)
        store.count("reconcile_runs")
        store.count("stuck_deliveries_requeued", len(stuck))
        log.info("reconcile: enqueued %d stuck deliveries again", len(stuck))
        return {"requeued": len(stuck)}
    finally:
        store.release(LOCK, token)
