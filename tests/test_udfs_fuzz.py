"""Fuzzing the Excel functions: whatever Excel sends, the answer is a value or an Excel
error, and the only exception that leaves is xlwings.XlwingsError (a #VALUE! with a
message). Each function gets 350 examples: 14,000 for the 40 functions."""

from __future__ import annotations

import math

import pytest
import xlwings as xw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxkpi_xl.catalogue import excel_functions

from .excel import call

cells = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, 0.05, 46023.0, 9.0, 10.0, 4.0]),
    st.text(max_size=6),
    st.sampled_from(["9", " 4 ", "1e3", "#N/A", "=1+1", "2026-01-31", "wald", "adjusted_wald"]),
)


@st.composite
def ranges(draw):
    rows = draw(st.integers(1, 6))
    cols = draw(st.integers(1, 3))
    return [[draw(cells) for _ in range(cols)] for _ in range(rows)]


def _ok_cell(c):
    if isinstance(c, dict):
        return c.get("type") == "Error"
    if isinstance(c, float):
        return math.isfinite(c)
    return isinstance(c, int | str)


@pytest.mark.parametrize("kpi", excel_functions(), ids=lambda k: k.excel_name)
def test_any_input_gives_a_value_or_an_excel_error(kpi):
    n = len(kpi.arguments)

    @settings(
        max_examples=350,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.integers(1, n).flatmap(lambda k: st.lists(ranges(), min_size=k, max_size=k)))
    def check(args):
        try:
            result = call(kpi.excel_name, *args)
        except xw.XlwingsError as e:
            assert str(e).startswith(kpi.excel_name)
            return
        assert isinstance(result, list) and result and all(isinstance(r, list) for r in result)
        for row in result:
            for c in row:
                assert _ok_cell(c), (args, result)

    check()
