"""Months and report periods.

A month is held as an integer index (``year * 12 + month - 1``) so that period arithmetic
is plain integer arithmetic. Periods are months, quarters or years, labelled ``2026-01``,
``2026-Q1`` and ``2026``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

GRANULARITIES = {"month": 1, "quarter": 3, "year": 12}


def month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def index_to_date(index: int) -> dt.date:
    """The first day of a month index."""
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> dt.date:
    return index_to_date(index + 1) - dt.timedelta(days=1)


_SHARED: ContextVar[dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] | None] = ContextVar(
    "cxkpi_shared_columns", default=None
)


@contextmanager
def shared_months() -> Iterator[None]:
    """Within the block, :func:`months_of` works out the months of each datetime64 array
    once: the same dates again (the same column, read again) give the same array back,
    read-only; so does :func:`shared_by_array`. For a computation in which no table
    changes (the engine's ``compute`` reads each date column several times)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_by_array(
    values: np.ndarray, what: str, make: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``make(values)``, made once for the same array ``values`` (the same memory, shape
    and type: the same column of a table, read again) inside :func:`shared_months`, and
    then read-only; made every time outside it."""
    shared = _SHARED.get()
    if shared is None:
        return make(values)
    key = _shared_key(what, values)
    kept = shared.get(key)
    if kept is None:
        out = make(values)
        out.flags.writeable = False
        kept = shared[key] = (values, out)
    return kept[1]


def forget_months(dates: pd.Series) -> None:
    """Let go of the months :func:`shared_months` keeps for ``dates`` (a column no longer
    read in the computation: its months, a row each, need not stay in memory)."""
    shared = _SHARED.get()
    values = dates.to_numpy()
    if shared is None or values.dtype.kind != "M":
        return
    shared.pop(_shared_key("months", values), None)


def _shared_key(what: str, values: np.ndarray) -> tuple[Any, ...]:
    """The key of ``values`` in the shared cache: its memory, shape, strides and type (the
    memory is kept alive by the cache while it is, so the key is its alone)."""
    address = values.__array_interface__["data"][0]
    return (what, address, values.shape, values.strides, values.dtype)


def months_of(dates: pd.Series) -> np.ndarray:
    """Month indexes of a datetime64 series (NaT gives -1).

    Each row's day is an integer division, and its month is looked up in a table of the
    days between the first and the last: numpy's own conversion to months works out the
    calendar row by row, 50 times slower on millions of rows. Inside
    :func:`shared_months` each datetime64 array's months are worked out once."""
    values = dates.to_numpy()
    if values.dtype.kind != "M":  # a new array each time: nothing to share
        return _months_of(dates, values)
    return shared_by_array(values, "months", lambda v: _months_of(dates, v))


def _months_of(dates: pd.Series, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "M":  # not datetime64: numpy converts it as it can
        values = dates.to_numpy(dtype="datetime64[M]")
    unit, step = np.datetime_data(values.dtype)
    nat = np.isnat(values)
    if unit not in ("s", "ms", "us", "ns", "D") or nat.all():
        return _months_of_rows(values, nat)
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(step, unit))
    days = values.view(np.int64) // per_day  # (every step in place: a new array of
    if nat.any():  # millions of rows costs more than the arithmetic)
        days[nat] = days[int(np.argmin(nat))]  # a known day, so that min and max are too
    lo, hi = int(days.min()), int(days.max())
    if hi - lo > 400_000:  # dates more than a thousand years apart: row by row
        return _months_of_rows(values, nat)
    days -= lo
    table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]")
    out = (table.astype(np.int64) + 1970 * 12)[days]
    out[nat] = -1
    return out


def _months_of_rows(values: np.ndarray, nat: np.ndarray) -> np.ndarray:
    out = values.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    out[nat] = -1
    return out


def parse_month(value: Any, what: str = "month") -> int:
    """A month index from a date, datetime, Timestamp, ``2026-01`` / ``2026-01-15`` text
    or an Excel serial number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        ts = pd.Timestamp("1899-12-30") + pd.Timedelta(days=float(value))
        return month_index(ts.year, ts.month)
    if isinstance(value, dt.date | pd.Timestamp):
        return month_index(value.year, value.month)
    text = str(value).strip()
    for fmt in ("%Y-%m", "%Y-%m-%d", "%Y/%m", "%Y/%m/%d"):
        try:
            d = dt.datetime.strptime(text[:10] if fmt.endswith("%d") else text, fmt)
            return month_index(d.year, d.month)
        except ValueError:
            continue
    try:
        d = dt.datetime.fromisoformat(text)
        return month_index(d.year, d.month)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a month (use YYYY-MM)") from None


def period_start(index: int, granularity: str) -> int:
    """The first month of the period that contains a month."""
    size = GRANULARITIES[granularity]
    return index - index % size


def label(index: int, granularity: str) -> str:
    """The label of the period that starts at (or contains) a month."""
    year, month = index // 12, index % 12 + 1
    if granularity == "month":
        return f"{year:04d}-{month:02d}"
    if granularity == "quarter":
        return f"{year:04d}-Q{(month - 1) // 3 + 1}"
    return f"{year:04d}"


def periods_between(first: int, last: int, granularity: str) -> list[tuple[int, int]]:
    """(first month, last month) of each period from the one holding ``first`` to the one
    holding ``last``; periods are whole calendar months, quarters or years."""
    size = GRANULARITIES[granularity]
    out = []
    start = period_start(first, granularity)
    while start <= last:
        out.append((start, start + size - 1))
        start += size
    return out
