"""Recovery after one fault at a time: the seconds from a fault to the delivery it held up
(RELIABILITY.md's figures).

    .venv/bin/python bench/recovery.py [--workers 3] [--rounds 2]

One gateway (Redis with AOF everysec, gunicorn, RQ workers, the cron process) and a buyer whose
callback URL is a local receiver, and a seller, both with no platform. For each fault, each
round: an order of one line, one fulfillment posted through the API, the fault injected where it
hurts, and the time from the fault (or the end of the outage) until the fulfillment's delivery
is recorded as delivered. Faults:

- worker killed mid-delivery: the buyer takes 2 s to answer, the worker is SIGKILLed during the
  call (a replacement starts at once);
- scheduler's worker killed: the worker holding RQ's scheduler lock is SIGKILLed, and the buyer
  refuses the first try, so the delivery needs a retry from the scheduler;
- scheduler's worker and scheduler killed: the same, its scheduler process killed too (a lost
  machine or container): the lock outlives them (61 s);
- Redis kill -9 mid-delivery, restarted 2 s later (counted from the restart);
- job lost: the workers suspended, the job taken off the queue, the workers resumed (counted
  from the resume);
- cron down: the cron process killed, then a worker killed mid-delivery; 30 s later the cron
  process starts again (counted from its restart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil
from redis import Redis
from rq import Queue
from rq.suspension import resume, suspend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root
from sandbox.chaos import SCHEDULER_LOCK, SETTINGS, UPS, Client, Receiver, partners
from sandbox.local import LocalGateway, wait_for


class Bench:
    """The gateway, the buyer's receiver and the partners, shared by every fault."""

    def __init__(self, workers: int) -> None:
        self.receiver = Receiver(refuse_every=0)
        self.receiver.start()
        self.gateway = LocalGateway(workers, cron=True, prefix="recovery-", env=SETTINGS)
        self.gateway.start()
        self.buyer, self.seller = partners(self.gateway, self.receiver)
        self.client = Client(self.gateway.url)
        self.redis = Redis.from_url(self.gateway.redis_url, socket_timeout=2)
        self.orders = 0

    def stop(self) -> None:
        self.gateway.stop()
        self.receiver.stop()

    def fulfil(self) -> tuple[str, str]:
        """A new order of one line, and one fulfillment of it; (order id, fulfillment id)."""
        self.orders += 1
        order = self.client.call(
            "POST",
            "/api/v1/orders",
            self.buyer["api_key"],
            json={
                "seller_id": self.seller["id"],
                "buyer_order_ref": f"R{self.orders}",
                "line_items": [{"sku": "MUG-BLUE", "quantity": 1}],
                "shipping_address": {
                    "name": "Ada",
                    "address1": "1 Main St",
                    "city": "Springfield",
                    "zip": "62701",
                    "country_code": "US",
                },
            },
        ).body
        body = {
            "line_items": [{"line_item_id": order["line_items"][0]["id"], "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": [UPS],
        }
        path = f"/api/v1/orders/{order['id']}/fulfillments"
        answer = self.client.call("POST", path, self.seller["api_key"], json=body)
        return order["id"], answer.body["fulfillment"]["id"]

    def delivered(self, order_id: str, timeout: float = 180) -> float:
        """Wait until the order's fulfillment is recorded as delivered; when (monotonic)."""

        def done() -> bool:
            answer = self.client.call("GET", f"/api/v1/orders/{order_id}", self.gateway.admin)
            states = [f["delivery"]["state"] for f in answer.body.get("fulfillments", [])]
            return states == ["delivered"]

        wait_for("the delivery", done, timeout=timeout, interval=0.1)
        return time.monotonic()

    def workers(self) -> list[str]:
        return [
            name
            for name, process in self.gateway.children.items()
            if name.startswith("worker") and process.poll() is None
        ]

    def delivering(self, fulfillment_id: str, timeout: float = 10) -> str:
        """The worker running this fulfillment's forward job."""

        def find() -> str | None:
            for name in self.workers():
                job = self.redis.hget(f"rq:worker:{name}", "current_job")
                description = job and self.redis.hget(f"rq:job:{job.decode()}", "description")
                if description and fulfillment_id.encode() in description:
                    return name
            return None

        return wait_for("a worker delivering", find, timeout=timeout, interval=0.01)

    def kill_worker(self, name: str, with_children: bool = False) -> float:
        """SIGKILL a worker (and its scheduler process); a replacement starts; when."""
        process = psutil.Process(self.gateway.children[name].pid)
        children = process.children(recursive=True) if with_children else []
        for child in children:
            child.kill()
        self.gateway.kill(name)
        killed = time.monotonic()
        self.gateway.start_worker()
        return killed

    # ---- the faults ----------------------------------------------------------------------------

    def worker_killed_mid_delivery(self) -> float:
        self.receiver.hold = 2.0
        order_id, fulfillment_id = self.fulfil()
        victim = self.delivering(fulfillment_id)
        time.sleep(0.3)  # in the middle of its call to the buyer
        killed = self.kill_worker(victim)
        self.receiver.hold = 0.0
        return self.delivered(order_id) - killed

    def scheduler_worker_killed(self, with_scheduler: bool = False) -> float:
        def live_holder() -> str | None:
            holder = (self.redis.get(SCHEDULER_LOCK) or b"").decode()
            return holder if holder in self.workers() else None

        holder = wait_for("a live worker's scheduler", live_holder, timeout=90)
        self.receiver.refuse_every = 1  # the first try of every event: a retry is needed
        try:
            killed = self.kill_worker(holder, with_children=with_scheduler)
            order_id, _ = self.fulfil()
            return self.delivered(order_id) - killed
        finally:
            self.receiver.refuse_every = 0

    def redis_killed_mid_delivery(self) -> float:
        self.receiver.hold = 2.0
        order_id, fulfillment_id = self.fulfil()
        self.delivering(fulfillment_id)
        time.sleep(0.3)
        self.gateway.kill_redis()
        time.sleep(2)
        self.gateway.restart_redis()
        back = time.monotonic()
        self.receiver.hold = 0.0
        return self.delivered(order_id) - back

    def job_lost(self) -> float:
        suspend(self.redis)
        time.sleep(6)  # every worker has seen it (they look between jobs, every few seconds)
        order_id, _ = self.fulfil()
        for name in ("gateway", "callbacks"):  # deliveries to a callback URL have their own
            Queue(name, connection=self.redis).empty()
        resume(self.redis)
        resumed = time.monotonic()
        return self.delivered(order_id) - resumed

    def cron_down(self) -> float:
        self.gateway.kill("cron")
        self.receiver.hold = 2.0
        order_id, fulfillment_id = self.fulfil()
        self.kill_worker(self.delivering(fulfillment_id))
        self.receiver.hold = 0.0
        time.sleep(30)
        self.gateway.start_cron()
        restarted = time.monotonic()
        return self.delivered(order_id) - restarted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3, help="RQ worker processes")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each fault")
    args = parser.parse_args()
    bench = Bench(args.workers)
    faults = {
        "worker killed mid-delivery": bench.worker_killed_mid_delivery,
        "scheduler's worker killed (retry pending)": bench.scheduler_worker_killed,
        "scheduler's worker and scheduler killed": lambda: bench.scheduler_worker_killed(True),
        "Redis kill -9 mid-delivery (from restart)": bench.redis_killed_mid_delivery,
        "job lost from the queue (from resume)": bench.job_lost,
        "cron down 30 s (from its restart)": bench.cron_down,
    }
    print(f"gateway with {args.workers} workers and cron; logs in {bench.gateway.folder}")
    try:
        for name, fault in faults.items():
            seconds = [fault() for _ in range(args.rounds)]
            shown = "  ".join(f"{s:5.1f}" for s in seconds)
            print(f"{name:45} {shown}   worst {max(seconds):5.1f} s", flush=True)
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
