"""Invariants of the engine on generated data, at every granularity and convention."""

from __future__ import annotations

import numpy as np
import pytest

from cxkpi_xl.catalogue import BY_ID
from cxkpi_xl.engine import BREAKDOWN_KPIS, compute
from cxkpi_xl.reader import read
from cxkpi_xl.sample import generate


@pytest.fixture(scope="module")
def tables():
    return generate("small", seed=11)


@pytest.fixture(scope="module", params=["month", "quarter", "year"])
def report(request, tables):
    return compute(read(tables, {"granularity": request.param}))


def test_movement_identity_holds_exactly_every_period(report):
    k = report.kpis
    net = (
        k["mrr_new"]
        + k["mrr_reactivation"]
        + k["mrr_expansion"]
        - k["mrr_contraction"]
        - k["mrr_churn"]
    )
    # The engine sums in integer money units, so both hold to the last unit.
    assert np.allclose(net[1:], k["net_new_mrr"][1:], rtol=0, atol=1e-6)
    assert np.allclose(k["mrr"][1:], k["mrr"][:-1] + k["net_new_mrr"][1:], rtol=0, atol=1e-6)


def test_grr_at_most_nrr_and_at_most_one(report):
    nrr, grr = report.kpis["net_revenue_retention"], report.kpis["gross_revenue_retention"]
    ok = ~np.isnan(nrr)
    assert ok.sum() >= 1
    assert (grr[ok] <= nrr[ok] + 1e-12).all() and (grr[ok] <= 1 + 1e-12).all()


def test_bounded_rates_are_within_zero_and_one(report):
    for kpi_id, values in report.kpis.items():
        if BY_ID[kpi_id].unit != "fraction" or kpi_id in (
            "revenue_growth",
            "attachment_rate",
            "net_revenue_retention",
        ):
            continue
        v = values[~np.isnan(values)]
        assert ((v >= 0) & (v <= 1)).all(), kpi_id


def test_crr_is_one_minus_churn_under_the_default_convention(report):
    crr, churn = report.kpis["customer_retention_rate"], report.kpis["customer_churn_rate"]
    ok = ~np.isnan(churn)
    assert np.allclose(crr[ok], 1 - churn[ok])


@pytest.mark.parametrize("column", ["segment", "owner"])
def test_breakdowns_add_up_to_the_total_for_additive_kpis(tables, column):
    report = compute(read(tables))
    frame = report.breakdowns[column]
    for kpi in (
        "mrr",
        "net_new_mrr",
        "mrr_new",
        "mrr_expansion",
        "mrr_contraction",
        "mrr_churn",
        "referral_revenue",
    ):
        assert kpi in BREAKDOWN_KPIS
        parts = frame[frame["kpi"] == kpi][report.periods].sum(axis=0, min_count=1).to_numpy(float)
        total = report.kpis[kpi]
        ok = ~np.isnan(total)
        assert np.allclose(parts[ok], total[ok]), (column, kpi)


def test_other_conventions_count_more_churn(tables):
    base = compute(read(tables), breakdowns=False).kpis["customer_churn_rate"]
    include_new = compute(read(tables, {"churn_convention": "include_new"}), breakdowns=False).kpis[
        "customer_churn_rate"
    ]
    ok = ~np.isnan(base)
    assert (include_new[ok] >= base[ok] - 1e-12).all()


def test_cohort_matrices(tables):
    b = compute(read(tables)).breakdowns
    logos, revenue = b["cohort_logos"], b["cohort_revenue"]
    assert (logos[0].dropna() == 1.0).all()  # every cohort is whole in its first month
    assert (revenue[0].dropna() == 1.0).all()
    assert logos.stack().dropna().between(0, 1).all()


def test_feedback_themes_and_tiers(tables):
    b = compute(read(tables)).breakdowns
    themes = b["feedback_themes"]
    assert set(themes["nps_category"]) == {"promoter", "passive", "detractor"}
    tiers = b["repeat_purchase_tiers"]
    assert list(tiers.index) == ["1", "2-5", "6-10", "11+"]
    assert (b["feature_adoption"].stack().between(0, 1)).all()


@pytest.mark.parametrize("column", ["segment", "owner"])
def test_each_group_equals_the_report_of_that_groups_data_alone(tables, column):
    """The definition of a breakdown: the KPIs of the group's customers and their rows only
    (Funnel and Costs, which have no customer, left out). The engine computes it faster,
    by cutting the report's customer matrices; this recomputes it the slow way."""
    data = read(tables)
    report = compute(data)
    frame = report.breakdowns[column].set_index([column, "kpi"])
    cust = data.tables["Customers"]
    for name in frame.index.get_level_values(0).unique():
        ids = set(cust.loc[cust[column].fillna(f"(no {column})") == name, "customer_id"])
        only = {}
        for t, f in tables.items():
            if t in ("Funnel", "Costs"):
                only[t] = f.iloc[0:0]
            elif t in ("Customers", "MRR", "Orders", "Surveys", "Tickets", "Usage"):
                only[t] = f[f["customer_id"].astype(str).isin(ids)]
            else:
                only[t] = f
        # the same periods as the whole report, even where the group's data start later
        span = {"report_start": report.periods[0], "report_end": report.periods[-1]}
        alone = compute(read(only, span), breakdowns=False)
        assert alone.periods == report.periods
        for kpi in BREAKDOWN_KPIS:
            np.testing.assert_allclose(
                frame.loc[(name, kpi)].to_numpy(float),
                alone.kpis[kpi],
                rtol=1e-12,
                atol=1e-9,
                err_msg=f"{column}={name} {kpi}",
            )
