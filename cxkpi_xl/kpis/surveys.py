"""Survey and sentiment KPIs: NPS, its margin of error, CSAT, CES and star ratings.

Each function takes the raw answers as any array-like (a list, a numpy array, a pandas
Series, or the 2-D list Excel sends for a range); blanks are ignored. Answers must be whole
numbers on the survey's scale. Rates are fractions; NPS is in points from -100 to +100.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from .._check import ZeroDivision, check_zero_division, undefined, values

NPS_SCALE = (0, 10)
PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6

_CSAT_DEFAULT_THRESHOLD = {5: 4, 7: 6, 10: 8}


def _nps_counts(scores: Any) -> tuple[int, int, int]:
    v = values(scores, "scores", low=NPS_SCALE[0], high=NPS_SCALE[1], whole=True)
    promoters = int(np.count_nonzero(v >= PROMOTER_FROM))
    detractors = int(np.count_nonzero(v <= DETRACTOR_UP_TO))
    return promoters, v.size - promoters - detractors, detractors


def _nps_points(promoters: float, detractors: float, n: float) -> float:
    return (promoters - detractors) / n * 100.0


def nps(scores: Any, *, zero_division: ZeroDivision = math.nan) -> float:
    """Net Promoter Score: % promoters - % detractors, in points from -100 to +100.

    Formula: ``NPS = 100 * (promoters - detractors) / responses``, where promoters answer
    9-10, passives 7-8 and detractors 0-6 on the 0-10 "how likely are you to recommend"
    scale (Bain & Company / Satmetrix). Seeds 003 and 004 state the subtraction the wrong
    way round; this is the definition of record.

    Parameters
    ----------
    scores : array-like of whole numbers 0..10; blanks are ignored.
    zero_division : result when there is no response (default NaN), or ``"raise"``.

    Examples
    --------
    Five promoters, three passives and two detractors: 50 % - 20 % = 30 points.

    >>> nps([10, 9, 9, 10, 9, 8, 7, 7, 3, 6])
    30.0
    >>> nps([[10], [None], [0]])  # a range with a blank cell
    0.0
    """
    check_zero_division(zero_division)
    promoters, passives, detractors = _nps_counts(scores)
    n = promoters + passives + detractors
    if n == 0:
        return undefined(zero_division, "no NPS responses")
    return _nps_points(promoters, detractors, n)


def nps_from_counts(
    promoters: float, passives: float, detractors: float, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """NPS from the counts of promoters, passives and detractors.

    Formula: ``100 * (promoters - detractors) / (promoters + passives + detractors)``.
    Broadcasts like numpy: give arrays of counts to get one NPS per row.

    Examples
    --------
    >>> nps_from_counts(50, 30, 20)
    30.0
    >>> nps_from_counts([50, 10], [30, 0], [20, 30]).tolist()
    [30.0, -50.0]
    """
    from .._check import amounts, divide

    p = amounts(promoters, "promoters")
    m = amounts(passives, "passives")
    d = amounts(detractors, "detractors")
    with np.errstate(over="ignore"):
        return divide((p - d) * 100.0, p + m + d, zero_division, "the number of responses")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _moe_from_counts(
    promoters: int, passives: int, detractors: int, confidence: float, method: str
) -> tuple[float, float]:
    """(centre, margin) in points; NaN when there is no response."""
    z = _z(confidence)
    n = promoters + passives + detractors
    if method == "wald":
        if n == 0:
            return math.nan, math.nan
        p, d, size = promoters / n, detractors / n, float(n)
    elif method == "adjusted_wald":
        # Rocks (2016): add 3 to n and 3/4 to each of the promoter and detractor counts.
        size = n + 3.0
        p, d = (promoters + 0.75) / size, (detractors + 0.75) / size
        if n == 0:
            return math.nan, math.nan
    else:
        raise ValueError(f'method must be "wald" or "adjusted_wald", not {method!r}')
    variance = p + d - (p - d) ** 2
    return (p - d) * 100.0, z * math.sqrt(max(variance, 0.0) / size) * 100.0


def nps_margin_of_error(
    scores: Any,
    confidence: float = 0.95,
    method: Literal["wald", "adjusted_wald"] = "wald",
    *,
    zero_division: ZeroDivision = math.nan,
) -> float:
    """Margin of error of the NPS, in points (half the width of the confidence interval).

    Formula (Wald): ``z * sqrt((p + d - (p - d)**2) / n) * 100`` with ``p`` and ``d`` the
    promoter and detractor shares, ``n`` the responses and ``z`` the normal quantile for
    ``confidence`` (1.96 at 95 %). ``method="adjusted_wald"`` first adds 3 to ``n`` and 3/4
    to each of the promoter and detractor counts (Rocks 2016), which behaves better for
    small samples and extreme scores.

    Examples
    --------
    50 promoters, 30 passives, 20 detractors: p = 0.5, d = 0.2,
    1.96 * sqrt((0.7 - 0.09) / 100) * 100 = 15.31 points.

    >>> scores = [10] * 50 + [8] * 30 + [2] * 20
    >>> round(nps_margin_of_error(scores), 2)
    15.31
    >>> round(nps_margin_of_error(scores, method="adjusted_wald"), 2)
    15.08
    """
    check_zero_division(zero_division)
    counts = _nps_counts(scores)
    _, margin = _moe_from_counts(*counts, confidence, method)
    if math.isnan(margin):
        return undefined(zero_division, "no NPS responses")
    return margin


def nps_breakdown(
    scores: Any,
    confidence: float = 0.95,
    method: Literal["wald", "adjusted_wald"] = "wald",
    *,
    zero_division: ZeroDivision = math.nan,
) -> dict[str, float]:
    """Counts and shares of promoters, passives and detractors, with NPS and its interval.

    Returns a dict with ``promoters``, ``passives``, ``detractors`` (counts), ``n``,
    ``promoter_share``, ``passive_share``, ``detractor_share`` (fractions), ``nps``,
    ``margin_of_error``, ``lower`` and ``upper`` (points; the interval is centred on the
    NPS for the Wald method and on the adjusted NPS for the adjusted Wald method, and is
    clipped to -100..100). Shares, NPS and interval are ``zero_division`` when there is no
    response.

    Examples
    --------
    >>> b = nps_breakdown([10] * 50 + [8] * 30 + [2] * 20)
    >>> b["promoters"], b["passives"], b["detractors"], b["n"], b["nps"]
    (50, 30, 20, 100, 30.0)
    >>> round(b["lower"], 2), round(b["upper"], 2)
    (14.69, 45.31)
    """
    check_zero_division(zero_division)
    promoters, passives, detractors = _nps_counts(scores)
    n = promoters + passives + detractors
    out: dict[str, Any] = {
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "n": n,
    }
    if n == 0:
        empty = undefined(zero_division, "no NPS responses")
        for key in ("promoter_share", "passive_share", "detractor_share", "nps"):
            out[key] = empty
        out.update(margin_of_error=empty, lower=empty, upper=empty)
        return out
    centre, margin = _moe_from_counts(promoters, passives, detractors, confidence, method)
    out.update(
        promoter_share=promoters / n,
        passive_share=passives / n,
        detractor_share=detractors / n,
        nps=_nps_points(promoters, detractors, n),
        margin_of_error=margin,
        lower=max(centre - margin, -100.0),
        upper=min(centre + margin, 100.0),
    )
    return out


def _check_scale(scale: Any, name: str = "scale") -> int:
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or scale < 2
        or scale != int(scale)
    ):
        raise ValueError(f"{name} must be a whole number of at least 2, not {scale!r}")
    return int(scale)


def csat(
    scores: Any,
    scale: int = 5,
    threshold: float | None = None,
    *,
    zero_division: ZeroDivision = math.nan,
) -> float:
    """Customer satisfaction score: the share of responses at or above ``threshold``.

    Formula: ``CSAT = responses with score >= threshold / responses``, scores 1..scale.
    The default threshold is the top-2-box on 5- and 7-point scales (4 and 6) and 8 on a
    10-point scale, as seed 003 counts "everyone who rated you 8 or higher"; on other
    scales it is ``scale - 1``.

    Examples
    --------
    Seed 003's 1-10 survey, three of five rated 8 or higher:

    >>> csat([9, 8, 10, 5, 7], scale=10)
    0.6
    >>> csat([5, 4, 3, 2, 5])  # 1-5 scale, top-2-box
    0.6
    """
    check_zero_division(zero_division)
    scale = _check_scale(scale)
    if threshold is None:
        threshold = _CSAT_DEFAULT_THRESHOLD.get(scale, scale - 1)
    elif not 1 <= threshold <= scale:
        raise ValueError(f"threshold must be within 1..{scale}, not {threshold!r}")
    v = values(scores, "scores", low=1, high=scale, whole=True)
    if v.size == 0:
        return undefined(zero_division, "no CSAT responses")
    return float(np.count_nonzero(v >= threshold)) / v.size


def ces(scores: Any, scale: int = 7, *, zero_division: ZeroDivision = math.nan) -> float:
    """Customer effort score: the mean effort answer.

    Formula: ``CES = sum(scores) / responses``. The default is CES 2.0: agreement with
    "the company made it easy to handle my issue" on 1..7, higher is easier. ``scale=5``
    is the older 1..5 "how much effort did you personally have to put forth" scale, where
    lower is better (seed 002 describes that one: "a low CES indicates ... easy").

    Examples
    --------
    >>> ces([7, 6, 5, 4, 6, 2])
    5.0
    >>> ces([[1], [2], [None], [3]], scale=5)
    2.0
    """
    check_zero_division(zero_division)
    scale = _check_scale(scale)
    v = values(scores, "scores", low=1, high=scale, whole=True)
    if v.size == 0:
        return undefined(zero_division, "no CES responses")
    return float(v.mean())


def ces_easy_rate(
    scores: Any,
    scale: int = 7,
    threshold: float | None = None,
    *,
    zero_division: ZeroDivision = math.nan,
) -> float:
    """Share of effort answers that say "easy".

    Formula on the CES 2.0 1..7 scale: ``answers >= threshold / answers`` with threshold 5
    (somewhat agree or better). On the older 1..5 effort scale (lower is easier) an answer
    is easy when it is ``<= threshold``, default 2.

    Examples
    --------
    >>> ces_easy_rate([7, 6, 5, 4, 6, 2])
    0.6666666666666666
    >>> ces_easy_rate([1, 2, 3, 5], scale=5)
    0.5
    """
    check_zero_division(zero_division)
    scale = _check_scale(scale)
    lower_is_easier = scale == 5
    if threshold is None:
        threshold = 2 if lower_is_easier else 5
    elif not 1 <= threshold <= scale:
        raise ValueError(f"threshold must be within 1..{scale}, not {threshold!r}")
    v = values(scores, "scores", low=1, high=scale, whole=True)
    if v.size == 0:
        return undefined(zero_division, "no CES responses")
    easy = v <= threshold if lower_is_easier else v >= threshold
    return float(np.count_nonzero(easy)) / v.size


def star_rating(ratings: Any, *, zero_division: ZeroDivision = math.nan) -> float:
    """Average star rating on 1..5 stars.

    Formula: ``sum(ratings) / ratings``.

    Examples
    --------
    >>> star_rating([5, 4, 4, 3, 5, 2])
    3.8333333333333335
    """
    check_zero_division(zero_division)
    v = values(ratings, "ratings", low=1, high=5, whole=True)
    if v.size == 0:
        return undefined(zero_division, "no ratings")
    return float(v.mean())


def star_rating_distribution(ratings: Any) -> dict[int, int]:
    """How many ratings gave 1, 2, 3, 4 and 5 stars.

    Examples
    --------
    >>> star_rating_distribution([5, 4, 4, 3, 5, 2])
    {1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
    """
    v = values(ratings, "ratings", low=1, high=5, whole=True)
    counts = np.bincount(v.astype(np.int64), minlength=6)
    return {stars: int(counts[stars]) for stars in range(1, 6)}
