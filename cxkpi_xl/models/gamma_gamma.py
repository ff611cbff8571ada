"""Gamma-Gamma (Fader & Hardie 2013): the monetary value of a customer's
transactions, and the predicted CLV it gives with BG/NBD."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bgnbd import BetaGeoModel
from .fit import (
    MIN_CUSTOMERS,
    MONTH_IN_UNITS,
    ModelError,
    _arrays,
    _minimize,
)


@dataclass
class GammaGammaModel:
    """The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013).

    Each customer's mean spend varies around its own mean (gamma with shape ``p``),
    whose scale varies across customers (gamma with ``q`` and ``v``); spend is assumed
    independent of purchase frequency.

    Two limits, fitted when the likelihood keeps growing towards them (the parameters
    would run off to their edge): ``limit_ = "alike"`` when customers' mean spends differ
    no more than their single purchases do (q, v infinite with v / q fixed: every
    customer's expected spend is the population mean ``mean_spend_``); ``limit_ =
    "steady"`` when each customer's purchases hardly vary (p infinite, v = 0 with p * v
    fixed: a repeat buyer's expected spend is their own mean spend, a customer without
    repeat purchases gets the population mean ``mean_spend_``).
    """

    params_: dict[str, float] | None = None
    limit_: str | None = None
    mean_spend_: float | None = None

    @staticmethod
    def _nll_and_gradient(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> Any:
        """The mean negative log-likelihood over log parameters, and its gradient.

        Per customer, ll = ln G(px + q) - ln G(px) - ln G(q) + q ln v + (px - 1) ln m
        + px ln x - (px + q) ln(xm + v); its derivatives: d/dp = x (psi(px + q) - psi(px)
        + ln m + ln x - ln(xm + v)), d/dq = psi(px + q) - psi(q) + ln v - ln(xm + v),
        d/dv = q / v - (px + q) / (xm + v), each times its parameter for the log scale."""
        from scipy.special import digamma, gammaln

        p, q, v = np.exp(params)
        px = p * x
        log_xmv = np.log(x * m + v)
        ll = (
            gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_xmv
        )  # fmt: skip
        psi_pxq = digamma(px + q)
        d_p = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_xmv)
        d_q = psi_pxq - digamma(q) + np.log(v) - log_xmv
        d_v = q / v - (px + q) / (x * m + v)
        grad = -np.array([p * d_p.mean(), q * d_q.mean(), v * d_v.mean()])
        return float(-ll.mean()), grad

    @staticmethod
    def _log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        """The mean negative log-likelihood (the objective the fit minimises)."""
        return GammaGammaModel._nll_and_gradient(params, x, m)[0]

    @staticmethod
    def _alike_nll_and_gradient(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> Any:
        """The "alike" limit: x * mean spend ~ gamma(p x, rate nu x), one nu for all;
        ll = px ln(nu x) + (px - 1) ln m - nu x m - ln G(px), d/dp = x (ln(nu x) + ln m
        - psi(px)), d/dnu = px / nu - x m."""
        from scipy.special import digamma, gammaln

        p, nu = np.exp(params)
        px = p * x
        ll = px * np.log(nu * x) + (px - 1) * np.log(m) - nu * x * m - gammaln(px)
        d_p = x * (np.log(nu * x) + np.log(m) - digamma(px))
        d_nu = px / nu - x * m
        return float(-ll.mean()), -np.array([p * d_p.mean(), nu * d_nu.mean()])

    @staticmethod
    def _alike_nll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        return GammaGammaModel._alike_nll_and_gradient(params, x, m)[0]

    @staticmethod
    def _steady_nll_and_gradient(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> Any:
        """The "steady" limit: mean spends ~ inverse gamma(q, scale s); ll = q ln s
        - ln G(q) - (q + 1) ln m - s / m, d/dq = ln s - psi(q) - ln m, d/ds = q / s - 1 / m."""
        from scipy.special import digamma, gammaln

        q, s = np.exp(params)
        ll = q * np.log(s) - gammaln(q) - (q + 1) * np.log(m) - s / m
        d_q = np.log(s) - digamma(q) - np.log(m)
        d_s = q / s - 1 / m
        return float(-ll.mean()), -np.array([q * d_q.mean(), s * d_s.mean()])

    @staticmethod
    def _steady_nll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        return GammaGammaModel._steady_nll_and_gradient(params, x, m)[0]

    def fit(self, frequency: Any, monetary_value: Any) -> GammaGammaModel:
        """Fit on the customers with repeat purchases (frequency > 0); one of the limits
        (see the class) when the parameters run off to their edge and the limit fits as
        well."""
        x, m = _arrays(frequency, monetary_value, names=("frequency", "monetary_value"))
        repeat = x > 0
        if (m[repeat] <= 0).any():
            raise ModelError(
                "Gamma-Gamma needs positive spends: a repeat buyer has a spend of 0 or less"
            )
        x, m = x[repeat], m[repeat]
        if x.size < MIN_CUSTOMERS:
            raise ModelError(
                f"too few repeat buyers to fit Gamma-Gamma: {x.size} (at least {MIN_CUSTOMERS})"
            )
        money = float(m.mean())
        names = ("p", "q", "v")
        found, edges, value = _minimize(
            lambda par: self._nll_and_gradient(par, x, m),
            np.log([1.0, 1.0, money]),
            "Gamma-Gamma",
            names,
            jac=True,
            scale=np.array([1.0, 1.0, money]),
            allow_edge=True,
        )
        self.limit_, self.mean_spend_ = None, None
        p, q, v = found
        # The optimiser may stop far out on a ridge short of the edge (p or q in the
        # thousands, as newer scipy releases do) instead of reporting the edge: a shape
        # parameter that large is the limit in all but name, so try the limit then too.
        far = 1e3
        if (edges and set(edges.items()) <= {("q", 1), ("v", 1)}) or (not edges and q > far):
            p, nu = _minimize(
                lambda par: self._alike_nll_and_gradient(par, x, m),
                np.log([p, q / v]),
                "Gamma-Gamma",
                ("p", "nu"),
                jac=True,
                scale=np.array([1.0, 1 / money]),
            )
            if self._alike_nll(np.log([p, nu]), x, m) <= value + 1e-9 * max(1.0, abs(value)):
                self.params_ = {"p": float(p), "q": math.inf, "v": math.inf}
                self.limit_, self.mean_spend_ = "alike", float(p / nu)
                return self
        elif (edges and set(edges.items()) <= {("p", 1), ("v", -1)}) or (not edges and p > far):
            q, s = _minimize(
                lambda par: self._steady_nll_and_gradient(par, x, m),
                np.log([q, p * v]),
                "Gamma-Gamma",
                ("q", "s"),
                jac=True,
                scale=np.array([1.0, money]),
            )
            if (
                self._steady_nll(np.log([q, s]), x, m) <= value + 1e-9 * max(1.0, abs(value))
                and q > 1
            ):
                self.params_ = {"p": math.inf, "q": float(q), "v": 0.0}
                self.limit_, self.mean_spend_ = "steady", float(s / (q - 1))
                return self
        if edges:
            shown = ", ".join(f"{n}={v:.3g}" for n, v in zip(names, found, strict=True))
            raise ModelError(
                f"the Gamma-Gamma fit ran to the edge of its parameters ({shown}): these "
                "data do not identify the model"
            )
        if q <= 1:
            raise ModelError(
                f"the Gamma-Gamma fit gives q = {q:.3g} <= 1: the mean spend is not defined "
                "(spends vary too much between customers for this model)"
            )
        self.params_ = {"p": float(p), "q": float(q), "v": float(v)}
        return self

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> Any:
        """E[Z | x, z-bar]: a customer's expected spend per purchase, shrunk towards the
        population mean; customers without repeat purchases get the population mean."""
        if self.params_ is None:
            raise ModelError("the model is not fitted yet: call fit first")
        p, q, v = self.params_["p"], self.params_["q"], self.params_["v"]
        x, m = (np.asarray(a, dtype=float) for a in (frequency, monetary_value))
        if self.limit_ == "alike":
            out = np.full(np.broadcast(x, m).shape, self.mean_spend_)
        elif self.limit_ == "steady":
            out = np.where(x > 0, m, self.mean_spend_)
        else:
            weight = (q - 1) / (p * x + q - 1)
            out = weight * (v * p / (q - 1)) + (1 - weight) * m
        return out if out.ndim else float(out)


def predicted_clv(
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    freq: str = "W",
) -> np.ndarray:
    """Discounted expected value per customer over ``horizon_months``.

    Formula: ``sum over months i of (E[Y(i)] - E[Y(i - 1)]) * E[spend] / (1 + d)^i``, with
    E[Y] the BG/NBD conditional expected purchases, E[spend] the Gamma-Gamma expected
    average spend and d the monthly discount rate; ``freq`` is the time unit the models
    were fitted in. A month is 365.25 / 12 = 30.4375 days (4.348 weeks): month i ends
    i * 30.4375 days after the end of the observation, whatever the calendar.
    """
    if horizon_months < 1:
        raise ValueError(f"horizon_months must be 1 or more, not {horizon_months!r}")
    if not 0 <= discount_rate < 1:
        raise ValueError(f"discount_rate must be a monthly rate in 0..1, not {discount_rate!r}")
    month = MONTH_IN_UNITS[freq]
    spend = np.asarray(gamma_gamma.expected_average_spend(frequency, monetary_value), dtype=float)
    value = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    for i in range(1, horizon_months + 1):
        expected = np.asarray(
            bgnbd.conditional_expected_purchases(i * month, frequency, recency, T)
        )
        value += (expected - previous) * spend / (1 + discount_rate) ** i
        previous = expected
    return value
