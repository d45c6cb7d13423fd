"""Which bank a location names: a `postgresql://` URL opens PostgresBank, anything else the SQLite file.

Postgres is imported only when asked for, so the default (SQLite) start pays nothing for it.
"""

from __future__ import annotations

from pathlib import Path

from memento_mcp.casebank.store import CaseBank

SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def open_bank(location: str | Path, *, cache_dir: Path | None = None) -> CaseBank:
    """The bank at `location`: a SQLite file path, or a PostgreSQL URL (with pgvector)."""
    if is_database_url(location):
        from memento_mcp.casebank.postgres import PostgresBank

        return PostgresBank(str(location), cache_dir=cache_dir)
    return CaseBank(location)
