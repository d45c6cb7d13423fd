"""The training subprocess on a Postgres bank: it opens the database from the URL in its
environment (never on its command line), and the promoted weights land in the database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_retriever_cli import SERVER, fill_sqlite_bank


@pytest.mark.slow
def test_online_training_on_postgres_promotes_and_stores_the_weights(
    tmp_path: Path, postgres_url: str
) -> None:
    bank = fill_sqlite_bank(postgres_url)
    server = subprocess.run(
        [sys.executable, "-c", SERVER, postgres_url, str(tmp_path / "ckpt")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert server.returncode == 0, server.stderr
    out = json.loads(server.stdout.strip().splitlines()[-1])
    last = out["status"]["last_run"]
    assert last["promoted"], last
    assert out["model"] == last["version"] and not out["torch"]
    rows = bank._query(
        "SELECT active, length(weights) FROM retriever_versions WHERE version = ?",
        (last["version"],),
    )
    assert rows[0][0] == 1 and rows[0][1] > 1000  # the serving .npz, in the database
    bank.close()
