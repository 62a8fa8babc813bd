"""Redis memory per stored order (DESIGN.md: a stored order costs a few KB).

    .venv/bin/python bench/order_memory.py [--orders 10000] [--runs 3]

Stores the orders through the real code path (Store.add_order with its order.created event and
routing job, as POST /api/v1/orders does: 3 lines, a shipping address, an email), then records two
fulfillments on half of them (gateway.manual.create_manual_fulfillment, the second one ships the
order). Reads INFO used_memory against an empty Redis (the baseline, FLUSHALL between runs) and
splits the cost by key family with MEMORY USAGE of every key. Prints the medians of the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import start_redis

UPS, FEDEX = "1Z5R89390357567127", "449044304137821"
FAMILIES = {  # key prefix -> label; every other key counts as an index or queue
    "gw:order:": "order documents",
    "gw:timeline:": "timeline lists",
    "rq:job:": "RQ job hashes",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    redis_process, redis_url = start_redis()
    os.environ.update({"REDIS_URL": redis_url, "SECRET_KEY": "bench", "MAIL_URL": ""})
    try:
        runs = [run_once(args.orders) for _ in range(args.runs)]
    finally:
        redis_process.terminate()
    print(
        f"\n{args.orders} orders, half with 2 fulfillments (shipped); medians of {args.runs} runs"
    )
    for name in runs[0]:
        print(f"  {name:34} {statistics.median(r[name] for r in runs):8.0f} bytes per order")


def run_once(count: int) -> dict[str, float]:
    from gateway.jobs import JOB_OPTIONS, ROUTE_ORDER
    from gateway.manual import create_manual_fulfillment
    from gateway.model import LineItem, Order, new_id, now_iso
    from gateway.runtime import connect
    from gateway.settings import Settings
    from gateway.store import JobSpec, event

    store = connect(Settings.from_env())
    store.redis.flushall()
    empty = store.redis.info("memory")["used_memory"]
    buyer, seller = new_id("ptr"), new_id("ptr")
    for partner_id, platform in ((buyer, "shopify"), (seller, "none")):
        partner = {"id": partner_id, "name": "Bench", "email": "ops@bench.example"}
        store.add_partner(
            {**partner, "platform": platform, "connection": {}},
            new_id("key"),
            [],
            platform != "none",
        )
    with_partners = store.redis.info("memory")["used_memory"]

    for index in range(count):
        at = now_iso()
        order = Order(
            id=new_id("ord"),
            buyer_id=buyer,
            seller_id=seller,
            buyer_order_ref=f"#{100000 + index}",
            line_items=[
                LineItem(new_id("li"), f"MUG-{c}", f"AC-{n}00", f"{c.title()} mug, 350 ml", n)
                for n, c in enumerate(("BLUE", "RED", "GREEN"), start=1)
            ],
            shipping_address={
                "name": "Ada Lovelace",
                "address1": "1 Main St",
                "address2": "Apt 4",
                "city": "Springfield",
                "province": "IL",
                "zip": "62701",
                "country_code": "US",
                "phone": "+1 217 555 0100",
            },
            customer_email=f"customer{index}@example.com",
            created_at=at,
            updated_at=at,
        )
        created = event("order.created", f"Order {order.buyer_order_ref} received through the API.")
        store.add_order(order, [created], [JobSpec(ROUTE_ORDER, (order.id,), options=JOB_OPTIONS)])
        if index % 2:
            continue
        first, *rest = order.line_items
        for lines, carrier, number in (([first], "UPS", UPS), (rest, "FedEx", FEDEX)):
            payload = {
                "line_items": [{"line_item_id": li.id, "quantity": li.quantity} for li in lines],
                "carrier": carrier,
                "tracking_numbers": [number],
            }
            create_manual_fulfillment(store, order, "seller", payload)
    used = store.redis.info("memory")["used_memory"]

    keys = list(store.redis.scan_iter(count=1000))
    with store.redis.pipeline(transaction=False) as pipe:
        for name in keys:
            pipe.memory_usage(name, samples=0)
        sizes = pipe.execute()
    by_family = dict.fromkeys([*FAMILIES.values(), "indexes and queues"], 0)
    for name, size in zip(keys, sizes, strict=True):
        label = next((v for k, v in FAMILIES.items() if name.decode().startswith(k)), None)
        by_family[label or "indexes and queues"] += size or 0
    total = used - with_partners
    figures = {"total (used_memory delta)": total / count}
    figures.update({name: size / count for name, size in by_family.items()})
    figures["other (main dict, allocator)"] = (total - sum(by_family.values())) / count
    figures["total without RQ jobs"] = (total - by_family["RQ job hashes"]) / count
    print(
        f"empty Redis {empty} B, then {len(keys)} keys; used_memory +{total / 1e6:.1f} MB "
        f"= {total / count:.0f} B per order"
    )
    return figures


if __name__ == "__main__":
    main()
