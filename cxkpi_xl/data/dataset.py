"""What every source produces: a :class:`Dataset` of validated tables with its settings,
and the data problems found on the way, each an :class:`Issue` (a row of the Data Issues
sheet). The reader of workbooks and CSV folders makes one; so will importers of other
sources. The report shows Issues without depending on how they were read."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .schema import Settings


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


@dataclass
class Dataset:
    """Validated input tables (normalised types, one ``_row`` column each), the resolved
    settings and every data problem found."""

    tables: dict[str, pd.DataFrame]
    settings: Settings
    issues: list[Issue] = field(default_factory=list)
    source: str = ""

    def table(self, name: str) -> pd.DataFrame:
        return self.tables[name]
