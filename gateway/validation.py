"""Marshmallow building blocks shared by the API's schemas and the platforms' connection schemas."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate

MAX_SITE_URL = 500  # a store's address, kept as its identity
# Access tokens, API keys and webhook secrets: every platform's own are longer (30 to 40+
# characters, platforms/*.md); shorter ones are typed, and guessable.
MIN_SECRET_LENGTH = 16
# Bidirectional embeddings, overrides and isolates: they make text read otherwise than it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped."""

    class Meta:
        unknown = RAISE


def unsafe_character(value: str) -> str | None:
    """The first character a one-line text must not hold, as U+XXXX, or None.

    Every text the API takes is one line (SKUs, titles, names, addresses, carriers, ids) and
    ends up in emails, pages and stores: C0 and C1 controls (tab and newline included), line
    and paragraph separators and bidi controls are refused, not cleaned.
    """
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Cs") or char in BIDI_CONTROLS:
            return f"U+{ord(char):04X}"
    return None


class Text(fields.String):
    """A one-line string: the characters `unsafe_character` finds are refused."""

    default_error_messages = {"unsafe": "Must not contain control characters (found {character})."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        character = unsafe_character(loaded)
        if character:
            raise self.make_error("unsafe", character=character)
        return loaded


def text(max_length: int, **kwargs: Any) -> Text:
    """A non-empty one-line string of at most `max_length` characters."""
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def secret(**kwargs: Any) -> Text:
    """A credential of a store connection: 16 to 255 characters, taken in and never shown."""
    length = validate.Length(
        min=MIN_SECRET_LENGTH,
        max=255,
        error=f"From {MIN_SECRET_LENGTH} to 255 characters: shorter ones can be guessed.",
    )
    return Text(validate=length, load_only=True, **kwargs)


def _port_in_range(url: str) -> None:
    try:
        urlsplit(url).port  # noqa: B018 (raises ValueError past 65535)
    except ValueError:
        raise ValidationError("Not a valid port.") from None


def web_url(**kwargs: Any) -> fields.Url:
    """An http(s) URL with a port that exists; hosts without a TLD allowed (local simulators)."""
    return fields.Url(
        require_tld=False, schemes={"http", "https"}, validate=_port_in_range, **kwargs
    )


def _site_only(url: str) -> None:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValidationError("No user or password in the URL: the store's address only.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValidationError("No query or fragment: the store's address only.")


def site_url(**kwargs: Any) -> fields.Url:
    """A store's own address (its identity): scheme, host, port and path; no credentials,
    query or fragment, which would be dropped when it is matched, and are no address."""
    return fields.Url(
        require_tld=False,
        schemes={"http", "https"},
        validate=[_port_in_range, _site_only, validate.Length(max=MAX_SITE_URL)],
        **kwargs,
    )
