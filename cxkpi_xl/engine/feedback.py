"""The survey KPIs (NPS, its margin of error, CSAT, CES, star rating) per period, and
the themes of the NPS comments (phrases: see :mod:`cxkpi_xl.engine.themes`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.periods import months_of, shared_by_array
from ..data.reader import Dataset
from ..data.schema import Settings
from ..kpis import surveys
from .axis import _Axis, _each, _split_by_period
from .memo import Memo, run_derived
from .themes import STOP_WORDS_BY_LANGUAGE, feedback_themes, language_of

SURVEY_KINDS = ("NPS", "CSAT", "CES", "STAR")


def _survey_kpis(data: Dataset, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]) -> None:
    _survey_kpis_of(*_survey_rows(data.tables["Surveys"], axis), axis, settings, k)


def _survey_rows(sv: pd.DataFrame, axis: _Axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each Surveys row's period, kind (a position in SURVEY_KINDS, -1: other) and score."""
    pcol = axis.period_of_col[axis.col(months_of(sv["response_date"]))]
    return pcol, survey_kinds(sv), sv["score"].to_numpy(float)


def survey_kinds(sv: pd.DataFrame) -> np.ndarray:
    """Each Surveys row's kind: a position in SURVEY_KINDS, -1 for any other (worked out
    once per compute: ``periods.shared_by_array``)."""
    survey = sv["survey"]

    def kinds(_: object) -> np.ndarray:
        # each distinct text compared with the kinds once, as pd.Categorical(survey,
        # categories=SURVEY_KINDS) would (its int8 codes), several times faster
        codes, uniques = pd.factorize(survey)
        kind = pd.Index(SURVEY_KINDS, dtype=object).get_indexer(np.asarray(uniques, object))
        return np.append(kind, -1).astype(np.int8)[codes]  # a blank (-1): the last slot

    if survey.dtype != object:  # a new array at each reading: nothing to share
        return kinds(None)
    return shared_by_array(survey.to_numpy(), "survey kinds", kinds)


def _survey_kpis_of(
    pcol: np.ndarray,
    kind: np.ndarray,
    score: np.ndarray,
    axis: _Axis,
    settings: Settings,
    k: dict[str, np.ndarray],
) -> None:
    """The survey KPIs of the rows :func:`_survey_rows` describes (any of them, in order:
    the segment and owner breakdowns pass each group's)."""
    P = len(axis.periods)
    groups = {
        t: _split_by_period(score[kind == i], pcol[kind == i], P)
        for i, t in enumerate(SURVEY_KINDS)
    }
    _survey_kpis_from(groups, settings, k)


def _survey_kpis_by_group(
    pcol: np.ndarray,
    kind: np.ndarray,
    score: np.ndarray,
    group: np.ndarray,
    size: int,
    axis: _Axis,
    settings: Settings,
) -> list[dict[str, np.ndarray]]:
    """:func:`_survey_kpis_of` of the rows of each group 0 .. size - 1 (``group``: each
    row's, -1 for none), from one stable sort of the rows by (group, kind, period): each
    group's scores of a kind and period are then a slice, in table order, as that
    function splits them."""
    P, K = len(axis.periods), len(SURVEY_KINDS)
    rows = np.flatnonzero((group >= 0) & (kind >= 0) & (pcol >= 0))
    key = (group[rows].astype(np.int64) * K + kind[rows]) * P + pcol[rows]
    cells = size * K * P
    if cells < 2**15:  # numpy sorts 16-bit integers by radix: linear
        key = key.astype(np.int16)
    order = np.argsort(key, kind="stable")
    scores = score[rows[order]]
    bounds = np.searchsorted(key[order], np.arange(cells + 1))
    out = []
    for g in range(size):
        groups = {}
        for i, t in enumerate(SURVEY_KINDS):
            first = (g * K + i) * P
            groups[t] = [scores[bounds[c] : bounds[c + 1]] for c in range(first, first + P)]
        k: dict[str, np.ndarray] = {}
        _survey_kpis_from(groups, settings, k)
        out.append(k)
    return out


def _survey_kpis_from(
    groups: dict[str, list[np.ndarray]], settings: Settings, k: dict[str, np.ndarray]
) -> None:
    """The survey KPIs of the scores of each kind in each period (into ``k``)."""
    csat_scale, csat_threshold = int(settings["csat_scale"]), settings["csat_threshold"]
    ces_scale = int(settings["ces_scale"])
    k["nps"] = _each(groups["NPS"], surveys.nps)
    k["nps_margin_of_error"] = _each(groups["NPS"], surveys.nps_margin_of_error)
    k["csat"] = _each(groups["CSAT"], lambda s: surveys.csat(s, csat_scale, csat_threshold))
    k["ces"] = _each(groups["CES"], lambda s: surveys.ces(s, ces_scale))
    k["ces_easy_rate"] = _each(groups["CES"], lambda s: surveys.ces_easy_rate(s, ces_scale))
    k["star_rating"] = _each(groups["STAR"], surveys.star_rating)


STOP_WORDS = STOP_WORDS_BY_LANGUAGE["en"]
THEMES_PER_CATEGORY = 6


def _themes(data: Dataset, axis: _Axis, memo: Memo | None = None) -> pd.DataFrame:
    """The feedback themes of the NPS comments of the reported periods, by category
    (reused through ``memo`` while the comments and their categories are unchanged)."""
    sv = data.tables["Surveys"]
    nps_rows = sv[(survey_kinds(sv) == SURVEY_KINDS.index("NPS")) & sv["comment"].notna()]
    if nps_rows.empty:
        return pd.DataFrame()
    a = axis.periods[axis.reported.start][0] if axis.periods[axis.reported] else 0
    b = axis.periods[axis.reported.stop - 1][1] if axis.periods[axis.reported] else -1
    col = axis.col(months_of(nps_rows["response_date"]))
    nps_rows = nps_rows[(col >= a) & (col <= b)]
    score = nps_rows["score"].to_numpy(float)
    category = np.where(
        score >= surveys.PROMOTER_FROM,
        "promoter",
        np.where(score <= surveys.DETRACTOR_UP_TO, "detractor", "passive"),
    )
    comments = nps_rows["comment"]

    def themes() -> pd.DataFrame:
        language = language_of(c for c in comments if isinstance(c, str))
        rows = []
        for name in ("promoter", "passive", "detractor"):
            found = feedback_themes(comments[category == name], THEMES_PER_CATEGORY, language)
            for rank, theme in enumerate(found, 1):
                rows.append((name, rank, theme.phrase, theme.comments, theme.example))
        columns = ["nps_category", "rank", "theme", "responses", "example"]
        return pd.DataFrame(rows, columns=columns)

    return run_derived(memo, "themes", [comments, category], themes)
