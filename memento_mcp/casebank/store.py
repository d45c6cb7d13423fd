"""CaseBank: every SQL statement of the project lives in this package, behind plain methods.

The bank is one class assembled from parts, one module per concern: `cases` (cases and their
embeddings), `lexical` (FTS5), `vectors` (embeddings in bulk), `feedback` (requests,
impressions and the outcomes that label them), `learning` (what the retriever trains
on, its versions), `reports` (overviews for the CLI and the dashboard) and `provenance` (who
taught what, and revoking it). They share one
connection (`connection.Connection`).
"""

from __future__ import annotations

from memento_mcp.casebank.feedback import Feedback
from memento_mcp.casebank.learning import Learning
from memento_mcp.casebank.lexical import Lexical
from memento_mcp.casebank.provenance import Provenance
from memento_mcp.casebank.reports import Reports
from memento_mcp.casebank.vectors import Vectors


class CaseBank(Feedback, Lexical, Vectors, Learning, Reports, Provenance):
    """The persistent store. Thread-safe: one connection, guarded by a lock."""
