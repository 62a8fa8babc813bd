"""The delivery watchdog (jobs/reconcile.py, store/deliveries.py): a delivery is taken for lost
only once its job has left the queue and no attempt holds its lease; an attempt keeps its lease
however long it runs, and a killed one loses it within ATTEMPT_SECONDS (issue 11)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.utils import utcformat

from gateway.jobs import attempts
from gateway.jobs.attempts import leased
from gateway.jobs.forwarding import forward_fulfillment
from gateway.runtime import connect
from gateway.settings import Settings
from gateway.store import STUCK_AFTER, attempt_lock, key

UPS = "1Z5R89390357567127"


def test_a_job_still_waiting_in_a_busy_queue_is_not_taken_for_lost(pair, make_order, redis):
    store = connect(Settings.from_env())
    queue = Queue("gateway", connection=redis)
    queue.empty()
    backlog = queue.enqueue("gateway.jobs.reconcile.watch_deliveries")  # waiting for 30 s
    old = datetime.now(UTC) - timedelta(seconds=30)
    redis.hset(f"rq:job:{backlog.id}", "enqueued_at", utcformat(old))
    buyer, seller = pair()
    order = make_order(buyer, seller)  # its routing job waits behind the backlog
    member = f"{order['id']}|route"
    redis.zadd(key("pending"), {member: time.time() - 1})  # written 11 s ago: past due
    assert store.stuck_deliveries() == []

    queue.empty()  # both jobs lost (as with a worker killed holding them)
    assert store.stuck_deliveries() == [(order["id"], "route")]


def test_a_delivery_whose_attempt_holds_its_lease_is_not_stuck(pair, make_order, redis):
    store = connect(Settings.from_env())
    buyer, seller = pair()
    order = make_order(buyer, seller)
    Queue("gateway", connection=redis).empty()  # the job was taken
    redis.zadd(key("pending"), {f"{order['id']}|route": 1})
    token = store.acquire(attempt_lock(order["id"], "route"), 10)
    assert store.stuck_deliveries() == []  # an attempt is at it
    store.release(attempt_lock(order["id"], "route"), token)
    assert store.stuck_deliveries() == [(order["id"], "route")]


def test_the_lease_outlives_a_slow_attempt_and_ends_with_it(monkeypatch, redis):
    monkeypatch.setattr(attempts, "ATTEMPT_SECONDS", 1)
    store = connect(Settings.from_env())
    with leased(store, "route:ord_slow") as token:
        assert token is not None
        time.sleep(2.5)  # past its 1 s: renewed meanwhile
        assert store.lock_held("route:ord_slow")
        with leased(store, "route:ord_slow") as second:
            assert second is None  # a second attempt waits its turn
    assert not store.lock_held("route:ord_slow")

    store.acquire("route:ord_killed", 1)  # an attempt whose worker died: nobody renews it
    time.sleep(1.5)
    assert not store.lock_held("route:ord_killed")


def test_the_shipped_notice_leaves_the_watch_to_the_forwards_it_waits_for(
    client, pair, make_order, redis
):
    buyer, seller = pair()  # a buyer without a callback URL: forwards are "delivered" at once
    order = make_order(buyer, seller, lines=[{"sku": "MUG-BLUE", "quantity": 1}])
    answer = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        headers={"Authorization": f"Bearer {seller['api_key']}"},
        json={
            "line_items": [{"sku": "AC-100", "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": [UPS],
        },
    )
    fulfillment_id = answer.get_json()["fulfillment"]["id"]
    forward, shipped = f"{order['id']}|forward:{fulfillment_id}", f"{order['id']}|shipped"
    assert redis.zscore(key("pending"), forward) is not None
    assert redis.zscore(key("pending"), shipped) is None  # waits: no job to lose meanwhile

    assert forward_fulfillment(order["id"], fulfillment_id) == "delivered"
    assert redis.zscore(key("pending"), forward) is None
    assert redis.zscore(key("pending"), shipped) > time.time() + STUCK_AFTER - 5  # its turn
