"""What every part of the store shares: key names, the Change a transaction applies, enqueue."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.job import Job
from rq.utils import get_call_string

from gateway.failover import ReplicatedRedis
from gateway.model import Order, now_iso

try:  # redis-py packs with hiredis too, when it is there, but through a slower Python layer
    from hiredis import pack_command
except ImportError:  # pragma: no cover (hiredis is in requirements.txt)
    pack_command = None

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


# The options a job written by `job_write` may carry (what the jobs module gives its jobs).
WRITTEN_OPTIONS = frozenset({"job_timeout", "result_ttl", "failure_ttl", "retry"})


@dataclass(frozen=True)
class Script:
    """A Lua script the store runs by its SHA1 (EVALSHA), loaded on first use and again on a
    primary that lacks it (after a failover). On a replica its first write is refused with
    READONLY, as a command's is, which sends redis-py's Sentinel connection to the new primary."""

    source: str

    @cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


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
        self._own = threading.local()  # each thread's connection for run_script, and its pid

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply: one command, one round trip, atomic as a MULTI/EXEC. With
        REDIS_WAIT_REPLICAS it runs in a transaction, which waits for the replicas as every
        other one does (failover.ReplicatedPipeline); else on the thread's own connection."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        for loaded in (False, True):
            try:
                if not isinstance(self.redis, ReplicatedRedis):
                    return self._on_own_connection(command)
                with self.redis.pipeline() as pipe:
                    pipe.execute_command(*command)
                    return pipe.execute()[0]
            except NoScriptError:
                if loaded:
                    raise
                self.redis.script_load(script.source)
        raise AssertionError("unreachable")

    def _on_own_connection(self, command: tuple[Any, ...]) -> Any:
        """A command's reply on this thread's own connection: made by the client's pool, so it
        reaches the primary the Sentinels name with REDIS_URL's credentials, TLS, timeouts and
        retry, but kept out of the pool. Checking a connection out of the pool and back, and
        redis-py's command machinery around it, cost a webhook 0.07 ms of its 0.36 in the app
        (SCALING.md). It is checked before use as the pool checks the connections it hands out,
        and a command that fails on it is retried as the pool's connections retry theirs."""
        own = getattr(self._own, "connection", None)
        if own is None or self._own.pid != os.getpid():  # none yet, or a forked copy's
            own = self.redis.connection_pool.make_connection()
            self._own.connection, self._own.pid = own, os.getpid()
        packed = [pack_command(command)] if pack_command else own.pack_command(*command)
        own.connect()  # when it is not (first use, or closed after an error)
        try:  # as the pool checks a connection it hands out: closed by Redis while idle (EOF
            if own.can_read():  # to read) or not clean, it is opened again
                raise RedisConnectionError("the connection has data")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            own.disconnect()
            own.connect()

        def send_and_read() -> Any:
            own.send_packed_command(packed, check_health=False)
            return own.read_response()  # an error reply raises; a broken read disconnects

        return own.retry.call_with_retry(send_and_read, lambda _error: own.disconnect())

    def job_write(self, job: JobSpec) -> tuple[str, str, list[Any]]:
        """A new job's id, its queue's key and its hash's fields as a flat list, as RQ's
        enqueue writes them (rq.job.Job.to_dict after Queue._prepare_for_queue), for a script
        to write with HSET, SADD rq:queues and RPUSH. Only for a job to run at once, named by
        its dotted path, with WRITTEN_OPTIONS: RQ's Job objects cost a webhook more CPU than the
        rest of its answer (bench/webhook_ingest.py), and the test of this method holds the
        hash to RQ's own, field by field.

        But `data` is left uncompressed: RQ compresses it with zlib, which costs 30 us for these
        few bytes, and reads it either way (Job.restore falls back to the bytes as they are; JSON
        never starts as a zlib stream does)."""
        options = job.options
        if job.delay > 0 or not isinstance(job.func, str) or not options.keys() <= WRITTEN_OPTIONS:
            raise ValueError(f"{job.func}: not a job to write directly")
        queue = job.queue or self.queue.name
        at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        retry = options.get("retry")
        fields = [
            "created_at", at,
            "data", self.queue.serializer.dumps((job.func, None, job.args, {})),
            "success_callback_name", "",
            "failure_callback_name", "",
            "stopped_callback_name", "",
            "started_at", "",
            "ended_at", "",
            "last_heartbeat", "",
            "worker_name", "",
            "group_id", "",
            "origin", queue,
            "description", get_call_string(job.func, job.args, {}, max_length=75),
            "enqueued_at", at,
            "timeout", options.get("job_timeout") or self.queue._default_timeout,
            "status", "queued",
        ]  # fmt: skip
        if retry is not None:
            fields += ["retries_left", retry.max, "retry_intervals", json.dumps(retry.intervals)]
        for name in ("result_ttl", "failure_ttl"):
            if options.get(name) is not None:
                fields += [name, options[name]]
        return str(uuid.uuid4()), Queue.redis_queue_namespace_prefix + queue, fields

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
