"""Who may see the dashboard: the same bearer token as /mcp, by header or by a cookie.

A browser cannot add an Authorization header to a link, so `/?token=<token>` is exchanged once
for an HTTP-only, same-site cookie and a redirect that drops the token from the address bar.
The cookie holds an HMAC of the token, not the token: a leaked cookie opens the read-only
dashboard but cannot be replayed against /mcp.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

COOKIE = "memento_dashboard"


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"memento-dashboard", hashlib.sha256).hexdigest()


def is_allowed(request: Request, token: str | None) -> bool:
    """True when no token is configured, or the request carries it (header or cookie)."""
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(cookie.encode(), cookie_value(token).encode())


def exchange_query_token(request: Request, token: str | None) -> Response | None:
    """For `?token=<right token>`: a redirect to the same page without it, setting the cookie."""
    given = request.query_params.get("token")
    if not token or given is None or not hmac.compare_digest(given.encode(), token.encode()):
        return None
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie_value(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
