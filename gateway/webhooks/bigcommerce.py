"""POST /webhooks/bigcommerce: Standard Webhooks signature or the custom secret header."""

from __future__ import annotations

from flask import Blueprint, request

from gateway.api import json_object
from gateway.jobs import INGEST_ORDER, RETRIED_OPTIONS, SYNC_SELLER_REF
from gateway.platforms.bigcommerce import verify_webhook
from gateway.runtime import store
from gateway.store import JobSpec
from gateway.webhooks import accept, refuse

bigcommerce = Blueprint("bigcommerce_webhooks", __name__)


@bigcommerce.post("/webhooks/bigcommerce")
def receive():
    """Verify, dedupe, enqueue: store/order/created (buyers), store/shipment/* (sellers).

    The store is named inside the body (`producer`), so the body is parsed to find the secret,
    and verified before anything is acted on.
    """
    raw = request.get_data()
    body = json_object(raw)
    producer = body.get("producer")
    partner = store().known_store(f"bigcommerce:{producer}") if isinstance(producer, str) else None
    if partner is None:
        raise refuse("bigcommerce", "Unknown store.")
    if not verify_webhook(partner["connection"]["webhook_secret"], raw, request.headers):
        raise refuse("bigcommerce", "Missing or wrong signature.")
    scope = body.get("scope")
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    delivery_id = request.headers.get("webhook-id") or str(body.get("hash") or "")
    if not delivery_id:
        raise refuse("bigcommerce", "No delivery id (webhook-id or hash).")
    job = None
    if scope == "store/order/created" and data.get("id") is not None:
        job = JobSpec(INGEST_ORDER, (partner["id"], str(data["id"])), options=RETRIED_OPTIONS)
    elif scope in ("store/shipment/created", "store/shipment/updated") and data.get("orderId"):
        job = JobSpec(
            SYNC_SELLER_REF, (partner["id"], str(data["orderId"])), options=RETRIED_OPTIONS
        )
    return accept("bigcommerce", f"{producer}:{delivery_id}", job)
