"""Thirty customers over six months, shaped like an export: most signed up before the first
month with MRR data, some leave by a churn date and some by their MRR stopping, one comes
back, one grows, one shrinks, and one MRR cell cannot be read. The engine's customer churn,
retention, MRR movements, NRR and GRR are compared, for every period of every granularity,
with a plain implementation of kpi-definitions.md written here (no engine helpers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxkpi_xl.engine import compute
from cxkpi_xl.reader import read

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]

# customer: (signup_date, churn_date, MRR Jan..Jun; None = no row, "#N/A" = unreadable)
SPECIAL = {
    "C03": ("2025-04-11", "2026-02-14", [90, None, None, None, None, None]),  # date, Feb
    "C05": ("2025-05-02", None, [150, 150, 150, None, None, None]),  # MRR stops, Apr
    "C07": ("2025-02-20", "2026-05-03", [60, 60, 60, 60, None, None]),  # date, May
    "C09": ("2025-08-30", None, [70, 70, 70, 70, 0, None]),  # MRR row of 0, May
    "C11": ("2025-03-15", None, [40, 40, None, 45, 45, 45]),  # gone Mar, back Apr
    "C13": ("2025-06-01", None, [100, 100, 150, 150, 150, 150]),  # expansion Mar
    "C15": ("2025-07-07", None, [200, 200, 200, 120, 120, 120]),  # contraction Apr
    "C17": ("2025-09-09", None, [80, 80, 80, 80, "#N/A", 80]),  # unreadable May
    "C19": ("2025-10-01", "2026-01-20", [55, None, None, None, None, None]),  # date, Jan
    "C22": ("2025-11-20", None, [None, 35, 35, 35, 35, 35]),  # signed up 2025, pays Feb
    "C25": ("2026-02-10", None, [None, 75, 75, 75, 75, 75]),
    "C26": ("2026-03-05", None, [None, None, 65, 65, 65, 65]),
    "C27": ("2026-03-20", "2026-06-10", [None, None, 30, 30, 30, None]),  # date, Jun
    "C28": ("2026-04-02", None, [None, None, None, 95, 95, 95]),
    "C29": ("2026-05-15", None, [None, None, None, None, 20, 50]),  # expansion Jun
    "C30": ("2026-01-10", None, [110, 110, 110, 110, 110, 110]),  # signed up in Jan
}


def _dataset() -> dict[str, tuple[str, str | None, list]]:
    out = {}
    for i in range(1, 31):
        c = f"C{i:02d}"
        plain = (f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}", None, [25.5 * (1 + i % 5)] * 6)
        out[c] = SPECIAL.get(c, plain)
    return out


DATA = _dataset()


def _tables() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": list(DATA),
            "signup_date": [s for s, _, _ in DATA.values()],
            "churn_date": [c for _, c, _ in DATA.values()],
        }
    )
    rows = [
        (c, f"{m}-01", v)
        for c, (_, _, values) in DATA.items()
        for m, v in zip(MONTHS, values, strict=True)
        if v is not None
    ]
    mrr = pd.DataFrame(rows, columns=["customer_id", "month", "mrr"])
    return {"Customers": customers, "MRR": mrr}


# --- the definitions, written out plainly ------------------------------------------------
# Month t: 0 is December 2025 (before the data: nobody's MRR known), 1..6 January..June.


def _month(date: str) -> int:
    year, month = int(date[:4]), int(date[5:7])
    return (year - 2025) * 12 + month - 12


def _mrr() -> dict[str, list[float]]:
    """MRR by customer and month; an unreadable cell keeps the previous month's MRR."""
    out = {}
    for c, (_, _, values) in DATA.items():
        row = [0.0]
        for v in values:
            row.append(row[-1] if isinstance(v, str) else float(v or 0))
        out[c] = row
    return out


MRR = _mrr()


def _active(c: str, t: int) -> bool:
    signup, churn, values = DATA[c]
    s = _month(signup)
    if churn is not None or all(v is None for v in values):
        return s <= t < _month(churn) if churn else s <= t
    if t == 0:  # before the first month with MRR data: signed up before, pays in January
        return s <= 0 and MRR[c][1] > 0
    return MRR[c][t] > 0


def _movement(c: str, t: int) -> tuple[str, float] | None:
    prev, cur = MRR[c][t - 1], MRR[c][t]
    paid_before = any(MRR[c][u] > 0 for u in range(1, t))
    if prev == 0 and cur > 0:
        return ("mrr_reactivation" if paid_before else "mrr_new", cur)
    if prev > 0 and cur == 0:
        return ("mrr_churn", prev)
    if 0 < prev < cur:
        return ("mrr_expansion", cur - prev)
    if 0 < cur < prev:
        return ("mrr_contraction", prev - cur)
    return None


def expected(a: int, b: int) -> dict[str, float]:
    """Every compared KPI of the period of months a..b."""
    out: dict[str, float] = {"mrr": sum(MRR[c][b] for c in DATA)}
    start = {c for c in DATA if _active(c, a - 1)}
    end = {c for c in DATA if _active(c, b)}
    out["customer_churn_rate"] = len(start - end) / len(start)
    out["customer_retention_rate"] = len(start & end) / len(start)  # (E - N) / S
    names = ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")
    if a == 1:  # the first month has no previous month: MRR figures blank
        for name in (*names, "net_new_mrr", "net_revenue_retention"):
            out[name] = math.nan
        out["gross_revenue_retention"] = out["revenue_churn_rate"] = math.nan
        return out
    sums = dict.fromkeys(names, 0.0)
    for t in range(a, b + 1):
        for c in DATA:
            move = _movement(c, t)
            if move:
                sums[move[0]] += move[1]
    out.update(sums)
    out["net_new_mrr"] = (sums["mrr_new"] + sums["mrr_reactivation"] + sums["mrr_expansion"]) - (
        sums["mrr_contraction"] + sums["mrr_churn"]
    )
    cohort = [c for c in DATA if MRR[c][a - 1] > 0]
    s = sum(MRR[c][a - 1] for c in cohort)
    out["net_revenue_retention"] = sum(MRR[c][b] for c in cohort) / s
    out["gross_revenue_retention"] = sum(min(MRR[c][b], MRR[c][a - 1]) for c in cohort) / s
    out["revenue_churn_rate"] = (sums["mrr_contraction"] + sums["mrr_churn"]) / sum(
        MRR[c][a - 1] for c in DATA
    )
    return out


PERIODS = {
    "month": [(m, (t, t)) for t, m in enumerate(MONTHS, 1)],
    "quarter": [("2026-Q1", (1, 3)), ("2026-Q2", (4, 6))],
    "year": [("2026", (1, 6))],
}


@pytest.mark.parametrize("granularity", ["month", "quarter", "year"])
def test_engine_matches_the_definitions_on_real_shaped_data(granularity):
    report = compute(read(_tables(), {"granularity": granularity}), breakdowns=False)
    assert report.periods == [p for p, _ in PERIODS[granularity]]
    for i, (label, (a, b)) in enumerate(PERIODS[granularity]):
        for kpi, want in expected(a, b).items():
            got = report.kpis[kpi][i]
            if math.isnan(want):
                assert math.isnan(got), (label, kpi, got)
            else:
                assert got == pytest.approx(want, rel=1e-12), (label, kpi)


def test_the_headline_numbers_by_hand():
    # At the end of December 2025: C01..C24 but C22 (who first pays in February): 23.
    # Lost in Q1: C19 (Jan, by date), C03 (Feb, by date), C11 (no MRR in March): 3 / 23.
    # Lost in 2026: C19, C03, C05 (Apr), C07 (May, by date), C09 (MRR 0 in May); C11 is
    # back by June: 5 / 23.
    q = compute(read(_tables(), {"granularity": "quarter"}), breakdowns=False).kpis
    y = compute(read(_tables(), {"granularity": "year"}), breakdowns=False).kpis
    assert q["customer_churn_rate"][0] == pytest.approx(3 / 23)
    assert y["customer_churn_rate"][0] == pytest.approx(5 / 23)
    m = compute(read(_tables()), breakdowns=False)
    # January: C19 alone of the 23 leaves (its churn date).
    assert m.kpis["customer_churn_rate"][0] == pytest.approx(1 / 23)
    # May: C17's unreadable cell keeps April's 80: no churn and no reactivation from it.
    # Churned MRR in May: C07 60 + C09 70; June reactivations: none.
    assert m.kpis["mrr_churn"][4] == 130.0 and m.kpis["mrr_reactivation"][5] == 0.0
    # April: C11 returns with 45.
    assert m.kpis["mrr_reactivation"][3] == 45.0
    [issue] = m.issues
    mrr = _tables()["MRR"]
    at = mrr.index[(mrr["customer_id"] == "C17") & (mrr["month"] == "2026-05-01")][0]
    assert issue.row == at + 2  # the header is row 1
    assert issue.value == "#N/A"
    assert issue.action == "kept the previous month's MRR for 2026-05"


# --- unreadable cells where the truth is known --------------------------------------------
# A customer paying the same amount every month of a span: whichever of its cells cannot
# be read (not all of them), the previous or next month's MRR is that amount, so every
# KPI must be what the clean table gives.

spans = st.lists(
    st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5000), st.randoms()),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(spans)
def test_unreadable_cells_of_a_steady_customer_change_nothing(customers):
    clean, dirty = [], []
    for i, (a, b, cents, rnd) in enumerate(customers):
        first, last = min(a, b), max(a, b)
        months = list(range(first, last + 1))
        lost = set(rnd.sample(months, rnd.randint(0, len(months) - 1)))
        for t in months:
            row = (f"K{i}", MONTHS[t - 1], cents / 100)
            clean.append(row)
            dirty.append((*row[:2], "#N/A") if t in lost else row)
    frames = [pd.DataFrame(r, columns=["customer_id", "month", "mrr"]) for r in (clean, dirty)]
    want, got = (compute(read({"MRR": f}), breakdowns=False) for f in frames)
    assert got.periods == want.periods
    for kpi, values in want.kpis.items():
        np.testing.assert_array_equal(got.kpis[kpi], values, err_msg=kpi)
