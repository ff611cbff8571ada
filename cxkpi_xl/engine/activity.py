"""Support, funnel and product usage: first contact resolution, conversion rate,
stickiness (DAU/MAU), product usage rate and feature adoption."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..kpis import engagement, support
from .axis import _Axis, _blank_without, _per_period, _split_by_period
from .subscriptions import _Base


def _support_and_funnel(data: Dataset, axis: _Axis, k: dict[str, np.ndarray]) -> None:
    t = data.tables["Tickets"]
    rcol = axis.col(months_of(t["resolved_date"]))
    resolved = _blank_without(t, _per_period(rcol, None, axis))
    first = _blank_without(
        t, _per_period(rcol, (t["contacts"].to_numpy(float) == 1).astype(float), axis)
    )
    k["first_contact_resolution_rate"] = np.asarray(
        support.first_contact_resolution_rate(first, resolved), float
    )
    f = data.tables["Funnel"]
    fcol = axis.col(months_of(f["month"]))
    visitors = _blank_without(f, _per_period(fcol, f["visitors"].to_numpy(float), axis))
    conversions = _blank_without(f, _per_period(fcol, f["conversions"].to_numpy(float), axis))
    k["conversion_rate"] = np.asarray(engagement.conversion_rate(conversions, visitors), float)


def _stickiness(u: pd.DataFrame, col: np.ndarray, axis: _Axis) -> np.ndarray:
    """DAU/MAU per month from (user, day) pairs; a quarter or year averages its months."""
    P = len(axis.periods)
    ok = col >= 0
    users = pd.factorize(u["user_id"])[0][ok].astype(np.int64)
    days = u["activity_date"].to_numpy("datetime64[D]").astype(np.int64)[ok]
    cols = col[ok]
    user_days = (
        pd.unique((users << 20) + (days - days.min())) if len(days) else np.zeros(0, np.int64)
    )
    day_of = (user_days & ((1 << 20) - 1)) + (days.min() if len(days) else 0)
    month_of_day = months_of(pd.Series(day_of.astype("datetime64[D]"))) - axis.base
    dau_days = np.bincount(month_of_day, minlength=axis.size)
    mau = np.bincount(pd.unique(users * axis.size + cols) % axis.size, minlength=axis.size)
    stick = np.full(P, np.nan)
    for p, (a, b) in enumerate(axis.periods):
        monthly = []
        for c in range(a, b + 1):
            if mau[c]:
                first_day = np.datetime64(axis.base + c - 1970 * 12, "M")
                days_in_month = int(
                    (np.datetime64(first_day + 1, "D") - np.datetime64(first_day, "D")).astype(int)
                )
                monthly.append(engagement.stickiness(dau_days[c] / days_in_month, mau[c]))
        if monthly:
            stick[p] = float(np.mean(monthly))
    return stick


def _usage_kpis(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray], stickiness: bool = True
) -> pd.DataFrame:
    """Stickiness, product usage rate and feature adoption (``stickiness=False``, for the
    segment and owner breakdowns, leaves out stickiness and feature adoption)."""
    u = data.tables["Usage"]
    P = len(axis.periods)
    if u.empty:
        k["stickiness"] = np.full(P, np.nan)
        k["product_usage_rate"] = np.full(P, np.nan)
        return pd.DataFrame()
    col = axis.col(months_of(u["activity_date"]))
    k["stickiness"] = _stickiness(u, col, axis) if stickiness else np.full(P, np.nan)
    # product usage and feature adoption among customers active at the period's end
    cpos = base.ids.get_indexer(u["customer_id"])
    pcol = axis.period_of_col[col]
    pcol = np.where(cpos >= 0, pcol, -1)
    usage_rate = np.full(P, np.nan)
    fcodes, fnames = pd.factorize(u["feature"]) if stickiness else (np.zeros(0, int), [])
    nf = len(fnames)
    adoption = np.full((nf, P), np.nan)
    n = len(base.ids)
    for p, rows in enumerate(_split_by_period(np.arange(len(u)), pcol, P)):
        active = base.active[:, axis.periods[p][1]]
        n_active = active.sum()
        used = np.zeros(n, dtype=bool)
        used[cpos[rows]] = True
        usage_rate[p] = (
            engagement.product_usage_rate((used & active).sum(), n_active) if n else np.nan
        )
        if nf:  # feature adoption (not needed by the segment and owner breakdowns)
            f = fcodes[rows]
            pairs = pd.unique(cpos[rows][f >= 0].astype(np.int64) * nf + f[f >= 0])
            users, feats = pairs // nf, pairs % nf
            counts = np.bincount(feats[active[users]], minlength=nf)
            adoption[:, p] = engagement.product_usage_rate(counts, n_active)
    k["product_usage_rate"] = usage_rate
    if not nf:
        return pd.DataFrame()
    return pd.DataFrame(adoption, index=[str(f) for f in fnames], columns=axis.labels).sort_index()
