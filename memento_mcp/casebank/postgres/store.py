"""PostgresBank: the case bank on PostgreSQL + pgvector, for several server replicas at once.

It is the SQLite CaseBank with the parts whose SQL differs replaced: every method the two share
(reading cases, deleting, recording an outcome and its credit, training reads) is the same
code, run through the translating connection of this package. See docs/deploy.md.
"""

from __future__ import annotations

from memento_mcp.casebank.postgres.learning import PgLearning
from memento_mcp.casebank.postgres.reports import PgReports
from memento_mcp.casebank.postgres.search import PgSearch
from memento_mcp.casebank.postgres.serving import PgServing
from memento_mcp.casebank.postgres.writes import PgWrites
from memento_mcp.casebank.store import CaseBank


# _insert_case takes the Postgres transaction (Tx) where the SQLite one takes sqlite-utils' db.
class PostgresBank(PgWrites, PgSearch, PgServing, PgLearning, PgReports, CaseBank):  # type: ignore[misc]
    """The persistent store in a PostgreSQL database; thread-safe through its connection pool."""
