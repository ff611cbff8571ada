"""What the Report and Data Issues sheets hold, cell by cell, independent of how they are
written (the package writer of ``cxkpi refresh``, or xlwings' Book API inside Excel).

Here are the cells and their formats: text and number cells, the styles, each
breakdown section's rows, the Data Issues sheet. How the Report is put together from
them (title, headline, charts, KPI table, sections, page breaks) is in
:mod:`cxkpi_xl.report.board`. Every text cell is a literal string: text from the
user's cells (names, segments, comments) never becomes a formula, whatever it starts
with.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalogue import BY_ID, NUMBER_FORMATS
from ..data.issues import ISSUE_COLUMNS, Issue
from ..engine import Report
from .charts import Chart

REPORT_SHEET = "Report"
ISSUES_SHEET = "Data Issues"
REPORT_HEADER = ("CX KPI report", "cxkpi-xl")
"""The first two cells of the Report: how refresh knows the sheet is its own."""
LEGACY_REPORT_HEADER = ("kpi", "title")
"""The first cells of a Report written before the headline block (still ours)."""
ISSUES_HEADER = tuple(ISSUE_COLUMNS[:2])
OWNED_HEADERS = {REPORT_SHEET: REPORT_HEADER, ISSUES_SHEET: ISSUES_HEADER}
"""The sheets refresh writes, and the first cells by which it knows them as its own."""
FORMER_HEADERS = {REPORT_SHEET: (LEGACY_REPORT_HEADER,)}
"""First cells by which earlier versions' sheets are known as ours too."""


def sheet_key(name: str) -> str:
    """A sheet name as Excel compares it: ``REPORT`` and ``Report`` are the same sheet."""
    return name.casefold()


MAX_TEXT = 32767  # Excel's limit for the text of one cell
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML

MONEY = NUMBER_FORMATS["money"]
PERCENT = NUMBER_FORMATS["fraction"]
COUNT = NUMBER_FORMATS["count"]
CHART_PERIODS = 24
"""Charts show at most the last 24 periods; the tables show them all."""

SECTIONS = (
    ("mrr_movements", "MRR movements (contraction and churn below zero)"),
    ("segment", "KPIs by segment"),
    ("owner", "KPIs by owner"),
    ("nps_category", "CX to revenue: KPIs by NPS category"),
    ("cohort_logos", "Cohort retention, logos (signup month x months since signup)"),
    ("cohort_revenue", "Cohort retention, revenue (signup month x months since signup)"),
    ("churn_reason", "Churn by reason"),
    ("referrals_by_segment", "Referral revenue by the referrer's segment"),
    ("feature_adoption", "Feature adoption (share of active customers)"),
    ("repeat_purchase_tiers", "Customers by number of orders to date"),
    ("feedback_themes", "Feedback themes (phrases in NPS comments, with an example)"),
    ("predicted_clv_by_segment", "Predicted CLV by segment (BG/NBD and Gamma-Gamma)"),
    ("p_alive_distribution", "Customers by probability alive"),
    ("projected_retention", "Projected retention (shifted-beta-geometric)"),
)
"""The breakdowns of the report, in the order they appear below the KPI table."""
HEAT_MAPS = ("cohort_logos", "cohort_revenue")
"""Sections whose numbers get a colour scale (red low, green high)."""

STYLES: dict[str, dict[str, Any]] = {
    "header": {"bold": True, "fill": "FFDDEBF7"},
    "section": {"bold": True},
    "title": {"bold": True},
    "text": {"quote": True},
}
"""The named cell styles: bold, a solid fill (ARGB), quotePrefix for text (so Excel never
takes it for a formula when edited). ``num:FORMAT`` is a number in that format, and
``num:FORMAT|fill:ARGB`` one with a solid fill too."""


def style_spec(key: str) -> dict[str, Any]:
    """What a style key means: ``STYLES[key]``, or ``{"number_format": ...}`` (and
    ``"fill"``)."""
    if not key.startswith("num:"):
        return STYLES[key]
    fmt, _, fill = key[4:].partition("|fill:")
    return {"number_format": fmt, **({"fill": fill} if fill else {})}


def styles_used(sheets: list[Sheet]) -> dict[str, dict[str, Any]]:
    """The styles the cells of ``sheets`` use, in a stable order."""
    keys = {c[1] for s in sheets for row in s.rows for c in row if c is not None}
    return {k: style_spec(k) for k in sorted(keys)}


Cell = tuple[Any, str] | None
Row = list[Cell]


@dataclass
class Sheet:
    """Rows of ``(value, style)`` cells (``None`` for an empty cell), column widths, the
    charts, and how it prints: ``breaks`` (a page break after each of these 1-based
    rows), ``print_titles`` (columns repeated on every page, e.g. ``"A:B"``), and
    ``color_scales`` (ranges with a red-to-green colour scale)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    widths: dict[int, float] = field(default_factory=dict)  # 1-based column -> width
    freeze: str | None = None  # top-left cell of the scrolling pane
    charts: list[Chart] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)
    print_titles: str | None = None
    color_scales: list[str] = field(default_factory=list)
    fit_width: bool = False

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


def text(value: Any, style: str = "text") -> tuple[str, str]:
    """A literal text cell, cleaned of characters XML cannot hold, cut to Excel's limit."""
    s = _XML_BAD.sub("", str(value))[:MAX_TEXT]
    return s, style


def number(value: Any, number_format: str) -> tuple[float, str] | None:
    """A number cell, or an empty cell for a blank/undefined value."""
    if value is None or isinstance(value, str):
        return None if value in (None, "") else text(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return text(value)
    if not math.isfinite(v):
        return None
    if number_format == "@":
        return text(value)
    return v, f"num:{number_format}"


def unit_label(unit: str, currency: str = "") -> str:
    """The unit column's text for a catalogue unit: ``%``, ``USD``, ``points``, ..."""
    return {"fraction": "%", "money": currency, "ratio": "x", "table": "", "text": ""}.get(
        unit, unit
    )


def section_rows(
    key: str, frame: pd.DataFrame, periods: list[str], currency: str = ""
) -> list[Row]:
    """The rows of one breakdown section: a header, then its rows; period columns line up
    with the KPI table's (from column C)."""
    if key == "mrr_movements":
        return _movement_rows(frame, currency)
    frame = frame.copy()
    kpi_ids = None
    if "kpi" in frame.columns:  # titles for the reader; the formats still by id
        kpi_ids = frame["kpi"].astype(str).tolist()
        frame["kpi"] = [BY_ID[k].title if k in BY_ID else k for k in kpi_ids]
    has_index = not isinstance(frame.index, pd.RangeIndex)
    head = [str(frame.index.name or _INDEX_NAMES.get(key, ""))] if has_index else []
    label_cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    pad = int(has_index) + len(label_cols) == 1 and any(c in periods for c in frame.columns)
    names = [_HEADINGS.get(str(c), str(c)) for c in frame.columns]
    head_cells = [text(h, "header") for h in (*head, *names)]
    out: list[Row] = [head_cells[:1] + [text("", "header")] * pad + head_cells[1:]]
    for i, (idx, row) in enumerate(zip(frame.index, frame.itertuples(index=False), strict=True)):
        cells: Row = [text(idx)] if has_index else []
        values = dict(zip(frame.columns, row, strict=True))
        if kpi_ids is not None:
            values["kpi"] = kpi_ids[i]
        fmt = _row_format(key, idx, values)
        for col, value in zip(frame.columns, row, strict=True):
            if col in label_cols:
                cells.append(None if _blank(value) else text(value))
            else:
                cells.append(number(value, _column_format(key, col, fmt)))
        out.append(cells[:1] + [None] * pad + cells[1:])
    return out


MOVEMENT_SIGNS = {
    "mrr_new": 1,
    "mrr_reactivation": 1,
    "mrr_expansion": 1,
    "mrr_contraction": -1,
    "mrr_churn": -1,
    "net_new_mrr": 1,
}
"""How each movement adds to MRR: contraction and churn are shown (and charted) below
zero, so that the movements of a period sum to its net new MRR."""


def _movement_rows(frame: pd.DataFrame, currency: str) -> list[Row]:
    out: list[Row] = [[text(h, "header") for h in ("movement", "unit", *map(str, frame.index))]]
    for m in frame.columns:
        if m not in MOVEMENT_SIGNS:
            continue
        sign = MOVEMENT_SIGNS[m]
        values = [number(sign * v if v is not None else v, MONEY) for v in frame[m].tolist()]
        out.append([text(BY_ID[m].title), text(currency), *values])
    return out


_INDEX_NAMES = {
    "cohort_logos": "signup month",
    "cohort_revenue": "signup month",
    "feature_adoption": "feature",
    "repeat_purchase_tiers": "orders to date",
}
_HEADINGS = {
    "kpi": "KPI",
    "nps_category": "NPS category",
    "referrer_segment": "referrer's segment",
    "predicted_clv_mean": "predicted CLV, mean",
    "predicted_clv_total": "predicted CLV, total",
    "retention_rate": "retention rate",
    "churn_reason": "churn reason",
}


def _row_format(key: str, idx: Any, row: dict[Any, Any]) -> str | None:
    if "kpi" in row and str(row["kpi"]) in BY_ID:
        return BY_ID[str(row["kpi"])].number_format
    if key == "mrr_movements":
        return MONEY
    if key == "churn_reason":
        return MONEY if "mrr" in str(row.get("measure", "")) else COUNT
    if key in ("cohort_logos", "cohort_revenue", "feature_adoption"):
        return PERCENT
    if key in ("repeat_purchase_tiers",):
        return COUNT
    if key == "referrals_by_segment":
        return MONEY
    if key == "projected_retention":
        if str(idx) in ("alpha", "beta"):
            return "0.000"  # the fitted beta distribution's parameters
        if str(idx) == "derl":
            return BY_ID["derl"].number_format  # periods, not a share
    return None


def _column_format(key: str, col: Any, row_format: str | None) -> str:
    if row_format is not None:
        return row_format
    name = str(col)
    if name in ("customers", "responses", "rank"):
        return COUNT
    if "clv" in name:
        return MONEY
    if name.startswith("p_alive") or name in ("survival", "retention_rate"):
        return PERCENT
    return "0.00"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def outcome(report: Report, empty_tables: list[str] | None = None) -> str:
    """What a refresh wrote, for the closing line: periods, KPIs and data issues; for a
    workbook without data, which tables to fill."""
    n = len(report.issues)
    issues = (
        f"{n} data issue{'s' if n != 1 else ''}{f' (see the {ISSUES_SHEET} sheet)' if n else ''}"
    )
    if not report.periods:
        return f"no data to report yet: {fill_hint(empty_tables)}; {issues}"
    return f"{len(report.periods)} {report.granularity} periods, {len(report.kpis)} KPIs, {issues}"


CORE_TABLES = ("Customers", "MRR", "Surveys")
"""The tables most of the Report comes from, named first when a workbook has no data."""


def fill_hint(empty_tables: list[str] | None) -> str:
    """Which input tables to fill, for a workbook that gave no period with data."""
    empty = list(empty_tables) if empty_tables else list(CORE_TABLES)
    first = [t for t in CORE_TABLES if t in empty] + [t for t in empty if t not in CORE_TABLES]
    return (
        f"fill the input Tables ({', '.join(first)}) with dated rows (at least Customers "
        "and MRR) and refresh again"
    )


ISSUES_SHEET_COLUMNS = (*ISSUE_COLUMNS, "count", "first rows")
"""The Data Issues sheet's columns: an issue's, then how many rows have it (grouped)."""
GROUP_FROM = 20
"""A problem found on more rows than this (same sheet, column and problem) is one row of
the Data Issues sheet with its count and its first rows, not one row each."""
FIRST_ROWS = 10
MAX_ISSUE_ROWS = 100_000
"""The Data Issues sheet stops here, far below Excel's 1,048,576 rows, with a last line
saying how many issues it does not list."""


def issue_rows(issues: list[Issue]) -> tuple[list[list[Any]], int]:
    """The rows of the Data Issues sheet, as values of :data:`ISSUES_SHEET_COLUMNS`: a
    problem repeated on many rows is grouped into one row (the first row and value, the
    count, the first rows), and at most ``MAX_ISSUE_ROWS`` rows; also the number of issues
    the rows leave out."""
    groups: dict[tuple[Any, ...], list[Issue]] = {}
    for issue in issues:
        key = (issue.sheet, issue.column, issue.problem, issue.action, issue.row is None)
        groups.setdefault(key, []).append(issue)
    rows: list[list[Any]] = []
    left_out = 0
    for members in groups.values():
        if len(rows) >= MAX_ISSUE_ROWS:
            left_out += len(members)
            continue
        if len(members) > GROUP_FROM and members[0].row is not None:
            first = [str(m.row) for m in members[:FIRST_ROWS]]
            rows.append([*members[0].as_row(), len(members), ", ".join(first) + ", ..."])
            continue
        room = MAX_ISSUE_ROWS - len(rows)
        rows.extend([*m.as_row(), 1, ""] for m in members[:room])
        left_out += max(len(members) - room, 0)
    return rows, left_out


def issues_sheet(issues: list[Issue]) -> Sheet:
    """The Data Issues sheet: one row per problem found in the input, or per kind of
    problem for one repeated on many rows (see :func:`issue_rows`)."""
    sheet = Sheet(ISSUES_SHEET, freeze="A2")
    sheet.rows.append([text(h, "header") for h in ISSUES_SHEET_COLUMNS])
    rows, left_out = issue_rows(issues)
    for s, row, column, value, problem, action, count, first in rows:
        sheet.rows.append(
            [
                text(s),
                number(row, COUNT) if row is not None else None,
                text(column) if column else None,
                _issue_value(value),
                text(problem),
                text(action),
                number(count, COUNT),
                text(first) if first else None,
            ]
        )
    if left_out:
        sheet.rows.append(
            [
                text(
                    f"... and {left_out:,} more data issues not listed: the sheet stops at "
                    f"{MAX_ISSUE_ROWS:,} rows. Fix the problems above and refresh again."
                )
            ]
        )
    if not issues:
        sheet.rows.append([text("No data issues were found in the last refresh.")])
    sheet.widths = {1: 14, 2: 8, 3: 18, 4: 24, 5: 60, 6: 36, 7: 8, 8: 30}
    return sheet


def _issue_value(value: Any) -> Cell:
    """A data issue's value: a number as a number (so Excel does not flag it as a number
    stored as text), anything else as text."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value, "General")
    if isinstance(value, str) and re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?", value):
        return number(float(value), "General")
    return text(value)


def column_letter(col: int) -> str:
    """1 -> A, 27 -> AA."""
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


__all__ = [
    "FORMER_HEADERS",
    "ISSUES_SHEET",
    "ISSUES_SHEET_COLUMNS",
    "OWNED_HEADERS",
    "REPORT_SHEET",
    "STYLES",
    "Chart",
    "Sheet",
    "column_letter",
    "fill_hint",
    "issue_rows",
    "issues_sheet",
    "outcome",
    "section_rows",
    "sheet_key",
    "style_spec",
    "styles_used",
    "unit_label",
]
