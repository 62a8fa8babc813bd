"""Rate-limit counters, kept by the `limits` library in our Redis, on our connection pool."""

from __future__ import annotations

import math
import time
from functools import cache, cached_property

from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from gateway.store.base import Records, key


@cache
def rate_limit_items(rule: str) -> tuple[RateLimitItem, ...]:
    """A rule such as "50/second;2000/minute" as the library's items; "" for no limit."""
    return tuple(parse_many(rule)) if rule.strip() else ()


class RateLimits(Records):
    """Fixed-window counters per caller: one Redis call per limit and request."""

    @cached_property
    def _rate_limiter(self) -> FixedWindowRateLimiter:
        storage = RedisStorage(
            "redis://", connection_pool=self.redis.connection_pool, key_prefix=key("ratelimit")
        )
        return FixedWindowRateLimiter(storage)

    def over_limit(self, rule: str, *caller: str) -> int | None:
        """Count one request of `caller` against `rule`: None while within it, else the
        seconds until the exhausted window lets a request through again."""
        for item in rate_limit_items(rule):
            if not self._rate_limiter.hit(item, *caller):
                reset_at, _ = self._rate_limiter.get_window_stats(item, *caller)
                return max(1, math.ceil(reset_at - time.time()))
        return None
