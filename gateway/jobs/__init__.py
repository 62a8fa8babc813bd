"""Background jobs on RQ: queue names, timeouts and what every job needs to run.

Jobs are plain functions with ids as arguments, idempotent and safe to run twice. They are
enqueued by dotted path (see `jobs.routing`, `jobs.forwarding`), so a Store can enqueue them
without importing them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.serializers import JSONSerializer

if TYPE_CHECKING:
    from gateway.store import JobSpec, Store

QUEUE = "gateway"
CALLBACKS_QUEUE = "callbacks"  # deliveries to partners' own URLs (platforms/none.py)
# Keeping store connections alive (registering webhooks, resuming held work, asking an owner
# to reconnect): a worker takes these first, so a burst of deliveries never delays them.
CONNECTIONS_QUEUE = "connections"
# Jobs (arguments, results) are kept as JSON, never pickle: whoever can write to Redis must not
# be able to make a worker run code. The workers and the cron process use it too (Procfile).
SERIALIZER = JSONSerializer
JOB_TIMEOUT = 120  # seconds; a job is one platform or SMTP conversation, never long
RESULT_TTL = 3600
FAILURE_TTL = 7 * 24 * 3600

ROUTE_ORDER = "gateway.jobs.routing.route_order"
FORWARD_FULFILLMENT = "gateway.jobs.forwarding.forward_fulfillment"
ANNOUNCE_SHIPPED = "gateway.jobs.forwarding.announce_shipped"
INGEST_ORDER = "gateway.jobs.ingest.ingest_order"
SYNC_SELLER = "gateway.jobs.sync.sync_seller"
SYNC_SELLER_REF = "gateway.jobs.sync.sync_seller_ref"
TELL_SELLER_HELD = "gateway.jobs.sync.tell_seller_held"
RECONCILE_STORE = "gateway.jobs.reconcile.reconcile_store"
REGISTER_WEBHOOKS = "gateway.jobs.connections.register_webhooks"
RESUME_CONNECTION = "gateway.jobs.connections.resume_connection"
TELL_OWNER_TO_RECONNECT = "gateway.jobs.connections.tell_owner_to_reconnect"
CONNECTION_EVENT = "gateway.jobs.connections.connection_event"
SEND_CONNECT_LINK = "gateway.jobs.connections.send_connect_link"
SEND_SIGNIN_LINK = "gateway.jobs.people.send_signin_link"

JOB_OPTIONS = {"job_timeout": JOB_TIMEOUT, "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL}
# Jobs that read a platform (ingest, sync) or tell a seller are retried by RQ with backoff;
# jobs that deliver to a buyer or route an order keep their own visible attempts instead
# (jobs/attempts.py).
RETRIED_OPTIONS = {**JOB_OPTIONS, "retry": Retry(max=5, interval=[5, 30, 120, 600, 1800])}


def passing_on(
    order_id: str, fulfillment_ids: Iterable[str], became_shipped: bool, queue: str = QUEUE
) -> tuple[list[dict], list[JobSpec]]:
    """(events, jobs) that follow new or changed fulfillments in their own transaction: a forward
    for each and, when they made the order shipped, its timeline event and the buyer's notice,
    on the buyer's delivery queue (`delivery_queue`)."""
    from gateway.store import JobSpec, event

    jobs = [
        JobSpec(FORWARD_FULFILLMENT, (order_id, fid), options=JOB_OPTIONS, queue=queue)
        for fid in fulfillment_ids
    ]
    if not became_shipped:
        return [], jobs
    jobs.append(JobSpec(ANNOUNCE_SHIPPED, (order_id,), options=JOB_OPTIONS, queue=queue))
    return [event("order.shipped", "Every line is fulfilled: the order is shipped.")], jobs


def upkeep(func: str, *args: object) -> JobSpec:
    """A job that keeps a store connection alive, on its own queue (CONNECTIONS_QUEUE)."""
    from gateway.store import JobSpec

    return JobSpec(func, args, options=RETRIED_OPTIONS, queue=CONNECTIONS_QUEUE)


def delivery_queue(store: Store, buyer_id: str) -> str:
    """The queue of deliveries to this buyer: its platform's own (callbacks to partners' URLs
    have theirs, so one slow partner can't hold every worker), else the gateway's."""
    from gateway import platforms

    platform = platforms.REGISTRY.get(store.platform_of(buyer_id) or "")
    return (platform.delivery_queue if platform else None) or QUEUE


def current_queue() -> str:
    """The queue the running job came from (a retry goes back to it); the gateway's outside."""
    job = get_current_job()
    return job.origin if job is not None else QUEUE


def context():
    """The settings and a store for the running job, on the job's own Redis connection."""
    from gateway import configure_logging
    from gateway.runtime import connect
    from gateway.settings import Settings
    from gateway.store import Store

    configure_logging()
    config = Settings.from_env()
    job = get_current_job()
    if job is None:
        return config, connect(config)
    return config, Store(
        job.connection,
        job_queue(job.connection),
        timeline_cap=config.timeline_max_entries,
        encryption_keys=config.encryption_keys,
    )


def job_queue(connection: Redis) -> Queue:
    """The gateway's queue on this connection, its jobs kept as JSON."""
    return Queue(QUEUE, connection=connection, serializer=SERIALIZER)


def next_attempt_delay(
    schedule: tuple[int, ...], attempts: int, retry_after: float | None = None
) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when exhausted.

    The schedule holds one delay per retry; a server's Retry-After wins when it asks for more.
    """
    if attempts > len(schedule):
        return None
    delay = float(schedule[attempts - 1])
    if retry_after is not None:
        delay = max(delay, min(retry_after, 24 * 3600.0))
    return delay
