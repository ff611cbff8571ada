"""The faster cold compute gives the same Report as the code it replaced.

The previous implementations are kept here, word for word, as the reference: the id
encoding (one factorization of all the id columns end to end), the BG/NBD likelihood
(the special functions on every row), the segment and owner breakdowns (each group cut
from the whole tables, every column), the NPS-category split (each period's orders found
per category), the sBG likelihood and the Cox fit (statsmodels' PHReg, which the fit
from counts must match). Each new function must give the same numbers, and
the whole Report (its JSON, breakdowns and "Does CX pay?" included) computed with the new
code must equal the one computed with the old code patched back in.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data.periods import months_of
from cxkpi_xl.data.reader import Dataset, read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.engine import assemble, breakdowns, compute
from cxkpi_xl.engine.axis import _at, _Axis
from cxkpi_xl.engine.breakdowns import NPS_CATEGORIES, _nps_category_matrix
from cxkpi_xl.engine.impact import _hazard
from cxkpi_xl.engine.subscriptions import _Base
from cxkpi_xl.kpis import retention
from cxkpi_xl.models import hazard, sbg
from cxkpi_xl.models.bgnbd import BetaGeoModel


def _encode_ids_before(data: Dataset) -> Dataset:
    """The previous ``_encode_ids``: one factorization of every id column end to end."""
    from cxkpi_xl.data.schema import TABLES

    cols = [(t.name, t.customer_column) for t in TABLES if t.customer_column is not None]
    cols.append(("Customers", "referred_by"))
    parts = [data.tables[t][c] for t, c in cols]
    codes, _ = pd.factorize(pd.concat(parts, ignore_index=True).to_numpy(object))
    floats = np.where(codes < 0, np.nan, codes.astype(float))
    tables = dict(data.tables)
    start = 0
    for (t, c), part in zip(cols, parts, strict=True):
        if tables[t] is data.tables[t]:
            tables[t] = tables[t].copy(deep=False)
        tables[t][c] = floats[start : start + len(part)]
        start += len(part)
    return dataclasses.replace(data, tables=tables)


def _bgnbd_nll_before(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """The previous BG/NBD likelihood and gradient: every special function on every row."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = np.exp(params)
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    top = np.maximum(a3, np.where(repeat, a4, -np.inf))
    e3, e4 = np.exp(a3 - top), repeat * np.exp(a4 - top)
    total = e3 + e4
    ll = a1 + a2 + top + np.log(total)
    w3, w4 = e3 / total, e4 / total
    d_r = (
        digamma(r + x) - digamma(r) + np.log(alpha)
        - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    )  # fmt: skip
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = (
        digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
        - w4 / (b + np.maximum(x, 1) - 1)
    )  # fmt: skip
    weight = w / w.sum()
    grad = np.array(
        [weight @ d_r * r, weight @ d_alpha * alpha, weight @ d_a * a, weight @ d_b * b]
    )
    return float(-(weight @ ll)), -grad


def _cx_to_revenue_before(
    data: Dataset, base: _Base, axis: _Axis, k: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The previous ``_cx_to_revenue``: each period's orders found again per category."""
    cat = _nps_category_matrix(data, base, axis)
    cust = data.tables["Customers"]
    referrer = np.full(len(base.ids), -1)
    if not cust.empty:
        ref_pos = base.ids.get_indexer(cust["referred_by"])
        referrer[base.cpos] = ref_pos
    orders = data.tables["Orders"]
    opos = base.ids.get_indexer(orders["customer_id"])
    ocol = axis.col(months_of(orders["order_date"]))
    amount = orders["amount"].to_numpy(float)
    rows = []
    for code, name in enumerate(NPS_CATEGORIES):
        nrr, churn, referral = [], [], []
        for a, b in axis.periods:
            category = cat[:, a - 1]
            members = category == (code if code < 3 else -1)
            start, end = base.mrr[:, a - 1], base.mrr[:, b]
            cohort = members & (start > 0)
            s, e = start[cohort], end[cohort]
            nrr.append(
                retention.net_revenue_retention(
                    s.sum() / base.scale if base.has_mrr_data and a > 1 else np.nan,
                    np.where(e > s, e - s, 0).sum() / base.scale,
                    np.where((e > 0) & (e < s), s - e, 0).sum() / base.scale,
                    np.where(e == 0, s, 0).sum() / base.scale,
                )
            )
            act_s, act_e = base.active[:, a - 1], base.active[:, b]
            churn.append(
                retention.customer_churn_rate(
                    (members & act_s).sum(), (members & act_s & ~act_e).sum()
                )
            )
            by_member = np.zeros(len(base.ids), dtype=bool)
            valid = referrer >= 0
            by_member[valid] = members[referrer[valid]]
            in_p = (ocol >= a) & (ocol <= b) & (opos >= 0)
            order_part = amount[in_p & _at(by_member, opos)].sum()
            referral.append(
                order_part + base.mrr[by_member, a : b + 1].sum() / base.scale
                if not cust.empty
                else np.nan
            )
        rows += [
            (name, "net_revenue_retention", *nrr),
            (name, "customer_churn_rate", *churn),
            (name, "referral_revenue", *referral),
        ]
    return pd.DataFrame(rows, columns=["nps_category", "kpi", *axis.labels])


def _sbg_log_likelihood_before(churn: np.ndarray, lost: np.ndarray, survivors: float) -> float:
    """The previous sBG log-likelihood (``np.r_``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_stay = np.log1p(-churn)
        log_s = np.r_[0.0, np.cumsum(log_stay)]  # log S(0), ..., log S(n - 1)
        per_period = np.where(lost > 0, lost * (log_s[:-1] + np.log(churn)), 0.0)
        last = survivors * log_s[-1] if survivors > 0 else 0.0
    return float(per_period.sum() + last)


def _same(a: Any, b: Any, path: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ: numbers beyond 1e-12 relative, anything else at all."""
    if isinstance(a, pd.Series):
        a, b = a.to_frame(), b.to_frame()
    if isinstance(a, pd.DataFrame):
        if not (a.index.equals(b.index) and a.columns.equals(b.columns)):
            return [f"{path}: labels differ"]
        return [d for c in a.columns for d in _same(a[c].tolist(), b[c].tolist(), f"{path}[{c}]")]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{path}: keys differ"]
        return [d for k in a for d in _same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{path}: lengths differ"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (u, v) in pairs for d in _same(u, v, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and not a == b:
        if math.isnan(a) and math.isnan(b):
            return []
        if abs(a - b) <= 1e-12 * max(abs(a), abs(b)):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    if type(a) is not type(b) or not a == b:
        return [f"{path}: {a!r} != {b!r}"]
    return []


def _everything(report: assemble.Report) -> dict[str, Any]:
    return {"json": report.as_json(), "breakdowns": dict(report.breakdowns)}


def test_the_comparison_finds_a_difference() -> None:
    assert _same({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-9]})
    assert _same({"a": "x"}, {"a": "y"})
    assert not _same({"a": [1.0, math.nan]}, {"a": [1.0 + 1e-15, math.nan]})


@pytest.mark.parametrize("size", ["small", "medium"])
def test_encode_ids_gives_the_previous_codes(size: str) -> None:
    data = read(generate(size, seed=3))
    # Blank ids, ids seen first outside Customers and referrers who are not customers too
    cust = data.tables["Customers"].copy()
    cust.loc[cust.index[:3], "referred_by"] = ["nobody-1", None, cust["customer_id"].iloc[-1]]
    orders = data.tables["Orders"].copy()
    orders.loc[orders.index[:2], "customer_id"] = ["ghost", None]
    data = dataclasses.replace(data, tables={**data.tables, "Customers": cust, "Orders": orders})
    new, old = assemble._encode_ids(data), _encode_ids_before(data)
    for name, table in old.tables.items():
        pd.testing.assert_frame_equal(new.tables[name], table, check_exact=True)
    # ... and the caller's tables are left as they were
    assert data.tables["Orders"]["customer_id"].iloc[0] == "ghost"


def test_encode_ids_of_empty_tables() -> None:
    data = read(generate("tiny", seed=1))
    empty = {n: t.iloc[0:0] for n, t in data.tables.items()}
    data = dataclasses.replace(data, tables=empty)
    new, old = assemble._encode_ids(data), _encode_ids_before(data)
    for name, table in old.tables.items():
        pd.testing.assert_frame_equal(new.tables[name], table, check_exact=True)


def test_bgnbd_likelihood_is_the_previous_one_to_the_bit() -> None:
    rng = np.random.default_rng(5)
    n = 3_000
    x = rng.poisson(2.0, n).astype(float)
    T = rng.integers(10, 80, n).astype(float)
    t_x = np.where(x > 0, np.floor(T * rng.uniform(0, 1, n)), 0.0)
    w = rng.integers(1, 5, n).astype(float)
    for params in ([0.2, 3.0, 0.7, 2.5], [1.5, 0.3, 4.0, 0.1], [0.05, 40.0, 0.01, 30.0]):
        p = np.log(params)
        value, grad = BetaGeoModel._nll_and_gradient(p, x, t_x, T, w)
        value_0, grad_0 = _bgnbd_nll_before(p, x, t_x, T, w)
        assert value == value_0
        assert np.array_equal(grad, grad_0)


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_report_equals_the_one_of_the_previous_code(
    size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = read(generate(size, seed=1))
    new = _everything(compute(data))
    monkeypatch.setattr(assemble, "_encode_ids", _encode_ids_before)
    monkeypatch.setattr(BetaGeoModel, "_nll_and_gradient", staticmethod(_bgnbd_nll_before))
    monkeypatch.setattr(breakdowns, "GROUP_COLUMNS", {})  # each group cut from whole tables
    monkeypatch.setattr(breakdowns, "_group_breakdowns", breakdowns._group_breakdowns_by_rows)
    monkeypatch.setattr(hazard, "_efron_by_counts", lambda *a: None)  # statsmodels' PHReg
    monkeypatch.setattr(assemble, "_cx_to_revenue", _cx_to_revenue_before)
    monkeypatch.setattr(sbg, "_sbg_log_likelihood", _sbg_log_likelihood_before)
    old = _everything(compute(data))
    assert new["json"]["cx_impact"]["churn_hazard"] or size == "tiny"
    assert "predicted_clv_by_segment" in new["breakdowns"] or size == "tiny"
    assert _same(new, old) == []


@pytest.mark.parametrize("granularity", ["month", "quarter", "year"])
@pytest.mark.parametrize("size", ["tiny", "medium"])
def test_cx_to_revenue_equals_the_previous_one(size: str, granularity: str) -> None:
    from tests.test_breakdowns_fast import _edge_data

    data = _edge_data(size, seed=6)
    # referrers who are not customers, customers who answered NPS twice in a month and
    # an answer before any MRR
    t = dict(data.tables)
    cust = t["Customers"].copy()
    cust.loc[cust.index[:2], "referred_by"] = ["nobody", cust["customer_id"].iloc[3]]
    sv = t["Surveys"]
    nps = sv[sv["survey"] == "NPS"].iloc[:4].copy()
    nps["score"] = [10.0, 0.0, 7.0, 9.0]
    t["Customers"], t["Surveys"] = cust, pd.concat([sv, nps], ignore_index=True)
    data = dataclasses.replace(data, tables=t)
    data.settings.update({"granularity": granularity})
    data = assemble._encode_ids(data)
    axis = assemble._axis(data, granularity)
    assert axis is not None
    base = _Base(data, axis)
    new = breakdowns._cx_to_revenue(data, base, axis, {})
    old = _cx_to_revenue_before(data, base, axis, {})
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    with pytest.MonkeyPatch.context() as m:  # money beyond exact float sums: masked sums
        m.setattr(breakdowns._Groupings, "exact_for", staticmethod(lambda base: False))
        masked = breakdowns._cx_to_revenue(data, base, axis, {})
    pd.testing.assert_frame_equal(masked, old, check_exact=True)
    # and the category matrix is the previous one
    cat = _nps_category_matrix(data, base, axis)
    assert cat.flags.c_contiguous and (cat >= 0).any() and (cat == 2).any()
    assert np.array_equal(cat, _nps_category_matrix_before(data, base, axis))


def _nps_category_matrix_before(data: Dataset, base: _Base, axis: _Axis) -> np.ndarray:
    """The previous ``_nps_category_matrix``: sorted by pandas, filled column by column."""
    from cxkpi_xl.kpis import surveys

    sv = data.tables["Surveys"]
    nps_rows = sv[(sv["survey"] == "NPS") & sv["customer_id"].notna()]
    n, T = len(base.ids), axis.size
    cat = np.full((n, T), -1, dtype=np.int8)
    if nps_rows.empty or n == 0:
        return cat
    nps_rows = nps_rows.sort_values("response_date", kind="stable")
    pos = base.ids.get_indexer(nps_rows["customer_id"])
    col = axis.col(months_of(nps_rows["response_date"]))
    score = nps_rows["score"].to_numpy(float)
    code = np.where(
        score >= surveys.PROMOTER_FROM, 0, np.where(score <= surveys.DETRACTOR_UP_TO, 2, 1)
    )
    ok = (pos >= 0) & (col >= 0)
    cat[pos[ok], col[ok]] = code[ok]
    for t in range(1, T):
        cat[:, t] = np.where(cat[:, t] == -1, cat[:, t - 1], cat[:, t])
    return cat


def _spells(seed: int, levels: int = 4, strata: int = 3) -> dict[str, np.ndarray]:
    """Start/stop rows of 600 subjects: late entries, a covariate that changes from row to
    row, monthly (heavily tied) churn, and strata."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("entry", "exit", "event", "cat", "stratum")}
    for _ in range(600):
        t = float(rng.integers(0, 6))
        stratum = f"s{rng.integers(strata)}"
        for _ in range(rng.integers(1, 4)):
            level = int(rng.integers(levels))
            length = float(rng.integers(1, 8))
            churn = rng.uniform() < 0.1 * (1 + level)
            rows["entry"].append(t)
            rows["exit"].append(t + length)
            rows["event"].append(float(churn))
            rows["cat"].append(f"level {level}")
            rows["stratum"].append(stratum)
            t += length
            if churn:
                break
    return {k: np.asarray(v, dtype=float if k in ("entry", "exit", "event") else object)
            for k, v in rows.items()}  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("stratified", [False, True])
def test_cox_fit_from_counts_equals_statsmodels(seed: int, stratified: bool) -> None:
    sp = _spells(seed)
    order = sorted(set(sp["cat"].tolist()))
    codes = np.array([order.index(c) for c in sp["cat"]])
    strata = sp["stratum"] if stratified else None
    counts = hazard._efron_by_counts(sp["entry"], sp["exit"], sp["event"], codes, 4, strata)
    phreg = hazard._efron_by_phreg(sp["entry"], sp["exit"], sp["event"], sp["cat"], order, strata)
    assert counts is not None
    for mine, theirs in zip(counts, phreg, strict=True):
        assert mine.shape == theirs.shape
        assert np.array_equal(np.isnan(mine), np.isnan(theirs))  # residuals: events only
        ok = ~np.isnan(theirs)
        np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-10, atol=1e-13)
    # and the whole fit, hazard ratios, intervals, p-values and the PH test
    args = (sp["entry"], sp["exit"], sp["event"], sp["cat"])
    fit = hazard.cox_hazard_ratios(*args, reference="level 0", strata=strata)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(hazard, "_efron_by_counts", lambda *a: None)
        reference = hazard.cox_hazard_ratios(*args, reference="level 0", strata=strata)
    for name in ("hazard_ratio", "ci_low", "ci_high", "p_value", "ph_p_value", "covariance"):
        np.testing.assert_allclose(getattr(fit, name), getattr(reference, name), rtol=1e-10)
    assert fit.ph_global_p_value == pytest.approx(reference.ph_global_p_value, rel=1e-10)


def test_cox_level_without_events_is_left_to_statsmodels() -> None:
    sp = _spells(4)
    sp["event"][sp["cat"] == "level 2"] = 0.0
    order = sorted(set(sp["cat"].tolist()))
    codes = np.array([order.index(c) for c in sp["cat"]])
    assert hazard._efron_by_counts(sp["entry"], sp["exit"], sp["event"], codes, 4, None) is None
    frame = pd.DataFrame(
        {
            "customer": np.arange(len(codes)),
            "entry": sp["entry"],
            "exit": sp["exit"],
            "churned": sp["event"] > 0,
            "nps_category": np.array(["promoter", "passive", "no answer", "detractor"])[codes],
            "stratum": sp["stratum"],
        }
    )
    fit, note = _hazard(frame, False)  # statsmodels' steps run off: no finite ratio
    assert fit is None and note is not None and "no finite hazard ratio" in note
    with pytest.MonkeyPatch.context() as m:
        m.setitem(__import__("sys").modules, "statsmodels.duration.hazard_regression", None)
        fit, note = _hazard(frame, False)
    assert fit is None and note is not None and "needs statsmodels" in note


def test_model_fit_does_not_depend_on_the_blas_threads() -> None:
    # 30,000 distinct customers: OpenBLAS splits dot products this long over its threads,
    # whose partial sums round differently; the fit runs on one thread whatever the
    # caller allows, so the answer is the same on any machine.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(9)
    n = 30_000
    x = rng.poisson(1.5, n).astype(float)
    T = rng.uniform(20, 80, n).round(3)
    t_x = np.where(x > 0, (T * rng.uniform(0, 1, n)).round(3), 0.0)
    fits = []
    for threads in (1, 4):
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            fits.append(BetaGeoModel().fit(x, t_x, T).params_)
    assert fits[0] == fits[1]


def test_sbg_likelihood_is_the_previous_one_to_the_bit() -> None:
    rng = np.random.default_rng(2)
    for n in (2, 7, 30):
        churn = rng.uniform(0.01, 0.6, n)
        lost = rng.integers(0, 50, n).astype(float)
        for survivors in (0.0, 120.0):
            new = sbg._sbg_log_likelihood(churn, lost, survivors)
            assert new == _sbg_log_likelihood_before(churn, lost, survivors)


def test_distinct_active_customers_by_flags_equal_hashing_the_pairs(monkeypatch):
    # Per period, distinct (period, customer) pairs whose customer is active at the
    # period's end: the table of flags and the hashed pairs (above FLAG_LIMIT) agree with
    # a plain count of distinct pairs; repeated pairs count once.
    from types import SimpleNamespace

    from cxkpi_xl.engine import activity

    rng = np.random.default_rng(3)
    n, T = 50, 8
    ends = np.array([2, 4, 7])
    base = SimpleNamespace(ids=np.arange(n), active=rng.random((n, T)) < 0.6)
    periods = rng.integers(0, 3, 400)
    customers = rng.integers(0, n, 400)
    expected = [
        len({c for p_, c in zip(periods, customers, strict=True) if p_ == p and base.active[c, e]})
        for p, e in enumerate(ends)
    ]
    assert activity._distinct_active(periods, customers, base, ends).tolist() == expected
    monkeypatch.setattr(activity, "FLAG_LIMIT", 0)
    assert activity._distinct_active(periods, customers, base, ends).tolist() == expected


def test_feature_adoption_is_the_same_picked_per_feature_or_split_by_sort(monkeypatch):
    from cxkpi_xl.engine import activity

    data = read(generate("tiny"))
    picked = compute(data, impact=False)
    monkeypatch.setattr(activity, "FEW_FEATURES", 0)
    split = compute(data, impact=False)
    adoption = picked.breakdowns["feature_adoption"]
    assert adoption.shape[0] >= 3 and adoption.notna().any().any()
    pd.testing.assert_frame_equal(adoption, split.breakdowns["feature_adoption"])
    assert np.array_equal(
        picked.kpis["product_usage_rate"], split.kpis["product_usage_rate"], equal_nan=True
    )
