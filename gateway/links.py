"""Signed links to the order page: the token names the order, the role and the partner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.model import iso_utc
from gateway.settings import Settings

SALT = "order-page-link"


def _serializer(config: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.secret_key, salt=SALT)


def order_link(
    config: Settings, order_id: str, role: str, partner_id: str | None
) -> dict[str, str]:
    """A fresh signed link to the order page for a role, with when it expires."""
    token = _serializer(config).dumps({"o": order_id, "r": role, "p": partner_id})
    expires = datetime.now(UTC) + timedelta(days=config.link_ttl_days)
    return {
        "url": f"{config.public_url.rstrip('/')}/orders/{order_id}?t={token}",
        "role": role,
        "expires_at": iso_utc(expires),
    }


def read_token(config: Settings, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token, else None."""
    try:
        claims = _serializer(config).loads(token, max_age=config.link_ttl_days * 86400)
    except BadSignature:
        return None
    return claims if isinstance(claims, dict) and {"o", "r"} <= claims.keys() else None
