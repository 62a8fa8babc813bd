"""Emails to people who sign in: the sign-in link."""

from __future__ import annotations

import smtplib

from rq import Retry

from gateway import mail
from gateway.delivery import DeliveryFailed
from gateway.jobs import JOB_OPTIONS, context

# A link lives 15 minutes: tried again soon, or not at all.
SIGNIN_MAIL_OPTIONS = {**JOB_OPTIONS, "result_ttl": 60, "retry": Retry(max=2, interval=[5, 30])}


def send_signin_link(email: str, sealed_url: str, minutes: int) -> str:
    """Email the sign-in link (sealed in the job's arguments: Redis keeps no usable link)."""
    config, store = context()
    url = store.open_text(sealed_url)
    text = (
        "Hello,\n\n"
        f"Sign in to the fulfillment gateway with this link (it works once, for {minutes} "
        f"minutes, on any device):\n{url}\n\n"
        "If you did not ask for it, ignore this email: nobody can sign in without the link.\n"
    )
    message = mail.compose(config, email, "Your sign-in link", text)
    try:
        return mail.send(config, message)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"email not sent: {type(error).__name__}") from error
