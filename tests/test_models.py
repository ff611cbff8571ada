"""Predictive models on the published data: the fitted parameters must reproduce the
literature, and bad input must give a clear message."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModelError,
    ShiftedBetaGeometricModel,
    predicted_clv,
    rfm_summary,
)

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"
needs_cdnow = pytest.mark.skipif(
    not (CDNOW / "CDNOW_sample.txt").exists(), reason="CDNOW data not found"
)


@pytest.fixture(scope="module")
def rfm():
    raw = pd.read_csv(
        CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
        names=["master_id", "id", "date", "cds", "dollars"], dtype={"date": str},
    )  # fmt: skip
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    # The published set-up: the 1/10 sample, 39-week calibration to 1997-09-30, weeks,
    # several purchases on one day counted as one.
    return rfm_summary(raw, "id", "date", "dollars", observation_end="1997-09-30", freq="W")


@needs_cdnow
def test_rfm_summary_matches_the_published_summary(rfm):
    published = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    published = published.loc[rfm.index]
    assert len(rfm) == 2357
    assert (rfm["frequency"].to_numpy() == published["x"].to_numpy()).all()
    # The published file rounds to two decimals.
    for ours, theirs in (("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")):
        assert np.abs(rfm[ours].to_numpy() - published[theirs].to_numpy()).max() <= 0.005 + 1e-9


@needs_cdnow
def test_bgnbd_reproduces_fader_hardie_lee_2005(rfm):
    model = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert round(model.params_[name], 3) == value, name


@needs_cdnow
def test_gamma_gamma_reproduces_fader_hardie(rfm):
    model = GammaGammaModel().fit(rfm["frequency"], rfm["monetary_value"])
    assert {k: round(v, 2) for k, v in model.params_.items()} == {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.mark.parametrize(
    ("survival", "alpha", "beta"),
    [
        # Fader & Hardie (2007), "How to project customer retention", the two cohorts.
        ([1000, 631, 468, 382, 326, 289, 262, 241], 0.704, 1.182),  # regular
        ([1000, 869, 743, 653, 593, 551, 517, 491], 0.668, 3.806),  # high end
    ],
)
def test_sbg_reproduces_fader_hardie_2007(survival, alpha, beta):
    model = ShiftedBetaGeometricModel().fit(survival)
    assert round(model.params_["alpha"], 3) == alpha
    assert round(model.params_["beta"], 3) == beta
    # The fitted curve starts at 1 and projects close to the observed shares.
    s = model.survival(7)
    assert s[0] == 1.0
    assert np.abs(s - np.array(survival) / 1000).max() < 0.02
    # Retention rates rise over time (the heterogeneity the model is for).
    assert (np.diff(model.retention_rates(12)) > 0).all()


def test_sbg_derl_by_hand():
    # DERL = (b + n - 1)/(a + b + n - 1) * 2F1(1, b + n; a + b + n; z), z = 1/(1 + d),
    # n = renewals + 1. With a = b = 1:
    #   renewals 0 (n = 1): 1/2 * 2F1(1, 2; 3; z) = 1/2 * (-2 (z + ln(1 - z)) / z^2)
    #   renewals 1 (n = 2): 2/3 * 2F1(1, 3; 4; z) = 2/3 * 3 (-ln(1 - z) - z - z^2/2) / z^3
    model = ShiftedBetaGeometricModel(params_={"alpha": 1.0, "beta": 1.0})
    d = 0.1
    z = 1 / (1 + d)
    first = 0.5 * (-2 * (z + np.log(1 - z)) / z**2)
    second = 2 / 3 * 3 * (-np.log(1 - z) - z - z**2 / 2) / z**3
    assert model.discounted_expected_residual_lifetime(d, renewals=0) == pytest.approx(
        first, rel=1e-10
    )
    assert model.discounted_expected_residual_lifetime(d, renewals=1) == pytest.approx(
        second, rel=1e-10
    )


def _hyp2f1_1(b: float, c: float, z: float) -> float:
    """2F1(1, b; c; z) as its series: sum over k of (b)_k / (c)_k z^k (the (1)_k / k!
    cancel); the terms fall geometrically for z < 1."""
    total, term, k = 0.0, 1.0, 0
    while term > 1e-17 * total or k == 0:
        total += term
        term *= (b + k) / (c + k) * z
        k += 1
    return total


def test_derl_fader_hardie_2010_high_end_cohort():
    from cxkpi_xl import derl

    # Fader & Hardie (2010): the high-end cohort, alpha = 0.668, beta = 3.806, d = 10 %,
    # a customer who has made 7 renewals (n = 8): DERL = 7.530 (independent
    # implementations agree). By the series: 11.806 / 12.474 * 2F1(1, 11.806; 12.474;
    # 1/1.1) = 0.94645 * 7.9560 = 7.530.
    a, b, d, n = 0.668, 3.806, 0.10, 8
    series = (b + n - 1) / (a + b + n - 1) * _hyp2f1_1(b + n, a + b + n, 1 / (1 + d))
    assert round(series, 3) == 7.530
    assert derl(a, b, d, 7) == pytest.approx(series, rel=1e-10)
    assert round(derl(a, b, d, 7), 3) == 7.530
    # n = renewals would give the customer with 6 renewals: a different number.
    assert round(derl(a, b, d, 6), 3) == 7.345
    # The same from the cohort's own survival curve (the fit gives 0.66809 and 3.80609,
    # so 7.5296: within 1e-3 of the published 7.530, not rounded to it, which would hang
    # on the fit's fifth digit).
    model = ShiftedBetaGeometricModel().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    fitted = model.discounted_expected_residual_lifetime(d, renewals=7)
    assert fitted == pytest.approx(derl(*model._ab(), d, 7), rel=1e-12)
    assert fitted == pytest.approx(7.530, abs=1e-3)
    with pytest.raises(ValueError, match="renewals must be a whole number"):
        derl(a, b, d, 1.5)
    with pytest.raises(ValueError, match="discount_rate must be above 0"):
        derl(a, b, 0, 1)


def test_sbg_steady_churn_gives_the_constant_churn_limit():
    from cxkpi_xl.models import sbg_retention

    # 10 % of the customers leave every period: no heterogeneity to fit, the sBG's
    # likelihood grows towards its geometric limit. p = churned / customer-periods at
    # risk = (100 + 90 + 81 + 73) / (1000 + 900 + 810 + 729) = 344 / 3439.
    survival = [1000, 900, 810, 729, 656]
    model = ShiftedBetaGeometricModel().fit(survival)
    p = 344 / 3439
    assert model.constant_churn_ == pytest.approx(p, rel=1e-12)
    assert model.params_ == {"alpha": np.inf, "beta": np.inf}
    assert model.survival(3) == pytest.approx([1, 1 - p, (1 - p) ** 2, (1 - p) ** 3])
    assert model.retention_rates(4) == pytest.approx([1 - p] * 4)
    # DERL of the limit, (1 - p)(1 + d)/(d + p) = 0.89997 * 1.1 / 0.20003 = 4.949, is
    # the limit of the sBG's own formula as alpha + beta grows with alpha/(alpha + beta) = p.
    d = 0.1
    limit = (1 - p) * (1 + d) / (d + p)
    assert round(limit, 3) == 4.949
    assert model.discounted_expected_residual_lifetime(d, renewals=3) == pytest.approx(limit)
    big = ShiftedBetaGeometricModel(params_={"alpha": p * 1e7, "beta": (1 - p) * 1e7})
    assert big.discounted_expected_residual_lifetime(d, renewals=3) == pytest.approx(
        limit, rel=1e-5
    )
    # Churn that rises over time (50, 60, 90, 100 of 1000, 950, 890, 800) is also best
    # fitted by the limit: p = 300 / 3640.
    rising = ShiftedBetaGeometricModel().fit([1000, 950, 890, 800, 700])
    assert rising.constant_churn_ == pytest.approx(300 / 3640, rel=1e-12)
    # Nobody leaves: p = 0, everyone stays, DERL = (1 + d)/d = 11.
    steady = ShiftedBetaGeometricModel().fit([50, 50, 50, 50])
    assert steady.constant_churn_ == 0 and steady.discounted_expected_residual_lifetime(d) == 11
    # The table: alpha and beta blank, constant retention rates.
    table = sbg_retention(survival, periods=3)
    assert np.isnan(table.loc["alpha", "survival"]) and np.isnan(table.loc["beta", "survival"])
    assert table.loc["constant_churn", "survival"] == pytest.approx(p, rel=1e-12)
    assert table.loc["derl", "survival"] == pytest.approx(limit)
    assert table["retention_rate"].dropna().tolist() == pytest.approx([1 - p] * 3)
    # A cohort with falling churn keeps finite parameters (the regular cohort).
    regular = ShiftedBetaGeometricModel().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    assert regular.constant_churn_ is None and np.isfinite(regular.params_["alpha"])


@needs_cdnow
def test_predictions_are_consistent(rfm):
    bg = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    gg = GammaGammaModel().fit(rfm["frequency"], rfm["monetary_value"])
    # A new customer's expected purchases at t = 0 are 0 and grow with t.
    assert bg.expected_purchases(0) == pytest.approx(0)
    assert bg.expected_purchases(39) < bg.expected_purchases(78)
    # Without repeat purchases a customer is surely alive (x = 0 gives P = 1).
    assert bg.probability_alive(0, 0, 38.86) == 1.0
    p = bg.probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    assert ((p > 0) & (p <= 1)).all()
    clv = predicted_clv(bg, gg, rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"])
    assert (clv >= 0).all() and clv.mean() > 0
    longer = predicted_clv(
        bg, gg, rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"], horizon_months=24
    )
    assert (longer >= clv - 1e-9).all()
    # Discounting by hand for one customer, one month: E[Y(1 month)] * spend / 1.01.
    month = 365.25 / 12 / 7
    one = predicted_clv(bg, gg, [2], [30.43], [38.86], [22.35], horizon_months=1)
    expected = (
        bg.conditional_expected_purchases(month, 2, 30.43, 38.86)
        * gg.expected_average_spend(2, 22.35)
        / 1.01
    )
    assert one[0] == pytest.approx(expected, rel=1e-12)


class TestBadInput:
    def test_too_few_customers(self):
        with pytest.raises(ModelError, match="too few customers"):
            BetaGeoModel().fit([1, 0], [3, 0], [10, 10])

    def test_no_repeat_purchases(self):
        with pytest.raises(ModelError, match="no customer made a repeat purchase"):
            BetaGeoModel().fit([0] * 20, [0] * 20, [10] * 20)

    def test_non_positive_spends(self):
        x = [1, 2, 3] * 5
        with pytest.raises(ModelError, match="positive spends"):
            GammaGammaModel().fit(x, [10, 0, 5] * 5)

    def test_rising_survival_curve(self):
        with pytest.raises(ModelError, match="rises from 600 to 700 at period 2"):
            ShiftedBetaGeometricModel().fit([1000, 600, 700, 500])

    def test_bad_values(self):
        with pytest.raises(ModelError, match="recency must lie between 0 and T"):
            BetaGeoModel().fit([1] * 12, [20] * 12, [10] * 12)
        with pytest.raises(ModelError, match="not numbers"):
            BetaGeoModel().fit([1] * 11 + [None], [1] * 12, [10] * 12)

    def test_unfitted(self):
        with pytest.raises(ModelError, match="not fitted"):
            BetaGeoModel().probability_alive(1, 1, 2)

    def test_fit_that_does_not_converge_says_so(self, monkeypatch):
        import scipy.optimize

        class Failed:
            success, fun, message, x = False, np.nan, "ABNORMAL", np.zeros(4)

        monkeypatch.setattr(scipy.optimize, "minimize", lambda *a, **k: Failed())
        with pytest.raises(ModelError, match="BG/NBD fit did not converge: ABNORMAL"):
            BetaGeoModel().fit([1, 2, 0] * 5, [1, 2, 0] * 5, [5] * 15)

    def test_rfm_bad_dates(self):
        tx = pd.DataFrame({"id": ["a"], "date": ["soon"]})
        with pytest.raises(ValueError, match="'soon' is not a date"):
            rfm_summary(tx, "id", "date")


def test_degenerate_data_say_the_model_is_not_identified():
    # Every customer buys every week up to the last day: nobody drops out, and the
    # likelihood keeps growing as the model tends to a plain Poisson process.
    weeks = pd.date_range("2026-01-01", periods=30, freq="7D")
    tx = pd.DataFrame(
        {"id": np.repeat([f"c{i}" for i in range(20)], 30), "date": np.tile(weeks, 20)}
    )
    rfm = rfm_summary(tx, "id", "date")
    with pytest.raises(ModelError, match="do not identify the model"):
        BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])


def test_simulated_process_is_recovered():
    from cxkpi_xl.models import simulate_transactions

    tx = simulate_transactions(3000, r=0.5, alpha=5.0, a=0.8, b=2.5, weeks=52, seed=11)
    rfm = rfm_summary(tx, "customer_id", "date", "amount", observation_end="2026-12-30")
    params = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"]).params_
    # Generated with r = 0.5, alpha = 5: the rate r / alpha is recovered closely.
    assert params["r"] / params["alpha"] == pytest.approx(0.1, rel=0.15)


def test_heavy_tailed_spends_are_refused_not_mispredicted():
    # Spends that differ by orders of magnitude between customers fit q <= 1, where the
    # Gamma-Gamma mean spend does not exist; the fit says so instead of predicting
    # negative values.
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 400)
    m = np.exp(rng.normal(5, 2.5, 400))
    with pytest.raises(ModelError, match=r"q = .* <= 1"):
        GammaGammaModel().fit(x, m)


def test_report_holds_the_models_when_orders_exist():
    from cxkpi_xl.engine import compute
    from cxkpi_xl.models import simulate_transactions
    from cxkpi_xl.reader import read
    from cxkpi_xl.sample import generate

    # Orders drawn from the BG/NBD process itself (a = 0.8, b = 2.5, well inside the
    # parameters' bounds), so that the fits do not hinge on a borderline sample.
    tables = generate("small")
    customers = tables["Customers"]["customer_id"].tolist()
    tx = simulate_transactions(len(customers), weeks=70, start="2025-01-01", seed=5)
    ids = dict(zip(sorted(tx["customer_id"].unique()), customers, strict=False))
    tables["Orders"] = pd.DataFrame(
        {
            "order_id": [f"S{i}" for i in range(len(tx))],
            "customer_id": tx["customer_id"].map(ids),
            "order_date": tx["date"],
            "amount": tx["amount"],
        }
    )
    report = compute(read(tables))
    by_segment = report.breakdowns["predicted_clv_by_segment"]
    assert set(by_segment.index) == {"SMB", "Mid-market", "Enterprise"}
    assert (by_segment["predicted_clv_mean"] > 0).all()
    dist = report.breakdowns["p_alive_distribution"]
    assert list(dist.index) == ["0%-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%"]
    assert dist["customers"].sum() == by_segment["customers"].sum()
    projected = report.breakdowns["projected_retention"]
    assert projected.loc["0", "survival"] == 1.0
    # Rising rates (sBG) or constant ones (its constant-churn limit), never falling.
    assert (projected["retention_rate"].dropna().diff().dropna() >= -1e-12).all()
    # Too little data (orders of five customers): the report says why in a data issue
    # instead of failing.
    tables = generate("tiny")
    orders = tables["Orders"]
    tables["Orders"] = orders[orders["customer_id"].isin(orders["customer_id"].unique()[:5])]
    few = compute(read(tables))
    assert "predicted_clv_by_segment" not in few.breakdowns
    assert any("predictive CLV not computed: too few customers" in i.problem for i in few.issues)


@needs_cdnow
def test_bgnbd_gradient_matches_finite_differences(rfm):
    rows, weights = np.unique(
        rfm[["frequency", "recency", "T"]].to_numpy(), axis=0, return_counts=True
    )
    args = (rows[:, 0], rows[:, 1], rows[:, 2], weights.astype(float))
    point = np.log([0.3, 4.0, 0.8, 2.0])
    _, gradient = BetaGeoModel._nll_and_gradient(point, *args)
    step = 1e-6
    numeric = [
        (
            BetaGeoModel._nll_and_gradient(point + h, *args)[0]
            - BetaGeoModel._nll_and_gradient(point - h, *args)[0]
        )
        / (2 * step)
        for h in np.eye(4) * step
    ]
    assert gradient == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.skipif(not (CDNOW / "CDNOW_master.txt").exists(), reason="CDNOW data not found")
def test_bgnbd_reaches_the_optimum_on_the_cdnow_master_file():
    from scipy.optimize import minimize
    from scipy.special import gammaln

    raw = pd.read_csv(
        CDNOW / "CDNOW_master.txt", sep=r"\s+", header=0, dtype={"customer_id": str, "date": str}
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    rfm = rfm_summary(
        raw, "customer_id", "date", "dollar_value", observation_end="1997-09-30", freq="W"
    )
    model = BetaGeoModel().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    ours = np.array([model.params_[k] for k in ("r", "alpha", "a", "b")])

    # An independent optimiser: the log-likelihood of Fader, Hardie & Lee (2005, eq. 6)
    # written out here, minimised by Nelder-Mead with tight tolerances and restarted from
    # its own answer until it stops moving.
    rows, counts = np.unique(
        rfm[["frequency", "recency", "T"]].to_numpy(), axis=0, return_counts=True
    )
    x, t_x, t = rows.T

    def nll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + t)
        safe = np.where(x > 0, b + x - 1, 1.0)
        a4 = np.where(x > 0, np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x), -np.inf)
        return -float(counts @ (a1 + a2 + np.logaddexp(a3, a4)))

    point = np.log([0.25, 5.0, 0.7, 2.0])
    for _ in range(4):
        found = minimize(
            nll, point, method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000},
        )  # fmt: skip
        moved = np.abs(found.x - point).max()
        point = found.x
        if moved < 1e-9:
            break
    reference = np.exp(point)
    # Before the Newton polish our fit stopped 1.2e-4 (relative) short in a and b.
    assert ours == pytest.approx(reference, rel=1e-6)
    assert nll(np.log(ours)) <= nll(point) + 1e-6


def test_gamma_gamma_does_not_depend_on_the_currency_unit():
    # The same spends in cents, or in a currency 10,000 times smaller (IDR against USD):
    # p and q are unchanged and v scales with the money (v is a spend scale), even where
    # v goes far beyond the bounds a search in absolute units would have (e^10 = 22,026).
    rng = np.random.default_rng(2)
    x = rng.integers(1, 8, 300).astype(float)
    m = rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 15.0, 300)) + 1
    base = GammaGammaModel().fit(x, m).params_
    for factor in (100.0, 1e4):
        scaled = GammaGammaModel().fit(x, m * factor).params_
        assert scaled["p"] == pytest.approx(base["p"], rel=1e-5)
        assert scaled["q"] == pytest.approx(base["q"], rel=1e-5)
        assert scaled["v"] == pytest.approx(base["v"] * factor, rel=1e-5)
    assert base["v"] * 1e4 > 22_026


def test_bgnbd_constant_dropout_limit_formulas():
    # As a, b grow with a/(a + b) = p, the BG/NBD's predictions tend to the limit's
    # closed forms, e.g. E[X(t)] = (1 - (alpha/(alpha + p t))^r)/p: with r = 0.5,
    # alpha = 4, p = 0.2, t = 30: (1 - (4/10)^0.5)/0.2 = (1 - 0.63246)/0.2 = 1.8377.
    p = 0.2
    limit = BetaGeoModel(params_={"r": 0.5, "alpha": 4.0, "a": np.inf, "b": np.inf})
    limit.constant_dropout_ = p
    assert limit.expected_purchases(30) == pytest.approx((1 - 0.4**0.5) / 0.2, rel=1e-12)
    assert round(limit.expected_purchases(30), 4) == 1.8377
    near = BetaGeoModel(params_={"r": 0.5, "alpha": 4.0, "a": p * 1e7, "b": (1 - p) * 1e7})
    history = ([0, 3, 7], [0, 10, 25], [30, 30, 30])
    assert limit.expected_purchases(30) == pytest.approx(near.expected_purchases(30), rel=1e-5)
    assert limit.conditional_expected_purchases(20, *history) == pytest.approx(
        near.conditional_expected_purchases(20, *history), rel=1e-5
    )
    assert limit.probability_alive(*history) == pytest.approx(
        near.probability_alive(*history), rel=1e-5
    )


# 27 customers' repeat purchases, recency and age in weeks (a sample data set): nobody's
# dropout differs from anybody else's, so the likelihood keeps growing with a + b.
STEADY = (
    [0, 0, 2, 2, 0, 3, 1, 1, 3, 0, 1, 1, 2, 1, 0, 4, 13, 18, 7, 2, 10, 3, 5, 5, 2, 1, 3],
    [0.0, 0.0, 19.2857, 11.5714, 0.0, 29.0, 9.8571, 38.1429, 14.7143, 0.0, 5.7143, 19.5714,
     25.4286, 3.0, 0.0, 33.5714, 26.4286, 46.4286, 41.7143, 19.0, 44.1429, 1.8571, 47.0,
     41.2857, 23.5714, 0.7143, 45.0],
    [22.0, 42.0, 24.2857, 18.1429, 16.1429, 50.1429, 28.2857, 39.4286, 31.2857, 30.5714,
     15.0, 24.7143, 39.5714, 16.2857, 35.2857, 40.2857, 49.5714, 51.2857, 42.0, 22.0,
     50.7143, 50.7143, 48.8571, 43.8571, 23.5714, 28.1429, 51.4286],
)  # fmt: skip


def test_bgnbd_fits_the_constant_dropout_limit_instead_of_failing():
    x, t_x, t = (np.array(v, dtype=float) for v in STEADY)
    model = BetaGeoModel().fit(x, t_x, t)
    assert model.params_["a"] == np.inf and 0 < model.constant_dropout_ < 1
    r, alpha, p = model.params_["r"], model.params_["alpha"], model.constant_dropout_
    # Why the limit: at the fitted r, alpha and p, the full model's likelihood rises as
    # a + b grows with a/(a + b) = p, and the limit's likelihood is its supremum.
    w = np.ones_like(x)

    def full(k: float) -> float:
        return BetaGeoModel._nll_and_gradient(np.log([r, alpha, p * k, (1 - p) * k]), x, t_x, t, w)[
            0
        ]

    path = [full(k) for k in (1e1, 1e2, 1e3, 1e4)]
    assert all(b < a for a, b in pairwise(path))
    limit = BetaGeoModel._limit_nll(np.log([r, alpha, p / (1 - p)]), x, t_x, t, w)
    assert limit <= path[-1]
    # And it predicts: P(alive) in 0..1, expected purchases rising with the horizon.
    alive = model.probability_alive(x, t_x, t)
    assert ((alive > 0) & (alive <= 1)).all()
    assert (model.conditional_expected_purchases(26, x, t_x, t) > 0).all()
    assert model.expected_purchases(10) < model.expected_purchases(20)


# Repeat buyers' purchases and mean spends of two sample data sets.
ALIKE = (
    [3, 10, 11, 6, 2, 14, 4, 1, 1, 8, 2, 10, 6, 3, 7, 5, 4],
    [739.16, 1244.9, 1021.19, 438.5, 2175.28, 772.1, 236.15, 760.72, 920.22, 1270.66,
     1223.18, 770.06, 1008.41, 1421.26, 884.88, 1120.22, 908.8],
)  # fmt: skip
STEADY_SPENDS = (
    [1, 4, 30, 4, 5, 4, 1, 2, 3, 1, 10, 6, 13, 12, 3],
    [746.53, 1067.43, 955.35, 941.22, 592.66, 2734.52, 573.57, 675.32, 577.37, 1178.73,
     734.87, 525.28, 1386.08, 1017.35, 715.27],
)  # fmt: skip


def test_gamma_gamma_limits_instead_of_failing():
    # Customers whose mean spends differ no more than single purchases do: q and v run
    # off together; the limit gives everyone the same expected spend, which maximises
    # the limit's likelihood at total spend / total purchases = sum(x m) / sum(x).
    x, m = (np.array(v, dtype=float) for v in ALIKE)
    model = GammaGammaModel().fit(x, m)
    assert model.limit_ == "alike" and model.params_["q"] == np.inf
    assert model.mean_spend_ == pytest.approx((x * m).sum() / x.sum(), rel=1e-6)
    assert model.expected_average_spend([0, 5], [0, 100]) == pytest.approx([model.mean_spend_] * 2)
    p, nu = model.params_["p"], model.params_["p"] / model.mean_spend_
    path = [
        GammaGammaModel._log_likelihood(np.log([p, k, k / nu]), x, m) for k in (1e1, 1e2, 1e3, 1e4)
    ]
    assert all(b < a for a, b in pairwise(path))
    assert GammaGammaModel._alike_nll(np.log([p, nu]), x, m) <= path[-1]

    # Each customer's purchases hardly vary: p runs off (v to 0, p v fixed); a repeat
    # buyer's expected spend is then their own mean, the others get s / (q - 1), where
    # the inverse-gamma fit has s = q n / sum(1 / m).
    x, m = (np.array(v, dtype=float) for v in STEADY_SPENDS)
    model = GammaGammaModel().fit(x, m)
    assert model.limit_ == "steady" and model.params_["p"] == np.inf
    q = model.params_["q"]
    s = q * len(m) / (1 / m).sum()
    assert model.mean_spend_ == pytest.approx(s / (q - 1), rel=1e-6)
    assert model.expected_average_spend([3, 0], [500.0, 0.0]) == pytest.approx(
        [500.0, model.mean_spend_]
    )
    path = [
        GammaGammaModel._log_likelihood(np.log([k, q, s / k]), x, m) for k in (1e1, 1e2, 1e3, 1e4)
    ]
    assert all(b < a for a, b in pairwise(path))
    assert GammaGammaModel._steady_nll(np.log([q, s]), x, m) <= path[-1]


@pytest.mark.parametrize(
    ("objective", "point"),
    [
        (GammaGammaModel._nll_and_gradient, [2.0, 3.0, 40.0]),
        (GammaGammaModel._alike_nll_and_gradient, [2.0, 0.1]),
        (GammaGammaModel._steady_nll_and_gradient, [3.0, 40.0]),
    ],
)
def test_gamma_gamma_gradients_match_finite_differences(objective, point):
    # The fit follows the analytic gradients (L-BFGS-B, then Newton steps): each must be
    # the derivative of its objective, checked against central differences.
    rng = np.random.default_rng(0)
    x = rng.integers(1, 8, 300).astype(float)
    m = rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 15.0, 300)) + 1
    at = np.log(point)
    _, grad = objective(at, x, m)
    h = 1e-6
    for i in range(at.size):
        e = np.zeros(at.size)
        e[i] = h
        numeric = (objective(at + e, x, m)[0] - objective(at - e, x, m)[0]) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_gamma_gamma_fit_is_a_stationary_point_of_the_likelihood():
    # 20,000 repeat buyers drawn from the model itself (p = 2, q = 11, v = 5,000): the fit
    # ends where the gradient vanishes, near the true parameters.
    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.integers(1, 12, n).astype(float)
    nu = rng.gamma(11.0, 1 / 5_000.0, n)
    m = rng.gamma(2.0 * x, 1 / (nu * x))
    model = GammaGammaModel().fit(x, m)
    found = np.log([model.params_[k] for k in ("p", "q", "v")])
    _, grad = GammaGammaModel._nll_and_gradient(found, x, m)
    assert np.abs(grad).max() < 1e-7
    assert model.params_["p"] == pytest.approx(2.0, rel=0.1)
    assert model.params_["q"] == pytest.approx(11.0, rel=0.25)
