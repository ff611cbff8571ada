"""Refresh from a button in Excel: the same Report and Data Issues sheets as
``cxkpi refresh``, written through xlwings' Book API so Excel itself keeps the rest of
the workbook.

- xlwings Lite and xlwings Server: the script ``cx_refresh`` (``@xw.script``, bound to
  the Refresh KPIs shape ``[cxkpi_refresh]Start here!A14``, or the Run button of the task
  pane) and ``cx_refresh_report`` (the same shape in the Report's header). Import them in
  the Lite editor's main.py: ``from cxkpi_xl.excel import cx_refresh, cx_refresh_report``.
- classic xlwings (Windows, macOS): the Refresh KPIs shape of the ``.xlsm`` template runs
  xlwings' ``SampleCall`` macro, which imports the ``.py`` file named after the workbook
  (``cxkpi template`` writes it next to it) and runs its ``main()``; "Run main" in the
  xlwings ribbon does the same.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import xlwings as xw

from ..data.reader import Dataset, cell_index, read
from ..data.sample import is_formula_like
from ..data.schema import SETTINGS_BY_NAME, TABLE_SHEETS, TABLES
from ..engine import Report, compute
from ..report.board import report_sheet
from ..report.button import report_button, start_button
from ..report.layout import (
    FORMER_HEADERS,
    OWNED_HEADERS,
    REPORT_SHEET,
    Sheet,
    column_letter,
    issues_sheet,
    outcome,
    sheet_key,
    style_spec,
)

BUTTON = start_button(None).reference
"""The sheet button of the Lite/Server script: the shape named cxkpi_refresh on Start
here (``[cxkpi_refresh]Start here!A14``), which the template draws."""
REPORT_BUTTON = report_button(None).reference
"""The same button in the Report's header (``[cxkpi_refresh]Report!B1``), which every
refresh draws."""


def read_book(book: Any) -> Dataset:
    """The input Tables and settings of an open workbook (any xlwings Book)."""
    tables = {t.name.lower(): t for sheet in book.sheets for t in sheet.tables}
    sheets = {s.name.lower(): s for s in book.sheets}
    frames: dict[str, Any] = {}
    for table in TABLES:
        found = tables.get(table.name.lower())
        if found is not None and found.range is not None:
            values = found.range.options(ndim=2).value
        else:
            sheet = sheets.get(TABLE_SHEETS[table.name].lower())
            if sheet is None or table.name == "HealthWeights":
                continue
            values = sheet.used_range.options(ndim=2).value
        if not values or not values[0]:
            continue
        header = [str(h).strip() if h is not None else "" for h in values[0]]
        frames[table.name] = pd.DataFrame(values[1:], columns=header)
    settings = {}
    for name in book.names:
        key = name.name.split("!")[-1].lower()
        if key in SETTINGS_BY_NAME:
            try:
                settings[key] = name.refers_to_range.value
            except ValueError:  # a name that is not one cell
                continue
    frames["Settings"] = settings
    return read(frames)


def write_book(book: Any, report: Report) -> None:
    """Write the Report and Data Issues sheets into ``book``; other sheets are not
    touched. A sheet of that name that cxkpi did not write is refused (ValueError)."""
    targets = []
    for layout in (report_sheet(report), issues_sheet(report.issues)):
        # Excel's sheet names ignore case: a sheet REPORT is the Report
        by_key = {sheet_key(s.name): s for s in book.sheets}
        sheet = by_key.get(sheet_key(layout.name))
        if sheet is not None:
            known = (OWNED_HEADERS[layout.name], *FORMER_HEADERS.get(layout.name, ()))
            found = sheet.range((1, 1), (1, 2)).value
            if tuple(str(v or "") for v in found) not in {tuple(h[:2]) for h in known}:
                raise ValueError(
                    f"the workbook has its own sheet named {sheet.name!r} (not written by "
                    "cxkpi): rename it and refresh again"
                )
        targets.append((layout, sheet))
    for layout, sheet in targets:
        if sheet is not None:
            for chart in list(sheet.charts):
                chart.delete()
            sheet.clear()
        else:
            sheet = book.sheets.add(layout.name, after=book.sheets[-1])
        _write_sheet(sheet, layout)


def _cell_value(cell: tuple[Any, str] | None) -> Any:
    if cell is None:
        return None
    value, _ = cell
    if isinstance(value, str):
        # Excel takes a value that starts with = (+ - @) for a formula; the apostrophe
        # makes it text and is not part of the value.
        return "'" + value if is_formula_like(value) else value
    return value if math.isfinite(value) else None


def _write_sheet(sheet: Any, layout: Sheet) -> None:
    width = max(layout.width, 1)
    grid = [[_cell_value(c) for c in row] + [None] * (width - len(row)) for row in layout.rows]
    sheet["A1"].value = grid
    # number formats and bold, one call per run of equal styles in a row
    for r, row in enumerate(layout.rows, start=1):
        start = 0
        while start < len(row):
            style = row[start][1] if row[start] is not None else None
            end = start
            while end + 1 < len(row) and (row[end + 1][1] if row[end + 1] else None) == style:
                end += 1
            if style is not None and style != "text":
                rng = sheet.range((r, start + 1), (r, end + 1))
                if style.startswith("num:"):
                    rng.number_format = style_spec(style)["number_format"]
                else:
                    rng.font.bold = True
            start = end + 1
    for col, w in layout.widths.items():
        sheet.range(f"{column_letter(col)}:{column_letter(col)}").column_width = w
    for spec in layout.charts:
        # Office.js charts take one block of cells: the series' rows from their names to
        # their last charted period (the package writer draws the full charts).
        last = column_letter(spec.first_col + spec.periods - 1)
        first, final = min(spec.rows), max(spec.rows)
        left, top = _position(layout, spec.anchor)
        chart = sheet.charts.add(left, top, width=425, height=240)
        chart.chart_type = "column_stacked" if spec.kind == "movements" else "line"
        chart.set_source_data(sheet.range(f"{column_letter(spec.name_col)}{first}:{last}{final}"))


def _position(layout: Sheet, cell: str) -> tuple[float, float]:
    """The top-left of a cell in points, from the column widths and the default row
    height (Office.js cannot read positions synchronously)."""
    row, col = cell_index(cell)
    left = sum((layout.widths.get(c, 8.43) * 7 + 5) * 0.75 for c in range(1, col + 1))
    return left, row * 15.0


def refresh_book(book: Any) -> Report:
    """Read, compute and write: the whole refresh on an open workbook."""
    report = compute(read_book(book))
    write_book(book, report)
    return report


@xw.script(button=BUTTON, show_taskpane=True)
def cx_refresh(book: xw.Book) -> None:
    """Refresh the Report and Data Issues sheets (xlwings Lite and Server). Any failure is
    one line in the task pane, never a traceback."""
    report = _one_line_errors(refresh_book, book)
    print(f"cxkpi-xl refreshed {REPORT_SHEET}: {outcome(report)}")


@xw.script(button=REPORT_BUTTON, show_taskpane=True)
def cx_refresh_report(book: xw.Book) -> None:
    """The Report header's Refresh KPIs button: the same refresh as ``cx_refresh``."""
    report = _one_line_errors(refresh_book, book)
    print(f"cxkpi-xl refreshed {REPORT_SHEET}: {outcome(report)}")


def main() -> None:
    """Classic xlwings' "Run main": refresh the workbook that called."""
    _one_line_errors(refresh_book, xw.Book.caller())


def _one_line_errors(run: Any, book: Any) -> Report:
    """``run(book)``, any exception turned into an XlwingsError with one line."""
    from pathlib import Path

    from ..refresh import failure_reason

    try:
        return run(book)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, xw.XlwingsError):
        raise
    except BaseException as e:
        reason = failure_reason(e, Path(str(getattr(book, "name", "the workbook"))))
        raise xw.XlwingsError(reason.replace("nothing was changed", "not refreshed")) from None
