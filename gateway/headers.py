"""Headers every answer carries: never cached, never framed, no referrer; a strict CSP.

Pages hold order details and signed links, and API answers hold keys shown once: no cache keeps
them, no other site frames a page (clickjacking the Create Fulfillment form), and no referrer
carries a link's token to the carrier sites its tracking links open. A page may load nothing
but its own inline style, allowed by a nonce fresh for each answer.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g

PAGE_POLICY = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; form-action {form_action}; "
    "frame-ancestors {frame_ancestors}; base-uri 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors {frame_ancestors}; base-uri 'none'"


def csp_nonce() -> str:
    """The nonce of this answer's <style> (templates call it; the policy then names it)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app: Flask) -> None:
    """Add the headers to every answer, and `csp_nonce()` to the templates."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _protect(response: Response) -> Response:
        nonce = g.get("csp_nonce")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The connect page sends its form on to a platform, and a platform's install page may
        # be shown inside its own admin: those answers widen the policy for that (pages/connect.py).
        frame_ancestors = g.get("frame_ancestors") or "'none'"
        response.headers["Content-Security-Policy"] = (
            PAGE_POLICY.format(
                nonce=nonce,
                form_action=g.get("form_action", "'self'"),
                frame_ancestors=frame_ancestors,
            )
            if nonce
            else OTHER_POLICY.format(frame_ancestors=frame_ancestors)
        )
        return response
