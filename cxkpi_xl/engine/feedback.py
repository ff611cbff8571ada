"""The survey KPIs (NPS, its margin of error, CSAT, CES, star rating) per period, and
the themes of the NPS comments."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from ..data.periods import months_of
from ..data.reader import Dataset
from ..data.schema import Settings
from ..kpis import surveys
from .axis import _Axis, _each, _split_by_period

SURVEY_KINDS = ("NPS", "CSAT", "CES", "STAR")


def _survey_kpis(data: Dataset, axis: _Axis, settings: Settings, k: dict[str, np.ndarray]) -> None:
    sv = data.tables["Surveys"]
    P = len(axis.periods)
    pcol = axis.period_of_col[axis.col(months_of(sv["response_date"]))]
    kind = pd.Categorical(sv["survey"], categories=SURVEY_KINDS).codes
    score = sv["score"].to_numpy(float)
    groups = {
        t: _split_by_period(score[kind == i], pcol[kind == i], P)
        for i, t in enumerate(SURVEY_KINDS)
    }
    csat_scale, csat_threshold = int(settings["csat_scale"]), settings["csat_threshold"]
    ces_scale = int(settings["ces_scale"])
    k["nps"] = _each(groups["NPS"], surveys.nps)
    k["nps_margin_of_error"] = _each(groups["NPS"], surveys.nps_margin_of_error)
    k["csat"] = _each(groups["CSAT"], lambda s: surveys.csat(s, csat_scale, csat_threshold))
    k["ces"] = _each(groups["CES"], lambda s: surveys.ces(s, ces_scale))
    k["ces_easy_rate"] = _each(groups["CES"], lambda s: surveys.ces_easy_rate(s, ces_scale))
    k["star_rating"] = _each(groups["STAR"], surveys.star_rating)


_WORD = re.compile(r"[a-z][a-z']+")
STOP_WORDS = frozenset(
    "a about after all also am an and any are as at be because been but by can could did do "
    "does for from get got had has have he her him his how i if in into is it its just me more "
    "most my no not now of on one only or other our out really so some than that the their them "
    "then there these they this to too up us very was we were what when which who will with "
    "would you your it's i'm don't".split()
)


def feedback_themes(comments: Iterable[Any], top: int = 10) -> list[tuple[str, int]]:
    """The most frequent words and two-word phrases of free-text comments, stop words
    left out (seed 004's qualitative feedback). Ties are in alphabetical order, so the
    same comments always give the same list."""
    counts: Counter[str] = Counter()
    texts = pd.Series(list(comments), dtype=object)
    texts = texts[texts.map(lambda t: isinstance(t, str))]
    for text, n in texts.str.lower().value_counts().items():  # each distinct text once
        words = [w for w in _WORD.findall(text) if w not in STOP_WORDS]
        for term in set(words) | {f"{x} {y}" for x, y in pairwise(words)}:
            counts[term] += int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _themes(data: Dataset, axis: _Axis) -> pd.DataFrame:
    sv = data.tables["Surveys"]
    nps_rows = sv[(sv["survey"] == "NPS") & sv["comment"].notna()]
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
    rows = []
    for name in ("promoter", "passive", "detractor"):
        for rank, (theme, count) in enumerate(
            feedback_themes(nps_rows["comment"][category == name]), 1
        ):
            rows.append((name, rank, theme, count))
    return pd.DataFrame(rows, columns=["nps_category", "rank", "theme", "responses"])
