"""Memento's planner–executor agent behind the solve_task tool (issue 4).

`solve(...)` in loop.py is the entry point; `ToolHub` holds the child tool servers; `LLM` is the
model protocol with OpenAI-compatible, MCP-sampling and scripted implementations.
"""

from memento_mcp.agent.steps import SolveResult

__all__ = ["SolveResult"]
