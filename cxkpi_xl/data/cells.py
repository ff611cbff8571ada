"""Numbers and dates as exports and people type them.

Each parser takes one distinct cell value and returns the number or date it means, or
raises :class:`BadValue` with what is wrong in words. The reader calls them once per
distinct value of a column, and decides per column the order of day and month of numeric
dates such as ``03/04/2026`` (:func:`date_order_evidence`).

Numbers: ``1200.5``, ``1,200.50``, ``$1,200.50``, ``USD 1,200``, ``1 200,50 €`` (with the
``decimal_separator`` setting ``,``), accounting negatives ``(1,200.50)``. Dates: ISO
(``2026-03-15``, with or without a time), Excel serial numbers, months (``2026-01``,
``01/2026``, ``Jan 2026``, ``January 2026``, ``Jan-26``), month-name dates (``January 5,
2026``, ``5 Jan 2026``, ``5-Jan-26``), numeric dates (``03/15/2026``, ``15/03/2026``,
``15.03.2026``, ``2026/03/15``, ``20260315``). A whole number from 1900 to 2100 in a date
column is a year, not a date.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd

EXCEL_ERRORS = frozenset(
    {
        "#N/A",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
        "#GETTING_DATA",
        "#N/A!",
    }
)
"""Excel's error values, as a cell shows them and as CSV exports write them."""

DATE_ORDERS = ("auto", "DMY", "MDY", "YMD")
AMBIGUOUS_DATE_ORDER = "MDY"
"""The order used for a column whose numeric dates all fit both day-first and month-first
and when no other date column of the source shows which order it uses: Excel's US order."""

YEARS = (1900, 2100)
"""A whole number in this range in a date column is a year, not an Excel serial."""


class BadValue(Exception):
    """A value that does not fit its column; the message says what is wrong in words."""


def show_value(v: Any) -> str:
    """A value as the user typed it: ``11`` (never ``np.float64(11.0)``), ``1200.5``,
    ``'ten'``, ``2026-03-15``; a blank is ``(blank)``."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return "(blank)"
    if isinstance(v, str) and not v.strip():
        return "(blank)"
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e16 else repr(f)
    if isinstance(v, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(v)
        return str(ts.date()) if ts == ts.normalize() else str(ts)
    if isinstance(v, dt.date):
        return v.isoformat()
    return f"'{v}'"


def excel_error(v: Any) -> str | None:
    """The Excel error a cell holds (``#N/A``, ``#DIV/0!``...), or None."""
    if isinstance(v, str) and v[:1] == "#":
        s = v.strip().upper()
        if s in EXCEL_ERRORS:
            return s
    return None


def error_problem(error: str) -> str:
    return f"is the Excel error {error}, not a value"


# --- numbers ------------------------------------------------------------------------

_SPACES = "\u00a0\u202f\u2009 "
_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[A-Z]{0,2}[$€£¥₹]|[$€£¥₹])")
_CURRENCY_END = re.compile(r"(?:[A-Z]{3}|[$€£¥₹])$")


def _number_pattern(decimal: str) -> re.Pattern[str]:
    group = r"[,'\u00a0\u202f\u2009 ]" if decimal == "." else r"[.'\u00a0\u202f\u2009 ]"
    d = re.escape(decimal)
    return re.compile(
        rf"^(?:\d{{1,3}}(?P<g>{group})\d{{3}}(?:(?P=g)\d{{3}})*|\d+)?(?:{d}\d*)?"
        rf"(?:[eE][-+]?\d+)?$"
    )


_NUMBER = {".": _number_pattern("."), ",": _number_pattern(",")}


def parse_number(v: Any, decimal: str = ".") -> float:
    """The number a text cell means. ``decimal`` is the decimal separator (``.`` or
    ``,``); the other one, spaces and apostrophes group thousands.

    >>> parse_number("$1,200.50"), parse_number("(1,200.50)"), parse_number("1.200,5", ",")
    (1200.5, -1200.5, 1200.5)
    """
    if isinstance(v, bool):
        raise BadValue("is TRUE/FALSE, not a number")
    if isinstance(v, int | float | np.integer | np.floating):
        f = float(v)
        if math.isinf(f):
            raise BadValue("is not a number")
        return f
    if not isinstance(v, str):
        raise BadValue("is a date, not a number" if isinstance(v, dt.date) else "is not a number")
    s = v.strip(_SPACES)
    negative = False
    if s[:1] == "(" and s[-1:] == ")":
        negative, s = True, s[1:-1].strip(_SPACES)
    for pattern in (_CURRENCY, _CURRENCY_END):
        s = pattern.sub("", s).strip(_SPACES)
    if s[:1] in "-\u2212":
        negative, s = not negative, s[1:].strip(_SPACES)
    elif s[:1] == "+":
        s = s[1:]
    if s and any(ch.isdigit() for ch in s) and _NUMBER[decimal].match(s):
        body = s.replace(decimal, "\0")
        body = "".join(ch for ch in body if ch.isdigit() or ch in "\0eE-+").replace("\0", ".")
        try:
            f = float(body)
        except ValueError:
            pass
        else:
            return -f if negative else f
    other = "," if decimal == "." else "."
    if s and _NUMBER[other].match(s) and any(ch.isdigit() for ch in s):
        return _hint(s, other)
    raise BadValue("is not a number")


def _hint(s: str, other: str) -> float:
    alt = parse_number(s, other)
    raise BadValue(
        f"is not a number with {'.' if other == ',' else ','} as decimal separator "
        f"(with the setting decimal_separator {other} it would be {show_value(alt)})"
    )


# --- dates --------------------------------------------------------------------------

_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_LAST_SERIAL = 2958466  # 9999-12-31 is serial 2958465
_TIME = re.compile(
    r"[ T]+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[aApP]\.?[mM]\.?)?"
    r"(?:\s*(?:Z|[+-]\d{2}:?\d{2}))?$"
)
_NUMERIC = re.compile(r"^(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})$")
_MONTH_YEAR = re.compile(r"^(\d{1,2})[/.\-](\d{4})$|^(\d{4})[/.\-](\d{1,2})$")
_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = frozenset(
    "mon tue tues wed thu thur thurs fri sat sun monday tuesday wednesday thursday friday "
    "saturday sunday".split()
)
_TOKENS = re.compile(r"[a-z]+|\d+")


def _year(text: str) -> int:
    y = int(text)
    if len(text) <= 2:  # Excel's rule for two-digit years: 00-29 are 20xx, 30-99 19xx
        return 2000 + y if y < 30 else 1900 + y
    return y


def _date(y: int, m: int, d: int) -> pd.Timestamp:
    try:
        return pd.Timestamp(dt.datetime(y, m, d))
    except ValueError:
        raise BadValue("is not a date (no such day)") from None


def _may_be_numeric_dmy(text: Any) -> bool:
    """A cheap first look (the column's distinct values may be many): ``03/04/2026``
    has a separator second or third, ISO ``2026-03-04`` has it fifth."""
    if not isinstance(text, str):
        return False
    t = text.lstrip()
    return len(t) >= 6 and (t[1] in "/.-" or t[2] in "/.-")


def date_order_evidence(text: Any) -> str | None:
    """``DMY`` or ``MDY`` if a numeric date can be read only one way (``15/03/2026``,
    ``03/15/2026``), else None (``03/04/2026``, ISO dates, anything else)."""
    if not _may_be_numeric_dmy(text):
        return None
    m = _NUMERIC.match(_TIME.sub("", text.strip()))
    if m is None or len(m.group(1)) > 2:
        return None
    a, b = int(m.group(1)), int(m.group(3))
    if a > 12 >= b >= 1:
        return "DMY"
    if b > 12 >= a >= 1:
        return "MDY"
    return None


def is_ambiguous(text: Any) -> bool:
    """True for a numeric date that fits both day-first and month-first (``03/04/2026``)."""
    if not _may_be_numeric_dmy(text):
        return False
    m = _NUMERIC.match(_TIME.sub("", text.strip()))
    if m is None or len(m.group(1)) > 2:
        return False
    a, b = int(m.group(1)), int(m.group(3))
    return 1 <= a <= 12 and 1 <= b <= 12 and a != b


def _serial(f: float) -> pd.Timestamp:
    if f.is_integer() and YEARS[0] <= f <= YEARS[1]:
        raise BadValue("looks like a year, not a date")
    if 19000101 <= f <= 21001231 and f.is_integer():  # 20260315 typed as a number
        n = int(f)
        return _date(n // 10000, n // 100 % 100, n % 100)
    if not 1 <= f < _LAST_SERIAL:
        raise BadValue("is not a date")
    return pd.Timestamp(_EXCEL_EPOCH + dt.timedelta(days=f))


def parse_date(v: Any, order: str = AMBIGUOUS_DATE_ORDER, strict: bool = False) -> pd.Timestamp:
    """The date a cell means. ``order`` (``DMY``, ``MDY`` or ``YMD``) reads numeric dates
    whose first two numbers could each be the day; with ``strict`` (the ``date_order``
    setting was given) a date that does not fit the order is refused, otherwise a date
    that fits only one order is read that way.

    >>> [str(parse_date(s, "DMY").date()) for s in ("15/03/2026", "03/04/2026", "Jan 2026")]
    ['2026-03-15', '2026-04-03', '2026-01-01']
    """
    if isinstance(v, pd.Timestamp):
        return v
    if isinstance(v, dt.datetime):
        return pd.Timestamp(v.replace(tzinfo=None))
    if isinstance(v, dt.date):
        return pd.Timestamp(v)
    if isinstance(v, bool | np.bool_):
        raise BadValue("is TRUE/FALSE, not a date")
    if isinstance(v, int | float | np.integer | np.floating):
        return _serial(float(v))
    if not isinstance(v, str):
        raise BadValue("is not a date")
    s = v.strip(_SPACES)
    if len(s) >= 10 and s[4] == "-" and s[:4].isdigit():  # ISO, the common case
        try:
            return pd.Timestamp(dt.datetime.fromisoformat(s.replace("Z", "+00:00"))).tz_localize(
                None
            )
        except ValueError:
            pass
    if s.replace(".", "", 1).isdigit():
        return _serial(float(s))
    core = _TIME.sub("", s)
    m = _NUMERIC.match(core)
    if m is not None:
        return _numeric_date(m, order, strict)
    m = _MONTH_YEAR.match(core)
    if m is not None:
        month, year = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        if 1 <= int(month) <= 12:
            return _date(int(year), int(month), 1)
        raise BadValue("is not a date (no such month)")
    return _named_month_date(core)


def _numeric_date(m: re.Match[str], order: str, strict: bool) -> pd.Timestamp:
    a, b, c = m.group(1), m.group(3), m.group(4)
    if len(a) == 4:  # 2026/03/15: the year first is always year, month, day
        return _date(int(a), int(b), int(c))
    if len(a) == 3 or len(c) == 3:
        raise BadValue("is not a date")
    if order == "YMD":
        return _date(_year(a), int(b), int(c))
    x, y, year = int(a), int(b), _year(c)
    day, month = (x, y) if order == "DMY" else (y, x)
    if month > 12 and day <= 12:
        if strict:
            raise BadValue(f"is not a date in {order} order (the date_order setting)")
        day, month = month, day
    return _date(year, month, day)


def _named_month_date(core: str) -> pd.Timestamp:
    tokens = _TOKENS.findall(core.lower())
    words = [t for t in tokens if not t.isdigit() and t not in _WEEKDAYS]
    words = [w for w in words if w not in ("st", "nd", "rd", "th", "of")]
    numbers = [t for t in tokens if t.isdigit()]
    if len(words) != 1 or words[0] not in _MONTHS or not 1 <= len(numbers) <= 2:
        raise BadValue("is not a date (use YYYY-MM-DD)")
    month = _MONTHS[words[0]]
    if len(numbers) == 1:  # Jan 2026, January 2026, Jan-26
        return _date(_year(numbers[0]), month, 1)
    if len(numbers[0]) == 4:  # 2026 Jan 5
        year, day = numbers
    else:  # January 5, 2026; 5 Jan 2026; 5-Jan-26: the last number is the year
        day, year = numbers
    if len(day) > 2:
        raise BadValue("is not a date (use YYYY-MM-DD)")
    return _date(_year(year), month, int(day))
