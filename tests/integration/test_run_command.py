"""The README's run command: the URL it prints is where the gateway answers (and the base of
its emailed links), everything it starts listens on loopback only, and stopping it stops them
all. Run with ports and a data folder of its own, so it collides with nothing."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
from conftest import ROOT
from redis import Redis
from redis.exceptions import NoPermissionError

from sandbox.local import free_port, redis_server_binary

# Settings other tests may have put in this process's environment: the run command must choose
# its own.
CLEARED = ("REDIS_URL", "PUBLIC_URL", "BIND", "SECRET_KEY", "GATEWAY_ADMIN_TOKEN", "OUTBOX_DIR")
CLEARED += ("MAIL_URL", "ENCRYPTION_KEYS")


class Output:
    """The command's output, read line by line in a thread so that waiting for a line is
    bounded in time."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r} in {timeout}s:\n{self.text()}")

    def text(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "".join(self.lines)


def healthy(url: str) -> dict | None:
    """/healthz's answer once Redis answers and the worker is in; else None."""
    try:
        answer = requests.get(f"{url}/healthz", timeout=2)
    except requests.RequestException:
        return None
    body = answer.json() if answer.status_code == 200 else {}
    return body if body.get("redis") == "ok" and body.get("workers") == 1 else None


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("listen", "stop"), [("PORT", "ctrl-c"), ("BIND", "sigterm")])
def test_run_serves_where_it_says_and_stops_everything(tmp_path: Path, listen: str, stop: str):
    port, redis_port = free_port(), free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in CLEARED and k != "PORT"}
    env |= {"REDIS_PORT": str(redis_port), "DATA_DIR": str(data)}
    # PORT alone, or BIND alone (then PORT is unset, and honcho would say 5000)
    env[listen] = str(port) if listen == "PORT" else f"127.0.0.1:{port}"
    own_data = ROOT / "data"
    own_data_before = sorted(os.listdir(own_data)) if own_data.exists() else None

    run = subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=tmp_path,  # DATA_DIR and the script's own paths do not depend on it
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    output = Output(run.stdout)
    started: list[psutil.Process] = []
    try:
        # The first run may install the pinned requirements (a no-op when they are there).
        url = output.wait_for(r"^gateway on (\S+)", timeout=150).group(1)
        assert url == f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not (health := healthy(url)) and time.monotonic() < deadline:
            assert run.poll() is None, output.text()
            time.sleep(0.2)
        assert health, output.text()
        assert health["status"] == "ok"
        assert f"is in {data}/admin-token" in output.text()
        # A sign-in or connect link's token is in its path: the access log masks it.
        for path in ("/connect/link-token-in-the-path", "/signin/signin-token-in-the-path"):
            requests.get(f"{url}{path}", timeout=10)
        output.wait_for(r'"GET /signin/\[token\]"', timeout=30)
        assert "token-in-the-path" not in output.text()
        assert '"GET /connect/[token]"' in output.text()

        started = descendants(run.pid)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        # Its Redis lets no one in without the password kept in DATA_DIR, and lets the gateway
        # do its work but not administer Redis; no secret is printed or on a command line.
        with socket.create_connection(("127.0.0.1", redis_port), timeout=5) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(100).startswith(b"-NOAUTH")
        password = (data / "redis-password").read_text().strip()
        with Redis(port=redis_port, username="gateway", password=password) as gateway:
            assert gateway.ping()
            with pytest.raises(NoPermissionError):
                gateway.flushall()
        for secret in ("redis-password", "encryption-key", "secret-key", "admin-token"):
            value = (data / secret).read_text().strip()
            assert value not in output.text() and value not in names, secret
            assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600, secret
        for expected in ("redis-server", "honcho", "gunicorn", "rq worker", "gateway.cron"):
            assert expected in names, names
        gunicorn = next(p for p in started if "gunicorn" in " ".join(p.cmdline()))
        worker = next(p for p in started if "rq worker" in " ".join(p.cmdline()))
        for process in (gunicorn, worker):  # the web pages' links and the emailed ones
            assert process.environ()["PUBLIC_URL"] == url
        redis = next(p for p in started if "redis-server" in " ".join(p.cmdline()))
        assert redis.exe() == os.path.realpath(redis_server_binary())  # the tests' choice too
        listens = {
            (c.laddr.ip, c.laddr.port)
            for p in started
            for c in p.net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listens == {("127.0.0.1", port), ("127.0.0.1", redis_port)}
        # nor on a socket file shared with other runs (gunicorn's control socket in ~/.gunicorn)
        assert not {c.laddr for p in started for c in p.net_connections("unix") if c.laddr}

        if stop == "ctrl-c":  # what the terminal does: SIGINT to the whole foreground group
            os.killpg(run.pid, signal.SIGINT)
        else:  # what a supervisor does: SIGTERM to the command
            run.send_signal(signal.SIGTERM)
        run.wait(30)
        _, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"left running: {alive}\n{output.text()}"
        assert not listening(port) and not listening(redis_port)
    finally:
        for process in [*descendants(run.pid), *started]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)

    assert (data / "admin-token").is_file()
    assert (data / "redis" / "redis.log").is_file()
    own_data_after = sorted(os.listdir(own_data)) if own_data.exists() else None
    assert own_data_after == own_data_before
