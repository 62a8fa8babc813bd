"""What every outbound call raises when its attempt did not arrive (jobs, platforms, callbacks)."""

from __future__ import annotations


class DeliveryFailed(Exception):  # noqa: N818 (a failed attempt, an outcome not a bug)
    """An attempt that did not arrive; `retry_after` in seconds when the other side said so;
    `permanent` when trying again cannot help (refused credentials, the platform's userErrors)."""

    def __init__(
        self, message: str, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
