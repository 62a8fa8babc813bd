"""The fulfillment sync gateway: a Flask app over a Redis store and RQ jobs."""

from __future__ import annotations

import logging

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from gateway.settings import DEV_SECRET_KEY, Settings


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, their signing serializer made once per app: Flask makes
    it for every request, session or not, which cost a webhook more than its signature check."""

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if "gateway.session_signer" not in app.extensions:  # the keys are set before any request
            app.extensions["gateway.session_signer"] = super().get_signing_serializer(app)
        return app.extensions["gateway.session_signer"]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # A platform's webhook carries no session and is given none (Flask's null session):
        # opening an empty one and saving it cost each webhook more than its signature check.
        if request.path.startswith("/webhooks/"):
            return None
        return super().open_session(app, request)


def configure_logging() -> None:
    """Our INFO lines to stderr, unless the process (a test runner, say) set up logging."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def create_app(config: Settings | None = None) -> Flask:
    """Build the app: settings first, then each part's init_app."""
    config = config or Settings.from_env()  # UnsafeSettingsError: production without secrets
    if config.secret_key == DEV_SECRET_KEY:  # development only: Settings refuses it elsewhere
        logging.getLogger(__name__).warning("SECRET_KEY is the development default")
    app = Flask(__name__)
    app.session_interface = CookieSessions()
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.json.sort_keys = False  # answers keep API.md's field order
    app.config.update(config.flask)
    configure_logging()

    from gateway import api as api_part
    from gateway import cli, console, errors, headers, ops, runtime, webhooks
    from gateway import pages as pages_part

    runtime.init_app(app, config)
    errors.init_app(app)
    headers.init_app(app)
    api_part.init_app(app)
    pages_part.init_app(app)
    console.init_app(app)
    ops.init_app(app)
    webhooks.init_app(app)
    cli.init_app(app)
    return app
