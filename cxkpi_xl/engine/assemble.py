"""Putting it together: :func:`compute` runs every part of the engine on a
:class:`~cxkpi_xl.data.reader.Dataset` and returns a :class:`Report`, which also
gives the JSON output."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.issues import Issue
from ..data.periods import GRANULARITIES, shared_months
from ..data.reader import Dataset
from ..data.schema import Settings
from .activity import _support_and_funnel, _usage_kpis
from .axis import _Axis, _axis
from .breakdowns import _churn_by_reason, _cx_to_revenue, _group_breakdowns, _referrals_by_segment
from .cohorts import _cohorts
from .customers import _customer_kpis, _health_kpis, _order_kpis
from .feedback import _survey_kpis, _themes
from .impact import CxImpact, cx_impact
from .memo import HEALTH, IMPACT, PREDICTIVE, USAGE, Memo, encoded_columns, run_part
from .predictive import _predictive
from .subscriptions import MOVEMENTS, _Base, _subscription_kpis

REPORT_KPIS = (
    "nps", "nps_margin_of_error", "csat", "ces", "ces_easy_rate", "star_rating", "mrr",
    "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn",
    "net_new_mrr", "net_revenue_retention", "gross_revenue_retention",
    "revenue_churn_rate", "expanded_accounts_rate", "customer_churn_rate",
    "customer_retention_rate", "arpu", "quick_ratio", "revenue_growth", "attachment_rate",
    "average_order_value", "purchase_frequency", "cltv", "cltv_subscription", "cac",
    "ltv_cac_ratio", "cac_payback_months", "customer_retention_cost", "reference_rate",
    "referral_revenue", "at_risk_rate", "health_score", "first_contact_resolution_rate",
    "conversion_rate", "repeat_purchase_rate", "time_to_value_days", "stickiness",
    "product_usage_rate",
)  # fmt: skip
"""The KPIs the engine computes for every period, in the order of the report and the JSON
output. They are the catalogue's report KPIs but NOT_COMPUTED, in catalogue order (the
catalogue sits above the engine, whose table functions it lists, so the engine does not
read it; tests/test_catalogue.py holds the two lists together)."""

NOT_COMPUTED = frozenset({"cltv_predicted"})
"""Report KPIs the period engine does not compute (the predictive models do)."""


@dataclass
class Report:
    """The KPIs of every report period, the breakdowns, and the data issues."""

    granularity: str
    periods: list[str]
    kpis: dict[str, np.ndarray]
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    impact: CxImpact | None = None  # "Does CX pay?", computed with the breakdowns

    def as_json(self) -> dict[str, Any]:
        """``{"granularity", "periods", "kpis": {id: [value or None, ...]}, "issues": [{"table",
        "row", "column", "value", "problem", "action"}, ...]}``, JSON-native values only."""
        out = {
            "granularity": self.granularity,
            "periods": list(self.periods),
            "kpis": {k: [_json_number(v) for v in values] for k, values in self.kpis.items()},
            "issues": [i.as_json() for i in self.issues],
        }
        if self.impact is not None:
            out["cx_impact"] = self.impact.as_json()
        return out

    def frame(self) -> pd.DataFrame:
        """KPIs as rows, periods as columns."""
        return pd.DataFrame(self.kpis, index=self.periods).T


def _json_number(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def report_kpi_ids() -> list[str]:
    """The KPI ids of the report and the JSON output, in catalogue order."""
    return list(REPORT_KPIS)


def _usage_part(
    data: Dataset, base: _Base, axis: _Axis
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """``_usage_kpis``' exact effect: the KPIs it writes and the adoption frame (memo.USAGE)."""
    k: dict[str, np.ndarray] = {}
    adoption = _usage_kpis(data, base, axis, k)
    return k, adoption


def _health_part(
    data: Dataset, base: _Base, axis: _Axis, issues: list[Issue]
) -> dict[str, np.ndarray]:
    """``_health_kpis``' exact effect: the KPIs it writes (memo.HEALTH; the issues it adds
    go onto ``issues``). It does not read ``base``, so HEALTH does not declare it."""
    k: dict[str, np.ndarray] = {}
    _health_kpis(data, base, axis, data.settings, k, issues)
    return k


def _core(
    data: Dataset, axis: _Axis, issues: list[Issue], memo: Memo | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every KPI per computed period (the usage and health KPIs through ``memo`` when there
    is one)."""
    settings = data.settings
    base = _Base(data, axis)
    months_per_period = np.array([b - a + 1 for a, b in axis.periods], dtype=float)
    k: dict[str, np.ndarray] = {}
    counts = _subscription_kpis(base, axis, settings, k)
    order_info = _order_kpis(data, base, axis, k, months_per_period)
    _survey_kpis(data, axis, settings, k)
    _support_and_funnel(data, axis, k)
    usage_k, adoption = run_part(
        memo, USAGE, data, axis, issues, lambda _: _usage_part(data, base, axis)
    )
    k.update(usage_k)
    _customer_kpis(data, base, axis, settings, k, counts, order_info, months_per_period)
    health = run_part(
        memo, HEALTH, data, axis, issues, lambda added: _health_part(data, base, axis, added)
    )
    k.update(health)
    return k, {"base": base, "adoption": adoption, "tiers": order_info["tiers"]}


def _encode_ids(data: Dataset) -> Dataset:
    """The data with every customer id (and ``referred_by``) as a float code, NaN for a
    blank: one hashing of the id strings instead of one per lookup.

    The codes number the ids in their order of first appearance over the columns in turn
    (as one factorization of all the columns end to end would). Each column's distinct
    ids are found on its own (a categorical column's from its codes, without hashing its
    rows; the Usage summary's customers, when they are an earlier column's distinct ids in
    the same order, take their codes) and their few distinct ids are then numbered
    together: the same codes, several times faster than hashing one concatenation of
    millions of strings."""
    cols = encoded_columns()
    summary = data.usage_summary  # its customers stand for the Usage column
    local: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    same_as: list[int] = []  # the earlier column with the same distinct ids, in order (-1)
    for t, c in cols:
        if summary is not None and (t, c) == ("Usage", "customer_id"):
            # the summary's customers are distinct: when they are an earlier column's
            # distinct ids in the same order, each is its position there
            ids = summary.customers
            earlier = next((j for j, (_, u, _) in enumerate(local) if _same_ids(u, ids)), -1)
            if earlier >= 0:
                local.append((np.arange(len(ids)), local[earlier][1], None))
                same_as.append(earlier)
                continue
        local.append(_distinct_ids(data, t, c))
        same_as.append(-1)
    together, _ = pd.factorize(
        np.concatenate([u for (_, u, _), same in zip(local, same_as, strict=True) if same < 0])
    )
    tables = dict(data.tables)
    start = 0
    code_of: list[np.ndarray] = []
    for (t, c), (codes, uniques, through), same in zip(cols, local, same_as, strict=True):
        if same < 0:
            code_of.append(together[start : start + len(uniques)].astype(float))
            start += len(uniques)
        else:
            code_of.append(code_of[same])
        # each row's code by its position in the uniques (-1, a blank: the last slot, NaN);
        # a categorical's rows by their category, through the category's position
        table = np.append(code_of[-1], np.nan)
        floats = (table if through is None else table[through])[codes]
        if summary is not None and (t, c) == ("Usage", "customer_id"):
            summary = summary.with_customers(floats)
            continue
        if tables[t] is data.tables[t]:
            tables[t] = tables[t].copy(deep=False)
        tables[t][c] = floats
    return dataclasses.replace(data, tables=tables, usage_summary=summary)


def _distinct_ids(
    data: Dataset, table: str, column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``pd.factorize`` of a customer id column (the Usage summary's customers for Usage's):
    each row's position in the distinct ids (-1: blank), and those ids in their order of
    first appearance; None. A categorical's by its codes: each row's category (-1: blank),
    the categories in the order in which the rows first use them (one pass over small
    integers, no hashing of the rows) and each category's position among them (the last
    slot -1), so that a row's position is ``through[codes]``."""
    summary = data.usage_summary
    if summary is not None and (table, column) == ("Usage", "customer_id"):
        return (*pd.factorize(summary.customers), None)
    ids = data.tables[table][column]
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return (*pd.factorize(ids.to_numpy(object)), None)
    cat_codes = ids.cat.codes.to_numpy()
    order = pd.unique(cat_codes)  # the categories used, in their order of first use
    order = order[order >= 0]
    position = np.full(len(ids.cat.categories) + 1, -1, dtype=np.intp)  # last slot: -1
    position[order] = np.arange(len(order))
    uniques = np.asarray(ids.cat.categories.to_numpy(object)[order], dtype=object)
    return cat_codes, uniques, position


def _same_ids(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two columns' distinct ids are the same, in the same order (a first look
    at a few of them before the whole comparison)."""
    if len(before) != len(after) or not len(after):
        return False
    if not np.array_equal(before[:64], after[:64]):
        return False
    return bool(np.array_equal(before, after))


def compute(
    data: Dataset, *, breakdowns: bool = True, impact: bool | None = None, memo: Memo | None = None
) -> Report:
    """Every KPI of the report for every period of ``data.settings``' granularity.

    Periods run from ``report_start`` to ``report_end`` (by default the first and last
    month with data). With ``breakdowns`` the report also holds the KPIs by segment and
    by owner, the cohort matrices, the CX-to-revenue split, churn by reason, referral
    revenue by the referrer's segment, feature adoption, repeat purchase tiers and the
    feedback themes. With ``impact`` (default: as ``breakdowns``) it holds the "Does CX
    pay?" analysis (``report.impact``, ``"cx_impact"`` in the JSON).

    With ``memo`` (an :class:`~cxkpi_xl.engine.memo.Memo` on a directory) the expensive
    parts whose inputs and settings are unchanged since a compute it remembers are reused
    (the usage and health KPIs, the predictive models, "Does CX pay?"); the Report is the
    same to the last bit.
    """
    settings = data.settings
    granularity = settings["granularity"]
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be month, quarter or year, not {granularity!r}")
    with shared_months():  # each date column's months worked out once
        return _compute(data, breakdowns, impact, memo)


def _compute(data: Dataset, breakdowns: bool, impact: bool | None, memo: Memo | None) -> Report:
    settings = data.settings
    granularity = settings["granularity"]
    issues = list(data.issues)
    data = _encode_ids(data)
    axis = _axis(data, granularity)
    ids = report_kpi_ids()
    if axis is None:
        return Report(granularity, [], {i: np.zeros(0) for i in ids}, {}, issues, settings)
    k, extra = _core(data, axis, issues, memo)
    sl = axis.reported
    report = Report(
        granularity,
        axis.labels[sl],
        {i: np.asarray(k[i], dtype=float)[sl] for i in ids},
        {},
        issues,
        settings,
    )
    if breakdowns:
        base = extra["base"]
        b = report.breakdowns
        labels = axis.labels[sl]
        movements = pd.DataFrame(
            {m: report.kpis[m] for m in ("mrr", *MOVEMENTS, "net_new_mrr")}, index=labels
        )
        b["mrr_movements"] = movements
        b.update(_group_breakdowns(data, base, axis, ("segment", "owner")))
        cx = _cx_to_revenue(data, base, axis, k)
        b["nps_category"] = cx[["nps_category", "kpi", *labels]]
        b.update(_cohorts(base, axis))
        reasons = _churn_by_reason(data, base, axis)
        b["churn_reason"] = (
            reasons[["churn_reason", "measure", *labels]] if not reasons.empty else reasons
        )
        refs = _referrals_by_segment(data, base, axis)
        b["referrals_by_segment"] = refs[["referrer_segment", *labels]] if not refs.empty else refs
        adoption = extra["adoption"]
        b["feature_adoption"] = adoption[labels] if not adoption.empty else adoption
        tiers = extra["tiers"]
        b["repeat_purchase_tiers"] = tiers[labels] if not tiers.empty else tiers
        b["feedback_themes"] = _themes(data, axis, memo)
        b.update(
            run_part(
                memo, PREDICTIVE, data, axis, report.issues,
                lambda added: _predictive(data, base, axis, added),
            )
        )  # fmt: skip
    if breakdowns if impact is None else impact:
        base = extra["base"]
        report.impact = run_part(
            memo, IMPACT, data, axis, report.issues, lambda _: cx_impact(data, base, axis, memo)
        )
    return report
