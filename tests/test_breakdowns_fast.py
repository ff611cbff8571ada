"""The segment and owner breakdowns from sums by group (``engine.groups``) give the same
numbers, to the bit, as the report's KPI functions run on each group's own rows
(``_group_breakdowns_by_rows``, the previous way, kept as the reference and as the path
for data whose sums could not be exact)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data.reader import Dataset, read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.engine import assemble, breakdowns
from cxkpi_xl.engine.axis import _axis
from cxkpi_xl.engine.groups import _Groupings
from cxkpi_xl.engine.subscriptions import _Base, _subscription_sums


def _edge_data(size: str, seed: int) -> Dataset:
    """Generated data with the cases a sum by group could get wrong: customers in no
    group (MRR, orders and surveys of ids not in Customers), blank segments, an owner
    with one customer and no usage, a customer who churns and comes back, an unreadable
    MRR month, and a group without MRR in its first months."""
    data = read(generate(size, seed=seed))
    t = {n: f.copy() for n, f in data.tables.items()}
    cust, mrr = t["Customers"], t["MRR"]
    ids = cust["customer_id"].tolist()
    cust.loc[cust.index[:3], "segment"] = None
    cust.loc[cust.index[5], "owner"] = "Solo owner"
    cust.loc[cust.index[6], "segment"] = "Late segment"
    months = sorted(mrr["month"].unique())
    # the late segment's customer pays only from the fourth month
    mrr = mrr[~((mrr["customer_id"] == ids[6]) & mrr["month"].isin(months[:3]))]
    # churn and reactivation: two months without rows in the middle
    mrr = mrr[~((mrr["customer_id"] == ids[7]) & mrr["month"].isin(months[4:6]))]
    ghost = mrr.iloc[:4].copy()
    ghost["customer_id"] = "ghost"
    ghost["month"] = months[:4]
    unknown = mrr[mrr["customer_id"] == ids[8]].iloc[1:2].copy()
    mrr = mrr[~mrr.index.isin(unknown.index)]
    unknown["mrr"] = np.nan
    t["MRR"] = pd.concat([mrr, ghost, unknown], ignore_index=True)
    for name in ("Orders", "Surveys"):
        extra = t[name].iloc[:3].copy()
        extra["customer_id"] = "ghost"
        t[name] = pd.concat([t[name], extra], ignore_index=True)
    usage = t["Usage"]
    t["Usage"] = usage[usage["customer_id"] != ids[5]]
    return dataclasses.replace(data, tables=t, usage_summary=None)


def _both(data: Dataset, **settings: object) -> tuple[dict, dict]:
    data = copy.deepcopy(data)
    data.settings.update(settings)
    data = assemble._encode_ids(data)
    axis = _axis(data, data.settings["granularity"])
    assert axis is not None
    base = _Base(data, axis)
    columns = ["segment", "owner"]
    return (
        breakdowns._group_breakdowns_by_sums(data, base, axis, columns),
        breakdowns._group_breakdowns_by_rows(data, base, axis, columns),
    )


def _assert_same(new: dict, old: dict) -> None:
    assert list(new) == list(old)
    for column in old:
        pd.testing.assert_frame_equal(new[column], old[column], check_exact=True)


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_sums_by_group_equal_each_group_computed_alone(size: str) -> None:
    data = _edge_data(size, seed=2)
    new, old = _both(data)
    _assert_same(new, old)
    seg = new["segment"]
    assert "(no segment)" in set(seg["segment"]) and "Late segment" in set(seg["segment"])
    solo = new["owner"][new["owner"]["owner"] == "Solo owner"].set_index("kpi")
    assert solo.loc["product_usage_rate"].iloc[1:].isna().all()  # no usage at all: blank
    # the late segment pays from the fourth month: its movements are blank until then
    late = seg[seg["segment"] == "Late segment"].set_index("kpi").drop(columns="segment")
    assert late.loc["mrr_new"].iloc[:4].isna().all()
    assert late.loc["mrr"].iloc[4:].notna().all()


@pytest.mark.parametrize("granularity", ["quarter", "year"])
@pytest.mark.parametrize("convention", ["start", "include_new", "stripe"])
def test_sums_by_group_for_every_granularity_and_churn_convention(
    granularity: str, convention: str
) -> None:
    new, old = _both(_edge_data("small", seed=4), granularity=granularity,
                     churn_convention=convention)  # fmt: skip
    _assert_same(new, old)


def test_without_referred_by_or_usage_or_orders() -> None:
    data = _edge_data("small", seed=5)
    t = dict(data.tables)
    t["Orders"] = t["Orders"].iloc[0:0]
    t["Usage"] = t["Usage"].iloc[0:0]
    t["Customers"] = t["Customers"].assign(referred_by=None)
    data = dataclasses.replace(data, tables=t, usage_summary=None)
    new, old = _both(data)
    _assert_same(new, old)
    rates = new["segment"].set_index("kpi").loc["product_usage_rate"]
    assert rates.drop(columns="segment").isna().all().all()


def test_money_beyond_exact_float_sums_takes_the_rows_path() -> None:
    base = _Base.__new__(_Base)
    base.mrr = np.array([[0, 2**52], [0, 2**51]], dtype=np.int64)
    assert not _Groupings.exact_for(base)
    base.mrr = np.array([[0, 2**50], [0, 2**49]], dtype=np.int64)
    assert _Groupings.exact_for(base)


def test_groupings_sum_and_count_against_pandas() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    a = rng.integers(-1, 4, n)  # -1: in no group
    b = rng.integers(-1, 7, n)
    values = rng.integers(0, 10**9, n)
    mask = rng.uniform(size=n) < 0.3
    g = _Groupings([a, b], [4, 7])
    for codes, size, sums, counts, smallest in zip(
        (a, b), (4, 7), g.sum(values), g.count(mask), g.minimum(values, 10**10), strict=True
    ):
        frame = pd.DataFrame({"g": codes, "v": values, "m": mask})
        frame = frame[frame["g"] >= 0]
        by = frame.groupby("g")
        assert sums.tolist() == by["v"].sum().reindex(range(size), fill_value=0).tolist()
        assert counts.tolist() == by["m"].sum().reindex(range(size), fill_value=0).tolist()
        assert smallest.tolist() == by["v"].min().reindex(range(size), fill_value=10**10).tolist()


def _subscription_sums_before(base: _Base, axis: Any) -> dict[str, Any]:
    """The previous sums of ``_subscription_kpis``: every period read from the customers x
    months matrices column by column."""
    P = len(axis.periods)
    m = base.mrr
    out: dict[str, Any] = {"n": len(base.ids), "has": base.has_mrr_data}
    out["mrr_end"] = np.array([m[:, b].sum() for _, b in axis.periods], dtype=np.int64)
    out["mrr_start"] = np.array([m[:, a - 1].sum() for a, _ in axis.periods], dtype=np.int64)
    out["moves"] = {
        name: np.array([v[:, a - 1 : b].sum() for a, b in axis.periods], dtype=np.int64)
        for name, v in base.move.items()
    }
    mrr_cols = np.flatnonzero(m.any(axis=0))
    out["first_mrr"] = int(mrr_cols[0]) if len(mrr_cols) else axis.size
    out["paying_end"] = np.array([(m[:, b] > 0).sum() for _, b in axis.periods], dtype=float)
    exp, con, chu, expanded = (np.zeros(P) for _ in range(4))
    for p, (a, b) in enumerate(axis.periods):
        start, end = m[:, a - 1], m[:, b]
        cohort = start > 0
        s, e = start[cohort], end[cohort]
        exp[p] = np.where((e > s), e - s, 0).sum()
        con[p] = np.where((e > 0) & (e < s), s - e, 0).sum()
        chu[p] = np.where(e == 0, s, 0).sum()
        expanded[p] = (base.move["mrr_expansion"][:, a - 1 : b].sum(axis=1) > 0)[cohort].sum()
    out.update(exp=exp, con=con, chu=chu, expanded=expanded)
    out["paying_start"] = np.array([(m[:, a - 1] > 0).sum() for a, _ in axis.periods], float)
    A = base.active
    out["S"] = np.array([A[:, a - 1].sum() for a, _ in axis.periods], dtype=float)
    out["E"] = np.array([A[:, b].sum() for _, b in axis.periods], dtype=float)
    lost, new, joined_left = (np.zeros(P) for _ in range(3))
    for p, (a, b) in enumerate(axis.periods):
        s_, e_ = A[:, a - 1], A[:, b]
        lost[p] = (s_ & ~e_).sum()
        new[p] = (e_ & ~s_).sum()
        joined_left[p] = (base.touched(a, b) & ~s_ & ~e_).sum()
    out.update(lost=lost, new=new, joined_left=joined_left)
    return out


def _movements_before(m: np.ndarray) -> dict[str, np.ndarray]:
    """The previous ``_Base._movements`` (an explicit array of zeros, cur - prev twice)."""
    if m.size and m.min() >= 0 and m.max() < 2**31:
        m = m.astype(np.int32)
    prev, cur = m[:, :-1], m[:, 1:]
    ever = np.maximum.accumulate(m > 0, axis=1)[:, :-1]
    started = (prev == 0) & (cur > 0)
    zeros = np.zeros_like(cur)
    return {
        "mrr_new": np.where(started & ~ever, cur, zeros),
        "mrr_reactivation": np.where(started & ever, cur, zeros),
        "mrr_expansion": np.where((prev > 0) & (cur > prev), cur - prev, zeros),
        "mrr_contraction": np.where((cur > 0) & (cur < prev), prev - cur, zeros),
        "mrr_churn": np.where((prev > 0) & (cur == 0), prev, zeros),
    }


@pytest.mark.parametrize("granularity", ["month", "quarter", "year"])
@pytest.mark.parametrize("size", ["tiny", "medium"])
def test_subscription_sums_and_movements_equal_the_previous_ones(
    size: str, granularity: str
) -> None:
    data = copy.deepcopy(_edge_data(size, seed=7))
    data.settings.update({"granularity": granularity})
    data = assemble._encode_ids(data)
    axis = _axis(data, granularity)
    assert axis is not None
    base = _Base(data, axis)
    for name, v in _movements_before(base.mrr).items():
        assert base.move[name].dtype == v.dtype and np.array_equal(base.move[name], v), name
    new, old = _subscription_sums(base, axis), _subscription_sums_before(base, axis)
    assert list(new) == list(old)
    for key in old:
        if key == "moves":
            for name in old[key]:
                assert np.array_equal(new[key][name], old[key][name]), name
        elif isinstance(old[key], np.ndarray):
            assert new[key].dtype == old[key].dtype and np.array_equal(new[key], old[key]), key
        else:
            assert new[key] == old[key], key
    # negative MRR (a credit) takes the 64-bit movements: the same there too
    base.mrr[0, 2] = -5
    base._movements()
    for name, v in _movements_before(base.mrr).items():
        assert np.array_equal(base.move[name], v), name


def test_usage_by_group_beyond_the_flag_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxkpi_xl.engine import activity

    monkeypatch.setattr(activity, "FLAG_LIMIT", 0)  # the pairs hashed, no table of flags
    new, old = _both(_edge_data("small", seed=8))
    _assert_same(new, old)
    assert new["owner"].set_index("kpi").loc["product_usage_rate"].iloc[:, 1:].notna().any().any()


def test_the_report_s_usage_flags_are_the_ones_counted_by_group() -> None:
    data = assemble._encode_ids(_edge_data("small", seed=9))
    axis = _axis(data, "month")
    assert axis is not None
    base = _Base(data, axis)
    assemble._usage_part(data, base, axis)  # the report's usage KPIs keep their flags
    assert base._usage_flags is not None and base._usage_flags[1].any()
    kept = _Base(data, axis)  # a fresh base: the flags are made by the breakdowns
    columns = ["segment", "owner"]
    _assert_same(
        breakdowns._group_breakdowns_by_sums(data, base, axis, columns),
        breakdowns._group_breakdowns_by_sums(data, kept, axis, columns),
    )


def _cohorts_before(base: _Base, axis: Any) -> dict[str, pd.DataFrame]:
    """The previous ``_cohorts``: each cohort's rows found again at every age."""
    from cxkpi_xl.data.periods import label

    m = base.mrr
    T = m.shape[1]
    paying = m > 0
    first = np.where(paying.any(axis=1), paying.argmax(axis=1), -1)
    first = np.where(
        (first < 0) & base.in_customers & (base.signup_col >= 1) & (base.signup_col < T),
        base.signup_col,
        first,
    )
    logos, revenue_rows, names = [], [], []
    for c in range(1, T):
        members = first == c
        if not members.any():
            continue
        size = members.sum()
        start_mrr = m[members, c].sum()
        ages = T - c
        logos.append([base.active[members, c + a].sum() / size for a in range(ages)])
        revenue_rows.append(
            [m[members, c + a].sum() / start_mrr if start_mrr else np.nan for a in range(ages)]
        )
        names.append(label(axis.base + c, "month"))
    width = max((len(r) for r in logos), default=0)
    pad = lambda rows: [r + [np.nan] * (width - len(r)) for r in rows]  # noqa: E731
    return {
        "cohort_logos": pd.DataFrame(pad(logos), index=names, columns=range(width)),
        "cohort_revenue": pd.DataFrame(pad(revenue_rows), index=names, columns=range(width)),
    }


@pytest.mark.parametrize("size", ["tiny", "medium"])
def test_cohorts_equal_the_previous_ones(size: str) -> None:
    from cxkpi_xl.engine.cohorts import _cohorts

    data = assemble._encode_ids(_edge_data(size, seed=10))
    axis = _axis(data, "month")
    assert axis is not None
    base = _Base(data, axis)
    base.mrr[np.flatnonzero(base.mrr[:, 3] > 0)[:1], 3:] = 0  # a cohort member who left
    new, old = _cohorts(base, axis), _cohorts_before(base, axis)
    for name in old:
        pd.testing.assert_frame_equal(new[name], old[name], check_exact=True)
    assert new["cohort_logos"].notna().any().any()


def test_money_units_without_decimals_are_the_rounded_values() -> None:
    from cxkpi_xl.engine.subscriptions import _money_scale, _to_units

    rng = np.random.default_rng(11)
    whole = np.r_[rng.integers(-1000, 1000, 10_000), rng.integers(-(10**12), 10**12, 10_000)]
    # whole amounts as a float may hold them: a little above or below the whole number
    near = whole + rng.choice([0.0, 1e-11, -1e-11, 3e-10, -4e-10], whole.size)
    values = np.r_[near, [2.0**52, -(2.0**52) + 1, 0.0, -0.0, 1e15 + 2, 0.9999999999]]
    cols = np.zeros(values.size, dtype=np.int64)
    assert _money_scale(values, cols, 1) == 1  # no decimals in use
    assert (values != np.rint(values)).sum() > 5_000  # and most are not whole floats
    general = np.trunc(values).astype(np.int64) + np.rint(values - np.trunc(values)).astype(
        np.int64
    )
    assert np.array_equal(_to_units(values, 1), general)
    cents = np.round(values / 1e4, 2)
    assert _money_scale(cents, cols, 1) == 100
    assert np.array_equal(
        _to_units(cents, 100),
        np.trunc(cents).astype(np.int64) * 100
        + np.rint((cents - np.trunc(cents)) * 100).astype(np.int64),
    )


def test_rows_of_codes_are_get_indexer() -> None:
    base = _Base.__new__(_Base)
    rng = np.random.default_rng(12)
    ids = rng.permutation(5_000)[:3_000].astype(float)
    base.ids = pd.Index(ids)
    from cxkpi_xl.engine.subscriptions import _code_table

    base._row_of_code = _code_table(ids)
    assert base._row_of_code is not None
    values = np.r_[rng.integers(0, 6_000, 20_000).astype(float), np.nan, 5_001.0, 1e9]
    assert np.array_equal(base.rows_of(values), base.ids.get_indexer(values))
    assert np.array_equal(base.rows_of(pd.Series(values)), base.ids.get_indexer(values))
    for odd in ([0.5, 1.0], [-3.0, 1.0], [np.inf, 2.0]):  # not codes: hashed as before
        assert np.array_equal(base.rows_of(np.array(odd)), base.ids.get_indexer(odd))
    assert _code_table(np.r_[ids, np.nan]) is None  # a blank id: no table
    assert _code_table(np.array(["a", "b"], dtype=object)) is None


def _churn_by_reason_before(data: Dataset, base: _Base, axis: Any) -> pd.DataFrame:
    """The previous ``_churn_by_reason``: each period's reasons compared as text."""
    cust = data.tables["Customers"]
    if cust.empty:
        return pd.DataFrame()
    reason = np.full(len(base.ids), "(no reason given)", dtype=object)
    given = cust["churn_reason"].to_numpy(object)
    reason[base.cpos] = np.where(pd.isna(given), "(no reason given)", given)
    rows: dict[tuple[str, str], list[float]] = {}
    for p, (a, b) in enumerate(axis.periods):
        lost = base.active[:, a - 1] & ~base.active[:, b]
        for r in np.unique(reason[lost]):
            sel = lost & (reason == r)
            rows.setdefault((r, "customers"), [0.0] * len(axis.periods))[p] = float(sel.sum())
            rows.setdefault((r, "churned_mrr"), [0.0] * len(axis.periods))[p] = (
                base.mrr[sel, a - 1].sum() / base.scale
            )
    return pd.DataFrame(
        [(r, m, *v) for (r, m), v in sorted(rows.items())],
        columns=["churn_reason", "measure", *axis.labels],
    )


@pytest.mark.parametrize("granularity", ["month", "quarter"])
def test_churn_by_reason_equals_the_previous_one(
    granularity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _edge_data("medium", seed=13)
    cust = data.tables["Customers"].copy()
    cust.loc[cust.index[:4], "churn_reason"] = [None, "price", "Price", "price"]
    data = dataclasses.replace(data, tables={**data.tables, "Customers": cust})
    data = assemble._encode_ids(data)
    axis = _axis(data, granularity)
    assert axis is not None
    base = _Base(data, axis)
    old = _churn_by_reason_before(data, base, axis)
    assert len(old) >= 4
    pd.testing.assert_frame_equal(
        breakdowns._churn_by_reason(data, base, axis), old, check_exact=True
    )
    monkeypatch.setattr(_Groupings, "exact_for", staticmethod(lambda base: False))
    pd.testing.assert_frame_equal(
        breakdowns._churn_by_reason(data, base, axis), old, check_exact=True
    )


@pytest.mark.parametrize("negative", [False, True])
def test_movement_columns_are_the_columns_of_the_movement_matrices(negative: bool) -> None:
    # the report's sums read the movements a column at a time (base.movement_columns);
    # each column must be that of the previous whole matrices, in their dtype, including
    # churn and reactivation, an MRR that falls to zero and comes back, and a credit
    data = assemble._encode_ids(_edge_data("medium", seed=14))
    axis = _axis(data, "month")
    assert axis is not None
    base = _Base(data, axis)
    row = np.flatnonzero((base.mrr[:, 2:6] > 0).all(axis=1))[0]
    base.mrr[row, 3:5] = 0  # falls to zero and comes back
    if negative:
        base.mrr[row + 1, 2] = -5  # a credit: the 64-bit movements
    base._movements()
    before = _movements_before(base.mrr)
    seen = 0
    for j, column in base.movement_columns():
        assert list(column) == list(before)
        for name, v in column.items():
            assert v.dtype == before[name].dtype and np.array_equal(v, before[name][:, j]), name
        seen += 1
    assert seen == base.mrr.shape[1] - 1
    assert before["mrr_reactivation"][row].any() and before["mrr_churn"][row].any()
    for name, v in before.items():  # and the lazily made matrices are the same
        assert base.move[name].dtype == v.dtype and np.array_equal(base.move[name], v), name
    assert np.array_equal(base.by_month, base.mrr.T)
    assert base.by_month.dtype == (np.int64 if negative else np.int32)
    assert np.array_equal(base.active_by_month, base.active.T)


@pytest.mark.parametrize("granularity", ["month", "quarter", "year"])
@pytest.mark.parametrize("outside", [False, True])
@pytest.mark.parametrize("flag_limit", [None, 0])
def test_usage_pass_counts_equal_the_distinct_pairs_of_each_feature(
    flag_limit: int | None, outside: bool, granularity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With months as periods the active triples of each feature are counted in the pass
    # over the summary (the triples are distinct); the previous way, kept as
    # _adoption_counts, counts each feature's distinct (period, customer) pairs. With
    # ``outside`` some triples have no customer of the base or no period (the MRR's last
    # month ends the axis), in the first chunk and in a later one.
    from cxkpi_xl.engine import activity

    if flag_limit is not None:  # and the features counted by one bincount
        monkeypatch.setattr(activity, "FLAG_LIMIT", flag_limit)
        monkeypatch.setattr(activity, "FEW_FEATURES", 0)
    monkeypatch.setattr(activity, "CHUNK", 1000)
    data = _edge_data("medium", seed=15)
    if outside:
        usage = data.tables["Usage"]
        odd = usage.iloc[[0, 1, 2, 1500, 1501]].copy()
        odd["customer_id"] = ["usage-only", "usage-only", None, "usage-only", None]
        late = usage.iloc[[3, 1502]].copy()
        late["activity_date"] = data.tables["MRR"]["month"].max() + pd.DateOffset(months=2)
        usage = pd.concat([usage, odd, late], ignore_index=True)
        data = dataclasses.replace(data, tables={**data.tables, "Usage": usage})
    data = assemble._encode_ids(data)
    axis = _axis(data, granularity)
    assert axis is not None
    base = _Base(data, axis)
    s = activity.usage_summary(data)
    flags, per_feature, by_feature, with_triple = activity._usage_pass(s, base, axis, True)
    # months as periods: counted in the pass; longer periods: flagged, unless beyond the limit
    assert (by_feature is None) == (granularity != "month" and flag_limit == 0)
    pcol, cpos, ok = activity._usage_triples(s, base, axis)
    assert ok.all() != outside and len(ok) > 2000
    present = np.flatnonzero(per_feature[1:])
    assert len(present) >= 2
    old = activity._adoption_counts(s, base, axis, present, None, None, None)
    assert old.sum() > 0
    if by_feature is not None:
        assert np.array_equal(by_feature[:, present + 1], old)
    assert per_feature.tolist() == np.bincount(s.t_feature.astype(int) + 1).tolist()
    codes = set(s.t_customer.tolist())
    assert with_triple.tolist() == [c in codes for c in range(len(s.customers))]
    # the flags: each (period, customer) pair of a triple, where active at the period's end
    ends = np.array([b for _, b in axis.periods])
    expected = np.zeros((len(axis.periods), len(base.ids)), dtype=bool)
    expected[pcol[ok], cpos[ok]] = True
    expected &= base.active[:, ends].T
    if flag_limit is None:
        assert flags is not None and np.array_equal(flags, expected)
        assert base._usage_flags is not None and base._usage_flags[1] is flags
    else:
        assert flags is None
