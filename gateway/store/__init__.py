"""Redis keys and transactions: the only module that talks to Redis (besides RQ itself).

An order is one JSON document; a state change and the jobs it triggers commit together in one
optimistic transaction (WATCH the order, MULTI, write, enqueue with `pipeline=`, EXEC).
"""

from __future__ import annotations

import json
import time

from gateway.store.base import PREFIX, Change, JobSpec, event, key, key_hash
from gateway.store.deliveries import STUCK_AFTER, Deliveries
from gateway.store.orders import Orders
from gateway.store.partners import KNOWN_STORE_SECONDS, Partners

__all__ = [
    "KNOWN_STORE_SECONDS",
    "PREFIX",
    "STUCK_AFTER",
    "Change",
    "JobSpec",
    "Store",
    "event",
    "key",
    "key_hash",
]


class Store(Partners, Orders, Deliveries):
    """The gateway's records in Redis."""

    def owe_sync(self, seller_id: str, order_id: str, seen_updated_at: str) -> None:
        """Remember that a change the reconciliation listed still has to be applied."""
        self.redis.hset(key("owed-syncs", seller_id), order_id, seen_updated_at)

    def owed_syncs(self, seller_id: str) -> dict[str, str]:
        """Listed changes not applied yet: order id -> the store's updatedAt then."""
        raw = self.redis.hgetall(key("owed-syncs", seller_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def paid_sync(self, seller_id: str, order_id: str) -> None:
        """A listed change was applied (or its order is shipped)."""
        self.redis.hdel(key("owed-syncs", seller_id), order_id)

    def cursor(self, partner_id: str, side: str) -> str | None:
        """Where the reconciliation of a store connection got to (ISO time)."""
        raw = self.redis.hget(key("cursors"), f"{partner_id}:{side}")
        return raw.decode() if raw else None

    def set_cursor(self, partner_id: str, side: str, value: str) -> None:
        """Move a connection's cursor forward (never back)."""
        self.redis.eval(
            "local old = redis.call('hget', KEYS[1], ARGV[1]) "
            "if (not old) or old < ARGV[2] then redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) end",
            1,
            key("cursors"),
            f"{partner_id}:{side}",
            value,
        )

    def cursors(self) -> dict[str, str]:
        """Every connection's cursors, for the lag metric."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(key("cursors")).items()}

    def buyer_refs_seen(self, buyer_id: str, refs: list[str]) -> list[bool]:
        """Whether each buyer-store order was ingested already."""
        if not refs:
            return []
        return [bool(x) for x in self.redis.smismember(key("buyer-refs", buyer_id), refs)]

    def mark_buyer_ref_seen(self, buyer_id: str, ref: str) -> None:
        """Remember that a buyer-store order was ingested (split or not)."""
        self.redis.sadd(key("buyer-refs", buyer_id), ref)

    def set_gauge(self, name: str, value: float) -> None:
        """A gauge shown on /metrics."""
        self.redis.hset(key("gauges"), name, value)

    def gauges(self) -> dict[str, float]:
        """All gauges, for /metrics."""
        return {k.decode(): float(v) for k, v in self.redis.hgetall(key("gauges")).items()}

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter shown on /metrics."""
        self.redis.hincrby(key("metrics"), name, amount)

    def counters(self) -> dict[str, int]:
        """All counters, for /metrics."""
        return {k.decode(): int(v) for k, v in self.redis.hgetall(key("metrics")).items()}

    def pace(self, name: str) -> dict[str, float] | None:
        """A platform's rate-limit state for one store, shared by every process."""
        raw = self.redis.get(key(name))
        return json.loads(raw) if raw else None

    def set_pace(self, name: str, state: dict[str, float]) -> None:
        """Remember a store's rate-limit state for a while."""
        self.redis.set(key(name), json.dumps(state), ex=3600)

    def acquire(self, name: str, seconds: int) -> str | None:
        """Take a lock for a while; a token to release it with, or None if someone holds it."""
        token = f"{time.time_ns()}"
        return token if self.redis.set(key("lock", name), token, nx=True, ex=seconds) else None

    def lock_held(self, name: str) -> bool:
        """True while someone holds the lock."""
        return bool(self.redis.exists(key("lock", name)))

    def release(self, name: str, token: str) -> None:
        """Release a lock if it is still ours."""
        self.redis.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end",
            1,
            key("lock", name),
            token,
        )
