"""Presented token -> Principal, from every place a token can be configured.

- `[[tokens]]` in `<home>/config.toml` (Settings.tokens): hashes written by hand;
- the tokens file, `<home>/tokens.json`, that `memento-mcp token add|revoke` maintains. It is
  re-read when it changes (a stat per lookup), so a revoked token stops working at once;
- `MEMENTO_AUTH_TOKEN` (Settings.auth_token), the single token of earlier versions: it keeps
  working as the token named `auth_token`, with every namespace.
"""

from __future__ import annotations

import hmac
import threading

from memento_mcp.auth.principal import Principal
from memento_mcp.auth.tokens import ALL, TokenEntry, TokenFile, digest
from memento_mcp.settings import Settings

LEGACY = "auth_token"


class TokenRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.file = TokenFile(settings.tokens_file)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._from_file: list[TokenEntry] = []

    @property
    def configured(self) -> bool:
        """True when any token exists (or a tokens file, even emptied): HTTP then requires one."""
        return bool(self.settings.auth_token or self.settings.tokens or self.file.path.exists())

    def entries(self) -> list[TokenEntry]:
        entries = [*self.settings.tokens, *self._file_entries()]
        if self.settings.auth_token:
            entries.append(TokenEntry(name=LEGACY, sha256=digest(self.settings.auth_token)))
        return entries

    def _file_entries(self) -> list[TokenEntry]:
        try:
            stat = self.file.path.stat()
            # The CLI replaces the file (new inode) on every change.
            stamp: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._from_file = self.file.load() if stamp else []
                self._stamp = stamp
            return self._from_file

    def lookup(self, secret: str) -> Principal | None:
        """The principal a presented secret belongs to, or None."""
        presented = digest(secret)
        for entry in self.entries():
            if hmac.compare_digest(entry.sha256, presented):
                return self.principal(entry)
        return None

    def by_name(self, name: str) -> TokenEntry | None:
        return next((entry for entry in self.entries() if entry.name == name), None)

    def principal(self, entry: TokenEntry) -> Principal:
        return Principal.of(
            entry.name,
            entry.namespaces,
            entry.read_only,
            entry.writes_per_minute or self.settings.writes_per_minute or None,
            entry.labels_per_minute or self.settings.labels_per_minute or None,
        )

    def anonymous(self) -> Principal:
        """Tokenless HTTP on loopback (no token configured): every namespace, default limits."""
        return Principal.of("anonymous", [ALL], False, self.settings.writes_per_minute or None,
                            self.settings.labels_per_minute or None)  # fmt: skip
