"""The JSON API under /api/v1 (API.md): partners, partnerships, orders, fulfillments, links."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Flask, request
from marshmallow import Schema, ValidationError

from gateway.api.schemas import flatten
from gateway.errors import ApiError, validation_failed

api = Blueprint("api", __name__, url_prefix="/api/v1")
# Deepest nesting of a body we read: far more than any API or webhook body needs, far less than
# the recursion limit that encoding, validation or a webhook's walk of the body would hit.
MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def read_json(schema: Schema) -> dict[str, Any]:
    """The request body loaded by the schema, or 415 / 413 / 400 / 422 in the documented shape."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    return load(schema, json_object(raw))


def json_object(raw: bytes) -> dict[str, Any]:
    """A body as a JSON object (the API's and the webhooks'), or 400 in the documented shape."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise too_deep() from None
    except ValueError as error:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_body", "The body must be a JSON object.")
    # Both walks cost more than the parse: skip each where the raw bytes rule its case out.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:  # else no deeper than that count
        refuse_deep_nesting(body)
    if may_hold_surrogates(raw):
        refuse_lone_surrogates(body)
    return body


# A \uD800-\uDFFF escape, either case (an escaped backslash before "ud8.." matches too: harmless)
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def may_hold_surrogates(raw: bytes) -> bool:
    """False when no string parsed from these bytes can hold a lone surrogate: ASCII only (json
    decodes other bytes with surrogatepass), no NUL (UTF-16 and -32 spell escapes with them),
    and no surrogate escape."""
    return not raw.isascii() or b"\0" in raw or SURROGATE_ESCAPE.search(raw) is not None


def too_deep() -> ApiError:
    """400 for a body nested deeper than MAX_JSON_DEPTH."""
    return ApiError(
        400, "nesting_too_deep", f"The body is nested deeper than {MAX_JSON_DEPTH} levels."
    )


def refuse_deep_nesting(body: Any) -> None:
    """400 before anything walks a body deeper than MAX_JSON_DEPTH (this walk is iterative)."""
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise too_deep()
        inner = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in inner if isinstance(child, dict | list))


def refuse_lone_surrogates(body: Any) -> None:
    """400 for strings no UTF-8 can carry (a lone \\ud800 escape is valid JSON)."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ApiError(400, "malformed_json", "The body holds an invalid Unicode escape.") from None


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate with the schema; 422 naming each field at fault."""
    try:
        return schema.load(data)
    except ValidationError as error:
        raise validation_failed(flatten(error.messages)) from None


def init_app(app: Flask) -> None:
    """Register the API's views."""
    from gateway.api import orders, partners  # noqa: F401  (views register on `api`)

    app.register_blueprint(api)
