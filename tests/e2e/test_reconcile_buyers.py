"""Buyer stores whose order webhooks were lost (WooCommerce never retries one): the
reconciliation finds each missed order once; the CLI runs a cycle and says what it did."""

from __future__ import annotations

import pytest
from conftest import bearer
from flask.testing import FlaskCliRunner

from e2e.sides import SKUS, side
from e2e.test_reconcile import drain
from sandbox.bigcommerce import BigCommerceSimulator
from sandbox.woocommerce import WooCommerceSimulator


@pytest.fixture
def sims(shopify_sim):
    bigcommerce, woocommerce = BigCommerceSimulator(), WooCommerceSimulator()
    bigcommerce.start()
    woocommerce.start()
    yield {"shopify": shopify_sim, "bigcommerce": bigcommerce, "woocommerce": woocommerce}
    bigcommerce.stop()
    woocommerce.stop()


@pytest.mark.parametrize("platform", ["shopify", "bigcommerce", "woocommerce"])
def test_a_missed_buyer_order_is_created_once_by_the_cli_cycle(
    platform, app, client, live_server, worker, connect, partnership, sims, callback_receiver, redis
):
    from types import SimpleNamespace

    env = SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        callbacks=callback_receiver,
        shopify=sims["shopify"],
        bigcommerce=sims["bigcommerce"],
        woocommerce=sims["woocommerce"],
        woo_tracking=False,
    )
    buyer, seller = side(env, platform, "buyer"), side(env, "none", "seller")
    buyer.connect()
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)
    sim = sims[platform]
    if platform == "shopify":
        sim.set_webhook_mode("drop")
    else:
        sim.webhook_mode = "drop"
    ref = buyer.place_order(seller.partner)
    key = bearer(buyer.partner["api_key"])
    assert client.get("/api/v1/orders", headers=key).get_json()["orders"] == []

    runner = FlaskCliRunner(app)
    first = runner.invoke(args=["reconcile"])
    assert first.exit_code == 0, first.output
    assert f"{buyer.partner['name']} ({platform}" in first.output
    assert "ingested 1" in first.output
    drain(redis)
    orders = client.get("/api/v1/orders", headers=key).get_json()["orders"]
    assert [o["buyer_order_ref"] for o in orders] == [ref]

    second = runner.invoke(args=["reconcile"])
    assert "ingested 0" in second.output
    drain(redis)
    assert len(client.get("/api/v1/orders", headers=key).get_json()["orders"]) == 1


def test_a_listed_change_whose_sync_is_lost_is_asked_again_next_cycle(
    client, live_server, connect, partnership, sims, callback_receiver, redis
):
    """BigCommerce listings carry no shipments: a listed order is synced by a job of its own;
    if that job is lost after the cursor moved on, the next cycle asks for it again."""
    from types import SimpleNamespace

    from gateway.jobs import job_queue
    from gateway.jobs.reconcile import reconcile_store
    from gateway.jobs.routing import route_order
    from gateway.jobs.sync import sync_seller
    from gateway.store import key

    env = SimpleNamespace(
        client=client,
        live_server=live_server,
        connect=connect,
        callbacks=callback_receiver,
        shopify=sims["shopify"],
        bigcommerce=sims["bigcommerce"],
        woocommerce=sims["woocommerce"],
        woo_tracking=False,
    )
    buyer, seller = side(env, "none", "buyer"), side(env, "bigcommerce", "seller")
    buyer.connect()
    seller.connect()
    partnership(buyer.partner, seller.partner, SKUS)
    sims["bigcommerce"].webhook_mode = "drop"
    buyer.place_order(seller.partner)
    order = client.get("/api/v1/orders", headers=bearer(buyer.partner["api_key"])).get_json()[
        "orders"
    ][0]
    assert route_order(order["id"]) == "delivered"
    order = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer.partner["api_key"]))
    order = order.get_json()
    seller.fulfill(order, "AC-100", 2, "UPS", "1Z5R89390357567127")

    queue = job_queue(redis)
    queue.empty()
    assert reconcile_store(seller.partner["id"])["synced"] == 1
    owed = key("owed-syncs", seller.partner["id"])
    assert redis.hexists(owed, order["id"])
    queue.empty()  # the sync job is lost; the cursor has moved past the change

    reconcile_store(seller.partner["id"])
    assert any(job.func_name.endswith("sync_seller") for job in queue.get_jobs())
    assert sync_seller(order["id"]) == "changed"
    assert not redis.hexists(owed, order["id"])
