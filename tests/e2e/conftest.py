"""End-to-end fixtures: the platform simulators beside the live gateway and a real worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from conftest import admin_headers, free_port, running_worker
from werkzeug.serving import make_server

from sandbox.bigcommerce import BigCommerceSimulator
from sandbox.shopify import ShopifySimulator
from sandbox.woocommerce import WooCommerceSimulator


@pytest.fixture
def shopify_sim() -> Iterator[ShopifySimulator]:
    """A Shopify simulator on a free loopback port."""
    with ShopifySimulator() as sim:
        yield sim


@pytest.fixture
def bigcommerce_sim() -> Iterator[BigCommerceSimulator]:
    """A BigCommerce simulator on a free loopback port."""
    with BigCommerceSimulator() as sim:
        yield sim


@pytest.fixture
def woocommerce_sim() -> Iterator[WooCommerceSimulator]:
    """A WooCommerce simulator on a free loopback port."""
    with WooCommerceSimulator() as sim:
        yield sim


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


@pytest.fixture
def connect(client):
    """Create a partner (via the operator API) for a simulated store; returns its creation."""

    def make(platform: str, connection: dict, name: str, **fields) -> dict:
        body = {
            "name": name,
            "email": f"{name.lower().replace(' ', '.')}@example.com",
            "platform": platform,
            "connection": connection,
            **fields,
        }
        answer = client.post("/api/v1/partners", json=body, headers=admin_headers())
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    return make


@pytest.fixture
def partnership(client):
    """Map buyer SKUs to a seller's."""

    def make(buyer: dict, seller: dict, skus: dict[str, str]) -> None:
        pairs = [{"buyer_sku": b, "seller_sku": s} for b, s in skus.items()]
        answer = client.post(
            "/api/v1/partnerships",
            json={"buyer_id": buyer["id"], "seller_id": seller["id"], "skus": pairs},
            headers=admin_headers(),
        )
        assert answer.status_code == 201, answer.get_json()

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, for the diagnostics below."""
    outcome = yield
    setattr(item, f"report_{call.when}", outcome.get_result())


@pytest.fixture(autouse=True)
def diagnostics(request, redis):
    """On failure, print every order's timeline and the failed jobs: what a person would read."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    from rq.registry import FailedJobRegistry

    from gateway.jobs import job_queue

    for key in sorted(redis.keys("gw:timeline:*")):
        print(f"--- {key.decode()}")
        for raw in redis.lrange(key, 0, -1):
            entry = json.loads(raw)
            print(f"  {entry['at']} {entry['type']}: {entry['message']}")
    registry = FailedJobRegistry(queue=job_queue(redis))
    for job in registry.get_job_ids():
        failed = registry.get_queue().fetch_job(job)
        print(f"--- failed job {failed.func_name}{failed.args}\n{failed.exc_info}")
