"""The MRR base and the subscription KPIs.

MRR is held as a customers x months matrix of integer money units (whole units, cents,
... as the data's decimals need; too large a book is refused, never added up wrongly),
so the movement identity MRR(end) = MRR(start) + net new MRR holds exactly in every
period. Month column 0 is the month before the first month with data (nothing is known
there), so the first month with data has blank movements. From the matrix: MRR, its
movements, NRR, GRR, revenue churn, quick ratio, customer churn and retention."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..data.periods import forget_months, months_of
from ..data.reader import Dataset
from ..data.schema import Settings
from ..kpis import retention, revenue
from .axis import _Axis
from .mrr import EXACT_LIMIT as EXACT_LIMIT
from .mrr import MAX_DECIMALS as MAX_DECIMALS
from .mrr import MOVEMENTS as MOVEMENTS
from .mrr import MoneyError as MoneyError
from .mrr import (
    _carry_unknown,
    _code_table,
    _ids_of,
    _money_scale,
    _movement_columns,
    _Moves,
    _to_units,
    _touched,
)
from .mrr import _small_mrr as _small_mrr

_ROWS_AT_A_TIME = 2**22
"""MRR rows added into the matrix at a time (their integer units a small temporary)."""


class _Base:
    """Per-customer matrices shared by the KPIs: MRR and activity by month."""

    _abs_total: tuple[np.ndarray, float]

    def __init__(self, data: Dataset, axis: _Axis):
        self.axis = axis
        cust = data.tables["Customers"]
        mrr = data.tables["MRR"]
        ids = pd.Index(_ids_of(cust["customer_id"], mrr["customer_id"]))
        self.ids = ids
        self._row_of_code = _code_table(ids.to_numpy())
        n, T = len(ids), axis.size
        self.in_customers = np.zeros(n, dtype=bool)
        cpos = self.rows_of(cust["customer_id"])
        self.in_customers[cpos] = True
        self.cpos = cpos
        # MRR in integer money units (exact sums; see _money_scale); each temporary of a
        # row per MRR row is let go as soon as it is used (tens of millions of rows)
        mpos = self.rows_of(mrr["customer_id"])
        has_mrr = np.zeros(n, dtype=bool)
        has_mrr[mpos] = True
        mcol = axis.col(months_of(mrr["month"]))
        forget_months(mrr["month"])  # read again by no other part of compute
        ok = mcol >= 0
        values = mrr["mrr"].to_numpy(float)
        known = ok & ~np.isnan(values)
        every = bool(known.all())  # then no copy of the known rows
        cell = mpos * T + mcol
        del mpos
        self.scale = _money_scale(
            values if every else values[known], mcol if every else mcol[known], T
        )
        # the first month with MRR data (T: none)
        rows_by_col = np.bincount(mcol[ok], minlength=T) if ok.any() else np.zeros(T, int)
        del mcol
        flat = np.zeros(n * T, dtype=np.int64)
        known_cells = cell if every else cell[known]
        known_values = values if every else values[known]
        for lo in range(0, len(known_cells), _ROWS_AT_A_TIME):  # small temporaries
            part = slice(lo, lo + _ROWS_AT_A_TIME)
            np.add.at(flat, known_cells[part], _to_units(known_values[part], self.scale))
        del known_values
        self.mrr = flat.reshape(n, T)
        if not every:
            unknown = np.zeros(n * T, dtype=bool)
            unknown[cell[ok & ~known]] = True
            if unknown.any():
                has_known = np.zeros(n * T, dtype=bool)
                has_known[known_cells] = True
                _carry_unknown(self.mrr, unknown.reshape(n, T), has_known.reshape(n, T))
        del cell, known_cells
        self.mrr[:, 0] = 0  # nothing is known before the data
        self.has_mrr = has_mrr
        self.has_mrr_data = bool(len(mrr))
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
        # the Usage summary's (period, customer) flags and customers with a triple
        # (engine.activity._usage_pass)
        self._usage_flags: tuple[Any, np.ndarray, np.ndarray] | None = None

    @cached_property
    def move(self) -> Mapping[str, np.ndarray]:
        """The five MRR movements as customers x (months - 1) matrices, each made when
        first read (the report's sums read them a column at a time instead:
        :meth:`movement_columns`)."""
        return _Moves(self.mrr)

    def _movements(self) -> None:
        """The movements of :attr:`mrr` as it is now (after a change to it)."""
        self.move = _Moves(self.mrr)
        self.__dict__.pop("by_month", None)

    @cached_property
    def by_month(self) -> np.ndarray:
        """:attr:`mrr` as months x customers, each month's MRR contiguous (a column of the
        customers x months matrix is strided), in 32 bits when every cell is in
        0 .. 2**31 - 1: half the memory, and a difference of two cells still fits; numpy
        adds int32 up in int64 (``dtype=np.int64`` where it matters), so every sum stays
        exact."""
        m = self.mrr
        small = m.size and m.min() >= 0 and m.max() < 2**31
        return np.ascontiguousarray(m.T, dtype=np.int32 if small else m.dtype)

    @cached_property
    def active_by_month(self) -> np.ndarray:
        """:attr:`active` as months x customers, each month's flags contiguous."""
        return np.ascontiguousarray(self.active.T)

    def abs_total(self) -> float:
        """The sum of |MRR| over every cell, in float64 (groups._Groupings.exact_for), taken
        once for the matrix :attr:`mrr` is."""
        kept = self.__dict__.get("_abs_total")
        if kept is None or kept[0] is not self.mrr:
            mt = self.by_month
            if mt.dtype == np.int32:  # every cell in 0 .. 2**31 - 1: exact in int64
                total = float(mt.sum(dtype=np.int64))
            else:
                total = float(np.abs(self.mrr).sum(dtype=np.float64))
            kept = self._abs_total = (self.mrr, total)
        return kept[1]

    def movement_columns(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(j, movements)`` for each movement column j = 0 .. T - 2 (the movements into
        month column j + 1): ``movements[name]`` is column j of ``move[name]``, made from
        two rows of :attr:`by_month` without the customers x months matrices."""
        return _movement_columns(self.by_month)

    def rows_of(self, values: Any) -> np.ndarray:
        """Each value's row in :attr:`ids` (-1: none), as ``ids.get_indexer(values)``; for
        the float codes ``compute`` gives the ids, by a table of the codes (no hashing)."""
        v = np.asarray(values)
        table = self._row_of_code
        if table is None or v.dtype != np.float64:
            return self.ids.get_indexer(values)
        codes = np.where(np.isnan(v), -1.0, v)
        if not len(codes):
            return np.zeros(0, dtype=np.int64)
        whole = codes.min() >= -1 and codes.max() < 2**62 and (codes == np.trunc(codes)).all()
        if not whole:
            return self.ids.get_indexer(values)  # not the engine's codes
        codes = codes.astype(np.int64)
        codes[codes >= len(table) - 1] = -1  # an id none of the rows has
        return table[codes]

    def subset(self, rows: np.ndarray, cust_rows: np.ndarray) -> _Base:
        """The base of the customers at ``rows`` (ascending), as if built from their data
        alone; ``cust_rows`` are their rows in the Customers table, in table order."""
        sub = copy.copy(self)
        sub.ids = self.ids[rows]
        sub._row_of_code = _code_table(sub.ids.to_numpy())
        for name in ("in_customers", "has_mrr", "mrr", "signup_col", "churn_col", "date_based"):
            setattr(sub, name, getattr(self, name)[rows])
        sub.active = self.active[rows]
        for cached in ("move", "by_month", "active_by_month"):
            sub.__dict__.pop(cached, None)  # the subset's own, when first read
        sub.cpos = np.searchsorted(rows, self.cpos[cust_rows])
        sub.has_mrr_data = bool(sub.has_mrr.any())
        sub._usage_flags = None
        return sub

    def touched(self, a: int, b: int) -> np.ndarray:
        """Customers active at some time in months a..b."""
        return _touched(
            self.signup_col, self.churn_col, self.date_based, self.active_by_month, a, b
        )


def _subscription_sums(base: _Base, axis: _Axis) -> dict[str, Any]:
    """The sums over customers that the subscription KPIs are made of, per period (integer
    money units and counts): :func:`_subscription_from_sums` turns them into the KPIs.
    ``groups._subscription_sums_by_group`` gives the same sums for groups of customers.

    Everything is read from the months x customers matrices (``base.by_month``,
    ``base.active_by_month``), a month a contiguous row; the movements a column at a
    time (``base.movement_columns``), never as whole matrices."""
    P, T = len(axis.periods), axis.size
    mt, at = base.by_month, base.active_by_month
    starts = [a - 1 for a, _ in axis.periods]
    ends = [b for _, b in axis.periods]
    sums: dict[str, Any] = {"n": len(base.ids), "has": base.has_mrr_data}
    col_sums = mt.sum(axis=1, dtype=np.int64)
    sums["mrr_end"] = col_sums[ends]
    sums["mrr_start"] = col_sums[starts]
    period_of = axis.period_of_col
    move_cols = {name: np.zeros(T - 1, np.int64) for name in MOVEMENTS}
    expanded = np.zeros(P)
    grew = np.zeros(0, dtype=bool)
    for j, moves in base.movement_columns():
        for name, v in moves.items():
            move_cols[name][j] = v.sum(dtype=np.int64)
        p = period_of[j + 1]  # the period of the month the movement goes into
        if p < 0:
            continue
        a, b = axis.periods[p]
        up = moves["mrr_expansion"] > 0
        grew = up if j + 1 == a else grew | up
        if j + 1 == b:  # customers paying at the start who grew in some month of it
            expanded[p] = np.count_nonzero(grew & (mt[a - 1] > 0))
    sums["moves"] = {
        name: np.array([c[a - 1 : b].sum() for a, b in axis.periods], np.int64)
        for name, c in move_cols.items()
    }
    mrr_cols = np.flatnonzero(np.count_nonzero(mt, axis=1))
    sums["first_mrr"] = int(mrr_cols[0]) if len(mrr_cols) else axis.size
    paying = np.array([np.count_nonzero(mt[c] > 0) for c in range(T)])
    sums["paying_end"] = paying[ends].astype(float)
    exp, con, chu = (np.zeros(P) for _ in range(3))
    for p, (a, b) in enumerate(axis.periods):
        start, end = mt[a - 1], mt[b]
        cohort = start > 0
        change = end - start  # no overflow (by_month)
        exp[p] = change.sum(where=cohort & (change > 0), dtype=np.int64)
        con[p] = -change.sum(where=cohort & (end > 0) & (change < 0), dtype=np.int64)
        chu[p] = start.sum(where=cohort & (end == 0), dtype=np.int64)
    sums.update(exp=exp, con=con, chu=chu, expanded=expanded)
    sums["paying_start"] = paying[starts].astype(float)
    active_cols = np.count_nonzero(at, axis=1)
    sums["S"] = active_cols[starts].astype(float)
    sums["E"] = active_cols[ends].astype(float)
    lost = np.zeros(P)
    new = np.zeros(P)
    joined_left = np.zeros(P)
    for p, (a, b) in enumerate(axis.periods):
        s_, e_ = at[a - 1], at[b]
        lost[p] = np.count_nonzero(s_ & ~e_)
        new[p] = np.count_nonzero(e_ & ~s_)
        touched = base.touched(a, b)
        joined_left[p] = np.count_nonzero(touched & ~s_ & ~e_)
    sums.update(lost=lost, new=new, joined_left=joined_left)
    return sums


def _subscription_kpis(
    base: _Base, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]
) -> dict[str, Any]:
    """MRR, movements, NRR/GRR, churn and retention; returns per-period customer sets
    used by other KPIs."""
    return _subscription_from_sums(_subscription_sums(base, axis), base.scale, axis, settings, k)


def _subscription_from_sums(
    sums: dict[str, Any], scale: int, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The subscription KPIs of :func:`_subscription_sums`' sums (into ``k``)."""
    P = len(axis.periods)
    mrr_end, mrr_start = sums["mrr_end"], sums["mrr_start"]
    has = sums["has"]
    k["mrr"] = mrr_end / scale if has else np.full(P, np.nan)
    moves: dict[str, np.ndarray] = sums["moves"]
    first_mrr = sums["first_mrr"]
    # no month before the first month with MRR data: its movements are blank
    first_data = np.array([a <= first_mrr for a, _ in axis.periods])
    for name, msum in moves.items():
        k[name] = np.where(first_data | (not has), np.nan, msum / scale)
    net = (
        moves["mrr_new"]
        + moves["mrr_reactivation"]
        + moves["mrr_expansion"]
        - moves["mrr_contraction"]
        - moves["mrr_churn"]
    )
    k["net_new_mrr"] = np.where(first_data | (not has), np.nan, net / scale)
    paying_end = sums["paying_end"]
    k["arpu"] = revenue.arpu(k["mrr"], paying_end) if has else np.full(P, np.nan)
    # cohort NRR and GRR: customers paying at the start
    exp, con, chu, expanded = sums["exp"], sums["con"], sums["chu"], sums["expanded"]
    start_mrr = np.where(has & ~first_data, mrr_start / scale, np.nan)
    k["net_revenue_retention"] = retention.net_revenue_retention(
        start_mrr, exp / scale, con / scale, chu / scale
    )
    k["gross_revenue_retention"] = retention.gross_revenue_retention(
        start_mrr, con / scale, chu / scale
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
    paying_start = sums["paying_start"]
    k["expanded_accounts_rate"] = retention.expanded_accounts_rate(
        np.where(has & ~first_data, expanded, np.nan), paying_start
    )
    # customer counts under the churn convention
    S, E = sums["S"], sums["E"]
    lost, new, joined_left = sums["lost"], sums["new"], sums["joined_left"]
    convention = settings["churn_convention"]
    if sums["n"] == 0:
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
