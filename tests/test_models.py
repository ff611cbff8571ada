"""Predictive models on the published data: the fitted parameters must reproduce the
literature, and bad input must give a clear message."""

from __future__ import annotations

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
    # DERL = (b + n - 1)/(a + b + n - 1) * 2F1(1, b + n; a + b + n; 1/(1 + d)); with
    # a = b = 1, n = 1: 1/2 * 2F1(1, 2; 3; z) = 1/2 * (-2 (z + ln(1 - z)) / z^2).
    model = ShiftedBetaGeometricModel(params_={"alpha": 1.0, "beta": 1.0})
    d = 0.1
    z = 1 / (1 + d)
    expected = 0.5 * (-2 * (z + np.log(1 - z)) / z**2)
    assert model.discounted_expected_residual_lifetime(d) == pytest.approx(expected, rel=1e-10)


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
    from cxkpi_xl.reader import read
    from cxkpi_xl.sample import generate

    report = compute(read(generate("small")))
    by_segment = report.breakdowns["predicted_clv_by_segment"]
    assert set(by_segment.index) == {"SMB", "Mid-market", "Enterprise"}
    assert (by_segment["predicted_clv_mean"] > 0).all()
    dist = report.breakdowns["p_alive_distribution"]
    assert list(dist.index) == ["0%-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%"]
    assert dist["customers"].sum() == by_segment["customers"].sum()
    projected = report.breakdowns["projected_retention"]
    assert projected.loc["0", "survival"] == 1.0
    assert (projected["retention_rate"].dropna().diff().dropna() > 0).all()
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
