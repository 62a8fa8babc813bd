"""Fulfillments by hand: a seller's manual fulfillment (the JSON API and the order page's form)
and an operator's correction of one (the JSON API and the console's form)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gateway.api.schemas import fulfillment_json, order_json
from gateway.errors import ApiError, validation_failed
from gateway.jobs import delivery_queue, passing_on
from gateway.model import SHIPPED, Order
from gateway.orders import (
    NOTHING_TO_CORRECT,
    ProposedCorrection,
    ProposedFulfillment,
    ProposedLine,
    add_fulfillment,
    apply_correction,
    changes_nothing,
    check_correction,
    check_fulfillment,
    correction_refusal,
    manual_fulfillment_refusal,
    new_fulfillment,
    not_released,
)
from gateway.store import Change, Store, event


def refuse_unless_allowed(store: Store, order: Order, role: str | None) -> None:
    """403 fulfillment_not_allowed unless the caller is the seller and its platform takes
    fulfillments from our form (rule 4)."""
    seller = store.partner(order.seller_id)
    refusal = manual_fulfillment_refusal(role or "", seller["platform"])
    if refusal:
        raise ApiError(403, "fulfillment_not_allowed", refusal)


def create_manual_fulfillment(
    store: Store,
    order: Order,
    role: str | None,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    idempotency_ttl: int = 86400,
) -> tuple[int, dict[str, Any]]:
    """Check and record a fulfillment from the order's seller; (status, body) of the answer.

    The fulfillment, the order's new status and the forwarding jobs commit in one transaction;
    any refusal raises ApiError and stores nothing.
    """
    refuse_unless_allowed(store, order, role)
    proposal = ProposedFulfillment(
        line_items=[ProposedLine(**line) for line in payload["line_items"]],
        carrier=payload["carrier"],
        tracking_numbers=list(payload["tracking_numbers"]),
        tracking_urls=list(payload.get("tracking_urls", [])),
    )
    scope = None
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    if idempotency_key:
        scope = (
            f"{order.seller_id}:{order.id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
        )

    def decide(current: Order) -> Change:
        if scope:
            earlier = store.idempotent_answer(scope)
            if earlier is not None:
                if earlier["fingerprint"] != fingerprint:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different request.",
                    )
                # A repeat commits too (it counts itself), so with REDIS_WAIT_REPLICAS its
                # answer waits for the replicas as a first one does: the first may have been a
                # 503 whose write reached the primary alone.
                return Change(
                    result=(earlier["status"], earlier["body"]),
                    writes=[lambda pipe: store.count_in(pipe, "fulfillment_repeats")],
                )
        if current.status == SHIPPED:
            raise ApiError(409, "order_shipped", "The order is already shipped.")
        unreleased = not_released(current)
        if unreleased:
            raise ApiError(409, "order_not_released", unreleased)
        checked = check_fulfillment(current, proposal)
        if checked.errors:
            raise validation_failed(checked.errors, "The fulfillment was not recorded.")
        fulfillment = new_fulfillment(checked)
        updated, shipped = add_fulfillment(current, fulfillment)
        units = sum(fl.quantity for fl in fulfillment.line_items)
        events = [
            event(
                "fulfillment.created",
                f"Seller recorded {units} unit(s) via {fulfillment.carrier} "
                f"{', '.join(fulfillment.tracking_numbers)}.",
                fulfillment_id=fulfillment.id,
            )
        ]
        queue = delivery_queue(store, current.buyer_id)
        shipped_events, jobs = passing_on(current.id, [fulfillment.id], shipped, queue)
        events += shipped_events
        body = {
            "fulfillment": fulfillment_json(updated, fulfillment.id),
            "order": order_json(updated, role),
        }
        writes = []
        if scope:
            answer = json.dumps({"fingerprint": fingerprint, "status": 201, "body": body})
            writes.append(
                lambda pipe: pipe.set(store.idempotency_key(scope), answer, ex=idempotency_ttl)
            )
        return Change(order=updated, events=events, jobs=jobs, writes=writes, result=(201, body))

    watch = [store.idempotency_key(scope)] if scope else []
    change = store.change_order(order.id, decide, watch=watch)
    if change is None:
        raise ApiError(404, "not_found", "No such order.")
    return change.result


def correct_fulfillment(
    store: Store, order_id: str, fulfillment_id: str, payload: dict[str, Any], by: str
) -> dict[str, Any]:
    """Replace a fulfillment's tracking (an operator's correction, also after Shipped); the
    201 body `{"fulfillment", "order"}`.

    The numbers are checked as at creation; the correction, its timeline entry and the update
    to the buyer commit in one transaction; any refusal raises ApiError and stores nothing.
    """
    proposal = ProposedCorrection(
        carrier=payload.get("carrier") or "",
        tracking_numbers=list(payload.get("tracking_numbers") or []),
        reason=payload.get("reason") or "",
        tracking_urls=list(payload.get("tracking_urls") or []),
    )

    def decide(current: Order) -> Change:
        fulfillment = current.fulfillment(fulfillment_id)
        if fulfillment is None:
            raise ApiError(404, "not_found", "No such fulfillment on this order.")
        refusal = correction_refusal(fulfillment)
        if refusal:
            raise ApiError(409, "fulfillment_cancelled", refusal)
        checked = check_correction(proposal)
        if checked.errors:
            raise validation_failed(checked.errors, "The correction was not recorded.")
        if changes_nothing(fulfillment, checked):
            raise ApiError(
                422,
                "nothing_to_correct",
                NOTHING_TO_CORRECT,
                {"tracking_numbers": [NOTHING_TO_CORRECT]},
            )
        corrected = apply_correction(current, fulfillment_id, checked, proposal.reason, by)
        before = corrected.order.fulfillment(fulfillment_id).corrections[-1]
        events = [
            event(
                "fulfillment.corrected",
                corrected.note,
                fulfillment_id=fulfillment_id,
                by=by,
                reason=before.reason,
                before=before.before,
            )
        ]
        forward = [fulfillment_id] if corrected.forward else []
        queue = delivery_queue(store, current.buyer_id)
        shipped_events, jobs = passing_on(current.id, forward, corrected.became_shipped, queue)
        body = {
            "fulfillment": fulfillment_json(corrected.order, fulfillment_id),
            "order": order_json(corrected.order, "operator"),
        }
        return Change(order=corrected.order, events=events + shipped_events, jobs=jobs, result=body)

    change = store.change_order(order_id, decide)
    if change is None:
        raise ApiError(404, "not_found", "No such order.")
    return change.result
