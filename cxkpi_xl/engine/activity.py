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


CHUNK = 2**22
"""Triples taken at a time by :func:`_usage_pass` (its temporaries stay small)."""


def _usage_pass(
    s: UsageSummary, base: _Base, axis: _Axis, by_feature: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None, np.ndarray]:
    """One pass over the Usage summary's triples, CHUNK at a time (no array of tens of
    millions of positions), giving: the periods x customers flags of the (period,
    customer) pairs whose customer is active at the period's end (None beyond
    FLAG_LIMIT); the count of triples of each feature code (``-1`` first); with
    ``by_feature``, each feature's distinct customers with a triple in the period who are
    active at its end (periods x (1 + features), None when they could not be counted in the
    pass); and whether each of the summary's customers has a triple. The flags and the
    customers are kept on ``base`` with the summary ``s``, so that the segment and owner
    breakdowns (``groups._usage_rate_by_group``) count them by group instead of making
    them again.

    When every period is one month the active triples are counted as they are: the
    summary's (month, customer, feature) triples are distinct (``UsageSummary``), and so
    then are their (period, customer, feature). Periods of several months mark each
    feature's (period, customer) pairs in a table of flags (a few features, at most
    FLAG_LIMIT flags) and count them after."""
    P, n, nf = len(axis.periods), len(base.ids), len(s.features) + 1
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    code_pos = base.rows_of(s.customers) if len(s.customers) else np.zeros(0, np.int64)
    row_of = np.append(code_pos, -1).astype(np.int32)  # code -1 takes the last slot: -1
    first, last = (int(s.t_month.min()), int(s.t_month.max())) if len(s.t_month) else (0, 0)
    months = np.arange(first, last + 1, dtype=np.int64)
    period_of = axis.period_of_col[axis.col(months)].astype(np.int32)
    flags = bool(n) and P * n <= FLAG_LIMIT
    at_end = base.active_by_month[ends] if n else np.zeros((P, 0), dtype=bool)
    # whether each (period, customer) is active at the period's end, a bit each: an
    # eighth of the memory, so that looking up millions of pairs stays in the cache
    active_bits = np.packbits(at_end.ravel(), bitorder="little")
    del at_end
    seen = np.zeros((P, n), dtype=bool) if flags else None
    seen_flat = seen.ravel() if seen is not None else None
    with_triple = np.zeros(len(s.customers) + 1, dtype=bool)  # the last slot: code -1
    # the triples of each feature code (-1 first): a count of each of a few codes, else
    # one bincount
    if nf <= FEW_FEATURES:
        per_feature = np.array([np.count_nonzero(s.t_feature == f) for f in range(-1, nf - 1)])
    else:
        per_feature = np.bincount(s.t_feature.astype(np.intp) + 1, minlength=nf)
    single = all(a == b for a, b in axis.periods)  # every period one month
    counts = np.zeros(P * nf, np.int64) if by_feature and single else None
    marked = (nf - 1) * P * n  # each feature's (period, customer) flags
    fit = by_feature and not single and 1 < nf <= FEW_FEATURES + 1 and marked <= FLAG_LIMIT
    feature_flags = np.zeros(marked, dtype=bool) if fit else None
    for lo in range(0, len(s.t_month), CHUNK):
        tc, tf = s.t_customer[lo : lo + CHUNK], s.t_feature[lo : lo + CHUNK]
        with_triple[tc] = True
        if not n or (seen is None and counts is None and feature_flags is None):
            continue
        pcol = period_of[s.t_month[lo : lo + CHUNK] - first]
        cpos = row_of[tc]
        ok = (pcol >= 0) & (cpos >= 0)
        every = bool(ok.all())  # then no copies of the triples with both
        pair = (pcol if every else pcol[ok]).astype(np.int64) * n + (cpos if every else cpos[ok])
        active = ((active_bits[pair >> 3] >> (pair & 7).astype(np.uint8)) & 1).astype(bool)
        if seen_flat is not None:
            seen_flat[pair[active]] = True
        if feature_flags is not None:  # each active triple's (feature, period, customer)
            f_active = (tf if every else tf[ok])[active]
            has = f_active >= 0
            at = f_active[has].astype(np.int64) * (P * n) + pair[active][has]
            feature_flags[at] = True
        if counts is not None:
            if every:
                ok = active  # the triples with a period and a customer active at its end
            else:
                ok[ok] = active
            key = pcol * nf + (tf + 1)  # int32: P * nf is small
            counts += np.bincount(key[ok], minlength=P * nf)
    if seen is not None:
        base._usage_flags = (s, seen, with_triple[:-1])
    by_feature_counts = None if counts is None else counts.reshape(P, nf)
    if feature_flags is not None:  # the distinct active customers of each feature
        by_feature_counts = np.zeros((P, nf), np.int64)
        marks = feature_flags.reshape(nf - 1, P, n)
        by_feature_counts[:, 1:] = np.count_nonzero(marks, axis=2).T
    return seen, per_feature, by_feature_counts, with_triple[:-1]


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
    n = len(base.ids)
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    n_active = np.count_nonzero(base.active_by_month[ends], axis=1) if n else np.zeros(P, int)
    # each (period, customer) once, counted where the customer is active at its end; and
    # each feature's active customers in the same pass where they can be
    flags, per_feature, by_feature, _ = _usage_pass(s, base, axis, stickiness)
    pcol = cpos = ok = None
    if flags is not None:
        used = flags.sum(axis=1)
    else:
        pcol, cpos, ok = _usage_triples(s, base, axis)
        used = _distinct_active(pcol[ok], cpos[ok], base, ends)
    usage_rate = np.array(
        [engagement.product_usage_rate(used[p], n_active[p]) if n else np.nan for p in range(P)]
    )
    # the features some triple has, in code order
    present = np.flatnonzero(per_feature[1:]) if stickiness else np.zeros(0, np.int64)
    nf = len(present)
    fnames = s.features[present]
    adoption = np.full((nf, P), np.nan)
    if nf:  # feature adoption (not needed by the segment and owner breakdowns)
        if by_feature is not None:
            counts = by_feature[:, present + 1]
        else:
            counts = _adoption_counts(s, base, axis, present, pcol, cpos, ok)
        for p in range(P):
            adoption[:, p] = engagement.product_usage_rate(counts[p], n_active[p])
    k["product_usage_rate"] = usage_rate
    if not nf:
        return pd.DataFrame()
    return pd.DataFrame(adoption, index=[str(f) for f in fnames], columns=axis.labels).sort_index()


def _adoption_counts(
    s: UsageSummary,
    base: _Base,
    axis: _Axis,
    present: np.ndarray,
    pcol: np.ndarray | None,
    cpos: np.ndarray | None,
    ok: np.ndarray | None,
) -> np.ndarray:
    """Per period and feature of ``present`` (codes), the distinct customers with a triple
    of it in the period who are active at its end (periods x features)."""
    if pcol is None or cpos is None or ok is None:
        pcol, cpos, ok = _usage_triples(s, base, axis)
    P, nf = len(axis.periods), len(present)
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    fcodes = s.t_feature
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
    return counts
