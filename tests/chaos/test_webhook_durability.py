"""Rule 6 under a real `kill -9` of Redis (AOF, appendfsync everysec): every webhook answered
200 "accepted" is still there after the restart (its job queued, its delivery id remembered),
while the webhooks sent during the outage are answered 503, so the platform sends them again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
import requests
from redis import Redis

from gateway.jobs import job_queue
from sandbox.chaos import SETTINGS
from sandbox.local import LocalGateway

SHOP, SECRET = "corner-store.myshopify.com", "corner-store-webhook-secret"


def signed(order_id: int) -> tuple[bytes, dict[str, str]]:
    """An orders/create delivery as Shopify sends it, with its own webhook id."""
    raw = json.dumps({"id": order_id, "name": f"#{order_id}"}).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest())
    return raw, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": f"wh-{order_id}",
        "X-Shopify-Hmac-Sha256": signature.decode(),
    }


@pytest.mark.timeout(120)
def test_webhooks_answered_200_survive_a_redis_kill():
    gateway = LocalGateway(0, prefix="webhooks-kill-", env=SETTINGS)  # no worker: jobs stay
    gateway.start()
    try:
        connection = {
            "shop_domain": SHOP,
            "access_token": "shpat_corner_store_token",
            "webhook_secret": SECRET,
            "api_base_url": "http://127.0.0.1:9",  # never called: no worker runs the jobs
        }
        body = {"name": "Corner", "email": "b@example.com", "platform": "shopify"}
        gateway.api("POST", "/api/v1/partners", json={**body, "connection": connection})
        answers: dict[int, str] = {}
        stop = threading.Event()

        def send() -> None:
            session, order_id = requests.Session(), 5000
            while not stop.is_set():
                order_id += 1
                raw, headers = signed(order_id)
                try:
                    answer = session.post(
                        f"{gateway.url}/webhooks/shopify", data=raw, headers=headers, timeout=10
                    )
                    answers[order_id] = (
                        answer.json().get("status", "") if answer.ok else str(answer.status_code)
                    )
                except requests.RequestException:
                    answers[order_id] = "no answer"

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(2)
        gateway.kill_redis()
        time.sleep(1.5)
        gateway.restart_redis()
        time.sleep(2)
        stop.set()
        sender.join(30)

        accepted = {ref for ref, status in answers.items() if status == "accepted"}
        assert len(accepted) > 20 and "503" in answers.values(), answers
        redis = Redis.from_url(gateway.redis_url)
        queued = {job.args[1] for job in job_queue(redis).get_jobs()}
        lost = sorted(ref for ref in accepted if str(ref) not in queued)
        assert lost == [], f"answered 200 but gone after the kill: {lost}"
        again = {}
        for ref in sorted(accepted)[-5:]:  # the last ones before the kill and after it
            raw, headers = signed(ref)
            answer = requests.post(f"{gateway.url}/webhooks/shopify", data=raw, headers=headers)
            again[ref] = answer.json()["status"]
        assert set(again.values()) == {"duplicate"}, again  # their delivery ids survived too
        print(
            f"webhooks: {len(accepted)} accepted, none lost; "
            f"answers {sorted(set(answers.values()))}"
        )
    finally:
        gateway.stop()
