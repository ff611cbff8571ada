"""The reader's row rules computed over distinct values and integer codes (what makes a
20-million-row MRR table readable) against the plain computations they replace: the
far-date rule as ``np.median`` over every row, and duplicates as pandas'
``DataFrame.duplicated``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cxkpi_xl.data.reader import (
    OUTLIER_MIN_WINDOW,
    OUTLIER_SPREAD,
    _duplicated,
    _far_dates,
    _weighted_median,
    read,
)


def far_by_rows(dates: pd.Series) -> np.ndarray:
    """The far-date rule as written before, over every row (the reference)."""
    ns = dates.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    known = ~dates.isna().to_numpy()
    if known.sum() < 3:
        return np.zeros(len(dates), dtype=bool)
    values = ns[known].astype(float)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    window = max(OUTLIER_SPREAD * mad, float(OUTLIER_MIN_WINDOW.value))
    far = np.zeros(len(dates), dtype=bool)
    far[known] = np.abs(values - median) > window
    return far


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.integers(1, 5)), min_size=1, max_size=30))
def test_the_weighted_median_is_the_median_of_the_repeated_values(pairs):
    values = np.array([v for v, _ in pairs])
    counts = np.array([c for _, c in pairs])
    assert _weighted_median(values, counts) == float(np.median(np.repeat(values, counts)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 2000), min_size=0, max_size=60),
    st.lists(st.sampled_from([-40000, -9000, 9000, 80000]), max_size=4),
    st.lists(st.integers(0, 59), max_size=5),
)
def test_far_dates_by_distinct_value_equal_the_rule_over_rows(days, typos, blanks):
    # Days of a few years, a few typos decades away, some blank cells; each distinct date
    # is judged once with its count of rows.
    base = pd.Timestamp("2020-01-01")
    cells = [base + pd.Timedelta(days=d) for d in days + typos]
    for i in blanks:
        if i < len(cells):
            cells[i] = pd.NaT
    dates = pd.Series(pd.to_datetime(pd.Series(cells, dtype="datetime64[ns]")))
    codes, uniques = pd.factorize(dates)  # NaT -> -1
    distinct = pd.Series(pd.DatetimeIndex([*uniques, pd.NaT]))
    counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
    assert (_far_dates(distinct, counts)[codes] == far_by_rows(dates)).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 3), st.booleans()),
        max_size=40,
    ),
    st.booleans(),
)
def test_duplicates_by_codes_equal_pandas_duplicated(rows, use_codes):
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([r[0] for r in rows], dtype=object),
            "month": pd.Series([r[1] for r in rows], dtype="int64"),
        }
    )
    skip = np.array([r[2] for r in rows], dtype=bool)
    known = None
    if use_codes:  # the codes the reader keeps per column (-1 for a blank)
        known = {c: pd.factorize(frame[c])[0] for c in frame.columns}
    for columns in (["customer_id"], ["customer_id", "month"]):
        expected = np.zeros(len(frame), dtype=bool)
        expected[~skip] = frame.loc[~skip, columns].duplicated(keep="first").to_numpy()
        assert (_duplicated(frame, columns, skip, known) == expected).all()


def test_a_big_key_range_is_numbered_afresh_and_stays_exact():
    # Three columns of many distinct values: their product passes 2**62, so the key is
    # numbered again on the way; the duplicates are still pandas' own.
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame(
        {c: rng.integers(0, 2**21, n) for c in ("a", "b", "c")} | {"d": rng.integers(0, 2, n)}
    )
    frame.iloc[n // 2 :] = frame.iloc[: n - n // 2].to_numpy()  # the second half repeats
    skip = rng.random(n) < 0.1
    known = {c: pd.factorize(frame[c])[0] for c in frame.columns}
    expected = np.zeros(n, dtype=bool)
    expected[~skip] = frame.loc[~skip].duplicated(keep="first").to_numpy()
    got = _duplicated(frame, ["a", "b", "c", "d"], skip, known)
    assert got.sum() > 1000 and (got == expected).all()


def test_an_mrr_row_twice_and_a_far_month_are_found_in_a_categorical_frame():
    # The columns a Parquet or database source hands over: text as categoricals.
    mrr = pd.DataFrame(
        {
            "customer_id": pd.Categorical(["A", "B", "A", "A", " A", "B"]),
            "month": pd.to_datetime(
                ["2025-01-01", "2025-01-01", "2025-02-03", "2025-02-20", "2025-03-01", "2204-01-01"]
            ),
            "mrr": [10.0, 20.0, 10.0, 5.0, 7.0, 20.0],
        }
    )
    data = read({"MRR": mrr})
    got = sorted((i.row, i.column, i.problem.split(" (")[0]) for i in data.issues)
    assert got == [
        (5, "month", "second MRR row for this customer and month"),
        (7, "month", "is far outside the column's other dates"),
    ]
    assert data.tables["MRR"]["customer_id"].tolist() == ["A", "B", "A", "A", "A"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-80_000_000_000, 9_000_000_000)), min_size=0, max_size=30
    ),
    st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_months_of_equal_numpys_own_conversion(seconds, unit):
    # Seconds from 1970 between the year -566 and 2255 (-80e9 .. 9e9; the table of days is
    # built only within 400,000 days, else numpy converts row by row), blanks as NaT.
    from cxkpi_xl.data.periods import months_of

    values = np.array(
        [np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in seconds],
        dtype="datetime64[s]",
    ).astype(f"datetime64[{unit}]")
    expected = values.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    expected[np.isnat(values)] = -1
    assert months_of(pd.Series(values)).tolist() == expected.tolist()
