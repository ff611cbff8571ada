"""Value, advocacy, support and engagement KPIs: known answers and edge cases."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl import (
    at_risk_rate,
    cac,
    cac_payback_months,
    cltv,
    cltv_subscription,
    conversion_rate,
    customer_retention_cost,
    first_contact_resolution_rate,
    health_band,
    health_score,
    ltv_cac_ratio,
    product_usage_rate,
    reference_rate,
    repeat_purchase_rate,
    repeat_purchase_tiers,
    stickiness,
    time_to_value_days,
)


class TestValue:
    def test_cltv_seed_003(self):
        # Seed 003: 50 a month, 12 purchases a year, one year: 600.
        assert cltv(50, 12, 1) == 600.0

    def test_cltv_broadcasts_and_blank(self):
        assert cltv([50, 20], 12, [1, 2]).tolist() == [600.0, 480.0]
        assert math.isnan(cltv(None, 12, 1))

    def test_cltv_subscription_chartmogul(self):
        # ChartMogul: ARPU 100 / churn 5 % = 2,000; with 80 % margin 1,600.
        assert cltv_subscription(100, 0.05) == pytest.approx(2000.0)
        assert cltv_subscription(100, 0.05, 0.8) == pytest.approx(1600.0)

    def test_cltv_subscription_zero_churn_and_bad_rate(self):
        assert math.isnan(cltv_subscription(100, 0))
        with pytest.raises(ValueError, match=r"churn_rate: 5 at position 1 is outside 0..1"):
            cltv_subscription(100, 5)  # 5 meant as 5 %: must be 0.05
        with pytest.raises(ValueError, match=r"gross_margin"):
            cltv_subscription(100, 0.05, 80)

    def test_cac_ratio_payback(self):
        # 50,000 / 125 = 400; 2,000 / 400 = 5; 400 / (100 * 0.8) = 5 months.
        assert cac(50_000, 125) == 400.0
        assert ltv_cac_ratio(2_000, 400) == 5.0
        assert cac_payback_months(400, 100, 0.8) == pytest.approx(5.0)
        assert math.isnan(cac(50_000, 0))
        assert math.isnan(cac_payback_months(400, 0))

    def test_retention_cost(self):
        # Seed 004: 12,000 / 800 customers.
        assert customer_retention_cost(12_000, 800) == 15.0
        with pytest.raises(ValueError, match=r"negative"):
            customer_retention_cost(-1, 800)


class TestAdvocacy:
    def test_reference_rate(self):
        assert reference_rate(45, 600) == 0.075
        assert math.isnan(reference_rate(0, 0))

    def test_health_score_weighted(self):
        # Gainsight scorecard: 0.4 * 80 + 0.3 * 60 + 0.3 * 40 = 62.
        assert health_score([80, 60, 40], [0.4, 0.3, 0.3]) == pytest.approx(62.0)
        # Weights need not add to 1: 2, 1, 1 -> (160 + 60 + 40) / 4 = 65.
        assert health_score([80, 60, 40], [2, 1, 1]) == pytest.approx(65.0)

    def test_health_score_missing_measure_reweights(self):
        # (0.4 * 80 + 0.3 * 40) / 0.7 = 44 / 0.7.
        assert health_score([80, None, 40], [0.4, 0.3, 0.3]) == pytest.approx(44 / 0.7)

    def test_health_score_errors(self):
        with pytest.raises(ValueError, match=r"outside 0..100"):
            health_score([120], [1])
        with pytest.raises(ValueError, match=r"same number of cells"):
            health_score([1, 2], [1])
        with pytest.raises(ValueError, match=r"weights: -1 .* is negative"):
            health_score([50], [-1])
        assert math.isnan(health_score([None], [1]))
        assert math.isnan(health_score([50], [0]))

    def test_at_risk_rate(self):
        # Two of five below 50 (30, 45).
        assert at_risk_rate([30, 45, 60, 80, 90]) == 0.4
        # Share of MRR at risk: (100 + 100) / 1,000.
        assert at_risk_rate([30, 45, 60, 80, 90], weights=[100, 100, 400, 200, 200]) == 0.2
        # The threshold is a setting: below 65 adds the 60.
        assert at_risk_rate([30, 45, 60, 80, 90], red_below=65) == 0.6
        assert at_risk_rate([49.99, 50]) == 0.5  # 50 itself is yellow
        assert math.isnan(at_risk_rate([]))
        with pytest.raises(ValueError, match=r"red_below"):
            at_risk_rate([1], red_below=200)

    def test_health_bands(self):
        assert [health_band(s) for s in (0, 49.9, 50, 74.9, 75, 100)] == [
            "red",
            "red",
            "yellow",
            "yellow",
            "green",
            "green",
        ]
        assert health_band(60, red_below=65, green_from=80) == "red"
        assert health_band(math.nan) == ""


class TestSupportAndEngagement:
    def test_fcr(self):
        # Seed 004: 720 of 900 resolved tickets needed one contact.
        assert first_contact_resolution_rate(720, 900) == 0.8
        assert math.isnan(first_contact_resolution_rate(0, 0))

    def test_conversion(self):
        assert conversion_rate(90, 4_500) == 0.02
        assert conversion_rate([90, 10], [4_500, 1_000]).tolist() == [0.02, 0.01]

    def test_repeat_purchase(self):
        # Buyers 1, 3, 2, 1, 7 (the 0 is left out): 3 of 5 bought twice or more.
        assert repeat_purchase_rate([1, 3, 0, 2, 1, 7]) == 0.6
        assert repeat_purchase_tiers([1, 3, 0, 2, 1, 7, 12]) == {
            "1": 2,
            "2-5": 2,
            "6-10": 1,
            "11+": 1,
        }
        assert math.isnan(repeat_purchase_rate([0, 0, None]))
        with pytest.raises(ValueError, match=r"whole number"):
            repeat_purchase_rate([1.5])

    def test_stickiness(self):
        # DAU 300 / MAU 1,200; daily counts average to 300 too.
        assert stickiness(300, 1_200) == 0.25
        assert stickiness([280, 320, 300, None], 1_200) == 0.25
        assert math.isnan(stickiness(300, 0))
        with pytest.raises(ValueError, match=r"mau must be one number"):
            stickiness(300, [1, 2])

    def test_usage_rate(self):
        assert product_usage_rate(340, 400) == 0.85

    def test_time_to_value_all_date_forms(self):
        # 10 and 7 days; the third customer has not reached value: median 8.5.
        starts = ["2026-01-01", dt.date(2026, 1, 5), pd.Timestamp("2026-01-10")]
        values_ = [dt.datetime(2026, 1, 11), "2026-01-12", None]
        assert time_to_value_days(starts, values_) == 8.5
        # Excel serials: 46023 is 2026-01-01, 46053 is 2026-01-31.
        assert time_to_value_days([[46023]], [[46053]]) == 30.0
        arr = np.array(["2026-01-01", "2026-03-01"], dtype="datetime64[D]")
        assert time_to_value_days(arr, arr + np.timedelta64(3, "D")) == 3.0

    def test_time_to_value_errors(self):
        with pytest.raises(ValueError, match=r"before its start date"):
            time_to_value_days(["2026-02-01"], ["2026-01-01"])
        with pytest.raises(ValueError, match=r"start_dates: 'soon'.*not a date"):
            time_to_value_days(["soon"], ["2026-01-01"])
        with pytest.raises(ValueError, match=r"TRUE/FALSE"):
            time_to_value_days([True], ["2026-01-01"])
        assert math.isnan(time_to_value_days([], []))
        assert math.isnan(time_to_value_days(["2026-01-01"], [None]))
