"""Platform webhooks: verify on the raw body, dedupe on the delivery id, enqueue, answer at once.

Nothing here calls a platform: the jobs re-read what they need.
"""

from __future__ import annotations

from flask import Flask, jsonify

from gateway.errors import ApiError
from gateway.runtime import store
from gateway.store import JobSpec

DEDUPE_SECONDS = 3 * 24 * 3600  # longer than any platform's retry window (Shopify's is 4 h)


def refuse(platform: str, why: str) -> ApiError:
    """401 for a missing or wrong signature or an unknown store; nothing stored."""
    store().count(f"webhooks_refused_{platform}")
    return ApiError(401, "unauthorized", why)


def accept(platform: str, delivery_id: str, job: JobSpec | None):
    """Record the delivery id and enqueue its job in one transaction; a repeat does nothing."""
    if job is None:
        store().count(f"webhooks_ignored_{platform}")
        return jsonify({"status": "ignored"}), 200
    counter = f"webhooks_received_{platform}"
    if store().accept_delivery(f"{platform}:{delivery_id}", DEDUPE_SECONDS, job, counter):
        return jsonify({"status": "accepted"}), 200
    store().count(f"webhooks_duplicate_{platform}")
    return jsonify({"status": "duplicate"}), 200


def init_app(app: Flask) -> None:
    """Register one blueprint per platform."""
    from gateway.webhooks.bigcommerce import bigcommerce
    from gateway.webhooks.shopify import shopify
    from gateway.webhooks.woocommerce import woocommerce

    for blueprint in (shopify, bigcommerce, woocommerce):
        app.register_blueprint(blueprint)
