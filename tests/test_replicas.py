"""Several `memento-mcp serve --transport http` replicas on one PostgreSQL database (issue 11).

Real processes, a real database: a write through one replica is read through another at once,
every replica serves the promoted retriever version (and the rolled-back one), a replica killed
with SIGKILL mid-burst loses no write it acknowledged, and one training run at a time.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from fastmcp import Client
from http_server import HttpServer
from postgres_server import PostgresForTests

from memento_mcp.casebank import NewCase, open_bank
from retriever import job
from retriever.versions import rollback

pytestmark = pytest.mark.slow


class Replica(HttpServer):
    """A `memento-mcp serve --transport http` child on the test's PostgreSQL database (it
    listens once its lifespan has opened the bank; /healthz is checked by the first test)."""

    def __init__(self, database_url: str, home: Path) -> None:
        super().__init__(home, MEMENTO_DATABASE_URL=database_url)
        self.url = self.base

    def client(self) -> Client:
        return Client(f"{self.url}/mcp", timeout=120)


@pytest.fixture(scope="module")
def database(postgres_server: PostgresForTests) -> Iterator[str]:
    url = postgres_server.new_database()
    yield url
    postgres_server.drop(url)


@pytest.fixture(scope="module")
def replicas(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    started = [Replica(database, tmp_path_factory.mktemp(f"replica{i}")) for i in range(2)]
    yield started
    for replica in started:
        replica.stop()


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.structured_content is not None
    return result.structured_content


def shown(result: dict[str, Any]) -> list[int]:
    return [hit["case_id"] for hit in result["positive"] + result["negative"]]


@pytest.mark.anyio
async def test_a_write_through_one_replica_is_read_through_another_at_once(
    replicas: list[Replica],
) -> None:
    a, b = replicas
    async with httpx.AsyncClient() as http:
        health = [(await http.get(f"{r.url}/healthz")).json() for r in replicas]
    assert [h["status"] for h in health] == ["ok", "ok"]
    assert health[0]["replica"] != health[1]["replica"]
    async with a.client() as via_a, b.client() as via_b:
        stored = await call(via_a, "record_outcome", task="Who wrote the novel Dune?",
                            plan="Search the book; read the author.", answer="Frank Herbert",
                            reward=1.0, namespace="visibility")  # fmt: skip
        found = await call(via_b, "retrieve_cases", query="Who wrote Dune?", namespace="visibility")
        assert shown(found) == [stored["case_id"]]
        # the outcome of B's retrieval, reported through A, labels what B showed
        labelled = await call(via_a, "record_outcome", request_id=found["request_id"], reward=1.0)
        assert labelled["labelled_impressions"] == 1
        await call(via_b, "delete_case", case_id=stored["case_id"])
        gone = await call(via_a, "retrieve_cases", query="Who wrote Dune?", namespace="visibility")
        assert shown(gone) == []


def write_weights(path: Path, bias: float) -> None:
    """A prior head's serving weights (retriever/scorer.py's arrays), no torch needed."""
    hidden, features = 8, 6 * 384 + 2
    np.savez(path, w1=np.zeros((features, hidden), np.float32), b1=np.zeros(hidden, np.float32),
             w2=np.zeros(hidden, np.float32), b2=np.array(bias, np.float32),
             w_wide=np.zeros(2, np.float32))  # fmt: skip


@pytest.mark.anyio
async def test_every_replica_serves_the_promoted_version_and_the_rollback(
    replicas: list[Replica], database: str, tmp_path: Path
) -> None:
    namespace = "promotion"
    async with replicas[0].client() as client:
        await call(client, "record_outcome", task="Convert a CSV file to JSON", plan="use pandas",
                   reward=1.0, namespace=namespace)  # fmt: skip
    bank = open_bank(database)
    trainer_disk = tmp_path / "trainer"  # the checkpoints of a trainer on another machine
    trainer_disk.mkdir()
    for version, bias in (("q-old", -1.0), ("q-new", 1.0)):
        write_weights(trainer_disk / f"{version}.npz", bias)
        bank.add_retriever_version(version, str(trainer_disk / f"{version}.pt"), {}, namespace)
        bank.activate_retriever(version)
    for file in trainer_disk.iterdir():
        file.unlink()  # gone from disk: the replicas must load the weights from the database

    async def scorers() -> list[str]:
        names = []
        for replica in replicas:
            async with replica.client() as client:
                result = await call(
                    client, "retrieve_cases", query="CSV to JSON", namespace=namespace
                )
                names.append(result["scorer"])
        return names

    assert await scorers() == ["evidence+q-new", "evidence+q-new"]
    assert rollback(bank, namespace) == "q-old"
    assert await scorers() == ["evidence+q-old", "evidence+q-old"]
    bank.close()


@pytest.mark.anyio
async def test_sigkill_of_a_replica_mid_burst_loses_no_acknowledged_write(
    database: str, tmp_path: Path
) -> None:
    victim = Replica(database, tmp_path / "victim")
    acknowledged: list[int] = []
    killed = anyio.Event()

    async def writer(name: str) -> None:
        try:
            async with victim.client() as client:
                for i in range(1000):
                    receipt = await call(client, "record_outcome", task=f"burst task {i} by {name}",
                                         plan="plan", reward=float(i % 2), namespace="burst")  # fmt: skip
                    acknowledged.append(receipt["case_id"])
                    if len(acknowledged) >= 40 and not killed.is_set():
                        victim.process.send_signal(signal.SIGKILL)
                        killed.set()
        except Exception:  # noqa: BLE001 - the replica died under this writer: expected
            return

    with anyio.fail_after(180):
        async with anyio.create_task_group() as group:
            for name in "ABCD":
                group.start_soon(writer, name)
    victim.process.wait(timeout=30)
    assert killed.is_set() and victim.process.returncode == -signal.SIGKILL
    bank = open_bank(database)
    stored = {case.case_id for case in bank.iter_cases("burst")}
    assert set(acknowledged) <= stored  # every acknowledged write survived
    embedded = int(bank._query("SELECT count(*) FROM embeddings WHERE namespace = 'burst'")[0][0])
    assert embedded == len(stored)  # and no case was left without its embedding
    bank.close()


def test_one_training_run_at_a_time_across_replicas(postgres_url: str, tmp_path: Path) -> None:
    first, second = open_bank(postgres_url), open_bank(postgres_url)
    first.add_case(NewCase("default", "task", "plan", reward=1.0), np.ones(384) / np.sqrt(384))
    with first.exclusive(job.TRAINING_LOCK) as mine:  # type: ignore[attr-defined]
        assert mine  # this "replica" is training
        skipped = job.run(second, "default", tmp_path, keep=5)
        assert skipped["version"] is None and "another replica is training" in skipped["reason"]
    ran = job.run(second, "default", tmp_path, keep=5)  # free again: it runs (too little data)
    assert ran["reason"].startswith("too little data")
    first.close()
    second.close()
