"""Order-page link generations: a revoke moves an order's on, which ends its earlier links."""

from __future__ import annotations

from collections.abc import Iterable

from redis.client import Pipeline

from gateway.store.base import Records, key


class Links(Records):
    """Per order and role, the generation a link (or a session it opened) must carry."""

    def link_generation(self, order_id: str, role: str) -> int:
        """The generation the order's links of this role carry now (0 until a revoke)."""
        return int(self.redis.hget(key("links", order_id), role) or 0)

    @staticmethod
    def next_link_generation(pipe: Pipeline, order_id: str, roles: Iterable[str]) -> None:
        """Move each role's generation on, in the caller's transaction."""
        for role in roles:
            pipe.hincrby(key("links", order_id), role, 1)
