"""AgentRuntime: what the server's lifespan and the CLI hold to run solve_task.

It owns the child-server pool (started once, in the background at start-up or on first use, and
kept open), the configured LLM backends (none is fine: then the caller's model through MCP sampling,
or a clear ConfigError), and the task group in which sampling runs wait between rounds.

    async with AgentRuntime(settings, memory) as agent:       # in the server lifespan
        result = await agent.solve_tool(ctx, task)            # in the solve_task tool
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Self

import anyio

from memento_mcp.agent.llm import LLM, NO_BACKEND_HELP, Backends, backends_from_settings
from memento_mcp.agent.loop import Limits, MemoryLike, ProgressCallback, solve
from memento_mcp.agent.sampling import (
    SamplingBridge,
    SamplingLLM,
    client_offers_sampling,
    is_modern,
    legacy_sender,
)
from memento_mcp.agent.steps import SolveResult
from memento_mcp.agent.toolhub import ToolHub, load_config
from memento_mcp.errors import ConfigError
from memento_mcp.settings import Settings


def limits_from_settings(settings: Settings) -> Limits:
    return Limits(
        max_cycles=settings.solve_max_cycles,
        max_steps=settings.solve_max_steps,
        deadline_s=settings.solve_deadline_s,
        max_tokens=settings.solve_max_tokens,
    )


class AgentRuntime:
    def __init__(
        self,
        settings: Settings,
        memory: MemoryLike | None = None,
        *,
        tools_config: dict[str, Any] | None = None,
        backends: Backends | None = None,
        limits: Limits | None = None,
        warm_start: bool = True,
        log_dir: Path | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.settings = settings
        self.memory = memory
        self._tools_config = tools_config
        self._backends = backends
        self._backend_error: ConfigError | None = None
        self.limits = limits or limits_from_settings(settings)
        self.warm_start = warm_start
        self._hub: ToolHub | None = None
        self._hub_lock = anyio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bridge: SamplingBridge | None = None

    async def __aenter__(self) -> Self:
        # Background work runs in plain asyncio tasks, not an anyio task group: a lifespan's exit
        # order is not ours to choose, and a task group entered here would have to exit here.
        self._bridge = SamplingBridge(self._spawn)
        if self.warm_start:
            self._spawn(self._warm())
        return self

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):  # parked sampling runs and a pending warm-up
            task.cancel()
        with anyio.CancelScope(shield=True):
            for task in list(self._tasks):
                with contextlib.suppress(BaseException):
                    await task
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
        if self._backends is not None:
            await self._backends.aclose()

    async def _warm(self) -> None:
        with contextlib.suppress(Exception):  # a broken config is reported on first use instead
            await self.tools()

    async def tools(self) -> ToolHub:
        """The child-server pool, started once (the first caller waits for the children)."""
        async with self._hub_lock:
            if self._hub is None:
                source = (
                    self._tools_config
                    if self._tools_config is not None
                    else self.settings.mcp_servers
                )
                hub = ToolHub(
                    load_config(source),
                    log_dir=self.log_dir,
                    call_timeout_s=self.settings.tool_timeout_s,
                )
                with anyio.CancelScope(
                    shield=True
                ):  # a cancelled caller must not leave half a pool
                    await hub.start()
                self._hub = hub
            return self._hub

    def backends(self) -> Backends | None:
        """The configured OpenAI-compatible backends, or None when none is configured."""
        if self._backends is None and self._backend_error is None:
            try:
                timeout = self.settings.llm_timeout_s
                self._backends = backends_from_settings(self.settings, timeout_s=timeout)
            except ConfigError as exc:
                self._backend_error = exc
        return self._backends

    async def solve(
        self,
        task: str,
        *,
        planner: LLM | None = None,
        executor: LLM | None = None,
        namespace: str | None = None,
        max_cycles: int | None = None,
        expected_answer: str | None = None,
        on_progress: ProgressCallback | None = None,
        memory: MemoryLike | None = None,
    ) -> SolveResult:
        """One run; `memory` is the caller's view of the bank (its tenant), else the server's."""
        backends = self.backends()
        if planner is None or executor is None:
            if backends is None:
                raise ConfigError(NO_BACKEND_HELP)
            planner, executor = backends.planner, backends.executor
        limits = self.limits
        if max_cycles is not None:
            limits = Limits(**{**limits.__dict__, "max_cycles": max_cycles})
        if self._hub is None and on_progress is not None:
            await on_progress(0.0, None, "starting the tool servers")
        hub = await self.tools()
        hub.require_tools()
        return await solve(
            task,
            planner=planner,
            executor=executor,
            tools=hub,
            memory=memory or self.memory,
            namespace=namespace,
            limits=limits,
            expected_answer=expected_answer,
            judge_llm=backends.judge if backends else None,
            on_progress=on_progress,
        )

    async def solve_tool(
        self,
        ctx: Any,
        task: str,
        *,
        namespace: str | None = None,
        max_cycles: int | None = None,
        expected_answer: str | None = None,
        memory: MemoryLike | None = None,
    ) -> Any:
        """The solve_task tool body: configured endpoint first, else the caller's model via sampling.

        Returns a SolveResult, or (2026-07-28 sampling) an InputRequiredResult for the next round.
        """

        async def progress(value: float, total: float | None, message: str) -> None:
            await ctx.report_progress(progress=value, total=total, message=message)

        kwargs: dict[str, Any] = {
            "namespace": namespace,
            "max_cycles": max_cycles,
            "expected_answer": expected_answer,
            "memory": memory,
        }
        if self.backends() is not None:
            return await self.solve(task, on_progress=progress, **kwargs)
        if client_offers_sampling(ctx) and not client_offers_sampling(ctx, tools=True):
            raise ConfigError(
                "This client offers MCP sampling but without tool use (sampling.tools), which the "
                "executor needs to call tools. " + NO_BACKEND_HELP
            )
        if ctx.request_state is not None or (client_offers_sampling(ctx) and is_modern(ctx)):
            assert self._bridge is not None, "AgentRuntime used outside its context"

            async def start(llm: SamplingLLM, bridge_progress: ProgressCallback) -> SolveResult:
                return await self.solve(
                    task, planner=llm, executor=llm, on_progress=bridge_progress, **kwargs
                )

            return await self._bridge.round(ctx, start)
        if client_offers_sampling(ctx):
            llm = SamplingLLM(legacy_sender(ctx))
            return await self.solve(task, planner=llm, executor=llm, on_progress=progress, **kwargs)
        raise ConfigError(NO_BACKEND_HELP)
