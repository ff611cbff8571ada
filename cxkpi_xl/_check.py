"""Inputs checked at the door: the one error model every KPI function shares.

Every KPI function turns its arguments into float arrays here, so the rules live in one
place: blanks (None, NaN, empty or blank strings) are ignored, never counted as zero;
numbers stored as text are numbers; anything else (text, booleans, dates, infinities, a
value outside its allowed range) raises ``ValueError`` naming the first bad value and its
1-based position; a zero denominator gives ``zero_division`` (NaN by default), or raises
``ZeroDivisionError`` when ``zero_division="raise"`` (the Excel layer uses that to show
``#DIV/0!``).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from typing import Any, Literal, Union

import numpy as np

ZeroDivision = Union[float, Literal["raise"]]  # noqa: UP007 (a runtime alias, 3.10-safe)
"""A number to return for a zero denominator, or ``"raise"`` to raise ZeroDivisionError."""

# Element types that need no look at each value: plain numbers and blanks.
_PLAIN_TYPES = {float, int, type(None), np.float64, np.float32, np.int64, np.int32}


class _Invalid(Exception):
    """Raised by the element converter; carries the reason shown to the user."""


def _is_blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, float | np.floating):
        return math.isnan(v)
    return False


def _element_to_float(v: Any) -> float:
    """One value to a float; NaN for a blank; _Invalid with a reason otherwise."""
    if v is None:
        return math.nan
    if isinstance(v, bool | np.bool_):
        raise _Invalid("is a TRUE/FALSE value, not a number")
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isinf(f):
            raise _Invalid("is not a finite number")
        return f
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return math.nan
        try:
            f = float(s)
        except ValueError:
            raise _Invalid("is text, not a number") from None
        if math.isinf(f):
            raise _Invalid("is not a finite number")
        if math.isnan(f):
            raise _Invalid("is text, not a number")
        return f
    if isinstance(v, _dt.date | np.datetime64):
        raise _Invalid("is a date, not a number")
    if isinstance(v, list | tuple | np.ndarray):
        raise _Invalid("is a nested list: the range is not rectangular")
    raise _Invalid(f"is a {type(v).__name__}, not a number")


def _where(index: int, shape: tuple[int, ...]) -> str:
    """A 1-based position, with row and column for a 2-D range."""
    if len(shape) == 2 and shape[1] > 1:
        row, col = divmod(index, shape[1])
        return f"position {index + 1} (row {row + 1}, column {col + 1})"
    return f"position {index + 1}"


def _fail(name: str, value: Any, index: int, shape: tuple[int, ...], reason: str) -> ValueError:
    return ValueError(f"{name}: {value!r} at {_where(index, shape)} {reason}")


def _as_object_array(x: Any, name: str) -> np.ndarray:
    try:
        return np.array(x, dtype=object)
    except ValueError as e:  # pragma: no cover - numpy refuses some ragged shapes
        raise ValueError(f"{name}: the range is not rectangular ({e})") from None


def to_float_array(x: Any, name: str) -> np.ndarray:
    """Any array-like (scalar, list, 2-D list, numpy array, pandas object) as floats.

    Keeps the shape; blanks become NaN. Raises ValueError at the first value that is not
    a number.
    """
    if hasattr(x, "to_numpy"):  # pandas Series, DataFrame, Index
        x = x.to_numpy()
    if isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
        arr = x.astype(float, copy=False)
        bad = np.isinf(arr)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise _fail(name, arr.ravel()[i], i, arr.shape, "is not a finite number")
        return arr
    obj = x if isinstance(x, np.ndarray) and x.dtype == object else _as_object_array(x, name)
    flat = obj.ravel()
    if set(map(type, flat)) <= _PLAIN_TYPES:
        arr = obj.astype(float)
        bad = np.isinf(arr)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise _fail(name, flat[i], i, obj.shape, "is not a finite number")
        return arr
    return _convert_each(obj, name, _element_to_float)


def _convert_each(obj: np.ndarray, name: str, convert: Any) -> np.ndarray:
    """Convert each element of an object array; the first bad one raises ValueError with
    its position."""
    flat = obj.ravel()
    out = np.empty(flat.shape, dtype=float)
    for i, v in enumerate(flat):
        try:
            out[i] = convert(v)
        except _Invalid as e:
            raise _fail(name, v, i, obj.shape, str(e)) from None
    return out.reshape(obj.shape)


def values(
    x: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
) -> np.ndarray:
    """The non-blank values of an array-like as a 1-D float array, checked.

    ``low``/``high`` bound the allowed values (inclusive); ``whole`` requires whole
    numbers. The first value that breaks a rule raises ValueError with its position in
    the input as given (blanks included).
    """
    arr = to_float_array(x, name)
    flat = arr.ravel()
    present = ~np.isnan(flat)
    _check_rules(flat, present, arr.shape, name, low=low, high=high, whole=whole)
    return flat[present] if not present.all() else flat


def _check_rules(
    flat: np.ndarray,
    present: np.ndarray,
    shape: tuple[int, ...],
    name: str,
    *,
    low: float | None,
    high: float | None,
    whole: bool,
) -> None:
    bad = np.zeros(flat.shape, dtype=bool)
    if low is not None:
        bad |= flat < low
    if high is not None:
        bad |= flat > high
    if whole:
        bad |= present & (flat != np.floor(flat))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = flat[i]
        if (
            whole
            and v != math.floor(v)
            and (low is None or v >= low)
            and (high is None or v <= high)
        ):
            reason = "is not a whole number"
        elif low is not None and high is not None:
            reason = f"is outside {_num(low)}..{_num(high)}"
        elif low is not None:
            reason = "is negative" if low == 0 else f"is below {_num(low)}"
        else:
            reason = f"is above {_num(high)}"
        raise _fail(name, _num(v), i, shape, reason)


def _num(v: float | None) -> float | int | None:
    if v is None:
        return None
    return int(v) if float(v).is_integer() else float(v)


def amounts(
    x: Any,
    name: str,
    *,
    low: float | None = 0.0,
    high: float | None = None,
) -> np.ndarray:
    """A scalar or array argument of a broadcasting function, blanks kept as NaN.

    By default the values must not be negative (counts and money).
    """
    arr = to_float_array(x, name)
    flat = arr.ravel()
    _check_rules(flat, ~np.isnan(flat), arr.shape, name, low=low, high=high, whole=False)
    return arr


def check_zero_division(zero_division: Any) -> None:
    if isinstance(zero_division, str):
        if zero_division != "raise":
            raise ValueError(f'zero_division must be a number or "raise", not {zero_division!r}')
        return
    if isinstance(zero_division, bool) or not isinstance(zero_division, numbers.Real):
        raise ValueError(f'zero_division must be a number or "raise", not {zero_division!r}')


def divide(numerator: Any, denominator: Any, zero_division: ZeroDivision, what: str) -> Any:
    """numerator / denominator, broadcasting; a zero denominator gives zero_division.

    Blank (NaN) inputs give NaN. ``what`` names the denominator in the error message.
    Returns a float for scalar inputs and an array otherwise.
    """
    check_zero_division(zero_division)
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    zero = (den == 0) & ~np.isnan(num)
    if zero.any() and zero_division == "raise":
        raise ZeroDivisionError(f"{what} is zero")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.divide(num, den)
    if zero.any():
        out = np.where(zero, float(zero_division), out)  # type: ignore[arg-type]
    return scalar_or_array(out)


def undefined(zero_division: ZeroDivision, what: str) -> float:
    """The result for an empty denominator in an aggregate (no responses, no customers)."""
    check_zero_division(zero_division)
    if zero_division == "raise":
        raise ZeroDivisionError(what)
    return float(zero_division)


def scalar_or_array(out: Any) -> Any:
    """A Python float for a 0-d result, the array otherwise."""
    arr = np.asarray(out, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


_EPOCH_SERIAL = 25569.0  # Excel's serial number of 1970-01-01 (1900 date system)
_LAST_SERIAL = 2958466.0  # the day after 9999-12-31, Excel's last date


def _element_to_days(v: Any) -> float:
    """One date-like value as days since 1970-01-01; NaN for a blank."""
    if _is_blank(v):
        return math.nan
    if isinstance(v, bool | np.bool_):
        raise _Invalid("is a TRUE/FALSE value, not a date")
    if isinstance(v, np.datetime64):
        if np.isnat(v):
            return math.nan
        return float(v.astype("datetime64[s]").astype(np.int64)) / 86400.0
    if isinstance(v, _dt.datetime):
        base = _dt.datetime(1970, 1, 1, tzinfo=v.tzinfo)
        return (v - base).total_seconds() / 86400.0
    if isinstance(v, _dt.date):
        return float((v - _dt.date(1970, 1, 1)).days)
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f) or not 1 <= f < _LAST_SERIAL:
            raise _Invalid("is not a date or an Excel date serial number")
        return f - _EPOCH_SERIAL
    if isinstance(v, str):
        s = v.strip()
        try:
            return _element_to_days(_dt.datetime.fromisoformat(s))
        except ValueError:
            pass
        try:
            return _element_to_days(float(s))
        except (ValueError, _Invalid):
            raise _Invalid("is not a date (use YYYY-MM-DD)") from None
    raise _Invalid(f"is a {type(v).__name__}, not a date")


def dates_as_days(x: Any, name: str) -> np.ndarray:
    """Dates (date/datetime, numpy datetime64, pandas Timestamp, ISO text, Excel serial
    numbers) as float days since 1970-01-01, keeping the shape; blanks become NaN."""
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    if isinstance(x, np.ndarray) and x.dtype.kind == "M":
        days = x.astype("datetime64[s]").astype(np.int64) / 86400.0
        return np.where(np.isnat(x), np.nan, days)
    return _convert_each(_as_object_array(x, name), name, _element_to_days)


def paired(
    a: Any,
    b: Any,
    names: tuple[str, str],
    *,
    low: tuple[float | None, float | None] = (None, None),
    high: tuple[float | None, float | None] = (None, None),
) -> tuple[np.ndarray, np.ndarray]:
    """Two same-sized array-likes, checked, as 1-D float arrays of the pairs where both
    values are present (a blank on either side leaves the pair out)."""
    arrays = []
    for x, name, lo, hi in zip((a, b), names, low, high, strict=True):
        arr = to_float_array(x, name)
        flat = arr.ravel()
        _check_rules(flat, ~np.isnan(flat), arr.shape, name, low=lo, high=hi, whole=False)
        arrays.append(flat)
    first, second = arrays
    if first.size != second.size:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of cells "
            f"({first.size} and {second.size})"
        )
    both = ~np.isnan(first) & ~np.isnan(second)
    return first[both], second[both]
