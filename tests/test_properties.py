"""Property tests (hypothesis) of the identities the KPI definitions promise."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxkpi_xl import (
    customer_churn_rate,
    customer_retention_rate,
    gross_revenue_retention,
    net_revenue_retention,
    nps,
    nps_from_counts,
)

nps_scores = st.lists(st.integers(0, 10), min_size=1, max_size=300)
blank = st.sampled_from([None, "", "  ", math.nan])
money = st.floats(0, 1e9, allow_nan=False)


@given(nps_scores)
def test_nps_is_within_bounds(scores):
    assert -100.0 <= nps(scores) <= 100.0


@given(nps_scores, st.lists(blank, max_size=20), st.randoms())
def test_nps_is_unchanged_by_blanks(scores, blanks, rnd):
    mixed = list(scores) + list(blanks)
    rnd.shuffle(mixed)
    assert nps(mixed) == nps(scores)


@given(nps_scores)
def test_nps_equals_nps_from_counts(scores):
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    passives = len(scores) - promoters - detractors
    assert nps(scores) == pytest.approx(nps_from_counts(promoters, passives, detractors))


@st.composite
def cohort(draw):
    """Start MRR and movements of one cohort: losses cannot exceed the start."""
    start = draw(st.floats(1, 1e9))
    churned = draw(st.floats(0, start))
    contraction = draw(st.floats(0, start - churned))
    expansion = draw(money)
    return start, expansion, contraction, churned


@given(cohort())
def test_grr_never_above_one(c):
    start, _, contraction, churned = c
    assert gross_revenue_retention(start, contraction, churned) <= 1.0 + 1e-12


@given(cohort())
def test_nrr_minus_grr_is_expansion_share(c):
    start, expansion, contraction, churned = c
    nrr = net_revenue_retention(start, expansion, contraction, churned)
    grr = gross_revenue_retention(start, contraction, churned)
    assert nrr - grr == pytest.approx(expansion / start, rel=1e-9, abs=1e-9)


@settings(max_examples=200)
@given(st.integers(1, 10**7), st.data())
def test_crr_is_one_minus_churn_without_new_customers(start, data):
    lost = data.draw(st.integers(0, start))
    crr = customer_retention_rate(start, start - lost, 0)
    assert crr == pytest.approx(1 - customer_churn_rate(start, lost), abs=1e-12)
