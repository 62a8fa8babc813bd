"""The periodic safety net: lost work (a killed worker, a dropped job) is enqueued again."""

from __future__ import annotations

import logging

from gateway.jobs import ANNOUNCE_SHIPPED, FORWARD_FULFILLMENT, JOB_OPTIONS, ROUTE_ORDER, context
from gateway.store import JobSpec

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
