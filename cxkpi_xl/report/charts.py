"""The Report's native charts: what each one shows (:class:`Chart`, cells only, made by the
layout) and their drawing and chart parts (:func:`chart_parts`, rendered by openpyxl
and written by the package writer).

Three kinds, each with axis titles and its axis number format:

- ``movements``: MRR movements as stacked columns, contraction and churn below zero,
  one colour per movement, and the net new MRR as a line over them;
- ``band``: a line (NPS) inside its margin-of-error band (a stacked area of the lower
  bound, not filled, and the band's width);
- ``line``: one or more lines (customer churn; NRR and GRR).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

MOVEMENT_COLOURS = {
    "mrr_new": "2E7D32",  # green
    "mrr_reactivation": "00897B",  # teal
    "mrr_expansion": "9CCC65",  # light green
    "mrr_contraction": "FB8C00",  # orange
    "mrr_churn": "C62828",  # red
}
LINE_COLOURS = ("1F4E79", "C62828", "7B1FA2", "455A64")
BAND_FILL = "BDD7EE"
CHART_WIDTH_CM = 16.0
CHART_HEIGHT_CM = 7.5
CHART_ROWS = 16
"""Rows a chart takes on the sheet (7.5 cm at 15-point rows is 14.2 rows) and a gap."""


@dataclass(frozen=True)
class Chart:
    """A native chart over cells of the Report. ``rows`` are the 1-based rows of its
    series (the series name in column ``name_col``, values from column ``first_col`` for
    ``periods`` columns), ``lines`` rows drawn as lines over them, the categories are the
    period labels of row ``header_row``; ``anchor`` is the top-left cell."""

    kind: str  # "movements", "band" or "line"
    title: str
    rows: tuple[int, ...]
    periods: int
    anchor: str
    y_format: str
    y_title: str
    x_title: str = "month"
    lines: tuple[int, ...] = ()
    first_col: int = 3
    name_col: int = 1
    header_row: int = 1
    colours: tuple[str, ...] = ()

    @property
    def all_rows(self) -> tuple[int, ...]:
        return (*self.rows, *self.lines)


def _style_axes(chart: Any, spec: Chart) -> None:
    chart.title = spec.title
    chart.height, chart.width = CHART_HEIGHT_CM, CHART_WIDTH_CM
    chart.y_axis.numFmt = spec.y_format
    chart.y_axis.title = spec.y_title
    chart.x_axis.title = spec.x_title
    chart.x_axis.tickLblPos = "low"  # period labels below the chart, not at zero
    chart.legend.position = "b"
    # openpyxl >= 3.1 hides axes unless told otherwise
    chart.x_axis.delete = False
    chart.y_axis.delete = False


def _add(chart: Any, ws: Any, spec: Chart, row: int) -> Any:
    from openpyxl.chart import Reference

    last = spec.first_col + spec.periods - 1
    values = Reference(ws, min_col=spec.first_col, max_col=last, min_row=row, max_row=row)
    chart.add_data(values, from_rows=True, titles_from_data=False)
    series = chart.series[-1]
    from openpyxl.chart.data_source import StrRef
    from openpyxl.chart.series import SeriesLabel

    name = f"'{ws.title}'!${_letter(spec.name_col)}${row}"
    series.tx = SeriesLabel(strRef=StrRef(name))
    return series


def _letter(col: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(col)


def _render(ws: Any, spec: Chart) -> Any:
    from openpyxl.chart import AreaChart, BarChart, LineChart, Reference

    cats = Reference(
        ws,
        min_col=spec.first_col,
        max_col=spec.first_col + spec.periods - 1,
        min_row=spec.header_row,
        max_row=spec.header_row,
    )
    over = LineChart()
    for i, row in enumerate(spec.lines):
        s = _add(over, ws, spec, row)
        s.smooth = False  # a trend is drawn point to point, not smoothed
        s.graphicalProperties.line.solidFill = ("212121", *LINE_COLOURS)[i % 5]
        s.graphicalProperties.line.width = 28575  # 2.25 pt
    if spec.kind == "movements":
        chart: Any = BarChart()
        chart.type, chart.grouping, chart.overlap, chart.gapWidth = "col", "stacked", 100, 60
        for i, row in enumerate(spec.rows):
            s = _add(chart, ws, spec, row)
            colour = spec.colours[i] if i < len(spec.colours) else LINE_COLOURS[i % 4]
            s.graphicalProperties.solidFill = colour
            s.graphicalProperties.line.solidFill = colour
    elif spec.kind == "band":
        chart = AreaChart()
        chart.grouping = "stacked"
        lower, width = spec.rows
        s = _add(chart, ws, spec, lower)
        s.graphicalProperties.noFill = True
        s.graphicalProperties.line.noFill = True
        s = _add(chart, ws, spec, width)
        s.graphicalProperties.solidFill = BAND_FILL
        s.graphicalProperties.line.noFill = True
    else:
        chart = LineChart()
        for i, row in enumerate(spec.rows):
            s = _add(chart, ws, spec, row)
            s.smooth = False
            s.graphicalProperties.line.solidFill = LINE_COLOURS[i % len(LINE_COLOURS)]
            s.graphicalProperties.line.width = 28575
    chart.set_categories(cats)
    if spec.lines:
        over.set_categories(cats)
        chart += over
    _style_axes(chart, spec)
    return chart


def chart_parts(sheet_name: str, charts: list[Chart]) -> tuple[bytes, list[bytes]]:
    """The drawing part and the chart parts of ``charts``, rendered by openpyxl."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet_name
    for spec in charts:
        ws.add_chart(_render(ws, spec), spec.anchor)
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(buf) as z:
        drawing = z.read("xl/drawings/drawing1.xml")
        charts_xml = [z.read(f"xl/charts/chart{i + 1}.xml") for i in range(len(charts))]
    return drawing, charts_xml


__all__ = ["CHART_ROWS", "MOVEMENT_COLOURS", "Chart", "chart_parts"]
