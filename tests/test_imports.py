"""Start-up stays lean: the CLI and the server load no model framework, LLM client or pandas
(issue 10: these cost 2.7 s of `--help` and 4.5 s of the first retrieve_cases)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "openai", "pandas")


@pytest.mark.parametrize("module", ["memento_mcp.cli", "memento_mcp.server", "memento_mcp"])
def test_importing_loads_no_heavy_package(module: str) -> None:
    code = f"import sys, {module}; print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_serving_path_loads_no_model_framework(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Encoding a query and retrieving (the ONNX export already cached) stays off torch."""
    code = (
        "import sys\n"
        "from memento_mcp.memory import open_memory\n"
        "from memento_mcp.settings import Settings\n"
        f"m = open_memory(Settings(home={str(tmp_path)!r}))\n"
        "m.record_outcome(task='Who wrote Dune?', plan='look it up', reward=1.0)\n"
        "assert m.retrieve('Who wrote Dune?').cases\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n"
    )
    # the first run in a fresh cache exports the ONNX graph with torch; the second must not
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = subprocess.run([sys.executable, "-c", code.replace("Dune", "Emma")],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_help_and_config_load_neither_the_bank_nor_the_framework() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from memento_mcp.cli import app\n"
        "out = CliRunner().invoke(app, ['--help']).output\n"
        "assert all(c in out for c in ('serve', 'import', 'export', 'retrieve', 'solve'))\n"
        "assert '\"mcpServers\"' in CliRunner().invoke(app, ['config', 'cursor']).output\n"
        "print(sorted({'numpy', 'sqlite_utils', 'fastmcp'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_usearch_and_onnxruntime_load_in_either_order() -> None:
    """usearch's extension loaded before onnxruntime's crashes the process; ann.py guards it."""
    code = (
        "from memento_mcp.retrieval import ann\n"
        "ann.new_index(384)\n"
        "from memento_mcp.retrieval.encoder import Encoder\n"
        "print(Encoder().encode_one('ok').shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "(384,)"
