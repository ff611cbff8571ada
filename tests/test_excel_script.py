"""The Excel button: the Lite/Server script run through xlwings' own dispatch
(``custom_scripts_call``) on a remote Book built from an Office.js-shaped payload, and
classic xlwings' "Run main" file written by the template."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xlwings as xw
from xlwings.server import custom_scripts_call

import cxkpi_xl.excel as excel
from cxkpi_xl.engine import compute
from cxkpi_xl.layout import REPORT_HEADER, REPORT_SHEET
from cxkpi_xl.reader import read
from cxkpi_xl.sample import generate
from cxkpi_xl.schema import TABLES

from .workbooks import kpi_table

EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def _office_value(v: Any) -> Any:
    """A cell value as Office.js sends it: dates as serial numbers, blanks as ""."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return (pd.Timestamp(v) - EXCEL_EPOCH).total_seconds() / 86400
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def payload(tables: dict[str, pd.DataFrame], extra_sheets: dict[str, list[list[Any]]]) -> dict:
    sheets = []
    for name, frame in {**tables}.items():
        values = [list(frame.columns)] + [
            [_office_value(v) for v in row] for row in frame.itertuples(index=False)
        ]
        last = f"{chr(64 + len(frame.columns))}{len(values)}"
        sheets.append(
            {
                "name": name,
                "values": values,
                "pictures": [],
                "tables": [
                    {
                        "name": name,
                        "range_address": f"A1:{last}",
                        "header_row_range_address": f"A1:{chr(64 + len(frame.columns))}1",
                        "data_body_range_address": f"A2:{last}",
                        "total_row_range_address": None,
                        "show_headers": True,
                        "show_totals": False,
                        "table_style": "TableStyleMedium2",
                        "show_autofilter": True,
                    }
                ],
            }
        )
    for name, values in extra_sheets.items():
        sheets.append({"name": name, "values": values, "pictures": [], "tables": []})
    return {
        "client": "Office.js",
        "version": xw.__version__,
        "book": {"name": "cx.xlsx", "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": sheets,
    }


def run_script(book: Any) -> None:
    asyncio.run(custom_scripts_call(excel, "cx_refresh", typehint_to_value={xw.Book: book}))


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    t = generate("tiny", seed=5)
    return {k: v for k, v in t.items() if k in {x.name for x in TABLES} and k != "HealthWeights"}


def _set_values(actions: list[dict], sheet_position: int) -> list[list[Any]]:
    """The values the actions write into a sheet, as a grid from A1."""
    cells: dict[tuple[int, int], Any] = {}
    for a in actions:
        if a["func"] == "setValues" and a["sheet_position"] == sheet_position:
            for i, row in enumerate(a["values"]):
                for j, v in enumerate(row):
                    cells[(a["start_row"] + i, a["start_column"] + j)] = v
    rows = max(r for r, _ in cells) + 1
    cols = max(c for _, c in cells) + 1
    return [[cells.get((r, c)) for c in range(cols)] for r in range(rows)]


def test_script_writes_the_report_values_through_the_remote_book(tables):
    book = xw.Book(json=payload(tables, {"Start here": [["cxkpi-xl"]]}))
    run_script(book)
    actions = book.json()["actions"]
    added = [a["args"] for a in actions if a["func"] == "addSheet"]
    report_position = len(tables) + 1  # 0-based: the sheets, Start here, then Report
    # Report and Data Issues, after the last sheet: no existing sheet moves
    assert added == [[report_position, REPORT_SHEET], [report_position + 1, "Data Issues"]]
    grid = _set_values(actions, report_position)
    expected = compute(read(dict(tables)))
    assert tuple(grid[0][:2]) == REPORT_HEADER
    periods, by_id = kpi_table(grid)
    assert periods == expected.periods
    for kpi_id, values in expected.kpis.items():
        got = by_id[kpi_id]
        for g, e in zip(got, values, strict=True):
            if math.isnan(e):
                assert g in (None, ""), kpi_id
            else:
                assert g == pytest.approx(e, rel=1e-12), kpi_id
    formats = [a for a in actions if a["func"] == "setNumberFormat"]
    assert any(a["args"] == ["0.0%"] for a in formats)
    assert any(a["func"] == "addChart" for a in actions)


def test_script_keeps_formula_like_text_as_text(tables):
    t = {k: v.copy() for k, v in tables.items()}
    t["Customers"].loc[t["Customers"].index[:2], "segment"] = '=HYPERLINK("x","y")'
    book = xw.Book(json=payload(t, {}))
    run_script(book)
    values = [
        v
        for a in book.json()["actions"]
        if a["func"] == "setValues"
        for row in a["values"]
        for v in row
        if isinstance(v, str)
    ]
    assert '\'=HYPERLINK("x","y")' in values
    assert not any(v.startswith("=") for v in values)


def test_script_refuses_a_users_own_report_sheet(tables):
    book = xw.Book(json=payload(tables, {REPORT_SHEET: [["My report", "Q3"]]}))
    with pytest.raises(xw.XlwingsError, match="its own sheet named 'Report'"):
        run_script(book)
    assert not [a for a in book.json()["actions"] if a["func"] in ("setValues", "sheetClear")]


def test_template_writes_the_run_main_file_for_classic_xlwings(tmp_path, tables, monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from cxkpi_xl.cli import main

    out = CliRunner().invoke(main, ["template", str(tmp_path / "board_pack.xlsx")])
    assert out.exit_code == 0, out.output
    runner = tmp_path / "board_pack.py"
    assert "Run main" in out.output and runner.exists()
    spec = importlib.util.spec_from_file_location("board_pack", runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is excel.main
    # "Run main" calls main(), which refreshes the calling workbook through its Book.
    book = xw.Book(json=payload(tables, {}))
    monkeypatch.setattr(xw.Book, "caller", staticmethod(lambda: book))
    module.main()
    funcs = [a["func"] for a in book.json()["actions"]]
    assert funcs.count("addSheet") == 2 and "setValues" in funcs


def test_the_excel_modules_import_with_numpy_pandas_and_xlwings_alone():
    """xlwings Lite runs in Pyodide: the script and the functions must import without
    openpyxl, calamine, scipy, click, rich or defusedxml."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('openpyxl', 'python_calamine', 'scipy', 'click',"
        " 'rich', 'defusedxml'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cxkpi_xl, cxkpi_xl.udfs, cxkpi_xl.excel, cxkpi_xl.engine, cxkpi_xl.layout\n"
        "print('imported')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
