"""Parse and compute math with sympy; no MCP here, so the worker process starts fast.

Input is screened token by token (numbers, operators, plain names; no dots, brackets, strings,
keywords or underscore-led names), then parsed by sympy's parser against a namespace that holds
only the functions listed in `FUNCTIONS` and no builtins. `toolservers.math` runs `compute` in a
killable worker, because `9**9**9**9` or a hard integral would otherwise hang the server.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from typing import Any

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    function_exponentiation,
    implicit_application,
    implicit_multiplication,
    parse_expr,
    standard_transformations,
)

from toolservers._worker import WorkError

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


def _namespace() -> dict[str, Any]:
    names: dict[str, Any] = {"__builtins__": {}}
    names.update({n: getattr(sympy, n) for n in (*FUNCTIONS, *_PARSER_NAMES)})
    names.update(CONSTANTS)
    names["ln"] = sympy.log
    return names


def screen(text: str) -> None:
    """Refuse anything but numbers, arithmetic operators and plain names, before sympy sees it."""
    if len(text) > MAX_INPUT:
        raise WorkError(f"expression is {len(text)} characters; the limit is {MAX_INPUT}.")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise WorkError(f"cannot read expression {text!r}: {exc}. Check the brackets.") from None
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
        raise WorkError(
            f"{tok.string!r} is not allowed in a math expression. Use numbers, variables, "
            f"+ - * / ** ^ %, comparisons, parentheses and functions: {', '.join(FUNCTIONS)}."
        )


def parse(text: str) -> sympy.Expr:
    """Parse one expression, or an equation `lhs = rhs`, into sympy."""
    sides = [s.strip() for s in re.split(r"(?<![<>=!])=(?!=)", text)]
    if len(sides) > 2:
        raise WorkError(f"{text!r} has more than one '='; write one equation per item.")
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
        raise WorkError(f"cannot parse {text!r}: {exc}") from None
    return sympy.Eq(exprs[0], exprs[1]) if len(exprs) == 2 else exprs[0]


def _show(value: Any) -> str:
    text = sympy.sstr(value)
    if len(text) > MAX_OUTPUT:
        raise WorkError(f"the result is {len(text)} characters long, over the {MAX_OUTPUT} limit.")
    return text


def _symbol(name: str) -> sympy.Symbol:
    if not _NAME.match(name):
        raise WorkError(f"{name!r} is not a variable name; use letters, digits and '_'.")
    return sympy.Symbol(name)


def compute(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The whole computation for one tool call; runs in the worker process."""
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
            raise WorkError("give both lower and upper for a definite integral, or neither.")
        lower, upper = parse(args["lower"]), parse(args["upper"])
        return {"result": _show(sympy.integrate(expr, (var, lower, upper)))}
    raise ValueError(f"unknown op {op}")
