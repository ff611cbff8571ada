"""BG/NBD (Fader, Hardie & Lee 2005): repeat purchases and P(alive) of
non-contractual customers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fit import (
    MIN_CUSTOMERS,
    ModelError,
    _arrays,
    _minimize,
)


@dataclass
class BetaGeoModel:
    """The BG/NBD model of purchase counts (Fader, Hardie & Lee 2005).

    While alive, a customer buys at a Poisson rate (gamma-distributed across customers:
    ``r``, ``alpha``); after each purchase the customer may drop out with a probability
    that is beta-distributed across customers (``a``, ``b``).

    The constant-dropout limit: as a and b grow with a / (a + b) = p fixed, every
    customer drops out after a repeat purchase with the same probability p. When the
    data show no spread in dropout between customers, the likelihood keeps growing
    towards that limit; the fit then returns the limit itself: ``constant_dropout_`` is
    p, ``params_`` holds a = b = inf, and the predictions use the limit's exact formulas
    (for example E[X(t)] = (1 - (alpha / (alpha + p t))^r) / p).
    """

    params_: dict[str, float] | None = None
    constant_dropout_: float | None = None

    def _p(self) -> tuple[float, float, float, float]:
        if self.params_ is None:
            raise ModelError("the model is not fitted yet: call fit first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    @staticmethod
    def _nll_and_gradient(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood (Fader, Hardie & Lee 2005, equation 6) and its
        gradient with respect to the log parameters."""
        from scipy.special import digamma, gammaln

        r, alpha, a, b = np.exp(params)
        # The special functions run on the few distinct x, T and t_x and are spread back by
        # index: the same numbers as on every row, at a fraction of the cost.
        ux, ix = np.unique(x, return_inverse=True)
        uT, iT = np.unique(T, return_inverse=True)
        ut, it = np.unique(t_x, return_inverse=True)
        log_aT, log_at = np.log(alpha + uT)[iT], np.log(alpha + ut)[it]
        repeat = x > 0
        a1 = gammaln(r + ux)[ix] - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + ux)[ix] - gammaln(b) - gammaln(a + b + ux)[ix]
        a3 = -(r + x) * log_aT
        a4 = np.log(a) - np.log(b + np.maximum(ux, 1) - 1)[ix] - (r + x) * log_at
        top = np.maximum(a3, np.where(repeat, a4, -np.inf))
        e3, e4 = np.exp(a3 - top), repeat * np.exp(a4 - top)
        total = e3 + e4
        ll = a1 + a2 + top + np.log(total)
        w3, w4 = e3 / total, e4 / total
        d_r = (
            digamma(r + ux)[ix] - digamma(r) + np.log(alpha)
            - w3 * log_aT - w4 * log_at
        )  # fmt: skip
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
        dg_abx = digamma(a + b + ux)[ix]
        d_a = digamma(a + b) - dg_abx + w4 / a
        d_b = (
            digamma(a + b) + digamma(b + ux)[ix] - digamma(b) - dg_abx
            - w4 / (b + np.maximum(ux, 1) - 1)[ix]
        )  # fmt: skip
        weight = w / w.sum()
        grad = np.array(
            [weight @ d_r * r, weight @ d_alpha * alpha, weight @ d_a * a, weight @ d_b * b]
        )
        return float(-(weight @ ll)), -grad

    @staticmethod
    def _limit_nll(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
    ) -> float:
        """Mean negative log-likelihood of the constant-dropout limit; the parameters are
        log r, log alpha and the log odds of p."""
        from scipy.special import gammaln

        r, alpha, odds = np.exp(params)
        log_p, log_stay = np.log(odds) - np.log1p(odds), -np.log1p(odds)
        repeat = x > 0
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a3 = x * log_stay - (r + x) * np.log(alpha + T)
        a4 = np.where(repeat, log_p + (x - 1) * log_stay - (r + x) * np.log(alpha + t_x), -np.inf)
        ll = a1 + np.logaddexp(a3, a4)
        return float(-(w @ ll) / w.sum())

    def fit(self, frequency: Any, recency: Any, T: Any) -> BetaGeoModel:
        """Fit by maximum likelihood; identical customers are weighted, not repeated.
        Takes the constant-dropout limit (see the class) when a and b run off to their
        edge and the limit fits as well."""
        x, t_x, t = _arrays(frequency, recency, T, names=("frequency", "recency", "T"))
        if x.size < MIN_CUSTOMERS:
            raise ModelError(
                f"too few customers to fit BG/NBD: {x.size} (at least {MIN_CUSTOMERS})"
            )
        if (x < 0).any() or (x != np.floor(x)).any():
            raise ModelError("frequency must hold whole numbers of 0 or more")
        if ((t_x < 0) | (t_x > t)).any():
            raise ModelError("recency must lie between 0 and T")
        if not (x > 0).any():
            raise ModelError("no customer made a repeat purchase: BG/NBD cannot be fitted")
        rows, weights = np.unique(np.column_stack([x, t_x, t]), axis=0, return_counts=True)
        args = (rows[:, 0], rows[:, 1], rows[:, 2], weights.astype(float))
        scale = max(float(t.mean()), 1e-9)
        x0 = np.log([0.5, scale / 2, 1.0, 1.0])
        names = ("r", "alpha", "a", "b")
        found, edges, value = _minimize(
            lambda p: self._nll_and_gradient(p, *args),
            x0,
            "BG/NBD",
            names,
            jac=True,
            scale=np.array([1.0, scale, 1.0, 1.0]),
            allow_edge=True,
        )
        self.constant_dropout_ = None
        if edges and (edges.get("a") == 1 or edges.get("b") == 1):
            r, alpha, odds = _minimize(
                lambda p: self._limit_nll(p, *args),
                np.log([found[0], found[1], found[2] / found[3]]),
                "BG/NBD",
                ("r", "alpha", "dropout odds"),
                scale=np.array([1.0, scale, 1.0]),
            )
            limit = self._limit_nll(np.log([r, alpha, odds]), *args)
            if limit <= value + 1e-9:
                self.params_ = {"r": float(r), "alpha": float(alpha), "a": math.inf, "b": math.inf}
                self.constant_dropout_ = float(odds / (1 + odds))
                return self
        if edges:
            shown = ", ".join(f"{n}={v:.3g}" for n, v in zip(names, found, strict=True))
            raise ModelError(
                f"the BG/NBD fit ran to the edge of its parameters ({shown}): these data "
                "do not identify the model (no sign of customers dropping out)"
            )
        r, alpha, a, b = found
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        return self

    def _dropout_odds(self, x: np.ndarray) -> Any:
        """a / (b + x - 1), or p / (1 - p) in the constant-dropout limit."""
        _, _, a, b = self._p()
        if self.constant_dropout_ is not None:
            return self.constant_dropout_ / (1 - self.constant_dropout_)
        return a / (b + np.maximum(x, 1) - 1)

    def expected_purchases(self, t: Any) -> Any:
        """E[X(t)]: expected purchases of a new customer in a period of length t."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        if self.constant_dropout_ is not None:
            p = self.constant_dropout_
            out = (1 - (alpha / (alpha + p * t)) ** r) / p
        else:
            z = t / (alpha + t)
            hyp = hyp2f1(r, b, a + b - 1, z)
            out = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)
        return out if out.ndim else float(out)

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """E[Y(t) | x, t_x, T]: expected purchases in the next t of a customer with that
        history (Fader, Hardie & Lee 2005, equation 10)."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self._p()
        x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        t = np.asarray(t, dtype=float)
        if self.constant_dropout_ is not None:
            p = self.constant_dropout_
            first = (1 - ((alpha + T_) / (alpha + T_ + p * t)) ** (r + x)) / p
        else:
            ratio = (alpha + T_) / (alpha + T_ + t)
            hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T_ + t))
            first = (a + b + x - 1) / (a - 1) * (1 - ratio ** (r + x) * hyp)
        odds = (x > 0) * self._dropout_odds(x) * ((alpha + T_) / (alpha + t_x)) ** (r + x)
        out = first / (1 + odds)
        return out if out.ndim else float(out)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive | x, t_x, T) (Fader, Hardie & Lee 2005, equation 11)."""
        r, alpha, _, _ = self._p()
        x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        odds = (x > 0) * self._dropout_odds(x) * ((alpha + T_) / (alpha + t_x)) ** (r + x)
        out = 1.0 / (1.0 + odds)
        return out if out.ndim else float(out)
