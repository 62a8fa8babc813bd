"""Operator commands and the operations endpoints."""

from __future__ import annotations

import re

from conftest import admin_headers, bearer
from flask.testing import FlaskCliRunner


def test_cli_creates_partners_and_a_partnership_that_the_api_then_honours(app, client, redis):
    runner = FlaskCliRunner(app)
    made = {}
    for role in ("buyer", "seller"):
        result = runner.invoke(
            args=[
                "partners",
                "create",
                "--name",
                f"The {role}",
                "--email",
                f"{role}@example.com",
                "--platform",
                "none",
            ]
        )
        assert result.exit_code == 0, result.output
        made[role] = {
            "id": re.search(r"partner id:\s+(\S+)", result.output).group(1),
            "key": re.search(r"api key:\s+(\S+)", result.output).group(1),
        }
        assert re.search(r"event signing secret:\s+whsec_\S+", result.output)
    result = runner.invoke(
        args=[
            "partnerships",
            "create",
            "--buyer",
            made["buyer"]["id"],
            "--seller",
            made["seller"]["id"],
            "--sku",
            "MUG-BLUE=AC-100",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "created (1 SKUs)" in result.output
    # The buyer's key works, and the partnership maps its SKU.
    answer = client.post(
        "/api/v1/orders",
        headers=bearer(made["buyer"]["key"]),
        json={
            "seller_id": made["seller"]["id"],
            "buyer_order_ref": "77",
            "line_items": [{"sku": "MUG-BLUE", "quantity": 1}],
            "shipping_address": {
                "name": "Ada",
                "address1": "1 Main St",
                "city": "X",
                "country_code": "US",
            },
        },
    )
    assert answer.status_code == 201
    assert answer.get_json()["line_items"][0]["seller_sku"] == "AC-100"


def test_cli_refuses_bad_input_with_the_field_and_stores_nothing(app, redis):
    runner = FlaskCliRunner(app)
    result = runner.invoke(args=["partners", "create", "--name", "X", "--email", "not-an-email"])
    assert result.exit_code != 0
    assert "email" in result.output
    result = runner.invoke(
        args=[
            "partners",
            "create",
            "--name",
            "X",
            "--email",
            "a@b.example",
            "--platform",
            "shopify",
            "--connection",
            "{nope",
        ]
    )
    assert result.exit_code != 0 and "not JSON" in result.output
    result = runner.invoke(
        args=[
            "partnerships",
            "create",
            "--buyer",
            "ptr_x",
            "--seller",
            "ptr_y",
            "--sku",
            "NOEQUALS",
        ]
    )
    assert result.exit_code != 0 and "BUYER_SKU=SELLER_SKU" in result.output
    assert [k for k in redis.keys("gw:*") if k != b"gw:metrics"] == []


def test_metrics_show_counters_gauges_and_the_reconcile_lag(client, pair, make_order, redis):
    buyer, seller = pair()
    make_order(buyer, seller)
    redis.hset("gw:cursors", "ptr_x:seller", "2026-01-01T00:00:00Z")
    redis.hincrby("gw:metrics", "reconcile_runs", 2)
    text = client.get("/metrics", headers=admin_headers()).get_data(as_text=True)
    assert "gateway_reconcile_runs_total 2" in text
    lag = float(re.search(r"^gateway_reconcile_lag_seconds (\S+)$", text, re.M).group(1))
    assert lag > 3600  # the cursor is months old
    assert re.search(r"^gateway_queue_depth 1$", text, re.M)  # the routing job


def test_healthz_is_503_when_redis_is_down(redis):
    from conftest import free_port

    from gateway import create_app
    from gateway.settings import Settings

    down = create_app(Settings.from_env(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    answer = down.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json()["redis"] != "ok"


def test_the_cron_config_schedules_reconcile_every_15_minutes_utc(redis):
    """What the Procfile's cron (`python -m gateway.cron`) loads."""
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=redis)
    scheduler.load_config_from_file("gateway.jobs.schedule")
    job, watchdog = sorted(scheduler.get_jobs(), key=lambda j: j.func.__name__)
    assert job.func.__module__ == "gateway.jobs.reconcile" and job.func.__name__ == "reconcile"
    assert job.cron == "*/15 * * * *"
    assert job.queue_name == "gateway"
    # And the watchdog that enqueues lost deliveries again within seconds (issue 11).
    assert watchdog.func.__name__ == "watch_deliveries"
    assert watchdog.interval == 5 and watchdog.queue_name == "gateway"
