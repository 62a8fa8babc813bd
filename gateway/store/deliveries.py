"""The pending deliveries index (and the stuck ones), webhook delivery dedupe, Idempotency-Keys."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.client import Pipeline

from gateway.model import Order, deliveries
from gateway.store.base import JobSpec, Records, key

# The longest one delivery attempt holds its lock: one outbound call (HTTP_TIMEOUT, 10 s by
# default, bounds each of its socket operations) and our own writes.
ATTEMPT_SECONDS = 25
# A delivery still pending this long past its due time counts as stuck: its job was lost (a
# worker was killed mid-call, Redis restarted, the scheduler was down). The watchdog enqueues it
# again within seconds; by then a killed attempt's lock has expired, so the new one proceeds.
STUCK_AFTER = ATTEMPT_SECONDS + 10


def index_pending(pipe: Pipeline, order: Order) -> None:
    """Keep the order's pending deliveries, and no others, in the index of stuck candidates."""
    now = time.time()
    for name, delivery in deliveries(order).items():
        member = f"{order.id}|{name}"
        if delivery.state == "pending":  # stuck if nothing happens by its own next try
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
        """(order id, delivery name) of pending deliveries untouched for STUCK_AFTER seconds."""
        members = self.redis.zrangebyscore(key("pending"), "-inf", time.time(), 0, limit)
        return [tuple(m.decode().split("|", 1)) for m in members]

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

    def accept_delivery(self, seen: list[str], seconds: int, job: JobSpec, counter: str) -> bool:
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
            fresh = all(pipe.execute()[: len(seen)])
        if not fresh:
            self.queue.remove(queued)
            queued.delete()
        return fresh
