"""Redis keys and transactions, one module per topic: the only package that talks to Redis.

An order is one JSON document; a state change and the jobs it triggers commit together in one
optimistic transaction (WATCH the order, MULTI, write, enqueue with `pipeline=`, EXEC).
"""

from __future__ import annotations

from gateway.store.base import PREFIX, Change, JobSpec, event, key, key_hash, shown_to
from gateway.store.deliveries import ATTEMPT_SECONDS, STUCK_AFTER, Deliveries, attempt_lock
from gateway.store.installs import Installs
from gateway.store.links import Links
from gateway.store.locks import Locks
from gateway.store.metrics import Metrics
from gateway.store.orders import Orders
from gateway.store.partners import KNOWN_STORE_SECONDS, Partners
from gateway.store.people import People
from gateway.store.ratelimits import RateLimits
from gateway.store.reconciliation import Reconciliation

__all__ = [
    "ATTEMPT_SECONDS",
    "KNOWN_STORE_SECONDS",
    "PREFIX",
    "STUCK_AFTER",
    "Change",
    "JobSpec",
    "Store",
    "attempt_lock",
    "event",
    "key",
    "key_hash",
    "shown_to",
]


class Store(
    Partners,
    Orders,
    Deliveries,
    Reconciliation,
    Metrics,
    Locks,
    Links,
    RateLimits,
    Installs,
    People,
):
    """The gateway's records in Redis: one object with every topic's keys and transactions."""
