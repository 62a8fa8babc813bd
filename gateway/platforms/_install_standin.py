"""STAND-IN, removed when the install core lands on main: the names of /work/i9-design.md that
gateway/platforms/bigcommerce.py uses, so the platform's own parts can be built and tested
first. The core's gateway/platforms/base.py is the real definition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ConnectLink:
    id: str
    partner_id: str
    platform: str
    hints: dict[str, Any]


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
class WebhookCheck:
    topic: str
    found: str
    repaired: bool
    error: str = ""


class InstallRefused(Exception):  # noqa: N818 (as the design names it)
    """Another partner has that store."""


class InstallPort(Protocol):
    def link_for_store(self, platform: str, identity: str) -> ConnectLink | None: ...
    def partner_by_store(self, platform: str, identity: str) -> dict | None: ...
    def complete(
        self, link: ConnectLink, connection: dict, status: str = "connected", reason: str = ""
    ) -> dict: ...
    def uninstalled(self, partner_id: str, reason: str) -> None: ...
    def count(self, name: str, amount: int = 1) -> None: ...
    def now(self) -> float: ...
