"""`memento-mcp token add|list|revoke` and `memento-mcp outcomes revoke`: tenants from a terminal.

Mounted by memento_mcp/cli.py. The CLI is the bank's local owner: it changes the tokens file and
the bank directly, and a running server follows (tokens at the next request, labels at the next
retrieval).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from memento_mcp.errors import MementoError

tokens_app = typer.Typer(help="Add, list and revoke the bearer tokens of HTTP clients.",
                         no_args_is_help=True)  # fmt: skip
outcomes_app = typer.Typer(help="See and revoke what each client taught the bank.",
                           no_args_is_help=True)  # fmt: skip
console = Console()
errors = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@tokens_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The client id its outcomes and cases are recorded under")],
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", help="A namespace it may use (repeatable; default: every namespace, *)",
    )] = None,
    read_only: Annotated[bool, typer.Option(help="May retrieve and read, never write")] = False,
    writes_per_minute: Annotated[int | None, typer.Option(help="Instead of the server default")] = None,
    labels_per_minute: Annotated[int | None, typer.Option(help="Instead of the server default")] = None,
) -> None:
    """Make a token and print it once: only its SHA-256 is kept (in <home>/tokens.json)."""
    from memento_mcp.auth.registry import TokenRegistry
    from memento_mcp.auth.tokens import ALL, TokenFile
    from memento_mcp.settings import Settings

    settings = Settings()
    taken = {entry.name for entry in TokenRegistry(settings).entries()}
    try:
        entry, secret = TokenFile(settings.tokens_file).add(
            name, namespace or [ALL], read_only, writes_per_minute, labels_per_minute, taken
        )
    except (MementoError, ValueError) as exc:
        _fail(str(exc))
    scope = ", ".join(entry.namespaces) + (" (read-only)" if entry.read_only else "")
    errors.print(f"token [bold]{entry.name}[/bold] for {scope}; shown once, keep it now:")
    print(secret)  # stdout, alone: `TOKEN=$(memento-mcp token add ci)` works
    errors.print("[dim]clients send it as `Authorization: Bearer <token>`; a running server"
                 " accepts it from its next request (a server started with no token at all"
                 " needs a restart)[/dim]")  # fmt: skip


@tokens_app.command("list")
def list_() -> None:
    """Every token the server accepts (names and scopes; secrets are not kept)."""
    from rich.table import Table

    from memento_mcp.auth.registry import LEGACY, TokenRegistry
    from memento_mcp.settings import Settings

    settings = Settings()
    registry = TokenRegistry(settings)
    in_config = {entry.name for entry in settings.tokens}
    table = Table("name", "namespaces", "access", "writes/min", "labels/min", "created", "from")
    for entry in registry.entries():
        origin = ("MEMENTO_AUTH_TOKEN" if entry.name == LEGACY
                  else "config.toml" if entry.name in in_config else str(settings.tokens_file))  # fmt: skip
        principal = registry.principal(entry)
        table.add_row(
            entry.name, ", ".join(entry.namespaces), "read-only" if entry.read_only else "read-write",
            str(principal.writes_per_minute or "unlimited"), str(principal.labels_per_minute or "unlimited"),
            entry.created_at[:16].replace("T", " "), origin,
        )  # fmt: skip
    console.print(table)
    if not registry.configured:
        console.print("[dim]no tokens: HTTP serves loopback only, to anyone on this machine[/dim]")


@tokens_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name")]) -> None:
    """Delete a token from the tokens file; a running server refuses it from its next request.

    Its outcomes stay: `memento-mcp outcomes revoke --client NAME --since TIME` removes them.
    """
    from memento_mcp.auth.tokens import TokenFile
    from memento_mcp.settings import Settings

    settings = Settings()
    if any(entry.name == name for entry in settings.tokens):
        _fail(f"{name!r} is configured in config.toml: delete its [[tokens]] entry there")
    try:
        TokenFile(settings.tokens_file).revoke(name)
    except MementoError as exc:
        _fail(str(exc))
    console.print(f"revoked token {name}")


@outcomes_app.command("clients")
def clients(namespace: Annotated[list[str] | None, typer.Option(
    "--namespace", "-n", help="Only these namespaces (repeatable; default: all)",
)] = None) -> None:
    """Who taught what: per client, outcomes reported, positive ones, mean reward, cases written."""
    from rich.table import Table

    from memento_mcp.casebank import open_bank
    from memento_mcp.settings import Settings

    try:
        bank = open_bank(Settings().bank_location)
    except MementoError as exc:
        _fail(str(exc))
    try:
        rows = bank.teachers(namespace or None)
    finally:
        bank.close()
    table = Table("client", "outcomes", "positive", "mean reward", "cases written", "last outcome")
    for row in rows:
        mean = "-" if row["mean_reward"] is None else f"{row['mean_reward']:.2f}"
        table.add_row(row["client_id"] or "(not recorded)", str(row["outcomes"]), str(row["positive"]),
                      mean, str(row["cases"]), (row["last_outcome"] or "-")[:19])  # fmt: skip
    console.print(table)


@outcomes_app.command("revoke")
def revoke_outcomes(
    client: Annotated[str, typer.Option(help="The client (token name; 'local' for stdio/CLI)")],
    since: Annotated[str, typer.Option(help="ISO date or time, UTC unless it says otherwise")],
    retrain: Annotated[bool, typer.Option(help="Retrain each namespace touched, now")] = True,
) -> None:
    """Remove a client's outcomes, labels and cases since a time, and retrain without them."""
    from memento_mcp.memory import open_memory
    from memento_mcp.revocation import parse_since, retrain_with, revoke_client
    from memento_mcp.settings import Settings

    try:
        memory = open_memory(Settings())
        with console.status(f"revoking what {client} taught since {since}"):
            report = revoke_client(memory, client, parse_since(since),
                                   retrain_with(memory) if retrain else None)  # fmt: skip
    except MementoError as exc:
        _fail(str(exc))
    console.print(
        f"{client} since {report.since}: {report.outcomes} outcomes, {report.labels} labels and"
        f" {report.cases} cases removed in {', '.join(report.namespaces) or 'no namespace'}"
    )
    for namespace, version in report.rolled_back.items():
        console.print(f"  {namespace}: prior trained since then retired; serving {version or 'no prior'}")
    for namespace, run in report.retrained.items():
        outcome = "promoted" if run.get("promoted") else "not promoted"
        console.print(f"  {namespace}: retrained {run.get('version') or '-'} ({outcome}: {run.get('reason')})")


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="token")
    app.add_typer(outcomes_app, name="outcomes")
