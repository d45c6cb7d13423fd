"""What only the Postgres bank has: its failures said in one line, its schema guard, its lock.

The behaviour both banks share is tested on both in test_store.py (the `bank_location` fixture).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from postgres_server import PostgresForTests, with_database, with_user

from memento_mcp.casebank import NewCase, open_bank
from memento_mcp.casebank.postgres.schema import SCHEMA_VERSION
from memento_mcp.errors import ReadOnlyBank, StorageError

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


def test_an_unreachable_server_is_one_clear_line_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        open_bank("postgresql://memento:s3cret@127.0.0.1:1/memento")
    message = str(caught.value)
    assert message.startswith("cannot reach PostgreSQL at postgresql://memento@127.0.0.1:1/memento")
    assert "s3cret" not in message and "\n" not in message


def login_role(url: str, role: str, *grants: str) -> str:
    """A new role with `grants` ("{db}": the URL's database), as a URL of the same database."""
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}".encode())
        conn.execute(f"CREATE ROLE {role} LOGIN".encode())
        for grant in grants:
            conn.execute(f"GRANT {grant.format(db=database)} TO {role}".encode())
    return with_user(url, role)


def drop_with_role(postgres_server: PostgresForTests, url: str, role: str) -> None:
    postgres_server.drop(url)  # first: the role's grants on it go with it
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}".encode())


def test_a_database_without_pgvector_says_how_to_enable_it(
    postgres_server: PostgresForTests,
) -> None:
    """A role that may not create the extension, in a database that lacks it (a managed server's
    usual state before someone enables pgvector)."""
    url = postgres_server.new_database(migrated=False)
    plain = login_role(url, "memento_plain", 'ALL ON DATABASE "{db}"', "ALL ON SCHEMA public")
    try:
        with pytest.raises(StorageError, match="CREATE EXTENSION vector as a superuser"):
            open_bank(plain)
    finally:
        drop_with_role(postgres_server, url, "memento_plain")


def test_a_database_from_a_newer_version_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE memento_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match="newer than this memento-mcp understands"):
        open_bank(postgres_url)


def test_a_fresh_database_is_migrated_and_the_pgvector_index_is_there(
    postgres_server: PostgresForTests,
) -> None:
    url = postgres_server.new_database(migrated=False)
    try:
        bank = open_bank(url)
        indexes = {row[0] for row in bank._query("SELECT indexname FROM pg_indexes")}
        assert {"embeddings_hnsw", "cases_tsv", "impressions_history"} <= indexes
        assert bank.stats()["schema_version"] == SCHEMA_VERSION
        bank.close()
    finally:
        postgres_server.drop(url)


def test_a_slow_statement_is_stopped_by_the_timeout(postgres_url: str) -> None:
    from memento_mcp.casebank.postgres import PostgresBank

    bank = PostgresBank(postgres_url, statement_timeout_s=0.2)
    with pytest.raises(StorageError, match="statement timeout"):
        bank._query("SELECT pg_sleep(2)")
    bank.close()


def test_only_one_holder_of_the_training_lock_at_a_time(postgres_url: str) -> None:
    first, second = open_bank(postgres_url), open_bank(postgres_url)  # as two replicas
    with first.exclusive("retrain:default") as mine:  # type: ignore[attr-defined]
        assert mine
        with second.exclusive("retrain:default") as theirs:  # type: ignore[attr-defined]
            assert not theirs
        with second.exclusive("retrain:other") as other:  # type: ignore[attr-defined]
            assert other
    with second.exclusive("retrain:default") as theirs:  # type: ignore[attr-defined]
        assert theirs  # released with the first holder's block
    first.close()
    second.close()


def test_a_write_is_seen_by_another_connection_at_once(postgres_url: str) -> None:
    writer, reader = open_bank(postgres_url), open_bank(postgres_url)
    case_id, _ = writer.add_case(NewCase("default", "shared task", "plan", reward=1.0), VECTOR)
    ids, _ = reader.nearest("default", VECTOR, 5)  # type: ignore[attr-defined]
    assert ids.tolist() == [case_id]
    assert reader.lexical_search("default", "shared", 5)[0][0] == case_id
    writer.close()
    reader.close()


def test_with_database_keeps_the_server_and_credentials() -> None:
    url = "postgresql://u:p@h:5/a?host=/x"
    assert with_database(url, "b") == "postgresql://u:p@h:5/b?host=/x"


def test_the_shown_location_never_holds_the_password() -> None:
    from memento_mcp.casebank.postgres.connection import redact

    assert redact("postgresql://u:pw@db:6432/mem") == "postgresql://u@db:6432/mem"
    assert redact("postgresql://u:pw@/mem?host=/run/pg") == "postgresql://u@/mem?host=/run/pg"


def test_the_bank_is_chosen_by_env_then_config_toml_else_the_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memento_mcp.settings import Settings

    monkeypatch.setenv("MEMENTO_HOME", str(tmp_path))
    monkeypatch.delenv("MEMENTO_DATABASE_URL", raising=False)
    assert Settings().bank_location == tmp_path / "memento.db"
    (tmp_path / "config.toml").write_text('database_url = "postgresql://u@from-toml/db"\n')
    assert Settings().bank_location == "postgresql://u@from-toml/db"
    monkeypatch.setenv("MEMENTO_DATABASE_URL", "postgresql://u@from-env/db")
    assert Settings().bank_location == "postgresql://u@from-env/db"


def test_a_v1_database_gains_provenance_and_its_old_outcomes_are_nobodys(
    postgres_server: PostgresForTests,
) -> None:
    """Schema v2 (SQLite's v5): client_id on cases, requests and outcomes."""
    from memento_mcp.casebank.postgres.schema import MIGRATIONS

    url = postgres_server.new_database(migrated=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(MIGRATIONS[0].encode())
            conn.execute("CREATE TABLE memento_schema (version integer NOT NULL)")
            conn.execute("INSERT INTO memento_schema VALUES (1)")
            conn.execute(
                "INSERT INTO outcomes (request_id, case_id, reward, recorded_at)"
                " VALUES ('old', NULL, 1.0, '2026-01-01T00:00:00.000+00:00')"
            )
        bank = open_bank(url)
        assert bank.stats()["schema_version"] == SCHEMA_VERSION == 3
        case = NewCase("default", "Who wrote Dune?", "Search", "Herbert", 1.0, client_id="alice")
        first = bank.record_outcome(1.0, None, (case, VECTOR), None, "alice")
        assert bank.get_case(first.case_id).client_id == "alice"  # type: ignore[arg-type]
        assert bank.record_outcome(1.0, None, (case, VECTOR), None, "alice").duplicate
        assert [(row["client_id"], row["outcomes"]) for row in bank.teachers()] == [
            (None, 1), ("alice", 1),
        ]
        bank.close()
    finally:
        postgres_server.drop(url)


def reader_role(url: str, *grants: str) -> str:
    """A role that may read the bank's tables (and do `grants` besides), as a URL."""
    tables = "SELECT ON ALL TABLES IN SCHEMA public"
    return login_role(url, "memento_reader", 'CONNECT ON DATABASE "{db}"', tables, *grants)


@pytest.mark.slow  # loads the encoder
def test_a_role_that_may_only_read_serves_retrieval_and_refuses_writes(
    postgres_server: PostgresForTests, tmp_path: Path
) -> None:
    from memento_mcp.auth.principal import LOCAL
    from memento_mcp.auth.ratelimit import RateLimiter
    from memento_mcp.auth.tenant import TenantMemory
    from memento_mcp.maintenance import ready_to_serve
    from memento_mcp.memory import open_memory
    from memento_mcp.settings import Settings

    url = postgres_server.new_database()
    try:
        owner = open_memory(Settings(home=tmp_path / "owner", database_url=url))
        owner.record_outcome(task="shared task", plan="plan", reward=1.0)
        owner.close()
        memory = open_memory(
            Settings(home=tmp_path / "reader", database_url=reader_role(url))
        )
        bank = memory.bank
        assert bank.read_only and memory.stats().read_only
        (warning,) = ready_to_serve(bank)
        assert "read-only" in warning and "GRANT INSERT" in warning
        tenant = TenantMemory(memory, LOCAL, RateLimiter())
        shown = tenant.retrieve("shared task")
        assert [hit.task for hit in shown.positive] == ["shared task"]  # served, not logged
        # Refused as read-only, not as an unknown request (none was logged to find).
        with pytest.raises(ReadOnlyBank, match="GRANT INSERT"):
            tenant.record_outcome(request_id=shown.request_id, reward=1.0)
        with pytest.raises(ReadOnlyBank):
            tenant.store_trajectory(request_id=shown.request_id, task="t", plan="p",
                                    answer="a", trajectory=[])  # fmt: skip
        with pytest.raises(ReadOnlyBank):
            bank.record_outcome(1.0, None, (NewCase("default", "new", "plan"), VECTOR), None)
        assert (bank.stats()["cases"], bank.stats()["requests"]) == (1, 0)
        bank.close()
    finally:
        drop_with_role(postgres_server, url, "memento_reader")


def test_a_write_the_role_may_not_make_is_refused_as_read_only(
    postgres_server: PostgresForTests,
) -> None:
    """A role with some write grants is not read-only; the write it lacks is refused in one line."""
    url = postgres_server.new_database()
    try:
        bank = open_bank(reader_role(url, "INSERT ON outcomes"))
        assert not bank.read_only
        with pytest.raises(ReadOnlyBank, match="read-only to the server"):
            bank.record_outcome(1.0, None, (NewCase("default", "new", "plan"), VECTOR), None)
        bank.close()
    finally:
        drop_with_role(postgres_server, url, "memento_reader")
