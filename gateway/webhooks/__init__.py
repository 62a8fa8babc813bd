"""POST /webhooks/<platform>, one route for every platform: find the store, verify on the raw
body, parse, dedupe on the delivery id and the body, enqueue, answer at once.

Each step asks the platform's declaration (gateway/platforms); nothing here calls a platform: the
jobs re-read what they need.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, Response, current_app, request

from gateway import platforms
from gateway.api import json_object
from gateway.errors import ApiError
from gateway.jobs import CONNECTION_EVENT, INGEST_ORDER, RETRIED_OPTIONS, SYNC_SELLER_REF, upkeep
from gateway.platforms.base import INGEST_ORDER as INGEST
from gateway.platforms.base import SYNC_SELLER as SYNC
from gateway.platforms.base import WebhookCall
from gateway.runtime import settings, store
from gateway.store import JobSpec

DEDUPE_SECONDS = 3 * 24 * 3600  # longer than any platform's retry window (4 h at most)
JOBS = {INGEST: INGEST_ORDER, SYNC: SYNC_SELLER_REF}  # what a topic starts -> the job

webhooks = Blueprint("webhooks", __name__)
# The answers' bodies, as jsonify writes them, made once: a webhook's answer is on the hot path.
ANSWERS = {status: f'{{"status":"{status}"}}\n' for status in ("accepted", "ignored", "duplicate")}


def answer(status: str) -> Response:
    """200 with {"status": ...}."""
    return current_app.response_class(ANSWERS[status], mimetype="application/json")


# One text for an unknown store and a wrong signature: a caller learns nothing of which stores
# are connected.
NOT_SIGNED = "Missing or wrong signature, or no store connected by that name."


def refuse(platform: str, why: str = NOT_SIGNED) -> ApiError:
    """401 for a missing or wrong signature or an unknown store; nothing stored."""
    store().count(f"webhooks_refused_{platform}")
    return ApiError(401, "unauthorized", why)


@webhooks.post("/webhooks/<name>")
def receive(name: str):
    """Verify, dedupe, enqueue the job the topic starts (or ignore it), answer."""
    platform = platforms.REGISTRY.get(name)
    if platform is None or not platform.topics:
        raise ApiError(404, "not_found", "No such platform.")
    call = WebhookCall(
        headers=request.headers,
        raw=request.get_data(),  # before any parsing: signatures are over these exact bytes
        mimetype=request.mimetype,
        form=lambda: request.form,
        parse=json_object,
    )
    if platform.is_ping(call):
        return answer("accepted")
    identity = platform.webhook_store(call)
    partner = store().known_store(f"{name}:{identity}") if identity else None
    if partner is None:
        return about_no_partner(name, platform, call, identity)
    if not platform.verify_webhook(partner["connection"], call, settings()):
        raise refuse(name)
    call.body()  # 400 for a body that is not a JSON object, whatever its topic
    delivery_id = platform.delivery_id(call)
    if not delivery_id:
        raise refuse(name, "No delivery id.")
    topic = platform.topic(call)
    about = platform.connection_event(topic, call)
    if about is not None:  # an uninstall, a privacy request: about the store, not an order
        args = (partner["id"], about.kind, list(about.emails), list(about.order_refs), about.at)
        job = upkeep(CONNECTION_EVENT, *args)
    else:
        ref = platform.order_ref(topic, call) if topic in platform.topics else None
        if ref is None:
            store().count(f"webhooks_ignored_{name}")
            return answer("ignored")
        job = JobSpec(JOBS[platform.topics[topic]], (partner["id"], ref), options=RETRIED_OPTIONS)
    # The body's hash too: a delivery id may travel outside the signature, so a captured body
    # replayed under a new id is a repeat; two real events differ in their bodies (timestamps,
    # versions, a platform's own event hash).
    body = hashlib.sha256(call.raw).hexdigest()
    seen = [f"{name}:{identity}:{delivery_id}", f"{name}:{identity}:body:{body}"]
    counters = (f"webhooks_received_{name}", f"webhooks_duplicate_{name}")
    if store().accept_delivery(seen, DEDUPE_SECONDS, job, counters, partner_id=partner["id"]):
        return answer("accepted")
    return answer("duplicate")


def about_no_partner(name: str, platform, call: WebhookCall, identity: str | None) -> Response:
    """A delivery from a store no partner has: 401, but for one about the connection (a
    privacy request after the partner was removed) signed with the app's own secret: 200,
    nothing to act on, so the platform stops asking."""
    if (
        not identity
        or platform.install_schema is None  # no app of ours there to sign anything
        or not platform.verify_webhook({"installed": True}, call, settings())
    ):
        raise refuse(name)
    call.body()
    if platform.connection_event(platform.topic(call), call) is None:
        raise refuse(name)
    store().count(f"webhooks_ignored_{name}")
    return answer("ignored")


def init_app(app: Flask) -> None:
    """Register the webhook route."""
    app.register_blueprint(webhooks)
