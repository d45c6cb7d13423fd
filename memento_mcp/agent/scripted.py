"""A scripted language model: the fake that tests, the bench and demos share (style.md §7).

A `Script` maps a model name to a queue of turns; a turn is a `Turn` or a function of the request
that returns one. `ScriptedServer` serves the script as a real OpenAI-compatible HTTP endpoint on
127.0.0.1 (so the real `openai` client and `OpenAILLM` are exercised), and `ScriptedLLM` plays it
in-process through the `LLM` protocol.

    script = Script({"planner": [say_json({"plan": [...]}), say_json({"final_answer": "4"})],
                     "executor": [call("math_add", a=2, b=2), say("4")]})
    with ScriptedServer(script, latency_s=0.05) as server:
        llm = OpenAILLM("planner", base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from memento_mcp.agent.llm import Reply, ToolCall, Usage
from memento_mcp.errors import LLMError, LLMRateLimited, LLMTimeout


@dataclass
class Turn:
    """One scripted reply: text and/or tool calls, or an HTTP error, after an optional delay."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error: str = ""
    retry_after: float | None = None
    delay_s: float = 0.0


TurnSource = Turn | Callable[[dict[str, Any]], Turn]


def say(text: str) -> Turn:
    return Turn(content=text)


def say_json(value: dict[str, Any]) -> Turn:
    return Turn(content=json.dumps(value))


def call(name: str, /, **arguments: Any) -> Turn:
    return Turn(tool_calls=[(name, arguments)])


def calls(*pairs: tuple[str, dict[str, Any]]) -> Turn:
    return Turn(tool_calls=list(pairs))


def fail(status: int, message: str = "scripted failure", retry_after: float | None = None) -> Turn:
    return Turn(status=status, error=message, retry_after=retry_after)


def slow(delay_s: float, turn: Turn) -> Turn:
    turn.delay_s = delay_s
    return turn


class Script:
    """Queues of turns keyed by model name ("*" serves any model); every request is recorded."""

    def __init__(
        self, queues: dict[str, Iterable[TurnSource]], *, default: TurnSource | None = None
    ) -> None:
        self.queues: dict[str, deque[TurnSource]] = {k: deque(v) for k, v in queues.items()}
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def next_turn(self, request: dict[str, Any]) -> Turn:
        with self._lock:
            self.requests.append(request)
            model = str(request.get("model", ""))
            queue = self.queues.get(model) or self.queues.get("*")
            source: TurnSource | None = queue.popleft() if queue else self.default
        if source is None:
            return fail(500, f"script exhausted for model {model!r}")
        return source(request) if callable(source) else source

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model]

    def call_id(self) -> str:
        return f"call_{next(self._ids)}"


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


def completion_body(script: Script, request: dict[str, Any], turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": script.call_id(),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in turn.tool_calls
        ]
    prompt, completion = _tokens(request.get("messages", [])), _tokens(message)
    return {
        "id": f"chatcmpl-{len(script.requests)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if turn.tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


class ScriptedServer:
    """The script as an OpenAI-compatible endpoint on 127.0.0.1, served from a background thread."""

    def __init__(self, script: Script, *, latency_s: float = 0.0) -> None:
        self.script = script
        self.latency_s = latency_s
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; without it each
        # response waits ~40 ms on Nagle + delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app,
            log_level="error",
            lifespan="off",
            timeout_graceful_shutdown=0.2,  # type: ignore[arg-type]  # a float works; typed int
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="scripted-llm", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    async def _models(self, request: Request) -> JSONResponse:
        names = [m for m in self.script.queues if m != "*"]
        return JSONResponse(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in names]}
        )

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        turn = self.script.next_turn(body)
        delay = self.latency_s + turn.delay_s
        if delay:
            await asyncio.sleep(delay)
        if turn.status != 200:
            headers = (
                {"retry-after": f"{turn.retry_after:g}"} if turn.retry_after is not None else None
            )
            error = {"error": {"message": turn.error, "type": "scripted", "code": turn.status}}
            return JSONResponse(error, status_code=turn.status, headers=headers)
        return JSONResponse(completion_body(self.script, body, turn))

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("scripted LLM server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ScriptedLLM:
    """The script played in-process through the `LLM` protocol (no HTTP)."""

    def __init__(self, script: Script, model: str, *, latency_s: float = 0.0) -> None:
        self.script = script
        self.model = model
        self.name = f"scripted:{model}"
        self.latency_s = latency_s

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_reply: bool = False,
        max_tokens: int | None = None,
    ) -> Reply:
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request["tools"] = tools
        started = time.perf_counter()
        turn = self.script.next_turn(request)
        if self.latency_s + turn.delay_s:
            await anyio.sleep(self.latency_s + turn.delay_s)
        if turn.status == 429:
            raise LLMRateLimited(turn.error)
        if turn.status == 408:
            raise LLMTimeout(turn.error)
        if turn.status != 200:
            raise LLMError(f"HTTP {turn.status}: {turn.error}")
        body = completion_body(self.script, request, turn)
        message = body["choices"][0]["message"]
        tool_calls = [
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls", [])
        ]
        usage = Usage(body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"])
        return Reply(
            message["content"], tool_calls, usage, time.perf_counter() - started, self.model
        )


def sampling_handler(script: Script, model: str = "sampler") -> Callable[..., Any]:
    """A fastmcp client `sampling_handler` that answers sampling requests from the script.

    The request is recorded in the OpenAI shape the script's functions expect (model, messages with
    the system prompt first); tool calls come back as ToolUseContent.
    """
    import mcp.types as mt

    async def handler(messages: Any, params: Any, context: Any) -> Any:
        chat: list[dict[str, Any]] = []
        if params.system_prompt:
            chat.append({"role": "system", "content": params.system_prompt})
        for message in params.messages:
            blocks = message.content if isinstance(message.content, list) else [message.content]
            text = "\n".join(
                getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text"
            )
            for block in blocks:
                if getattr(block, "type", "") == "tool_result":
                    inner = "\n".join(getattr(c, "text", "") for c in block.content)
                    chat.append(
                        {"role": "tool", "tool_call_id": block.tool_use_id, "content": inner}
                    )
            if text or message.role == "assistant":
                chat.append({"role": message.role, "content": text})
        request: dict[str, Any] = {"model": model, "messages": chat}
        if params.tools:
            request["tools"] = [t.name for t in params.tools]
        turn = script.next_turn(request)
        if turn.delay_s:
            await anyio.sleep(turn.delay_s)
        if turn.status != 200:
            raise RuntimeError(f"scripted sampling failure {turn.status}: {turn.error}")
        if turn.tool_calls:
            content: list[Any] = [
                mt.ToolUseContent(id=script.call_id(), name=name, input=args)
                for name, args in turn.tool_calls
            ]
            return mt.CreateMessageResultWithTools(
                role="assistant", content=content, model=model, stop_reason="toolUse"
            )
        return mt.CreateMessageResult(
            role="assistant",
            model=model,
            stop_reason="endTurn",
            content=mt.TextContent(type="text", text=turn.content or ""),
        )

    return handler
