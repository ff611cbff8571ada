"""Write test workbooks: input sheets holding Excel Tables, as users keep them."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import Table


def write_tables(path: Path, tables: dict[str, pd.DataFrame], settings: dict | None = None) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, frame in tables.items():
        ws = wb.create_sheet(name)
        ws.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            ws.append(
                [None if (isinstance(v, float) and v != v) or v is pd.NaT else v for v in row]
            )
        ref = f"A1:{get_column_letter(len(frame.columns))}{max(len(frame), 1) + 1}"
        ws.add_table(Table(displayName=name, ref=ref))
    if settings:
        ws = wb.create_sheet("Settings")
        for i, (key, value) in enumerate(settings.items(), 1):
            ws.cell(i, 1, key)
            ws.cell(i, 2, value)
            wb.defined_names[key] = DefinedName(key, attr_text=f"Settings!$B${i}")
    wb.save(path)
    return path


def kpi_table(rows: list[list]) -> tuple[list[str], dict[str, list]]:  # type: ignore[type-arg]
    """The Report's KPI table from its rows (as calamine or a grid gives them): the row
    headed ``KPI | unit | periods... | id`` and below it, until a blank title, each KPI's
    values by its id (the table's last column)."""
    at = next(i for i, r in enumerate(rows) if list(r[:2]) == ["KPI", "unit"])
    header = list(rows[at])
    end = header.index("id")
    periods = [str(p) for p in header[2:end]]
    kpis = {}
    for row in rows[at + 1 :]:
        if len(row) <= end or not isinstance(row[0], str) or not row[0] or not row[end]:
            break
        kpis[row[end]] = [None if v in ("", None) else float(v) for v in row[2:end]]
    return periods, kpis
