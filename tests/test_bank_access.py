"""Banks this user may not write (issue 12): a read-only bank file serves retrieval and refuses
outcomes in one clear line; an unwritable data directory is named as a permission problem; and
`import` reports its committed batches when stderr is not a terminal.

Permissions do not bind root, so as root the commands run as `nobody` through setpriv; as any
other user they run as that user against files it has made read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from fastmcp.exceptions import ToolError

from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.errors import ReadOnlyBank
from memento_mcp.memory import Memory
from memento_mcp.retrieval.encoder import Encoder, _packaged_model_dir
from memento_mcp.settings import Settings

NOBODY = 65534
QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off"}


def make_bank(home: Path, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bank = CaseBank(home / "memento.db")
    bank.add_cases([
        (NewCase("default", f"task {i}", f"plan {i}", f"answer {i}", 1.0, "agent"), vectors[i])
        for i in range(n)
    ])
    bank.close()
    return vectors


class FixedEncoder:
    """Encodes every query as one given vector (the bank's vectors are random)."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode_one(self, text: str) -> np.ndarray:
        return self.vector


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_bank_retrieves_without_logging_and_refuses_every_write(
    tmp_path: Path,
) -> None:
    vectors = make_bank(tmp_path)
    before = digest(tmp_path / "memento.db")
    settings = Settings(home=tmp_path, explore=False)
    bank = CaseBank(settings.db_path, read_only=True)
    memory = Memory(bank, settings, encoder=FixedEncoder(vectors[7]))  # type: ignore[arg-type]
    result = memory.retrieve("anything", k=2)
    assert result.cases[0].case_id == 8 and memory.stats().read_only
    for write in (
        lambda: memory.record_outcome(request_id=result.request_id, reward=1.0),
        lambda: memory.record_outcome(task="t", plan="p", answer="a", reward=1.0),
        lambda: memory.delete_case(8),
    ):
        with pytest.raises(ReadOnlyBank, match="read-only to the server.*chmod u\\+w"):
            write()
    bank.close()
    assert digest(tmp_path / "memento.db") == before
    assert CaseBank(settings.db_path).stats()["requests"] == 0  # nothing was logged


def test_a_read_only_bank_never_writes_a_vector_index_file(tmp_path: Path) -> None:
    vectors = make_bank(tmp_path)
    settings = Settings(home=tmp_path, ann_min_cases=10, explore=False)
    bank = CaseBank(settings.db_path, read_only=True)
    memory = Memory(bank, settings, encoder=FixedEncoder(vectors[3]))  # type: ignore[arg-type]
    assert memory.retrieve("anything", k=1).cases[0].case_id == 4
    memory.index.wait()
    assert memory.stats().index["default"]["search"] == "exact"
    assert not Path(f"{settings.db_path}.index").exists()
    bank.close()


# -- as a user without write access ----------------------------------------------------------


def as_other_user() -> list[str]:
    """The command prefix that runs without our rights (none needed unless we are root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop to a user that permissions bind")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="memento-access-"))
    path.chmod(0o755)
    yield path
    for entry in [path, *path.rglob("*")]:
        if not entry.is_symlink():
            entry.chmod(0o755)
    shutil.rmtree(path)


def restrict(home: Path, directory_too: bool) -> None:
    """Make the bank file (and with `directory_too`, its directory) unwritable for the user
    of as_other_user(); without it, that user may still write the directory."""
    bank = home / "memento.db"
    if os.geteuid() == 0 and not directory_too:
        for entry in (home, bank):
            os.chown(entry, NOBODY, NOBODY)
    bank.chmod(0o444)
    if directory_too and os.geteuid() != 0:
        home.chmod(0o555)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **QUIET, "HOME": str(home.parent)}
    return subprocess.run(
        [*as_other_user(), sys.executable, "-m", "memento_mcp", "--home", str(home), *args],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.parametrize("directory_too", [False, True], ids=["file", "file-and-directory"])
def test_a_read_only_bank_file_is_opened_read_only(public_dir: Path, directory_too: bool) -> None:
    home = public_dir / "home"
    make_bank(home)
    restrict(home, directory_too)
    stats = cli(home, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["read_only"] is True
    assert cli(home, "check").returncode == 0
    source = public_dir / "one.jsonl"
    source.write_text(json.dumps({"question": "Who wrote Dune?", "plan": "look", "reward": 1}))
    source.chmod(0o644)
    imported = cli(home, "import", str(source))
    assert imported.returncode == 1
    assert imported.stderr.count("\n") == 1 and "is read-only to the server" in imported.stderr


def encoder_cache_for(public: Path) -> Path:
    """A cache directory the other user can read, holding our exported ONNX encoder (exporting
    it again as that user would load torch for a minute)."""
    encoder = Encoder()
    encoder.load()
    onnx = encoder.onnx_file(_packaged_model_dir())
    cache = public / "cache"
    (cache / "memento-mcp").mkdir(parents=True)
    target = cache / "memento-mcp" / onnx.name
    try:
        os.link(onnx, target)
    except OSError:
        shutil.copyfile(onnx, target)
    target.chmod(0o644)
    return cache


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_read_only_bank_serves_retrieval_over_stdio_and_refuses_outcomes(
    public_dir: Path,
) -> None:
    home = public_dir / "home"
    make_bank(home)
    restrict(home, directory_too=True)
    before = digest(home / "memento.db")
    command, *args = [*as_other_user(), sys.executable, "-m", "memento_mcp", "serve"]
    env = {**os.environ, **QUIET, "MEMENTO_HOME": str(home), "HOME": str(public_dir),
           "XDG_CACHE_HOME": str(encoder_cache_for(public_dir))}
    async with Client(StdioTransport(command, args, env=env), timeout=120) as client:
        found = await client.call_tool("retrieve_cases", {"query": "task 3", "k": 2})
        assert found.structured_content is not None
        request_id = found.structured_content["request_id"]
        with pytest.raises(ToolError, match="ReadOnlyBank: .*read-only"):
            await client.call_tool("record_outcome", {"request_id": request_id, "reward": 1.0})
        stats = await client.call_tool("case_bank_stats", {})
        assert stats.structured_content is not None and stats.structured_content["read_only"]
    assert digest(home / "memento.db") == before


@pytest.mark.slow
def test_an_unwritable_data_directory_is_named_as_a_permission_problem(public_dir: Path) -> None:
    home = public_dir / "home"
    home.mkdir()
    if os.geteuid() != 0:
        home.chmod(0o555)
    result = cli(home, "stats")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "permission problem" in result.stderr and f"directory {home} " in result.stderr
    nested = cli(home / "a" / "b", "stats")
    assert nested.returncode == 1 and f"directory {home} " in nested.stderr, nested.stderr


@pytest.mark.slow
def test_an_unreachable_data_directory_is_named_as_a_permission_problem(public_dir: Path) -> None:
    closed = public_dir / "closed"
    closed.mkdir(mode=0o700 if os.geteuid() == 0 else 0o000)
    result = cli(closed / "home", "stats")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "permission problem" in result.stderr and str(closed / "home") in result.stderr


@pytest.mark.slow
def test_import_reports_each_committed_batch_when_stderr_is_not_a_terminal(
    tmp_path: Path,
) -> None:
    source = tmp_path / "dummy.jsonl"
    source.write_text("".join(
        json.dumps({"question": f"question number {i}", "plan": "look", "reward": i % 2}) + "\n"
        for i in range(300)
    ))
    result = subprocess.run(
        [sys.executable, "-m", "memento_mcp", "--home", str(tmp_path / "home"), "import",
         str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "committed 256/300 new cases", "committed 300/300 new cases"
    ]
    assert "300 cases added" in result.stdout
