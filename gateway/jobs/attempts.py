"""One attempt at delivering something (a fulfillment, a notice, an email), with retries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from gateway.jobs import next_attempt_delay
from gateway.orders import Delivery, Order, now_iso
from gateway.store import Change, JobSpec, Store, event

log = logging.getLogger(__name__)

LOCK_SECONDS = 300


class DeliveryFailed(Exception):  # noqa: N818 (a failed attempt, an outcome not a bug)
    """An attempt that did not arrive; `retry_after` in seconds when the other side said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def attempt(
    store: Store,
    order_id: str,
    lock_name: str,
    send: Callable[[Order], tuple[str | None, str]],
    *,
    get: Callable[[Order], Delivery],
    put: Callable[[Order, Delivery], Order],
    what: str,
    retry: JobSpec,
    schedule: tuple[int, ...],
) -> str:
    """One attempt under a lock; its outcome and the next attempt are committed together.

    `send` returns the receiver's reference and a note for the timeline, or raises
    DeliveryFailed; `get`/`put` read and write the Delivery record on the order.
    Exhausted retries leave a visible `failed` state.
    """
    token = store.acquire(lock_name, LOCK_SECONDS)
    if token is None:
        return "another attempt is running"
    try:
        order = store.order(order_id)
        if get(order).state != "pending":
            return "nothing to do"
        try:
            buyer_ref, note = send(order)
            error = None
        except DeliveryFailed as failure:
            error, buyer_ref, note = failure, None, ""

        def record(current: Order) -> Change | None:
            delivery = get(current)
            if delivery.state != "pending":
                return None
            attempts = delivery.attempts + 1
            if error is None:
                done = Delivery("delivered", attempts, None, buyer_ref, now_iso())
                return Change(
                    order=put(current, done),
                    events=[event("delivery.delivered", f"{what[:1].upper()}{what[1:]}: {note}.")],
                    result="delivered",
                )
            delay = next_attempt_delay(schedule, attempts, error.retry_after)
            if delay is None:
                failed = Delivery("failed", attempts, str(error), None, now_iso())
                message = f"Gave up delivering {what} after {attempts} attempts: {error}"
                return Change(
                    order=put(current, failed),
                    events=[event("delivery.failed", message, level="error")],
                    result="failed",
                )
            pending = Delivery("pending", attempts, str(error), None, now_iso())
            message = f"Delivering {what} failed ({error}); attempt {attempts + 1} in {delay:g}s."
            return Change(
                order=put(current, pending),
                events=[event("delivery.retry", message, level="warning")],
                jobs=[replace(retry, delay=delay)],
                result="retrying",
            )

        change = store.change_order(order_id, record)
        outcome = change.result if change else "nothing to do"
        log.info("%s of order %s: %s", what, order_id, outcome)
        return outcome
    finally:
        store.release(lock_name, token)
