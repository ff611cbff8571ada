"""Regenerate the README's pictures of the Report (docs/report-*.png).

Builds the demo workbook (``cxkpi demo``'s data), refreshes it, prints the Report to PDF
with LibreOffice (as ``cxkpi refresh --pdf`` does), and cuts PNG pictures out of it with
pdftoppm: the headline block and the charts (page 1, cropped by where their text is,
from ``pdftotext -bbox``), and a whole printed page. Needs LibreOffice and
poppler-utils:

    python tools/report_pictures.py
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from cxkpi_xl.data.sample import generate
from cxkpi_xl.refresh import refresh
from cxkpi_xl.report.board import report_sheet
from cxkpi_xl.report.pdf import page_count, write_pdf
from cxkpi_xl.workbook.template import build

DOCS = Path(__file__).resolve().parents[1] / "docs"
DPI = 160
FOOTER_PT = 60  # the page footer (sheet name, page number) is this far from the bottom
PRINTED_PAGE = 2  # the KPI table: what most pages of the pack look like


def _words(pdf: Path, page: int) -> list[tuple[str, float, float, float, float]]:
    """The words of a page with their boxes (points, from the top-left)."""
    xml = subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), "-bbox", str(pdf), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pattern = r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<'
    return [
        (w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in re.findall(pattern, xml)
    ]


def _crop(pdf: Path, page: int, box: tuple[float, float, float, float], name: str) -> None:
    x0, y0, x1, y1 = (v * DPI / 72 for v in box)
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page), "-singlefile",
         "-x", str(int(x0)), "-y", str(int(y0)), "-W", str(int(x1 - x0)), "-H", str(int(y1 - y0)),
         str(pdf), str(DOCS / name)],
        check=True,
    )  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        book = build(Path(tmp) / "cx_demo.xlsx", generate("small"), force=True)
        done = refresh(book)
        pdf = write_pdf(report_sheet(done.report, done.empty_tables), Path(tmp) / "report.pdf")
        words = _words(pdf, 1)
        top = min(y0 for w, _, y0, _, _ in words if w == "CX")
        head_end = max(y1 for w, _, _, _, y1 in words if w == "At-risk")
        in_head = [x1 for _, _, y0, x1, y1 in words if top <= y0 and y1 <= head_end]
        _crop(pdf, 1, (40, top - 6, max(in_head) + 8, head_end + 6), "report-headline")
        page_bottom = max(y1 for *_, y1 in words)
        below = [
            (x1, y1) for _, _, y0, x1, y1 in words if head_end + 2 < y0 < page_bottom - FOOTER_PT
        ]
        right = max(x for x, _ in below)
        _crop(
            pdf, 1, (40, head_end + 8, right + 30, max(y for _, y in below) + 16), "report-charts"
        )
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", str(PRINTED_PAGE), "-l", str(PRINTED_PAGE),
             "-singlefile", str(pdf), str(DOCS / "report-page")],
            check=True,
        )  # fmt: skip
        print(f"{page_count(pdf)} pages; wrote docs/report-headline.png, report-charts.png, "
              "report-page.png")  # fmt: skip


if __name__ == "__main__":
    main()
