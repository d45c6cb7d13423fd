"""The documents server: every supported format converts, limits hold, paths stay inside the root."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError

from toolservers import _convert, documents

pytestmark = pytest.mark.anyio


def make_pdf(path: Path, pages: list[str]) -> None:
    """A minimal valid PDF with one line of Helvetica text per page (offsets computed, not faked)."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(out)


def make_docx(path: Path, heading: str, paragraph: str) -> None:
    """A minimal Word file: content types, package relationship and one document part."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr(
            "word/document.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{w}"><w:body>'
            f'<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>{heading}</w:t></w:r></w:p>'
            f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p></w:body></w:document>",
        )


def make_word_docx(path: Path) -> None:
    """A Word file as python-docx writes it: styles, settings, theme and a table, like real ones."""
    document = docx.Document()
    document.add_heading("Budget Review", level=1)
    document.add_paragraph("Travel is over plan by nine percent")
    table = document.add_table(rows=2, cols=2)
    for row, texts in zip(table.rows, [("owner", "due"), ("Ada", "Friday")], strict=True):
        for cell, text in zip(row.cells, texts, strict=True):
            cell.text = text
    document.save(str(path))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("docs")
    make_pdf(
        base / "report.pdf", ["Quarterly revenue grew", "Second page marker", "Third page marker"]
    )
    make_docx(base / "memo.docx", "Launch Plan", "Ship the beta on Tuesday")
    make_word_docx(base / "word.docx")
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap Slide"
    slide.placeholders[1].text = "Milestone alpha"
    deck.save(str(base / "deck.pptx"))
    book = openpyxl.Workbook()
    book.active.append(["city", "population"])
    book.active.append(["Lyon", 522250])
    book.save(base / "cities.xlsx")
    (base / "page.html").write_text(
        "<html><body><h1>Hello Page</h1><p>Some <b>bold</b> words.</p></body></html>"
    )
    (base / "table.csv").write_text("name,score\nada,91\nbob,78\n")
    (base / "data.json").write_text(json.dumps({"planet": "Mars", "moons": 2}))
    with zipfile.ZipFile(base / "bundle.zip", "w") as z:
        z.writestr("inner.csv", "fruit,count\nmango,7\n")
        z.writestr("notes.txt", "zipped note text")
    (base / "long.txt").write_text("".join(f"line {i:05d}\n" for i in range(3000)))
    (base / "script.exe").write_bytes(b"MZ")
    return base


@pytest.fixture(scope="module")
def server(root: Path) -> FastMCP:
    return documents.build_server(root)  # one worker process for the whole module


async def convert(server: FastMCP, **args: object) -> dict:
    async with Client(server) as c:
        return (await c.call_tool("convert_document", args)).structured_content


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "Quarterly revenue grew"),
        ("memo.docx", "# Launch Plan"),
        ("word.docx", "# Budget Review"),
        ("deck.pptx", "Milestone alpha"),
        ("cities.xlsx", "| Lyon | 522250 |"),
        ("page.html", "# Hello Page"),
        ("table.csv", "| ada | 91 |"),
        ("data.json", '"planet": "Mars"'),
        ("bundle.zip", "| mango | 7 |"),
    ],
)
async def test_converts_each_format(server: FastMCP, name: str, expected: str) -> None:
    out = await convert(server, path=name)
    assert expected in out["text"], out["text"]
    assert out["format"] == documents.FORMATS[Path(name).suffix]


def test_docx_converts_without_markitdown_preprocessing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path taken where BeautifulSoup drops XML prefixes (lxml 6.2.0), forced here so it is
    # tested whichever lxml is installed.
    monkeypatch.setattr(_convert, "bs4_keeps_xml_prefixes", lambda: False)
    text, *_ = _convert.convert(str(root / "word.docx"), None, None, 10)
    assert "# Budget Review" in text and "Travel is over plan by nine percent" in text
    assert "| Ada | Friday |" in text


async def test_long_output_pages_with_offset(server: FastMCP, root: Path) -> None:
    first = await convert(server, path="long.txt", max_chars=1000)
    assert len(first["text"]) == 1000 and first["next_offset"] == 1000
    assert "offset=1000" in first["hint"]
    parts, offset = [first["text"]], first["next_offset"]
    while offset is not None:
        page = await convert(server, path="long.txt", max_chars=20_000, offset=offset)
        parts.append(page["text"])
        offset = page["next_offset"]
    assert "".join(parts).strip() == (root / "long.txt").read_text().strip()


async def test_pdf_page_range(server: FastMCP) -> None:
    out = await convert(server, path="report.pdf", first_page=2, last_page=2)
    assert "Second page marker" in out["text"] and "Quarterly" not in out["text"]
    assert out["pages"] == 3 and out["page_range"] == "2-2"
    assert "first_page=3" in out["hint"]
    with pytest.raises(ToolError, match="has 3 pages"):
        await convert(server, path="report.pdf", first_page=9)


async def test_paths_stay_inside_root(server: FastMCP, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link = root / "link.txt"
    if not link.exists():
        os.symlink(outside, link)
    for bad, message in [
        ("../secret.txt", "'..'"),
        (str(outside), "absolute"),
        ("link.txt", "outside"),
    ]:
        with pytest.raises(ToolError, match=message):
            await convert(server, path=bad)


async def test_refuses_unsupported_missing_and_oversize(
    server: FastMCP, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ToolError, match="unsupported file type '.exe'"):
        await convert(server, path="script.exe")
    with pytest.raises(ToolError, match="list_documents"):
        await convert(server, path="nope.pdf")
    monkeypatch.setattr(documents, "MAX_BYTES", 10)
    with pytest.raises(ToolError, match="the limit is"):
        await convert(server, path="table.csv")


async def test_zip_limits_checked_before_extraction(
    server: FastMCP, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "MAX_ZIP_ENTRIES", 1)
    with pytest.raises(ToolError, match="2 entries"):
        await convert(server, path="bundle.zip")
    monkeypatch.setattr(documents, "MAX_ZIP_BYTES", 100)  # a Word file is a ZIP too
    with pytest.raises(ToolError, match=r"memo\.docx holds \d+ entries"):
        await convert(server, path="memo.docx")
    (root / "fake.docx").write_text("not a zip")
    with pytest.raises(ToolError, match="not a valid docx file"):
        await convert(server, path="fake.docx")


async def test_list_documents(server: FastMCP) -> None:
    async with Client(server) as c:
        listed = (await c.call_tool("list_documents", {})).structured_content["result"]
    names = {d["path"] for d in listed}
    assert {"report.pdf", "memo.docx", "bundle.zip"} <= names and "script.exe" not in names
