"""Periodic jobs, declared in one list; the Procfile's `rq cron gateway.jobs.schedule` loads it."""

from __future__ import annotations

import functools

from rq import Queue, cron

from gateway.jobs import QUEUE, SERIALIZER
from gateway.jobs.reconcile import reconcile, watch_deliveries
from gateway.settings import Settings

EVERY_15_MINUTES = "*/15 * * * *"  # UTC, clock-aligned; missed runs are not caught up
WATCH_SECONDS = 5  # how often lost deliveries are looked for (store.STUCK_AFTER past due)

# rq 2.12's cron enqueues through `Queue(name, connection=...)`, so with pickle, and `rq cron`
# ignores its --serializer option: its jobs are made JSON here, as the workers expect.
cron.Queue = functools.partial(Queue, serializer=SERIALIZER)


def periodic_job_definitions() -> list[dict]:
    """What runs when (Redash's shape)."""
    return [
        {"func": reconcile, "cron": EVERY_15_MINUTES, "job_timeout": 600, "name": "reconcile"},
        {
            "func": watch_deliveries,
            "interval": WATCH_SECONDS,
            "job_timeout": 60,
            "result_ttl": 60,
            "name": "watch-deliveries",
        },
    ]


Settings.from_env()  # `rq cron` refuses to start on settings unsafe outside development
for definition in periodic_job_definitions():
    cron.register(queue_name=QUEUE, **definition)
