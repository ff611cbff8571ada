"""The Report as a board pack: a list of blocks, each a run of rows that prints on one page
when it can (title and headline, each row of charts, the KPI table, one per section),
then the charts over them and the page breaks between them.

A new section is one more :class:`Block` in :func:`blocks` (or appended by
:data:`EXTRA_BLOCKS`); a chart is one more :class:`~cxkpi_xl.report.charts.Chart` in
:func:`charts`. The page breaks come from an estimate of how many rows fit on a page
once the sheet is scaled to one page wide (:func:`rows_per_page`), kept on the safe side
so that no automatic break falls inside a block (the tests render the demo to PDF and
count the pages).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..catalogue import BY_ID
from ..engine import MOVEMENTS, Report
from .charts import CHART_ROWS, CHART_WIDTH_CM, MOVEMENT_COLOURS, Chart
from .headline import headline_rows
from .layout import (
    CHART_PERIODS,
    HEAT_MAPS,
    REPORT_HEADER,
    REPORT_SHEET,
    SECTIONS,
    Row,
    Sheet,
    column_letter,
    fill_hint,
    number,
    section_rows,
    text,
    unit_label,
)

TITLE_WIDTH, UNIT_WIDTH, PERIOD_WIDTH, ID_WIDTH = 34.0, 12.0, 11.0, 12.0
PRINT_WIDTH_PT = 741.0  # A4 landscape less 0.7-inch side margins (Letter is narrower)
PRINT_HEIGHT_PT = 487.0  # A4 landscape less 0.75-inch top and bottom margins
ROW_HEIGHT_PT = 15.0
SAFETY = 0.95  # rows per page are estimated 5 % short, so breaks come early, never late
GROUPED = ("segment", "owner", "nps_category")
"""Breakdowns of KPIs per group: one sub-heading per group, then its KPIs' rows."""


@dataclass
class Block:
    """Rows that belong together on a page; ``first`` is the 1-based row of the first
    one once placed."""

    key: str
    rows: list[Row]
    first: int = 0
    gap_before: int = 1

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1


@dataclass
class Layout:
    """The blocks in order and where each key's rows are."""

    blocks: list[Block] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)  # "kpi:<id>" etc. -> 1-based row

    def block(self, key: str) -> Block | None:
        return next((b for b in self.blocks if b.key == key), None)


EXTRA_BLOCKS: list[Callable[[Report], Block | None]] = []
"""Sections other modules add after the breakdowns (a function of the report giving a
block, or None when it has nothing to show)."""


def report_sheet(report: Report, empty_tables: list[str] | None = None) -> Sheet:
    """The Report sheet of ``report``: a title, the headline block, the charts, the KPI
    table (title, unit, one column per period, id), then one section per breakdown, laid
    out for print. ``empty_tables`` names the input tables that had no rows, for the
    message of a Report without data."""
    sheet = Sheet(REPORT_SHEET, freeze="B1", print_titles="A:A", fit_width=True)
    periods = list(report.periods)
    currency = str(report.settings["currency"]) if "currency" in report.settings.values else ""
    sheet.widths = {1: TITLE_WIDTH, 2: UNIT_WIDTH}
    sheet.widths |= {c: PERIOD_WIDTH for c in range(3, 3 + max(len(periods), 6))}
    sheet.widths[3 + len(periods)] = ID_WIDTH
    if not periods:
        sheet.rows = [
            [text(REPORT_HEADER[0], "title"), text(REPORT_HEADER[1])],
            [],
            [text("No data to report yet.", "section")],
            [text(f"To see your KPIs: {fill_hint(empty_tables)}.")],
            [text("The Definitions sheet explains every KPI; the Data Issues sheet lists what "
                  "refresh could not use.")],
        ]  # fmt: skip
        return sheet
    layout = Layout(blocks(report, currency))
    _place(sheet, layout)
    sheet.charts = charts(report, layout, sheet, currency)
    sheet.color_scales = [
        _data_range(b) for b in layout.blocks if b.key in HEAT_MAPS and len(b.rows) > 2
    ]
    sheet.breaks = page_breaks(layout.blocks, rows_per_page(sheet))
    return sheet


def blocks(report: Report, currency: str) -> list[Block]:
    """The Report's blocks, top to bottom."""
    periods = list(report.periods)
    first, last = periods[0], periods[-1]
    title = [
        [text(REPORT_HEADER[0], "title"), text(REPORT_HEADER[1]),
         text(f"{len(periods)} {report.granularity} periods, {first} to {last}; amounts in "
              f"{currency or 'the input currency'}. Refresh rewrites this sheet.")],
        [],
    ]  # fmt: skip
    out = [Block("headline", title + headline_rows(report, _unit_of(currency)), gap_before=0)]
    out.append(Block("charts:1", [[] for _ in range(CHART_ROWS)]))
    out.append(Block("charts:2", [[] for _ in range(CHART_ROWS)]))
    table: list[Row] = [
        [text("KPIs by period", "section")],
        [text(h, "header") for h in ("KPI", "unit", *periods, "id")],
    ]
    for kpi_id, values in report.kpis.items():
        entry = BY_ID[kpi_id]
        fmt = entry.number_format
        table.append(
            [text(entry.title), text(unit_label(entry.unit, currency)),
             *(number(v, fmt) for v in values), text(kpi_id)]
        )  # fmt: skip
    out.append(Block("kpis", table))
    for key, heading in SECTIONS:
        frame = report.breakdowns.get(key)
        if frame is None or frame.empty:
            continue
        if key in GROUPED:
            rows = _grouped_rows(key, frame, currency)
        elif key == "feedback_themes":
            rows = _theme_rows(frame)
        else:
            rows = section_rows(key, frame, periods, currency)
        out.append(Block(key, [[text(heading, "section")], *rows]))
    for extra in EXTRA_BLOCKS:
        block = extra(report)
        if block is not None:
            out.append(block)
    if report.impact is not None:  # "Does CX pay?"
        from .impact import impact_rows

        out.append(Block("impact", impact_rows(report.impact)))
    band = _band_rows(report)
    if band:
        out.append(Block("chart_data", band))
    return out


def _unit_of(currency: str) -> Callable[[str], str]:
    return lambda kpi: unit_label(BY_ID[kpi].unit, currency)


def _grouped_rows(key: str, frame: pd.DataFrame, currency: str) -> list[Row]:
    """A KPI-by-group breakdown: one sub-heading per group, then its KPIs as in the KPI
    table (title, unit, one column per period)."""
    if key not in frame.columns:  # the group as the index
        frame = frame.reset_index().rename(columns={frame.index.name or "index": key})
    cols = [c for c in frame.columns if c not in (key, "kpi")]
    heading = _GROUP_HEADINGS.get(key, key)
    rows: list[Row] = [[text(h, "header") for h in (heading, "unit", *map(str, cols))]]
    for group in pd.unique(frame[key]):
        rows.append([text(group, "title")])
        for _, r in frame[frame[key] == group].iterrows():
            entry = BY_ID[str(r["kpi"])]
            fmt = entry.number_format
            rows.append(
                [text(entry.title), text(unit_label(entry.unit, currency)),
                 *(number(r[c], fmt) for c in cols)]
            )  # fmt: skip
    return rows


_GROUP_HEADINGS = {"segment": "segment", "owner": "owner", "nps_category": "NPS category"}


def _theme_rows(frame: pd.DataFrame) -> list[Row]:
    """Feedback themes by NPS category: the phrase, how many comments have it, and one of
    those comments."""
    rows: list[Row] = [[text(h, "header") for h in ("phrase", "comments", "example comment")]]
    for category in pd.unique(frame["nps_category"]):
        rows.append([text(f"{category}s".capitalize(), "title")])
        for _, r in frame[frame["nps_category"] == category].iterrows():
            example = r.get("example")
            rows.append(
                [text(r["theme"]), number(r["responses"], "#,##0"),
                 text(example) if isinstance(example, str) else None]
            )  # fmt: skip
    return rows


def _band_rows(report: Report) -> list[Row]:
    """The NPS margin-of-error band as drawn: its lower bound and its width."""
    nps, moe = report.kpis.get("nps"), report.kpis.get("nps_margin_of_error")
    if nps is None or moe is None:
        return []
    lower = np.asarray(nps, float) - np.asarray(moe, float)
    fmt = BY_ID["nps"].number_format
    return [
        [text("Chart data (the NPS chart's 95 % band)", "section")],
        [text(h, "header") for h in ("series", "unit", *report.periods)],
        [text("NPS, lower bound (95 %)"), text("points"), *(number(v, fmt) for v in lower)],
        [text("NPS, band width (2 x margin)"), text("points"),
         *(number(2 * v, fmt) for v in np.asarray(moe, float))],
    ]  # fmt: skip


def _place(sheet: Sheet, layout: Layout) -> None:
    for block in layout.blocks:
        sheet.rows.extend([] for _ in range(block.gap_before if sheet.rows else 0))
        block.first = len(sheet.rows) + 1
        sheet.rows.extend(block.rows)
        for i, row in enumerate(block.rows):
            if block.key in ("kpis", "mrr_movements", "chart_data") and len(row) > 2:
                label = row[-1] if block.key == "kpis" else row[0]
                if label is not None and label[1] == "text":
                    layout.row_of[f"{block.key}:{label[0]}"] = block.first + i


def _data_range(block: Block) -> str:
    width = max(len(r) for r in block.rows)
    return f"B{block.first + 2}:{column_letter(width)}{block.last}"


def charts(report: Report, layout: Layout, sheet: Sheet, currency: str) -> list[Chart]:
    """The four charts, in two rows of two: MRR movements and NPS with its band; customer
    churn, and NRR with GRR. Each shows the last :data:`CHART_PERIODS` periods."""
    n = min(len(report.periods), CHART_PERIODS)
    first_col = 3 + len(report.periods) - n
    kpis = layout.block("kpis")
    assert kpis is not None
    header = kpis.first + 1
    x_title = report.granularity
    money_axis = _currency_format(currency)
    right = _column_at(sheet, CHART_WIDTH_CM / 2.54 * 96 + 24)
    spots = []
    for key in ("charts:1", "charts:2"):
        block = layout.block(key)
        assert block is not None
        spots += [f"A{block.first}", f"{column_letter(right)}{block.first}"]
    row = layout.row_of
    specs: list[Chart] = []

    def add(**kw: object) -> None:
        specs.append(
            Chart(anchor=spots[len(specs)], periods=n, first_col=first_col, x_title=x_title, **kw)  # type: ignore[arg-type]
        )

    moves = [m for m in MOVEMENTS if f"mrr_movements:{BY_ID[m].title}" in row]
    net = row.get(f"mrr_movements:{BY_ID['net_new_mrr'].title}")
    if moves and (block := layout.block("mrr_movements")) is not None:
        add(
            kind="movements", title="MRR movements", y_format=money_axis,
            y_title=f"MRR change ({currency})" if currency else "MRR change",
            rows=tuple(row[f"mrr_movements:{BY_ID[m].title}"] for m in moves),
            colours=tuple(MOVEMENT_COLOURS[m] for m in moves),
            lines=(net,) if net else (), header_row=block.first + 1,
        )  # fmt: skip
    band = layout.block("chart_data")
    if "kpis:nps" in row and band is not None:
        add(
            kind="band", title="NPS and its 95 % margin of error",
            y_format="0", y_title="NPS (points)", rows=(band.first + 2, band.first + 3),
            lines=(row["kpis:nps"],), header_row=band.first + 1,
        )  # fmt: skip
    if "kpis:customer_churn_rate" in row:
        add(
            kind="line", title="Customer churn rate", y_format="0.0%",
            y_title="customers lost (% of start)", rows=(row["kpis:customer_churn_rate"],),
            header_row=header,
        )  # fmt: skip
    retention = tuple(
        row[f"kpis:{k}"] for k in ("net_revenue_retention", "gross_revenue_retention")
        if f"kpis:{k}" in row
    )  # fmt: skip
    if retention:
        add(
            kind="line", title="Net and gross revenue retention", y_format="0%",
            y_title="MRR kept (% of start)", rows=retention, header_row=header,
        )  # fmt: skip
    return specs


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _currency_format(currency: str) -> str:
    """An axis format in the workbook's currency: ``$#,##0``, ``#,##0 "CHF"``."""
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    if symbol:
        return f'"{symbol}"#,##0;-"{symbol}"#,##0'
    return f'#,##0 "{currency}"' if currency else "#,##0"


def _pixels(width: float) -> float:
    return math.trunc(width * 7 + 5)


def _column_at(sheet: Sheet, px: float) -> int:
    """The first column whose left edge is at least ``px`` pixels from the sheet's."""
    left, col = 0.0, 1
    while left < px:
        left += _pixels(sheet.widths.get(col, 8.43))
        col += 1
    return col


def rows_per_page(sheet: Sheet) -> int:
    """How many 15-point rows fit on a landscape page once the sheet (its columns and its
    charts) is scaled to one page wide; an estimate on the safe side."""
    px = sum(_pixels(sheet.widths.get(c, 8.43)) for c in range(1, max(sheet.width, 1) + 1))
    if sheet.charts:
        right = _column_at(sheet, CHART_WIDTH_CM / 2.54 * 96 + 24)
        left = sum(_pixels(sheet.widths.get(c, 8.43)) for c in range(1, right))
        px = max(px, left + CHART_WIDTH_CM / 2.54 * 96)
    scale = min(1.0, PRINT_WIDTH_PT / (px * 0.75))
    return max(int(PRINT_HEIGHT_PT * SAFETY / (ROW_HEIGHT_PT * scale)), CHART_ROWS + 2)


def page_breaks(blocks: list[Block], per_page: int) -> list[int]:
    """Rows after which a page ends: before a block that does not fit on what is left of
    the page, and inside a block only when it is longer than a page."""
    breaks: list[int] = []
    used = 0
    for block in blocks:
        n = len(block.rows)
        if used and used + block.gap_before + n > per_page:
            breaks.append(block.first - 1)
            used = 0
        elif used:
            used += block.gap_before
        start = block.first
        while used + n > per_page:  # a block longer than a page: break where it is full
            take = per_page - used
            breaks.append(start + take - 1)
            start, n, used = start + take, n - take, 0
        used += n
    return breaks


__all__ = ["EXTRA_BLOCKS", "Block", "Layout", "blocks", "charts", "page_breaks", "report_sheet"]
