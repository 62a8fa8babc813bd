"""The chaos scenario that tests/chaos and bench/chaos.py share.

A LocalGateway with its cron process and several RQ workers; a buyer with no platform whose
callback URL is a `Receiver` here (recording every delivery, refusing the first try of one event
in ten so retries happen) and a seller with no platform; orders of two lines, each line fulfilled
through the API: line 1 by two threads posting the same fulfillment at once without a key (one
201, the other 422), line 2 twice with one Idempotency-Key (one fulfillment, two 201s). While the
fulfillments go in, `Faults` SIGKILLs workers (the first the one holding RQ's scheduler lock, the
others while they deliver) and starts replacements, and kills Redis with -9 and starts it again
on the same port and AOF folder. Then `check` counts what was lost, duplicated or over-fulfilled,
and measures the latencies and the time from the last fault to the last delivery.

Definitions (RELIABILITY.md):
- lost: a fulfillment answered 201 that is not in its order, or whose `fulfillment.created`
  never reached the buyer with a 2xx answer; an order never shipped, or whose `order.shipped`
  never arrived.
- duplicated: a stored fulfillment that no 201 answered and no ambiguous answer (a 503 or a
  dropped connection while Redis was down) may have made; two fulfillments covering one line; a
  second event id for one fulfillment or one shipped order; an event id answered 2xx and then
  delivered again, unless a fault explains it: the worker killed while running that delivery's
  job, or Redis killed within seconds of it (the buyer's 2xx arrived but the gateway could not
  record it: at-least-once, and the event id lets the buyer drop the copy). Deliveries after a
  non-2xx answer are retries, not duplicates.
- over-fulfilled: a line whose fulfilled quantity exceeds its ordered quantity.
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from redis import Redis
from redis.exceptions import RedisError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sandbox.local import LocalGateway, free_port

UPS = "1Z5R89390357567127"
LINES = [
    {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"},
    {"sku": "MUG-RED", "quantity": 1, "title": "Red mug"},
]
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province": "IL",
    "zip": "62701",
    "country_code": "US",
}
SCHEDULER_LOCK = "rq:scheduler-lock:gateway"  # RQ's; its value names the worker (gateway.worker)
HTTP_TIMEOUT = 5  # the gateway's, per outbound call
SETTINGS = {
    "DELIVERY_RETRY_SCHEDULE": "1,2,5,10,30,60,120",  # refused deliveries retried in seconds
    "HTTP_TIMEOUT": str(HTTP_TIMEOUT),
    "ALLOW_PRIVATE_HOSTS": "127.0.0.0/8,::1,localhost",  # the receiver is on loopback
}
AMBIGUOUS = (0, 502, 503, 504)  # no answer, or the store unavailable: it may or may not be in


@dataclass
class Plan:
    """The load and the faults; the defaults are the test's."""

    orders: int = 36
    workers: int = 3
    worker_kills: int = 3  # the first holds the scheduler lock, the others are delivering
    redis_restarts: int = 1
    pace: float = 2.0  # orders per second whose fulfillments start
    submitters: int = 4  # orders being fulfilled at once
    redis_down: float = 2.0  # seconds between Redis's kill and its restart
    refuse_every: int = 10  # the receiver refuses the first try of one event in this many
    settle: float = 150.0  # seconds past the last fault to wait for the last delivery
    faults: bool = True  # False: the same load, no fault (the baseline)


# ---- the buyer's callback URL ------------------------------------------------------------------


@dataclass
class Arrival:
    """One request the receiver got."""

    at: float  # time.monotonic()
    event_id: str
    kind: str
    order_id: str
    fulfillment_id: str | None
    answered: int
    signed: bool


class Receiver:
    """The buyer's callback URL on 127.0.0.1: records every delivery, checks its Standard
    Webhooks signature once the secret is known, and answers 503 to the first try of the event
    ids that `refused` picks (one in `refuse_every`), 200 otherwise."""

    def __init__(self, refuse_every: int) -> None:
        self.refuse_every = refuse_every
        self.hold = 0.0  # seconds each request waits for its answer (a slow buyer)
        self.secret = ""
        self.arrivals: list[Arrival] = []
        self.tries: Counter = Counter()  # event id -> deliveries so far
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def refused(self, event_id: str, tries: int) -> bool:
        """The first try of one event id in `refuse_every` gets a 503."""
        return (
            self.refuse_every > 0
            and tries == 0
            and zlib.crc32(event_id.encode()) % self.refuse_every == 0
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.record(body, {k.lower(): v for k, v in self.headers.items()}, self)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def record(self, body: bytes, headers: dict[str, str], handler: BaseHTTPRequestHandler) -> None:
        event = json.loads(body)
        event_id = headers.get("webhook-id", "")
        try:
            Webhook(self.secret).verify(body, headers)
            signed = True
        except (WebhookVerificationError, ValueError):
            signed = False
        data = event.get("data", {})
        with self.lock:
            status = 503 if self.refused(event_id, self.tries[event_id]) else 200
            self.tries[event_id] += 1
            self.arrivals.append(
                Arrival(
                    time.monotonic(),
                    event_id,
                    event.get("type", ""),
                    data.get("order", {}).get("id", ""),
                    (data.get("fulfillment") or {}).get("id"),
                    status,
                    signed,
                )
            )
        time.sleep(self.hold)
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> dict[str, list[Arrival]]:
        """Event id -> its deliveries answered 2xx, in order."""
        with self.lock:
            found: dict[str, list[Arrival]] = defaultdict(list)
            for arrival in self.arrivals:
                if arrival.answered < 300:
                    found[arrival.event_id].append(arrival)
            return found


# ---- the faults --------------------------------------------------------------------------------


@dataclass
class Fault:
    """One fault injected: what, when (monotonic; `ended` once recovered from), and details."""

    kind: str  # "scheduler worker killed", "delivering worker killed", "redis restarted"
    at: float
    ended: float
    worker: str = ""
    job: str = ""  # the description of the job the killed worker was running
    takeover: float | None = None  # seconds until another worker held the scheduler lock


class Faults:
    """Injects the plan's faults, spread over `window` seconds, in a thread of its own."""

    def __init__(self, gateway: LocalGateway, plan: Plan, window: float) -> None:
        self.gateway = gateway
        self.plan = plan
        self.window = window
        self.done: list[Fault] = []
        self.redis = Redis.from_url(gateway.redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.thread = threading.Thread(target=self.inject, daemon=True)

    def schedule(self) -> list[str]:
        """The faults in order: the scheduler's worker first, Redis restarts in the middle."""
        kills = ["scheduler"] + ["delivering"] * (self.plan.worker_kills - 1)
        kills = kills[: self.plan.worker_kills]
        order: list[str] = []
        for index, kind in enumerate(kills):
            order.append(kind)
            if index == len(kills) // 2 - 1 or len(kills) == 1:
                order += ["redis"] * self.plan.redis_restarts
        if not kills:
            order = ["redis"] * self.plan.redis_restarts
        return order

    def inject(self) -> None:
        begin = time.monotonic()
        kinds = self.schedule()
        for index, kind in enumerate(kinds):
            due = begin + self.window * (index + 1) / (len(kinds) + 1)
            time.sleep(max(0.0, due - time.monotonic()))
            if kind == "redis":
                self.restart_redis()
            else:
                self.kill_worker(kind == "scheduler")

    def alive_workers(self) -> list[str]:
        return [
            name
            for name, process in self.gateway.children.items()
            if name.startswith("worker") and process.poll() is None
        ]

    def current_job(self, worker: str) -> str:
        """The description of the job a worker is running, or ""."""
        try:
            job_id = self.redis.hget(f"rq:worker:{worker}", "current_job")
            if not job_id:
                return ""
            description = self.redis.hget(f"rq:job:{job_id.decode()}", "description")
            return description.decode() if description else ""
        except RedisError:
            return ""

    def scheduler_holder(self) -> str | None:
        """The live worker whose name the scheduler lock holds."""
        try:
            holder = self.redis.get(SCHEDULER_LOCK)
        except RedisError:
            return None
        name = holder.decode() if holder else None
        return name if name in self.alive_workers() else None

    def kill_worker(self, holding_scheduler: bool) -> None:
        victim, job = None, ""
        deadline = time.monotonic() + (15 if holding_scheduler else 5)
        while victim is None and time.monotonic() < deadline:
            if holding_scheduler:
                victim = self.scheduler_holder()
                job = self.current_job(victim) if victim else ""
            else:  # one in the middle of a delivery, if one shows up in time
                for name in self.alive_workers():
                    job = self.current_job(name)
                    if "forwarding" in job or "routing" in job:
                        victim = name
                        break
            if victim is None:
                time.sleep(0.02)
        if holding_scheduler and victim is not None:
            kind = "scheduler worker killed"
        elif victim is not None:
            kind = "delivering worker killed"
        else:  # none seen delivering, or no lock holder seen: any worker, said as it is
            victim = self.alive_workers()[0]
            job, kind = self.current_job(victim), "worker killed"
        self.gateway.kill(victim)
        at = time.monotonic()
        fault = Fault(kind, at, at, victim, job)
        self.done.append(fault)
        self.gateway.start_worker()  # what a process manager does
        if holding_scheduler:  # measured aside: the next fault does not wait for it
            threading.Thread(target=self.watch_takeover, args=(fault,), daemon=True).start()

    def watch_takeover(self, fault: Fault) -> None:
        """How long until another live worker holds the scheduler lock (at most 120 s)."""
        while time.monotonic() < fault.at + 120:
            holder = self.scheduler_holder()
            if holder and holder != fault.worker:
                fault.takeover = time.monotonic() - fault.at
                return
            time.sleep(0.1)

    def restart_redis(self) -> None:
        self.gateway.kill_redis()
        at = time.monotonic()
        time.sleep(self.plan.redis_down)
        self.gateway.restart_redis()
        self.done.append(Fault("redis restarted", at, time.monotonic()))

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


# ---- the load ----------------------------------------------------------------------------------


@dataclass
class Answer:
    """One API answer the scenario got."""

    status: int  # 0: no answer (connection refused or dropped, timeout)
    body: dict
    at: float


class Client:
    """The JSON API over one requests session per thread."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.local = threading.local()

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> Answer:
        """One call; a 429 (rate limited: nothing was done) is waited out and sent again."""
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        for _ in range(20):
            try:
                answer = session.request(
                    method, self.base + path, headers=headers, timeout=30, **kwargs
                )
                body = answer.json() if answer.content else {}
            except (requests.RequestException, ValueError):
                return Answer(0, {}, time.monotonic())
            if answer.status_code != 429:
                break
            wait = answer.headers.get("Retry-After", "1")
            time.sleep(min(float(wait), 10) if wait.isdigit() else 1)
        return Answer(answer.status_code, body, time.monotonic())

    def until_answered(self, method: str, path: str, key: str, deadline: float, **kw) -> Answer:
        """Call again while the answer is ambiguous (safe only for repeat-safe calls)."""
        while True:
            answer = self.call(method, path, key, **dict(kw))
            if answer.status not in AMBIGUOUS or time.monotonic() > deadline:
                return answer
            time.sleep(0.3)


@dataclass
class OrderRun:
    """What happened to one order's submissions."""

    order: dict
    race: list[Answer] = field(default_factory=list)  # line 1, two threads, no key
    keyed: list[Answer] = field(default_factory=list)  # line 2, one Idempotency-Key, twice
    fallback: list[Answer] = field(default_factory=list)  # line 1 again, if no racer landed
    accepted: dict[str, float] = field(default_factory=dict)  # fulfillment id -> first 201 at
    ambiguous: int = 0  # answers that may or may not have stored something


def fulfil(client: Client, seller_key: str, run: OrderRun, deadline: float) -> None:
    """Line 1 raced by two threads without a key, then line 2 twice with one key."""
    order = run.order
    path = f"/api/v1/orders/{order['id']}/fulfillments"
    first, second = order["line_items"]

    def body(line: dict) -> dict:
        quantity = line["quantity"]
        return {
            "line_items": [{"line_item_id": line["id"], "quantity": quantity}],
            "carrier": "UPS",
            "tracking_numbers": [UPS],
        }

    start = threading.Barrier(2)
    answers: list[Answer] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait(10)
        answer = client.call("POST", path, seller_key, json=body(first))
        with lock:
            answers.append(answer)

    racers = [threading.Thread(target=race) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    run.race = answers
    run.ambiguous += sum(1 for a in answers if a.status in AMBIGUOUS)
    if not any(a.status == 201 for a in answers):
        # No racer was answered 201 (Redis was down): one may still have landed. Look, then
        # submit line 1 with a key, repeat-safe, if it is still open.
        current = client.until_answered(
            "GET", f"/api/v1/orders/{order['id']}", seller_key, deadline
        )
        lines = {line["id"]: line for line in current.body.get("line_items", [])}
        if lines.get(first["id"], {}).get("fulfilled_quantity", 0) == 0:
            key = {"Idempotency-Key": f"{order['id']}-line-1"}
            run.fallback.append(
                client.until_answered(
                    "POST", path, seller_key, deadline, json=body(first), headers=key
                )
            )
    key = {"Idempotency-Key": f"{order['id']}-line-2"}
    for _ in range(2):
        run.keyed.append(
            client.until_answered(
                "POST", path, seller_key, deadline, json=body(second), headers=key
            )
        )
    for answer in [*run.race, *run.fallback, *run.keyed]:
        if answer.status == 201:
            fid = answer.body["fulfillment"]["id"]
            run.accepted.setdefault(fid, answer.at)


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Counts, figures and the problems found (empty when every promise held)."""

    plan: Plan
    orders: int = 0
    fulfillments: int = 0
    answers: Counter = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    over_fulfilled: int = 0
    redelivered_after_fault: int = 0
    retried_after_refusal: int = 0
    latencies: list[float] = field(default_factory=list)  # 201 -> fulfillment.created at buyer
    last_fault_to_last_delivery: float | None = None
    span: float = 0.0  # first fulfillment submitted -> last event delivered
    took: float = 0.0
    folder: str = ""
    problems: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(plan: Plan, log: Callable[[str], None] = print) -> Outcome:
    """The scenario, start to finish; its Outcome. The gateway's logs stay in its folder."""
    began = time.monotonic()
    outcome = Outcome(plan)
    receiver = Receiver(plan.refuse_every)
    receiver.start()
    gateway = LocalGateway(plan.workers, cron=True, prefix="chaos-", env=SETTINGS)
    outcome.folder = str(gateway.folder)
    try:
        gateway.start()
        log(f"gateway up ({plan.workers} workers and cron), logs in {gateway.folder}")
        scenario(plan, gateway, receiver, outcome, log)
    finally:
        gateway.stop()
        receiver.stop()
    outcome.took = time.monotonic() - began
    return outcome


def partners(gateway: LocalGateway, receiver: Receiver) -> tuple[dict, dict]:
    """A buyer whose callback URL is the receiver and a seller, both with no platform, and
    their partnership; their creation answers (with their keys)."""
    buyer, seller = gateway.partners(
        {
            "name": "Corner Shop",
            "email": "buyer@example.com",
            "platform": "none",
            "callback_url": receiver.url,
        },
        {"name": "Acme Supply", "email": "seller@example.com", "platform": "none"},
    )
    receiver.secret = buyer["event_signing_secret"]
    return buyer, seller


def scenario(
    plan: Plan, gateway: LocalGateway, receiver: Receiver, outcome: Outcome, log: Callable
) -> None:
    admin = gateway.admin
    client = Client(gateway.url)
    buyer, seller = partners(gateway, receiver)
    deadline = time.monotonic() + 600

    def place(n: int) -> dict:
        body = {
            "seller_id": seller["id"],
            "buyer_order_ref": f"{1001 + n}",
            "line_items": LINES,
            "shipping_address": ADDRESS,
            "customer_email": "ada@example.com",
        }
        answer = client.until_answered(
            "POST", "/api/v1/orders", buyer["api_key"], deadline, json=body
        )
        if answer.status != 201:
            raise RuntimeError(f"order {n}: HTTP {answer.status} {answer.body}")
        return answer.body

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        orders = list(pool.map(place, range(plan.orders)))
    outcome.orders = len(orders)
    log(f"{len(orders)} orders placed in {time.monotonic() - started:.1f} s")

    window = plan.orders / plan.pace
    faults = Faults(gateway, plan, window)
    runs = [OrderRun(order) for order in orders]
    begin = time.monotonic()
    if plan.faults:
        faults.start()
    with ThreadPoolExecutor(plan.submitters) as pool:
        futures = []
        for index, one in enumerate(runs):
            time.sleep(max(0.0, begin + index / plan.pace - time.monotonic()))
            futures.append(pool.submit(fulfil, client, seller["api_key"], one, deadline))
        for future in futures:
            future.result()
    submitted = time.monotonic()
    log(f"fulfillments submitted in {submitted - begin:.1f} s")
    if plan.faults:
        faults.join(window + 30 * len(faults.schedule()))
    outcome.faults = faults.done
    for fault in faults.done:
        extra = (
            f" (scheduler lock taken over after {fault.takeover:.1f} s)" if fault.takeover else ""
        )
        detail = f" {fault.worker}, running {fault.job or 'nothing'}" if fault.worker else ""
        log(f"fault at +{fault.at - begin:.1f} s: {fault.kind}{detail}{extra}")

    last_fault = max((f.ended for f in faults.done), default=begin)
    settle(gateway, receiver, runs, max(last_fault, submitted) + plan.settle, admin, client)
    check(gateway, receiver, runs, outcome, last_fault, client, admin)
    delivered = receiver.delivered()
    if delivered:
        outcome.span = max(arrivals[0].at for arrivals in delivered.values()) - begin


def expected_events(runs: list[OrderRun]) -> set[str]:
    """The event ids the buyer must get: each accepted fulfillment's, and each order's shipped."""
    ids = {f"evt_{fid}_created" for one in runs for fid in one.accepted}
    return ids | {f"evt_{one.order['id']}_shipped" for one in runs}


def settle(
    gateway: LocalGateway,
    receiver: Receiver,
    runs: list[OrderRun],
    deadline: float,
    admin: str,
    client: Client,
) -> None:
    """Wait (until `deadline`) for every expected event and for no delivery left pending: after
    that none can be sent again."""
    redis = Redis.from_url(gateway.redis_url, socket_timeout=5)
    expected = expected_events(runs)
    while time.monotonic() < deadline:
        try:
            pending = redis.zcard("gw:pending")
        except RedisError:
            pending = -1
        if pending == 0 and expected <= set(receiver.delivered()):
            return
        time.sleep(0.25)


def check(
    gateway: LocalGateway,
    receiver: Receiver,
    runs: list[OrderRun],
    outcome: Outcome,
    last_fault: float,
    client: Client,
    admin: str,
) -> None:
    """Count lost, duplicated and over-fulfilled, and measure; problems go in outcome.problems."""
    problems = outcome.problems
    delivered = receiver.delivered()
    deadline = time.monotonic() + 60
    kills = [f for f in outcome.faults if f.worker]
    restarts = [f for f in outcome.faults if f.kind == "redis restarted"]

    for one in runs:
        for answer in [*one.race, *one.fallback, *one.keyed]:
            outcome.answers[answer.status] += 1
            if answer.status >= 500 and answer.status not in AMBIGUOUS:
                problems.append(f"order {one.order['id']}: HTTP {answer.status} {answer.body}")
        racers = sorted(a.status for a in one.race)
        if racers.count(201) > 1:
            problems.append(f"order {one.order['id']}: both racers answered 201")
        elif not set(racers) & set(AMBIGUOUS) and racers != [201, 422]:
            problems.append(f"order {one.order['id']}: racers answered {racers}, not 201 and 422")
        keyed = {a.body["fulfillment"]["id"] for a in one.keyed if a.status == 201}
        if len(keyed) > 1:
            problems.append(
                f"order {one.order['id']}: one Idempotency-Key, {len(keyed)} fulfillments"
            )

        stored = client.until_answered("GET", f"/api/v1/orders/{one.order['id']}", admin, deadline)
        order = stored.body
        fulfillments = {f["id"]: f for f in order.get("fulfillments", [])}
        outcome.fulfillments += len(fulfillments)
        for fid in one.accepted:
            if fid not in fulfillments:
                outcome.lost += 1
                problems.append(f"lost: {fid} was answered 201 but is not in its order")
        extra = set(fulfillments) - set(one.accepted)
        if len(extra) > one.ambiguous:
            outcome.duplicated += len(extra) - one.ambiguous
            problems.append(f"duplicated: order {order['id']} holds {sorted(extra)} unanswered")
        covering = Counter(
            line["line_item_id"] for f in fulfillments.values() for line in f["line_items"]
        )
        for line in order.get("line_items", []):
            if line["fulfilled_quantity"] > line["quantity"]:
                outcome.over_fulfilled += 1
                problems.append(f"over-fulfilled: order {order['id']} line {line['id']}")
            if covering[line["id"]] > 1:
                outcome.duplicated += covering[line["id"]] - 1
                problems.append(f"duplicated: {covering[line['id']]} fulfillments of one line")
        if order.get("status") != "shipped":
            problems.append(f"order {order.get('id')} is {order.get('status')}, not shipped")

        firsts = {}
        for fid, accepted_at in one.accepted.items():
            event_id = f"evt_{fid}_created"
            if event_id not in delivered:
                outcome.lost += 1
                problems.append(f"lost: {event_id} never reached the buyer")
                continue
            firsts[fid] = delivered[event_id][0].at
            outcome.latencies.append(delivered[event_id][0].at - accepted_at)
        shipped = f"evt_{order['id']}_shipped"
        if shipped not in delivered:
            outcome.lost += 1
            problems.append(f"lost: {shipped} never reached the buyer")
        elif firsts and delivered[shipped][0].at < max(firsts.values()):
            problems.append(f"order {order['id']}: order.shipped before its last fulfillment")

    expected = expected_events(runs)
    by_subject: dict[tuple[str, str], set[str]] = defaultdict(set)
    for arrival in receiver.arrivals:
        if not arrival.signed:
            problems.append(f"{arrival.event_id}: signature did not verify")
        if arrival.event_id not in expected:
            outcome.duplicated += 1
            problems.append(f"unexpected event {arrival.event_id} ({arrival.kind})")
        subject = arrival.fulfillment_id if arrival.kind.startswith("fulfillment") else "shipped"
        by_subject[(arrival.order_id, subject or "")].add(arrival.event_id)
    for subject, ids in by_subject.items():
        if len(ids) > 1:
            outcome.duplicated += len(ids) - 1
            problems.append(f"duplicated: {subject} came as {len(ids)} events {sorted(ids)}")
    refused = {a.event_id for a in receiver.arrivals if a.answered >= 300}
    for event_id, arrivals in delivered.items():
        outcome.retried_after_refusal += event_id in refused
        for _ in arrivals[1:]:
            if explained(event_id, arrivals[0].at, kills, restarts):
                outcome.redelivered_after_fault += 1
            else:
                outcome.duplicated += 1
                problems.append(f"duplicated: {event_id} delivered again after a 2xx")

    if delivered:
        last = max(arrivals[0].at for arrivals in delivered.values())
        outcome.last_fault_to_last_delivery = (
            max(0.0, last - last_fault) if outcome.faults else None
        )

    for name, process in gateway.children.items():
        killed = any(f.worker == name for f in kills)  # Redis's process is the restarted one
        if process.poll() is not None and not killed:
            problems.append(f"{name} exited by itself (code {process.returncode})")


def explained(event_id: str, first_at: float, kills: list[Fault], restarts: list[Fault]) -> bool:
    """A repeat of a 2xx-answered event is a fault's doing if the worker running its delivery
    was killed, or Redis was killed while it could have been in flight."""
    subject = event_id.removeprefix("evt_").rsplit("_", 1)[0]  # the fulfillment or order id
    if any(subject in fault.job for fault in kills):
        return True
    return any(fault.at - HTTP_TIMEOUT - 1 <= first_at <= fault.ended + 1 for fault in restarts)
