"""Every server over real stdio, launched from default_mcp_servers() as memento-mcp launches them.

The five children start concurrently (ClientGroup connects in parallel), which keeps this one
test far cheaper than five sequential interpreter starts on a small machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastmcp.client.group import ClientGroup
from fastmcp.exceptions import ToolError

from toolservers import default_mcp_servers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class FakeSearxNG(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {"results": [{"title": "Otters", "url": "https://e.org/otters", "content": "fur"}]}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def searxng() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeSearxNG)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


async def test_all_servers_answer_over_stdio(tmp_path: Path, searxng: str) -> None:
    (tmp_path / "scores.csv").write_text("name,score\nada,91\nbob,78\n")
    (tmp_path / "page.html").write_text("<h1>Hi</h1>")
    config = default_mcp_servers(
        {
            "code": {"TOOLSERVERS_CODE_WORKSPACE": str(tmp_path / "ws")},
            "documents": {"TOOLSERVERS_DOCUMENTS_ROOT": str(tmp_path)},
            "tables": {"TOOLSERVERS_TABLES_ROOT": str(tmp_path)},
            "web": {"TOOLSERVERS_SEARXNG_URL": searxng},
        }
    )
    async with ClientGroup.from_config(config) as group:
        names = {t.name for t in await group.list_tools()}
        for expected in [
            "code_run_python",
            "code_sandbox_info",
            "math_solve",
            "documents_convert_document",
            "tables_aggregate",
            "web_fetch",
            "web_search",
        ]:
            assert expected in names

        async def call(tool: str, **args: object) -> dict:
            return (await group.call_tool(tool, args, timeout=60)).structured_content

        assert (await call("math_evaluate", expression="2**64"))["result"] == "18446744073709551616"
        assert (await call("tables_describe_table", path="scores.csv"))["rows"] == 2
        listed = (await call("documents_list_documents"))["result"]
        assert {d["path"] for d in listed} == {"page.html", "scores.csv"}
        hits = (await call("web_search", query="otters"))["hits"]
        assert hits == [{"title": "Otters", "url": "https://e.org/otters", "snippet": "fur"}]
        info = await call("code_sandbox_info")
        if info["runs_as_root"]:
            with pytest.raises(ToolError, match="refusing to run code"):
                await call("code_run_python", code="print(1)")
        else:
            assert (await call("code_run_python", code="print(sum(range(10)))"))["stdout"] == "45\n"
