"""`memento-mcp solve` and `memento-mcp eval` against the scripted endpoint and a stdio child."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memento_mcp.agent.cli import read_questions
from memento_mcp.agent.scripted import Script, ScriptedServer, call, say, say_json
from memento_mcp.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch, child_config):
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps(child_config()))
    monkeypatch.setenv("MEMENTO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMENTO_MCP_SERVERS", str(servers))
    monkeypatch.setenv("MEMENTO_LLM_API_KEY", "test")
    monkeypatch.setenv("MEMENTO_PLANNER_MODEL", "planner")
    monkeypatch.setenv("MEMENTO_EXECUTOR_MODEL", "executor")
    return monkeypatch


def test_eval_prints_accuracy_over_time(env, tmp_path):
    questions = tmp_path / "qa.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"question": "2 + 3?", "ground_truth": "five<|answer_split|>5"},
                {"question": "Capital of France?", "ground_truth": "Paris"},
            ]
        )
        + "\n"
    )
    script = Script(
        {
            "planner": [
                say_json({"plan": [{"id": 1, "description": "add"}]}),
                say_json({"final_answer": "5"}),
                say_json({"final_answer": "Lyon"}),
            ],
            "executor": [call("calc_add", a=2, b=3), say("5")],
        }
    )
    out = tmp_path / "results.jsonl"
    with ScriptedServer(script) as llm:
        env.setenv("MEMENTO_LLM_BASE_URL", llm.base_url)
        result = CliRunner().invoke(app, ["eval", str(questions), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "[1/2] ✓ acc=1.000" in result.output and "[2/2] ✗ acc=0.500" in result.output
    assert "accuracy 0.500 over 2 questions" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0] and rows[0]["case_id"] is not None


def test_solve_without_backend_explains_the_setup(env):
    env.delenv("MEMENTO_LLM_API_KEY")
    env.delenv("OPENAI_API_KEY", raising=False)
    env.delenv("MEMENTO_LLM_BASE_URL", raising=False)
    result = CliRunner().invoke(app, ["solve", "anything"])
    assert result.exit_code == 1
    assert "MEMENTO_LLM_BASE_URL" in result.output


def test_read_questions_accepts_memento_format(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "q1", "ground_truth": "a<|answer_split|>b"}\n\n'
        '{"question": "q2", "answer": ["x", "y"]}\n'
    )
    assert read_questions(path) == [
        {"question": "q1", "ground_truth": "a<|answer_split|>b"},
        {"question": "q2", "ground_truth": "x<|answer_split|>y"},
    ]
