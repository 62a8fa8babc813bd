"""Outgoing email: SMTP through MAIL_URL, or .eml files in the outbox when none is set."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.delivery import DeliveryFailed
from gateway.settings import Settings
from gateway.validation import unsafe_character

log = logging.getLogger(__name__)


def one_line(text: str) -> str:
    """Text for a header: what could end it or hide in it (controls, separators) as spaces."""
    return "".join(" " if unsafe_character(char) else char for char in text)


def compose(config: Settings, to: str, subject: str, text: str) -> EmailMessage:
    """A message from the configured sender to exactly one address.

    Subjects carry store data (order refs read from a store), so each header is one line; a
    recipient that is not one plain address is a permanent failure, never a second recipient.
    """
    try:
        recipient = Address(addr_spec=to)
    except ValueError:
        raise DeliveryFailed("the recipient is not one email address", permanent=True) from None
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = recipient
    message["Subject"] = one_line(subject)
    message["Message-ID"] = make_msgid(domain="gateway.local")
    message.set_content(text)
    return message


def send(config: Settings, message: EmailMessage) -> str:
    """Send the message; returns where it went (for the timeline and the log)."""
    if not config.mail_url:
        outbox = Path(config.outbox_dir)
        outbox.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").replace("@", "_").replace("/", "_")
        path = outbox / f"{name}.eml"
        path.write_bytes(bytes(message))
        log.info("no MAIL_URL set: wrote the message to %s", path)
        return f"outbox file {path}"
    url = urlsplit(config.mail_url)
    host, port = url.hostname or "127.0.0.1", url.port
    context = ssl.create_default_context()
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port or 465, timeout=config.http_timeout, context=context
        )
    else:
        client = smtplib.SMTP(host, port or 25, timeout=config.http_timeout)
    with client:
        if url.scheme == "smtp+starttls":
            client.starttls(context=context)
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
    log.info("sent a message to %s through %s:%s", message["To"], host, port)
    return f"SMTP {host}"
