"""Sign-in by email link (API.md "Sign-in, console and portal"): no passwords. The answer to
the form is the same for every address, known or not, rate-limited or not."""

from __future__ import annotations

import re
import secrets

from flask import Blueprint, flash, redirect, render_template, request
from flask_wtf.csrf import generate_csrf

from gateway import people
from gateway.jobs import SEND_SIGNIN_LINK
from gateway.jobs.people import SIGNIN_MAIL_OPTIONS
from gateway.pages.csrf import require_csrf
from gateway.runtime import settings, store
from gateway.store import JobSpec

signin = Blueprint("signin", __name__, template_folder="templates")

LINK_MINUTES = 15  # a sign-in link works once, this long
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 254
USED_OR_EXPIRED = (
    "This sign-in link was used already or has expired (they work once, for 15 minutes). "
    "Ask for a new one."
)


def home_of(person: people.Person) -> str:
    """Where a person lands after signing in."""
    return "/admin/" if person.is_operator else "/portal/orders"


@signin.get("/signin")
def signin_form():
    """The email field."""
    person = people.signed_in()
    return render_template("signin.html", errors={}, email="", person=person, token=generate_csrf())


@signin.post("/signin")
def send_link():
    """Email a sign-in link when the address is an operator's or a partner contact's, within
    the limits per address and per client; the same page answers in every case."""
    require_csrf()
    email = request.form.get("email", "").strip()
    if len(email) > MAX_EMAIL or not EMAIL_SHAPE.fullmatch(email):
        errors = {"email": ["Type your email address, such as name@example.com."]}
        page = render_template(
            "signin.html",
            errors=errors,
            email=email[:MAX_EMAIL],
            person=None,
            token=generate_csrf(),
        )
        return page, 422
    config, current = settings(), store()
    limited = current.over_limit(config.rate_limit_signin_client, "signin-client", _client())
    if limited is None:
        limited = current.over_limit(
            config.rate_limit_signin_address, "signin-address", email.lower()
        )
    if limited is None and people.known(people.person_for(email)):
        token = secrets.token_urlsafe(32)
        current.add_signin_token(token, email, LINK_MINUTES * 60)
        url = f"{config.public_url.rstrip('/')}/signin/{token}"
        sealed = current.seal_text(url)
        current.enqueue(
            JobSpec(SEND_SIGNIN_LINK, (email, sealed, LINK_MINUTES), options=SIGNIN_MAIL_OPTIONS)
        )
    return render_template("signin_sent.html", email=email, minutes=LINK_MINUTES)


def _client() -> str:
    """The client's address as this server sees it (a proxy in front sets it through
    ProxyFix, as for every other limit)."""
    return request.remote_addr or "unknown"


@signin.get("/signin/<token>")
def confirm_page(token: str):
    """One button that signs in: a mail scanner that opens the link does not use it up."""
    email = store().signin_token_email(token)
    if email is None:
        return _refused()
    return render_template("signin_confirm.html", email=email, token=generate_csrf(), link=token)


@signin.post("/signin/<token>")
def confirm(token: str):
    """Use the link up and start the session, in this browser (any device)."""
    require_csrf()
    email = store().use_signin_token(token)
    if email is None:
        return _refused()
    person = people.person_for(email)
    if not people.known(person):  # no longer an operator or a contact since the link was sent
        return _refused()
    people.start_session(email)
    return redirect(home_of(person), code=303)


def _refused():
    page = render_template(
        "message.html", title="This sign-in link is not valid", text=USED_OR_EXPIRED
    )
    return page, 403


@signin.post("/signout")
def signout():
    """End the session, on the server too."""
    require_csrf()
    people.end_session()
    flash("You are signed out.", "ok")
    return redirect("/signin", code=303)
