"""Is a change in NPS real? nps_change_test against an independent computation (each
answer recoded to +100 / 0 / -100, the variance of its mean from the recoded values, as
Displayr's "Statistical testing of the Net Promoter Score" derives it), a worked example
by hand, and CX_NPS_CHANGE through xlwings' own dispatch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xlwings as xw
from scipy import stats

import cxkpi_xl as cx
from cxkpi_xl.kpis.significance import nps_change_test, ratio_bootstrap_interval

from .excel import call, error


def _independent(before: list[int], after: list[int], confidence: float = 0.95) -> tuple:
    """Recode to +100 / 0 / -100; NPS is the mean and its variance the population variance
    of the recoded answers over n (ddof=0: the Wald variance of the shares)."""

    def recode(s: list[int]) -> np.ndarray:
        a = np.asarray(s)
        return np.where(a >= 9, 100.0, np.where(a <= 6, -100.0, 0.0))

    b, a = recode(before), recode(after)
    diff = a.mean() - b.mean()
    se = math.sqrt(a.var() / len(a) + b.var() / len(b))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return diff, diff - z * se, diff + z * se, 2 * stats.norm.sf(abs(diff) / se)


class TestNpsChangeTest:
    def test_worked_example_by_hand(self):
        # Before 50/30/20 (NPS 30), after 60/25/15 (NPS 45). var_before = 100^2 (0.5 + 0.2
        # - 0.3^2) / 100 = 61; var_after = 100^2 (0.6 + 0.15 - 0.45^2) / 100 = 54.75;
        # se = sqrt(115.75) = 10.7587; z = 15 / 10.7587 = 1.3942; p = 0.1633.
        r = nps_change_test([10] * 50 + [8] * 30 + [2] * 20, [10] * 60 + [8] * 25 + [2] * 15)
        assert r["difference"] == pytest.approx(15.0)
        se = math.sqrt(115.75)
        assert r["ci_low"] == pytest.approx(15 - 1.959964 * se, abs=1e-4)
        assert r["ci_high"] == pytest.approx(15 + 1.959964 * se, abs=1e-4)
        assert r["p_value"] == pytest.approx(0.16326, abs=1e-4)

    @pytest.mark.parametrize("seed", range(5))
    def test_against_recoded_means(self, seed):
        rng = np.random.default_rng(seed)
        before = rng.integers(0, 11, rng.integers(20, 300)).tolist()
        after = rng.choice(
            11, size=rng.integers(20, 300), p=np.r_[[0.05] * 7, 0.1, 0.1, 0.225, 0.225]
        ).tolist()
        r = nps_change_test(before, after, 0.9)
        expected = _independent(before, after, 0.9)
        got = (r["difference"], r["ci_low"], r["ci_high"], r["p_value"])
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)

    def test_same_samples_are_no_change(self):
        s = [10, 9, 7, 3, 0, 8]
        r = nps_change_test(s, s)
        assert r["difference"] == 0 and r["p_value"] == pytest.approx(1.0)
        assert r["ci_low"] == -r["ci_high"]

    def test_a_large_real_change_is_significant(self):
        r = nps_change_test([2] * 200 + [10] * 100, [10] * 200 + [2] * 100)
        assert r["difference"] == pytest.approx(200 / 3)
        assert r["p_value"] < 1e-6 and r["ci_low"] > 0

    def test_adjusted_wald(self):
        # Each sample gets n + 3, promoters + 3/4, detractors + 3/4 (Rocks 2016):
        # before 3 promoters of 3 -> p = 3.75 / 6, d = 0.75 / 6; after 0 of 3 promoters,
        # 3 detractors -> p = 0.75 / 6, d = 3.75 / 6.
        r = nps_change_test([10, 10, 10], [0, 0, 0], method="adjusted_wald")
        p0, d0, p1, d1 = 3.75 / 6, 0.75 / 6, 0.75 / 6, 3.75 / 6
        var = 1e4 * ((p0 + d0 - (p0 - d0) ** 2) / 6 + (p1 + d1 - (p1 - d1) ** 2) / 6)
        diff = 100 * ((p1 - d1) - (p0 - d0))
        assert r["difference"] == pytest.approx(diff)
        assert r["p_value"] == pytest.approx(2 * stats.norm.sf(abs(diff) / math.sqrt(var)))

    def test_no_variance(self):
        assert nps_change_test([10, 10], [10])["p_value"] == 1.0
        r = nps_change_test([10, 10], [0])
        assert r["difference"] == -200 and r["p_value"] == 0.0 and r["ci_low"] == -200

    def test_empty_sample_and_bad_values(self):
        assert all(math.isnan(v) for v in nps_change_test([None], [10]).values())
        assert nps_change_test([], [10], zero_division=0)["p_value"] == 0
        with pytest.raises(ZeroDivisionError):
            nps_change_test([], [10], zero_division="raise")
        with pytest.raises(ValueError, match="11"):
            nps_change_test([11], [10])
        with pytest.raises(ValueError, match="confidence"):
            nps_change_test([10], [10], 95)
        with pytest.raises(ValueError, match="method"):
            nps_change_test([10], [10], method="exact")

    def test_exported(self):
        assert cx.nps_change_test is nps_change_test


class TestExcel:
    def test_spills_a_row_with_headers(self):
        table = call(
            "CX_NPS_CHANGE",
            [[10]] * 50 + [[8]] * 30 + [[2]] * 20,
            [[10]] * 60 + [[8]] * 25 + [[2]] * 15,
        )
        assert table[0] == ["difference", "ci_low", "ci_high", "p_value"]
        assert table[1][0] == pytest.approx(15.0)
        assert table[1][3] == pytest.approx(0.16326, abs=1e-4)
        # var = 100^2 * 1 / 100 + 100^2 * (1 - 0.2^2) / 100 = 196, se = 14; at 50 % the
        # interval is 20 +- 0.674490 * 14.
        half = call("CX_NPS_CHANGE", [[10]] * 50 + [[2]] * 50, [[10]] * 60 + [[2]] * 40, 0.5)
        assert half[1][1:3] == pytest.approx([20 - 0.674490 * 14, 20 + 0.674490 * 14], abs=1e-4)

    def test_blank_confidence_is_the_default(self):
        a, b = [[10]] * 50 + [[2]] * 50, [[10]] * 60 + [[2]] * 40
        assert call("CX_NPS_CHANGE", a, b, None) == call("CX_NPS_CHANGE", a, b)

    def test_errors(self):
        assert call("CX_NPS_CHANGE", [[None]], [[10]])[1] == [error("#DIV/0!")] * 4
        with pytest.raises(xw.XlwingsError, match=r"CX_NPS_CHANGE: .*11"):
            call("CX_NPS_CHANGE", [[11]], [[10]])


# --- the percentile bootstrap of a ratio of sums (NRR by category) -------------------


@pytest.mark.parametrize("n, batch", [(2, None), (37, None), (400, 333), (1000, 7)])
def test_ratio_bootstrap_matches_scipy(n: int, batch: int | None):
    """Against scipy.stats.bootstrap (paired, vectorized, percentile), the implementation
    it replaces in the refresh: the same draws, so today the same interval to rounding; a
    later scipy that draws otherwise still agrees within Monte Carlo error (a tenth of the
    interval's width is about five standard errors of each end with 2,000 resamples)."""
    rng = np.random.default_rng(n)
    start = rng.uniform(50, 500, n)
    end = start * rng.lognormal(0.02, 0.2, n) * (rng.random(n) > 0.1)  # a tenth churned
    ours = ratio_bootstrap_interval(end, start, n_resamples=2000, seed=20260101, batch=batch)
    res = stats.bootstrap(
        (start, end),
        lambda s, e, axis=-1: e.sum(axis=axis) / s.sum(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        batch=batch,
        method="percentile",
        rng=np.random.default_rng(20260101),
    )
    theirs = (res.confidence_interval.low, res.confidence_interval.high)
    width = theirs[1] - theirs[0]
    assert width > 0
    assert ours == pytest.approx(theirs, abs=0.1 * width)
    assert ours[0] < end.sum() / start.sum() < ours[1]


def test_ratio_bootstrap_by_hand():
    """Two customers, start 100 each, end 100 and 50: each resample is {0,0}, {0,1},
    {1,0} or {1,1}, ratio 1, 0.75, 0.75 or 0.5 with chances 1/4, 1/2, 1/4; so the 2.5 %
    quantile is 0.5 and the 97.5 % quantile 1 (with 4,000 draws both ends are drawn
    about 1,000 times, and the linear interpolation sits on them)."""
    low, high = ratio_bootstrap_interval([100, 50], [100, 100], n_resamples=4000, seed=7)
    assert (low, high) == (0.5, 1.0)
    with pytest.raises(ValueError, match="same length"):
        ratio_bootstrap_interval([1, 2], [1], n_resamples=10, seed=1)
    with pytest.raises(ValueError, match="n_resamples"):
        ratio_bootstrap_interval([1], [1], n_resamples=0, seed=1)
