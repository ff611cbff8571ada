"""The KPIs of orders, customers, costs and health: order value and frequency, CLTV,
repeat purchases, references, revenue growth, referral revenue, CAC, LTV:CAC,
payback, retention cost, time to value, health score and at-risk rate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..data.issues import Issue
from ..data.periods import months_of
from ..data.reader import Dataset
from ..data.schema import Settings
from ..kpis import advocacy, engagement, revenue, value
from .axis import _at, _Axis, _blank_without, _each, _per_period, _split_by_period
from .subscriptions import _Base


def _order_kpis(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray], months_per_period: np.ndarray
) -> dict[str, Any]:
    orders = data.tables["Orders"]
    P = len(axis.periods)
    ocol = axis.col(months_of(orders["order_date"]))
    amount = orders["amount"].to_numpy(float)
    order_revenue = _blank_without(orders, _per_period(ocol, amount, axis))
    n_orders = _blank_without(orders, _per_period(ocol, None, axis))
    codes, uniques = pd.factorize(orders["customer_id"])
    pcol = axis.period_of_col[ocol]
    # Orders split by period once; counts, first and last order dates accumulate.
    by_period = _split_by_period(np.arange(len(orders)), pcol, P)
    buyers = _blank_without(orders, np.array([len(pd.unique(codes[i])) for i in by_period], float))
    k["average_order_value"] = revenue.average_order_value(order_revenue, n_orders)
    k["purchase_frequency"] = revenue.purchase_frequency(n_orders, buyers, months_per_period / 12)
    # lifespan (seed 000): time from first to last order, customers' mean, up to the end
    dates = orders["order_date"].to_numpy("datetime64[D]").astype(np.int64)
    lifespan = np.full(P, np.nan)
    counts_by_period = []
    n_customers = len(uniques)
    seen = np.zeros(n_customers, dtype=np.int64)
    first = np.full(n_customers, np.iinfo(np.int64).max)
    last = np.full(n_customers, np.iinfo(np.int64).min)
    for p, rows in enumerate(by_period):
        c, d = codes[rows], dates[rows]
        seen += np.bincount(c, minlength=n_customers)
        np.minimum.at(first, c, d)
        np.maximum.at(last, c, d)
        has = seen > 0
        if has.any():
            lifespan[p] = float(np.mean((last[has] - first[has]) / 365.25))
        counts_by_period.append(seen[has].copy())
    k["cltv"] = value.cltv(k["average_order_value"], k["purchase_frequency"], lifespan)
    k["repeat_purchase_rate"] = _each(
        counts_by_period, lambda c: engagement.repeat_purchase_rate(c) if len(c) else math.nan
    )
    tiers = (
        pd.DataFrame(
            [engagement.repeat_purchase_tiers(c) for c in counts_by_period], index=axis.labels
        ).T
        if len(orders)
        else pd.DataFrame()
    )
    # attachment rate
    qty = orders["quantity"].to_numpy(float)
    qty = np.where(np.isnan(qty), 1.0, qty)
    cat = orders["category"].to_numpy(object)
    if orders["category"].notna().any():
        secondary = _per_period(ocol, np.where(cat == "secondary", qty, 0.0), axis)
        primary = _per_period(ocol, np.where(cat == "primary", qty, 0.0), axis)
        k["attachment_rate"] = np.asarray(revenue.attachment_rate(secondary, primary), float)
    else:
        k["attachment_rate"] = np.full(P, np.nan)
    return {"order_revenue": order_revenue, "ocol": ocol, "tiers": tiers}


def _referral_revenue(data: Dataset, base: _Base, axis: _Axis, ocol: np.ndarray) -> np.ndarray:
    """Order revenue and MRR of referred customers per period (``ocol``: each order's
    month column)."""
    cust, orders = data.tables["Customers"], data.tables["Orders"]
    if (
        cust.empty
        or (orders.empty and not base.has_mrr_data)
        or not data.has_column("Customers", "referred_by")
    ):
        return np.full(len(axis.periods), np.nan)
    referred = np.zeros(len(base.ids), dtype=bool)
    referred[base.cpos] = cust["referred_by"].notna().to_numpy()
    o_ref = _at(referred, base.rows_of(orders["customer_id"]))
    ref_orders = _per_period(ocol, np.where(o_ref, orders["amount"].to_numpy(float), 0.0), axis)
    ref_mrr = np.array([base.mrr[referred, a : b + 1].sum() for a, b in axis.periods]) / base.scale
    return ref_orders + ref_mrr


def _customer_kpis(
    data: Dataset,
    base: _Base,
    axis: _Axis,
    settings: Settings,
    k: dict[str, np.ndarray],
    counts: dict[str, Any],
    order_info: dict[str, Any],
    months_per_period: np.ndarray,
) -> None:
    cust = data.tables["Customers"]
    P = len(axis.periods)
    E = counts["E"]
    # references among active customers at the end
    willing = np.zeros(len(base.ids), dtype=bool)
    willing[base.cpos] = cust["reference_willing"].to_numpy(bool)
    if cust.empty or not data.has_column("Customers", "reference_willing"):
        k["reference_rate"] = np.full(P, np.nan)
    else:
        willing_active = [(willing & base.active[:, b]).sum() for _, b in axis.periods]
        k["reference_rate"] = np.asarray(advocacy.reference_rate(willing_active, E), float)
    # revenue of each period: orders plus the MRR of its months
    mrr_months = np.array([base.mrr[:, a : b + 1].sum() for a, b in axis.periods]) / base.scale
    rev = np.nan_to_num(order_info["order_revenue"]) + mrr_months
    has_revenue = (not data.tables["Orders"].empty) or base.has_mrr_data
    rev = rev if has_revenue else np.full(P, np.nan)
    k["revenue_growth"] = np.asarray(revenue.revenue_growth(np.r_[np.nan, rev[:-1]], rev), float)
    k["referral_revenue"] = _referral_revenue(data, base, axis, order_info["ocol"])
    # acquisition: customers who signed up in the period (else new MRR customers)
    costs = data.tables["Costs"]
    ccol = axis.col(months_of(costs["month"]))
    acq = _blank_without(
        costs, _per_period(ccol, costs["acquisition_cost"].fillna(0).to_numpy(float), axis)
    )
    ret = _blank_without(
        costs, _per_period(ccol, costs["retention_cost"].fillna(0).to_numpy(float), axis)
    )
    if costs.empty or costs["acquisition_cost"].isna().all():
        acq = np.full(P, np.nan)
    if costs.empty or costs["retention_cost"].isna().all():
        ret = np.full(P, np.nan)
    if not cust.empty:
        new_customers = _per_period(axis.col(months_of(cust["signup_date"])), None, axis)
    else:
        starts = (base.move["mrr_new"] > 0).sum(axis=0)
        new_customers = np.array([starts[a - 1 : b].sum() for a, b in axis.periods], float)
    k["cac"] = np.asarray(value.cac(acq, new_customers), float)
    gm = float(settings["gross_margin"])
    churn = k["customer_churn_rate"]
    monthly_churn = 1 - np.power(np.clip(1 - churn, 0, None), 1 / months_per_period)
    k["cltv_subscription"] = np.asarray(
        value.cltv_subscription(k["arpu"], monthly_churn, gm), float
    )
    ltv = k["cltv_subscription"] if base.has_mrr_data else k["cltv"]
    k["ltv_cac_ratio"] = np.asarray(value.ltv_cac_ratio(ltv, k["cac"]), float)
    k["cac_payback_months"] = np.asarray(value.cac_payback_months(k["cac"], k["arpu"], gm), float)
    k["customer_retention_cost"] = np.asarray(
        value.customer_retention_cost(ret, E if len(base.ids) else np.full(P, np.nan)), float
    )
    # time to value for customers who signed up in the period
    scol = axis.period_of_col[axis.col(months_of(cust["signup_date"]))]
    fv = cust["first_value_date"]
    k["time_to_value_days"] = _each(
        range(P),
        lambda p: (
            engagement.time_to_value_days(cust["signup_date"][scol == p], fv[scol == p])
            if (scol == p).any() and fv[scol == p].notna().any()
            else math.nan
        ),
    )


def _health_kpis(
    data: Dataset,
    base: _Base,
    axis: _Axis,
    settings: Settings,
    k: dict[str, np.ndarray],
    issues: list[Issue],
) -> None:
    h = data.tables["Health"]
    P = len(axis.periods)
    if h.empty:
        k["at_risk_rate"] = np.full(P, np.nan)
        k["health_score"] = np.full(P, np.nan)
        return
    weights_table = data.tables["HealthWeights"]
    codes, names = pd.factorize(h["measure"])
    if weights_table.empty:
        weights = np.ones(len(h))
    else:
        lookup = dict(
            zip(weights_table["measure"].str.lower(), weights_table["weight"], strict=True)
        )
        per_name = np.array([lookup.get(str(m).lower(), np.nan) for m in names], float)
        weights = per_name[codes]
        for m in sorted(str(m) for m, w in zip(names, per_name, strict=True) if np.isnan(w)):
            issues.append(
                Issue(
                    "Health",
                    None,
                    "measure",
                    m,
                    "has no weight in HealthWeights",
                    "left the measure out",
                )
            )
    col = axis.col(months_of(h["month"]))
    cpos = pd.factorize(h["customer_id"])[0]
    key = cpos.astype(np.int64) * axis.size + col
    ok = col >= 0
    scores = advocacy.customer_health_scores(key[ok], h["score"].to_numpy(float)[ok], weights[ok])
    keys = scores.index.to_numpy(np.int64)
    s_col = keys % axis.size
    s_cust = keys // axis.size
    s_val = scores.to_numpy(float)
    red = float(settings["health_red_below"])
    risk, mean = np.full(P, np.nan), np.full(P, np.nan)
    for p, (a, b) in enumerate(axis.periods):
        in_p = (s_col >= a) & (s_col <= b) & ~np.isnan(s_val)
        if not in_p.any():
            continue
        frame = pd.DataFrame({"c": s_cust[in_p], "col": s_col[in_p], "v": s_val[in_p]})
        latest = frame.sort_values("col").groupby("c")["v"].last().to_numpy()
        risk[p] = advocacy.at_risk_rate(latest, red)
        mean[p] = float(latest.mean())
    k["at_risk_rate"] = risk
    k["health_score"] = mean
