"""Survey KPIs: known answers with their source, then the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl import (
    ces,
    ces_easy_rate,
    csat,
    nps,
    nps_breakdown,
    nps_from_counts,
    nps_margin_of_error,
    star_rating,
    star_rating_distribution,
)

# 50 promoters, 30 passives, 20 detractors: the hand-worked example used below.
HUNDRED = [10] * 25 + [9] * 25 + [8] * 15 + [7] * 15 + [6] * 10 + [0] * 10


class TestNps:
    def test_definition_of_record(self):
        # kpi-definitions.md: %promoters - %detractors; 50 % - 20 % = 30 points.
        assert nps(HUNDRED) == pytest.approx(30.0)

    def test_seed_004_direction_is_not_copied(self):
        # Seed 004 subtracts promoters from detractors; with more promoters the score
        # must be positive.
        assert nps([10, 10, 10, 0]) == pytest.approx(50.0)

    def test_category_boundaries(self):
        # 9 and 10 promote, 7 and 8 are passive, 0..6 detract (Bain / Satmetrix).
        assert nps([9]) == 100.0
        assert nps([8]) == 0.0
        assert nps([7]) == 0.0
        assert nps([6]) == -100.0
        assert nps([0]) == -100.0

    @pytest.mark.parametrize(
        "shape",
        [
            lambda v: v,
            np.array,
            pd.Series,
            lambda v: [[x] for x in v],  # a column range as Excel sends it
            lambda v: [v[:50], v[50:]],  # a 2-row range
            lambda v: [str(x) for x in v],  # numbers stored as text
        ],
    )
    def test_input_shapes(self, shape):
        assert nps(shape(HUNDRED)) == pytest.approx(30.0)

    def test_blanks_are_ignored_not_zero(self):
        with_blanks = [*HUNDRED, None, "", "  ", math.nan, np.nan]
        assert nps(with_blanks) == pytest.approx(30.0)

    def test_empty_and_all_blank(self):
        assert math.isnan(nps([]))
        assert math.isnan(nps([None, ""]))
        assert nps([], zero_division=0.0) == 0.0
        with pytest.raises(ZeroDivisionError):
            nps([None], zero_division="raise")

    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            ("ten", "is text, not a number"),
            (11, "is outside 0..10"),
            (-1, "is outside 0..10"),
            (8.5, "is not a whole number"),
            (True, "TRUE/FALSE"),
            (math.inf, "not a finite number"),
        ],
    )
    def test_bad_value_names_value_and_position(self, bad, reason):
        with pytest.raises(ValueError, match=reason) as e:
            nps([10, None, bad, 3])
        assert "position 3" in str(e.value)
        assert repr(bad).strip("'") in str(e.value) or str(bad) in str(e.value)

    def test_bad_value_in_2d_range_gives_row_and_column(self):
        with pytest.raises(ValueError, match=r"row 2, column 3"):
            nps([[1, 2, 3], [4, 5, "x"]])


class TestNpsFromCounts:
    def test_known_answer(self):
        # 100 * (50 - 20) / 100 = 30.
        assert nps_from_counts(50, 30, 20) == 30.0

    def test_broadcasts(self):
        out = nps_from_counts([50, 0], [30, 0], [20, 10])
        assert out.tolist() == [30.0, -100.0]

    def test_zero_responses(self):
        assert math.isnan(nps_from_counts(0, 0, 0))
        with pytest.raises(ZeroDivisionError):
            nps_from_counts(0, 0, 0, zero_division="raise")

    def test_negative_count(self):
        with pytest.raises(ValueError, match=r"promoters: -1 at position 1 is negative"):
            nps_from_counts(-1, 3, 4)


class TestMarginOfError:
    def test_wald_by_hand(self):
        # p = 0.5, d = 0.2, n = 100: 1.96 * sqrt((0.7 - 0.3**2) / 100) * 100.
        z = 1.959963984540054
        expected = z * math.sqrt((0.5 + 0.2 - 0.3**2) / 100) * 100
        assert nps_margin_of_error(HUNDRED) == pytest.approx(expected, rel=1e-12)
        assert expected == pytest.approx(15.308, abs=1e-3)

    def test_adjusted_wald_by_hand(self):
        # Rocks (2016): n + 3, promoters + 3/4, detractors + 3/4.
        n = 103
        p, d = 50.75 / n, 20.75 / n
        expected = 1.959963984540054 * math.sqrt((p + d - (p - d) ** 2) / n) * 100
        got = nps_margin_of_error(HUNDRED, method="adjusted_wald")
        assert got == pytest.approx(expected, rel=1e-12)

    def test_confidence(self):
        # 90 %: z = 1.6448536...
        expected = 1.6448536269514722 * math.sqrt(0.61 / 100) * 100
        assert nps_margin_of_error(HUNDRED, 0.90) == pytest.approx(expected, rel=1e-12)

    def test_all_promoters_has_no_wald_spread_but_adjusted_has(self):
        assert nps_margin_of_error([10] * 20) == 0.0
        assert nps_margin_of_error([10] * 20, method="adjusted_wald") > 0

    def test_bad_options(self):
        with pytest.raises(ValueError, match=r"method"):
            nps_margin_of_error(HUNDRED, method="wilson")
        with pytest.raises(ValueError, match=r"confidence"):
            nps_margin_of_error(HUNDRED, confidence=95)

    def test_empty(self):
        assert math.isnan(nps_margin_of_error([]))
        assert math.isnan(nps_margin_of_error([], method="adjusted_wald"))


class TestBreakdown:
    def test_counts_shares_and_interval(self):
        b = nps_breakdown(HUNDRED)
        assert (b["promoters"], b["passives"], b["detractors"], b["n"]) == (50, 30, 20, 100)
        assert (b["promoter_share"], b["passive_share"], b["detractor_share"]) == (0.5, 0.3, 0.2)
        assert b["nps"] == pytest.approx(30.0)
        moe = nps_margin_of_error(HUNDRED)
        assert b["margin_of_error"] == pytest.approx(moe)
        assert b["lower"] == pytest.approx(30 - moe)
        assert b["upper"] == pytest.approx(30 + moe)

    def test_interval_is_clipped(self):
        b = nps_breakdown([10, 10, 10, 8], method="adjusted_wald")
        assert b["upper"] <= 100.0

    def test_empty(self):
        b = nps_breakdown([None])
        assert b["n"] == 0 and math.isnan(b["nps"]) and math.isnan(b["lower"])


class TestCsat:
    def test_seed_003_ten_point_scale(self):
        # Seed 003: "everyone who rated you 8 or higher" / responders.
        assert csat([10, 9, 8, 7, 5], scale=10) == pytest.approx(0.6)

    def test_default_top_2_box_on_five_points(self):
        # kpi-definitions.md: 1-5 scale, threshold 4. Four of eight answered 4 or 5.
        assert csat([5, 4, 4, 5, 3, 2, 1, 3]) == 0.5

    def test_threshold_parameter(self):
        assert csat([5, 4, 4, 5, 3, 2, 1, 3], threshold=5) == 0.25

    def test_seven_point_default(self):
        assert csat([7, 6, 5, 1], scale=7) == 0.5

    def test_out_of_scale(self):
        with pytest.raises(ValueError, match=r"outside 1..5"):
            csat([5, 6])
        with pytest.raises(ValueError, match=r"outside 1..5"):
            csat([0, 5])

    def test_bad_scale_and_threshold(self):
        with pytest.raises(ValueError, match=r"scale"):
            csat([1], scale=1)
        with pytest.raises(ValueError, match=r"threshold"):
            csat([1], threshold=6)

    def test_edges(self):
        assert math.isnan(csat([]))
        assert csat([None, 5]) == 1.0
        assert csat([], zero_division=0) == 0.0


class TestCes:
    def test_mean_on_ces_2_scale(self):
        # (7 + 6 + 5 + 4 + 6 + 2) / 6 = 30 / 6 = 5.
        assert ces([7, 6, 5, 4, 6, 2]) == 5.0

    def test_easy_rate(self):
        # Answers >= 5 on 1-7: 7, 6, 5, 6 -> 4 of 6.
        assert ces_easy_rate([7, 6, 5, 4, 6, 2]) == pytest.approx(4 / 6)
        assert ces_easy_rate([7, 6, 5, 4, 6, 2], threshold=6) == pytest.approx(3 / 6)

    def test_old_effort_scale_lower_is_easier(self):
        assert ces([1, 2, 3], scale=5) == 2.0
        # Easy is <= 2 on the 1-5 effort scale: 1 and 2 of four answers.
        assert ces_easy_rate([1, 2, 3, 5], scale=5) == 0.5

    def test_out_of_scale(self):
        with pytest.raises(ValueError, match=r"outside 1..7"):
            ces([8])
        with pytest.raises(ValueError, match=r"outside 1..5"):
            ces([6], scale=5)

    def test_edges(self):
        assert math.isnan(ces([None]))
        assert math.isnan(ces_easy_rate([]))


class TestStars:
    def test_mean_and_distribution(self):
        ratings = [5, 4, 4, 3, 5, 2]  # 23 / 6
        assert star_rating(ratings) == pytest.approx(23 / 6)
        assert star_rating_distribution(ratings) == {1: 0, 2: 1, 3: 1, 4: 2, 5: 2}

    def test_bad_and_empty(self):
        with pytest.raises(ValueError, match=r"outside 1..5"):
            star_rating([0])
        with pytest.raises(ValueError, match=r"whole number"):
            star_rating([4.5])
        assert math.isnan(star_rating([]))
