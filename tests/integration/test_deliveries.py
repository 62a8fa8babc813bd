"""Deliveries to buyers and sellers: retries with backoff, visible failure, stuck-work recovery."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from conftest import bearer, free_port, wait_for
from rq.registry import ScheduledJobRegistry

from gateway.jobs import job_queue, next_attempt_delay
from gateway.jobs.reconcile import LOCK, reconcile
from gateway.jobs.routing import route_order
from gateway.store import key

UPS = "1Z5R89390357567127"


def _fulfill(client, order, seller, quantity=2):
    line_id = order["line_items"][0]["id"]
    answer = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"line_item_id": line_id, "quantity": quantity}],
            "carrier": "UPS",
            "tracking_numbers": [UPS],
        },
        headers=bearer(seller["api_key"]),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["fulfillment"]["id"]


def _order(client, order, buyer):
    return client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])).get_json()


def _timeline_types(redis, order_id):
    import json

    return [json.loads(raw)["type"] for raw in redis.lrange(key("timeline", order_id), 0, -1)]


def test_callback_failure_is_retried_then_delivered(
    client, pair, make_order, worker, callback_receiver, redis
):
    callback_receiver.statuses = [503]
    buyer, seller = pair({"callback_url": callback_receiver.url})
    order = make_order(buyer, seller)
    _fulfill(client, order, seller)

    def delivered():
        fulfillment = _order(client, order, buyer)["fulfillments"][0]
        return fulfillment["delivery"]["state"] == "delivered" and fulfillment

    fulfillment = wait_for(delivered, 20, "the retried delivery")
    assert fulfillment["delivery"]["attempts"] == 2
    assert fulfillment["delivery"]["buyer_ref"] == f"evt_{fulfillment['id']}_created"
    # Both attempts carried the same webhook-id, so the buyer can drop a duplicate.
    ids = {r["headers"]["webhook-id"] for r in callback_receiver.requests}
    assert ids == {f"evt_{fulfillment['id']}_created"}
    assert "delivery.retry" in _timeline_types(redis, order["id"])


def test_exhausted_retries_leave_a_visible_failed_delivery(
    client, pair, make_order, worker, callback_receiver, redis
):
    callback_receiver.statuses = [500] * 10
    buyer, seller = pair({"callback_url": callback_receiver.url})
    order = make_order(buyer, seller)
    _fulfill(client, order, seller)

    def failed():
        fulfillment = _order(client, order, buyer)["fulfillments"][0]
        return fulfillment["delivery"]["state"] == "failed" and fulfillment

    fulfillment = wait_for(failed, 30, "the delivery to fail")
    # One attempt plus one per entry of DELIVERY_RETRY_SCHEDULE ("1,1").
    assert fulfillment["delivery"]["attempts"] == 3
    assert "HTTP 500" in fulfillment["delivery"]["last_error"]
    assert len(callback_receiver.requests) == 3
    assert "delivery.failed" in _timeline_types(redis, order["id"])
    # Nothing is left scheduled: a failed delivery stays failed until a resync.
    assert ScheduledJobRegistry("gateway", connection=redis).count == 0


def test_buyer_without_callback_is_marked_delivered_for_polling(client, pair, make_order, worker):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    _fulfill(client, order, seller)
    wait_for(
        lambda: _order(client, order, buyer)["fulfillments"][0]["delivery"]["state"] == "delivered"
    )


def test_retry_after_wins_when_longer_and_schedule_ends():
    assert next_attempt_delay((10, 60), 1) == 10
    assert next_attempt_delay((10, 60), 1, retry_after=45) == 45
    assert next_attempt_delay((10, 60), 2, retry_after=5) == 60
    assert next_attempt_delay((10, 60), 3) is None
    assert next_attempt_delay((10,), 1, retry_after=10**9) == 24 * 3600


def test_seller_email_goes_to_the_outbox_without_mail_url(
    client, pair, make_order, monkeypatch, tmp_path
):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    monkeypatch.setenv("MAIL_URL", "")
    monkeypatch.setenv("OUTBOX_DIR", str(tmp_path))
    assert route_order(order["id"]) == "delivered"
    (path,) = Path(tmp_path).glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == seller["email"]
    assert f"/orders/{order['id']}?t=" in message.get_body().get_content()
    assert route_order(order["id"]) == "nothing to do"  # routed once only


def test_unreachable_smtp_is_retried_then_failed(client, pair, make_order, monkeypatch, redis):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    monkeypatch.setenv("MAIL_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MAIL_RETRY_SCHEDULE", "5")
    assert route_order(order["id"]) == "retrying"
    assert ScheduledJobRegistry("gateway", connection=redis).count == 1
    assert route_order(order["id"]) == "failed"
    types = _timeline_types(redis, order["id"])
    assert types[-2:] == ["delivery.retry", "delivery.failed"]


def test_reconcile_requeues_a_lost_job_once_under_its_lock(client, pair, make_order, redis):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    queue = job_queue(redis)
    queue.empty()  # the routing job is lost, as if a worker died holding it
    assert reconcile()["requeued"] == 0  # not stuck yet: it was written just now

    member = f"{order['id']}|route"
    redis.zadd(key("pending"), {member: 1})  # ... and now it has waited long enough
    redis.set(key("lock", LOCK), "someone-else")
    assert reconcile() == {"skipped": 1}
    assert queue.count == 0
    redis.delete(key("lock", LOCK))
    assert reconcile()["requeued"] == 1
    assert [job.func_name for job in queue.get_jobs()] == ["gateway.jobs.routing.route_order"]
    assert reconcile()["requeued"] == 0  # postponed, not enqueued on every run


def test_delivered_work_leaves_the_pending_index(client, pair, make_order, worker, mailbox, redis):
    buyer, seller = pair()
    order = make_order(buyer, seller)
    assert redis.zscore(key("pending"), f"{order['id']}|route") is not None
    wait_for(
        lambda: redis.zscore(key("pending"), f"{order['id']}|route") is None, what="routing done"
    )
