"""A data problem found while reading a source: an :class:`Issue`, one row of the Data
Issues sheet. Every source reports its problems as Issues (in its
:class:`~cxkpi_xl.data.reader.Dataset`); the report shows them without depending on how
they were read."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Issue:
    """One data problem, as a row of the Data Issues sheet."""

    sheet: str
    row: int | None
    column: str
    value: Any
    problem: str
    action: str

    def as_row(self) -> list[Any]:
        return [self.sheet, self.row, self.column, _show(self.value), self.problem, self.action]

    def as_json(self) -> dict[str, Any]:
        """``{"table", "row", "column", "value", "problem", "action"}``, JSON-native."""
        return issue_json(self)


ISSUE_COLUMNS = ("sheet", "row", "column", "value", "problem", "action")


def _show(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value).date())
    return value if isinstance(value, int | float | str) else str(value)


def json_value(v: Any) -> str | int | float | bool | None:
    """A data value as JSON holds it: numbers as numbers (11, not 11.0, for a whole
    number), dates as ISO text, a blank as null, anything else as text."""
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, str) and not v.strip():
        return None  # a blank cell, as a CSV or calamine hands it over
    if isinstance(v, bool | str | int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        ts = pd.Timestamp(v)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    return str(v)


def issue_json(issue: Issue) -> dict[str, Any]:
    """One data issue as ``{"table", "row", "column", "value", "problem", "action"}``."""
    return {
        "table": issue.sheet,
        "row": None if issue.row is None else int(issue.row),
        "column": issue.column,
        "value": json_value(issue.value),
        "problem": issue.problem,
        "action": issue.action,
    }
