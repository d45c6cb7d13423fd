"""tables: load CSV/Excel files, describe them, filter rows and aggregate, with row caps.

Filters are structured conditions (column, operator, value), not query strings: `DataFrame.query`
and `eval` run expressions that can reach Python objects, so no user text is ever evaluated here.
Loaded frames are cached by (path, mtime, sheet) so paging through results does not reload a file.
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from toolservers._common import env_int, files_root, resolve_inside, serve

MAX_BYTES = env_int("TOOLSERVERS_TABLES_MAX_MB", 100) << 20
MAX_ROWS = env_int("TOOLSERVERS_TABLES_MAX_ROWS", 1_000_000)
MAX_RETURN = 500
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
Scalar = str | int | float | bool | None


class Condition(BaseModel):
    """One row test; conditions in a list must all hold."""

    column: str
    op: Literal[
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "not in",
        "contains",
        "startswith",
        "endswith",
        "is null",
        "not null",
    ]
    value: Scalar | list[Scalar] = Field(
        None, description="a list for 'in'/'not in'; unused for null tests"
    )


class SortKey(BaseModel):
    column: str
    descending: bool = False


class Metric(BaseModel):
    column: str
    func: Literal["count", "sum", "mean", "median", "min", "max", "std", "nunique"]


class Column(BaseModel):
    name: str
    dtype: str
    non_null: int
    unique: int
    min: Scalar = None
    max: Scalar = None
    mean: float | None = None


class Summary(BaseModel):
    path: str
    sheet: str | None
    sheets: list[str] = Field(description="all sheets, for Excel files")
    rows: int
    rows_capped: bool = Field(description="true when only the first rows were loaded (row limit)")
    columns: list[Column]
    head: list[dict[str, Any]]


class Rows(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int = Field(description="rows (or groups) matching before the limit")
    offset: int
    next_offset: int | None = None
    hint: str | None = None


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN becomes null, timestamps ISO strings."""
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return out


def _plain(value: Any) -> Scalar:
    if value is None or pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else str(value)


def load(path: Path, sheet: str | None) -> tuple[pd.DataFrame, list[str], bool]:
    """Read a table capped at MAX_ROWS; returns (frame, sheet names, capped)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ToolError(f"{path.name} is {size >> 20} MB; the limit is {MAX_BYTES >> 20} MB.")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            sheets = list(pd.ExcelFile(path).sheet_names)
            if sheet is not None and sheet not in sheets:
                raise ToolError(f"no sheet {sheet!r}; sheets are: {', '.join(sheets)}.")
            frame = pd.read_excel(path, sheet_name=sheet or sheets[0], nrows=MAX_ROWS + 1)
        else:
            if sheet is not None:
                raise ToolError("sheet applies to Excel files only.")
            sheets = []
            frame = pd.read_csv(path, sep=_delimiter(path), nrows=MAX_ROWS + 1)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot read {path.name} as a table: {exc}") from None
    capped = len(frame) > MAX_ROWS
    return frame.iloc[:MAX_ROWS], sheets, capped


def _delimiter(path: Path) -> str:
    """Sniff among , ; tab | only: pandas' own sniffing may pick a digit in one-column files."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    with open(path, encoding="utf-8", errors="replace") as handle:
        sample = handle.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise ToolError(f"no column {name!r}; columns are: {', '.join(map(str, frame.columns))}.")
    return frame[name]


def _coerce(series: pd.Series, value: Any) -> Any:
    """Compare numbers with numbers: '5' against a numeric column means 5."""
    if isinstance(value, str) and pd.api.types.is_numeric_dtype(series):
        try:
            return float(value)
        except ValueError:
            raise ToolError(
                f"column {series.name!r} is numeric; {value!r} is not a number."
            ) from None
    return value


def mask(frame: pd.DataFrame, where: Sequence[Condition]) -> pd.Series:
    """Rows where every condition holds; built from pandas operators, never from parsed text."""
    keep = pd.Series(True, index=frame.index)
    for cond in where:
        col = _column(frame, cond.column)
        value = cond.value
        if cond.op in ("in", "not in"):
            if not isinstance(value, list):
                raise ToolError(f'op {cond.op!r} needs a list value, e.g. ["a", "b"].')
            hit = col.isin([_coerce(col, v) for v in value])
            keep &= hit if cond.op == "in" else ~hit
        elif cond.op in ("is null", "not null"):
            keep &= col.isna() if cond.op == "is null" else col.notna()
        elif cond.op in ("contains", "startswith", "endswith"):
            text = col.astype(str)
            method = {
                "contains": text.str.contains,
                "startswith": text.str.startswith,
                "endswith": text.str.endswith,
            }[cond.op]
            keep &= method(str(value), regex=False) if cond.op == "contains" else method(str(value))
        else:
            if isinstance(value, list):
                raise ToolError(f"op {cond.op!r} takes one value, not a list.")
            try:
                keep &= {
                    "==": col.eq,
                    "!=": col.ne,
                    "<": col.lt,
                    "<=": col.le,
                    ">": col.gt,
                    ">=": col.ge,
                }[cond.op](_coerce(col, value)).fillna(False)
            except TypeError:
                raise ToolError(
                    f"cannot compare column {cond.column!r} ({col.dtype}) with {value!r}; match the column's type."
                ) from None
    return keep


def page(frame: pd.DataFrame, offset: int, limit: int) -> Rows:
    total = len(frame)
    end = min(total, offset + limit)
    more = end < total
    return Rows(
        columns=[str(c) for c in frame.columns],
        rows=records(frame.iloc[offset:end]),
        total=total,
        offset=offset,
        next_offset=end if more else None,
        hint=f"{total - end} more rows; call again with offset={end}." if more else None,
    )


def _sort(frame: pd.DataFrame, sort_by: Sequence[SortKey]) -> pd.DataFrame:
    if not sort_by:
        return frame
    for key in sort_by:
        _column(frame, key.column)
    return frame.sort_values(
        [k.column for k in sort_by], ascending=[not k.descending for k in sort_by]
    )


Path_ = Annotated[
    str,
    Field(
        min_length=1, max_length=1000, description="CSV/TSV/XLSX path relative to the tables root"
    ),
]
Sheet = Annotated[str | None, Field(description="Excel sheet name; default the first sheet")]
Where = Annotated[
    list[Condition], Field(max_length=50, description="conditions that must all hold")
]
Limit = Annotated[int, Field(ge=1, le=MAX_RETURN, description=f"rows to return (max {MAX_RETURN})")]
_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def build_server(root: Path | None = None) -> FastMCP:
    """A tables server reading files under `root` (default: TOOLSERVERS_TABLES_ROOT or cwd)."""
    base = (root or files_root("tables")).resolve()
    cache: OrderedDict[tuple[str, float, str | None], tuple[pd.DataFrame, list[str], bool]] = (
        OrderedDict()
    )
    mcp = FastMCP(
        "tables", instructions=f"Analyse CSV/Excel tables under {base}.", mask_error_details=True
    )

    def table(path: str, sheet: str | None) -> tuple[pd.DataFrame, list[str], bool]:
        target = resolve_inside(base, path, "tables root")
        if not target.is_file():
            raise ToolError(f"no file {path!r} under the tables root.")
        if target.suffix.lower() not in SUFFIXES:
            raise ToolError(
                f"unsupported table type {target.suffix!r}; use one of {', '.join(SUFFIXES)}."
            )
        key = (str(target), target.stat().st_mtime, sheet)
        if key not in cache:
            cache[key] = load(target, sheet)
            if len(cache) > 4:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return cache[key]

    @mcp.tool(annotations=_READ)
    def describe_table(path: Path_, sheet: Sheet = None) -> Summary:
        """Columns with types, null counts, unique counts and ranges, plus the first 5 rows."""
        frame, sheets, capped = table(path, sheet)
        columns = []
        for name in frame.columns:
            col = frame[name]
            numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
            comparable = numeric or pd.api.types.is_datetime64_any_dtype(col)
            columns.append(
                Column(
                    name=str(name),
                    dtype=str(col.dtype),
                    non_null=int(col.notna().sum()),
                    unique=int(col.nunique()),
                    min=_plain(col.min()) if comparable else None,
                    max=_plain(col.max()) if comparable else None,
                    mean=float(col.mean()) if numeric and col.notna().any() else None,
                )
            )
        return Summary(
            path=path,
            sheet=sheet or (sheets[0] if sheets else None),
            sheets=sheets,
            rows=len(frame),
            rows_capped=capped,
            columns=columns,
            head=records(frame.head(5)),
        )

    @mcp.tool(annotations=_READ)
    def filter_rows(
        path: Path_,
        where: Where = (),
        columns: Annotated[Sequence[str], Field(description="columns to return; empty = all")] = (),
        sort_by: Sequence[SortKey] = (),
        limit: Limit = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
        sheet: Sheet = None,
    ) -> Rows:
        """Rows matching all conditions, optionally sorted and narrowed to some columns, in pages."""
        frame, _, _ = table(path, sheet)
        chosen = _sort(frame[mask(frame, where)], sort_by)
        if columns:
            chosen = chosen[[_column(frame, c).name for c in columns]]
        return page(chosen, offset, limit)

    @mcp.tool(annotations=_READ)
    def aggregate(
        path: Path_,
        metrics: Annotated[list[Metric], Field(min_length=1, max_length=20)],
        group_by: Annotated[
            Sequence[str],
            Field(max_length=10, description="columns to group by; empty = whole table"),
        ] = (),
        where: Where = (),
        sort_by: Sequence[SortKey] = (),
        limit: Limit = 100,
        offset: Annotated[int, Field(ge=0)] = 0,
        sheet: Sheet = None,
    ) -> Rows:
        """Group rows and compute metrics, e.g. mean of 'price' per 'city'. Output columns are '<column>_<func>'."""
        frame, _, _ = table(path, sheet)
        chosen = frame[mask(frame, where)]
        for name in [*group_by, *(m.column for m in metrics)]:
            _column(frame, name)
        spec = {f"{m.column}_{m.func}": (m.column, m.func) for m in metrics}
        try:
            if group_by:
                result = chosen.groupby(list(group_by), dropna=False).agg(**spec).reset_index()
            else:
                result = pd.DataFrame(
                    [{name: chosen[col].agg(func) for name, (col, func) in spec.items()}]
                )
        except (TypeError, ValueError) as exc:
            raise ToolError(
                f"cannot aggregate: {exc}. Numeric functions need numeric columns."
            ) from None
        return page(_sort(result, sort_by), offset, limit)

    return mcp


mcp = build_server()

if __name__ == "__main__":
    serve(mcp)
