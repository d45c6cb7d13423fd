"""The MCP side of tokens: FastMCP's bearer check, and which principal a tool call runs as."""

from __future__ import annotations

import logging

from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token, get_http_request

from memento_mcp.auth.principal import LOCAL, Principal
from memento_mcp.auth.registry import TokenRegistry
from memento_mcp.errors import ConfigError, Forbidden

log = logging.getLogger(__name__)


class RegistryVerifier(TokenVerifier):
    """HTTP and SSE requests must carry `Authorization: Bearer <token>` of a configured token
    (401 otherwise; stdio is never checked). Revocations apply from the next request."""

    def __init__(self, registry: TokenRegistry) -> None:
        super().__init__()
        self.registry = registry

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = self.registry.lookup(token)
        except ConfigError:  # the tokens file was broken while serving: refuse, say why
            log.warning("tokens file unreadable; refusing every token", exc_info=True)
            return None
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.client_id, scopes=[])


def caller(registry: TokenRegistry) -> Principal:
    """Who the current tool call, resource read or prompt runs as.

    A verified token's holder; on HTTP with no token configured (loopback only, see `serve`),
    `anonymous`; on stdio and in-process, the local user.
    """
    token = get_access_token()
    if token is not None:
        principal = registry.lookup(token.token)
        if principal is None:  # revoked since the request was verified
            raise Forbidden("this token has been revoked")
        return principal
    try:
        get_http_request()
    except RuntimeError:
        return LOCAL
    return registry.anonymous()
