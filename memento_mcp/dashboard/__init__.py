"""A read-only web dashboard over the case bank, served next to /mcp when the server runs on HTTP."""

from memento_mcp.dashboard.routes import register_dashboard

__all__ = ["register_dashboard"]
