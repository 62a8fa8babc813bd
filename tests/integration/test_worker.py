"""The Procfile's worker: its scheduler rides out a Redis restart, and a worker killed while it
holds the scheduler lock leaves no orphan scheduler behind (issue 11's chaos findings)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from gateway.jobs import job_queue
from sandbox.local import ROOT, free_port, redis_server_binary, wait_for

LOCK = "rq:scheduler-lock:gateway"


def procfile_worker(url: str) -> tuple[list[str], dict[str, str]]:
    """The Procfile's worker command and the environment it sets, as honcho would run it."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")
    )
    words = shlex.split(line.removeprefix("worker:").replace('"$REDIS_URL"', url))
    env = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "rq"
    return [sys.executable, "-m", "rq.cli", *words[1:]], env


class RedisOnPort:
    """A redis-server with AOF that can be killed and started again on the same port and files."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.folder), "--save", "", "--appendonly", "yes"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for("redis-server", Redis.from_url(self.url).ping, timeout=10, interval=0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisOnPort(tmp_path)
    server.start()
    yield server
    server.process.kill()
    server.process.wait(10)


@pytest.fixture
def spawn(tmp_path, redis_server):
    started: list[subprocess.Popen] = []

    def start(url: str) -> subprocess.Popen:
        command, procfile_env = procfile_worker(url)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": url, **procfile_env}
        log = open(tmp_path / f"worker{len(started)}.log", "ab")  # noqa: SIM115 (kept by the child)
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(10)
    # An orphaned scheduler (the bug) outlives its worker: leave none behind.
    subprocess.run(["pkill", "-9", "-f", redis_server.url], check=False)


def delayed_job_runs(url: str, seconds: float = 1, within: float = 25) -> bool:
    """Whether a job scheduled `seconds` ahead runs within `within` seconds."""
    queue = job_queue(Redis.from_url(url))
    job = queue.enqueue_in(timedelta(seconds=seconds), "os.getpid", result_ttl=60)
    try:
        wait_for("the delayed job", lambda: Job.fetch(job.id, queue.connection).is_finished, within)
    except TimeoutError:
        return False
    return True


def test_the_scheduler_rides_out_a_redis_restart(redis_server, spawn):
    spawn(redis_server.url)
    client = Redis.from_url(redis_server.url)
    wait_for("the scheduler lock", lambda: client.get(LOCK), timeout=20)
    assert delayed_job_runs(redis_server.url)

    redis_server.kill()
    time.sleep(3)  # the scheduler's loop meets the outage (RQ's own one dies of it)
    redis_server.start()

    # RQ's worker would start a scheduler again only at its maintenance interval (10 minutes by
    # default); ours never stopped.
    assert delayed_job_runs(redis_server.url, within=20)


def test_a_killed_scheduler_holder_leaves_no_orphan_and_another_worker_takes_over(
    redis_server, spawn
):
    client = Redis.from_url(redis_server.url)
    first = spawn(redis_server.url)
    wait_for("the scheduler lock", lambda: client.get(LOCK), timeout=20)
    second = spawn(redis_server.url)
    wait_for("two workers", lambda: len(client.smembers("rq:workers")) == 2, timeout=20)
    holder = client.get(LOCK).decode()

    first.send_signal(signal.SIGKILL)
    first.wait(10)

    # Its scheduler, a forked child, notices within a second and lets the lock go...
    wait_for("the lock to be released", lambda: client.get(LOCK) != holder.encode(), timeout=10)
    # ...and the other worker's scheduler takes it at its next maintenance (15 s in the Procfile).
    wait_for("another scheduler", lambda: client.get(LOCK) is not None, timeout=30)
    assert client.get(LOCK).decode() != holder
    assert second.poll() is None
    assert delayed_job_runs(redis_server.url, within=20)
