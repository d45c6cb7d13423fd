"""documents: PDF, Word, PowerPoint, Excel, HTML, CSV, JSON, ZIP and text files to markdown.

Conversion is markitdown's (`_convert`); this module adds what a model-facing server needs: paths
confined to one root folder, size, page and ZIP limits checked before any parsing, conversion in a
killable worker (a hostile file can make a parser spin or balloon), and output served in windows.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from toolservers._common import (
    TextWindow,
    Worker,
    env_int,
    files_root,
    resolve_inside,
    serve,
    window,
)
from toolservers._convert import convert

FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".csv": "csv",
    ".json": "json",
    ".zip": "zip",
    ".txt": "text",
    ".md": "text",
    ".xml": "text",
    ".ipynb": "ipynb",
    ".epub": "epub",
}
MAX_BYTES = env_int("TOOLSERVERS_DOCUMENTS_MAX_MB", 50) << 20
MAX_PAGES = env_int("TOOLSERVERS_DOCUMENTS_MAX_PAGES", 200)
MAX_ZIP_ENTRIES = env_int("TOOLSERVERS_DOCUMENTS_MAX_ZIP_ENTRIES", 500)
MAX_ZIP_BYTES = env_int("TOOLSERVERS_DOCUMENTS_MAX_ZIP_MB", 200) << 20
TIMEOUT_S = env_int("TOOLSERVERS_DOCUMENTS_TIMEOUT_S", 60)
MEMORY_MB = env_int("TOOLSERVERS_DOCUMENTS_MEMORY_MB", 2048)
_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


class Document(TextWindow):
    """Converted text (markdown), a window of it, and how the document was read."""

    path: str
    format: str
    pages: int | None = Field(None, description="page count, for PDFs")
    page_range: str | None = Field(None, description="pages converted, when not all of them")


class DocumentEntry(BaseModel):
    path: str
    format: str
    size: int


ZIP_CONTAINERS = {"zip", "docx", "pptx", "xlsx", "epub"}


def check_limits(path: Path, fmt: str) -> None:
    """Refuse files that are too big, and ZIP-based files that would inflate too far, before parsing.

    Office files and EPUBs are ZIP archives too, so a decompression bomb can wear any of those
    names; the entry limit applies to plain ZIPs, whose entries are each converted.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ToolError(f"{path.name} is {size >> 20} MB; the limit is {MAX_BYTES >> 20} MB.")
    if fmt not in ZIP_CONTAINERS:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise ToolError(f"{path.name} is not a valid {fmt} file (not a ZIP container).") from None
    inflated = sum(info.file_size for info in infos)
    too_many = fmt == "zip" and len(infos) > MAX_ZIP_ENTRIES
    if too_many or inflated > MAX_ZIP_BYTES:
        raise ToolError(
            f"{path.name} holds {len(infos)} entries / {inflated >> 20} MB uncompressed; limits are "
            f"{MAX_ZIP_ENTRIES} entries (plain ZIPs) and {MAX_ZIP_BYTES >> 20} MB."
        )


Converted = tuple[str, int | None, int | None, int | None]


def build_server(root: Path | None = None) -> FastMCP:
    """A documents server reading files under `root` (default: TOOLSERVERS_DOCUMENTS_ROOT or cwd)."""
    base = (root or files_root("documents")).resolve()
    worker = Worker("toolservers._convert,markitdown", MEMORY_MB << 20, task="conversion")
    cache: OrderedDict[tuple[str, float, int | None, int | None], Converted] = OrderedDict()
    mcp = FastMCP(
        "documents",
        instructions=f"Convert documents under {base} to markdown. Paths are relative to that folder.",
        mask_error_details=True,
    )

    def converted(path: Path, first: int | None, last: int | None) -> Converted:
        key = (str(path), path.stat().st_mtime, first, last)
        if key not in cache:
            cache[key] = worker.call(
                convert, str(path), first, last, MAX_PAGES, timeout_s=TIMEOUT_S
            )
            if len(cache) > 8:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return cache[key]

    @mcp.tool(annotations=_READ)
    def convert_document(
        path: Annotated[
            str,
            Field(
                min_length=1,
                max_length=1000,
                description="file path relative to the documents root",
            ),
        ],
        offset: Annotated[
            int, Field(ge=0, description="character offset; use next_offset from the last call")
        ] = 0,
        max_chars: Annotated[int, Field(ge=100, le=200_000)] = 20_000,
        first_page: Annotated[
            int | None, Field(ge=1, description="PDF only: first page to convert")
        ] = None,
        last_page: Annotated[
            int | None, Field(ge=1, description="PDF only: last page to convert")
        ] = None,
    ) -> Document:
        """Convert a document (PDF, DOCX, PPTX, XLSX, HTML, CSV, JSON, ZIP, text) to markdown.

        Long results come in windows: call again with `offset=next_offset`. PDFs over the page
        limit are converted in page ranges; `page_range` says which pages you got.
        """
        target = resolve_inside(base, path, "documents root")
        if not target.is_file():
            raise ToolError(
                f"no file {path!r} under the documents root; call list_documents to see what exists."
            )
        fmt = FORMATS.get(target.suffix.lower())
        if fmt is None:
            raise ToolError(
                f"unsupported file type {target.suffix!r}; supported: {', '.join(sorted(FORMATS))}."
            )
        if fmt != "pdf" and (first_page or last_page):
            raise ToolError(
                "first_page/last_page apply to PDFs only; page through other files with offset."
            )
        check_limits(target, fmt)
        text, pages, first, last = converted(target, first_page, last_page)
        part = window(text, offset, max_chars)
        if pages and last and last < pages and part.next_offset is None:
            part.hint = f"Pages {first}-{last} of {pages}; call again with first_page={last + 1}."
        page_range = f"{first}-{last}" if first and last else None
        return Document(
            path=path, format=fmt, pages=pages, page_range=page_range, **part.model_dump()
        )

    @mcp.tool(annotations=_READ)
    def list_documents(
        folder: Annotated[
            str, Field(max_length=1000, description="folder relative to the documents root")
        ] = ".",
    ) -> list[DocumentEntry]:
        """List convertible files under a folder of the documents root (up to 500)."""
        start = resolve_inside(base, folder, "documents root")
        if not start.is_dir():
            raise ToolError(f"{folder!r} is not a folder under the documents root; try '.'.")
        found = []
        for item in sorted(start.rglob("*")):
            kind = FORMATS.get(item.suffix.lower())
            if kind and item.is_file() and item.resolve().is_relative_to(base):
                found.append(
                    DocumentEntry(
                        path=str(item.relative_to(base)), format=kind, size=item.stat().st_size
                    )
                )
                if len(found) >= 500:
                    break
        return found

    return mcp


mcp = build_server()

if __name__ == "__main__":
    serve(mcp)
