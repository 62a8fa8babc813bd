"""Connect links (single-use, a day) and the nonces an install flow hands a platform."""

from __future__ import annotations

import json
from typing import Any

from redis import WatchError

from gateway.store.base import Records, key


class Installs(Records):
    """Open connect links, found by id or by the store they name, and install nonces."""

    def add_connect_link(self, record: dict[str, Any], seconds: int, store: str | None) -> bool:
        """Keep an open link for `seconds`; `store` (`<platform>:<identity>`) finds it too.
        False (nothing kept) when another partner has that store, or an open link naming it."""
        return self._keep_link(record, store, seconds, ex=seconds)

    def _keep_link(
        self, record: dict[str, Any], store: str | None, seconds: int, **expiry: Any
    ) -> bool:
        link_key = key("connect-link", record["id"])
        if not store:
            self.redis.set(link_key, json.dumps(record), **expiry)
            return True
        named, owner_key = key("connect-for", store), key("partner-by", store)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(named, owner_key)
                    owner = pipe.get(owner_key)
                    other = pipe.get(named)
                    rival = pipe.get(key("connect-link", other.decode())) if other else None
                    rival_partner = json.loads(rival)["partner_id"] if rival else None
                    if (owner and owner.decode() != record["partner_id"]) or (
                        rival_partner not in (None, record["partner_id"])
                    ):
                        pipe.reset()
                        return False
                    pipe.multi()
                    pipe.set(link_key, json.dumps(record), **expiry)
                    pipe.set(named, record["id"], ex=seconds)
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def connect_link(self, link_id: str) -> dict[str, Any] | None:
        """An open link's record; None once used or expired."""
        raw = self.redis.get(key("connect-link", link_id))
        return json.loads(raw) if raw else None

    def link_id_for_store(self, store: str) -> str | None:
        """The open link that names this store (`<platform>:<identity>`), the newest."""
        raw = self.redis.get(key("connect-for", store))
        return raw.decode() if raw else None

    def name_store_of_link(self, record: dict[str, Any], store: str, seconds: int) -> bool:
        """A link whose store was asked on the connect page: keep it with its store named;
        False as add_connect_link."""
        return self._keep_link(record, store, seconds, keepttl=True)

    def add_install_state(self, nonce: str, record: dict[str, Any], seconds: int) -> None:
        """A nonce handed to a platform, with what it stands for."""
        self.redis.set(key("install-state", nonce), json.dumps(record), ex=seconds)

    def take_install_state(self, nonce: str) -> dict[str, Any] | None:
        """A nonce's record, once."""
        raw = self.redis.getdel(key("install-state", nonce))
        return json.loads(raw) if raw else None
