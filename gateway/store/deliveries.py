"""The pending deliveries index (and the stuck ones), webhook delivery dedupe, Idempotency-Keys."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.client import Pipeline
from rq import Queue

from gateway.model import Order, deliveries, now_iso
from gateway.store.base import JobSpec, Records, key

# A delivery attempt's lease on its delivery (jobs/attempts.py): taken for this long and renewed
# while the attempt runs, however long its outbound call takes, so an attempt whose worker was
# killed frees the delivery within these seconds.
ATTEMPT_SECONDS = 10
# A pending delivery counts as stuck, its job lost (a worker killed between taking the job and
# its attempt or mid-attempt, Redis restarted, the scheduler down), once it is this far past its
# due time, no attempt holds its lease, and its job has left the queue: RQ's queue is first in,
# first out, so a job enqueued before the one at its head has been taken. A job still waiting in
# a busy queue is never taken for lost (enqueuing it again each time would add to the backlog).
STUCK_AFTER = ATTEMPT_SECONDS
CLOCK_SKEW = 2  # seconds allowed between the clocks of the processes that enqueue


def attempt_lock(order_id: str, name: str) -> str:
    """The name of the lease an attempt at the order's named delivery holds."""
    if name.startswith("forward:"):  # forward:<fulfillment id>
        return name
    return f"{name}:{order_id}"  # route:<order id>, shipped:<order id>


def index_pending(pipe: Pipeline, order: Order) -> None:
    """Keep the order's pending deliveries, and no others, in the index of stuck candidates."""
    now = time.time()
    forwarding = any(
        f.status == "active" and f.delivery.state == "pending" for f in order.fulfillments
    )
    for name, delivery in deliveries(order).items():
        member = f"{order.id}|{name}"
        if name == "shipped" and forwarding:  # it waits for them: their entries stand for it, and
            pipe.zrem(key("pending"), member)  # the last one's forward enqueues it
        elif delivery.state == "pending":  # stuck if nothing happens by its own next try
            due = max(now, delivery.retry_at or 0) + STUCK_AFTER
            pipe.zadd(key("pending"), {member: due})
        else:
            pipe.zrem(key("pending"), member)
    for fulfillment in order.fulfillments:
        if fulfillment.status != "active":  # held or cancelled: nothing to deliver
            pipe.zrem(key("pending"), f"{order.id}|forward:{fulfillment.id}")


class Deliveries(Records):
    """Deliveries that got stuck, webhook deliveries seen, and answers to Idempotency-Keys."""

    def stuck_deliveries(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(order id, delivery name) of the pending deliveries whose job was lost: STUCK_AFTER
        past due, their job no longer in the queue, and no attempt holding their lease."""
        now = time.time()
        head = self.queue_head_enqueued_at()
        taken_before = now if head is None else head - CLOCK_SKEW  # jobs older have left
        latest = min(now, taken_before + STUCK_AFTER)
        members = self.redis.zrangebyscore(key("pending"), "-inf", latest, 0, limit)
        found = [tuple(m.decode().split("|", 1)) for m in members]
        with self.redis.pipeline(transaction=False) as pipe:
            for order_id, name in found:
                pipe.exists(key("lock", attempt_lock(order_id, name)))
            leased = pipe.execute()
        return [delivery for delivery, held in zip(found, leased, strict=True) if not held]

    def queue_head_enqueued_at(self) -> float | None:
        """When the oldest job still waiting in a delivery queue (the gateway's, the callbacks')
        was enqueued."""
        from gateway.jobs import CALLBACKS_QUEUE

        callbacks = Queue(CALLBACKS_QUEUE, connection=self.redis, serializer=self.queue.serializer)
        heads = []
        for queue in (self.queue, callbacks):
            for job_id in queue.get_job_ids(0, 0):
                job = queue.fetch_job(job_id)
                if job is not None and job.enqueued_at is not None:
                    heads.append(job.enqueued_at.timestamp())
        return min(heads, default=None)

    def postpone_stuck(self, order_id: str, name: str) -> None:
        """Give a re-enqueued delivery another STUCK_AFTER seconds before it counts as stuck."""
        self.redis.zadd(key("pending"), {f"{order_id}|{name}": time.time() + STUCK_AFTER}, xx=True)

    def idempotent_answer(self, scope: str) -> dict[str, Any] | None:
        """The answer stored for an Idempotency-Key, if the first request succeeded."""
        raw = self.redis.get(key("idem", scope))
        return json.loads(raw) if raw else None

    def idempotency_key(self, scope: str) -> str:
        """The Redis key under which an Idempotency-Key answer is kept (to WATCH it)."""
        return key("idem", scope)

    def accept_delivery(
        self,
        seen: list[str],
        seconds: int,
        job: JobSpec,
        counter: str,
        partner_id: str | None = None,
    ) -> bool:
        """Remember what identifies a webhook delivery (its id, its body's hash) and enqueue its
        job in one MULTI/EXEC (one round trip); False for a repeat of any of them, whose job is
        then taken back.

        Repeats are rare, so the common case pays one round trip; a repeat's job that a worker
        took in the instant between is harmless, jobs being idempotent.
        """
        with self.redis.pipeline() as pipe:
            pipe.multi()
            for delivery in seen:
                pipe.set(key("delivery", delivery), 1, nx=True, ex=seconds)
            queued = self.enqueue(job, pipe)
            pipe.hincrby(key("metrics"), counter, 1)  # /metrics counters, in the same round trip
            if partner_id:  # when its store last sent one (the connection's health)
                pipe.hset(key("last-webhook"), partner_id, now_iso())
            fresh = all(pipe.execute()[: len(seen)])
        if not fresh:
            origin = Queue(queued.origin, connection=self.redis, serializer=self.queue.serializer)
            origin.remove(queued)
            queued.delete()
        return fresh
