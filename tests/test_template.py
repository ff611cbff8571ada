"""The template workbook: its structure walks the schema registry, and LibreOffice's
recalculation of its KPI Summary equals the Python engine."""

from __future__ import annotations

import datetime as dt
import math

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from cxkpi_xl.catalogue import CATALOGUE
from cxkpi_xl.cli import main
from cxkpi_xl.engine import compute
from cxkpi_xl.reader import read
from cxkpi_xl.sample import generate
from cxkpi_xl.schema import SETTINGS, TABLE_SHEETS, TABLES
from cxkpi_xl.workbook.formulas import SUMMARY
from cxkpi_xl.workbook.template import SUMMARY_SHEET, TemplateError, build

from .lo import named_value, recalculate

REQUIRED_SUMMARY = (
    "mrr net_new_mrr mrr_new mrr_reactivation mrr_expansion mrr_contraction mrr_churn arpu "
    "net_revenue_retention gross_revenue_retention customer_churn_rate customer_retention_rate "
    "nps csat ces first_contact_resolution_rate conversion_rate cac"
).split()


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    return build(tmp_path_factory.mktemp("t") / "cx_kpis.xlsx")


def test_structure_follows_the_schema_registry(empty):
    wb = openpyxl.load_workbook(empty)
    tables = {t.name: (ws.title, t) for ws in wb.worksheets for t in ws.tables.values()}
    for table in TABLES:
        sheet, t = tables[table.name]
        assert sheet == TABLE_SHEETS[table.name]
        assert [c.name for c in t.tableColumns] == [c.name for c in table.columns]
        ws = wb[sheet]
        header_row = [ws.cell(1, i + 1).value for i in range(len(table.columns))]
        assert header_row == [c.name for c in table.columns]
        if sheet == table.name:
            assert ws.freeze_panes == "A2"
            validated = {
                str(r).split(":")[0][:-1].rstrip("0123456789")
                for dv in ws.data_validations.dataValidation
                for r in dv.sqref.ranges
            }
            for i, column in enumerate(table.columns, 1):
                letter = openpyxl.utils.get_column_letter(i)
                needs = (
                    column.type in ("date", "month", "yesno")
                    or column.choices
                    or (column.type == "number" and column.low is not None)
                )
                if needs:
                    assert letter in validated, f"{table.name}.{column.name} has no validation"
    for dv_sheet in (wb[t.name] for t in TABLES if t.name in wb.sheetnames):
        for dv in dv_sheet.data_validations.dataValidation:
            assert dv.showErrorMessage and dv.error and dv.prompt
    for setting in SETTINGS:
        assert setting.name in wb.defined_names, setting.name
    for kpi in REQUIRED_SUMMARY:
        assert f"kpi_{kpi}" in wb.defined_names
    assert "summary_period" in wb.defined_names
    assert (
        wb["xlwings.conf"]["A1"].value == "UDF Modules"
        and wb["xlwings.conf"]["B1"].value == "cxkpi_xl.udfs"
    )
    definitions = [r[0].value for r in wb["Definitions"].iter_rows(min_row=2)]
    assert definitions == [k.id for k in CATALOGUE]
    assert wb[SUMMARY_SHEET].page_setup.orientation == "landscape"


def test_opens_with_calamine_and_reads_back_empty(empty):
    book = CalamineWorkbook.from_path(str(empty), load_tables=True)
    assert {t.name for t in TABLES} <= set(book.table_names)
    data = read(empty)
    assert not data.issues and all(
        f.empty for f in data.tables.values() if f is not data.tables["HealthWeights"]
    )


def test_refuses_to_overwrite(tmp_path):
    p = tmp_path / "a.xlsx"
    p.write_text("mine")
    with pytest.raises(TemplateError, match="exists"):
        build(p)
    assert p.read_text() == "mine"
    result = CliRunner().invoke(main, ["template", str(p)])
    assert result.exit_code == 1 and "--force" in result.output


def test_text_from_data_is_text(tmp_path):
    tables = generate("tiny")
    tables["Customers"].loc[0, "customer_name"] = '=HYPERLINK("http://evil.invalid","x")'
    tables["Surveys"].loc[0, "comment"] = "=cmd|' /C calc'!A0"
    path = build(tmp_path / "t.xlsx", tables)
    wb = openpyxl.load_workbook(path)
    name = wb["Customers"]["B2"]
    assert name.data_type == "s" and name.value.startswith("=HYPERLINK")
    comments = [c for c in wb["Surveys"]["F"] if c.value == "=cmd|' /C calc'!A0"]
    assert comments and all(c.data_type == "s" for c in comments)


def _set(path, out, period=None, **settings):
    wb = openpyxl.load_workbook(path)
    wb[SUMMARY_SHEET]["B3"] = period
    for name, value in settings.items():
        ((sheet, ref),) = list(wb.defined_names[name].destinations)
        wb[sheet][ref.replace("$", "")] = value
    wb.save(out)
    return out


def _month_index(report, period):
    return report.periods.index(period.strftime("%Y-%m"))


CASES = [
    # (size, summary_period, settings): the latest month, the first month (blank
    # movements), a middle month, and another churn convention.
    ("tiny", None, {}),
    ("tiny", dt.date(2025, 1, 15), {}),
    ("small", dt.date(2025, 9, 3), {}),
    ("small", dt.date(2026, 2, 28), {"churn_convention": "stripe"}),
    ("small", None, {"churn_convention": "include_new", "csat_threshold": 5}),
]


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lo")
    built = {size: build(tmp / f"{size}.xlsx", generate(size)) for size in ("tiny", "small")}
    inputs = [
        _set(built[size], tmp / f"case{i}.xlsx", period, **settings)
        for i, (size, period, settings) in enumerate(CASES)
    ]
    outs = recalculate([*inputs, built["tiny"]], tmp / "out")
    return dict(zip(range(len(CASES)), outs[: len(CASES)], strict=True)), inputs


@pytest.mark.parametrize("case", range(len(CASES)))
def test_summary_equals_the_engine_after_libreoffice_recalculates(recalculated, case):
    outs, inputs = recalculated
    _, period, _ = CASES[case]
    report = compute(read(inputs[case]), breakdowns=False)
    wb = openpyxl.load_workbook(outs[case], data_only=True)
    shown = period or pd.Timestamp(named_value(wb, "shown_month")).date()
    i = _month_index(report, shown)
    assert {f.kpi_id for f in SUMMARY} >= set(REQUIRED_SUMMARY)
    for f in SUMMARY:
        got = named_value(wb, f"kpi_{f.kpi_id}")
        want = report.kpis[f.kpi_id][i]
        if math.isnan(want):
            assert got in (None, ""), (f.kpi_id, got)
        else:
            assert isinstance(got, int | float), (f.kpi_id, got)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), f.kpi_id
    if period == dt.date(2025, 1, 15):
        assert named_value(wb, "kpi_mrr_new") in (None, "")  # the first month: no movements


def test_no_formula_cell_holds_an_error(recalculated):
    outs, _ = recalculated
    for out in outs.values():
        wb = openpyxl.load_workbook(out, data_only=True)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "e", (
                        f"{out.name} {ws.title}!{cell.coordinate} = {cell.value}"
                    )


def test_udf_formulas_option(tmp_path):
    path = build(tmp_path / "u.xlsx", formulas="udf")
    wb = openpyxl.load_workbook(path)
    ((sheet, ref),) = list(wb.defined_names["kpi_nps"].destinations)
    assert wb[sheet][ref.replace("$", "")].value.startswith("=CX_NPS(")
    ((sheet, ref),) = list(wb.defined_names["kpi_net_revenue_retention"].destinations)
    assert "CX_NRR(" in wb[sheet][ref.replace("$", "")].value


def _dirty(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.Timestamp]:
    """The sample plus rows the reader refuses or repairs, in the latest month M."""
    t = {name: frame.astype(object) for name, frame in tables.items()}
    m = pd.Timestamp(tables["MRR"]["month"].max())
    day = m + pd.Timedelta(days=9)

    def add(name: str, rows: list[dict]) -> None:
        t[name] = pd.concat([t[name], pd.DataFrame(rows, dtype=object)], ignore_index=True)

    add("Surveys", [
        {"response_date": day, "survey": "NPS", "score": 11},  # off the 0..10 scale
        {"response_date": day, "survey": "NPS", "score": 7.5},  # not whole
        {"response_date": day, "survey": "NPS", "score": 9.5},  # not whole, promoter range
        {"response_date": day, "survey": "NPS", "score": "ten"},  # text in a number column
        {"response_date": day, "survey": "NPS", "score": None},  # blank score
        {"response_date": None, "survey": "NPS", "score": 10},  # blank date
        {"response_date": day, "survey": "nps", "score": 10},  # valid: the reader upper-cases
        {"response_date": day, "survey": "NPS", "score": 2},  # valid
        {"response_date": day, "survey": "CSAT", "score": 6},  # off the 1..5 scale
        {"response_date": day, "survey": "CSAT", "score": 4.5},
        {"response_date": day, "survey": "CSAT", "score": 5},  # valid
        {"response_date": day, "survey": "CES", "score": 0},  # off the 1..7 scale
        {"response_date": day, "survey": "CES", "score": 8},
        {"response_date": day, "survey": "CES", "score": 6.5},
    ])  # fmt: skip
    mrr = tables["MRR"]
    paying = mrr[mrr["month"] == m]["customer_id"].tolist()
    early = m - pd.DateOffset(months=3)
    old = mrr.groupby("customer_id")["month"].min()
    veteran = next(c for c in paying if old[c] < early - pd.DateOffset(months=1))
    add("MRR", [
        {"customer_id": paying[0], "month": m, "mrr": -500.0},  # negative amount
        {"customer_id": None, "month": m, "mrr": 700.0},  # blank customer
        {"customer_id": paying[1], "month": None, "mrr": 300.0},  # blank month
        # text in MRR, three months back, for a customer who paid before then: whatever
        # the reader makes of it, month M and M - 1 do not depend on it
        {"customer_id": veteran, "month": early, "mrr": "n/a"},
    ])  # fmt: skip
    first = tables["Customers"].set_index("customer_id").loc[paying[2]]
    add("Customers", [
        # a second row for a paying customer's id: the reader keeps the first
        {"customer_id": first.name, "signup_date": m - pd.DateOffset(years=3)},
        {"customer_id": "C99990", "signup_date": None},  # blank signup: skipped
        # churn date before signup: the reader ignores the churn date (active by dates)
        {"customer_id": "C99991", "signup_date": m - pd.DateOffset(months=4),
         "churn_date": m - pd.DateOffset(months=6)},
        {"customer_id": "C99993", "signup_date": m - pd.DateOffset(months=3),
         "churn_date": m - pd.DateOffset(months=5)},
        {"customer_id": None, "signup_date": m - pd.DateOffset(months=4)},  # blank id
        # valid, without MRR: active by dates and lost in month M (so churn is not 0)
        {"customer_id": "C99992", "signup_date": m - pd.DateOffset(months=5),
         "churn_date": day},
    ])  # fmt: skip
    add("Tickets", [
        {"ticket_id": "T9991", "opened_date": day, "resolved_date": day, "contacts": -1},
        {"ticket_id": "T9992", "opened_date": None, "resolved_date": day, "contacts": 1},
        {"ticket_id": None, "opened_date": day, "resolved_date": day, "contacts": 1},
    ])  # fmt: skip
    add("Funnel", [{"month": m, "visitors": -100, "conversions": 5}])
    add("Costs", [
        {"month": m, "acquisition_cost": -1000.0, "retention_cost": 10.0},
        {"month": m, "acquisition_cost": 500.0, "retention_cost": -5.0},
    ])  # fmt: skip
    return t, m


@pytest.fixture(scope="module")
def dirty_recalculated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dirty")
    tables, m = _dirty(generate("tiny"))
    latest = build(tmp / "dirty.xlsx", tables)
    previous = _set(latest, tmp / "dirty_prev.xlsx", (m - pd.DateOffset(months=1)).date())
    empty = build(tmp / "empty.xlsx")
    outs = recalculate([latest, previous, empty], tmp / "out")
    return dict(zip(("latest", "previous", "empty"), outs, strict=True)), latest, m


def _summary_values(path):
    wb = openpyxl.load_workbook(path, data_only=True)
    return wb, {f.kpi_id: named_value(wb, f"kpi_{f.kpi_id}") for f in SUMMARY}


def test_summary_equals_the_engine_on_dirty_data(dirty_recalculated):
    outs, source, m = dirty_recalculated
    data = read(source)
    # The reader refused the dirty rows (so the engine leaves them out).
    problems = {(i.sheet, i.column) for i in data.issues}
    assert {("Surveys", "score"), ("MRR", "mrr"), ("Customers", "customer_id")} <= problems
    report = compute(data, breakdowns=False)
    wb, got = _summary_values(outs["latest"])
    assert pd.Timestamp(named_value(wb, "shown_month")) == m
    i = report.periods.index(m.strftime("%Y-%m"))
    for kpi_id, value in got.items():
        want = report.kpis[kpi_id][i]
        if math.isnan(want):
            assert value in (None, ""), (kpi_id, value)
        else:
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9), kpi_id
    # NPS by hand over the valid answers of month M: the sample's own plus "nps" 10 and 2
    # (11, 7.5, 9.5, "ten", the blank score and the blank date count nowhere).
    s = generate("tiny")["Surveys"]
    s = s[(s["survey"] == "NPS") & (s["response_date"].dt.to_period("M") == m.to_period("M"))]
    scores = [*s["score"].tolist(), 10, 2]
    by_hand = 100 * (sum(v >= 9 for v in scores) - sum(v <= 6 for v in scores)) / len(scores)
    assert got["nps"] == pytest.approx(by_hand, rel=1e-12)
    # The text cells ("ten", "n/a") are counted and said above the table.
    summary = wb[SUMMARY_SHEET]
    assert named_value(wb, "unreadable_cells") == 2
    assert summary["A5"].value.startswith("2 cells hold text where a number or date belongs")
    assert summary["A4"].value in (None, "")  # every MRR row's customer is in Customers


def test_summary_movements_obey_the_mrr_identity(dirty_recalculated):
    outs, _, _ = dirty_recalculated
    _, latest = _summary_values(outs["latest"])
    _, previous = _summary_values(outs["previous"])
    # MRR(M) = MRR(M - 1) + net new MRR(M), and net new is the sum of the movements.
    assert latest["mrr"] == pytest.approx(previous["mrr"] + latest["net_new_mrr"], rel=1e-12)
    movements = (
        latest["mrr_new"] + latest["mrr_reactivation"] + latest["mrr_expansion"]
        - latest["mrr_contraction"] - latest["mrr_churn"]
    )  # fmt: skip
    assert latest["net_new_mrr"] == pytest.approx(movements, rel=1e-12)


def test_empty_template_shows_blanks(dirty_recalculated):
    outs, _, _ = dirty_recalculated
    wb, got = _summary_values(outs["empty"])
    assert all(v in (None, "") for v in got.values()), got
    summary = wb[SUMMARY_SHEET]
    assert summary["B3"].value is None
    assert summary["C3"].value == "no data yet: fill the input Tables"
    assert summary["A4"].value in (None, "") and summary["A5"].value in (None, "")
    for row in summary.iter_rows():
        for cell in row:
            assert cell.data_type != "e", cell.coordinate
            assert not isinstance(cell.value, dt.datetime), cell.coordinate


def test_customers_older_than_the_data_are_active_at_the_first_month_start(tmp_path):
    # Three customers signed up in 2025 pay in January 2026, the first month with MRR
    # data; C stops paying in February.
    tables = {
        "Customers": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C"],
                "signup_date": pd.to_datetime(["2025-03-10", "2025-06-01", "2025-11-20"]),
            }
        ),
        "MRR": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C", "A", "B"],
                "month": pd.to_datetime(["2026-01-01"] * 3 + ["2026-02-01"] * 2),
                "mrr": [100.0, 200.0, 300.0, 100.0, 250.0],
            }
        ),
    }
    book = build(tmp_path / "old.xlsx", tables)
    january = _set(book, tmp_path / "jan.xlsx", dt.date(2026, 1, 15))
    outs = recalculate([january, book], tmp_path / "out")
    _, jan = _summary_values(outs[0])
    _, feb = _summary_values(outs[1])
    # January: all three were active at its start (they signed up before it and pay in
    # it), none left: churn 0 / 3 = 0, retention (3 - 0 new) / 3 = 1; MRR 600; the
    # movements are blank (the MRR before January is unknown).
    assert jan["customer_churn_rate"] == 0 and jan["customer_retention_rate"] == 1
    assert jan["mrr"] == 600 and jan["mrr_churn"] in (None, "")
    # February: C left: churn 1/3, retention (2 - 0)/3; MRR 350 = 600 + 50 expansion -
    # 300 churned.
    assert feb["customer_churn_rate"] == pytest.approx(1 / 3, rel=1e-12)
    assert feb["customer_retention_rate"] == pytest.approx(2 / 3, rel=1e-12)
    assert (feb["mrr"], feb["mrr_expansion"], feb["mrr_churn"], feb["net_new_mrr"]) == (
        350,
        50,
        300,
        -250,
    )
