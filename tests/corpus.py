"""Refresh a workbook made by someone else and check that nothing of theirs changed:
shared by tests/test_corpus.py (a sample) and benchmarks/corpus.py (every file)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .graft import GraftError, graft, sheet_names

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-workbooks"
REPORT, ISSUES = "Report", "Data Issues"
REPORT_HEADER = ("CX KPI report", "cxkpi-xl")  # the Report's first cells, as written
BOOKKEEPING = {
    "[content_types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
    "docprops/app.xml",
    "xl/calcchain.xml",
}
"""Parts refresh may edit (lower case: part names are case-insensitive)."""

BATCH = 40
"""Files per LibreOffice run."""
CSV_ALL_SHEETS = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
"""LibreOffice's CSV filter writing every sheet to NAME-SHEET.csv."""


@dataclass
class Outcome:
    name: str
    status: str  # "refreshed", "refused" (the file is unusable or not ours to write)
    message: str = ""
    result: Path | None = None  # the refreshed workbook
    grafted: Path | None = None  # the input it was refreshed from (a copy)
    problems: list[str] = field(default_factory=list)
    libreoffice: bool = False  # LibreOffice opened the input and the result


def input_tables() -> dict[str, pd.DataFrame]:
    """Small input Tables: the customers, MRR and surveys of the tiny sample."""
    from cxkpi_xl.sample import generate

    t = generate("tiny", seed=3)
    return {k: t[k] for k in ("Customers", "MRR", "Surveys")}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _refresh(book: Path) -> tuple[int, str]:
    """``cxkpi refresh BOOK`` in this process: exit code and output."""
    from click.testing import CliRunner

    from cxkpi_xl.cli import main

    out = CliRunner().invoke(main, ["refresh", str(book), "--quiet"])
    return out.exit_code, out.output


def _refused(book: Path, out: Outcome) -> Outcome:
    """Refresh must refuse ``book`` in one line, leaving it and its folder as they were."""
    before, listing = digest(book), sorted(os.listdir(book.parent))
    code, text = _refresh(book)
    out.status, out.message = "refused", text.strip()
    if code == 0:
        out.status = "refreshed"
        out.problems.append("a broken package was refreshed")
    elif code != 1 or len(text.strip().splitlines()) != 1 or "Traceback" in text:
        out.problems.append(f"not a one-line refusal (exit {code}): {text[-300:]}")
    if digest(book) != before:
        out.problems.append("the refused file changed")
    if sorted(os.listdir(book.parent)) != listing:
        out.problems.append("files left behind")
    return out


def check(source: Path, work: Path, tables: dict[str, pd.DataFrame]) -> Outcome:
    """Graft ``tables`` into a copy of ``source``, refresh it twice and check it."""
    out = Outcome(source.name, "refreshed")
    folder = work / source.name.replace(".", "_")
    folder.mkdir(parents=True)
    book = folder / source.name
    try:
        before_sheets = graft(source, book, tables)
    except (GraftError, KeyError, ValueError, UnicodeDecodeError) as e:
        shutil.copy(source, book)  # an unreadable package: refused as it is
        book.chmod(0o644)  # the corpus is read-only; a user's file is not
        out.message = f"graft: {e}"
        return _refused(book, out)
    out.grafted = work / f"{source.stem}.input{source.suffix}"
    shutil.copy(book, out.grafted)
    original = parts(book)
    code, text = _refresh(book)
    if code != 0:
        shutil.copy(out.grafted, book)
        return _refused(book, out)
    once = parts(book)
    code, text = _refresh(book)
    if code != 0:
        out.problems.append(f"the second refresh failed: {text.strip()}")
        return out
    twice = parts(book)
    lower_once = {k.lower(): k for k in once}
    lower_twice = {k.lower(): k for k in twice}
    for name, data in original.items():
        if name.lower() in BOOKKEEPING:
            continue
        for label, got, lower in (("first", once, lower_once), ("second", twice, lower_twice)):
            if got.get(lower.get(name.lower(), "")) != data:
                out.problems.append(f"{name} changed in the {label} refresh")
    if len(lower_once) != len(once):
        out.problems.append("two parts differ only by case")
    if set(twice) != set(once):
        out.problems.append(f"the second refresh changed the parts: {set(twice) ^ set(once)}")
    after_sheets = sheet_names(book)
    if after_sheets != [*before_sheets, REPORT, ISSUES]:
        out.problems.append(f"sheets {before_sheets} became {after_sheets}")
    out.result = book
    _opens(out)
    return out


def _opens(out: Outcome) -> None:
    """calamine reads the Report; openpyxl loads the result if it loaded the input."""
    from python_calamine import CalamineWorkbook

    assert out.result is not None and out.grafted is not None
    try:
        book = CalamineWorkbook.from_path(str(out.result))
        rows = book.get_sheet_by_name(REPORT).to_python()
        if not rows or tuple(rows[0][:2]) != REPORT_HEADER:
            out.problems.append("calamine reads no KPI table in the Report")
    except BaseException as e:
        out.problems.append(f"calamine cannot read the result: {type(e).__name__}: {e}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # read-only: openpyxl's full load takes minutes on some corpus files
            before = _openpyxl_sheets(out.grafted)
        except BaseException:
            return  # openpyxl cannot read the input either
        try:
            after = _openpyxl_sheets(out.result)
            if before and after != [*before, REPORT, ISSUES]:  # none: Strict, unsupported
                out.problems.append(f"openpyxl sees the sheets {before} as {after}")
        except BaseException as e:
            out.problems.append(f"openpyxl cannot load the result: {type(e).__name__}: {e}")


def _openpyxl_sheets(path: Path) -> list[str]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return wb.sheetnames
    finally:
        wb.close()


def libreoffice_opens(outcomes: list[Outcome], work: Path) -> None:
    """LibreOffice converts every input and every result to CSV, every sheet (a few runs
    of many files): a result must convert whenever its input did, with its Report."""
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    done = [o for o in outcomes if o.result is not None and o.grafted is not None]
    if exe is None or not done:
        return
    pairs = {}
    src = work / "lo_in"
    src.mkdir(parents=True)
    for i, o in enumerate(done):
        a, b = src / f"{i}a{o.result.suffix}", src / f"{i}b{o.result.suffix}"  # type: ignore[union-attr]
        shutil.copy(o.grafted, a)  # type: ignore[arg-type]
        shutil.copy(o.result, b)  # type: ignore[arg-type]
        pairs[i] = o
    dest = work / "lo_out"
    files = sorted(str(p) for p in src.iterdir())
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        for start in range(0, len(files), BATCH):  # a crash loses one batch, not all
            cmd = [
                exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
                "--convert-to", CSV_ALL_SHEETS, "--outdir", str(dest),
                *files[start : start + BATCH],
            ]  # fmt: skip
            subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    for i, o in pairs.items():
        if not list(dest.glob(f"{i}a-*.csv")):
            continue  # LibreOffice cannot open the input either
        sheets = {p.name.split("-", 1)[1] for p in dest.glob(f"{i}b-*.csv")}
        if f"{REPORT}.csv" not in sheets:
            o.problems.append("LibreOffice does not open the result (or sees no Report)")
        else:
            o.libreoffice = True
