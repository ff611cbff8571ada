"""The MRR matrix's parts: money units (exact integer sums), unknown months carried, the
customer ids of the engine's codes, the five MRR movements (as matrices made when read, or
a month at a time) and the customers active in a span of months. ``subscriptions._Base``
puts them together."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

MOVEMENTS = ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")


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
    # Each distinct amount once (a book holds millions of MRR cells, a few thousand amounts).
    size_ = pd.unique(np.abs(values))
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
    if scale == 1:
        # No decimals in use (_money_scale): every value is within 1e-9 of a whole number,
        # never halfway between two, so rounding it is its whole part plus its rounded
        # fraction, in one pass instead of five.
        return np.rint(values).astype(np.int64)
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


def _code_table(ids: np.ndarray) -> np.ndarray | None:
    """The row of each code for ids that are ``compute``'s float codes (whole numbers from
    0, none missing), with a last slot of -1; None for any other ids."""
    if ids.dtype != np.float64 or not len(ids) or np.isnan(ids).any():
        return None
    top = float(ids.max())
    if ids.min() < 0 or top >= 4 * len(ids) + 2**20 or (ids % 1 != 0).any():
        return None
    table = np.full(int(top) + 2, -1, dtype=np.int64)
    table[ids.astype(np.int64)] = np.arange(len(ids))
    return table


def _ids_of(customers: pd.Series, mrr: pd.Series) -> Any:
    """The distinct ids of Customers then MRR, in order of first appearance (as
    ``pd.unique`` of the two end to end). When they are ``compute``'s float codes, which
    number the ids in that very order, they are 0, 1, 2, ... and found without hashing:
    each code at most one above every code before it."""
    if customers.dtype == np.float64 and mrr.dtype == np.float64:
        values = np.concatenate([customers.to_numpy(), mrr.to_numpy()])
        if len(values) and values[0] == 0:
            top = np.maximum.accumulate(values)  # NaN (a blank id) spreads: not codes then
            if not np.isnan(top[-1]) and (values[1:] <= top[:-1] + 1).all():
                if (values == np.trunc(values)).all() and values.min() >= 0:
                    return np.arange(top[-1] + 1)
    return pd.unique(pd.concat([customers, mrr], ignore_index=True))


def _small_mrr(m: np.ndarray) -> np.ndarray:
    """``m`` in 32 bits when every cell is in 0 .. 2**31 - 1 (so that the difference of
    two cells fits too), else as it is."""
    if m.size and m.min() >= 0 and m.max() < 2**31:
        return m.astype(np.int32)
    return m


class _Moves(Mapping[str, np.ndarray]):
    """The movements of an MRR matrix (customers x months), each a customers x (months - 1)
    matrix made when first read: column j is the movement into month column j + 1. In 32
    bits when the MRR fits them (:func:`_small_mrr`)."""

    def __init__(self, mrr: np.ndarray):
        self._mrr = mrr
        self._small: np.ndarray | None = None
        self._made: dict[str, np.ndarray] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(MOVEMENTS)

    def __len__(self) -> int:
        return len(MOVEMENTS)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._made:
            if name not in MOVEMENTS:
                raise KeyError(name)
            self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str) -> np.ndarray:
        if self._small is None:
            self._small = _small_mrr(self._mrr)
        m = self._small
        prev, cur = m[:, :-1], m[:, 1:]
        if name in ("mrr_new", "mrr_reactivation"):
            ever = np.maximum.accumulate(m > 0, axis=1)[:, :-1]
            started = (prev == 0) & (cur > 0)
            return np.where(started & (ever if name == "mrr_reactivation" else ~ever), cur, 0)
        if name == "mrr_churn":
            return np.where((prev > 0) & (cur == 0), prev, 0)
        change = cur - prev  # no overflow: |MRR| is below 2**61 (or 2**31 and >= 0)
        if name == "mrr_expansion":
            return np.where((prev > 0) & (change > 0), change, 0)
        return np.where((cur > 0) & (change < 0), -change, 0)


def _movement_columns(mt: np.ndarray) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """:meth:`_Base.movement_columns` of a months x customers MRR matrix ``mt`` (as
    ``_Base.by_month``: any order of the customers)."""
    ever = np.zeros(mt.shape[1], dtype=bool)  # paid in some month up to column j
    for j in range(mt.shape[0] - 1):
        prev, cur = mt[j], mt[j + 1]
        paid = prev > 0
        ever |= paid
        paying = cur > 0
        started = (prev == 0) & paying
        change = cur - prev  # no overflow: |MRR| is below 2**61 (or 2**31 and >= 0)
        yield (
            j,
            {
                "mrr_new": np.where(started & ~ever, cur, 0),
                "mrr_reactivation": np.where(started & ever, cur, 0),
                "mrr_expansion": np.where(paid & (change > 0), change, 0),
                "mrr_contraction": np.where(paying & (change < 0), -change, 0),
                "mrr_churn": np.where(paid & (cur == 0), prev, 0),
            },
        )


def _touched(
    signup: np.ndarray, churn: np.ndarray, date_based: np.ndarray, at: np.ndarray, a: int, b: int
) -> np.ndarray:
    """:meth:`_Base.touched` of the customers of those columns (``at``: months x
    customers, as ``_Base.active_by_month``)."""
    by_dates = (signup <= b) & (churn >= a)
    by_active = at[a] if a == b else at[a : b + 1].any(axis=0)
    return np.where(date_based, by_dates, by_active)
