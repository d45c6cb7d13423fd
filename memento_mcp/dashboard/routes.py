"""The dashboard's HTTP routes, registered on the FastMCP server as custom routes.

They read the same Memory the MCP tools use (the server's lifespan holds it), in a worker thread,
since the case bank is synchronous SQLite, and only as the caller's token may (auth/tenant.py).
Nothing here writes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from fastmcp import Context, FastMCP
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from memento_mcp.agent.sampling import REPLICA
from memento_mcp.auth.ratelimit import RateLimiter
from memento_mcp.auth.registry import TokenRegistry
from memento_mcp.auth.tenant import TenantMemory
from memento_mcp.dashboard import access, views
from memento_mcp.errors import MementoError, NotFound
from memento_mcp.memory import Memory
from memento_mcp.settings import Settings

if TYPE_CHECKING:
    from jinja2 import Environment

@functools.cache
def _templates() -> Environment:
    # Built on the first page: stdio servers never render one, and jinja2 costs ~0.1 s to load.
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    templates = Environment(
        loader=PackageLoader("memento_mcp.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    templates.filters["metric"] = views.metric
    return templates


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(template).render(**context)
    # The page never needs scripts or outside resources; say so to the browser.
    headers = {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


def register_dashboard(mcp: FastMCP, settings: Settings, registry: TokenRegistry) -> None:
    """Serve the dashboard at / and /dashboard (HTTP and SSE transports; stdio has no pages).

    Each page shows only what the caller's token may read (its namespaces), like the tools.
    """
    gate = access.DashboardAccess(registry)
    limiter = RateLimiter()  # pages only read; the tenant view needs one all the same

    def refused() -> Response:
        page = render("denied.html", status=401)
        page.headers["WWW-Authenticate"] = 'Bearer realm="memento dashboard"'
        return page

    def opened() -> Memory | None:
        # The Memory the server's lifespan opened (None before it starts). Context(mcp) is the
        # public way to reach it outside a tool call.
        found: Memory | None = Context(mcp).lifespan_context.get("memory")
        return found

    def tenant(request: Request) -> TenantMemory | Response:
        """The caller's view of the bank, or the response that refuses them."""
        if (exchanged := gate.exchange_query_token(request)) is not None:
            return exchanged
        principal = gate.principal(request)
        if principal is None:
            return refused()
        if (memory := opened()) is None:
            return render("denied.html", status=503, reason="The case bank is not open yet.")
        return TenantMemory(memory, principal, limiter)

    async def index(request: Request) -> Response:
        if isinstance(view := tenant(request), Response):
            return view
        filters = views.Filters.from_query(request.query_params)
        return render("index.html", **await run_in_threadpool(views.index, view, filters))

    async def case(request: Request) -> Response:
        if isinstance(view := tenant(request), Response):
            return view
        case_id = request.path_params["case_id"]
        try:
            page = await run_in_threadpool(views.case_page, view, case_id)
        except NotFound:  # missing, or another tenant's: the same page either way
            return render("missing.html", status=404, case_id=case_id)
        return render("case.html", **page)

    async def health(request: Request) -> Response:
        """For load balancers: 200 when this replica is up and reaches its bank, else 503."""
        if (mem := opened()) is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await run_in_threadpool(mem.bank.ping)
        except MementoError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "replica": REPLICA})

    mcp.custom_route("/healthz", methods=["GET"], include_in_schema=False)(health)
    mcp.custom_route("/", methods=["GET"], include_in_schema=False)(index)
    mcp.custom_route("/dashboard", methods=["GET"], include_in_schema=False)(index)
    mcp.custom_route("/dashboard/cases/{case_id:int}", methods=["GET"], include_in_schema=False)(
        case
    )
