"""Fixtures: a real redis-server per session, real RQ workers, a real SMTP server, live servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from aiosmtpd.controller import Controller
from rq import Worker
from werkzeug.serving import make_server

from sandbox.local import free_port, start_redis

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token"
LOCAL_HOSTS = "127.0.0.0/8,::1,localhost"  # ALLOW_PRIVATE_HOSTS: the simulators and receivers
ENCRYPTION_KEY = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcyEhISE="  # a Fernet key for tests only
APP_PLATFORMS = ("SHOPIFY", "BIGCOMMERCE")  # platforms where the gateway is an app with a secret


def wait_for(
    condition: Callable[[], object], timeout: float = 15, what: str = "condition"
) -> object:
    """Poll until `condition()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole test session."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait(10)


class Mailbox:
    """Messages received by the test SMTP server."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode(),
            }
        )
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", mailbox
    controller.stop()


@pytest.fixture(scope="session")
def gateway_env(redis_url, smtp_server, tmp_path_factory) -> dict[str, str]:
    """The environment shared by the app under test and its worker processes."""
    env = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key",
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "PUBLIC_URL": "http://127.0.0.1:8000",
        "MAIL_URL": smtp_server[0],
        "MAIL_FROM": "Gateway <gateway@test.example>",
        "OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
        "DELIVERY_RETRY_SCHEDULE": "1,1",
        "MAIL_RETRY_SCHEDULE": "1,1",
        "HTTP_TIMEOUT": "3",
        "ALLOW_PRIVATE_HOSTS": LOCAL_HOSTS,
        # The gateway's own apps on the platforms, as the simulators know them (APP below).
        **{f"{name}_CLIENT_ID": f"{name.lower()}-test-client-id" for name in APP_PLATFORMS},
        **{f"{name}_CLIENT_SECRET": f"{name.lower()}-test-client-secret" for name in APP_PLATFORMS},
    }
    os.environ.update(env)
    return env


@pytest.fixture(autouse=True)
def local_outbound(monkeypatch) -> None:
    """Outbound calls may reach the loopback servers of any test (simulators, receivers), and
    no test asks DNS: a name other than localhost does not resolve (a test that needs one to
    stubs `gateway.outbound.resolve` itself)."""
    from gateway import outbound

    monkeypatch.setenv("ALLOW_PRIVATE_HOSTS", LOCAL_HOSTS)  # before gateway_env, if ever first

    real = outbound.resolve

    def resolve(host: str, port: int) -> list[str]:
        if host == "localhost":
            return real(host, port)
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: not resolved in tests")

    monkeypatch.setattr(outbound, "resolve", resolve)


@pytest.fixture
def redis(gateway_env, redis_url) -> Iterator[redis_lib.Redis]:
    """The session's Redis, emptied before each test."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    """The SMTP server's mailbox, emptied before each test."""
    smtp_server[1].messages.clear()
    return smtp_server[1]


@pytest.fixture
def app(redis):
    """The app, configured from the test environment."""
    from gateway import create_app
    from gateway.settings import Settings

    app = create_app(Settings.from_env(flask={"TESTING": True}))
    return app


@pytest.fixture
def client(app):
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def worker(redis, gateway_env) -> Iterator[subprocess.Popen]:
    """A real `rq worker --with-scheduler` process on the gateway's queues, for one test."""
    with running_worker(redis, gateway_env) as process:
        yield process


@contextmanager
def running_worker(redis, env_vars: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A real worker process as the Procfile runs it, with these settings."""
    env = {**os.environ, **env_vars, "PYTHONPATH": str(ROOT)}
    before = Worker.count(connection=redis)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rq.cli",
            "worker",
            "--with-scheduler",
            "--worker-class",
            "gateway.worker.GatewayWorker",  # as the Procfile runs it
            "--maintenance-interval",
            "15",
            "--serializer",
            "rq.serializers.JSONSerializer",
            "-u",
            env_vars["REDIS_URL"],
            "--logging_level",
            "WARNING",
            "connections",
            "gateway",
            "callbacks",  # the Procfile gives this queue workers of its own
        ],
        cwd=ROOT,
        env=env,
    )
    wait_for(lambda: Worker.count(connection=redis) > before, 20, "the RQ worker to register")
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app on a real threaded HTTP server on loopback; yields its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


class CallbackReceiver:
    """A buyer's callback endpoint: records each request; answers from a list of statuses."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # consumed one per request; 200 when empty
        self.url = ""

    def events(self) -> list[dict]:
        """The JSON bodies received with a 2xx answer."""
        return [json.loads(r["body"]) for r in self.requests if r["answered"] < 300]


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    """A local HTTP server standing in for a buyer's callback URL."""
    receiver = CallbackReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            with lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append(
                    {
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "answered": status,
                    }
                )
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()


# ---- API helpers -------------------------------------------------------------------------------


def admin_headers() -> dict[str, str]:
    """The operator's Authorization header."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    """A partner's Authorization header."""
    return {"Authorization": f"Bearer {key}"}


def edit_order(redis, order_id: str, change) -> None:
    """Change the stored document directly: a state the workers would reach in time."""
    from gateway.model import Order
    from gateway.store import key

    order = Order.from_doc(json.loads(redis.get(key("order", order_id))))
    change(order)
    redis.set(key("order", order_id), json.dumps(order.to_doc()))


ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province": "IL",
    "zip": "62701",
    "country_code": "US",
}


@pytest.fixture
def make_partner(client):
    """Create a partner through the API; returns its creation answer (with api_key)."""

    def make(platform: str = "none", **fields) -> dict:
        body = {
            "name": f"{platform} partner",
            "email": "ops@example.com",
            "platform": platform,
            "connection": {},
            **fields,
        }
        answer = client.post("/api/v1/partners", json=body, headers=admin_headers())
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    return make


@pytest.fixture
def pair(client, make_partner):
    """A buyer and a seller (no platform) with a partnership mapping two SKUs."""

    def make(
        buyer_fields: dict | None = None, seller_platform: str = "none", seller_connection=None
    ):
        buyer = make_partner("none", **(buyer_fields or {}))
        seller = make_partner(seller_platform, connection=seller_connection or {})
        answer = client.post(
            "/api/v1/partnerships",
            json={
                "buyer_id": buyer["id"],
                "seller_id": seller["id"],
                "skus": [
                    {"buyer_sku": "MUG-BLUE", "seller_sku": "AC-100"},
                    {"buyer_sku": "MUG-RED", "seller_sku": "AC-200"},
                ],
            },
            headers=admin_headers(),
        )
        assert answer.status_code == 201, answer.get_json()
        return buyer, seller

    return make


@pytest.fixture
def make_order(client):
    """Post an order as the buyer; returns the Order JSON."""

    def make(
        buyer: dict, seller: dict, ref: str = "1001", lines=None, email: str = "ada@example.com"
    ) -> dict:
        body = {
            "seller_id": seller["id"],
            "buyer_order_ref": ref,
            "line_items": lines
            or [
                {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"},
                {"sku": "MUG-RED", "quantity": 1, "title": "Red mug"},
            ],
            "shipping_address": ADDRESS,
            "customer_email": email,
        }
        answer = client.post("/api/v1/orders", json=body, headers=bearer(buyer["api_key"]))
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    return make


@dataclass
class InstalledGateway:
    """A gateway whose PUBLIC_URL is where it listens, as a deployment's is: the hooks it
    registers in a store reach it, and its connect links open. `browser` plays the store
    owner's browser (it keeps cookies and follows no redirect by itself)."""

    url: str
    app: object
    browser: requests.Session

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A call to its API as the operator."""
        return requests.request(
            method, f"{self.url}{path}", headers=admin_headers(), timeout=10, **kwargs
        )


@pytest.fixture
def installed_gateway(redis, gateway_env, monkeypatch) -> Iterator[InstalledGateway]:
    """The app on a real server and a worker, both with PUBLIC_URL = that server's URL."""
    from gateway import create_app
    from gateway.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("PUBLIC_URL", url)
    app = create_app(Settings.from_env(flask={"TESTING": True}))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with running_worker(redis, {**gateway_env, "PUBLIC_URL": url}):
        browser = requests.Session()
        yield InstalledGateway(url, app, browser)
        browser.close()
    server.shutdown()
    thread.join(5)
