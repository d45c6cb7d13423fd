"""Borrowing the calling client's model through MCP sampling (cheat sheet §5), both protocol eras.

`SamplingLLM` implements the `LLM` protocol over one function that sends a
`CreateMessageRequestParams` and returns the client's `CreateMessageResult[WithTools]`. Where that
request goes depends on the era of the connection:

* 2025-11-25 (legacy, SSE, `mode="legacy"`): `ctx.session.create_message(...)`, a server-initiated
  request answered while the tool call is still open (`legacy_sender`).
* 2026-07-28 (the default era): there is no server-initiated request. The tool answers with an
  `InputRequiredResult` carrying the sampling request, and the client calls the tool again with the
  model's reply. `SamplingBridge` keeps the solve loop running in the background between those
  rounds: each LLM call parks the run, the tool returns the parked request, the next round hands
  the reply back. One round per LLM call, so the client's `input_required_max_rounds` (10 by
  default in the SDK) bounds the run; raise it on the client for longer tasks.

Messages are translated from the OpenAI shape the loop uses: the system message becomes
`system_prompt`, assistant tool calls become `ToolUseContent`, tool results `ToolResultContent`.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as mt
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from memento_mcp.agent.llm import Reply, ToolCall, Usage
from memento_mcp.errors import LLMBadReply, LLMError, LLMTimeout

Sender = Callable[[mt.CreateMessageRequestParams], Awaitable[Any]]


def to_sampling_params(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, max_tokens: int
) -> mt.CreateMessageRequestParams:
    system = "\n\n".join(
        m["content"] for m in messages if m["role"] == "system" and m.get("content")
    )
    out: list[mt.SamplingMessage] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            block = mt.ToolResultContent(
                tool_use_id=message["tool_call_id"],
                content=[mt.TextContent(type="text", text=message.get("content") or "")],
                is_error=(message.get("content") or "").startswith("Error"),
            )
            previous = out[-1] if out else None
            if (
                previous is not None
                and previous.role == "user"
                and isinstance(previous.content, list)
                and all(isinstance(b, mt.ToolResultContent) for b in previous.content)
            ):
                previous.content.append(block)
            else:
                out.append(mt.SamplingMessage(role="user", content=[block]))
            continue
        blocks: list[Any] = []
        if message.get("content"):
            blocks.append(mt.TextContent(type="text", text=message["content"]))
        for call in message.get("tool_calls", []):
            try:
                arguments = json.loads(call["function"]["arguments"] or "{}")
            except json.JSONDecodeError:
                arguments = {"_raw": call["function"]["arguments"]}
            blocks.append(
                mt.ToolUseContent(id=call["id"], name=call["function"]["name"], input=arguments)
            )
        if not blocks:
            blocks.append(mt.TextContent(type="text", text=""))
        out.append(
            mt.SamplingMessage(
                role="assistant" if role == "assistant" else "user",
                content=blocks[0] if len(blocks) == 1 else blocks,
            )
        )
    sampling_tools = None
    if tools:
        sampling_tools = [
            mt.Tool(
                name=t["function"]["name"],
                description=t["function"].get("description"),
                input_schema=t["function"].get("parameters") or {"type": "object"},
            )
            for t in tools
        ]
    return mt.CreateMessageRequestParams(
        messages=out, system_prompt=system or None, max_tokens=max_tokens, tools=sampling_tools
    )


def reply_of(result: Any, latency_s: float) -> Reply:
    """A Reply from CreateMessageResult / CreateMessageResultWithTools (or a plain string)."""
    if isinstance(result, str):
        return Reply(content=result, latency_s=latency_s, model="sampling")
    if isinstance(result, mt.ErrorData):
        raise LLMError(f"The client's model failed: {result.message}")
    content = getattr(result, "content", None)
    if content is None:
        raise LLMBadReply(f"The client answered the sampling request with {type(result).__name__}")
    blocks = content if isinstance(content, list) else [content]
    texts = [b.text for b in blocks if isinstance(b, mt.TextContent)]
    calls = [
        ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input))
        for b in blocks
        if isinstance(b, mt.ToolUseContent)
    ]
    return Reply(
        content="\n".join(texts) if texts else None,
        tool_calls=calls,
        usage=Usage(),
        latency_s=latency_s,
        model=getattr(result, "model", "sampling"),
    )


class SamplingLLM:
    """The client's own model as an `LLM`; `send` delivers one sampling request."""

    def __init__(self, send: Sender, *, max_tokens: int = 4096, timeout_s: float = 300.0) -> None:
        self.send = send
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.name = "mcp-sampling"

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_reply: bool = False,
        max_tokens: int | None = None,
    ) -> Reply:
        params = to_sampling_params(messages, tools, max_tokens or self.max_tokens)
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.timeout_s):
                result = await self.send(params)
        except TimeoutError as exc:
            raise LLMTimeout(
                f"The client's model gave no reply within {self.timeout_s:g}s"
            ) from exc
        except LLMError:
            raise
        except Exception as exc:
            raise LLMError(f"The client's sampling request failed: {exc}") from exc
        return reply_of(result, time.perf_counter() - started)


def client_offers_sampling(ctx: Any, *, tools: bool = False) -> bool:
    """Did the caller declare the sampling capability (with tool use, when `tools`)?"""
    try:
        capabilities = ctx.session.client_capabilities
    except Exception:  # noqa: BLE001 - no session (outside a request) means no sampling
        return False
    sampling = capabilities.sampling if capabilities is not None else None
    if sampling is None:
        return False
    return not tools or sampling.tools is not None


def is_modern(ctx: Any) -> bool:
    rc = getattr(ctx, "request_context", None)
    return rc is not None and rc.protocol_version in MODERN_PROTOCOL_VERSIONS


def legacy_sender(ctx: Any) -> Sender:
    """2025-11-25: a server-initiated sampling/createMessage on the open session."""

    async def send(params: mt.CreateMessageRequestParams) -> Any:
        kwargs = params.model_dump(
            exclude_none=True, exclude={"messages", "method", "meta", "task"}
        )
        kwargs["messages"] = params.messages
        with warnings.catch_warnings():  # legacy on purpose: this is the 2025-11-25 path
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            return await ctx.session.create_message(**kwargs)

    return send


# --- 2026-07-28: InputRequiredResult rounds --------------------------------------------------


ProgressFn = Callable[[float, float | None, str], Awaitable[None]]
REPLICA = secrets.token_hex(4)
"""This process among the replicas of a deployment: prefixes its runs' request_state."""


@dataclass
class ParkedRun:
    """A solve loop suspended between rounds, waiting for the client's model."""

    id: str
    requests: Any  # (send, receive) memory streams: the run's LLM requests and its end
    replies: Any  # (send, receive): the client's replies, one per round
    ctx: Any = None  # the current round's Context, for progress notifications
    cancel: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class SamplingBridge:
    """Runs solve loops in the background and turns their LLM calls into InputRequiredResults.

    `spawn` starts a coroutine that outlives the tool call (AgentRuntime keeps and cancels them).
    A run whose client does not come back within `idle_timeout_s` ends as an LLMTimeout.
    """

    KEY = "memento_llm"

    def __init__(self, spawn: Callable[[Any], None], *, idle_timeout_s: float = 300.0) -> None:
        self.spawn = spawn
        self.idle_timeout_s = idle_timeout_s
        self.runs: dict[str, ParkedRun] = {}
        self.replica = REPLICA

    async def round(
        self,
        ctx: Any,
        start: Callable[[SamplingLLM, ProgressFn], Awaitable[Any]],
    ) -> Any:
        """One tools/call round: start a run or feed it the client's reply; return the next
        InputRequiredResult or the run's final result."""
        run_id = ctx.request_state
        responses = ctx.input_responses
        if run_id and run_id in self.runs and responses and self.KEY in responses:
            run = self.runs[run_id]
            run.ctx = ctx
            await run.replies[0].send(responses[self.KEY])
        elif run_id and run_id not in self.runs:
            if not run_id.startswith(f"{self.replica}."):
                # Several replicas behind a load balancer: the run lives in the process that
                # started it (a suspended coroutine), so its rounds need session affinity.
                raise LLMError(
                    "This solve_task run is held by another server replica: this deployment"
                    " must send all rounds of one solve_task call to the same replica (session"
                    " affinity, see docs/deploy.md); call solve_task again."
                )
            raise LLMError(
                "This solve_task run is no longer known to the server (it timed out or the "
                "server restarted); call solve_task again."
            )
        else:
            run = self._start(start)
            run.ctx = ctx
        return await self._next_event(run)

    def _start(self, start: Callable[[SamplingLLM, ProgressFn], Awaitable[Any]]) -> ParkedRun:
        run_id = f"{self.replica}.{secrets.token_urlsafe(16)}"
        # Unbounded: the run never blocks on reporting its end, even if no round is listening.
        req_send, req_recv = anyio.create_memory_object_stream[Any](math.inf)
        rep_send, rep_recv = anyio.create_memory_object_stream[Any](1)
        run = ParkedRun(id=run_id, requests=(req_send, req_recv), replies=(rep_send, rep_recv))
        self.runs[run_id] = run

        async def progress(value: float, total: float | None, message: str) -> None:
            with anyio.move_on_after(2):
                try:
                    await run.ctx.report_progress(progress=value, total=total, message=message)
                except Exception:  # noqa: BLE001, S110 - the round's request is gone; progress is best effort
                    pass

        async def send(params: mt.CreateMessageRequestParams) -> Any:
            await req_send.send(("llm", params))
            with anyio.fail_after(self.idle_timeout_s):
                return await rep_recv.receive()

        async def body() -> None:
            with run.cancel:
                try:
                    result = await start(
                        SamplingLLM(send, timeout_s=self.idle_timeout_s + 5), progress
                    )
                    await req_send.send(("done", result))
                except Exception as exc:  # noqa: BLE001 - handed to the round that is waiting, re-raised there
                    await req_send.send(("error", exc))
            self.runs.pop(run_id, None)

        self.spawn(body())
        return run

    async def _next_event(self, run: ParkedRun) -> Any:
        try:
            kind, value = await run.requests[1].receive()
        except BaseException:
            run.cancel.cancel()  # the client cancelled this round: stop the run too
            self.runs.pop(run.id, None)
            raise
        if kind == "llm":
            return mt.InputRequiredResult(
                result_type="input_required",
                request_state=run.id,
                input_requests={
                    self.KEY: mt.CreateMessageRequest(method="sampling/createMessage", params=value)
                },
            )
        self.runs.pop(run.id, None)
        if kind == "error":
            raise value
        return value
