"""POST /webhooks/woocommerce: X-WC-Webhook-Signature, store by X-WC-Webhook-Source."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from gateway.api import json_object
from gateway.jobs import INGEST_ORDER, RETRIED_OPTIONS
from gateway.platforms.woocommerce import normalize_store_url, verify_webhook
from gateway.runtime import store
from gateway.store import JobSpec
from gateway.webhooks import accept, refuse

woocommerce = Blueprint("woocommerce_webhooks", __name__)


@woocommerce.post("/webhooks/woocommerce")
def receive():
    """The save-time ping gets 200; order.created from a buyer store is ingested."""
    source = request.headers.get("X-WC-Webhook-Source")
    is_ping = (
        request.mimetype == "application/x-www-form-urlencoded"
        and request.form.get("webhook_id", "").isdigit()
    )
    if source is None and is_ping:  # WooCommerce's save-time ping: no X-WC-* headers
        return jsonify({"status": "accepted"}), 200
    raw = request.get_data()
    site = normalize_store_url(source) if source else ""
    partner = store().known_store(f"woocommerce:{site}") if site else None
    if partner is None:
        raise refuse("woocommerce", "Unknown store.")
    secret = partner["connection"]["webhook_secret"]
    if not verify_webhook(secret, raw, request.headers.get("X-WC-Webhook-Signature")):
        raise refuse("woocommerce", "Missing or wrong X-WC-Webhook-Signature.")
    body = json_object(raw)
    delivery_id = request.headers.get("X-WC-Webhook-Delivery-ID")
    if not delivery_id:
        raise refuse("woocommerce", "No X-WC-Webhook-Delivery-ID.")
    topic = request.headers.get("X-WC-Webhook-Topic", "")
    job = None
    if topic == "order.created" and body.get("id") is not None:
        job = JobSpec(INGEST_ORDER, (partner["id"], str(body["id"])), options=RETRIED_OPTIONS)
    # WooCommerce derives the delivery id from the webhook id and the current second, so two
    # orders in one second share it: the resource and its version make the key unique.
    resource = f"{topic}:{body.get('id')}:{body.get('date_modified_gmt') or ''}"
    return accept("woocommerce", f"{site}:{delivery_id}:{resource}", job)
