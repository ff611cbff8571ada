"""The headline block at the top of the Report: the latest period's figures that matter,
each with its change against the previous period and the same period a year earlier,
marked good or bad by the direction that is good for that KPI (churn down is good).

Like the rest of the layout it is cells only: :func:`headline` returns the rows, and the
sheet writer gives them their number formats and fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..catalogue import BY_ID
from ..engine import Report

HEADLINE_KPIS: tuple[tuple[str, int], ...] = (
    ("mrr", +1),
    ("net_new_mrr", +1),
    ("net_revenue_retention", +1),
    ("gross_revenue_retention", +1),
    ("customer_churn_rate", -1),
    ("nps", +1),
    ("csat", +1),
    ("at_risk_rate", -1),
)
"""The headline KPIs in the order shown, each with the direction that is good for it
(+1: up is good, -1: down is good)."""

PERIODS_PER_YEAR = {"month": 12, "quarter": 4, "year": 1}
GOOD_FILL = "FFC6EFCE"  # Excel's own "good" and "bad" cell styles
BAD_FILL = "FFFFC7CE"


@dataclass(frozen=True)
class Figure:
    """One headline figure: the latest value, the previous period's and the one a year
    earlier (NaN when the data do not reach back), and whether each change is good."""

    kpi: str
    latest: float
    previous: float
    year_ago: float
    good_direction: int
    note: str = ""

    def change(self, before: float) -> float:
        return self.latest - before if math.isfinite(before) else math.nan

    def verdict(self, before: float) -> str | None:
        """``"good"``, ``"bad"``, or None for no change or no comparison."""
        delta = self.change(before)
        if not math.isfinite(delta) or delta == 0:
            return None
        return "good" if delta * self.good_direction > 0 else "bad"


def _at(values: np.ndarray, i: int) -> float:
    if i < 0 or i >= len(values):
        return math.nan
    v = float(values[i])
    return v if math.isfinite(v) else math.nan


def figures(report: Report) -> list[Figure]:
    """The headline figures of ``report``'s latest period (none without periods)."""
    if not report.periods:
        return []
    last = len(report.periods) - 1
    year = PERIODS_PER_YEAR.get(report.granularity, 12)
    out = []
    for kpi, direction in HEADLINE_KPIS:
        values = report.kpis.get(kpi)
        if values is None:
            continue
        note = ""
        if kpi == "nps" and "nps_margin_of_error" in report.kpis:
            moe = _at(report.kpis["nps_margin_of_error"], last)
            if math.isfinite(moe):
                note = f"± {moe:.1f} points (95 % margin of error)"
        out.append(
            Figure(kpi, _at(values, last), _at(values, last - 1), _at(values, last - year),
                   direction, note)
        )  # fmt: skip
    return out


def signed(number_format: str) -> str:
    """A number format that shows the sign of a change: ``+1.5%``, ``-1.5%``, ``0.0%``."""
    return f"+{number_format};-{number_format};{number_format}"


def headline_rows(report: Report, unit_label: Any) -> list[list[tuple[Any, str] | None]]:
    """The headline block as rows of ``(value, style)`` cells: a header, then one row per
    figure (title, unit, latest, previous, change, a year earlier, change, note).
    ``unit_label(kpi)`` is the unit column's text."""
    latest = report.periods[-1]
    year = PERIODS_PER_YEAR.get(report.granularity, 12)
    prev = report.periods[-2] if len(report.periods) > 1 else "previous"
    ago = report.periods[-1 - year] if len(report.periods) > year else "a year earlier"
    head = [f"Headline: {latest}", "unit", latest, prev, "change", ago, "change"]
    rows: list[list[tuple[Any, str] | None]] = [[(h, "header") for h in head]]
    for f in figures(report):
        fmt = BY_ID[f.kpi].number_format
        row: list[tuple[Any, str] | None] = [
            (BY_ID[f.kpi].title, "text"),
            (unit_label(f.kpi), "text"),
        ]
        for v in (f.latest, f.previous):
            row.append((v, f"num:{fmt}") if math.isfinite(v) else None)
        row.append(_change_cell(f, f.previous, fmt))
        row.append((f.year_ago, f"num:{fmt}") if math.isfinite(f.year_ago) else None)
        row.append(_change_cell(f, f.year_ago, fmt))
        if f.note:  # one column apart: LibreOffice paints over a fill beside overflowing text
            row.extend([None, (f.note, "text")])
        rows.append(row)
    return rows


def _change_cell(f: Figure, before: float, fmt: str) -> tuple[Any, str] | None:
    delta = f.change(before)
    if not math.isfinite(delta):
        return None
    verdict = f.verdict(before)
    fill = {"good": GOOD_FILL, "bad": BAD_FILL}.get(verdict or "", "")
    return delta, f"num:{signed(fmt)}" + (f"|fill:{fill}" if fill else "")


__all__ = ["HEADLINE_KPIS", "Figure", "figures", "headline_rows", "signed"]
