"""Keeping a bank sound (issue 12): the full check behind `memento-mcp check`, a consistent
backup that can be taken while servers run, and the check `serve` makes before it takes a client.

The SQL lives in casebank/health.py; this module adds the vector index's side (what a search can
return must be exactly the bank's cases) and turns findings into a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from memento_mcp.casebank import CaseBank, files, health, open_bank
from memento_mcp.errors import DamagedBank, InvalidInput, StorageError
from memento_mcp.retrieval.encoder import DIMENSIONS
from memento_mcp.retrieval.index import VectorIndex
from memento_mcp.settings import Settings

QUICK_CHECK_MAX_BYTES = 256 * 2**20
"""serve quick-checks banks up to this size before it starts: the check reads the whole file,
about 0.35 s for 256 MiB from the page cache here (a 2.5 GB bank took 3.3 s warm and 47 s cold,
too long for every start; `memento-mcp check` covers big banks)."""


@dataclass
class CheckReport:
    """What `memento-mcp check` found: each check passed (`passed`) or its problems."""

    path: str
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, name: str, problems: list[str]) -> None:
        if problems:
            self.problems += [f"{name}: {problem}" for problem in problems]
        else:
            self.passed.append(name)


def check(settings: Settings) -> CheckReport:
    """SQLite's integrity_check, then (only on a sound file) the full-text index, the vectors
    and the vector index against the cases table."""
    if settings.database_url:
        return _check_database(settings.database_url)
    path = settings.db_path
    report = CheckReport(str(path))
    if not path.is_file():
        report.problems.append(f"no case bank at {path}")
        return report
    report.add("SQLite integrity_check", health.integrity_problems(str(path)))
    if not report.ok:
        report.problems.append(f"the other checks need a sound file; to repair it, {files.RESTORE}")
        return report
    bank = CaseBank(path)
    try:
        rows_only = " (rows only: the bank is read-only)" if bank.read_only else ""
        report.add(f"full-text index agrees with the cases{rows_only}", health.fts_problems(bank))
        report.add("every case has its vector", health.vector_problems(bank, DIMENSIONS))
        report.add("vector index holds exactly the bank's cases", _index_problems(bank, settings))
    finally:
        bank.close()
    return report


def _check_database(url: str) -> CheckReport:
    """A PostgreSQL bank: PostgreSQL keeps its own pages, indexes and full-text column sound, and
    searches in the database (no index files here), so what is left is the cases' vectors."""
    bank = open_bank(url)
    try:
        report = CheckReport(bank.path)
        report.add("every case has its vector", health.vector_problems(bank, DIMENSIONS))
    finally:
        bank.close()
    return report


def _index_problems(bank: CaseBank, settings: Settings) -> list[str]:
    """What a search can return (index files and in-memory rows) against the cases table.

    A rejected index file is moved aside and rebuilt by VectorIndex as a server would; the wait
    at the end lets that finish, so the check never leaves half a file behind.
    """
    index = VectorIndex(bank, DIMENSIONS, ann_min_cases=settings.ann_min_cases)
    problems = []
    try:
        status = index.status()
        for namespace, ids in sorted(health.case_ids_by_namespace(bank).items()):
            searchable = index.case_ids(namespace)
            if ids - searchable:
                problems.append(f"{namespace}: {len(ids - searchable)} case(s) cannot be found")
            if searchable - ids:
                problems.append(f"{namespace}: {len(searchable - ids)} deleted case(s) still found")
            note = status.get(namespace, {}).get("note")
            if note:
                problems.append(f"{namespace}: {note}")
    finally:
        index.wait()
    return problems


@dataclass
class BackupReport:
    path: Path
    bytes: int
    problems: list[str]


def backup(settings: Settings, dest: Path) -> BackupReport:
    """Copy the bank to `dest` (a new file) and quick-check the copy."""
    if settings.database_url:
        raise InvalidInput(
            "backup copies a SQLite bank file; this bank is in PostgreSQL: back it up with"
            " pg_dump (docs/deploy.md), or copy it into a file with `memento-mcp export`"
        )
    source = settings.db_path
    if not source.is_file():
        raise StorageError(f"no case bank at {source} to back up")
    if dest.exists():
        raise InvalidInput(f"{dest} exists; a backup never overwrites a file, choose a new name")
    if dest.resolve() == source.resolve():
        raise InvalidInput("the backup must be a different file from the bank")
    health.backup(str(source), dest)
    return BackupReport(dest, dest.stat().st_size, health.integrity_problems(str(dest), quick=True))


def ready_to_serve(bank: CaseBank) -> list[str]:
    """Refuse (DamagedBank) a bank that fails quick_check; warnings for a bank that serves
    with limits. Banks above QUICK_CHECK_MAX_BYTES are left to `memento-mcp check`."""
    file = Path(bank.path)  # neither ":memory:" nor a PostgreSQL bank is a file to check
    if file.is_file() and file.stat().st_size <= QUICK_CHECK_MAX_BYTES:
        problems = health.quick_problems(bank)
        if problems:
            raise DamagedBank(
                f"refusing to serve: the case bank at {bank.path} is damaged ({problems[0]});"
                f" {files.REPAIR}"
            )
    return [bank.read_only_message()] if bank.read_only else []
