"""memento-mcp: Memento's case-based memory (arXiv 2508.16153) as an MCP server."""

from memento_mcp.casebank import CaseBank
from memento_mcp.errors import MementoError
from memento_mcp.memory import Memory, open_memory
from memento_mcp.models import Case, CaseHit, OutcomeReceipt, RetrieveResult
from memento_mcp.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseBank",
    "CaseHit",
    "MementoError",
    "Memory",
    "OutcomeReceipt",
    "RetrieveResult",
    "Settings",
    "__version__",
    "open_memory",
]
