"""Periodic jobs, declared in one list; the Procfile's `rq cron gateway.jobs.schedule` loads it."""

from __future__ import annotations

from rq import cron

from gateway.jobs import QUEUE
from gateway.jobs.reconcile import reconcile, watch_deliveries

EVERY_15_MINUTES = "*/15 * * * *"  # UTC, clock-aligned; missed runs are not caught up
WATCH_SECONDS = 5  # how often lost deliveries are looked for (store.STUCK_AFTER past due)


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


for definition in periodic_job_definitions():
    cron.register(queue_name=QUEUE, **definition)
