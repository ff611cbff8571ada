"""The period engine: every KPI for every report period, with breakdowns.

Data flows one way: a validated :class:`~cxkpi_xl.reader.Dataset` goes in, a
:class:`Report` comes out. The engine only aggregates (counts, sums, per-customer MRR
movements) and hands the aggregates to the KPI library; the formulas live there.

MRR is held as a customers x months matrix of integer money units (whole units, cents,
... as the data's decimals need; too large a book is refused, never added up wrongly), so
the movement identity MRR(end) = MRR(start) + net new MRR holds exactly in every period.
Month column 0 is the month before the first month with data (nothing is known there), so
the first month with data has blank movements; customers who signed up before it and pay
in it count as active at its start. An MRR cell the reader could not read is unknown, not
zero: the customer's previous month's MRR is carried into it.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from ..catalogue import CATALOGUE
from ..data.periods import GRANULARITIES, label, month_end, months_of, periods_between
from ..data.reader import Dataset, Issue
from ..data.schema import Settings
from ..kpis import advocacy, engagement, retention, revenue, support, surveys, value

NPS_CATEGORIES = ("promoter", "passive", "detractor", "no answer")
SURVEY_KINDS = ("NPS", "CSAT", "CES", "STAR")
MOVEMENTS = ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")
NOT_COMPUTED = frozenset({"cltv_predicted"})
"""Report KPIs the period engine does not compute (the predictive models do)."""

BREAKDOWN_KPIS = (
    "mrr", "net_new_mrr", "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churn", "arpu",
    "net_revenue_retention", "gross_revenue_retention", "customer_churn_rate", "nps", "csat",
    "referral_revenue", "first_contact_resolution_rate", "product_usage_rate",
)  # fmt: skip
"""KPIs shown per segment and per owner in the report."""


@dataclass
class Report:
    """The KPIs of every report period, the breakdowns, and the data issues."""

    granularity: str
    periods: list[str]
    kpis: dict[str, np.ndarray]
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)

    def as_json(self) -> dict[str, Any]:
        """``{"granularity", "periods", "kpis": {id: [value or None, ...]}, "issues": [{"table",
        "row", "column", "value", "problem", "action"}, ...]}``, JSON-native values only."""
        return {
            "granularity": self.granularity,
            "periods": list(self.periods),
            "kpis": {k: [_json_number(v) for v in values] for k, values in self.kpis.items()},
            "issues": [issue_json(i) for i in self.issues],
        }

    def frame(self) -> pd.DataFrame:
        """KPIs as rows, periods as columns."""
        return pd.DataFrame(self.kpis, index=self.periods).T


def _json_number(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def json_value(v: Any) -> str | int | float | bool | None:
    """A data value as JSON holds it: numbers as numbers (11, not 11.0, for a whole
    number), dates as ISO text, a blank as null, anything else as text."""
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, bool | str | int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        ts = pd.Timestamp(v)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    return str(v)


def issue_json(issue: Issue) -> dict[str, Any]:
    """One data issue as ``{"table", "row", "column", "value", "problem", "action"}``."""
    return {
        "table": issue.sheet,
        "row": None if issue.row is None else int(issue.row),
        "column": issue.column,
        "value": json_value(issue.value),
        "problem": issue.problem,
        "action": issue.action,
    }


def report_kpi_ids() -> list[str]:
    """The KPI ids of the report and the JSON output, in catalogue order."""
    return [k.id for k in CATALOGUE if k.in_report and k.id not in NOT_COMPUTED]


# --- the month axis and the customers -------------------------------------------------


def _month_range(data: Dataset) -> tuple[int, int] | None:
    """(first, last) month with data. MRR is a stock: where it exists its last month is
    the last month (a later survey or ticket must not make every customer look churned).
    Customers' dates count only where there is no other data."""
    found: list[np.ndarray] = []
    for table, column in (
        ("MRR", "month"), ("Orders", "order_date"), ("Surveys", "response_date"),
        ("Tickets", "opened_date"), ("Usage", "activity_date"),
        ("Health", "month"), ("Funnel", "month"), ("Costs", "month"),
    ):  # fmt: skip
        frame = data.tables[table]
        if not frame.empty:
            m = months_of(frame[column])
            found.append(m[m >= 0])
    if not any(len(f) for f in found):
        cust = data.tables["Customers"]
        found = [months_of(cust[c]) for c in ("signup_date", "churn_date")]
        found = [f[f >= 0] for f in found]
    found = [f for f in found if len(f)]
    if not found:
        return None
    allm = np.concatenate(found)
    mrr = data.tables["MRR"]
    last = int(months_of(mrr["month"]).max()) if not mrr.empty else int(allm.max())
    return int(allm.min()), last


@dataclass
class _Axis:
    base: int  # month index of column 0 (the month before the first with data)
    size: int  # columns
    periods: list[tuple[int, int]]  # (first col, last col) of every computed period
    labels: list[str]
    reported: slice  # the periods reported

    def col(self, months: np.ndarray) -> np.ndarray:
        """Column of each month index; -1 outside the axis."""
        c = months - self.base
        return np.where((months >= 0) & (c >= 0) & (c < self.size), c, -1)

    @cached_property
    def period_of_col(self) -> np.ndarray:
        """Index of the computed period of each month column (built once per axis)."""
        out = np.full(self.size + 1, -1, dtype=np.int64)  # extra slot maps col -1 to -1
        for p, (a, b) in enumerate(self.periods):
            out[a : b + 1] = p
        return out


def _axis(data: Dataset, granularity: str) -> _Axis | None:
    span = _month_range(data)
    start_setting, end_setting = data.settings["report_start"], data.settings["report_end"]
    if span is None and (start_setting is None or end_setting is None):
        return None
    first, last = span if span is not None else (start_setting, end_setting)
    report_start = start_setting if start_setting is not None else first
    report_end = end_setting if end_setting is not None else last
    first = min(first, report_start)
    end = max(last, report_end)
    # A period that runs past the last month is reported to date: its stock figures are
    # those of the last month, not of empty months after it.
    computed = [(a, min(b, end)) for a, b in periods_between(first, end, granularity)]
    base = computed[0][0] - 1
    size = end - base + 1
    labels = [label(a, granularity) for a, _ in computed]
    lo = next((i for i, (a, b) in enumerate(computed) if b >= report_start), len(computed))
    hi = next((i for i, (a, b) in enumerate(computed) if b >= report_end), len(computed) - 1)
    periods = [(a - base, b - base) for a, b in computed]
    return _Axis(base, size, periods, labels, slice(lo, hi + 1))


class MoneyError(ValueError):
    """MRR too large for the engine to add up exactly; the message is one line."""


MAX_DECIMALS = 6
EXACT_LIMIT = 2**61
"""Bound on any sum the engine takes of MRR in money units: the movement sums of a year
stay below it, and twice it (new + expansion against contraction + churn) fits int64."""


def _money_scale(values: np.ndarray, cols: np.ndarray, size: int) -> int:
    """The money unit of a dataset's MRR: 10 ** (decimals in use, at most 6), so that every
    value is a whole number of units (a book in whole rupiah counts in rupiah, one in
    cents in cents). Raises MoneyError when a year of MRR in those units could exceed
    EXACT_LIMIT, so that no total is ever silently wrong."""
    if not len(values):
        return 1
    # A value has d decimals when a d-decimal number is within its float's precision
    # (1e14 + 0.06 is stored as 1e14 + 0.0625: two decimals, as typed).
    size_ = np.abs(values)
    frac, ulp = size_ - np.trunc(size_), np.spacing(size_)
    decimals = next(
        (
            d
            for d in range(MAX_DECIMALS + 1)
            if (np.abs(frac * 10**d - np.rint(frac * 10**d)) <= 10**d * ulp + 1e-9).all()
        ),
        MAX_DECIMALS,
    )
    scale = 10**decimals
    monthly = np.bincount(cols, weights=np.abs(values), minlength=size)
    year = float(np.convolve(monthly, np.ones(12)).max())  # the largest 12 months' sum
    if year * scale >= EXACT_LIMIT:
        exact = EXACT_LIMIT / scale
        raise MoneyError(
            f"MRR is too large to add up exactly: 12 months of it reach {year:,.0f}, and "
            f"with {decimals} decimal{'s' if decimals != 1 else ''} in use the engine adds "
            f"exactly up to {exact:,.0f}"
            + (
                f"; round the mrr column to whole units (up to {EXACT_LIMIT:,.0f})"
                if decimals
                else ""
            )
        )
    return scale


def _to_units(values: np.ndarray, scale: int) -> np.ndarray:
    """``values`` as int64 counts of 1 / ``scale``, exact for any float below 2**62 / scale
    (the whole part is converted as it is; only the fraction is scaled)."""
    whole = np.trunc(values)
    return whole.astype(np.int64) * scale + np.rint((values - whole) * scale).astype(np.int64)


def _carry_unknown(m: np.ndarray, unknown: np.ndarray, known: np.ndarray) -> None:
    """Fill the months whose MRR could not be read (kpi-definitions: unknown is not zero).
    A customer with a readable month before keeps the previous month's MRR (carried on
    through several unknown months; a month without a row is 0); one without keeps the
    next month's. Either way no churn and no reactivation come from the unreadable
    month. The reader's Data Issues rows say the same (reader._keep_unknown_mrr)."""
    earlier = (np.cumsum(known, axis=1) - known) > 0  # a readable month before this one
    forward = unknown & earlier
    for t in np.flatnonzero(forward.any(axis=0)):
        rows = forward[:, t]
        m[rows, t] = m[rows, t - 1]
    backward = unknown & ~earlier
    T = m.shape[1]
    for t in np.flatnonzero(backward.any(axis=0))[::-1]:
        rows = backward[:, t]
        m[rows, t] = m[rows, t + 1] if t + 1 < T else 0


class _Base:
    """Per-customer matrices shared by the KPIs: MRR and activity by month."""

    def __init__(self, data: Dataset, axis: _Axis):
        self.axis = axis
        cust = data.tables["Customers"]
        mrr = data.tables["MRR"]
        ids = pd.Index(
            pd.unique(pd.concat([cust["customer_id"], mrr["customer_id"]], ignore_index=True))
        )
        self.ids = ids
        n, T = len(ids), axis.size
        self.in_customers = np.zeros(n, dtype=bool)
        cpos = ids.get_indexer(cust["customer_id"])
        self.in_customers[cpos] = True
        self.cpos = cpos
        # MRR in integer money units (exact sums; see _money_scale)
        mpos = ids.get_indexer(mrr["customer_id"])
        mcol = axis.col(months_of(mrr["month"]))
        ok = mcol >= 0
        values = mrr["mrr"].to_numpy(float)
        known = ok & ~np.isnan(values)
        cell = mpos * T + mcol
        self.scale = _money_scale(values[known], mcol[known], T)
        flat = np.zeros(n * T, dtype=np.int64)
        np.add.at(flat, cell[known], _to_units(values[known], self.scale))
        self.mrr = flat.reshape(n, T)
        unknown = np.zeros(n * T, dtype=bool)
        unknown[cell[ok & ~known]] = True
        if unknown.any():
            has_known = np.zeros(n * T, dtype=bool)
            has_known[cell[known]] = True
            _carry_unknown(self.mrr, unknown.reshape(n, T), has_known.reshape(n, T))
        self.mrr[:, 0] = 0  # nothing is known before the data
        has_mrr = np.zeros(n, dtype=bool)
        has_mrr[mpos] = True
        self.has_mrr = has_mrr
        self.has_mrr_data = bool(len(mrr))
        # the first month with MRR data (T: none)
        rows_by_col = np.bincount(mcol[ok], minlength=T) if ok.any() else np.zeros(T, int)
        first = int(np.flatnonzero(rows_by_col)[0]) if rows_by_col.any() else T
        # activity at each month's end
        signup = np.full(n, np.iinfo(np.int64).max // 2)
        churn = np.full(n, np.iinfo(np.int64).max // 2)
        sm = months_of(cust["signup_date"])
        cm = months_of(cust["churn_date"])
        signup[cpos] = np.where(sm >= 0, sm - axis.base, signup[cpos])
        churn[cpos] = np.where(cm >= 0, cm - axis.base, churn[cpos])
        has_churn_date = np.zeros(n, dtype=bool)
        has_churn_date[cpos] = cm >= 0
        self.signup_col, self.churn_col = signup, churn
        self.date_based = self.in_customers & (has_churn_date | ~has_mrr)
        t = np.arange(T)
        by_dates = (signup[:, None] <= t) & (t < churn[:, None])
        by_mrr = self.mrr > 0
        if first < T:
            # Before the first month with MRR data nobody's MRR is known: a customer who
            # signed up before it and pays in it was active since signing up, as the
            # dates would say (kpi-definitions: the start of the first period).
            before = (t < first) & by_dates & (self.mrr[:, first] > 0)[:, None]
            by_mrr = by_mrr | before
        self.active = np.where(self.date_based[:, None], by_dates, by_mrr)
        self._movements()

    def _movements(self) -> None:
        m = self.mrr
        prev, cur = m[:, :-1], m[:, 1:]
        ever = np.maximum.accumulate(m > 0, axis=1)[:, :-1]
        started = (prev == 0) & (cur > 0)
        zeros = np.zeros_like(cur)
        self.move = {
            "mrr_new": np.where(started & ~ever, cur, zeros),
            "mrr_reactivation": np.where(started & ever, cur, zeros),
            "mrr_expansion": np.where((prev > 0) & (cur > prev), cur - prev, zeros),
            "mrr_contraction": np.where((cur > 0) & (cur < prev), prev - cur, zeros),
            "mrr_churn": np.where((prev > 0) & (cur == 0), prev, zeros),
        }  # column j is the movement into month column j + 1

    def subset(self, rows: np.ndarray, cust_rows: np.ndarray) -> _Base:
        """The base of the customers at ``rows`` (ascending), as if built from their data
        alone; ``cust_rows`` are their rows in the Customers table, in table order."""
        sub = copy.copy(self)
        sub.ids = self.ids[rows]
        for name in ("in_customers", "has_mrr", "mrr", "signup_col", "churn_col", "date_based"):
            setattr(sub, name, getattr(self, name)[rows])
        sub.active = self.active[rows]
        sub.move = {m: v[rows] for m, v in self.move.items()}
        sub.cpos = np.searchsorted(rows, self.cpos[cust_rows])
        sub.has_mrr_data = bool(sub.has_mrr.any())
        return sub

    def touched(self, a: int, b: int) -> np.ndarray:
        """Customers active at some time in months a..b."""
        by_dates = (self.signup_col <= b) & (self.churn_col >= a)
        return np.where(self.date_based, by_dates, self.active[:, a : b + 1].any(axis=1))


# --- helpers --------------------------------------------------------------------------


def _per_period(cols: np.ndarray, values: np.ndarray | None, axis: _Axis) -> np.ndarray:
    """Sum of ``values`` (or a count) per computed period, from month columns."""
    pcol = axis.period_of_col[cols]
    ok = pcol >= 0
    w = None if values is None else values[ok]
    return np.bincount(pcol[ok], weights=w, minlength=len(axis.periods)).astype(float)


def _blank_without(frame: pd.DataFrame, out: np.ndarray) -> np.ndarray:
    """An aggregate of a table the user does not have is blank, not zero."""
    return out if not frame.empty else np.full(out.shape, np.nan)


def _at(mask: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``mask[pos]``, False where ``pos`` is -1 (a customer not in the customer list)."""
    if len(mask) == 0:
        return np.zeros(len(pos), dtype=bool)
    return (pos >= 0) & mask[np.maximum(pos, 0)]


def _each(periods: Iterable[Any], fn: Callable[..., float]) -> np.ndarray:
    return np.array([fn(*p) if isinstance(p, tuple) else fn(p) for p in periods], dtype=float)


# --- the KPIs ---------------------------------------------------------------------------


def _subscription_kpis(
    base: _Base, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]
) -> dict[str, Any]:
    """MRR, movements, NRR/GRR, churn and retention; returns per-period customer sets
    used by other KPIs."""
    P = len(axis.periods)
    m = base.mrr
    mrr_end = np.array([m[:, b].sum() for _, b in axis.periods], dtype=np.int64)
    mrr_start = np.array([m[:, a - 1].sum() for a, _ in axis.periods], dtype=np.int64)
    has = base.has_mrr_data
    k["mrr"] = mrr_end / base.scale if has else np.full(P, np.nan)
    moves: dict[str, np.ndarray] = {}
    for name, matrix in base.move.items():
        sums = np.array([matrix[:, a - 1 : b].sum() for a, b in axis.periods], dtype=np.int64)
        moves[name] = sums
    mrr_cols = np.flatnonzero(m.any(axis=0))
    first_mrr = int(mrr_cols[0]) if len(mrr_cols) else axis.size
    # no month before the first month with MRR data: its movements are blank
    first_data = np.array([a <= first_mrr for a, _ in axis.periods])
    for name, sums in moves.items():
        k[name] = np.where(first_data | (not has), np.nan, sums / base.scale)
    net = (
        moves["mrr_new"]
        + moves["mrr_reactivation"]
        + moves["mrr_expansion"]
        - moves["mrr_contraction"]
        - moves["mrr_churn"]
    )
    k["net_new_mrr"] = np.where(first_data | (not has), np.nan, net / base.scale)
    paying_end = np.array([(m[:, b] > 0).sum() for _, b in axis.periods], dtype=float)
    k["arpu"] = revenue.arpu(k["mrr"], paying_end) if has else np.full(P, np.nan)
    # cohort NRR and GRR: customers paying at the start
    exp, con, chu = (np.zeros(P) for _ in range(3))
    expanded = np.zeros(P)
    for p, (a, b) in enumerate(axis.periods):
        start, end = m[:, a - 1], m[:, b]
        cohort = start > 0
        s, e = start[cohort], end[cohort]
        exp[p] = np.where((e > s), e - s, 0).sum()
        con[p] = np.where((e > 0) & (e < s), s - e, 0).sum()
        chu[p] = np.where(e == 0, s, 0).sum()
        expanded[p] = (base.move["mrr_expansion"][:, a - 1 : b].sum(axis=1) > 0)[cohort].sum()
    start_mrr = np.where(has & ~first_data, mrr_start / base.scale, np.nan)
    k["net_revenue_retention"] = retention.net_revenue_retention(
        start_mrr, exp / base.scale, con / base.scale, chu / base.scale
    )
    k["gross_revenue_retention"] = retention.gross_revenue_retention(
        start_mrr, con / base.scale, chu / base.scale
    )
    k["revenue_churn_rate"] = retention.revenue_churn_rate(
        start_mrr, k["mrr_contraction"], k["mrr_churn"]
    )
    k["quick_ratio"] = revenue.quick_ratio(
        k["mrr_new"],
        k["mrr_expansion"],
        k["mrr_contraction"],
        k["mrr_churn"],
        k["mrr_reactivation"],
    )
    paying_start = np.array([(m[:, a - 1] > 0).sum() for a, _ in axis.periods], dtype=float)
    k["expanded_accounts_rate"] = retention.expanded_accounts_rate(
        np.where(has & ~first_data, expanded, np.nan), paying_start
    )
    # customer counts under the churn convention
    A = base.active
    S = np.array([A[:, a - 1].sum() for a, _ in axis.periods], dtype=float)
    E = np.array([A[:, b].sum() for _, b in axis.periods], dtype=float)
    lost = np.zeros(P)
    new = np.zeros(P)
    joined_left = np.zeros(P)
    for p, (a, b) in enumerate(axis.periods):
        s_, e_ = A[:, a - 1], A[:, b]
        lost[p] = (s_ & ~e_).sum()
        new[p] = (e_ & ~s_).sum()
        touched = base.touched(a, b)
        joined_left[p] = (touched & ~s_ & ~e_).sum()
    convention = settings["churn_convention"]
    if len(base.ids) == 0:
        S = E = lost = new = joined_left = np.full(P, np.nan)
    if convention == "start":
        k["customer_churn_rate"] = retention.customer_churn_rate(S, lost)
    elif convention == "include_new":
        k["customer_churn_rate"] = retention.customer_churn_rate(S, lost + joined_left)
    else:  # stripe: all churned over start plus every customer who joined in the period
        touched_new = new + joined_left
        k["customer_churn_rate"] = retention.customer_churn_rate(
            S + touched_new, lost + joined_left
        )
    k["customer_retention_rate"] = retention.customer_retention_rate(S, E, new)
    return {"S": S, "E": E, "paying_start": paying_start}


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


def _split_by_period(values: np.ndarray, periods: np.ndarray, count: int) -> list[np.ndarray]:
    """``values`` grouped by period index (rows with period -1 are left out)."""
    keep = periods >= 0
    order = np.argsort(periods[keep], kind="stable")
    sorted_values, sorted_periods = values[keep][order], periods[keep][order]
    bounds = np.searchsorted(sorted_periods, np.arange(count + 1))
    return [sorted_values[bounds[p] : bounds[p + 1]] for p in range(count)]


def _survey_kpis(data: Dataset, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]) -> None:
    sv = data.tables["Surveys"]
    P = len(axis.periods)
    pcol = axis.period_of_col[axis.col(months_of(sv["response_date"]))]
    kind = pd.Categorical(sv["survey"], categories=SURVEY_KINDS).codes
    score = sv["score"].to_numpy(float)
    groups = {
        t: _split_by_period(score[kind == i], pcol[kind == i], P)
        for i, t in enumerate(SURVEY_KINDS)
    }
    csat_scale, csat_threshold = int(settings["csat_scale"]), settings["csat_threshold"]
    ces_scale = int(settings["ces_scale"])
    k["nps"] = _each(groups["NPS"], surveys.nps)
    k["nps_margin_of_error"] = _each(groups["NPS"], surveys.nps_margin_of_error)
    k["csat"] = _each(groups["CSAT"], lambda s: surveys.csat(s, csat_scale, csat_threshold))
    k["ces"] = _each(groups["CES"], lambda s: surveys.ces(s, ces_scale))
    k["ces_easy_rate"] = _each(groups["CES"], lambda s: surveys.ces_easy_rate(s, ces_scale))
    k["star_rating"] = _each(groups["STAR"], surveys.star_rating)


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


def _referral_revenue(data: Dataset, base: _Base, axis: _Axis, ocol: np.ndarray) -> np.ndarray:
    """Order revenue and MRR of referred customers per period (``ocol``: each order's
    month column)."""
    cust, orders = data.tables["Customers"], data.tables["Orders"]
    if cust.empty or (orders.empty and not base.has_mrr_data):
        return np.full(len(axis.periods), np.nan)
    referred = np.zeros(len(base.ids), dtype=bool)
    referred[base.cpos] = cust["referred_by"].notna().to_numpy()
    o_ref = _at(referred, base.ids.get_indexer(orders["customer_id"]))
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
    if cust.empty:
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


# --- breakdowns ---------------------------------------------------------------------------


def _nps_category_matrix(data: Dataset, base: _Base, axis: _Axis) -> np.ndarray:
    """Each customer's latest NPS category up to each month's end (-1: none)."""
    sv = data.tables["Surveys"]
    nps_rows = sv[(sv["survey"] == "NPS") & sv["customer_id"].notna()]
    n, T = len(base.ids), axis.size
    cat = np.full((n, T), -1, dtype=np.int8)
    if nps_rows.empty or n == 0:
        return cat
    nps_rows = nps_rows.sort_values("response_date", kind="stable")
    pos = base.ids.get_indexer(nps_rows["customer_id"])
    col = axis.col(months_of(nps_rows["response_date"]))
    score = nps_rows["score"].to_numpy(float)
    code = np.where(
        score >= surveys.PROMOTER_FROM, 0, np.where(score <= surveys.DETRACTOR_UP_TO, 2, 1)
    )
    ok = (pos >= 0) & (col >= 0)
    cat[pos[ok], col[ok]] = code[ok]  # later answers in a month overwrite earlier ones
    for t in range(1, T):
        cat[:, t] = np.where(cat[:, t] == -1, cat[:, t - 1], cat[:, t])
    return cat


def _cx_to_revenue(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray]
) -> pd.DataFrame:
    """NRR, customer churn and referral revenue by the customers' NPS category before
    each period (seeds 000 and 001: does CX pay?)."""
    cat = _nps_category_matrix(data, base, axis)
    cust = data.tables["Customers"]
    referrer = np.full(len(base.ids), -1)
    if not cust.empty:
        ref_pos = base.ids.get_indexer(cust["referred_by"])
        referrer[base.cpos] = ref_pos
    orders = data.tables["Orders"]
    opos = base.ids.get_indexer(orders["customer_id"])
    ocol = axis.col(months_of(orders["order_date"]))
    amount = orders["amount"].to_numpy(float)
    rows = []
    for code, name in enumerate(NPS_CATEGORIES):
        nrr, churn, referral = [], [], []
        for a, b in axis.periods:
            category = cat[:, a - 1]
            members = category == (code if code < 3 else -1)
            start, end = base.mrr[:, a - 1], base.mrr[:, b]
            cohort = members & (start > 0)
            s, e = start[cohort], end[cohort]
            nrr.append(
                retention.net_revenue_retention(
                    s.sum() / base.scale if base.has_mrr_data and a > 1 else np.nan,
                    np.where(e > s, e - s, 0).sum() / base.scale,
                    np.where((e > 0) & (e < s), s - e, 0).sum() / base.scale,
                    np.where(e == 0, s, 0).sum() / base.scale,
                )
            )
            act_s, act_e = base.active[:, a - 1], base.active[:, b]
            churn.append(
                retention.customer_churn_rate(
                    (members & act_s).sum(), (members & act_s & ~act_e).sum()
                )
            )
            by_member = np.zeros(len(base.ids), dtype=bool)
            valid = referrer >= 0
            by_member[valid] = members[referrer[valid]]
            in_p = (ocol >= a) & (ocol <= b) & (opos >= 0)
            order_part = amount[in_p & _at(by_member, opos)].sum()
            referral.append(
                order_part + base.mrr[by_member, a : b + 1].sum() / base.scale
                if not cust.empty
                else np.nan
            )
        rows += [
            (name, "net_revenue_retention", *nrr),
            (name, "customer_churn_rate", *churn),
            (name, "referral_revenue", *referral),
        ]
    return pd.DataFrame(rows, columns=["nps_category", "kpi", *axis.labels])


def _cohorts(base: _Base, axis: _Axis) -> dict[str, pd.DataFrame]:
    """Signup-month cohorts x months since start: logos and revenue retained."""
    m = base.mrr
    T = m.shape[1]
    paying = m > 0
    first = np.where(paying.any(axis=1), paying.argmax(axis=1), -1)
    first = np.where(
        (first < 0) & base.in_customers & (base.signup_col >= 1) & (base.signup_col < T),
        base.signup_col,
        first,
    )
    logos, revenue_rows, names = [], [], []
    for c in range(1, T):
        members = first == c
        if not members.any():
            continue
        size = members.sum()
        start_mrr = m[members, c].sum()
        ages = T - c
        logos.append([base.active[members, c + a].sum() / size for a in range(ages)])
        revenue_rows.append(
            [m[members, c + a].sum() / start_mrr if start_mrr else np.nan for a in range(ages)]
        )
        names.append(label(axis.base + c, "month"))
    width = max((len(r) for r in logos), default=0)
    pad = lambda rows: [r + [np.nan] * (width - len(r)) for r in rows]  # noqa: E731
    return {
        "cohort_logos": pd.DataFrame(pad(logos), index=names, columns=range(width)),
        "cohort_revenue": pd.DataFrame(pad(revenue_rows), index=names, columns=range(width)),
    }


def _churn_by_reason(data: Dataset, base: _Base, axis: _Axis) -> pd.DataFrame:
    cust = data.tables["Customers"]
    if cust.empty:
        return pd.DataFrame()
    reason = np.full(len(base.ids), "(no reason given)", dtype=object)
    given = cust["churn_reason"].to_numpy(object)
    reason[base.cpos] = np.where(pd.isna(given), "(no reason given)", given)
    rows: dict[tuple[str, str], list[float]] = {}
    for p, (a, b) in enumerate(axis.periods):
        lost = base.active[:, a - 1] & ~base.active[:, b]
        for r in np.unique(reason[lost]):
            sel = lost & (reason == r)
            rows.setdefault((r, "customers"), [0.0] * len(axis.periods))[p] = float(sel.sum())
            rows.setdefault((r, "churned_mrr"), [0.0] * len(axis.periods))[p] = (
                base.mrr[sel, a - 1].sum() / base.scale
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
    opos = base.ids.get_indexer(orders["customer_id"])
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


_WORD = re.compile(r"[a-z][a-z']+")
STOP_WORDS = frozenset(
    "a about after all also am an and any are as at be because been but by can could did do "
    "does for from get got had has have he her him his how i if in into is it its just me more "
    "most my no not now of on one only or other our out really so some than that the their them "
    "then there these they this to too up us very was we were what when which who will with "
    "would you your it's i'm don't".split()
)


def feedback_themes(comments: Iterable[Any], top: int = 10) -> list[tuple[str, int]]:
    """The most frequent words and two-word phrases of free-text comments, stop words
    left out (seed 004's qualitative feedback). Ties are in alphabetical order, so the
    same comments always give the same list."""
    counts: Counter[str] = Counter()
    texts = pd.Series(list(comments), dtype=object)
    texts = texts[texts.map(lambda t: isinstance(t, str))]
    for text, n in texts.str.lower().value_counts().items():  # each distinct text once
        words = [w for w in _WORD.findall(text) if w not in STOP_WORDS]
        for term in set(words) | {f"{x} {y}" for x, y in pairwise(words)}:
            counts[term] += int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _themes(data: Dataset, axis: _Axis) -> pd.DataFrame:
    sv = data.tables["Surveys"]
    nps_rows = sv[(sv["survey"] == "NPS") & sv["comment"].notna()]
    if nps_rows.empty:
        return pd.DataFrame()
    a = axis.periods[axis.reported.start][0] if axis.periods[axis.reported] else 0
    b = axis.periods[axis.reported.stop - 1][1] if axis.periods[axis.reported] else -1
    col = axis.col(months_of(nps_rows["response_date"]))
    nps_rows = nps_rows[(col >= a) & (col <= b)]
    score = nps_rows["score"].to_numpy(float)
    category = np.where(
        score >= surveys.PROMOTER_FROM,
        "promoter",
        np.where(score <= surveys.DETRACTOR_UP_TO, "detractor", "passive"),
    )
    rows = []
    for name in ("promoter", "passive", "detractor"):
        for rank, (theme, count) in enumerate(
            feedback_themes(nps_rows["comment"][category == name]), 1
        ):
            rows.append((name, rank, theme, count))
    return pd.DataFrame(rows, columns=["nps_category", "rank", "theme", "responses"])


P_ALIVE_BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _predictive(
    data: Dataset, base: _Base, axis: _Axis, issues: list[Issue]
) -> dict[str, pd.DataFrame]:
    """Predicted CLV by segment and the P(alive) distribution from the Orders (BG/NBD
    with Gamma-Gamma), and projected retention of the oldest MRR cohort (sBG). A model
    that cannot be fitted on these data is reported as a data issue, not an error."""
    from ..models import ModelError, cltv_predicted, sbg_retention

    out: dict[str, pd.DataFrame] = {}
    orders = data.tables["Orders"]
    if len(orders):
        end = (
            axis.periods[axis.reported.stop - 1][1]
            if axis.periods[axis.reported]
            else axis.size - 1
        )
        end_date = pd.Timestamp(month_end(axis.base + end))
        upto = orders[orders["order_date"] <= end_date]
        try:
            table = cltv_predicted(
                upto["customer_id"], upto["order_date"], upto["amount"], 12, 0.01, end_date
            )
        except (ModelError, ValueError) as e:
            issues.append(
                Issue(
                    "Orders",
                    None,
                    "",
                    None,
                    f"predictive CLV not computed: {e}",
                    "left it out of the report",
                )
            )
        else:
            cust = data.tables["Customers"]
            segment = dict(
                zip(cust["customer_id"], cust["segment"].fillna("(no segment)"), strict=True)
            )
            # the ids are the float codes of _encode_ids, which the model gives back as text
            table["segment"] = [segment.get(float(c), "(not in Customers)") for c in table.index]
            by_segment = table.groupby("segment").agg(
                customers=("predicted_clv", "size"),
                predicted_clv_mean=("predicted_clv", "mean"),
                predicted_clv_total=("predicted_clv", "sum"),
                p_alive_mean=("p_alive", "mean"),
            )
            out["predicted_clv_by_segment"] = by_segment
            names = [f"{lo:.0%}-{hi:.0%}" for lo, hi in pairwise(P_ALIVE_BANDS)]
            bands = pd.cut(table["p_alive"], P_ALIVE_BANDS, labels=names, include_lowest=True)
            dist = table.groupby(bands, observed=False)["predicted_clv"].agg(["size", "sum"])
            dist.columns = ["customers", "predicted_clv_total"]
            dist.index.name = "p_alive"
            out["p_alive_distribution"] = dist
    if base.has_mrr_data:
        m = base.mrr
        paying = m > 0
        first = np.where(paying.any(axis=1), paying.argmax(axis=1), -1)
        start = int(first[first >= 1].min()) if (first >= 1).any() else -1
        if start >= 1 and axis.size - start >= 4:
            # sBG is contractual: a customer counts until the first month without MRR.
            members = first == start
            never_left = np.logical_and.accumulate(paying[members, start:], axis=1)
            survival = never_left.sum(axis=0).astype(int).tolist()
            try:
                projected = sbg_retention(survival, periods=12)
            except (ModelError, ValueError) as e:
                issues.append(
                    Issue(
                        "MRR",
                        None,
                        "",
                        None,
                        f"projected retention not computed: {e}",
                        "left it out of the report",
                    )
                )
            else:
                projected.index.name = f"months since {label(axis.base + start, 'month')}"
                out["projected_retention"] = projected
    return out


# --- putting it together --------------------------------------------------------------------


def _core(
    data: Dataset, axis: _Axis, issues: list[Issue]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every KPI per computed period."""
    settings = data.settings
    base = _Base(data, axis)
    months_per_period = np.array([b - a + 1 for a, b in axis.periods], dtype=float)
    k: dict[str, np.ndarray] = {}
    counts = _subscription_kpis(base, axis, settings, k)
    order_info = _order_kpis(data, base, axis, k, months_per_period)
    _survey_kpis(data, axis, settings, k)
    _support_and_funnel(data, axis, k)
    adoption = _usage_kpis(data, base, axis, k)
    _customer_kpis(data, base, axis, settings, k, counts, order_info, months_per_period)
    _health_kpis(data, base, axis, settings, k, issues)
    return k, {"base": base, "adoption": adoption, "tiers": order_info["tiers"]}


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
    computed on the data of that group's customers only (Funnel and Costs, which have no
    customer, are left out). The customer matrices are the report's, cut by rows."""
    from ..data.schema import TABLES

    # Each row's customer in the Customers table, found once for every column; only the
    # tables _breakdown_kpis reads (MRR is in the matrices already).
    ids = pd.Index(data.tables["Customers"]["customer_id"])
    needed = ("Customers", "Orders", "Surveys", "Tickets", "Usage")
    positions = {
        t.name: ids.get_indexer(data.tables[t.name][t.customer_column])
        for t in TABLES
        if t.name in needed and t.customer_column is not None
    }
    return {c: _group_breakdown(data, base, axis, c, positions) for c in columns}


def _group_breakdown(
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

    def one_group(g: int) -> dict[str, np.ndarray]:
        tables = {
            t.name: (
                data.tables[t.name][table_groups[t.name] == g]
                if t.name in table_groups
                else data.tables[t.name].iloc[0:0]
            )
            for t in TABLES
        }
        sub = base.subset(np.flatnonzero(row_group == g), np.flatnonzero(group_codes == g))
        return _breakdown_kpis(Dataset(tables, data.settings, [], data.source), sub, axis)

    # The groups are independent and numpy releases the GIL in most of the work.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(one_group, range(len(names))))
    rows = [
        (name, kpi, *k[kpi][axis.reported])
        for name, k in zip(names, results, strict=True)
        for kpi in BREAKDOWN_KPIS
    ]
    return pd.DataFrame(rows, columns=[column, "kpi", *axis.labels[axis.reported]])


def _encode_ids(data: Dataset) -> Dataset:
    """The data with every customer id (and ``referred_by``) as a float code, NaN for a
    blank: one hashing of the id strings instead of one per lookup."""
    from ..data.schema import TABLES

    cols = [(t.name, t.customer_column) for t in TABLES if t.customer_column is not None]
    cols.append(("Customers", "referred_by"))
    parts = [data.tables[t][c] for t, c in cols]
    codes, _ = pd.factorize(pd.concat(parts, ignore_index=True).to_numpy(object))
    floats = np.where(codes < 0, np.nan, codes.astype(float))
    tables = dict(data.tables)
    start = 0
    for (t, c), part in zip(cols, parts, strict=True):
        if tables[t] is data.tables[t]:
            tables[t] = tables[t].copy(deep=False)
        tables[t][c] = floats[start : start + len(part)]
        start += len(part)
    return Dataset(tables, data.settings, data.issues, data.source)


def compute(data: Dataset, *, breakdowns: bool = True) -> Report:
    """Every KPI of the report for every period of ``data.settings``' granularity.

    Periods run from ``report_start`` to ``report_end`` (by default the first and last
    month with data). With ``breakdowns`` the report also holds the KPIs by segment and
    by owner, the cohort matrices, the CX-to-revenue split, churn by reason, referral
    revenue by the referrer's segment, feature adoption, repeat purchase tiers and the
    feedback themes.
    """
    settings = data.settings
    granularity = settings["granularity"]
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be month, quarter or year, not {granularity!r}")
    issues = list(data.issues)
    data = _encode_ids(data)
    axis = _axis(data, granularity)
    ids = report_kpi_ids()
    if axis is None:
        return Report(granularity, [], {i: np.zeros(0) for i in ids}, {}, issues, settings)
    k, extra = _core(data, axis, issues)
    sl = axis.reported
    report = Report(
        granularity,
        axis.labels[sl],
        {i: np.asarray(k[i], dtype=float)[sl] for i in ids},
        {},
        issues,
        settings,
    )
    if breakdowns:
        base = extra["base"]
        b = report.breakdowns
        labels = axis.labels[sl]
        movements = pd.DataFrame(
            {m: report.kpis[m] for m in ("mrr", *MOVEMENTS, "net_new_mrr")}, index=labels
        )
        b["mrr_movements"] = movements
        b.update(_group_breakdowns(data, base, axis, ("segment", "owner")))
        cx = _cx_to_revenue(data, base, axis, k)
        b["nps_category"] = cx[["nps_category", "kpi", *labels]]
        b.update(_cohorts(base, axis))
        reasons = _churn_by_reason(data, base, axis)
        b["churn_reason"] = (
            reasons[["churn_reason", "measure", *labels]] if not reasons.empty else reasons
        )
        refs = _referrals_by_segment(data, base, axis)
        b["referrals_by_segment"] = refs[["referrer_segment", *labels]] if not refs.empty else refs
        adoption = extra["adoption"]
        b["feature_adoption"] = adoption[labels] if not adoption.empty else adoption
        tiers = extra["tiers"]
        b["repeat_purchase_tiers"] = tiers[labels] if not tiers.empty else tiers
        b["feedback_themes"] = _themes(data, axis)
        b.update(_predictive(data, base, axis, report.issues))
    return report
