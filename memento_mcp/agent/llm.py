"""The language model behind the planner and the executor.

`LLM` is the one interface the loop sees: `complete(messages, tools=None, json_reply=False)` returns
a `Reply` (text and/or tool calls, token usage, latency). `OpenAILLM` speaks to any
OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp server, LM Studio) and is the
single place where `openai` exceptions become `LLMError`s. `SamplingLLM` (sampling.py) and
`ScriptedLLM` (scripted.py) implement the same protocol.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from memento_mcp.errors import ConfigError, LLMBadReply, LLMError, LLMRateLimited, LLMTimeout
from memento_mcp.settings import Settings

if TYPE_CHECKING:  # openai costs 0.25 s to import: only solve_task's backends need it
    import openai

JsonMode = Literal["json_object", "none"]

NO_BACKEND_HELP = (
    "No LLM backend is configured for solve_task. Set MEMENTO_LLM_BASE_URL (any OpenAI-compatible "
    "endpoint, e.g. http://127.0.0.1:11434/v1 for Ollama), MEMENTO_LLM_API_KEY (or OPENAI_API_KEY) "
    "and MEMENTO_PLANNER_MODEL / MEMENTO_EXECUTOR_MODEL, or put llm_base_url, llm_api_key, "
    "planner_model and executor_model in <home>/config.toml. Alternatively call solve_task from a "
    "client that offers MCP sampling. The other tools (retrieve_cases, record_outcome) work without it."
)


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; `arguments` is the raw JSON text it wrote."""

    id: str
    name: str
    arguments: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class Reply:
    """What the model said: text, tool calls, or both."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""

    def assistant_message(self) -> dict[str, Any]:
        """The OpenAI chat message that replays this reply in a later request."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message


class LLM(Protocol):
    """Anything that can answer a chat: an OpenAI-compatible endpoint, the caller's model, a script."""

    name: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_reply: bool = False,
        max_tokens: int | None = None,
    ) -> Reply: ...


@dataclass
class RetryPolicy:
    """429, 5xx and connection failures are retried with exponential backoff and jitter."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff: float = self.base_delay_s * 2.0**attempt
        return min(backoff * (0.5 + random.random() / 2), self.max_delay_s)


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAILLM:
    """One model on an OpenAI-compatible endpoint. Planner and executor may share a client."""

    def __init__(
        self,
        model: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        json_mode: JsonMode = "json_object",
        temperature: float | None = 0.0,
    ) -> None:
        if client is None:
            client = make_client(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
        self.client = client
        self.model = model
        self.name = f"openai:{model}"
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.json_mode: JsonMode = json_mode
        self.temperature = temperature

    async def aclose(self) -> None:
        """Close the HTTP pool (shared clients are closed once; closing twice is harmless)."""
        await self.client.close()

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_reply: bool = False,
        max_tokens: int | None = None,
    ) -> Reply:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "timeout": self.timeout_s,
        }
        if tools:
            kwargs["tools"] = tools
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        use_json = json_reply and not tools and self.json_mode == "json_object"
        if use_json:
            kwargs["response_format"] = {"type": "json_object"}
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                response = await self.client.chat.completions.create(**kwargs)
            except openai.APITimeoutError as exc:
                raise LLMTimeout(
                    f"{self.model} gave no reply within {self.timeout_s:g}s at {self.client.base_url}"
                ) from exc
            except openai.BadRequestError as exc:
                text = str(exc).lower()
                if use_json and ("response_format" in text or "json" in text):
                    # Backends without JSON mode (some llama.cpp/LM Studio builds) reject the field:
                    # fall back to the tolerant parser for the rest of this client's life.
                    self.json_mode = "none"
                    use_json = False
                    kwargs.pop("response_format", None)
                    continue
                raise LLMError(f"{self.model} rejected the request: {_message(exc)}") from exc
            except openai.AuthenticationError as exc:
                raise LLMError(
                    f"The LLM endpoint {self.client.base_url} refused the API key "
                    "(set MEMENTO_LLM_API_KEY or OPENAI_API_KEY)."
                ) from exc
            except openai.NotFoundError as exc:
                raise LLMError(
                    f"Model {self.model!r} or endpoint {self.client.base_url} not found: {_message(exc)}. "
                    "Check MEMENTO_PLANNER_MODEL / MEMENTO_EXECUTOR_MODEL and MEMENTO_LLM_BASE_URL."
                ) from exc
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APIConnectionError,
            ) as exc:
                if attempt + 1 >= self.retry.attempts:
                    if isinstance(exc, openai.RateLimitError):
                        raise LLMRateLimited(
                            f"{self.model} answered 429 (rate limited) {attempt + 1} times; retry later."
                        ) from exc
                    raise LLMError(
                        f"{self.model} failed after {attempt + 1} attempts: {_message(exc)}"
                    ) from exc
                after = _retry_after(exc) if isinstance(exc, openai.APIStatusError) else None
                await anyio.sleep(self.retry.delay(attempt, after))
                attempt += 1
                continue
            except openai.APIStatusError as exc:
                raise LLMError(
                    f"{self.model} failed with HTTP {exc.status_code}: {_message(exc)}"
                ) from exc
            except openai.OpenAIError as exc:
                raise LLMError(f"{self.model} failed: {exc}") from exc
            return _reply_of(response, self.model, time.perf_counter() - started)


def _message(exc: openai.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
    return str(exc)[:500]


def _reply_of(response: Any, model: str, latency: float) -> Reply:
    if not getattr(response, "choices", None):
        raise LLMBadReply(f"{model} returned no choices")
    message = response.choices[0].message
    calls = [
        ToolCall(
            id=c.id or f"call_{i}", name=c.function.name, arguments=c.function.arguments or "{}"
        )
        for i, c in enumerate(message.tool_calls or [])
        if getattr(c, "function", None) is not None
    ]
    usage = Usage()
    if response.usage is not None:
        usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
    return Reply(
        content=message.content, tool_calls=calls, usage=usage, latency_s=latency, model=model
    )


def make_client(
    *, base_url: str | None, api_key: str | None, timeout_s: float = 120.0
) -> openai.AsyncOpenAI:
    import openai

    if not base_url and not api_key:
        raise ConfigError(NO_BACKEND_HELP)
    # Local servers (Ollama, llama.cpp, vLLM, LM Studio) accept any key; openai insists on one.
    # max_retries=0: OpenAILLM owns retries so that their count and backoff are ours to bound.
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0
    )


@dataclass
class Backends:
    """The planner and executor models of one configuration."""

    planner: LLM
    executor: LLM
    judge: LLM | None = None

    async def aclose(self) -> None:
        for llm in (self.planner, self.executor, self.judge):
            close = getattr(llm, "aclose", None)
            if close is not None:
                await close()


def backends_from_settings(
    settings: Settings, *, timeout_s: float = 120.0, retry: RetryPolicy | None = None
) -> Backends:
    """Build the two models from Settings; raises ConfigError with set-up help when none is configured."""
    base_url = settings.llm_base_url
    api_key = settings.llm_api_key
    planner_model = settings.planner_model
    executor_model = settings.executor_model or planner_model
    if not (base_url or api_key) or not planner_model:
        raise ConfigError(NO_BACKEND_HELP)
    client = make_client(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    planner = OpenAILLM(planner_model, client=client, timeout_s=timeout_s, retry=retry)
    executor = OpenAILLM(
        executor_model or planner_model, client=client, timeout_s=timeout_s, retry=retry
    )
    judge_model = settings.judge_model
    judge = (
        OpenAILLM(judge_model, client=client, timeout_s=timeout_s, retry=retry)
        if judge_model
        else None
    )
    return Backends(planner=planner, executor=executor, judge=judge)


# --- tolerant JSON ----------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def parse_json_object(text: str | None) -> dict[str, Any]:
    """The first JSON object in a reply: bare, inside a ``` fence, or surrounded by prose.

    Raises ValueError with a message written for the model when there is none.
    """
    if not text or not text.strip():
        raise ValueError("the reply was empty")
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        candidates.append(_balanced(text, start))
    error = "no JSON object found"
    decoder = json.JSONDecoder()
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError as exc:
            error = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            continue
        if isinstance(value, dict):
            return value
    raise ValueError(error)


def _balanced(text: str, start: int) -> str:
    depth, in_string, escape = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]
