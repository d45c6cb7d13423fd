"""The code tool server: sandboxed Python and shell with a per-session workspace."""

from toolservers.code.server import build_server

__all__ = ["build_server"]
