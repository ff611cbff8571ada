"""The segment and owner breakdowns from sums by group (``engine.groups``) give the same
numbers, to the bit, as the report's KPI functions run on each group's own rows
(``_group_breakdowns_by_rows``, the previous way, kept as the reference and as the path
for data whose sums could not be exact)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data.reader import Dataset, read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.engine import assemble, breakdowns
from cxkpi_xl.engine.axis import _axis
from cxkpi_xl.engine.groups import _Groupings
from cxkpi_xl.engine.subscriptions import _Base


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
