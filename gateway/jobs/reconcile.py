"""The periodic safety net: lost work (a killed worker, a dropped job) is enqueued again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from rq.job import Job

from gateway import platforms
from gateway.delivery import ConnectionDown
from gateway.jobs import (
    ANNOUNCE_SHIPPED,
    FORWARD_FULFILLMENT,
    INGEST_ORDER,
    JOB_OPTIONS,
    RECONCILE_STORE,
    RETRIED_OPTIONS,
    ROUTE_ORDER,
    SYNC_SELLER,
    context,
    delivery_queue,
)
from gateway.jobs.connections import check_webhooks
from gateway.jobs.sync import apply_observed
from gateway.model import Order, deliveries, iso_utc
from gateway.orders import reopen_failed_deliveries
from gateway.platforms import adapter_for
from gateway.platforms.base import ChangedOrder
from gateway.settings import Settings
from gateway.store import Change, JobSpec, Store, event

log = logging.getLogger(__name__)

LOCK = "reconcile"
WAITING_RECHECK_DAYS = 30  # how long a waiting order is read again each cycle
LOCK_SECONDS = 14 * 60  # shorter than the 15-minute schedule, longer than any run


def job_for(store: Store, order: Order, name: str) -> JobSpec:
    """The job that carries the named delivery of an order (to the buyer: on its queue)."""
    if name == "route":
        return JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)
    if name == "sync":  # a read of the seller's store held while it could not be used
        return JobSpec(SYNC_SELLER, (order.id,), options=RETRIED_OPTIONS)
    queue = delivery_queue(store, order.buyer_id)
    if name == "shipped":
        return JobSpec(ANNOUNCE_SHIPPED, (order.id,), options=JOB_OPTIONS, queue=queue)
    fulfillment_id = name.removeprefix("forward:")
    return JobSpec(
        FORWARD_FULFILLMENT, (order.id, fulfillment_id), options=JOB_OPTIONS, queue=queue
    )


def resync_jobs(order: Order, seller_platform: str) -> list[JobSpec]:
    """A resync reads the seller's store again (where it has one)."""
    if not platforms.get(seller_platform).fulfillments_from_store or not order.seller_order_ref:
        return []
    return [JobSpec(SYNC_SELLER, (order.id,), options=RETRIED_OPTIONS)]


def reopen_failed(store: Store, order: Order, jobs: list[JobSpec]) -> Change:
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
        jobs=jobs + [job_for(store, order, name) for name in names],
    )


def reconcile(kind: str = "scheduled") -> dict[str, int]:
    """One cycle under a Redis lock (a second scheduler or an overlapping run does nothing):
    enqueue stuck deliveries again, and one job per store connection, so workers share it.
    `kind` (scheduled, manual) is what /admin/reconcile shows of the cycle."""
    _, store = context()

    def enqueue(partner_id: str, cycle: str) -> None:
        store.enqueue(JobSpec(RECONCILE_STORE, (partner_id, cycle), options=RETRIED_OPTIONS))

    done = run_cycle(store, enqueue, kind)
    if done is None:
        log.info("reconcile: another run holds the lock; nothing to do")
        return {"skipped": 1}
    log.info(
        "reconcile: %d stuck deliveries, %d connections", done["requeued"], done["connections"]
    )
    return done


def run_now(store: Store) -> Job | None:
    """Enqueue a cycle now, as the schedule would (the API's and the console's "run now");
    None when a cycle is running already."""
    if any(store.lock_held(name) for name in reconcile_locks(store)):
        return None
    return store.queue.enqueue(reconcile, "manual", **JOB_OPTIONS)


def run_cycle(
    store: Store, per_connection: Callable[[str, str], None], kind: str
) -> dict[str, int] | None:
    """The cycle the cron job and `flask reconcile` share: under the lock (None when another run
    holds it), enqueue stuck deliveries again, hand each store connection to `per_connection`
    (with the cycle's id, under which its job records what it did), and count the run."""
    token = store.acquire(LOCK, LOCK_SECONDS)
    if token is None:
        return None
    try:
        stuck = requeue_stuck(store)
        connections = store.connections()
        cycle = store.start_cycle(kind, len(connections), stuck)
        for partner_id in connections:
            per_connection(partner_id, cycle)
        store.count("reconcile_runs")
        store.count("stuck_deliveries_requeued", stuck)
        store.set_gauge("reconcile_last_run_timestamp", time.time())
        return {"requeued": stuck, "connections": len(connections)}
    finally:
        store.release(LOCK, token)


def reconcile_locks(store: Store) -> list[str]:
    """The cycle's lock and each store connection's: any held means a cycle is running."""
    return [LOCK, *(f"{LOCK}:{partner_id}" for partner_id in store.connections())]


def watch_deliveries() -> int:
    """Every few seconds (jobs/schedule.py): enqueue again the deliveries whose job was lost, so
    a killed worker, a Redis restart or a stopped scheduler delays a delivery by seconds, not
    until the next cycle (DESIGN.md targets)."""
    _, store = context()
    requeued = requeue_stuck(store)
    if requeued:
        store.count("stuck_deliveries_requeued", requeued)
        log.info("watchdog: %d lost deliveries enqueued again", requeued)
    return requeued


def requeue_stuck(store: Store) -> int:
    """Enqueue again the deliveries whose job was lost; how many."""
    stuck = store.stuck_deliveries()
    for order_id, name in stuck:
        order = store.order(order_id)
        if order is not None:
            store.enqueue(job_for(store, order, name))
        store.postpone_stuck(order_id, name)
    return len(stuck)


class CallCounter:
    """The store as an adapter's port, counting the platform calls of one store's cycle."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter on /metrics; a platform call is counted for the cycle too."""
        if name.startswith("platform_calls_"):
            self.calls += amount
        self.store.count(name, amount)


def reconcile_store(partner_id: str, cycle: str | None = None) -> dict[str, int]:
    """Ask one store what changed since its cursors; sync and ingest what was missed.

    Its cost follows what changed: one call per page of changed orders (plus one per order
    where the listing can't carry its fulfillments), and a shipped order is never read (rule 3).
    Each cursor moves only after its page is applied, so a run that fails half-way resumes
    where it was. What it did (calls, orders changed) is added to its `cycle`'s record.
    """
    config, store = context()
    port = CallCounter(store)
    done: dict[str, int] = {}
    failed = True
    try:
        done = _reconcile_store(config, store, port, partner_id)
        failed = False
        return done
    finally:
        if cycle is not None:
            store.cycle_part_done(cycle, partner_id, port.calls, done.get("changed", 0), failed)


def _reconcile_store(
    config: Settings, store: Store, port: CallCounter, partner_id: str
) -> dict[str, int]:
    partner = store.partner(partner_id)
    if partner is None:
        return {}
    token = store.acquire(f"{LOCK}:{partner_id}", LOCK_SECONDS)
    if token is None:
        return {"skipped": 1}
    started = time.monotonic()
    try:
        return _reconcile(store, config, port, partner, started)
    except ConnectionDown:  # before or during the cycle: its cursors wait where they are,
        return {"held": 1}  # and the store is caught up once it is connected again
    finally:
        store.release(f"{LOCK}:{partner_id}", token)


def _reconcile(
    store: Store, config: Settings, port: CallCounter, partner: dict, started: float
) -> dict[str, int]:
    partner_id = partner["id"]
    adapter = adapter_for(partner, port, config)
    done = {"changed": 0, "synced": 0, "ingested": 0}
    if platforms.get(partner["platform"]).fulfillments_from_store:
        if store.unshipped_count(partner_id):
            _reconcile_seller(store, config, adapter, partner, done)
        else:  # nothing of ours there to miss: no call, and no stale cursor later
            store.set_cursor(partner_id, "seller", _now_seconds())
    if store.is_buyer(partner_id):
        _reconcile_buyer(store, config, adapter, partner, done)
    done["webhooks_repaired"] = check_webhooks(config, port, partner) or 0
    store.count("reconcile_orders_changed", done["changed"])
    store.set_gauge(
        f'reconcile_duration_seconds{{partner="{partner_id}"}}', time.monotonic() - started
    )
    return done


def _now_seconds() -> str:
    """Now, to the second, as the stores write their times (cursors compare as text)."""
    return iso_utc(datetime.now(UTC))


def _since(store: Store, config: Settings, partner: dict, side: str) -> str:
    cursor = store.cursor(partner["id"], side) or partner["created_at"]
    return iso_utc(datetime.fromisoformat(cursor) - timedelta(seconds=config.reconcile_overlap))


def _changed_pages(
    store: Store, config: Settings, adapter, partner: dict, side: str
) -> Iterator[list[ChangedOrder]]:
    """Pages of the orders changed (a seller store) or created (a buyer store) since the side's
    cursor. The cursor moves past a page only when the caller asks for the next one, so a page
    whose handling fails is listed again next cycle; after the last page it moves to the run's
    start, since everything before it is in."""
    partner_id, page = partner["id"], None
    since = _since(store, config, partner, side)
    started = _now_seconds()
    while True:
        listed = adapter.changed_orders(since, page, created=side == "buyer")
        yield listed.orders
        if listed.orders:
            store.set_cursor(partner_id, side, max(o.updated_at for o in listed.orders))
        if listed.next_page is None:
            store.set_cursor(partner_id, side, started)
            return
        page = listed.next_page


def _reconcile_seller(store: Store, config: Settings, adapter, partner: dict, done: dict) -> None:
    partner_id = partner["id"]
    # Syncs a cursor already moved past but that never completed (a permanent error, retries
    # spent): asked again every cycle until applied, so no listed change is lost.
    for order_id, seen in store.owed_syncs(partner_id).items():
        if not store.is_unshipped(partner_id, order_id):
            store.paid_sync(partner_id, order_id)
            continue
        store.enqueue(JobSpec(SYNC_SELLER, (order_id, seen), options=RETRIED_OPTIONS))
    for orders in _changed_pages(store, config, adapter, partner, "seller"):
        for changed in orders:
            order_id = store.order_id_by_seller_ref(partner_id, changed.ref)
            if order_id is None or not store.is_unshipped(partner_id, order_id):
                continue  # not ours, or shipped: never polled again
            done["changed"] += 1
            if changed.fulfillments is not None:
                apply_observed(
                    store, order_id, partner["platform"], changed.fulfillments, changed.updated_at
                )
                done["synced"] += 1
                continue
            order = store.order(order_id)
            if order and (order.seller_updated_at or "") >= changed.updated_at:
                continue  # this change was applied already
            store.owe_sync(partner_id, order_id, changed.updated_at)
            store.enqueue(
                JobSpec(SYNC_SELLER, (order_id, changed.updated_at), options=RETRIED_OPTIONS)
            )
            done["synced"] += 1


def _reconcile_buyer(store: Store, config: Settings, adapter, partner: dict, done: dict) -> None:
    partner_id = partner["id"]
    # Orders waiting (on payment, an address): asked about again each cycle, in case the
    # webhook that said they were paid (or cancelled) was lost. One read each: they are few,
    # and an abandoned checkout is asked about for WAITING_RECHECK_DAYS only (a webhook still
    # releases it later), so the cycle's cost does not grow with them.
    oldest = iso_utc(datetime.now(UTC) - timedelta(days=WAITING_RECHECK_DAYS))
    waiting = [store.order(order_id) for order_id in store.waiting_orders(partner_id)]
    recent = {o.buyer_order_ref for o in waiting if o is not None and o.created_at >= oldest}
    for ref in sorted(recent):
        store.enqueue(JobSpec(INGEST_ORDER, (partner_id, ref), options=RETRIED_OPTIONS))
        done["ingested"] += 1
    for orders in _changed_pages(store, config, adapter, partner, "buyer"):
        refs = [o.ref for o in orders]
        for ref, seen in zip(refs, store.buyer_refs_seen(partner_id, refs), strict=True):
            if not seen:
                store.enqueue(JobSpec(INGEST_ORDER, (partner_id, ref), options=RETRIED_OPTIONS))
                done["ingested"] += 1
