"""The case bank: SQLite storage for cases, their embeddings, impressions and outcomes."""

from memento_mcp.casebank import _lean  # noqa: F401  (first: sqlite-utils without pandas)
from memento_mcp.casebank.cases import NewCase, content_hash
from memento_mcp.casebank.feedback import Impression
from memento_mcp.casebank.store import CaseBank

__all__ = ["CaseBank", "Impression", "NewCase", "content_hash"]
