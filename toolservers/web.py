"""web: `search` through a pluggable backend and `fetch` a page as clean text.

`fetch` is the dangerous one: a model can be talked into requesting http://169.254.169.254/ or
an admin panel on localhost. So every hop (the URL and each redirect) is resolved and refused if
any address is not public, unless TOOLSERVERS_WEB_ALLOW_PRIVATE=1. Bodies are streamed and cut at
a byte limit; HTML goes through trafilatura to drop navigation and boilerplate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from toolservers._common import TextWindow, env_flag, env_int, serve, window

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
)


@dataclass(frozen=True)
class WebConfig:
    searxng_url: str | None = None
    backend: Literal["auto", "searxng", "ddgs"] = "auto"
    allow_private: bool = False
    timeout_s: float = 15.0
    max_bytes: int = 5 << 20
    max_redirects: int = 5
    user_agent: str = "toolservers-web/0.1 (+https://github.com/; MCP fetch tool)"

    @classmethod
    def from_env(cls) -> WebConfig:
        backend = os.environ.get("TOOLSERVERS_WEB_SEARCH_BACKEND", "auto")
        if backend not in ("auto", "searxng", "ddgs"):
            raise ValueError(
                f"TOOLSERVERS_WEB_SEARCH_BACKEND={backend!r}; use auto, searxng or ddgs"
            )
        return cls(
            searxng_url=os.environ.get("TOOLSERVERS_SEARXNG_URL") or None,
            backend=backend,  # type: ignore[arg-type]
            allow_private=env_flag("TOOLSERVERS_WEB_ALLOW_PRIVATE"),
            timeout_s=env_int("TOOLSERVERS_WEB_TIMEOUT_S", 15),
            max_bytes=env_int("TOOLSERVERS_WEB_MAX_KB", 5120) << 10,
        )


class SearchHit(BaseModel):
    title: str
    url: str
    snippet: str = ""


class SearchResults(BaseModel):
    backend: str
    query: str
    hits: list[SearchHit]


class Page(TextWindow):
    url: str = Field(description="the URL requested")
    final_url: str = Field(description="where redirects led")
    status: int
    content_type: str
    title: str | None = None
    bytes_truncated: bool = Field(description="true when the body was cut at the size limit")


class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, max_results: int, page: int) -> list[SearchHit]: ...


class SearxNG:
    """A SearxNG instance with the JSON format enabled (settings.yml: search.formats: [html, json])."""

    name = "searxng"

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    async def search(self, query: str, max_results: int, page: int) -> list[SearchHit]:
        async with httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client:
            try:
                reply = await client.get(
                    f"{self.base_url}/search", params={"q": query, "format": "json", "pageno": page}
                )
                reply.raise_for_status()
                results = reply.json().get("results", [])
            except (httpx.HTTPError, ValueError) as exc:
                raise ToolError(
                    f"the SearxNG backend at {self.base_url} failed: {exc}. Try again later."
                ) from None
        return [
            SearchHit(
                title=r.get("title") or r["url"], url=r["url"], snippet=r.get("content") or ""
            )
            for r in results[:max_results]
            if r.get("url")
        ]


class DDGS:
    """DuckDuckGo through the `ddgs` library, used only when it is installed."""

    name = "ddgs"

    async def search(self, query: str, max_results: int, page: int) -> list[SearchHit]:
        from ddgs import DDGS as Client  # optional dependency

        def run() -> list[dict[str, str]]:
            rows: list[dict[str, str]] = Client().text(query, max_results=max_results * page)
            return rows[max_results * (page - 1) :]

        try:
            rows = await asyncio.to_thread(run)
        except Exception as exc:  # noqa: BLE001 - ddgs has no common base error; all mean "failed"
            raise ToolError(f"the ddgs search backend failed: {exc}. Try again later.") from None
        return [
            SearchHit(title=r.get("title", ""), url=r["href"], snippet=r.get("body", ""))
            for r in rows
            if r.get("href")
        ]


def pick_backend(config: WebConfig) -> SearchBackend | None:
    """SearxNG when configured, else the ddgs library when installed, else none."""
    if config.backend in ("auto", "searxng") and config.searxng_url:
        return SearxNG(config.searxng_url, config.timeout_s)
    if config.backend in ("auto", "ddgs"):
        try:
            import ddgs  # noqa: F401
        except ImportError:
            return None
        return DDGS()
    return None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


async def resolve(host: str, port: int) -> tuple[list[str], list[str]]:
    """The host's addresses, split into (public, non-public)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ToolError(f"cannot resolve host {host!r}; check the URL.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return [a for a in addresses if _public(a)], [a for a in addresses if not _public(a)]


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP schemes, and hosts with any non-public address unless private is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(
            f"{url!r} is not an http(s) URL; give a full URL like https://example.org/page."
        )
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    _, blocked = await resolve(parts.hostname, port)
    if blocked:
        raise ToolError(
            f"refusing to fetch {url}: {parts.hostname} resolves to non-public address(es) "
            f"{', '.join(sorted(blocked))}. Private, loopback and link-local hosts are off limits "
            "unless the operator sets TOOLSERVERS_WEB_ALLOW_PRIVATE=1."
        )


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Connects to a checked public address only, resolving at connect time.

    `check_url` gives an early, clear refusal, but the HTTP client would resolve the name again;
    a DNS server that answers "public" first and "127.0.0.1" second (DNS rebinding) would slip
    through. Here the address checked is the address dialled.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        public, blocked = await resolve(host, port)
        if blocked or not public:
            raise httpcore.ConnectError(f"{host} resolves to a non-public address; refused")
        return await self._inner.connect_tcp(
            public[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def transport(allow_private: bool) -> httpx.AsyncHTTPTransport:
    """httpx's transport, dialling through `PublicOnlyBackend` unless private hosts are allowed."""
    base = httpx.AsyncHTTPTransport(trust_env=False)
    if not allow_private:
        # httpx exposes no network_backend option; its transport is a thin wrapper over this
        # httpcore pool, built the same way (httpx/_transports/default.py) plus the backend.
        base._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=PublicOnlyBackend()
        )
    return base


async def download(url: str, config: WebConfig) -> tuple[httpx.Response, bytes, bool]:
    """GET with manual redirects (each hop checked), streaming at most max_bytes."""
    headers = {
        "User-Agent": config.user_agent,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
    }
    async with httpx.AsyncClient(
        timeout=config.timeout_s,
        trust_env=False,
        headers=headers,
        transport=transport(config.allow_private),
    ) as client:
        for _ in range(config.max_redirects + 1):
            await check_url(url, config.allow_private)
            try:
                async with client.stream("GET", url) as reply:
                    if reply.is_redirect and "location" in reply.headers:
                        url = urljoin(url, reply.headers["location"])
                        continue
                    body, cut = bytearray(), False
                    async for chunk in reply.aiter_bytes():
                        body += chunk
                        if len(body) > config.max_bytes:
                            body, cut = body[: config.max_bytes], True
                            break
                    return reply, bytes(body), cut
            except httpx.TimeoutException:
                raise ToolError(f"{url} did not answer within {config.timeout_s:g} s.") from None
            except httpx.HTTPError as exc:
                raise ToolError(f"could not fetch {url}: {exc}") from None
    raise ToolError(
        f"more than {config.max_redirects} redirects starting from the given URL; giving up."
    )


def to_text(
    body: bytes, content_type: str, encoding: str, url: str, raw: bool
) -> tuple[str, str | None]:
    """Main text (markdown) and title of a page; `raw` keeps the HTML source."""
    text = body.decode(encoding or "utf-8", errors="replace")
    if raw or "html" not in content_type:
        return text, None
    import trafilatura

    extracted = trafilatura.extract(
        text,
        url=url,
        output_format="markdown",
        include_links=True,
        include_tables=True,
        favor_recall=True,
    )
    meta = trafilatura.extract_metadata(text)
    return extracted or trafilatura.html2txt(text), meta.title if meta else None


def build_server(config: WebConfig | None = None) -> FastMCP:
    """A web server; the search backend and the private-address rule come from `config`."""
    config = config or WebConfig.from_env()
    backend = pick_backend(config)
    pages: OrderedDict[tuple[str, bool], tuple[httpx.Response, str, str | None, bool]] = (
        OrderedDict()
    )
    mcp = FastMCP(
        "web", instructions="Search the web and read pages as clean text.", mask_error_details=True
    )

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=500, description="search terms")],
        max_results: Annotated[int, Field(ge=1, le=20)] = 8,
        page: Annotated[int, Field(ge=1, le=10, description="result page, for more hits")] = 1,
    ) -> SearchResults:
        """Search the web; returns titles, URLs and snippets. Read a hit with `fetch`."""
        if backend is None:
            raise ToolError(
                "no search backend is configured: set TOOLSERVERS_SEARXNG_URL to a SearxNG instance "
                "with JSON output enabled, or install the `ddgs` package. `fetch` works without one."
            )
        hits = await backend.search(query, max_results, page)
        return SearchResults(backend=backend.name, query=query, hits=hits)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def fetch(
        url: Annotated[str, Field(min_length=8, max_length=4000, description="an http(s) URL")],
        offset: Annotated[
            int, Field(ge=0, description="character offset; use next_offset from the last call")
        ] = 0,
        max_chars: Annotated[int, Field(ge=100, le=100_000)] = 20_000,
        raw: Annotated[
            bool, Field(description="return HTML source instead of extracted text")
        ] = False,
    ) -> Page:
        """Fetch a page and return its main text as markdown, in windows of `max_chars`."""
        key = (url, raw)
        if key not in pages:
            reply, body, cut = await download(url, config)
            if reply.status_code >= 400:
                raise ToolError(
                    f"{reply.url} answered HTTP {reply.status_code}; check the URL or try another source."
                )
            content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type and not content_type.startswith(TEXT_TYPES):
                raise ToolError(
                    f"{reply.url} is {content_type}, not a text page; fetch reads HTML and text only."
                )
            text, title = await asyncio.to_thread(
                to_text, body, content_type, reply.encoding or "utf-8", str(reply.url), raw
            )
            pages[key] = (reply, text, title, cut)
            if len(pages) > 16:
                pages.popitem(last=False)
        reply, text, title, cut = pages[key]
        part = window(text, offset, max_chars)
        return Page(
            url=url,
            final_url=str(reply.url),
            status=reply.status_code,
            content_type=reply.headers.get("content-type", ""),
            title=title,
            bytes_truncated=cut,
            **part.model_dump(),
        )

    return mcp


mcp = build_server()

if __name__ == "__main__":
    serve(mcp)
