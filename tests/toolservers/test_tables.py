"""The tables server: describe, filter and aggregate, with caps and no expression evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from toolservers import tables

pytestmark = pytest.mark.anyio
SALES = "city,product,units,price\n" + "\n".join(
    f"{city},{product},{units},{price}"
    for city, product, units, price in [
        ("Lyon", "pen", 10, 1.5),
        ("Lyon", "ink", 2, 8.0),
        ("Oslo", "pen", 7, 2.0),
        ("Oslo", "pad", 3, 4.25),
        ("Kyiv", "pen", 1, 1.0),
        ("Kyiv", "ink", "", 9.0),
    ]
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "sales.csv").write_text(SALES + "\n")
    book = openpyxl.Workbook()
    book.active.title = "Summary"
    book.active.append(["k", "v"])
    book.active.append(["a", 1])
    staff = book.create_sheet("Staff")
    staff.append(["name", "age"])
    for name, age in [("ada", 36), ("bob", 41), ("cy", 29)]:
        staff.append([name, age])
    book.save(tmp_path / "book.xlsx")
    (tmp_path / "big.csv").write_text("n\n" + "\n".join(str(i) for i in range(1200)) + "\n")
    return tmp_path


@pytest.fixture
def server(root: Path) -> FastMCP:
    return tables.build_server(root)


async def call(server: FastMCP, tool: str, **args: object) -> dict:
    async with Client(server) as c:
        return (await c.call_tool(tool, args)).structured_content


async def test_describe_csv(server: FastMCP) -> None:
    out = await call(server, "describe_table", path="sales.csv")
    assert out["rows"] == 6 and not out["rows_capped"]
    cols = {c["name"]: c for c in out["columns"]}
    assert cols["units"]["non_null"] == 5 and cols["units"]["max"] == 10
    assert cols["price"]["mean"] == pytest.approx((1.5 + 8 + 2 + 4.25 + 1 + 9) / 6)
    assert cols["city"]["unique"] == 3 and cols["city"]["min"] is None
    assert out["head"][0] == {"city": "Lyon", "product": "pen", "units": 10.0, "price": 1.5}


async def test_describe_excel_sheet(server: FastMCP) -> None:
    out = await call(server, "describe_table", path="book.xlsx", sheet="Staff")
    assert out["sheets"] == ["Summary", "Staff"] and out["rows"] == 3
    with pytest.raises(ToolError, match="sheets are: Summary, Staff"):
        await call(server, "describe_table", path="book.xlsx", sheet="Nope")


async def test_filter_sort_and_columns(server: FastMCP) -> None:
    out = await call(
        server,
        "filter_rows",
        path="sales.csv",
        where=[
            {"column": "product", "op": "in", "value": ["pen", "ink"]},
            {"column": "price", "op": ">=", "value": "1.5"},
        ],
        sort_by=[{"column": "price", "descending": True}],
        columns=["city", "price"],
    )
    assert out["rows"] == [
        {"city": "Kyiv", "price": 9.0},
        {"city": "Lyon", "price": 8.0},
        {"city": "Oslo", "price": 2.0},
        {"city": "Lyon", "price": 1.5},
    ]
    nulls = await call(
        server, "filter_rows", path="sales.csv", where=[{"column": "units", "op": "is null"}]
    )
    assert [r["city"] for r in nulls["rows"]] == ["Kyiv"]
    text = await call(
        server,
        "filter_rows",
        path="sales.csv",
        where=[{"column": "city", "op": "startswith", "value": "O"}],
    )
    assert text["total"] == 2


async def test_row_cap_and_paging(server: FastMCP) -> None:
    first = await call(server, "filter_rows", path="big.csv", limit=500)
    assert len(first["rows"]) == 500 and first["total"] == 1200 and first["next_offset"] == 500
    assert "offset=500" in first["hint"]
    last = await call(server, "filter_rows", path="big.csv", limit=500, offset=1000)
    assert [r["n"] for r in last["rows"]] == list(range(1000, 1200)) and last["next_offset"] is None
    with pytest.raises(ToolError):
        await call(server, "filter_rows", path="big.csv", limit=501)


async def test_load_cap(server: FastMCP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "MAX_ROWS", 100)
    out = await call(server, "describe_table", path="big.csv")
    assert out["rows"] == 100 and out["rows_capped"]


async def test_aggregate(server: FastMCP) -> None:
    out = await call(
        server,
        "aggregate",
        path="sales.csv",
        group_by=["city"],
        metrics=[{"column": "units", "func": "sum"}, {"column": "price", "func": "max"}],
        sort_by=[{"column": "units_sum", "descending": True}],
    )
    assert out["columns"] == ["city", "units_sum", "price_max"]
    assert out["rows"] == [
        {"city": "Lyon", "units_sum": 12.0, "price_max": 8.0},
        {"city": "Oslo", "units_sum": 10.0, "price_max": 4.25},
        {"city": "Kyiv", "units_sum": 1.0, "price_max": 9.0},
    ]
    whole = await call(
        server,
        "aggregate",
        path="sales.csv",
        metrics=[{"column": "units", "func": "count"}],
        where=[{"column": "product", "op": "==", "value": "pen"}],
    )
    assert whole["rows"] == [{"units_count": 3}]


async def test_errors_name_the_choices(server: FastMCP) -> None:
    with pytest.raises(ToolError, match="columns are: city, product, units, price"):
        await call(
            server,
            "filter_rows",
            path="sales.csv",
            where=[{"column": "cty", "op": "==", "value": "Lyon"}],
        )
    with pytest.raises(ToolError, match="is numeric"):
        await call(
            server,
            "filter_rows",
            path="sales.csv",
            where=[{"column": "units", "op": ">", "value": "many"}],
        )
    with pytest.raises(ToolError, match="Input should be '=='"):
        await call(
            server,
            "filter_rows",
            path="sales.csv",
            where=[{"column": "units", "op": "__import__('os')"}],
        )


async def test_expressions_are_never_evaluated(server: FastMCP, root: Path) -> None:
    # A value that DataFrame.query/eval would execute is compared as plain text here.
    payload = "@pd.io.common.os.system('touch pwned')"
    out = await call(
        server,
        "filter_rows",
        path="sales.csv",
        where=[{"column": "city", "op": "==", "value": payload}],
    )
    assert out["total"] == 0 and not (root / "pwned").exists()


async def test_paths_stay_inside_root(
    server: FastMCP, root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "x.csv"
    outside.write_text("a\n1\n")
    os.symlink(outside, root / "link.csv")
    for bad in ["../x.csv", str(outside), "link.csv"]:
        with pytest.raises(ToolError, match="absolute|'\\.\\.'|outside"):
            await call(server, "describe_table", path=bad)
