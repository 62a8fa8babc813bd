"""No platform: sellers get the emailed link to the order page and use its form (or the API);
buyers post orders through the API and hear of fulfillments by signed events at their callback
URL (Standard Webhooks), or poll."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from gateway.delivery import DeliveryFailed, retry_after_seconds
from gateway.model import Fulfillment, Order, now_iso
from gateway.platforms import register
from gateway.platforms.base import Platform, PlatformPort, http
from gateway.settings import Settings
from gateway.validation import StrictSchema


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


class CallbackAdapter:
    """A buyer with no store: its fulfillments and the shipped notice go to its callback URL as
    signed events (API.md "Events to buyers without a platform"); None where it has none."""

    def __init__(self, partner: dict[str, Any], config: Settings) -> None:
        self.url = partner.get("callback_url")
        self.secret = partner["event_signing_secret"]
        self.timeout = config.http_timeout

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str | None:
        """`fulfillment.created` the first time, `fulfillment.updated` for each change; the
        event's id, one per version, so a retried delivery is the same event."""
        from gateway.api.schemas import fulfillment_json, order_json  # the API's own shapes

        if not self.url:
            return None
        first = fulfillment.delivery.delivered_version == 0
        kind = "fulfillment.created" if first else "fulfillment.updated"
        version = "created" if first else f"v{fulfillment.version}"
        event_id = f"evt_{fulfillment.id}_{version}"
        data = {"order": order_json(order), "fulfillment": fulfillment_json(order, fulfillment.id)}
        post_event(self.url, self.secret, event_id, event_body(kind, data), self.timeout)
        return event_id

    def mark_shipped(self, order: Order) -> str | None:
        """The `order.shipped` event."""
        from gateway.api.schemas import order_json

        if not self.url:
            return None
        event_id = f"evt_{order.id}_shipped"
        body = event_body("order.shipped", {"order": order_json(order)})
        post_event(self.url, self.secret, event_id, body, self.timeout)
        return event_id


class NoConnection(StrictSchema):
    pass


class NoPlatform(Platform):
    name = "none"
    label = "no platform"
    connection_schema = NoConnection
    has_store = False
    fulfillments_from_store = False
    callbacks = True
    delivery_queue = "callbacks"  # any partner's URL may be slow: its own workers (Procfile)

    def adapter(
        self, partner: dict[str, Any], port: PlatformPort, config: Settings
    ) -> CallbackAdapter:
        return CallbackAdapter(partner, config)

    def forward_fulfillment(
        self, adapter: Any, order: Order, fulfillment: Fulfillment
    ) -> tuple[str | None, str]:
        return _sent(adapter.forward_fulfillment(order, fulfillment))

    def mark_shipped(self, adapter: Any, order: Order) -> tuple[str | None, str]:
        return _sent(adapter.mark_shipped(order))


def _sent(event_id: str | None) -> tuple[str | None, str]:
    if event_id is None:
        return None, "no callback URL; the buyer polls the API"
    return event_id, f"sent to the buyer's callback URL as {event_id}"


register(NoPlatform())
