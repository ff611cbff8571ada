"""Engagement and purchase-behaviour KPIs: conversion, repeat purchase, stickiness
(DAU/MAU), product usage and time to value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._check import (
    ZeroDivision,
    amounts,
    check_zero_division,
    dates_as_days,
    divide,
    undefined,
    values,
)

REPEAT_TIERS = (("1", 1, 1), ("2-5", 2, 5), ("6-10", 6, 10), ("11+", 11, math.inf))


def conversion_rate(
    conversions: Any, visitors: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Conversion rate: conversions / visitors (seed 004).

    Formula: ``conversions / visitors``, with conversions as the user defines them
    (purchases, sign-ups, subscriptions).

    Examples
    --------
    >>> conversion_rate(90, 4_500)
    0.02
    """
    return divide(
        amounts(conversions, "conversions"),
        amounts(visitors, "visitors"),
        zero_division,
        "visitors",
    )


def repeat_purchase_rate(order_counts: Any, *, zero_division: ZeroDivision = math.nan) -> float:
    """Repeat purchase rate: customers with two or more orders / customers with any.

    Formula (seed 004): ``customers with >= 2 orders / customers with >= 1 order``, from
    one order count per customer; customers with no order (0 or blank) are left out.

    Examples
    --------
    >>> repeat_purchase_rate([1, 3, 0, 2, 1, 7])
    0.6
    """
    check_zero_division(zero_division)
    v = values(order_counts, "order_counts", low=0, whole=True)
    buyers = v[v >= 1]
    if buyers.size == 0:
        return undefined(zero_division, "no customer has an order")
    return float(np.count_nonzero(buyers >= 2)) / buyers.size


def repeat_purchase_tiers(order_counts: Any) -> dict[str, int]:
    """Customers per order-count tier: 1, 2-5, 6-10 and 11+ orders (seed 004).

    Examples
    --------
    >>> repeat_purchase_tiers([1, 3, 0, 2, 1, 7, 12])
    {'1': 2, '2-5': 2, '6-10': 1, '11+': 1}
    """
    v = values(order_counts, "order_counts", low=0, whole=True)
    return {label: int(np.count_nonzero((v >= lo) & (v <= hi))) for label, lo, hi in REPEAT_TIERS}


def stickiness(dau: Any, mau: Any, *, zero_division: ZeroDivision = math.nan) -> float:
    """Stickiness: average daily active users / monthly active users (DAU/MAU).

    Formula: ``mean(daily active users) / monthly active users``; a user is active on a
    day with at least one activity.

    ``dau`` is the average daily active users, or the daily counts of the month (their
    mean is taken, blanks ignored); ``mau`` is the distinct users active in the month.

    Examples
    --------
    >>> stickiness(300, 1_200)
    0.25
    >>> stickiness([280, 320, 300], 1_200)
    0.25
    """
    check_zero_division(zero_division)
    daily = values(dau, "dau", low=0)
    monthly = values(mau, "mau", low=0)
    if daily.size == 0 or monthly.size == 0:
        return math.nan
    if monthly.size != 1:
        raise ValueError(f"mau must be one number, not {monthly.size} values")
    return float(divide(daily.mean(), monthly[0], zero_division, "mau"))


def product_usage_rate(
    active_customers: Any, customers: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Product usage rate: active customers with any usage in the period / active customers.

    Formula (seed 004): ``customers with usage / active customers``.

    Examples
    --------
    >>> product_usage_rate(340, 400)
    0.85
    """
    return divide(
        amounts(active_customers, "active_customers"),
        amounts(customers, "customers"),
        zero_division,
        "customers",
    )


def time_to_value_days(
    start_dates: Any, value_dates: Any, *, zero_division: ZeroDivision = math.nan
) -> float:
    """Time to value: the median number of days from signup to first value (seed 002).

    Formula: ``median(value date - start date)`` in days, over the customers who reached
    value.

    Dates may be dates, ISO text (``2026-01-31``) or Excel serial numbers. Pairs with a
    blank on either side (customers who have not reached value yet) are left out. A value
    date before its start date is an error.

    Examples
    --------
    >>> time_to_value_days(["2026-01-01", "2026-01-05", "2026-01-10"],
    ...                    ["2026-01-11", "2026-01-12", None])
    8.5
    >>> time_to_value_days([46023], [46053])  # Excel serials of 2026-01-01 and 2026-01-31
    30.0
    """
    check_zero_division(zero_division)
    start = dates_as_days(start_dates, "start_dates").ravel()
    value = dates_as_days(value_dates, "value_dates").ravel()
    if start.size != value.size:
        raise ValueError(
            f"start_dates and value_dates must have the same number of cells "
            f"({start.size} and {value.size})"
        )
    both = ~np.isnan(start) & ~np.isnan(value)
    days = value[both] - start[both]
    if (days < 0).any():
        i = int(np.flatnonzero(both)[np.flatnonzero(days < 0)[0]])
        raise ValueError(f"value_dates: the date at position {i + 1} is before its start date")
    if days.size == 0:
        return undefined(zero_division, "no customer has reached value")
    return float(np.median(days))
