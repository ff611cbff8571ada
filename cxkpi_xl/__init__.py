"""cxkpi-xl: customer-experience and customer-success KPIs for Excel.

Every KPI is a plain function here (rates are fractions, NPS is points, money is in the
input's currency); :data:`cxkpi_xl.catalogue.CATALOGUE` lists them all with their
formulas, units, sources and Excel names. Importing this package needs only numpy and
pandas, so it also runs in xlwings Lite (Pyodide).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _moved

if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ below
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

_PUBLIC = {
    "arpu": "kpis.revenue",
    "at_risk_rate": "kpis.advocacy",
    "attachment_rate": "kpis.revenue",
    "average_order_value": "kpis.revenue",
    "cac": "kpis.value",
    "cac_payback_months": "kpis.value",
    "ces": "kpis.surveys",
    "ces_easy_rate": "kpis.surveys",
    "cltv": "kpis.value",
    "cltv_predicted": "models",
    "cltv_subscription": "kpis.value",
    "cohort_retention": "engine.tables",
    "conversion_rate": "kpis.engagement",
    "csat": "kpis.surveys",
    "customer_churn_rate": "kpis.retention",
    "customer_health_scores": "kpis.advocacy",
    "customer_retention_cost": "kpis.value",
    "customer_retention_rate": "kpis.retention",
    "derl": "models",
    "expanded_accounts_rate": "kpis.retention",
    "first_contact_resolution_rate": "kpis.support",
    "gross_revenue_retention": "kpis.retention",
    "health_band": "kpis.advocacy",
    "health_score": "kpis.advocacy",
    "ltv_cac_ratio": "kpis.value",
    "mrr_movements": "engine.tables",
    "net_revenue_retention": "kpis.retention",
    "nps": "kpis.surveys",
    "nps_breakdown": "kpis.surveys",
    "nps_change_test": "kpis.significance",
    "nps_from_counts": "kpis.surveys",
    "nps_margin_of_error": "kpis.surveys",
    "probability_alive": "models",
    "product_usage_rate": "kpis.engagement",
    "purchase_frequency": "kpis.revenue",
    "quick_ratio": "kpis.revenue",
    "reference_rate": "kpis.advocacy",
    "repeat_purchase_rate": "kpis.engagement",
    "repeat_purchase_tiers": "kpis.engagement",
    "revenue_churn_rate": "kpis.retention",
    "revenue_growth": "kpis.revenue",
    "sbg_retention": "models",
    "star_rating": "kpis.surveys",
    "star_rating_distribution": "kpis.surveys",
    "stickiness": "kpis.engagement",
    "time_to_value_days": "kpis.engagement",
}
"""Each public function -> the module it is defined in (under ``cxkpi_xl``): imported
when the name is first used, so that ``import cxkpi_xl`` (and the command line's check
that nothing changed) imports neither pandas nor numpy."""


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    if name in _moved.MOVED:
        return _moved.module(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


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
