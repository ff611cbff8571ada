"""Revenue KPIs from period aggregates: SaaS quick ratio, ARPU, revenue growth and the
attachment rate of add-on products.

Arguments are scalars or arrays that broadcast (one value per period). Blank arguments
give NaN; a zero denominator gives ``zero_division``.
"""

from __future__ import annotations

import math
from typing import Any

from .._check import ZeroDivision, amounts, divide


def quick_ratio(
    new_mrr: Any,
    expansion: Any,
    contraction: Any,
    churned_mrr: Any,
    reactivation: Any = 0,
    *,
    zero_division: ZeroDivision = math.nan,
) -> Any:
    """SaaS quick ratio: MRR gained / MRR lost.

    Formula: ``(new + reactivation + expansion) / (contraction + churned)`` (Mamoon
    Hamid's quick ratio as ChartMogul computes it). Above 4 is commonly read as efficient
    growth.

    Examples
    --------
    >>> quick_ratio(8_000, 4_000, 1_000, 2_000)
    4.0
    >>> quick_ratio(8_000, 4_000, 1_000, 2_000, reactivation=3_000)
    5.0
    """
    gained = (
        amounts(new_mrr, "new_mrr")
        + amounts(reactivation, "reactivation")
        + amounts(expansion, "expansion")
    )
    lost = amounts(contraction, "contraction") + amounts(churned_mrr, "churned_mrr")
    return divide(gained, lost, zero_division, "contraction + churned_mrr")


def arpu(revenue: Any, customers: Any, *, zero_division: ZeroDivision = math.nan) -> Any:
    """Average revenue per user (ARPA in ChartMogul's words).

    Formula: ``ARPU = revenue / paying customers``; with MRR at the period's end and the
    customers paying at its end this is the monthly ARPU.

    Examples
    --------
    >>> arpu(125_000, 500)
    250.0
    """
    return divide(
        amounts(revenue, "revenue"), amounts(customers, "customers"), zero_division, "customers"
    )


def revenue_growth(previous: Any, current: Any, *, zero_division: ZeroDivision = math.nan) -> Any:
    """Revenue growth from one period to the next.

    Formula: ``(current - previous) / previous`` (seed 002).

    Examples
    --------
    >>> revenue_growth(80_000, 92_000)
    0.15
    >>> revenue_growth([100, 120], [120, 90]).tolist()
    [0.2, -0.25]
    """
    prev = amounts(previous, "previous")
    cur = amounts(current, "current")
    return divide(cur - prev, prev, zero_division, "previous revenue")


def attachment_rate(
    secondary_units: Any, primary_units: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Attachment rate: add-on units sold per primary unit sold.

    Formula (seed 000): ``units of secondary products / units of primary products``.
    It can exceed 1 when customers buy several add-ons per primary product.

    Examples
    --------
    Seed 000's example, extended warranties sold with devices: 120 warranties with 400
    devices.

    >>> attachment_rate(120, 400)
    0.3
    """
    return divide(
        amounts(secondary_units, "secondary_units"),
        amounts(primary_units, "primary_units"),
        zero_division,
        "primary_units",
    )


def average_order_value(
    revenue: Any, orders: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Average order value: order revenue / number of orders.

    Formula: ``AOV = order revenue / orders`` (the "average purchase value" of seeds 002
    and 003's CLTV).

    Examples
    --------
    >>> average_order_value(12_500, 250)
    50.0
    """
    return divide(amounts(revenue, "revenue"), amounts(orders, "orders"), zero_division, "orders")


def purchase_frequency(
    orders: Any, customers: Any, years: Any = 1, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Purchase frequency: orders per ordering customer per year.

    Formula: ``orders / customers who ordered / years observed``; with a month of data
    ``years`` is 1/12, which annualises the monthly rate.

    Examples
    --------
    Seed 003's customer buys every month: 12 orders by 1 customer in a year.

    >>> purchase_frequency(12, 1)
    12.0
    >>> purchase_frequency(300, 200, years=1 / 12)  # one month's orders
    18.0
    """
    per_customer = divide(
        amounts(orders, "orders"), amounts(customers, "customers"), zero_division, "customers"
    )
    return divide(per_customer, amounts(years, "years"), zero_division, "years")
