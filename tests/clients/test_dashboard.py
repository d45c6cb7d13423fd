"""The dashboard's pages, in-process (Starlette's TestClient on the real server's HTTP app)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.dashboard import access, charts, views
from memento_mcp.server import build_server
from memento_mcp.settings import Settings

TOKEN = "dash-token-77"
PLAN = json.dumps(
    {
        "plan": [
            {"id": 1, "description": "Search the book's author"},
            {"id": 2, "description": "Check the publication year"},
        ]
    }
)
TRAJECTORY = [
    {
        "cycle": 1,
        "id": 1,
        "description": "Search the book's author",
        "status": "done",
        "result": "Frank Herbert",
        "tool_calls": 1,
    },
    {
        "tool_step": {
            "cycle": 1,
            "subtask": 1,
            "tool": "web_search",
            "arguments": {"q": "Dune"},
            "result": "Dune (1965) by Frank Herbert",
            "is_error": False,
            "elapsed_s": 0.3,
        }
    },
]
CASES = [
    NewCase("default", "Who wrote Dune?", PLAN, "Frank Herbert", 1.0),
    NewCase("default", "Integrate x squared", "Use sympy.integrate", "x**3/3", 0.0),
    NewCase("research", "Capital of Australia", "Look it up", "Canberra", 0.75),
    NewCase(
        "default",
        "Who wrote Dune, and when?",
        PLAN,
        "Herbert, 1965",
        None,
        "solve_task",
        trajectory=TRAJECTORY,
    ),
    NewCase("default", "<script>alert(1)</script> injected task", "plan", "", 1.0),
]


def make_home(tmp_path: Path, seed: Callable[..., list[int]]) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    seed(home, CASES, days_ago=[3, 2, 2, 0, 0])
    bank = CaseBank(home / "memento.db")
    bank.add_retriever_version("q-0001", "/ckpt/1", {"auc": 0.7012})
    bank.add_retriever_version("q-0000", "/ckpt/0", {"auc": 0.6})  # all namespaces, no value
    bank.activate_retriever("q-0000")
    bank.add_retriever_version(
        "q-0002",
        "/ckpt/2",
        {"auc": 0.8123, "value": 0.7421, "incumbent_value": 0.5, "ci": [0.11, 0.36]},
        namespace="default",
    )
    bank.activate_retriever("q-0002")
    bank.close()
    return home


@pytest.fixture
def app_factory(
    tmp_path: Path, seed: Callable[..., list[int]]
) -> Iterator[Callable[..., TestClient]]:
    home = make_home(tmp_path, seed)
    clients: list[TestClient] = []

    def make(token: str | None = None) -> TestClient:
        server = build_server(Settings(home=home, auth_token=token))
        client = TestClient(server.http_app(), follow_redirects=False)
        client.__enter__()  # runs the server's lifespan, which opens the bank
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def page(app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory()


def tasks_listed(html: str) -> list[str]:
    import re

    return re.findall(r'<a href="/dashboard/cases/\d+">([^<]*)</a>', html)


def test_index_lists_cases_newest_first_with_counts(page: TestClient) -> None:
    response = page.get("/")
    assert response.status_code == 200
    assert tasks_listed(response.text)[:2] == [
        "&lt;script&gt;alert(1)&lt;/script&gt; injected task",
        "Who wrote Dune, and when?",
    ]
    assert "5 cases" in response.text
    assert page.get("/dashboard").text == response.text


def test_stored_text_is_escaped_and_pages_allow_no_scripts(page: TestClient) -> None:
    response = page.get("/")
    assert "<script>alert(1)</script>" not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=dune", {"Who wrote Dune?", "Who wrote Dune, and when?"}),
        ("q=dun", {"Who wrote Dune?", "Who wrote Dune, and when?"}),  # prefix match
        ("q=dune+when", {"Who wrote Dune, and when?"}),  # every word must match
        ("q=sympy", {"Integrate x squared"}),  # the plan is searched too
        ("namespace=research", {"Capital of Australia"}),
        ("label=pending", {"Who wrote Dune, and when?"}),
        ("label=negative", {"Integrate x squared"}),
        ("min_reward=0.7&namespace=research", {"Capital of Australia"}),
        ("q=dune&label=positive", {"Who wrote Dune?"}),
        ("q=nothing-like-this", set()),
    ],
)
def test_search_and_filters(page: TestClient, query: str, expected: set[str]) -> None:
    assert set(tasks_listed(page.get(f"/?{query}").text)) == expected


def test_bad_filter_values_fall_back_instead_of_failing(page: TestClient) -> None:
    response = page.get("/?label=evil&min_reward=abc&page=-3")
    assert response.status_code == 200
    assert len(tasks_listed(response.text)) == 5


def test_paging(page: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    first, third = page.get("/?q=&page=1").text, page.get("/?page=3").text
    assert len(tasks_listed(first)) == 2 and len(tasks_listed(third)) == 1
    assert "page 1 of 3" in first and 'href="/?page=2"' in first


def test_case_page_shows_plan_steps_and_trajectory(page: TestClient) -> None:
    html = page.get("/dashboard/cases/4").text
    assert "<li>Search the book&#39;s author</li>" in html
    assert "<li>Check the publication year</li>" in html
    assert "web_search (subtask 1)" in html and "Dune (1965) by Frank Herbert" in html
    assert "pending" in html


def test_free_text_plan_is_shown_as_written(page: TestClient) -> None:
    assert "<pre>Use sympy.integrate</pre>" in page.get("/dashboard/cases/2").text


def test_unknown_case_is_404(page: TestClient) -> None:
    assert page.get("/dashboard/cases/999").status_code == 404


def test_retriever_panel_shows_what_serves_and_its_policy_value(page: TestClient) -> None:
    html = page.get("/").text
    retriever = html[html.index('id="retriever"') : html.index("Retriever versions")]
    assert "learned" in retriever and "q-0002" in retriever
    assert "policy value 0.742 vs 0.500" in retriever and "[0.110, 0.360]" in retriever
    assert "0.812" in html  # the versions table keeps the other metrics
    assert "all namespaces" in retriever  # a version from before per-namespace training


def test_charts_are_inline_svg(page: TestClient) -> None:
    html = page.get("/").text
    assert html.count('<svg class="chart"') == 2
    assert "<title>" in html and "mean reward" in html


def test_charts_follow_the_namespace_filter(page: TestClient) -> None:
    html = page.get("/?namespace=research").text
    assert "1 positive, 0 negative" in html and "2 positive" not in html


def test_dashboard_never_writes(app_factory: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_factory()
    bank = CaseBank(tmp_path / "home" / "memento.db")
    before = (bank.stats(), bank.data_version())
    for url in ("/", "/?q=dune", "/dashboard/cases/1", "/dashboard/cases/4"):
        client.get(url)
    assert (bank.stats(), bank.data_version()) == before
    bank.close()


# -- the token ------------------------------------------------------------------------------


def test_without_the_token_the_dashboard_is_refused(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(TOKEN)
    for url in ("/", "/dashboard", "/dashboard/cases/1", "/?token=wrong"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert "Who wrote Dune" not in response.text
    refused = client.get("/", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    client.cookies.set(access.COOKIE, TOKEN)  # the raw token is not a valid cookie
    assert client.get("/").status_code == 401


def test_bearer_header_opens_it(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(TOKEN)
    response = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "Who wrote Dune?" in response.text


def test_query_token_becomes_a_cookie_and_leaves_the_url(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(TOKEN)
    response = client.get(f"/?q=dune&token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["location"] == "/?q=dune"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    followed = client.get(response.headers["location"])
    assert followed.status_code == 200 and "Who wrote Dune?" in followed.text


def test_dashboard_cookie_does_not_open_mcp(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(TOKEN)
    client.get(f"/?token={TOKEN}")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = client.post(
        "/mcp", json=body, headers={"Accept": "application/json, text/event-stream"}
    )
    assert response.status_code == 401


# -- pure parts -------------------------------------------------------------------------------


def test_outcome_bars_scale_to_the_busiest_day() -> None:
    days = [
        {"day": "2026-11-01", "outcomes": 4, "positive": 1, "mean_reward": 0.25},
        {"day": "2026-11-02", "outcomes": 2, "positive": 2, "mean_reward": 1.0},
    ]
    svg = charts.outcomes_per_day(days)
    assert svg.count("<rect") == 4
    assert "2026-11-01: 1 positive, 3 negative" in svg
    assert charts.outcomes_per_day([]) == ""


def test_learning_curve_draws_one_point_per_slice() -> None:
    svg = charts.learning_curve(
        [{"outcomes": 5, "mean_reward": 0.2}, {"outcomes": 10, "mean_reward": 0.8}]
    )
    assert svg.count("<circle") == 2 and "after 10 outcomes: mean reward 0.80" in svg
    assert charts.learning_curve([]) == ""


def test_plan_items_reads_memento_json_and_leaves_text_alone() -> None:
    assert views.plan_items(PLAN) == ["Search the book's author", "Check the publication year"]
    assert views.plan_items("Just search it") is None
    assert views.plan_items('{"other": 1}') is None


def test_store_reward_curve_slices_history(tmp_path: Path, seed: Callable[..., list[int]]) -> None:
    rewards = [0.0] * 10 + [1.0] * 10
    seed(tmp_path, [NewCase("default", f"task {i}", "plan", "", r) for i, r in enumerate(rewards)])
    bank = CaseBank(tmp_path / "memento.db")
    curve = bank.reward_curve(points=4, per_point=5)
    assert curve == [
        {"outcomes": 5, "mean_reward": 0.0},
        {"outcomes": 10, "mean_reward": 0.0},
        {"outcomes": 15, "mean_reward": 1.0},
        {"outcomes": 20, "mean_reward": 1.0},
    ]
    assert len(bank.reward_curve(per_point=10)) == 2
    assert bank.reward_curve("no-such-namespace") == []
    (day,) = bank.outcomes_by_day()
    assert (day["outcomes"], day["positive"], day["mean_reward"]) == (20, 10, 0.5)
    bank.close()


def test_templates_ship_in_the_wheel() -> None:
    """pyproject's package-data must name the templates, or a non-editable install has no pages."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["memento_mcp"]
    templates = sorted((root / "memento_mcp" / "dashboard" / "templates").glob("*.html"))
    assert templates
    for template in templates:
        relative = template.relative_to(root / "memento_mcp").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), (
            f'add "dashboard/templates/*" to [tool.setuptools.package-data] memento_mcp ({relative})'
        )


def test_the_dashboard_and_health_check_read_a_postgres_bank(
    tmp_path: Path, postgres_url: str
) -> None:
    from memento_mcp.casebank import open_bank

    bank = open_bank(postgres_url)
    for case in CASES[:3]:
        bank.record_outcome(case.reward or 0.0, None, (case, np.ones(384) / np.sqrt(384)), None)
    bank.close()
    server = build_server(Settings(home=tmp_path / "home", database_url=postgres_url))
    with TestClient(server.http_app(), follow_redirects=False) as client:
        assert set(tasks_listed(client.get("/").text)) == {case.task for case in CASES[:3]}
        assert set(tasks_listed(client.get("/?q=dune&label=positive").text)) == {"Who wrote Dune?"}
        assert client.get("/healthz").json()["status"] == "ok"
