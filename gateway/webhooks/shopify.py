"""POST /webhooks/shopify: HMAC over the raw body, store by X-Shopify-Shop-Domain."""

from __future__ import annotations

import hashlib

from flask import Blueprint, request

from gateway.api import json_object
from gateway.jobs import INGEST_ORDER, RETRIED_OPTIONS, SYNC_SELLER_REF
from gateway.platforms.shopify import verify_webhook
from gateway.runtime import store
from gateway.store import JobSpec
from gateway.webhooks import accept, refuse

shopify = Blueprint("shopify_webhooks", __name__)


@shopify.post("/webhooks/shopify")
def receive():
    """Verify, dedupe, enqueue: orders/create from buyer stores, fulfillments/* from sellers."""
    raw = request.get_data()  # before any parsing: the HMAC is over these exact bytes
    domain = request.headers.get("X-Shopify-Shop-Domain", "").strip().lower()
    partner = store().known_store(f"shopify:{domain}") if domain else None
    if partner is None:
        raise refuse("shopify", "Unknown shop.")
    secret = partner["connection"]["webhook_secret"]
    if not verify_webhook(secret, raw, request.headers.get("X-Shopify-Hmac-Sha256")):
        raise refuse("shopify", "Missing or wrong X-Shopify-Hmac-Sha256.")
    body = json_object(raw)
    topic = request.headers.get("X-Shopify-Topic", "")
    delivery_id = (
        request.headers.get("X-Shopify-Webhook-Id")
        or request.headers.get("X-Shopify-Event-Id")
        or hashlib.sha256(topic.encode() + raw).hexdigest()
    )
    job = None
    if topic == "orders/create" and body.get("id") is not None:
        job = JobSpec(INGEST_ORDER, (partner["id"], str(body["id"])), options=RETRIED_OPTIONS)
    elif (
        topic in ("fulfillments/create", "fulfillments/update") and body.get("order_id") is not None
    ):
        job = JobSpec(
            SYNC_SELLER_REF, (partner["id"], str(body["order_id"])), options=RETRIED_OPTIONS
        )
    return accept("shopify", f"{domain}:{delivery_id}", job)
