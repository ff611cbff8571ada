"""MRR from invoice lines (``data/invoices.py``): known answers worked by hand, each with
the MRR movements that follow from it.

Every case runs the real path: DataFrames -> ``read`` (validation from the schema) ->
``mrr_from_invoices`` -> the period engine. An anchor customer ``z`` pays 10 a month
from 2025-12 to 2027-03 in every case, so the report's months cover each case's churn
month and its movements add nothing after its first month (its new MRR is in 2025-12).
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from cxkpi_xl.data.invoices import mrr_from_invoices
from cxkpi_xl.data.reader import read
from cxkpi_xl.engine.assemble import compute

MOVES = ("mrr", "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")


def _line(customer: str, start: str, end: str, amount: float, **kw: Any) -> dict[str, Any]:
    return {
        "invoice_id": kw.pop("invoice_id", f"in_{customer}_{start}"),
        "customer_id": customer,
        "kind": kw.pop("kind", "subscription"),
        "service_start": start,
        "service_end": end,
        "amount": amount,
        **kw,
    }


def _anchor() -> list[dict[str, Any]]:
    months = pd.date_range("2025-12-01", "2027-04-01", freq="MS")
    return [
        _line("z", str(a.date()), str(b.date()), 10.0, interval_months=1)
        for a, b in itertools.pairwise(months)
    ]


def _data(lines: list[dict[str, Any]], settings: dict[str, Any] | None = None, fx=None):
    tables: dict[str, Any] = {"Invoices": pd.DataFrame(_anchor() + lines)}
    if fx is not None:
        tables["FX"] = pd.DataFrame(fx, columns=["month", "currency", "rate"])
    tables["Settings"] = settings or {}
    return read(tables)


def _mrr(data, customer: str = "a") -> dict[str, float]:
    mrr = data.tables["MRR"]
    mine = mrr[mrr["customer_id"] == customer]
    return {f"{m:%Y-%m}": v for m, v in zip(mine["month"], mine["mrr"], strict=True)}


def _moves(data) -> pd.DataFrame:
    """The movements of every month less the anchor's (10 MRR, new in 2025-12 only)."""
    report = compute(data, breakdowns=False)
    frame = pd.DataFrame({m: report.kpis[m] for m in MOVES}, index=report.periods)
    frame["mrr"] -= 10
    return frame.loc["2026-01":]


def _nonzero(moves: pd.DataFrame) -> dict[tuple[str, str], float]:
    """{(month, movement): amount} of the movements that are not 0 (MRR left out)."""
    out = {}
    for month, row in moves.drop(columns="mrr").iterrows():
        for name, v in row.items():
            if v:
                out[(month, name)] = round(float(v), 2)
    return out


def _months(first: str, last: str) -> list[str]:
    return [f"{m:%Y-%m}" for m in pd.date_range(first, last, freq="MS")]


def test_monthly_plan():
    # 49 a month, billed Feb, Mar, Apr (Feb 1 - Mar 1 and so on): 49 in each month;
    # new 49 in Feb; the last period ends May 1, so May has no MRR: churn 49 in May.
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 49.0, interval_months=1),
        _line("a", "2026-03-01", "2026-04-01", 49.0, interval_months=1),
        _line("a", "2026-04-01", "2026-05-01", 49.0, interval_months=1),
    ]
    data = _data(lines)
    assert _mrr(data) == {"2026-02": 49.0, "2026-03": 49.0, "2026-04": 49.0}
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 49.0,
        ("2026-05", "mrr_churn"): 49.0,
    }


def test_annual_plan_is_spread_over_twelve_months():
    # 1,200 for Feb 1 2026 - Feb 1 2027 at a 12-month interval: 1200 / 12 = 100 in each
    # of the 12 months Feb 2026 .. Jan 2027; new 100 in Feb, churn 100 in Feb 2027.
    data = _data([_line("a", "2026-02-01", "2027-02-01", 1200.0, interval_months=12)])
    assert _mrr(data) == dict.fromkeys(_months("2026-02-01", "2027-01-01"), 100.0)
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 100.0,
        ("2027-02", "mrr_churn"): 100.0,
    }


def test_quarterly_plan_with_the_interval_from_the_period():
    # 270 for Feb 1 - May 1 with interval_months blank: 89 days / 30.44 = 2.92, rounded
    # to 3 months: 270 / 3 = 90 in Feb, Mar, Apr.
    data = _data([_line("a", "2026-02-01", "2026-05-01", 270.0)])
    assert _mrr(data) == dict.fromkeys(_months("2026-02-01", "2026-04-01"), 90.0)
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 90.0,
        ("2026-05", "mrr_churn"): 90.0,
    }


def test_tax_inside_the_amount_is_left_out():
    # 120 charged of which 20 is VAT: MRR 120 - 20 = 100.
    data = _data([_line("a", "2026-02-01", "2026-03-01", 120.0, tax=20.0, interval_months=1)])
    assert _mrr(data) == {"2026-02": 100.0}


def test_one_time_setup_fee_is_no_mrr():
    # A 500 setup fee beside a 100 monthly line: MRR 100. A customer with only a setup
    # fee (b) has no MRR at all and makes no movement.
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 100.0, interval_months=1),
        _line("a", "2026-02-01", "2026-02-01", 500.0, kind="one_time", invoice_id="in_fee"),
        _line("b", "2026-02-01", "2026-03-01", 500.0, kind="one_time"),
    ]
    data = _data(lines)
    assert _mrr(data) == {"2026-02": 100.0}
    assert _mrr(data, "b") == {}
    assert _nonzero(_moves(data))[("2026-02", "mrr_new")] == 100.0


@pytest.mark.parametrize(("include", "expected"), [("No", 100.0), ("Yes", 130.0)])
def test_metered_usage_counts_only_when_included(include, expected):
    # 100 licensed plus 30 of metered usage for February: 100, or 130 with usage.
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 100.0, interval_months=1),
        _line("a", "2026-02-01", "2026-03-01", 30.0, kind="usage", invoice_id="in_use"),
    ]
    data = _data(lines, {"include_usage": include})
    assert _mrr(data) == {"2026-02": expected}
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): expected,
        ("2026-03", "mrr_churn"): expected,
    }


def test_forever_discount_of_20_percent():
    # A 100 plan with a 20 % forever coupon is charged 80 every month: MRR 80 (ChartMogul
    # deducts every discount), flat: no contraction or expansion while it lasts.
    lines = [
        _line("a", f"2026-{m:02d}-01", f"2026-{m + 1:02d}-01", 80.0, interval_months=1)
        for m in (2, 3, 4)
    ]
    data = _data(lines)
    assert _mrr(data) == dict.fromkeys(_months("2026-02-01", "2026-04-01"), 80.0)
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 80.0,
        ("2026-05", "mrr_churn"): 80.0,
    }


def test_mid_month_upgrade_billed_stripe_style():
    # 50 a month, billed on the 1st from Jan 1. On Jan 15 the customer upgrades to 100:
    # Stripe bills the 17 unused days of Jan 15 - Feb 1 (of 31) as a credit
    # -50 * 17/31 = -27.42 and the new plan's 17 days as 100 * 17/31 = 54.84, both
    # prorated. Prorate factor 31 / 17 (full month Jan 1 - Feb 1 over Jan 15 - Feb 1):
    # January = 50 - 27.42 * 31/17 + 54.84 * 31/17 = 50 - 50.0012 + 100.0024 = 100.00.
    # February's regular charge is 100. Dec 2025 was 50: expansion 50 in January.
    lines = [
        _line("a", "2025-12-01", "2026-01-01", 50.0, interval_months=1),
        _line("a", "2026-01-01", "2026-02-01", 50.0, interval_months=1),
        _line("a", "2026-01-15", "2026-02-01", -27.42, kind="credit", prorated="Yes",
              interval_months=1, invoice_id="in_up"),
        _line("a", "2026-01-15", "2026-02-01", 54.84, prorated="Yes", interval_months=1,
              invoice_id="in_up2"),
        _line("a", "2026-02-01", "2026-03-01", 100.0, interval_months=1),
    ]  # fmt: skip
    data = _data(lines)
    assert _mrr(data) == {"2025-12": 50.0, "2026-01": 100.0, "2026-02": 100.0}
    assert _nonzero(_moves(data)) == {
        ("2026-01", "mrr_expansion"): 50.0,
        ("2026-03", "mrr_churn"): 100.0,
    }


def test_cancellation_mid_month_churns_in_the_month_the_last_period_ends():
    # 40 a month billed on the 15th: Feb 15 - Mar 15 covers Feb 28, Mar 15 - Apr 15
    # covers Mar 31; the last period ends Apr 15 and does not cover Apr 30: churn 40 in
    # April.
    lines = [
        _line("a", "2026-02-15", "2026-03-15", 40.0, interval_months=1),
        _line("a", "2026-03-15", "2026-04-15", 40.0, interval_months=1),
    ]
    data = _data(lines)
    assert _mrr(data) == {"2026-02": 40.0, "2026-03": 40.0}
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 40.0,
        ("2026-04", "mrr_churn"): 40.0,
    }


def test_reactivation():
    # 60 for February, nothing for March, 60 again from April: churn 60 in March,
    # reactivation 60 in April (not new: the customer paid before).
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 60.0, interval_months=1),
        _line("a", "2026-04-01", "2026-05-01", 60.0, interval_months=1),
    ]
    data = _data(lines)
    assert _mrr(data) == {"2026-02": 60.0, "2026-04": 60.0}
    assert _nonzero(_moves(data)) == {
        ("2026-02", "mrr_new"): 60.0,
        ("2026-03", "mrr_churn"): 60.0,
        ("2026-04", "mrr_reactivation"): 60.0,
        ("2026-05", "mrr_churn"): 60.0,
    }


def test_eur_customer_at_the_rate_of_the_service_start_month():
    # Report in USD. An annual EUR plan of 1,200 from Feb 2026 at February's rate 1.10:
    # 1200 / 12 * 1.10 = 110 USD a month, held for the whole year although the rate is
    # 1.20 from March: the rate move makes no movement. A monthly EUR line for March at
    # 50 converts at March's rate (1.20) = 60; one for May uses the latest earlier rate
    # (April's 1.25) = 62.50.
    fx = [("2026-02", "EUR", 1.10), ("2026-03", "eur", 1.20), ("2026-04", "EUR", 1.25)]
    lines = [
        _line("a", "2026-02-01", "2027-02-01", 1200.0, currency="EUR", interval_months=12),
        _line("b", "2026-03-01", "2026-04-01", 50.0, currency="EUR", interval_months=1),
        _line("c", "2026-05-01", "2026-06-01", 50.0, currency="eur", interval_months=1),
    ]
    data = _data(lines, {"currency": "USD"}, fx)
    assert _mrr(data) == dict.fromkeys(_months("2026-02-01", "2027-01-01"), 110.0)
    assert _mrr(data, "b") == {"2026-03": 60.0}
    assert _mrr(data, "c") == {"2026-05": 62.5}
    moves = _nonzero(_moves(data))
    assert ("2026-03", "mrr_expansion") not in moves
    assert moves[("2026-02", "mrr_new")] == 110.0
    assert moves[("2027-02", "mrr_churn")] == 110.0


def test_currency_without_a_rate_is_a_data_issue():
    # A GBP line with no GBP rate is left out, with a Data Issues row naming it.
    data = _data([_line("a", "2026-02-01", "2026-03-01", 100.0, currency="GBP")])
    assert _mrr(data) == {}
    issue = next(i for i in data.issues if i.column == "currency")
    assert issue.value == "GBP" and "no FX rate" in issue.problem
    assert issue.action == "left the line out of MRR"


def test_negative_month_is_zero_with_a_data_issue():
    # A credit of -80 larger than the month's 50 charge: -30 counts as 0, with an issue.
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 50.0, interval_months=1),
        _line("a", "2026-02-01", "2026-03-01", -80.0, kind="credit", invoice_id="in_cr",
              interval_months=1),
    ]  # fmt: skip
    data = _data(lines)
    assert _mrr(data) == {}
    issue = next(i for i in data.issues if "negative MRR" in i.problem)
    assert issue.value == -30.0 and issue.action == "counted 0"


def test_bad_kind_and_backwards_period_are_data_issues():
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 50.0, kind="refund"),
        _line("b", "2026-03-01", "2026-02-01", 50.0, invoice_id="in_b"),
    ]
    data = _data(lines)
    problems = {(i.column, i.problem) for i in data.issues}
    assert ("kind", "is not one of subscription, credit, one_time, usage") in problems
    assert ("service_end", "is not after service_start") in problems
    assert _mrr(data) == {} and _mrr(data, "b") == {}


def test_the_mrr_table_wins_unless_mrr_source_says_invoices():
    # auto: a filled MRR table is used as it is; mrr_source = invoices uses the lines.
    mrr = pd.DataFrame({"customer_id": ["a"], "month": ["2026-02-01"], "mrr": [7.0]})
    invoices = pd.DataFrame([_line("a", "2026-02-01", "2026-03-01", 100.0)])
    auto = read({"MRR": mrr, "Invoices": invoices})
    assert auto.tables["MRR"]["mrr"].tolist() == [7.0]
    chosen = read({"MRR": mrr, "Invoices": invoices, "Settings": {"mrr_source": "invoices"}})
    assert chosen.tables["MRR"]["mrr"].tolist() == [100.0]
    table = read({"Invoices": invoices, "Settings": {"mrr_source": "mrr_table"}})
    assert table.tables["MRR"].empty


def test_mrr_from_invoices_matches_a_loop_over_days():
    # An independent implementation: walk every line and every month end by hand.
    import numpy as np

    rng = np.random.default_rng(3)
    rows = []
    for i in range(300):
        start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 500)))
        months = int(rng.choice([1, 3, 12]))
        end = start + pd.DateOffset(months=months)
        rows.append(
            _line(f"c{i % 40}", str(start.date()), str(end.date()),
                  float(rng.integers(1, 500)) * months, interval_months=months,
                  invoice_id=f"in{i}", tax=float(rng.integers(0, 5)))
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    data = read({"Invoices": frame})
    got = {
        (c, f"{m:%Y-%m}"): v
        for c, m, v in zip(data.tables["MRR"]["customer_id"], data.tables["MRR"]["month"],
                           data.tables["MRR"]["mrr"], strict=True)
    }  # fmt: skip
    expected: dict[tuple[str, str], float] = {}
    for r in rows:
        s, e = pd.Timestamp(r["service_start"]), pd.Timestamp(r["service_end"])
        for month_end in pd.date_range("2024-12-31", "2027-12-31", freq="ME"):
            if s <= month_end < e:
                key = (r["customer_id"], f"{month_end:%Y-%m}")
                monthly = (r["amount"] - r["tax"]) / r["interval_months"]
                expected[key] = expected.get(key, 0.0) + monthly
    expected = {k: round(v, 2) for k, v in expected.items() if round(v, 2) > 0}
    assert got == pytest.approx(expected)


def test_direct_call_without_the_reader():
    lines = pd.DataFrame(
        {
            "customer_id": ["a"],
            "kind": ["subscription"],
            "service_start": pd.to_datetime(["2026-01-01"]),
            "service_end": pd.to_datetime(["2026-04-01"]),
            "amount": [300.0],
            "tax": [None],
            "currency": [None],
            "interval_months": [3.0],
            "prorated": [False],
        }
    )
    frame, issues = mrr_from_invoices(lines, pd.DataFrame(), read({}).settings)
    assert frame["mrr"].tolist() == [100.0, 100.0, 100.0] and issues == []


@pytest.mark.parametrize(
    ("fx_rate", "march", "moves"),
    [
        # line: March's line converts at March's 1.20: 50 * 1.20 = 60, and the rate move
        # shows as an expansion of 60 - 55 = 5 at the renewal (the documented limit).
        ("line", 60.0, {("2026-02", "mrr_new"): 55.0, ("2026-03", "mrr_expansion"): 5.0,
                        ("2026-04", "mrr_churn"): 60.0}),
        # subscription: every line of sub_1 converts at its first month's rate (February's
        # 1.10): 55 in both months, so the rate move makes no movement at all.
        ("subscription", 55.0, {("2026-02", "mrr_new"): 55.0,
                                ("2026-04", "mrr_churn"): 55.0}),
    ],
)  # fmt: skip
def test_fx_rate_setting_keeps_rate_moves_out_of_movements(fx_rate, march, moves):
    # A monthly EUR plan of 50 renewed in March; EUR is 1.10 in February, 1.20 in March.
    fx = [("2026-02", "EUR", 1.10), ("2026-03", "EUR", 1.20)]
    lines = [
        _line("a", "2026-02-01", "2026-03-01", 50.0, currency="EUR", subscription_id="sub_1"),
        _line("a", "2026-03-01", "2026-04-01", 50.0, currency="EUR", subscription_id="sub_1"),
    ]
    data = _data(lines, {"fx_rate": fx_rate}, fx)
    assert _mrr(data) == {"2026-02": 55.0, "2026-03": march}
    assert _nonzero(_moves(data)) == moves
