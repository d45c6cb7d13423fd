"""The math server: exact results, and input that is math only, never Python."""

from __future__ import annotations

from fractions import Fraction

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

import toolservers.math as math_server
from toolservers.math import mcp

pytestmark = pytest.mark.anyio


async def call(tool: str, **args: object) -> dict:
    async with Client(mcp) as c:
        return (await c.call_tool(tool, args)).structured_content


async def test_exact_arithmetic() -> None:
    out = await call("evaluate", expression="2**100/3 + 1/6")
    assert out["result"] == str(Fraction(2**100, 3) + Fraction(1, 6))
    assert out["numeric"].startswith("4.225502000760")
    assert (await call("evaluate", expression="sqrt(8) + pi", digits=30))[
        "result"
    ] == "2*sqrt(2) + pi"


async def test_simplify_methods() -> None:
    assert (await call("simplify", expression="sin(x)^2 + cos(x)^2"))["result"] == "1"
    assert (await call("simplify", expression="x^2 - 1", method="factor"))[
        "result"
    ] == "(x - 1)*(x + 1)"
    assert (await call("simplify", expression="(x + 1)^2", method="expand"))[
        "result"
    ] == "x**2 + 2*x + 1"


async def test_solve_equations_and_systems() -> None:
    assert (await call("solve", equations=["x**2 = 4"]))["solutions"] == [{"x": "-2"}, {"x": "2"}]
    assert (await call("solve", equations=["x + y = 3", "x - y = 1"]))["solutions"] == [
        {"x": "2", "y": "1"}
    ]
    assert (await call("solve", equations=["x**2 + 1"], variables=["x"]))["solutions"] == [
        {"x": "-I"},
        {"x": "I"},
    ]


async def test_calculus() -> None:
    assert (await call("differentiate", expression="x^3 y", variable="x", order=2))[
        "result"
    ] == "6*x*y"
    assert (await call("integrate", expression="exp(-x^2)", lower="-oo", upper="oo"))[
        "result"
    ] == "sqrt(pi)"
    assert (await call("integrate", expression="2x"))["result"] == "x**2"
    with pytest.raises(ToolError, match="both lower and upper"):
        await call("integrate", expression="x", lower="0")


@pytest.mark.parametrize(
    "attack",
    [
        "().__class__.__bases__",
        "__import__('os').system('true')",
        "lambda: 1",
        "x.func",
        "[x for x in (1,)]",
        "'abc'",
        "exec('1')",
        "open('/etc/passwd')",
        "x; y",
        "getattr(x, 'a')",
    ],
)
async def test_python_is_rejected(attack: str) -> None:
    with pytest.raises(ToolError, match="not allowed|cannot parse|cannot read"):
        await call("evaluate", expression=attack)


async def test_unknown_names_are_symbols_not_builtins() -> None:
    # `open`, `exec` and friends are not in the namespace: as bare names they are plain symbols.
    assert (await call("simplify", expression="open + exec - open"))["result"] == "exec"


@pytest.mark.slow  # kills and restarts the worker process
async def test_runaway_computation_is_stopped_and_server_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(math_server, "TIMEOUT_S", 2)
    with pytest.raises(ToolError, match="did not finish within 2 s"):
        await call("evaluate", expression="9**9**9**9")
    assert (await call("evaluate", expression="6*7"))["result"] == "42"
