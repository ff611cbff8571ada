"""Predictive customer lifetime value and retention: BG/NBD, Gamma-Gamma and the
shifted-beta-geometric model.

Data preparation is kept apart from the models (as in the ``lifetimes`` package):
:func:`rfm_summary` turns transactions into frequency, recency, T and monetary value; the
models are fitters with ``fit`` and ``params_``. They are fitted by maximum likelihood
with scipy, imported when a model is fitted (the rest of the package imports without it).

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2); Fader & Hardie (2013),
"The Gamma-Gamma model of monetary value"; Fader & Hardie (2007), "How to project
customer retention", Journal of Interactive Marketing 21(1); Fader & Hardie (2010),
"Customer-base valuation in a contractual setting".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MIN_CUSTOMERS = 10
UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
MONTH_IN_UNITS = {"D": 365.25 / 12, "W": 365.25 / 12 / 7, "M": 1.0}


class ModelError(ValueError):
    """A model cannot be fitted or used on these data; the message says why."""


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


LOG_BOUND = 10.0
"""Parameters are searched within exp(-10)..exp(10); a fit that ends on that edge means
the data do not identify the model (e.g. nobody seems to drop out)."""


def _minimize(
    nll: Any,
    x0: np.ndarray,
    what: str,
    names: tuple[str, ...],
    jac: bool = False,
    scale: np.ndarray | None = None,
    allow_edge: bool = False,
) -> Any:
    """Minimise over log parameters; ``jac=True`` when ``nll`` also returns its gradient.
    Falls back to Nelder-Mead when the gradient method fails. ``scale`` gives each
    parameter's natural size (money or time for a scale parameter, else 1): the search
    runs on log(parameter / scale), so its bounds hold whatever the data's units.

    A fit that ends on the edge of the bounds raises ModelError, unless ``allow_edge``:
    then the answer is ``(parameters, {name: +1 or -1 for the upper or lower edge},
    objective)``."""
    from scipy.optimize import minimize

    shift = np.log(scale) if scale is not None else np.zeros(len(x0))
    unscaled = nll
    nll = lambda p: unscaled(np.asarray(p) + shift)  # noqa: E731
    x0 = np.asarray(x0) - shift
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(x0)
    with np.errstate(all="ignore"):
        result = minimize(nll, x0, method="L-BFGS-B", bounds=bounds, jac=jac)
        if not result.success or not np.all(np.isfinite(result.x)):
            value_only = (lambda p: nll(p)[0]) if jac else nll
            result = minimize(
                value_only, x0, method="Nelder-Mead", bounds=bounds,
                options={"maxiter": 4000, "xatol": 1e-10, "fatol": 1e-12},
            )  # fmt: skip
    if not result.success or not np.isfinite(result.fun):
        raise ModelError(f"the {what} fit did not converge: {result.message}")
    if jac:
        result.x = _newton_polish(nll, result.x, bounds)
    else:  # without a gradient, L-BFGS-B's differences stop it about 1e-4 short
        with np.errstate(all="ignore"):
            polished = minimize(
                nll, result.x, method="Nelder-Mead", bounds=bounds,
                options={"maxiter": 4000, "xatol": 1e-10, "fatol": 1e-15},
            )  # fmt: skip
        if np.isfinite(polished.fun) and polished.fun <= result.fun:
            result.x = polished.x
    at_edge = [n for n, v in zip(names, result.x, strict=True) if abs(v) > LOG_BOUND - 1e-3]
    sides = {n: int(np.sign(v)) for n, v in zip(names, result.x, strict=True) if n in at_edge}
    result.x = result.x + shift
    if allow_edge:
        value = nll(result.x - shift)
        return np.exp(result.x), sides, float(value[0] if jac else value)
    if at_edge:
        found = ", ".join(f"{n}={math.exp(v):.3g}" for n, v in zip(names, result.x, strict=True))
        raise ModelError(
            f"the {what} fit ran to the edge of its parameters ({found}): these data do "
            f"not identify the model (for BG/NBD: no sign of customers dropping out)"
        )
    return np.exp(result.x)


def _newton_polish(nll: Any, x: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """Newton steps from an optimiser's answer to the optimum itself.

    L-BFGS-B stops once the objective improves by less than its tolerance, which on a flat
    likelihood (CDNOW's BG/NBD) leaves the parameters about 1e-4 short; a few Newton
    steps on the gradient (Hessian by central differences of it) reach the optimum to
    about 1e-9. A step is kept only if it lowers the objective and stays within bounds.
    """
    low, high = np.array(bounds).T
    value, grad = nll(x)
    for _ in range(20):
        h = 1e-5
        hessian = np.empty((x.size, x.size))
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = h
            hessian[:, i] = (nll(x + e)[1] - nll(x - e)[1]) / (2 * h)
        hessian = (hessian + hessian.T) / 2
        try:
            step = np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.linalg.eigvalsh(hessian).min() <= 0:
            break
        candidate = x - step
        if (candidate < low).any() or (candidate > high).any():
            break
        new_value, new_grad = nll(candidate)
        if not np.isfinite(new_value) or new_value > value:
            break
        x, value, grad = candidate, new_value, new_grad
        if np.abs(step).max() < 1e-10:
            break
    return x


def _arrays(*columns: Any, names: tuple[str, ...]) -> list[np.ndarray]:
    out = []
    for values, name in zip(columns, names, strict=True):
        arr = np.asarray(values, dtype=float).ravel()
        if not np.isfinite(arr).all():
            raise ModelError(f"{name} holds blanks or values that are not numbers")
        out.append(arr)
    if len({a.size for a in out}) != 1:
        raise ModelError(f"{', '.join(names)} must have the same length")
    return out


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
        repeat = x > 0
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
        top = np.maximum(a3, np.where(repeat, a4, -np.inf))
        e3, e4 = np.exp(a3 - top), repeat * np.exp(a4 - top)
        total = e3 + e4
        ll = a1 + a2 + top + np.log(total)
        w3, w4 = e3 / total, e4 / total
        d_r = (
            digamma(r + x) - digamma(r) + np.log(alpha)
            - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
        )  # fmt: skip
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        d_b = (
            digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
            - w4 / (b + np.maximum(x, 1) - 1)
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
    def _log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        from scipy.special import gammaln

        p, q, v = np.exp(params)
        px = p * x
        ll = (
            gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
        )  # fmt: skip
        return float(-ll.mean())

    @staticmethod
    def _alike_nll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        """The "alike" limit: x * mean spend ~ gamma(p x, rate nu x), one nu for all."""
        from scipy.special import gammaln

        p, nu = np.exp(params)
        px = p * x
        ll = px * np.log(nu * x) + (px - 1) * np.log(m) - nu * x * m - gammaln(px)
        return float(-ll.mean())

    @staticmethod
    def _steady_nll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        """The "steady" limit: mean spends ~ inverse gamma(q, scale s)."""
        from scipy.special import gammaln

        q, s = np.exp(params)
        ll = q * np.log(s) - gammaln(q) - (q + 1) * np.log(m) - s / m
        return float(-ll.mean())

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
            lambda par: self._log_likelihood(par, x, m),
            np.log([1.0, 1.0, money]),
            "Gamma-Gamma",
            names,
            scale=np.array([1.0, 1.0, money]),
            allow_edge=True,
        )
        self.limit_, self.mean_spend_ = None, None
        p, q, v = found
        if edges and set(edges.items()) <= {("q", 1), ("v", 1)}:
            p, nu = _minimize(
                lambda par: self._alike_nll(par, x, m),
                np.log([p, q / v]),
                "Gamma-Gamma",
                ("p", "nu"),
                scale=np.array([1.0, 1 / money]),
            )
            if self._alike_nll(np.log([p, nu]), x, m) <= value + 1e-9:
                self.params_ = {"p": float(p), "q": math.inf, "v": math.inf}
                self.limit_, self.mean_spend_ = "alike", float(p / nu)
                return self
        elif edges and set(edges.items()) <= {("p", 1), ("v", -1)}:
            q, s = _minimize(
                lambda par: self._steady_nll(par, x, m),
                np.log([q, p * v]),
                "Gamma-Gamma",
                ("q", "s"),
                scale=np.array([1.0, money]),
            )
            if self._steady_nll(np.log([q, s]), x, m) <= value + 1e-9 and q > 1:
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


def _sbg_log_likelihood(churn: np.ndarray, lost: np.ndarray, survivors: float) -> float:
    """Log-likelihood of a survival curve given each period's churn probability among
    the customers still there (``churn[t - 1]`` for period t)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_stay = np.log1p(-churn)
        log_s = np.r_[0.0, np.cumsum(log_stay)]  # log S(0), ..., log S(n - 1)
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


def cltv_predicted(
    customer_ids: Any,
    dates: Any,
    amounts: Any,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    observation_end: Any = None,
) -> pd.DataFrame:
    """Predicted customer lifetime value from transactions (BG/NBD with Gamma-Gamma).

    Formula: fits both models on the customers' purchase histories (weeks, purchases on
    one day counted as one), then sums each customer's expected purchases in each of the
    next ``horizon_months`` months times their expected spend, discounted at the monthly
    ``discount_rate``. Returns one row per customer: frequency, recency and T (weeks),
    monetary value, P(alive) and the predicted CLV.

    Examples
    --------
    >>> tx = simulate_transactions(300, seed=3)
    >>> table = cltv_predicted(tx["customer_id"], tx["date"], tx["amount"])
    >>> list(table.columns)
    ['frequency', 'recency', 'T', 'monetary_value', 'p_alive', 'predicted_clv']
    >>> len(table), bool((table["predicted_clv"] > 0).all())
    (300, True)
    """
    tx = _transactions(customer_ids, dates, amounts)
    if (tx["amount"] < 0).any():
        raise ModelError("amounts must not be negative")
    rfm = rfm_summary(tx, "id", "date", "amount", _observation_end(observation_end), freq="W")
    bg = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    gg = GammaGammaModel().fit(rfm["frequency"], rfm["monetary_value"])
    args = (rfm["frequency"], rfm["recency"], rfm["T"])
    out = rfm.copy()
    out["p_alive"] = bg.probability_alive(*args)
    out["predicted_clv"] = predicted_clv(
        bg, gg, *args, rfm["monetary_value"], int(horizon_months), float(discount_rate)
    )
    out.index.name = "customer_id"
    return out


def probability_alive(customer_ids: Any, dates: Any, observation_end: Any = None) -> pd.DataFrame:
    """Probability that each customer is still active, from purchase dates (BG/NBD).

    Formula: ``P(alive) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha +
    t_x))^(r + x))`` with x the repeat purchases, t_x the time of the last and T the time
    since the first (weeks). Returns one row per customer.

    Examples
    --------
    >>> tx = simulate_transactions(300, seed=3)
    >>> table = probability_alive(tx["customer_id"], tx["date"])
    >>> bool(table["p_alive"].between(0, 1).all()), bool((table["p_alive"] < 1).any())
    (True, True)
    """
    tx = _transactions(customer_ids, dates)
    rfm = rfm_summary(tx, "id", "date", None, _observation_end(observation_end), freq="W")
    bg = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    out = rfm[["frequency", "recency", "T"]].copy()
    out["p_alive"] = bg.probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    out.index.name = "customer_id"
    return out


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
