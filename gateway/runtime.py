"""The running app's settings and store, for views and jobs alike."""

from __future__ import annotations

from flask import Flask, current_app

from gateway.failover import redis_client
from gateway.jobs import job_queue
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.ratelimits import rate_limit_items


def check_limits(config: Settings) -> None:
    """Refuse to start on a rate limit, cooldown or timeline cap the gateway can't apply."""
    for name in (
        "rate_limit_partner",
        "rate_limit_person",
        "rate_limit_signin_address",
        "rate_limit_signin_client",
    ):
        try:
            rate_limit_items(getattr(config, name))
        except ValueError:
            raise RuntimeError(f"{name.upper()}: write limits as 50/second;2000/minute") from None
    if config.timeline_max_entries < 2 or config.resync_cooldown < 0:
        raise RuntimeError("TIMELINE_MAX_ENTRIES must be 2 or more, RESYNC_COOLDOWN 0 or more")


def connect(config: Settings) -> Store:
    """A Store on the configured Redis (connections are opened lazily, on first use): the
    primary, found through Sentinel when REDIS_SENTINELS is set."""
    waiting = config.redis_wait_timeout_ms / 1000 if config.redis_wait_replicas else 0
    redis = redis_client(config, socket_timeout=5 + waiting, socket_connect_timeout=2)
    return Store(
        redis,
        job_queue(redis),
        timeline_cap=config.timeline_max_entries,
        encryption_keys=config.encryption_keys,
    )


def init_app(app: Flask, config: Settings) -> None:
    """Keep the settings and one store (one connection pool) on the app."""
    check_limits(config)
    app.extensions["gateway.settings"] = config
    app.extensions["gateway.store"] = connect(config)


def settings() -> Settings:
    """The settings of the current app."""
    return current_app.extensions["gateway.settings"]


def store() -> Store:
    """The store of the current app."""
    return current_app.extensions["gateway.store"]
