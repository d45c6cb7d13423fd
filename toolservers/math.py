"""math: exact arithmetic and algebra with sympy, without evaluating arbitrary Python.

Input is screened token by token (numbers, operators, plain names; no dots, brackets, strings,
keywords or underscores-led names), then parsed by sympy's parser against a namespace that holds
only the functions listed in `FUNCTIONS` and no builtins. All work runs in a killable child with
a memory cap, because `9**9**9**9` or a hard integral would otherwise hang the server.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import sympy
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from sympy.parsing.sympy_parser import (
    convert_xor,
    function_exponentiation,
    implicit_application,
    implicit_multiplication,
    parse_expr,
    standard_transformations,
)

from toolservers._common import Worker, env_int, serve

FUNCTIONS = (
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "asin",
    "acos",
    "atan",
    "acot",
    "atan2",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "exp",
    "log",
    "sqrt",
    "cbrt",
    "root",
    "Abs",
    "sign",
    "floor",
    "ceiling",
    "factorial",
    "binomial",
    "gcd",
    "lcm",
    "Mod",
    "Min",
    "Max",
    "re",
    "im",
    "conjugate",
    "arg",
    "gamma",
    "erf",
    "zeta",
    "Sum",
    "Product",
    "Eq",
    "Ne",
    "Lt",
    "Le",
    "Gt",
    "Ge",
    "Rational",
    "isprime",
    "prime",
    "factorint",
    "divisors",
    "totient",
)
CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "I": sympy.I, "oo": sympy.oo, "inf": sympy.oo}
# Names the parser's own transformations emit (auto_number, auto_symbol).
_PARSER_NAMES = ("Integer", "Float", "Rational", "Symbol", "Function")
_ALLOWED_OPS = {"+", "-", "*", "/", "**", "^", "(", ")", ",", "%", "<", ">", "<=", ">=", "==", "!="}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_INPUT = 2000
MAX_OUTPUT = 20000

TIMEOUT_S = env_int("TOOLSERVERS_MATH_TIMEOUT_S", 10)
MEMORY_MB = env_int("TOOLSERVERS_MATH_MEMORY_MB", 1024)


def _namespace() -> dict[str, Any]:
    names: dict[str, Any] = {"__builtins__": {}}
    names.update({n: getattr(sympy, n) for n in (*FUNCTIONS, *_PARSER_NAMES)})
    names.update(CONSTANTS)
    names["ln"] = sympy.log
    return names


def screen(text: str) -> None:
    """Refuse anything but numbers, arithmetic operators and plain names, before sympy sees it."""
    if len(text) > MAX_INPUT:
        raise ToolError(f"expression is {len(text)} characters; the limit is {MAX_INPUT}.")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ToolError(f"cannot read expression {text!r}: {exc}. Check the brackets.") from None
    for tok in tokens:
        if tok.type in (tokenize.NUMBER, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if (
            tok.type == tokenize.NAME
            and _NAME.match(tok.string)
            and not keyword.iskeyword(tok.string)
        ):
            continue
        if tok.type == tokenize.OP and tok.string in _ALLOWED_OPS:
            continue
        raise ToolError(
            f"{tok.string!r} is not allowed in a math expression. Use numbers, variables, "
            f"+ - * / ** ^ %, comparisons, parentheses and functions: {', '.join(FUNCTIONS)}."
        )


def parse(text: str) -> sympy.Expr:
    """Parse one expression, or an equation `lhs = rhs`, into sympy."""
    sides = [s.strip() for s in re.split(r"(?<![<>=!])=(?!=)", text)]
    if len(sides) > 2:
        raise ToolError(f"{text!r} has more than one '='; write one equation per item.")
    for side in sides:
        screen(side)
    # Implicit products ("2x", "x y", "sin x") but no splitting of names: "rate" stays one symbol.
    transformations = standard_transformations + (
        convert_xor,
        implicit_multiplication,
        implicit_application,
        function_exponentiation,
    )
    try:
        exprs = [
            parse_expr(s, local_dict={}, global_dict=_namespace(), transformations=transformations)
            for s in sides
        ]
    except (SyntaxError, TypeError, ValueError, AttributeError) as exc:
        raise ToolError(f"cannot parse {text!r}: {exc}") from None
    return sympy.Eq(exprs[0], exprs[1]) if len(exprs) == 2 else exprs[0]


def _show(value: Any) -> str:
    text = sympy.sstr(value)
    if len(text) > MAX_OUTPUT:
        raise ToolError(f"the result is {len(text)} characters long, over the {MAX_OUTPUT} limit.")
    return text


def _symbol(name: str) -> sympy.Symbol:
    if not _NAME.match(name):
        raise ToolError(f"{name!r} is not a variable name; use letters, digits and '_'.")
    return sympy.Symbol(name)


def compute(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The whole computation for one tool call; runs in the killable child."""
    if op == "evaluate":
        expr = parse(args["expression"])
        exact = sympy.simplify(expr) if args["simplify"] else expr
        numeric = None
        if getattr(exact, "is_number", False):
            numeric = _show(sympy.N(exact, args["digits"]))
        return {"result": _show(exact), "numeric": numeric}
    if op == "simplify":
        expr = parse(args["expression"])
        fn = {
            "simplify": sympy.simplify,
            "expand": sympy.expand,
            "factor": sympy.factor,
            "cancel": sympy.cancel,
            "together": sympy.together,
            "trigsimp": sympy.trigsimp,
        }
        return {"result": _show(fn[args["method"]](expr))}
    if op == "solve":
        eqs = [parse(e) for e in args["equations"]]
        variables = [_symbol(v) for v in args["variables"]] or None
        found = sympy.solve(eqs, variables, dict=True) if variables else sympy.solve(eqs, dict=True)
        return {"solutions": [{str(k): _show(v) for k, v in sol.items()} for sol in found]}
    if op == "differentiate":
        expr = parse(args["expression"])
        return {"result": _show(sympy.diff(expr, _symbol(args["variable"]), args["order"]))}
    if op == "integrate":
        expr, var = parse(args["expression"]), _symbol(args["variable"])
        if args["lower"] is None and args["upper"] is None:
            return {"result": _show(sympy.integrate(expr, var))}
        if args["lower"] is None or args["upper"] is None:
            raise ToolError("give both lower and upper for a definite integral, or neither.")
        lower, upper = parse(args["lower"]), parse(args["upper"])
        return {"result": _show(sympy.integrate(expr, (var, lower, upper)))}
    raise ValueError(f"unknown op {op}")


_WORKER = Worker("toolservers.math", MEMORY_MB * 2**20)


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
    # Serve the copy imported under its real name, so the child process can find `compute`.
    from toolservers.math import mcp as importable

    serve(importable)
