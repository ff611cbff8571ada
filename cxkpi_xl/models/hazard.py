"""Churn hazard by category: a Cox proportional-hazards fit on start/stop rows, and the
check of its proportional-hazards assumption.

The fit is on counting-process rows ``(entry, exit]`` with one categorical covariate
coded against a reference level, Efron's method for tied churn times (monthly data ties
heavily) and optional strata (a baseline hazard per stratum). It is computed from the
counts at risk and failing per level at each event time (``_efron_by_counts``, numpy
only), which give the same estimates as statsmodels' ``PHReg`` (the reference, tested to
agree; imported only where a level has no event, so the package imports without it).
The proportional-hazards check is the Grambsch-Therneau test on scaled Schoenfeld
residuals against the rank of the event time (as ``cox.zph`` in R's survival and
lifelines' ``proportional_hazard_test`` with ``time_transform="rank"``).

References: Cox (1972); Efron (1977); Grambsch & Therneau (1994), Biometrika 81(3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class HazardRatios:
    """A Cox fit of one categorical covariate: per level (the reference first, with a
    hazard ratio of 1 and no interval) the hazard ratio against the reference, its
    interval and p-value (Wald), the subjects and events seen in the level, and the
    proportional-hazards test's p-value per level and over all levels."""

    levels: tuple[str, ...]
    reference: str
    hazard_ratio: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    subjects: np.ndarray
    events: np.ndarray
    log_hr: np.ndarray
    log_hr_se: np.ndarray
    ph_p_value: np.ndarray
    ph_global_p_value: float
    confidence: float
    covariance: np.ndarray  # of the log hazard ratios of the levels after the reference

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{level: {"hazard_ratio", "ci_low", "ci_high", "p_value", "customers",
        "events"}}``."""
        return {
            level: {
                "hazard_ratio": float(self.hazard_ratio[i]),
                "ci_low": float(self.ci_low[i]),
                "ci_high": float(self.ci_high[i]),
                "p_value": float(self.p_value[i]),
                "customers": int(self.subjects[i]),
                "events": int(self.events[i]),
            }
            for i, level in enumerate(self.levels)
        }


def cox_hazard_ratios(
    entry: Any,
    exit: Any,
    event: Any,
    category: Any,
    *,
    reference: str,
    subject: Any = None,
    strata: Any = None,
    confidence: float = 0.95,
    levels: Sequence[str] | None = None,
) -> HazardRatios:
    """Hazard ratio of each level of ``category`` against ``reference``, from a Cox model
    of the start/stop rows ``(entry, exit]`` with ``event`` 1 where the row ends in the
    event (churn). A subject's covariate may change from row to row (time-varying), so a
    subject has as many rows as spells. ``subject`` (an id per row) counts subjects per
    level; without it each row is a subject.

    Returns :class:`HazardRatios`; levels are ``levels`` (default: the sorted values, the
    reference first). A level with no rows is left out. Raises ``ValueError`` for an
    unknown reference, no events, or rows with ``exit <= entry``.

    Examples
    --------
    Six subjects, one row each; ``a`` leaves at months 1 and 5 (censored at 3), ``b`` at 2,
    4 and 6. With x the hazard ratio of ``b``, the partial likelihood is
    x^2 / ((3 + 3x)(2 + 3x)(1 + 2x)(1 + x)), greatest at x = 0.760:

    >>> fit = cox_hazard_ratios([0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 1],
    ...                         ["a", "b", "a", "b", "a", "b"], reference="a")
    >>> fit.levels, [round(float(h), 3) for h in fit.hazard_ratio]
    (('a', 'b'), [1.0, 0.76])
    """
    entry_ = np.asarray(entry, dtype=float)
    exit_ = np.asarray(exit, dtype=float)
    event_ = np.asarray(event, dtype=float)
    cat = np.asarray(category, dtype=object)
    if not (len(entry_) == len(exit_) == len(event_) == len(cat)):
        raise ValueError("entry, exit, event and category must have the same length")
    if np.any(exit_ <= entry_):
        raise ValueError("every row must end after it starts (exit > entry)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    present = set(cat.tolist())
    if reference not in present:
        raise ValueError(f"the reference level {reference!r} has no rows")
    order = list(levels) if levels is not None else sorted(map(str, present))
    order = [reference] + [lv for lv in order if lv != reference and lv in present]
    if event_.sum() == 0:
        raise ValueError("no events: a hazard ratio needs at least one")
    codes = np.full(len(cat), -1)
    for i, lv in enumerate(order):
        codes[cat == lv] = i
    fitted = _efron_by_counts(entry_, exit_, event_, codes, len(order), strata)
    if fitted is None:  # a level with no event: the Newton steps run off, as statsmodels' do
        fitted = _efron_by_phreg(entry_, exit_, event_, cat, order, strata)
    beta, cov, residuals = fitted
    se = np.sqrt(np.diag(cov))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # the normal quantile
    with np.errstate(over="ignore", invalid="ignore"):
        p = normal_two_sided(beta / se)
    ph, ph_global = _ph_test(residuals, exit_, event_, cov)
    ids = np.asarray(subject, dtype=object) if subject is not None else np.arange(len(cat))
    subjects = np.array([len(set(ids[cat == lv].tolist())) for lv in order])
    events = np.array([int(event_[cat == lv].sum()) for lv in order])
    one = np.ones(1)
    nan = np.full(1, np.nan)
    return HazardRatios(
        levels=tuple(order),
        reference=reference,
        hazard_ratio=np.concatenate([one, np.exp(beta)]),
        ci_low=np.concatenate([nan, np.exp(beta - z * se)]),
        ci_high=np.concatenate([nan, np.exp(beta + z * se)]),
        p_value=np.concatenate([nan, p]),
        subjects=subjects,
        events=events,
        log_hr=np.concatenate([np.zeros(1), beta]),
        log_hr_se=np.concatenate([nan, se]),
        ph_p_value=np.concatenate([nan, ph]),
        ph_global_p_value=ph_global,
        confidence=confidence,
        covariance=cov,
    )


NEWTON_TOL = 1e-8
NEWTON_MAX_ITER = 100
RIDGE = 1e-10
"""statsmodels' Newton settings (``LikelihoodModel.fit(method="newton")``), kept so that
both fits stop at the same point."""


def _efron_by_phreg(
    entry: np.ndarray,
    exit: np.ndarray,
    event: np.ndarray,
    cat: np.ndarray,
    order: list[str],
    strata: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Cox fit by statsmodels' ``PHReg`` (Efron ties): the log hazard ratios of the
    levels after the first, their covariance and the Schoenfeld residuals (a row per
    input row, NaN but for events). The reference implementation, and the fit where a
    level has no event."""
    from statsmodels.duration.hazard_regression import PHReg

    exog = np.column_stack([(cat == lv).astype(float) for lv in order[1:]])
    # PHReg counts a row in the risk set from its entry time on (Stata's convention); a
    # start/stop row (entry, exit] is at risk only after its entry (R's survival). Without
    # the nudge a customer whose category changes at a churn time would be at risk twice
    # then (the row that ends and the row that starts).
    nudged = np.nextafter(entry, np.inf)
    model = PHReg(exit, exog, status=event, entry=nudged, strata=strata, ties="efron")
    result = model.fit()
    beta = np.asarray(result.params, dtype=float)
    cov = np.asarray(result.cov_params(), dtype=float)
    return beta, cov, np.asarray(result.schoenfeld_residuals, dtype=float)


def _efron_by_counts(
    entry: np.ndarray,
    exit: np.ndarray,
    event: np.ndarray,
    codes: np.ndarray,
    n_levels: int,
    strata: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The same fit as :func:`_efron_by_phreg`, from counts: with one categorical covariate
    the Efron partial likelihood depends only on how many rows of each level are at risk
    and how many fail at each event time of each stratum (whole numbers, counted once),
    so each Newton step costs a few small array operations instead of a pass over the
    rows. The Newton steps are statsmodels' (start at 0, ridge 1e-10, stop when no
    parameter moves by more than 1e-8) and the covariance is the inverse of the
    information at the answer, as there. ``None`` when a level has no event (the
    estimate runs off to minus infinity; statsmodels then stops wherever its iterations
    end, which only statsmodels reproduces) or the steps do not settle."""
    L = n_levels
    p = L - 1
    ev = event > 0
    if p < 1 or not np.all(np.bincount(codes[ev], minlength=L) > 0):
        return None
    if strata is None:
        stratum = np.zeros(len(codes), dtype=np.int64)
    else:
        import pandas as pd

        stratum = pd.factorize(np.asarray(strata, dtype=object), use_na_sentinel=False)[0]
    at_risk_blocks, failing_blocks, slot_of_row = [], [], np.full(len(codes), -1)
    offset = 0
    for s in range(int(stratum.max()) + 1 if len(stratum) else 0):
        rows = np.flatnonzero(stratum == s)
        times = np.unique(exit[rows][ev[rows]])
        K = len(times)
        if K == 0:  # a stratum without events adds nothing to the partial likelihood
            continue
        lo = np.searchsorted(times, entry[rows], "right")  # first event time after entry
        hi = np.searchsorted(times, exit[rows], "right") - 1  # last event time up to exit
        ok = lo <= hi
        lv = codes[rows][ok]
        change = np.bincount(lo[ok] * L + lv, minlength=(K + 1) * L) - np.bincount(
            (hi[ok] + 1) * L + lv, minlength=(K + 1) * L
        )
        at_risk_blocks.append(np.cumsum(change.reshape(K + 1, L)[:K], axis=0))
        fails = rows[ev[rows]]
        k = np.searchsorted(times, exit[fails])
        failing_blocks.append(np.bincount(k * L + codes[fails], minlength=K * L).reshape(K, L))
        slot_of_row[fails] = offset + k
        offset += K
    n = np.concatenate(at_risk_blocks).astype(float)  # rows at risk: event time x level
    d = np.concatenate(failing_blocks).astype(float)  # events
    m = d.sum(axis=1).astype(np.int64)  # tied events at each event time
    slot = np.repeat(np.arange(len(m)), m)
    frac = (np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)) / m[slot]  # j / m
    base = n[slot] - frac[:, None] * d[slot]  # Efron's risk set of the j-th tied event
    events_by_level = d.sum(axis=0)

    def gradient_and_hessian(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.exp(np.concatenate([np.zeros(1), beta]))
        a = base * theta
        share = a[:, 1:] / a.sum(axis=1)[:, None]
        grad = events_by_level[1:] - share.sum(axis=0)
        hess = share.T @ share - np.diag(share.sum(axis=0))
        return grad, hess

    nobs = len(codes)
    old, new = np.full(p, np.inf), np.zeros(p)
    iterations = 0
    with np.errstate(all="ignore"):
        while iterations < NEWTON_MAX_ITER and np.any(np.abs(new - old) > NEWTON_TOL):
            grad, hess = gradient_and_hessian(new)
            info = -hess / nobs
            info[np.diag_indices(p)] += RIDGE
            old = new
            new = old - np.linalg.solve(info, -grad / nobs)
            iterations += 1
        if iterations == NEWTON_MAX_ITER or not np.all(np.isfinite(new)):
            return None
        grad, hess = gradient_and_hessian(new)
        cov = np.linalg.inv(-hess / nobs) / nobs
        theta = np.exp(np.concatenate([np.zeros(1), new]))
        weighted = n * theta
        average = weighted[:, 1:] / weighted.sum(axis=1)[:, None]  # at each event time
    residuals = np.full((nobs, p), np.nan)
    fails = np.flatnonzero(slot_of_row >= 0)
    exog = (codes[fails][:, None] == np.arange(1, L)[None, :]).astype(float)
    residuals[fails] = exog - average[slot_of_row[fails]]
    return new, cov, residuals


def _ph_test(
    residuals: np.ndarray, exit: np.ndarray, event: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, float]:
    """Grambsch-Therneau test of proportional hazards: the scaled Schoenfeld residuals
    ``r* = d V r`` (d events, V the covariance of the estimates, r the Schoenfeld residual
    of an event) regressed on g, the rank of the event time. Per covariate
    ``T = (sum (g - mean g) r*)^2 / (d V_jj sum (g - mean g)^2)``, chi-square with 1
    degree of freedom; globally ``U' (d V sum (g - mean g)^2)^-1 U`` with
    ``U = sum (g - mean g) r*``, chi-square with one degree per covariate."""
    rows = (event > 0) & np.all(np.isfinite(residuals), axis=1)
    r = residuals[rows]
    d = len(r)
    p = cov.shape[0]
    if d < 3:
        return np.full(p, np.nan), math.nan
    g = _average_ranks(exit[rows])
    g = g - g.mean()
    scaled = d * r @ cov
    u = g @ scaled
    ss = float(g @ g)
    if ss == 0:
        return np.full(p, np.nan), math.nan
    per = u**2 / (d * np.diag(cov) * ss)
    try:
        total = float(u @ np.linalg.solve(d * cov * ss, u))
    except np.linalg.LinAlgError:
        total = math.nan
    return np.array([chi2_upper(1, float(t)) for t in per]), chi2_upper(p, total)


def normal_two_sided(z: np.ndarray) -> np.ndarray:
    """Twice the standard normal upper tail of ``|z|``: ``erfc(|z| / sqrt 2)``, as
    ``2 * scipy.special.ndtr(-|z|)`` (NaN stays NaN). From the standard library: scipy
    takes a fifth of a second to import, a fifth of a one-table refresh."""
    return np.array([math.erfc(abs(float(v)) / math.sqrt(2)) for v in np.ravel(z)])


def chi2_upper(k: int, x: float) -> float:
    """The chi-square upper tail with ``k`` (a whole number) degrees of freedom at ``x``,
    ``Q(k/2, x/2)`` (``scipy.special.chdtrc(k, x)``), in closed form: for even k,
    ``exp(-x/2) sum_{i<k/2} (x/2)^i / i!``; for odd k, ``erfc(sqrt(x/2))`` plus
    ``exp(-x/2) sum_{i=1}^{(k-1)/2} (x/2)^(i-1/2) / Gamma(i+1/2)``. Each term is taken
    through its logarithm, so large x and k neither overflow nor lose digits (the terms
    are all positive: no cancellation). As scipy: 1 at x = 0 (and for an x so small that
    x/2 rounds to 0), NaN for a negative x (a statistic from a covariance not quite
    positive definite) and for NaN."""
    if math.isnan(x) or x < 0:
        return math.nan
    if math.isinf(x):
        return 0.0
    h = x / 2
    if h == 0:
        return 1.0
    if k % 2 == 0:
        terms = (math.exp(-h + i * math.log(h) - math.lgamma(i + 1)) for i in range(k // 2))
        return min(1.0, math.fsum(terms))
    tail = math.erfc(math.sqrt(h))
    terms = (
        math.exp(-h + (i - 0.5) * math.log(h) - math.lgamma(i + 0.5))
        for i in range(1, (k + 1) // 2)
    )
    return min(1.0, math.fsum([tail, *terms]))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing the mean of their ranks (``scipy.stats.rankdata``'s
    default, which tests/test_impact.py checks it against)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    mean_rank = starts + (counts + 1) / 2
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks
