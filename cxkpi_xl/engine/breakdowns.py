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
from .activity import _first_contact_resolution, _support_and_funnel, _usage_kpis, usage_summary
from .axis import _at, _Axis
from .customers import _referral_revenue
from .feedback import (
    _survey_kpis,
    _survey_kpis_by_group,
    _survey_rows,
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
from .nps import NPS_CATEGORIES as NPS_CATEGORIES
from .nps import _cx_to_revenue as _cx_to_revenue
from .nps import _nps_categories_by_month as _nps_categories_by_month
from .nps import _nps_category_matrix as _nps_category_matrix
from .subscriptions import _Base, _subscription_from_sums, _subscription_kpis

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
