"""The case bank: SQLite storage for cases, their embeddings, impressions and outcomes."""

from memento_mcp.casebank import _lean  # noqa: F401  (first: sqlite-utils without pandas)
from memento_mcp.casebank.store import CASE_STATS, CaseBank, Impression, NewCase, TrainingSet

__all__ = ["CASE_STATS", "CaseBank", "Impression", "NewCase", "TrainingSet"]
