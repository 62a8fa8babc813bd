"""The pending deliveries index (and the stuck ones), webhook delivery dedupe, Idempotency-Keys."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.client import Pipeline
from rq import Queue
from rq.job import Job

from gateway.model import Order, deliveries, now_iso
from gateway.store.base import JobSpec, Records, Script, key

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


# A webhook's acceptance. KEYS: the delivery's n dedupe keys, then gw:metrics, gw:last-webhook,
# rq:queues, the job's queue and the job's hash. ARGV: n, the dedupe keys' seconds, the two
# counters (delivery, repeat), the partner ('' for none), now, the job's id, then its hash's
# fields. Every dedupe key is set (a repeat under a new id is still remembered by its body); the
# job is written, as RQ's enqueue writes it, only when none of them was there. 1 or 0.
ACCEPT = Script("""
local n = tonumber(ARGV[1])
local fresh = 1
for i = 1, n do
  if not redis.call('SET', KEYS[i], 1, 'NX', 'EX', ARGV[2]) then fresh = 0 end
end
redis.call('HINCRBY', KEYS[n + 1], ARGV[3], 1)
if fresh == 0 then redis.call('HINCRBY', KEYS[n + 1], ARGV[4], 1) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[n + 2], ARGV[5], ARGV[6]) end
if fresh == 1 then
  redis.call('HSET', KEYS[n + 5], unpack(ARGV, 8))
  redis.call('SADD', KEYS[n + 3], KEYS[n + 4])
  redis.call('RPUSH', KEYS[n + 4], ARGV[7])
end
return fresh
""")


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
        counters: tuple[str, str],
        partner_id: str | None = None,
    ) -> bool:
        """Remember what identifies a webhook delivery (its id, its body's hash) and enqueue its
        job, atomically and in one round trip (the ACCEPT script); False for a repeat of any of
        them, whose job is not enqueued. `counters`: the /metrics counters of a delivery and of
        a repeat, counted in the same script."""
        job_id, queue_key, fields = self.job_write(job)
        keys = [key("delivery", d) for d in seen]
        keys += [key("metrics"), key("last-webhook"), Queue.redis_queues_keys, queue_key]
        keys.append(Job.key_for(job_id))
        head = [len(seen), seconds, *counters, partner_id or "", now_iso(), job_id]
        return self.run_script(ACCEPT, keys, [*head, *fields]) == 1
