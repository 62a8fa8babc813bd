"""What one reconciliation cycle costs: Shopify API calls against 10 simulated shops holding
10,000 unshipped orders, 1% changed since the last cycle (DESIGN.md's target: about one call per
page of changed orders plus one per store, never one per unshipped order).

    .venv/bin/python bench/reconcile_cost.py [--stores 10] [--orders 1000] [--changed 0.01] \
        [--runs 3]

SCALING.md's size: `--stores 200 --orders 500` (100,000 unshipped orders; about 2 minutes to
set up on 2 cores). Prints the call counts of each run (deterministic), its duration and CPU
(the gateway's code, Redis; the simulated shops run in this process too, on the same cores),
beside two baselines: reading every unshipped order once, the cost the design avoids, and a
cycle in which nothing changed (one listing call per connection), measured in the same run.
From those two it prints the cost per connection and per changed order, and what a cycle of
1,000 connections would take at 10,000 and 100,000 changed orders.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import start_redis


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--orders", type=int, default=1000, help="unshipped orders per store")
    parser.add_argument("--changed", type=float, default=0.01, help="share changed per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    redis_process, redis_url = start_redis()
    os.environ.update({"REDIS_URL": redis_url, "SECRET_KEY": "bench", "MAIL_URL": ""})
    os.environ["ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8,::1,localhost"  # the simulated shops
    try:
        run(args, redis_process.pid)
    finally:
        redis_process.terminate()


def run(args: argparse.Namespace, redis_pid: int | None = None) -> dict[str, float]:
    """Set up the stores, run the cycles, print the figures; returns the figures too. Redis's
    CPU is measured when its process id is given."""
    from gateway.jobs.reconcile import reconcile_store
    from gateway.model import Delivery, LineItem, Order, new_id, now_iso
    from gateway.runtime import connect
    from gateway.settings import Settings
    from sandbox.shopify import ShopifySimulator

    config = Settings.from_env()
    store = connect(config)
    store.redis.flushall()
    empty_memory, setup = store.redis.info("memory")["used_memory"], time.perf_counter()
    sim = ShopifySimulator(max_query_cost=1000)
    base = sim.start()
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    sellers = []
    for index in range(args.stores):
        domain = f"seller{index}.myshopify.com"
        shop = sim.add_shop(domain, f"shpat_{index}", f"secret{index}")
        shop.set_rate_limit(maximum_available=10**9, restore_rate=10**9, currently_available=10**9)
        shop.bulk_load_orders(
            args.orders, line_items=[{"sku": "AC-100", "quantity": 1}], updated_at=long_ago
        )
        partner = {
            "id": new_id("ptr"),
            "name": domain,
            "email": "ops@example.com",
            "platform": "shopify",
            "callback_url": None,
            "event_signing_secret": "whsec_x",
            "created_at": iso(long_ago),
            "connection": {
                "shop_domain": domain,
                "access_token": f"shpat_{index}",
                "webhook_secret": f"secret{index}",
                "api_base_url": base,
            },
        }
        store.add_partner(partner, new_id("key"), [f"shopify:{domain}"], has_store=True)
        shop_orders = shop.orders()
        with store.redis.pipeline(transaction=False) as pipe:
            for seller_order in shop_orders:
                line = seller_order["line_items"][0]
                order = Order(
                    id=new_id("ord"),
                    buyer_id="ptr_buyer",
                    seller_id=partner["id"],
                    buyer_order_ref=seller_order["legacy_id"],
                    seller_order_ref=seller_order["legacy_id"],
                    line_items=[
                        LineItem(new_id("li"), "MUG", "AC-100", "Mug", 1, seller_ref=line["id"])
                    ],
                    created_at=now_iso(),
                    updated_at=now_iso(),
                    routing=Delivery("delivered", 1),
                )
                store._write_order(pipe, order, [], [])
            pipe.execute()
        sellers.append((partner, shop, shop_orders))
    unshipped = sum(store.unshipped_count(p["id"]) for p, _, _ in sellers)
    memory = store.redis.info("memory")["used_memory"] - empty_memory
    per_store = max(1, round(args.orders * args.changed))
    changed_total = per_store * args.stores
    bound = 2 * (changed_total / config.reconcile_page_size + args.stores)
    print(
        f"{args.stores} stores, {unshipped} unshipped orders ({memory / 1e6:.0f} MB of Redis, "
        f"{memory / max(1, unshipped):.0f} B each: one line, no timeline), {changed_total} "
        f"changed per run ({args.changed:.1%}), page size {config.reconcile_page_size}; "
        f"set up in {time.perf_counter() - setup:.0f} s"
    )
    print(f"target: at most about 2 x (changed / page size + connections) = {bound:.0f} calls")
    print(f"baseline avoided: one read per unshipped order = {unshipped} calls\n")
    redis_process = psutil.Process(redis_pid) if redis_pid else None

    def redis_seconds() -> float:
        return sum(redis_process.cpu_times()[:2]) if redis_process else 0.0

    def cycle(label: str, number: int, changes: int) -> dict[str, float]:
        """One cycle over every store after `changes` orders changed in each; its figures."""
        # Steady state: the last cycle saw everything up to now (its cursor, less the overlap
        # window, is now); then some orders change.
        time.sleep(1.1)  # the last cycle's changes are in an earlier (whole) second
        last_cycle = iso(datetime.now(UTC) + timedelta(seconds=config.reconcile_overlap))
        for partner, _, _ in sellers:
            store.redis.hset("gw:cursors", f"{partner['id']}:seller", last_cycle)
        time.sleep(1.1)  # Shopify's timestamps are whole seconds
        for _, shop, shop_orders in sellers:
            for seller_order in shop_orders[number * changes : (number + 1) * changes]:
                shop.fulfill(seller_order["id"], company="UPS", numbers=["1Z5R89390357567127"])
        sim.reset_calls()
        redis_cpu = redis_seconds()
        started, cpu = time.perf_counter(), time.thread_time()  # this thread: the gateway's code
        for partner, _, _ in sellers:
            reconcile_store(partner["id"])
        figures = {
            "seconds": time.perf_counter() - started,
            "gateway_cpu": time.thread_time() - cpu,
            "redis_cpu": redis_seconds() - redis_cpu,
        }
        calls = sim.calls()
        by_field: dict[str, int] = {}
        for call in calls:
            for field in call["fields"]:
                by_field[field] = by_field.get(field, 0) + 1
        figures["calls"] = len(calls)
        shipped = unshipped - sum(store.unshipped_count(p["id"]) for p, _, _ in sellers)
        print(
            f"{label}: {len(calls)} calls {by_field}, {shipped} orders shipped so far, "
            f"{figures['seconds']:.2f} s (gateway CPU {figures['gateway_cpu']:.2f} s, Redis "
            f"CPU {figures['redis_cpu']:.2f} s; the rest is the simulated shops)"
        )
        return figures

    # The baseline: a cycle in which nothing changed costs one listing call per connection.
    quiet = cycle("nothing changed (baseline)", 0, 0)
    runs = [cycle(f"run {n + 1}", n, per_store) for n in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"\nmedian calls per run: {median['calls']:.0f} (ratio to target "
        f"{median['calls'] / bound:.2f}, to the per-order baseline "
        f"{median['calls'] / unshipped:.4f}, to the quiet cycle "
        f"{median['calls'] / quiet['calls']:.2f})"
    )
    print(
        f"median duration per run: {median['seconds']:.2f} s (quiet cycle {quiet['seconds']:.2f} "
        f"s, ratio {median['seconds'] / quiet['seconds']:.2f}); gateway CPU "
        f"{median['gateway_cpu']:.2f} s, Redis CPU {median['redis_cpu']:.2f} s"
    )
    per_connection = quiet["seconds"] / args.stores
    per_change = (median["seconds"] - quiet["seconds"]) / changed_total
    cpu_connection = quiet["gateway_cpu"] / args.stores
    cpu_change = (median["gateway_cpu"] - quiet["gateway_cpu"]) / changed_total
    print(
        f"per connection {1000 * per_connection:.1f} ms ({1000 * cpu_connection:.1f} ms gateway "
        f"CPU), per changed order {1000 * per_change:.1f} ms ({1000 * cpu_change:.1f} ms gateway "
        f"CPU), on one process"
    )
    for connections, changed in ((1000, 10_000), (1000, 100_000)):
        seconds = connections * per_connection + changed * per_change
        print(
            f"model: {connections} connections, {changed} changed orders per cycle: "
            f"{seconds:.0f} s of one worker ({seconds / 900:.2f} of the 15-minute cycle), "
            f"whatever the number of unshipped orders"
        )
    sim.stop()
    return {"median_calls": median["calls"], "bound": bound, "unshipped": unshipped}


if __name__ == "__main__":
    main()
