"""What the models share: their error, the time units, and the maximum-likelihood
fit (scipy, imported when a model is fitted) with its Newton polish."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

MIN_CUSTOMERS = 10
UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
MONTH_IN_UNITS = {"D": 365.25 / 12, "W": 365.25 / 12 / 7, "M": 1.0}


class ModelError(ValueError):
    """A model cannot be fitted or used on these data; the message says why."""


LOG_BOUND = 10.0
"""Parameters are searched within exp(-10)..exp(10); a fit that ends on that edge means
the data do not identify the model (e.g. nobody seems to drop out)."""


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS on one thread while a model is fitted. The likelihoods' weighted sums are
    BLAS dot products, which OpenBLAS splits over threads above some 10,000 rows: the
    partial sums then round differently with the number of cores (the large sample's
    predicted CLV moved by 3e-10 between one and two threads), and on a busy machine
    each threaded dot waits for its threads (8 ms instead of 0.01 ms for 25,000 rows).
    Without threadpoolctl (Pyodide has no threads anyway) nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


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
    with _one_blas_thread():
        return _minimize_here(nll, x0, what, names, jac, scale, allow_edge)


def _minimize_here(
    nll: Any,
    x0: np.ndarray,
    what: str,
    names: tuple[str, ...],
    jac: bool,
    scale: np.ndarray | None,
    allow_edge: bool,
) -> Any:
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
