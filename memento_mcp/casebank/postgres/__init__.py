"""The case bank on PostgreSQL + pgvector (chosen by MEMENTO_DATABASE_URL=postgresql://...)."""

from memento_mcp.casebank.postgres.store import PostgresBank

__all__ = ["PostgresBank"]
