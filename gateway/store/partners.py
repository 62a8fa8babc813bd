"""Partners, their API keys and store lookups, partnerships with their SKU maps, connections."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from marshmallow import Schema
from redis import Redis, WatchError
from rq import Queue

from gateway import platforms
from gateway.store.base import Records, key, key_hash

KNOWN_STORE_SECONDS = 5.0  # how long a web process trusts its copy of a store's connection
PARTNER_TIMELINE_CAP = 200  # entries a partner's connection timeline keeps
SEALED = "sealed"  # the field of a stored partner that holds its secrets, encrypted
EVENT_SIGNING_SECRET = "event_signing_secret"


def cipher(encryption_keys: str) -> MultiFernet:
    """The cipher of ENCRYPTION_KEYS (comma-separated Fernet keys): the first encrypts, all
    decrypt, so a new key can be put first while records still under the old one are read."""
    try:
        return MultiFernet([Fernet(k.strip()) for k in encryption_keys.split(",") if k.strip()])
    except ValueError:  # the message never holds the key
        raise ValueError(
            "ENCRYPTION_KEYS must list one or more Fernet keys (32 url-safe base64-encoded bytes)"
        ) from None


@functools.cache
def _secret_fields(schema: type[Schema]) -> tuple[str, ...]:
    # A platform marks its connection's secrets load_only (never shown): those are encrypted.
    fields = schema().fields.items()
    return tuple(field.attribute or name for name, field in fields if field.load_only)


def secret_fields(platform: str) -> tuple[str, ...]:
    """The connection fields of a platform that are secrets (its install flow's too)."""
    declared = platforms.get(platform)
    return _secret_fields(declared.connection_schema) + declared.extra_secrets


class Partners(Records):
    """Partners, partnerships and store connections, with a few seconds' cache of lookups."""

    def __init__(self, redis: Redis, queue: Queue, timeline_cap: int, encryption_keys: str) -> None:
        super().__init__(redis, queue, timeline_cap)
        self._known_stores: dict[str, tuple[float, dict[str, Any]]] = {}
        self._platforms: dict[str, str] = {}
        self._cipher = cipher(encryption_keys)

    def _sealed(self, partner: dict[str, Any]) -> str:
        """A partner as stored: its secrets taken out and encrypted together in one field."""
        stored = dict(partner)
        connection = dict(stored.get("connection") or {})
        hidden: dict[str, Any] = {
            "connection": {
                name: connection.pop(name)
                for name in secret_fields(stored["platform"])
                if name in connection
            }
        }
        stored["connection"] = connection
        if EVENT_SIGNING_SECRET in stored:
            hidden[EVENT_SIGNING_SECRET] = stored.pop(EVENT_SIGNING_SECRET)
        stored[SEALED] = self._cipher.encrypt(json.dumps(hidden).encode()).decode()
        return json.dumps(stored)

    def _opened(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored partner with its secrets back in place; a plain one (written before
        secrets were encrypted) as it is."""
        partner = dict(stored)
        sealed = partner.pop(SEALED, None)
        if sealed is None:
            return partner
        try:
            hidden = json.loads(self._cipher.decrypt(sealed.encode()))
        except InvalidToken:
            raise RuntimeError(
                f"partner {partner['id']}: its secrets decrypt with no key of ENCRYPTION_KEYS"
            ) from None
        partner["connection"] = {**partner["connection"], **hidden.pop("connection")}
        partner.update(hidden)
        return partner

    def seal_text(self, text: str) -> str:
        """A secret (a sign-in link in a queued job's arguments) encrypted as partners' are."""
        return self._cipher.encrypt(text.encode()).decode()

    def open_text(self, sealed: str) -> str:
        """A text sealed with `seal_text`."""
        return self._cipher.decrypt(sealed.encode()).decode()

    def add_partner(
        self, partner: dict[str, Any], api_key: str, lookups: Iterable[str], has_store: bool
    ) -> bool:
        """Store a new partner; False (nothing stored) if one of its store lookups is taken.
        A partner with a store connection joins the reconciliation's scope."""
        lookup_keys = [key("partner-by", lookup) for lookup in lookups]
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key("partner", partner["id"]), *lookup_keys)
                if any(pipe.exists(k) for k in lookup_keys):
                    pipe.reset()
                    return False
                pipe.multi()
                pipe.set(key("partner", partner["id"]), self._sealed(partner))
                pipe.set(key("partner-by-key", key_hash(api_key)), partner["id"])
                self.index_partner_email(pipe, partner["id"], partner["email"])
                if has_store:
                    pipe.sadd(key("connections"), partner["id"])
                for k in lookup_keys:
                    pipe.set(k, partner["id"])
                pipe.execute()
            except WatchError:
                return False
        return True

    def platform_of(self, partner_id: str) -> str | None:
        """A partner's platform, which never changes: read once per process (None: no such
        partner)."""
        if partner_id not in self._platforms:
            partner = self.partner(partner_id)
            if partner is None:
                return None
            self._platforms[partner_id] = partner["platform"]
        return self._platforms[partner_id]

    def partner(self, partner_id: str) -> dict[str, Any] | None:
        """A partner's record, connection secrets included (never return it as is)."""
        raw = self.redis.get(key("partner", partner_id))
        if raw is None:
            return None
        stored = json.loads(raw)
        if SEALED not in stored:  # written before secrets were encrypted: encrypt them now
            self.reseal_partner(partner_id)
        return self._opened(stored)

    def partner_ids(self) -> list[str]:
        """Every partner's id."""
        prefix = key("partner", "")
        return sorted(k.decode().removeprefix(prefix) for k in self.redis.scan_iter(prefix + "*"))

    def reseal_partner(self, partner_id: str) -> bool:
        """Encrypt a partner's secrets again with the first key (a plain record's for the first
        time); False when there is no such partner. A concurrent write wins and is resealed."""
        partner_key = key("partner", partner_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(partner_key)
                    raw = pipe.get(partner_key)
                    if raw is None:
                        pipe.reset()
                        return False
                    pipe.multi()
                    pipe.set(partner_key, self._sealed(self._opened(json.loads(raw))))
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def partner_by_api_key(self, api_key: str) -> dict[str, Any] | None:
        """The partner whose API key this is."""
        partner_id = self.redis.get(key("partner-by-key", key_hash(api_key)))
        return self.partner(partner_id.decode()) if partner_id else None

    def partner_by_lookup(self, lookup: str) -> dict[str, Any] | None:
        """The partner found by a store identity such as `<platform>:<store identity>`."""
        partner_id = self.redis.get(key("partner-by", lookup))
        return self.partner(partner_id.decode()) if partner_id else None

    def known_store(self, lookup: str) -> dict[str, Any] | None:
        """partner_by_lookup, remembered for a few seconds: a webhook costs no reads for it.

        Only stores that exist are remembered, so unknown names can't fill the memory.
        """
        now = time.monotonic()
        hit = self._known_stores.get(lookup)
        if hit and hit[0] > now:
            return hit[1]
        partner = self.partner_by_lookup(lookup)
        if partner is not None:
            self._known_stores[lookup] = (now + KNOWN_STORE_SECONDS, partner)
        return partner

    def save_partnership(self, partnership: dict[str, Any]) -> list[str]:
        """Create or replace the partnership of a buyer and a seller, with its SKU map.

        A buyer SKU belongs to one seller: returns the SKUs another partnership of the buyer
        already maps (and stores nothing), else an empty list.
        """
        buyer, seller = partnership["buyer_id"], partnership["seller_id"]
        skus_key = key("sku-of", buyer)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(skus_key)
                    owners = {
                        k.decode(): json.loads(v)[0] for k, v in pipe.hgetall(skus_key).items()
                    }
                    wanted = {p["buyer_sku"]: p["seller_sku"] for p in partnership["skus"]}
                    taken = [s for s in wanted if owners.get(s, seller) != seller]
                    if taken:
                        pipe.reset()
                        return taken
                    dropped = [
                        s for s, owner in owners.items() if owner == seller and s not in wanted
                    ]
                    pipe.multi()
                    pipe.set(key("partnership", buyer, seller), json.dumps(partnership))
                    pipe.sadd(key("sellers-of", buyer), seller)
                    pipe.sadd(key("buyers-of", seller), buyer)
                    if dropped:
                        pipe.hdel(skus_key, *dropped)
                    if wanted:
                        pipe.hset(
                            skus_key,
                            mapping={s: json.dumps([seller, t]) for s, t in wanted.items()},
                        )
                    pipe.execute()
                    return []
                except WatchError:
                    continue

    def sku_map(self, buyer_id: str) -> dict[str, tuple[str, str]]:
        """Every SKU the buyer's partnerships map: buyer SKU -> (seller id, seller SKU)."""
        raw = self.redis.hgetall(key("sku-of", buyer_id))
        return {k.decode(): tuple(json.loads(v)) for k, v in raw.items()}

    def partnership(self, buyer_id: str, seller_id: str) -> dict[str, Any] | None:
        """The partnership of this buyer and seller, if any."""
        raw = self.redis.get(key("partnership", buyer_id, seller_id))
        return json.loads(raw) if raw else None

    def connections(self) -> list[str]:
        """Ids of the partners with a store to reconcile."""
        return sorted(m.decode() for m in self.redis.smembers(key("connections")))

    def is_buyer(self, partner_id: str) -> bool:
        """True when the partner has partnerships as a buyer."""
        return bool(self.redis.scard(key("sellers-of", partner_id)))

    def roles(self, partner_id: str) -> set[str]:
        """ "buyer" and/or "seller", from the partner's partnerships."""
        self._index_sellers_buyers()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.scard(key("sellers-of", partner_id))
            pipe.scard(key("buyers-of", partner_id))
            sellers, buyers = pipe.execute()
        return {role for role, n in (("buyer", sellers), ("seller", buyers)) if n}

    def _index_sellers_buyers(self) -> None:
        """Fill each seller's `buyers-of` from the partnerships stored before it was kept (once;
        save_partnership keeps it since)."""
        if self.redis.exists(key("buyers-of-built")):
            return
        prefix = key("partnership", "")
        with self.redis.pipeline(transaction=False) as pipe:
            for name in self.redis.scan_iter(prefix + "*"):
                buyer, seller = name.decode().removeprefix(prefix).split(":", 1)
                pipe.sadd(key("buyers-of", seller), buyer)
            pipe.set(key("buyers-of-built"), 1)
            pipe.execute()

    # ---- the store connection: install, status, tokens, webhooks ------------------------------

    def change_partner(
        self,
        partner_id: str,
        decide: Any,
        jobs: Any = None,
        watch: Iterable[str] = (),
        writes: Any = None,
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Change a partner in one optimistic transaction: `decide(partner, pipe)` returns the
        new record (None: no change; it may read the `watch`ed keys through `pipe`);
        `jobs(before, after)` the jobs committed with it, `writes(pipe, before, after)` other
        writes. Returns (before, after), or None when nothing changed or no such partner."""
        partner_key = key("partner", partner_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(partner_key, *watch)
                    raw = pipe.get(partner_key)
                    if raw is None:
                        pipe.reset()
                        return None
                    before = self._opened(json.loads(raw))
                    after = decide(dict(before), pipe)
                    if after is None:
                        pipe.reset()
                        return None
                    pipe.multi()
                    pipe.set(partner_key, self._sealed(after))
                    for job in jobs(before, after) if jobs else []:
                        self.enqueue(job, pipe)
                    if writes:
                        writes(pipe, before, after)
                    pipe.execute()
                    self._known_stores.clear()
                    return before, after
                except WatchError:
                    continue

    def stored_connection(self, partner_id: str) -> dict[str, Any] | None:
        """The partner's connection as stored now, secrets included."""
        partner = self.partner(partner_id)
        return partner["connection"] if partner else None

    def save_tokens(self, partner_id: str, expected_token: str, changes: dict[str, Any]) -> bool:
        """Merge refreshed tokens into the connection, in one transaction, only while its
        access token is still the one the refresh replaced."""

        def merge(partner: dict[str, Any], _pipe: Any) -> dict[str, Any] | None:
            if partner["connection"].get("access_token") != expected_token:
                return None
            partner["connection"] = {**partner["connection"], **changes}
            return partner

        return self.change_partner(partner_id, merge) is not None

    def set_webhooks(self, partner_id: str, hooks: list[dict[str, str]]) -> None:
        """Keep what the last check found of the store's hooks."""

        def put(partner: dict[str, Any], _pipe: Any) -> dict[str, Any] | None:
            if partner.get("webhooks") == hooks:
                return None
            partner["webhooks"] = hooks
            return partner

        self.change_partner(partner_id, put)

    def last_webhook_at(self, partner_id: str) -> str | None:
        """When the partner's store last sent a webhook that was accepted."""
        raw = self.redis.hget(key("last-webhook"), partner_id)
        return raw.decode() if raw else None

    def add_partner_event(self, partner_id: str, entry: dict[str, Any]) -> None:
        """An entry on the partner's connection timeline (installs, repairs, refusals)."""
        timeline = key("partner-timeline", partner_id)
        with self.redis.pipeline() as pipe:
            pipe.rpush(timeline, json.dumps(entry))
            pipe.ltrim(timeline, -PARTNER_TIMELINE_CAP, -1)
            pipe.execute()

    def partner_timeline(self, partner_id: str) -> list[dict[str, Any]]:
        """The partner's connection timeline, oldest first."""
        return [
            json.loads(e) for e in self.redis.lrange(key("partner-timeline", partner_id), 0, -1)
        ]

    def await_connection(self, pipe: Any, partner_id: str, order_id: str, name: str) -> None:
        """Remember a delivery held for the partner's connection (in the caller's pipeline)."""
        pipe.sadd(key("awaiting-connection", partner_id), f"{order_id}|{name}")

    def hold_for_connection(self, partner_id: str, order_id: str, name: str) -> None:
        """Remember work on an order held for the partner's connection (a sync of it)."""
        self.redis.sadd(key("awaiting-connection", partner_id), f"{order_id}|{name}")

    def take_awaiting(self, partner_id: str) -> list[tuple[str, str]]:
        """The deliveries held for the partner's connection, forgotten as they are returned."""
        awaiting = key("awaiting-connection", partner_id)
        with self.redis.pipeline() as pipe:
            pipe.smembers(awaiting)
            pipe.delete(awaiting)
            members, _ = pipe.execute()
        return [tuple(m.decode().split("|", 1)) for m in sorted(members)]

    def connection_failed(self, partner_id: str, reason: str) -> None:
        """The store refused the connection for good (a token refused after a refresh):
        needs_reauth, and its owner is asked to connect it again."""
        from gateway import connect  # connect builds on the store

        connect.set_status(self, partner_id, platforms.base.NEEDS_REAUTH, reason)
