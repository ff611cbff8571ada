"""The engine's faster ways give what the previous ones gave, to the bit: each previous
way is kept here as the reference and run on small data with the edge cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data.reader import Dataset, read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.data.usage import UsageSummary
from cxkpi_xl.engine import assemble
from cxkpi_xl.engine.memo import encoded_columns


def _encode_ids_before(data: Dataset) -> Dataset:
    """The previous ``_encode_ids``: one factorization of every id column end to end (the
    Usage summary's customers standing for the Usage column)."""
    cols = encoded_columns()
    summary = data.usage_summary
    parts = [
        summary.customers
        if summary is not None and (t, c) == ("Usage", "customer_id")
        else data.tables[t][c].to_numpy(object)
        for t, c in cols
    ]
    codes, _ = pd.factorize(np.concatenate([np.asarray(p, dtype=object) for p in parts]))
    floats = np.where(codes < 0, np.nan, codes.astype(float))
    tables = dict(data.tables)
    start = 0
    for (t, c), part in zip(cols, parts, strict=True):
        values = floats[start : start + len(part)]
        start += len(part)
        if summary is not None and (t, c) == ("Usage", "customer_id"):
            summary = summary.with_customers(values)
            continue
        if tables[t] is data.tables[t]:
            tables[t] = tables[t].copy(deep=False)
        tables[t][c] = values
    return dataclasses.replace(data, tables=tables, usage_summary=summary)


def _with_categoricals(data: Dataset) -> Dataset:
    """``data`` with MRR's and Surveys' customer ids as categoricals, as a source gives
    them: categories in another order than the rows use them, unused ones, blanks, and
    ids first seen outside Customers."""
    t = {n: f.copy() for n, f in data.tables.items()}
    mrr, sv = t["MRR"], t["Surveys"]
    mrr.loc[mrr.index[:2], "customer_id"] = ["ghost-mrr", None]
    sv.loc[sv.index[:3], "customer_id"] = [None, "ghost-survey", "ghost-mrr"]
    for frame, extra in ((mrr, ["unused-1"]), (sv, ["unused-2", "ghost-mrr"])):
        ids = frame["customer_id"]
        cats = sorted(set(ids.dropna()) | set(extra), reverse=True)
        frame["customer_id"] = pd.Categorical(ids, categories=cats)
    cust = t["Customers"]
    cust.loc[cust.index[:2], "referred_by"] = ["ghost-survey", "nobody"]
    return dataclasses.replace(data, tables=t)


def _summary_with(data: Dataset, customers: np.ndarray) -> Dataset:
    """``data`` with a Usage summary of those (distinct) customers."""
    rng = np.random.default_rng(4)
    n = 200
    none = np.zeros(0, np.int64)
    summary = UsageSummary.build(
        none, none, none, none,
        rng.integers(24_300, 24_310, n), rng.integers(-1, len(customers), n),
        rng.integers(0, 2, n), customers, np.array(["a", "b"], dtype=object),
    )  # fmt: skip
    return dataclasses.replace(data, usage_summary=summary)


def _assert_same_codes(new: Dataset, old: Dataset) -> None:
    for name, table in old.tables.items():
        pd.testing.assert_frame_equal(new.tables[name], table, check_exact=True)
    if old.usage_summary is None:
        assert new.usage_summary is None
    else:
        assert new.usage_summary is not None
        np.testing.assert_array_equal(new.usage_summary.customers, old.usage_summary.customers)


@pytest.mark.parametrize("usage", ["none", "as_customers", "other_order", "with_ghost"])
def test_encode_ids_of_categoricals_and_a_summary_give_the_previous_codes(usage: str) -> None:
    data = _with_categoricals(read(generate("small", seed=6)))
    ids = data.tables["Customers"]["customer_id"].to_numpy(object)
    if usage == "as_customers":  # the Customers ids, in order: their codes, not hashed
        data = _summary_with(data, ids.copy())
    elif usage == "other_order":
        data = _summary_with(data, ids[::-1].copy())
    elif usage == "with_ghost":
        data = _summary_with(data, np.r_[ids[:5], ["ghost-usage"], ids[5:]].astype(object))
    new, old = assemble._encode_ids(data), _encode_ids_before(data)
    _assert_same_codes(new, old)
    mrr = new.tables["MRR"]["customer_id"]
    assert mrr.dtype == np.float64 and mrr.isna().sum() == 1
    assert data.tables["MRR"]["customer_id"].dtype == "category"  # the caller's, untouched


def test_encode_ids_of_empty_categoricals() -> None:
    data = _with_categoricals(read(generate("tiny", seed=1)))
    empty = {n: t.iloc[0:0] for n, t in data.tables.items()}
    data = _summary_with(dataclasses.replace(data, tables=empty), np.zeros(0, dtype=object))
    _assert_same_codes(assemble._encode_ids(data), _encode_ids_before(data))


def test_ids_of_codes_are_found_without_hashing_and_equal_pd_unique() -> None:
    from cxkpi_xl.engine.subscriptions import _ids_of

    def before(a: pd.Series, b: pd.Series) -> np.ndarray:
        return np.asarray(pd.unique(pd.concat([a, b], ignore_index=True)))

    data = assemble._encode_ids(_with_categoricals(read(generate("small", seed=7))))
    cust, mrr = data.tables["Customers"]["customer_id"], data.tables["MRR"]["customer_id"]
    cases = [
        (cust, mrr.dropna()),  # the engine's codes: 0, 1, 2, ... (ids first seen in MRR too)
        (cust, mrr),  # a blank id (NaN) among them
        (pd.Series([0.0, 2.0, 1.0]), pd.Series([1.0, 3.0])),  # not in order of appearance
        (pd.Series([0.0, 1.0]), pd.Series([1.5, 2.0])),  # not whole numbers
        (pd.Series([1.0, 0.0]), pd.Series([2.0])),  # not from 0
        (pd.Series(["b", "a"], dtype=object), pd.Series(["a", "c"], dtype=object)),
        (pd.Series([], dtype=float), pd.Series([], dtype=float)),
    ]
    for a, b in cases:
        got, want = np.asarray(_ids_of(a, b)), before(a, b)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert len(_ids_of(*cases[0])) > len(cust)  # the ghost in MRR is one more


def test_shared_months_are_worked_out_once_and_read_only() -> None:
    from cxkpi_xl.data.periods import forget_months, months_of, shared_months

    frame = pd.DataFrame({"d": pd.to_datetime(["2026-01-31", None, "2025-12-01"])})
    plain = months_of(frame["d"])
    with shared_months():
        first, again = months_of(frame["d"]), months_of(frame["d"])
        assert first is again and not first.flags.writeable
        np.testing.assert_array_equal(first, plain)
        other = months_of(frame["d"].iloc[::-1])  # other dates: their own months
        np.testing.assert_array_equal(other, plain[::-1])
        forget_months(frame["d"])  # let go: worked out again, a new array
        again = months_of(frame["d"])
        assert again is not first and np.array_equal(again, plain)
        assert months_of(frame["d"]) is again
    frame.loc[0, "d"] = pd.Timestamp("2026-05-02")  # outside: worked out again
    assert months_of(frame["d"])[0] == 2026 * 12 + 4 and months_of(frame["d"]).flags.writeable


def test_survey_kinds_are_the_categorical_codes() -> None:
    from cxkpi_xl.data.periods import shared_months
    from cxkpi_xl.engine.feedback import SURVEY_KINDS, survey_kinds

    values = ["NPS", "CSAT", None, "nps", "STAR", "CES", "other", "NPS", np.nan, "CES "]
    for dtype in (object, "category", "str"):
        sv = pd.DataFrame({"survey": pd.Series(values, dtype=dtype)})
        # as pd.Categorical(survey, categories=SURVEY_KINDS).codes gave (now deprecated
        # for values outside the categories): a kind's position, -1 for anything else
        want = [SURVEY_KINDS.index(v) if v in SURVEY_KINDS else -1 for v in values]
        got = survey_kinds(sv)
        assert got.dtype == np.int8 and got.tolist() == want, dtype
        with shared_months():
            assert survey_kinds(sv).tolist() == want
    assert want == [0, 1, -1, -1, 3, 2, -1, 0, -1, -1]


def _month_range_before(data: Dataset) -> tuple[int, int] | None:
    """The previous ``axis._month_range``: every column's months concatenated."""
    from cxkpi_xl.data.periods import months_of

    found: list[np.ndarray] = []
    for table, column in (
        ("MRR", "month"), ("Orders", "order_date"), ("Surveys", "response_date"),
        ("Tickets", "opened_date"), ("Usage", "activity_date"),
        ("Health", "month"), ("Funnel", "month"), ("Costs", "month"),
    ):  # fmt: skip
        frame = data.tables[table]
        if table == "Usage" and data.usage_summary is not None:
            found.append(data.usage_summary.months)
        elif not frame.empty:
            m = months_of(frame[column])
            found.append(m[m >= 0])
    if not any(len(f) for f in found):
        cust = data.tables["Customers"]
        found = [months_of(cust[c]) for c in ("signup_date", "churn_date")]
        found = [f[f >= 0] for f in found]
    found = [f for f in found if len(f)]
    if not found:
        return None
    allm = np.concatenate(found)
    mrr = data.tables["MRR"]
    last = int(months_of(mrr["month"]).max()) if not mrr.empty else int(allm.max())
    return int(allm.min()), last


def test_month_range_is_the_previous_one() -> None:
    from cxkpi_xl.engine.axis import _month_range

    data = read(generate("small", seed=8))
    t = data.tables
    early = t["Surveys"].copy()
    early.loc[early.index[0], "response_date"] = pd.Timestamp("2019-03-04")  # the first
    early.loc[early.index[1], "response_date"] = pd.NaT
    blank_mrr = t["MRR"].assign(month=pd.NaT)
    variants = {
        "as read": t,
        "an early survey": {**t, "Surveys": early},
        "no MRR": {**t, "MRR": t["MRR"].iloc[0:0]},
        "MRR without a month": {**t, "MRR": blank_mrr},
        "customers alone": {n: (f if n == "Customers" else f.iloc[0:0]) for n, f in t.items()},
        "nothing": {n: f.iloc[0:0] for n, f in t.items()},
    }
    seen = set()
    for name, tables in variants.items():
        for summary in (None, _summary_with(data, np.array(["x"], dtype=object)).usage_summary):
            case = dataclasses.replace(data, tables=tables, usage_summary=summary)
            got = _month_range(case)
            assert got == _month_range_before(case), name
            seen.add(got)
    assert None in seen and len(seen) >= 4


def test_group_sums_of_rows_in_cell_order_are_the_bincount_sums() -> None:
    from cxkpi_xl.engine.groups import _Groupings

    rng = np.random.default_rng(9)
    n = 4_000
    a, b = rng.integers(-1, 5, n), rng.integers(-1, 3, n)  # -1: in no group
    b[:7] = 2  # a group whose rows come first
    g = _Groupings([a, b], [5, 3])
    values = rng.integers(-(2**31), 2**31, (3, n)).astype(np.int32)  # months x customers
    mask = rng.uniform(size=(3, n)) < 0.4
    sorted_values, sorted_mask = g.in_cell_order(values), g.in_cell_order(mask)
    assert sorted_values.flags.c_contiguous and sorted_mask.flags.c_contiguous
    for row in range(3):
        for new, old in zip(g.sum_sorted(sorted_values[row]), g.sum(values[row]), strict=True):
            assert new.dtype == old.dtype == np.int64 and new.tolist() == old.tolist()
        for new, old in zip(g.count_sorted(sorted_mask[row]), g.count(mask[row]), strict=True):
            assert new.tolist() == old.tolist()
    none = _Groupings([np.zeros(0, np.int64)], [2])  # no customers: every group empty
    assert [c.tolist() for c in none.count_sorted(np.zeros(0, bool))] == [[0, 0]]


@pytest.mark.parametrize(
    "unit, times", [("ms", False), ("ns", False), ("s", True), ("D", False), ("us", True)]
)
def test_order_by_date_is_the_stable_order_of_the_nanoseconds(unit: str, times: bool) -> None:
    # The NPS categories take the answers by date, in table order within a date, NaT
    # first: the previous way sorted the dates' nanoseconds (NaT the smallest integer).
    from cxkpi_xl.engine.nps import _order_by_date

    rng = np.random.default_rng(10)
    days = rng.integers(19_000, 19_400, 5_000).astype("datetime64[D]")
    dates = days.astype(f"datetime64[{unit}]")
    if times:  # a time of day: sorted by the dates themselves
        dates = dates + rng.integers(0, 3, 5_000).astype(f"timedelta64[{unit}]")
    dates[rng.integers(0, 5_000, 40)] = np.datetime64("NaT")
    want = np.argsort(dates.astype("datetime64[ns]").view(np.int64), kind="stable")
    assert np.array_equal(_order_by_date(dates), want)
    assert np.isnat(dates[_order_by_date(dates)][:30]).all()
    far = np.array(["1900-01-01", "2100-01-01", "NaT", "1900-01-01"], dtype=f"datetime64[{unit}]")
    want = np.argsort(far.astype("datetime64[ns]").view(np.int64), kind="stable")
    assert _order_by_date(far).tolist() == want.tolist() == [2, 0, 3, 1]  # 200 years


@pytest.mark.parametrize("granularity", ["month", "quarter"])
def test_survey_kpis_by_group_are_each_group_s_rows_alone(granularity: str) -> None:
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.feedback import _survey_kpis_by_group, _survey_kpis_of

    data = read(generate("small", seed=11))
    axis = _axis(data, granularity)
    assert axis is not None
    rng = np.random.default_rng(12)
    n, size = 3_000, 5
    pcol = rng.integers(-1, len(axis.periods), n)  # -1: no period
    kind = rng.integers(-1, 4, n).astype(np.int8)  # -1: another kind
    score = rng.integers(1, 6, n).astype(float)  # a valid score of every kind
    group = rng.integers(-1, size - 1, n)  # -1: no group; the last group has no rows
    got = _survey_kpis_by_group(pcol, kind, score, group, size, axis, data.settings)
    assert len(got) == size
    for g in range(size):
        mine = np.flatnonzero(group == g)  # the group's rows, in table order
        want: dict[str, np.ndarray] = {}
        _survey_kpis_of(pcol[mine], kind[mine], score[mine], axis, data.settings, want)
        assert list(got[g]) == list(want)
        for name, values in want.items():
            np.testing.assert_array_equal(got[g][name], values, err_msg=name)
    assert np.isnan(got[size - 1]["nps"]).all() and not np.isnan(got[0]["nps"]).all()


@pytest.mark.parametrize("granularity", ["month", "quarter"])
def test_cx_to_revenue_with_credits_and_customers_who_leave_and_return(granularity: str) -> None:
    # The cohort's expansion, contraction and churn by category come from one bincount;
    # credits (MRR below zero at the end) are in none of them, as before.
    from cxkpi_xl.engine import breakdowns
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.subscriptions import _Base
    from tests.test_breakdowns_fast import _edge_data
    from tests.test_engine_fast import _cx_to_revenue_before

    data = _edge_data("medium", seed=16)
    data.settings.update({"granularity": granularity})
    data = assemble._encode_ids(data)
    axis = _axis(data, granularity)
    assert axis is not None
    base = _Base(data, axis)
    paying = np.flatnonzero((base.mrr[:, 2:8] > 0).all(axis=1))
    base.mrr[paying[:5], 4] = -7  # credits
    base.mrr[paying[5:9], 3:5] = 0  # leave and come back
    base.mrr[paying[9:12], 6] += 1000  # expand
    base._movements()
    new = breakdowns._cx_to_revenue(data, base, axis, {})
    old = _cx_to_revenue_before(data, base, axis, {})
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    nrr = new[new["kpi"] == "net_revenue_retention"].iloc[:, 2:].to_numpy(float)
    assert np.isfinite(nrr).any()
