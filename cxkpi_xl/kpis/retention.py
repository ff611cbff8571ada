"""Retention and churn KPIs from period aggregates: customer churn and retention, net and
gross revenue retention, revenue churn and the share of expanded accounts.

Arguments are counts or amounts for one period, as scalars or arrays that broadcast the
way numpy-financial's do (one value per period). Amounts are MRR in the input's currency.
A blank argument gives a blank (NaN) result; a zero denominator gives ``zero_division``.
"""

from __future__ import annotations

import math
from typing import Any

from .._check import ZeroDivision, amounts, divide


def customer_churn_rate(
    customers_start: Any, customers_lost: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Customer churn rate: customers lost in the period / customers at its start.

    Formula: ``churn = lost / start``. Which customers count as lost is the caller's
    convention (see :mod:`cxkpi_xl` docs): by default those active at the start who left
    in the period (ChartMogul's B2B convention).

    Examples
    --------
    Seed 003: 2,000 customers at the start, 100 lost gives 0.05, that is 5 % (the seed
    calls it "0.05%", which is wrong).

    >>> customer_churn_rate(2000, 100)
    0.05
    >>> customer_churn_rate([2000, 0], [100, 0]).tolist()
    [0.05, nan]
    """
    start = amounts(customers_start, "customers_start")
    lost = amounts(customers_lost, "customers_lost")
    return divide(lost, start, zero_division, "customers_start")


def customer_retention_rate(
    customers_start: Any,
    customers_end: Any,
    new_customers: Any,
    *,
    zero_division: ZeroDivision = math.nan,
) -> Any:
    """Customer retention rate: (E - N) / S.

    Formula (seed 000): ``CRR = (customers at end - new customers) / customers at start``,
    where N counts the customers active at the end who were not active at the start.
    With N defined that way, CRR = 1 - customer churn rate.

    Examples
    --------
    200 customers at the start, 190 at the end of whom 15 are new: (190 - 15) / 200.

    >>> customer_retention_rate(200, 190, 15)
    0.875
    """
    start = amounts(customers_start, "customers_start")
    end = amounts(customers_end, "customers_end")
    new = amounts(new_customers, "new_customers")
    return divide(end - new, start, zero_division, "customers_start")


def net_revenue_retention(
    start_mrr: Any,
    expansion: Any,
    contraction: Any,
    churned_mrr: Any,
    *,
    zero_division: ZeroDivision = math.nan,
) -> Any:
    """Net revenue retention of the customers paying at the period's start.

    Formula: ``NRR = (start MRR + expansion - contraction - churned MRR) / start MRR``.
    New and reactivated customers' revenue is left out of both sides (the cohort
    definition). Above 1 means the existing base grew.

    Examples
    --------
    Seed 003: MRR 100,000, upgrades 20,000, downgrades 5,000, churn 5,000 gives 1.10.

    >>> round(net_revenue_retention(100_000, 20_000, 5_000, 5_000), 10)
    1.1
    """
    start = amounts(start_mrr, "start_mrr")
    exp = amounts(expansion, "expansion")
    con = amounts(contraction, "contraction")
    churn = amounts(churned_mrr, "churned_mrr")
    return divide(start + exp - con - churn, start, zero_division, "start_mrr")


def gross_revenue_retention(
    start_mrr: Any, contraction: Any, churned_mrr: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Gross revenue retention: the cohort's MRR kept, expansion not counted.

    Formula: ``GRR = (start MRR - contraction - churned MRR) / start MRR``; never above 1.

    Examples
    --------
    >>> gross_revenue_retention(100_000, 5_000, 5_000)
    0.9
    """
    start = amounts(start_mrr, "start_mrr")
    con = amounts(contraction, "contraction")
    churn = amounts(churned_mrr, "churned_mrr")
    return divide(start - con - churn, start, zero_division, "start_mrr")


def revenue_churn_rate(
    start_mrr: Any, contraction: Any, churned_mrr: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Gross MRR churn rate: MRR lost to downgrades and cancellations / start MRR.

    Formula: ``(contraction + churned MRR) / start MRR`` (= 1 - GRR).

    Examples
    --------
    >>> revenue_churn_rate(100_000, 5_000, 5_000)
    0.1
    """
    start = amounts(start_mrr, "start_mrr")
    con = amounts(contraction, "contraction")
    churn = amounts(churned_mrr, "churned_mrr")
    return divide(con + churn, start, zero_division, "start_mrr")


def expanded_accounts_rate(
    expanded: Any, customers_start: Any, *, zero_division: ZeroDivision = math.nan
) -> Any:
    """Share of accounts that expanded: customers with an expansion / customers at start.

    Formula (seed 001, "% of expanded accounts"): ``expanded / customers at start``.

    Examples
    --------
    >>> expanded_accounts_rate(30, 400)
    0.075
    """
    exp = amounts(expanded, "expanded")
    start = amounts(customers_start, "customers_start")
    return divide(exp, start, zero_division, "customers_start")


__all__ = [
    "customer_churn_rate",
    "customer_retention_rate",
    "expanded_accounts_rate",
    "gross_revenue_retention",
    "net_revenue_retention",
    "revenue_churn_rate",
]
