"""What the Shopify, BigCommerce and WooCommerce simulators share, none of it platform-specific.

A settable clock, the call log, injected failures, the webhook dispatcher with its failure modes
(drop, duplicate, delay, reorder), a threaded local server, `StoreSimulator` (the base the three
simulators build on) and the `/_sim/` control endpoints they have in common.
"""

from __future__ import annotations

import heapq
import itertools
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Self, TypeVar

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

WEBHOOK_MODES = ("normal", "drop", "duplicate", "delay", "reorder")


def as_utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive means UTC) or an ISO-8601 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Clock:
    """A settable UTC clock: real time plus an offset, frozen at a set instant, or read from a
    callable. Whole seconds, as the platforms' timestamps are."""

    def __init__(self) -> None:
        """Start on real time."""
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)
        self._source: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        """The simulated current time (aware, UTC, whole seconds)."""
        with self._lock:
            if self._source is not None:
                current = as_utc(self._source())
            elif self._frozen is not None:
                current = self._frozen
            else:
                current = datetime.now(UTC) + self._offset
        return current.replace(microsecond=0)

    @property
    def is_real(self) -> bool:
        """True when "now" is the wall clock (possibly shifted)."""
        return self._frozen is None and self._source is None

    def set(self, when: datetime | str) -> None:
        """Freeze the clock at `when` (naive means UTC) until `advance`, `resume` or `reset`."""
        with self._lock:
            self._frozen = as_utc(when)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative) by `seconds`."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def resume(self) -> None:
        """Let a frozen clock tick again from where it stands."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None

    def reset(self) -> None:
        """Back to real time, with no offset and no source."""
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)
            self._source = None

    def use(self, source: Callable[[], datetime] | None) -> None:
        """Read "now" from a callable (naive means UTC), or stop doing so with None."""
        with self._lock:
            self._source = source

    def freeze(self, at: datetime | str | None = None) -> None:
        """Stop the clock at `at` (default: now); the Shopify simulator's name for `set`."""
        self.set(at if at is not None else self.now())

    def unfreeze(self) -> None:
        """Back to real time; the Shopify simulator's name for `reset`."""
        self.reset()

    def describe(self) -> dict[str, Any]:
        """The clock's state as JSON-able values."""
        return {"now": self.now().isoformat(), "frozen": self._frozen is not None}


class CallLog:
    """Every API request a simulator answered (control endpoints excluded)."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        """Record one answered request."""
        with self._lock:
            self._calls.append(entry)

    def select(
        self,
        store: str | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> list[dict[str, Any]]:
        """The recorded REST calls, oldest first, optionally filtered."""
        return self.where(
            lambda c: (
                (store is None or c["store"] == store)
                and (path_contains is None or path_contains in c["path"])
                and (method is None or c["method"] == method.upper())
            )
        )

    def where(self, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The recorded calls `keep` accepts, oldest first."""
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls if keep(c)]

    def reset(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()


@dataclass
class FailRule:
    """The next `remaining` API requests (of `store`, or any) answer `status`."""

    remaining: int
    status: int
    retry_after: float | None = None
    store: str | None = None


class FailureSwitch:
    """Injected API failures, consumed one request at a time."""

    def __init__(self) -> None:
        """No failures armed."""
        self._lock = threading.Lock()
        self._rules: list[FailRule] = []

    def arm(self, count: int, status: int, retry_after: float | None, store: str | None) -> None:
        """Make the next `count` requests answer `status`."""
        with self._lock:
            self._rules.append(FailRule(count, status, retry_after, store))

    def take(self, store: str | None) -> FailRule | None:
        """The rule that applies to this request, if any, consuming one use of it."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and (rule.store is None or rule.store == store):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()


@dataclass(frozen=True)
class WebhookMode:
    """A failure mode: `delay` waits `seconds` (0: until flush); `reorder` holds `hold` (0: all)."""

    name: str = "normal"
    seconds: float = 0.0
    hold: int = 0

    def __post_init__(self) -> None:
        """Refuse unknown modes."""
        if self.name not in WEBHOOK_MODES:
            raise ValueError(f"webhook mode must be one of {', '.join(WEBHOOK_MODES)}")


class WebhookJob:
    """One message for the dispatcher; each platform subclasses it."""

    copies = 1  # 2 in duplicate mode: the same request is sent twice

    def run(self, dispatcher: WebhookDispatcher) -> None:
        """Deliver now (called on the dispatcher thread)."""
        raise NotImplementedError

    def discard(self) -> None:
        """Called instead of `run` when the message is dropped."""


class WebhookDispatcher:
    """Delivers webhook jobs from one background thread, applying the failure modes.

    Modes: `normal` sends each message once, in order; `drop` loses it; `duplicate` sends it
    twice; `delay` sends it after `seconds`, or holds it until `flush()` when seconds is 0;
    `reorder` holds messages and releases them newest first, when `hold` of them are held or on
    `flush()`. Retries that a platform schedules bypass the mode.
    """

    def __init__(self) -> None:
        """Idle until `start`."""
        self.default_mode = WebhookMode()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, WebhookJob]] = []
        self._held: list[tuple[WebhookJob, bool]] = []
        self._seq = itertools.count()
        self._running_job = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread; queued messages are abandoned."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_mode(self, mode: str | WebhookMode) -> None:
        """Switch the default failure mode (see the class docstring)."""
        self.default_mode = mode if isinstance(mode, WebhookMode) else WebhookMode(mode)

    def submit(self, job: WebhookJob, mode: WebhookMode | None = None) -> None:
        """Queue a new message according to `mode` (default: the dispatcher's)."""
        mode = mode or self.default_mode
        if mode.name == "drop":
            job.discard()
            return
        if mode.name == "delay" and mode.seconds > 0:
            self.schedule(job, mode.seconds)
            return
        if mode.name in ("delay", "reorder"):
            with self._cond:
                self._held.append((job, mode.name == "reorder"))
                release = mode.name == "reorder" and 0 < mode.hold <= len(self._held)
            if release:
                self.flush(reverse=True)
            return
        if mode.name == "duplicate":
            job.copies = 2
        self.schedule(job, 0.0)

    def schedule(self, job: WebhookJob, delay: float) -> None:
        """Run `job` after `delay` seconds (used for retries too)."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
            self._cond.notify_all()

    def held(self) -> int:
        """How many messages `delay`/`reorder` mode is holding."""
        with self._cond:
            return len(self._held)

    def flush(self, reverse: bool | None = None) -> int:
        """Release the held messages (newest first if any was held by reorder); how many."""
        with self._cond:
            held, self._held = self._held, []
        if reverse is None:
            reverse = any(by_reorder for _, by_reorder in held)
        jobs = [job for job, _ in held]
        for job in reversed(jobs) if reverse else jobs:
            self.schedule(job, 0.0)
        return len(jobs)

    def pending(self) -> int:
        """Messages queued or scheduled (retries included), not counting held ones."""
        with self._cond:
            return len(self._heap) + (1 if self._running_job else 0)

    def wait_idle(self, timeout: float = 5.0, include_scheduled: bool = False) -> bool:
        """Wait until nothing is due (or, with include_scheduled, nothing is queued at all)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                due = [e for e in self._heap if include_scheduled or e[0] <= now + 0.001]
                if not due and not self._running_job:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(min(0.05, deadline - now))

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else 0.5
                    self._cond.wait(max(0.001, min(wait, 0.5)))
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._running_job = True
            try:
                job.run(self)
            except Exception:  # a broken job must not kill the dispatcher
                pass
            finally:
                with self._cond:
                    self._running_job = False
                    self._cond.notify_all()


def send_http(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    follow_redirects: bool = False,
) -> tuple[int | None, str | None, float]:
    """POST a webhook; (status or None, error text or None, seconds taken)."""
    started = time.monotonic()
    try:
        answer = session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=follow_redirects
        )
        return answer.status_code, None, time.monotonic() - started
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}", time.monotonic() - started


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing per request."""


class SimServer:
    """A threaded werkzeug server on a free loopback port, run from a daemon thread."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> None:
        """Remember what to serve; nothing listens until `start`."""
        self._app = app
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Listen and serve; the base URL."""
        self._server = make_server(
            self._host, self._port, self._app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sim-server",
            daemon=True,
        )
        self._thread.start()
        return f"http://{self._host}:{self._server.server_port}"

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(
        json.dumps(data), status=status, headers=headers or {}, mimetype="application/json"
    )


def parse_json_body(request: Request) -> Any:
    """The request body as JSON; ValueError when it is not."""
    raw = request.get_data()
    if not raw:
        return {}
    return json.loads(raw)


def wait_forever(stop: Callable[[], None]) -> None:
    """Block until SIGINT/SIGTERM, then call `stop`."""
    done = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not done.wait(0.5):
        pass
    stop()


StoreT = TypeVar("StoreT")


class StoreSimulator(Generic[StoreT]):
    """Many stores behind one local server; a subclass adds the platform's API as `_wsgi`.

    The shared parts: lifecycle, the store table, webhook modes, injected failures and delays,
    and the logs of calls and webhook attempts.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Configure; nothing listens until `start`."""
        self._clock = Clock()
        self.latency = 0.0  # seconds added to every API answer
        self.base_url: str | None = None
        self._lock = threading.RLock()
        self._stores: dict[str, StoreT] = {}
        self._calls = CallLog()
        self._failures = FailureSwitch()
        self._slow = FailureSwitch()
        self._dispatcher = WebhookDispatcher()
        self._session = requests.Session()
        self._deliveries: list[dict[str, Any]] = []
        self._server = SimServer(self._wsgi, host, port)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str | None = None, port: int | None = None) -> str:
        """Listen (port 0: a free one); the base URL."""
        if host is not None or port is not None:
            self._server = SimServer(self._wsgi, host or "127.0.0.1", port or 0)
        self.base_url = self._server.start()
        self._dispatcher.start()
        return self.base_url

    def stop(self) -> None:
        """Stop the server and the webhook thread."""
        self._dispatcher.stop()
        self._server.stop()
        self._session.close()

    def __enter__(self) -> Self:
        """Start on entering a with-block."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving a with-block."""
        self.stop()

    @property
    def clock(self) -> Clock:
        """Simulated time: `sim.clock.set(...)` or `.freeze(...)`, `.advance(s)`, `.reset()`."""
        return self._clock

    @clock.setter
    def clock(self, source: Clock | Callable[[], datetime]) -> None:
        if isinstance(source, Clock):
            self._clock = source
        else:
            self._clock.use(source)

    def stores(self) -> list[StoreT]:
        """Every store."""
        with self._lock:
            return list(self._stores.values())

    def store(self, name: str) -> StoreT:
        """The store called `name`."""
        with self._lock:
            return self._stores[name]

    # -- switches and logs -----------------------------------------------------------------------

    @property
    def webhook_mode(self) -> WebhookMode:
        """The simulator-wide mode: normal | drop | duplicate | delay | reorder (a name sets it)."""
        return self._dispatcher.default_mode

    @webhook_mode.setter
    def webhook_mode(self, mode: str | WebhookMode) -> None:
        self._dispatcher.set_mode(mode)

    def set_webhook_mode(
        self, mode: str, seconds: float = 0.0, hold: int = 2, store: str | None = None
    ) -> None:
        """A mode for every store or one: delay `seconds` (0: until flush), reorder every `hold`."""
        if store is not None:
            self.store(store).set_webhook_mode(mode, seconds, hold)
        else:
            self._dispatcher.set_mode(WebhookMode(mode, seconds, hold))

    def flush(self) -> int:
        """Send the webhooks held by delay/reorder mode; how many."""
        return self._dispatcher.flush()

    def flush_webhooks(self) -> int:
        """The Shopify simulator's name for `flush`."""
        return self.flush()

    def wait_for_webhooks(self, timeout: float = 5.0, include_retries: bool = False) -> bool:
        """Wait until every due webhook was sent (retries scheduled later too, if asked)."""
        return self._dispatcher.wait_idle(timeout, include_scheduled=include_retries)

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        retry_after: float | None = None,
        store: str | None = None,
    ) -> None:
        """The next `count` API requests (of one store, or any) answer `status`."""
        self._failures.arm(count, status, retry_after, store)

    def slow_next(self, count: int = 1, seconds: float = 1.0, store: str | None = None) -> None:
        """Delay the next `count` API answers (of one store, or any) by `seconds`."""
        self._slow.arm(count, 0, seconds, store)

    def calls(
        self, store: str | None = None, path_contains: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """API requests answered so far: {store, method, path, query, status, at}."""
        return self._calls.select(store, path_contains, method)

    def reset_calls(self) -> None:
        """Forget the call log."""
        self._calls.reset()

    def reset_deliveries(self) -> None:
        """Forget the delivery log."""
        with self._lock:
            self._deliveries.clear()


def common_control(
    sim: Any, request: Request, parts: list[str], body: dict[str, Any]
) -> Response | None:
    """The /_sim/ endpoints the simulators share (mode, flush, failures, logs, clock, config).

    A body names one store as `store` (or `shop`, the Shopify simulator's word).
    """
    method = request.method
    store = body.get("store") or body.get("shop")
    if parts == ["webhook_mode"]:
        if method in ("POST", "PUT"):
            if "seconds" in body or "hold" in body or store:
                sim.set_webhook_mode(
                    body.get("mode", "normal"),
                    float(body.get("seconds", 0)),
                    int(body.get("hold", 2)),
                    store,
                )
            else:
                sim.webhook_mode = body.get("mode", "normal")
        return json_response({"mode": sim.webhook_mode.name, "held": sim._dispatcher.held()})
    if parts in (["flush"], ["flush_webhooks"]) and method == "POST":
        flushed = sim.flush()
        return json_response({"flushed": flushed, "released": flushed})
    if parts == ["slow_next"] and method == "POST":
        sim.slow_next(int(body.get("count", 1)), float(body.get("seconds", 1)), store)
        return json_response({"ok": True})
    if parts == ["fail_next"] and method == "POST":
        sim.fail_next(
            int(body.get("count", 1)), int(body.get("status", 500)), body.get("retry_after"), store
        )
        return json_response({"ok": True})
    if parts == ["calls", "reset"] and method == "POST":
        sim.reset_calls()
        return json_response({"ok": True})
    if parts == ["calls"]:
        if method == "DELETE":
            sim.reset_calls()
            return json_response({"ok": True})
        calls = sim.calls(
            request.args.get("store"), request.args.get("path_contains"), request.args.get("method")
        )
        return json_response({"count": len(calls), "calls": calls})
    if parts == ["deliveries"]:
        if method == "DELETE":
            sim.reset_deliveries()
            return json_response({"ok": True})
        found = sim.deliveries(
            request.args.get("store"), request.args.get("scope") or request.args.get("topic")
        )
        return json_response({"count": len(found), "deliveries": found})
    if parts == ["clock"]:
        return json_response(clock_control(sim.clock, method, body))
    if parts == ["config"] and method in ("POST", "PUT"):
        for name in ("latency", "delivery_timeout"):
            if name in body:
                setattr(sim, name, float(body[name]))
        if "retry_delays" in body and hasattr(sim, "retry_delays"):
            sim.retry_delays = tuple(float(d) for d in body["retry_delays"])
        if body.get("unblock") and hasattr(sim, "unblock"):
            sim.unblock()
        return json_response({"ok": True})
    return None


def clock_control(clock: Clock, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """Apply {set|now: iso} | {advance: s} | {resume: true} | {reset|real: true}; the state."""
    if method in ("POST", "PUT"):
        if body.get("set") or body.get("now"):
            clock.set(str(body.get("set") or body.get("now")))
        if "advance" in body:
            clock.advance(float(body["advance"]))
        if body.get("resume"):
            clock.resume()
        if body.get("reset") or body.get("real"):
            clock.reset()
    return clock.describe()
