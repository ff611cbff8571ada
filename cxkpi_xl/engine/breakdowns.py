"""The report's breakdowns: the KPIs by segment and by owner (each group computed on
its customers' data alone, by the same functions as the report), by NPS category
(does CX pay?), churn by reason and referral revenue by the referrer's segment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..kpis import retention, surveys
from .activity import _first_contact_resolution, _support_and_funnel, _usage_kpis, usage_summary
from .axis import _at, _Axis
from .customers import _referral_revenue
from .feedback import (
    SURVEY_KINDS,
    _survey_kpis,
    _survey_kpis_by_group,
    _survey_rows,
    survey_kinds,
)
from .groups import (
    _group_codes,
    _Groupings,
    _referral_revenue_by_group,
    _rows_by_group,
    _subscription_sums_by_group,
    _sums_by_code,
    _usage_rate_by_group,
)
from .subscriptions import _Base, _subscription_from_sums, _subscription_kpis

NPS_CATEGORIES = ("promoter", "passive", "detractor", "no answer")


BREAKDOWN_KPIS = (
    "mrr", "net_new_mrr", "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churn", "arpu",
    "net_revenue_retention", "gross_revenue_retention", "customer_churn_rate", "nps", "csat",
    "referral_revenue", "first_contact_resolution_rate", "product_usage_rate",
)  # fmt: skip
"""KPIs shown per segment and per owner in the report."""


GROUP_COLUMNS = {
    "Orders": ("customer_id", "order_date", "amount", "_row"),
    "Surveys": ("customer_id", "response_date", "survey", "score", "_row"),
    "Tickets": ("customer_id", "opened_date", "resolved_date", "contacts", "_row"),
    "Usage": ("customer_id", "activity_date", "_row"),
}
"""The columns :func:`_breakdown_kpis` reads of each table it cuts by group (the others
are left out of each group's copy; Customers is kept whole)."""


def _breakdown_kpis(data: Dataset, base: _Base, axis: _Axis) -> dict[str, np.ndarray]:
    """The BREAKDOWN_KPIS of ``data`` (one group's), by the same functions as the report."""
    k: dict[str, np.ndarray] = {}
    _subscription_kpis(base, axis, data.settings, k)
    _survey_kpis(data, axis, data.settings, k)
    _support_and_funnel(data, axis, k)
    _usage_kpis(data, base, axis, k, stickiness=False)
    ocol = axis.col(months_of(data.tables["Orders"]["order_date"]))
    k["referral_revenue"] = _referral_revenue(data, base, axis, ocol)
    return k


def _group_breakdowns(
    data: Dataset, base: _Base, axis: _Axis, columns: Iterable[str]
) -> dict[str, pd.DataFrame]:
    """The breakdown KPIs for each value of each Customers column (segment, owner), each
    as if computed on the data of that group's customers only (Funnel and Costs, which
    have no customer, are left out).

    The subscription KPIs, product usage and referral revenue come from sums by group
    taken in one pass over the report's matrices (:func:`_group_breakdowns_by_sums`);
    the survey and support KPIs are computed on each group's rows. When the sums could
    not be exact (customer ids repeated in Customers, MRR beyond 2**52 units) each group
    is computed on its own rows (:func:`_group_breakdowns_by_rows`): the same numbers."""
    columns = list(columns)
    cust = data.tables["Customers"]
    ids = cust["customer_id"]
    if not columns or not ids.is_unique or ids.isna().any() or not _Groupings.exact_for(base):
        return _group_breakdowns_by_rows(data, base, axis, columns)
    return _group_breakdowns_by_sums(data, base, axis, columns)


def _group_breakdowns_by_rows(
    data: Dataset, base: _Base, axis: _Axis, columns: Iterable[str]
) -> dict[str, pd.DataFrame]:
    """:func:`_group_breakdowns` by running the report's KPI functions on each group's
    rows (the customer matrices are the report's, cut by rows)."""
    from ..data.schema import TABLES

    # Each row's customer in the Customers table, found once for every column; only the
    # tables _breakdown_kpis reads (MRR is in the matrices already).
    ids = pd.Index(data.tables["Customers"]["customer_id"])
    needed = ("Customers", "Orders", "Surveys", "Tickets")  # Usage: its summary's triples
    positions = {
        t.name: ids.get_indexer(data.tables[t.name][t.customer_column])
        for t in TABLES
        if t.name in needed and t.customer_column is not None
    }
    return {c: _group_breakdown_by_rows(data, base, axis, c, positions) for c in columns}


def _group_breakdown_by_rows(
    data: Dataset, base: _Base, axis: _Axis, column: str, positions: dict[str, np.ndarray]
) -> pd.DataFrame:
    from ..data.schema import TABLES

    cust = data.tables["Customers"]
    if cust.empty or cust[column].isna().all():
        return pd.DataFrame()
    group_codes, names = pd.factorize(cust[column].fillna(f"(no {column})"), sort=True)
    row_group = np.full(len(base.ids), -1)
    row_group[base.cpos] = group_codes
    table_groups = {
        name: np.where(pos >= 0, group_codes[np.maximum(pos, 0)], -1)
        for name, pos in positions.items()
    }

    # Only the columns the breakdown KPIs read are cut per group (the text columns,
    # comments above all, would be copied for nothing).
    frames = {
        name: (
            data.tables[name][[c for c in data.tables[name].columns if c in GROUP_COLUMNS[name]]]
            if name in GROUP_COLUMNS
            else data.tables[name]
        )
        for name in table_groups
    }

    # Usage is cut by its summary's triples: each triple's customer's group.
    summary = usage_summary(data)
    code_pos = pd.Index(cust["customer_id"]).get_indexer(summary.customers)
    customer_group = np.append(np.where(code_pos >= 0, group_codes[code_pos], -1), -1)
    triple_group = customer_group[summary.t_customer.astype(np.int64)]  # -1 takes the last
    if len(names) < 2**15:  # numpy sorts 16-bit integers by radix: linear
        triple_group = triple_group.astype(np.int16)
    by_group = np.argsort(triple_group, kind="stable")  # each group's triples, in order
    bounds = np.searchsorted(triple_group[by_group], np.arange(len(names) + 1))

    def one_group(g: int) -> dict[str, np.ndarray]:
        tables = {
            t.name: (
                frames[t.name][table_groups[t.name] == g]
                if t.name in table_groups
                else data.tables[t.name].iloc[0:0]
            )
            for t in TABLES
        }
        sub = base.subset(np.flatnonzero(row_group == g), np.flatnonzero(group_codes == g))
        group = dataclasses.replace(
            data,
            tables=tables,
            issues=[],
            usage_summary=summary.triples(by_group[bounds[g] : bounds[g + 1]]),
        )
        return _breakdown_kpis(group, sub, axis)

    # The groups are independent and numpy releases the GIL in most of the work.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(one_group, range(len(names))))
    rows = [
        (name, kpi, *k[kpi][axis.reported])
        for name, k in zip(names, results, strict=True)
        for kpi in BREAKDOWN_KPIS
    ]
    return pd.DataFrame(rows, columns=[column, "kpi", *axis.labels[axis.reported]])


def _group_breakdowns_by_sums(
    data: Dataset, base: _Base, axis: _Axis, columns: list[str]
) -> dict[str, pd.DataFrame]:
    """:func:`_group_breakdowns` from sums by group (Customers' ids unique and known, MRR
    sums exact in float64)."""
    cust = data.tables["Customers"]
    out = {c: pd.DataFrame() for c in columns}
    usable = [c for c in columns if not (cust.empty or cust[c].isna().all())]
    if not usable:
        return out
    n = len(base.ids)
    factorized = [_group_codes(cust, c) for c in usable]
    row_groups = []
    for codes, _ in factorized:
        row_group = np.full(n, -1, dtype=np.int64)
        row_group[base.cpos] = codes
        row_groups.append(row_group)
    sizes = [len(names) for _, names in factorized]
    groupings = _Groupings(row_groups, sizes)
    sums = _subscription_sums_by_group(base, axis, groupings)
    usage = _usage_rate_by_group(data, base, axis, groupings)
    # each row's group in the tables cut by group (by its customer's Customers row)
    cust_row = np.full(n + 1, -1)  # each base row's Customers row (ids unique); -1: none
    cust_row[base.cpos] = np.arange(len(cust))
    positions = {
        name: cust_row[base.rows_of(data.tables[name]["customer_id"])]
        for name in ("Orders", "Surveys", "Tickets")
    }

    def groups_of(pos: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)

    order_groups = [groups_of(positions["Orders"], codes) for codes, _ in factorized]
    has_mrr = [np.array([s["has"] for s in group_sums]) for group_sums in sums]
    referral = _referral_revenue_by_group(data, base, axis, groupings, order_groups, has_mrr)
    # the survey and ticket rows each KPI function reads, split by group in table order
    sv, tickets = data.tables["Surveys"], data.tables["Tickets"]
    survey_rows = _survey_rows(sv, axis)
    rcol = axis.col(months_of(tickets["resolved_date"]))
    contacts = tickets["contacts"].to_numpy(float)
    for i, (column, (codes, names)) in enumerate(zip(usable, factorized, strict=True)):
        survey_group = groups_of(positions["Surveys"], codes)
        by_survey = _survey_kpis_by_group(
            *survey_rows, survey_group, len(names), axis, data.settings
        )
        by_ticket = _rows_by_group(groups_of(positions["Tickets"], codes), len(names))
        rows = []
        for g, name in enumerate(names):
            k: dict[str, np.ndarray] = dict(by_survey[g])
            _subscription_from_sums(sums[i][g], base.scale, axis, data.settings, k)
            mine = by_ticket[g]
            k["first_contact_resolution_rate"] = _first_contact_resolution(
                rcol[mine], contacts[mine], axis
            )
            k["product_usage_rate"] = usage[i][g]
            k["referral_revenue"] = referral[i][g]
            rows += [(name, kpi, *k[kpi][axis.reported]) for kpi in BREAKDOWN_KPIS]
        out[column] = pd.DataFrame(rows, columns=[column, "kpi", *axis.labels[axis.reported]])
    return out


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


def _churn_by_reason(data: Dataset, base: _Base, axis: _Axis) -> pd.DataFrame:
    cust = data.tables["Customers"]
    if cust.empty:
        return pd.DataFrame()
    reason = np.full(len(base.ids), "(no reason given)", dtype=object)
    given = cust["churn_reason"].to_numpy(object)
    reason[base.cpos] = np.where(pd.isna(given), "(no reason given)", given)
    codes, names = pd.factorize(reason)  # each reason's text compared once, not per period
    exact = _Groupings.exact_for(base)
    rows: dict[tuple[str, str], list[float]] = {}
    for p, (a, b) in enumerate(axis.periods):
        lost = np.flatnonzero(base.active[:, a - 1] & ~base.active[:, b])
        lost_codes = codes[lost]
        count = np.bincount(lost_codes, minlength=len(names))
        churned = _sums_by_code(lost_codes, base.mrr[lost, a - 1], len(names), exact)
        for r in np.flatnonzero(count):
            name = names[r]
            rows.setdefault((name, "customers"), [0.0] * len(axis.periods))[p] = float(count[r])
            rows.setdefault((name, "churned_mrr"), [0.0] * len(axis.periods))[p] = (
                churned[r] / base.scale
            )
    out = pd.DataFrame(
        [(r, m, *v) for (r, m), v in sorted(rows.items())],
        columns=["churn_reason", "measure", *axis.labels],
    )
    return out


def _referrals_by_segment(data: Dataset, base: _Base, axis: _Axis) -> pd.DataFrame:
    cust = data.tables["Customers"]
    if cust.empty or cust["referred_by"].isna().all():
        return pd.DataFrame()
    segment_of = dict(zip(cust["customer_id"], cust["segment"].fillna("(no segment)"), strict=True))
    ref_segment = np.full(len(base.ids), None, dtype=object)
    ref_segment[base.cpos] = [
        segment_of.get(r, "(unknown referrer)") if r == r else None  # NaN: not referred
        for r in cust["referred_by"]
    ]
    orders = data.tables["Orders"]
    opos = base.rows_of(orders["customer_id"])
    ocol = axis.col(months_of(orders["order_date"]))
    amount = orders["amount"].to_numpy(float)
    rows = []
    for seg in sorted({s for s in ref_segment if s is not None}):
        members = ref_segment == seg
        vals = []
        for a, b in axis.periods:
            in_p = (ocol >= a) & (ocol <= b) & (opos >= 0)
            vals.append(
                amount[in_p & _at(members, opos)].sum()
                + base.mrr[members, a : b + 1].sum() / base.scale
            )
        rows.append((seg, *vals))
    return pd.DataFrame(rows, columns=["referrer_segment", *axis.labels])
