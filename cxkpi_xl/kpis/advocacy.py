"""Advocacy and customer health KPIs: reference rate, customer health score and the share
of customers at risk.

Health scores are on 0..100 (Gainsight's weighted scorecard); the bands are red below
``red_below`` (50), green from ``green_from`` (75), yellow in between.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .._check import ZeroDivision, amounts, check_zero_division, divide, paired, undefined, values

HEALTH_SCALE = (0.0, 100.0)


def reference_rate(willing: Any, customers: Any, *, zero_division: ZeroDivision = math.nan) -> Any:
    """Share of active customers willing to serve as a reference (seed 001).

    Formula: ``customers willing to be a reference / active customers``.

    Examples
    --------
    >>> reference_rate(45, 600)
    0.075
    """
    return divide(
        amounts(willing, "willing"), amounts(customers, "customers"), zero_division, "customers"
    )


def health_score(scores: Any, weights: Any, *, zero_division: ZeroDivision = math.nan) -> float:
    """Customer health score: the weighted mean of measure scores (each 0..100).

    Formula (Gainsight's weighted scorecard): ``sum(w_i * s_i) / sum(w_i)`` over the
    measures that have a score; a measure with a blank score (or blank weight) is left
    out and the others are re-weighted. Seed 004 leaves the formula open; this is the
    definition of record.

    Examples
    --------
    Usage 80 (weight 40 %), support 60 (30 %), NPS 40 (30 %):
    0.4 * 80 + 0.3 * 60 + 0.3 * 40 = 62.

    >>> round(health_score([80, 60, 40], [0.4, 0.3, 0.3]), 10)
    62.0

    Support not measured: (0.4 * 80 + 0.3 * 40) / 0.7 = 62.86.

    >>> round(health_score([80, None, 40], [0.4, 0.3, 0.3]), 2)
    62.86
    """
    check_zero_division(zero_division)
    s, w = paired(scores, weights, ("scores", "weights"), low=(0, 0), high=(100, None))
    if w.sum() == 0:
        return undefined(zero_division, "the weights of the measures present add up to zero")
    return float(customer_health_scores(np.zeros(s.size, dtype=np.int64), s, w)[0])


def customer_health_scores(customers: Any, scores: Any, weights: Any) -> pd.Series:
    """Health scores of many customers at once: ``sum(w * s) / sum(w)`` per customer.

    ``customers``, ``scores`` and ``weights`` are aligned arrays, one row per measure
    score; rows with a blank score or weight are left out. A customer whose weights add
    up to zero gets NaN.

    Examples
    --------
    >>> customer_health_scores(["a", "a", "b"], [80, 40, 30], [3, 1, 1]).to_dict()
    {'a': 70.0, 'b': 30.0}
    """
    frame = pd.DataFrame(
        {
            "c": np.asarray(customers),
            "s": np.asarray(scores, float),
            "w": np.asarray(weights, float),
        }
    ).dropna(subset=["s", "w"])
    frame["ws"] = frame["s"] * frame["w"]
    sums = frame.groupby("c", sort=False)[["ws", "w"]].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = sums["ws"] / sums["w"].where(sums["w"] != 0)
    out.index.name = None
    return out


def at_risk_rate(
    health_scores: Any,
    red_below: float = 50,
    weights: Any = None,
    *,
    zero_division: ZeroDivision = math.nan,
) -> float:
    """Share of customers at risk: health score in the red band (seed 001).

    Formula: ``customers with health score < red_below / customers with a health score``.
    With ``weights`` (each customer's MRR) it is the share of revenue at risk:
    ``sum(MRR where red) / sum(MRR)``.

    Examples
    --------
    >>> at_risk_rate([30, 45, 60, 80, 90])
    0.4
    >>> at_risk_rate([30, 45, 60, 80, 90], weights=[100, 100, 400, 200, 200])
    0.2
    """
    check_zero_division(zero_division)
    if not 0 <= red_below <= 100:
        raise ValueError(f"red_below must be within 0..100, not {red_below!r}")
    if weights is None:
        s = values(health_scores, "health_scores", low=0, high=100)
        if s.size == 0:
            return undefined(zero_division, "no health scores")
        return float(np.count_nonzero(s < red_below)) / s.size
    s, w = paired(
        health_scores, weights, ("health_scores", "weights"), low=(0, 0), high=(100, None)
    )
    total = w.sum()
    if total == 0:
        return undefined(zero_division, "the weights add up to zero")
    return float(w[s < red_below].sum() / total)


def health_band(score: float, red_below: float = 50, green_from: float = 75) -> str:
    """The band of a health score: ``"red"``, ``"yellow"`` or ``"green"`` ("" if blank).

    Examples
    --------
    >>> [health_band(s) for s in (49.9, 50, 74.9, 75)]
    ['red', 'yellow', 'yellow', 'green']
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    if score < red_below:
        return "red"
    return "green" if score >= green_from else "yellow"
