"""Acceptance test of issue 11: right numbers on data shaped like real exports.

Written black-box against reference/kpi-definitions.md ("the definitions") and
reference/workbook-schema.md: the data set of tests/real_shaped.py goes through
`cxkpi kpis --format json`, as a CSV folder and as an .xlsx workbook, and every KPI of
every month, quarter and year is compared with an independent pandas computation written
here from the definitions, from the values the user meant (never from a parser).

Interpretations chosen where the definitions leave room (each cited where used):
- The first month with MRR data is 2026-01; customers 1001..1024 signed up in 2025 and pay
  in January, so they were active at its start (definitions, "Before the first month with
  MRR data ..."). The first period of every granularity (2026-01, 2026-Q1, 2026) has blank
  MRR movements, NRR, GRR and revenue churn (definitions: "The first period with data has
  no previous month: its movements are blank (NaN)"), but customer counts.
- 1010's March MRR is the error `#N/A`: "a cell that cannot be read is unknown, not zero:
  it must not create a churn or a reactivation, and the MRR identity must still hold". The
  interpretation chosen here, the one issue 11 gives as its example ("kept the previous
  month's MRR for 2026-03"), is to carry the previous month's MRR (500) into March. The
  unambiguous consequences are also tested on their own
  (test_an_unreadable_mrr_cell_is_unknown_not_zero).
- The data set is built so that the readings the definitions could leave open agree:
  customers with a churn date stop paying in that month, new customers pay from their
  signup month, and no customer active at a period's start churns and comes back inside
  that period (test_the_data_set_leaves_no_room_for_interpretation checks this), so
  "churned in the period" and "active at the start, not at the end" are the same.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cxkpi_xl.cli import main

from . import real_shaped as rs

GRANULARITIES = ["month", "quarter", "year"]
KINDS = ["csv", "xlsx", "csv-schema-form"]
PERIODS = {
    "month": {m: [m] for m in rs.MONTHS},
    "quarter": {"2026-Q1": rs.MONTHS[:3], "2026-Q2": rs.MONTHS[3:]},
    "year": {"2026": rs.MONTHS},
}
BEFORE = "2025-12"  # the month before the first month with MRR data


# --- the independent computation ------------------------------------------------------


def meant_mrr() -> pd.DataFrame:
    """MRR as meant: customers x months, 0 where there is no row; typed amounts as the user
    meant them; the unreadable cell carries the previous month's MRR (the interpretation
    chosen above of "unknown, not zero ... must not create a churn or a reactivation")."""
    frame = pd.DataFrame(0.0, index=list(rs.CUSTOMERS), columns=rs.MONTHS)
    for cid, cells in rs.MRR.items():
        for i, cell in enumerate(cells):
            if cell is None:
                continue
            if cell == rs.UNREADABLE:
                frame.loc[cid, rs.MONTHS[i]] = frame.loc[cid, rs.MONTHS[i - 1]]
            elif isinstance(cell, str):
                frame.loc[cid, rs.MONTHS[i]] = rs.TYPED_AMOUNTS[cell]
            else:
                frame.loc[cid, rs.MONTHS[i]] = float(cell)
    return frame


def month_end(month: str) -> dt.date:
    return (pd.Period(month, "M").end_time).date()


def active_at_month_end(mrr: pd.DataFrame) -> pd.DataFrame:
    """Customers x (2025-12 + months): active at the end of each month.

    Definitions: "A customer is active between signup_date and churn_date in the Customers
    table; where that table has no churn date and the MRR table has rows for the customer,
    activity follows MRR > 0." Every customer here has MRR rows. At the end of 2025-12
    (the start of the first month with data): "A customer whose signup_date is before that
    month and who pays in it was active at its start"."""
    first = dt.date(2026, 1, 1)
    rows = {}
    for cid, (signup, churn, _segment) in rs.CUSTOMERS.items():
        row = {BEFORE: signup < first and (churn is None or churn >= first)}
        row[BEFORE] = row[BEFORE] and mrr.loc[cid, rs.MONTHS[0]] > 0
        for m in rs.MONTHS:
            if churn is not None:
                row[m] = signup <= month_end(m) < churn
            else:
                row[m] = bool(mrr.loc[cid, m] > 0)
        rows[cid] = row
    return pd.DataFrame.from_dict(rows, orient="index")[[BEFORE, *rs.MONTHS]]


def movements(mrr: pd.DataFrame) -> dict[str, pd.Series]:
    """ChartMogul's five movements per month (definitions' table), summed over customers;
    the first month has no previous month, so it has none (NaN)."""
    out = {k: pd.Series(np.nan, index=rs.MONTHS) for k in ("new", "react", "exp", "con", "churn")}
    for i in range(1, len(rs.MONTHS)):
        prev, cur = mrr.iloc[:, i - 1], mrr.iloc[:, i]
        had_before = (mrr.iloc[:, :i] > 0).any(axis=1)
        m = rs.MONTHS[i]
        out["new"][m] = cur[(prev == 0) & (cur > 0) & ~had_before].sum()
        out["react"][m] = cur[(prev == 0) & (cur > 0) & had_before].sum()
        out["exp"][m] = (cur - prev)[(prev > 0) & (cur > prev)].sum()
        out["con"][m] = (prev - cur)[(cur > 0) & (cur < prev)].sum()
        out["churn"][m] = prev[(prev > 0) & (cur == 0)].sum()
    return out


def survey_scores(survey: str, low: int, high: int) -> pd.DataFrame:
    """Valid answers with their month: whole numbers on the scale. Blanks are ignored;
    text, out-of-scale and non-whole scores count nowhere (definitions, "Invalid values";
    issue 11 item 8)."""
    rows = []
    for _rid, _cid, day, kind, typed in rs.SURVEYS:
        if kind != survey or typed.strip() == "":
            continue
        try:
            score = float(typed)
        except ValueError:
            continue
        if score.is_integer() and low <= score <= high:
            rows.append((day.strftime("%Y-%m"), score))
    return pd.DataFrame(rows, columns=["month", "score"])


def expected_kpis(granularity: str) -> dict[str, dict[str, float]]:
    """{kpi id: {period label: value}}, NaN where the definitions say blank."""
    mrr = meant_mrr()
    active = active_at_month_end(mrr)
    moves = movements(mrr)
    nps_scores = survey_scores("NPS", 0, 10)
    csat_scores = survey_scores("CSAT", 1, 5)
    columns = [BEFORE, *rs.MONTHS]
    out: dict[str, dict[str, float]] = {}

    def put(kpi: str, period: str, value: float) -> None:
        out.setdefault(kpi, {})[period] = float(value)

    for period, months in PERIODS[granularity].items():
        first, last = months[0], months[-1]
        before = columns[columns.index(first) - 1]
        first_period = first == rs.MONTHS[0]

        # Customer counts: S active at the start, E at the end, N at the end but not at
        # the start; churned: active at the start and inactive at the end of some month of
        # the period (the same as S minus E on this data set, see the module docstring).
        s, e = active[before], active[last]
        churned = s & ~active[months].all(axis=1)
        put("customer_churn_rate", period, churned.sum() / s.sum())
        put("customer_retention_rate", period, (e.sum() - (e & ~s).sum()) / s.sum())

        put("mrr", period, mrr[last].sum())
        put("arpu", period, mrr[last].sum() / (mrr[last] > 0).sum())
        if first_period:
            for kpi in (
                "mrr_new mrr_reactivation mrr_expansion mrr_contraction mrr_churn "
                "net_new_mrr net_revenue_retention gross_revenue_retention "
                "revenue_churn_rate quick_ratio"
            ).split():
                put(kpi, period, np.nan)
        else:
            new, react, exp, con, churn = (moves[k][months].sum() for k in moves)
            put("mrr_new", period, new)
            put("mrr_reactivation", period, react)
            put("mrr_expansion", period, exp)
            put("mrr_contraction", period, con)
            put("mrr_churn", period, churn)
            put("net_new_mrr", period, new + react + exp - con - churn)
            put("quick_ratio", period, (new + react + exp) / (con + churn))
            start = mrr[before]
            cohort = start > 0  # paying at the period's start
            put("net_revenue_retention", period, mrr[last][cohort].sum() / start[cohort].sum())
            capped = np.minimum(mrr[last], start)[cohort].sum()
            put("gross_revenue_retention", period, capped / start[cohort].sum())
            put("revenue_churn_rate", period, (con + churn) / start.sum())

        nps = nps_scores[nps_scores.month.isin(months)].score
        put("nps", period, 100 * ((nps >= 9).mean() - (nps <= 6).mean()))
        csat = csat_scores[csat_scores.month.isin(months)].score
        put("csat", period, (csat >= 4).mean())
    return out


# --- running the product as a user does -----------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real_shaped")
    return {
        "csv": rs.write_csv(root / "export"),
        "xlsx": rs.write_xlsx(root / "export.xlsx"),
        # The same data in the schema's own form: tells engine failures from reader ones.
        "csv-schema-form": rs.write_csv(root / "plain", exported=False),
    }


@pytest.fixture(scope="module")
def outputs(sources) -> dict[tuple[str, str], dict]:
    """`cxkpi kpis SOURCE --format json --set granularity=G` for both sources and every
    granularity, run once per module (the JSON as parsed, or the failure as text)."""
    out = {}
    for kind, path in sources.items():
        for g in GRANULARITIES:
            args = ["kpis", str(path), "--format", "json", "--set", f"granularity={g}"]
            result = CliRunner().invoke(main, args)
            if result.exit_code != 0 or result.exception is not None:
                out[kind, g] = {"error": f"exit {result.exit_code}: {result.output[-2000:]}"}
            else:
                out[kind, g] = json.loads(result.stdout)
    return out


def run(outputs, kind: str, granularity: str) -> dict:
    out = outputs[kind, granularity]
    assert "error" not in out, out.get("error")
    return out


def value(out: dict, kpi: str, period: str) -> float:
    """The product's value of one KPI in one period (NaN for null)."""
    assert period in out["periods"], f"no period {period} in the output {out['periods']}"
    v = out["kpis"][kpi][out["periods"].index(period)]
    return math.nan if v is None else float(v)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --- the tests --------------------------------------------------------------------------


def test_the_data_set_leaves_no_room_for_interpretation():
    """Guards the fixture: where two readings of the definitions could differ, the data
    set makes them agree, so the acceptance test asserts only what is unambiguous."""
    mrr = meant_mrr()
    active = active_at_month_end(mrr)
    for cid, (signup, churn, _segment) in rs.CUSTOMERS.items():
        pays = mrr.loc[cid] > 0
        # Activity by dates and activity by MRR agree for customers with a churn date.
        if churn is not None:
            assert list(active.loc[cid, rs.MONTHS]) == list(pays), cid
        # Customers pay from their signup month (or from January if they signed up before).
        first_paid = pays.idxmax()
        assert first_paid == max(signup.strftime("%Y-%m"), rs.MONTHS[0]), cid
    # No customer active at a period's start leaves and comes back inside that period.
    columns = [BEFORE, *rs.MONTHS]
    for g in GRANULARITIES:
        for months in PERIODS[g].values():
            s = active[columns[columns.index(months[0]) - 1]]
            left = s & ~active[months].all(axis=1)
            assert not (left & active[months[-1]]).any(), (g, months)
    # Every MRR identity holds on the expected values themselves.
    for g in GRANULARITIES:
        exp = expected_kpis(g)
        labels = list(PERIODS[g])
        for prev, cur in itertools.pairwise(labels):
            assert same(exp["mrr"][cur], exp["mrr"][prev] + exp["net_new_mrr"][cur])


def test_expected_values_worked_by_hand():
    """A few headline numbers of the independent computation, worked out by hand from the
    table in tests/real_shaped.py, so the expected values are checked twice."""
    month, quarter, year = (expected_kpis(g) for g in GRANULARITIES)
    churn = "customer_churn_rate"
    # Q1: 24 customers (1001..1024) active at the start of January; 1005 churned in Feb
    # (churn date 17/02/2026); 1025 churned in March but joined in January -> 1/24 = 4.2 %.
    assert quarter[churn]["2026-Q1"] == 1 / 24
    # Q2: active at the start of April: the 23 of 1001..1024 left, 1026 and 1027 = 25
    # (1025 paid nothing in March); churned: 1012 (MRR 0 in May), 1027 (churn date
    # 22/05/2026), 1018 (no June row) -> 3/25 = 12 %.
    assert quarter[churn]["2026-Q2"] == 3 / 25
    # 2026: 24 at the start; 1005, 1012, 1018 churned -> 3/24 = 12.5 %.
    assert year[churn]["2026"] == 3 / 24
    # Retention is 1 - churn under the start convention (definitions, customer_retention_rate).
    assert year["customer_retention_rate"]["2026"] == 21 / 24
    # March: 25 active at the start (23 + 1025 + 1026); only 1025 churned; 1010's #N/A is
    # no churn -> 1/25.
    assert month[churn]["2026-03"] == 1 / 25
    # January: nobody churned; 1025 joined: CRR = (25 - 1) / 24 = 1.
    assert month[churn]["2026-01"] == 0 and month["customer_retention_rate"]["2026-01"] == 1
    # MRR at the end of January: 1001..1024 = 7,395 (100+100+200+90+300+250+1000+80+1800
    # +500+400+150+60+120+75+300+95+220+130+500+45+600+110+170) plus 1025's 200 = 7,595.
    assert month["mrr"]["2026-01"] == 7595
    # February: 1005 churns (300), 1026 is new (150): 7,595 - 300 + 150 = 7,445.
    assert month["mrr"]["2026-02"] == 7445
    # March movements: new 300 (1027); expansion 50 (1002) + 200.50 (1007, typed
    # "1,200.50") = 250.50; contraction 50 (1016); churn 200 (1025 only: 1010's #N/A is not
    # a churn); net 300 + 250.50 - 50 - 200 = 300.50; MRR 7,445 + 300.50 = 7,745.50.
    assert month["mrr_churn"]["2026-03"] == 200 and month["mrr_reactivation"]["2026-04"] == 0
    assert month["mrr_expansion"]["2026-03"] == 250.5
    assert month["net_new_mrr"]["2026-03"] == 300.5 and month["mrr"]["2026-03"] == 7745.5
    # May: 1025 comes back with 250 (the one reactivation); 1009's "$2,000" is +200.
    assert month["mrr_reactivation"]["2026-05"] == 250 and month["mrr_expansion"]["2026-05"] == 200
    # Q2 movements (Apr+May+Jun): new 400+90+350 = 840, reactivation 250, expansion
    # 60+200+30+150 = 440, contraction 50+150+150 = 350, churn 150+300+220 = 670,
    # net 510; MRR end of June = 7,745.50 + 510 = 8,255.50.
    assert quarter["net_new_mrr"]["2026-Q2"] == 510
    assert quarter["mrr"]["2026-Q2"] == 8255.5 == quarter["mrr"]["2026-Q1"] + 510
    # Q2 NRR: the cohort paying in March (all of March's 7,745.50); in June it pays
    # 8,255.50 minus those outside it (1028 400, 1029 90, 1030 350, 1025 250) = 7,165.50
    # -> 7,165.50 / 7,745.50 = 0.92512...
    assert quarter["net_revenue_retention"]["2026-Q2"] == 7165.5 / 7745.5
    # Q2 GRR: the cohort's start minus its contraction 350 and churn 670, expansion capped:
    # 7,745.50 - 350 - 670 = 6,725.50 -> 0.86831...
    assert quarter["gross_revenue_retention"]["2026-Q2"] == 6725.5 / 7745.5
    # The first period of every granularity has blank movements (definitions).
    assert math.isnan(quarter["mrr_new"]["2026-Q1"]) and math.isnan(year["net_new_mrr"]["2026"])
    # NPS Q1: valid answers Jan 10 9 7 3 10 8, Feb 9 6 10 8 (11 left out), Mar 10 5 9 0 7
    # (7.5 left out): 15 answers, 7 promoters, 4 detractors -> (7 - 4) / 15 = 20.0 points.
    assert quarter["nps"]["2026-Q1"] == pytest.approx(20.0)
    # NPS 2026: 31 valid answers ("ten" and the blank also left out), 16 promoters, 8
    # detractors -> 8 / 31 * 100 = 25.806...
    assert year["nps"]["2026"] == pytest.approx(800 / 31)
    # CSAT March: 4 and 5 count, the 6 is outside 1..5 -> 2/2 = 1.
    assert month["csat"]["2026-03"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_periods_are_the_months_with_data(outputs, kind):
    """2026-01 is the first month of data although customers signed up in 2025 (issue 11:
    "signed up in 2025 pay in January 2026, the first month of data")."""
    for g in GRANULARITIES:
        assert run(outputs, kind, g)["periods"] == list(PERIODS[g]), g


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kpi_matches_the_independent_computation(outputs, kind, granularity):
    out = run(outputs, kind, granularity)
    expected = expected_kpis(granularity)
    missing = [p for p in PERIODS[granularity] if p not in out["periods"]]
    assert not missing, f"periods {missing} missing from the output {out['periods']}"
    wrong = []
    for kpi, by_period in expected.items():
        for period, want in by_period.items():
            if kpi not in out["kpis"]:
                wrong.append(f"{kpi}: missing from the output")
                break
            got = value(out, kpi, period)
            if not same(got, want):
                wrong.append(f"{kpi} {period}: got {got!r}, expected {want!r}")
    assert not wrong, f"{len(wrong)} wrong:\n" + "\n".join(wrong)


@pytest.mark.parametrize("kind", KINDS)
def test_headline_numbers(outputs, kind):
    """The numbers issue 11 found wrong, with their worked answers."""
    quarter, year = run(outputs, kind, "quarter"), run(outputs, kind, "year")
    # 1 of the 24 customers active at the start of January churned in Q1 -> 1/24 = 4.2 %
    # (not 33.3 %).
    assert same(value(quarter, "customer_churn_rate", "2026-Q1"), 1 / 24)
    # 3 of those 24 churned in 2026 -> 3/24 = 12.5 % (not 100 %).
    assert same(value(year, "customer_churn_rate", "2026"), 3 / 24)
    assert same(value(year, "customer_retention_rate", "2026"), 21 / 24)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreadable_mrr_cell_is_unknown_not_zero(outputs, kind):
    """1010 pays 500 in February, `#N/A` in March, 500 in April. Whatever is done with the
    unknown cell, it creates no churn and no reactivation (definitions), and the identity
    MRR(end) = MRR(start) + net_new_mrr holds in every period (issue 11 item 4)."""
    month = run(outputs, kind, "month")
    # March churn: only 1025 (200); April reactivation: none.
    assert same(value(month, "mrr_churn", "2026-03"), 200)
    assert same(value(month, "mrr_reactivation", "2026-04"), 0)
    # March customer churn: one (1025), not two; of 25 active at the start, or of 24 if
    # 1010 is left out of March's counts as unknown (either reading keeps "no churn").
    march = value(month, "customer_churn_rate", "2026-03")
    assert same(march, 1 / 25) or same(march, 1 / 24), march
    for g in GRANULARITIES:
        out = run(outputs, kind, g)
        labels = out["periods"]
        for prev, cur in itertools.pairwise(labels):
            start, end = value(out, "mrr", prev), value(out, "mrr", cur)
            assert same(end, start + value(out, "net_new_mrr", cur)), (g, cur)


# Where the dirty cells are: (table, spreadsheet row, column, value as typed).
def dirty_cells() -> list[tuple[str, int, str, str]]:
    cells = [
        ("Surveys", i + 2, "score", typed)
        for i, (rid, *_, typed) in enumerate(rs.SURVEYS)
        # NPS 11 (outside 0..10), NPS 7.5 (not whole), NPS "ten", CSAT 6 (outside 1..5)
        if rid in {"R013", "R018", "R028", "R024"}
    ]
    cells += [
        ("MRR", i + 2, "mrr", typed)
        for i, (*_, typed) in enumerate(rs.mrr_rows())
        if typed == rs.UNREADABLE
    ]
    assert len(cells) == 5
    return cells


def norm(name: object) -> str:
    """A table or column name as the schema matches it: case, spaces, underscores and
    hyphens ignored (issue 11 item 3); a file name's extension dropped."""
    text = Path(str(name)).stem if str(name).lower().endswith(".csv") else str(name)
    return "".join(c for c in text.lower() if c.isalnum())


@pytest.mark.parametrize("kind", KINDS)
def test_issues_name_every_dirty_cell_as_typed(outputs, kind):
    """Issue 11 item 7: the JSON gains "issues": [{"table", "row", "column", "value",
    "problem", "action"}], values as the user typed them ("11", never np.float64(11.0))."""
    out = run(outputs, kind, "month")
    assert isinstance(out.get("issues"), list), "no issues list in the JSON"
    keys = {"table", "row", "column", "value", "problem", "action"}
    for issue in out["issues"]:
        assert set(issue) >= keys, issue
        assert "np." not in str(issue["problem"]) and "nan" not in str(issue["value"]).lower()
    for table, row, column, typed in dirty_cells():
        found = [
            i
            for i in out["issues"]
            if norm(i["table"]) == norm(table)
            and str(i["row"]) == str(row)
            and norm(i["column"]) == column
        ]
        assert len(found) == 1, (table, row, column, typed, out["issues"])
        issue = found[0]
        assert str(issue["value"]) == typed, issue
        assert issue["problem"] and issue["action"], issue
        # If the message names the value, it names it as typed (11, not 11.0).
        assert f"{typed}.0" not in issue["problem"], issue


def write_worked_example(folder: Path, by: str) -> Path:
    """The definitions' example: three customers signed up in 2025 pay in January 2026,
    the first month of data; one churns in February, by its churn date or by its MRR."""
    folder.mkdir()
    churn = "2026-02-10" if by == "churn_date" else ""
    (folder / "Customers.csv").write_text(
        f"customer_id,signup_date,churn_date\nA,2025-03-10,\nB,2025-06-20,{churn}\nC,2025-09-05,\n"
    )
    (folder / "MRR.csv").write_text(
        "customer_id,month,mrr\n"
        "A,2026-01-01,100\nB,2026-01-01,100\nC,2026-01-01,100\n"
        "A,2026-02-01,100\nC,2026-02-01,100\n"
        "A,2026-03-01,100\nC,2026-03-01,100\n"
    )
    return folder


@pytest.mark.parametrize("by", ["churn_date", "mrr"])
def test_the_definitions_example(tmp_path, by):
    folder = write_worked_example(tmp_path / by, by)
    got = {}
    for g in GRANULARITIES:
        args = ["kpis", str(folder), "--format", "json", "--set", f"granularity={g}"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        got[g] = json.loads(result.stdout)
    # Q1 and 2026 customer churn are both 1/3 (B, of A, B, C active at the start).
    assert same(value(got["quarter"], "customer_churn_rate", "2026-Q1"), 1 / 3)
    assert same(value(got["year"], "customer_churn_rate", "2026"), 1 / 3)
    # By month: January 0/3, February 1/3 (B), March 0/2.
    churn = got["month"]["kpis"]["customer_churn_rate"]
    assert got["month"]["periods"] == ["2026-01", "2026-02", "2026-03"]
    assert churn == pytest.approx([0, 1 / 3, 0])
    # The first month's movements are blank, not "all new" (definitions).
    assert got["month"]["kpis"]["mrr_new"][0] is None
