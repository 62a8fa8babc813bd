"""Marshmallow schemas of the JSON API: input is loaded strictly, output is dumped."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from gateway import platforms
from gateway.model import Order
from gateway.orders import (
    MAX_QUANTITY,
    MAX_REASON_LENGTH,
    MAX_TRACKING_NUMBERS,
    MAX_URL_LENGTH,
    fulfilled_quantities,
)
from gateway.platforms.base import CONNECTION_STATUSES
from gateway.validation import StrictSchema, Text, text, web_url


class StrictInteger(fields.Integer):
    """An integer given as a JSON number: no strings, no booleans, no fractions."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _quantity() -> StrictInteger:
    return StrictInteger(
        required=True,
        strict=True,
        validate=validate.Range(
            min=1, max=MAX_QUANTITY, error="Must be a whole number from 1 to {max}."
        ),
        metadata={"description": "A positive whole number."},
    )


# ---- partners --------------------------------------------------------------------------------


def _known_platform(name: str) -> None:
    if name not in platforms.REGISTRY:
        raise ValidationError(f"Must be one of: {', '.join(platforms.names())}.")


class PartnerIn(StrictSchema):
    name = text(200, required=True)
    email = fields.Email(required=True)
    platform = fields.String(
        required=True,
        validate=_known_platform,
        metadata={"description": "A registered platform (the enum in /openapi.json)."},
    )
    connection = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Per platform; see API.md. Left out (or null) for a store that "
            "connects by its platform's install flow: the partner is then not_connected."
        },
    )
    callback_url = web_url(allow_none=True, load_default=None)

    @validates_schema
    def _connection_fits_platform(self, data: dict[str, Any], **kwargs: Any) -> None:
        platform = platforms.REGISTRY.get(data.get("platform", ""))
        if platform is None:
            return
        if not data.get("connection") and platform.install_schema is not None:
            data["connection"] = {}  # connected later, by the install flow
            return
        try:
            data["connection"] = platform.connection_schema().load(data.get("connection") or {})
        except ValidationError as error:
            raise ValidationError({"connection": error.messages}) from error
        if data.get("callback_url") and not platform.callbacks:
            raise ValidationError({"callback_url": ["Only buyers with no platform get callbacks."]})


class WebhookOut(Schema):
    topic = fields.String(metadata={"description": "As the platform names it in deliveries."})
    state = fields.String(metadata={"enum": ["active", "missing", "disabled"]})


class PartnerOut(Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    platform = fields.String()
    connection = fields.Method("_public_connection")
    callback_url = fields.String(allow_none=True)
    created_at = fields.String()
    connection_status = fields.Function(
        platforms.connection_status, metadata={"enum": list(CONNECTION_STATUSES)}
    )
    connection_reason = fields.Function(
        lambda p: p.get("status_reason") or None,
        metadata={"description": "Why a connection needs its owner, when it does."},
    )
    webhooks = fields.Function(
        lambda p: p.get("webhooks") or [],
        metadata={"description": "The store's hooks, as last checked."},
    )
    token_expires_at = fields.Function(
        lambda p: (p.get("connection") or {}).get("token_expires_at"),
        metadata={"description": "When the store's access token expires (refreshed before)."},
    )
    last_webhook_at = fields.String(allow_none=True)
    connected_at = fields.String(allow_none=True)

    def _public_connection(self, partner: dict[str, Any]) -> dict[str, Any]:
        schema = platforms.get(partner["platform"]).connection_schema()
        return schema.dump(partner["connection"] or {})


class PartnerCreated(PartnerOut):
    api_key = fields.String(metadata={"description": "Shown this once."})
    event_signing_secret = fields.String(metadata={"description": "whsec_...; shown this once."})
    webhook_headers = fields.Method(
        "_webhook_headers",
        metadata={
            "description": "Headers the store's webhooks must carry, where the platform has "
            "them (a header with a token of the connection's own); shown this once."
        },
    )

    def _webhook_headers(self, partner: dict[str, Any]) -> dict[str, str]:
        if not partner["connection"]:  # connected later: the gateway makes its own hooks
            return {}
        return platforms.get(partner["platform"]).webhook_headers(partner["connection"])


class SkuPair(StrictSchema):
    buyer_sku = text(100, required=True)
    seller_sku = text(100, required=True)


class PartnershipIn(StrictSchema):
    buyer_id = text(64, required=True)
    seller_id = text(64, required=True)
    skus = fields.List(
        fields.Nested(SkuPair), load_default=list, validate=validate.Length(max=10_000)
    )

    @validates_schema
    def _one_seller_sku_per_buyer_sku(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[str] = set()
        for index, pair in enumerate(data.get("skus", [])):
            if pair["buyer_sku"] in seen:
                raise ValidationError({f"skus.{index}.buyer_sku": ["Mapped twice."]})
            seen.add(pair["buyer_sku"])


class PartnershipOut(Schema):
    buyer_id = fields.String()
    seller_id = fields.String()
    skus = fields.List(fields.Nested(SkuPair))
    created_at = fields.String()
    updated_at = fields.String()


# ---- orders ----------------------------------------------------------------------------------


class AddressIn(StrictSchema):
    name = text(200, required=True)
    company = Text(validate=validate.Length(max=200))
    address1 = text(200, required=True)
    address2 = Text(validate=validate.Length(max=200))
    city = text(100, required=True)
    province = Text(validate=validate.Length(max=100))
    zip = Text(validate=validate.Length(max=20))
    country_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Two capital letters (ISO 3166-1)."),
    )
    phone = Text(validate=validate.Length(max=40))


class OrderLineIn(StrictSchema):
    sku = text(100, required=True)
    quantity = _quantity()
    title = Text(validate=validate.Length(max=255))


class OrderIn(StrictSchema):
    seller_id = text(64, required=True)
    buyer_order_ref = fields.String(
        required=True,
        validate=validate.Regexp(r"^[\x21-\x7e]{1,64}$", error="1 to 64 visible ASCII characters."),
    )
    line_items = fields.List(
        fields.Nested(OrderLineIn), required=True, validate=validate.Length(min=1, max=250)
    )
    shipping_address = fields.Nested(AddressIn, required=True)
    customer_email = fields.Email(allow_none=True, load_default=None)


class DeliveryOut(Schema):
    state = fields.String(metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    buyer_ref = fields.String(allow_none=True)


class FulfillmentLineOut(Schema):
    line_item_id = fields.String()
    quantity = fields.Integer()


class TrackingOut(Schema):
    carrier = fields.String()
    tracking_numbers = fields.List(fields.String())
    tracking_urls = fields.List(fields.String())


class CorrectionOut(Schema):
    at = fields.String()
    by = fields.String(metadata={"description": "The operator's email, or api (operator key)."})
    reason = fields.String()
    before = fields.Nested(TrackingOut, metadata={"description": "The tracking as it was."})


class FulfillmentOut(Schema):
    id = fields.String()
    source = fields.String(
        metadata={"description": "manual, or the seller's platform its store synced it from."}
    )
    source_ref = fields.String(allow_none=True)
    carrier = fields.String()
    tracking_numbers = fields.List(fields.String())
    tracking_urls = fields.List(fields.String())
    line_items = fields.List(fields.Nested(FulfillmentLineOut))
    created_at = fields.String()
    updated_at = fields.String()
    delivery = fields.Nested(DeliveryOut)
    status = fields.String(
        metadata={
            "enum": ["active", "held", "cancelled"],
            "description": "held: a dummy tracking number from the seller's store, not counted "
            "until corrected; cancelled: cancelled in the seller's store.",
        }
    )
    held_reason = fields.String(allow_none=True)
    corrections = fields.List(
        fields.Nested(CorrectionOut),
        metadata={"description": "The operator's corrections of its tracking, oldest first."},
    )


class LineItemOut(Schema):
    id = fields.String()
    sku = fields.String()
    seller_sku = fields.String()
    title = fields.String()
    quantity = fields.Integer()
    fulfilled_quantity = fields.Integer()


class OrderOut(Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": ["unshipped", "shipped"]})
    buyer_id = fields.String()
    seller_id = fields.String()
    buyer_order_ref = fields.String()
    seller_order_ref = fields.String(allow_none=True)
    line_items = fields.List(fields.Nested(LineItemOut))
    fulfillments = fields.List(fields.Nested(FulfillmentOut))
    shipping_address = fields.Dict()
    customer_email = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    shipped_at = fields.String(allow_none=True)
    waiting_for = fields.String(
        allow_none=True,
        metadata={
            "enum": ["payment", "address", None],
            "description": "Why the order has not gone to the seller yet (payment: the buyer's "
            "store has not been paid; address: it gave no usable shipping address); null once "
            "it has, or when it never waited.",
        },
    )


class OrderPage(Schema):
    orders = fields.List(fields.Nested(OrderOut))
    next_cursor = fields.String(allow_none=True)


def order_json(order: Order, role: str | None = None) -> dict[str, Any]:
    """The public JSON of an order, each line with its fulfilled quantity. To its seller,
    deliveries to the buyer show their state, not their errors (those are the buyer's)."""
    done = fulfilled_quantities(order)
    lines = [{**vars(li), "fulfilled_quantity": done[li.id]} for li in order.line_items]
    shown = OrderOut().dump({**vars(order), "line_items": lines})
    if role == "seller":
        for fulfillment in shown["fulfillments"]:
            fulfillment["delivery"]["last_error"] = None
    return shown


def fulfillment_json(order: Order, fulfillment_id: str) -> dict[str, Any]:
    """The public JSON of one fulfillment of the order."""
    return FulfillmentOut().dump(order.fulfillment(fulfillment_id))


class ListQuery(StrictSchema):
    status = fields.String(validate=validate.OneOf(["unshipped", "shipped"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = Text(validate=validate.Length(max=200))


# ---- fulfillments ----------------------------------------------------------------------------


class FulfillmentLineIn(StrictSchema):
    line_item_id = text(64)
    sku = text(100, metadata={"description": "The seller's SKU, in place of line_item_id."})
    quantity = _quantity()

    @validates_schema
    def _one_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("line_item_id" in data) == ("sku" in data):
            raise ValidationError("Name the line by line_item_id or by sku (one of them).")


class TrackingIn(StrictSchema):
    """The carrier and tracking a fulfillment carries: at its creation and in a correction."""

    carrier = Text(required=True, validate=validate.Length(max=100))
    tracking_numbers = fields.List(
        Text(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(max=MAX_TRACKING_NUMBERS),
    )
    tracking_urls = fields.List(
        Text(validate=validate.Length(max=MAX_URL_LENGTH)),
        load_default=list,
        metadata={"description": "One per tracking number; built from the carrier when empty."},
    )

    @post_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["carrier"] = data["carrier"].strip()
        return data


class FulfillmentIn(TrackingIn):
    line_items = fields.List(
        fields.Nested(FulfillmentLineIn), required=True, validate=validate.Length(max=250)
    )


class CorrectionIn(TrackingIn):
    reason = Text(
        required=True,
        validate=validate.Length(max=MAX_REASON_LENGTH),
        metadata={"description": "Why the tracking is corrected: 1 to 500 characters."},
    )

    @post_load
    def _strip_reason(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["reason"] = data["reason"].strip()
        return data


class FulfillmentCreated(Schema):
    fulfillment = fields.Nested(FulfillmentOut)
    order = fields.Nested(OrderOut)


class LinkIn(StrictSchema):
    role = fields.String(validate=validate.OneOf(["buyer", "seller"]))


class LinkOut(Schema):
    url = fields.String()
    role = fields.String()
    expires_at = fields.String()


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested messages as {"line_items.0.quantity": ["..."]}."""
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "_schema": list(messages)}
        flat: dict[str, list[str]] = {}
        for item in messages:
            flat.update(flatten(item, prefix))
        return flat
    if isinstance(messages, dict):
        flat = {}
        for name, inner in messages.items():
            if name == "_schema" and prefix:
                part = prefix
            else:
                part = f"{prefix}.{name}" if prefix else str(name)
            for field_name, texts in flatten(inner, part).items():
                flat.setdefault(field_name, []).extend(texts)
        return flat
    return {prefix or "_schema": [str(messages)]}
