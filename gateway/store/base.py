"""What every part of the store shares: key names, the Change a transaction applies, enqueue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.job import Job

from gateway.model import Order, now_iso

PREFIX = "gw"


def key(*parts: str) -> str:
    """A namespaced Redis key."""
    return ":".join((PREFIX, *parts))


def key_hash(secret: str) -> str:
    """What we keep of an API key: its SHA-256, so a leaked store leaks no keys."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue in the same transaction as a state change."""

    func: str | Callable[..., Any]
    args: tuple[Any, ...] = ()
    delay: float = 0  # seconds; > 0 parks it in RQ's scheduled registry
    options: dict[str, Any] = field(default_factory=dict)  # job_timeout, retry, job_id, ...
    queue: str | None = None  # another queue than the store's (jobs.CALLBACKS_QUEUE)


@dataclass
class Change:
    """What a transaction function decided: the new order, timeline entries and jobs."""

    order: Order | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[JobSpec] = field(default_factory=list)
    writes: list[Callable[[Pipeline], None]] = field(default_factory=list)
    result: Any = None


def event(kind: str, message: str, **data: Any) -> dict[str, Any]:
    """A timeline entry; `audience="seller"` or `"buyer"` keeps it to that party (see below)."""
    return {"at": now_iso(), "type": kind, "message": message, **data}


def shown_to(entry: dict[str, Any], role: str) -> bool:
    """Whether a timeline entry is shown to a role: an entry about one party's side (its
    deliveries' notes and errors: addresses, outbox files, SMTP and store errors) carries that
    party as its `audience`, and only that party and the operator see it; the rest, everyone."""
    return role == "operator" or entry.get("audience", role) == role


class Records:
    """The Redis connection and the job queue that every part of the store works with."""

    def __init__(self, redis: Redis, queue: Queue, timeline_cap: int) -> None:
        self.redis = redis
        self.queue = queue
        self.timeline_cap = timeline_cap  # entries an order's timeline keeps (see Orders)

    def enqueue(self, job: JobSpec, pipe: Pipeline | None = None) -> Job:
        """Enqueue a job, inside the caller's transaction when a pipeline is given."""
        options = dict(job.options)
        if pipe is not None:
            options["pipeline"] = pipe
        queue = self.queue
        if job.queue and job.queue != queue.name:
            queue = Queue(job.queue, connection=self.redis, serializer=queue.serializer)
        if job.delay > 0:
            return queue.enqueue_in(timedelta(seconds=job.delay), job.func, *job.args, **options)
        return queue.enqueue(job.func, *job.args, **options)
