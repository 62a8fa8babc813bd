"""The RQ worker the Procfile runs: jobs in the worker's own process, riding out a Redis
outage, and a scheduler that does the same and does not outlive its worker.

RQ 2.12's scheduler is a forked process whose loop has no error handling: one connection error
(Redis restarting) ends it, and a worker only tries to start it again at its maintenance
interval (10 minutes by default, and an idle worker checks it only between 6.75-minute waits for
a job), so no delayed job (a retry, a backoff) runs meanwhile. And a worker killed with SIGKILL
leaves its scheduler running, an orphan holding the scheduler lock.

RQ's worker itself waits out a connection error only while it waits for a job: one met while a
job runs (or at its heartbeat, or in maintenance) makes it quit, and under a process manager
that stops everything with the first process to exit (honcho, as ./scripts/run uses) a Redis
restart then stopped the whole gateway (the chaos test found it).
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker, WorkerStatus

from gateway.settings import Settings

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)  # BusyLoadingError is one: AOF loading
SCHEDULER_CHECK_SECONDS = 2  # how often a worker looks whether the scheduler lock is free


class ResilientScheduler(RQScheduler):
    """RQ's scheduler loop, riding out Redis outages and stopping when its worker is gone."""

    def start(self):
        self._worker_pid = os.getpid()  # before the fork: the child compares its parent to it
        return super().start()

    def work(self) -> None:
        self._install_signal_handlers()
        self.register_birth()
        while True:
            if self._stop_requested or os.getppid() != self._worker_pid:
                # Releases the lock at once, for another worker's scheduler; with Redis down,
                # the lock's own expiry (61 s) does it.
                with suppress(*REDIS_DOWN):
                    self.stop()
                break
            try:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except REDIS_DOWN as error:
                self.log.warning("scheduler: Redis unavailable (%s); trying again", error)
            time.sleep(self.interval)


class GatewayWorker(SimpleWorker):
    """SimpleWorker (no fork per job: a fork and re-import cost ~130 ms a job) with the
    resilient scheduler, waiting for Redis wherever RQ's loop would quit on losing it."""

    # RQ waits 1, 2, 4 ... up to 60 s between tries while Redis is away, so after a long outage
    # a worker could come back a minute late; every 2 s at most instead.
    max_connection_wait_time = 2.0
    scheduler_checked = 0.0

    def execute_job(self, job, queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as error:
            # The job's end could not be recorded: it stays in the started registry, which
            # counts it abandoned later (retried if it has retries); a delivery it left pending
            # is enqueued again by the watchdog (jobs/reconcile.py).
            self.wait_for_redis(error)
            with suppress(*REDIS_DOWN):
                self.set_state(WorkerStatus.IDLE)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        self.take_over_scheduler()
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_DOWN as error:  # at its closing heartbeat: RQ waits out the rest
                self.wait_for_redis(error)

    def heartbeat(self, timeout=None, pipeline=None) -> None:
        if pipeline is not None:  # part of RQ's own transaction: it fails with it
            return super().heartbeat(timeout, pipeline)
        try:
            super().heartbeat(timeout)
        except REDIS_DOWN as error:
            self.wait_for_redis(error)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as error:
            self.wait_for_redis(error)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN as error:
            self.wait_for_redis(error)

    def take_over_scheduler(self) -> None:
        """Start this worker's scheduler if the lock is free (the worker that held it died):
        looked at every few seconds, where RQ looks at its maintenance interval only."""
        checked = time.monotonic()
        if self.scheduler is None or checked - self.scheduler_checked < SCHEDULER_CHECK_SECONDS:
            return
        self.scheduler_checked = checked
        process = self.scheduler._process
        if process is None or not process.is_alive():
            with suppress(*REDIS_DOWN):
                self.scheduler.acquire_locks(auto_start=True)

    def wait_for_redis(self, error: Exception) -> None:
        """Poll Redis every second until it answers; StopRequested if asked to stop meanwhile."""
        self.log.warning("Worker %s: Redis unavailable (%s); waiting for it", self.name, error)
        while not self._stop_requested:
            time.sleep(1)
            with suppress(*REDIS_DOWN):
                self.connection.ping()
                self.log.info("Worker %s: Redis answers again", self.name)
                return
        raise StopRequested()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Settings.from_env()  # UnsafeSettingsError before it registers or takes a job
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker waits in BLPOP up to worker_ttl - 15 s (6.75 minutes) before it runs its
        # maintenance, where it starts a scheduler whose holder died: wait no longer than the
        # maintenance interval, so another worker's scheduler takes over within it.
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str | None = None,
        log_format: str | None = None,
    ) -> None:
        # RQ's own method, with ResilientScheduler in place of RQScheduler, named after its
        # worker: the scheduler lock's value (rq:scheduler-lock:<queue>) names the worker that
        # holds it, where RQ would write a random id.
        options = {k: v for k, v in (("date_format", date_format), ("log_format", log_format)) if v}
        self.scheduler = ResilientScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            serializer=self.serializer,
            name=self.name,
            **options,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()
