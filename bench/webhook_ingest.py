"""Webhook ingest under wrk: signed Shopify fulfillments/create webhooks against the gateway,
beside a bare Flask endpoint (bench/bare_app.py) on the Procfile's gunicorn line (DESIGN.md:
answered in milliseconds, at least half the bare endpoint's throughput).

    .venv/bin/python bench/webhook_ingest.py [--rounds 3] [--duration 10] [--threads 2] \
        [--connections 32] [--share 0.5] [--before DIR] [--no-hiredis]

Two phases, bare and gateway alternating within each round, every figure a median of the rounds:

1. saturation: `wrk -t2 -c32 -d10s` as fast as each server answers: req/s, latency, the ratio
   gateway/bare (target at least 0.5);
2. latency at a fixed rate: `--share` (0.5) of the bare endpoint's median saturation rate, paced
   by the Lua script on a fixed schedule (Debian's wrk has no wrk2 `-R`; see
   bench/webhook_ingest.lua): p50/p90/p99 (target: the gateway's p99 at most 25 ms, having kept
   that rate: wrk times each request from its send, so the latencies of a server that fell
   behind the schedule, which delays the sends, say nothing).

Each line also gives the CPU per request of the server's gunicorn (master and workers) and of
Redis: what a web worker process and a Redis core can carry, for SCALING.md.

Every request is a different delivery: its own webhook id and its own body (the gateway dedupes
on both), signed here beforehand, since wrk's Lua has no HMAC. Each gateway answer must be 200
`accepted`, and after each round the RQ queue must hold one job per accepted answer (nothing
consumes it; up to `--connections` more, for requests in flight when wrk stopped counting).

`--before DIR` measures a third server in the same rounds: the gateway from another source tree
(e.g. `git worktree add` or `git archive | tar -x` of an older commit), for before/after ratios.
`--no-hiredis NAME` runs that gateway (`gateway` or `before`) without hiredis (redis-py's
Python parser), to show its share.

wrk: Debian's package (`apt-get install wrk`); run as root, the bench installs it itself when it
is missing. Everything listens on 127.0.0.1 and every wrk run stops after `--duration` seconds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.local import ROOT, free_port, start_redis

SHOP, SECRET, ADMIN = "bench-seller.myshopify.com", "bench-webhook-secret-0123", "bench-admin"
PATH = "/webhooks/shopify"
LUA = Path(__file__).resolve().parent / "webhook_ingest.lua"
# Both servers run the Procfile's own web line (its --bind from BIND, its app swapped for the
# bare one), so the comparison follows the Procfile as it changes.
PROCFILE_WEB = next(
    line.removeprefix("web:").strip()
    for line in (ROOT / "Procfile").read_text().splitlines()
    if line.startswith("web:")
)
# tests/fixtures/shopify/fulfillments_create.json, with room for what makes each one unique.
BODY = (
    '{"id": %(fid)d, "admin_graphql_api_id": "gid://shopify/Fulfillment/%(fid)d", '
    '"order_id": %(oid)d, "name": "#%(n)d.1", "status": "success", '
    '"created_at": "%(at)s", "updated_at": "%(at)s", "service": "manual", '
    '"location_id": 68516626689, "shipment_status": null, "origin_address": {}, "receipt": {}, '
    '"tracking_company": "UPS", "tracking_number": "1Z5R89390357567127", '
    '"tracking_numbers": ["1Z5R89390357567127"], '
    '"tracking_url": "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums='
    '1Z5R89390357567127", "tracking_urls": ["https://www.ups.com/WebTracking?loc=en_US&'
    'requester=ST&trackNums=1Z5R89390357567127"], "line_items": [{"id": 13822279467265, '
    '"admin_graphql_api_id": "gid://shopify/LineItem/13822279467265", "variant_id": null, '
    '"title": "Blue mug", "sku": "AC-100", "quantity": 2, "fulfillable_quantity": 0, '
    '"fulfillment_status": "fulfilled", "requires_shipping": true}]}'
)


def ensure_wrk() -> str:
    """Debian's wrk: on PATH, else installed now (as root with apt-get), else exit saying how."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's wrk", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
        return shutil.which("wrk") or sys.exit("apt-get installed no wrk")
    sys.exit("this bench needs wrk: apt-get install wrk (Debian's package)")


def start_gunicorn(app: str, cwd: Path, env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    """The Procfile's web line serving `app` on a free loopback port; the process and its port."""
    port = free_port()
    if not PROCFILE_WEB.endswith(" wsgi:app"):
        sys.exit("the Procfile's web line no longer ends with wsgi:app: update this bench")
    line = PROCFILE_WEB.removesuffix("wsgi:app") + app
    env = {
        **env,
        "BIND": f"127.0.0.1:{port}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # The line names gateway.web_log's logger: the bare app finds it too.
        "PYTHONPATH": os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)])),
    }
    with open(log, "ab") as out:  # exec: the shell expands the line, gunicorn keeps its pid
        process = subprocess.Popen(
            ["sh", "-c", f"exec {line}"], cwd=cwd, env=env, stdout=out, stderr=out
        )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{app} did not start; see {log}")


def write_requests(folder: Path, port: int, count: int, threads: int, tag: int) -> None:
    """`count` signed fulfillments/create deliveries as raw HTTP requests, NUL-separated, dealt
    to one file per wrk thread; ids and bodies unique across tags."""
    secret = SECRET.encode()
    files = [open(folder / f"thread-{n}.req", "wb") for n in range(threads)]  # noqa: SIM115
    try:
        for index in range(count):
            unique = tag * 10_000_000 + index
            body = (
                BODY
                % {
                    "fid": 4903611252993 + unique,
                    "oid": 5523429081345 + unique,
                    "n": 1001 + index,
                    "at": f"2026-03-03T09:{index // 60 % 60:02}:{index % 60:02}-05:00",
                }
            ).encode()
            signature = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
            head = (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                "X-Shopify-Topic: fulfillments/create\r\n"
                f"X-Shopify-Shop-Domain: {SHOP}\r\n"
                f"X-Shopify-Webhook-Id: bench-{tag}-{index}\r\n"
                f"X-Shopify-Hmac-Sha256: {signature.decode()}\r\n\r\n"
            )
            files[index % threads].write(head.encode() + body + b"\0")
    finally:
        for file in files:
            file.close()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by these processes and their children (gunicorn's workers)."""
    total = 0.0
    for pid in pids:
        process = psutil.Process(pid)
        for each in (process, *process.children(recursive=True)):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def run_wrk(
    wrk: str, port: int, args: argparse.Namespace, folder: Path, rate: float, pids: list[int]
) -> dict:
    """One bounded wrk run (its `--duration`); its figures (latencies in ms), wrk's CPU use and
    the CPU milliseconds per request of `pids` (the server's gunicorn, Redis)."""
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command += ["--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}", "--"]
    command += [str(folder), str(args.threads), f"{rate:.3f}"]
    before, servers = resource.getrusage(resource.RUSAGE_CHILDREN), [cpu_seconds([p]) for p in pids]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 60, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers = [cpu_seconds([p]) - used for p, used in zip(pids, servers, strict=True)]
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK-RESULT "))
    figures = json.loads(line.removeprefix("WRK-RESULT "))
    for name in ("p50", "p90", "p99", "p999", "max"):
        figures[name] /= 1000  # wrk's microseconds
    figures["rps"] = figures["requests"] / figures["seconds"]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    figures["client_cpu"] = cpu / figures["seconds"]
    figures["cpu_ms"] = [1000 * used / max(1, figures["requests"]) for used in servers]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--share", type=float, default=0.5, help="of bare's rate, for latency")
    parser.add_argument("--max-rate", type=int, default=9000, help="requests/s written out")
    parser.add_argument("--before", type=Path, help="another source tree of the gateway")
    # (--before's tree runs with this .venv's packages)
    parser.add_argument(
        "--no-hiredis",
        action="append",
        default=[],
        choices=("gateway", "before"),
        help="run this gateway with redis-py's Python parser (repeatable)",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    (folder / "redis").mkdir()
    redis_process, redis_url = start_redis(folder / "redis", aof=True)  # as production: AOF
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key-of-32-characters-or-more",
        "GATEWAY_ADMIN_TOKEN": ADMIN,
        "MAIL_URL": "",
    }
    # A module named hiredis that fails to import: redis-py does without.
    (folder / "nohiredis").mkdir()
    (folder / "nohiredis" / "hiredis.py").write_text("raise ImportError('bench')\n")
    gateways = {"gateway": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    servers = {"bare": start_gunicorn("bare_app:app", ROOT / "bench", env, folder / "bare.log")}
    for name, tree in gateways.items():
        path = [str(folder / "nohiredis")] if name in args.no_hiredis else []
        server_env = {**env, "PYTHONPATH": os.pathsep.join([*path, str(tree)])}
        servers[name] = start_gunicorn("wsgi:app", tree, server_env, folder / f"{name}.log")
    try:
        ports = {name: port for name, (_, port) in servers.items()}
        pids = {name: [process.pid, redis_process.pid] for name, (process, _) in servers.items()}
        run(args, wrk, ports, pids, Redis.from_url(redis_url), folder)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        redis_process.terminate()
        redis_process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def connect_seller(port: int) -> None:
    """The Shopify seller whose shop signs the webhooks (each gateway shares the one Redis)."""
    answer = requests.post(
        f"http://127.0.0.1:{port}/api/v1/partners",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={
            "name": "Bench Seller",
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


class Rounds:
    """The rounds' runs: each delivery written once, the queue checked after each gateway run."""

    def __init__(self, args, wrk, ports, pids, redis, folder) -> None:
        self.args, self.wrk, self.ports, self.redis, self.folder = args, wrk, ports, redis, folder
        self.pids = pids
        self.tag = 0
        self.failures: list[str] = []

    def one(self, name: str, rate: float = 0.0) -> dict:
        self.tag += 1
        most = (rate or self.args.max_rate) * self.args.duration * 1.2 + self.args.connections
        write_requests(self.folder, self.ports[name], int(most), self.args.threads, self.tag)
        port = self.ports[name]
        figures = run_wrk(self.wrk, port, self.args, self.folder, rate, self.pids[name])
        accepted = figures["requests"] - figures["bad"]
        queued = self.settled_queue()
        if name != "bare":  # nothing consumes the queue: it must hold every accepted one
            extra = queued - accepted
            if not 0 <= extra <= self.args.connections:
                errors = {k: figures[k] for k in ("connect", "read", "write", "timeout")}
                self.failures.append(
                    f"{name}: {accepted} accepted but {queued} jobs queued (wrk errors {errors})"
                )
            self.redis.delete("rq:queue:gateway")  # the job hashes stay: their memory is small
        bad = figures["bad"] + figures["reused"] + figures["timeout"] + figures["status"]
        if bad:
            self.failures.append(f"{name}: {bad} bad answers, repeats or time-outs")
        return figures

    def settled_queue(self) -> int:
        """The queue's length once it stops growing: requests wrk sent but stopped waiting for
        are still answered (and enqueued) after it exits."""
        length, deadline = -1, time.monotonic() + 10
        while time.monotonic() < deadline:
            now = self.redis.llen("rq:queue:gateway")
            if now == length:
                return now
            length = now
            time.sleep(0.5)
        return length


def line(label: str, f: dict) -> str:
    """One run or median, on one line."""
    return (
        f"{label:24} {f['rps']:7.0f} req/s  p50 {f['p50']:6.2f}  p90 {f['p90']:6.2f}  "
        f"p99 {f['p99']:6.2f}  max {f['max']:7.2f} ms  CPU per request: web "
        f"{f['cpu_ms'][0]:.2f} ms, Redis {f['cpu_ms'][1]:.3f} ms (wrk {f['client_cpu']:.2f} cores)"
    )


def limit(top: dict) -> str:
    """The measured limit, when the targets are not met: every core is busy at saturation (the
    gateway's gunicorn, Redis, wrk), so the CPU per webhook sets the rate. What the same cores
    carry at the gateway's and the bare endpoint's CPU per request, and what 0.5 would take."""
    cores = os.cpu_count() or 1
    gateway, bare = top["gateway"], top["bare"]
    web, redis = gateway["cpu_ms"][0] / 1000, gateway["cpu_ms"][1] / 1000
    busy = gateway["rps"] * (web + redis) + gateway["client_cpu"]
    half = 0.5 * bare["rps"]
    room = cores - half * redis - gateway["client_cpu"]  # what the web may use at that rate
    return (
        f"measured limit: at saturation the gateway's processes and wrk keep {busy:.2f} of "
        f"{cores} cores busy; a webhook costs the web {1000 * web:.2f} ms of CPU (the bare "
        f"endpoint's request {bare['cpu_ms'][0]:.2f} ms) and Redis {1000 * redis:.3f} ms, so "
        f"these cores carry about {gateway['rps']:.0f}/s. 0.5 x bare ({half:.0f}/s) needs at "
        f"most {1000 * room / half:.2f} ms of web CPU a webhook (SCALING.md: where it goes)"
    )


def medians(runs: list[dict]) -> dict:
    keys = ("rps", "p50", "p90", "p99", "p999", "max", "client_cpu")
    figures = {k: statistics.median(r[k] for r in runs) for k in keys}
    figures["cpu_ms"] = [statistics.median(r["cpu_ms"][n] for r in runs) for n in (0, 1)]
    return figures


def run(
    args: argparse.Namespace, wrk: str, ports: dict, pids: dict, redis: Redis, folder: Path
) -> None:
    connect_seller(ports["gateway"])
    rounds = Rounds(args, wrk, ports, pids, redis, folder)
    names = list(ports)
    short = argparse.Namespace(**{**vars(args), "duration": 2})
    warm = Rounds(short, wrk, ports, pids, redis, folder)
    warm.tag = 1000  # its deliveries differ from the rounds'
    for name in names:  # warm every server's workers up (and their caches)
        warm.one(name)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, signed Shopify "
        f"fulfillments/create webhooks (each id and body unique), the Procfile's web line "
        f"(WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', 'its default')}), Redis with AOF "
        "(everysec)"
        + "".join(f", {name} without hiredis" for name in args.no_hiredis)
        + "\n\n1. saturation"
    )
    saturation: dict[str, list[dict]] = {name: [] for name in names}
    for number in range(args.rounds):
        for name in names if number % 2 == 0 else reversed(names):
            saturation[name].append(rounds.one(name))
            print(line(f"round {number + 1} {name}", saturation[name][-1]))
    top = {name: medians(runs) for name, runs in saturation.items()}
    for name in names:
        print(line(f"median {name}", top[name]))

    rate = args.share * top["bare"]["rps"]
    print(f"\n2. latency at a fixed {rate:.0f} req/s ({args.share:g} x bare's median saturation)")
    paced: dict[str, list[dict]] = {name: [] for name in names}
    for number in range(args.rounds):
        for name in names if number % 2 == 0 else reversed(names):
            paced[name].append(rounds.one(name, rate))
            print(line(f"round {number + 1} {name}", paced[name][-1]))
    fixed = {name: medians(runs) for name, runs in paced.items()}
    for name in names:
        print(line(f"median {name}", fixed[name]))

    print("\nratios (medians)")
    for name in names[1:]:
        print(
            f"{name}/bare: throughput {top[name]['rps'] / top['bare']['rps']:.2f} (target 0.5); "
            f"at {rate:.0f} req/s p50 {fixed[name]['p50'] / fixed['bare']['p50']:.2f}, "
            f"p99 {fixed[name]['p99'] / fixed['bare']['p99']:.2f}; "
            f"p99 {fixed[name]['p99']:.1f} ms (target 25)"
        )
    if "before" in ports:
        after, before = top["gateway"]["rps"], top["before"]["rps"]
        print(
            f"gateway/before: throughput {after / before:.2f}, p99 at {rate:.0f} req/s "
            f"{fixed['gateway']['p99'] / fixed['before']['p99']:.2f}"
        )
    # wrk measures from each send: a server that falls behind the schedule delays the sends
    # themselves, so its latencies say nothing; it must have kept the rate.
    kept = fixed["gateway"]["rps"] >= 0.97 * rate
    print(f"gateway kept the fixed rate (97% or more of it): {kept}")
    throughput = top["gateway"]["rps"] / top["bare"]["rps"] >= 0.5
    met = throughput and kept and fixed["gateway"]["p99"] <= 25
    print(f"targets met: {met}")
    if not met:
        print(limit(top))
    print(f"every answer 200 accepted, one queued job each: {not rounds.failures}")
    for failure in rounds.failures:
        print(f"  {failure}")


if __name__ == "__main__":
    main()
