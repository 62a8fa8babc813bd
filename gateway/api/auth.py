"""Who is calling: the operator (GATEWAY_ADMIN_TOKEN) or a partner (its API key)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from gateway.errors import ApiError, RateLimitError
from gateway.model import Order
from gateway.runtime import settings, store


@dataclass(frozen=True)
class Caller:
    partner: dict[str, Any] | None  # None for the operator

    @property
    def is_operator(self) -> bool:
        """True for the operator's token."""
        return self.partner is None

    @property
    def partner_id(self) -> str | None:
        """The calling partner's id."""
        return self.partner["id"] if self.partner else None

    def role_on(self, order: Order) -> str | None:
        """buyer, seller or operator on this order; None if the caller may not see it."""
        if self.is_operator:
            return "operator"
        if self.partner_id == order.seller_id:
            return "seller"
        if self.partner_id == order.buyer_id:
            return "buyer"
        return None


def authenticate() -> Caller:
    """The caller named by the Bearer token, or 401; 429 for a partner over its rate limit
    (the operator's key is not limited)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <key>.")
    admin = settings().admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Caller(None)
    partner = store().partner_by_api_key(token)
    if partner is None:
        current_app.logger.info("refused an unknown API key on %s", request.path)
        raise ApiError(401, "unauthorized", "Unknown API key.")
    retry_after = store().over_limit(settings().rate_limit_partner, "partner", partner["id"])
    if retry_after is not None:
        raise RateLimitError(retry_after)
    return Caller(partner)


def require_operator(caller: Caller) -> None:
    """403 unless the operator is calling."""
    if not caller.is_operator:
        raise ApiError(403, "forbidden", "Only the operator may do this.")
