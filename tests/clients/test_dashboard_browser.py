"""The dashboard in headless Chromium, served by a real `memento-mcp serve --transport http`.

Needs Debian's `chromium` and the npm package `playwright-core` (installed globally or next to
the script); skipped with the reason when either is missing. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memento_mcp.casebank import CaseBank, NewCase

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("dashboard_browser.cjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "browser-token-5e2"
TOPICS = [
    "What is the capital of Australia?",
    "Integrate x^2 from 0 to 3",
    "Convert 5 miles to kilometres",
    "Summarise the attached PDF report",
    "Which planet has the most moons?",
    "Find the median of the sales column",
    "When was the Eiffel Tower completed?",
    "Who wrote Dune?",
]
PLAN = json.dumps({"plan": [{"id": 1, "description": "Search the web for the author of Dune"}]})
TRAJECTORY = [
    {
        "cycle": 1,
        "id": 1,
        "description": "Search the web for the author of Dune",
        "status": "done",
        "result": "Frank Herbert (1965)",
        "tool_calls": 1,
    },
    {
        "tool_step": {
            "cycle": 1,
            "subtask": 1,
            "tool": "web_search",
            "arguments": {"query": "Dune novel author"},
            "result": "Dune is a 1965 novel by Frank Herbert.",
            "is_error": False,
            "elapsed_s": 0.42,
        }
    },
]


def node_env() -> dict[str, str]:
    """NODE_PATH with npm's global root, where `npm install -g playwright-core` puts it."""
    env = dict(os.environ)
    try:
        root = subprocess.run(
            ["npm", "root", "-g"], check=False, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        root = ""
    env["NODE_PATH"] = os.pathsep.join(p for p in (root, env.get("NODE_PATH", "")) if p)
    env["CHROMIUM"] = CHROMIUM
    return env


@pytest.fixture(scope="module")
def browser_env() -> dict[str, str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed")
    env = node_env()
    found = subprocess.run(
        ["node", "-e", "require.resolve('playwright-core')"],
        cwd=SCRIPT.parent,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip("npm package playwright-core is missing (npm install -g playwright-core)")
    return env


def history() -> tuple[list[NewCase], list[float]]:
    """Five weeks of outcomes that get better over time, then one pending solve_task run."""
    rng = random.Random(7)
    cases, days = [], []
    for i in range(40):
        reward = 1.0 if rng.random() < 0.3 + 0.6 * i / 40 else 0.0
        task = TOPICS[i % len(TOPICS)] + (f" (run {i // len(TOPICS) + 1})" if i >= 8 else "")
        cases.append(NewCase("default" if i % 3 else "research", task, "Look it up.", "-", reward))
        days.append(14 - i * 14 / 40)
    cases.append(
        NewCase(
            "default",
            "Who wrote the novel Dune, and when?",
            PLAN,
            "Frank Herbert, 1965",
            None,
            "solve_task",
            trajectory=TRAJECTORY,
        )
    )
    days.append(0)
    return cases, days


def test_dashboard_loads_shows_cases_and_search_filters(
    browser_env: dict[str, str],
    http_server_factory: Any,
    seed: Callable[..., list[int]],
    tmp_path: Path,
    artifacts: Path,
) -> None:
    home = tmp_path / "bank"
    home.mkdir()
    seed(home, *history())
    bank = CaseBank(home / "memento.db")
    bank.add_retriever_version("q-head-0001", "ckpt/1.pt", {"auc": 0.71, "ndcg@4": 0.62})
    bank.add_retriever_version(
        "q-head-0002", "ckpt/2.pt", {"auc": 0.78, "value": 0.74, "incumbent_value": 0.5}
    )
    bank.activate_retriever("q-head-0002")
    bank.close()
    server = http_server_factory(home=home, MEMENTO_AUTH_TOKEN=TOKEN)
    run = subprocess.run(
        ["node", str(SCRIPT), f"{server.base}/?token={TOKEN}", "dune", str(artifacts)],
        cwd=SCRIPT.parent,
        env=browser_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)

    assert seen["status"] == 200 and seen["title"] == "Memento case bank"
    assert seen["url"] == f"{server.base}/"  # the token became a cookie and left the URL
    assert seen["rowsBefore"][0] == "Who wrote the novel Dune, and when?"
    assert len(seen["rowsBefore"]) == 25 and seen["count"] == "41 cases"
    assert seen["charts"] == 2
    assert "q-head-0002" in seen["retriever"] and "policy value 0.740 vs 0.500" in seen["retriever"]

    assert "q=dune" in seen["searchUrl"]
    assert seen["rowsAfter"] and all("Dune" in task for task in seen["rowsAfter"])
    assert len(seen["rowsAfter"]) == 1 + sum("Dune" in c.task for c in history()[0][:-1])

    assert seen["caseTask"] == "Who wrote the novel Dune, and when?"
    assert seen["planItems"] == ["Search the web for the author of Dune"]
    assert seen["steps"] == 2
    for name in ("dashboard.png", "dashboard-search.png", "case.png"):
        assert (artifacts / name).stat().st_size > 10_000
