"""Named locks with a time limit, released only by the token that took them."""

from __future__ import annotations

import time

from gateway.store.base import Records, key


class Locks(Records):
    """Locks that let one worker at a time run a reconciliation or a delivery attempt."""

    def acquire(self, name: str, seconds: int) -> str | None:
        """Take a lock for a while; a token to release it with, or None if someone holds it."""
        token = f"{time.time_ns()}"
        return token if self.redis.set(key("lock", name), token, nx=True, ex=seconds) else None

    def extend(self, name: str, token: str, seconds: int) -> bool:
        """Keep a lock `seconds` more if it is still ours; False if it is not."""
        return bool(
            self.redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('expire', KEYS[1], ARGV[2]) end return 0",
                1,
                key("lock", name),
                token,
                seconds,
            )
        )

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
