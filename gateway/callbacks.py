"""Events to buyers with no platform: Standard Webhooks signed POSTs to their callback URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from gateway.delivery import DeliveryFailed, retry_after_seconds
from gateway.model import now_iso
from gateway.platforms.base import http


def event_body(kind: str, data: dict[str, Any]) -> str:
    """The JSON body of an event."""
    return json.dumps({"type": kind, "timestamp": now_iso(), "data": data}, separators=(",", ":"))


def post_event(url: str, signing_secret: str, event_id: str, body: str, timeout: float) -> None:
    """POST one signed event; raises DeliveryFailed unless the receiver answers 2xx."""
    sent_at = datetime.now(UTC)
    signature = Webhook(signing_secret).sign(event_id, sent_at, body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fulfillment-gateway",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    try:
        answer = http.post(
            url, data=body.encode(), headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as error:
        raise DeliveryFailed(f"{type(error).__name__} calling the callback URL") from error
    if not 200 <= answer.status_code < 300:
        raise DeliveryFailed(
            f"callback answered HTTP {answer.status_code}",
            retry_after=retry_after_seconds(answer.headers.get("Retry-After")),
        )
