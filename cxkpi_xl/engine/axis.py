"""The report periods as month columns: the axis every aggregate of the engine is laid
out on, and the helpers that sum, count and split rows by period."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..data.periods import label, months_of, periods_between
from ..data.reader import Dataset


def _month_range(data: Dataset) -> tuple[int, int] | None:
    """(first, last) month with data. MRR is a stock: where it exists its last month is
    the last month (a later survey or ticket must not make every customer look churned).
    Customers' dates count only where there is no other data. (Each column's smallest
    and largest month are taken as they are, without a copy of its months.)"""
    spans: list[tuple[int, int]] = []  # (first, last) month of each column with months

    def add(m: np.ndarray) -> None:
        if len(m) and m.max() >= 0:  # a blank date is -1, every month index above it
            spans.append((int(np.min(m, where=m >= 0, initial=m.max())), int(m.max())))

    for table, column in (
        ("MRR", "month"), ("Orders", "order_date"), ("Surveys", "response_date"),
        ("Tickets", "opened_date"), ("Usage", "activity_date"),
        ("Health", "month"), ("Funnel", "month"), ("Costs", "month"),
    ):  # fmt: skip
        frame = data.tables[table]
        if table == "Usage" and data.usage_summary is not None:  # summarised in the source
            add(data.usage_summary.months)
        elif not frame.empty:
            add(months_of(frame[column]))
    if not spans:
        cust = data.tables["Customers"]
        for c in ("signup_date", "churn_date"):
            add(months_of(cust[c]))
    if not spans:
        return None
    mrr = data.tables["MRR"]
    last = int(months_of(mrr["month"]).max()) if not mrr.empty else max(b for _, b in spans)
    return min(a for a, _ in spans), last


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
        c[(months < 0) | (c < 0) | (c >= self.size)] = -1
        return c

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


def _split_by_period(values: np.ndarray, periods: np.ndarray, count: int) -> list[np.ndarray]:
    """``values`` grouped by period index (rows with period -1 are left out)."""
    keep = periods >= 0
    kept = periods[keep]
    if count < 2**15:  # numpy sorts 16-bit integers by radix: linear, not n log n
        kept = kept.astype(np.int16)
    order = np.argsort(kept, kind="stable")
    sorted_values, sorted_periods = values[keep][order], kept[order]
    bounds = np.searchsorted(sorted_periods, np.arange(count + 1))
    return [sorted_values[bounds[p] : bounds[p + 1]] for p in range(count)]
