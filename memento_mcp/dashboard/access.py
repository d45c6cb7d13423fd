"""Who is looking at the dashboard: the same tokens as /mcp, by header or by a cookie.

A browser cannot add an Authorization header to a link, so `/?token=<token>` is exchanged once
for an HTTP-only, same-site cookie and a redirect that drops the token from the address bar
(the access log never sees it either: auth/redact.py). The cookie names the token and carries an
HMAC of its hash under a key that lives only in this server process: a leaked cookie opens the
read-only dashboard until the server restarts or the token is revoked, and cannot be replayed
against /mcp.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from memento_mcp.auth.principal import Principal
from memento_mcp.auth.registry import TokenRegistry

COOKIE = "memento_dashboard"


class DashboardAccess:
    def __init__(self, registry: TokenRegistry) -> None:
        self.registry = registry
        self._key = secrets.token_bytes(32)

    def cookie_value(self, principal: Principal) -> str | None:
        entry = self.registry.by_name(principal.client_id)
        if entry is None:
            return None
        mac = hmac.new(self._key, f"{entry.name}:{entry.sha256}".encode(), hashlib.sha256)
        return f"{entry.name}.{mac.hexdigest()}"

    def principal(self, request: Request) -> Principal | None:
        """The caller, or None when a token is required and none valid was shown."""
        if not self.registry.configured:
            return self.registry.anonymous()
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return self.registry.lookup(given)
        name, _, _ = request.cookies.get(COOKIE, "").rpartition(".")
        entry = self.registry.by_name(name) if name else None
        if entry is None:
            return None
        principal = self.registry.principal(entry)
        expected = self.cookie_value(principal) or ""
        if hmac.compare_digest(request.cookies[COOKIE].encode(), expected.encode()):
            return principal
        return None

    def exchange_query_token(self, request: Request) -> Response | None:
        """For `?token=<a valid token>`: a redirect to the same page without it, setting the cookie."""
        given = request.query_params.get("token")
        principal = self.registry.lookup(given) if given and self.registry.configured else None
        value = self.cookie_value(principal) if principal else None
        if value is None:
            return None
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        response = RedirectResponse(
            request.url.path + (f"?{query}" if query else ""), status_code=303
        )
        response.set_cookie(
            COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response
