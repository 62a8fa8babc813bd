"""A webhook's acceptance (Deliveries.accept_delivery): one script, one round trip, writes the
dedupe keys, the counters and the job, the job as RQ's own enqueue writes it."""

from __future__ import annotations

import threading
import zlib

import pytest
from conftest import wait_for
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from gateway.failover import NotReplicatedError, ReplicatedRedis
from gateway.jobs import (
    CONNECTION_EVENT,
    CONNECTIONS_QUEUE,
    RETRIED_OPTIONS,
    SYNC_SELLER_REF,
    job_queue,
    upkeep,
)
from gateway.store import JobSpec, key
from gateway.store.base import Records, Script

COUNTERS = ("webhooks_received_test", "webhooks_duplicate_test")


def test_a_written_job_is_the_hash_rqs_own_enqueue_writes(app, redis):
    store = app.extensions["gateway.store"]
    args = ("ptr_0123456789abcdef", "5523429081345" * 10)  # long: truncated alike, described
    assert store.accept_delivery(
        ["t:1"], 60, JobSpec(SYNC_SELLER_REF, args, options=RETRIED_OPTIONS), COUNTERS
    )
    theirs = store.queue.enqueue(SYNC_SELLER_REF, *args, **RETRIED_OPTIONS)
    queue = job_queue(redis)
    ours_id, theirs_id = queue.job_ids
    assert theirs_id == theirs.id
    ours, rqs = (redis.hgetall(Job.key_for(i)) for i in (ours_id, theirs_id))
    assert ours.keys() == rqs.keys()
    # The same fields but the times and `data`, which RQ compresses and the script does not.
    assert {k for k in ours if ours[k] != rqs[k]} - {b"created_at", b"enqueued_at"} == {b"data"}
    assert zlib.decompress(rqs[b"data"]) == ours[b"data"]
    read = [
        Job.fetch(i, connection=redis, serializer=queue.serializer) for i in (ours_id, theirs_id)
    ]
    for name in ("func_name", "args", "kwargs", "description", "origin", "timeout", "result_ttl"):
        assert getattr(read[0], name) == getattr(read[1], name), name
    for name in ("failure_ttl", "retries_left", "retry_intervals"):
        assert getattr(read[0], name) == getattr(read[1], name), name
    assert read[0].get_status() == "queued"
    assert redis.ttl(Job.key_for(ours_id)) == -1  # as RQ's: a queued job does not expire
    assert redis.sismember(Queue.redis_queues_keys, queue.key)


def test_a_written_job_runs_on_a_worker_and_on_its_own_queue(app, redis, worker):
    store = app.extensions["gateway.store"]
    event = upkeep(CONNECTION_EVENT, "ptr_none", "uninstalled", [], [], "")
    assert store.accept_delivery(["t:event"], 60, event, COUNTERS)
    connections = Queue(CONNECTIONS_QUEUE, connection=redis, serializer=job_queue(redis).serializer)
    assert redis.sismember(Queue.redis_queues_keys, connections.key)
    (name,) = redis.scan_iter("rq:job:*")  # the worker may have taken it off the queue already
    job = Job.fetch(name.decode().removeprefix("rq:job:"), connection=redis)
    assert job.origin == CONNECTIONS_QUEUE
    wait_for(lambda: job.get_status(refresh=True) == "finished", 30, "the worker to run it")
    assert not FailedJobRegistry(queue=connections).count


def test_a_repeat_by_its_id_or_its_body_enqueues_nothing_and_is_counted(app, redis):
    store = app.extensions["gateway.store"]
    job = JobSpec(SYNC_SELLER_REF, ("ptr_1", "1001"), options=RETRIED_OPTIONS)

    def accept(*seen: str) -> bool:
        return store.accept_delivery(list(seen), 60, job, COUNTERS, partner_id="ptr_1")

    assert accept("s:id:1", "s:body:A")
    assert not accept("s:id:1", "s:body:B")  # the same delivery id
    assert not accept("s:id:2", "s:body:A")  # the same body under a new id
    assert not accept("s:id:3", "s:body:B")  # B was remembered, though its delivery was a repeat
    assert job_queue(redis).count == 1
    assert len(list(redis.scan_iter("rq:job:*"))) == 1  # a repeat writes no job at all
    assert redis.hget(key("metrics"), COUNTERS[0]) == b"4"
    assert redis.hget(key("metrics"), COUNTERS[1]) == b"3"
    assert 0 < redis.ttl(key("delivery", "s:id:2")) <= 60
    assert redis.hget(key("last-webhook"), "ptr_1")


def test_the_script_is_loaded_again_on_a_primary_that_lacks_it(app, redis):
    store = app.extensions["gateway.store"]
    job = JobSpec(SYNC_SELLER_REF, ("ptr_1", "1001"), options=RETRIED_OPTIONS)
    assert store.accept_delivery(["r:1"], 60, job, COUNTERS)
    redis.script_flush()  # as a promoted replica may lack it
    assert store.accept_delivery(["r:2"], 60, job, COUNTERS)
    assert job_queue(redis).count == 2


def test_with_wait_replicas_a_script_waits_and_a_missing_replica_refuses_the_answer(
    app, redis, redis_url
):
    plain = app.extensions["gateway.store"]
    count = Script("return redis.call('INCR', KEYS[1])")
    assert plain.run_script(count, ["gw:t:n"], []) == 1
    waiting = ReplicatedRedis.from_url(redis_url)
    waiting.replicas, waiting.timeout_ms = 1, 50  # the tests' Redis has no replica
    records = Records(waiting, plain.queue, 10)
    redis.script_flush()
    with pytest.raises(NotReplicatedError):
        records.run_script(count, ["gw:t:n"], [])
    assert redis.get("gw:t:n") == b"2"  # the primary ran it once; the answer may not promise it


def test_only_a_job_to_run_at_once_by_its_path_is_written_directly(app):
    store = app.extensions["gateway.store"]
    for job in (
        JobSpec(SYNC_SELLER_REF, ("p", "1"), options=RETRIED_OPTIONS, delay=5),
        JobSpec(print, ("p", "1")),
        JobSpec(SYNC_SELLER_REF, ("p", "1"), options={"job_id": "mine"}),
    ):
        with pytest.raises(ValueError):
            store.job_write(job)


def test_each_thread_keeps_its_own_connection_and_a_dropped_one_is_opened_again(app, redis):
    store = app.extensions["gateway.store"]
    job = JobSpec(SYNC_SELLER_REF, ("ptr_1", "1001"), options=RETRIED_OPTIONS)
    assert store.accept_delivery(["c:main"], 60, job, COUNTERS)
    mine = store._own.connection
    answers: list[bool] = []

    def other_thread() -> None:
        answers.append(store.accept_delivery(["c:thread"], 60, job, COUNTERS))
        answers.append(store._own.connection is not mine)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert answers == [True, True]  # its own connection: no two threads read one socket
    redis.client_kill_filter(_type="normal", skipme=True)  # Redis drops every other connection
    assert store.accept_delivery(["c:again"], 60, job, COUNTERS)  # found closed, opened again
    assert store._own.connection is mine
    assert job_queue(redis).count == 3
