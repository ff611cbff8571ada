"""The shared error model: blanks, text, booleans, dates, ragged ranges, zero_division."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl._check import amounts, dates_as_days, divide, to_float_array, values


def test_blanks_become_nan_and_are_dropped():
    arr = to_float_array([1, None, "", " ", math.nan, "2.5"], "x")
    assert np.isnan(arr[1:5]).all() and arr[0] == 1 and arr[5] == 2.5
    assert values([1, None, "2"], "x").tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("abc", "is text, not a number"),
        ("nan", "is text, not a number"),
        (True, "TRUE/FALSE"),
        (np.bool_(False), "TRUE/FALSE"),
        (dt.date(2026, 1, 1), "is a date"),
        (math.inf, "not a finite number"),
        ("-inf", "not a finite number"),
        (object(), "is a object"),
    ],
)
def test_invalid_values_named_with_position(bad, reason):
    with pytest.raises(ValueError, match=reason) as e:
        to_float_array([1.0, 2.0, bad], "scores")
    assert str(e.value).startswith("scores: ") and "position 3" in str(e.value)


def test_booleans_mixed_with_floats_are_not_silently_one():
    # np.asarray([True, 1.0]) is [1.0, 1.0]; ours must refuse the TRUE.
    with pytest.raises(ValueError, match=r"TRUE/FALSE"):
        values([[1.0], [True]], "scores")


def test_numeric_arrays_pass_through_and_inf_is_caught():
    assert values(np.arange(3), "x").tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"position 2"):
        values(np.array([1.0, np.inf]), "x")
    assert values(pd.Series([1, None, 3]), "x").tolist() == [1.0, 3.0]


def test_ragged_range():
    with pytest.raises(ValueError, match=r"not rectangular"):
        values([[1, 2], [3]], "x")


def test_amounts_keep_shape_and_blanks():
    arr = amounts([[1, None], [3, 4]], "x")
    assert arr.shape == (2, 2) and math.isnan(arr[0, 1])
    with pytest.raises(ValueError, match=r"x: -3 at position 3 \(row 2, column 1\) is negative"):
        amounts([[1, None], [-3, 4]], "x")


def test_divide_zero_division_forms():
    assert math.isnan(divide(1.0, 0.0, math.nan, "d"))
    assert divide(1.0, 0.0, 0.0, "d") == 0.0
    assert divide(np.array([1.0, 2.0]), np.array([2.0, 0.0]), -1.0, "d").tolist() == [0.5, -1.0]
    with pytest.raises(ZeroDivisionError, match=r"d is zero"):
        divide(1.0, 0.0, "raise", "d")
    # A blank numerator stays blank even over a zero denominator.
    assert math.isnan(divide(math.nan, 0.0, "raise", "d"))
    for bad in ("warn", True, None):
        with pytest.raises(ValueError, match=r"zero_division"):
            divide(1.0, 1.0, bad, "d")


def test_dates_forms():
    days = dates_as_days(
        ["1970-01-02", dt.date(1970, 1, 3), 25572, None, np.datetime64("1970-01-05")], "d"
    )
    assert days[[0, 1, 2, 4]].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert math.isnan(days[3])
    with pytest.raises(ValueError, match=r"not a date or an Excel date serial"):
        dates_as_days([-5], "d")
