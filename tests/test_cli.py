"""The memento-mcp command line, run the way a user types it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memento_mcp.cli import app

runner = CliRunner()


def run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_import_retrieve_stats_export(tmp_path: Path) -> None:
    source = tmp_path / "dummy.jsonl"
    source.write_text("".join(
        json.dumps({"question": question, "plan": plan, "reward": reward}) + "\n"
        for question, plan, reward in [
            ("What is the capital of Columbia County?", "find the state first", 1),
            ("Who wrote Dune?", "search the book", 1),
            ("What sport does Deportivo Cali play?", "guess", 0),
        ]
    ))
    code, output = run(tmp_path, "import", str(source))
    assert code == 0 and "dummy_memo file: 3 cases added" in output

    code, output = run(tmp_path, "retrieve", "Which team sport is Deportivo Cali known for?",
                       "-k", "1", "--json")
    assert code == 0
    result = json.loads(output)
    assert result["negative"][0]["task"] == "What sport does Deportivo Cali play?"

    code, output = run(tmp_path, "stats", "--json")
    stats = json.loads(output)
    assert stats["namespaces"][0] == {"namespace": "default", "cases": 3, "positive": 2,
                                      "negative": 1, "pending": 0}

    out = tmp_path / "out.jsonl"
    code, output = run(tmp_path, "export", str(out), "--format", "dummy_memo")
    assert code == 0 and out.read_text() == source.read_text()


def test_bad_lines_are_named_and_skip_bad_imports_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "memory.jsonl"
    source.write_text(
        json.dumps({"case": "Who wrote Dune?", "plan": "search", "case_label": "positive"})
        + "\n[1, 2]\n"
    )
    code, output = run(tmp_path, "import", str(source))
    assert code == 1 and "line 2: a line must hold one JSON object" in output
    code, output = run(tmp_path, "import", str(source), "--skip-bad")
    assert code == 0 and "1 cases added" in output and "skipped line 2" in output


def test_config_prints_a_stdio_block_for_the_installed_interpreter(tmp_path: Path) -> None:
    code, output = run(tmp_path, "config", "claude-desktop")
    block = json.loads(output[output.index("{"):])
    entry = block["mcpServers"]["memento"]
    assert entry["args"] == ["-m", "memento_mcp", "serve"]
    assert entry["env"]["MEMENTO_HOME"] == str(tmp_path.resolve())


def test_a_data_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, output = run(blocker / "home", "stats")
    assert code == 1 and "cannot open the case bank" in output
