"""Regenerate the README's pictures of the template (docs/template-*.png).

Builds the template with tiny sample data, lets LibreOffice recalculate it and print it to
PDF, and turns the pages of the KPI Summary, the Customers sheet and the Settings sheet
into PNG files with pdftoppm. Needs LibreOffice and poppler-utils:

    python tools/template_pictures.py
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from cxkpi_xl.data.sample import generate
from cxkpi_xl.workbook.template import build

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {  # picture name -> text that marks its page
    "template-summary": "Customer experience KPIs",
    "template-customers": "customer_name",
    "template-settings": "churn_convention",
}
RECALC = (Path(__file__).resolve().parents[1] / "tests" / "lo.py").read_text()


def main() -> None:
    soffice = shutil.which("soffice") or "soffice"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        book = build(tmp_path / "cx_kpis.xlsx", generate("tiny"))
        profile = tmp_path / "profile"
        (profile / "user").mkdir(parents=True)
        start = RECALC.index('RECALC_ON_LOAD = """') + len('RECALC_ON_LOAD = """')
        xcu = RECALC[start : RECALC.index('"""', start)]
        (profile / "user" / "registrymodifications.xcu").write_text(xcu)
        subprocess.run(
            [soffice, f"-env:UserInstallation=file://{profile}", "--headless",
             "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        pdf = tmp_path / "cx_kpis.pdf"
        pages = int(
            next(
                line.split()[-1]
                for line in subprocess.run(
                    ["pdfinfo", str(pdf)], capture_output=True, text=True
                ).stdout.splitlines()
                if line.startswith("Pages:")
            )
        )
        found: dict[str, int] = {}
        for page in range(1, pages + 1):
            text = subprocess.run(
                ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                capture_output=True, text=True,
            ).stdout  # fmt: skip
            for name, marker in PAGES.items():
                if name not in found and marker in text:
                    found[name] = page
        DOCS.mkdir(exist_ok=True)
        for name, page in found.items():
            out = DOCS / name
            subprocess.run(
                ["pdftoppm", "-png", "-r", "70", "-f", str(page), "-l", str(page), "-singlefile", str(pdf), str(out)],
                check=True,
            )  # fmt: skip
            print(f"wrote {out}.png (page {page})")


if __name__ == "__main__":
    main()
