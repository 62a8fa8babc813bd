"""The worker and the cron process wait out a Redis outage instead of quitting (gateway/worker.py,
gateway/cron.py): RQ's own loops end at the first connection error they meet, and under honcho
(./scripts/run) one process ending stops them all."""

from __future__ import annotations

import time

import pytest
from redis import Redis

from sandbox.local import LocalGateway, wait_for

OUTAGE = 8  # seconds: longer than the cron's 5 s watchdog interval, so it wakes up meanwhile


@pytest.mark.timeout(120)
def test_worker_and_cron_wait_out_a_long_redis_outage():
    gateway = LocalGateway(1, cron=True, prefix="outage-")
    gateway.start()
    try:
        redis = Redis.from_url(gateway.redis_url)
        worker = redis.hgetall("rq:worker:worker0")
        assert worker, "the worker registered under its name"
        gateway.kill_redis()
        time.sleep(OUTAGE)
        gateway.restart_redis()
        done = int(redis.hget("rq:worker:worker0", "successful_job_count") or 0)

        # The cron enqueues its watchdog again (every 5 s) and the same worker runs it.
        wait_for(
            "a job done after the outage",
            lambda: int(redis.hget("rq:worker:worker0", "successful_job_count") or 0) > done,
            timeout=40,
        )
        for name in ("worker0", "cron", "gunicorn"):
            assert gateway.children[name].poll() is None, f"{name} exited; see {gateway.folder}"
        for name in ("worker0", "cron"):
            log = (gateway.folder / f"{name}.log").read_text()
            assert "Redis unavailable" in log, f"{name} never met the outage"
        assert redis.get("rq:scheduler-lock:gateway") == b"worker0"  # its scheduler lived on too
    finally:
        gateway.stop()
