"""The platform registry: each module in this package declares one platform and registers it.

Like Redash's query runners, a module is found by being here: adding a platform is adding a
module (and its simulator and tests), nothing else.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from gateway.delivery import ConnectionDown
from gateway.platforms.base import (
    CONNECTED,
    NEEDS_REAUTH,
    NOT_CONNECTED,
    Adapter,
    CredentialsRefused,
    Platform,
    PlatformPort,
)
from gateway.settings import Settings

REGISTRY: dict[str, Platform] = {}
NO_PLATFORM = "none"  # partners with no store (none.py): the CLI's default


def register(platform: Platform) -> Platform:
    """Add a platform to the registry (each platform module calls this once)."""
    REGISTRY[platform.name] = platform
    return platform


def get(name: str) -> Platform:
    """The registered platform of this name; KeyError for one we don't know."""
    return REGISTRY[name]


def names() -> list[str]:
    """Every registered platform's name, in a stable order."""
    return sorted(REGISTRY)


def every() -> list[Platform]:
    """Every registered platform, in the order of `names`."""
    return [REGISTRY[name] for name in names()]


def adapter_for(partner: dict[str, Any], port: PlatformPort, config: Settings) -> Adapter:
    """The adapter of the partner's store connection (or its buyer channel); ConnectionDown
    while a store connection can't be used (its work waits for the store's owner)."""
    platform = get(partner["platform"])
    if not platform.has_store:
        return platform.adapter(partner, port, config)
    status = connection_status(partner)
    if status != CONNECTED:
        raise ConnectionDown(partner["id"], status, partner.get("status_reason") or "")
    return Guarded(platform.adapter(partner, port, config), partner["id"], port)


class Guarded:
    """A store's adapter whose refused credentials (CredentialsRefused) make the connection
    needs_reauth, once, and hold the work that met them (ConnectionDown) instead of failing it."""

    def __init__(self, adapter: Adapter, partner_id: str, port: PlatformPort) -> None:
        self._adapter = adapter
        self._partner_id = partner_id
        self._port = port

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._adapter, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except CredentialsRefused as refused:
                self._port.connection_failed(self._partner_id, str(refused))
                raise ConnectionDown(self._partner_id, NEEDS_REAUTH, str(refused)) from refused

        return call


def connection_status(partner: dict[str, Any]) -> str:
    """A partner's connection status (API.md): a partner stored before there were statuses
    is connected when it has a connection."""
    if not get(partner["platform"]).has_store:
        return CONNECTED
    status = partner.get("connection_status")
    if status:
        return status
    return CONNECTED if partner.get("connection") else NOT_CONNECTED


def _load_platform_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


_load_platform_modules()
