"""What REDIS_WAIT_REPLICAS=1 costs: the web answers a write once a replica holds it (WAIT).

    .venv/bin/python bench/replica_wait.py [--requests 300] [--transactions 2000]

A primary, one replica and three Sentinels on loopback (sandbox/sentinels.py), AOF everysec on
both. Two gateways run on them through the Sentinels, each gunicorn with 2 workers as in the
Procfile: the baseline with REDIS_WAIT_REPLICAS=0 and the other with 1. `--requests` manual
fulfillments are posted to each, one at a time, alternating between the two so that both see the
same machine; each goes to an order of its own (made beforehand, not timed). Then the same for
the store's transaction alone: `--transactions` MULTI/EXEC of an order-sized write, with and
without the WAIT after it, alternating. Prints p50/p90/p99 of each and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import requests
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from gateway.failover import ReplicatedRedis
from sandbox.local import LocalGateway
from sandbox.sentinels import RedisWithSentinels

UPS = "1Z5R89390357567127"
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province": "IL",
    "zip": "62701",
    "country_code": "US",
}


def percentiles(latencies: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99, in milliseconds."""
    ordered = sorted(latencies)
    return {
        f"p{p}": ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000
        for p in (50, 90, 99)
    }


def report(what: str, baseline: list[float], waiting: list[float]) -> None:
    """Both sides' percentiles and their ratios."""
    base, wait = percentiles(baseline), percentiles(waiting)
    print(f"{what} ({len(baseline)} each)")
    print("  REDIS_WAIT_REPLICAS=0: " + "  ".join(f"{k} {v:.2f} ms" for k, v in base.items()))
    print("  REDIS_WAIT_REPLICAS=1: " + "  ".join(f"{k} {v:.2f} ms" for k, v in wait.items()))
    print(
        "  cost: "
        + "  ".join(f"{k} {wait[k] - base[k]:+.2f} ms (x{wait[k] / base[k]:.2f})" for k in base)
    )


def prepare(gateway: LocalGateway, orders: int) -> tuple[str, list[str]]:
    """A buyer, a seller and `orders` orders of one mug; the seller's key and the order ids."""
    buyer, seller = gateway.partners(
        {"name": "Shop", "email": "b@example.com", "platform": "none"},
        {"name": "Acme", "email": "s@example.com", "platform": "none"},
        {"MUG-BLUE": "AC-100"},
    )
    ids = []
    for n in range(orders):
        body = {
            "seller_id": seller["id"],
            "buyer_order_ref": str(n),
            "line_items": [{"sku": "MUG-BLUE", "quantity": 1, "title": "Blue mug"}],
            "shipping_address": ADDRESS,
            "customer_email": "ada@example.com",
        }
        order = gateway.api("POST", "/api/v1/orders", key=buyer["api_key"], json=body)
        ids.append(order["id"])
    return seller["api_key"], ids


def fulfill(gateway: LocalGateway, seller_key: str, order_id: str) -> float:
    """Seconds until the 201 of one manual fulfillment."""
    body = {
        "line_items": [{"sku": "AC-100", "quantity": 1}],
        "carrier": "UPS",
        "tracking_numbers": [UPS],
    }
    started = time.perf_counter()
    answer = requests.post(
        f"{gateway.url}/api/v1/orders/{order_id}/fulfillments",
        json=body,
        headers={"Authorization": f"Bearer {seller_key}"},
        timeout=10,
    )
    took = time.perf_counter() - started
    if answer.status_code != 201:
        raise SystemExit(f"fulfillment answered {answer.status_code}: {answer.text}")
    return took


def transactions(primary_port: int, count: int) -> tuple[list[float], list[float]]:
    """Seconds per MULTI/EXEC of an order-sized write, plain and followed by WAIT 1."""
    plain = Redis(host="127.0.0.1", port=primary_port)
    waiting = ReplicatedRedis(host="127.0.0.1", port=primary_port)
    waiting.replicas, waiting.timeout_ms = 1, 1000
    document = json.dumps({"id": "ord_bench", "padding": "x" * 4000})  # ~4 KB, an order's size
    timings: dict[int, list[float]] = {0: [], 1: []}
    for n in range(count * 2):
        client = (plain, waiting)[n % 2]
        started = time.perf_counter()
        with client.pipeline() as pipe:
            pipe.set(f"bench:order:{n}", document)
            pipe.rpush(f"bench:timeline:{n}", "created")
            pipe.sadd("bench:unshipped", n)
            pipe.execute()
        timings[n % 2].append(time.perf_counter() - started)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="fulfillments per side")
    parser.add_argument("--transactions", type=int, default=2000, help="transactions per side")
    args = parser.parse_args()
    group = RedisWithSentinels(Path(tempfile.mkdtemp(prefix="bench-wait-redis-")))
    gateways: list[LocalGateway] = []
    try:
        group.start()
        for replicas in (0, 1):
            env = {
                **group.settings(),
                "REDIS_WAIT_REPLICAS": str(replicas),
                "RATE_LIMIT_PARTNER": "",
            }
            gateways.append(LocalGateway(0, prefix="bench-wait-", env=env))
            gateways[-1].start()
        primary = group.primary()
        print(f"redis-server {Redis(port=primary).info('server')['redis_version']}, 1 replica")
        prepared = [prepare(gateway, args.requests) for gateway in gateways]
        latencies: dict[int, list[float]] = {0: [], 1: []}
        for n in range(args.requests):
            for side in (0, 1):
                seller_key, orders = prepared[side]
                latencies[side].append(fulfill(gateways[side], seller_key, orders[n]))
        report("POST /api/v1/orders/<id>/fulfillments, 201", latencies[0], latencies[1])
        report("the store's transaction alone", *transactions(primary, args.transactions))
    finally:
        for gateway in gateways:
            gateway.stop()
        group.stop()


if __name__ == "__main__":
    main()
