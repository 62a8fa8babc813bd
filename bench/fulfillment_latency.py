"""Fulfillment latency: from the seller's `fulfill` in their Shopify shop to the fulfillment in
the buyer's shop, through live webhooks, gunicorn and RQ workers (DESIGN.md: about a second at
p50, a few seconds at p99, at dozens of fulfillments per second on 2 cores).

    .venv/bin/python bench/fulfillment_latency.py [--orders 200] [--rate 30] [--workers 4] \
        [--idle 20] [--cap 300]

Two simulated shops are wired as in sandbox/demo.py (rate limits raised so they never throttle).
The orders are placed in the buyer's shop and routed to the seller's first (not timed); then
`--idle` of them are fulfilled one at a time on an idle gateway (the baseline) and the others at
`--rate` per second. The buyer's shop is polled every 20 ms (Shopify's timestamps are whole
seconds), so each latency is late by 10 ms on average. Prints p50/p90/p99/max of both and the
ratios. The whole run stops after `--cap` seconds, counting what did not arrive.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import LocalGateway, wait_for
from sandbox.shopify import ShopifySimulator

UPS = "1Z5R89390357567127"
POLL = 0.02
LINES = [
    {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"},
    {"sku": "MUG-RED", "quantity": 1, "title": "Red mug", "price": "12.00"},
]
ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province_code": "IL",
    "zip": "62701",
    "country_code": "US",
}


class Gateway(LocalGateway):
    """The gateway with K RQ workers (Redis without AOF), and a look at its queue."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, aof=False, prefix="bench-latency-")
        self.start()
        self.queue = Queue("gateway", connection=Redis.from_url(self.redis_url))

    def idle(self) -> bool:
        return not self.queue.count and not StartedJobRegistry(queue=self.queue).count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200, help="fulfilled under load")
    parser.add_argument("--rate", type=float, default=30, help="fulfillments per second")
    parser.add_argument("--workers", type=int, default=4, help="RQ worker processes")
    parser.add_argument("--idle", type=int, default=20, help="sequential baseline samples")
    parser.add_argument("--cap", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args()
    deadline = time.monotonic() + args.cap
    sim = ShopifySimulator()
    gateway = Gateway(args.workers)
    try:
        run(args, gateway, sim, deadline)
    finally:
        sim.stop()
        gateway.stop()


def connect(gateway: Gateway, sim: ShopifySimulator):
    """Two shops connected as in sandbox/demo.py; the buyer shop, the seller shop, the buyer."""
    base = sim.start()
    shops, partners = [], []
    for name in ("corner-store", "acme-supply"):
        domain = f"{name}.myshopify.com"
        shop = sim.add_shop(domain, f"shpat_{name}", f"{name}-secret")
        shop.set_rate_limit(maximum_available=10**9, restore_rate=10**9, currently_available=10**9)
        connection = {
            "shop_domain": domain,
            "access_token": f"shpat_{name}",
            "webhook_secret": f"{name}-secret",
            "api_base_url": base,
        }
        body = {"name": name, "email": f"ops@{name}.example", "platform": "shopify"}
        partners.append(
            gateway.api("POST", "/api/v1/partners", json={**body, "connection": connection})
        )
        shops.append(shop)
    buyer, seller = partners
    skus = [{"buyer_sku": "MUG-BLUE", "seller_sku": "AC-100"}]
    skus.append({"buyer_sku": "MUG-RED", "seller_sku": "AC-200"})
    pair = {"buyer_id": buyer["id"], "seller_id": seller["id"], "skus": skus}
    gateway.api("POST", "/api/v1/partnerships", json=pair)
    hook = f"{gateway.url}/webhooks/shopify"
    shops[0].add_webhook("orders/create", hook)
    for topic in ("fulfillments/create", "fulfillments/update"):
        shops[1].add_webhook(topic, hook)
    return shops[0], shops[1], buyer


def routed(gateway: Gateway, buyer: dict) -> dict[str, str]:
    """Buyer shop order id -> seller shop order id, for the orders routed so far."""
    found, cursor = {}, None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = gateway.api("GET", "/api/v1/orders", key=buyer["api_key"], params=params)
        found.update(
            {
                o["buyer_order_ref"]: o["seller_order_ref"]
                for o in page["orders"]
                if o["seller_order_ref"]
            }
        )
        cursor = page["next_cursor"]
        if not cursor:
            return found


def percentiles(name: str, latencies: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles, printed."""
    ordered = sorted(latencies) or [float("nan")]
    figures = {
        f"p{q}": ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] for q in (50, 90, 99)
    }
    figures["max"] = ordered[-1]
    print(f"{name}: " + "  ".join(f"{k} {v:.2f} s" for k, v in figures.items()))
    return figures


def run(args: argparse.Namespace, gateway: Gateway, sim: ShopifySimulator, deadline: float):
    buyer_shop, seller_shop, buyer = connect(gateway, sim)
    total = args.idle + args.orders
    started = time.monotonic()
    placed = {}
    for _ in range(total):
        order = buyer_shop.place_order(
            line_items=LINES, shipping_address=ADDRESS, email="a@b.example"
        )
        placed[order["legacy_id"]] = order["id"]
    refs: dict[str, str] = {}
    while len(refs) < total and time.monotonic() < deadline:
        time.sleep(0.5)
        refs = routed(gateway, buyer)
    took = time.monotonic() - started
    print(f"{len(refs)} of {total} orders placed and routed to the seller's shop in {took:.1f} s")
    if len(refs) < total:
        sys.exit("time cap reached while routing")
    pairs = [(refs[legacy], gid) for legacy, gid in placed.items()]  # (seller ref, buyer gid)

    idle = []
    for seller_ref, buyer_gid in pairs[: args.idle]:
        if time.monotonic() > deadline:
            sys.exit("time cap reached in the idle baseline")
        wait_for("an idle queue", gateway.idle, 30, interval=0.1)
        sent = time.perf_counter()
        seller_shop.fulfill(seller_ref, company="UPS", numbers=[UPS])
        while not buyer_shop.fulfillments(buyer_gid) and time.monotonic() < deadline:
            time.sleep(POLL)
        idle.append(time.perf_counter() - sent)

    wait_for("an idle queue", gateway.idle, 30, interval=0.1)
    load = pairs[args.idle :]
    sent_at: dict[str, float] = {}

    def ship() -> None:
        begin = time.perf_counter()
        for index, (seller_ref, buyer_gid) in enumerate(load):
            time.sleep(max(0.0, begin + index / args.rate - time.perf_counter()))
            sent_at[buyer_gid] = time.perf_counter()
            seller_shop.fulfill(seller_ref, company="UPS", numbers=[UPS])

    shipper = threading.Thread(target=ship, daemon=True)
    cpu, begin = time.process_time(), time.perf_counter()
    shipper.start()
    seen: dict[str, float] = {}
    while len(seen) < len(load) and time.monotonic() < deadline:
        for buyer_gid in [g for g in list(sent_at) if g not in seen]:
            if buyer_shop.fulfillments(buyer_gid):
                seen[buyer_gid] = time.perf_counter()
        time.sleep(POLL)
    shipper.join(1)
    cpu = (time.process_time() - cpu) / (time.perf_counter() - begin)

    sends = sorted(sent_at.values())
    rate = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    through = len(seen) / (max(seen.values()) - sends[0]) if seen else 0.0
    print(
        f"\n{args.workers} RQ workers; fulfilled {len(sends)} at {rate:.1f}/s "
        f"(asked {args.rate:g}/s), {len(seen)} reached the buyer's shop "
        f"({through:.1f}/s end to end); this process (simulator, poller) used {cpu:.2f} cores"
    )
    if len(seen) < len(load):
        print(f"time cap: {len(load) - len(seen)} never arrived (left out of the figures)")
    failed = FailedJobRegistry(queue=gateway.queue).count
    print(f"failed jobs: {failed}\n")
    base = percentiles(f"idle, one at a time ({len(idle)})", idle)
    loaded = percentiles(
        f"under load, {rate:.0f}/s ({len(seen)})", [seen[g] - sent_at[g] for g in seen]
    )
    print("ratio load/idle: " + "  ".join(f"{k} {loaded[k] / base[k]:.1f}" for k in base))


if __name__ == "__main__":
    main()
