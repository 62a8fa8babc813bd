"""What the web processes log of a request's path: never the token a sign-in or connect link
carries in its path (an order link's token is in the query string, which is not logged)."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# /signin/<token> and /connect/<token>: a link that works for 15 minutes or a day, and whose
# holder signs in or connects a store. /connect/<platform>/<step> has no token in its path.
TOKEN_IN_PATH = re.compile(r"^/(signin|connect)/[^/?\s]+(?=$|[?\s])")
MASK = r"/\1/[token]"


def masked(text: str) -> str:
    """A path, or a request line's path, with a link's token replaced."""
    if text.startswith(("/signin/", "/connect/")):
        return TOKEN_IN_PATH.sub(MASK, text)
    method, _, rest = text.partition(" ")
    if rest.startswith(("/signin/", "/connect/")):
        return f"{method} {TOKEN_IN_PATH.sub(MASK, rest)}"
    return text


class MaskingLogger(Logger):
    """gunicorn's access log (Procfile: --logger-class) with link tokens masked in the path
    (%(U)s) and the request line (%(r)s)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("U", "r"):
            if isinstance(atoms.get(name), str):
                atoms[name] = masked(atoms[name])
        return atoms
