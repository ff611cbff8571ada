"""The Report's "Does CX pay?" section, cell by cell: the findings in words, the hazard
ratios of churn by NPS category with their intervals (a table and a forest plot drawn in
the cells), the MRR at stake, NRR by category with bootstrap intervals, the period-to-period
NPS changes with the significant ones marked, and the caveat that this is association.

Rows are lists of ``(value, style)`` cells as :mod:`.layout` writes them; this module
does not import the layout (the layout calls it)."""

from __future__ import annotations

import math
from typing import Any

from ..catalogue import NUMBER_FORMATS
from ..engine.impact import CAVEAT, CxImpact

TITLE = "Does CX pay? Churn and revenue by NPS category"
MONEY = NUMBER_FORMATS["money"]
RATIO = "0.00"
PERCENT = NUMBER_FORMATS["fraction"]
COUNT = NUMBER_FORMATS["count"]
P_VALUE = "0.0000"
POINTS = NUMBER_FORMATS["points"]
PLOT_WIDTH = 41  # characters of the forest plot

Cell = tuple[Any, str] | None


def _text(value: str, style: str = "text") -> tuple[str, str]:
    return value, style


def _num(value: Any, fmt: str) -> Cell:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value), f"num:{fmt}"


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _range(low: float, high: float, fmt: str = "{:.1f}") -> str:
    dash = "-" if low >= 0 else " to "
    return f"{fmt.format(low)}{dash}{fmt.format(high)}"


def findings(impact: CxImpact) -> list[str]:
    """The section's sentences: one per category against promoters, the MRR at stake."""
    fit = impact.hazard
    if fit is None:
        return [impact.note or "No churn hazard ratios."]
    pct = f"{fit.confidence:.0%}".replace("%", " %")
    lines = []
    for i, level in enumerate(fit.levels[1:], start=1):
        hr, lo, hi, p = fit.hazard_ratio[i], fit.ci_low[i], fit.ci_high[i], fit.p_value[i]
        who = "Customers who never answered" if level == "no answer" else f"{level.title()}s"
        if lo > 1 or hi < 1:
            pace = f"{hr:.1f}x as fast as" if hr >= 1 else f"{1 / hr:.1f}x more slowly than"
        else:
            pace = f"at a rate not clearly different from ({hr:.1f}x)"
        line = f"{who} churn {pace} promoters ({pct} CI {_range(lo, hi)}, p = {p:.2g})"
        stake = impact.mrr_at_stake.get(level)
        if stake and level != "no answer" and stake["mrr"] > 0:
            costs = "that costs" if lo > 1 else "that may cost"
            line += (
                f"; {costs} {_money(stake['mrr'])} of MRR a year ({pct} CI "
                f"{_range(stake['ci_low'], stake['ci_high'], '{:,.0f}')})"
            )
        lines.append(line + ".")
    total = impact.mrr_at_stake.get("passive and detractor")
    if total:
        lines.append(
            f"Together, the excess churn of passives and detractors over promoters' costs "
            f"{_money(total['mrr'])} of MRR a year ({pct} CI "
            f"{_range(total['ci_low'], total['ci_high'], '{:,.0f}')}), on "
            f"{_money(total['churned_mrr'])} of MRR a year they churned"
            f" (the last {impact.window_months} months, scaled to a year)."
        )
    if impact.strata:
        lines.append(
            f"Categories are compared within each {impact.strata} (a Cox model stratified "
            f"by {impact.strata}; setting churn_hazard_strata)."
        )
    if impact.ph_note:
        lines.append(impact.ph_note)
    return lines


def forest_plot(hr: float, low: float, high: float, lo_axis: float, hi_axis: float) -> str:
    """A hazard ratio and its interval as characters on a log axis: ``-`` the interval,
    ``o`` the estimate, ``|`` a ratio of 1 (no difference)."""
    if not all(math.isfinite(v) and v > 0 for v in (lo_axis, hi_axis)) or hi_axis <= lo_axis:
        return ""
    span = math.log(hi_axis) - math.log(lo_axis)

    def at(v: float) -> int:
        x = (math.log(min(max(v, lo_axis), hi_axis)) - math.log(lo_axis)) / span
        return round(x * (PLOT_WIDTH - 1))

    chars = [" "] * PLOT_WIDTH
    if math.isfinite(low) and math.isfinite(high):
        for c in range(at(low), at(high) + 1):
            chars[c] = "-"
    chars[at(1.0)] = "|"
    chars[at(hr)] = "o"
    return "".join(chars).rstrip()


def impact_rows(impact: CxImpact, periods: int = 0) -> list[list[Cell]]:
    """The rows of the section, from its title on."""
    rows: list[list[Cell]] = [[_text(TITLE, "section")]]
    rows += [[_text(line)] for line in findings(impact)]
    rows.append([_text(CAVEAT)])
    fit = impact.hazard
    if fit is not None:
        finite = [v for v in (*fit.ci_low[1:], *fit.ci_high[1:], 1.0) if math.isfinite(v)]
        lo_axis, hi_axis = min(finite) / 1.1, max(finite) * 1.1
        rows.append([])
        plot = f"hazard ratio, log scale {lo_axis:.2f} to {hi_axis:.2f}"
        head = ("nps category", "hazard ratio", "ci low", "ci high", "p-value", "customers",
                "churn events", plot)  # fmt: skip
        rows.append([_text(h, "header") for h in head])
        for i, level in enumerate(fit.levels):
            rows.append(
                [
                    _text(level),
                    _num(fit.hazard_ratio[i], RATIO),
                    _num(fit.ci_low[i], RATIO),
                    _num(fit.ci_high[i], RATIO),
                    _num(fit.p_value[i], P_VALUE),
                    _num(fit.subjects[i], COUNT),
                    _num(fit.events[i], COUNT),
                    _text(forest_plot(fit.hazard_ratio[i], fit.ci_low[i], fit.ci_high[i],
                                      lo_axis, hi_axis)),
                ]
            )  # fmt: skip
    if impact.mrr_at_stake:
        rows.append([])
        head = ("excess churn", "churned MRR a year", "MRR at stake a year", "ci low", "ci high")
        rows.append([_text(h, "header") for h in head])
        for level, s in impact.mrr_at_stake.items():
            keys = ("churned_mrr", "mrr", "ci_low", "ci_high")
            rows.append([_text(level), *(_num(s[k], MONEY) for k in keys)])
    if impact.nrr:
        rows.append([])
        head = (f"NRR, last {impact.window_months} months", "NRR", "ci low", "ci high", "customers")
        rows.append([_text(h, "header") for h in head])
        for level, s in impact.nrr.items():
            rows.append(
                [_text(level), _num(s["nrr"], PERCENT), _num(s["ci_low"], PERCENT),
                 _num(s["ci_high"], PERCENT), _num(s["customers"], COUNT)]
            )  # fmt: skip
    changes = impact.nps_changes
    if not changes.empty:
        rows.append([])
        head = ("NPS change", "NPS", "previous NPS", "change", "ci low", "ci high", "p-value",
                "significant at 95 %")  # fmt: skip
        rows.append([_text(h, "header") for h in head])
        for r in changes.itertuples(index=False):
            rows.append(
                [_text(str(r.period)), _num(r.nps, POINTS), _num(r.nps_before, POINTS),
                 _num(r.difference, POINTS), _num(r.ci_low, POINTS), _num(r.ci_high, POINTS),
                 _num(r.p_value, P_VALUE),
                 _text("yes (p < 0.05)" if r.significant else "no")]
            )  # fmt: skip
    return rows
