"""The reconciliation's bookkeeping: cursors per connection, owed syncs, buyer refs seen."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.model import iso_utc
from gateway.store.base import Records, key

CYCLES_KEPT = 20  # cycles the console shows (/admin/reconcile)
CYCLE_SECONDS = 7 * 24 * 3600  # a cycle's record outlives its place among the kept ones

# A store connection's part of a cycle is done (KEYS: the cycle, its done set; ARGV: partner,
# calls, changed, failed): counted once per connection, however often its job is retried;
# 1 when it was the cycle's last part.
PART_DONE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[1], 'calls', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'changed', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
if done == tonumber(redis.call('HGET', KEYS[1], 'connections')) then return 1 end
return 0
"""


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

    def lag_seconds(self) -> float:
        """Seconds since the oldest change a store connection's reconciliation has not reached."""
        now = datetime.now(UTC)
        oldest = min((datetime.fromisoformat(v) for v in self.cursors().values()), default=now)
        return max(0.0, (now - oldest).total_seconds())

    # ---- the cycles, for /admin/reconcile -----------------------------------------------------

    def start_cycle(self, kind: str, connections: int, requeued: int) -> str:
        """Record a cycle that hands `connections` store connections to their jobs; its id."""
        cycle_id = str(time.time_ns())
        record = {
            "id": cycle_id,
            "kind": kind,
            "started_at": iso_utc(datetime.now(UTC)),
            "started": time.time(),
            "connections": connections,
            "requeued": requeued,
            "calls": 0,
            "changed": 0,
            "failed": 0,
            "done": 0,
        }
        with self.redis.pipeline() as pipe:
            pipe.hset(key("cycle", cycle_id), mapping=record)
            pipe.expire(key("cycle", cycle_id), CYCLE_SECONDS)
            pipe.lpush(key("cycles"), cycle_id)
            pipe.ltrim(key("cycles"), 0, CYCLES_KEPT - 1)
            pipe.execute()
        if connections == 0:
            self._finish_cycle(cycle_id)
        return cycle_id

    def cycle_part_done(
        self, cycle_id: str, partner_id: str, calls: int, changed: int, failed: bool
    ) -> None:
        """A store connection's job of the cycle ended (the last one ends the cycle)."""
        last = self.redis.eval(
            PART_DONE,
            2,
            key("cycle", cycle_id),
            key("cycle-done", cycle_id),
            partner_id,
            calls,
            changed,
            int(failed),
            CYCLE_SECONDS,
        )
        if last:
            self._finish_cycle(cycle_id)

    def _finish_cycle(self, cycle_id: str) -> None:
        started = float(self.redis.hget(key("cycle", cycle_id), "started") or time.time())
        self.redis.hset(
            key("cycle", cycle_id),
            mapping={
                "finished_at": iso_utc(datetime.now(UTC)),
                "duration": round(time.time() - started, 3),
                "lag": round(self.lag_seconds()),
            },
        )

    def cycles(self) -> list[dict[str, Any]]:
        """The last cycles, newest first, scheduled and manual alike."""
        ids = [i.decode() for i in self.redis.lrange(key("cycles"), 0, -1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for cycle_id in ids:
                pipe.hgetall(key("cycle", cycle_id))
            raws = pipe.execute()
        return [{k.decode(): v.decode() for k, v in raw.items()} for raw in raws if raw]
