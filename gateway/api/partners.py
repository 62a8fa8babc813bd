"""Partners and partnerships (operator)."""

from __future__ import annotations

import base64
import secrets

from flask import jsonify, request
from marshmallow import fields

from gateway import connect, outbound, platforms
from gateway.api import api, read_json
from gateway.api.auth import authenticate, require_operator
from gateway.api.schemas import PartnerCreated, PartnerIn, PartnerOut, PartnershipIn, PartnershipOut
from gateway.errors import ApiError, validation_failed
from gateway.jobs import REGISTER_WEBHOOKS, upkeep
from gateway.model import new_id, now_iso
from gateway.platforms.base import CONNECTED, NOT_CONNECTED
from gateway.runtime import settings, store


def refuse_unsafe_urls(data: dict) -> None:
    """422 naming each URL the gateway would call (callback_url, the connection's URL fields)
    that is http:// in production or leads to a private address."""
    urls = url_fields(platforms.get(data["platform"]).connection_schema, data["connection"])
    refuse_unsafe(
        {
            **{f"connection.{k}": v for k, v in urls.items()},
            "callback_url": data.get("callback_url"),
        }
    )


def url_fields(schema: type, values: dict) -> dict:
    """The values of a schema's URL fields."""
    return {n: values.get(n) for n, f in schema().fields.items() if isinstance(f, fields.Url)}


def refuse_unsafe(urls: dict) -> None:
    """422 naming each of these URLs that is http:// in production or leads to a private
    address (each is called by the gateway later)."""
    errors = outbound.unsafe_urls(urls, settings())
    if errors:
        raise validation_failed(errors)


def store_lookups(platform: str, connection: dict) -> list[str]:
    """The identities by which webhooks find this partner's store."""
    identity = platforms.get(platform).store_identity(connection)
    return [f"{platform}:{identity}"] if identity else []


def create_partner(data: dict) -> dict:
    """Store a new partner; the record plus its API key and signing secret (shown once)."""
    refuse_unsafe_urls(data)
    api_key = "gk_" + secrets.token_urlsafe(32)
    partner = {
        "id": new_id("ptr"),
        "name": data["name"],
        "email": data["email"],
        "platform": data["platform"],
        "connection": data["connection"],
        "callback_url": data.get("callback_url"),
        "event_signing_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "created_at": now_iso(),
    }
    declared = platforms.get(data["platform"])
    if declared.has_store:
        partner["connection_status"] = CONNECTED if data["connection"] else NOT_CONNECTED
        partner["connected_at"] = partner["created_at"] if data["connection"] else None
    if not store().add_partner(
        partner,
        api_key,
        store_lookups(data["platform"], data["connection"]),
        platforms.get(data["platform"]).has_store,
    ):
        raise ApiError(409, "store_taken", "Another partner is already connected to this store.")
    register_webhooks(partner)
    return {**partner, "api_key": api_key}


def register_webhooks(partner: dict) -> None:
    """Have the gateway make (or check) the hooks of a connected store."""
    if (
        platforms.get(partner["platform"]).topics
        and platforms.connection_status(partner) == CONNECTED
    ):
        store().enqueue(upkeep(REGISTER_WEBHOOKS, partner["id"]))


@api.post("/partners")
def post_partner():
    """Create a partner (operator)."""
    require_operator(authenticate())
    created = create_partner(read_json(PartnerIn()))
    return jsonify(PartnerCreated().dump(created)), 201


@api.get("/partners/<partner_id>")
def get_partner(partner_id: str):
    """A partner, to the operator or to itself."""
    caller = authenticate()
    partner = store().partner(partner_id)
    if partner is None or not (caller.is_operator or caller.partner_id == partner_id):
        raise ApiError(404, "not_found", "No such partner.")
    return jsonify(PartnerOut().dump(partner_view(partner)))


def partner_view(partner: dict) -> dict:
    """A partner with its connection's health as stored apart (the last webhook's time)."""
    return {**partner, "last_webhook_at": store().last_webhook_at(partner["id"])}


@api.post("/partners/<partner_id>/connect")
def post_connect_link(partner_id: str):
    """A signed, single-use link for the store's owner to connect it (operator, or the
    partner itself); the body may name the store (API.md "Store connections")."""
    caller = authenticate()
    partner = store().partner(partner_id)
    if partner is None or not (caller.is_operator or caller.partner_id == partner_id):
        raise ApiError(404, "not_found", "No such partner.")
    declared = platforms.get(partner["platform"])
    if declared.install_schema is None:
        raise ApiError(409, "no_store", f"A partner on {declared.label} has no store to connect.")
    # The body is optional: without it the connect page asks the owner for the store.
    hints = read_json(declared.install_schema()) if request.get_data() else {}
    schema_fields = declared.install_schema().fields
    reserved = [n for n in hints if schema_fields[n].metadata.get("operator_only")]
    if reserved and not caller.is_operator:
        raise ApiError(
            403, "operator_only", f"Only the operator may set {', '.join(sorted(reserved))}."
        )
    refuse_unsafe(url_fields(declared.install_schema, hints))
    try:
        link = connect.create_link(settings(), store(), partner, hints, caller.is_operator)
    except connect.StoreTaken as taken:
        raise ApiError(409, "store_taken", str(taken)) from None
    return jsonify(link), 201


def save_partnership(data: dict) -> tuple[dict, bool]:
    """Create or replace a partnership; (it, whether it is new)."""
    errors: dict[str, list[str]] = {}
    for role in ("buyer", "seller"):
        if store().partner(data[f"{role}_id"]) is None:
            errors[f"{role}_id"] = ["No such partner."]
    if data["buyer_id"] == data["seller_id"]:
        errors["seller_id"] = ["A partner cannot supply itself."]
    if errors:
        raise validation_failed(errors)
    earlier = store().partnership(data["buyer_id"], data["seller_id"])
    at = now_iso()
    partnership = {**data, "created_at": earlier["created_at"] if earlier else at, "updated_at": at}
    taken = store().save_partnership(partnership)
    if taken:
        raise validation_failed(
            {"skus": [f"{sku} is already mapped to another seller of this buyer." for sku in taken]}
        )
    if earlier is None:  # a new role for either partner: its store's hooks for that role
        for partner_id in (data["buyer_id"], data["seller_id"]):
            register_webhooks(store().partner(partner_id))
    return partnership, earlier is None


@api.post("/partnerships")
def post_partnership():
    """Create or replace a buyer-seller partnership and its SKU map (operator)."""
    require_operator(authenticate())
    partnership, created = save_partnership(read_json(PartnershipIn()))
    return jsonify(PartnershipOut().dump(partnership)), 201 if created else 200
