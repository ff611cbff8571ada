"""The period engine on small hand-built tables; every expected number is worked out by
hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.engine import MoneyError, compute
from cxkpi_xl.reader import read
from cxkpi_xl.tables import mrr_movements

# MRR by customer, Dec 2025 .. Mar 2026 (a blank is no row, i.e. 0):
#        Dec   Jan   Feb   Mar
#   A    100   120   120    -     Jan: expansion 20; Mar: churn 120
#   B    200   150    -    180    Jan: contraction 50; Feb: churn 150; Mar: reactivation 180
#   C     -     50    80    80    Jan: new 50; Feb: expansion 30
#   D    300   300   300   300
#   E     -     -     -     40    Mar: new 40
MRR_ROWS = [
    ("A", "2025-12-01", 100), ("A", "2026-01-15", 120), ("A", "2026-02-01", 120),
    ("B", "2025-12-01", 200), ("B", "2026-01-01", 150), ("B", "2026-03-01", 180),
    ("C", "2026-01-01", 50), ("C", "2026-02-01", 80), ("C", "2026-03-01", 80),
    ("D", "2025-12-01", 300), ("D", "2026-01-01", 300), ("D", "2026-02-01", 300),
    ("D", "2026-03-01", 300), ("E", "2026-03-31", 40),
]  # fmt: skip


def mrr_report(granularity="month", **settings):
    frame = pd.DataFrame(MRR_ROWS, columns=["customer_id", "month", "mrr"])
    data = read({"MRR": frame}, {"granularity": granularity, **settings})
    return compute(data)


def test_periods_and_mrr():
    r = mrr_report()
    assert r.periods == ["2025-12", "2026-01", "2026-02", "2026-03"]
    # Dec 100 + 200 + 300; Jan 120 + 150 + 50 + 300; Feb 120 + 80 + 300; Mar 180 + 80 + 300 + 40
    assert r.kpis["mrr"].tolist() == [600.0, 620.0, 500.0, 600.0]


def test_first_period_movements_are_blank():
    r = mrr_report()
    for m in ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn"):
        assert math.isnan(r.kpis[m][0]), m
    assert math.isnan(r.kpis["net_new_mrr"][0])
    assert math.isnan(r.kpis["net_revenue_retention"][0])


def test_each_movement_by_hand():
    k = mrr_report().kpis
    assert k["mrr_new"][1:].tolist() == [50.0, 0.0, 40.0]  # C in Jan, E in Mar
    assert k["mrr_reactivation"][1:].tolist() == [0.0, 0.0, 180.0]  # B returns in Mar
    assert k["mrr_expansion"][1:].tolist() == [20.0, 30.0, 0.0]  # A in Jan, C in Feb
    assert k["mrr_contraction"][1:].tolist() == [50.0, 0.0, 0.0]  # B in Jan
    assert k["mrr_churn"][1:].tolist() == [0.0, 150.0, 120.0]  # B in Feb, A in Mar
    # net new: 50 + 20 - 50 = 20; 30 - 150 = -120; 40 + 180 - 120 = 100
    assert k["net_new_mrr"][1:].tolist() == [20.0, -120.0, 100.0]
    assert np.array_equal(k["mrr"][1:], k["mrr"][:-1] + k["net_new_mrr"][1:])


def test_nrr_and_grr_over_the_start_cohort():
    k = mrr_report().kpis
    # Jan: cohort A, B, D paying in Dec: 600 -> 120 + 150 + 300 = 570; GRR caps A at 100.
    assert k["net_revenue_retention"][1] == pytest.approx(570 / 600)
    assert k["gross_revenue_retention"][1] == pytest.approx(550 / 600)
    # Feb: cohort A, B, C, D: 620 -> 120 + 0 + 80 + 300 = 500; GRR 120 + 0 + 50 + 300.
    assert k["net_revenue_retention"][2] == pytest.approx(500 / 620)
    assert k["gross_revenue_retention"][2] == pytest.approx(470 / 620)
    # Mar: cohort A, C, D (B had stopped): 500 -> 0 + 80 + 300; B's return and E are
    # left out of both sides.
    assert k["net_revenue_retention"][3] == pytest.approx(380 / 500)
    assert k["gross_revenue_retention"][3] == pytest.approx(380 / 500)


def test_other_revenue_kpis():
    k = mrr_report().kpis
    # ARPU Mar: 600 / 4 paying; quick ratio Mar: (40 + 180 + 0) / (0 + 120).
    assert k["arpu"][3] == 150.0
    assert k["quick_ratio"][3] == pytest.approx(220 / 120)
    # Revenue churn Feb: (0 + 150) / 620; expanded accounts Jan: A of 3 paying at start.
    assert k["revenue_churn_rate"][2] == pytest.approx(150 / 620)
    assert k["expanded_accounts_rate"][1] == pytest.approx(1 / 3)
    # Revenue growth (no orders: the MRR of the months): Feb 500 vs Jan 620.
    assert k["revenue_growth"][2] == pytest.approx((500 - 620) / 620)


def test_customer_churn_follows_mrr_without_customers_table():
    k = mrr_report().kpis
    # Feb: active at start A, B, C, D; B lost: 1 / 4. Mar: A, C, D at start; A lost.
    assert k["customer_churn_rate"][2] == 0.25
    assert k["customer_churn_rate"][3] == pytest.approx(1 / 3)
    # CRR Mar: end B, C, D, E = 4; new or returning at the end: B, E = 2; (4 - 2) / 3.
    assert k["customer_retention_rate"][3] == pytest.approx(2 / 3)


def test_quarter_and_year_aggregation():
    q = mrr_report("quarter")
    assert q.periods == ["2025-Q4", "2026-Q1"]
    k = q.kpis
    assert math.isnan(k["mrr_new"][0])  # Q4 holds the first month with data
    # Q1 flows are the sums of Jan..Mar: new 50 + 40, reactivation 180, expansion 20 + 30,
    # contraction 50, churn 150 + 120; the stock is March's.
    assert [k[m][1] for m in ("mrr_new", "mrr_reactivation", "mrr_expansion")] == [90, 180, 50]
    assert [k[m][1] for m in ("mrr_contraction", "mrr_churn")] == [50, 270]
    assert k["mrr"].tolist() == [600.0, 600.0]
    assert k["net_new_mrr"][1] == 0.0  # 90 + 180 + 50 - 50 - 270
    # Q1 cohort: A, B, D paying at the end of Dec, 600 -> A 0, B 180, D 300.
    assert k["net_revenue_retention"][1] == pytest.approx(480 / 600)
    assert k["gross_revenue_retention"][1] == pytest.approx(480 / 600)
    y = mrr_report("year")
    assert y.periods == ["2025", "2026"]
    assert y.kpis["mrr_churn"][1] == 270 and y.kpis["mrr"][1] == 600


def test_report_start_and_end():
    r = mrr_report(report_start="2026-01", report_end="2026-02")
    assert r.periods == ["2026-01", "2026-02"]
    assert r.kpis["mrr_new"].tolist() == [50.0, 0.0]  # Jan keeps Dec as its previous month


# Customers with dates, no MRR (activity follows signup and churn dates):
#   P1 signed up 2025-06-01, still active      -> active at start and end of Feb
#   P2 2025-07-01, churned 2026-02-10          -> lost in Feb
#   P3 2026-02-03, churned 2026-02-20          -> joined and left inside Feb
#   P4 2026-02-05, still active                -> new in Feb
#   P5 2025-01-01, churned 2026-01-15          -> gone before Feb
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["P1", "P2", "P3", "P4", "P5"],
        "signup_date": ["2025-06-01", "2025-07-01", "2026-02-03", "2026-02-05", "2025-01-01"],
        "churn_date": [None, "2026-02-10", "2026-02-20", None, "2026-01-15"],
    }
)


@pytest.mark.parametrize(
    ("convention", "expected"),
    [
        ("start", 1 / 2),  # lost P2 / at start P1, P2
        ("include_new", 2 / 2),  # P2 and P3 / P1, P2
        ("stripe", 2 / 4),  # P2 and P3 / (P1, P2 + new P3, P4)
    ],
)
def test_churn_conventions(convention, expected):
    settings = {"churn_convention": convention, "report_start": "2026-02", "report_end": "2026-02"}
    r = compute(read({"Customers": CUSTOMERS}, settings))
    assert r.periods == ["2026-02"]
    assert r.kpis["customer_churn_rate"][0] == pytest.approx(expected)
    # CRR: end P1, P4 = 2; new at the end P4 = 1; (2 - 1) / 2, whatever the convention.
    assert r.kpis["customer_retention_rate"][0] == pytest.approx(0.5)


def test_churn_date_wins_over_mrr_and_breakdown_by_reason():
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "D"],
            "signup_date": ["2025-11-01"] * 3,
            "churn_date": [None, "2026-01-20", None],
            "churn_reason": [None, "Price", None],
            "segment": ["SMB", "SMB", "Enterprise"],
        }
    )
    frame = pd.DataFrame(MRR_ROWS, columns=["customer_id", "month", "mrr"])
    r = compute(read({"Customers": customers, "MRR": frame}))
    reasons = r.breakdowns["churn_reason"].set_index(["churn_reason", "measure"])
    # B left in January by its churn date (MRR 200 at the start of January).
    assert reasons.loc[("Price", "customers"), "2026-01"] == 1
    assert reasons.loc[("Price", "churned_mrr"), "2026-01"] == 200
    seg = r.breakdowns["segment"].set_index(["segment", "kpi"])
    assert seg.loc[("Enterprise", "mrr"), "2026-03"] == 300  # D alone


def test_cx_to_revenue_by_nps_category():
    frame = pd.DataFrame(MRR_ROWS, columns=["customer_id", "month", "mrr"])
    surveys = pd.DataFrame(
        {
            "customer_id": ["A", "B", "D", "A"],
            "response_date": ["2025-12-05", "2025-12-06", "2025-12-07", "2026-02-27"],
            "survey": ["NPS"] * 4,
            "score": [10, 3, 8, 2],
        }
    )
    r = compute(read({"MRR": frame, "Surveys": surveys}))
    cx = r.breakdowns["nps_category"].set_index(["nps_category", "kpi"])
    # Before Jan: A promoter (100 -> 120), B detractor (200 -> 150), D passive (300 -> 300).
    assert cx.loc[("promoter", "net_revenue_retention"), "2026-01"] == pytest.approx(1.2)
    assert cx.loc[("detractor", "net_revenue_retention"), "2026-01"] == pytest.approx(0.75)
    assert cx.loc[("passive", "net_revenue_retention"), "2026-01"] == pytest.approx(1.0)
    # Before Mar, A's latest answer (Feb 27) is a 2: A is a detractor and churns in Mar.
    assert cx.loc[("detractor", "customer_churn_rate"), "2026-03"] == 1.0
    # NPS of Dec: 1 promoter, 1 passive, 1 detractor -> 0.
    assert r.kpis["nps"][0] == 0.0


def test_survey_support_and_funnel_per_period():
    surveys = pd.DataFrame(
        {
            "response_date": ["2026-01-03", "2026-01-09", "2026-01-20", "2026-02-02"],
            "survey": ["NPS", "NPS", "CSAT", "CSAT"],
            "score": [10, 6, 5, 3],
        }
    )
    tickets = pd.DataFrame(
        {
            "ticket_id": [1, 2, 3, 4],
            "opened_date": ["2026-01-02", "2026-01-05", "2026-01-30", "2026-02-01"],
            "resolved_date": ["2026-01-03", "2026-01-09", "2026-02-02", None],
            "contacts": [1, 3, 1, 1],
        }
    )
    funnel = pd.DataFrame(
        {"month": ["2026-01-01", "2026-02-01"], "visitors": [1000, 500], "conversions": [20, 15]}
    )
    k = compute(read({"Surveys": surveys, "Tickets": tickets, "Funnel": funnel})).kpis
    assert k["nps"].tolist() == [0.0, None] or (k["nps"][0] == 0.0 and math.isnan(k["nps"][1]))
    assert k["csat"].tolist() == [1.0, 0.0]
    # Resolved in Jan: tickets 1 and 2, one at first contact; Feb: ticket 3.
    assert k["first_contact_resolution_rate"].tolist() == [0.5, 1.0]
    assert k["conversion_rate"].tolist() == [0.02, 0.03]


def test_missing_tables_give_blanks_not_zeros():
    k = mrr_report().kpis
    for kpi in (
        "nps",
        "csat",
        "cac",
        "conversion_rate",
        "first_contact_resolution_rate",
        "stickiness",
    ):
        assert np.isnan(k[kpi]).all(), kpi


def test_json_shape_and_nulls():
    out = mrr_report().as_json()
    assert out["granularity"] == "month"
    assert out["periods"] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    assert out["kpis"]["mrr"] == [600.0, 620.0, 500.0, 600.0]
    assert out["kpis"]["mrr_new"][0] is None
    assert all(len(v) == 4 for v in out["kpis"].values())


def test_stickiness_and_usage_by_hand():
    # January (31 days): u1 on the 1st (twice) and 2nd, u2 on the 1st: 3 user-days, so
    # DAU = 3/31 and MAU = 2; DAU/MAU = 3/62. February (28 days): u1 on the 10th: 1/28.
    usage = pd.DataFrame(
        {
            "activity_date": ["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-01", "2026-02-10"],
            "user_id": ["u1", "u1", "u1", "u2", "u1"],
            "customer_id": ["A", "A", "A", "B", "A"],
            "feature": ["reports", "api", "reports", "reports", "api"],
        }
    )
    customers = pd.DataFrame({"customer_id": ["A", "B", "C"], "signup_date": ["2025-12-01"] * 3})
    monthly = compute(read({"Usage": usage, "Customers": customers}))
    assert monthly.kpis["stickiness"].tolist() == pytest.approx([3 / 62, 1 / 28])
    # Usage rate: Jan A and B of the 3 active customers; Feb A only.
    assert monthly.kpis["product_usage_rate"].tolist() == pytest.approx([2 / 3, 1 / 3])
    adoption = monthly.breakdowns["feature_adoption"]
    assert adoption.loc["reports", "2026-01"] == pytest.approx(2 / 3)
    assert adoption.loc["api", "2026-02"] == pytest.approx(1 / 3)
    quarter = compute(read({"Usage": usage, "Customers": customers}, {"granularity": "quarter"}))
    assert quarter.kpis["stickiness"][0] == pytest.approx((3 / 62 + 1 / 28) / 2)


def test_feedback_themes_are_phrases_counted_per_comment_with_an_example():
    from cxkpi_xl.engine import feedback_themes

    comments = [
        "Great support team, and easy to use",
        "great support team",
        "Easy to use. Great support team!",
        "Hard to use and slow reports",
        "Slow reports every week, slow reports",
        None,
        "   ",
    ]
    themes = {t.phrase: t for t in feedback_themes(comments)}
    # Worked by hand: "great support team" is in comments 1-3 (case and punctuation
    # ignored); "easy to use" in 1 and 3 (an inner stop word is kept); "slow reports" in
    # 4 and 5 (twice in 5, counted once). "great support" and "support team" only ever
    # occur inside "great support team" (3 each), so the longer phrase stands for them;
    # "to use", "every week", "team and easy" (across "and") and single words never
    # appear; phrases of one comment ("hard to use") go when others recur.
    assert {p: t.comments for p, t in themes.items()} == {
        "great support team": 3,
        "easy to use": 2,
        "slow reports": 2,
    }
    assert themes["great support team"].example == "great support team"  # the shortest
    assert themes["slow reports"].example in comments
    assert feedback_themes(comments)[0].phrase == "great support team"


def test_feedback_themes_use_the_comments_language():
    from cxkpi_xl.engine.themes import feedback_themes, language_of

    french = ["Le support est trop lent", "Support trop lent", "Le prix est trop cher"]
    assert language_of(french) == "fr"
    assert language_of(["The support is slow"]) == "en"
    # By hand, with the French stop words (le, est, trop): comment 1 gives no phrase
    # ("le support", "est trop lent", "trop lent" start or end with one), comment 3
    # none, comment 2 "support trop lent". With English stop words instead, "trop lent"
    # would be a phrase of two comments.
    assert any(t.phrase == "trop lent" for t in feedback_themes(french, language="en"))
    phrases = {t.phrase: t.comments for t in feedback_themes(french)}
    assert phrases == {"support trop lent": 1}
    assert feedback_themes([]) == [] and feedback_themes([None, 3]) == []


# --- issue 11: customers older than the data, unreadable MRR, large books ---------------

# kpi-definitions' example: customers signed up in 2025 who pay in January 2026, the first
# month with MRR data, were active at its start. A and B pay Jan..Mar; C pays in January
# and leaves on 10 Feb by its churn date; D signed up on 5 Jan 2026 (new in January).
OLDER = pd.DataFrame(
    {
        "customer_id": ["A", "B", "C", "D"],
        "signup_date": ["2025-03-01", "2025-06-01", "2025-09-01", "2026-01-05"],
        "churn_date": [None, None, "2026-02-10", None],
    }
)
OLDER_MRR = pd.DataFrame(
    [("A", "2026-01", 100), ("A", "2026-02", 100), ("A", "2026-03", 100),
     ("B", "2026-01", 200), ("B", "2026-02", 200), ("B", "2026-03", 200),
     ("C", "2026-01", 50), ("D", "2026-01", 70), ("D", "2026-02", 70), ("D", "2026-03", 70)],
    columns=["customer_id", "month", "mrr"],
)  # fmt: skip


@pytest.mark.parametrize(
    ("granularity", "churn", "retention"),
    [
        # Jan: start A, B, C (D signed up in Jan); none lost: 0. CRR (4 - D) / 3 = 1.
        # Feb: start A, B, C, D; C lost: 1/4. Mar: start A, B, D; none lost.
        ("month", [0.0, 0.25, 0.0], [1.0, 0.75, 1.0]),
        # Q1 and 2026: start A, B, C; C lost: 1/3. CRR: end A, B, D = 3, new D: (3 - 1) / 3.
        ("quarter", [1 / 3], [2 / 3]),
        ("year", [1 / 3], [2 / 3]),
    ],
)
def test_customers_older_than_the_data_are_active_at_the_first_start(granularity, churn, retention):
    r = compute(read({"Customers": OLDER, "MRR": OLDER_MRR}, {"granularity": granularity}))
    assert r.kpis["customer_churn_rate"] == pytest.approx(churn)
    assert r.kpis["customer_retention_rate"] == pytest.approx(retention)
    # their MRR before January is unknown: the first period's MRR figures stay blank
    for kpi in ("mrr_new", "mrr_churn", "net_new_mrr", "net_revenue_retention",
                "gross_revenue_retention", "revenue_churn_rate"):  # fmt: skip
        assert math.isnan(r.kpis[kpi][0]), kpi


def test_one_rule_for_customers_with_and_without_a_churn_date():
    # C churns by MRR (no row from February) instead of by a date: the same counts.
    customers = OLDER.assign(churn_date=None)
    r = compute(read({"Customers": customers, "MRR": OLDER_MRR}, {"granularity": "quarter"}))
    assert r.kpis["customer_churn_rate"][0] == pytest.approx(1 / 3)
    # A customer older than the data who does not pay in its first month was not active
    # at its start (E signs up in 2025, pays from February: new in Q1, not at its start).
    extra = pd.concat([OLDER_MRR, pd.DataFrame([("E", "2026-02", 10)], columns=OLDER_MRR.columns)])
    more = pd.concat(
        [customers, pd.DataFrame({"customer_id": ["E"], "signup_date": ["2025-05-01"]})]
    )
    r = compute(read({"Customers": more, "MRR": extra}, {"granularity": "quarter"}))
    assert r.kpis["customer_churn_rate"][0] == pytest.approx(1 / 3)  # still C / A, B, C
    # CRR: end A, B, D, E = 4, new D and E: (4 - 2) / 3
    assert r.kpis["customer_retention_rate"][0] == pytest.approx(2 / 3)


# Unreadable MRR cells, Jan..Apr 2026 (the reader keeps the rows with the amount unknown):
#        Jan     Feb   Mar     Apr
#   A    100     100   "ten"   120    Mar keeps Feb's 100; Apr: expansion 20
#   B    "#N/A"  50    50      50     Jan (no month before) takes Feb's 50
#   C    30      30    blank   -      Mar keeps 30; Apr: churn 30
UNREADABLE = pd.DataFrame(
    [("A", "2026-01", 100), ("A", "2026-02", 100), ("A", "2026-03", "ten"),
     ("A", "2026-04", 120), ("B", "2026-01", "#N/A"), ("B", "2026-02", 50),
     ("B", "2026-03", 50), ("B", "2026-04", 50), ("C", "2026-01", 30), ("C", "2026-02", 30),
     ("C", "2026-03", None)],
    columns=["customer_id", "month", "mrr"],
)  # fmt: skip


def test_an_unreadable_mrr_cell_is_unknown_not_zero():
    data = read({"MRR": UNREADABLE})
    r = compute(data)
    k = r.kpis
    assert k["mrr"].tolist() == [180.0, 180.0, 180.0, 170.0]  # 100+50+30; ...; 120+50
    assert k["mrr_churn"][1:].tolist() == [0.0, 0.0, 30.0]  # no churn in March
    assert k["mrr_reactivation"][1:].tolist() == [0.0, 0.0, 0.0]  # none in April
    assert k["mrr_expansion"][1:].tolist() == [0.0, 0.0, 20.0]
    assert k["net_new_mrr"][1:].tolist() == [0.0, 0.0, -10.0]
    assert np.array_equal(k["mrr"][1:], k["mrr"][:-1] + k["net_new_mrr"][1:])
    assert k["customer_churn_rate"][1:].tolist() == [0.0, 0.0, pytest.approx(1 / 3)]
    actions = {(i.row, i.column): i.action for i in r.issues}
    assert actions == {
        (4, "mrr"): "kept the previous month's MRR for 2026-03",
        (6, "mrr"): "used the next month's MRR for 2026-01",
        (12, "mrr"): "kept the previous month's MRR for 2026-03",
    }
    # the same by quarter: Q1 -> Q2 identity, and the cohort starts whole
    q = compute(read({"MRR": UNREADABLE}, {"granularity": "quarter"})).kpis
    assert q["mrr"].tolist() == [180.0, 170.0] and q["net_new_mrr"][1] == -10.0


def test_an_unreadable_only_month_counts_no_mrr_and_says_so():
    frame = pd.DataFrame(
        [("A", "2026-01", 10), ("A", "2026-02", 10), ("Z", "2026-02", "n/a")],
        columns=["customer_id", "month", "mrr"],
    )
    r = compute(read({"MRR": frame}))
    assert r.kpis["mrr"].tolist() == [10.0, 10.0] and r.kpis["mrr_new"][1] == 0.0
    assert r.issues[0].action == "counted no MRR for 2026-02 (no month next to it to take it from)"


def test_large_books_add_up_exactly():
    # Three rupiah customers of 5e12 a month: 1.5e13, beyond int64 in micro-units
    # (9.2e12); February: A grows by 1, so net new is exactly 1.
    idr = pd.DataFrame(
        [("A", "2026-01", 5e12), ("B", "2026-01", 5e12), ("C", "2026-01", 5e12),
         ("A", "2026-02", 5e12 + 1), ("B", "2026-02", 5e12), ("C", "2026-02", 5e12)],
        columns=["customer_id", "month", "mrr"],
    )  # fmt: skip
    k = compute(read({"MRR": idr})).kpis
    assert k["mrr"].tolist() == [15e12, 15e12 + 1]
    assert k["mrr_expansion"][1] == 1.0 and k["net_new_mrr"][1] == 1.0
    # Cents: four customers of 250,000,000,000,000.25 total 1,000,000,000,000,001.00
    cents = pd.DataFrame(
        {"customer_id": list("ABCD"), "month": ["2026-01"] * 4, "mrr": [2.5e14 + 0.25] * 4}
    )
    assert compute(read({"MRR": cents})).kpis["mrr"].tolist() == [1_000_000_000_000_001.0]
    # CX_MRR_MOVEMENTS runs the same engine: February's MRR and expansion are exact
    moves = mrr_movements(idr["customer_id"], idr["month"], idr["mrr"])
    assert moves.loc["2026-02", ["mrr", "mrr_expansion"]].tolist() == [15e12 + 1, 1.0]


def test_movements_of_cells_that_fit_32_bits_add_up_past_them_exactly():
    # The movement matrices are kept in 32 bits when every cell fits (each customer's
    # MRR below 2**31 units): three customers start at 20,000,000.01 (2,000,000,001
    # cents, just below 2**31) in February, so the new MRR of the month is 6,000,000,003
    # cents, past 2**31, and must be exact; then each grows by a cent, and one leaves.
    from cxkpi_xl.engine.assemble import _encode_ids
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.subscriptions import _Base

    amount = 20_000_000.01
    frame = pd.DataFrame(
        [(c, "2026-01", 1.0) for c in "XYZ"]
        + [(c, "2026-02", amount) for c in "ABC"]
        + [(c, "2026-03", amount + 0.01) for c in "ABC"]
        + [(c, "2026-04", amount + 0.01) for c in "AB"],
        columns=["customer_id", "month", "mrr"],
    )
    data = _encode_ids(read({"MRR": frame}))
    assert _Base(data, _axis(data, "month")).move["mrr_new"].dtype == np.int32
    k = compute(read({"MRR": frame})).kpis
    assert k["mrr_new"][1] == 60_000_000.03 and k["mrr_churn"][1] == 3.0
    assert k["mrr_expansion"][2] == 0.03 and k["mrr_churn"][3] == 20_000_000.02
    assert k["net_new_mrr"][1:].tolist() == [59_999_997.03, 0.03, -20_000_000.02]
    assert k["mrr"].tolist() == [3.0, 60_000_000.03, 60_000_000.06, 40_000_000.04]


def test_a_book_too_large_to_add_exactly_is_refused():
    # One value with six decimals makes the unit a millionth; 3e12 a month is then
    # 3e18 units, above the limit of 2**61 (2.3e18) units: refused, never added wrongly.
    frame = pd.DataFrame(
        {"customer_id": ["A", "B"], "month": ["2026-01"] * 2, "mrr": [3e12, 0.123456]}
    )
    with pytest.raises(MoneyError, match=r"too large to add up exactly.*6 decimals"):
        compute(read({"MRR": frame}))
    # the same book in whole units is fine: 3e12 + 0 (B rounded to a whole number)
    frame["mrr"] = [3e12, 0.0]
    assert compute(read({"MRR": frame})).kpis["mrr"].tolist() == [3e12]


def test_a_column_the_source_does_not_have_gives_blanks_not_zeros():
    # Customers without reference_willing and referred_by columns (an export that has
    # neither): nobody is known to be willing or referred, so the reference rate and the
    # referral revenue are unknown (blank), not 0 %. With the columns present and saying
    # "No" / blank, they are known: 0 of 2 customers willing, no referred revenue.
    customers = pd.DataFrame(
        {"customer_id": ["A", "B"], "signup_date": ["2026-01-01", "2026-01-01"]}
    )
    mrr = pd.DataFrame(
        {"customer_id": ["A", "B"], "month": ["2026-01-01"] * 2, "mrr": [10.0, 20.0]}
    )
    without = compute(read({"Customers": customers, "MRR": mrr}), breakdowns=False)
    assert math.isnan(without.kpis["reference_rate"][0])
    assert math.isnan(without.kpis["referral_revenue"][0])
    with_columns = customers.assign(reference_willing=["No", "No"], referred_by=[None, None])
    known = compute(read({"Customers": with_columns, "MRR": mrr}), breakdowns=False)
    assert known.kpis["reference_rate"][0] == 0.0  # 0 willing / 2 active
    assert known.kpis["referral_revenue"][0] == 0.0  # nobody referred: no revenue
