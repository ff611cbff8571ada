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

The modules: :mod:`.fit` (the shared fitting and errors), :mod:`.rfm` (transactions to
RFM, simulated transactions), :mod:`.bgnbd`, :mod:`.gamma_gamma` (with the predicted CLV
of the two), :mod:`.sbg` (with DERL and projected retention) and :mod:`.clv` (the
predictive KPI functions on transaction columns). They import nothing of the product but
:mod:`cxkpi_xl._check`.
"""

from __future__ import annotations

from .bgnbd import BetaGeoModel
from .clv import cltv_predicted, probability_alive
from .fit import LOG_BOUND, MIN_CUSTOMERS, MONTH_IN_UNITS, UNIT_DAYS, ModelError
from .gamma_gamma import GammaGammaModel, predicted_clv
from .rfm import rfm_summary, simulate_transactions
from .sbg import ShiftedBetaGeometricModel, derl, sbg_retention

__all__ = [
    "LOG_BOUND",
    "MIN_CUSTOMERS",
    "MONTH_IN_UNITS",
    "UNIT_DAYS",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModelError",
    "ShiftedBetaGeometricModel",
    "cltv_predicted",
    "derl",
    "predicted_clv",
    "probability_alive",
    "rfm_summary",
    "sbg_retention",
    "simulate_transactions",
]
