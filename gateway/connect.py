"""Store connections: connect links, the gateway's side of each platform's install flow, and a
connection's status (connected, needs_reauth, uninstalled) with what follows a change of it.

A connect link is signed (it names a link record) and single-use: the record ends when an
installation binds to it, or after a day. The platform modules run the flows themselves
(`Platform.begin_install`, `install_step`) through `Installation`, the InstallPort.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from gateway import platforms
from gateway.jobs import (
    REGISTER_WEBHOOKS,
    RESUME_CONNECTION,
    TELL_OWNER_TO_RECONNECT,
    upkeep,
)
from gateway.model import iso_utc, new_id, now_iso
from gateway.platforms.base import (
    CONNECTED,
    NEEDS_REAUTH,
    UNINSTALLED,
    ConnectLink,
    InstallRefused,
)
from gateway.settings import Settings
from gateway.store import JobSpec, Store, event, key

log = logging.getLogger(__name__)
SALT = "connect-link"
LINK_SECONDS = 24 * 3600
STATE_SECONDS = 3600  # a platform's round trip (a merchant reading its consent screen)
UNUSABLE = (NEEDS_REAUTH, UNINSTALLED)


class LinkGone(Exception):  # noqa: N818 (shown to a person)
    """A connect link that is not valid, used already, or expired."""


# A link may not name a store that another partner has, or that another partner's open link
# names: an installation started from the store's side (a platform's control panel) binds to
# the link naming it, so a second link could otherwise capture another partner's install.
TAKEN = "Another partner is connected to this store, or has a connect link open for it."


class StoreTaken(Exception):  # noqa: N818 (shown to a person)
    """A connect link naming a store that another partner has, or has a link open for."""


def create_link(
    config: Settings,
    store: Store,
    partner: dict[str, Any],
    hints: dict[str, Any],
    trusted: bool = True,
) -> dict[str, Any]:
    """A fresh connect link for the partner: {"url", "expires_at"}. `trusted`: the store its
    hints name was named by the operator or is the partner's own (ConnectLink.trusted)."""
    expires = datetime.now(UTC) + timedelta(seconds=LINK_SECONDS)
    record = {
        "id": new_id("cnl"),
        "partner_id": partner["id"],
        "platform": partner["platform"],
        "hints": hints,
        "trusted": trusted,
        "contact_email": partner["email"],
        "expires_at": iso_utc(expires),
    }
    if not store.add_connect_link(record, LINK_SECONDS, _store_named(partner["platform"], hints)):
        raise StoreTaken(TAKEN)
    token = URLSafeSerializer(config.secret_key, salt=SALT).dumps(record["id"])
    return {
        "url": f"{config.public_url.rstrip('/')}/connect/{token}",
        "expires_at": record["expires_at"],
    }


def _store_named(platform: str, hints: dict[str, Any]) -> str | None:
    """`<platform>:<identity>` when the hints name the store (a platform whose install is
    started from the store's side finds the link by it)."""
    identity = (
        platforms.get(platform).store_identity(hints) if _names_store(platform, hints) else None
    )
    return f"{platform}:{identity}" if identity else None


def _names_store(platform: str, hints: dict[str, Any]) -> bool:
    schema = platforms.get(platform).install_schema
    asked = [n for n, f in schema().fields.items() if f.metadata.get("ask")] if schema else []
    return bool(asked) and all(hints.get(n) for n in asked)


def open_link(config: Settings, store: Store, token: str) -> ConnectLink:
    """The open link a token names; LinkGone otherwise."""
    try:
        link_id = URLSafeSerializer(config.secret_key, salt=SALT).loads(token)
    except BadSignature:
        raise LinkGone("invalid") from None
    record = store.connect_link(link_id) if isinstance(link_id, str) else None
    if record is None:
        raise LinkGone("used or expired")
    return _link(record)


def _link(record: dict[str, Any]) -> ConnectLink:
    return ConnectLink(
        record["id"],
        record["partner_id"],
        record["platform"],
        record["hints"],
        bool(record.get("trusted")),
        record.get("contact_email", ""),
    )


def name_store(store: Store, link: ConnectLink, hints: dict[str, Any]) -> ConnectLink:
    """The link with what its connect page asked for; findable by its store from now on."""
    record = store.connect_link(link.id)
    if record is None:
        raise LinkGone("used or expired")
    record["hints"] = {**record["hints"], **hints}
    record["trusted"] = False  # typed by whoever holds the link
    named = _store_named(link.platform, record["hints"])
    if named and not store.name_store_of_link(record, named, LINK_SECONDS):
        raise StoreTaken(TAKEN)
    return _link(record)


class Installation:
    """The gateway's side of an install flow (platforms/base.py InstallPort)."""

    def __init__(self, config: Settings, store: Store) -> None:
        self.config = config
        self.store = store

    def new_state(
        self, link: ConnectLink, data: dict[str, Any], seconds: int = STATE_SECONDS
    ) -> str:
        nonce = secrets.token_urlsafe(24)
        self.store.add_install_state(nonce, {"link_id": link.id, "data": data}, seconds)
        return nonce

    def take_state(self, nonce: str) -> tuple[ConnectLink, dict[str, Any]] | None:
        if not nonce or len(nonce) > 200:
            return None
        state = self.store.take_install_state(nonce)
        record = self.store.connect_link(state["link_id"]) if state else None
        return (_link(record), state["data"]) if record else None

    def link_for_store(self, platform: str, identity: str) -> ConnectLink | None:
        link_id = self.store.link_id_for_store(f"{platform}:{identity}")
        record = self.store.connect_link(link_id) if link_id else None
        return _link(record) if record else None

    def partner_by_store(self, platform: str, identity: str) -> dict[str, Any] | None:
        return self.store.partner_by_lookup(f"{platform}:{identity}")

    def complete(
        self,
        link: ConnectLink,
        connection: dict[str, Any],
        status: str = CONNECTED,
        reason: str = "",
    ) -> dict[str, Any]:
        return bind(self.store, link, connection, status, reason)

    def uninstalled(self, partner_id: str, reason: str) -> None:
        set_status(self.store, partner_id, UNINSTALLED, reason)

    def count(self, name: str, amount: int = 1) -> None:
        self.store.count(name, amount)

    def now(self) -> float:
        return time.time()


def bind(
    store: Store, link: ConnectLink, connection: dict[str, Any], status: str, reason: str
) -> dict[str, Any]:
    """Keep an installation's connection on the link's partner, in one transaction that uses
    the link up, takes the store's lookup (InstallRefused when another partner has it), and
    enqueues what a (re)connected store needs: its webhooks, its held work, a reconciliation."""
    platform = platforms.get(link.platform)
    identity = platform.store_identity(connection)
    lookup = key("partner-by", f"{link.platform}:{identity}")
    link_key = key("connect-link", link.id)

    def decide(partner: dict[str, Any], pipe: Any) -> dict[str, Any]:
        if not pipe.exists(link_key):
            raise InstallRefused("This connect link was used already or has expired.")
        owner = pipe.get(lookup)
        if owner is not None and owner.decode() != partner["id"]:
            raise InstallRefused("Another partner of the marketplace is connected to this store.")
        return {
            **partner,
            "connection": connection,
            "connection_status": status,
            "status_reason": reason,
            "connected_at": now_iso(),
        }

    def writes(pipe: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
        pipe.delete(link_key)
        old = platform.store_identity(before["connection"]) if before.get("connection") else None
        if old and old != identity:
            pipe.delete(key("partner-by", f"{link.platform}:{old}"))
        pipe.set(lookup, after["id"])
        pipe.sadd(key("connections"), after["id"])

    def jobs(before: dict[str, Any], after: dict[str, Any]) -> list[JobSpec]:
        return _after_status(before, after)

    changed = store.change_partner(
        link.partner_id, decide, jobs, watch=[link_key, lookup], writes=writes
    )
    if changed is None:
        raise InstallRefused("This connect link's partner no longer exists.")
    after = changed[1]
    verb = "connected" if status == CONNECTED else f"connected but {status}"
    store.add_partner_event(
        after["id"],
        event(
            "connection.installed",
            f"The {platform.label} store {identity} was {verb}." + (f" {reason}" if reason else ""),
        ),
    )
    store.count(f"connections_installed_{link.platform}")
    return after


def set_status(store: Store, partner_id: str, status: str, reason: str) -> bool:
    """Move a connection to a status; True when it changed (its owner is emailed once when it
    becomes unusable; its held work resumes when it is connected again)."""

    def decide(partner: dict[str, Any], _pipe: Any) -> dict[str, Any] | None:
        if platforms.connection_status(partner) == status:
            return None
        return {**partner, "connection_status": status, "status_reason": reason}

    changed = store.change_partner(partner_id, decide, lambda b, a: _after_status(b, a))
    if changed is None:
        return False
    store.add_partner_event(
        partner_id,
        event(
            "connection.status",
            f"The store connection is now {status}." + (f" {reason}" if reason else ""),
            level="warning" if status in UNUSABLE else "info",
        ),
    )
    store.count(f"connections_{status}")
    return True


def _after_status(before: dict[str, Any], after: dict[str, Any]) -> list[JobSpec]:
    """What a status change calls for: a store that became usable gets its webhooks and its
    held work back; one that became unusable asks its owner, once, to connect it again."""
    old, new = platforms.connection_status(before), platforms.connection_status(after)
    partner_id = after["id"]
    if new == CONNECTED:
        return [
            upkeep(REGISTER_WEBHOOKS, partner_id),
            upkeep(RESUME_CONNECTION, partner_id),
        ]
    if new in UNUSABLE and old not in UNUSABLE:
        return [upkeep(TELL_OWNER_TO_RECONNECT, partner_id, new)]
    return []


def fresh_link(config: Settings, store: Store, partner: dict[str, Any]) -> dict[str, Any]:
    """A link for the partner's owner to connect its store (again): naming the store it was
    connected to, or, when another partner has that store now or a link open for it, naming
    none (the page asks)."""
    try:
        return create_link(config, store, partner, reconnect_hints(partner))
    except StoreTaken as taken:
        log.warning("partner %s: %s; its link names no store", partner["id"], taken)
        return create_link(config, store, partner, {})


def reconnect_hints(partner: dict[str, Any]) -> dict[str, Any]:
    """A fresh link's hints for a partner connected before: its store, as the connection
    names it (so the link goes straight to the platform)."""
    schema = platforms.get(partner["platform"]).install_schema
    if schema is None:
        return {}
    connection = partner.get("connection") or {}
    return {n: connection[n] for n in schema().fields if connection.get(n)}
