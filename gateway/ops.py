"""Operations: /healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, jsonify, request
from redis.exceptions import RedisError
from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from gateway.api.openapi import openapi_document
from gateway.errors import ApiError
from gateway.runtime import settings, store

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz():
    """200 when Redis answers, with queue depths and the number of workers; else 503."""
    current = store()
    try:
        current.redis.ping()
        queue = current.queue
        body = {
            "status": "ok",
            "redis": "ok",
            "queued": queue.count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,
            "failed_jobs": FailedJobRegistry(queue=queue).count,
            "workers": Worker.count(queue=queue),
        }
    except RedisError as error:
        return jsonify({"status": "unavailable", "redis": type(error).__name__}), 503
    return jsonify(body)


def refuse_unless_metrics_reader() -> None:
    """401 unless the Bearer token is the operator's or METRICS_TOKEN: metrics name partners."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    config = settings()
    readers = [secret for secret in (config.admin_token, config.metrics_token) if secret]
    token = token.strip().encode()
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(token, secret.encode()) for secret in readers
    ):
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>.")


@ops.get("/metrics")
def metrics():
    """Prometheus text: counters kept in Redis (so every process adds to the same ones)."""
    refuse_unless_metrics_reader()
    current = store()
    lines = []
    for name, value in sorted(current.counters().items()):
        metric = f"gateway_{name}_total"
        lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
    for name, value in sorted(current.gauges().items()):
        lines += [f"# TYPE gateway_{name.split('{')[0]} gauge", f"gateway_{name} {value:g}"]
    lines += [
        "# TYPE gateway_reconcile_lag_seconds gauge",
        f"gateway_reconcile_lag_seconds {current.lag_seconds():.0f}",
    ]
    queue = current.queue
    lines += ["# TYPE gateway_queue_depth gauge", f"gateway_queue_depth {queue.count}"]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


@ops.get("/openapi.json")
def openapi():
    """The HTTP contract as OpenAPI 3, generated from the marshmallow schemas."""
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    """Register the operations endpoints."""
    app.register_blueprint(ops)
