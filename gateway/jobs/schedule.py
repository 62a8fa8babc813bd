"""Periodic jobs, declared in one list; the Procfile's `rq cron gateway.jobs.schedule` loads it."""

from __future__ import annotations

import functools

from rq import Queue, cron

from gateway.jobs import QUEUE, SERIALIZER
from gateway.jobs.reconcile import reconcile

EVERY_15_MINUTES = "*/15 * * * *"  # UTC, clock-aligned; missed runs are not caught up

# rq 2.12's cron enqueues through `Queue(name, connection=...)`, so with pickle, and `rq cron`
# ignores its --serializer option: its jobs are made JSON here, as the workers expect.
cron.Queue = functools.partial(Queue, serializer=SERIALIZER)


def periodic_job_definitions() -> list[dict]:
    """What runs when (Redash's shape)."""
    return [{"func": reconcile, "cron": EVERY_15_MINUTES, "job_timeout": 600, "name": "reconcile"}]


for definition in periodic_job_definitions():
    cron.register(
        definition["func"],
        queue_name=QUEUE,
        cron=definition["cron"],
        job_timeout=definition["job_timeout"],
        name=definition["name"],
    )
