"""Build the template workbook: input Tables, Settings, KPI Summary, Definitions.

Everything is derived from the two registries: the input sheets, their Tables, formats
and validations from :mod:`cxkpi_xl.schema`; the Definitions sheet and the Summary's
titles, units and number formats from :mod:`cxkpi_xl.catalogue`; the Summary's formulas
from :mod:`cxkpi_xl.workbook.formulas`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from cxkpi_xl.catalogue import BY_ID, CATALOGUE, excel_signature
from cxkpi_xl.package import replace_atomically
from cxkpi_xl.sample import is_formula_like
from cxkpi_xl.schema import (
    DATE,
    ID,
    MONTH,
    NUMBER,
    SETTINGS,
    SETTINGS_SHEET,
    TABLES,
    TEXT,
    YESNO,
    Column,
    Table,
)

from .button import ButtonError, add_button
from .formulas import CALC, CALC_COLUMNS, CALC_SHEET, HELPER_NAMES, SUMMARY

SUMMARY_SHEET = "KPI Summary"
DEFINITIONS_SHEET = "Definitions"
START_SHEET = "Start here"
CONF_SHEET = "xlwings.conf"

DATE_HELPERS = frozenset(
    {"shown_month", "period_start", "period_end", "next_start", "prev_start", "prev_end",
     "first_mrr_month"}
)  # fmt: skip
"""The Calc sheet's helper cells that hold dates."""

VALIDATION_ROWS = 20_000
"""Validations and input formats reach this far below the header, for rows users add."""
CALC_MIN_ROWS = 2_000
"""The Calc helper covers at least this many customers (more with sample data)."""

NAVY = "1F3864"
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
INPUT_FONT = Font(color="1F3864")
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor=NAVY)
TITLE_FONT = Font(bold=True, size=16, color=NAVY)
NOTE_FONT = Font(italic=True, color="595959")
THIN = Side(style="thin", color="BFBFBF")
DATE_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = "mmm yyyy"

WIDTHS = {ID: 14, TEXT: 22, DATE: 13, MONTH: 12, NUMBER: 12, YESNO: 12}
FORMATS = {DATE: DATE_FORMAT, MONTH: DATE_FORMAT, NUMBER: "#,##0.00", ID: "@", TEXT: "@"}
WHOLE_NUMBER_COLUMNS = {"contacts", "visitors", "conversions", "quantity"}


class TemplateError(Exception):
    """The template cannot be written; the message is one line for the user."""


def _validation(table: Table, column: Column, letter: str) -> DataValidation | None:
    """The data validation of one input column, with its input and error messages."""
    first = f"{letter}2"
    if column.type in (DATE, MONTH):
        dv = DataValidation(type="date", operator="greaterThan", formula1="DATE(1900,1,1)")
        prompt = "A date, e.g. 2026-01-31" + (
            " (any day of the month)" if column.type == MONTH else ""
        )
        error = "Enter a date (YYYY-MM-DD)."
    elif column.type == YESNO:
        dv = DataValidation(type="list", formula1='"Yes,No"')
        prompt, error = "Yes or No", "Choose Yes or No."
    elif column.choices:
        dv = DataValidation(type="list", formula1=f'"{",".join(column.choices)}"')
        prompt, error = "One of " + ", ".join(column.choices), "Choose a value from the list."
    elif table.name == "Surveys" and column.name == "score":
        survey = f"{get_column_letter(_index(table, 'survey'))}2"
        s = first
        formula = (
            f'AND(ISNUMBER({s}),{s}=INT({s}),IF({survey}="NPS",AND({s}>=0,{s}<=10),'
            f'IF({survey}="CSAT",AND({s}>=1,{s}<=csat_scale),IF({survey}="CES",'
            f"AND({s}>=1,{s}<=ces_scale),AND({s}>=1,{s}<=5)))))"
        )
        dv = DataValidation(type="custom", formula1=formula)
        prompt = "NPS 0-10, CSAT 1-csat_scale, CES 1-ces_scale, STAR 1-5 (whole numbers)"
        error = "The score is outside its survey's scale (see Settings)."
    elif table.name == "Health" and column.name == "score":
        dv = DataValidation(type="decimal", operator="between", formula1="0", formula2="100")
        prompt, error = "A score from 0 to 100", "Health scores run from 0 to 100."
    elif column.type == NUMBER and column.low is not None:
        kind = "whole" if column.name in WHOLE_NUMBER_COLUMNS else "decimal"
        dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1="0")
        prompt = "A number of 0 or more" if kind == "decimal" else "A whole number of 0 or more"
        error = "Negative amounts and counts are not allowed."
    else:
        return None
    dv.allow_blank = True
    dv.showInputMessage = dv.showErrorMessage = True
    dv.promptTitle = column.name[:32]
    dv.prompt = f"{column.description}. {prompt}"[:255]
    dv.errorTitle = "Not valid here"
    dv.error = error
    dv.errorStyle = "stop"
    dv.add(f"{first}:{letter}{VALIDATION_ROWS + 1}")
    return dv


def _index(table: Table, name: str) -> int:
    return [c.name for c in table.columns].index(name) + 1


def _literal(cell: Any, value: Any) -> None:
    """Write a value; text is always text, even when it starts with = + - @."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    elif isinstance(value, np.generic):
        value = value.item()
    cell.value = value
    if isinstance(value, str) and is_formula_like(value):
        cell.data_type = "s"
        cell.quotePrefix = True


def _excel_table(
    ws: Worksheet, name: str, columns: list[str], rows: int, style: str = "TableStyleMedium2"
) -> None:
    ref = f"A1:{get_column_letter(len(columns))}{max(rows, 1) + 1}"
    t = ExcelTable(displayName=name, ref=ref)
    t.tableStyleInfo = TableStyleInfo(name=style, showRowStripes=True)
    ws.add_table(t)


def _header(ws: Worksheet, columns: list[str], row: int = 1, col: int = 1) -> None:
    for i, name in enumerate(columns):
        c = ws.cell(row, col + i, name)
        c.font, c.fill = HEADER_FONT, HEADER_FILL
        c.alignment = Alignment(vertical="center")


def _print_setup(ws: Worksheet, title_rows: str | None = "1:1") -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    if title_rows:
        ws.print_title_rows = title_rows


def _input_sheet(wb: Workbook, table: Table, frame: pd.DataFrame | None) -> None:
    ws = wb.create_sheet(table.name)
    columns = [c.name for c in table.columns]
    _header(ws, columns)
    n = 0 if frame is None else len(frame)
    if frame is not None and n:
        data = frame.reindex(columns=columns)
        for r, row in enumerate(
            data.astype(object).where(data.notna(), None).itertuples(index=False), 2
        ):
            for c, v in enumerate(row, 1):
                _literal(ws.cell(r, c), v)
    for c, column in enumerate(table.columns, 1):
        letter = get_column_letter(c)
        ws.column_dimensions[letter].width = max(WIDTHS[column.type], len(column.name) + 3)
        fmt = "0" if column.name in WHOLE_NUMBER_COLUMNS else FORMATS.get(column.type, "General")
        # The Table rows carry the input style; rows added later inherit it from the Table.
        for r in range(2, max(n, 1) + 2):
            cell = ws.cell(r, c)
            cell.number_format = fmt
            cell.fill, cell.font = INPUT_FILL, INPUT_FONT
        dv = _validation(table, column, letter)
        if dv is not None:
            ws.add_data_validation(dv)
    _excel_table(ws, table.name, columns, n)
    ws.freeze_panes = "A2"
    _print_setup(ws)


def _name(wb: Workbook, name: str, sheet: str, cell: str) -> None:
    column = "".join(ch for ch in cell if ch.isalpha())
    row = "".join(ch for ch in cell if ch.isdigit())
    ref = f"{quote_sheetname(sheet)}!${column}${row}"
    wb.defined_names[name] = DefinedName(name, attr_text=ref)


def _settings_sheet(wb: Workbook, weights: pd.DataFrame | None) -> None:
    ws = wb.create_sheet(SETTINGS_SHEET)
    weights_table = next(t for t in TABLES if t.name == "HealthWeights")
    # HealthWeights is a Table at A1 (the reader finds it by name); settings sit to its right.
    wcols = [c.name for c in weights_table.columns]
    _header(ws, wcols)
    rows = 0 if weights is None else len(weights)
    if weights is not None:
        for r, row in enumerate(weights[wcols].itertuples(index=False), 2):
            for c, v in enumerate(row, 1):
                _literal(ws.cell(r, c), v)
    for r in range(2, max(rows, 1) + 2):
        for c in (1, 2):
            ws.cell(r, c).fill, ws.cell(r, c).font = INPUT_FILL, INPUT_FONT
    _excel_table(ws, "HealthWeights", wcols, rows, "TableStyleLight9")
    dv = DataValidation(
        type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True
    )
    dv.error, dv.errorTitle, dv.showErrorMessage = "Weights are 0 or more.", "Not valid here", True
    dv.add("B2:B200")
    ws.add_data_validation(dv)
    _header(ws, ["setting", "value", "meaning"], row=1, col=4)
    for i, setting in enumerate(SETTINGS, 2):
        ws.cell(i, 4, setting.name).font = Font(bold=True)
        value = ws.cell(i, 5, setting.default)
        value.fill, value.font = INPUT_FILL, INPUT_FONT
        if setting.kind == "month":
            value.number_format = MONTH_FORMAT
        ws.cell(i, 6, setting.description).font = NOTE_FONT
        _name(wb, setting.name, SETTINGS_SHEET, f"E{i}")
        if setting.choices and not any("," in c for c in setting.choices):
            # (an inline list cannot hold a comma: decimal_separator gets no list)
            dv = DataValidation(
                type="list", formula1=f'"{",".join(setting.choices)}"', allow_blank=True
            )
        elif setting.kind == "month":
            dv = DataValidation(
                type="date", operator="greaterThan", formula1="DATE(1900,1,1)", allow_blank=True
            )
        elif setting.kind == "number":
            dv = DataValidation(
                type="decimal",
                operator="between",
                formula1=str(setting.low),
                formula2=str(setting.high),
                allow_blank=True,
            )
        else:
            continue
        dv.showErrorMessage = dv.showInputMessage = True
        dv.prompt, dv.errorTitle, dv.error = (
            setting.description[:255],
            "Not valid here",
            "See the meaning in column F.",
        )
        dv.add(f"E{i}")
        ws.add_data_validation(dv)
    for letter, width in (("A", 14), ("B", 10), ("C", 3), ("D", 20), ("E", 14), ("F", 90)):
        ws.column_dimensions[letter].width = width
    _print_setup(ws)


def _calc_sheet(wb: Workbook, customers: int) -> None:
    ws = wb.create_sheet(CALC_SHEET)
    rows = max(CALC_MIN_ROWS, customers + 500)
    # The Table starts at A1 so structured references stay plain; the named helper cells
    # live to its right.
    columns = [name for name, _ in CALC_COLUMNS]
    _header(ws, columns)
    for r in range(2, rows + 2):
        for c, (_, formula) in enumerate(CALC_COLUMNS, 1):
            text = formula.format(r=r, n=r - 1)
            ws.cell(r, c, int(text) if text.isdigit() else "=" + text)
        ws.cell(r, 3).number_format = ws.cell(r, 4).number_format = DATE_FORMAT
    _excel_table(ws, CALC, columns, rows, "TableStyleLight1")
    col = len(columns) + 2
    _header(ws, ["helper", "value"], row=1, col=col)
    for i, (name, formula) in enumerate(HELPER_NAMES, 2):
        ws.cell(i, col, name)
        cell = ws.cell(i, col + 1, "=" + formula)
        if name in DATE_HELPERS:
            cell.number_format = DATE_FORMAT
        _name(wb, name, CALC_SHEET, f"{get_column_letter(col + 1)}{i}")
    ws.cell(
        len(HELPER_NAMES) + 3,
        col,
        f"This sheet covers the first {rows:,} customers of the Customers Table.",
    ).font = NOTE_FONT
    _name(wb, "calc_rows", CALC_SHEET, f"{get_column_letter(col + 1)}{len(HELPER_NAMES) + 2}")
    ws.cell(len(HELPER_NAMES) + 2, col, "calc_rows")
    ws.cell(len(HELPER_NAMES) + 2, col + 1, rows)
    ws.sheet_state = "hidden"


def _summary_sheet(wb: Workbook, formulas: str) -> None:
    ws = wb.create_sheet(SUMMARY_SHEET, 0)
    ws["A1"] = "Customer experience KPIs"
    ws["A1"].font = TITLE_FONT
    ws["A3"] = "Month"
    ws["A3"].font = Font(bold=True)
    period = ws["B3"]
    period.fill, period.font, period.number_format = INPUT_FILL, INPUT_FONT, MONTH_FORMAT
    _name(wb, "summary_period", SUMMARY_SHEET, "B3")
    dv = DataValidation(
        type="date", operator="greaterThan", formula1="DATE(1900,1,1)", allow_blank=True
    )
    dv.showInputMessage = True
    dv.prompt = "Any date in the month to show; leave blank for the latest month with data."
    dv.add("B3")
    ws.add_data_validation(dv)
    ws["C3"] = (
        '=IF(summary_period="",IF(has_month=1,"latest month with data: "'
        '&TEXT(shown_month,"mmm yyyy"),"no data yet: fill the input Tables"),"")'
    )
    ws["C3"].font = NOTE_FONT
    ws["A4"] = (
        '=IF(COUNTA(Customers[customer_id])>calc_rows,"Warning: more customers than the Calc '
        'sheet covers; run cxkpi template again to extend it.",IF(mrr_outside_calc<>0,'
        '"Some MRR is of customers not in the Customers Table: movements, churn and ARPU '
        'leave it out.",""))'
    )
    ws["A4"].font = Font(bold=True, color="C00000")
    ws["A5"] = (
        '=IF(unreadable_cells>0,unreadable_cells&IF(unreadable_cells=1," cell holds"," cells '
        'hold")&" text where a number or date belongs: the Summary leaves those rows out. '
        'Refresh, then see Data Issues.","")'
    )
    ws["A5"].font = Font(bold=True, color="C00000")
    _header(ws, ["KPI", "value", "unit", "formula", "name"], row=6)
    for i, f in enumerate(SUMMARY, 7):
        kpi = BY_ID[f.kpi_id]
        ws.cell(i, 1, kpi.title)
        cell = ws.cell(i, 2, "=" + (f.native if formulas == "native" else f.udf))
        cell.number_format = kpi.number_format
        cell.font = Font(bold=True)
        cell.border = Border(bottom=THIN)
        ws.cell(i, 3, kpi.unit)
        ws.cell(i, 4, kpi.formula).font = NOTE_FONT
        ws.cell(i, 5, f"kpi_{kpi.id}").font = NOTE_FONT
        _name(wb, f"kpi_{kpi.id}", SUMMARY_SHEET, f"B{i}")
    note = len(SUMMARY) + 8
    ws.cell(
        note,
        1,
        "Live formulas over the input Tables: they work without Python. "
        "Refresh (see Start here) writes every KPI for every period to the Report sheet.",
    ).font = NOTE_FONT
    for letter, width in (("A", 36), ("B", 16), ("C", 10), ("D", 70), ("E", 30)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A7"
    _print_setup(ws, "6:6")


def _definitions_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(DEFINITIONS_SHEET)
    columns = ["id", "KPI", "unit", "family", "formula", "source", "Excel function"]
    _header(ws, columns)
    for r, k in enumerate(CATALOGUE, 2):
        for c, v in enumerate(
            (
                k.id,
                k.title,
                k.unit,
                k.family,
                k.formula,
                k.source,
                excel_signature(k) if k.excel_name else "",
            ),
            1,
        ):
            ws.cell(r, c, v).alignment = Alignment(wrap_text=c in (5, 6), vertical="top")
    _excel_table(ws, "Definitions", columns, len(CATALOGUE), "TableStyleLight9")
    for letter, width in zip("ABCDEFG", (26, 34, 9, 11, 60, 34, 46), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    _print_setup(ws)


START_TEXT = (
    ("How to use this workbook", TITLE_FONT),
    ("1. Fill the input Tables: Customers, MRR, Orders, Surveys, Tickets, Usage, Health, "
     "Funnel, Costs. Leave out (or delete) the sheets you do not use.", None),
    ("   Pale yellow cells are inputs; hover over a column for what it takes. Paste values "
     "below a Table and it grows.", None),
    ("2. Check the Settings: granularity, churn convention, survey scales, health bands, "
     "gross margin, and the health measure weights.", None),
    ("3. Read the KPI Summary: live formulas for the month in its Month cell (blank: the "
     "latest month). Every value has a name, e.g. =kpi_nps.", None),
    ("4. For every KPI of every month, quarter or year, with breakdowns and charts, click "
     "Refresh KPIs below (the .xlsm runs Python through xlwings with the .py file of this "
     "workbook's name beside it; in xlwings Lite the button runs the cx_refresh script), or "
     "run 'cxkpi refresh <this file>' on the command line. It writes the Report and Data "
     "Issues sheets and changes nothing else.", None),
    ("5. The Definitions sheet says how each KPI is computed. Excel functions such as "
     "=CX_NPS(Surveys[score]) work once xlwings is set up (see the README).", None),
)  # fmt: skip


def _start_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(START_SHEET, 0)
    for r, (text, font) in enumerate(START_TEXT, 1):
        cell = ws.cell(r * 2 - 1 if r > 1 else 1, 1, text)
        if font:
            cell.font = font
    ws.column_dimensions["A"].width = 120
    _print_setup(ws, None)


def _conf_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(CONF_SHEET)
    ws["A1"], ws["B1"] = "UDF Modules", "cxkpi_xl.udfs"
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 20


def build(
    path: str | Path,
    tables: dict[str, pd.DataFrame] | None = None,
    *,
    formulas: str = "native",
    force: bool = False,
) -> Path:
    """Write the template workbook to ``path`` (optionally filled with ``tables``).

    ``formulas="udf"`` writes the CX_ Excel functions in the KPI Summary instead of
    native formulas. Refuses to overwrite an existing file unless ``force``; writes a
    temporary file in the same folder first, so a failed run leaves nothing half-written.
    """
    path = Path(path)
    if formulas not in ("native", "udf"):
        raise TemplateError(f'formulas must be "native" or "udf", not {formulas!r}')
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise TemplateError(
            f"{path.name}: the template is an .xlsx file (or .xlsm, with xlwings' VBA)"
        )
    macro_enabled = path.suffix.lower() == ".xlsm"
    if path.exists() and not force:
        raise TemplateError(f"{path} exists; use --force to overwrite it")
    if not path.parent.exists():
        raise TemplateError(f"{path.parent} does not exist")
    tables = tables or {}
    wb = Workbook()
    wb.remove(wb.active)
    for table in TABLES:
        if table.name != "HealthWeights":
            _input_sheet(wb, table, tables.get(table.name))
    _settings_sheet(wb, tables.get("HealthWeights"))
    customers = len(tables.get("Customers", ()))
    _calc_sheet(wb, customers)
    _summary_sheet(wb, formulas)
    _definitions_sheet(wb)
    _start_sheet(wb)
    _conf_sheet(wb)
    wb.active = 0
    wb.calculation.fullCalcOnLoad = True
    if macro_enabled:  # the code names the VBA project's document modules go with
        wb.code_name = "ThisWorkbook"
        for i, ws in enumerate(wb.worksheets, 1):
            ws.sheet_properties.codeName = f"Sheet{i}"
    saved = io.BytesIO()
    wb.save(saved)
    try:
        data = add_button(saved.getvalue(), START_SHEET, macro_enabled=macro_enabled)
    except ButtonError as e:
        raise TemplateError(str(e)) from None
    # written whole next to it and moved into place, with the mode the umask gives
    # (a symbolic link stays a link to the new file)
    replace_atomically(path, lambda f: f.write(data))
    return path


__all__ = ["SUMMARY_SHEET", "TemplateError", "build"]
