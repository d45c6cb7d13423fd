"""The child MCP tool servers behind solve_task: connected once, kept open, restarted when they die.

`ToolHub` reads a Claude-Desktop-style `{"mcpServers": {...}}` config. `ClientGroup.from_config`
builds one independent client per server; the hub connects them one by one (so a child that fails
to start does not take the others down), lists their tools under `<server>_<tool>` names, and
routes calls. A child that crashes is marked dead and restarted on its next use; the call that saw
it die gets an error result, never an exception, so the executor shows it to the model.

Environment: a stdio child gets only what the MCP SDK passes by default (HOME, LOGNAME, PATH,
SHELL, TERM, USER) plus the `env` its config entry names; no API key leaks to a child by accident.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import anyio
import mcp.types as mt

from memento_mcp.errors import ConfigError, ToolServerError

if TYPE_CHECKING:  # fastmcp's client (auth, key-value stores) loads when a hub starts: ~0.4 s
    from fastmcp import Client

_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")
MAX_RESULT_CHARS = 8000


@dataclass(frozen=True)
class HubTool:
    """One child tool under its public (namespaced) name, as the model sees it."""

    name: str
    server: str
    upstream: str
    description: str
    input_schema: dict[str, Any]

    def openai_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description[:1024],
                "parameters": self.input_schema or {"type": "object", "properties": {}},
            },
        }


@dataclass
class ToolOutcome:
    """A tool's result as text for the model; `is_error` when the tool or its server failed."""

    text: str
    is_error: bool
    elapsed_s: float
    structured: Any = None


def public_name(server: str, tool: str) -> str:
    """`<server>_<tool>`, limited to OpenAI's ^[a-zA-Z0-9_-]{1,64}$."""
    name = _NAME_OK.sub("_", f"{server}_{tool}")
    if len(name) > 64:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


def load_config(source: Path | str | dict[str, Any] | None) -> dict[str, Any]:
    """An mcpServers config from a dict, a JSON file, or (None) our own toolservers."""
    if source is None:
        try:
            from toolservers import default_mcp_servers
        except ImportError as exc:
            raise ConfigError(
                "No mcp_servers file is configured and the default toolservers package is missing; "
                "set MEMENTO_MCP_SERVERS to a JSON file with an mcpServers map."
            ) from exc
        config: Any = default_mcp_servers()
    elif isinstance(source, dict):
        config = source
    else:
        path = Path(source).expanduser()
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read the mcpServers file {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("mcpServers"), dict):
        raise ConfigError(
            'The tool server config must be a JSON object {"mcpServers": {name: {...}}}.'
        )
    return config


def result_text(result: mt.CallToolResult, max_chars: int = MAX_RESULT_CHARS) -> str:
    """Text or JSON for the model, never a Python repr; long results are cut with a note."""
    structured = result.structured_content
    if structured is not None and not result.is_error:
        value = (
            structured.get("result", structured) if list(structured) == ["result"] else structured
        )
        text = (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )
    else:
        parts: list[str] = []
        for block in result.content:
            if isinstance(block, mt.TextContent):
                parts.append(block.text)
            elif isinstance(block, mt.ImageContent):
                parts.append(f"[image {block.mime_type}, {len(block.data)} base64 chars]")
            elif isinstance(block, mt.EmbeddedResource):
                res = block.resource
                parts.append(
                    res.text
                    if isinstance(res, mt.TextResourceContents)
                    else f"[resource {res.uri}]"
                )
            elif isinstance(block, mt.ResourceLink):
                parts.append(f"[resource link {block.uri}]")
            else:
                parts.append(f"[{getattr(block, 'type', 'content')}]")
        text = "\n".join(parts)
    if len(text) > max_chars:
        text = f"{text[:max_chars]}\n[... {len(text) - max_chars} more characters cut]"
    return text


class ToolHub:
    """A pool of child MCP servers; use `async with ToolHub(config) as hub:` or start()/close()."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        call_timeout_s: float = 120.0,
        connect_timeout_s: float = 60.0,
        max_result_chars: int = MAX_RESULT_CHARS,
        log_dir: Path | None = None,
        restart_cooldown_s: float = 10.0,
    ) -> None:
        self.config = load_config(config)
        if not self.config["mcpServers"]:
            raise ConfigError(
                "The mcpServers map is empty: solve_task needs at least one tool server."
            )
        from fastmcp.client.group import ClientGroup
        from fastmcp.client.transports import StdioTransport

        self._group = ClientGroup.from_config(self.config)
        self.clients: dict[str, Client[Any]] = dict(self._group.clients)
        if log_dir is not None:
            # Children's stderr goes to <log_dir>/<server>.log instead of ours (the CLI's live view).
            log_dir.mkdir(parents=True, exist_ok=True)
            for name, client in self.clients.items():
                if isinstance(client.transport, StdioTransport):
                    client.transport.log_file = log_dir / f"{name}.log"
        self.call_timeout_s = call_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_result_chars = max_result_chars
        self.tools: dict[str, HubTool] = {}
        self.dead: dict[str, str] = {}  # server -> why it is down
        self.restarts: dict[str, int] = {name: 0 for name in self.clients}
        self._locks = {name: anyio.Lock() for name in self.clients}
        # A child that will not come back is retried at most this often, not on every call.
        self.restart_cooldown_s = restart_cooldown_s
        self._restarted_at: dict[str, float] = {}
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Spawn every child concurrently; a child that fails to start is recorded in `dead`."""
        if self._started:
            return
        self._started = True
        async with anyio.create_task_group() as tg:
            for name in self.clients:
                tg.start_soon(self._connect, name)

    async def close(self) -> None:
        self._started = False
        with anyio.CancelScope(shield=True):
            for client in self.clients.values():
                if client.is_connected() or client._session_state.nesting_counter:
                    with anyio.move_on_after(5), contextlib.suppress(Exception):
                        await client.close()  # type: ignore[no-untyped-call]

    async def _connect(self, name: str) -> None:
        client = self.clients[name]
        try:
            with anyio.fail_after(self.connect_timeout_s):
                await client.__aenter__()  # type: ignore[no-untyped-call]
                listed = await client.list_tools()
        except Exception as exc:  # noqa: BLE001 - a child that cannot start is data for the executor
            self.dead[name] = f"failed to start: {type(exc).__name__}: {exc}"
            return
        self.dead.pop(name, None)
        for key in [k for k, t in self.tools.items() if t.server == name]:
            del self.tools[key]
        for tool in listed:
            hub_tool = HubTool(
                public_name(name, tool.name),
                name,
                tool.name,
                tool.description or "",
                dict(tool.input_schema or {}),
            )
            self.tools[hub_tool.name] = hub_tool

    async def restart(self, name: str) -> None:
        """Close whatever is left of a child and spawn it again."""
        client = self.clients[name]
        # close() re-raises whatever killed the old session (a failed start, a crash): expected here.
        with anyio.move_on_after(5), contextlib.suppress(Exception):
            await client.close()  # type: ignore[no-untyped-call]
        self.restarts[name] += 1
        self._restarted_at[name] = time.monotonic()
        await self._connect(name)

    def openai_tools(self) -> list[dict[str, Any]]:
        return [t.openai_spec() for t in self.tools.values()]

    def catalog(self) -> str:
        """One line per tool for the planner's prompt."""
        lines = [
            f"- {t.name}: {t.description.splitlines()[0] if t.description else ''}"
            for t in self.tools.values()
        ]
        lines += [f"- (server {name} is unavailable: {why})" for name, why in self.dead.items()]
        return "\n".join(lines) or "(no tools available)"

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Call a tool by public name. Unknown tools, dead servers and tool errors come back as errors."""
        started = time.perf_counter()
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return ToolOutcome(f"Unknown tool {name!r}. Available tools: {known}.", True, 0.0)
        server = tool.server
        if server in self.dead or not self.clients[server].is_connected():
            async with self._locks[server]:
                recent = (
                    time.monotonic() - self._restarted_at.get(server, -1e9)
                    < self.restart_cooldown_s
                )
                if (server in self.dead or not self.clients[server].is_connected()) and not recent:
                    await self.restart(server)
            if server in self.dead:
                return ToolOutcome(
                    f"Tool server {server!r} is down ({self.dead[server]}); it is restarted at "
                    f"most every {self.restart_cooldown_s:g}s. Try another tool or report the failure.",
                    True,
                    time.perf_counter() - started,
                )
        try:
            result = await self.clients[server].call_tool_mcp(
                tool.upstream, arguments, timeout=self.call_timeout_s
            )
        except Exception as exc:  # noqa: BLE001 - a dead child or transport error is data for the model
            elapsed = time.perf_counter() - started
            text = str(exc)
            if "timed out" in text.lower():
                return ToolOutcome(
                    f"Tool {name} timed out after {self.call_timeout_s:g}s.", True, elapsed
                )
            self.dead[server] = f"crashed: {text}"
            return ToolOutcome(
                f"Tool server {server!r} crashed while running {name} ({text}); it will be restarted "
                "on the next call, which may be retried.",
                True,
                elapsed,
            )
        return ToolOutcome(
            result_text(result, self.max_result_chars),
            bool(result.is_error),
            time.perf_counter() - started,
            result.structured_content,
        )

    def require_tools(self) -> None:
        if not self.tools and self.dead:
            raise ToolServerError(
                "No tool server is running: " + "; ".join(f"{k}: {v}" for k, v in self.dead.items())
            )
