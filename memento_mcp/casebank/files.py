"""The bank file as the operating system sees it: who may write it, how to open it read-only,
and what a failed open, read or write means to the person who has to fix it (issue 12).

SQLite's own messages name neither the file nor the remedy: "unable to open database file" for a
directory the user cannot write, "database disk image is malformed" for a damaged file. Each is
turned here into one line that says what is wrong, which path, and what to run next.
"""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path
from urllib.parse import quote

from memento_mcp.errors import DamagedBank, ReadOnlyBank, StorageError

_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_DENIED = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY}

RESTORE = (
    "move the file aside, then copy back a backup (made by `memento-mcp backup`) or re-import"
    " an export (`memento-mcp import`)"
)
REPAIR = f"run `memento-mcp check` to see what is damaged; {RESTORE}"


def is_read_only(path: str) -> bool:
    """An existing bank file that this user may read but not write."""
    return (
        path != ":memory:" and os.path.exists(path) and os.access(path, os.R_OK)
        and not os.access(path, os.W_OK)
    )


def connect_read_only(path: str) -> sqlite3.Connection:
    """A connection that never writes. A WAL bank is read through its `-shm` index, which SQLite
    creates beside the file when no process has the bank open. Where it cannot (a directory we
    may not write), no process has the bank open either, and the file is opened as immutable:
    the only way to read it, at the price of not seeing commits made after this open."""
    uri = f"file:{quote(path)}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF not in _DENIED:
            raise
        conn.close()
    return sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)


def current_user() -> str:
    """The effective user's name (what file permissions are checked against), else its uid."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry, as in some containers
        return f"uid {os.geteuid()}"


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _denied_path(path: Path) -> Path | None:
    """The file or directory in the bank's way: one that exists and that we may not write."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() and not os.access(candidate, os.R_OK | os.W_OK):
            return candidate
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        return directory
    return None


def _permission_hint(path: str) -> str | None:
    culprit = _denied_path(Path(path))
    if culprit is None:
        return None
    what = "directory" if culprit.is_dir() else "file"
    why = (
        " (SQLite keeps the bank's -wal and -shm files beside it)"
        if culprit.is_dir() and Path(path).exists() else ""
    )
    return (
        f"permission problem: the {what} {culprit} is not writable by this user"
        f" ({current_user()}){why}; fix its permissions, or choose a data directory you own with"
        " --home or MEMENTO_HOME"
    )


def open_error(path: str, exc: BaseException) -> StorageError:
    """Why the bank at `path` could not be opened, as one line with what to do about it."""
    code = _primary_code(exc)
    if code in _CORRUPT:
        return DamagedBank(f"the case bank at {path} is damaged ({exc}): {REPAIR}")
    if code in _DENIED or isinstance(exc, PermissionError):
        hint = _permission_hint(path)
        if hint is not None:
            return StorageError(f"cannot open the case bank at {path}: {hint}")
    return StorageError(f"cannot open the case bank at {path}: {exc}")


def access_error(path: str, exc: sqlite3.Error, doing: str) -> StorageError:
    """A read or write that failed on an open bank (`doing`: "read" or "write to")."""
    code = _primary_code(exc)
    if code in _CORRUPT:
        return DamagedBank(f"the case bank at {path} is damaged ({exc}): {REPAIR}")
    if code == sqlite3.SQLITE_READONLY:
        return ReadOnlyBank(read_only_message(path))
    if code in _DENIED:
        hint = _permission_hint(path)
        if hint is not None:
            return StorageError(f"could not {doing} the case bank at {path}: {hint}")
    return StorageError(f"could not {doing} the case bank: {exc}")


def read_only_message(path: str) -> str:
    """Also what an MCP client is told, so it names the file but not the server's user."""
    return (
        f"the case bank at {path} is read-only to the server: retrieval works, but outcomes and"
        f" new cases cannot be recorded; make the file writable for the server's user"
        f" (chmod u+w {path}) and restart the server to record them"
    )
