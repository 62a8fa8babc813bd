"""The one interface every platform adapter implements, and the values they translate to.

Adapters translate; they don't decide: the rules in gateway/orders.py decide what happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from gateway.jobs.attempts import DeliveryFailed
from gateway.orders import Fulfillment, ObservedFulfillment, Order

# One connection pool per process for every platform and callback call: a worker reuses its
# connections to a store instead of opening one per call.
http = requests.Session()


class PlatformError(DeliveryFailed):
    """A platform call that failed; `permanent` unless retrying may help (5xx, 429, time-outs)."""


@dataclass(frozen=True)
class StoreLine:
    """A line of an order as a store has it."""

    ref: str  # the store's line id
    sku: str
    quantity: int
    title: str


@dataclass(frozen=True)
class StoreOrder:
    """A buyer store's order, read through the platform's API."""

    ref: str  # the store's order id, as API.md's buyer_order_ref
    lines: list[StoreLine]
    shipping_address: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class CreatedOrder:
    """The order as created in a seller's store: its id and the id of each of our lines there."""

    ref: str
    line_refs: dict[str, str]  # our line item id -> the store's line id


@dataclass(frozen=True)
class ChangedOrder:
    """An order a store lists as changed since a cursor; with its fulfillments when the listing
    can carry them (Shopify), so reconciling it costs no further call."""

    ref: str
    updated_at: str  # the time the listing is ordered by: updated, or created for new orders
    fulfillments: list[ObservedFulfillment] | None = None


@dataclass(frozen=True)
class ChangedPage:
    """One page of changed orders and the cursor to ask for the next (None at the end)."""

    orders: list[ChangedOrder]
    next_page: str | None


class Adapter(Protocol):
    """What the jobs need from a platform, for one store connection."""

    def read_order(self, ref: str) -> StoreOrder | None:
        """A buyer store's order by its id, or None if the store has no such order."""

    def create_order(self, order: Order) -> CreatedOrder:
        """Create our order in the seller's store (or find the one an earlier attempt created)."""

    def read_fulfillments(self, ref: str) -> list[ObservedFulfillment]:
        """The fulfillments the seller's store shows now for its order `ref`."""

    def forward_fulfillment(self, order: Order, fulfillment: Fulfillment) -> str:
        """Create, or update the tracking of, the fulfillment in the buyer's store; its id there."""

    def mark_shipped(self, order: Order) -> str:
        """What the buyer's store needs once every line is fulfilled; a note for the timeline."""

    def changed_orders(self, since: str, page: str | None, created: bool = False) -> ChangedPage:
        """Orders updated (or, with `created`, created) at or after `since`, oldest first."""


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds, when it is a number."""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def refuse_status(platform: str, answer: Any) -> None:
    """Raise the PlatformError an HTTP status means: 429/5xx retryable, auth refusals permanent."""
    status = answer.status_code
    if status == 429 or status >= 500:
        raise PlatformError(
            f"{platform} answered HTTP {status}",
            retry_after=retry_after_seconds(answer.headers.get("Retry-After")),
        )
    if status in (401, 403):
        raise PlatformError(
            f"{platform} refused the credentials (HTTP {status}): check the connection",
            permanent=True,
        )
    if status >= 400:
        detail = answer.text[:300].replace("\n", " ")
        raise PlatformError(
            f"{platform} refused the call (HTTP {status}): {detail}", permanent=True
        )
