"""The predictive KPI functions on transaction columns: predicted CLV and P(alive)
(BG/NBD with Gamma-Gamma)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .bgnbd import BetaGeoModel
from .fit import (
    ModelError,
)
from .gamma_gamma import GammaGammaModel, predicted_clv
from .rfm import _observation_end, _transactions, rfm_summary


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
    >>> from cxkpi_xl.models import simulate_transactions
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
    >>> from cxkpi_xl.models import simulate_transactions
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
