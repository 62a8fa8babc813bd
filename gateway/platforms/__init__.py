"""The platform registry: each module in this package declares one platform and registers it.

Like Redash's query runners, a module is found by being here: adding a platform is adding a
module (and its simulator and tests), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from gateway.platforms.base import Adapter, Platform, PlatformPort
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
    """The adapter of the partner's store connection (or its buyer channel)."""
    return get(partner["platform"]).adapter(partner, port, config)


def _load_platform_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


_load_platform_modules()
