"""Connecting a store: the connect link's page, and the install steps the platforms call back.

`GET /connect/<token>` asks for what the link left out (the store's name), then sends the
browser to the platform; the platform (or the browser, sent back by it) reaches
`/connect/<platform>/<step>`, which the platform's module answers (platforms/base.py). Works
without JavaScript; the form is CSRF-protected like the order page's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError, fields

from gateway import connect, outbound, platforms
from gateway.delivery import DeliveryFailed
from gateway.pages.csrf import require_csrf
from gateway.platforms.base import ConnectLink, InstallAnswer, InstallRefused, InstallRequest
from gateway.runtime import settings, store

connecting = Blueprint("connect", __name__, template_folder="templates")

GONE = (
    "This connect link was used already, has expired, or is not valid. "
    "Ask the marketplace for a new one."
)


def _message(title: str, text: str, status: int) -> tuple[str, int]:
    return render_template("message.html", title=title, text=text), status


def _allow_leaving() -> None:
    """The connect form's answer is a redirect to the platform, which a browser checks against
    the page's form-action: https anywhere (and http in development, for the simulators)."""
    g.form_action = "'self' https:" + ("" if not settings().development else " http:")


def _asked(link: ConnectLink) -> dict[str, str]:
    """The hints the page asks for that the link left out: field name -> label."""
    schema = platforms.get(link.platform).install_schema
    return {
        name: field.metadata["ask"]
        for name, field in schema().fields.items()
        if field.metadata.get("ask") and not link.hints.get(name)
    }


def _form(link: ConnectLink, token: str, errors: dict[str, list[str]], values: Any, status: int):
    _allow_leaving()
    platform = platforms.get(link.platform)
    page = render_template(
        "connect.html",
        platform=platform,
        token=token,
        asked=_asked(link),
        errors=errors,
        values=values,
        csrf_token=generate_csrf(),
    )
    return page, status


@connecting.get("/connect/<token>")
def connect_page(token: str):
    """The connect link: ask for the store, or go straight to the platform."""
    try:
        link = connect.open_link(settings(), store(), token)
    except connect.LinkGone:
        return _message("This link can't be used", GONE, 410)
    if _asked(link):
        return _form(link, token, {}, {}, 200)
    return _begin(link)


@connecting.post("/connect/<token>")
def connect_form(token: str):
    """The connect page's form: the store's name, then on to the platform."""
    require_csrf()
    try:
        link = connect.open_link(settings(), store(), token)
    except connect.LinkGone:
        return _message("This link can't be used", GONE, 410)
    asked = _asked(link)
    values = {name: request.form.get(name, "").strip() for name in asked}
    schema = platforms.get(link.platform).install_schema
    try:
        hints = schema(only=tuple(asked)).load(values)
    except ValidationError as error:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in error.messages.items()}
        return _form(link, token, errors, values, 422)
    # A store address typed here is called by the gateway as one given to the API is.
    urls = {n: v for n, v in hints.items() if isinstance(schema().fields[n], fields.Url)}
    errors = outbound.unsafe_urls(urls, settings())
    if errors:
        return _form(link, token, errors, values, 422)
    try:
        link = connect.name_store(store(), link, hints)
    except connect.LinkGone:
        return _message("This link can't be used", GONE, 410)
    except connect.StoreTaken as taken:
        return _message("This store can't be connected here", str(taken), 409)
    return _begin(link)


def _begin(link: ConnectLink):
    _allow_leaving()
    platform = platforms.get(link.platform)
    answer = platform.begin_install(link, connect.Installation(settings(), store()), settings())
    return _answer(answer)


@connecting.route("/connect/<name>/<step>", methods=["GET", "POST"])
def install_step(name: str, step: str):
    """A platform's install step: its callback with a code, keys, a signed payload."""
    platform = platforms.REGISTRY.get(name)
    if platform is None or step not in platform.install_steps:
        return _message("Not found", "No such page.", 404)
    if request.method not in platform.install_steps[step]:
        return _message("Not allowed", "This page does not take that method.", 405)
    g.frame_ancestors = platform.install_frame_ancestors
    call = InstallRequest(
        method=request.method,
        args=request.args,
        query_string=request.query_string,
        raw=request.get_data(),
        headers=request.headers,
    )
    try:
        answer = platform.install_step(
            step, call, connect.Installation(settings(), store()), settings()
        )
    except InstallRefused as refused:
        store().count(f"installs_refused_{name}")
        return _message("The store was not connected", str(refused), 409)
    except DeliveryFailed as failure:  # the platform's token call failed: try again later
        store().count(f"installs_failed_{name}")
        return _message(
            "The store was not connected",
            f"{platform.label} did not complete the connection ({failure}). Try again in a few"
            " minutes.",
            502,
        )
    return _answer(answer)


@connecting.get("/connect/done")
def connect_done():
    """Where a platform sends the browser back after its own consent screen."""
    if request.args.get("success") == "0":
        return _message(
            "The store was not connected",
            "The connection was declined in the store. Open the connect link again to retry,"
            " or ask the marketplace for a new one.",
            200,
        )
    return _message(
        "Thank you",
        "Your store is connecting to the marketplace. You can close this page.",
        200,
    )


def _answer(answer: InstallAnswer):
    if answer.redirect:
        return redirect(answer.redirect, code=302)
    if answer.body is not None:
        return Response(answer.body, status=answer.status, mimetype="text/plain")
    return _message(answer.title, answer.message, answer.status)


def init_app(app) -> None:
    """Register the connect pages."""
    app.register_blueprint(connecting)
