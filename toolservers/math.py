"""math: exact arithmetic and algebra with sympy, without evaluating arbitrary Python.

The parsing and the computation live in `_algebra` and run in a killable worker process with a
memory cap; this module only declares the tools. See `_algebra` for how input is screened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from toolservers._algebra import MAX_INPUT, compute
from toolservers._common import Worker, env_int, serve

TIMEOUT_S = env_int("TOOLSERVERS_MATH_TIMEOUT_S", 10)
MEMORY_MB = env_int("TOOLSERVERS_MATH_MEMORY_MB", 1024)


_WORKER = Worker("toolservers._algebra", MEMORY_MB * 2**20)


def _run(op: str, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = _WORKER.call(compute, op, args, timeout_s=TIMEOUT_S)
    return result


class Evaluation(BaseModel):
    result: str = Field(description="exact result in sympy syntax")
    numeric: str | None = Field(
        None, description="decimal approximation, when the result is a number"
    )


class Result(BaseModel):
    result: str = Field(description="result in sympy syntax")


class Solutions(BaseModel):
    solutions: list[dict[str, str]] = Field(
        description="one mapping variable -> value per solution; empty if none"
    )


Expression = Annotated[
    str,
    Field(
        description="math in sympy/Python syntax, e.g. '2**100 / 3', 'sin(x)^2 + cos(x)^2', '3x + 1' (implicit * ok)",
        min_length=1,
        max_length=MAX_INPUT,
    ),
]
Variable = Annotated[
    str, Field(description="a variable name, e.g. 'x'", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
]
_PURE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

mcp = FastMCP(
    "math",
    instructions="Exact arithmetic and algebra (sympy). Results are exact; `evaluate` also gives decimals.",
    mask_error_details=True,
)


@mcp.tool(annotations=_PURE)
def evaluate(
    expression: Expression,
    digits: Annotated[
        int, Field(ge=1, le=1000, description="significant digits of the decimal value")
    ] = 15,
    simplify: Annotated[bool, Field(description="simplify the exact result first")] = True,
) -> Evaluation:
    """Compute an expression exactly (big integers, fractions, radicals, pi) plus its decimal value."""
    return Evaluation(**_run("evaluate", expression=expression, digits=digits, simplify=simplify))


@mcp.tool(annotations=_PURE)
def simplify(
    expression: Expression,
    method: Literal["simplify", "expand", "factor", "cancel", "together", "trigsimp"] = "simplify",
) -> Result:
    """Rewrite an expression: simplify, expand, factor, cancel a fraction, combine, or simplify trig."""
    return Result(**_run("simplify", expression=expression, method=method))


@mcp.tool(annotations=_PURE)
def solve(
    equations: Annotated[
        list[Expression],
        Field(
            min_length=1,
            max_length=20,
            description="equations like 'x**2 = 4' or expressions taken as = 0",
        ),
    ],
    variables: Annotated[
        Sequence[Variable], Field(max_length=20, description="unknowns; empty = all symbols")
    ] = (),
) -> Solutions:
    """Solve equations or a system exactly; each solution maps variables to values."""
    return Solutions(**_run("solve", equations=list(equations), variables=list(variables)))


@mcp.tool(annotations=_PURE)
def differentiate(
    expression: Expression,
    variable: Variable = "x",
    order: Annotated[int, Field(ge=1, le=20)] = 1,
) -> Result:
    """Differentiate an expression `order` times with respect to `variable`."""
    return Result(**_run("differentiate", expression=expression, variable=variable, order=order))


@mcp.tool(annotations=_PURE)
def integrate(
    expression: Expression,
    variable: Variable = "x",
    lower: Annotated[
        str | None, Field(description="lower bound, e.g. '0' or '-oo'", max_length=200)
    ] = None,
    upper: Annotated[
        str | None, Field(description="upper bound, e.g. 'pi' or 'oo'", max_length=200)
    ] = None,
) -> Result:
    """Integrate: indefinite without bounds, definite with both. An unevaluated Integral means no closed form."""
    return Result(
        **_run("integrate", expression=expression, variable=variable, lower=lower, upper=upper)
    )


if __name__ == "__main__":
    serve(mcp)
