"""Several processes on one bank lose nothing; a killed import leaves whole, acknowledged batches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from memento_mcp import transfer
from memento_mcp.casebank import CaseBank
from memento_mcp.memory import open_memory
from memento_mcp.settings import Settings

pytestmark = pytest.mark.slow

QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off",
         "FASTMCP_LOG_LEVEL": "ERROR"}


@pytest.mark.anyio
async def test_two_servers_writing_to_one_bank_at_once_lose_nothing(tmp_path: Path) -> None:
    import anyio

    env = {**os.environ, **QUIET, "MEMENTO_HOME": str(tmp_path)}
    acknowledged: list[int] = []

    async def writer(name: str) -> None:
        transport = StdioTransport(sys.executable, ["-m", "memento_mcp", "serve"], env=env)
        async with Client(transport, timeout=120) as client:
            for i in range(25):
                receipt = await client.call_tool("record_outcome", {
                    "task": f"task {i} from {name}", "plan": "plan", "answer": "a",
                    "reward": (i % 2) * 1.0,
                })
                acknowledged.append(receipt.structured_content["case_id"])

    async with anyio.create_task_group() as group:
        group.start_soon(writer, "A")
        group.start_soon(writer, "B")

    bank = CaseBank(tmp_path / "memento.db")
    stored = {case.case_id for case in bank.iter_cases()}
    assert len(acknowledged) == 50 and stored == set(acknowledged)
    assert bank.db["embeddings"].count == 50


OPENER = textwrap.dedent(
    """
    import sys, time
    from memento_mcp.casebank import CaseBank
    while time.time() < float(sys.argv[2]):
        pass
    CaseBank(sys.argv[1])
    """
)


def test_servers_starting_together_on_a_new_bank_all_open_it(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once when another process is doing the same."""
    import time

    for trial in range(6):
        path, start = tmp_path / f"bank{trial}.db", time.time() + 1.5
        openers = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(start)],
                                    stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [opener.communicate(timeout=60)[1] for opener in openers]
        assert [opener.returncode for opener in openers] == [0, 0, 0, 0], errors


def test_an_index_sees_cases_that_another_process_wrote_or_deleted(tmp_path: Path) -> None:
    reader = open_memory(Settings(home=tmp_path))
    writer = open_memory(Settings(home=tmp_path))  # a second connection, as another process has
    assert reader.retrieve("Who wrote Dune?").cases == []
    receipt = writer.record_outcome(task="Who wrote Dune?", plan="search", reward=1.0)
    assert [hit.case_id for hit in reader.retrieve("Who wrote Dune?").cases] == [receipt.case_id]
    writer.delete_case(receipt.case_id or 0)
    assert reader.retrieve("Who wrote Dune?").cases == []


IMPORTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from memento_mcp import transfer
    from memento_mcp.memory import open_memory
    from memento_mcp.settings import Settings

    memory = open_memory(Settings(home=sys.argv[1]))
    transfer.import_file(
        memory, Path(sys.argv[2]), batch_size=16,
        progress=lambda done, total: print(f"acknowledged {done}", flush=True),
    )
    print("finished", flush=True)
    """
)


def test_sigkill_during_import_keeps_every_acknowledged_case(tmp_path: Path) -> None:
    source = tmp_path / "memory.jsonl"
    source.write_text("".join(
        json.dumps({"case": f"Question number {i} about topic {i % 7}?", "plan": f"plan {i}",
                    "case_label": "positive" if i % 3 else "negative"}) + "\n"
        for i in range(400)
    ))
    process = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(tmp_path / "home"), str(source)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **QUIET},
    )
    assert process.stdout is not None
    acknowledged = 0
    for line in process.stdout:
        if line.startswith("acknowledged"):
            acknowledged = int(line.split()[1])
            if acknowledged >= 64:
                break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 64 <= acknowledged < 400

    memory = open_memory(Settings(home=tmp_path / "home"))
    cases = list(memory.bank.iter_cases())
    assert len(cases) >= acknowledged
    assert len(cases) % 16 == 0  # whole batches only: no half-written case
    assert memory.bank.db["embeddings"].count == len(cases)
    assert [case.task for case in cases] == [f"Question number {i} about topic {i % 7}?"
                                             for i in range(len(cases))]
    # the import resumes where it stopped, without duplicates
    report = transfer.import_file(memory, source)
    assert report.added == 400 - len(cases) and memory.bank.stats()["cases"] == 400
