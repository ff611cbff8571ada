"""The shifted-beta-geometric model (Fader & Hardie 2007, 2010): projected retention
of a contractual cohort, and DERL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .fit import (
    LOG_BOUND,
    ModelError,
    _arrays,
)


def _sbg_log_likelihood(churn: np.ndarray, lost: np.ndarray, survivors: float) -> float:
    """Log-likelihood of a survival curve given each period's churn probability among
    the customers still there (``churn[t - 1]`` for period t)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_stay = np.log1p(-churn)
        log_s = np.concatenate(([0.0], np.cumsum(log_stay)))  # log S(0), ..., log S(n - 1)
        per_period = np.where(lost > 0, lost * (log_s[:-1] + np.log(churn)), 0.0)
        last = survivors * log_s[-1] if survivors > 0 else 0.0
    return float(per_period.sum() + last)


@dataclass
class ShiftedBetaGeometricModel:
    """The shifted-beta-geometric (sBG) model of contract renewals (Fader & Hardie 2007).

    Each customer renews each period with a constant probability, beta-distributed across
    customers (``alpha``, ``beta``); the cohort's retention rate rises over time as the
    customers most likely to leave do so first.

    The constant-churn limit: as alpha and beta grow with alpha / (alpha + beta) = p
    fixed, every customer churns with the same probability p and the sBG becomes the
    geometric model, S(t) = (1 - p)^t. When a cohort's churn is that steady (or rises
    over time), the likelihood keeps growing towards that limit and no finite alpha and
    beta are best; the fit then returns the limit itself: ``constant_churn_`` is p (the
    cohort's churned customers / customer-periods at risk) and ``params_`` holds
    alpha = beta = inf. The projections use the limit's exact formulas.
    """

    params_: dict[str, float] | None = None
    constant_churn_: float | None = None

    def fit(self, survival: Any) -> ShiftedBetaGeometricModel:
        """Fit on the customers still active at the start of each period, starting with
        the whole cohort: e.g. 1000, 631, 468, 382, ...

        Maximum likelihood over the mean churn m = alpha / (alpha + beta) and the
        concentration alpha + beta; the constant-churn limit (see the class) when no
        finite alpha and beta beat it by more than 1e-6 in log-likelihood."""
        from scipy.optimize import minimize

        (s,) = _arrays(survival, names=("survival",))
        if s.size < 3:
            raise ModelError("the survival curve needs at least three periods")
        if (s <= 0).any() or (s != np.floor(s)).any():
            raise ModelError("survival must hold whole numbers of customers above 0")
        if (np.diff(s) > 0).any():
            i = int(np.flatnonzero(np.diff(s) > 0)[0])
            raise ModelError(
                f"the survival curve rises from {s[i]:g} to {s[i + 1]:g} at period {i + 1}: "
                "it can only fall"
            )
        lost = -np.diff(s)
        t = np.arange(1, s.size)
        p = float(lost.sum() / s[:-1].sum())
        limit = _sbg_log_likelihood(np.full(lost.size, p), lost, s[-1])

        def nll(x: np.ndarray) -> float:
            m, kappa = 1 / (1 + math.exp(-x[0])), math.exp(x[1])
            # alpha / (alpha + beta + t - 1) in m and kappa = alpha + beta, exact for any
            # size of kappa (the beta functions of the textbook form lose it)
            return -_sbg_log_likelihood(m * kappa / (kappa + t - 1), lost, s[-1])

        self.params_, self.constant_churn_ = None, None
        if 0 < p < 1:
            bounds = [(-30.0, 30.0), (-LOG_BOUND, 2 * LOG_BOUND)]
            options = {"maxiter": 2000, "xatol": 1e-9, "fatol": 1e-12}
            best = None
            with np.errstate(all="ignore"):
                for log_kappa in (0.0, 3.0, 6.0):
                    x0 = np.array([math.log(p / (1 - p)), log_kappa])
                    found = minimize(nll, x0, method="Nelder-Mead", bounds=bounds, options=options)
                    if np.isfinite(found.fun) and (best is None or found.fun < best.fun):
                        best = found
            if best is None:
                raise ModelError("the sBG fit did not converge")
            if -best.fun > limit + 1e-6:
                m, kappa = 1 / (1 + math.exp(-best.x[0])), math.exp(best.x[1])
                self.params_ = {"alpha": m * kappa, "beta": (1 - m) * kappa}
                return self
        self.params_ = {"alpha": math.inf, "beta": math.inf}
        self.constant_churn_ = p
        return self

    def _ab(self) -> tuple[float, float]:
        if self.params_ is None:
            raise ModelError("the model is not fitted yet: call fit first")
        return self.params_["alpha"], self.params_["beta"]

    def survival(self, periods: int) -> np.ndarray:
        """S(t) for t = 0..periods: the share of the cohort still active
        (``B(alpha, beta + t) / B(alpha, beta)``; ``(1 - p)^t`` in the constant-churn
        limit)."""
        from scipy.special import betaln

        a, b = self._ab()
        t = np.arange(periods + 1)
        if self.constant_churn_ is not None:
            return (1 - self.constant_churn_) ** t.astype(float)
        return np.exp(betaln(a, b + t) - betaln(a, b))

    def retention_rates(self, periods: int) -> np.ndarray:
        """r(t) = (beta + t - 1) / (alpha + beta + t - 1) for t = 1..periods (``1 - p``
        in the constant-churn limit)."""
        a, b = self._ab()
        t = np.arange(1, periods + 1)
        if self.constant_churn_ is not None:
            return np.full(periods, 1 - self.constant_churn_)
        return (b + t - 1) / (a + b + t - 1)

    def discounted_expected_residual_lifetime(
        self, discount_rate: float, renewals: int = 1
    ) -> float:
        """DERL, in periods, of a customer who has made ``renewals`` renewals: see
        :func:`derl` (Fader & Hardie 2010, eq. 6, n = renewals + 1). In the constant-churn
        limit ``(1 - p)(1 + d) / (d + p)`` for every customer."""
        a, b = self._ab()
        if self.constant_churn_ is not None:
            _derl_checks(discount_rate, renewals)
            p, d = self.constant_churn_, float(discount_rate)
            return (1 - p) * (1 + d) / (d + p)
        return derl(a, b, discount_rate, renewals)


def _derl_checks(discount_rate: Any, renewals: Any) -> tuple[float, int]:
    from .._check import amounts

    d = float(amounts(discount_rate, "discount_rate"))
    k = float(amounts(renewals, "renewals"))
    if not d > 0:
        raise ValueError(f"discount_rate must be above 0, not {discount_rate!r}")
    if not k.is_integer():
        raise ValueError(f"renewals must be a whole number of 0 or more, not {renewals!r}")
    return d, int(k)


def derl(
    alpha: Any,
    beta: Any,
    discount_rate: Any,
    renewals: Any,
    *,
    zero_division: float = math.nan,
) -> float:
    """Discounted expected residual lifetime (DERL) of a subscriber, in periods, from the
    shifted-beta-geometric model (Fader & Hardie 2010).

    Formula (Fader & Hardie 2010, eq. 6): for a customer who has made ``renewals`` = k
    renewals, so is at the end of contract period n = k + 1 and about to renew,
    ``DERL = (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
    1 / (1 + d))``: the expected number of further periods paid, each discounted at the
    rate d per period (so the customer's residual value is DERL times the payment per
    period). alpha and beta are the sBG parameters (``sbg_retention`` fits them).
    ``zero_division`` is accepted so that every KPI has the same signature.

    Examples
    --------
    Fader & Hardie (2010), the high-end cohort (alpha = 0.668, beta = 3.806), d = 10 %,
    a customer who has made 7 renewals (n = 8): 7.530.

    >>> round(derl(0.668, 3.806, 0.10, 7), 3)
    7.53
    """
    from scipy.special import hyp2f1

    from .._check import amounts, check_zero_division

    check_zero_division(zero_division)
    a = float(amounts(alpha, "alpha"))
    b = float(amounts(beta, "beta"))
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"alpha and beta must be above 0, not {alpha!r} and {beta!r}")
    d, k = _derl_checks(discount_rate, renewals)
    n = k + 1
    return float((b + n - 1) / (a + b + n - 1) * hyp2f1(1, b + n, a + b + n, 1 / (1 + d)))


def sbg_retention(survival: Any, periods: int = 10, discount_rate: float = 0.1) -> pd.DataFrame:
    """Projected retention of a cohort from its survival curve (shifted-beta-geometric).

    Formula: fits alpha and beta to the customers still active at the start of each
    period, then projects ``S(t) = B(alpha, beta + t) / B(alpha, beta)`` and the retention
    rate ``r(t) = (beta + t - 1) / (alpha + beta + t - 1)`` for ``periods`` periods. The
    first rows give alpha, beta and the discounted expected residual lifetime (DERL, in
    periods, at ``discount_rate`` per period) of a customer who has made one renewal.
    A cohort whose churn is steady (or rises) fits the model's constant-churn limit:
    alpha and beta are then blank, a row ``constant_churn`` gives p (the cohort's
    churned customers / customer-periods at risk), every retention rate is 1 - p and
    ``S(t) = (1 - p)^t``.

    Examples
    --------
    Fader & Hardie (2007), the "regular" cohort: S(3) = 0.388 projected, 0.382 observed.

    >>> t = sbg_retention([1000, 631, 468, 382, 326, 289, 262, 241], periods=3)
    >>> t.round(3).loc[["alpha", "beta", "3"]].to_numpy().tolist()
    [[0.704, nan], [1.182, nan], [0.388, 0.819]]
    """
    from .._check import values

    s = values(survival, "survival", low=0)
    model = ShiftedBetaGeometricModel().fit(s)
    periods = int(periods)
    if periods < 1:
        raise ValueError(f"periods must be 1 or more, not {periods!r}")
    surv = model.survival(periods)
    rates = np.r_[np.nan, model.retention_rates(periods)]
    table = pd.DataFrame(
        {"survival": surv, "retention_rate": rates}, index=[str(t) for t in range(periods + 1)]
    )
    residual = model.discounted_expected_residual_lifetime(discount_rate, renewals=1)
    assert model.params_ is not None
    if model.constant_churn_ is None:
        values, names = [*model._ab(), residual], ["alpha", "beta", "derl"]
    else:
        values = [math.nan, math.nan, model.constant_churn_, residual]
        names = ["alpha", "beta", "constant_churn", "derl"]
    head = pd.DataFrame({"survival": values, "retention_rate": np.nan}, index=names)
    out = pd.concat([head, table])
    out.index.name = "period"
    return out
