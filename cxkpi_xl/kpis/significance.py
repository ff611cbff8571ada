"""Is a change real? Tests of the difference between two survey samples.

``nps_change_test`` compares the NPS of two independent samples (two periods, two
segments): the difference, its confidence interval and the two-sided p-value of a z test,
with the variance of each NPS from its promoter and detractor shares (the same variance
as :func:`~cxkpi_xl.kpis.surveys.nps_margin_of_error`).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Literal

from .._check import ZeroDivision, check_zero_division, undefined
from .surveys import _nps_counts

NPS_CHANGE_KEYS = ("difference", "ci_low", "ci_high", "p_value")


def _shares(
    promoters: int, passives: int, detractors: int, method: str
) -> tuple[float, float, float]:
    """(promoter share, detractor share, n) of one sample, adjusted for adjusted Wald."""
    n = promoters + passives + detractors
    if method == "adjusted_wald":
        # Rocks (2016); Lewis & Sauro: add 3 to n and 3/4 to promoters and detractors.
        return (promoters + 0.75) / (n + 3.0), (detractors + 0.75) / (n + 3.0), n + 3.0
    return promoters / n, detractors / n, float(n)


def nps_change_test(
    scores_before: Any,
    scores_after: Any,
    confidence: float = 0.95,
    *,
    method: Literal["wald", "adjusted_wald"] = "wald",
    zero_division: ZeroDivision = math.nan,
) -> dict[str, float]:
    """Change in NPS from one sample of answers to another, with its interval and p-value.

    Formula: with p and d the promoter and detractor shares and n the answers of each
    sample, ``NPS = 100 (p - d)`` and ``var(NPS) = 100^2 (p + d - (p - d)^2) / n``; the
    difference ``after - before`` has standard error ``se = sqrt(var_before +
    var_after)`` (independent samples), interval ``difference +- z se`` and two-sided
    p-value ``2 (1 - Phi(|difference| / se))``. With ``method="adjusted_wald"`` each
    sample first gets 3 more answers, 3/4 of them promoters and 3/4 detractors (Rocks
    2016; Lewis & Sauro, "How to Statistically Compare Two Net Promoter Scores"), and
    the difference is that of the adjusted NPS.

    Returns a dict: ``difference``, ``ci_low``, ``ci_high`` (points), ``p_value``. When a
    sample has no answers every value is ``zero_division`` (default NaN). When neither
    sample varies (every answer in one category), se is 0: the interval is the difference
    itself and the p-value 1 for no change, 0 otherwise.

    Parameters
    ----------
    scores_before, scores_after : array-like of whole numbers 0..10; blanks are ignored.
    confidence : level of the interval, default 0.95.
    method : ``"wald"`` (default) or ``"adjusted_wald"``.
    zero_division : result when a sample has no answers (default NaN), or ``"raise"``.

    Examples
    --------
    Before: 50 promoters, 30 passives, 20 detractors (NPS 30); after: 60, 25, 15 (NPS 45).
    var = 100^2 (0.7 - 0.09) / 100 = 61 and 100^2 (0.75 - 0.2025) / 100 = 54.75, so
    se = sqrt(115.75) = 10.759 and z = 15 / 10.759 = 1.394:

    >>> r = nps_change_test([10] * 50 + [8] * 30 + [2] * 20, [10] * 60 + [8] * 25 + [2] * 15)
    >>> {k: round(v, 3) for k, v in r.items()}
    {'difference': 15.0, 'ci_low': -6.087, 'ci_high': 36.087, 'p_value': 0.163}
    """
    check_zero_division(zero_division)
    if method not in ("wald", "adjusted_wald"):
        raise ValueError(f'method must be "wald" or "adjusted_wald", not {method!r}')
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 < confidence < 1
    ):
        raise ValueError(f"confidence must be a number between 0 and 1, not {confidence!r}")
    before = _nps_counts(scores_before)
    after = _nps_counts(scores_after)
    if sum(before) == 0 or sum(after) == 0:
        empty = undefined(zero_division, "no NPS responses in a sample")
        return dict.fromkeys(NPS_CHANGE_KEYS, empty)
    p0, d0, n0 = _shares(*before, method)
    p1, d1, n1 = _shares(*after, method)
    difference = 100.0 * ((p1 - d1) - (p0 - d0))
    variance = 100.0**2 * ((p0 + d0 - (p0 - d0) ** 2) / n0 + (p1 + d1 - (p1 - d1) ** 2) / n1)
    se = math.sqrt(max(variance, 0.0))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    if se == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = 2.0 * NormalDist().cdf(-abs(difference) / se)
    return {
        "difference": difference,
        "ci_low": difference - z * se,
        "ci_high": difference + z * se,
        "p_value": p_value,
    }


def ratio_bootstrap_interval(
    numerator: Any,
    denominator: Any,
    *,
    n_resamples: int,
    confidence: float = 0.95,
    seed: int,
    batch: int | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(numerator) / sum(denominator)``, the pairs
    ``(numerator[i], denominator[i])`` resampled with replacement (a paired bootstrap of
    units: NRR's ending and starting MRR of each customer).

    Each of ``n_resamples`` resamples draws n indices uniformly from 0..n-1 with
    ``numpy.random.default_rng(seed).integers``, ``batch`` resamples at a time (memory:
    ``batch x n`` indices); the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles (linear interpolation) of the resampled ratios.
    These are the draws and quantiles of ``scipy.stats.bootstrap(..., paired=True,
    vectorized=True, method="percentile", rng=default_rng(seed), batch=batch)``, which
    tests/test_significance.py checks it against, without importing ``scipy.stats``
    (half a second of every refresh).

    >>> low, high = ratio_bootstrap_interval([110, 95, 100], [100, 100, 100],
    ...                                      n_resamples=1000, seed=1)
    >>> 0.95 <= low <= 1.0166 <= high <= 1.1
    True
    """
    import numpy as np

    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    if num.shape != den.shape or num.ndim != 1 or len(num) < 1:
        raise ValueError("numerator and denominator must be two samples of the same length")
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a whole number from 1, not {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number between 0 and 1, not {confidence!r}")
    rng = np.random.default_rng(seed)
    n = len(num)
    step = batch or n_resamples
    ratios = []
    for k in range(0, n_resamples, step):
        i = rng.integers(0, n, (min(step, n_resamples - k), n), dtype=np.int64)
        ratios.append(num[i].sum(axis=-1) / den[i].sum(axis=-1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(ratios), [alpha, 1 - alpha])
    return float(low), float(high)
