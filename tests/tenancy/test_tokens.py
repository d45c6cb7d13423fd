"""Tokens: hashed at rest, found by their secret, revocable at once; and the CLI that makes them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memento_mcp.auth.principal import LOCAL
from memento_mcp.auth.registry import TokenRegistry
from memento_mcp.auth.tokens import TokenEntry, TokenFile, digest
from memento_mcp.cli import app
from memento_mcp.errors import Forbidden, InvalidInput
from memento_mcp.settings import Settings


def test_a_token_is_kept_only_as_its_hash_in_an_owner_only_file(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    entry, secret = tokens.add("alice", ["team-a"])
    text = tokens.path.read_text()
    assert secret not in text and entry.sha256 == digest(secret) and secret.startswith("mmt_")
    assert len(secret) > 40  # 32 random bytes
    assert stat.S_IMODE(tokens.path.stat().st_mode) == 0o600
    assert json.loads(text)[0]["namespaces"] == ["team-a"]
    with pytest.raises(InvalidInput, match="already exists"):
        tokens.add("alice", ["team-b"])
    with pytest.raises(InvalidInput, match="reserved"):
        tokens.add("local", ["team-b"])


def test_the_registry_maps_secrets_to_principals_and_follows_revocation(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, writes_per_minute=100, labels_per_minute=0)
    registry = TokenRegistry(settings)
    assert not registry.configured
    tokens = TokenFile(settings.tokens_file)
    _, alice = tokens.add("alice", ["team-a", "team-c"], labels_per_minute=7)
    _, reader = tokens.add("reader", ["*"], read_only=True)
    found = registry.lookup(alice)
    assert found is not None and found.client_id == "alice"
    assert found.namespaces == frozenset({"team-a", "team-c"})
    assert (found.writes_per_minute, found.labels_per_minute) == (100, 7)  # default, own
    assert found.default_namespace("default") == "team-a"
    with pytest.raises(Forbidden, match="may not use namespace 'team-b'"):
        found.require_read("team-b")
    ro = registry.lookup(reader)
    assert ro is not None and ro.namespaces is None and ro.labels_per_minute is None
    with pytest.raises(Forbidden, match="read-only"):
        ro.require_write("default")
    assert registry.lookup("mmt_" + "x" * 43) is None
    tokens.revoke("alice")
    assert registry.lookup(alice) is None and registry.configured  # at once, no restart


def test_config_toml_tokens_and_the_single_auth_token_keep_working(tmp_path: Path) -> None:
    entry = TokenEntry(name="ci", sha256=digest("mmt_ci-secret"), namespaces=["builds"])
    settings = Settings(home=tmp_path, auth_token="old-style-token", tokens=[entry])
    registry = TokenRegistry(settings)
    ci = registry.lookup("mmt_ci-secret")
    assert ci is not None and ci.namespaces == frozenset({"builds"})
    shared = registry.lookup("old-style-token")
    assert shared is not None and shared.client_id == "auth_token" and shared.namespaces is None
    assert LOCAL.namespaces is None and LOCAL.writes_per_minute is None


def test_config_toml_tokens_are_read_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text(
        f'[[tokens]]\nname = "ci"\nsha256 = "{digest("mmt_s")}"\nnamespaces = ["builds"]\n'
        "read_only = true\n"
    )
    monkeypatch.setenv("MEMENTO_HOME", str(tmp_path))
    ci = TokenRegistry(Settings()).lookup("mmt_s")
    assert ci is not None and ci.read_only and ci.namespaces == frozenset({"builds"})


def test_cli_adds_lists_and_revokes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMENTO_HOME", str(tmp_path))
    runner = CliRunner()
    added = runner.invoke(app, ["token", "add", "alice", "-n", "team-a", "--read-only"])
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("mmt_") and "\n" not in secret  # stdout holds only the token
    assert TokenRegistry(Settings(home=tmp_path)).lookup(secret) is not None
    listed = runner.invoke(app, ["token", "list"])
    assert "alice" in listed.stdout and "team-a" in listed.stdout and secret not in listed.stdout
    assert runner.invoke(app, ["token", "revoke", "alice"]).exit_code == 0
    assert TokenRegistry(Settings(home=tmp_path)).lookup(secret) is None
    missing = runner.invoke(app, ["token", "revoke", "alice"])
    assert missing.exit_code == 1 and "no token named 'alice'" in missing.output


def test_serve_refuses_a_broken_tokens_file_in_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "tokens.json").write_text("not json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMENTO_")}
    done = subprocess.run(
        [sys.executable, "-m", "memento_mcp", "serve", "--transport", "http", "--port", "0"],
        env={**env, "MEMENTO_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "tokens file" in done.stderr and "not valid" in done.stderr
    assert "Traceback" not in done.stderr
