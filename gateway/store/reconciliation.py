"""The reconciliation's bookkeeping: cursors per connection, owed syncs, buyer refs seen."""

from __future__ import annotations

from gateway.store.base import Records, key


class Reconciliation(Records):
    """Where the reconciliation got to, and what it still owes each store."""

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
