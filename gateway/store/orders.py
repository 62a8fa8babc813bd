"""Order documents with their refs, lists and unshipped sets; add and change them; timelines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from redis import Redis, WatchError
from redis.client import Pipeline
from redis.commands.core import Script

from gateway.model import SHIPPED, Order
from gateway.store.base import Change, JobSpec, Records, key
from gateway.store.deliveries import index_pending

# Appends timeline entries (ARGV[2..]) and keeps at most ARGV[1] of them, in one step: the first,
# which records how the order came in, and the newest. KEYS[2] counts the entries dropped.
APPEND_TIMELINE = """
local length = redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
local cap = tonumber(ARGV[1])
if length > cap then
    local first = redis.call('LINDEX', KEYS[1], 0)
    redis.call('LTRIM', KEYS[1], length - cap + 1, -1)
    redis.call('LPUSH', KEYS[1], first)
    redis.call('INCRBY', KEYS[2], length - cap)
end
return length
"""


def search_terms(order: Order) -> set[str]:
    """What finds the order in the console's search, as typed after trimming, any case: our
    id, either party's order ref, every tracking number."""
    terms = {order.id, order.buyer_order_ref, order.seller_order_ref or ""}
    terms.update(n for f in order.fulfillments for n in f.tracking_numbers)
    return {term.strip().lower() for term in terms if term and term.strip()}


class Orders(Records):
    """Orders, each one JSON document changed in an optimistic transaction with its jobs."""

    def order(self, order_id: str) -> Order | None:
        """The stored order, or None."""
        raw = self.redis.get(key("order", order_id))
        return Order.from_doc(json.loads(raw)) if raw else None

    def repeated_order(self, order_id: str) -> Order | None:
        """The stored order, for a repeat of its creation: read in a transaction that counts the
        repeat, a write, so with REDIS_WAIT_REPLICAS this answer too waits for the replicas."""
        with self.redis.pipeline() as pipe:
            pipe.get(key("order", order_id))
            pipe.hincrby(key("metrics"), "order_repeats", 1)
            raw, _ = pipe.execute()
        return Order.from_doc(json.loads(raw)) if raw else None

    def order_id_by_buyer_ref(self, buyer_id: str, seller_id: str, ref: str) -> str | None:
        """The order a buyer already sent to this seller under its own order reference."""
        found = self.redis.get(key("order-ref", buyer_id, seller_id, ref))
        return found.decode() if found else None

    def order_id_by_seller_ref(self, seller_id: str, ref: str) -> str | None:
        """Our order that was created in the seller's store under this id."""
        found = self.redis.get(key("order-by-seller-ref", seller_id, ref))
        return found.decode() if found else None

    def add_order(self, order: Order, events: list[dict[str, Any]], jobs: list[JobSpec]) -> Order:
        """Store a new order unless the buyer already sent this ref to this seller; return the
        order that is stored under the ref (the new one or the earlier one)."""
        ref_key = key("order-ref", order.buyer_id, order.seller_id, order.buyer_order_ref)
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(ref_key)
                    existing = pipe.get(ref_key)
                    earlier = self.order(existing.decode()) if existing else None
                    if earlier is not None:
                        pipe.reset()
                        return earlier
                    pipe.multi()  # new, or a ref whose order is gone: (re)write both
                    pipe.set(ref_key, order.id)
                    member = f"{order.created_at}|{order.id}"
                    pipe.zadd(key("orders-of", order.buyer_id), {member: 0})
                    pipe.zadd(key("orders-of", order.seller_id), {member: 0})
                    pipe.zadd(key("orders"), {member: 0})  # every order: the console's list
                    self._write_order(pipe, order, events, jobs)
                    pipe.execute()
                    return order
                except WatchError:
                    continue

    def change_order(
        self,
        order_id: str,
        decide: Callable[[Order], Change | None],
        watch: Iterable[str] = (),
    ) -> Change | None:
        """Apply `decide` to the order in an optimistic transaction, retried on conflict.

        `decide` may run several times; it must only compute. Returns its last Change, or None
        when the order does not exist. `watch` names extra keys whose change forces a retry.
        """
        order_key = key("order", order_id)
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(order_key, *watch)
                    raw = pipe.get(order_key)
                    if raw is None:
                        pipe.reset()
                        return None
                    change = decide(Order.from_doc(json.loads(raw)))
                    if change is None or (
                        change.order is None and not (change.events or change.jobs or change.writes)
                    ):
                        pipe.reset()
                        return change
                    pipe.multi()
                    for write in change.writes:
                        write(pipe)
                    self._write_order(pipe, change.order, change.events, change.jobs, order_id)
                    pipe.execute()
                    return change
                except WatchError:
                    continue

    def resync_order(
        self, order_id: str, cooldown: int, decide: Callable[[Order], Change]
    ) -> Change | None:
        """`change_order` for a resync, at most once per `cooldown` seconds per order: within
        it, nothing is written and the Change's result is the seconds left. None: no order."""
        mark = key("resynced", order_id)

        def once(order: Order) -> Change:
            left = self.redis.ttl(mark)  # read under WATCH: a concurrent resync forces a retry
            if left > 0:
                return Change(result=left)
            change = decide(order)
            if cooldown > 0:
                change.writes.append(lambda pipe: pipe.set(mark, 1, ex=cooldown))
            return change

        return self.change_order(order_id, once, watch=(mark,))

    def _write_order(
        self,
        pipe: Pipeline,
        order: Order | None,
        events: list[dict[str, Any]],
        jobs: list[JobSpec],
        order_id: str | None = None,
    ) -> None:
        order_id = order.id if order is not None else order_id
        if order is not None:
            pipe.set(key("order", order.id), json.dumps(order.to_doc(), separators=(",", ":")))
            if order.seller_order_ref:
                pipe.set(
                    key("order-by-seller-ref", order.seller_id, order.seller_order_ref), order.id
                )
            unshipped = key("unshipped", order.seller_id)
            if order.status == SHIPPED:
                pipe.srem(unshipped, order.id)
            else:
                pipe.sadd(unshipped, order.id)
            index_pending(pipe, order)
            for term in search_terms(order):  # kept when a term goes: an old number still finds
                pipe.sadd(key("find", term), order.id)
            waiting = key("waiting", order.buyer_id)  # the reconciliation asks again about these
            if order.routing.state == "waiting":
                pipe.sadd(waiting, order.id)
            else:
                pipe.srem(waiting, order.id)
        if events:
            self._append_timeline(pipe, order_id, events)
        for job in jobs:
            self.enqueue(job, pipe)

    def waiting_orders(self, buyer_id: str) -> list[str]:
        """Ids of the buyer's orders whose routing waits (on payment or an address)."""
        return sorted(m.decode() for m in self.redis.smembers(key("waiting", buyer_id)))

    def timeline(self, order_id: str) -> list[dict[str, Any]]:
        """The order's timeline, oldest first."""
        return [json.loads(raw) for raw in self.redis.lrange(key("timeline", order_id), 0, -1)]

    def timeline_dropped(self, order_id: str) -> int:
        """How many entries the order's timeline dropped to stay within its cap."""
        return int(self.redis.get(key("timeline-dropped", order_id)) or 0)

    def add_timeline(self, order_id: str, entry: dict[str, Any]) -> None:
        """Append one entry to an order's timeline outside a transaction."""
        self._append_timeline(self.redis, order_id, [entry])

    @cached_property
    def _timeline_script(self) -> Script:
        return self.redis.register_script(APPEND_TIMELINE)

    def _append_timeline(
        self, client: Redis | Pipeline, order_id: str, entries: list[dict[str, Any]]
    ) -> None:
        """Append entries, trimming the timeline to its cap in the same step."""
        self._timeline_script(
            keys=[key("timeline", order_id), key("timeline-dropped", order_id)],
            args=[self.timeline_cap, *(json.dumps(entry) for entry in entries)],
            client=client,
        )

    def is_unshipped(self, seller_id: str, order_id: str) -> bool:
        """True while the order is in the seller's unshipped set (rule 3's scope)."""
        return bool(self.redis.sismember(key("unshipped", seller_id), order_id))

    def unshipped_count(self, seller_id: str) -> int:
        """How many of the seller's orders are not shipped."""
        return int(self.redis.scard(key("unshipped", seller_id)))

    def list_orders(
        self, partner_id: str, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Order], str | None]:
        """A page of the partner's orders, oldest first, and the cursor of the next page.

        A status filter scans at most a few pages' worth of ids per call, so a page may hold
        fewer than `limit` orders while `next_cursor` is still set.
        """
        index = key("orders-of", partner_id)
        start = f"({cursor}" if cursor else "-"
        budget = limit * 5
        members = self.redis.zrangebylex(index, start, "+", start=0, num=budget)
        found, last = self._read_page(
            [m.decode() for m in members], lambda o: status is None or o.status == status, limit
        )
        more = last is not None and bool(self.redis.zrangebylex(index, f"({last}", "+", 0, 1))
        return found, (last if more else None)

    def newest_orders(
        self,
        partner_ids: Iterable[str],
        keep: Callable[[Order], bool],
        limit: int,
        before: str | None,
    ) -> tuple[list[Order], str | None]:
        """A page of the orders of any of these partners, newest first, that `keep` accepts,
        and the cursor of the next page (None: no more). Like `list_orders`, a page scans a
        bounded number of ids, so it may hold fewer than `limit` with a next cursor set."""
        budget = limit * 5
        top = f"({before}" if before else "+"
        members: set[str] = set()
        horizon: str | None = None  # below it, a partner's older orders were not read yet
        for partner_id in partner_ids:
            found = self.redis.zrevrangebylex(key("orders-of", partner_id), top, "-", 0, budget)
            members.update(m.decode() for m in found)
            if len(found) == budget:
                horizon = max(horizon or "", found[-1].decode())
        candidates = sorted((m for m in members if horizon is None or m >= horizon), reverse=True)
        kept, last = self._read_page(candidates, keep, limit)
        more = last is not None and (last != candidates[-1] or horizon is not None)
        return kept, (last if more else None)

    def _read_page(
        self, members: list[str], keep: Callable[[Order], bool], limit: int
    ) -> tuple[list[Order], str | None]:
        """The orders of index members (`<time>|<id>`), in their order, that `keep` accepts,
        up to `limit`; and the last member read (where the next page starts)."""
        found: list[Order] = []
        last: str | None = None
        for chunk_start in range(0, len(members), 100):
            chunk = members[chunk_start : chunk_start + 100]
            docs = self.redis.mget([key("order", m.split("|")[1]) for m in chunk])
            for member, raw in zip(chunk, docs, strict=True):
                last = member
                if raw is not None and keep(order := Order.from_doc(json.loads(raw))):
                    found.append(order)
                if len(found) == limit:
                    return found, last
        return found, last

    def find_orders(self, term: str) -> list[str]:
        """Ids of the orders whose id, either order ref or a tracking number is `term`
        (trimmed, any case); our id is also tried as typed, for orders stored before the
        search index."""
        term = term.strip()
        if not term:
            return []
        found = {m.decode() for m in self.redis.smembers(key("find", term.lower()))}
        if not found and self.redis.exists(key("order", term)):
            found.add(term)
        return sorted(found)

    def every_order_index(self) -> str:
        """The key of the index of every order (created_at|id), filled once from the
        partners' own indexes for orders stored before it existed."""
        index = key("orders")
        if not self.redis.exists(key("orders-indexed")):
            sources = [key("orders-of", pid) for pid in self.partner_ids()]
            if sources:  # orders added meanwhile are in `index` already: kept by the union
                self.redis.zunionstore(index, [index, *sources], aggregate="MIN")
            self.redis.set(key("orders-indexed"), 1)
        return index

    def orders_page(
        self,
        partner_id: str | None,
        keep: Callable[[Order], bool],
        limit: int,
        cursor: str | None = None,
        budget: int = 1000,
    ) -> tuple[list[Order], str | None]:
        """A page of orders, newest first (every order's, or one partner's), those `keep`
        accepts, and the cursor of the next page. At most `budget` orders are read per call,
        so a page of a narrow filter may be short while the cursor is still set."""
        index = key("orders-of", partner_id) if partner_id else self.every_order_index()
        start = f"({cursor}" if cursor else "+"
        members = self.redis.zrevrangebylex(index, start, "-", start=0, num=budget)
        found, last = self._read_page([m.decode() for m in members], keep, limit)
        more = last is not None and bool(self.redis.zrevrangebylex(index, f"({last}", "-", 0, 1))
        return found, (last if more else None)
