"""The operator console under /admin: every URL, POSTs too, is 404 to anyone but a signed-in
operator (the operator's Bearer key is not accepted here); views add themselves to `admin`."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import generate_csrf

from gateway.pages.csrf import require_csrf
from gateway.people import limit_forms, operator_only, signed_in

admin = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@admin.before_request
def _operators_only() -> None:
    person = operator_only()  # before any view, so before its CSRF check
    if request.method == "POST":  # every console form: its CSRF token, then counted per person
        require_csrf()
        limit_forms(person)


@admin.get("/", strict_slashes=False)
def index():
    """The console's front page: where each part of it is."""
    return render_template("console_index.html")


def init_app(app: Flask) -> None:
    """Register the console with its views; the layout (console.html, which the portal shares)
    asks who is signed in and puts a CSRF token in its sign-out form."""
    from gateway.console import jobs, orders, partners, reconcile  # noqa: F401  (views on `admin`)

    app.jinja_env.globals.update(signed_in=signed_in, csrf_token=generate_csrf)
    app.register_blueprint(admin)

    @app.before_request
    def _nothing_under_admin_but_to_operators() -> None:
        # A wrong method (405) or an unknown path under /admin never reaches the blueprint:
        # it is 404 too, so no answer tells anyone but an operator what the console holds.
        if request.path == "/admin" or request.path.startswith("/admin/"):
            operator_only()
