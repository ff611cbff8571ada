"""The Report as a PDF board pack, printed by LibreOffice headless.

Only the Report prints: it is written (by the same package writer as refresh) into a
new workbook that holds nothing else, and LibreOffice converts that workbook to PDF
with the Report's own page setup (landscape, one page wide, its page breaks and repeated
title column). The user's workbook is never opened by LibreOffice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..engine import Report
from .layout import OWNED_HEADERS, REPORT_HEADER, REPORT_SHEET, Sheet

LIBREOFFICE = ("soffice", "libreoffice")
TIMEOUT_S = 300


class PdfError(Exception):
    """No PDF was written; the message is one line for the user."""


def libreoffice() -> str | None:
    """The LibreOffice program on the PATH (``CXKPI_SOFFICE`` overrides), or None."""
    override = os.environ.get("CXKPI_SOFFICE")
    if override:
        return shutil.which(override)
    return next((found for name in LIBREOFFICE if (found := shutil.which(name))), None)


def report_only_workbook(sheet: Sheet, path: Path) -> Path:
    """A new workbook at ``path`` holding only ``sheet`` (the Report), charts and print
    setup included."""
    from openpyxl import Workbook

    from .package import write_sheets

    wb = Workbook()
    ws = wb.active
    ws.title = REPORT_SHEET
    for i, value in enumerate(REPORT_HEADER, start=1):
        ws.cell(1, i, value)
    wb.save(path)
    write_sheets(path, path, [sheet], {REPORT_SHEET: OWNED_HEADERS[REPORT_SHEET]})
    return path


def write_pdf(sheet: Sheet, pdf: Path) -> Path:
    """Print the Report ``sheet`` to ``pdf`` through LibreOffice; PdfError with the reason
    when LibreOffice is not installed or fails."""
    exe = libreoffice()
    if exe is None:
        raise PdfError(
            "no PDF: LibreOffice is not installed (soffice is not on the PATH); install it "
            "or print the Report sheet from Excel"
        )
    with tempfile.TemporaryDirectory(prefix="cxkpi-pdf-") as tmp:
        folder = Path(tmp)
        book = report_only_workbook(sheet, folder / f"{pdf.stem}.xlsx")
        profile = folder / "profile"
        cmd = [
            exe, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
            "--convert-to", "pdf", "--outdir", str(folder / "out"), str(book),
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PdfError(f"no PDF: LibreOffice did not finish ({e})") from None
        made = folder / "out" / f"{pdf.stem}.pdf"
        if not made.exists():
            detail = " ".join((done.stderr or done.stdout or "").split())[:200]
            raise PdfError(f"no PDF: LibreOffice could not print the Report ({detail})")
        pdf.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(made), pdf)
    return pdf


def print_report(report: Report, book: Path, empty_tables: list[str] | None = None) -> str:
    """Print ``report``'s Report sheet to ``book`` with a ``.pdf`` suffix; one line saying
    where, with its page count, or why there is no PDF (never an exception)."""
    from .board import report_sheet

    pdf = book.with_suffix(".pdf")
    try:
        write_pdf(report_sheet(report, empty_tables), pdf)
        pages = page_count(pdf)
    except PdfError as e:
        return str(e)
    except Exception as e:  # the workbook is written: say why there is no PDF, do not fail
        return f"no PDF: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return f"Printed the Report to {pdf.name}: {pages} page{'s' if pages != 1 else ''}"


def page_count(pdf: Path) -> int:
    """The number of pages of a PDF, read from its page tree (``/Type /Pages ... /Count``
    of the root) without a PDF library."""
    import re

    data = pdf.read_bytes()
    counts = [int(m) for m in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    counts += [int(m) for m in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", data)]
    if not counts:
        raise PdfError(f"{pdf.name} has no page tree")
    return max(counts)


__all__ = [
    "PdfError",
    "libreoffice",
    "page_count",
    "print_report",
    "report_only_workbook",
    "write_pdf",
]
