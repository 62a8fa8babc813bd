"""The RQ worker the Procfile runs: jobs in the worker's own process, and a scheduler that
survives a Redis outage and does not outlive its worker.

RQ 2.12's scheduler is a forked process whose loop has no error handling: one connection error
(Redis restarting) ends it, and a worker only tries to start it again at its maintenance
interval (10 minutes by default, and an idle worker checks it only between 6.75-minute waits for
a job), so no delayed job (a retry, a backoff) runs meanwhile. And a worker killed with SIGKILL
leaves its scheduler running, an orphan holding the scheduler lock.
"""

from __future__ import annotations

import os
import time
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from gateway.settings import Settings


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
                self.stop()  # releases the lock at once, for another worker's scheduler
                break
            try:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except (RedisConnectionError, RedisTimeoutError) as error:
                self.log.warning("scheduler: Redis unavailable (%s); trying again", error)
            time.sleep(self.interval)


class GatewayWorker(SimpleWorker):
    """SimpleWorker (no fork per job: a fork and re-import cost ~130 ms a job) with the
    resilient scheduler."""

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
        # RQ's own method, with ResilientScheduler in place of RQScheduler.
        options = {k: v for k, v in (("date_format", date_format), ("log_format", log_format)) if v}
        self.scheduler = ResilientScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            serializer=self.serializer,
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
