"""One attempt at delivering something (a fulfillment, a notice, an order), with retries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from redis.exceptions import RedisError

from gateway.delivery import ConnectionDown, DeliveryFailed
from gateway.jobs import next_attempt_delay
from gateway.model import Delivery, Order, now_iso
from gateway.store import ATTEMPT_SECONDS, Change, JobSpec, Store, event

log = logging.getLogger(__name__)
# A delivery held for a store connection is tried again when the store is connected (the
# resume job), and besides once in this many seconds, in case a resume was lost.
CONNECTION_RECHECK_SECONDS = 900


@dataclass(frozen=True)
class Sent:
    """A successful attempt: the receiver's reference and a note for the timeline."""

    ref: str | None
    note: str


def attempt(
    store: Store,
    order_id: str,
    lock_name: str,
    send: Callable[[Order], Sent],
    *,
    get: Callable[[Order], Delivery],
    put: Callable[[Order, Delivery], Order],
    what: str,
    retry: JobSpec,
    schedule: tuple[int, ...],
    audience: str,
    due: Callable[[Order], bool] | None = None,
    follow_up: Callable[[Order], list[JobSpec]] | None = None,
) -> str:
    """One attempt under a lease; its outcome and the next attempt are committed together.

    `send` returns Sent or raises DeliveryFailed; `get`/`put` read and write the Delivery record
    on the order; `due` (default: the delivery is pending) is asked under the lock; `follow_up`
    names the jobs that the delivered order now calls for, committed with it. Exhausted retries
    leave a visible `failed` state. The timeline entries are the `audience`'s: the party the
    delivery goes to (store.shown_to).
    """
    with leased(store, lock_name) as token:
        if token is None:
            return "another attempt is running"
        order = store.order(order_id)
        if order is None or not (due(order) if due else get(order).state == "pending"):
            return "nothing to do"
        try:
            sent, error = send(order), None
        except DeliveryFailed as failure:
            sent, error = None, failure

        def record(current: Order) -> Change | None:
            delivery = get(current)
            if delivery.state != "pending":
                return None
            if isinstance(error, ConnectionDown):
                return _held(current, delivery, error)
            attempts = delivery.attempts + 1
            delivery = replace(delivery, first_attempt_at=delivery.first_attempt_at or now_iso())
            if sent is not None:
                done = Delivery(
                    "delivered",
                    attempts,
                    None,
                    sent.ref,
                    first_attempt_at=delivery.first_attempt_at,
                )
                updated = put(current, done)
                return Change(
                    order=updated,
                    events=[
                        event(
                            "delivery.delivered",
                            f"{what[:1].upper()}{what[1:]}: {sent.note}.",
                            audience=audience,
                        )
                    ],
                    jobs=([retry] if get(updated).state == "pending" else [])
                    + (follow_up(updated) if follow_up else []),
                    result="delivered",
                )
            delay = (
                None
                if error.permanent
                else next_attempt_delay(schedule, attempts, error.retry_after)
            )
            if delay is None:
                failed = replace(
                    delivery,
                    state="failed",
                    attempts=attempts,
                    last_error=str(error),
                    retry_at=None,
                )
                message = f"Gave up delivering {what} after {attempts} attempt(s): {error}"
                return Change(
                    order=put(current, failed),
                    events=[event("delivery.failed", message, level="error", audience=audience)],
                    result="failed",
                )
            pending = replace(
                delivery, attempts=attempts, last_error=str(error), retry_at=time.time() + delay
            )
            message = f"Delivering {what} failed ({error}); attempt {attempts + 1} in {delay:g}s."
            return Change(
                order=put(current, pending),
                events=[event("delivery.retry", message, level="warning", audience=audience)],
                jobs=[replace(retry, delay=delay)],
                result="retrying",
            )

        def _held(current: Order, delivery: Delivery, down: ConnectionDown) -> Change:
            """No attempt counted: the work waits, visibly, for the store to be connected."""
            waiting = replace(
                delivery,
                last_error=str(down),
                retry_at=time.time() + CONNECTION_RECHECK_SECONDS,
            )
            first = delivery.last_error != str(down)
            return Change(
                order=put(current, waiting),
                events=[
                    event(
                        "delivery.waiting",
                        f"{what[:1].upper()}{what[1:]} waits: {down}.",
                        level="warning",
                        audience=audience,
                    )
                ]
                if first
                else [],
                jobs=[replace(retry, delay=CONNECTION_RECHECK_SECONDS)],
                writes=[
                    lambda pipe: store.await_connection(
                        pipe, down.partner_id, current.id, _delivery_name(retry)
                    )
                ],
                result="waiting",
            )

        change = store.change_order(order_id, record)
        outcome = change.result if change else "nothing to do"
        if outcome in ("delivered", "retrying", "failed", "waiting"):
            store.count(f"deliveries_{outcome}")
        log.info("%s of order %s: %s", what, order_id, outcome)
        return outcome


@contextmanager
def leased(store: Store, name: str) -> Iterator[str | None]:
    """Hold the named lease (its token; None while another attempt holds it), renewed every few
    seconds by a thread until the attempt ends: a slow call keeps it, a killed worker loses it
    within ATTEMPT_SECONDS, and the watchdog can then enqueue the delivery again."""
    token = store.acquire(name, ATTEMPT_SECONDS)
    if token is None:
        yield None
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(ATTEMPT_SECONDS / 3):
            try:
                if not store.extend(name, token, ATTEMPT_SECONDS):
                    return  # lost (it expired and another attempt took it): nothing to keep
            except RedisError:
                pass  # the attempt itself meets the outage

    threading.Thread(target=renew, name=f"lease {name}", daemon=True).start()
    try:
        yield token
    finally:
        done.set()
        store.release(name, token)


def _delivery_name(retry: JobSpec) -> str:
    """The delivery a retry job carries, as the pending index names it (route, shipped,
    forward:<fulfillment id>)."""
    from gateway.jobs import ANNOUNCE_SHIPPED, FORWARD_FULFILLMENT

    if retry.func == FORWARD_FULFILLMENT:
        return f"forward:{retry.args[1]}"
    return "shipped" if retry.func == ANNOUNCE_SHIPPED else "route"
