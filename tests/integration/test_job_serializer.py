"""RQ jobs are kept as JSON, never pickle: a write to Redis can't become code run by a worker.
Every path that enqueues (the API, the cron process, delayed retries) writes JSON, and the
workers refuse a pickled job instead of unpickling it."""

from __future__ import annotations

import contextlib
import json
import zlib

from conftest import admin_headers, wait_for
from rq.cron import CronScheduler
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.serializers import PickleSerializer

from gateway.jobs import QUEUE, RETRIED_OPTIONS, ROUTE_ORDER, SYNC_SELLER, job_queue
from gateway.store import JobSpec


class Trap:
    """Unpickling it creates a file: proof that a process unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def stored_job_data(redis) -> dict[str, object]:
    """Each RQ job hash's function and arguments, decoded as JSON (failing on anything else)."""
    found = {}
    for name in redis.scan_iter("rq:job:*"):
        if redis.type(name) == b"hash" and redis.hexists(name, "data"):
            data = redis.hget(name, "data")
            with contextlib.suppress(zlib.error):  # as RQ reads it: the webhooks' jobs are not
                data = zlib.decompress(data)  # compressed (Records.job_write)
            found[name.decode()] = json.loads(data)
    return found


def test_every_job_the_gateway_enqueues_is_json_and_runs(
    client, pair, make_order, redis, app, worker
):
    buyer, seller = pair()
    make_order(buyer, seller)  # the API enqueues the order's routing
    answer = client.post("/api/v1/reconcile", headers=admin_headers())
    reconcile_id = answer.get_json()["job_id"]
    store = app.extensions["gateway.store"]
    retry_id = store.enqueue(
        JobSpec(SYNC_SELLER, ("ord_none",), options=RETRIED_OPTIONS, delay=1)
    ).id  # parked in the scheduled registry, as a retry is
    scheduler = CronScheduler(connection=redis)  # what `rq cron gateway.jobs.schedule` runs
    scheduler.load_config_from_file("gateway.jobs.schedule")
    (periodic,) = [j for j in scheduler.get_jobs() if j.func.__name__ == "reconcile"]
    cron_id = periodic.enqueue(redis).id

    data = stored_job_data(redis)
    functions = sorted(entry[0] for entry in data.values())
    assert functions == sorted(
        [
            ROUTE_ORDER,
            SYNC_SELLER,
            "gateway.jobs.reconcile.reconcile",
            "gateway.jobs.reconcile.reconcile",
        ]
    )

    queue = job_queue(redis)

    def finished() -> bool:
        jobs = [queue.fetch_job(job_id) for job_id in (reconcile_id, cron_id, retry_id)]
        return all(job.get_status() == "finished" for job in jobs)

    wait_for(finished, 30, "the worker to run them")
    # results are JSON too
    assert queue.fetch_job(cron_id).return_value() in (
        {"requeued": 0, "connections": 0},
        {"skipped": 1},
    )
    assert queue.fetch_job(retry_id).return_value() == "nothing to sync"
    assert not FailedJobRegistry(queue=queue).count


def test_a_pickled_job_is_refused_not_unpickled(redis, worker, tmp_path):
    marker = tmp_path / "unpickled"
    pickling = Queue(QUEUE, connection=redis, serializer=PickleSerializer)
    planted = pickling.enqueue(ROUTE_ORDER, Trap(str(marker)))  # as a write to Redis could

    failed = FailedJobRegistry(queue=job_queue(redis))
    wait_for(lambda: planted.id in failed.get_job_ids(), 30, "the worker to refuse the job")
    assert not marker.exists()
    # the worker goes on with the jobs that are ours
    follower = job_queue(redis).enqueue("gateway.jobs.reconcile.reconcile")
    wait_for(lambda: follower.get_status() == "finished", 30, "the next job to run")
    assert not marker.exists()
