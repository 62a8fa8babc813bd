"""What every outbound call raises when its attempt did not arrive (jobs, platforms, callbacks)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class DeliveryFailed(Exception):  # noqa: N818 (a failed attempt, an outcome not a bug)
    """An attempt that did not arrive; `retry_after` in seconds when the other side said so;
    `permanent` when trying again cannot help (refused credentials, the platform's userErrors)."""

    def __init__(
        self, message: str, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds: a number, or an HTTP date counted from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ConnectionDown(DeliveryFailed):
    """A store connection that can't be used now (not connected yet, a token refused after a
    refresh, scopes short, the app uninstalled): the work waits, counting no attempt, until
    its owner connects the store again (gateway/jobs/connections.py resumes it)."""

    def __init__(self, partner_id: str, status: str, reason: str = "") -> None:
        super().__init__(
            f"waiting for the store to be connected again ({status}"
            + (f": {reason})" if reason else ")")
        )
        self.partner_id = partner_id
        self.status = status
