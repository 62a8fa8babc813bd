"""Stand-ins for the install core's names (/work/i9-design.md), until the core is merged from
main: shopify.py imports them from gateway.platforms.base / gateway.delivery when they are there.
This module goes away at the merge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.delivery import DeliveryFailed

UNINSTALLED = "uninstalled"
REDACT_CUSTOMER = "redact_customer"
REDACT_SHOP = "redact_shop"
DATA_REQUEST = "data_request"


class ConnectionDown(DeliveryFailed):
    """A store connection that is not connected: its work waits, no attempt counted."""

    def __init__(self, message: str, partner_id: str = "", status: str = "needs_reauth") -> None:
        super().__init__(message)
        self.partner_id = partner_id
        self.status = status


class InstallRefused(Exception):  # noqa: N818
    """port.complete refused the installation (another partner has that store)."""


@dataclass(frozen=True)
class ConnectLink:
    id: str
    partner_id: str
    platform: str
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstallRequest:
    method: str
    args: Mapping[str, str]
    query_string: bytes
    form: Mapping[str, str]
    raw: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class InstallAnswer:
    status: int = 200
    redirect: str | None = None
    title: str = ""
    message: str = ""
    body: str | None = None


@dataclass(frozen=True)
class ConnectionEvent:
    kind: str
    emails: tuple[str, ...] = ()
    order_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookCheck:
    topic: str
    found: str
    repaired: bool
    error: str = ""
