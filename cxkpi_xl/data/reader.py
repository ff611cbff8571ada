"""Read and validate the input tables from a workbook, a folder of CSV files or pandas
DataFrames.

Reading never stops at the first problem: every problem becomes an :class:`Issue` (sheet,
Excel row, column, value, what is wrong, what the reader did) and the rest of the data is
used. Only a source that cannot be read at all (not an xlsx/xlsm package, password
protected, a zip bomb, a missing file) raises :class:`SourceError` with a one-line reason.

Workbooks are read with python-calamine: each table by its Excel Table name, or else from
the sheet of that name with a header row. Values are normalised once per distinct value
(ids, dates and text repeat a lot; :mod:`cxkpi_xl.cells` reads numbers and dates as
exports type them), so reading stays close to the speed of calamine itself. One streaming
pass over each input sheet's XML finds its error cells (calamine reads them as blanks) and
the size of its grid: a sheet whose grid is far larger than its data (a stray value at
XFD100000, which calamine would allocate in full) is streamed with openpyxl instead.

The tables of a workbook are read in parallel threads (:mod:`.parallel_read`: calamine
parses without the GIL; each thread has its own workbook; ``CXKPI_READ_THREADS=1`` reads
one after another), one table at a time turns its rows into Python objects and a frame,
and the garbage collector is paused meanwhile (on again after, also on an error). Text
and id columns are normalised with ``map`` over ``str``'s own methods, dates once per
distinct value. On the 79 MiB benchmark workbook (3.6M rows, ``benchmarks/engine.py``,
the 2-core machine shared with other work) ``read`` takes 0.5x to 0.7x the time it took
before (23.9 s before and 12.4 s after in the quietest run, 0.60x and 0.31x a bare
``pd.read_excel`` of the same sheets timed in the same run), at a lower peak memory
(1,356 MB, from 1,416).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import threading
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import compress, repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import prefetch
from .cells import (
    AMBIGUOUS_DATE_ORDER,
    BadValue,
    date_order_evidence,
    error_problem,
    excel_error,
    is_ambiguous,
    parse_date,
    parse_number,
    show_value,
)
from .issues import ISSUE_COLUMNS, Issue
from .parallel_read import BookPool, gc_paused, read_threads, run_all
from .schema import (
    DATE,
    ID,
    MONTH,
    NO_VALUES,
    NUMBER,
    SETTINGS_SHEET,
    SURVEY_TYPES,
    TABLE_SHEETS,
    TABLES,
    TABLES_BY_NAME,
    TEXT,
    YES_VALUES,
    YESNO,
    Settings,
    Table,
)
from .usage import UsageSummary
from .zipparts import (
    _DIMENSION,
    _dimension_cells,
    _dimension_span,
    _oversized,
    _package_sheets,
    cell_index,
    package_problem,
    state_of,
)

ROW = "_row"
"""The column holding each row's number as Excel (or a text editor, for CSV) shows it."""


class SourceError(Exception):
    """The source cannot be read at all; the message is one line for the user."""


@dataclass
class Dataset:
    """Validated input tables (normalised types, one ``_row`` column each), the resolved
    settings and every data problem found."""

    tables: dict[str, pd.DataFrame]
    settings: Settings
    issues: list[Issue] = field(default_factory=list)
    source: str = ""
    absent: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per table read from the source, the schema's optional columns it did not have:
    a KPI that needs one is unknown (blank), never computed from blanks as if zero."""
    digests: dict[str, str] = field(default_factory=dict)
    """Per table, a digest of everything its validated rows depend on (its source bytes,
    the settings that affect reading, the product's version), where the source can give
    one cheaply (a workbook's zip directory); a table not listed has no digest. Equal
    digests mean equal validated tables, so work on them may be reused."""
    usage_summary: UsageSummary | None = None
    """Usage summarised in the source's engine (``sources``, with push-down): then the
    Usage table holds no rows and the engine reads this instead (``data.usage``)."""

    def table(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table`` came from the source with ``column`` in it."""
        return table not in self.absent or column not in self.absent[table]


# --- the package checks -------------------------------------------------------------


def check_package(path: Path) -> None:
    """Refuse, with a one-line reason, a file that is not a safe xlsx/xlsm package: from
    its zip directory alone, before any part is inflated (:func:`.zipparts.package_problem`)."""
    problem = package_problem(path)
    if problem is not None:
        raise SourceError(problem)


# --- value normalisation ------------------------------------------------------------


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, str):
        return not v.strip()
    return v is pd.NaT


class _Bad(Exception):
    pass


def _to_id(v: Any) -> str:
    if isinstance(v, bool):
        raise _Bad("is TRUE/FALSE, not an id")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, int | float | np.integer | np.floating):
        return str(v)
    if isinstance(v, dt.date):
        raise _Bad("is a date, not an id")
    s = str(v).strip()
    if s.endswith(".0") and s[:-2].isdigit():  # 1001.0 typed as text by a CSV export
        s = s[:-2]
    return s


def _to_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return str(v).strip()


def _to_yesno(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = _to_text(v).lower()
    if s in YES_VALUES:
        return True
    if s in NO_VALUES:
        return False
    raise _Bad("is not yes or no")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    ID: _to_id,
    TEXT: _to_text,
    YESNO: _to_yesno,
}


def _normalise_by_unique(
    raw: pd.Series,
    convert: Callable[[Any], Any],
    factorized: tuple[np.ndarray, Any] | None = None,
) -> tuple[list[Any], dict[int, str], np.ndarray]:
    """Convert each distinct value once. Returns (values per unique, reasons for the bad
    uniques by code, codes per row); every blank gets code -1."""
    codes, uniques = factorized or pd.factorize(raw, use_na_sentinel=True)
    values = _unique_values(uniques)
    if convert in (_to_id, _to_text) and set(map(type, values)) == {str}:
        texts, reasons, blanks = _text_by_unique(values, as_id=convert is _to_id)
        if blanks:
            codes = np.where(np.isin(codes, blanks), -1, codes)
        return texts, reasons, codes
    converted: list[Any] = []
    bad: dict[int, str] = {}
    blank_codes = []
    for code, v in enumerate(values):
        if _blank(v):
            converted.append(None)
            blank_codes.append(code)
            continue
        error = excel_error(v)
        if error is not None:
            converted.append(None)
            bad[code] = error_problem(error)
            continue
        try:
            converted.append(convert(v))
        except (_Bad, BadValue) as e:
            converted.append(None)
            bad[code] = str(e)
    if blank_codes:
        codes = np.where(np.isin(codes, blank_codes), -1, codes)
    return converted, bad, codes


def _unique_values(uniques: Any) -> list[Any]:
    """The distinct values factorize found, as a plain list (stepping through pandas'
    string array one element at a time costs a microsecond each)."""
    if getattr(getattr(uniques, "dtype", None), "kind", "") == "O":  # object, str
        return np.asarray(uniques, dtype=object).tolist()
    return list(uniques)


def _text_by_unique(values: list[str], as_id: bool) -> tuple[list[Any], dict[int, str], list[int]]:
    """What :func:`_normalise_by_unique` makes of distinct text values with
    :func:`_to_id` (``as_id``) or :func:`_to_text`, a column at a time instead of a value
    at a time (``map`` over str's own methods runs at C speed): (values, reasons for the
    bad by code, the blank codes)."""
    converted: list[Any] = list(map(str.strip, values))
    codes = range(len(values))
    blank = list(compress(codes, map(operator.not_, converted))) if "" in converted else []
    if as_id:  # 1001.0 typed as text by a CSV export
        for i in compress(codes, map(str.endswith, converted, repeat(".0"))):
            if converted[i][:-2].isdigit():
                converted[i] = converted[i][:-2]
    bad: dict[int, str] = {}
    for i in compress(codes, map(str.startswith, values, repeat("#"))):
        error = excel_error(values[i])
        if error is not None:
            converted[i] = None
            bad[i] = error_problem(error)
    for i in blank:
        converted[i] = None
    return converted, bad, blank


def _number_column(
    raw: pd.Series, decimal: str
) -> tuple[pd.Series, np.ndarray, np.ndarray, dict[int, str]]:
    """(floats, blank mask, bad mask, what is wrong by row position) of a number column.

    Numbers stored as numbers go through pandas at C speed; text is read by
    :func:`~cxkpi_xl.cells.parse_number` once per distinct value (thousands separators,
    currency, accounting negatives, the ``decimal_separator`` setting)."""
    if raw.dtype.kind in "fiu":
        values = raw.astype(float)
        inf = np.isinf(values.to_numpy())
        reasons = {int(i): "is not a number" for i in np.flatnonzero(inf)}
        return values, values.isna().to_numpy(), inf, reasons
    obj = raw.to_numpy(dtype=object)
    is_text = np.fromiter((type(v) is str for v in obj), bool, len(obj))
    if decimal == "." or not is_text.any():
        values = pd.to_numeric(raw, errors="coerce").astype(float)
    else:  # pandas would read the text 1.200 as 1.2
        values = pd.to_numeric(raw.where(~is_text), errors="coerce").astype(float)
    isna = values.isna().to_numpy()
    blank = isna.copy()
    if isna.any():
        idx = np.flatnonzero(isna)
        blank[idx] = [_blank(obj[i]) for i in idx]
    redo = isna & ~blank
    if decimal != ".":
        redo |= is_text & ~blank
    reasons: dict[int, str] = {}
    bad = np.zeros(len(obj), dtype=bool)
    if redo.any():
        idx = np.flatnonzero(redo)
        parsed, bad_codes, codes = _normalise_by_unique(
            pd.Series(obj[idx], dtype=object), lambda v: parse_number(v, decimal)
        )
        lookup = np.array([*(np.nan if p is None else p for p in parsed), np.nan], dtype=float)
        values.iloc[idx] = lookup[codes]
        for j, code in enumerate(codes):
            if int(code) in bad_codes:
                bad[idx[j]] = True
                reasons[int(idx[j])] = bad_codes[int(code)]
    if bool in set(map(type, obj)):
        is_bool = np.fromiter((type(v) is bool for v in obj), bool, len(obj))
        bad |= is_bool
        values[is_bool] = np.nan
        reasons.update({int(i): "is TRUE/FALSE, not a number" for i in np.flatnonzero(is_bool)})
    inf = np.isinf(values.to_numpy())
    if inf.any():
        bad |= inf
        values[inf] = np.nan
        reasons.update({int(i): "is not a number" for i in np.flatnonzero(inf)})
    return values, blank, bad, reasons


class _Validator:
    """Collects the issues of one table while its columns are normalised."""

    def __init__(self, table: Table, sheet: str, rows: np.ndarray, issues: list[Issue]):
        self.table, self.sheet, self.rows, self.issues = table, sheet, rows, issues
        self.skip = np.zeros(len(rows), dtype=bool)
        self.distinct: dict[str, tuple[Any, np.ndarray]] = {}
        """Per column, its distinct values as normalised and each row's position among
        them (see :attr:`codes`)."""
        self.codes = _LazyCodes(self.distinct)
        """Per column, a code per row for its value as normalised (-1: blank): what the
        rules that compare rows (duplicates) use instead of hashing the values again."""

    def report(
        self,
        mask: np.ndarray,
        column: str,
        values: Iterable[Any],
        problem: str | Callable[[int], str],
        action: str,
    ) -> None:
        vals = list(values) if not isinstance(values, np.ndarray | pd.Series) else values
        for i in np.flatnonzero(mask):
            why = problem(i) if callable(problem) else problem
            v = vals[i] if not isinstance(vals, pd.Series) else vals.iat[i]
            self.issues.append(Issue(self.sheet, int(self.rows[i]), column, v, why, action))


class _LazyCodes(dict):  # type: ignore[type-arg]
    """Codes per row of the columns in ``distinct``, each made when first asked for."""

    def __init__(self, distinct: Mapping[str, tuple[Any, np.ndarray]]):
        super().__init__()
        self._distinct = distinct

    def __contains__(self, column: object) -> bool:
        return column in self._distinct

    def __missing__(self, column: str) -> np.ndarray:
        values, codes = self._distinct[column]  # the last of values is the blank
        self[column] = pd.factorize(values)[0][codes]
        return self[column]


AS_WRITTEN = "cxkpi_xl as written"
"""``DataFrame.attrs`` key: the column keys (:func:`column_key`) of a frame's text columns
whose every value is a ``str`` or None that this reader keeps as it is (a source checks
them in its engine: ``sources._as_written``). An optional id or text column so marked is
taken as it is instead of value by value (5 million response ids cost seconds)."""

CODED = "cxkpi_xl coded"
"""``DataFrame.attrs`` key: the column keys of a frame's categorical columns whose codes
are those ``pd.factorize`` would give (every category used, numbered in order of first
appearance, -1 for a blank), as Arrow's ``dictionary_encode`` makes them (a source:
``sources._frame``). The reader takes those codes instead of hashing every row again."""


def _factorized(series: pd.Series, coded: bool) -> tuple[np.ndarray, Any]:
    """``pd.factorize(series)``, or for a ``coded`` categorical its own codes and
    categories (the same pair, without a pass over the rows)."""
    if coded and isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy().astype(np.intp), series.cat.categories
    return pd.factorize(series, use_na_sentinel=True)


def _normalise_table(
    table: Table,
    sheet: str,
    raw: pd.DataFrame,
    rows: np.ndarray,
    issues: list[Issue],
    settings: Settings,
    source_order: Callable[[], str | None] = lambda: None,
) -> pd.DataFrame:
    """Typed columns of one table, with the rows that cannot be used left out.

    ``source_order`` is the day/month order the other date columns of the source show
    (``DMY``, ``MDY`` or None), used for a date column that shows none itself."""
    v = _Validator(table, sheet, rows, issues)
    out: dict[str, Any] = {}
    as_written = raw.attrs.get(AS_WRITTEN, frozenset())
    coded = raw.attrs.get(CODED, frozenset())
    for col in table.columns:
        if col.name not in raw:
            out[col.name] = pd.Series([None] * len(raw), dtype=object)
            continue
        series = raw[col.name].reset_index(drop=True)
        if (
            column_key(col.name) in as_written
            and col.type in (ID, TEXT)
            and not col.required
            and not col.choices
            and col.name not in (table.key, table.customer_column)
            and series.dtype == object
        ):
            out[col.name] = series  # every value a str or None, kept as it is
            continue
        action_bad = "skipped the row" if col.required else "used a blank"
        if col.type == NUMBER:
            values, blank, bad, reasons = _number_column(series, settings["decimal_separator"])
            v.report(bad, col.name, series, reasons.__getitem__, action_bad)
            if col.low is not None:
                low = (values.to_numpy() < col.low) & ~bad
                v.report(low, col.name, series, "is negative", "skipped the row")
                v.skip |= low
            if col.required:
                v.skip |= bad
            values[bad] = np.nan
            out[col.name] = values
        else:
            factorized = _factorized(series, column_key(col.name) in coded)
            if col.type in (DATE, MONTH):
                order, strict = _column_date_order(
                    table, sheet, col.name, factorized[1], settings, source_order, issues
                )
                convert: Callable[[Any], Any] = partial(parse_date, order=order, strict=strict)
            else:
                convert = _CONVERTERS[col.type]
            kept = col.type in (ID, TEXT) and column_key(col.name) in coded & as_written
            if kept:  # distinct values the rules keep as they are: nothing to convert
                converted, bad_codes, codes = _unique_values(factorized[1]), {}, factorized[0]
            else:
                converted, bad_codes, codes = _normalise_by_unique(series, convert, factorized)
            blank = codes == -1
            if bad_codes:
                bad = np.isin(codes, list(bad_codes))
                reasons = [bad_codes.get(int(c), "") for c in codes]
                v.report(bad, col.name, series, reasons.__getitem__, action_bad)
                if col.required:
                    v.skip |= bad
            else:
                bad = np.zeros(len(codes), dtype=bool)
            lookup = np.array([*converted, None], dtype=object)
            if col.type in (DATE, MONTH):  # each distinct date made once, then taken by row
                distinct = pd.to_datetime(pd.Series(lookup), errors="coerce")
                used = np.bincount(codes[codes >= 0], minlength=len(distinct))
                far_of = _far_dates(distinct, used)
                far = far_of[codes]  # -1 takes the trailing NaT, never far
                if far_of.any():
                    near = distinct[(used > 0) & ~far_of]
                    lo, hi = near.min(), near.max()
                    v.report(
                        far,
                        col.name,
                        series,
                        f"is far outside the column's other dates ({lo.date()} to {hi.date()})",
                        "skipped the row",
                    )
                    v.skip |= far
                if col.type == MONTH:
                    distinct = distinct.dt.to_period("M").dt.to_timestamp()
                v.distinct[col.name] = (distinct, codes)
                dates = distinct.iloc[codes].reset_index(drop=True)
                if far_of.any():
                    dates[far] = pd.NaT
                out[col.name] = dates
            elif col.type == YESNO:
                out[col.name] = pd.Series(lookup[codes]).fillna(False).astype(bool)
            elif col.type == ID and isinstance(series.dtype, pd.CategoricalDtype):
                # A source's ids stay categorical (a Parquet or database source hands
                # them over so): millions of rows, each a small code, not a pointer.
                v.distinct[col.name] = (lookup, codes)
                if kept:  # already distinct and numbered in order of appearance
                    v.codes[col.name], distinct_ids = codes, lookup[:-1]
                else:
                    ids, distinct_ids = pd.factorize(lookup)
                    v.codes[col.name] = ids[codes]  # the same codes the rules would make
                out[col.name] = pd.Series(
                    pd.Categorical.from_codes(
                        v.codes[col.name], pd.Index(distinct_ids, dtype=object)
                    )
                )
            else:  # code -1 takes the trailing None
                out[col.name] = pd.Series(lookup[codes], dtype=object)
                v.distinct[col.name] = (lookup, codes)
            blank = blank | bad
        if col.required:
            missing = blank & ~bad
            v.report(missing, col.name, series, "is blank but required", "skipped the row")
            v.skip |= missing
    frame = pd.DataFrame(out, copy=False)  # not a copy of every column
    frame[ROW] = rows
    _table_rules(table.name, frame, v, settings)
    if not v.skip.any():
        return frame
    return frame.loc[~v.skip].reset_index(drop=True)


OUTLIER_SPREAD = 5
OUTLIER_MIN_WINDOW = pd.Timedelta(days=3653)  # ten years


def _far_dates(dates: pd.Series, counts: np.ndarray) -> np.ndarray:
    """Which of a column's distinct ``dates`` (each found ``counts`` times in its rows) are
    far outside the rest of the column: a 2204 or 9999 typo, a 1900 date.

    A date is far when it lies more than ``max(5 x MAD, 10 years)`` from the column's
    median date (MAD: the median absolute distance of the column's dates from that
    median), both over its rows. Median and MAD ignore any minority of typos, however
    wild; five MADs is far beyond the spread of real dates, and the ten-year floor keeps a
    column whose dates all fall in a few months from losing customers who signed up years
    before the rest. A column of fewer than three dates has no outliers."""
    known = ~dates.isna().to_numpy() & (counts > 0)
    far = np.zeros(len(dates), dtype=bool)
    if counts[known].sum() < 3:
        return far
    values = dates.to_numpy(dtype="datetime64[ns]")[known].astype(np.int64).astype(float)
    weights = counts[known]
    median = _weighted_median(values, weights)
    mad = _weighted_median(np.abs(values - median), weights)
    window = max(OUTLIER_SPREAD * mad, float(OUTLIER_MIN_WINDOW.value))
    far[known] = np.abs(values - median) > window
    return far


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of ``values`` each repeated ``counts`` times, without repeating them."""
    order = np.argsort(values, kind="stable")
    ends = np.cumsum(counts[order])
    n = int(ends[-1])

    def kth(k: int) -> float:  # the k-th (from 0) of the sorted repeated values
        return float(values[order[np.searchsorted(ends, k, side="right")]])

    if n % 2:
        return kth(n // 2)
    return float(np.mean([kth(n // 2 - 1), kth(n // 2)]))


def _column_date_order(
    table: Table,
    sheet: str,
    column: str,
    uniques: Any,
    settings: Settings,
    source_order: Callable[[], str | None],
    issues: list[Issue],
) -> tuple[str, bool]:
    """The order of day and month for the numeric dates of one column, and whether it was
    set (strict). With ``date_order`` ``auto``: the order its dates that fit only one
    order show; if they show both, the more common one (each such date is still read the
    only way it fits, and one issue says so); if none does, the order of the source's
    other date columns, else :data:`~cxkpi_xl.cells.AMBIGUOUS_DATE_ORDER` (one issue
    names the setting)."""
    setting = settings["date_order"]
    if setting != "auto":
        return setting, True
    evidence = {"DMY": [], "MDY": []}
    ambiguous = []
    for u in uniques:
        if isinstance(u, str):
            e = date_order_evidence(u)
            if e is not None:
                evidence[e].append(u)
            elif is_ambiguous(u):
                ambiguous.append(u)
    dmy, mdy = evidence["DMY"], evidence["MDY"]
    if dmy and mdy:
        order = "DMY" if len(dmy) >= len(mdy) else "MDY"
        issues.append(
            Issue(
                sheet,
                None,
                column,
                dmy[0] if order == "MDY" else mdy[0],
                f"has dates with the day first ({len(dmy)} distinct, e.g. {dmy[0]}) and "
                f"with the month first ({len(mdy)}, e.g. {mdy[0]})",
                f"read each as the only date it can be and {len(ambiguous)} that fit "
                f"both ways as {order}; set date_order to DMY or MDY to say which",
            )
        )
        return order, False
    if dmy or mdy:
        return ("DMY" if dmy else "MDY"), False
    if not ambiguous:
        return AMBIGUOUS_DATE_ORDER, False
    shown = source_order()
    order = shown or AMBIGUOUS_DATE_ORDER
    why = "the order the other date columns show" if shown else "Excel's US order"
    issues.append(
        Issue(
            sheet,
            None,
            column,
            ambiguous[0],
            f"all {len(ambiguous)} distinct dates such as {ambiguous[0]} fit both "
            "day-month and month-day order",
            f"read them as {order}, {why}; set date_order to DMY or MDY to say which",
        )
    )
    return order, False


def _duplicated(
    frame: pd.DataFrame,
    columns: list[str],
    skip: np.ndarray,
    known: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Rows repeating an earlier kept row's values in ``columns`` (skipped rows count for
    nothing; blanks are equal). ``known`` holds codes per row of columns' values
    (:attr:`_Validator.codes`), used instead of hashing the values again."""
    out = np.zeros(len(frame), dtype=bool)
    kept: Any = np.flatnonzero(~skip) if skip.any() else slice(None)  # no copy when none
    n_kept = len(frame) - int(skip.sum())
    if not n_kept:
        return out
    # Each column's values as codes (a blank is a value too, as pandas' duplicated has
    # it), the columns' codes as one integer key: hashing integers, not tuples of strings.
    key = np.zeros(n_kept, dtype=np.int64)
    size = 1  # the key's values lie in [0, size)
    for c in columns:
        if known is not None and c in known:
            codes = known[c][kept]
            n = int(codes.max(initial=-1)) + 2  # blank -1 counts as a value too
        else:
            codes, uniques = pd.factorize(frame[c].to_numpy()[kept], use_na_sentinel=False)
            n = len(uniques) + 1
        if size * n >= 2**62:  # numbered afresh, so that the product stays exact
            key, uniques = pd.factorize(key)
            size = len(uniques)
        key *= n
        key += codes
        key += 1
        size *= n
    if size <= 4 * len(key):  # most keys occur once: only the others are hashed
        seen = np.zeros(size, dtype=bool)  # a byte per possible key, not a count
        seen[key] = True
        if int(np.count_nonzero(seen)) == len(key):  # each key once: no duplicate at all
            return out
        del seen
        again = np.bincount(key, minlength=size)[key] > 1
        twice = np.zeros(len(key), dtype=bool)
        twice[again] = pd.Series(key[again]).duplicated(keep="first").to_numpy()
    else:
        twice = pd.Series(key).duplicated(keep="first").to_numpy()
    out[kept] = twice
    return out


def _table_rules(name: str, frame: pd.DataFrame, v: _Validator, settings: Settings) -> None:
    """Rules that look at more than one value: keys, scales, dates in order."""
    table = v.table
    if table.key:
        keys = frame[table.key]
        dup = _duplicated(frame, [table.key], v.skip, v.codes) & keys.notna().to_numpy()
        v.report(dup, table.key, keys, f"duplicate {table.key}", "skipped the row")
        v.skip |= dup
    if name == "Surveys":
        # Each distinct survey name upper-cased once (millions of answers, a few names).
        codes, names = _survey_codes(frame, v)
        upper = np.array([*(str(n).upper() for n in names), None], dtype=object)
        survey = pd.Series(upper[codes], index=frame.index, dtype=object)  # -1: None
        is_type = np.isin(upper, SURVEY_TYPES)
        unknown = ~is_type[codes] & (codes >= 0) & ~v.skip
        v.report(
            unknown,
            "survey",
            frame["survey"],
            f"is not one of {', '.join(SURVEY_TYPES)}",
            "skipped the row",
        )
        v.skip |= unknown
        frame["survey"] = survey
        score = frame["score"].to_numpy()
        for kind in SURVEY_TYPES:
            low, high = settings.survey_scale(kind)
            of_kind = (upper == kind)[codes] & ~v.skip
            outside = of_kind & ((score < low) | (score > high))
            v.report(
                outside,
                "score",
                frame["score"],
                f"is outside {low:g}..{high:g} ({kind} scale)",
                "skipped the row",
            )
            part = of_kind & ~outside & (score != np.floor(score))
            v.report(
                part,
                "score",
                frame["score"],
                f"is not a whole number ({kind} answers are whole numbers {low:g}..{high:g})",
                "skipped the row",
            )
            v.skip |= outside | part
    if name == "Health":
        score = frame["score"].to_numpy()
        out = (score > 100) & ~v.skip
        v.report(
            out,
            "score",
            frame["score"],
            "is above 100 (health scores are 0-100)",
            "skipped the row",
        )
        v.skip |= out
    if name == "Customers":
        early = (frame["churn_date"] < frame["signup_date"]).to_numpy() & ~v.skip
        v.report(
            early,
            "churn_date",
            frame["churn_date"],
            "is before signup_date",
            "ignored the churn date",
        )
        frame.loc[early, "churn_date"] = pd.NaT
    if name == "MRR":
        _keep_unknown_mrr(frame, v)
        twice = _duplicated(frame, ["customer_id", "month"], v.skip, v.codes)
        v.report(
            twice,
            "month",
            frame["month"],
            "second MRR row for this customer and month",
            "added the amounts together",
        )
    if name == "Orders":
        category = frame["category"].str.lower()
        odd = (
            category.notna().to_numpy()
            & ~category.isin(("primary", "secondary")).to_numpy()
            & ~v.skip
        )
        v.report(odd, "category", frame["category"], "is not primary or secondary", "used a blank")
        frame["category"] = category.where(~odd, None)


def _survey_codes(frame: pd.DataFrame, v: _Validator) -> tuple[np.ndarray, Any]:
    """``pd.factorize(frame["survey"])`` up to the numbering: the codes the column was
    normalised with (a few names, millions of answers: no hashing of the rows again), a
    name made None (an Excel error) coded -1 as a blank. A repeated name (`` NPS`` and
    ``NPS`` both ``NPS``) is fine: the rules read each row's name through its code."""
    if "survey" not in v.distinct or len(v.distinct["survey"][1]) != len(frame):
        return pd.factorize(frame["survey"])
    lookup, codes = v.distinct["survey"]
    names = lookup[:-1]
    none = np.array([n is None for n in names], dtype=bool)
    if none.any():
        codes = np.where(none[codes] & (codes >= 0), -1, codes)
    return codes, names


def _keep_unknown_mrr(frame: pd.DataFrame, v: _Validator) -> None:
    """Keep the MRR rows whose amount cannot be used (not a number, blank, negative) but
    whose customer and month can, with the amount unknown (NaN): leaving the row out would
    read as a churn that month and a reactivation the next. The engine fills the month as
    engine._carry_unknown says, and each Data Issues row's action says what it did."""
    amount = frame["mrr"].to_numpy(float)
    unknown = (
        v.skip
        & frame["customer_id"].notna().to_numpy()
        & frame["month"].notna().to_numpy()
        & (np.isnan(amount) | (amount < 0))
    )
    if not unknown.any():
        return
    v.skip &= ~unknown
    frame.loc[unknown, "mrr"] = np.nan
    kept, known = ~v.skip, ~v.skip & ~unknown
    dates = frame["month"]
    # A row without a month is skipped (never kept, known or unknown): 0 stands in for it
    # rather than a NaN cast to an integer.
    months = (dates.dt.year * 12 + dates.dt.month - 1).fillna(0).to_numpy(np.int64)
    ids = frame["customer_id"].to_numpy(object)
    first_known = pd.Series(months[known]).groupby(ids[known]).min()
    earlier = (pd.Series(ids[unknown]).map(first_known) < months[unknown]).to_numpy()
    rows = pd.MultiIndex.from_arrays([ids[kept], months[kept]])
    later = pd.MultiIndex.from_arrays([ids[unknown], months[unknown] + 1]).isin(rows)
    actions = {}
    for row, date, before, after in zip(
        v.rows[unknown], dates[unknown], earlier, later, strict=True
    ):
        month = f"{date.year:04d}-{date.month:02d}"
        actions[int(row)] = (
            f"kept the previous month's MRR for {month}"
            if before
            else f"used the next month's MRR for {month}"
            if after
            else f"counted no MRR for {month} (no month next to it to take it from)"
        )
    for i, issue in enumerate(v.issues):
        if issue.sheet == v.sheet and issue.column == "mrr" and issue.row in actions:
            v.issues[i] = replace(issue, action=actions[issue.row])


# --- sources ------------------------------------------------------------------------


def _frame_from_rows(rows: list[list[Any]], header: list[Any]) -> pd.DataFrame:
    """The rows under their headers as typed (the columns are matched to the schema's
    later, by position, so blank and repeated headers are fine here)."""
    names = list(range(len(header)))
    frame = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
    frame.columns = pd.Index(header, dtype=object)
    return frame


def _blank_check_cost(dtype: Any) -> int:
    """0 for numbers and dates (a NaN test), 1 for categoricals, 2 for text."""
    if isinstance(dtype, pd.CategoricalDtype):
        return 1
    return 0 if dtype.kind in "fiuMmb" else 2


def _drop_blank_rows(raw: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with nothing in them (a Table's empty tail) are not data."""
    if raw.empty:
        return raw, rows
    filled = np.zeros(len(raw), dtype=bool)
    # Any order of the columns finds the same rows; typed columns (a source's numbers,
    # dates and categoricals) are checked at C speed, so they go first and text, a Python
    # object per value, only for the rows still without a value (often none).
    order = sorted(range(raw.shape[1]), key=lambda i: _blank_check_cost(raw.dtypes.iloc[i]))
    for i in order:
        todo = np.flatnonzero(~filled)  # a row with a value in an earlier column is data
        if not len(todo):
            break
        s = raw.iloc[:, i]
        if len(todo) < len(raw):
            s = s.iloc[todo]
        empty = s.isna() | s.eq("") if s.dtype.kind == "O" else s.isna()
        filled[todo] = ~empty.to_numpy()
    if filled.all():
        return raw, rows
    return raw.loc[filled].reset_index(drop=True), rows[filled]


@dataclass
class _RawTable:
    sheet: str
    frame: pd.DataFrame  # columns are the headers as typed
    rows: np.ndarray  # Excel row number of each data row
    header_row: int
    first_column: int | None = None
    """0-based sheet column of the first column (None for CSV files and DataFrames)."""


def column_key(name: Any) -> str:
    """A header as the schema's names compare: case, spaces, underscores and hyphens do
    not count (``Customer ID``, ``customer-id`` and ``CustomerId`` are ``customer_id``)."""
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return ""
    return re.sub(r"[\s_\-\ufeff]+", "", str(name)).lower()


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _match_columns(table: Table, raw: _RawTable, issues: list[Issue]) -> pd.DataFrame:
    """The frame with the schema's column names on the columns whose headers match;
    other columns get names no schema column has. A blank header over values and a
    second column of the same name are issues."""
    frame = raw.frame
    wanted = {column_key(c.name): c.name for c in table.columns}
    names: list[str] = []
    taken: dict[str, Any] = {}

    def where(i: int) -> str:
        if raw.first_column is None:
            return f"column {i + 1}"
        return f"column {_column_letter(raw.first_column + i)}"

    for i, header in enumerate(frame.columns):
        key = column_key(header)
        if isinstance(header, str) and re.fullmatch(r"Unnamed: \d+", header):
            key = ""  # pandas' name for a blank CSV header
        name = wanted.get(key)
        if not key:
            values = frame.iloc[:, i]
            if (~(values.isna() | values.eq(""))).any():
                issues.append(
                    Issue(
                        raw.sheet,
                        raw.header_row,
                        where(i),
                        None,
                        "has values but no header",
                        "ignored the column",
                    )
                )
        elif name is not None and name in taken:
            issues.append(
                Issue(
                    raw.sheet,
                    raw.header_row,
                    where(i),
                    header,
                    f"is a second {name} column (the first is {show_value(taken[name])})",
                    "used the first",
                )
            )
            name = None
        if name is None:
            names.append(f"\0{i}")
        else:
            names.append(name)
            taken[name] = header
    frame = frame.copy(deep=False)
    frame.columns = names
    return frame


SHEET_CELL_BYTES = 32
"""What calamine allocates per cell of a sheet's range (empty or not)."""
_WIDE_CELL = {2: re.compile(rb'<c r="[A-Z]{2}'), 3: re.compile(rb'<c r="[A-Z]{3}')}
_ROW = re.compile(rb'<row r="(\d+)"')
_ERROR_CELL = re.compile(rb'<c r="([A-Z]{1,3})(\d+)"[^>]*\bt="e"[^>/]*>(.*?)</c>', re.DOTALL)
_CACHED_VALUE = re.compile(rb"<v>([^<]*)</v>")


@dataclass
class _SheetScan:
    cells: int
    """How many cells the sheet's grid spans, empty ones too (what calamine allocates)."""
    errors: dict[tuple[int, int], str]
    """0-based (row, column) -> the Excel error the cell holds (``#N/A``...): calamine
    reads error cells as blanks."""


def _scan_sheet(z: zipfile.ZipFile, part: str) -> _SheetScan:
    """One streaming pass over a sheet's XML: its error cells, and the size of its grid
    from its ``<dimension>`` or, when it has none, bounded by its cell references (the
    last row times 26, 702 or 16,384 columns as its references have one, two or three
    letters). Memory stays at one chunk whatever the sheet's size."""
    cells: int | None = None
    rows, width = 0, 26
    errors: dict[tuple[int, int], str] = {}
    rest = b""
    with z.open(part) as f:
        while chunk := f.read(1 << 22):
            if cells is None and not rest and rows == 0:
                cells = _dimension_span(_DIMENSION.search(chunk, 0, 1 << 16))
            block = rest + chunk
            cut = block.rfind(b"</row>")
            if cut == -1:
                rest = block
                continue
            body, rest = block[: cut + 6], block[cut + 6 :]
            if cells is None:
                wide = _WIDE_CELL[2].search(body) if width < 16384 else None
                if wide is not None:  # one pass for most sheets: the first two-letter cell
                    three = _WIDE_CELL[3].search(body, wide.start())  # comes before any three
                    width = 16384 if three is not None else max(width, 702)
                last_row = body.rfind(b"<row ")
                m = _ROW.match(body, last_row) if last_row != -1 else None
                if m is not None:
                    rows = max(rows, int(m.group(1)))
            if b't="e"' in body:
                for m in _ERROR_CELL.finditer(body):
                    value = _CACHED_VALUE.search(m.group(3))
                    if value is not None:
                        row, col = cell_index((m.group(1) + m.group(2)).decode())
                        errors[row, col] = value.group(1).decode("utf-8", "replace")
    return _SheetScan(rows * width if cells is None else cells, errors)


def _put_errors(raw: _RawTable, errors: dict[tuple[int, int], str]) -> None:
    """Write the error values calamine read as blanks back into a raw table."""
    if not errors or raw.first_column is None or not len(raw.rows):
        return
    frame = raw.frame
    top = int(raw.rows[0]) - 1  # 0-based sheet row of the first data row
    height, width = frame.shape
    for (row, col), value in errors.items():
        i, j = row - top, col - raw.first_column
        if 0 <= i < height and 0 <= j < width:
            if frame.iloc[:, j].dtype != object:
                frame[frame.columns[j]] = frame.iloc[:, j].astype(object)
            frame.iat[i, j] = value


def _streamed_rows(
    path: Path, sheet: str, block: tuple[int, int, int | None, int] | None = None
) -> tuple[list[list[Any]], int, int]:
    """Rows of a sheet read by streaming (openpyxl read-only), holding only one block of
    cells, so memory is bounded by that block whatever the sheet's dimension.

    ``block`` is (first row, first column, last row or None, width), 1-based; without it
    the block starts at the first row with a value (within the first 1,000 rows and 256
    columns), at its first value, and runs to the first blank header cell. Returns (rows
    with the header first, first row, first column)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb[sheet]
        if block is None:
            top = ws.iter_rows(min_row=1, max_row=1000, min_col=1, max_col=256, values_only=True)
            for r, row in enumerate(top, 1):
                filled = [i for i, v in enumerate(row) if v is not None and v != ""]
                if filled:
                    header = row[filled[0] :]
                    blank = [i for i, v in enumerate(header) if v is None or v == ""]
                    block = (r, filled[0] + 1, None, blank[0] if blank else len(header))
                    break
            else:
                return [], 1, 1
        first_row, first_col, last_row, width = block
        rows = ws.iter_rows(
            min_row=first_row,
            max_row=last_row,
            min_col=first_col,
            max_col=first_col + width - 1,
            values_only=True,
        )
        return [list(r) for r in rows], first_row, first_col
    finally:
        wb.close()


def _workbook_tables(
    path: Path, only: Collection[str] | None = None
) -> tuple[dict[str, _RawTable], dict[str, Any]]:
    """Raw input tables and the Settings values of a workbook; with ``only``, just the
    tables named there (the settings always).

    The tables are read in parallel threads (:func:`~.parallel_read.read_threads`), each
    with its own calamine workbook, and with the garbage collector paused while their row
    lists are made; the result is the same as one table after another."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path), load_tables=True)
        with zipfile.ZipFile(path) as z:
            parts = _package_sheets(z)
            state = state_of(z)
        sizes = {name: size for name, (_, size) in state.items()}
    except SourceError:
        raise
    except Exception as e:  # calamine's errors are not one class
        raise SourceError(f"{path.name} cannot be read: {e}") from None
    by_lower = {n.lower(): n for n in book.table_names or []}
    sheets = {n.lower(): n for n in book.sheet_names}
    scans: dict[str, _SheetScan] = {}
    oversized: dict[str, bool] = {}
    scan_locks: dict[str, threading.Lock] = {}
    locks_lock = threading.Lock()

    def sheet_lock(sheet: str) -> threading.Lock:
        with locks_lock:
            return scan_locks.setdefault(sheet, threading.Lock())

    def scan(sheet: str) -> _SheetScan:
        """The sheet's scan, made when the sheet is first needed (once, whichever thread
        needs it first)."""
        with sheet_lock(sheet):
            if sheet not in scans:
                part = parts.get(sheet)
                with zipfile.ZipFile(path) as z:
                    found = _scan_sheet(z, part.name) if part else _SheetScan(0, {})
                    if sheet not in oversized:
                        oversized[sheet] = bool(part) and _oversized(z, part.name, found.cells)
                scans[sheet] = found
        return scans[sheet]

    def is_oversized(sheet: str) -> bool:
        """Whether calamine must not parse the sheet: from its ``<dimension>`` when it has
        one (no scan needed), else from its scan."""
        with sheet_lock(sheet):
            if sheet not in oversized:
                part = parts.get(sheet)
                if not part:
                    oversized[sheet] = False
                else:
                    with zipfile.ZipFile(path) as z:
                        cells = _dimension_cells(z, part.name)
                        if cells is not None:
                            oversized[sheet] = _oversized(z, part.name, cells)
        if sheet not in oversized:
            scan(sheet)
        return oversized[sheet]

    table_sheet = {t: name for name, p in parts.items() for t in p.tables}
    inputs = [t for t in TABLES if t.name != "HealthWeights"]
    if only != () and not any(
        t.name.lower() in by_lower or t.name.lower() in sheets for t in inputs
    ):
        raise SourceError(
            f"{path.name} has none of the input tables: looked for Excel Tables or sheets "
            f"named {', '.join(t.name for t in inputs)} (in any case)"
        )
    threads = read_threads()
    pool = BookPool(book, lambda: CalamineWorkbook.from_path(str(path), load_tables=True))
    # Held while a table's rows become Python objects and a frame: that work holds the
    # GIL, so one table at a time costs no time, and memory holds one table's row lists.
    building = threading.Lock()

    # A sheet's error cells are scanned for in another thread while calamine parses it.
    scanner = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="scan")

    def read_table(table: Table) -> _RawTable | None:
        found = by_lower.get(table.name.lower())
        home = table_sheet.get(table.name.lower())
        if found is not None and home is not None and is_oversized(home):
            ref, header_rows, totals_rows = parts[home].tables[table.name.lower()]
            top, bottom = ref.split(":") if ":" in ref else (ref, ref)
            (r0, c0), (r1, c1) = cell_index(top), cell_index(bottom)
            last = r1 + 1 - totals_rows
            grid, _, _ = _streamed_rows(path, home, (r0 + 1, c0 + 1, last, c1 - c0 + 1))
            header, data = grid[0], grid[header_rows:]
            return _RawTable(
                home,
                _frame_from_rows(data, header),
                np.arange(r0 + header_rows + 1, r0 + header_rows + 1 + len(data)),
                r0 + 1,
                c0,
            )
        if found is not None:
            errors = scanner.submit(scan, home) if home is not None else None
            t = prefetch.take(path, found, state)  # parsed while a refresh was loading
            if t is None:
                with pool.book() as b:
                    t = b.get_table_by_name(found)  # calamine parses here, without the GIL
            with building:
                data = t.to_python()
                (start_row, start_col), home, header = t.start, t.sheet, list(t.columns)
                del t  # calamine's grid (32 bytes a cell), before the frame is built
                raw = _RawTable(
                    home,
                    _frame_from_rows(data, header),
                    np.arange(start_row + 1, start_row + 1 + len(data)),  # 0-based start_row
                    start_row,
                    start_col,
                )
                del data
            if errors is not None:
                _put_errors(raw, errors.result().errors)
            else:
                _put_errors(raw, scan(home).errors)
            return raw
        sheet_name = sheets.get(TABLE_SHEETS[table.name].lower())
        if sheet_name is None or table.name == "HealthWeights":
            return None
        sheet_errors = None
        if is_oversized(sheet_name):
            values, first_row, first_col = _streamed_rows(path, sheet_name)
            first_row, first_col = first_row - 1, first_col - 1
        else:
            sheet_errors = scanner.submit(scan, sheet_name)  # while calamine parses
            with pool.book() as b:
                sheet = b.get_sheet_by_name(sheet_name)
            with building:
                values = sheet.to_python()
                first_row, first_col = sheet.start if sheet.start else (0, 0)
                del sheet
        with building:
            if not values or not values[0]:
                return None
            header, data = values[0], values[1:]
            del values
            raw = _RawTable(
                sheet_name,
                _frame_from_rows(data, header),
                np.arange(first_row + 2, first_row + 2 + len(data)),
                first_row + 1,
                first_col,
            )
            del data
        if sheet_errors is not None:
            _put_errors(raw, sheet_errors.result().errors)
        return raw

    def part_size(table: Table) -> int:
        """The size of the sheet XML a table is read from, to start the largest first."""
        home = table_sheet.get(table.name.lower()) or sheets.get(
            TABLE_SHEETS[table.name].lower(), ""
        )
        part = parts.get(home)
        return sizes.get(part.name, 0) if part else 0

    wanted = [t for t in TABLES if only is None or t.name in only]
    try:
        with gc_paused():
            read = run_all(
                [partial(read_table, t) for t in wanted], threads, [part_size(t) for t in wanted]
            )
    finally:
        scanner.shutdown(wait=True, cancel_futures=True)
        pool.close()
    tables = {t.name: raw for t, raw in zip(wanted, read, strict=True) if raw is not None}

    settings = _workbook_settings(path, book, sheets, is_oversized)
    return tables, settings


class _NotOneCell(str):
    """A setting's defined name that refers to more than one cell (``Settings!$B:$B``)."""


def _workbook_settings(
    path: Path, book: Any, sheets: dict[str, str], oversized: Callable[[str], bool]
) -> dict[str, Any]:
    """Settings from the workbook's defined names, or from name/value rows of the
    Settings sheet."""
    from .schema import SETTINGS_BY_NAME

    names = _defined_names(path)
    found: dict[str, Any] = {}
    cache: dict[str, list[list[Any]]] = {}

    def values_of(sheet_name: str, skip_empty_area: bool) -> list[list[Any]]:
        if oversized(sheet_name):  # the first 200 rows x 10 columns hold the settings
            return _streamed_rows(path, sheet_name, (1, 1, 200, 10))[0]
        return book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=skip_empty_area)

    for name, ref in names.items():
        if name.lower() not in SETTINGS_BY_NAME or "!" not in ref:
            continue
        sheet_ref, cell = ref.rsplit("!", 1)
        sheet_name = sheets.get(sheet_ref.strip("'").lower())
        cell = cell.replace("$", "")
        if sheet_name is None:
            continue
        if not re.fullmatch(r"[A-Za-z]{1,3}\d+", cell):  # a whole column, a range
            found[name.lower()] = _NotOneCell(ref)
            continue
        if sheet_name not in cache:
            cache[sheet_name] = values_of(sheet_name, False)
        values = cache[sheet_name]
        row, col = cell_index(cell)
        if row < len(values) and col < len(values[row]):
            found[name.lower()] = values[row][col]
    if not found and SETTINGS_SHEET.lower() in sheets:
        values = values_of(sheets[SETTINGS_SHEET.lower()], True)
        for row in values:
            if len(row) >= 2 and str(row[0]).strip().lower() in SETTINGS_BY_NAME:
                found[str(row[0]).strip().lower()] = row[1]
    return found


def _defined_names(path: Path) -> dict[str, str]:
    from defusedxml import ElementTree

    with zipfile.ZipFile(path) as z:
        root = ElementTree.fromstring(z.read("xl/workbook.xml"))
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    out = {}
    for node in root.iter(f"{ns}definedName"):
        if node.get("localSheetId") is None and node.text:
            out[node.get("name", "")] = node.text.strip()
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a grid of text, header row included. The delimiter is the one of
    ``,`` ``;`` and tab its first line holds most (Excel writes ``;`` where the decimal
    separator is a comma); text that is not UTF-8 is read as Windows-1252, the encoding
    of Excel's plain "CSV" on Windows."""
    with path.open("rb") as f:
        first = f.readline()
    sep = max((",", ";", "\t"), key=lambda c: first.count(c.encode()))
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(
                path,
                sep=sep,
                dtype=object,
                keep_default_na=False,
                header=None,
                skip_blank_lines=False,
                encoding=encoding,
            )
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as e:
            raise SourceError(f"{path.name} cannot be read as CSV: {e}") from None
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
    raise SourceError(f"{path.name} cannot be read as CSV: it is neither UTF-8 nor Windows-1252")


def _csv_tables(folder: Path) -> tuple[dict[str, _RawTable], dict[str, Any]]:
    files = {p.stem.lower(): p for p in folder.iterdir() if p.suffix.lower() == ".csv"}
    inputs = [t for t in TABLES if t.name != "HealthWeights"]
    if not any(t.name.lower() in files for t in inputs):
        raise SourceError(
            f"{folder} has none of the input tables: looked for "
            f"{', '.join(t.name + '.csv' for t in inputs)} (in any case)"
        )
    tables: dict[str, _RawTable] = {}
    for table in TABLES:
        path = files.get(table.name.lower())
        if path is None:
            continue
        grid = _read_csv(path)
        header = grid.iloc[0].tolist() if len(grid) else []
        frame = grid.iloc[1:].reset_index(drop=True)
        frame.columns = pd.Index(header, dtype=object)
        tables[table.name] = _RawTable(path.name, frame, np.arange(2, 2 + len(frame)), 1)
    settings: dict[str, Any] = {}
    if "settings" in files:
        rows = _read_csv(files["settings"])
        for _, row in rows.iterrows():
            key = str(row.iloc[0]).strip().lower()
            if key and key != "name" and len(row) > 1:
                settings[key] = row.iloc[1]
    return tables, settings


def _frame_tables(
    frames: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, _RawTable], dict[str, Any]]:
    lower = {str(k).lower(): v for k, v in frames.items()}
    tables: dict[str, _RawTable] = {}
    for table in TABLES:
        frame = lower.get(table.name.lower())
        if frame is None:
            continue
        tables[table.name] = _RawTable(
            table.name, frame.reset_index(drop=True), np.arange(2, 2 + len(frame)), 1
        )
    given = lower.get("settings")
    settings = dict(given) if isinstance(given, Mapping) else {}
    return tables, settings


def read(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    cache: Any = None,
) -> Dataset:
    """Read, normalise and validate every input table of a source.

    ``source`` is an .xlsx/.xlsm path, a folder of CSV files named after the tables, or a
    mapping of table name to DataFrame (plus an optional ``"Settings"`` dict).
    ``overrides`` are settings given on the command line (``--set name=value``); they
    win over the workbook's own. ``cache`` (a :class:`~cxkpi_xl.data.cache.Cache`, for a
    workbook) reloads the tables whose parts did not change and re-reads only the others.
    Raises :class:`SourceError` for a source that cannot be read at all and ValueError
    for a bad setting override.
    """
    import sys

    from .sources import is_source, read_source  # Parquet, DuckDB files, connection URLs

    if not isinstance(source, Mapping) and is_source(source):
        return read_source(source, overrides, reader=sys.modules[__name__])
    if isinstance(source, Mapping):
        raw_tables, raw_settings = _frame_tables(source)
        label = "DataFrames"
    else:
        path = Path(source)
        if path.is_dir():
            raw_tables, raw_settings = _csv_tables(path)
        else:
            if path.suffix.lower() not in (".xlsx", ".xlsm"):
                if not path.exists():
                    raise SourceError(f"{path}: no such file or folder")
                raise SourceError(
                    f"{path.name} is not an .xlsx/.xlsm workbook, a folder of CSV or Parquet "
                    "files, a DuckDB file or a connection URL"
                )
            check_package(path)
            if cache is not None:
                return cache.read(path, overrides)
            raw_tables, raw_settings = _workbook_tables(path)
        label = str(path)
    settings, issues = _resolve_settings(raw_settings, overrides)
    return _dataset(_read_tables(raw_tables, settings), settings, issues, label)


def read_settings(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """A workbook's settings alone, its tables left unread (milliseconds: calamine parses
    only the sheets the settings are on). A bad value is left at its default here; a full
    :func:`read` reports it as an issue."""
    path = Path(path)
    check_package(path)
    _, raw_settings = _workbook_tables(path, only=())
    return _resolve_settings(raw_settings, overrides)[0]


def _resolve_settings(
    raw_settings: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> tuple[Settings, list[Issue]]:
    """The settings: defaults, the source's values (a bad one is an issue), overrides."""
    issues: list[Issue] = []
    settings = Settings()
    for name, value in raw_settings.items():
        if isinstance(value, _NotOneCell):
            problem = f"the name {name} refers to {value}, not to one cell"
            issues.append(
                Issue(SETTINGS_SHEET, None, name, str(value), problem, "used the default")
            )
            continue
        try:
            settings.update({name: value})
        except ValueError as e:
            issues.append(Issue(SETTINGS_SHEET, None, name, value, str(e), "used the default"))
    if overrides:
        settings.update(dict(overrides))
    return settings, issues


@dataclass
class TableRead:
    """One input table as read from its raw table alone (what a read cache may keep):
    the cross-table steps run on these every time."""

    sheet: str
    frame: pd.DataFrame | None
    """The validated rows; None when the table was left out (a required column missing)."""
    absent: frozenset[str]
    matched_issues: list[Issue]
    """Issues of its headers (found before any table is normalised)."""
    issues: list[Issue]
    """Issues of its values."""
    evidence: frozenset[str] | None
    """The day/month orders its text date columns show (None: not looked at)."""
    order_used: bool
    """Whether a date column took the order of the source's other date columns ..."""
    order: str | None
    """... and which (``DMY``, ``MDY`` or None for none)."""


class StaleOrder(Exception):
    """Known tables took a source date order that is no longer the source's."""

    def __init__(self, tables: list[str]):
        super().__init__(", ".join(tables))
        self.tables = tables


class UnknownEvidence(Exception):
    """The source's date order is needed, and a known table's evidence was not kept."""


def _date_evidence(name: str, frame: pd.DataFrame) -> frozenset[str]:
    """The day/month orders (``DMY``, ``MDY``) the text date columns of one table show."""
    seen: set[str] = set()
    for col in TABLES_BY_NAME[name].columns:
        if col.type not in (DATE, MONTH) or col.name not in frame:
            continue
        series = frame[col.name]
        if series.dtype.kind in "fiumMb":  # numbers and dates show no order
            continue
        for u in pd.unique(series.to_numpy()):
            e = date_order_evidence(u)
            if e is not None:
                seen.add(e)
                break
    return frozenset(seen)


def _read_tables(
    raw_tables: Mapping[str, _RawTable],
    settings: Settings,
    known: Mapping[str, TableRead] | None = None,
) -> dict[str, TableRead]:
    """Match, normalise and validate each raw table. ``known`` are tables read before
    (from a cache): their date evidence counts for the source's date order; raises
    StaleOrder if one of them took an order the source no longer shows."""
    known = known or {}
    matched: dict[str, tuple[pd.DataFrame, np.ndarray, list[Issue]]] = {}
    out: dict[str, TableRead] = {}
    for table in TABLES:
        raw = raw_tables.get(table.name)
        if raw is None:
            continue
        issues: list[Issue] = []
        frame, rows = _drop_blank_rows(_match_columns(table, raw, issues), raw.rows)
        missing = [c for c in table.required if c not in frame.columns]
        if missing:
            found = [show_value(h) for h in raw.frame.columns if column_key(h)]
            issues.append(
                Issue(
                    raw.sheet,
                    raw.header_row,
                    ", ".join(missing),
                    None,
                    f"the required column{'s' if len(missing) > 1 else ''} "
                    f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing "
                    f"(the columns are {', '.join(found) or 'none'})",
                    f"left out the {table.name} table",
                )
            )
            out[table.name] = TableRead(
                raw.sheet, None, frozenset(), issues, [], frozenset(), False, None
            )
            continue
        matched[table.name] = (frame, rows, issues)
    evidence = {n: k.evidence for n, k in known.items() if k.frame is not None}
    order_cache: list[str | None] = []

    def source_order() -> str | None:
        if not order_cache:
            for name, (frame, _, _) in matched.items():
                evidence[name] = _date_evidence(name, frame)
            shown = list(evidence.values())
            if any(e is None for e in shown):
                raise UnknownEvidence
            seen = set().union(*shown)
            order_cache.append(seen.pop() if len(seen) == 1 else None)
        return order_cache[0]

    stale = [n for n, k in known.items() if k.order_used and k.order != source_order()]
    if stale:
        raise StaleOrder(stale)
    for table in TABLES:
        if table.name not in matched:
            continue
        frame, rows, header_issues = matched[table.name]
        used: list[bool] = []

        def order(used: list[bool] = used) -> str | None:
            used.append(True)
            return source_order()

        issues = []
        sheet = raw_tables[table.name].sheet
        absent = frozenset(c.name for c in table.columns if c.name not in frame)
        validated = _normalise_table(table, sheet, frame, rows, issues, settings, order)
        out[table.name] = TableRead(
            sheet,
            validated,
            absent,
            header_issues,
            issues,
            evidence.get(table.name),
            bool(used),
            order_cache[0] if used else None,
        )
    for name in matched:  # evidence looked at for a table normalised later counts too
        out[name].evidence = evidence.get(name)
    return out


def _dataset(
    reads: Mapping[str, TableRead], settings: Settings, issues: list[Issue], label: str
) -> Dataset:
    """The Dataset from each table's read: the cross-table steps (customers known, MRR
    from Invoices) run here, on every read."""
    for table in TABLES:
        if table.name in reads:
            issues.extend(reads[table.name].matched_issues)
    tables: dict[str, pd.DataFrame] = {}
    absent: dict[str, frozenset[str]] = {}
    for table in TABLES:
        got = reads.get(table.name)
        if got is None or got.frame is None:
            tables[table.name] = _empty(table)
            continue
        absent[table.name] = got.absent
        tables[table.name] = got.frame
        issues.extend(got.issues)
    sheets = {name: got.sheet for name, got in reads.items()}
    _cross_table_rules(tables, sheets, issues)
    from .invoices import mrr_from_invoices, use_invoices

    if use_invoices(settings, tables["MRR"], tables["Invoices"]):
        sheet = sheets.get("Invoices", "Invoices")
        tables["MRR"], found = mrr_from_invoices(tables["Invoices"], tables["FX"], settings, sheet)
        issues.extend(found)
        absent.pop("MRR", None)
    return Dataset(tables, settings, issues, label, absent)


def _empty(table: Table) -> pd.DataFrame:
    frame = _normalise_table(
        table,
        table.name,
        pd.DataFrame({c.name: [] for c in table.columns}),
        np.arange(0),
        [],
        Settings(),
    )
    return frame


def _cross_table_rules(
    tables: dict[str, pd.DataFrame], sheets: Mapping[str, str], issues: list[Issue]
) -> None:
    customers = tables["Customers"]
    if customers.empty:
        return
    known = pd.Index(customers["customer_id"])
    for name in ("MRR", "Orders", "Invoices"):
        frame = tables[name]
        if frame.empty:
            continue
        unknown = ~frame["customer_id"].isin(known).to_numpy()
        sheet = sheets.get(name, name)
        for i in np.flatnonzero(unknown):
            issues.append(
                Issue(
                    sheet,
                    int(frame[ROW].iat[i]),
                    "customer_id",
                    frame["customer_id"].iat[i],
                    "is not in Customers",
                    "used the row",
                )
            )


def issues_frame(issues: list[Issue]) -> pd.DataFrame:
    return pd.DataFrame([i.as_row() for i in issues], columns=list(ISSUE_COLUMNS))
