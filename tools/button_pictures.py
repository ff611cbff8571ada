"""Regenerate the README's pictures of the Refresh KPIs button (docs/button-*.png).

Builds the macro-enabled template with tiny sample data, refreshes it (so the Report has
its header button), lets LibreOffice print it to PDF, and turns the top of the Start here
page and of the Report's first page into PNG files with pdftoppm. Needs LibreOffice and
poppler-utils:

    python tools/button_pictures.py
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from cxkpi_xl.data.sample import generate
from cxkpi_xl.refresh import refresh
from cxkpi_xl.workbook.template import build

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {  # picture name -> (texts that mark its page, crop x, y, width, height at DPI)
    "button-start-here": (("How to use this workbook", "Refresh KPIs"), (110, 140, 1000, 220)),
    "button-report": (("Net Promoter Score", "Refresh KPIs"), (60, 60, 1300, 170)),
}
DPI = 160


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page of ``pdf``."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(p), "-l", str(p), str(pdf), "-"],
            capture_output=True, text=True,
        ).stdout
        for p in range(1, pages + 1)
    ]  # fmt: skip


def to_pdf(book: Path, out_dir: Path) -> Path:
    soffice = shutil.which("soffice") or "soffice"
    profile = out_dir / "profile"
    (profile / "user").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(out_dir), str(book)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out_dir / (book.stem + ".pdf")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        book = build(tmp_path / "cx_kpis.xlsm", generate("tiny"))
        refresh(book)
        pdf = to_pdf(book, tmp_path)
        texts = pdf_pages(pdf)
        DOCS.mkdir(exist_ok=True)
        for name, (markers, (x, y, w, h)) in PAGES.items():
            page = next(i for i, t in enumerate(texts, 1) if all(m in t for m in markers))
            out = DOCS / name
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page),
                 "-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h), "-singlefile",
                 str(pdf), str(out)],
                check=True,
            )  # fmt: skip
            print(f"wrote {out}.png (page {page})")


if __name__ == "__main__":
    main()
