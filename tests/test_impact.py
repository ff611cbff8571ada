"""Does CX pay? The Cox fit against an independent implementation of Efron's partial
likelihood written here, a simulation with a known truth (detractors churn 3x and
passives 1.5x as fast as promoters, month by month), the start/stop table by hand, the
MRR at stake and NRR by category on a small book worked out by hand, the notes for too
little data and for a missing statsmodels, the JSON, and the section in the Report as
LibreOffice reads it."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import optimize

from cxkpi_xl.cli import main
from cxkpi_xl.data.reader import read
from cxkpi_xl.data.sample import generate, write_workbook
from cxkpi_xl.engine import compute
from cxkpi_xl.engine.impact import MIN_EVENTS, churn_spells
from cxkpi_xl.models.hazard import cox_hazard_ratios
from cxkpi_xl.refresh import refresh
from cxkpi_xl.report.board import report_sheet
from cxkpi_xl.report.impact import forest_plot
from cxkpi_xl.report.layout import REPORT_SHEET

from .lo import recalculate

LEVELS = ("promoter", "passive", "detractor", "no answer")


# -- an independent Cox fit: Efron's partial likelihood, maximised by scipy ----------------


def efron_loglik(beta, entry, exit, event, x, strata):
    """Efron's log partial likelihood of start/stop rows, summed over strata: at each
    event time t of a stratum, with D the rows ending in an event at t (d of them), R the
    rows at risk (entry < t <= exit), sum over D of x b - sum_{j<d} log(S_R - j/d S_D)."""
    total = 0.0
    eta = x @ beta
    w = np.exp(eta)
    for s in np.unique(strata):
        in_s = strata == s
        for t in np.unique(exit[in_s & (event == 1)]):
            risk = in_s & (entry < t) & (exit >= t)
            dead = in_s & (exit == t) & (event == 1)
            d = dead.sum()
            s_r, s_d = w[risk].sum(), w[dead].sum()
            total += eta[dead].sum() - sum(np.log(s_r - j / d * s_d) for j in range(d))
    return total


def independent_fit(entry, exit, event, x, strata):
    """Estimates and standard errors (inverse of the numerical Hessian) of the fit."""
    f = lambda b: -efron_loglik(b, entry, exit, event, x, strata)  # noqa: E731
    res = optimize.minimize(f, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-9})
    h, p = 1e-4, x.shape[1]
    hess = np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            ei, ej = np.eye(p)[i] * h, np.eye(p)[j] * h
            hess[i, j] = (
                f(res.x + ei + ej) - f(res.x + ei - ej) - f(res.x - ei + ej) + f(res.x - ei - ej)
            ) / (4 * h * h)
    return res.x, np.sqrt(np.diag(np.linalg.inv(hess)))


class TestCoxAgainstAnIndependentFit:
    def test_six_subjects_by_hand(self):
        # L(x) = x^2 / ((3 + 3x)(2 + 3x)(1 + 2x)(1 + x)) (see the docstring); its score
        # 2/x - 3/(3+3x) - 3/(2+3x) - 2/(1+2x) - 1/(1+x) is zero at the estimate.
        fit = cox_hazard_ratios(
            [0] * 6, [1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 1], list("ababab"), reference="a"
        )
        x = fit.hazard_ratio[1]
        score = 2 / x - 3 / (3 + 3 * x) - 3 / (2 + 3 * x) - 2 / (1 + 2 * x) - 1 / (1 + x)
        assert abs(score) < 1e-6
        assert fit.events.tolist() == [2, 3] and fit.subjects.tolist() == [3, 3]

    @pytest.mark.parametrize("stratified", [False, True])
    def test_tied_time_varying_left_truncated_rows(self, stratified):
        rng = np.random.default_rng(5)
        n = 150
        entry = rng.integers(0, 6, n).astype(float)
        exit = entry + rng.integers(1, 8, n)
        cat = rng.choice(np.array(["promoter", "passive", "detractor"], dtype=object), n)
        hr = np.where(cat == "detractor", 3.0, np.where(cat == "passive", 1.5, 1.0))
        event = (rng.random(n) < 0.25 * hr).astype(float)
        strata = rng.integers(0, 2, n) if stratified else np.zeros(n, int)
        fit = cox_hazard_ratios(
            entry, exit, event, cat, reference="promoter", levels=LEVELS,
            strata=strata if stratified else None,
        )  # fmt: skip
        x = np.column_stack([(cat == c).astype(float) for c in ("passive", "detractor")])
        beta, se = independent_fit(entry, exit, event, x, strata)
        assert fit.levels == ("promoter", "passive", "detractor")
        assert fit.log_hr[1:] == pytest.approx(beta, abs=1e-5)
        assert fit.log_hr_se[1:] == pytest.approx(se, rel=1e-3)
        z = 1.959963984540054
        assert fit.ci_low[2] == pytest.approx(math.exp(beta[1] - z * se[1]), rel=1e-3)
        assert fit.p_value[2] == pytest.approx(
            math.erfc(abs(beta[1] / se[1]) / math.sqrt(2)), rel=1e-2
        )

    def test_bad_input(self):
        with pytest.raises(ValueError, match="reference"):
            cox_hazard_ratios([0], [1], [1], ["passive"], reference="promoter")
        with pytest.raises(ValueError, match="exit > entry"):
            cox_hazard_ratios([1], [1], [1], ["promoter"], reference="promoter")
        with pytest.raises(ValueError, match="no events"):
            cox_hazard_ratios([0, 0], [1, 2], [0, 0], ["promoter", "passive"], reference="promoter")


# -- the simulation with a known truth --------------------------------------------------

TRUE_HR = np.array([1.0, 1.5, 3.0])  # promoter, passive, detractor


def simulate(seed: int, n: int = 1000, months: int = 25, h0: float = 0.012):
    """Customers who start in months 1-12 and answer NPS now and then (their category can
    change); each month an active customer churns with probability h0 x the hazard ratio
    of the category of the latest answer before the month (2 without an answer). Returns
    the activity matrix (as the engine's base) and the category matrix."""
    rng = np.random.default_rng(seed)
    active = np.zeros((n, months), dtype=bool)
    cat = np.full((n, months), -1, dtype=np.int8)
    start = rng.integers(1, 13, n)
    current = rng.choice(3, n)
    answered = np.zeros(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    for t in range(1, months):
        answers = rng.random(n) < 0.3
        current = np.where(answers & (rng.random(n) < 0.3), rng.choice(3, n), current)
        answered |= answers
        c = cat[:, t - 1]
        hr = np.where(c >= 0, TRUE_HR[np.maximum(c, 0)], 2.0)
        alive &= ~(active[:, t - 1] & (rng.random(n) < h0 * hr))
        active[:, t] = (t >= start) & alive
        cat[:, t] = np.where(answered, current, -1)
    base = types.SimpleNamespace(active=active, in_customers=np.ones(n, bool), signup_col=start)
    return base, cat


def test_simulation_covers_the_true_hazard_ratios():
    """40 runs: the 95 % intervals cover the true ratios in at least 90 % of runs and the
    mean estimate is within its standard error of the truth (log scale)."""
    runs = 40
    est, se, covered, ph_rejects = [], [], [], 0
    for seed in range(runs):
        base, cat = simulate(seed)
        s = churn_spells(base, cat)
        fit = cox_hazard_ratios(
            s["entry"], s["exit"], s["churned"], s["nps_category"], reference="promoter",
            subject=s["customer"], levels=LEVELS,
        )  # fmt: skip
        est.append(fit.log_hr[1:3])
        se.append(fit.log_hr_se[1:3])
        covered.append([fit.ci_low[i] <= TRUE_HR[i] <= fit.ci_high[i] for i in (1, 2)])
        ph_rejects += fit.ph_global_p_value < 0.05
    est, se = np.array(est), np.array(se)
    coverage = np.mean(covered, axis=0)
    assert (coverage >= 0.9).all(), coverage
    bias = est.mean(axis=0) - np.log(TRUE_HR[1:])
    assert (np.abs(bias) < 3 * est.std(axis=0, ddof=1) / np.sqrt(runs)).all(), bias
    assert (np.abs(bias) < 0.25 * se.mean(axis=0)).all(), bias
    # The model's standard errors match the spread of the estimates across runs.
    assert se.mean(axis=0) == pytest.approx(est.std(axis=0, ddof=1), rel=0.3)
    assert ph_rejects <= 6  # hazards are proportional here: about 5 % of runs reject


def test_proportional_hazards_check_flags_a_ratio_that_changes_with_tenure():
    # Detractors churn 6x as fast in their first 6 months and 0.3x after.
    rng = np.random.default_rng(3)
    n = 3000
    cat = rng.choice(np.array(["promoter", "detractor"], dtype=object), n)
    early = rng.exponential(1 / np.where(cat == "detractor", 0.12, 0.02))
    late = 6 + rng.exponential(1 / np.where(cat == "detractor", 0.006, 0.02))
    time = np.where(early < 6, early, late)
    event = (time < 36).astype(float)
    fit = cox_hazard_ratios(np.zeros(n), np.minimum(time, 36), event, cat, reference="promoter")
    assert fit.ph_p_value[1] < 1e-6


# -- the start/stop table ---------------------------------------------------------------


def test_spells_by_hand():
    # Customer 0: active from column 1, answers promoter at month 2, detractor at 4,
    # churns in month 6 (not active at its end). Customer 1: signed up 2 months before
    # the data, never answers, stays. Customer 2 churns, returns: only the first churn.
    active = np.array(
        [
            [0, 1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1],
            [0, 0, 1, 0, 0, 1, 1, 1],
        ],
        dtype=bool,
    )
    P, D = 0, 2
    cat = np.array(
        [
            [-1, -1, P, P, D, D, D, D],
            [-1] * 8,
            [-1, -1, -1, -1, -1, -1, -1, -1],
        ],
        dtype=np.int8,
    )
    base = types.SimpleNamespace(
        active=active, in_customers=np.ones(3, bool), signup_col=np.array([1, -2, 2])
    )
    s = churn_spells(base, cat)
    rows = [
        tuple(r) for r in s[["customer", "entry", "exit", "churned", "nps_category"]].to_numpy()
    ]
    assert rows == [
        # months 2 (category before it: none), 3-4 (promoter), 5-6 (detractor, churn in 6)
        (0, 0.0, 1.0, False, "no answer"),
        (0, 1.0, 3.0, False, "promoter"),
        (0, 3.0, 5.0, True, "detractor"),
        # from month 1 (tenure 2 at the start) to month 7, no churn
        (1, 2.0, 9.0, False, "no answer"),
        # active in column 2 only: churns in month 3
        (2, 0.0, 1.0, True, "no answer"),
    ]
    # Nobody at risk (active in the last month only): no rows, and no fit but a note.
    late = types.SimpleNamespace(
        active=np.eye(2, 8, 7, dtype=bool), in_customers=np.ones(2, bool), signup_col=np.full(2, 7)
    )
    assert churn_spells(late, np.full((2, 8), -1, np.int8)).empty


# -- the engine on a book worked by hand -----------------------------------------------


def small_book(
    churners: dict[str, int], n_per: int = 20, months: int = 14
) -> dict[str, pd.DataFrame]:
    """n_per customers per NPS category (answered in the first month), 100 MRR a month
    each; ``churners[category]`` of them stop paying after month 6 (their MRR is 0 from
    month 7)."""
    month = pd.date_range("2025-01-01", periods=months, freq="MS")
    customers, mrr, surveys = [], [], []
    score = {"promoter": 10, "passive": 8, "detractor": 3}
    for c, s in score.items():
        for i in range(n_per):
            cid = f"{c[:3]}{i}"
            customers.append({"customer_id": cid, "signup_date": "2025-01-01", "segment": "SMB"})
            stop = 6 if i < churners.get(c, 0) else months
            mrr += [{"customer_id": cid, "month": m, "mrr": 100.0 if k < stop else 0.0}
                    for k, m in enumerate(month)]  # fmt: skip
            surveys.append(
                {"customer_id": cid, "response_date": "2025-01-15", "survey": "NPS", "score": s}
            )
    return {
        "Customers": pd.DataFrame(customers),
        "MRR": pd.DataFrame(mrr),
        "Surveys": pd.DataFrame(surveys),
    }


class TestEngine:
    def test_worked_book(self):
        book = small_book({"promoter": 2, "passive": 4, "detractor": 8})
        report = compute(read(book))
        impact = report.impact
        assert impact is not None and impact.note is None
        fit = impact.hazard
        assert fit.levels == ("promoter", "passive", "detractor")  # nobody without an answer
        assert fit.events.tolist() == [2, 4, 8] and fit.subjects.tolist() == [20, 20, 20]
        # Every churn happens in the same month: one tied event time, with 20 at risk per
        # category. Efron's likelihood at that time, maximised independently:
        x = np.column_stack([np.repeat([0, 1, 0], 20), np.repeat([0, 0, 1], 20)]).astype(float)
        event = np.zeros(60)
        for k, m in enumerate((2, 4, 8)):
            event[20 * k : 20 * k + m] = 1
        beta, _ = independent_fit(np.zeros(60), np.full(60, 7.0), event, x, np.zeros(60))
        assert fit.log_hr[1:] == pytest.approx(beta, abs=1e-5)
        # Churned MRR of the last 12 months by category, a year: 2, 4, 8 customers x 100.
        assert impact.window_months == 12
        assert impact.churned_mrr == pytest.approx(
            {"promoter": 200.0, "passive": 400.0, "detractor": 800.0, "no answer": 0.0}
        )
        stake = impact.mrr_at_stake["detractor"]
        assert stake["mrr"] == pytest.approx(800 * (1 - 1 / fit.hazard_ratio[2]))
        assert stake["ci_low"] == pytest.approx(800 * (1 - 1 / fit.ci_low[2]))
        total = impact.mrr_at_stake["passive and detractor"]
        assert total["mrr"] == pytest.approx(
            400 * (1 - 1 / fit.hazard_ratio[1]) + 800 * (1 - 1 / fit.hazard_ratio[2])
        )
        assert total["ci_low"] < total["mrr"] < total["ci_high"]
        # NRR over months 2..14 (the last 12): the cohort paying 100 at month 2 keeps
        # 100 or drops to 0: detractors 12 of 20 -> 0.6.
        nrr = impact.nrr["detractor"]
        assert nrr["nrr"] == pytest.approx(0.6) and nrr["customers"] == 20
        assert nrr["ci_low"] < 0.6 < nrr["ci_high"]
        # the percentile bootstrap of a mean of 0/1 outcomes: about 0.6 +- 1.96 * 0.11
        assert nrr["ci_high"] - nrr["ci_low"] == pytest.approx(
            2 * 1.96 * math.sqrt(0.24 / 20), rel=0.2
        )
        assert impact.nrr["promoter"]["nrr"] == pytest.approx(0.9)  # 18 of 20 keep 100
        # Repeatable: the same data give the same intervals.
        again = compute(read(book)).impact
        assert again.nrr == impact.nrr and again.mrr_at_stake == impact.mrr_at_stake

    def test_json(self):
        report = compute(read(small_book({"promoter": 2, "passive": 4, "detractor": 8})))
        out = json.loads(json.dumps(report.as_json(), allow_nan=False))["cx_impact"]
        assert out["reference"] == "promoter"
        assert set(out["churn_hazard"]) == {"promoter", "passive", "detractor"}
        assert set(out["churn_hazard"]["detractor"]) == {
            "hazard_ratio", "ci_low", "ci_high", "p_value", "customers", "events",
        }  # fmt: skip
        assert out["churn_hazard"]["detractor"]["events"] == 8
        assert set(out["nrr_by_category"]["passive"]) >= {"nrr", "ci_low", "ci_high"}
        assert "passive and detractor" in out["mrr_at_stake"]
        assert "not cause" in out["caveat"]

    def test_too_few_events_gives_a_note(self):
        impact = compute(read(small_book({"promoter": 1, "passive": 2, "detractor": 3}))).impact
        assert impact.hazard is None and f"at least {MIN_EVENTS}" in impact.note
        assert impact.mrr_at_stake == {} and impact.as_json()["churn_hazard"] == {}
        stays = compute(read(small_book({"detractor": 3})))
        # Every promoter keeps paying 100: NRR 1 and no spread to resample.
        assert stays.impact.nrr["promoter"] == {
            "nrr": 1.0,
            "ci_low": 1.0,
            "ci_high": 1.0,
            "customers": 20,
        }
        sheet = report_sheet(stays)
        texts = [r[0][0] for r in sheet.rows if r and r[0] is not None]
        assert any("Too little data" in str(t) for t in texts)

    def test_an_empty_category_gives_a_note(self):
        book = small_book({"promoter": 5, "detractor": 10})
        book["Surveys"] = book["Surveys"][book["Surveys"]["score"] != 8]
        impact = compute(read(book)).impact
        assert impact.hazard is None and "passive" in impact.note

    def test_without_statsmodels_the_same_hazard_ratios(self, monkeypatch):
        # fitted from counts; statsmodels only where a category has no churn (test_engine_fast)
        data = read(small_book({"promoter": 2, "passive": 4, "detractor": 8}))
        with_it = compute(data).impact
        monkeypatch.setitem(sys.modules, "statsmodels.duration.hazard_regression", None)
        impact = compute(data).impact
        assert impact.hazard is not None and impact.as_json() == with_it.as_json()
        assert impact.nrr  # the rest needs scipy only

    def test_no_breakdowns_no_impact_unless_asked(self):
        data = read(small_book({"promoter": 2, "passive": 4, "detractor": 8}))
        assert compute(data, breakdowns=False).impact is None
        assert compute(data, breakdowns=False, impact=True).impact is not None

    def test_nps_changes_marked(self):
        book = small_book({})
        answer = {"response_date": "2025-02-10", "survey": "NPS", "score": 2}
        extra = [{"customer_id": f"pro{i}", **answer} for i in range(20)]
        book["Surveys"] = pd.concat([book["Surveys"], pd.DataFrame(extra)])
        changes = compute(read(book)).impact.nps_changes
        first = changes.iloc[0]
        # January: 20 / 20 / 20 -> NPS 0; February: 20 detractors -> NPS -100.
        assert first["period"] == "2025-02" and first["difference"] == pytest.approx(-100)
        assert bool(first["significant"])


def test_forest_plot():
    # log axis 0.5..8: 1 sits at a quarter of the width, 2 at a half
    line = forest_plot(2.0, 1.0, 4.0, 0.5, 8.0)
    assert line.index("|") == 10 and line.index("o") == 20 and line.rstrip().endswith("-")


# -- the Report as LibreOffice reads it -------------------------------------------------


def test_section_in_the_refreshed_report(tmp_path: Path):
    book = write_workbook(generate("small"), tmp_path / "book.xlsx")
    refresh(book)
    out = CliRunner().invoke(main, ["kpis", str(book), "--format", "json"])
    assert out.exit_code == 0, out.output
    expected = json.loads(out.stdout)["cx_impact"]["churn_hazard"]
    lo_in = tmp_path / "lo_in"
    lo_in.mkdir()
    shutil.copy(book, lo_in / "book.xlsx")
    (converted,) = recalculate([lo_in / "book.xlsx"], tmp_path / "lo_out")
    ws = openpyxl.load_workbook(converted, data_only=True)[REPORT_SHEET]
    col_a = [r[0].value for r in ws.iter_rows()]
    title = next(i for i, v in enumerate(col_a) if str(v).startswith("Does CX pay?"))
    assert any("as fast as promoters" in str(v) for v in col_a[title : title + 8])
    assert any("not cause" in str(v) for v in col_a[title : title + 10])
    head = next(i for i in range(title, len(col_a)) if col_a[i] == "nps category")
    rows = list(ws.iter_rows(min_row=head + 2, max_row=head + 5, values_only=True))
    for category, hr, low, high, p, customers, events, *_ in rows:
        e = expected[category]
        assert p == (pytest.approx(e["p_value"]) if e["p_value"] is not None else None)
        assert hr == pytest.approx(e["hazard_ratio"], rel=1e-9)
        assert (customers, events) == (e["customers"], e["events"])
        if category != "promoter":
            assert (low, high) == (pytest.approx(e["ci_low"]), pytest.approx(e["ci_high"]))


def test_average_ranks_and_tails_without_scipy():
    """The proportional-hazards check ranks event times with ties sharing their mean rank
    and takes chi-square and normal tails from the standard library (scipy takes a fifth
    of a second to import): against scipy.stats' rankdata, chi2 and norm, and by hand."""
    from scipy import stats

    from cxkpi_xl.models.hazard import _average_ranks, chi2_upper, normal_two_sided

    rng = np.random.default_rng(5)
    for values in ([3.0, 1.0, 2.0, 2.0, 5.0, 1.0], rng.integers(0, 20, 500).astype(float)):
        a = np.asarray(values)
        assert np.array_equal(_average_ranks(a), stats.rankdata(a))
    assert _average_ranks(np.array([4.0, 4.0, 4.0])).tolist() == [2.0, 2.0, 2.0]  # by hand
    x = np.array([1e-8, 0.1, 1.0, 3.841458820694124, 10.0, 57.3, 400.0])
    for k in range(1, 12):
        ours = np.array([chi2_upper(k, v) for v in x])
        assert np.allclose(ours, stats.chi2.sf(x, k), rtol=1e-12, atol=0), k
    assert chi2_upper(1, 3.841458820694124) == pytest.approx(0.05, rel=1e-12)  # the 5 % point
    assert chi2_upper(2, 2.0) == pytest.approx(math.exp(-1), rel=1e-15)  # by hand: exp(-x/2)
    assert 0 <= chi2_upper(4, 1500.0) < 1e-300  # scipy underflows to 0 here
    assert chi2_upper(3, 0.0) == 1.0 and chi2_upper(2, 5e-324) == 1.0  # as scipy
    assert math.isnan(chi2_upper(2, -1e-12))  # as scipy: no tail of a negative statistic
    assert chi2_upper(2, math.inf) == 0.0 and math.isnan(chi2_upper(1, math.nan))
    z = np.array([0.0, 0.5, -1.959963984540054, 3.0, -8.5, 40.0, np.nan, np.inf])
    p = normal_two_sided(z)
    assert np.allclose(p[:6], 2 * stats.norm.sf(np.abs(z[:6])), rtol=1e-12, atol=0)
    assert p[0] == 1.0 and p[2] == pytest.approx(0.05, rel=1e-12)  # by hand: the 5 % point
    assert math.isnan(p[6]) and p[7] == 0.0
