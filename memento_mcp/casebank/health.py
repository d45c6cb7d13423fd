"""The SQL behind `memento-mcp check` and `memento-mcp backup` (issue 12): SQLite's own integrity
checks, the agreement of the full-text index and the stored vectors with the cases table, and a
copy made through SQLite's online backup API. The vector index's side is in maintenance.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from memento_mcp.casebank import files
from memento_mcp.casebank.connection import Connection
from memento_mcp.errors import StorageError

SHOWN = 10
"""At most this many of SQLite's integrity messages are passed on; the rest are counted."""


def _messages(rows: list[tuple[str]]) -> list[str]:
    found = [str(row[0]) for row in rows if row[0] != "ok"]
    if len(found) > SHOWN:
        found = [*found[:SHOWN], f"... and {len(found) - SHOWN} more"]
    return found


def integrity_problems(path: str, quick: bool = False) -> list[str]:
    """SQLite's integrity_check (quick_check: no index-to-table cross checks) of the file at
    `path`, through a read-only connection of its own: a damaged file may not even open as a
    bank, and checking must never write. [] when it is sound."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        conn = files.connect_read_only(path)
    except sqlite3.Error as exc:
        return [f"cannot open it: {exc}"]
    try:
        return _messages(conn.execute(f"PRAGMA {pragma}").fetchall())
    except sqlite3.Error as exc:  # some damage stops the check itself
        return [f"{pragma} stopped: {exc}"]
    finally:
        conn.close()


def quick_problems(bank: Connection) -> list[str]:
    """quick_check through the bank's own connection (serve runs it before taking clients)."""
    try:
        return _messages(bank._query("PRAGMA quick_check"))  # type: ignore[arg-type]
    except StorageError as exc:
        return [str(exc.__cause__ or exc)]


def fts_problems(bank: Connection) -> list[str]:
    """The FTS5 index over task and plan against the cases it indexes.

    Rows are compared through the index's docsize table (one row per indexed case); FTS5's
    `integrity-check` then compares every token with the cases' text. SQLite runs that command
    as a write, so a read-only bank gets only the row comparison.
    """
    missing, extra = bank._query(
        "SELECT (SELECT count(*) FROM cases WHERE id NOT IN (SELECT id FROM cases_fts_docsize)),"
        " (SELECT count(*) FROM cases_fts_docsize WHERE id NOT IN (SELECT id FROM cases))"
    )[0]
    problems = []
    if missing:
        problems.append(f"{missing} case(s) missing from the full-text index")
    if extra:
        problems.append(f"{extra} full-text entrie(s) for cases that no longer exist")
    if not bank.read_only and not problems:
        try:
            with bank._write() as db:  # changes nothing; one short transaction all the same
                db.execute("INSERT INTO cases_fts(cases_fts, rank) VALUES('integrity-check', 1)")
        except StorageError as exc:
            problems.append(f"the full-text index differs from the cases' text ({exc.__cause__})")
    return problems


def vector_problems(bank: Connection, dims: int) -> list[str]:
    """Every case has one task vector of the bank's encoder and size; no vector lacks a case."""
    row = bank._query(
        "SELECT (SELECT count(*) FROM cases WHERE id NOT IN (SELECT case_id FROM embeddings)),"
        " (SELECT count(*) FROM embeddings WHERE case_id NOT IN (SELECT id FROM cases)),"
        f" (SELECT count(*) FROM embeddings WHERE {bank.vector_dims_sql} != ? OR encoder != ?),"
        " (SELECT count(*) FROM plan_embeddings WHERE case_id NOT IN (SELECT id FROM cases))",
        (dims, bank.encoder_name),
    )[0]
    labels = (
        "case(s) without a vector (retrieval cannot find them)",
        "vector(s) of cases that no longer exist",
        f"vector(s) not made by {bank.encoder_name} with {dims} dimensions",
        "plan vector(s) of cases that no longer exist",
    )
    return [f"{count} {label}" for count, label in zip(row, labels, strict=True) if count]


def case_ids_by_namespace(bank: Connection) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {}
    for case_id, namespace in bank._query("SELECT id, namespace FROM cases"):
        ids.setdefault(namespace, set()).add(int(case_id))
    return ids


def backup(source: str, dest: Path) -> None:
    """Copy the bank at `source` to the new file `dest` through SQLite's online backup API.

    The copy is one read transaction, so it is the bank at one moment even while servers keep
    writing (WAL lets them). It is written beside `dest` and renamed into place, so `dest` is
    either a whole backup or absent, and it is switched to a rollback journal: one
    self-contained file that can be copied anywhere (a bank opened from it returns to WAL).
    """
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        src = files.connect_read_only(source)
    except sqlite3.Error as exc:
        raise files.open_error(source, exc) from exc
    try:
        try:
            dst = sqlite3.connect(partial)
        except sqlite3.Error as exc:
            raise OSError(f"cannot create {partial}: {exc}") from exc
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise files.access_error(source, exc, "read") from exc
    except OSError as exc:
        raise StorageError(f"cannot write the backup {dest}: {exc}") from exc
    finally:
        src.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
