"""Customer value and cost KPIs: historical and subscription CLTV, CAC, LTV:CAC, CAC
payback and customer retention cost.

Arguments are scalars or arrays that broadcast (one value per period or segment). Money is
in the input's currency. Blank arguments give NaN; a zero denominator gives
``zero_division``. The predictive CLV models live in :mod:`cxkpi_xl.models`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._check import ZeroDivision, amounts, check_zero_division, divide, scalar_or_array


def cltv(
    average_order_value: Any,
    purchase_frequency: Any,
    lifespan: Any,
    *,
    zero_division: ZeroDivision = math.nan,
) -> Any:
    """Historical customer lifetime value (the seeds' formula).

    Formula: ``CLTV = average order value * purchases per customer per year * average
    customer lifespan in years`` (seeds 002 and 003). There is no denominator;
    ``zero_division`` is accepted so that every KPI has the same signature.

    Examples
    --------
    Seed 003: a customer spends 50 a month (12 purchases a year) for one year: 600.

    >>> cltv(50, 12, 1)
    600.0
    """
    check_zero_division(zero_division)
    aov = amounts(average_order_value, "average_order_value")
    frequency = amounts(purchase_frequency, "purchase_frequency")
    years = amounts(lifespan, "lifespan")
    with np.errstate(over="ignore"):  # an overflow is inf, which Excel shows as #NUM!
        return scalar_or_array(aov * frequency * years)


def cltv_subscription(
    arpu: Any, churn_rate: Any, gross_margin: Any = 1, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Subscription lifetime value: ARPU * gross margin / monthly customer churn rate.

    Formula (ChartMogul's SaaS LTV): ``LTV = ARPU * gross margin / churn rate``; with a
    monthly ARPU and a monthly churn rate, 1 / churn is the expected lifetime in months.
    Undefined (``zero_division``) when churn is 0.

    Examples
    --------
    ChartMogul's example: ARPU 100, churn 5 % gives 2,000.

    >>> cltv_subscription(100, 0.05)
    2000.0
    >>> cltv_subscription(100, 0.05, gross_margin=0.8)
    1600.0
    """
    a = amounts(arpu, "arpu")
    churn = amounts(churn_rate, "churn_rate", high=1)
    margin = amounts(gross_margin, "gross_margin", high=1)
    return divide(a * margin, churn, zero_division, "churn_rate")


def cac(
    acquisition_cost: Any, new_customers: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Customer acquisition cost: acquisition spend / customers acquired in the period.

    Formula (seed 002): ``CAC = acquisition cost / new customers``.

    Examples
    --------
    >>> cac(50_000, 125)
    400.0
    """
    return divide(
        amounts(acquisition_cost, "acquisition_cost"),
        amounts(new_customers, "new_customers"),
        zero_division,
        "new_customers",
    )


def ltv_cac_ratio(ltv: Any, cac: Any, *, zero_division: ZeroDivision = math.nan) -> Any:
    """LTV to CAC ratio: how many times a customer's value repays its acquisition.

    Formula: ``LTV / CAC`` (3 or more is the usual SaaS benchmark).

    Examples
    --------
    >>> ltv_cac_ratio(2_000, 400)
    5.0
    """
    return divide(amounts(ltv, "ltv"), amounts(cac, "cac"), zero_division, "cac")


def cac_payback_months(
    cac: Any, arpu: Any, gross_margin: Any = 1, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Months of gross-margin revenue needed to earn back the acquisition cost.

    Formula: ``CAC / (monthly ARPU * gross margin)``.

    Examples
    --------
    >>> cac_payback_months(400, 100, gross_margin=0.8)
    5.0
    """
    c = amounts(cac, "cac")
    a = amounts(arpu, "arpu")
    margin = amounts(gross_margin, "gross_margin", high=1)
    return divide(c, a * margin, zero_division, "arpu * gross_margin")


def customer_retention_cost(
    retention_cost: Any, customers: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Customer retention cost: retention spend / active customers (seed 004).

    Formula: ``retention cost in the period / active customers``.

    Examples
    --------
    >>> customer_retention_cost(12_000, 800)
    15.0
    """
    return divide(
        amounts(retention_cost, "retention_cost"),
        amounts(customers, "customers"),
        zero_division,
        "customers",
    )
