"""memento-mcp: Memento's case-based memory (arXiv 2508.16153) as an MCP server.

The names below load on first use (PEP 562), so that `memento-mcp --help` and a server's start
pay only for what they touch (issue 10).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# One BLAS thread: the vectors we multiply are small, and OpenBLAS's idle threads contend with
# ONNX Runtime's on a 2-core machine (a 20k-case matrix-vector product right after a query
# encoding took 29 ms with threads, 2 ms with one). Must be set before numpy loads; an explicit
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if TYPE_CHECKING:
    from memento_mcp.casebank import CaseBank
    from memento_mcp.errors import MementoError
    from memento_mcp.memory import Memory, open_memory
    from memento_mcp.models import Case, CaseHit, OutcomeReceipt, RetrieveResult
    from memento_mcp.settings import Settings

__version__ = "0.1.0"

_HOMES = {
    "Case": "memento_mcp.models",
    "CaseBank": "memento_mcp.casebank",
    "CaseHit": "memento_mcp.models",
    "MementoError": "memento_mcp.errors",
    "Memory": "memento_mcp.memory",
    "OutcomeReceipt": "memento_mcp.models",
    "RetrieveResult": "memento_mcp.models",
    "Settings": "memento_mcp.settings",
    "open_memory": "memento_mcp.memory",
}

__all__ = [*sorted(_HOMES), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'memento_mcp' has no attribute {name!r}")
