"""CLI long jobs look alive: `export` shows a spinner with elapsed time while it writes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from memento_mcp import cli
from memento_mcp.casebank import NewCase


def test_export_shows_progress_on_a_terminal_and_writes_every_case(
    tmp_path: Path, seed: Callable[..., list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(tmp_path, [NewCase("default", f"task {i}", f"plan {i}", "a", i % 2) for i in range(30)])
    screen = io.StringIO()
    monkeypatch.setattr(cli, "errors", Console(file=screen, force_terminal=True, width=120))
    out = tmp_path / "memory.jsonl"
    result = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "exporting memory lines to" in screen.getvalue()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 30 and "wrote 30 lines" in result.stdout


def test_serve_help_documents_the_host_allow_list() -> None:
    result = CliRunner().invoke(cli.app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--allow-host", "--allow-origin", "MEMENTO_ALLOWED_HOSTS"):
        assert option in result.stdout
