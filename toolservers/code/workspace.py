"""The per-session workspace: the one directory sandboxed code may write, and file tools read.

Each server process owns one workspace (a stdio server is started per client session, so this is
one per session). Paths from clients go through `resolve_inside`, which refuses absolute paths,
`..` and symlinks that lead out, including symlinks the sandboxed code itself planted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path

from fastmcp.exceptions import ToolError
from pydantic import BaseModel

from toolservers._common import TextWindow, resolve_inside, window

MAX_READ_BYTES = 10 << 20
MAX_LIST = 500


class Entry(BaseModel):
    path: str
    kind: str
    size: int


class Listing(BaseModel):
    entries: list[Entry]
    truncated: bool


class Workspace:
    """A directory owned by the sandbox uid, with a lock so file tools never race a running child."""

    def __init__(self, root: Path | None, owner: tuple[int, int] | None) -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="toolservers-code-"))
            weakref.finalize(self, shutil.rmtree, root, True)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.owner = owner
        self.lock = threading.Lock()
        self._own(self.root)
        os.chmod(self.root, 0o700)

    def _own(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, *self.owner, follow_symlinks=False)

    def write(self, relative: str, content: str, append: bool) -> Entry:
        with self.lock:
            target = resolve_inside(self.root, relative)
            if target == self.root or target.is_dir():
                raise ToolError(
                    f"{relative!r} is a directory; give a file path such as 'notes/a.txt'."
                )
            missing = [
                p
                for p in reversed(target.parents)
                if p.is_relative_to(self.root) and not p.exists()
            ]
            target.parent.mkdir(parents=True, exist_ok=True)
            for directory in missing:
                self._own(directory)
            flags = (
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
            )
            with os.fdopen(os.open(target, flags, 0o644), "w", encoding="utf-8") as handle:
                handle.write(content)
            self._own(target)
            return Entry(path=self._rel(target), kind="file", size=target.stat().st_size)

    def read(self, relative: str, offset: int, max_chars: int) -> TextWindow:
        with self.lock:
            target = resolve_inside(self.root, relative)
            if not target.is_file():
                raise ToolError(
                    f"no file {relative!r} in the workspace; call list_files to see what exists."
                )
            if target.stat().st_size > MAX_READ_BYTES:
                raise ToolError(
                    f"{relative!r} is over {MAX_READ_BYTES >> 20} MB; read a slice with run_python instead."
                )
            with os.fdopen(
                os.open(target, os.O_RDONLY | os.O_NOFOLLOW), encoding="utf-8", errors="replace"
            ) as f:
                text = f.read()
            return window(text, offset, max_chars)

    def list(self, relative: str) -> Listing:
        with self.lock:
            base = resolve_inside(self.root, relative)
            if not base.is_dir():
                raise ToolError(f"{relative!r} is not a directory in the workspace; try '.'.")
            entries: list[Entry] = []
            for dirpath, dirnames, filenames in os.walk(base):
                for name in sorted(dirnames + filenames):
                    path = Path(dirpath) / name
                    kind = "symlink" if path.is_symlink() else "dir" if path.is_dir() else "file"
                    size = path.lstat().st_size if kind == "file" else 0
                    entries.append(Entry(path=self._rel(path), kind=kind, size=size))
                    if len(entries) >= MAX_LIST:
                        return Listing(entries=entries, truncated=True)
            return Listing(entries=entries, truncated=False)

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))
