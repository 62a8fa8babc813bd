"""End-to-end fixtures: the platform simulators beside the live gateway and a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from conftest import admin_headers

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
def sides_env(
    client,
    live_server,
    worker,
    connect,
    partnership,
    shopify_sim,
    bigcommerce_sim,
    woocommerce_sim,
    callback_receiver,
    mailbox,
):
    """What the Sides (e2e/sides.py) of every platform need: the gateway with a worker, each
    platform's simulator, a callback receiver and the mailbox."""
    return SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        partnership=partnership,
        callbacks=callback_receiver,
        shopify=shopify_sim,
        bigcommerce=bigcommerce_sim,
        woocommerce=woocommerce_sim,
        mailbox=mailbox,
        woo_tracking=None,  # a WooCommerce buyer's tracking plugin (sides.py), none by default
    )


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
