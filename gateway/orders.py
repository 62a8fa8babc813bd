"""The rules of the business (DESIGN.md rules 1-5): pure functions over orders, no I/O.

Every entry point (API, order-page form, webhook jobs, reconciliation) calls these; none
re-implements coverage, the shipped transition or the validation of a fulfillment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from gateway import platforms, tracking
from gateway.model import (
    CANCELLED,
    PAID,
    SHIPPED,
    UNSHIPPED,
    Correction,
    Delivery,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    ObservedFulfillment,
    Order,
    deliveries,
    new_id,
    now_iso,
)

MAX_QUANTITY = 1_000_000
MAX_TRACKING_NUMBERS = 20
MAX_URL_LENGTH = 500


# ---- coverage (rules 1 and 2) ---------------------------------------------------------------


def fulfilled_quantities(order: Order) -> dict[str, int]:
    """How many units of each line the order's fulfillments cover."""
    counts = {li.id: 0 for li in order.line_items}
    for fulfillment in order.fulfillments:
        if fulfillment.status != "active":
            continue
        for fl in fulfillment.line_items:
            counts[fl.line_item_id] += fl.quantity
    return counts


def remaining(order: Order) -> dict[str, int]:
    """Units of each line still to be fulfilled."""
    done = fulfilled_quantities(order)
    return {li.id: li.quantity - done[li.id] for li in order.line_items}


def is_covered(order: Order) -> bool:
    """True when every line's fulfilled quantity has reached its ordered quantity."""
    return all(left <= 0 for left in remaining(order).values())


def add_fulfillment(order: Order, fulfillment: Fulfillment) -> tuple[Order, bool]:
    """The order with the fulfillment attached, and whether this made it shipped.

    Callers have validated the fulfillment; this refuses anything that would overfill a line.
    """
    if fulfillment.status == "active" and not fits(order, fulfillment.line_items):
        raise ValueError(f"fulfillment {fulfillment.id} overfills its order")
    updated = replace(order, fulfillments=[*order.fulfillments, fulfillment], updated_at=now_iso())
    return _mark_shipped_if_covered(updated)


def fits(order: Order, lines: list[FulfillmentLine]) -> bool:
    """True when these quantities fit in what remains of each line."""
    left = remaining(order)
    for fl in lines:
        if fl.line_item_id not in left or not 0 < fl.quantity <= left[fl.line_item_id]:
            return False
        left[fl.line_item_id] -= fl.quantity
    return True


def _mark_shipped_if_covered(order: Order) -> tuple[Order, bool]:
    """Rule 2: shipped exactly when covered; never back."""
    became_shipped = order.status == UNSHIPPED and is_covered(order)
    if became_shipped:
        order.status = SHIPPED
        order.shipped_at = order.updated_at
        order.shipped_notice = Delivery()
    return order, became_shipped


def new_order(
    buyer_id: str,
    seller_id: str,
    buyer_order_ref: str,
    lines: list[tuple[str, str, str | None, int, str | None]],
    shipping_address: dict[str, Any] | None,
    customer_email: str | None,
) -> Order:
    """A new order, created now with fresh ids; `lines` are (buyer's SKU, seller's SKU, title
    (default: the SKU), quantity, the buyer store's line id or None)."""
    at = now_iso()
    return Order(
        id=new_id("ord"),
        buyer_id=buyer_id,
        seller_id=seller_id,
        buyer_order_ref=buyer_order_ref,
        line_items=[
            LineItem(new_id("li"), sku, seller_sku, title or sku, quantity, buyer_ref=buyer_ref)
            for sku, seller_sku, title, quantity, buyer_ref in lines
        ],
        shipping_address=shipping_address,
        customer_email=customer_email,
        created_at=at,
        updated_at=at,
    )


# Why an order's routing waits, and what its timeline says about it.
WAITING = {
    "payment": "Not paid in the buyer's store yet: it goes to the seller once it is.",
    "address": "The buyer's store gave no usable shipping address (a platform may withhold "
    "customer data from an app not approved for it): it goes to the seller once it does.",
}
ADDRESS_FIELDS = ("name", "address1", "city", "country_code")  # what a seller ships with


def missing_address(address: dict[str, Any] | None) -> list[str]:
    """The fields a seller needs that the shipping address lacks (all of them for none)."""
    address = address or {}
    return [name for name in ADDRESS_FIELDS if not str(address.get(name) or "").strip()]


def waiting_for(payment: str, address: dict[str, Any] | None) -> str | None:
    """What a buyer store's order still waits for before it may go to its seller, or None."""
    if payment != PAID:
        return "payment"
    if missing_address(address):
        return "address"
    return None


def hold(order: Order, reason: str) -> Order:
    """A new order from a buyer store whose routing waits (it is not sent to the seller) until
    the store gives what is missing: payment, or a shipping address."""
    return replace(order, routing=Delivery(state="waiting"), waiting_for=reason)


def recheck_waiting(
    order: Order, payment: str, address: dict[str, Any] | None, email: str | None = None
) -> tuple[Order, str] | None:
    """What the buyer store's order, read again, does to our order whose routing waits:
    cancelled ends it unrouted, a different gap is noted, nothing missing releases it (the
    caller routes it); (the order, a note), or None when nothing changes."""
    if order.routing.state != "waiting":
        return None
    if payment == CANCELLED:
        ended = replace(
            order, routing=Delivery(state="cancelled"), waiting_for=None, updated_at=now_iso()
        )
        return ended, "Cancelled in the buyer's store before it was sent: never sent to the seller."
    reason = waiting_for(payment, address)
    if reason == order.waiting_for:
        return None
    if reason is not None:
        return replace(order, waiting_for=reason, updated_at=now_iso()), WAITING[reason]
    released = replace(
        order,
        routing=Delivery(),
        waiting_for=None,
        shipping_address=dict(address or {}),
        customer_email=email or order.customer_email,  # withheld with the address, maybe
        updated_at=now_iso(),
    )
    return (
        released,
        "Paid, with its shipping address, in the buyer's store: passing it to the seller.",
    )


def not_released(order: Order) -> str | None:
    """Why the seller may not act on the order yet (it has not been passed to them), or None."""
    if order.routing.state == "waiting":
        return f"The order is not the seller's yet. {WAITING[order.waiting_for or 'payment']}"
    if order.routing.state == "cancelled":
        return "The buyer's store cancelled the order before it was sent to the seller."
    return None


def split_by_seller(lines: list[Any], sku_map: dict[str, tuple[str, str]]) -> dict[str, list]:
    """A buyer store's lines grouped by the seller its partnerships map each SKU to, each with
    the seller's SKU; lines whose SKU no partnership maps are the buyer's own and are left out."""
    by_seller: dict[str, list] = {}
    for line in lines:
        if line.sku in sku_map and line.quantity > 0:
            seller_id, seller_sku = sku_map[line.sku]
            by_seller.setdefault(seller_id, []).append((line, seller_sku))
    return by_seller


def reopen_failed_deliveries(order: Order) -> Order:
    """The order with each failed delivery pending again, its attempts counted afresh."""
    fresh = Order.from_doc(order.to_doc())
    for delivery in deliveries(fresh).values():
        if delivery.state == "failed":
            delivery.state, delivery.attempts, delivery.first_attempt_at = "pending", 0, None
    return fresh


def retry_failed_delivery(order: Order, fulfillment_id: str) -> Order | None:
    """The order with this fulfillment's failed delivery pending again, its attempts from 0;
    None when that delivery has not failed (only a failed delivery is retried)."""
    fresh = Order.from_doc(order.to_doc())
    fulfillment = fresh.fulfillment(fulfillment_id)
    if fulfillment is None or fulfillment.status != "active":
        return None
    delivery = fulfillment.delivery
    if delivery.state != "failed":
        return None
    fulfillment.delivery = replace(
        delivery, state="pending", attempts=0, last_error=None, retry_at=None, first_attempt_at=None
    )
    return fresh


PENDING_TOO_LONG = timedelta(minutes=10)  # a delivery pending this long after its first attempt
# How a person calls each delivery (deliveries(); the others are forward:<fulfillment id>).
DELIVERY_LABELS = {"route": "the order to the seller", "shipped": "the shipped notice"}


def needs_attention(order: Order, now: datetime, down: set[str] = frozenset()) -> list[str]:
    """Why the order needs a person (none: it doesn't): a failed delivery, a held
    fulfillment, waiting on payment (or an address), a delivery waiting on a store connection
    (`down`: the partners whose connection can't be used), a delivery pending longer than
    PENDING_TOO_LONG since its first attempt. Every delivery counts: the order to the seller,
    each fulfillment to the buyer, the shipped notice."""
    reasons: list[str] = []
    if any(f.status == "held" for f in order.fulfillments):
        reasons.append("a fulfillment is held")
    if order.routing.state == "waiting":
        reasons.append(
            f"waiting on {'an address' if order.waiting_for == 'address' else 'payment'}"
        )
    for name, delivery in deliveries(order).items():
        to = order.seller_id if name == "route" else order.buyer_id
        label = DELIVERY_LABELS.get(name, "a fulfillment to the buyer")
        if delivery.state == "failed":
            reasons.append(f"{label} failed")
        elif delivery.state == "pending" and to in down:
            reasons.append(f"{label} waits on a store connection")
        elif delivery.state == "pending" and delivery.first_attempt_at:
            first = datetime.fromisoformat(delivery.first_attempt_at)
            if now - first > PENDING_TOO_LONG:
                reasons.append(f"{label} pending for over 10 minutes")
    return list(dict.fromkeys(reasons))


def seller_skus(skus: list[str], pairs: list[dict[str, str]]) -> tuple[list[str], list[int]]:
    """The seller's SKU for each of an API order's buyer SKUs, and the indexes of those the
    partnership does not map; a partnership without a SKU map takes the buyer's SKUs as they
    are."""
    sku_map = {pair["buyer_sku"]: pair["seller_sku"] for pair in pairs}
    unmapped = [i for i, sku in enumerate(skus) if sku_map and sku not in sku_map]
    return [sku_map.get(sku, sku) for sku in skus], unmapped


# ---- who may create a manual fulfillment (rule 4) ---------------------------------------------


def manual_fulfillment_refusal(role: str, seller_platform: str) -> str | None:
    """Why this caller may not create a manual fulfillment on the order, or None if it may."""
    if role != "seller":
        return "Only the order's seller can create fulfillments."
    if platforms.get(seller_platform).fulfillments_from_store:
        return (
            f"This seller's fulfillments come from their {seller_platform} store; "
            "record them there."
        )
    return None


# ---- validation of a proposed fulfillment (rules 1 and 5) -------------------------------------


@dataclass(frozen=True)
class ProposedLine:
    quantity: int
    line_item_id: str | None = None
    sku: str | None = None  # the seller's SKU, in place of line_item_id


@dataclass(frozen=True)
class ProposedFulfillment:
    line_items: list[ProposedLine]
    carrier: str
    tracking_numbers: list[str]
    tracking_urls: list[str] = field(default_factory=list)


@dataclass
class Checked:
    """The outcome of checking a proposal: the fulfillment's values, or errors by field."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    line_items: list[FulfillmentLine] = field(default_factory=list)
    carrier: str = ""
    tracking_numbers: list[str] = field(default_factory=list)
    tracking_urls: list[str] = field(default_factory=list)

    def refuse(self, name: str, message: str) -> None:
        """Record an error against a field."""
        self.errors.setdefault(name, []).append(message)


def check_fulfillment(order: Order, proposal: ProposedFulfillment) -> Checked:
    """Check a manual fulfillment against the order: lines, quantities, carrier and tracking."""
    checked = Checked()
    _check_lines(order, proposal.line_items, checked)
    _check_tracking(proposal.carrier, proposal.tracking_numbers, proposal.tracking_urls, checked)
    return checked


def _check_lines(order: Order, lines: list[ProposedLine], checked: Checked) -> None:
    if not lines:
        checked.refuse("line_items", "Name at least one line item.")
        return
    left = remaining(order)
    named: set[str] = set()
    for index, proposed in enumerate(lines):
        where = f"line_items.{index}"
        line = _resolve_line(order, proposed, where, checked)
        if line is None:
            continue
        if line.id in named:
            checked.refuse(where, "This line item is named twice.")
            continue
        named.add(line.id)
        quantity = proposed.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            checked.refuse(f"{where}.quantity", "Must be a positive whole number.")
        elif quantity > left[line.id]:
            checked.refuse(
                f"{where}.quantity",
                f"Only {left[line.id]} of {line.quantity} remain to be fulfilled "
                f"for {line.seller_sku}.",
            )
        else:
            checked.line_items.append(FulfillmentLine(line.id, quantity))


def _resolve_line(
    order: Order, proposed: ProposedLine, where: str, checked: Checked
) -> LineItem | None:
    if proposed.line_item_id and proposed.sku:
        checked.refuse(where, "Name the line by line_item_id or by sku (one of them).")
        return None
    if proposed.line_item_id:
        line = order.line(proposed.line_item_id)
        if line is None:
            checked.refuse(f"{where}.line_item_id", "No such line item on this order.")
        return line
    if proposed.sku:
        matches = [li for li in order.line_items if li.seller_sku == proposed.sku]
        if not matches:
            checked.refuse(f"{where}.sku", "No line item of this order has that SKU.")
            return None
        if len(matches) > 1:
            checked.refuse(f"{where}.sku", "Several lines have this SKU; name line_item_id.")
            return None
        return matches[0]
    checked.refuse(where, "Name the line by line_item_id or by sku (one of them).")
    return None


def _check_tracking(
    carrier: str, numbers: list[str], tracking_urls: list[str], checked: Checked
) -> None:
    carrier_name = (carrier or "").strip()
    if not carrier_name:
        checked.refuse("carrier", "Name the carrier.")
    carrier = tracking.canonical_carrier(carrier_name) or carrier_name
    checked.carrier = carrier

    if not numbers:
        checked.refuse("tracking_numbers", "Give at least one tracking number.")
    elif len(numbers) > MAX_TRACKING_NUMBERS:
        checked.refuse("tracking_numbers", f"At most {MAX_TRACKING_NUMBERS} tracking numbers.")
    seen: set[str] = set()
    built_urls: list[str | None] = []
    for index, raw in enumerate(numbers):
        result = tracking.check_tracking_number(raw, carrier_name or None)
        if result.error:
            checked.refuse(f"tracking_numbers.{index}", result.error)
        elif result.number in seen:
            checked.refuse(f"tracking_numbers.{index}", "This tracking number is repeated.")
        seen.add(result.number)
        checked.tracking_numbers.append(result.number)
        built_urls.append(result.url)

    urls = [u.strip() for u in tracking_urls]
    for index, url in enumerate(urls):
        if not _is_web_url(url):
            checked.refuse(f"tracking_urls.{index}", "Must be an http(s) URL.")
    if urls and numbers and len(urls) != len(numbers):
        checked.refuse("tracking_urls", "Give one URL per tracking number, or none.")
    elif urls:
        checked.tracking_urls = urls
    elif numbers and carrier_name and tracking.canonical_carrier(carrier_name) is None:
        checked.refuse(
            "tracking_urls",
            f"We can't build tracking links for {carrier_name}; give one URL per tracking number.",
        )
    else:
        checked.tracking_urls = [u for u in built_urls if u]


_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d+)?$")
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")  # RFC 3986


def _is_web_url(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH or not _URL_CHARACTERS.fullmatch(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(_HOST.match(parts.netloc or ""))


def new_fulfillment(checked: Checked) -> Fulfillment:
    """A manual fulfillment built from a checked proposal."""
    at = now_iso()
    return Fulfillment(
        id=new_id("ful"),
        source="manual",
        source_ref=None,
        carrier=checked.carrier,
        tracking_numbers=list(checked.tracking_numbers),
        tracking_urls=list(checked.tracking_urls),
        line_items=list(checked.line_items),
        created_at=at,
        updated_at=at,
    )


# ---- an operator's correction of a fulfillment's tracking -------------------------------------

MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class ProposedCorrection:
    carrier: str
    tracking_numbers: list[str]
    reason: str
    tracking_urls: list[str] = field(default_factory=list)


def correction_refusal(fulfillment: Fulfillment) -> str | None:
    """Why this fulfillment can't be corrected (a conflict with its state), or None."""
    if fulfillment.status == "cancelled":
        return "This fulfillment was cancelled in the seller's store; there is nothing to correct."
    return None


NOTHING_TO_CORRECT = (
    "These are already the fulfillment's carrier, tracking numbers and links: nothing would change."
)


def check_correction(proposal: ProposedCorrection) -> Checked:
    """Check a correction: its tracking exactly as at creation (carrier formats, dummies,
    repeats, URLs), and its reason."""
    checked = Checked()
    _check_tracking(proposal.carrier, proposal.tracking_numbers, proposal.tracking_urls, checked)
    reason = (proposal.reason or "").strip()
    if not reason:
        checked.refuse("reason", "Say why the tracking is corrected.")
    elif len(reason) > MAX_REASON_LENGTH:
        checked.refuse("reason", f"At most {MAX_REASON_LENGTH} characters.")
    return checked


def changes_nothing(fulfillment: Fulfillment, checked: Checked) -> bool:
    """True when a checked correction would leave the fulfillment's tracking as it is."""
    return (
        checked.carrier == fulfillment.carrier
        and checked.tracking_numbers == fulfillment.tracking_numbers
        and checked.tracking_urls == fulfillment.tracking_urls
    )


@dataclass
class Corrected:
    """What a correction did: the order, and whether the fulfillment goes (again) to the buyer."""

    order: Order
    forward: bool
    released: bool
    became_shipped: bool
    note: str


def apply_correction(
    order: Order, fulfillment_id: str, checked: Checked, reason: str, by: str
) -> Corrected:
    """The order with the fulfillment's tracking replaced by checked values, the old ones kept
    in its `corrections`. The fulfillment keeps its id; its version goes up so the change reaches
    the buyer once, as an update; a held one whose quantities fit is released."""
    updated = Order.from_doc(order.to_doc())
    fulfillment = updated.fulfillment(fulfillment_id)
    before = {
        "carrier": fulfillment.carrier,
        "tracking_numbers": list(fulfillment.tracking_numbers),
        "tracking_urls": list(fulfillment.tracking_urls),
    }
    at = now_iso()
    fulfillment.corrections.append(Correction(at, by, reason.strip(), before))
    fulfillment.carrier = checked.carrier
    fulfillment.tracking_numbers = list(checked.tracking_numbers)
    fulfillment.tracking_urls = list(checked.tracking_urls)
    fulfillment.version += 1
    fulfillment.updated_at = updated.updated_at = at
    released = False
    if fulfillment.status == "held":
        if fits(updated, fulfillment.line_items):
            fulfillment.status, fulfillment.held_reason = "active", None
            released = True
        else:
            fulfillment.held_reason = "Its quantities are more than remain on the order."
    forward = fulfillment.status == "active"
    if forward:  # pending again, attempts from 0; what the buyer's store has stays known
        fulfillment.delivery = replace(
            fulfillment.delivery,
            state="pending",
            attempts=0,
            last_error=None,
            retry_at=None,
            first_attempt_at=None,
        )
    _, became_shipped = _mark_shipped_if_covered(updated)
    was = f"{before['carrier']} {', '.join(before['tracking_numbers'])}"
    now = f"{fulfillment.carrier} {', '.join(fulfillment.tracking_numbers)}"
    note = f"{by} corrected the tracking of fulfillment {fulfillment.id}: was {was}, now {now}."
    if released:
        note += " The fulfillment is released."
    elif fulfillment.status == "held":
        note += f" It stays held: {fulfillment.held_reason}"
    return Corrected(updated, forward, released, became_shipped, f"{note} Reason: {reason.strip()}")


# ---- fulfillments read from a seller's store (rules 1, 2, 5 and 8) ----------------------------


@dataclass
class Synced:
    """What applying a seller store's fulfillments changed."""

    order: Order
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (type, message, level)
    forward: list[str] = field(default_factory=list)  # fulfillment ids to (re)send to the buyer
    held: list[str] = field(default_factory=list)  # fulfillment ids newly held (tell the seller)
    became_shipped: bool = False

    @property
    def changed(self) -> bool:
        """True when anything is to be written."""
        return bool(self.notes or self.forward or self.held or self.became_shipped)


def apply_store_fulfillments(
    order: Order, source: str, observed: list[ObservedFulfillment]
) -> Synced:
    """Apply what the seller's store shows: new, changed, held, released and cancelled ones.

    Idempotent: the same observation twice changes nothing; an observation older than what was
    applied (a late or reordered webhook) is ignored.
    """
    synced = Synced(order=Order.from_doc(order.to_doc()))
    current = synced.order
    by_ref = {li.seller_ref: li.id for li in current.line_items if li.seller_ref}
    for seen in observed:
        lines = _map_lines(seen, by_ref, synced)
        existing = next((f for f in current.fulfillments if f.source_ref == seen.source_ref), None)
        if existing is None:
            _add_observed(current, source, seen, lines, synced)
        elif (
            seen.updated_at
            and existing.source_updated_at
            and seen.updated_at < existing.source_updated_at
        ):
            continue
        else:
            _update_observed(current, existing, seen, synced)
    if synced.changed:
        current.updated_at = now_iso()
    _, synced.became_shipped = _mark_shipped_if_covered(current)
    return synced


def _map_lines(
    seen: ObservedFulfillment, by_ref: dict[str, str], synced: Synced
) -> list[FulfillmentLine]:
    lines: dict[str, int] = {}
    for ref, quantity in seen.lines:
        if ref in by_ref and quantity > 0:
            lines[by_ref[ref]] = lines.get(by_ref[ref], 0) + quantity
    return [FulfillmentLine(line_id, quantity) for line_id, quantity in lines.items()]


def _tracking_verdict(seen: ObservedFulfillment) -> tuple[str | None, list[str], list[str]]:
    """(why it is held or None, numbers normalized, notes on numbers we could not check)."""
    numbers, unknown = [], []
    for raw in seen.tracking_numbers:
        result = tracking.check_tracking_number(raw, seen.carrier or None)
        if result.dummy:
            return f"{raw}: {result.error}", [], []
        if result.error or not result.known_format:  # a format or carrier we can't check
            unknown.append(result.number)
        numbers.append(result.number)
    if not numbers:
        return "No tracking number.", [], []
    return None, numbers, unknown


def _urls_for(seen: ObservedFulfillment, numbers: list[str]) -> list[str]:
    """The store's tracking URLs when they are web URLs (never a `javascript:` one), else
    ours built from the carrier."""
    given = [url for url in seen.tracking_urls if _is_web_url(url)]
    if given:
        return given
    built = [tracking.tracking_url(tracking.canonical_carrier(seen.carrier), n) for n in numbers]
    return [url for url in built if url]


def _add_observed(
    order: Order,
    source: str,
    seen: ObservedFulfillment,
    lines: list[FulfillmentLine],
    synced: Synced,
) -> None:
    if seen.status == "cancelled" or not lines:
        return
    held, numbers, unknown = _tracking_verdict(seen)
    at = now_iso()
    fulfillment = Fulfillment(
        id=new_id("ful"),
        source=source,
        source_ref=seen.source_ref,
        carrier=tracking.canonical_carrier(seen.carrier) or seen.carrier,
        tracking_numbers=numbers or list(seen.tracking_numbers),
        tracking_urls=_urls_for(seen, numbers),
        line_items=lines,
        created_at=at,
        updated_at=at,
        source_updated_at=seen.updated_at,
    )
    if held is None and not fits(order, lines):
        held = "Its quantities are more than remain on the order."
    if held:
        fulfillment.status, fulfillment.held_reason = "held", held
        synced.held.append(fulfillment.id)
        synced.notes.append(
            ("fulfillment.held", f"Held a fulfillment from the seller's store: {held}", "warning")
        )
    else:
        synced.forward.append(fulfillment.id)
        units = sum(fl.quantity for fl in lines)
        synced.notes.append(
            (
                "fulfillment.created",
                f"Seller's store recorded {units} unit(s) via {fulfillment.carrier} "
                f"{', '.join(numbers)}.",
                "info",
            )
        )
    _flag_unverified(unknown, synced)
    order.fulfillments.append(fulfillment)


def _flag_unverified(numbers: list[str], synced: Synced) -> None:
    """Rule 5: a synced number we can't check passes, flagged on the timeline."""
    for number in numbers:
        synced.notes.append(
            (
                "tracking.unverified",
                f"Tracking number {number} is in a format we can't check; passed on as "
                "the store gave it.",
                "warning",
            )
        )


def _update_observed(
    order: Order, existing: Fulfillment, seen: ObservedFulfillment, synced: Synced
) -> None:
    if seen.status == "cancelled":
        if existing.status != "cancelled":
            existing.status = "cancelled"
            existing.source_updated_at = seen.updated_at
            existing.updated_at = now_iso()
            synced.notes.append(
                (
                    "fulfillment.cancelled",
                    f"The seller cancelled fulfillment {existing.id} in their store.",
                    "warning",
                )
            )
        return
    held, numbers, unknown = _tracking_verdict(seen)
    if existing.status == "held":
        if held:
            return
        existing.tracking_numbers = numbers  # the correction replaces the held dummy
        existing.tracking_urls = _urls_for(seen, numbers)
        existing.carrier = tracking.canonical_carrier(seen.carrier) or seen.carrier
        existing.source_updated_at = seen.updated_at
        if not fits(order, existing.line_items):
            return
        existing.status, existing.held_reason = "active", None
        existing.updated_at = now_iso()
        synced.forward.append(existing.id)
        _flag_unverified(unknown, synced)
        synced.notes.append(
            (
                "fulfillment.released",
                f"Tracking corrected in the seller's store; fulfillment {existing.id} released.",
                "info",
            )
        )
        return
    if held or existing.status != "active":
        return
    after_correction = bool(existing.corrections)
    if after_correction:
        numbers, new_urls = _added_since_correction(existing, seen, numbers)
        if not numbers:  # the store still shows what the operator corrected: nothing new
            return
    else:
        new_urls = _urls_for(seen, numbers)
    merged = list(dict.fromkeys([*existing.tracking_numbers, *numbers]))
    carrier = tracking.canonical_carrier(seen.carrier) or seen.carrier or existing.carrier
    urls = list(dict.fromkeys([*existing.tracking_urls, *new_urls]))
    existing.source_updated_at = seen.updated_at or existing.source_updated_at
    if (
        merged == existing.tracking_numbers
        and urls == existing.tracking_urls
        and carrier == existing.carrier
    ):
        return
    _flag_unverified([n for n in unknown if n not in existing.tracking_numbers], synced)
    existing.tracking_numbers, existing.tracking_urls, existing.carrier = merged, urls, carrier
    existing.version += 1
    existing.updated_at = now_iso()
    if existing.delivery.state != "pending":
        existing.delivery = replace(existing.delivery, state="pending", attempts=0, last_error=None)
    synced.forward.append(existing.id)
    since = " after the operator's correction" if after_correction else ""
    synced.notes.append(
        (
            "fulfillment.updated",
            f"Tracking of fulfillment {existing.id} changed in the seller's store{since}: "
            f"{', '.join(merged)}.",
            "info",
        )
    )


def _added_since_correction(
    existing: Fulfillment, seen: ObservedFulfillment, numbers: list[str]
) -> tuple[list[str], list[str]]:
    """The numbers a corrected fulfillment's store shows that are new since the correction
    (neither ours now nor any the operator corrected away), and their URLs: the store still
    showing the wrong number must not bring it back, but a change made there later applies."""
    replaced = {n for c in existing.corrections for n in c.before["tracking_numbers"]}
    given = seen.tracking_urls if len(seen.tracking_urls) == len(numbers) else []
    added, urls = [], []
    for index, number in enumerate(numbers):
        if number in replaced or number in existing.tracking_numbers:
            continue
        added.append(number)
        url = given[index] if given and _is_web_url(given[index]) else None
        url = url or tracking.tracking_url(tracking.canonical_carrier(seen.carrier), number)
        if url:
            urls.append(url)
    return added, urls
