"""What one reconciliation cycle costs: Shopify API calls against 10 simulated shops holding
10,000 unshipped orders, 1% changed since the last cycle (DESIGN.md's target: about one call per
page of changed orders plus one per store, never one per unshipped order).

    .venv/bin/python bench/reconcile_cost.py [--stores 10] [--orders 1000] [--changed 0.01]

Prints the call counts of each run (deterministic) and the median duration of the runs, beside
the baseline of reading every unshipped order once, the cost the design avoids.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    try:
        run(args)
    finally:
        redis_process.terminate()


def run(args: argparse.Namespace) -> dict[str, float]:
    """Set up the stores, run the cycles, print the figures; returns the figures too."""
    from gateway.jobs.reconcile import reconcile_store
    from gateway.model import Delivery, LineItem, Order, new_id, now_iso
    from gateway.runtime import connect
    from gateway.settings import Settings
    from sandbox.shopify import ShopifySimulator

    config = Settings.from_env()
    store = connect(config)
    store.redis.flushall()
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
    per_store = max(1, round(args.orders * args.changed))
    changed_total = per_store * args.stores
    bound = 2 * (changed_total / config.reconcile_page_size + args.stores)
    print(
        f"{args.stores} stores, {unshipped} unshipped orders, {changed_total} changed per run "
        f"({args.changed:.0%}), page size {config.reconcile_page_size}"
    )
    print(f"target: at most about 2 x (changed / page size + connections) = {bound:.0f} calls")
    print(f"baseline avoided: one read per unshipped order = {unshipped} calls\n")

    durations, totals = [], []
    for number in range(args.runs):
        # Steady state: the last cycle saw everything up to now (its cursor, less the overlap
        # window, is now); then 1% of the orders change.
        time.sleep(1.1)  # the last cycle's changes are in an earlier (whole) second
        last_cycle = iso(datetime.now(UTC) + timedelta(seconds=config.reconcile_overlap))
        for partner, _, _ in sellers:
            store.redis.hset("gw:cursors", f"{partner['id']}:seller", last_cycle)
        time.sleep(1.1)  # Shopify's timestamps are whole seconds
        for _, shop, shop_orders in sellers:
            for seller_order in shop_orders[number * per_store : (number + 1) * per_store]:
                shop.fulfill(seller_order["id"], company="UPS", numbers=["1Z5R89390357567127"])
        sim.reset_calls()
        started = time.perf_counter()
        for partner, _, _ in sellers:
            reconcile_store(partner["id"])
        durations.append(time.perf_counter() - started)
        calls = sim.calls()
        by_field: dict[str, int] = {}
        for call in calls:
            for field in call["fields"]:
                by_field[field] = by_field.get(field, 0) + 1
        totals.append(len(calls))
        shipped = unshipped - sum(store.unshipped_count(p["id"]) for p, _, _ in sellers)
        print(
            f"run {number + 1}: {len(calls)} calls {by_field}, {shipped} orders shipped so far, "
            f"{durations[-1]:.2f} s"
        )
    median_calls = statistics.median(totals)
    print(
        f"\nmedian calls per run: {median_calls:.0f} (ratio to target {median_calls / bound:.2f}, "
        f"to the per-order baseline {median_calls / unshipped:.4f})"
    )
    print(f"median duration per run: {statistics.median(durations):.2f} s")
    sim.stop()
    return {"median_calls": median_calls, "bound": bound, "unshipped": unshipped}


if __name__ == "__main__":
    main()
