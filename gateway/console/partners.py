"""Console: partners with their store connection's health, and a fresh connect link."""

from __future__ import annotations

from flask import abort, render_template

from gateway import connect, platforms
from gateway.console import admin
from gateway.jobs import SEND_CONNECT_LINK, upkeep
from gateway.pages.portal import health
from gateway.runtime import settings, store


@admin.get("/partners")
def partners():
    """Every partner, by name, with its roles and its connection's health."""
    current = store()
    rows = []
    for partner_id in current.partner_ids():
        partner = current.partner(partner_id)
        if partner is not None:
            rows.append({**health(partner), "roles": sorted(current.roles(partner_id))})
    rows.sort(key=lambda row: (row["name"].lower(), row["id"]))
    return render_template("console_partners.html", partners=rows)


def _partner_page(partner: dict, link: dict | None = None):
    timeline = list(reversed(store().partner_timeline(partner["id"])))
    return render_template(
        "console_partner.html",
        p=health(partner),
        roles=sorted(store().roles(partner["id"])),
        timeline=timeline,
        link=link,
    )


@admin.get("/partners/<partner_id>")
def partner(partner_id: str):
    """One partner: its connection's health and timeline."""
    found = store().partner(partner_id)
    if found is None:
        abort(404)
    return _partner_page(found)


@admin.post("/partners/<partner_id>/connect-link")
def connect_link(partner_id: str):
    """A fresh connect link for the partner's store: shown here, and emailed to its contact."""
    found = store().partner(partner_id)
    if found is None:
        abort(404)
    if platforms.get(found["platform"]).install_schema is None:
        abort(409, "This partner's platform has no install flow: no connect link.")
    link = connect.fresh_link(settings(), store(), found)
    sealed = store().seal_text(link["url"])
    store().enqueue(upkeep(SEND_CONNECT_LINK, partner_id, sealed, link["expires_at"]))
    return _partner_page(found, link)
