"""What the Report and Data Issues sheets hold, cell by cell, independent of how they are
written (the package writer of ``cxkpi refresh``, or xlwings' Book API inside Excel).

The Report starts at A1 with the KPI table (``kpi``, ``title``, one column per period),
then room for the two charts (MRR movements, NPS trend), then one section per breakdown.
Every text cell is a literal string: text from the user's cells (names, segments,
comments) never becomes a formula, whatever it starts with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalogue import BY_ID, NUMBER_FORMATS
from ..data.issues import ISSUE_COLUMNS, Issue
from ..engine import MOVEMENTS, Report

REPORT_SHEET = "Report"
ISSUES_SHEET = "Data Issues"
REPORT_HEADER = ("kpi", "title")
"""The first two cells of the Report: how refresh knows the sheet is its own."""
ISSUES_HEADER = tuple(ISSUE_COLUMNS[:2])
OWNED_HEADERS = {REPORT_SHEET: REPORT_HEADER, ISSUES_SHEET: ISSUES_HEADER}
"""The sheets refresh writes, and the first cells by which it knows them as its own."""


def sheet_key(name: str) -> str:
    """A sheet name as Excel compares it: ``REPORT`` and ``Report`` are the same sheet."""
    return name.casefold()


MAX_TEXT = 32767  # Excel's limit for the text of one cell
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML

MONEY = NUMBER_FORMATS["money"]
PERCENT = NUMBER_FORMATS["fraction"]
COUNT = NUMBER_FORMATS["count"]
CHART_ROWS = 18  # rows left free below the KPI table for the charts

SECTIONS = (
    ("mrr_movements", "MRR movements"),
    ("segment", "KPIs by segment"),
    ("owner", "KPIs by owner"),
    ("nps_category", "CX to revenue: KPIs by NPS category"),
    ("cohort_logos", "Cohort retention, logos (signup month x months since signup)"),
    ("cohort_revenue", "Cohort retention, revenue (signup month x months since signup)"),
    ("churn_reason", "Churn by reason"),
    ("referrals_by_segment", "Referral revenue by the referrer's segment"),
    ("feature_adoption", "Feature adoption (share of active customers)"),
    ("repeat_purchase_tiers", "Customers by number of orders to date"),
    ("feedback_themes", "Feedback themes (top words and pairs in comments)"),
    ("predicted_clv_by_segment", "Predicted CLV by segment (BG/NBD and Gamma-Gamma)"),
    ("p_alive_distribution", "Customers by probability alive"),
    ("projected_retention", "Projected retention (shifted-beta-geometric)"),
)
"""The breakdowns of the report, in the order they appear below the KPI table."""

STYLES: dict[str, dict[str, Any]] = {
    "header": {"bold": True, "fill": "FFDDEBF7"},
    "section": {"bold": True},
    "text": {"quote": True},
}
"""The named cell styles: bold, a solid fill (ARGB), quotePrefix for text (so Excel never
takes it for a formula when edited). ``num:FORMAT`` is a number in that format."""


def style_spec(key: str) -> dict[str, Any]:
    """What a style key means: ``STYLES[key]``, or ``{"number_format": ...}``."""
    return {"number_format": key[4:]} if key.startswith("num:") else STYLES[key]


def styles_used(sheets: list[Sheet]) -> dict[str, dict[str, Any]]:
    """The styles the cells of ``sheets`` use, in a stable order."""
    keys = {c[1] for s in sheets for row in s.rows for c in row if c is not None}
    return {k: style_spec(k) for k in sorted(keys)}


@dataclass(frozen=True)
class Chart:
    """A native chart over the KPI table: ``rows`` are 1-based rows of the series (title
    in column B, values from column C), ``anchor`` the top-left cell."""

    kind: str  # "bar" or "line"
    title: str
    rows: tuple[int, ...]
    periods: int
    anchor: str
    y_format: str


@dataclass
class Sheet:
    """Rows of ``(value, style)`` cells (``None`` for an empty cell), column widths and the
    charts."""

    name: str
    rows: list[list[tuple[Any, str] | None]] = field(default_factory=list)
    widths: dict[int, float] = field(default_factory=dict)  # 1-based column -> width
    freeze: str | None = None  # top-left cell of the scrolling pane
    charts: list[Chart] = field(default_factory=list)

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


def report_sheet(report: Report) -> Sheet:
    """The Report sheet of ``report``."""
    sheet = Sheet(REPORT_SHEET, freeze="C2")
    periods = list(report.periods)
    sheet.rows.append([text(h, "header") for h in (*REPORT_HEADER, *periods)])
    row_of: dict[str, int] = {}
    for kpi_id, values in report.kpis.items():
        entry = BY_ID[kpi_id]
        fmt = entry.number_format
        sheet.rows.append([text(kpi_id), text(entry.title), *(number(v, fmt) for v in values)])
        row_of[kpi_id] = len(sheet.rows)
    sheet.widths = {1: 28, 2: 44, **{c: 12 for c in range(3, 3 + max(len(periods), 1))}}
    if periods:
        top = len(sheet.rows) + 2
        sheet.charts = [
            Chart(
                "bar",
                "MRR movements",
                tuple(row_of[m] for m in MOVEMENTS if m in row_of),
                len(periods),
                f"A{top}",
                MONEY,
            ),
            Chart("line", "NPS", (row_of["nps"],), len(periods), f"D{top}", "0"),
        ]
        sheet.rows.extend([] for _ in range(CHART_ROWS + 1))
    for key, title in SECTIONS:
        frame = report.breakdowns.get(key)
        if frame is None or frame.empty:
            continue
        sheet.rows.append([])
        sheet.rows.append([text(title, "section")])
        sheet.rows.extend(_section(key, frame, periods))
    if report.impact is not None:  # "Does CX pay?"
        from .impact import impact_rows

        sheet.rows.append([])
        sheet.rows.extend(impact_rows(report.impact))
    return sheet


def _section(
    key: str, frame: pd.DataFrame, periods: list[str]
) -> Iterator[list[tuple[Any, str] | None]]:
    if key == "mrr_movements":  # measures as rows, periods across, like the KPI table
        frame = frame.T
        frame.insert(0, "title", [BY_ID[m].title for m in frame.index])
        frame.index.name = "kpi"
    has_index = not isinstance(frame.index, pd.RangeIndex)
    head = [str(frame.index.name or _INDEX_NAMES.get(key, ""))] if has_index else []
    label_cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    # Period columns line up with the KPI table's (from column C).
    pad = int(has_index) + len(label_cols) == 1 and any(c in periods for c in frame.columns)
    head_cells = [text(h, "header") for h in (*head, *map(str, frame.columns))]
    yield head_cells[:1] + [text("", "header")] * pad + head_cells[1:]
    for idx, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells: list[tuple[Any, str] | None] = [text(idx)] if has_index else []
        fmt = _row_format(key, idx, dict(zip(frame.columns, row, strict=True)))
        for col, value in zip(frame.columns, row, strict=True):
            if col in label_cols:
                cells.append(None if _blank(value) else text(value))
            else:
                cells.append(number(value, _column_format(key, col, fmt)))
        yield cells[:1] + [None] * pad + cells[1:]


_INDEX_NAMES = {
    "cohort_logos": "signup month",
    "cohort_revenue": "signup month",
    "feature_adoption": "feature",
    "repeat_purchase_tiers": "orders to date",
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
        return "0.000" if str(idx) in ("alpha", "beta") else None
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


def outcome(report: Report) -> str:
    """What a refresh wrote, for the closing line: periods, KPIs and data issues."""
    n = len(report.issues)
    return (
        f"{len(report.periods)} {report.granularity} periods, {len(report.kpis)} KPIs, "
        f"{n} data issue{'s' if n != 1 else ''}{f' (see the {ISSUES_SHEET} sheet)' if n else ''}"
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
                None if value in (None, "") else text(value),
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


def column_letter(col: int) -> str:
    """1 -> A, 27 -> AA."""
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


__all__ = [
    "ISSUES_SHEET",
    "ISSUES_SHEET_COLUMNS",
    "OWNED_HEADERS",
    "REPORT_SHEET",
    "STYLES",
    "Chart",
    "Sheet",
    "column_letter",
    "issue_rows",
    "issues_sheet",
    "outcome",
    "report_sheet",
    "sheet_key",
    "style_spec",
    "styles_used",
]
