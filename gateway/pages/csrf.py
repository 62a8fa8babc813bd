"""The CSRF check every form of the pages, the console and the portal makes."""

from __future__ import annotations

from flask import abort, request
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError as CSRFValidationError


def require_csrf() -> None:
    """400 unless the form carries this session's CSRF token."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (CSRFError, CSRFValidationError):
        abort(400, "The form expired; reload the page and try again.")
