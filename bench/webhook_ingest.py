"""Webhook ingest: signed Shopify orders/create webhooks against the gateway, beside a bare Flask
endpoint (bench/bare_app.py) on the same gunicorn flags (DESIGN.md: answered in milliseconds,
throughput close to a bare endpoint). Nothing consumes the queue: we measure the answer.

    .venv/bin/python bench/webhook_ingest.py [--requests 3000] [--threads 8] [--rounds 3]

Prints req/s and p50/p99 latency of each round (bare and gateway alternate), the medians, the
ratio gateway/bare, and checks that every answer was 200 "accepted" and that the RQ queue holds
exactly one job per webhook. The client (threads of http.client, reconnecting as gunicorn's sync
workers close each connection) shares the 2 cores with the servers; its CPU use is shown.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from redis import Redis
from rq import Queue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import ROOT, free_port, start_redis

SHOP, SECRET, ADMIN = "bench-buyer.myshopify.com", "bench-webhook-secret", "bench-admin"
PATH = "/webhooks/shopify"
GUNICORN_FLAGS = ["--workers", "2", "--no-control-socket", "--access-logfile", "-"]  # Procfile's


def start_gunicorn(app: str, cwd: Path, env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, *GUNICORN_FLAGS, app], cwd=cwd, env=env, stdout=out, stderr=out
        )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{app} did not start; see {log}")


def webhooks(count: int, tag: str) -> list[tuple[bytes, dict]]:
    """Signed orders/create deliveries, each with its own order id and webhook id."""
    made = []
    for index in range(count):
        order = {
            "id": 820982911946154508 + index,
            "admin_graphql_api_id": f"gid://shopify/Order/{820982911946154508 + index}",
            "name": f"#{1001 + index}",
            "email": "ada@example.com",
            "created_at": "2026-11-27T10:00:00-05:00",
            "currency": "USD",
            "total_price": "36.00",
            "financial_status": "paid",
            "line_items": [
                {"id": 466157049 + n, "sku": sku, "title": f"{sku} mug", "quantity": 1 + n}
                for n, sku in enumerate(("MUG-BLUE", "MUG-RED", "MUG-GREEN"))
            ],
            "shipping_address": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address1": "1 Main St",
                "city": "Springfield",
                "province_code": "IL",
                "zip": "62701",
                "country_code": "US",
            },
        }
        body = json.dumps(order).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": f"{tag}-{index}",
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        }
        made.append((body, headers))
    return made


def fire(port: int, deliveries: list[tuple[bytes, dict]], threads: int) -> dict:
    """POST them from `threads` threads; req/s, p50/p99 (ms), answers not 200 accepted."""
    latencies: list[float] = []
    bad: list[object] = []

    def client(share: list[tuple[bytes, dict]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body, headers in share:
            started = time.perf_counter()
            try:
                conn.request("POST", PATH, body, headers)
                answer = conn.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                bad.append(repr(error))
                continue
            latencies.append(time.perf_counter() - started)
            if answer.status != 200 or json.loads(data).get("status") != "accepted":
                bad.append((answer.status, data[:100]))

    workers = [
        threading.Thread(target=client, args=(deliveries[n::threads],)) for n in range(threads)
    ]
    cpu, started = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    return {
        "rps": len(deliveries) / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": statistics.quantiles(latencies, n=100)[98] * 1000,
        "client_cpu": (time.process_time() - cpu) / wall,
        "bad": bad,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    redis_process, redis_url = start_redis()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench",
        "GATEWAY_ADMIN_TOKEN": ADMIN,
        "MAIL_URL": "",
        "PYTHONPATH": str(ROOT),
    }
    servers = {
        "bare": start_gunicorn("bare_app:app", ROOT / "bench", env, folder / "bare.log"),
        "gateway": start_gunicorn("wsgi:app", ROOT, env, folder / "gateway.log"),
    }
    try:
        run(args, {name: port for name, (_, port) in servers.items()}, redis_url)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        redis_process.terminate()


def run(args: argparse.Namespace, ports: dict[str, int], redis_url: str) -> None:
    answer = requests.post(
        f"http://127.0.0.1:{ports['gateway']}/api/v1/partners",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={
            "name": "Bench Buyer",
            "email": "ops@bench.example",
            "platform": "shopify",
            "connection": {
                "shop_domain": SHOP,
                "access_token": "shpat_bench_access_token",
                "webhook_secret": SECRET,
            },
        },
        timeout=10,
    )
    answer.raise_for_status()
    queue = Queue("gateway", connection=Redis.from_url(redis_url))
    for name, port in ports.items():  # warm both servers' workers up
        fire(port, webhooks(200, f"warm-{name}"), args.threads)
    queue.empty()
    print(
        f"{args.requests} signed orders/create webhooks per round, {args.threads} client threads, "
        f"gunicorn {' '.join(GUNICORN_FLAGS)}\n"
    )
    results: dict[str, list[dict]] = {"bare": [], "gateway": []}
    checks = []
    for number in range(args.rounds):
        order = ("bare", "gateway") if number % 2 == 0 else ("gateway", "bare")
        for name in order:
            figures = fire(ports[name], webhooks(args.requests, f"r{number}"), args.threads)
            results[name].append(figures)
            line = (
                f"round {number + 1} {name:8} {figures['rps']:6.0f} req/s  "
                f"p50 {figures['p50']:5.1f} ms  p99 {figures['p99']:5.1f} ms  "
                f"(client CPU {figures['client_cpu']:.2f} cores)"
            )
            if name == "gateway":
                checks.append((not figures["bad"], queue.count == args.requests))
                line += f"  queue holds {queue.count} jobs"
                queue.empty()
            if figures["bad"]:
                line += f"  {len(figures['bad'])} bad answers, e.g. {figures['bad'][0]}"
            print(line)

    medians = {
        name: {k: statistics.median(r[k] for r in rounds) for k in ("rps", "p50", "p99")}
        for name, rounds in results.items()
    }
    print()
    for name, m in medians.items():
        print(f"median {name:8} {m['rps']:6.0f} req/s  ", end="")
        print(f"p50 {m['p50']:5.1f} ms  p99 {m['p99']:5.1f} ms")
    bare, gateway = medians["bare"], medians["gateway"]
    print(
        f"ratio gateway/bare: throughput {gateway['rps'] / bare['rps']:.2f}, "
        f"p50 {gateway['p50'] / bare['p50']:.2f}, p99 {gateway['p99'] / bare['p99']:.2f}"
    )
    print(f"every gateway answer 200 accepted: {all(ok for ok, _ in checks)}")
    exact = all(n for _, n in checks)
    print(f"RQ queue held exactly {args.requests} jobs after each round: {exact}")


if __name__ == "__main__":
    main()
