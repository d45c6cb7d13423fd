"""Document to markdown conversion, run inside the documents worker process.

No MCP imports here, and markitdown is imported lazily, so the server process that only names
`convert` stays light; the worker preloads markitdown itself.
"""

from __future__ import annotations

from toolservers._worker import WorkError


def pdf_page_count(path: str) -> int:
    from pdfminer.pdfpage import PDFPage

    with open(path, "rb") as handle:
        return sum(1 for _ in PDFPage.get_pages(handle))


def convert(
    path: str, first_page: int | None, last_page: int | None, max_pages: int
) -> tuple[str, int | None, int | None, int | None]:
    """Markdown of one file, as (text, page count, first page, last page).

    PDFs longer than `max_pages`, or with a page range asked for, are read page by page with
    pdfminer (markitdown has no page range); the pages are None for other formats and whole PDFs.
    """
    pages = None
    if path.lower().endswith(".pdf"):
        pages = pdf_page_count(path)
        first = first_page or 1
        if first > pages:
            raise WorkError(f"first_page={first} but the PDF has {pages} pages.")
        last = min(last_page or pages, pages, first + max_pages - 1)
        if (first, last) != (1, pages):
            from pdfminer.high_level import extract_text

            return extract_text(path, page_numbers=range(first - 1, last)), pages, first, last
    from markitdown import MarkItDown

    return MarkItDown(enable_plugins=False).convert_local(path).text_content, pages, None, None
