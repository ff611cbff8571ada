"""Transactions as the models see them: the RFM summary (frequency, recency, T,
monetary value) and simulated BG/NBD transactions for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .fit import (
    UNIT_DAYS,
    ModelError,
)


def rfm_summary(
    transactions: pd.DataFrame,
    customer_id_col: str,
    date_col: str,
    value_col: str | None = None,
    observation_end: Any = None,
    freq: str = "W",
    merge: str = "D",
) -> pd.DataFrame:
    """Per customer: ``frequency``, ``recency``, ``T`` and ``monetary_value``.

    As the literature defines them (Fader, Hardie & Lee 2005): purchases in the same
    ``merge`` period (a day by default) count as one; ``frequency`` is the number of
    repeat purchases (purchases after the first); ``recency`` the time from the first to
    the last purchase and ``T`` from the first purchase to ``observation_end`` (default:
    the last transaction date), both in units of ``freq`` (``"D"``, ``"W"`` weeks or
    ``"M"`` months, as fractions); ``monetary_value`` the mean value of the repeat
    purchases (the first purchase is left out; 0 without repeat purchases).
    Transactions after ``observation_end`` are left out.

    Examples
    --------
    >>> tx = pd.DataFrame({"id": ["a", "a", "a", "b"],
    ...                    "date": ["2026-01-01", "2026-01-01", "2026-01-15", "2026-01-08"],
    ...                    "amount": [10, 5, 30, 20]})
    >>> rfm_summary(tx, "id", "date", "amount", "2026-01-29").round(2)
             frequency  recency    T  monetary_value
    id
    a              1.0      2.0  4.0            30.0
    b              0.0      0.0  3.0             0.0
    """
    if freq not in UNIT_DAYS:
        raise ValueError(f'freq must be "D", "W" or "M", not {freq!r}')
    missing = [c for c in (customer_id_col, date_col, value_col) if c and c not in transactions]
    if missing:
        raise ValueError(f"transactions have no column {', '.join(map(repr, missing))}")
    dates = pd.to_datetime(transactions[date_col], errors="coerce")
    if dates.isna().any():
        bad = transactions[date_col][dates.isna()].iloc[0]
        raise ValueError(f"{date_col}: {bad!r} is not a date")
    end = pd.Timestamp(observation_end) if observation_end is not None else dates.max()
    frame = pd.DataFrame(
        {
            "id": transactions[customer_id_col].to_numpy(),
            "period": dates.dt.to_period(merge).dt.start_time,
        }
    )
    frame["value"] = transactions[value_col].to_numpy(float) if value_col else 0.0
    frame = frame[dates.to_numpy() <= end.to_datetime64()]
    per = frame.groupby(["id", "period"], sort=True)["value"].sum().reset_index()
    grouped = per.groupby("id", sort=False)
    first = grouped["period"].transform("min")
    unit = pd.Timedelta(days=UNIT_DAYS[freq])
    out = pd.DataFrame(
        {
            "frequency": grouped.size() - 1.0,
            "recency": (grouped["period"].max() - grouped["period"].min()) / unit,
            "T": (end - grouped["period"].min()) / unit,
        }
    )
    repeat = per[per["period"] != first]
    out["monetary_value"] = repeat.groupby("id")["value"].mean().reindex(out.index).fillna(0.0)
    out.index.name = customer_id_col
    return out.astype(float)


def simulate_transactions(
    customers: int = 200,
    *,
    r: float = 0.25,
    alpha: float = 4.0,
    a: float = 0.8,
    b: float = 2.5,
    p: float = 6.0,
    q: float = 4.0,
    v: float = 15.0,
    weeks: float = 39.0,
    start: str = "2026-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Transactions drawn from the BG/NBD and Gamma-Gamma processes themselves (the
    defaults are close to the CDNOW fits): columns ``customer_id``, ``date``, ``amount``.
    Customers make their first purchase in the first 12 weeks; each then buys at a
    gamma-distributed Poisson rate and may drop out after every repeat purchase.

    Examples
    --------
    >>> tx = simulate_transactions(50, seed=1)
    >>> list(tx.columns), tx["customer_id"].nunique()
    (['customer_id', 'date', 'amount'], 50)
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, customers)
    drop = rng.beta(a, b, customers)
    nu = rng.gamma(q, 1 / v, customers)
    rows = []
    for i in range(customers):
        t = rng.uniform(0, 12)
        first = True
        while t <= weeks:
            rows.append((f"c{i + 1:05d}", t, rng.gamma(p, 1 / nu[i])))
            # BG/NBD: a customer may drop out after each repeat purchase, not the first.
            if (not first and rng.random() < drop[i]) or lam[i] == 0:
                break
            first = False
            t += rng.exponential(1 / lam[i])
    frame = pd.DataFrame(rows, columns=["customer_id", "week", "amount"])
    frame["date"] = pd.Timestamp(start) + pd.to_timedelta(np.floor(frame["week"] * 7), unit="D")
    frame["amount"] = frame["amount"].round(2)
    return frame[["customer_id", "date", "amount"]]


def _transactions(customer_ids: Any, dates: Any, amounts: Any = None) -> pd.DataFrame:
    """Aligned ranges (as Excel sends them) as a transactions frame; dates may be Excel
    serial numbers, date cells or ISO text."""
    from .._check import dates_as_days, to_float_array

    ids = np.array(customer_ids, dtype=object).ravel()
    days = dates_as_days(dates, "dates").ravel()
    columns = {"id": ids, "date": days}
    if amounts is not None:
        columns["amount"] = to_float_array(amounts, "amounts").ravel()
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise ValueError("customer_ids, dates and amounts must have the same number of cells")
    frame = pd.DataFrame(columns)
    codes, uniques = pd.factorize(frame["id"])
    names = np.array(
        [
            str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()
            for v in uniques
        ],
        dtype=object,
    )
    blank_id = (codes < 0) | np.isin(codes, np.flatnonzero(names == ""))
    frame["id"] = np.where(codes >= 0, names[np.maximum(codes, 0)], "")
    frame = frame.loc[~(blank_id | pd.isna(frame["date"]).to_numpy())]
    if frame.empty:
        raise ModelError("no transactions: every row has a blank customer or date")
    if amounts is not None and frame["amount"].isna().any():
        raise ModelError("an amount is blank for a transaction")
    frame["date"] = pd.to_datetime(frame["date"].to_numpy() * 86400, unit="s")
    return frame


def _observation_end(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    from .._check import dates_as_days

    return pd.to_datetime(dates_as_days([value], "observation_end")[0] * 86400, unit="s")
