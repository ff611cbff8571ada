"""Does CX pay, by the customers' NPS category: each customer's latest NPS category up to
each month's end, and NRR, customer churn and referral revenue by the category before
each period (the report's ``nps_category`` breakdown; "Does CX pay?" reads the categories
too)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..kpis import retention, surveys
from .axis import _Axis
from .feedback import SURVEY_KINDS, survey_kinds
from .groups import _Groupings, _sums_by_code
from .subscriptions import _Base

NPS_CATEGORIES = ("promoter", "passive", "detractor", "no answer")


def _nps_categories_by_month(data: Dataset, base: _Base, axis: _Axis) -> np.ndarray:
    """Each customer's latest NPS category up to each month's end (-1: none), months x
    customers (each month's categories contiguous)."""
    sv = data.tables["Surveys"]
    nps = survey_kinds(sv) == SURVEY_KINDS.index("NPS")
    rows = np.flatnonzero(nps & sv["customer_id"].notna().to_numpy())
    n, T = len(base.ids), axis.size
    cat = np.full((T, n), -1, dtype=np.int8)
    if not len(rows) or n == 0:
        return cat
    # by date, in table order within a date (NaT rows have no month column: left out)
    dates = sv["response_date"].to_numpy()
    order = rows[_order_by_date(dates[rows])]
    pos = base.rows_of(sv["customer_id"].to_numpy()[order])
    col = axis.col(months_of(sv["response_date"])[order])  # the column's months, shared
    score = sv["score"].to_numpy(float)[order]
    code = np.where(
        score >= surveys.PROMOTER_FROM, 0, np.where(score <= surveys.DETRACTOR_UP_TO, 2, 1)
    ).astype(np.int8)
    ok = (pos >= 0) & (col >= 0)
    cat[col[ok], pos[ok]] = code[ok]  # later answers in a month overwrite earlier ones
    for t in range(1, T):
        row = cat[t]
        np.copyto(row, cat[t - 1], where=row == -1)
    return cat


def _order_by_date(dates: np.ndarray) -> np.ndarray:
    """``np.argsort(dates, kind="stable")`` of datetime64 ``dates`` (NaT first): by a
    16-bit key of days when every date is a whole day and they span less than 89 years
    (numpy sorts 16-bit integers by radix, in linear time), else by the dates."""
    dates = np.asarray(dates)
    if dates.dtype.kind == "M" and len(dates):
        unit, step = np.datetime_data(dates.dtype)
        if unit in ("s", "ms", "us", "ns", "D"):
            per_day = int(np.timedelta64(1, "D") // np.timedelta64(step, unit))
            ticks = dates.view(np.int64)
            nat = np.isnat(dates)
            known = ticks[~nat]
            if len(known) and (known % per_day == 0).all():
                days = known // per_day
                lo, hi = int(days.min()), int(days.max())
                if hi - lo + 1 < 2**15:
                    key = np.zeros(len(dates), dtype=np.int16)  # NaT: 0, before every day
                    key[~nat] = days - lo + 1
                    return np.argsort(key, kind="stable")
        return np.argsort(dates.view(np.int64), kind="stable")  # NaT is the smallest
    return np.argsort(dates, kind="stable")


def _nps_category_matrix(data: Dataset, base: _Base, axis: _Axis) -> np.ndarray:
    """Each customer's latest NPS category up to each month's end (-1: none)."""
    return np.ascontiguousarray(_nps_categories_by_month(data, base, axis).T)


def _cx_to_revenue(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray]
) -> pd.DataFrame:
    """NRR, customer churn and referral revenue by the customers' NPS category before
    each period (seeds 000 and 001: does CX pay?). Each period's sums are taken for the
    four categories at once (by the category code of each customer, and of each
    customer's referrer); the referred customers' order amounts of each category are
    added up as the selection of them in table order, as one category at a time did."""
    cat = _nps_categories_by_month(data, base, axis)
    cust = data.tables["Customers"]
    n, C = len(base.ids), len(NPS_CATEGORIES)
    referrer = np.full(n, -1)
    if not cust.empty:
        ref_pos = base.rows_of(cust["referred_by"])
        referrer[base.cpos] = ref_pos
    valid = referrer >= 0
    orders = data.tables["Orders"]
    opos = base.rows_of(orders["customer_id"])
    ocol = axis.col(months_of(orders["order_date"]))
    amount = orders["amount"].to_numpy(float)
    in_period = [np.flatnonzero((ocol >= a) & (ocol <= b) & (opos >= 0)) for a, b in axis.periods]
    exact = _Groupings.exact_for(base)
    mt, at = base.by_month, base.active_by_month  # a month's customers contiguous
    P = len(axis.periods)
    ref_rows = np.flatnonzero(valid)  # the customers referred by a known customer
    ref_of = referrer[ref_rows]
    nrr, churn, referral = (np.full((C, P), np.nan) for _ in range(3))
    for p, (a, b) in enumerate(axis.periods):
        code = cat[a - 1].astype(np.intp)
        code[code < 0] = C - 1  # "no answer"
        start, end = mt[a - 1], mt[b]
        # the cohort: customers paying at the start
        rows = np.flatnonzero(start > 0)
        s_, e_, c_ = start[rows], end[rows], code[rows]
        cohort_start = _sums_by_code(c_, s_, C, exact)
        if exact:  # expansion, contraction and churn in one bincount (_cohort_moves)
            expansion, contraction, churned = _cohort_moves(c_, s_, e_, C)
        else:
            expansion = _sums_by_code(c_, np.where(e_ > s_, e_ - s_, 0), C, exact)
            contraction = _sums_by_code(c_, np.where((e_ > 0) & (e_ < s_), s_ - e_, 0), C, exact)
            churned = _sums_by_code(c_, np.where(e_ == 0, s_, 0), C, exact)
        act_s, act_e = at[a - 1], at[b]
        at_start = np.bincount(code[act_s], minlength=C)
        lost = np.bincount(code[act_s & ~act_e], minlength=C)
        # each customer's referrer's category (-1: not referred by a known customer)
        ref_code = np.full(n + 1, -1, dtype=np.intp)  # the last slot: opos -1
        ref_code[ref_rows] = code[ref_of]
        months = end if a == b else mt[a : b + 1].sum(axis=0, dtype=np.int64)
        ref_mrr = _sums_by_code(ref_code[ref_rows], months[ref_rows], C, exact)
        in_p = in_period[p]
        amount_p, order_code = amount[in_p], ref_code[opos[in_p]]
        for c in range(C):
            nrr[c, p] = retention.net_revenue_retention(
                cohort_start[c] / base.scale if base.has_mrr_data and a > 1 else np.nan,
                expansion[c] / base.scale,
                contraction[c] / base.scale,
                churned[c] / base.scale,
            )
            churn[c, p] = retention.customer_churn_rate(at_start[c], lost[c])
            if not cust.empty:
                order_part = amount_p[order_code == c].sum()
                referral[c, p] = order_part + ref_mrr[c] / base.scale
    rows = []
    for c, name in enumerate(NPS_CATEGORIES):
        rows += [
            (name, "net_revenue_retention", *nrr[c]),
            (name, "customer_churn_rate", *churn[c]),
            (name, "referral_revenue", *referral[c]),
        ]
    return pd.DataFrame(rows, columns=["nps_category", "kpi", *axis.labels])


def _cohort_moves(
    codes: np.ndarray, start: np.ndarray, end: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums by code 0 .. size - 1 of the cohort's (``start`` > 0) expansion (end above
    start: end - start), contraction (end in 0 .. start, both excluded: start - end) and
    churn (end 0: start), as int64, from one bincount: each customer is in at most one of
    them and its amount is |end - start| (a credit, end below 0, is in none). Every
    partial sum must be below 2**53 (``_Groupings.exact_for``)."""
    kind = (end < start).astype(np.intp) + (end == 0)  # 0 expansion, 1 contraction, 2 churn
    kind[end < 0] = 3  # none of them
    amount = np.abs(end - start)
    sums = np.bincount(codes * 4 + kind, weights=amount, minlength=size * 4)
    by = np.rint(sums).astype(np.int64).reshape(size, 4)
    return by[:, 0], by[:, 1], by[:, 2]
