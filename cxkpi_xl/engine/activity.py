"""Support, funnel and product usage: first contact resolution, conversion rate,
stickiness (DAU/MAU), product usage rate and feature adoption."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..data.usage import UsageSummary
from ..kpis import engagement, support
from .axis import _Axis, _blank_without, _per_period, _split_by_period
from .subscriptions import _Base


def _support_and_funnel(data: Dataset, axis: _Axis, k: dict[str, np.ndarray]) -> None:
    t = data.tables["Tickets"]
    rcol = axis.col(months_of(t["resolved_date"]))
    contacts = t["contacts"].to_numpy(float)
    k["first_contact_resolution_rate"] = _first_contact_resolution(rcol, contacts, axis)
    f = data.tables["Funnel"]
    fcol = axis.col(months_of(f["month"]))
    visitors = _blank_without(f, _per_period(fcol, f["visitors"].to_numpy(float), axis))
    conversions = _blank_without(f, _per_period(fcol, f["conversions"].to_numpy(float), axis))
    k["conversion_rate"] = np.asarray(engagement.conversion_rate(conversions, visitors), float)


def _first_contact_resolution(rcol: np.ndarray, contacts: np.ndarray, axis: _Axis) -> np.ndarray:
    """First contact resolution rate per period of tickets resolved in month columns
    ``rcol`` after ``contacts`` contacts (blank without tickets; any tickets, in order:
    the segment and owner breakdowns pass each group's)."""
    blank = np.full(len(axis.periods), np.nan)
    resolved = _per_period(rcol, None, axis) if len(rcol) else blank
    first = _per_period(rcol, (contacts == 1).astype(float), axis) if len(rcol) else blank
    return np.asarray(support.first_contact_resolution_rate(first, resolved), float)


def usage_summary(data: Dataset) -> UsageSummary:
    """The Usage summary the usage KPIs read: the one the source built in its engine
    (``Dataset.usage_summary``), else the summary of the validated Usage rows, built when
    first needed and kept on ``data`` (``compute``'s own copy of the user's Dataset), so a
    memo hit never builds it."""
    if data.usage_summary is None:
        data.usage_summary = UsageSummary.from_rows(data.tables["Usage"])
    return data.usage_summary


def _days_in_month(month: int) -> int:
    first = np.datetime64(month - 1970 * 12, "M")
    return int((np.datetime64(first + 1, "D") - np.datetime64(first, "D")).astype(int))


def _stickiness(s: UsageSummary, axis: _Axis) -> np.ndarray:
    """DAU/MAU per month (the days' distinct users summed over the month, over the days in
    the month, over the month's distinct users); a quarter or year averages its months."""
    P = len(axis.periods)
    day_months = s.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    dcol = axis.col(day_months + 1970 * 12)
    ok = dcol >= 0
    dau_days = np.bincount(dcol[ok], weights=s.day_users[ok], minlength=axis.size)
    mcol = axis.col(s.months)
    ok = mcol >= 0
    mau = np.zeros(axis.size, np.int64)
    mau[mcol[ok]] = s.month_users[ok]
    stick = np.full(P, np.nan)
    for p, (a, b) in enumerate(axis.periods):
        monthly = [
            engagement.stickiness(dau_days[c] / _days_in_month(axis.base + c), mau[c])
            for c in range(a, b + 1)
            if mau[c]
        ]
        if monthly:
            stick[p] = float(np.mean(monthly))
    return stick


FEW_FEATURES = 16
"""Up to this many features, each one's triples are picked by a pass of their own."""

FLAG_LIMIT = 2**28
"""The largest periods x customers table of flags :func:`_distinct_active` makes."""


def _distinct_active(
    periods: np.ndarray, customers: np.ndarray, base: _Base, ends: np.ndarray
) -> np.ndarray:
    """Per period, the distinct customers among (period, customer) pairs who are active
    at the period's end: marked in a periods x customers table of flags (a pair seen
    twice marks it once), not hashed; pairs beyond FLAG_LIMIT flags are hashed."""
    P, n = len(ends), len(base.ids)
    if not n:
        return np.zeros(P, np.int64)
    if P * n > FLAG_LIMIT:
        pc = pd.unique(periods.astype(np.int64) * n + customers)
        p_of, c_of = pc // n, pc % n
        return np.bincount(p_of[base.active[c_of, ends[p_of]]], minlength=P)
    seen = np.zeros((P, n), dtype=bool)
    seen[periods, customers] = True
    seen &= base.active[:, ends].T
    return seen.sum(axis=1)


def _active_usage_flags(
    s: UsageSummary, base: _Base, periods: np.ndarray, customers: np.ndarray, ends: np.ndarray
) -> np.ndarray | None:
    """The periods x customers flags of :func:`_distinct_active` for the Usage summary's
    (period, customer) pairs (None beyond FLAG_LIMIT), kept on ``base`` for the summary
    ``s`` so that the segment and owner breakdowns count the same flags by group
    (``groups._usage_rate_by_group``) instead of building them again."""
    kept = base._usage_flags
    if kept is not None and kept[0] is s:
        return kept[1]
    P, n = len(ends), len(base.ids)
    if P * n > FLAG_LIMIT or not n:
        return None
    seen = np.zeros((P, n), dtype=bool)
    seen[periods, customers] = True
    seen &= base.active[:, ends].T
    base._usage_flags = (s, seen)
    return seen


def _usage_triples(
    s: UsageSummary, base: _Base, axis: _Axis
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each Usage triple's period and customer row in ``base`` (in 32 bits: tens of
    millions of triples; -1 is no customer or no period) and whether it has both."""
    code_pos = base.rows_of(s.customers) if len(s.customers) else np.zeros(0, np.int64)
    cpos = np.append(code_pos, -1).astype(np.int32)[s.t_customer]  # code -1 takes the -1
    months = np.arange(s.t_month.min(), s.t_month.max() + 1) if len(s.t_month) else []
    month_period = axis.period_of_col[axis.col(np.asarray(months, np.int64))].astype(np.int32)
    pcol = month_period[s.t_month - (months[0] if len(months) else 0)]
    ok = (pcol >= 0) & (cpos >= 0)
    return pcol, cpos, ok


def _usage_kpis(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray], stickiness: bool = True
) -> pd.DataFrame:
    """Stickiness, product usage rate and feature adoption (``stickiness=False``, for the
    segment and owner breakdowns, leaves out stickiness and feature adoption), from the
    Usage summary (:func:`usage_summary`)."""
    s = usage_summary(data)
    P = len(axis.periods)
    if s.empty:
        k["stickiness"] = np.full(P, np.nan)
        k["product_usage_rate"] = np.full(P, np.nan)
        return pd.DataFrame()
    k["stickiness"] = _stickiness(s, axis) if stickiness else np.full(P, np.nan)
    # product usage and feature adoption among customers active at the period's end
    # (in 32 bits: tens of millions of triples; -1 is no customer or no period)
    pcol, cpos, ok = _usage_triples(s, base, axis)
    n = len(base.ids)
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    n_active = base.active[:, ends].sum(axis=0) if n else np.zeros(P, np.int64)
    # each (period, customer) once, counted where the customer is active at its end
    flags = _active_usage_flags(s, base, pcol[ok], cpos[ok], ends)
    used = (
        flags.sum(axis=1) if flags is not None else _distinct_active(pcol[ok], cpos[ok], base, ends)
    )
    usage_rate = np.array(
        [engagement.product_usage_rate(used[p], n_active[p]) if n else np.nan for p in range(P)]
    )
    fcodes = s.t_feature
    # the features some triple has, in code order (counted, not sorted: 45M triples)
    used_f = np.bincount(fcodes[fcodes >= 0], minlength=len(s.features)) if stickiness else []
    present = np.flatnonzero(used_f) if stickiness else np.zeros(0, np.int64)
    nf = len(present)
    fnames = s.features[present]
    adoption = np.full((nf, P), np.nan)
    if nf:  # feature adoption (not needed by the segment and owner breakdowns)
        renumber = np.zeros(len(s.features), np.int32)
        renumber[present] = np.arange(nf)
        f = renumber[np.maximum(fcodes, 0)]  # the features of the clean rows, 0..nf-1
        keep = ok & (fcodes >= 0)
        counts = np.zeros((P, nf), np.int64)
        if nf <= FEW_FEATURES:  # one pass over the triples each, no sort
            for i in range(nf):
                rows = keep & (f == i)
                counts[:, i] = _distinct_active(pcol[rows], cpos[rows], base, ends)
        else:
            for i, rows in enumerate(_split_by_period(np.flatnonzero(keep), f[keep], nf)):
                counts[:, i] = _distinct_active(pcol[rows], cpos[rows], base, ends)
        for p in range(P):
            adoption[:, p] = engagement.product_usage_rate(counts[p], n_active[p])
    k["product_usage_rate"] = usage_rate
    if not nf:
        return pd.DataFrame()
    return pd.DataFrame(adoption, index=[str(f) for f in fnames], columns=axis.labels).sort_index()
