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


ISSUE_COLUMNS = ("sheet", "row", "column", "value", "problem", "action")


def _show(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value).date())
    return value if isinstance(value, int | float | str) else str(value)
