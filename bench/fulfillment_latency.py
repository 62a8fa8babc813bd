"""Fulfillment latency: from the seller's `fulfill` in their Shopify shop to the fulfillment in
the buyer's shop, through live webhooks, gunicorn and RQ workers (DESIGN.md: about a second at
p50, a few seconds at p99, at dozens of fulfillments per second on 2 cores).

    .venv/bin/python bench/fulfillment_latency.py [--orders 200] [--rate 30] [--workers 4] \
        [--idle 20] [--cap 300] [--profile FILE]

Two simulated shops are wired as in sandbox/demo.py (rate limits raised so they never throttle).
The orders are placed in the buyer's shop and routed to the seller's first (not timed); then
`--idle` of them are fulfilled one at a time on an idle gateway (the baseline) and the others at
`--rate` per second. The buyer's shop is polled every 20 ms (Shopify's timestamps are whole
seconds), so each latency is late by 10 ms on average. Prints p50/p90/p99/max of both and the
ratios, and the CPU each process used per fulfillment (Redis, gunicorn, the RQ workers, this
process: the simulated shops and the poller), whose sum bounds the rate 2 cores can carry. The
whole run stops after `--cap` seconds, counting what did not arrive.

`--profile FILE` replaces the paced phase: the workers are stopped, the `--orders` fulfillments
are made at once (the webhooks queue their jobs), then one burst RQ worker runs them all under
cProfile (its stats in FILE); prints where that worker's CPU went.
"""

from __future__ import annotations

import argparse
import math
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import ROOT, LocalGateway, wait_for
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
        self.env: dict[str, str] = {}
        self.start()
        self.queue = Queue("gateway", connection=Redis.from_url(self.redis_url))

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by Redis, the web server (with its workers), the RQ workers."""
        used = {}
        for name, process in zip(("Redis", "web"), self.processes, strict=False):
            used[name] = seconds(process.pid)
        used["RQ workers"] = sum(seconds(p.pid) for p in self.processes[2:] if p.poll() is None)
        return used

    def _spawn(self, name: str, command: list, env: dict[str, str]) -> None:
        self.env, self.worker_command = env, command  # the last: a worker's
        super()._spawn(name, command, env)

    def idle(self) -> bool:
        return not self.queue.count and not StartedJobRegistry(queue=self.queue).count


def seconds(pid: int) -> float:
    """CPU seconds of a process and its children."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (process, *process.children(recursive=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200, help="fulfilled under load")
    parser.add_argument("--rate", type=float, default=30, help="fulfillments per second")
    parser.add_argument("--workers", type=int, default=4, help="RQ worker processes")
    parser.add_argument("--idle", type=int, default=20, help="sequential baseline samples")
    parser.add_argument("--cap", type=float, default=300, help="seconds for the whole run")
    parser.add_argument("--profile", help="cProfile one worker on a backlog instead; stats file")
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
    if args.profile:
        profile_backlog(args.profile, gateway, seller_shop, buyer_shop, load)
        return
    sent_at: dict[str, float] = {}

    def ship() -> None:
        begin = time.perf_counter()
        for index, (seller_ref, buyer_gid) in enumerate(load):
            time.sleep(max(0.0, begin + index / args.rate - time.perf_counter()))
            sent_at[buyer_gid] = time.perf_counter()
            seller_shop.fulfill(seller_ref, company="UPS", numbers=[UPS])

    shipper = threading.Thread(target=ship, daemon=True)
    used = gateway.cpu()
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
    used = {name: seconds - used[name] for name, seconds in gateway.cpu().items()}

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
    per = max(1, len(seen))
    mine = 1000 * cpu * (time.perf_counter() - begin) / per
    print(
        "CPU per fulfillment: "
        + ", ".join(f"{name} {1000 * seconds / per:.2f} ms" for name, seconds in used.items())
        + f", this process {mine:.2f} ms"
    )
    whole = 1000 * sum(used.values()) / per + mine  # ms of CPU a fulfillment costs, all told
    failed = FailedJobRegistry(queue=gateway.queue).count
    print(f"failed jobs: {failed}\n")
    base = percentiles(f"idle, one at a time ({len(idle)})", idle)
    loaded = percentiles(
        f"under load, {rate:.0f}/s ({len(seen)})", [seen[g] - sent_at[g] for g in seen]
    )
    print("ratio load/idle: " + "  ".join(f"{k} {loaded[k] / base[k]:.1f}" for k in base))
    met = (
        loaded["p50"] <= 0.25
        and loaded["p99"] <= 1
        and not failed
        and len(seen) == len(load)
        and through >= 0.97 * args.rate
    )
    print(
        f"targets at {args.rate:g}/s (p50 at most 0.25 s, p99 at most 1 s, nothing failed, the "
        f"rate kept end to end): {'met' if met else 'not met'}"
    )
    if not met:
        cores = os.cpu_count() or 1
        print(
            f"measured limit: {through:.1f}/s end to end; a fulfillment costs {whole:.1f} ms of "
            f"CPU in all (above), so {cores} cores carry at most {1000 * cores / whole:.0f}/s; "
            "--profile shows where a worker's CPU goes (SCALING.md)"
        )


def profile_backlog(path: str, gateway: Gateway, seller_shop, buyer_shop, load: list) -> None:
    """Stop the workers, queue every fulfillment's job, run them in one profiled burst worker;
    print where its CPU went."""
    for process in gateway.processes[2:]:
        process.terminate()
        process.wait(10)
    for seller_ref, _ in load:
        seller_shop.fulfill(seller_ref, company="UPS", numbers=[UPS])
    wait_for("the webhooks' jobs", lambda: gateway.queue.count >= len(load), 60)
    worker = [sys.executable, "-m", "cProfile", "-o", path, "-m", "rq.cli", "worker", "--burst"]
    worker += gateway.worker_command[2:]  # after `rq worker`: the Procfile's options
    used, cpu, begin = gateway.cpu()["Redis"], time.process_time(), time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(worker, cwd=ROOT, env=gateway.env, check=True, **quiet)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, count = time.perf_counter() - begin, len(load)
    arrived = sum(1 for _, gid in load if buyer_shop.fulfillments(gid))
    worker_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(
        f"one profiled burst worker: {count} fulfillments ({arrived} reached the buyer's shop) in "
        f"{wall:.1f} s; CPU per fulfillment: worker {1000 * worker_cpu / count:.1f} ms (under "
        f"cProfile), Redis {1000 * (gateway.cpu()['Redis'] - used) / count:.2f} ms, this "
        f"process (the simulated shops) {1000 * (time.process_time() - cpu) / count:.2f} ms"
    )
    stats = pstats.Stats(path).stats
    wheres = {  # (file ending, function) -> label
        ("rq/worker/base.py", "work"): "the worker, in all",
        ("rq/job.py", "_execute"): "the jobs themselves (the rest: RQ's own per-job work)",
        ("requests/sessions.py", "request"): "HTTP calls to the shops (requests), in the jobs",
        ("redis/client.py", "_execute_command"): "Redis commands (redis-py), RQ's and ours",
        ("redis/client.py", "execute"): "Redis pipelines/transactions (redis-py), both",
    }
    found = {
        label: (ncalls, cumulative)
        for (file, _, name), (_, ncalls, _, cumulative, _) in stats.items()
        for (ending, function), label in wheres.items()
        if file.endswith(ending) and name == function
    }
    whole = found["the worker, in all"][1]
    for label in wheres.values():
        ncalls, cumulative = found.get(label, (0, 0.0))
        share = f"{100 * cumulative / whole:5.1f}%"
        print(f"  {share} {label} ({ncalls / count:.1f} calls per fulfillment)")


if __name__ == "__main__":
    main()
