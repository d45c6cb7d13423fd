"""The dashboard shows who taught what, within the caller's namespaces (in-process HTTP app)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from starlette.testclient import TestClient

from memento_mcp.auth.tokens import TokenFile
from memento_mcp.casebank import Impression, NewCase, open_bank
from memento_mcp.retrieval.encoder import shared_encoder
from memento_mcp.server import build_server
from memento_mcp.settings import Settings

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


@pytest.fixture
def dashboard(
    any_settings: Settings,
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, int]]]:
    """On each bank in turn (the SQLite file, then PostgreSQL)."""
    home = any_settings.home
    bank = open_bank(any_settings.bank_location)
    ids = {}
    for name, ns, client in [("mine", "team-a", "alice"), ("theirs", "team-b", "bob")]:
        case = NewCase(ns, f"Task {name}", "plan", "", None, client_id=client)
        ids[name] = bank.record_outcome(1.0, None, (case, VECTOR), None, client).case_id
    bank.log_request("r1", "team-a", "q", VECTOR, "evidence", [Impression(ids["mine"], 1, 0.5, 0.5)],
                     client_id="alice")  # fmt: skip
    bank.record_outcome(0.0, "r1", None, None, "alice")
    bank.close()
    tokens = TokenFile(home / "tokens.json")
    secrets = {"alice": tokens.add("alice", ["team-a"])[1], "bob": tokens.add("bob", ["team-b"])[1]}
    # The server's start warms the encoder in a daemon thread; load it here first, so that a
    # short test does not exit while ONNX Runtime is still loading (that aborts the process).
    shared_encoder().load()
    with TestClient(build_server(any_settings).http_app()) as client:
        yield client, secrets, ids


def rows(html: str, kind: str) -> list[list[str]]:
    found = re.findall(rf'<tr class="{kind}-row">(.*?)</tr>', html, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", row, re.S)]
            for row in found]  # fmt: skip


def test_who_taught_what_per_tenant(dashboard: tuple[TestClient, dict[str, str], dict[str, int]]) -> None:
    client, secrets, ids = dashboard
    alice = {"Authorization": f"Bearer {secrets['alice']}"}
    page = client.get("/", headers=alice)
    teachers = rows(page.text, "teacher")
    assert [row[:5] for row in teachers] == [["alice", "2", "1", "0.50", "1"]]
    assert "Task theirs" not in page.text and "bob" not in page.text
    case = client.get(f"/dashboard/cases/{ids['mine']}", headers=alice)
    assert 'id="case-client">alice<' in case.text
    taught = rows(case.text, "taught")
    assert sorted((row[0], row[1], row[2]) for row in taught) == [
        ("alice", "0.00", "1.000"), ("alice", "1.00", "whole case"),
    ]
    bob = client.get("/", headers={"Authorization": f"Bearer {secrets['bob']}"})
    assert [row[0] for row in rows(bob.text, "teacher")] == ["bob"]
