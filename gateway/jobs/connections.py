"""What keeps a store connection alive: its webhooks registered and repaired, its held work
resumed when it is connected again, its owner asked to reconnect, and what a platform tells
about the connection itself (an uninstall, privacy-law requests)."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway import connect, mail, platforms
from gateway.delivery import DeliveryFailed
from gateway.jobs import JOB_OPTIONS, RECONCILE_STORE, REGISTER_WEBHOOKS, context, upkeep
from gateway.model import Order
from gateway.platforms.base import (
    CONNECTED,
    DATA_REQUEST,
    REDACT_CUSTOMER,
    REDACT_SHOP,
    UNINSTALLED,
    UNINSTALLED_EVENT,
    WebhookCheck,
)
from gateway.settings import Settings
from gateway.store import Change, JobSpec, Store, event

log = logging.getLogger(__name__)
REDACTED = "(redacted)"
ORDERS_PAGE = 200
WEBHOOK_CHECK_SECONDS = 120  # a store's check holds its lease at most this long (a job timeout)
WEBHOOK_RECHECK_DELAY = 5  # seconds a registration waits for a check already running


def register_webhooks(partner_id: str) -> int:
    """Make the partner's store deliver the topics of its roles to the gateway (after it is
    connected, or given a new role); how many hooks were created or repaired."""
    config, store = context()
    partner = store.partner(partner_id)
    if partner is None or platforms.connection_status(partner) != CONNECTED:
        return 0
    repaired = check_webhooks(config, store, partner)
    if repaired is None:  # a check is running: this one's roles may be newer, so look again
        store.enqueue(replace(upkeep(REGISTER_WEBHOOKS, partner_id), delay=WEBHOOK_RECHECK_DELAY))
        return 0
    return repaired


def check_webhooks(config: Settings, store: Store, partner: dict[str, Any]) -> int | None:
    """Check the store's hooks (also every reconciliation of the store): create the missing,
    enable the disabled, keep what was found on the partner; each creation or repair goes on
    its timeline and /metrics. A store that refuses (static credentials without the rights)
    is counted and tried again next cycle. None while another check of the store runs."""
    platform = platforms.get(partner["platform"])
    if not platform.topics:
        return 0
    # One check of a store at a time: two at once (a registration job beside a cycle) could
    # both find a hook missing and make it twice. The other one's check covers this one's.
    lease = store.acquire(f"webhooks:{partner['id']}", WEBHOOK_CHECK_SECONDS)
    if lease is None:
        return None
    try:
        return _check_webhooks(config, store, partner, platform)
    finally:
        store.release(f"webhooks:{partner['id']}", lease)


def _check_webhooks(config: Settings, store: Store, partner: dict[str, Any], platform: Any) -> int:
    topics = platform.webhook_topics(store.roles(partner["id"]))
    address = f"{config.public_url.rstrip('/')}/webhooks/{platform.name}"
    try:
        adapter = platforms.adapter_for(partner, store, config)
        checks: list[WebhookCheck] = adapter.ensure_webhooks(
            address, topics, platform.webhook_headers(partner["connection"])
        )
    except DeliveryFailed as error:  # PlatformError, ConnectionDown
        store.count(f"webhooks_check_failed_{platform.name}")
        log.warning("webhooks of partner %s not checked: %s", partner["id"], error)
        return 0
    known = {hook["topic"] for hook in partner.get("webhooks") or []}
    for check in checks:
        _record(store, partner, check, check.topic in known)
    store.set_webhooks(partner["id"], [{"topic": c.topic, "state": c.state} for c in checks])
    return sum(1 for c in checks if c.repaired)


def _record(store: Store, partner: dict[str, Any], check: WebhookCheck, known: bool) -> None:
    name = partner["platform"]
    if check.error:
        store.count(f"webhooks_repair_failed_{name}")
        store.add_partner_event(
            partner["id"],
            event(
                "webhook.repair_failed",
                f"The {check.topic} webhook is {check.found} and could not be repaired:"
                f" {check.error}",
                level="warning",
            ),
        )
    elif check.repaired:
        verb = "re-enabled" if check.found == "disabled" else "created"
        what = "repaired" if known else "registered"
        store.count(f"webhooks_{what}_{name}")
        store.add_partner_event(
            partner["id"],
            event(f"webhook.{what}", f"The {check.topic} webhook was {check.found}: {verb}."),
        )


def resume_connection(partner_id: str) -> int:
    """A store connected again: enqueue the deliveries held for it, and reconcile the store
    (what it missed while it could not be used); how many deliveries resumed."""
    from gateway.jobs.reconcile import job_for  # reconcile checks webhooks through this module

    _, store = context()
    held = store.take_awaiting(partner_id)
    for order_id, name in held:
        order = store.order(order_id)
        if order is not None:
            store.enqueue(job_for(store, order, name))
    store.enqueue(JobSpec(RECONCILE_STORE, (partner_id,), options=JOB_OPTIONS))
    if held:
        log.info("partner %s connected again: %d held deliveries resumed", partner_id, len(held))
    return len(held)


def tell_owner_to_reconnect(partner_id: str, status: str) -> str:
    """Email the partner's contact a fresh connect link (once per change to `status`)."""
    config, store = context()
    partner = store.partner(partner_id)
    if partner is None or platforms.connection_status(partner) != status:
        return "nothing to do"
    label = platforms.get(partner["platform"]).label
    link = connect.fresh_link(config, store, partner)
    why = {
        UNINSTALLED: f"the gateway's app was removed from your {label} store",
        "needs_reauth": f"your {label} store no longer accepts the gateway's access"
        f" ({partner.get('status_reason') or 'it needs to be approved again'})",
    }.get(status, f"your {label} store's connection is {status}")
    text = (
        f"Hello {partner['name']},\n\n"
        f"Orders and fulfillments for your store are on hold: {why}.\n\n"
        f"Connect the store again here (nothing is lost; the held work resumes at once):\n"
        f"{link['url']}\n\nThis link works once, until {link['expires_at']}.\n"
    )
    return _email_owner(
        config, store, partner, f"Reconnect your {label} store", text, "connection.reconnect_asked"
    )


def connection_event(
    partner_id: str, kind: str, emails: list[str], order_refs: list[str], at: str = ""
) -> str:
    """Act on a verified delivery about the connection: an uninstall, or a privacy request."""
    _, store = context()
    partner = store.partner(partner_id)
    if partner is None:
        return "no such partner"
    label = platforms.get(partner["platform"]).label
    if kind == UNINSTALLED_EVENT and _before(at, partner.get("connected_at")):
        return "an uninstall from before the store was connected again: ignored"
    if kind == UNINSTALLED_EVENT:
        connect.set_status(
            store, partner_id, UNINSTALLED, f"the app was removed from the {label} store"
        )
        return UNINSTALLED
    wanted_emails = {e.strip().lower() for e in emails if e}
    wanted_refs = {str(r) for r in order_refs}

    def concerned(order: Order) -> bool:
        if kind == REDACT_SHOP:
            return True
        ref = order.buyer_order_ref if order.buyer_id == partner_id else order.seller_order_ref
        email = (order.customer_email or "").strip().lower()
        return bool(email and email in wanted_emails) or ref in wanted_refs

    found = [o for o in _orders_of(store, partner_id) if concerned(o)]
    if kind == DATA_REQUEST:
        message = (
            f"{label} relayed a customer's data request: orders "
            + (", ".join(o.id for o in found) or "none")
            + " hold their name, address and email."
        )
        store.add_partner_event(partner_id, event("privacy.data_request", message, level="warning"))
        store.count("privacy_data_requests")
        return f"{len(found)} orders"
    if kind not in (REDACT_CUSTOMER, REDACT_SHOP):
        return "ignored"
    for order in found:
        store.change_order(order.id, _redact)
    what = "the shop's customers'" if kind == REDACT_SHOP else "a customer's"
    store.add_partner_event(
        partner_id,
        event("privacy.redacted", f"Erased {what} name, address and email in {len(found)} orders."),
    )
    store.count("privacy_orders_redacted", len(found))
    return f"{len(found)} orders redacted"


def _redact(order: Order) -> Change | None:
    if order.customer_email is None and order.shipping_address.get("name") in (None, REDACTED):
        return None
    address = {k: REDACTED for k in order.shipping_address if k != "country_code"}
    if "country_code" in order.shipping_address:  # kept: no person is named by a country
        address["country_code"] = order.shipping_address["country_code"]
    return Change(
        order=replace(order, shipping_address=address, customer_email=None),
        events=[event("order.redacted", "The customer's name, address and email were erased.")],
    )


def _orders_of(store: Store, partner_id: str) -> list[Order]:
    found: list[Order] = []
    cursor = None
    while True:
        page, cursor = store.list_orders(partner_id, None, ORDERS_PAGE, cursor)
        found.extend(page)
        if cursor is None:
            return found


def send_connect_link(partner_id: str, sealed_url: str, expires_at: str) -> str:
    """Email the partner's contact a connect link the operator made in the console (sealed in
    the job's arguments: Redis keeps no usable link)."""
    config, store = context()
    partner = store.partner(partner_id)
    if partner is None:
        return "no such partner"
    label = platforms.get(partner["platform"]).label
    text = (
        f"Hello {partner['name']},\n\n"
        f"Connect your {label} store to the marketplace's fulfillment gateway here:\n"
        f"{store.open_text(sealed_url)}\n\nThis link works once, until {expires_at}.\n"
    )
    return _email_owner(
        config, store, partner, f"Connect your {label} store", text, "connection.link_sent"
    )


def _email_owner(
    config: Settings, store: Store, partner: dict[str, Any], subject: str, text: str, kind: str
) -> str:
    """Email a connect link to the partner's contact, noted on its connection timeline; a
    failure is retried by RQ (the job's options)."""
    message = mail.compose(config, partner["email"], subject, text)
    try:
        where = mail.send(config, message)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"email not sent: {type(error).__name__}") from error
    store.add_partner_event(partner["id"], event(kind, f"Emailed a connect link ({where})."))
    return where


def _before(at: str, connected_at: str | None) -> bool:
    """True when a platform's event time is before the connection was made (a late delivery
    about an earlier installation); False when either time is unknown."""
    try:
        return bool(at and connected_at) and (
            datetime.fromisoformat(at) < datetime.fromisoformat(connected_at or "")
        )
    except (TypeError, ValueError):  # naive and aware, or not a time: act on it
        return False
