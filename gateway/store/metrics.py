"""Counters and gauges shown on /metrics, and each platform's pacing (rate-limit) state."""

from __future__ import annotations

import json

from redis.client import Pipeline

from gateway.store.base import Records, key


class Metrics(Records):
    """Counters, gauges and the rate-limit state platform adapters share across processes."""

    def set_gauge(self, name: str, value: float) -> None:
        """A gauge shown on /metrics."""
        self.redis.hset(key("gauges"), name, value)

    def gauges(self) -> dict[str, float]:
        """All gauges, for /metrics."""
        return {k.decode(): float(v) for k, v in self.redis.hgetall(key("gauges")).items()}

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter shown on /metrics."""
        self.redis.hincrby(key("metrics"), name, amount)

    @staticmethod
    def count_in(pipe: Pipeline, name: str) -> None:
        """Add one to a counter shown on /metrics, in the caller's transaction."""
        pipe.hincrby(key("metrics"), name, 1)

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
