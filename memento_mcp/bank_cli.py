"""`memento-mcp check` and `memento-mcp backup`: look after the bank file (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(backup)


def check() -> None:
    """Check the bank: SQLite integrity, and that the full-text and vector indexes agree with
    the cases (a PostgreSQL bank: that every case has its vector). Exits 1 when anything is
    wrong (it says what, and how to repair it)."""
    from memento_mcp import maintenance
    from memento_mcp.settings import Settings

    report = maintenance.check(Settings())
    console.print(f"checked {escape(report.path)}")
    for name in report.passed:
        console.print(f"[green]ok[/green]       {escape(name)}")
    for problem in report.problems:
        console.print(f"[red]problem[/red]  {escape(problem)}")
    if not report.ok:
        raise typer.Exit(1)


def backup(
    dest: Annotated[Path, typer.Argument(help="New file to write the copy to")],
) -> None:
    """Copy the bank to DEST with SQLite's online backup API: consistent even while servers
    write. To restore, stop the servers and copy DEST over memento.db. (A PostgreSQL bank is
    backed up with pg_dump.)"""
    from memento_mcp import maintenance
    from memento_mcp.casebank import files
    from memento_mcp.settings import Settings

    report = maintenance.backup(Settings(), dest)
    size = f"{report.bytes / 2**20:.1f} MiB"
    if report.problems:  # kept: a damaged copy is still something to recover rows from
        console.print(f"[red]problem[/red]  the copy at {escape(str(dest))} ({size}) fails"
                      f" quick_check ({escape(report.problems[0])}): the bank itself is damaged;"
                      f" {escape(files.RESTORE)}")
        raise typer.Exit(1)
    console.print(f"backed up to {escape(str(dest))} ({size}, passes quick_check)")
