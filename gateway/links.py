"""Signed links to the order page: the token names the order, the role, the partner and the
role's link generation on that order; a revoke moves the generations on, ending every earlier
link and every session that opened one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.model import iso_utc
from gateway.settings import Settings
from gateway.store import Change, Store, event

SALT = "order-page-link"
ROLES = ("buyer", "seller")
INVALID, EXPIRED, REVOKED = "invalid", "expired", "revoked"


@dataclass(frozen=True)
class Grant:
    """What a valid link gives: a role on an order, until `expires` (epoch seconds), while
    the order's links of that role stay at `generation`. A session keeps it as a list."""

    order_id: str
    role: str
    generation: int
    expires: int

    def to_session(self) -> list:
        """The compact form a session cookie keeps."""
        return [self.role, self.generation, self.expires]

    @classmethod
    def from_session(cls, order_id: str, kept: object) -> Grant | None:
        """The grant a session kept for an order, or None (nothing, or an older cookie's form)."""
        if not (isinstance(kept, list) and len(kept) == 3 and kept[0] in ROLES):
            return None
        return cls(order_id, kept[0], int(kept[1]), int(kept[2]))


class LinkRefused(Exception):  # noqa: N818 (a refusal shown to a person, not a bug)
    """A link, or the role a session kept from one, no longer opens the order page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # INVALID, EXPIRED or REVOKED


def _serializer(config: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.secret_key, salt=SALT)


def lifetime(config: Settings, role: str) -> timedelta:
    """How long a link of this role works: a seller's, which records fulfillments, less long."""
    days = config.seller_link_ttl_days if role == "seller" else config.link_ttl_days
    return timedelta(days=days)


def order_link(
    config: Settings, store: Store, order_id: str, role: str, partner_id: str | None
) -> dict[str, str]:
    """A fresh signed link to the order page for a role, with when it expires."""
    generation = store.link_generation(order_id, role)
    token = _serializer(config).dumps({"o": order_id, "r": role, "p": partner_id, "g": generation})
    expires = datetime.now(UTC) + lifetime(config, role)
    return {
        "url": f"{config.public_url.rstrip('/')}/orders/{order_id}?t={token}",
        "role": role,
        "expires_at": iso_utc(expires),
    }


def open_link(config: Settings, store: Store, token: str, order_id: str) -> Grant:
    """The grant of a token for this order, or LinkRefused saying why not."""
    try:
        claims, signed_at = _serializer(config).loads(token, return_timestamp=True)
    except BadSignature:
        raise LinkRefused(INVALID) from None
    if not (isinstance(claims, dict) and claims.get("o") == order_id and claims.get("r") in ROLES):
        raise LinkRefused(INVALID)
    role = claims["r"]
    expires = signed_at + lifetime(config, role)
    # Links signed before generations existed carry none: they are of the first generation.
    grant = Grant(order_id, role, int(claims.get("g", 0)), int(expires.timestamp()))
    check(store, grant)
    return grant


def check(store: Store, grant: Grant) -> None:
    """LinkRefused unless the grant is unexpired and of its role's current generation."""
    if time.time() >= grant.expires:
        raise LinkRefused(EXPIRED)
    if store.link_generation(grant.order_id, grant.role) != grant.generation:
        raise LinkRefused(REVOKED)


def revoke(store: Store, order_id: str, by: str) -> bool:
    """End every link of the order, for both roles, and the sessions that opened them, noted
    on its timeline; False when there is no such order."""
    noted = event("links.revoked", f"Every link to the order page was revoked ({by}).")
    change = Change(
        events=[noted], writes=[lambda pipe: store.next_link_generation(pipe, order_id, ROLES)]
    )
    return store.change_order(order_id, lambda _: change) is not None
