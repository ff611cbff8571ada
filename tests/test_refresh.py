"""Refresh on workbooks that hold what openpyxl cannot keep: every part that is not the
report's own or a bookkeeping part must come out byte for byte the same."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from cxkpi_xl.cli import main
from cxkpi_xl.layout import ISSUES_SHEET, REPORT_SHEET
from cxkpi_xl.refresh import RefreshError, refresh
from cxkpi_xl.sample import generate

from .lo import recalculate
from .workbooks import kpi_table

# openpyxl warns that it would drop the sparklines: the tests only read with it.
pytestmark = pytest.mark.filterwarnings("ignore:Sparkline Group extension:UserWarning")

BOOKKEEPING = {
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
    "docProps/app.xml",
    "xl/sharedStrings.xml",
    "xl/calcChain.xml",
}


def _vba_project(tmp: Path) -> Path:
    """A real vbaProject.bin: the one in xlwings' own quickstart workbook."""
    import xlwings

    source = Path(xlwings.__file__).parent / "quickstart.xlsm"
    out = tmp / "vbaProject.bin"
    with zipfile.ZipFile(source) as z:
        out.write_bytes(z.read("xl/vbaProject.bin"))
    return out


def user_book(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """A user's workbook as Excel keeps it: the input Tables plus VBA, sparklines, a text
    box, a defined name, a dynamic-array formula and an Excel 2010 validation list."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True, "strings_to_formulas": False})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, frame in tables.items():
        ws = wb.add_worksheet(name)
        cols = list(frame.columns)
        data = []
        for row in frame.itertuples(index=False):
            data.append(
                [None if v is pd.NaT or (isinstance(v, float) and v != v) else v for v in row]
            )
        ws.add_table(
            0,
            0,
            max(len(data), 1),
            len(cols) - 1,
            {"name": name, "columns": [{"header": c} for c in cols], "data": data or None},
        )
        for c, col in enumerate(cols):
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                for r, v in enumerate(frame[col], start=1):
                    if v is not pd.NaT and v == v:
                        ws.write_datetime(r, c, v.to_pydatetime(), date_fmt)
    notes = wb.add_worksheet("Notes")
    for i, v in enumerate([5, 3, 9, 1, 7], start=1):
        notes.write(i, 0, v)
    notes.write(0, 0, "numbers")
    notes.write_dynamic_array_formula("C2:C6", "=_xlfn._xlws.SORT(A2:A6)")
    notes.add_sparkline("E2", {"range": "Notes!A2:A6", "type": "column"})
    notes.insert_textbox("G2", "Board pack: see the Report sheet", {"width": 300, "height": 60})
    notes.data_validation("B2:B6", {"validate": "list", "source": "=Customers!$C$2:$C$5"})
    notes.write_formula("B8", "=SUM(A2:A6)", None, 25)
    wb.define_name("Target", "=Notes!$A$2")
    wb.add_vba_project(str(_vba_project(path.parent)))
    wb.close()
    return path


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return generate("tiny", seed=3)


@pytest.fixture
def book(tmp_path: Path, tables) -> Path:
    return user_book(tmp_path / "Board pack.xlsm", tables)


def _report_frame(path: Path) -> pd.DataFrame:
    return pd.read_excel(path, sheet_name=REPORT_SHEET, engine="calamine", header=None)


def _kpi_table(raw: pd.DataFrame) -> tuple[list[str], dict[str, list[float | None]]]:
    """The KPI table below the headline block (see tests/workbooks.kpi_table)."""
    rows = [[None if pd.isna(v) else v for v in r] for r in raw.itertuples(index=False)]
    return kpi_table(rows)


def test_refresh_twice_leaves_every_other_part_byte_identical(book: Path, tmp_path: Path):
    original = parts(book)
    assert "xl/vbaProject.bin" in original
    assert any(b"sparkline" in v for v in original.values())  # the x14 extension is there
    first = refresh(book)
    once = parts(book)
    refresh(book)
    twice = parts(book)
    for name, data in original.items():
        if name in BOOKKEEPING:
            continue
        assert once.get(name) == data, f"{name} changed in the first refresh"
        assert twice.get(name) == data, f"{name} changed in the second refresh"
    # Styles are reused, not appended again; the second refresh adds no parts.
    assert twice["xl/styles.xml"] == once["xl/styles.xml"]
    assert set(twice) == set(once)
    workbook_xml = twice["xl/workbook.xml"].decode()
    assert workbook_xml.count(f'name="{REPORT_SHEET}"') == 1
    # The workbook is still macro-enabled and keeps its VBA.
    assert b"macroEnabled" in twice["[Content_Types].xml"]
    assert first.report.periods


def test_refreshed_book_opens_everywhere_and_matches_kpis_json(book: Path, tmp_path: Path):
    refresh(book)
    # openpyxl
    wb = openpyxl.load_workbook(book, keep_vba=True)
    assert wb.sheetnames[-2:] == [REPORT_SHEET, ISSUES_SHEET]
    assert wb["Notes"]["A2"].value == 5 and "Target" in wb.defined_names
    # calamine, against `cxkpi kpis BOOK --format json` of the same file
    periods, kpis = _kpi_table(_report_frame(book))
    out = CliRunner().invoke(main, ["kpis", str(book), "--format", "json"])
    assert out.exit_code == 0, out.output
    expected = json.loads(out.stdout)
    assert periods == expected["periods"]
    assert list(kpis) == list(expected["kpis"])
    for kpi_id, values in expected["kpis"].items():
        got = kpis[kpi_id]
        for g, e in zip(got, values, strict=True):
            assert (g is None) == (e is None), kpi_id
            if e is not None:
                assert math.isclose(g, e, rel_tol=1e-12, abs_tol=1e-12), kpi_id
    # LibreOffice opens it and sees the same numbers in the Report
    lo_in = tmp_path / "lo_in"
    lo_in.mkdir()
    shutil.copy(book, lo_in / "book.xlsx")
    (converted,) = recalculate([lo_in / "book.xlsx"], tmp_path / "lo_out")
    lo = openpyxl.load_workbook(converted, data_only=True)
    assert REPORT_SHEET in lo.sheetnames and ISSUES_SHEET in lo.sheetnames
    ws = lo[REPORT_SHEET]
    nps_row = next(r for r in ws.iter_rows(min_row=2) if r[2 + len(periods)].value == "nps")
    lo_nps = [c.value for c in nps_row[2 : 2 + len(periods)]]
    assert lo_nps == [pytest.approx(v) if v is not None else None for v in expected["kpis"]["nps"]]
    assert lo["Notes"]["B8"].value == 25


def test_report_has_native_charts_in_their_own_parts(book: Path):
    refresh(book)
    p = parts(book)
    charts = sorted(n for n in p if n.startswith("xl/charts/chart"))
    assert len(charts) == 4  # movements, NPS with its band, churn, NRR and GRR
    text = [p[n].decode() for n in charts]
    assert re.search(r"<(\w+:)?barChart>", text[0])
    assert re.search(r'<(\w+:)?grouping val="stacked"', text[0])
    assert re.search(r"<(\w+:)?areaChart>", text[1]) and re.search(r"<(\w+:)?lineChart>", text[1])
    assert all(f"'{REPORT_SHEET}'!$C$" in t for t in text)  # categories: the period labels
    wb = openpyxl.load_workbook(book)
    assert len(wb[REPORT_SHEET]._charts) == 4


def test_output_writes_a_copy_and_leaves_the_original(book: Path, tmp_path: Path):
    before = book.read_bytes()
    out = CliRunner().invoke(main, ["refresh", str(book), "--output", str(tmp_path / "copy.xlsm")])
    assert out.exit_code == 0, out.output
    assert "Refreshed copy.xlsm:" in out.stdout and "KPIs" in out.stdout
    assert book.read_bytes() == before
    assert REPORT_SHEET in openpyxl.load_workbook(tmp_path / "copy.xlsm").sheetnames


@pytest.mark.parametrize("case", ["open in Excel", "read-only", "not a package", "users sheet"])
def test_refusals_change_nothing(book: Path, tmp_path: Path, case: str):
    target = book
    if case == "open in Excel":
        (book.parent / f"~${book.name}").write_bytes(b"owner")
        expected = "is open in Excel"
    elif case == "read-only":
        book.chmod(0o444)
        expected = "is read-only"
    elif case == "not a package":
        target = tmp_path / "notes.xlsx"
        target.write_text("just text")
        expected = "not an xlsx/xlsm workbook"
    else:
        target = tmp_path / "own.xlsx"
        wb = openpyxl.Workbook()
        wb.active.title = REPORT_SHEET
        wb.active["A1"] = "My own board report"
        wb.save(target)
        expected = "its own sheet named 'Report'"
    before = target.read_bytes()
    listing = sorted(os.listdir(target.parent))
    out = CliRunner().invoke(main, ["refresh", str(target)])
    book.chmod(0o644)
    assert out.exit_code == 1
    assert expected in out.output and len(out.output.strip().splitlines()) == 1, out.output
    assert target.read_bytes() == before
    assert sorted(os.listdir(target.parent)) == listing  # no temporary file left behind


def test_a_crash_before_the_final_rename_leaves_the_original(book: Path, monkeypatch):
    import cxkpi_xl.package as package

    before = book.read_bytes()
    listing = sorted(os.listdir(book.parent))
    real = package._write_atomic

    def crash(zin, target, parts, after_write):  # type: ignore[no-untyped-def]
        def boom() -> None:
            raise KeyboardInterrupt

        real(zin, target, parts, boom)

    monkeypatch.setattr(package, "_write_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        refresh(book)
    assert book.read_bytes() == before
    assert sorted(os.listdir(book.parent)) == listing


def test_formula_like_text_stays_text_in_libreoffice(tmp_path: Path, tables):
    t = {k: v.copy() for k, v in tables.items()}
    cust = t["Customers"]
    cust.loc[cust.index[:3], "segment"] = '=HYPERLINK("http://evil.example","click")'
    cust.loc[cust.index[3:6], "owner"] = "=cmd|' /C calc'!A0"
    mrr = t["MRR"].astype({"mrr": object})
    mrr.loc[mrr.index[0], "mrr"] = "=1+1"  # a bad value: a Data Issues row
    t["MRR"] = mrr
    sv = t["Surveys"]
    sv.loc[sv.index[:20], "comment"] = "@SUM(1) -2 +3"
    book = user_book(tmp_path / "inject.xlsx", t)
    refresh(book)
    (converted,) = recalculate([book], tmp_path / "lo")
    wb = openpyxl.load_workbook(converted)  # formulas, not values: none may appear
    texts = {}
    for name in (REPORT_SHEET, ISSUES_SHEET):
        for row in wb[name].iter_rows():
            for c in row:
                assert c.data_type != "f", f"{name}!{c.coordinate} became a formula: {c.value}"
                if isinstance(c.value, str):
                    texts[c.value] = c.data_type
    assert texts['=HYPERLINK("http://evil.example","click")'] == "s"
    assert texts["=cmd|' /C calc'!A0"] == "s"
    assert texts["=1+1"] == "s"  # the bad MRR value, quoted in Data Issues


def test_data_issues_sheet_lists_problems_with_rows(tmp_path: Path, tables):
    t = {k: v.copy() for k, v in tables.items()}
    mrr = t["MRR"].astype({"mrr": object})
    mrr.loc[mrr.index[4], "mrr"] = "ten"
    t["MRR"] = mrr
    book = user_book(tmp_path / "issues.xlsx", t)
    done = refresh(book)
    # one row problem; a model that cannot be fitted on the tiny sample adds a note
    # without a row, whatever the installed scipy finds (not this test's business)
    assert [i.row for i in done.report.issues if i.row is not None] == [6]
    n = len(done.report.issues)
    assert f"{n} data issue{'s' if n != 1 else ''} (see the Data Issues sheet)" in done.summary()
    issues = pd.read_excel(book, sheet_name=ISSUES_SHEET, engine="calamine")
    assert list(issues.columns) == [
        *("sheet", "row", "column", "value", "problem", "action", "count", "first rows")
    ]
    row = issues.iloc[0]
    assert (row["sheet"], int(row["row"]), row["column"], row["value"]) == ("MRR", 6, "mrr", "ten")


def test_demo_writes_refreshes_and_prints_the_latest_period(tmp_path: Path):
    out = CliRunner().invoke(main, ["demo", str(tmp_path / "d"), "--size", "tiny"])
    assert out.exit_code == 0, out.output
    assert "KPIs of 2025-12" in out.stdout and "Net Promoter Score" in out.stdout
    assert "Refreshed cx_demo.xlsx: 12 month periods" in out.stdout
    book = tmp_path / "d" / "cx_demo.xlsx"
    wb = openpyxl.load_workbook(book)
    assert {"KPI Summary", REPORT_SHEET, ISSUES_SHEET} <= set(wb.sheetnames)


def test_demo_again_refreshes_the_users_edited_book_and_new_keeps_it(tmp_path: Path):
    # A second `cxkpi demo` used to rebuild the book over the user's edits.
    folder = tmp_path / "d"
    assert CliRunner().invoke(main, ["demo", str(folder), "--size", "tiny", "-q"]).exit_code == 0
    book = folder / "cx_demo.xlsx"
    wb = openpyxl.load_workbook(book)
    wb.create_sheet("My notes")["A1"] = "mine"
    wb.save(book)
    again = CliRunner().invoke(main, ["demo", str(folder), "--size", "tiny", "-q"])
    assert again.exit_code == 0, again.output
    assert "is there already: refreshing it as it is" in again.stdout
    assert openpyxl.load_workbook(book)["My notes"]["A1"].value == "mine"
    assert REPORT_SHEET in openpyxl.load_workbook(book).sheetnames
    fresh = CliRunner().invoke(main, ["demo", str(folder), "--size", "tiny", "-q", "--new"])
    assert fresh.exit_code == 0, fresh.output
    kept = folder / "cx_demo (1).xlsx"
    assert f"Kept the previous demo workbook as {kept}" in fresh.stdout
    assert openpyxl.load_workbook(kept)["My notes"]["A1"].value == "mine"
    assert "My notes" not in openpyxl.load_workbook(book).sheetnames


KILLER = """
import sys, time
from cxkpi_xl.refresh import refresh
print("start", flush=True)
t0 = time.perf_counter()
refresh(sys.argv[1])
print(time.perf_counter() - t0, flush=True)
"""


def test_sigkill_at_random_moments_leaves_old_or_new_never_broken(tmp_path: Path, tables):
    """24 refreshes killed with SIGKILL at random moments (half of them late in the run,
    while the new file is written and moved into place): the file is always the old one
    or the complete refreshed one."""
    book = user_book(tmp_path / "kill.xlsx", tables)
    old = book.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(book)], check=True, capture_output=True, text=True
    )
    duration = float(done.stdout.split()[-1])  # one refresh, imports excluded
    refreshed = parts(book)
    rng = np.random.default_rng(20261122)
    outcomes = {"old": 0, "new": 0}
    for i in range(24):
        book.write_bytes(old)
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLER, str(book)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
        low = 0.0 if i % 2 else 0.6
        time.sleep(duration * float(rng.uniform(low, 1.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if book.read_bytes() == old:
            outcomes["old"] += 1
            continue
        got = parts(book)
        assert set(got) == set(refreshed), outcomes
        for name, value in refreshed.items():
            assert got[name] == value, (name, outcomes)
        assert REPORT_SHEET in openpyxl.load_workbook(book, read_only=True).sheetnames
        outcomes["new"] += 1
    print("SIGKILL outcomes:", outcomes)
    assert outcomes["old"] >= 1, outcomes
    # what a killed run leaves behind is only its hidden temporary file
    left = {p.name for p in tmp_path.iterdir()} - {"kill.xlsx", "vbaProject.bin"}
    assert all(n.startswith(".~kill.") and n.endswith(".tmp") for n in left), left


def test_refresh_error_for_a_bad_setting(book: Path):
    with pytest.raises(RefreshError, match="granularity"):
        refresh(book, overrides={"granularity": "week"})


def _rewrite(path: Path, changes: dict[str, bytes]) -> None:
    old = parts(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in {**old, **changes}.items():
            z.writestr(name, data)


def test_a_calc_chain_that_refers_to_the_replaced_report_is_dropped(book: Path):
    """Excel keeps a calcChain of formula cells by sheet id: if the user typed a formula
    into the Report, the chain must go with the old Report, or Excel calls the file
    damaged."""
    refresh(book)
    p = parts(book)
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    report_id = re.search(rf'name="{REPORT_SHEET}" sheetId="(\d+)"', p["xl/workbook.xml"].decode())
    chain = f'<calcChain xmlns="{ns}"><c r="Z1" i="{report_id.group(1)}"/></calcChain>'
    rels = (
        p["xl/_rels/workbook.xml.rels"]
        .decode()
        .replace(
            "</Relationships>",
            '<Relationship Id="rId999" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/calcChain" Target="calcChain.xml"/></Relationships>',
        )
    )
    types = (
        p["[Content_Types].xml"]
        .decode()
        .replace(
            "</Types>",
            '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.calcChain+xml"/></Types>',
        )
    )
    _rewrite(
        book,
        {
            "xl/calcChain.xml": chain.encode(),
            "xl/_rels/workbook.xml.rels": rels.encode(),
            "[Content_Types].xml": types.encode(),
        },
    )
    refresh(book)
    after = parts(book)
    assert "xl/calcChain.xml" not in after
    assert b"calcChain" not in after["xl/_rels/workbook.xml.rels"]
    assert b"calcChain" not in after["[Content_Types].xml"]
    assert REPORT_SHEET in openpyxl.load_workbook(book).sheetnames


def test_every_breakdown_of_the_engine_has_a_report_section(tables, monkeypatch):
    import cxkpi_xl.models
    from cxkpi_xl.engine import compute
    from cxkpi_xl.layout import SECTIONS
    from cxkpi_xl.reader import read

    # Which breakdowns exist must not hinge on whether a model's fit on a tiny sample
    # lands inside its parameters' bounds (it did not, once, on a fresh install): the
    # models are stood in for by fixed answers of the shape the engine expects.
    def fixed_clv(customer_ids, *args, **kwargs):
        ids = pd.Index(pd.unique(np.asarray(customer_ids)), name="customer_id")
        return pd.DataFrame({"p_alive": 0.5, "predicted_clv": 1.0}, index=ids)

    def fixed_sbg(survival, periods=10, discount_rate=0.1):
        return pd.DataFrame({"survival": [1.0], "retention_rate": [np.nan]}, index=["0"])

    monkeypatch.setattr(cxkpi_xl.models, "cltv_predicted", fixed_clv)
    monkeypatch.setattr(cxkpi_xl.models, "sbg_retention", fixed_sbg)
    assert set(compute(read(tables)).breakdowns) == {key for key, _ in SECTIONS}
