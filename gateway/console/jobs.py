"""Console: the queues, the workers and the failed jobs (retry, delete). Our own page, not
rq-dashboard: that needs JavaScript and assets the pages' CSP forbids."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from gateway.console import admin
from gateway.jobs import CALLBACKS_QUEUE, CONNECTIONS_QUEUE, QUEUE, SERIALIZER
from gateway.runtime import store

QUEUES = (QUEUE, CONNECTIONS_QUEUE, CALLBACKS_QUEUE)
FAILED_SHOWN = 50  # failed jobs listed per queue, newest first


def _queue(name: str) -> Queue:
    if name not in QUEUES:
        abort(404)
    return Queue(name, connection=store().redis, serializer=SERIALIZER)


def last_line(text: str | None) -> str:
    """An exception's last line (its type and message): a person never sees a stack trace."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def _failed(queue: Queue) -> list[dict]:
    registry = FailedJobRegistry(queue=queue)
    ids = registry.get_job_ids(0, -1)[-FAILED_SHOWN:][::-1]
    jobs = Job.fetch_many(ids, connection=queue.connection, serializer=SERIALIZER)
    return [
        {
            "id": job.id,
            "function": job.func_name.rsplit(".", 1)[-1],
            "args": ", ".join(str(a)[:40] for a in job.args),
            "ended_at": job.ended_at.isoformat(timespec="seconds") if job.ended_at else "",
            "error": last_line(_exc_string(job)),
        }
        for job in jobs
        if job is not None
    ]


def _exc_string(job: Job) -> str | None:
    result = job.latest_result()
    return result.exc_string if result is not None else None


@admin.get("/jobs")
def jobs_page():
    """Each queue's counts and failed jobs, and the workers."""
    queues = []
    for name in QUEUES:
        queue = _queue(name)
        queues.append(
            {
                "name": name,
                "queued": queue.count,
                "started": StartedJobRegistry(queue=queue).count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,
                "deferred": DeferredJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
                "failed_jobs": _failed(queue),
            }
        )
    workers = [
        {
            "name": worker.name,
            "state": worker.get_state(),
            "queues": ", ".join(worker.queue_names()),
            "job": worker.get_current_job_id() or "",
            "heartbeat": worker.last_heartbeat.isoformat(timespec="seconds")
            if worker.last_heartbeat
            else "",
        }
        for worker in Worker.all(connection=store().redis)
    ]
    return render_template("console_jobs.html", queues=queues, workers=workers)


@admin.post("/jobs/<queue_name>/<job_id>/retry")
def retry_job(queue_name: str, job_id: str):
    """A failed job back on its queue."""
    registry = FailedJobRegistry(queue=_queue(queue_name))
    try:
        registry.requeue(job_id)
    except (NoSuchJobError, ValueError):  # gone, or retried already
        flash(f"Job {job_id} is no longer among the failed jobs.", "error")
    else:
        flash(f"Job {job_id} is queued again.", "ok")
    return redirect("/admin/jobs", code=303)


@admin.post("/jobs/<queue_name>/<job_id>/delete")
def delete_job(queue_name: str, job_id: str):
    """A failed job deleted (it is not run again)."""
    queue = _queue(queue_name)
    if job_id not in FailedJobRegistry(queue=queue).get_job_ids():
        flash(f"Job {job_id} is no longer among the failed jobs.", "error")
        return redirect("/admin/jobs", code=303)
    try:
        Job.fetch(job_id, connection=queue.connection, serializer=SERIALIZER).delete()
    except NoSuchJobError:
        FailedJobRegistry(queue=queue).remove(job_id)
    flash(f"Job {job_id} was deleted.", "ok")
    return redirect("/admin/jobs", code=303)
