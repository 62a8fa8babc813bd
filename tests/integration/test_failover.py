"""Redis failover under load (issue 12): a primary, a replica and three Sentinels; two web
processes, three workers and the cron on them, through REDIS_SENTINELS, with REDIS_WAIT_REPLICAS=1.
The primary is killed (SIGKILL) while clients post orders and fulfillments; its host comes back
and the Sentinels make it a replica of the new primary. Every process carries on with the new
primary, and every fulfillment answered 201 is in its order and reaches the buyer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from redis import Redis
from rq import Worker
from rq.cron_scheduler_registry import get_registry_key
from rq.job import Job

from gateway.jobs import job_queue
from sandbox.local import LocalGateway, wait_for
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
PATIENCE = 90  # seconds a client keeps retrying one request (503s, refused connections)


@pytest.fixture
def redis_group(tmp_path) -> Iterator[RedisWithSentinels]:
    group = RedisWithSentinels(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def gateway(redis_group) -> Iterator[LocalGateway]:
    settings = {
        **redis_group.settings(),
        "REDIS_WAIT_REPLICAS": "1",  # a write is answered once the replica holds it too
        "REDIS_WAIT_TIMEOUT_MS": "500",
        "DELIVERY_RETRY_SCHEDULE": "1,2,5,10",
        "HTTP_TIMEOUT": "3",
    }
    local = LocalGateway(workers=3, webs=2, cron=True, prefix="gateway-failover-", env=settings)
    try:
        local.start()
        yield local
    finally:
        local.stop()


class Client:
    """A buyer and its seller on one web process: orders of two mugs, each fulfilled one mug at a
    time. A 503 or a refused connection is retried with the same Idempotency-Key, as a client
    should; anything else fails the test."""

    def __init__(self, name: str, base: str, buyer: dict, seller: dict) -> None:
        self.name, self.base, self.buyer, self.seller = name, base, buyer, seller
        self.orders: list[str] = []
        self.fulfilled: list[tuple[str, str, float]] = []  # (order, fulfillment, answered at)
        self.answers: Counter[str] = Counter()  # what came back, 503s and errors included
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                self._order_and_fulfill(f"{self.name}-{n}")
                n += 1
        except BaseException as error:  # re-raised by the test
            self.error = error

    def _order_and_fulfill(self, ref: str) -> None:
        body = {
            "seller_id": self.seller["id"],
            "buyer_order_ref": ref,
            "line_items": [{"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"}],
            "shipping_address": ADDRESS,
            "customer_email": "ada@example.com",
        }
        order = self._post("/api/v1/orders", self.buyer["api_key"], body, (200, 201))
        self.orders.append(order["id"])
        line = order["line_items"][0]["id"]
        for part in (1, 2):
            fulfillment = {
                "line_items": [{"line_item_id": line, "quantity": 1}],
                "carrier": "UPS",
                "tracking_numbers": [UPS],
            }
            answer = self._post(
                f"/api/v1/orders/{order['id']}/fulfillments",
                self.seller["api_key"],
                fulfillment,
                (201,),
                idempotency_key=f"{ref}-{part}",
            )
            self.fulfilled.append((order["id"], answer["fulfillment"]["id"], time.time()))

    def _post(self, path, key, body, ok, idempotency_key=None) -> dict:
        headers = {"Authorization": f"Bearer {key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                answer = requests.post(self.base + path, json=body, headers=headers, timeout=15)
                self.answers[str(answer.status_code)] += 1
            except requests.RequestException as error:
                self.answers[type(error).__name__] += 1
                answer = None
            if answer is not None and answer.status_code in ok:
                return answer.json()
            if answer is not None and answer.status_code != 503:
                raise AssertionError(f"{path}: {answer.status_code} {answer.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: no answer but 503s for {PATIENCE} s")
            time.sleep(0.2)

    def fulfilled_since(self, moment: float) -> int:
        return sum(1 for _, _, at in self.fulfilled if at > moment)


def test_a_primary_killed_mid_run_loses_no_answered_fulfillment(
    redis_group, gateway, callback_receiver
):
    started = time.monotonic()
    buyer, seller = gateway.partners(
        {
            "name": "Corner Shop",
            "email": "buyer@example.com",
            "platform": "none",
            "callback_url": callback_receiver.url,
        },
        {"name": "Acme", "email": "seller@example.com", "platform": "none"},
        {"MUG-BLUE": "AC-100"},
    )
    clients = [Client(f"c{n}", url, buyer, seller) for n, url in enumerate(gateway.urls)]
    for client in clients:
        client.thread.start()

    def running(condition):
        for client in clients:
            if client.error:
                raise client.error
        return condition()

    try:
        # Traffic through both web processes, then the primary dies under it.
        wait_for(
            "fulfillments before the failover",
            lambda: running(lambda: all(len(c.fulfilled) >= 4 for c in clients)),
            timeout=60,
        )
        old = redis_group.primary()
        redis_group.kill(old)
        killed_at = time.time()
        wait_for("a replica promoted", lambda: running(lambda: redis_group.primary() != old), 30)
        new = redis_group.primary()
        # The host comes back; the Sentinels make it a replica of the new primary, which then
        # has a replica to acknowledge writes (until then each write is answered 503).
        redis_group.start_server(old)
        redis_group.wait_for_replicas(new, 1)
        recovered_at = time.time()
        primary = Redis(host="127.0.0.1", port=new)
        jobs_before = {w.name: w.successful_job_count for w in Worker.all(connection=primary)}
        wait_for(
            "fulfillments through each web process after the failover",
            lambda: running(lambda: all(c.fulfilled_since(recovered_at) >= 2 for c in clients)),
            timeout=60,
        )
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.thread.join(PATIENCE + 20)
    for client in clients:
        if client.error:
            raise client.error
    answers = sum((c.answers for c in clients), Counter())
    accepted = [f for c in clients for f in c.fulfilled]
    orders = {o for c in clients for o in c.orders}
    print(
        f"\n{len(accepted)} fulfillments answered 201 in {len(orders)} orders; every answer:"
        f" {dict(answers)}; primary {old} -> {new}"
    )

    # Every process is alive, and each web answers from the new primary.
    assert [p.args for p in gateway.processes if p.poll() is not None] == []
    for url in gateway.urls:
        health = requests.get(url + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["workers"] == 3, health.text

    # No fulfillment answered 201 is lost, and none is there twice.
    by_order: dict[str, set[str]] = {}
    for order_id, fulfillment_id, _ in accepted:
        by_order.setdefault(order_id, set()).add(fulfillment_id)
    for order_id, fulfillment_ids in by_order.items():
        order = gateway.api("GET", f"/api/v1/orders/{order_id}", key=buyer["api_key"])
        assert {f["id"] for f in order["fulfillments"]} == fulfillment_ids, order_id
        assert order["status"] == ("shipped" if len(fulfillment_ids) == 2 else "unshipped")

    # ...and each reaches the buyer: the workers kept working, on the new primary.
    def delivered() -> set[str]:
        return {
            e["data"]["fulfillment"]["id"]
            for e in callback_receiver.events()
            if e["type"] == "fulfillment.created"
        }

    everything = {f for _, f, _ in accepted}
    wait_for("every fulfillment at the buyer", lambda: everything <= delivered(), timeout=90)

    # Each worker took jobs from the new primary, and its scheduler moves delayed jobs there.
    wait_for(
        "a job done by each worker since the failover",
        lambda: (
            all(
                w.successful_job_count > jobs_before.get(w.name, 0)
                for w in Worker.all(connection=primary)
            )
            and len(Worker.all(connection=primary)) == 3
        ),
        timeout=60,
    )
    delayed = job_queue(primary).enqueue_in(
        timedelta(seconds=1), "gateway.jobs.reconcile.watch_deliveries", job_timeout=60
    )
    wait_for(
        "a delayed job run",
        lambda: (
            Job.fetch(delayed.id, primary, serializer=job_queue(primary).serializer)
            .get_status()
            .value
            == "finished"
        ),
        timeout=60,
    )
    # The cron beats on the new primary.
    wait_for(
        "the cron's heartbeat on the new primary",
        lambda: any(
            at > killed_at for _, at in primary.zrange(get_registry_key(), 0, -1, withscores=True)
        ),
        timeout=30,
    )
    assert time.monotonic() - started < 170


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["without-wait", "with-wait"])
def test_a_write_the_replica_lacks_is_answered_201_only_without_wait(redis_group, wait_replicas):
    """Asynchronous replication's window, made wide: the replica is cut off (stopped, its link
    dropped) when a fulfillment is posted, then the primary dies and the replica takes over.
    Without WAIT the fulfillment was answered 201 and is gone; with it the answer was 503, and the
    client's retry records it once the new primary has a replica again."""
    from gateway import create_app
    from gateway.settings import Settings

    admin = "failover-admin-token-0123456789abcdef"
    environ = {
        **redis_group.settings(),
        "REDIS_WAIT_REPLICAS": str(wait_replicas),
        "REDIS_WAIT_TIMEOUT_MS": "300",
        "GATEWAY_ADMIN_TOKEN": admin,
        "MAIL_URL": "",
    }
    client = create_app(Settings.from_env(environ, flask={"TESTING": True})).test_client()
    as_admin = {"Authorization": f"Bearer {admin}"}
    buyer = client.post(
        "/api/v1/partners",
        json={"name": "Shop", "email": "b@example.com", "platform": "none"},
        headers=as_admin,
    ).get_json()
    seller = client.post(
        "/api/v1/partners",
        json={"name": "Acme", "email": "s@example.com", "platform": "none"},
        headers=as_admin,
    ).get_json()
    client.post(
        "/api/v1/partnerships",
        json={
            "buyer_id": buyer["id"],
            "seller_id": seller["id"],
            "skus": [{"buyer_sku": "MUG-BLUE", "seller_sku": "AC-100"}],
        },
        headers=as_admin,
    )
    order = client.post(
        "/api/v1/orders",
        json={
            "seller_id": seller["id"],
            "buyer_order_ref": "1001",
            "line_items": [{"sku": "MUG-BLUE", "quantity": 2}],
            "shipping_address": ADDRESS,
            "customer_email": "ada@example.com",
        },
        headers={"Authorization": f"Bearer {buyer['api_key']}"},
    ).get_json()
    fulfillment = {
        "line_items": [{"line_item_id": order["line_items"][0]["id"], "quantity": 1}],
        "carrier": "UPS",
        "tracking_numbers": [UPS],
    }

    def post_fulfillment(key: str):
        headers = {"Authorization": f"Bearer {seller['api_key']}", "Idempotency-Key": key}
        return client.post(
            f"/api/v1/orders/{order['id']}/fulfillments", json=fulfillment, headers=headers
        )

    def fulfillment_ids() -> set[str]:
        found = client.get(f"/api/v1/orders/{order['id']}", headers=as_admin).get_json()
        return {f["id"] for f in found["fulfillments"]}

    first = post_fulfillment("first")
    assert first.status_code == 201, first.get_json()
    old = redis_group.primary()
    primary = Redis(host="127.0.0.1", port=old)
    [replica] = [port for port in redis_group.servers if port != old]
    redis_group.wait_for_replicas(old, 1)  # in sync: the replica has the order and `first`

    # The replica stops and its link is dropped: what the primary takes now, it alone has.
    redis_group.servers[replica].send_signal(signal.SIGSTOP)
    primary.client_kill_filter(_type="replica")
    second = post_fulfillment("second")
    redis_group.kill(old)
    redis_group.servers[replica].send_signal(signal.SIGCONT)
    wait_for("the replica promoted", lambda: redis_group.primary() == replica, timeout=30)

    kept = first.get_json()["fulfillment"]["id"]
    if not wait_replicas:
        # Answered 201, and lost with the primary: the window REDIS_WAIT_REPLICAS closes.
        assert second.status_code == 201
        assert fulfillment_ids() == {kept}
        return
    assert second.status_code == 503, second.get_json()
    assert second.get_json()["error"]["code"] == "unavailable"
    assert fulfillment_ids() == {kept}  # never promised, and not there
    # The old primary's host comes back as a replica; the client's retry is then recorded.
    redis_group.start_server(old)
    redis_group.wait_for_replicas(replica, 1)
    again = post_fulfillment("second")
    assert again.status_code == 201, again.get_json()
    assert fulfillment_ids() == {kept, again.get_json()["fulfillment"]["id"]}


class ReadInterruptedError(Exception):
    """What a signal handler raises in the middle of a read: a job's timeout, a stop request."""


def test_a_read_interrupted_by_a_signal_leaves_no_reply_for_the_next_command(redis_group):
    """redis-py's own connection to a Sentinel-named primary stays open when a signal interrupts
    its read, and the next command then gets the interrupted one's reply; ours closes it."""
    from gateway.failover import redis_client
    from gateway.settings import Settings

    client = redis_client(Settings.from_env(redis_group.settings()))
    client.set("probe", "mine")

    def interrupt(signum, frame):
        raise ReadInterruptedError

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(ReadInterruptedError):
            client.blpop(["nothing-here"], timeout=1)  # its nil reply comes after the signal
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(1.2)  # the BLPOP's reply has arrived by now, on the connection if it was kept
    assert client.get("probe") == b"mine"
    assert client.ping() is True


def test_webhooks_follow_the_new_primary_on_their_own_connection(redis_group):
    """Without REDIS_WAIT_REPLICAS a webhook's script runs on a connection kept out of the pool
    (Records.run_script): made by the Sentinel pool, it finds the new primary after a failover,
    which loaded no script yet, and the delivery answered before it is there too."""
    from gateway import create_app
    from gateway.settings import Settings

    admin = "failover-admin-token-0123456789abcdef"
    environ = {**redis_group.settings(), "GATEWAY_ADMIN_TOKEN": admin, "MAIL_URL": ""}
    client = create_app(Settings.from_env(environ, flask={"TESTING": True})).test_client()
    shop, secret = "failover.myshopify.com", "failover-webhook-secret"
    made = client.post(
        "/api/v1/partners",
        json={
            "name": "Acme",
            "email": "s@example.com",
            "platform": "shopify",
            "connection": {"shop_domain": shop, "access_token": secret, "webhook_secret": secret},
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 201, made.get_json()

    def deliver(n: int) -> str:
        raw = json.dumps({"id": 4903611252993 + n, "order_id": 5523429081345 + n}).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
        answer = client.post(
            "/webhooks/shopify",
            data=raw,
            content_type="application/json",
            headers={
                "X-Shopify-Shop-Domain": shop,
                "X-Shopify-Topic": "fulfillments/create",
                "X-Shopify-Webhook-Id": f"failover-{n}",
                "X-Shopify-Hmac-Sha256": signature.decode(),
            },
        )
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["status"]

    assert deliver(1) == "accepted"
    old = redis_group.primary()
    redis_group.wait_for_replicas(old, 1)  # the replica has the first delivery's job
    redis_group.kill(old)
    [replica] = [port for port in redis_group.servers if port != old]
    wait_for("the replica promoted", lambda: redis_group.primary() == replica, timeout=30)
    assert deliver(2) == "accepted"
    assert deliver(2) == "duplicate"  # the new primary has its dedupe keys
    promoted = Redis(host="127.0.0.1", port=replica)
    assert promoted.llen(job_queue(promoted).key) == 2
