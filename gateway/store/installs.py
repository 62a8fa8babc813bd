"""Connect links (single-use, a day) and the nonces an install flow hands a platform."""

from __future__ import annotations

import json
from typing import Any

from gateway.store.base import Records, key


class Installs(Records):
    """Open connect links, found by id or by the store they name, and install nonces."""

    def add_connect_link(self, record: dict[str, Any], seconds: int, store: str | None) -> None:
        """Keep an open link for `seconds`; `store` (`<platform>:<identity>`) finds it too."""
        with self.redis.pipeline() as pipe:
            pipe.set(key("connect-link", record["id"]), json.dumps(record), ex=seconds)
            if store:
                pipe.set(key("connect-for", store), record["id"], ex=seconds)
            pipe.execute()

    def connect_link(self, link_id: str) -> dict[str, Any] | None:
        """An open link's record; None once used or expired."""
        raw = self.redis.get(key("connect-link", link_id))
        return json.loads(raw) if raw else None

    def link_id_for_store(self, store: str) -> str | None:
        """The open link that names this store (`<platform>:<identity>`), the newest."""
        raw = self.redis.get(key("connect-for", store))
        return raw.decode() if raw else None

    def name_store_of_link(self, record: dict[str, Any], store: str, seconds: int) -> None:
        """A link whose store was asked on the connect page: keep it with its store named."""
        with self.redis.pipeline() as pipe:
            pipe.set(key("connect-link", record["id"]), json.dumps(record), keepttl=True)
            pipe.set(key("connect-for", store), record["id"], ex=seconds)
            pipe.execute()

    def add_install_state(self, nonce: str, record: dict[str, Any], seconds: int) -> None:
        """A nonce handed to a platform, with what it stands for."""
        self.redis.set(key("install-state", nonce), json.dumps(record), ex=seconds)

    def take_install_state(self, nonce: str) -> dict[str, Any] | None:
        """A nonce's record, once."""
        raw = self.redis.getdel(key("install-state", nonce))
        return json.loads(raw) if raw else None
