"""The case bank: cases, their embeddings, impressions and outcomes, in a SQLite file (default)
or in PostgreSQL + pgvector (casebank/postgres, chosen by a postgresql:// URL: `open_bank`)."""

from memento_mcp.casebank import _lean  # noqa: F401  (first: sqlite-utils without pandas)
from memento_mcp.casebank.cases import NewCase, content_hash
from memento_mcp.casebank.feedback import Impression
from memento_mcp.casebank.open import is_database_url, open_bank
from memento_mcp.casebank.store import CaseBank

__all__ = ["CaseBank", "Impression", "NewCase", "content_hash", "is_database_url", "open_bank"]
