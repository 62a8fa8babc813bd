"""The document model: an order, its lines, fulfillments and deliveries, as the store keeps them.

Values only: the rules that change them live in gateway/orders.py.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

UNSHIPPED = "unshipped"
SHIPPED = "shipped"
# Where a buyer store's order stands with payment (adapters translate their stores' words).
PAID, UNPAID, CANCELLED = "paid", "unpaid", "cancelled"


def iso_utc(moment: datetime, timespec: str = "seconds") -> str:
    """A time as ISO-8601 UTC ending in Z, as our documents, links and cursors hold times."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds."""
    return iso_utc(datetime.now(UTC), "milliseconds")


def new_id(prefix: str) -> str:
    """An opaque, unguessable id such as `ord_4fK...`."""
    return f"{prefix}_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"


@dataclass
class LineItem:
    id: str
    sku: str
    seller_sku: str
    title: str
    quantity: int
    buyer_ref: str | None = None  # the line's id in the buyer's store
    seller_ref: str | None = None  # the line's id in the seller's store


@dataclass
class FulfillmentLine:
    line_item_id: str
    quantity: int


@dataclass
class Delivery:
    """How a fulfillment (or the shipped notice) travels to the buyer."""

    # pending | delivered | failed; routing may also be waiting (held: see Order.waiting_for)
    # or cancelled (the buyer's store cancelled the order before it was routed: never sent).
    state: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    buyer_ref: str | None = None
    retry_at: float | None = None  # when the next attempt is due (epoch seconds)
    delivered_version: int = 0  # the fulfillment's tracking version the buyer has
    # When its first attempt was made (ISO time): "pending for long" counts from it.
    first_attempt_at: str | None = None


@dataclass
class Correction:
    """An operator's correction of a fulfillment's tracking: who, when, why, what it was."""

    at: str
    by: str  # the operator's email, or "api" for the operator's key
    reason: str
    before: dict[str, Any]  # carrier, tracking_numbers, tracking_urls as they were


@dataclass
class Fulfillment:
    id: str
    source: str  # manual, or the platform of the seller's store it was synced from
    carrier: str
    tracking_numbers: list[str]
    tracking_urls: list[str]
    line_items: list[FulfillmentLine]
    created_at: str
    updated_at: str
    source_ref: str | None = None
    delivery: Delivery = field(default_factory=Delivery)
    # active counts toward coverage; held (a dummy tracking number from a seller store) and
    # cancelled (in the seller's store) do not.
    status: str = "active"
    held_reason: str | None = None
    version: int = 1  # +1 at each tracking change, so each change reaches the buyer once
    source_updated_at: str | None = None  # the seller store's updatedAt we last applied
    corrections: list[Correction] = field(default_factory=list)  # oldest first


@dataclass
class Order:
    id: str
    buyer_id: str
    seller_id: str
    buyer_order_ref: str
    line_items: list[LineItem]
    created_at: str
    updated_at: str
    status: str = UNSHIPPED
    seller_order_ref: str | None = None
    fulfillments: list[Fulfillment] = field(default_factory=list)
    shipping_address: dict[str, Any] = field(default_factory=dict)
    customer_email: str | None = None
    shipped_at: str | None = None
    # Routing to the seller (created in their store, or emailed).
    routing: Delivery = field(default_factory=Delivery)
    # While routing waits: what for ("payment": the buyer's store has not been paid yet).
    waiting_for: str | None = None
    # The `order.shipped` notice to the buyer, once shipped.
    shipped_notice: Delivery | None = None
    # The seller store's updatedAt of its order when we last applied its fulfillments.
    seller_updated_at: str | None = None

    def to_doc(self) -> dict[str, Any]:
        """The JSON document kept in the store."""
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Order:
        """Rebuild an order from its stored document."""
        doc = dict(doc)
        doc["line_items"] = [LineItem(**li) for li in doc["line_items"]]
        doc["fulfillments"] = [
            Fulfillment(
                **{
                    **f,
                    "line_items": [FulfillmentLine(**fl) for fl in f["line_items"]],
                    "delivery": Delivery(**f["delivery"]),
                    "corrections": [Correction(**c) for c in f.get("corrections", ())],
                }
            )
            for f in doc["fulfillments"]
        ]
        doc["routing"] = Delivery(**doc["routing"])
        if doc.get("shipped_notice") is not None:
            doc["shipped_notice"] = Delivery(**doc["shipped_notice"])
        return cls(**doc)

    def line(self, line_item_id: str) -> LineItem | None:
        """The line with this id, if the order has it."""
        return next((li for li in self.line_items if li.id == line_item_id), None)

    def fulfillment(self, fulfillment_id: str) -> Fulfillment | None:
        """The fulfillment with this id, if the order has it."""
        return next((f for f in self.fulfillments if f.id == fulfillment_id), None)


def deliveries(order: Order) -> dict[str, Delivery]:
    """Every outbound delivery of the order by name: routing, each fulfillment, shipped notice."""
    named = {"route": order.routing}
    named.update(
        {f"forward:{f.id}": f.delivery for f in order.fulfillments if f.status == "active"}
    )
    if order.shipped_notice is not None:
        named["shipped"] = order.shipped_notice
    return named


@dataclass(frozen=True)
class ObservedFulfillment:
    """A fulfillment as the seller's store shows it now, translated by the adapter."""

    source_ref: str
    status: str  # "cancelled" when the store cancelled it (adapters translate), else the store's
    carrier: str
    tracking_numbers: list[str]
    tracking_urls: list[str]
    lines: list[tuple[str, int]]  # (seller store line id, quantity)
    updated_at: str | None = None
