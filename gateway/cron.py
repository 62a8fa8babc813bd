"""The Procfile's cron process: RQ's cron scheduler running gateway.jobs.schedule (the
reconciliation, the delivery watchdog), riding out Redis outages.

`rq cron` (RQ 2.12) ends at the first connection error it meets, and it meets one whenever
Redis restarts while it is awake: the watchdog and the 15-minute reconciliation then stopped
until someone started it again (the chaos test found it). This loop is RQ's, waiting for Redis
where RQ's would quit.

    python -m gateway.cron            # on REDIS_URL, as every other process
"""

from __future__ import annotations

import argparse
import time
from contextlib import suppress
from dataclasses import replace

from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from gateway.failover import redis_client
from gateway.settings import Settings
from gateway.worker import REDIS_DOWN

SCHEDULE = "gateway.jobs.schedule"  # the periodic jobs, declared in one list
RETRY_SECONDS = 1  # how soon Redis is asked again after a connection error


class ResilientCronScheduler(CronScheduler):
    """RQ's CronScheduler whose loop waits for Redis instead of ending."""

    def start(self) -> None:
        self.log.info("CronScheduler %s: starting...", self.name)
        self._install_signal_handlers()
        born = False
        try:
            while True:
                try:
                    if not born:
                        self.register_birth()
                        born = True
                    if self.enqueue_jobs():  # a job that could not be enqueued stays due
                        self.save()
                    self.heartbeat()
                    pause = self.calculate_sleep_interval()
                except REDIS_DOWN as error:
                    self.log.warning("cron: Redis unavailable (%s); trying again", error)
                    pause = RETRY_SECONDS
                if pause > 0:
                    time.sleep(pause)
        except (KeyboardInterrupt, StopRequested):
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            with suppress(*REDIS_DOWN):
                self.register_death()
            self.log.info("CronScheduler %s: shutdown complete", self.name)


def main(argv: list[str] | None = None) -> None:
    """Run the cron process until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="The gateway's periodic jobs (rq cron).")
    parser.add_argument("--logging-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    args = parser.parse_args(argv)
    # The primary (through the Sentinels when set), as the workers reach it: the jobs it
    # enqueues don't wait for replicas (REDIS_WAIT_REPLICAS is for answers the web gives).
    config = replace(Settings.from_env(), redis_wait_replicas=0)
    redis = redis_client(config, socket_timeout=10, socket_connect_timeout=2)
    scheduler = ResilientCronScheduler(connection=redis, logging_level=args.logging_level)
    scheduler.load_config_from_file(SCHEDULE)
    scheduler.start()


if __name__ == "__main__":
    main()
