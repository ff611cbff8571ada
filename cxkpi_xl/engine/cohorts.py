"""Cohort retention: signup-month cohorts x months since start, logos and revenue."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.periods import label
from .axis import _Axis
from .subscriptions import _Base


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
        # the cohort's rows cut once: its MRR and active customers at every age
        mrr_by_age = m[members, c:].sum(axis=0)
        active_by_age = base.active[members, c:].sum(axis=0)
        start_mrr = mrr_by_age[0]
        logos.append((active_by_age / size).tolist())
        revenue_rows.append((mrr_by_age / start_mrr).tolist() if start_mrr else [np.nan] * (T - c))
        names.append(label(axis.base + c, "month"))
    width = max((len(r) for r in logos), default=0)
    pad = lambda rows: [r + [np.nan] * (width - len(r)) for r in rows]  # noqa: E731
    return {
        "cohort_logos": pd.DataFrame(pad(logos), index=names, columns=range(width)),
        "cohort_revenue": pd.DataFrame(pad(revenue_rows), index=names, columns=range(width)),
    }
