"""The web server against pages and a fake SearxNG served from 127.0.0.1 only."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from toolservers import web
from toolservers.web import WebConfig, build_server

pytestmark = pytest.mark.anyio
ARTICLE = """<html><head><title>Otters at Dawn</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article><h1>Otters at Dawn</h1>
<p>River otters hunt mostly at dawn and dusk, when fish are slow and the light is low.</p>
<p>A single otter can eat up to fifteen percent of its body weight every day, which keeps it busy.</p>
<p>Their dense fur traps a layer of air, keeping them warm in cold water for hours on end.</p>
</article><footer>Copyright 2026 Example Wildlife Trust. All rights reserved.</footer></body></html>"""


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        parts = urlsplit(self.path)
        routes: dict[str, tuple[int, str, bytes]] = {
            "/article": (200, "text/html; charset=utf-8", ARTICLE.encode()),
            "/long": (200, "text/plain", "".join(f"row {i:04d}\n" for i in range(2000)).encode()),
            "/binary": (200, "application/octet-stream", b"\x00\x01\x02"),
            "/missing": (404, "text/plain", b"not here"),
        }
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/article")
            self.end_headers()
            return
        if parts.path == "/slow":
            time.sleep(3)
        if parts.path == "/search":
            q = parse_qs(parts.query)
            results = [
                {
                    "title": f"Result {i} for {q['q'][0]}",
                    "url": f"http://example.org/{i}",
                    "content": f"snippet {i}",
                }
                for i in range(5)
            ]
            routes["/search"] = (
                200,
                "application/json",
                json.dumps({"query": q["q"][0], "results": results}).encode(),
            )
        status, ctype, body = routes.get(parts.path, (200, "text/plain", b"slow done"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first: what the timeout test wants


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def open_server(**overrides: object) -> FastMCP:
    return build_server(WebConfig(**{"allow_private": True, **overrides}))  # type: ignore[arg-type]


async def call(server: FastMCP, tool: str, **args: object) -> dict:
    async with Client(server) as c:
        return (await c.call_tool(tool, args)).structured_content


async def test_fetch_extracts_main_text(site: str) -> None:
    out = await call(open_server(), "fetch", url=f"{site}/article")
    assert out["title"] == "Otters at Dawn" and out["status"] == 200
    assert "fifteen percent of its body weight" in out["text"]
    assert "All rights reserved" not in out["text"] and "About us" not in out["text"]
    raw = await call(open_server(), "fetch", url=f"{site}/article", raw=True)
    assert "<nav>" in raw["text"]


async def test_fetch_follows_redirects(site: str) -> None:
    out = await call(open_server(), "fetch", url=f"{site}/redirect")
    assert out["final_url"] == f"{site}/article" and "otters" in out["text"].lower()


async def test_fetch_windows_and_byte_limit(site: str) -> None:
    server = open_server()
    first = await call(server, "fetch", url=f"{site}/long", max_chars=1000)
    assert first["next_offset"] == 1000 and "offset=1000" in first["hint"]
    second = await call(server, "fetch", url=f"{site}/long", max_chars=1000, offset=1000)
    full = "".join(f"row {i:04d}\n" for i in range(2000))
    assert first["text"] + second["text"] == full[:2000]
    capped = await call(open_server(max_bytes=500), "fetch", url=f"{site}/long")
    assert capped["bytes_truncated"] and len(capped["text"]) == 500


async def test_fetch_errors_are_clear(site: str) -> None:
    server = open_server(timeout_s=1)
    for path, message in [
        ("/missing", "HTTP 404"),
        ("/binary", "application/octet-stream"),
        ("/slow", "within 1 s"),
    ]:
        with pytest.raises(ToolError, match=message):
            await call(server, "fetch", url=f"{site}{path}")
    for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)"]:
        with pytest.raises(ToolError, match="not an http"):
            await call(server, "fetch", url=url)


async def test_private_addresses_refused_by_default(site: str) -> None:
    server = build_server(WebConfig())
    before = len(Handler.requests)
    port = site.rsplit(":", 1)[1]
    for url in [
        f"{site}/article",
        f"http://localhost:{port}/article",
        f"http://[::1]:{port}/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://192.168.1.1/",
    ]:
        with pytest.raises(ToolError, match="non-public address"):
            await call(server, "fetch", url=url)
    assert len(Handler.requests) == before  # refused before any connection


async def test_search_through_searxng(site: str) -> None:
    out = await call(open_server(searxng_url=site), "search", query="river otters", max_results=3)
    assert out["backend"] == "searxng"
    assert [h["title"] for h in out["hits"]] == [f"Result {i} for river otters" for i in range(3)]
    assert any(p.startswith("/search?") and "format=json" in p for p in Handler.requests)


async def test_search_without_backend_says_how_to_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        sys.modules, "ddgs", None
    )  # make sure the optional library counts as absent
    with pytest.raises(ToolError, match="TOOLSERVERS_SEARXNG_URL"):
        await call(build_server(WebConfig()), "search", query="anything")


async def test_search_falls_back_to_ddgs_library(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeDDGS:
        def text(self, query: str, max_results: int) -> list[dict[str, str]]:
            return [
                {"title": f"{query} {i}", "href": f"https://e.org/{i}", "body": "b"}
                for i in range(max_results)
            ]

    monkeypatch.setitem(sys.modules, "ddgs", types.SimpleNamespace(DDGS=FakeDDGS))
    out = await call(build_server(WebConfig()), "search", query="kelp", max_results=2, page=2)
    assert out["backend"] == "ddgs" and [h["url"] for h in out["hits"]] == [
        "https://e.org/2",
        "https://e.org/3",
    ]


async def test_connect_time_check_stops_dns_rebinding(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend the early check saw a public address (as a rebinding DNS server would arrange):
    # the connection layer resolves again and must still refuse loopback.
    async def looks_public(url: str, allow_private: bool) -> None:
        return None

    monkeypatch.setattr(web, "check_url", looks_public)
    before = len(Handler.requests)
    with pytest.raises(ToolError, match="non-public address"):
        await call(build_server(WebConfig()), "fetch", url=f"{site}/article")
    with pytest.raises(httpcore.ConnectError):
        await web.PublicOnlyBackend().connect_tcp("localhost", int(site.rsplit(":", 1)[1]))
    assert len(Handler.requests) == before
