"""The KPI catalogue: one entry per KPI, the single list everything else derives from.

The README's KPI table, ``cxkpi functions``, the Excel functions, and (as they arrive)
the Definitions sheet and the report rows are all generated from :data:`CATALOGUE`. An
entry with a ``function`` can be computed from arrays or aggregates; one without is
computed by the period engine from the input tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import models
from .engine import tables
from .kpis import advocacy, engagement, retention, revenue, significance, support, surveys, value

UNITS = (
    "fraction",
    "points",
    "score",
    "money",
    "ratio",
    "days",
    "months",
    "periods",
    "count",
    "table",
    "text",
)
"""fraction: 0.05 is 5 %; points: NPS points -100..100; score: a mean answer on a survey
scale; money: the input's currency; ratio: a plain multiple; periods: contract periods
(of whatever length the data's periods have); table: several values."""

FAMILIES = ("surveys", "retention", "revenue", "value", "advocacy", "support", "engagement")

NUMBER_FORMATS = {
    "fraction": "0.0%",
    "points": "0.0",
    "score": "0.00",
    "money": "#,##0.00",
    "ratio": "0.00",
    "days": "0.0",
    "months": "0.0",
    "periods": "0.00",
    "count": "#,##0",
    "table": "General",
    "text": "@",
}
"""The Excel number format of each unit."""


@dataclass(frozen=True)
class Kpi:
    """One KPI: what it is, how it is computed, and its Excel function."""

    id: str
    title: str
    unit: str
    family: str
    formula: str
    source: str
    excel_name: str | None = None
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    in_report: bool = True

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"{self.id}: unknown unit {self.unit!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.id}: unknown family {self.family!r}")

    @property
    def number_format(self) -> str:
        return NUMBER_FORMATS[self.unit]

    @property
    def arguments(self) -> list[str]:
        """The function's positional arguments, in order (what the Excel function takes)."""
        if self.function is None:
            return []
        return [
            p.name
            for p in inspect.signature(self.function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    @property
    def description(self) -> str:
        """The first paragraph of the function's docstring, or the title."""
        doc = inspect.getdoc(self.function) if self.function is not None else None
        if not doc:
            return self.title
        return " ".join(doc.split("\n\n", 1)[0].split())

    @property
    def computed_by(self) -> str:
        return "function" if self.function is not None else "engine"


def _k(*args: Any, **kwargs: Any) -> Kpi:
    return Kpi(*args, **kwargs)


CATALOGUE: tuple[Kpi, ...] = (
    # Surveys and sentiment
    _k("nps", "Net Promoter Score", "points", "surveys",
       "% promoters (9-10) - % detractors (0-6), 0-10 scale",
       "Bain & Company / Satmetrix; seeds 002, 003, 004", "CX_NPS", surveys.nps),
    _k("nps_margin_of_error", "NPS margin of error (95 %)", "points", "surveys",
       "z * sqrt((p + d - (p - d)^2) / n) * 100, z = 1.96",
       "Wald interval; adjusted Wald: Rocks (2016)", "CX_NPS_MOE", surveys.nps_margin_of_error),
    _k("nps_breakdown", "NPS breakdown", "table", "surveys",
       "counts and shares of promoters, passives, detractors; n; NPS; interval",
       "Bain & Company / Satmetrix", "CX_NPS_BREAKDOWN", surveys.nps_breakdown, in_report=False),
    _k("nps_from_counts", "NPS from counts", "points", "surveys",
       "100 * (promoters - detractors) / (promoters + passives + detractors)",
       "Bain & Company / Satmetrix", "CX_NPS_COUNTS", surveys.nps_from_counts, in_report=False),
    _k("nps_change_test", "NPS change test", "table", "surveys",
       "after - before; se = 100 * sqrt(sum over samples of (p + d - (p - d)^2) / n); "
       "interval difference +- z * se; p = 2 * (1 - Phi(|difference| / se))",
       "z test of two NPS; Rocks (2016); Lewis & Sauro (MeasuringU)", "CX_NPS_CHANGE",
       significance.nps_change_test, in_report=False),
    _k("csat", "Customer satisfaction (CSAT)", "fraction", "surveys",
       "responses with score >= threshold / responses (1-5 scale: 4 and 5)",
       "seeds 002, 003", "CX_CSAT", surveys.csat),
    _k("ces", "Customer effort score (CES)", "score", "surveys",
       "mean effort answer (CES 2.0: 1-7, higher is easier)",
       "Gartner CES 2.0; seeds 002, 003", "CX_CES", surveys.ces),
    _k("ces_easy_rate", "CES easy rate", "fraction", "surveys",
       "answers >= 5 / answers on the 1-7 scale", "Gartner CES 2.0", "CX_CES_EASY",
       surveys.ces_easy_rate),
    _k("star_rating", "Average star rating", "score", "surveys", "mean of 1-5 star ratings",
       "seed 000", "CX_STARS", surveys.star_rating),
    # Retention, churn and revenue movements
    _k("mrr", "Monthly recurring revenue", "money", "retention",
       "sum of MRR at the period's end; an MRR cell that cannot be read keeps the "
       "customer's previous month's MRR. From Invoices (MRR table empty, or mrr_source = "
       "invoices): per customer and month, sum of (amount - tax) / interval_months over "
       "the subscription and credit lines (usage if include_usage) whose service period "
       "covers the month's last day, a prorated line times full interval / prorated days, "
       "at the FX rate of the line's service_start month held for its period; a negative "
       "month is 0",
       "ChartMogul; seed 003; ChartMogul's invoice import rules"),
    _k("mrr_new", "New MRR", "money", "retention",
       "MRR of customers who never paid before", "ChartMogul"),
    _k("mrr_reactivation", "Reactivation MRR", "money", "retention",
       "MRR of customers who return after paying nothing", "ChartMogul"),
    _k("mrr_expansion", "Expansion MRR", "money", "retention",
       "sum of (current - previous) MRR where it rose", "ChartMogul; seeds 002, 003"),
    _k("mrr_contraction", "Contraction MRR", "money", "retention",
       "sum of (previous - current) MRR where it fell but stayed above 0", "ChartMogul"),
    _k("mrr_churn", "Churned MRR", "money", "retention",
       "previous MRR of customers now paying 0", "ChartMogul"),
    _k("net_new_mrr", "Net new MRR", "money", "retention",
       "new + reactivation + expansion - contraction - churn", "ChartMogul"),
    _k("mrr_movements", "MRR movements by month", "table", "retention",
       "per month: MRR, new, reactivation, expansion, contraction, churn, net new",
       "ChartMogul", "CX_MRR_MOVEMENTS", tables.mrr_movements, in_report=False),
    _k("cohort_retention", "Cohort retention", "table", "retention",
       "first-paying month x months since: MRR (or customers) retained",
       "ChartMogul cohorts", "CX_COHORT_RETENTION", tables.cohort_retention, in_report=False),
    _k("net_revenue_retention", "Net revenue retention (NRR)", "fraction", "retention",
       "(start MRR + expansion - contraction - churn) / start MRR, start cohort only",
       "seeds 000, 001, 003", "CX_NRR", retention.net_revenue_retention),
    _k("gross_revenue_retention", "Gross revenue retention (GRR)", "fraction", "retention",
       "(start MRR - contraction - churn) / start MRR, start cohort only",
       "ChartMogul", "CX_GRR", retention.gross_revenue_retention),
    _k("revenue_churn_rate", "Revenue churn rate", "fraction", "retention",
       "(contraction + churned MRR) / start MRR", "ChartMogul", "CX_REVENUE_CHURN",
       retention.revenue_churn_rate),
    _k("expanded_accounts_rate", "Expanded accounts", "fraction", "retention",
       "customers with an expansion / customers paying at the start", "seed 001",
       "CX_EXPANDED_RATE", retention.expanded_accounts_rate),
    _k("customer_churn_rate", "Customer churn rate", "fraction", "retention",
       "customers active at the start who left / customers active at the start; "
       "a customer who signed up before the first month with MRR data and pays in it was "
       "active at its start",
       "ChartMogul; seeds 001, 002, 003", "CX_CHURN", retention.customer_churn_rate),
    _k("customer_retention_rate", "Customer retention rate (CRR)", "fraction", "retention",
       "(customers at end - new in period) / customers at start; a customer who signed up "
       "before the first month with MRR data and pays in it was active at its start",
       "seed 000", "CX_CRR", retention.customer_retention_rate),
    _k("arpu", "Average revenue per user (ARPU)", "money", "revenue",
       "MRR at end / paying customers at end", "ChartMogul (ARPA); seeds 002, 003", "CX_ARPU",
       revenue.arpu),
    _k("quick_ratio", "SaaS quick ratio", "ratio", "revenue",
       "(new + reactivation + expansion) / (contraction + churn)", "ChartMogul",
       "CX_QUICK_RATIO", revenue.quick_ratio),
    _k("revenue_growth", "Revenue growth", "fraction", "revenue",
       "(revenue - previous period's revenue) / previous period's revenue", "seed 002",
       "CX_REVENUE_GROWTH", revenue.revenue_growth),
    _k("attachment_rate", "Attachment rate", "fraction", "revenue",
       "units of secondary products sold / units of primary products sold", "seed 000",
       "CX_ATTACH_RATE", revenue.attachment_rate),
    _k("average_order_value", "Average order value", "money", "revenue",
       "order revenue / orders", "seeds 002, 003", "CX_AOV", revenue.average_order_value),
    _k("purchase_frequency", "Purchase frequency", "ratio", "revenue",
       "orders / customers who ordered / years", "seeds 002, 003", "CX_PURCHASE_FREQ",
       revenue.purchase_frequency),
    # Value and cost
    _k("cltv", "Customer lifetime value (historical)", "money", "value",
       "average order value * purchases per year * lifespan in years", "seeds 000, 002, 003",
       "CX_CLTV", value.cltv),
    _k("cltv_subscription", "Customer lifetime value (subscription)", "money", "value",
       "ARPU * gross margin / monthly customer churn rate", "ChartMogul", "CX_CLTV_SUB",
       value.cltv_subscription),
    _k("cltv_predicted", "Customer lifetime value (predicted)", "money", "value",
       "discounted expected value over a horizon from BG/NBD + Gamma-Gamma, per customer",
       "Fader, Hardie & Lee (2005); Fader & Hardie (2013); seed 000", "CX_CLV_PREDICT",
       models.cltv_predicted),
    _k("probability_alive", "Probability alive", "table", "value",
       "P(alive | x, t_x, T) from BG/NBD, per customer", "Fader, Hardie & Lee (2005)",
       "CX_P_ALIVE", models.probability_alive, in_report=False),
    _k("sbg_retention", "Projected retention (sBG)", "table", "value",
       "S(t) = B(alpha, beta + t) / B(alpha, beta); r(t) = (beta + t - 1) / (alpha + beta + t - 1)",
       "Fader & Hardie (2007)", "CX_SBG_RETENTION", models.sbg_retention, in_report=False),
    _k("derl", "Discounted expected residual lifetime (DERL)", "periods", "value",
       "customer who has made k renewals, n = k + 1: (beta + n - 1) / (alpha + beta + n - 1) "
       "* 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))",
       "Fader & Hardie (2010), eq. 6", "CX_DERL", models.derl, in_report=False),
    _k("cac", "Customer acquisition cost (CAC)", "money", "value",
       "acquisition cost / new customers", "seed 002", "CX_CAC", value.cac),
    _k("ltv_cac_ratio", "LTV : CAC", "ratio", "value", "CLTV / CAC", "SaaS convention",
       "CX_LTV_CAC", value.ltv_cac_ratio),
    _k("cac_payback_months", "CAC payback", "months", "value", "CAC / (ARPU * gross margin)",
       "SaaS convention", "CX_CAC_PAYBACK", value.cac_payback_months),
    _k("customer_retention_cost", "Customer retention cost", "money", "value",
       "retention cost / active customers", "seed 004", "CX_RETENTION_COST",
       value.customer_retention_cost),
    # Advocacy, support and engagement
    _k("reference_rate", "Reference rate", "fraction", "advocacy",
       "active customers willing to be a reference / active customers", "seed 001",
       "CX_REFERENCE_RATE", advocacy.reference_rate),
    _k("referral_revenue", "Referral revenue", "money", "advocacy",
       "revenue from customers referred by another customer", "seed 001"),
    _k("at_risk_rate", "At-risk customers", "fraction", "advocacy",
       "customers with health score < 50 / customers with a health score", "seed 001",
       "CX_AT_RISK", advocacy.at_risk_rate),
    _k("health_score", "Customer health score", "score", "advocacy",
       "sum(w_i * s_i) / sum(w_i) over the measures present (0-100)",
       "Gainsight weighted scorecard; seeds 003, 004", "CX_HEALTH", advocacy.health_score),
    _k("first_contact_resolution_rate", "First contact resolution", "fraction", "support",
       "resolved tickets needing one contact / resolved tickets", "seeds 003, 004", "CX_FCR",
       support.first_contact_resolution_rate),
    _k("conversion_rate", "Conversion rate", "fraction", "engagement",
       "conversions / visitors", "seeds 003, 004", "CX_CONVERSION", engagement.conversion_rate),
    _k("repeat_purchase_rate", "Repeat purchase rate", "fraction", "engagement",
       "customers with 2+ orders / customers with 1+ orders", "seeds 003, 004",
       "CX_REPEAT_RATE", engagement.repeat_purchase_rate),
    _k("time_to_value_days", "Time to value", "days", "engagement",
       "median days from signup to first value", "seed 002", "CX_TTV_DAYS",
       engagement.time_to_value_days),
    _k("stickiness", "Stickiness (DAU/MAU)", "fraction", "engagement",
       "average daily active users / monthly active users", "seed 003", "CX_STICKINESS",
       engagement.stickiness),
    _k("product_usage_rate", "Product usage rate", "fraction", "engagement",
       "active customers with usage / active customers", "seeds 003, 004", "CX_USAGE_RATE",
       engagement.product_usage_rate),
    _k("feedback_themes", "Feedback themes", "text", "engagement",
       "most frequent words and phrases in survey comments, per NPS category",
       "seeds 003, 004", in_report=False),
)  # fmt: skip

ARGUMENTS: dict[str, str] = {
    "scores": "Survey answers: a range or Table column; blanks are ignored.",
    "scores_before": "NPS answers (0-10) of the earlier sample; blanks are ignored.",
    "scores_after": "NPS answers (0-10) of the later sample; blanks are ignored.",
    "ratings": "Star ratings 1-5: a range or Table column; blanks are ignored.",
    "confidence": "Confidence level of the interval, default 0.95.",
    "method": 'Interval method: "wald" (default) or "adjusted_wald".',
    "promoters": "Number of promoters (answers 9-10).",
    "passives": "Number of passives (answers 7-8).",
    "detractors": "Number of detractors (answers 0-6).",
    "scale": "Top of the answer scale (CSAT default 5, CES default 7).",
    "threshold": "Lowest answer that counts as satisfied or easy.",
    "customers_start": "Customers active at the period's start.",
    "customers_lost": "Customers lost during the period.",
    "customers_end": "Customers active at the period's end.",
    "new_customers": "Customers acquired during the period.",
    "start_mrr": "MRR at the period's start of the customers paying then.",
    "expansion": "MRR gained from upgrades of existing customers.",
    "contraction": "MRR lost to downgrades.",
    "churned_mrr": "MRR lost to cancellations.",
    "new_mrr": "MRR from new customers.",
    "reactivation": "MRR from returning customers, default 0.",
    "revenue": "Revenue (MRR at the period's end for the monthly ARPU).",
    "customers": "Active (or paying) customers.",
    "previous": "Revenue of the previous period.",
    "current": "Revenue of this period.",
    "secondary_units": "Units of add-on (secondary) products sold.",
    "primary_units": "Units of primary products sold.",
    "expanded": "Customers with an expansion in the period.",
    "average_order_value": "Average order value.",
    "purchase_frequency": "Purchases per customer per year.",
    "lifespan": "Average customer lifespan in years.",
    "arpu": "Average revenue per user per month.",
    "churn_rate": "Monthly customer churn rate as a fraction (0.05 for 5 %).",
    "gross_margin": "Gross margin as a fraction, default 1.",
    "acquisition_cost": "Sales and marketing spend on acquisition in the period.",
    "ltv": "Customer lifetime value.",
    "cac": "Customer acquisition cost.",
    "retention_cost": "Spend on retaining customers in the period.",
    "orders": "Number of orders.",
    "dates": "Purchase dates, one per transaction.",
    "amounts": "Transaction amounts, one per transaction.",
    "horizon_months": "Months ahead to value, default 12.",
    "discount_rate": "Discount rate per period (monthly for CLV), as a fraction.",
    "observation_end": "End of the observation; blank: the last transaction date.",
    "survival": "Customers still active at the start of each period, the whole cohort first.",
    "periods": "Periods to project, default 10.",
    "alpha": "The sBG model's alpha (CX_SBG_RETENTION fits it).",
    "beta": "The sBG model's beta (CX_SBG_RETENTION fits it).",
    "renewals": "Renewals the customer has made (0 before the first renewal).",
    "customer_ids": "customer_id column of the MRR table.",
    "months": "month column of the MRR table (any date in the month).",
    "mrr": "mrr column of the MRR table.",
    "measure": 'What is retained: "revenue" (default) or "logos".',
    "years": "Years the orders cover, default 1 (1/12 for a month).",
    "willing": "Active customers willing to be a reference.",
    "health_scores": "Customer health scores 0-100.",
    "red_below": "Scores below this are red (at risk), default 50.",
    "weights": "Weights: the measures' weights, or each customer's MRR.",
    "resolved_first_contact": "Resolved tickets that needed one contact.",
    "resolved": "Resolved tickets.",
    "conversions": "Conversions (purchases, sign-ups).",
    "visitors": "Visitors.",
    "order_counts": "Orders per customer, one cell per customer.",
    "dau": "Average daily active users, or the daily counts.",
    "mau": "Monthly active users.",
    "active_customers": "Active customers with any product usage.",
    "start_dates": "Signup dates.",
    "value_dates": "Dates of first value; blank if not reached yet.",
}
"""One description per argument name: argument names mean the same in every KPI."""

BY_ID: dict[str, Kpi] = {k.id: k for k in CATALOGUE}


def get(kpi_id: str) -> Kpi:
    """The catalogue entry of a KPI id; KeyError with the known ids otherwise."""
    try:
        return BY_ID[kpi_id]
    except KeyError:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {', '.join(BY_ID)}") from None


def format_value(value: float, unit: str) -> str:
    """A KPI value as people read it: ``12.3%``, ``31.2``, ``12,345.67``; blank for NaN."""
    if value is None or value != value:
        return ""
    if unit == "fraction":
        return f"{value:.1%}"
    if unit in ("points", "days", "months"):
        return f"{value:,.1f}"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def excel_functions() -> list[Kpi]:
    """The entries that have an Excel function, in catalogue order."""
    return [k for k in CATALOGUE if k.excel_name]


def excel_signature(kpi: Kpi) -> str:
    """``CX_NRR(start_mrr, expansion, contraction, churned_mrr)``."""
    return f"{kpi.excel_name}({', '.join(kpi.arguments)})"


def markdown_table() -> str:
    """The README's KPI table."""
    rows = [
        "| id | KPI | unit | formula | Excel function | source |",
        "|---|---|---|---|---|---|",
    ]
    for k in CATALOGUE:
        excel = f"`{excel_signature(k)}`" if k.excel_name else "from the input tables"
        formula = k.formula.replace("|", "\\|")
        rows.append(f"| `{k.id}` | {k.title} | {k.unit} | {formula} | {excel} | {k.source} |")
    return "\n".join(rows) + "\n"


def _check_unique() -> None:
    ids = [k.id for k in CATALOGUE]
    names = [k.excel_name for k in CATALOGUE if k.excel_name]
    if len(set(ids)) != len(ids) or len(set(names)) != len(names):
        raise RuntimeError("KPI ids and Excel names must be unique")  # pragma: no cover


_check_unique()
