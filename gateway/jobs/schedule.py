"""Periodic jobs, declared in one list; the Procfile's `rq cron gateway.jobs.schedule` loads it."""

from __future__ import annotations

from rq import cron

from gateway.jobs import QUEUE
from gateway.jobs.reconcile import reconcile

EVERY_15_MINUTES = "*/15 * * * *"  # UTC, clock-aligned; missed runs are not caught up


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
