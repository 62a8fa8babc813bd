"""Marshmallow building blocks shared by the API's schemas and the platforms' connection schemas."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped."""

    class Meta:
        unknown = RAISE


def text(max_length: int, **kwargs: Any) -> fields.String:
    """A non-empty string of at most `max_length` characters."""
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


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
