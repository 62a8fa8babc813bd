"""Who is signed in: a server-side session (its id in the Flask session cookie, 12 hours at
most), the person it belongs to, and the guards of the console and the portal."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import abort, g, make_response, redirect, render_template, session, url_for

from gateway.runtime import settings, store
from gateway.store.people import normal_email

SESSION_SECONDS = 12 * 3600  # a session ends this long after sign-in, however used
SESSION_KEY = "person"  # the Flask session's field that holds the session id


@dataclass(frozen=True)
class Person:
    """A signed-in person: an operator, the contact of some partners, or both."""

    email: str
    is_operator: bool
    partner_ids: tuple[str, ...]  # partners whose contact `email` is this address


def person_for(email: str) -> Person:
    """What an address may do now: operators and partner contacts are read at every request,
    so a removed operator or a changed contact takes effect at once."""
    email = normal_email(email)
    current = store()
    is_operator = email in settings().operators or current.is_added_operator(email)
    return Person(email, is_operator, tuple(current.partners_by_email(email)))


def known(person: Person) -> bool:
    """Whether the address may sign in at all."""
    return person.is_operator or bool(person.partner_ids)


def signed_in() -> Person | None:
    """The person of this request's session, None when signed out or the session ended."""
    if "person" not in g:
        session_id = session.get(SESSION_KEY)
        email = store().session_email(session_id) if isinstance(session_id, str) else None
        g.person = person_for(email) if email else None
    return g.person


def operator_only() -> Person:
    """The signed-in operator; 404 for anyone else (called before any CSRF check, so a
    visitor learns nothing of what is under /admin)."""
    person = signed_in()
    if person is None or not person.is_operator:
        abort(404)
    return person


def partner_contact() -> Person:
    """The signed-in contact of one or more partners; else the browser goes to sign in."""
    person = signed_in()
    if person is None or not person.partner_ids:
        abort(redirect(url_for("signin.signin_form"), code=303))
    return person


def limit_forms(person: Person) -> None:
    """429 when the person has sent too many forms (RATE_LIMIT_PERSON, API.md Conventions)."""
    retry_after = store().over_limit(settings().rate_limit_person, "person", person.email)
    if retry_after is not None:
        text = f"Wait {retry_after} seconds, then send the form again."
        page = render_template("message.html", title="Too many requests", text=text)
        abort(make_response(page, 429, {"Retry-After": str(retry_after)}))


def start_session(email: str) -> None:
    """Sign the browser in as the address, in a fresh session (never one it brought along)."""
    end_session()
    session_id = secrets.token_urlsafe(32)
    store().start_session(session_id, email, SESSION_SECONDS)
    session[SESSION_KEY] = session_id
    g.pop("person", None)


def end_session() -> None:
    """Sign the browser out: its session ends on the server, not only in the cookie."""
    session_id = session.pop(SESSION_KEY, None)
    if isinstance(session_id, str):
        store().end_session(session_id)
    g.pop("person", None)
