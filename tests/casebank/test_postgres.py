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
from memento_mcp.errors import StorageError

VECTOR = np.ones(384, dtype=np.float32) / np.sqrt(384)


def test_an_unreachable_server_is_one_clear_line_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        open_bank("postgresql://memento:s3cret@127.0.0.1:1/memento")
    message = str(caught.value)
    assert message.startswith("cannot reach PostgreSQL at postgresql://memento@127.0.0.1:1/memento")
    assert "s3cret" not in message and "\n" not in message


def test_a_database_without_pgvector_says_how_to_enable_it(
    postgres_server: PostgresForTests,
) -> None:
    """A role that may not create the extension, in a database that lacks it (a managed server's
    usual state before someone enables pgvector)."""
    url = postgres_server.new_database(migrated=False)
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS memento_plain")
        conn.execute("CREATE ROLE memento_plain LOGIN")
        conn.execute(f'GRANT ALL ON DATABASE "{name}" TO memento_plain'.encode())
        conn.execute("GRANT ALL ON SCHEMA public TO memento_plain")
    plain = with_user(url, "memento_plain")
    try:
        with pytest.raises(StorageError, match="CREATE EXTENSION vector as a superuser"):
            open_bank(plain)
    finally:
        postgres_server.drop(url)
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS memento_plain")


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
