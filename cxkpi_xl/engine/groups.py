"""Sums by group for the segment and owner breakdowns: the subscription KPIs' sums,
product usage and referral revenue of every group of several groupings of the customers
(segment, owner) from one pass over the report's matrices and tables, instead of the
report's KPI functions run on each group's rows. Each gives the numbers those functions
give on the group's data alone (tests/test_breakdowns_fast.py compares them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..kpis import engagement
from .activity import _usage_pass, _usage_triples, usage_summary
from .axis import _at, _Axis
from .mrr import MOVEMENTS, _movement_columns, _touched
from .subscriptions import _Base

EXACT_FLOAT = 2**53
"""Integers below this add up exactly in float64 (bincount's weights)."""


class _Groupings:
    """Several partitions of the base's customers into groups (segment, owner, ...), each
    given as a group code per customer row (-1: in no group), summed over in one pass:
    each row's combination of groups is a cell, sums are taken by cell with bincount and
    then by group from the cells. Sums of integers come back exact (int64) when every
    partial sum stays below EXACT_FLOAT, which :meth:`exact_for` checks."""

    def __init__(self, codes: list[np.ndarray], sizes: list[int]):
        key = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64)
        for c, g in zip(codes, sizes, strict=True):
            key = key * (g + 1) + (c.astype(np.int64) + 1)
        self.cell, cells = pd.factorize(key)
        self.n_cells = len(cells)
        self.sizes = sizes
        groups = []
        rest = np.asarray(cells, dtype=np.int64)
        for g in sizes[::-1]:
            groups.append(rest % (g + 1))  # the cell's group + 1 (0: none)
            rest = rest // (g + 1)
        self.cell_group = groups[::-1]
        # the customer rows in order of cell, and where each cell's rows start: sums over
        # rows put in that order (in_cell_order) are contiguous slices, no bincount
        small = self.cell.astype(np.int16) if self.n_cells < 2**15 else self.cell
        self.order = np.argsort(small, kind="stable")  # 16 bits: numpy sorts by radix
        self.starts = np.searchsorted(small[self.order], np.arange(self.n_cells))

    @staticmethod
    def exact_for(base: _Base) -> bool:
        """Whether every sum of the MRR quantities by group is exact in float64: each is
        bounded by twice the sum of |MRR| over all cells."""
        return 2 * base.abs_total() < EXACT_FLOAT

    def _by_group(self, per_cell: np.ndarray) -> list[np.ndarray]:
        return [
            np.rint(np.bincount(cg, weights=per_cell, minlength=g + 1)[1:]).astype(np.int64)
            for cg, g in zip(self.cell_group, self.sizes, strict=True)
        ]

    def sum(self, values: np.ndarray) -> list[np.ndarray]:
        """Each grouping's sums of ``values`` (one per customer row) by group, as int64."""
        per_cell = np.bincount(self.cell, weights=values, minlength=self.n_cells)
        return self._by_group(per_cell)

    def count(self, mask: np.ndarray) -> list[np.ndarray]:
        """Each grouping's count of the rows where ``mask`` by group."""
        per_cell = np.bincount(self.cell[mask], minlength=self.n_cells).astype(np.float64)
        return self._by_group(per_cell)

    def in_cell_order(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (one value per customer row, or months x customer rows) with the
        customer rows in order of cell, for :meth:`sum_sorted` and :meth:`count_sorted`
        (``np.take``: C-contiguous, each month's row contiguous; ``rows[:, order]`` is
        not)."""
        return np.take(rows, self.order, axis=-1)

    def sum_sorted(self, values: np.ndarray) -> list[np.ndarray]:
        """:meth:`sum` of integer ``values`` given in cell order (:meth:`in_cell_order`)."""
        if not self.n_cells:
            return self._by_group(np.zeros(0))
        per_cell = np.add.reduceat(values, self.starts, dtype=np.int64)
        return self._by_group(per_cell.astype(np.float64))

    def count_sorted(self, mask: np.ndarray) -> list[np.ndarray]:
        """:meth:`count` of a ``mask`` given in cell order (:meth:`in_cell_order`)."""
        return self.sum_sorted(mask)

    def minimum(self, values: np.ndarray, empty: int) -> list[np.ndarray]:
        """Each grouping's smallest of ``values`` (ints) by group (``empty``, above them all,
        for a group without rows)."""
        per_cell = np.full(self.n_cells, empty, dtype=np.int64)
        np.minimum.at(per_cell, self.cell, values)
        out = []
        for cg, g in zip(self.cell_group, self.sizes, strict=True):
            m = np.full(g + 1, empty, dtype=np.int64)
            np.minimum.at(m, cg, per_cell)
            out.append(m[1:])
        return out


def _subscription_sums_by_group(
    base: _Base, axis: _Axis, groupings: _Groupings
) -> list[list[dict[str, Any]]]:
    """:func:`_subscription_sums` of each group of each grouping, as if computed on the
    base of the group's customers alone (``base.subset``), from one pass over the
    matrices; ``groupings.exact_for(base)`` must hold. The month columns are read as
    rows of transposed copies (a column of a customers x months matrix is strided)."""
    P, T = len(axis.periods), axis.size
    # the months x customers matrices with the customers in order of cell: each group sum
    # is then a sum of contiguous slices of a row
    order = groupings.order
    mT, aT = groupings.in_cell_order(base.by_month), groupings.in_cell_order(base.active_by_month)
    signup, churn = base.signup_col[order], base.churn_col[order]
    date_based = base.date_based[order]
    G = len(groupings.sizes)

    def stack(per_col: list[list[np.ndarray]]) -> list[np.ndarray]:
        """[column][grouping] -> [grouping] (groups x columns)."""
        return [np.stack([c[i] for c in per_col], axis=1) for i in range(G)]

    def zeros() -> list[np.ndarray]:
        return [np.zeros((g, P), dtype=np.int64) for g in groupings.sizes]

    msum = stack([groupings.sum_sorted(mT[c]) for c in range(T)])
    paying = stack([groupings.count_sorted(mT[c] > 0) for c in range(T)])
    active = stack([groupings.count_sorted(aT[c]) for c in range(T)])
    starts = np.array([a - 1 for a, _ in axis.periods], dtype=np.int64)
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    # each group's movement into each month column (a column of the movements at a time),
    # then summed over each period
    move_cols: dict[str, list[list[np.ndarray]]] = {name: [] for name in MOVEMENTS}
    expanded = zeros()
    grew = np.zeros(0, dtype=bool)
    for j, column in _movement_columns(mT):
        for name, v in column.items():
            move_cols[name].append(groupings.sum_sorted(v))
        p = axis.period_of_col[j + 1]  # the period of the month the movement goes into
        if p < 0:
            continue
        a, b = axis.periods[p]
        up = column["mrr_expansion"] > 0
        grew = up if j + 1 == a else grew | up
        if j + 1 == b:  # customers paying at the start who grew in some month of it
            for i, c in enumerate(groupings.count_sorted(grew & (mT[a - 1] > 0))):
                expanded[i][:, p] = c
    moves = {
        name: [
            np.stack([c[:, a - 1 : b].sum(axis=1) for a, b in axis.periods], axis=1)
            for c in stack(cols)
        ]
        for name, cols in move_cols.items()
    }
    exp, con, chu, lost, new, joined_left = (zeros() for _ in range(6))
    for p, (a, b) in enumerate(axis.periods):
        start, end = mT[a - 1], mT[b]
        cohort = start > 0
        for out, v in (
            (exp, np.where(cohort & (end > start), end - start, 0)),
            (con, np.where(cohort & (end > 0) & (end < start), start - end, 0)),
            (chu, np.where(cohort & (end == 0), start, 0)),
        ):
            for i, c in enumerate(groupings.sum_sorted(v)):
                out[i][:, p] = c
        s_, e_ = aT[a - 1], aT[b]
        touched = _touched(signup, churn, date_based, aT, a, b)
        for out, mask in (
            (lost, s_ & ~e_),
            (new, e_ & ~s_),
            (joined_left, touched & ~s_ & ~e_),
        ):
            for i, c in enumerate(groupings.count_sorted(mask)):
                out[i][:, p] = c
    del mT, aT
    nonzero = base.mrr != 0
    first_col = np.where(nonzero.any(axis=1), np.argmax(nonzero, axis=1), T)
    del nonzero
    first = groupings.minimum(first_col, T)
    has = groupings.count(base.has_mrr)
    size = groupings.count(np.ones(len(base.ids), dtype=bool))
    out: list[list[dict[str, Any]]] = []
    for i, g in enumerate(groupings.sizes):
        rows = []
        for j in range(g):
            rows.append(
                {
                    "n": int(size[i][j]),
                    "has": bool(has[i][j] > 0),
                    "mrr_end": msum[i][j, ends],
                    "mrr_start": msum[i][j, starts],
                    "moves": {name: v[i][j] for name, v in moves.items()},
                    "first_mrr": int(first[i][j]),
                    "paying_end": paying[i][j, ends].astype(float),
                    "paying_start": paying[i][j, starts].astype(float),
                    "exp": exp[i][j].astype(float),
                    "con": con[i][j].astype(float),
                    "chu": chu[i][j].astype(float),
                    "expanded": expanded[i][j].astype(float),
                    "S": active[i][j, starts].astype(float),
                    "E": active[i][j, ends].astype(float),
                    "lost": lost[i][j].astype(float),
                    "new": new[i][j].astype(float),
                    "joined_left": joined_left[i][j].astype(float),
                }
            )
        out.append(rows)
    return out


def _rows_by_group(group: np.ndarray, size: int) -> list[np.ndarray]:
    """The row numbers of each group 0..size-1 (``group`` -1: none), in table order."""
    key = group.astype(np.int16) if size < 2**15 else group  # radix sort: linear
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(size + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(size)]


def _usage_rate_by_group(
    data: Dataset, base: _Base, axis: _Axis, groupings: _Groupings
) -> list[np.ndarray]:
    """Product usage rate of each group (groups x periods) of each grouping, as
    ``_usage_kpis`` gives it on the group's data alone (NaN for a group without usage)."""
    s = usage_summary(data)
    P, n = len(axis.periods), len(base.ids)
    blank = [np.full((g, P), np.nan) for g in groupings.sizes]
    if s.empty or not n:
        return blank
    ends = np.array([b for _, b in axis.periods], dtype=np.int64)
    # each (period, customer) once, where the customer is active at the period's end: the
    # flags the report's usage KPIs made (else made here), or the distinct pairs; and the
    # customers with a triple (any month): a group without one has no usage at all
    kept = base._usage_flags
    if kept is not None and kept[0] is s:
        seen_in: np.ndarray | None = kept[1]
        with_code = kept[2]
    else:
        seen_in, _, _, with_code = _usage_pass(s, base, axis, False)
    code_pos = base.rows_of(s.customers) if len(s.customers) else np.zeros(0, np.int64)
    with_triple = np.zeros(n, dtype=bool)
    with_triple[code_pos[with_code & (code_pos >= 0)]] = True
    has_usage = groupings.count(with_triple)
    if seen_in is None:  # beyond FLAG_LIMIT: the distinct pairs, hashed
        pcol, cpos, ok = _usage_triples(s, base, axis)
        periods, customers = pcol[ok], cpos[ok]
        del pcol, cpos, ok
        pc = pd.unique(periods.astype(np.int64) * n + customers)
        p_of, c_of = pc // n, pc % n
        active = base.active[c_of, ends[p_of]]
        p_of, c_of = p_of[active], c_of[active]
    used = [np.zeros((g, P), dtype=np.int64) for g in groupings.sizes]
    n_active = [np.zeros((g, P), dtype=np.int64) for g in groupings.sizes]
    # the flags with the customers in order of cell: a count by group is of slices
    at_end = groupings.in_cell_order(base.active_by_month[ends])
    seen_sorted = groupings.in_cell_order(seen_in) if seen_in is not None else None
    for p in range(P):
        if seen_sorted is not None:
            seen = seen_sorted[p]
        else:
            seen = np.zeros(n, dtype=bool)
            seen[c_of[p_of == p]] = True
            seen = groupings.in_cell_order(seen)
        for i, c in enumerate(groupings.count_sorted(seen)):
            used[i][:, p] = c
        for i, c in enumerate(groupings.count_sorted(at_end[p])):
            n_active[i][:, p] = c
    out = []
    for i in range(len(groupings.sizes)):
        rates = blank[i]
        for j in np.flatnonzero(has_usage[i] > 0):
            rates[j] = [
                engagement.product_usage_rate(used[i][j, p], n_active[i][j, p]) for p in range(P)
            ]
        out.append(rates)
    return out


def _referral_revenue_by_group(
    data: Dataset,
    base: _Base,
    axis: _Axis,
    groupings: _Groupings,
    order_groups: list[np.ndarray],
    has_mrr: list[np.ndarray],
) -> list[np.ndarray]:
    """Referral revenue of each group (groups x periods) of each grouping, as
    ``_referral_revenue`` gives it on the group's data alone (``order_groups``: each
    order's group in each grouping; ``has_mrr``: whether each group has MRR rows). Each
    group's order amounts are added up in table order, as on its own rows."""
    cust, orders = data.tables["Customers"], data.tables["Orders"]
    P = len(axis.periods)
    if cust.empty or not data.has_column("Customers", "referred_by"):
        return [np.full((g, P), np.nan) for g in groupings.sizes]
    referred = np.zeros(len(base.ids), dtype=bool)
    referred[base.cpos] = cust["referred_by"].notna().to_numpy()
    o_ref = _at(referred, base.rows_of(orders["customer_id"]))
    amount = np.where(o_ref, orders["amount"].to_numpy(float), 0.0)
    pcol = axis.period_of_col[axis.col(months_of(orders["order_date"]))]
    ref_mrr = [np.zeros((g, P), dtype=np.int64) for g in groupings.sizes]
    for p, (a, b) in enumerate(axis.periods):
        months = base.mrr[:, a : b + 1].sum(axis=1)
        for i, c in enumerate(groupings.sum(np.where(referred, months, 0))):
            ref_mrr[i][:, p] = c
    out = []
    for i, g in enumerate(groupings.sizes):
        og = order_groups[i]
        ok = (og >= 0) & (pcol >= 0)
        key = og[ok].astype(np.int64) * P + pcol[ok]
        ref_orders = np.bincount(key, weights=amount[ok], minlength=g * P).reshape(g, P)
        value = ref_orders.astype(float) + ref_mrr[i] / base.scale
        no_orders = np.bincount(og[og >= 0], minlength=g) == 0
        value[no_orders & ~has_mrr[i]] = np.nan
        out.append(value)
    return out


def _group_codes(cust: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Index]:
    """Each Customers row's group by ``column`` (blank: "(no column)"), groups sorted."""
    return pd.factorize(cust[column].fillna(f"(no {column})"), sort=True)


def _sums_by_code(codes: np.ndarray, values: np.ndarray, size: int, exact: bool) -> np.ndarray:
    """Sums of integer ``values`` by ``codes`` 0..size-1 (others left out), as int64: by
    bincount when ``exact`` (every partial sum below 2**53), else one masked sum each."""
    if exact:
        ok = (codes >= 0) & (codes < size)
        if not ok.all():
            codes, values = codes[ok], values[ok]
        sums = np.bincount(codes, weights=values, minlength=size)
        return np.rint(sums).astype(np.int64)
    return np.array([values[codes == c].sum() for c in range(size)], dtype=np.int64)
