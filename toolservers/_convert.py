"""Document to markdown conversion, run inside the documents worker process.

No MCP imports here, and markitdown is imported lazily, so the server process that only names
`convert` stays light; the worker preloads markitdown itself.
"""

from __future__ import annotations

from functools import cache

from toolservers._worker import WorkError


def pdf_page_count(path: str) -> int:
    from pdfminer.pdfpage import PDFPage

    with open(path, "rb") as handle:
        return sum(1 for _ in PDFPage.get_pages(handle))


@cache
def bs4_keeps_xml_prefixes() -> bool:
    """Does BeautifulSoup's lxml XML builder write `w:body` back as `w:body`?

    markitdown's DocxConverter round-trips word/document.xml through it (OMML math to LaTeX).
    lxml 6.2.0 passes parser targets an empty nsmap, so the builder drops every prefix, the
    document loses its w: namespace and mammoth then finds no body ("Could not find the body
    element") in any .docx. lxml 6.0.2 keeps them. Probed, not version-compared, so the fix
    is used exactly while the break exists (issue 13).
    """
    from bs4 import BeautifulSoup

    probe = '<w:document xmlns:w="urn:probe"><w:body/></w:document>'
    return "<w:body" in str(BeautifulSoup(probe, features="xml"))


def docx_markdown(path: str) -> str:
    """Markdown of a Word file: markitdown's when it works here, else mammoth's HTML through
    markitdown's HTML converter, which is markitdown's own path without its pre-processing
    (so equations stay as text instead of becoming LaTeX)."""
    from markitdown import MarkItDown
    from markitdown.converters import HtmlConverter

    if bs4_keeps_xml_prefixes():
        return MarkItDown(enable_plugins=False).convert_local(path).text_content
    import mammoth

    with open(path, "rb") as handle:
        html = mammoth.convert_to_html(handle).value
    return HtmlConverter().convert_string(html).text_content


def convert(
    path: str, first_page: int | None, last_page: int | None, max_pages: int
) -> tuple[str, int | None, int | None, int | None]:
    """Markdown of one file, as (text, page count, first page, last page).

    PDFs longer than `max_pages`, or with a page range asked for, are read page by page with
    pdfminer (markitdown has no page range); the pages are None for other formats and whole PDFs.
    """
    if path.lower().endswith(".docx"):
        return docx_markdown(path), None, None, None
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
