"""The Report as a CFO reads it (issue 15): the headline block, number formats by unit,
charts with axis titles, and the board pack printed by LibreOffice within ten pages with
no chart across a page break; an empty workbook's Report and CLI say what to fill."""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from cxkpi_xl.catalogue import BY_ID, NUMBER_FORMATS
from cxkpi_xl.cli import main
from cxkpi_xl.data.sample import generate
from cxkpi_xl.engine import Report
from cxkpi_xl.report.board import Block, page_breaks, report_sheet
from cxkpi_xl.report.charts import CHART_ROWS
from cxkpi_xl.report.headline import BAD_FILL, GOOD_FILL, figures, signed
from cxkpi_xl.report.impact import TITLE as IMPACT_TITLE
from cxkpi_xl.report.layout import REPORT_HEADER, REPORT_SHEET, SECTIONS, issues_sheet
from cxkpi_xl.report.pdf import page_count
from cxkpi_xl.workbook.template import build

from .lo import soffice

EMU_PER_ROW = 15 * 12700  # a 15-point row in EMU (12,700 per point)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path, str]:
    """The demo (``cxkpi demo``'s data: generate("small"), seed 7) refreshed with --pdf."""
    soffice()
    folder = tmp_path_factory.mktemp("demo")
    book = build(folder / "cx_demo.xlsx", generate("small"), force=True)
    out = CliRunner().invoke(main, ["refresh", str(book), "--pdf", "-q"])
    assert out.exit_code == 0, out.output
    return book, book.with_suffix(".pdf"), out.output


def _parts(book: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(book) as z:
        return {n: z.read(n) for n in z.namelist()}


def _report_part(p: dict[str, bytes]) -> str:
    wb = p["xl/workbook.xml"].decode()
    rid = re.search(rf'name="{REPORT_SHEET}" sheetId="\d+" r:id="(rId\d+)"', wb).group(1)
    rels = p["xl/_rels/workbook.xml.rels"].decode()
    target = re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"', rels)
    target = target or re.search(rf'Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def test_demo_prints_within_ten_pages_and_no_chart_crosses_a_page_break(demo):
    book, pdf, output = demo
    assert f"Printed the Report to {pdf.name}" in output
    p = _parts(book)
    sheet = p[_report_part(p)].decode()
    breaks = [int(b) for b in re.findall(r'<brk id="(\d+)"[^>]*man="1"', sheet)]
    assert 'fitToWidth="1"' in sheet and 'orientation="landscape"' in sheet
    # LibreOffice's own pagination: one page per manual break and no more, so it broke
    # no page by itself (an automatic break could fall inside a chart).
    pages = page_count(pdf)
    assert pages <= 10
    assert pages == len(breaks) + 1
    # Each chart's rows, from the drawing's anchors (top row, and height in rows).
    drawing = next(
        v.decode() for n, v in p.items() if n.startswith("xl/drawings/drawing") and b"/chart" in v
    )
    # The Report's drawing also holds the Refresh KPIs button (a shape, not a chart).
    drawing = re.sub(
        r"<(?:\w+:)?(oneCellAnchor|twoCellAnchor|absoluteAnchor)\b"
        r"(?:(?!</(?:\w+:)?\1>).)*?cxkpi_refresh.*?</(?:\w+:)?\1>",
        "",
        drawing,
        flags=re.S,
    )
    anchors = re.findall(
        r"<(?:\w+:)?from><(?:\w+:)?col>\d+</(?:\w+:)?col>.*?<(?:\w+:)?row>(\d+)</(?:\w+:)?row>"
        r'.*?<(?:\w+:)?ext cx="\d+" cy="(\d+)"',
        drawing,
        flags=re.S,
    )
    assert len(anchors) == 4
    for row0, cy in anchors:
        top = int(row0) + 1  # 1-based first row of the chart
        bottom = top + math.ceil(int(cy) / EMU_PER_ROW) - 1
        assert bottom - top + 1 <= CHART_ROWS
        assert not [b for b in breaks if top <= b < bottom], (top, bottom, breaks)
    # The KPI-title column repeats on every page.
    assert re.search(
        r'<definedName name="_xlnm.Print_Titles" localSheetId="\d+">\'Report\'!\$A:\$A<',
        p["xl/workbook.xml"].decode(),
    )


def test_every_chart_has_axis_titles_and_its_axis_format(demo):
    book, _, _ = demo
    p = _parts(book)
    charts = [p[n].decode() for n in sorted(p) if n.startswith("xl/charts/chart")]
    assert len(charts) == 4
    for chart in charts:
        for axis in re.findall(
            r"<(?:\w+:)?(?:catAx|valAx)>.*?</(?:\w+:)?(?:catAx|valAx)>", chart, re.S
        ):
            assert re.search(r"<(?:\w+:)?title>.*?<a:t>[^<]+</a:t>", axis, re.S), axis[:200]
    movements, band, churn, retention = charts
    # Stacked columns, one colour per movement, the net new line, money on the axis.
    assert '<grouping val="stacked"' in movements and "<lineChart>" in movements
    colours = re.findall(
        r'<a:solidFill><a:srgbClr val="(\w{6})"', movements.split("<lineChart>")[0]
    )
    assert len(set(colours)) == 5  # new, reactivation, expansion, contraction, churn
    assert 'formatCode="&quot;$&quot;#,##0' in movements  # the demo's currency is USD
    assert "<areaChart>" in band and "<lineChart>" in band
    assert 'formatCode="0.0%"' in churn and 'formatCode="0%"' in retention


def _walk_formats(ws) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """Every number cell of the Report against the format its unit calls for; returns
    how many cells were checked and the mismatches."""
    by_title = {k.title: k for k in BY_ID.values()}
    checked, wrong = 0, []
    section = ""
    heading: list = []
    sections = {title for _, title in SECTIONS} | {"KPIs by period"}
    for row in ws.iter_rows():
        values = [c.value for c in row]
        a = values[0] if values else None
        if a == IMPACT_TITLE:
            # "Does CX pay?" lays itself out (ratios, p-values, counts, money side by
            # side); tests/test_impact.py reads its cells back. Not walked here.
            section = a
            continue
        if section == IMPACT_TITLE and not (
            a in sections or (isinstance(a, str) and a.startswith("Chart data"))
        ):
            continue
        if a in sections or (isinstance(a, str) and a.startswith("Chart data")):
            section = a
            continue
        if row[0].fill.fgColor.rgb == "FFDDEBF7":
            heading = values
            continue
        for c in row:
            if not isinstance(c.value, float | int) or isinstance(c.value, bool):
                continue
            want = _expected(section, heading, values, c.column - 1, by_title)
            checked += 1
            if c.number_format not in want:
                wrong.append(f"{c.coordinate} {a!r} {c.number_format!r} not {want}")
    return checked, wrong


def _expected(section, heading, values, col, by_title) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """What the unit of a cell calls for, written out per section (independently of the
    layout's own format choice)."""
    title = values[0]
    if title in by_title and str(values[1] or "") != "":  # KPI rows: headline, table, groups
        fmt = NUMBER_FORMATS[by_title[title].unit]
        if heading and str(heading[0]).startswith("Headline"):
            return (signed(fmt),) if heading[col] == "change" else (fmt,)
        return (fmt,)
    money, pct, count = NUMBER_FORMATS["money"], NUMBER_FORMATS["fraction"], NUMBER_FORMATS["count"]
    if section.startswith("MRR movements") or section.startswith("Referral revenue"):
        return (money,)
    if section.startswith(("Cohort retention", "Feature adoption")):
        return (pct,)
    if section.startswith("Chart data"):
        return (NUMBER_FORMATS["points"],)
    if section.startswith("Churn by reason"):
        return (money,) if values[1] == "churned_mrr" else (count,)
    if section.startswith(("Customers by number", "Feedback themes")):
        return (count,)
    if section.startswith(("Predicted CLV", "Customers by probability")):
        if heading[col] == "customers":
            return (count,)
        return (pct,) if str(heading[col]).startswith("p_alive") else (money,)
    if section.startswith("Projected retention"):
        if title in ("alpha", "beta"):
            return ("0.000",)
        if title == "derl":
            return (NUMBER_FORMATS[BY_ID["derl"].unit],)  # periods, never a percentage
        return (pct,)
    return ("(no unit known for this cell)",)


def test_every_number_of_the_report_has_its_units_format(demo):
    book, _, _ = demo
    ws = openpyxl.load_workbook(book)[REPORT_SHEET]
    checked, wrong = _walk_formats(ws)
    assert checked > 1000
    assert wrong == []


def test_the_headline_compares_with_last_period_and_a_year_earlier():
    # Worked example: 14 months; churn 5 % -> 4 % (down: good), MRR 100 -> 90 (down:
    # bad), a year before the last month (index 1) MRR was 80 and churn 6 %.
    months = [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01", "2026-02"]
    mrr = np.linspace(79, 100, 14)
    mrr[1], mrr[-2], mrr[-1] = 80.0, 100.0, 90.0
    churn = np.full(14, 0.05)
    churn[1], churn[-1] = 0.06, 0.04
    nps = np.full(14, 10.0)
    report = Report(
        "month", months,
        {"mrr": mrr, "customer_churn_rate": churn, "nps": nps,
         "nps_margin_of_error": np.full(14, 12.5)},
    )  # fmt: skip
    by_kpi = {f.kpi: f for f in figures(report)}
    assert by_kpi["mrr"].change(by_kpi["mrr"].previous) == pytest.approx(-10.0)
    assert by_kpi["mrr"].change(by_kpi["mrr"].year_ago) == pytest.approx(10.0)
    assert by_kpi["mrr"].verdict(100.0) == "bad" and by_kpi["mrr"].verdict(80.0) == "good"
    churn_fig = by_kpi["customer_churn_rate"]
    assert churn_fig.change(churn_fig.previous) == pytest.approx(-0.01)
    assert churn_fig.verdict(churn_fig.previous) == "good"
    assert churn_fig.verdict(churn_fig.year_ago) == "good"  # 6 % -> 4 %
    assert by_kpi["nps"].verdict(by_kpi["nps"].previous) is None  # no change
    assert "12.5" in by_kpi["nps"].note
    sheet = report_sheet(report)
    cells = {c[0]: c for row in sheet.rows for c in row if c is not None}
    rows = [r for r in sheet.rows if r and r[0] and r[0][0] == BY_ID["mrr"].title]
    mrr_row = rows[0]  # the headline's, above the KPI table's
    assert mrr_row[4] == (pytest.approx(-10.0), f"num:{signed('#,##0.00')}|fill:{BAD_FILL}")
    assert mrr_row[6] == (pytest.approx(10.0), f"num:{signed('#,##0.00')}|fill:{GOOD_FILL}")
    assert "Headline: 2026-02" in cells
    # Two months only: no year-earlier column values, and no error.
    short = Report("month", months[:2], {"mrr": mrr[:2]})
    (f,) = figures(short)
    assert math.isnan(f.year_ago) and f.verdict(f.year_ago) is None


def test_charts_show_the_last_24_periods_and_the_table_all():
    months = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(30)]
    kpis = {
        k: np.linspace(0.1, 0.3, 30)
        for k in ("nps", "nps_margin_of_error", "customer_churn_rate", "net_revenue_retention")
    }
    sheet = report_sheet(Report("month", months, kpis))
    assert len(sheet.charts) == 3  # no MRR movements without them
    for chart in sheet.charts:
        assert chart.periods == 24
        assert chart.first_col == 3 + 6  # periods 7..30, from column I
    header = next(r for r in sheet.rows if r and r[0] == ("KPI", "header"))
    assert [c[0] for c in header[2:-1]] == months  # the table keeps all 30


def test_page_breaks_fall_between_blocks_unless_one_is_longer_than_a_page():
    def blocks(*sizes: int) -> list[Block]:
        out, row = [], 1
        for i, n in enumerate(sizes):
            gap = 0 if i == 0 else 1
            row += gap
            out.append(Block(str(i), [[] for _ in range(n)], first=row, gap_before=gap))
            row += n
        return out

    # 20 rows a page. Blocks of 8, 8 (rows 10-17), 8 (19-26): the third does not fit
    # after 17 rows, so the page ends after row 18 (the gap row before it).
    assert page_breaks(blocks(8, 8, 8), 20) == [18]
    # A block of 45 rows after one of 5: it starts a new page (after row 6) and is cut
    # where pages fill: rows 7-26, 27-46, then 47-51.
    assert page_breaks(blocks(5, 45), 20) == [6, 26, 46]
    assert page_breaks(blocks(20), 20) == []


def test_an_empty_workbook_says_which_tables_to_fill(tmp_path: Path):
    book = build(tmp_path / "empty.xlsx", None)
    out = CliRunner().invoke(main, ["refresh", str(book), "-q"])
    assert out.exit_code == 0, out.output
    assert "no data to report yet: fill the input Tables (Customers, MRR, Surveys" in out.output
    assert "0 month periods" not in out.output
    ws = openpyxl.load_workbook(book)[REPORT_SHEET]
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert (ws["A1"].value, ws["B1"].value) == REPORT_HEADER
    assert "No data to report yet." in texts
    assert any("Customers, MRR, Surveys" in t for t in texts)


def test_refresh_pdf_says_when_libreoffice_is_missing(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CXKPI_SOFFICE", "no-such-soffice-here")
    book = build(tmp_path / "b.xlsx", generate("tiny", seed=3))
    out = CliRunner().invoke(main, ["refresh", str(book), "--pdf", "-q"])
    assert out.exit_code == 0, out.output
    assert "no PDF: LibreOffice is not installed" in out.output
    assert not book.with_suffix(".pdf").exists()


def test_print_titles_are_set_once_however_often_refreshed(tmp_path: Path):
    book = build(tmp_path / "b.xlsx", generate("tiny", seed=3))
    for _ in range(2):
        out = CliRunner().invoke(main, ["refresh", str(book), "-q"])
        assert out.exit_code == 0, out.output
    wb = _parts(book)["xl/workbook.xml"].decode()
    position = re.findall(r'<sheet name="([^"]+)"', wb).index(REPORT_SHEET)
    ours = re.findall(rf'name="_xlnm.Print_Titles" localSheetId="{position}">([^<]*)<', wb)
    assert ours == ["'Report'!$A:$A"]  # one, however often refreshed
    assert openpyxl.load_workbook(book)[REPORT_SHEET].print_title_cols == "$A:$A"


def test_a_report_from_before_the_headline_is_replaced_not_refused(tmp_path: Path):
    book = build(tmp_path / "old.xlsx", generate("tiny", seed=3))
    wb = openpyxl.load_workbook(book)
    old = wb.create_sheet(REPORT_SHEET)
    old["A1"], old["B1"], old["C1"] = "kpi", "title", "2025-01"  # the earlier layout
    wb.save(book)
    out = CliRunner().invoke(main, ["refresh", str(book), "-q"])
    assert out.exit_code == 0, out.output
    assert openpyxl.load_workbook(book)[REPORT_SHEET]["A1"].value == REPORT_HEADER[0]


def test_data_issue_values_that_are_numbers_are_written_as_numbers():
    from cxkpi_xl.data.issues import Issue

    issues = [
        Issue("MRR", 5, "mrr", "-120.5", "negative MRR", "row skipped"),
        Issue("Customers", 6, "customer_id", "007", "duplicate id", "row skipped"),
        Issue("MRR", 7, "month", "May", "not a date", "row skipped"),
    ]
    rows = issues_sheet(issues).rows[1:]
    assert rows[0][3] == (-120.5, "num:General")
    assert rows[1][3] == ("007", "text")  # an id keeps its leading zeros
    assert rows[2][3] == ("May", "text")
