"""`memento-mcp solve` and `memento-mcp eval`: solve_task from a terminal, with live progress.

`register(app)` adds both commands to the main typer app (memento_mcp/cli.py calls it).
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from memento_mcp.agent.judge import ANSWER_SPLIT
from memento_mcp.agent.steps import SolveResult
from memento_mcp.errors import MementoError
from memento_mcp.settings import Settings

if TYPE_CHECKING:  # the runtime (and its LLM clients) loads when a command runs, not on --help
    from memento_mcp.agent.runtime import AgentRuntime

console = Console()
errors = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _runtime(settings: Settings) -> AgentRuntime:
    from memento_mcp.agent.runtime import AgentRuntime
    from memento_mcp.memory import open_memory

    return AgentRuntime(
        settings, open_memory(settings), warm_start=True, log_dir=settings.home / "logs"
    )


def read_questions(path: Path) -> list[dict[str, str]]:
    """Memento's QA format: one JSON object per line with `question` and `ground_truth`
    (alternatives separated by <|answer_split|>); `answer` is accepted for ground_truth."""
    items: list[dict[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{path}:{number}: not JSON ({exc.msg})") from exc
        truth = row.get("ground_truth", row.get("answer"))
        if isinstance(truth, list):
            truth = ANSWER_SPLIT.join(str(t) for t in truth)
        if not isinstance(row.get("question"), str) or truth is None:
            raise typer.BadParameter(f"{path}:{number}: needs 'question' and 'ground_truth'")
        items.append({"question": row["question"], "ground_truth": str(truth)})
    return items


def _print_result(result: SolveResult) -> None:
    if result.steps:
        table = Table("cycle", "subtask", "tool", "result", title="tool calls", show_lines=False)
        for step in result.steps:
            style = "red" if step.is_error else ""
            table.add_row(
                str(step.cycle), str(step.subtask), step.tool, Text(step.result[:120], style=style)
            )
        console.print(table)
    colour = {"answered": "green", "best_effort": "yellow", "failed": "red"}[result.status]
    console.print(
        f"[bold]status:[/bold] [{colour}]{result.status}[/{colour}]"
        + (f"  ({result.error})" if result.error else "")
    )
    console.print(f"[bold]answer:[/bold] {result.answer}")
    u = result.usage
    console.print(
        f"[dim]request_id {result.request_id} · case {result.case_id} · {u.llm_calls} LLM calls, "
        f"{u.tool_calls} tool calls, {u.prompt_tokens}+{u.completion_tokens} tokens, "
        f"{u.wall_s:.1f}s · report how it went: record_outcome(request_id, reward)[/dim]"
    )


def solve(
    task: Annotated[str, typer.Argument(help="The task to solve")],
    namespace: Annotated[str | None, typer.Option(help="Case bank namespace")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, max=10, help="Planning cycles at most")] = 3,
    expected: Annotated[str | None, typer.Option(help="Ground truth; scores the run")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the SolveResult as JSON")] = False,
) -> None:
    """Solve a task with the planner-executor agent and child tool servers, showing progress."""
    settings = Settings()
    lines: deque[str] = deque(maxlen=12)
    started = time.perf_counter()

    async def run() -> SolveResult:
        with Live(
            Text("starting tool servers…"), console=errors, transient=True, refresh_per_second=8
        ) as live:

            async def progress(value: float, total: float | None, message: str) -> None:
                lines.append(f"{time.perf_counter() - started:6.1f}s  {message}")
                live.update(Text("\n".join(lines)))

            async with _runtime(settings) as agent:
                return await agent.solve(
                    task,
                    namespace=namespace,
                    max_cycles=max_cycles,
                    expected_answer=expected,
                    on_progress=progress,
                )

    try:
        result = anyio.run(run)
    except MementoError as exc:
        _fail(str(exc))
    if as_json:
        console.print_json(result.model_dump_json())
    else:
        _print_result(result)
    if result.status == "failed":
        raise typer.Exit(2)


def eval_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL: question, ground_truth")
    ],
    namespace: Annotated[str | None, typer.Option(help="Case bank namespace")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, max=10)] = 3,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions")] = None,
    window: Annotated[int, typer.Option(min=1, help="Questions in the moving accuracy")] = 20,
    output: Annotated[
        Path | None, typer.Option(help="Write one JSON result per question here")
    ] = None,
) -> None:
    """Run a Memento-format QA file through solve_task with expected_answer, printing accuracy
    over time (cumulative and moving) so the learning curve is visible."""
    items = read_questions(file)[:limit]
    settings = Settings()

    async def run() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        recent: deque[float] = deque(maxlen=window)
        async with _runtime(settings) as agent:
            for index, item in enumerate(items, start=1):
                result = await agent.solve(
                    item["question"],
                    namespace=namespace,
                    max_cycles=max_cycles,
                    expected_answer=item["ground_truth"],
                )
                reward = result.judgement.reward if result.judgement else 0.0
                recent.append(reward)
                rows.append(
                    {
                        "index": index,
                        "question": item["question"],
                        "ground_truth": item["ground_truth"],
                        "answer": result.answer,
                        "status": result.status,
                        "reward": reward,
                        "request_id": result.request_id,
                        "case_id": result.case_id,
                        "wall_s": round(result.usage.wall_s, 2),
                    }
                )
                accuracy = sum(r["reward"] for r in rows) / len(rows)
                mark = "[green]✓[/green]" if reward >= 1.0 else "[red]✗[/red]"
                console.print(
                    f"[{index}/{len(items)}] {mark} acc={accuracy:.3f} "
                    f"last{len(recent)}={sum(recent) / len(recent):.3f}  "
                    f"{result.status:<11} {result.answer[:60]!r}"
                )
                if output is not None:
                    with output.open("a", encoding="utf-8") as sink:
                        sink.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
        return rows

    try:
        rows = anyio.run(run)
    except MementoError as exc:
        _fail(str(exc))
    if rows:
        accuracy = sum(r["reward"] for r in rows) / len(rows)
        console.print(f"[bold]accuracy {accuracy:.3f}[/bold] over {len(rows)} questions")


def register(app: typer.Typer) -> None:
    app.command("solve")(solve)
    app.command("eval")(eval_)
