"""cxkpi-xl: customer-experience and customer-success KPIs for Excel.

Every KPI is a plain function here (rates are fractions, NPS is points, money is in the
input's currency); :data:`cxkpi_xl.catalogue.CATALOGUE` lists them all with their
formulas, units, sources and Excel names. Importing this package needs only numpy and
pandas, so it also runs in xlwings Lite (Pyodide).
"""

from __future__ import annotations

from types import ModuleType

from . import _moved
from .engine.tables import cohort_retention, mrr_movements
from .kpis.advocacy import (
    at_risk_rate,
    customer_health_scores,
    health_band,
    health_score,
    reference_rate,
)
from .kpis.engagement import (
    conversion_rate,
    product_usage_rate,
    repeat_purchase_rate,
    repeat_purchase_tiers,
    stickiness,
    time_to_value_days,
)
from .kpis.retention import (
    customer_churn_rate,
    customer_retention_rate,
    expanded_accounts_rate,
    gross_revenue_retention,
    net_revenue_retention,
    revenue_churn_rate,
)
from .kpis.revenue import (
    arpu,
    attachment_rate,
    average_order_value,
    purchase_frequency,
    quick_ratio,
    revenue_growth,
)
from .kpis.significance import nps_change_test
from .kpis.support import first_contact_resolution_rate
from .kpis.surveys import (
    ces,
    ces_easy_rate,
    csat,
    nps,
    nps_breakdown,
    nps_from_counts,
    nps_margin_of_error,
    star_rating,
    star_rating_distribution,
)
from .kpis.value import (
    cac,
    cac_payback_months,
    cltv,
    cltv_subscription,
    customer_retention_cost,
    ltv_cac_ratio,
)
from .models import cltv_predicted, derl, probability_alive, sbg_retention

__version__ = "0.1.0"

_moved.install()  # cxkpi_xl.reader, cxkpi_xl.schema, ...: the names from before the rooms


def __getattr__(name: str) -> ModuleType:
    if name in _moved.MOVED:
        return _moved.module(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "arpu",
    "at_risk_rate",
    "attachment_rate",
    "average_order_value",
    "cac",
    "cac_payback_months",
    "ces",
    "ces_easy_rate",
    "cltv",
    "cltv_predicted",
    "cltv_subscription",
    "cohort_retention",
    "conversion_rate",
    "csat",
    "customer_churn_rate",
    "customer_health_scores",
    "customer_retention_cost",
    "customer_retention_rate",
    "derl",
    "expanded_accounts_rate",
    "first_contact_resolution_rate",
    "gross_revenue_retention",
    "health_band",
    "health_score",
    "ltv_cac_ratio",
    "mrr_movements",
    "net_revenue_retention",
    "nps",
    "nps_breakdown",
    "nps_change_test",
    "nps_from_counts",
    "nps_margin_of_error",
    "probability_alive",
    "product_usage_rate",
    "purchase_frequency",
    "quick_ratio",
    "reference_rate",
    "repeat_purchase_rate",
    "repeat_purchase_tiers",
    "revenue_churn_rate",
    "revenue_growth",
    "sbg_retention",
    "star_rating",
    "star_rating_distribution",
    "stickiness",
    "time_to_value_days",
]
