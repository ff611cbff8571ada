"""Excel functions for every catalogue KPI, for classic xlwings, xlwings Lite and Server.

The layer is thin: each ``CX_`` function takes Excel's values as they arrive (2-D lists
with blanks as None, a single cell as a bare value, dates as serial numbers), hands them
to the KPI function of the same catalogue entry, and turns the answer back into what
Excel shows: a number, a spilled table, or an Excel error. ``#DIV/0!`` means a zero
denominator (no responses, no customers at the start), ``#N/A`` a blank input, and bad
input raises :class:`xlwings.XlwingsError` with the reason (``#VALUE!`` with that message
in Lite and Server; the message in the cell in classic xlwings). No other exception
leaves this module.

The functions are generated from :data:`cxkpi_xl.catalogue.CATALOGUE`; the Python name
of each is its Excel name (``CX_NPS``), because classic xlwings registers the VBA function
under the Python name. Every argument is read with xlwings' ``raw`` converter: the
default converter costs about 70 microseconds a cell, and the KPI library checks the
values itself.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xlwings as xw

from cxkpi_xl.catalogue import ARGUMENTS, Kpi, excel_functions

DIV0 = "#DIV/0!"
NA = "#N/A"
NUM = "#NUM!"

_DESCRIPTION_LIMIT = 255  # what Excel's function wizard shows at most

SPILL_AS_ROW = frozenset({"CX_NPS_CHANGE"})
"""Functions whose named results spill as one row under a header row (a test result read
across), not as the label-value column of a breakdown."""


def _is_nan(v: Any) -> bool:
    return isinstance(v, float | np.floating) and math.isnan(v)


def _cell(value: Any, alternative: Any) -> Any:
    """One result value as Excel shows it; ``alternative`` is the same value computed
    with ``zero_division=0``, which tells a zero denominator from a blank input."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return DIV0 if alternative is not None and not _is_nan(alternative) else NA
        if math.isinf(value):
            return NUM
    return value


def _table(frame: pd.DataFrame) -> list[list[Any]]:
    """A table with its header row; blanks (NaN) are empty cells."""
    header = [frame.index.name or "", *(str(c) for c in frame.columns)]
    rows = [header]
    for name, values in zip(frame.index, frame.to_numpy(dtype=float), strict=True):
        rows.append([name, *(None if math.isnan(v) else _cell(float(v), None) for v in values)])
    return rows


def _to_excel(result: Any, alternative: Any) -> Any:
    """A KPI result as Excel values: a scalar, or a 2-D list that spills."""
    if isinstance(result, pd.DataFrame):
        return _table(result)
    if isinstance(result, dict):
        alt = alternative if isinstance(alternative, dict) else {}
        return [[key, _cell(v, alt.get(key))] for key, v in result.items()]
    if isinstance(result, np.ndarray):
        alt = np.asarray(alternative) if alternative is not None else None
        if result.ndim == 0:
            return _cell(float(result), None if alt is None else float(alt))
        rows = result.reshape(-1, 1) if result.ndim == 1 else result.reshape(result.shape[0], -1)
        alt_rows = np.full(rows.shape, np.nan) if alt is None else alt.reshape(rows.shape)
        return [
            [_cell(float(v), float(a)) for v, a in zip(row, alt_row, strict=True)]
            for row, alt_row in zip(rows, alt_rows, strict=True)
        ]
    return _cell(result, alternative)


def _has_nan(result: Any) -> bool:
    if isinstance(result, pd.DataFrame):
        return False  # blanks in a table are shown as empty cells
    if isinstance(result, dict):
        return any(_is_nan(v) for v in result.values())
    if isinstance(result, np.ndarray):
        return bool(np.isnan(result).any())
    return _is_nan(result)


def evaluate(kpi: Kpi, args: tuple[Any, ...]) -> Any:
    """Call a KPI function with Excel's values and return what Excel should show."""
    function = kpi.function
    assert function is not None
    try:
        result = function(*args)
        alternative = function(*args, zero_division=0.0) if _has_nan(result) else None
    except ZeroDivisionError:
        return DIV0
    except (ValueError, TypeError, OverflowError) as e:
        raise xw.XlwingsError(f"{kpi.excel_name}: {e}") from None
    except Exception as e:  # never a traceback in a cell: say what happened
        raise xw.XlwingsError(f"{kpi.excel_name}: unexpected {type(e).__name__}: {e}") from None
    try:
        shown = _to_excel(result, alternative)
        if kpi.excel_name in SPILL_AS_ROW and isinstance(result, dict):
            shown = [list(row) for row in zip(*shown, strict=True)]
        return shown
    except Exception as e:
        raise xw.XlwingsError(f"{kpi.excel_name}: could not show the result: {e}") from None


def _description(kpi: Kpi) -> str:
    text = f"{kpi.description} Formula: {kpi.formula}."
    return text if len(text) <= _DESCRIPTION_LIMIT else text[: _DESCRIPTION_LIMIT - 3] + "..."


def _make_udf(kpi: Kpi) -> Callable[..., Any]:
    """The Excel function of one catalogue entry, registered for the running runtime."""
    assert kpi.function is not None and kpi.excel_name is not None
    parameters = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in inspect.signature(kpi.function).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]

    def udf(*args: Any) -> Any:
        return evaluate(kpi, args)

    udf.__name__ = udf.__qualname__ = kpi.excel_name
    udf.__doc__ = _description(kpi)
    udf.__module__ = __name__
    udf.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    udf.__annotations__ = {}
    for p in parameters:
        udf = xw.arg(p.name, "raw", doc=ARGUMENTS[p.name])(udf)
    return xw.func(name=kpi.excel_name)(udf)


_UDFS = {kpi.excel_name: _make_udf(kpi) for kpi in excel_functions() if kpi.excel_name}
globals().update(_UDFS)

__all__ = sorted(_UDFS)
