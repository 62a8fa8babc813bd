"""Buyer stores whose order webhooks were lost (WooCommerce never retries one): the
reconciliation finds each missed order once; the CLI runs a cycle and says what it did."""

from __future__ import annotations

import pytest
from conftest import bearer
from flask.testing import FlaskCliRunner

from e2e.sides import SKUS, Side
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
    buyer, seller = Side(env, platform, "buyer"), Side(env, "none", "seller")
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
