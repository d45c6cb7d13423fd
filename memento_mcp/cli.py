"""`memento-mcp`: serve the MCP server, and work with the case bank from a terminal."""

from __future__ import annotations

import ipaddress
import json
import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from memento_mcp.agent.cli import register as register_agent_commands
from memento_mcp.auth.cli import register as register_tenancy_commands
from memento_mcp.bank_cli import register as register_bank_commands
from memento_mcp.errors import MementoError
from retriever.cli import app as retriever_app

if TYPE_CHECKING:  # loaded inside the commands: `--help` and `config` stay under half a second
    from rich.progress import TaskID

    from memento_mcp.casebank.memento_io import Format
    from memento_mcp.memory import Memory


class OneLineErrors(TyperGroup):
    """Whatever command raises a MementoError ends with its message on one line, never a
    traceback (issue 12: a damaged bank printed 76 lines from `stats`)."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except MementoError as exc:
            _fail(str(exc))


app = typer.Typer(
    help="Memento case-based memory for agents, as an MCP server.", no_args_is_help=True,
    cls=OneLineErrors,
)
console = Console()
errors = Console(stderr=True)
register_agent_commands(app)  # solve, eval
register_bank_commands(app)  # check, backup
register_tenancy_commands(app)  # token add|list|revoke, outcomes clients|revoke
app.add_typer(retriever_app, name="retriever")  # train, eval, status, rollback

STARTER_BANK = Path(__file__).parent / "data" / "memento_memory.jsonl"
"""Memento's public memory.jsonl (MIT, see data/NOTICE): 1,278 solved and failed QA cases."""


class Transport(str, Enum):
    stdio = "stdio"
    http = "http"
    sse = "sse"


class ExportFormat(str, Enum):
    memory = "memory"
    training_data = "training_data"
    dummy_memo = "dummy_memo"
    cases = "cases"


class ClientName(str, Enum):
    claude_desktop = "claude-desktop"
    cursor = "cursor"
    vscode = "vscode"
    generic = "generic"


@app.callback()
def main(
    home: Annotated[
        Path | None, typer.Option(help="Data directory (default: MEMENTO_HOME or user data dir)")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Default namespace")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="postgresql://... : keep the bank in PostgreSQL + pgvector (default: MEMENTO_DATABASE_URL,"
        " config.toml's database_url, else the SQLite file under home)", show_default=False,
    )] = None,
) -> None:
    # Through the environment, so every Settings() below (and child commands) agrees.
    if home is not None:
        os.environ["MEMENTO_HOME"] = str(home.expanduser().resolve())
    if namespace is not None:
        os.environ["MEMENTO_NAMESPACE"] = namespace
    if database_url is not None:
        os.environ["MEMENTO_DATABASE_URL"] = database_url


def _memory() -> Memory:
    from memento_mcp.memory import open_memory
    from memento_mcp.settings import Settings

    try:
        return open_memory(Settings())
    except MementoError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    transport: Annotated[Transport, typer.Option(help="stdio for one local client; http or sse for many")] = Transport.stdio,
    host: Annotated[str | None, typer.Option(help="Bind address for http/sse (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port for http/sse (default 8000)")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        envvar="MEMENTO_ALLOWED_HOSTS",
        help="Host header to accept besides loopback (repeatable; patterns like *.example.com)",
    )] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(
        envvar="MEMENTO_ALLOWED_ORIGINS",
        help="Browser Origin to accept besides loopback and the server's own (repeatable)",
    )] = None,
) -> None:
    """Run the MCP server (stdio by default; streamable HTTP at /mcp; SSE at /sse)."""
    _fewer_malloc_arenas()
    from memento_mcp.auth import redact
    from memento_mcp.auth.registry import TokenRegistry
    from memento_mcp.retrieval.encoder import preload
    from memento_mcp.settings import Settings

    settings = Settings()
    host = host or settings.host
    registry = TokenRegistry(settings)
    registry.entries()  # a broken tokens file or [[tokens]] entry stops here, in one line
    if transport is not Transport.stdio and not is_loopback(host) and not registry.configured:
        _fail(
            f"refusing to serve on {host} without a token: anyone who can reach it could read and"
            " change the case bank. Add one with `memento-mcp token add NAME` (or set"
            " MEMENTO_AUTH_TOKEN), or bind 127.0.0.1."
        )
    from memento_mcp.maintenance import ready_to_serve

    bank = _memory().bank  # fail now, with one clear line, if the bank cannot be opened
    try:
        warnings = ready_to_serve(bank)  # or is damaged
    finally:
        bank.close()
    for warning in warnings:
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    # The encoder loads on the other core while FastMCP imports (issue 10). Only after the
    # checks, and joined at the end: exiting while ONNX Runtime loads aborts the process.
    loading = preload()
    import fastmcp

    from memento_mcp.server import build_server

    server = build_server(settings)
    redact.install()  # no token in any log line (auth/redact.py)
    if transport is Transport.stdio:
        server.run(show_banner=False)
    else:
        # DNS-rebinding guard on every HTTP route: a Host outside loopback, the bound address
        # and allow_host gets 421; a foreign browser Origin gets 403 (docs/clients.md).
        server.run(
            transport=transport.value, host=host, port=port or settings.port, show_banner=False,
            host_origin_protection=True, allowed_hosts=allow_host or [],
            allowed_origins=allow_origin or [],
            uvicorn_config={"log_config": redact.uvicorn_log_config(),
                            "log_level": fastmcp.settings.log_level.lower()},
        )  # fmt: skip
    loading.join()


MALLOC_ARENAS = 2
"""glibc gives each thread that allocates at the same time as another its own heap, up to 8 per
core, and keeps what each heap once held. The server's worker threads each allocate the
learned ranking's arrays, and the server grew 41 MB in its first minute under bench/load.py
against 13 MB with learning off. With two heaps (in process, 8 threads on the starter bank, 3
runs of 20 s): RSS 215 -> 234 / 234 / 234 MB against 212 -> 249 / 250 / 252, and throughput
the same within noise: the GIL already lets only one thread at a time allocate numpy's arrays."""


def _fewer_malloc_arenas() -> None:
    """Cap glibc's heaps at MALLOC_ARENAS, unless the user set MALLOC_ARENA_MAX themselves."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS has no mallopt): nothing to cap
        return


@app.command("import")
def import_(
    path: Annotated[Path | None, typer.Argument(help="memory.jsonl, dummy_memo.jsonl, training_data.jsonl or a cases file")] = None,
    starter: Annotated[bool, typer.Option(help="Import the starter bank: Memento's public memory.jsonl")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Import the good lines even if some are malformed")] = False,
) -> None:
    """Import a JSONL file (format detected from its keys); re-importing adds nothing.

    A cases file exported --with-embeddings loads without encoding (its vectors must have the
    encoder's 384 dimensions). The vector index beside the bank is brought up to date at the end.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memento_mcp import transfer

    if (path is None) == (not starter):
        _fail("give a PATH or --starter (not both)")
    source = STARTER_BANK if starter else path
    assert source is not None
    if not source.is_file():
        _fail(f"no such file: {source}")
    memory = _memory()
    # A bar on a terminal; elsewhere (a log, a pipe) one line per committed batch, so that after
    # a crash the log says how far the import got (issue 12).
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=errors, disable=not errors.is_terminal,
    )
    with bar:
        task = bar.add_task("importing cases", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if not errors.is_terminal:
                errors.print(f"committed {done}/{total} new cases", soft_wrap=True)

        try:
            report = transfer.import_file(memory, source, skip_bad=skip_bad, progress=progress)
            bar.update(task, description="indexing vectors")
            memory.index.flush()
        except MementoError as exc:
            _fail(str(exc))
    for line in report.bad_lines:
        errors.print(f"[yellow]skipped[/yellow] {line}")
    console.print(
        f"{report.format} file: {report.added} cases added, {report.skipped_duplicates} already"
        f" present, {report.impressions} labelled impressions, {len(report.bad_lines)} bad lines"
    )


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="File to write")],
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Memento layout to write")] = ExportFormat.memory,
    with_embeddings: Annotated[bool, typer.Option(
        help="With -f cases: add each case's vector as `embedding`, so an import needs no encoder",
    )] = False,
) -> None:
    """Write the namespace's cases (or labelled pairs) back out in a Memento JSONL layout."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from memento_mcp import transfer

    fmt: Format = format.value  # type: ignore[assignment]
    memory = _memory()
    # transfer.export_file reports no per-line progress, so show that it is alive and for how long.
    with Progress(
        SpinnerColumn(), TextColumn(f"exporting {fmt} lines to {path}"), TimeElapsedColumn(),
        console=errors, transient=True, disable=not errors.is_terminal,
    ) as bar:
        bar.add_task("export", total=None)
        try:
            count = transfer.export_file(memory, path, fmt, with_embeddings=with_embeddings)
        except MementoError as exc:
            _fail(str(exc))
    console.print(f"wrote {count} lines to {path}")


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="postgresql://user:pass@host:5432/db (pgvector)")],
    source: Annotated[Path | None, typer.Option(
        "--from", help="SQLite bank to copy (default: the one under home)", show_default=False,
    )] = None,
) -> None:
    """Copy a SQLite bank into PostgreSQL: cases, embeddings, requests, impressions, outcomes and
    retriever versions, ids kept. Re-run it to finish an interrupted copy; it adds nothing twice."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memento_mcp.casebank import CaseBank, is_database_url
    from memento_mcp.casebank.postgres import PostgresBank
    from memento_mcp.casebank.postgres.copy import copy_bank
    from memento_mcp.settings import Settings

    if not is_database_url(to):
        _fail(f"--to must be a postgresql:// URL, got {to.split('://')[0]}://...")
    path = source or Settings().db_path
    if not path.is_file():
        _fail(f"no SQLite bank at {path}; pass --from PATH")
    try:
        bank, target = CaseBank(path), PostgresBank(to)
        with Progress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=errors,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total)
                bar.update(tasks[table], completed=done)

            added = copy_bank(bank, target, progress)
        counts = target.stats()
    except MementoError as exc:
        _fail(str(exc))
    console.print(
        f"copied into {target.path}: "
        + ", ".join(f"{n} {table}" for table, n in added.items())
        + f" (the database now holds {counts['cases']} cases)"
    )


@app.command()
def retrieve(
    query: Annotated[str, typer.Argument(help="The task to find helpful cases for")],
    k: Annotated[int, typer.Option("-k", help="How many cases")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tool's JSON result")] = False,
) -> None:
    """Show the cases retrieve_cases would return for a task."""
    try:
        result = _memory().retrieve(query, k=k)
    except MementoError as exc:
        _fail(str(exc))
    if as_json:
        console.print_json(result.model_dump_json())
        return
    from rich.table import Table

    table = Table(title=f"{result.namespace} · ranked by {result.scorer} · request {result.request_id}")
    for column in ("#", "case", "label", "score", "sim", "task", "plan"):
        table.add_column(column, overflow="fold")
    for hit in result.cases:
        colour = "green" if hit.label == "positive" else "red"
        table.add_row(str(hit.rank), str(hit.case_id), f"[{colour}]{hit.label}[/{colour}]",
                      f"{hit.score:.3f}", f"{hit.similarity:.3f}", hit.task, hit.plan[:200])
    console.print(table)


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts per namespace, impressions and the active retriever."""
    result = _memory().stats()
    if as_json:
        console.print_json(result.model_dump_json())
        return
    console.print(f"bank {result.path} (schema v{result.schema_version}) · encoder {result.encoder}"
                  f" · ranking {result.ranking}" + (" · read-only" if result.read_only else ""))
    console.print(f"{result.requests} requests, {result.impressions} impressions"
                  f" ({result.labelled_impressions} labelled)")
    from rich.table import Table

    table = Table("namespace", "cases", "positive", "negative", "pending", "vector search")
    for ns in result.namespaces:
        index = result.index.get(ns.namespace, {})
        search = index.get("search", "exact") + (" (rebuilding)" if index.get("rebuilding") else "")
        table.add_row(ns.namespace, str(ns.cases), str(ns.positive), str(ns.negative),
                      str(ns.pending), search)
    console.print(table)


@app.command()
def config(
    client: Annotated[ClientName, typer.Argument(help="Which client's format to print")],
    url: Annotated[str | None, typer.Option(help="Connect over HTTP to this URL instead of stdio")] = None,
    token: Annotated[bool, typer.Option(help="Add the bearer-token header (HTTP)")] = False,
) -> None:
    """Print the JSON block to paste into an MCP client's configuration."""
    from memento_mcp import clientconfig

    env = {key: value for key, value in os.environ.items()
           if key in ("MEMENTO_HOME", "MEMENTO_NAMESPACE")}
    block = clientconfig.render(client.value, env=env, url=url, token=token)  # type: ignore[arg-type]
    errors.print(f"[dim]# paste into {clientconfig.CONFIG_FILES[client.value]}[/dim]")  # type: ignore[index]
    print(json.dumps(block, indent=2))

