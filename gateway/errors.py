"""The one error shape of the HTTP API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from gateway.failover import NotReplicatedError
from gateway.web_log import masked


class ApiError(Exception):
    """A refusal with its status, snake_case code, message for a person and field details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def response(self) -> tuple[Any, int]:
        """The JSON answer."""
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return jsonify(body), self.status


def validation_failed(details: dict[str, list[str]], message: str = "") -> ApiError:
    """422 with the fields at fault."""
    return ApiError(422, "validation_failed", message or "Some fields are not valid.", details)


class RateLimitError(ApiError):
    """429 rate_limited, with the seconds to wait in Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "rate_limited", f"Too many requests; try again in {retry_after} seconds."
        )
        self.retry_after = retry_after

    def response(self) -> tuple[Any, int]:
        """The JSON answer, with Retry-After."""
        answer, status = super().response()
        answer.headers["Retry-After"] = str(self.retry_after)
        return answer, status


_HTTP_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorized", "Missing or invalid credentials."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("body_too_large", "The request body is larger than 1 MiB."),
    415: ("unsupported_media_type", "Send the body as application/json."),
}


def wants_json() -> bool:
    """True for the API and webhook paths, whose errors are JSON, not pages."""
    return request.path.startswith(("/api/", "/webhooks/", "/openapi.json", "/healthz"))


def init_app(app: Flask) -> None:
    """Answer every error under /api and /webhooks in the documented shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error.response()

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if not wants_json():
            return error
        code, message = _HTTP_CODES.get(error.code or 500, ("error", error.name))
        return ApiError(error.code or 500, code, message).response()

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    @app.errorhandler(NotReplicatedError)  # written on the primary alone: not promised (503)
    def _store_down(error: Exception):
        app.logger.error(
            "redis unavailable on %s %s: %s", request.method, masked(request.path), error
        )
        unavailable = ApiError(503, "unavailable", "The store is unavailable; try again shortly.")
        if not wants_json():
            return unavailable.message, 503
        return unavailable.response()

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, masked(request.path))
        if not wants_json():
            return "Internal error", 500
        return ApiError(500, "internal_error", "Something went wrong on our side.").response()
