"""Retention, churn and revenue KPIs from aggregates: known answers, broadcasting and the
edge cases (blank, zero denominator, negative amounts, text)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxkpi_xl import (
    arpu,
    attachment_rate,
    customer_churn_rate,
    customer_retention_rate,
    expanded_accounts_rate,
    gross_revenue_retention,
    net_revenue_retention,
    quick_ratio,
    revenue_churn_rate,
    revenue_growth,
)


class TestChurnAndRetention:
    def test_seed_003_churn_example(self):
        # Seed 003: 100 lost of 2,000 at the start is 0.05 (5 %, not "0.05%").
        assert customer_churn_rate(2000, 100) == 0.05

    def test_crr_seed_000_formula(self):
        # (E - N) / S with S = 200, E = 190, N = 15: 175 / 200.
        assert customer_retention_rate(200, 190, 15) == 0.875

    def test_crr_is_one_minus_churn_without_new_customers(self):
        # 200 at the start, 12 lost, none new: end = 188.
        assert customer_retention_rate(200, 188, 0) == pytest.approx(
            1 - customer_churn_rate(200, 12)
        )

    def test_broadcast_per_period(self):
        out = customer_churn_rate(np.array([2000, 1000, 0]), [100, 30, 0])
        assert isinstance(out, np.ndarray)
        assert out[:2].tolist() == [0.05, 0.03]
        assert math.isnan(out[2])

    def test_zero_division(self):
        assert math.isnan(customer_churn_rate(0, 0))
        assert customer_churn_rate(0, 0, zero_division=0) == 0.0
        with pytest.raises(ZeroDivisionError, match=r"customers_start"):
            customer_churn_rate(0, 3, zero_division="raise")
        with pytest.raises(ValueError, match=r"zero_division"):
            customer_churn_rate(0, 3, zero_division="warn")

    def test_blank_gives_blank(self):
        assert math.isnan(customer_churn_rate(None, 10))
        assert math.isnan(customer_churn_rate(100, ""))

    def test_bad_values(self):
        with pytest.raises(ValueError, match=r"customers_lost: -5 at position 1 is negative"):
            customer_churn_rate(100, -5)
        with pytest.raises(ValueError, match=r"customers_start: 'many'.*is text"):
            customer_churn_rate("many", 5)

    def test_expanded_accounts(self):
        # Seed 001 "% of expanded accounts": 30 of 400.
        assert expanded_accounts_rate(30, 400) == 0.075


class TestRevenueRetention:
    def test_seed_003_nrr_example(self):
        # Seed 003: (100,000 + 20,000 - 5,000 - 5,000) / 100,000 = 1.10.
        assert net_revenue_retention(100_000, 20_000, 5_000, 5_000) == pytest.approx(1.10)

    def test_grr_and_revenue_churn(self):
        # Same cohort without the expansion: 90,000 / 100,000; churn is the rest.
        assert gross_revenue_retention(100_000, 5_000, 5_000) == pytest.approx(0.9)
        assert revenue_churn_rate(100_000, 5_000, 5_000) == pytest.approx(0.1)

    def test_nrr_below_one(self):
        # 50,000 start, 1,000 expansion, 2,000 contraction, 9,000 churn: 40,000 / 50,000.
        assert net_revenue_retention(50_000, 1_000, 2_000, 9_000) == pytest.approx(0.8)

    def test_zero_start(self):
        assert math.isnan(net_revenue_retention(0, 0, 0, 0))
        assert math.isnan(gross_revenue_retention(0, 0, 0))
        with pytest.raises(ZeroDivisionError):
            revenue_churn_rate(0, 0, 0, zero_division="raise")

    def test_negative_amount(self):
        with pytest.raises(ValueError, match=r"contraction: -5000 at position 1 is negative"):
            net_revenue_retention(100_000, 20_000, -5_000, 5_000)


class TestRevenue:
    def test_quick_ratio(self):
        # (8,000 + 4,000) / (1,000 + 2,000) = 4; with 3,000 reactivation, 15,000 / 3,000.
        assert quick_ratio(8_000, 4_000, 1_000, 2_000) == 4.0
        assert quick_ratio(8_000, 4_000, 1_000, 2_000, reactivation=3_000) == 5.0
        assert math.isnan(quick_ratio(1, 1, 0, 0))

    def test_arpu(self):
        assert arpu(125_000, 500) == 250.0
        assert math.isnan(arpu(125_000, 0))

    def test_revenue_growth(self):
        # (92,000 - 80,000) / 80,000 = 0.15; falls are negative.
        assert revenue_growth(80_000, 92_000) == pytest.approx(0.15)
        assert revenue_growth(120, 90) == pytest.approx(-0.25)
        assert math.isnan(revenue_growth(0, 10))

    def test_attachment_rate(self):
        # Seed 000: secondary / primary units; 120 warranties with 400 devices.
        assert attachment_rate(120, 400) == 0.3
        # More than one add-on per primary is possible.
        assert attachment_rate(600, 400) == 1.5
        assert math.isnan(attachment_rate(5, 0))

    def test_text_numbers_accepted(self):
        assert arpu("1000", " 4 ") == 250.0
