"""A cases file exported --with-embeddings imports without the encoder; a vector of the wrong
dimension is refused before anything is written (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memento_mcp import transfer
from memento_mcp.casebank import CaseBank, NewCase
from memento_mcp.cli import app
from memento_mcp.errors import InvalidInput
from memento_mcp.memory import Memory
from memento_mcp.settings import Settings


class NoEncoder:
    """Fails the test if anything is encoded."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        raise AssertionError(f"encoded {len(texts)} texts")

    def encode_one(self, text: str) -> np.ndarray:
        raise AssertionError(f"encoded {text!r}")


def seeded_bank(home: Path, n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bank = CaseBank(home / "memento.db")
    bank.add_cases([
        (NewCase("default", f"task {i}", f"plan {i}", f"answer {i}", float(i % 2), "agent",
                 {"i": i}), vectors[i])
        for i in range(n)
    ])
    bank.close()
    return vectors


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_export_with_embeddings_then_import_skips_the_encoder(tmp_path: Path) -> None:
    vectors = seeded_bank(tmp_path / "a")
    out = tmp_path / "cases.jsonl"
    code, output = run(tmp_path / "a", "export", str(out), "-f", "cases", "--with-embeddings")
    assert code == 0, output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 30 and len(lines[0]["embedding"]) == 384

    settings = Settings(home=tmp_path / "b")
    memory = Memory(CaseBank(settings.db_path), settings, encoder=NoEncoder())  # type: ignore[arg-type]
    report = transfer.import_file(memory, out)
    assert (report.format, report.added) == ("cases", 30)
    stored = memory.bank.case_vectors([case.case_id for case in memory.bank.iter_cases()])
    np.testing.assert_allclose(stored, vectors, atol=1e-6)
    assert [case.metadata for case in memory.bank.iter_cases()][3] == {"i": 3}
    assert transfer.import_file(memory, out).added == 0  # re-importing adds nothing
    found, sims = memory.index.search("default", vectors[4], 1)
    assert sims[0] == pytest.approx(1.0, abs=1e-5)


def test_plan_vectors_travel_with_the_export_and_are_not_embedded_again(tmp_path: Path) -> None:
    """A plan without a vector on import is embedded in the background when its case is first
    weighed, and retrieval is slower meanwhile (10k cases: 7.5 ms against 5.2 at the median).
    A plan that had one in the exporting bank keeps it."""
    vectors = seeded_bank(tmp_path / "a", n=6)
    plans = vectors[::-1].copy()
    bank = CaseBank(tmp_path / "a" / "memento.db")
    ids = [case.case_id for case in bank.iter_cases()]
    bank.add_plan_vectors({case_id: plans[i] for i, case_id in enumerate(ids) if i % 2 == 0})
    bank.close()
    out = tmp_path / "cases.jsonl"
    code, output = run(tmp_path / "a", "export", str(out), "-f", "cases", "--with-embeddings")
    assert code == 0, output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert ["plan_embedding" in line for line in lines] == [True, False] * 3

    settings = Settings(home=tmp_path / "b")
    memory = Memory(CaseBank(settings.db_path), settings, encoder=NoEncoder())  # type: ignore[arg-type]
    assert transfer.import_file(memory, out).added == 6
    imported = [case.case_id for case in memory.bank.iter_cases()]
    stored, unembedded = memory.bank.plan_vectors(imported)
    assert unembedded == imported[1::2]  # their tasks' vectors stand in until then
    np.testing.assert_allclose(stored[::2], plans[::2], atol=1e-6)


@pytest.mark.parametrize("field", ["embedding", "plan_embedding"])
def test_an_embedding_of_the_wrong_dimension_is_refused_with_nothing_imported(
    tmp_path: Path, field: str
) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("".join(
        json.dumps({"task": f"t{i}", "plan": "p", "answer": "", "reward": 1.0,
                    "embedding": [0.1] * 384, field: [0.1] * (384 if i == 0 else 768)}) + "\n"
        for i in range(3)
    ))
    settings = Settings(home=tmp_path / "home")
    memory = Memory(CaseBank(settings.db_path), settings, encoder=NoEncoder())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=rf"line 2: {field} has 768 dimensions.*makes 384"):
        transfer.import_file(memory, source, skip_bad=True)
    assert memory.bank.stats()["cases"] == 0

    code, output = run(tmp_path / "home", "import", str(source))
    assert code == 1 and "768 dimensions" in output


def test_with_embeddings_needs_the_cases_format(tmp_path: Path) -> None:
    seeded_bank(tmp_path)
    code, output = run(tmp_path, "export", str(tmp_path / "m.jsonl"), "--with-embeddings")
    assert code == 1 and "-f cases" in output
