"""The period engine: every KPI for every report period, with breakdowns.

Data flows one way: a validated :class:`~cxkpi_xl.data.reader.Dataset` goes in, a
:class:`Report` comes out. The engine only aggregates (counts, sums, per-customer MRR
movements) and hands the aggregates to the KPI library; the formulas live there.

MRR is held as a customers x months matrix of integer money units (whole units, cents,
... as the data's decimals need; too large a book is refused, never added up wrongly), so
the movement identity MRR(end) = MRR(start) + net new MRR holds exactly in every period.
Month column 0 is the month before the first month with data (nothing is known there), so
the first month with data has blank movements; customers who signed up before it and pay
in it count as active at its start. An MRR cell the reader could not read is unknown, not
zero: the customer's previous month's MRR is carried into it.

The modules, by what they compute: :mod:`.axis` (the periods as month columns),
:mod:`.subscriptions` (the MRR matrix and the subscription KPIs), :mod:`.customers`
(orders, customers, costs, health), :mod:`.feedback` (surveys and comment themes),
:mod:`.activity` (support, funnel, usage), :mod:`.breakdowns`, :mod:`.cohorts`,
:mod:`.predictive`, and :mod:`.assemble`, which puts them together in :func:`compute`;
:mod:`.tables` runs it on three columns for the table KPIs of the catalogue;
:mod:`.memo` lets :func:`compute` reuse its expensive parts whose inputs did not change.
Their underscored names are the engine's insides; what this package exports is its API.
"""

from __future__ import annotations

from ..data.issues import issue_json, json_value
from .assemble import NOT_COMPUTED, REPORT_KPIS, Report, compute, report_kpi_ids
from .breakdowns import BREAKDOWN_KPIS, NPS_CATEGORIES
from .feedback import STOP_WORDS, SURVEY_KINDS, feedback_themes
from .memo import Memo
from .predictive import P_ALIVE_BANDS
from .subscriptions import EXACT_LIMIT, MAX_DECIMALS, MOVEMENTS, MoneyError

__all__ = [
    "BREAKDOWN_KPIS",
    "EXACT_LIMIT",
    "MAX_DECIMALS",
    "MOVEMENTS",
    "NOT_COMPUTED",
    "NPS_CATEGORIES",
    "P_ALIVE_BANDS",
    "REPORT_KPIS",
    "STOP_WORDS",
    "SURVEY_KINDS",
    "Memo",
    "MoneyError",
    "Report",
    "compute",
    "feedback_themes",
    "issue_json",
    "json_value",
    "report_kpi_ids",
]
