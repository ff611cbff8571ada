"""Does CX pay? The customer-level analysis behind the Report's section of that name.

On the report's customer matrices (the same base and axis as the NPS-category split of
``breakdowns``): the start/stop table of time to first churn, one row per run of months in
which the customer's latest NPS category before the month stays the same (a time-varying
covariate, so no immortal-time bias); the Cox hazard ratios of churn by category, promoters
the reference (:mod:`cxkpi_xl.models.hazard`), stratified by segment unless the setting
``churn_hazard_strata`` is ``none``; the churned MRR of the last 12 months by category and
the part of it that churn at promoters' hazard would have kept (the MRR at stake); NRR of
the last 12 months by category with a bootstrap interval (customers resampled); and the
change in NPS from each period to the next with its test.

The time scale is tenure in months (from the signup month, or the first paying month when
earlier or without a signup date); a customer seen from mid-life enters late (left
truncation). This measures association, not cause.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..kpis.significance import nps_change_test, ratio_bootstrap_interval
from ..models.hazard import HazardRatios, cox_hazard_ratios
from .axis import _Axis, _split_by_period
from .breakdowns import NPS_CATEGORIES, _nps_category_matrix
from .memo import Memo, run_derived
from .subscriptions import _Base

REFERENCE = "promoter"
MIN_EVENTS = 10
"""Fewer churn events than this give a note instead of hazard ratios."""
WINDOW_MONTHS = 12
"""Churned MRR, MRR at stake and NRR by category cover the last 12 months (or all)."""
BOOTSTRAP_RESAMPLES = 2000
SEED = 20260101
"""The bootstrap and the interval of the total MRR at stake are seeded: a refresh of the
same data gives the same intervals."""
PH_ALPHA = 0.05
CAVEAT = (
    "This shows association, not cause: customers who answer as detractors may differ in "
    "other ways (size, product fit, price) that also drive churn."
)


@dataclass
class CxImpact:
    """The analysis of one dataset; ``note`` says why there are no hazard ratios."""

    hazard: HazardRatios | None
    note: str | None
    ph_note: str | None
    strata: str | None
    window_months: int
    churned_mrr: dict[str, float]
    mrr_at_stake: dict[str, dict[str, float]]
    nrr: dict[str, dict[str, float]]
    nps_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference: str = REFERENCE

    def as_json(self) -> dict[str, Any]:
        """``{"reference", "churn_hazard": {category: {"hazard_ratio", "ci_low", "ci_high",
        "p_value", "customers", "events"}}, "mrr_at_stake", "nrr_by_category", ...}``."""
        return _json_clean(
            {
                "reference": self.reference,
                "churn_hazard": self.hazard.as_dict() if self.hazard is not None else {},
                "note": self.note,
                "proportional_hazards_note": self.ph_note,
                "strata": self.strata,
                "window_months": self.window_months,
                "churned_mrr": self.churned_mrr,
                "mrr_at_stake": self.mrr_at_stake,
                "nrr_by_category": self.nrr,
                "nps_changes": self.nps_changes.to_dict(orient="records"),
                "caveat": CAVEAT,
            }
        )


def _json_clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_clean(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def churn_spells(base: _Base, cat: np.ndarray, stratum: np.ndarray | None = None) -> pd.DataFrame:
    """The start/stop rows of time to first churn: ``customer`` (row of ``base``), ``entry``
    and ``exit`` (tenure in months, the row covers ``(entry, exit]``), ``churned`` (the row
    ends in churn), ``nps_category`` (the latest answer's category before the row's
    months) and ``stratum``. Month t is at risk when the customer is active at the end of
    month t - 1 and has not churned before; it is a churn when not active at its end."""
    act = base.active
    n, T = act.shape
    columns = ["customer", "entry", "exit", "churned", "nps_category", "stratum"]
    if n == 0 or T < 2:
        return pd.DataFrame(columns=columns)
    at_risk = act[:, :-1].copy()  # column j: the month of column j + 1
    churn = at_risk & ~act[:, 1:]
    at_risk &= (np.cumsum(churn, axis=1) - churn) == 0  # until the first churn
    churn &= at_risk
    first_active = np.where(act.any(axis=1), act.argmax(axis=1), T)
    origin = np.minimum(first_active, np.where(base.in_customers, base.signup_col, T))
    rows_i, rows_j = np.nonzero(at_risk)  # by customer, then month
    if not len(rows_i):  # nobody was active at the end of a month before another
        return pd.DataFrame(columns=columns)
    code = cat[rows_i, rows_j]
    new = np.ones(len(rows_i), dtype=bool)
    new[1:] = (
        (rows_i[1:] != rows_i[:-1]) | (code[1:] != code[:-1]) | (rows_j[1:] != rows_j[:-1] + 1)
    )
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(rows_i)] - 1
    i = rows_i[starts]
    names = np.array(NPS_CATEGORIES, dtype=object)  # code -1 (no answer) is the last
    return pd.DataFrame(
        {
            "customer": i,
            "entry": (rows_j[starts] - origin[i]).astype(float),
            "exit": (rows_j[ends] + 1 - origin[i]).astype(float),
            "churned": churn[rows_i[ends], rows_j[ends]],
            "nps_category": names[code[starts]],
            "stratum": stratum[i] if stratum is not None else None,
        },
        columns=columns,
    )


def _hazard(spells: pd.DataFrame, stratified: bool) -> tuple[HazardRatios | None, str | None]:
    events = int(spells["churned"].sum())
    if events < MIN_EVENTS:
        return None, (
            f"Too little data for churn hazard ratios: {events} churn event"
            f"{'s' if events != 1 else ''} in the data, at least {MIN_EVENTS} are needed."
        )
    cats = spells["nps_category"].to_numpy(object)
    empty = [c for c in NPS_CATEGORIES[:3] if not (cats == c).any()]
    if empty:
        return None, (
            f"Too little data for churn hazard ratios: no customer was a {' or '.join(empty)} "
            "while active, so there is nothing to compare."
        )
    if not spells.loc[cats == REFERENCE, "churned"].any():
        return None, (
            "Too little data for churn hazard ratios: no promoter churned, so there is no "
            "promoter hazard to compare against."
        )
    strata = spells["stratum"].to_numpy(object) if stratified else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = cox_hazard_ratios(
                spells["entry"],
                spells["exit"],
                spells["churned"],
                cats,
                reference=REFERENCE,
                subject=spells["customer"],
                strata=strata,
                levels=NPS_CATEGORIES,
            )
    except ImportError:
        return None, (
            "The churn hazard model needs statsmodels, which is not installed here "
            "(xlwings Lite: add statsmodels to requirements.txt; elsewhere: pip install "
            "statsmodels)."
        )
    except Exception as e:  # a note in the Report, never a traceback in a refresh
        return None, f"The churn hazard model could not be fitted: {type(e).__name__}: {e}."
    if not np.all(np.isfinite(fit.hazard_ratio)) or not np.all(np.isfinite(fit.ci_high[1:])):
        return None, (
            "The churn hazard model gave no finite hazard ratio (a category with no churn "
            "or only churn); there is too little data to compare the categories."
        )
    return fit, None


def _ph_note(fit: HazardRatios) -> str | None:
    failing = [
        lv for lv, p in zip(fit.levels, fit.ph_p_value, strict=True) if p == p and p < PH_ALPHA
    ]
    if not failing:
        return None
    return (
        "Proportional-hazards check (scaled Schoenfeld residuals) fails for "
        f"{', '.join(failing)} (p < {PH_ALPHA}): the hazard ratio changes with tenure, so "
        "read it as an average over the customers' lifetime."
    )


def _annual_churned_mrr(base: _Base, cat: np.ndarray) -> tuple[dict[str, float], int]:
    """Churned MRR of the last WINDOW_MONTHS months by the category before each month,
    scaled to a year; and the months it covers."""
    moves = base.move["mrr_churn"]  # column j: into month column j + 1
    months = min(WINDOW_MONTHS, moves.shape[1] - 1)  # column 0 of the axis holds no data
    if months <= 0:
        return {}, 0
    lost = moves[:, -months:]
    before = cat[:, -months - 1 : -1]
    out = {}
    for code, name in enumerate(NPS_CATEGORIES):
        sel = before == (code if code < 3 else -1)
        out[name] = float(lost[sel].sum()) / base.scale * 12 / months
    return out, months


def _mrr_at_stake(fit: HazardRatios, churned: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per category, churned MRR * (1 - 1 / HR): what churn at promoters' hazard would
    have kept; the interval from the hazard ratio's. The total over passives and
    detractors takes its interval from draws of the joint normal of the log hazard ratios
    (their covariance), seeded."""
    out: dict[str, dict[str, float]] = {}
    for i, level in enumerate(fit.levels[1:], start=1):
        lost = churned.get(level, 0.0)
        out[level] = {
            "churned_mrr": lost,
            "mrr": lost * (1 - 1 / fit.hazard_ratio[i]),
            "ci_low": lost * (1 - 1 / fit.ci_low[i]),
            "ci_high": lost * (1 - 1 / fit.ci_high[i]),
        }
    parts = [i for i, lv in enumerate(fit.levels[1:]) if lv in ("passive", "detractor")]
    if parts:
        beta = fit.log_hr[1:]
        draws = np.random.default_rng(SEED).multivariate_normal(beta, fit.covariance, 20_000)
        lost = np.array([churned.get(fit.levels[1 + i], 0.0) for i in parts])
        total = (lost * (1 - np.exp(-draws[:, parts]))).sum(axis=1)
        alpha = 1 - fit.confidence
        out["passive and detractor"] = {
            "churned_mrr": float(lost.sum()),
            "mrr": float((lost * (1 - np.exp(-beta[parts]))).sum()),
            "ci_low": float(np.quantile(total, alpha / 2)),
            "ci_high": float(np.quantile(total, 1 - alpha / 2)),
        }
    return out


def _nrr_by_category(
    base: _Base, cat: np.ndarray, memo: Memo | None = None
) -> dict[str, dict[str, float]]:
    """NRR over the last WINDOW_MONTHS months of the customers paying at its start, by
    their category then, with a percentile bootstrap interval (customers resampled).
    Through ``memo``, reused while what it reads is unchanged: each customer's MRR at the
    window's start and end and category at its start (the bootstrap is half of "Does CX
    pay?", and an edited or added survey answer rarely changes who starts the window in
    which category)."""
    T = base.mrr.shape[1]
    if T < 3 or not base.has_mrr_data:
        return {}
    start_col = max(T - 1 - WINDOW_MONTHS, 1)
    start, end = base.mrr[:, start_col], base.mrr[:, T - 1]
    at_start = cat[:, start_col]
    scale = np.array([base.scale], dtype=float)
    return run_derived(
        memo,
        "nrr_by_category",
        [start, end, at_start, scale],
        lambda: _nrr_by_category_of(start, end, at_start, base.scale),
    )


def _nrr_by_category_of(
    start: np.ndarray, end: np.ndarray, at_start: np.ndarray, scale: float
) -> dict[str, dict[str, float]]:
    out = {}
    for code, name in enumerate(NPS_CATEGORIES):
        cohort = (start > 0) & (at_start == (code if code < 3 else -1))
        s = start[cohort].astype(float) / scale
        e = end[cohort].astype(float) / scale
        nrr = float(e.sum() / s.sum()) if len(s) else math.nan
        low = high = math.nan
        if len(s) >= 2 and np.ptp(e / s) > 0:
            low, high = ratio_bootstrap_interval(
                e,
                s,
                n_resamples=BOOTSTRAP_RESAMPLES,
                seed=SEED,
                batch=max(1, min(BOOTSTRAP_RESAMPLES, 4_000_000 // len(s))),
            )
        elif len(s) >= 2:  # every customer kept the same share: no spread to resample
            low = high = nrr
        out[name] = {"nrr": nrr, "ci_low": low, "ci_high": high, "customers": len(s)}
    return out


def _nps_changes(data: Dataset, axis: _Axis) -> pd.DataFrame:
    """NPS of each reported period, its change from the period before and the test of it."""
    sv = data.tables["Surveys"]
    nps_rows = sv[sv["survey"] == "NPS"]
    pcol = axis.period_of_col[axis.col(months_of(nps_rows["response_date"]))]
    groups = _split_by_period(nps_rows["score"].to_numpy(float), pcol, len(axis.periods))
    rows = []
    for p in range(len(axis.periods))[axis.reported]:
        if p == 0:
            continue
        before, after = groups[p - 1], groups[p]
        if not len(before) or not len(after):
            continue
        test = nps_change_test(before, after)
        rows.append(
            {
                "period": axis.labels[p],
                "responses": len(after),
                "nps_before": 100.0 * (np.mean(before >= 9) - np.mean(before <= 6)),
                "nps": 100.0 * (np.mean(after >= 9) - np.mean(after <= 6)),
                **test,
                "significant": bool(test["p_value"] < 0.05),
            }
        )
    return pd.DataFrame(rows)


def _segments(data: Dataset, base: _Base) -> np.ndarray:
    cust = data.tables["Customers"]
    seg = np.full(len(base.ids), "(no segment)", dtype=object)
    if not cust.empty:
        seg[base.cpos] = cust["segment"].fillna("(no segment)").astype(str).to_numpy(object)
    return seg


def cx_impact(data: Dataset, base: _Base, axis: _Axis, memo: Memo | None = None) -> CxImpact:
    """The "Does CX pay?" analysis of ``data`` on the report's base and axis (its NRR by
    category through ``memo`` when there is one)."""
    cat = _nps_category_matrix(data, base, axis)
    stratified = data.settings["churn_hazard_strata"] == "segment"
    segments = _segments(data, base)
    stratified = stratified and len(set(segments.tolist())) > 1
    spells = churn_spells(base, cat, segments)
    fit, note = _hazard(spells, stratified)
    churned, months = _annual_churned_mrr(base, cat)
    return CxImpact(
        hazard=fit,
        note=note,
        ph_note=_ph_note(fit) if fit is not None else None,
        strata="segment" if stratified and fit is not None else None,
        window_months=months,
        churned_mrr=churned,
        mrr_at_stake=_mrr_at_stake(fit, churned) if fit is not None else {},
        nrr=_nrr_by_category(base, cat, memo),
        nps_changes=_nps_changes(data, axis),
    )
