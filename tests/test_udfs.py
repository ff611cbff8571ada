"""The Excel functions through xlwings' own Office.js dispatch (xlwings Lite and Server),
and the classic registration (VBA declarations) with pywin32 stubbed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import xlwings as xw
from xlwings.server import custom_functions_meta

import cxkpi_xl
import cxkpi_xl.udfs as udfs
from cxkpi_xl.catalogue import ARGUMENTS, excel_functions

from .excel import REQUIRED_NAMES, call, error, value

REQUIRED = REQUIRED_NAMES


def test_runtime_is_office_js():
    assert xw.func.__module__ == "xlwings.pro.udfs_officejs"


def test_meta_lists_every_function_with_descriptions():
    functions = {f["name"]: f for f in custom_functions_meta(udfs)["functions"]}
    assert set(REQUIRED) <= set(functions)
    for kpi in excel_functions():
        meta = functions[kpi.excel_name]
        assert meta["description"].startswith(kpi.description[:40])
        assert [p["name"] for p in meta["parameters"]] == kpi.arguments
        for p in meta["parameters"]:
            assert p["description"] == ARGUMENTS[p["name"]]
            assert not p["description"].startswith("Positional argument")
    # Optional arguments are marked so that Excel lets users leave them out.
    csat = {p["name"]: p for p in functions["CX_CSAT"]["parameters"]}
    assert csat["scale"].get("optional") and not csat["scores"].get("optional")


class TestValues:
    def test_nps_over_a_table_column_with_blanks_and_text_numbers(self):
        # 9, 10, "9" promoters; 7 passive; 3, 6 detractors; blanks ignored: (3 - 2) / 6.
        scores = [[9], [10], [None], ["9"], [7], [""], [3], [6]]
        assert value("CX_NPS", scores) == pytest.approx(100 / 6)

    def test_single_cell_arrives_as_a_scalar(self):
        assert value("CX_NPS", 10) == 100.0
        assert value("CX_CHURN", 2000, 100) == 0.05

    def test_seed_examples(self):
        assert value("CX_NRR", 100_000, 20_000, 5_000, 5_000) == pytest.approx(1.10)
        assert value("CX_CLTV", 50, 12, 1) == 600.0
        assert value("CX_CLTV_SUB", 100, 0.05) == pytest.approx(2000.0)

    def test_optional_arguments_missing_or_blank(self):
        scores = [[9], [8], [10], [5], [7]]
        # Seed 003's 1-10 CSAT: 8 or higher, three of five.
        assert value("CX_CSAT", scores, 10) == pytest.approx(0.6)
        assert value("CX_CSAT", scores, 10, None) == pytest.approx(0.6)
        assert value("CX_QUICK_RATIO", 8_000, 4_000, 1_000, 2_000) == 4.0
        assert value("CX_NPS_MOE", [[10]] * 50 + [[8]] * 30 + [[2]] * 20) == pytest.approx(
            15.308, abs=1e-3
        )
        adjusted = value("CX_NPS_MOE", [[10]] * 50 + [[8]] * 30 + [[2]] * 20, 0.95, "adjusted_wald")
        assert adjusted == pytest.approx(15.0755, abs=1e-3)

    def test_serial_dates(self):
        # 46023 = 2026-01-01, 46033 = 2026-01-11, 46053 = 2026-01-31: 10 and 30 days.
        assert value("CX_TTV_DAYS", [[46023], [46023]], [[46033], [46053]]) == 20.0

    def test_weights_and_health(self):
        assert value("CX_HEALTH", [[80, 60, 40]], [[0.4, 0.3, 0.3]]) == pytest.approx(62.0)
        assert value("CX_AT_RISK", [[30], [45], [60], [80], [90]]) == pytest.approx(0.4)

    def test_breakdown_spills_labels_and_values(self):
        table = call("CX_NPS_BREAKDOWN", [[10]] * 50 + [[8]] * 30 + [[2]] * 20)
        as_dict = dict((row[0], row[1]) for row in table)
        assert [row[0] for row in table][:4] == ["promoters", "passives", "detractors", "n"]
        assert as_dict["nps"] == pytest.approx(30.0)
        assert as_dict["n"] == 100

    def test_arrays_spill_per_period_with_errors_per_cell(self):
        got = call("CX_CHURN", [[2000], [0], [None]], [[100], [0], [5]])
        assert got == [[0.05], [error("#DIV/0!")], [error("#N/A")]]


class TestErrors:
    def test_zero_denominator_is_div0(self):
        assert value("CX_NPS", [[None], [""]]) == error("#DIV/0!")
        assert value("CX_CHURN", 0, 0) == error("#DIV/0!")
        assert value("CX_CLTV_SUB", 100, 0) == error("#DIV/0!")

    def test_blank_argument_is_na(self):
        assert value("CX_CHURN", None, 10) == error("#N/A")
        assert value("CX_CLTV", 50, None, 1) == error("#N/A")

    @pytest.mark.parametrize(
        ("func", "args", "message"),
        [
            ("CX_NPS", ([[9], ["ten"]],), "scores: 'ten' at position 2 is text"),
            ("CX_NPS", ([[9], [11]],), "scores: 11 at position 2 is outside 0..10"),
            ("CX_NPS", ([[9], [True]],), "TRUE/FALSE"),
            ("CX_NPS", ([[9], [8.5]],), "not a whole number"),
            ("CX_CHURN", (-5, 1), "customers_start: -5 at position 1 is negative"),
            ("CX_CSAT", ([[5]], 1), "scale must be a whole number"),
            ("CX_NPS_MOE", ([[5]], 0.95, "wilson"), 'method must be "wald"'),
            ("CX_TTV_DAYS", ([["soon"]], [[46023]]), "not a date"),
            ("CX_HEALTH", ([[1, 2]], [[1]]), "same number of cells"),
            ("CX_STICKINESS", (300, [[1], [2]]), "mau must be one number"),
        ],
    )
    def test_bad_input_raises_xlwings_error_with_reason(self, func, args, message):
        with pytest.raises(xw.XlwingsError) as e:
            call(func, *args)
        assert message in str(e.value)
        assert str(e.value).startswith(func)


CLASSIC = textwrap.dedent(
    """
    import io, sys, types
    from unittest import mock
    for name in ("pythoncom", "pywintypes", "win32com", "win32com.client"):
        sys.modules[name] = mock.MagicMock(name=name)
    import xlwings, xlwings.udfs as classic
    # What `import xlwings` binds on Windows with pywin32.
    xlwings.func, xlwings.arg, xlwings.ret = classic.xlfunc, classic.xlarg, classic.xlret
    import cxkpi_xl.udfs as udfs
    out = io.StringIO()
    book = types.SimpleNamespace(Name="cx_kpis.xlsm", FullName="C:\\\\cx_kpis.xlsm")
    classic.generate_vba_wrapper("cxkpi_xl.udfs", udfs, out, book)
    print(out.getvalue())
    """
)


def test_classic_vba_declares_every_function():
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLWINGS_ON_SERVER"}
    done = subprocess.run(
        [sys.executable, "-c", CLASSIC], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    vba = done.stdout
    for kpi in excel_functions():
        required = [a for a in kpi.arguments if a in _required(kpi)]
        optional = [f"Optional {a}" for a in kpi.arguments if a not in _required(kpi)]
        header = f"Function {kpi.excel_name}({', '.join(required + optional)})"
        assert header in vba, header
        assert f'XLPy.CallUDF("cxkpi_xl.udfs", "{kpi.excel_name}"' in vba


def _required(kpi):
    import inspect

    params = inspect.signature(kpi.function).parameters
    return [n for n in kpi.arguments if params[n].default is inspect.Parameter.empty]


class TestTables:
    # The hand-built MRR table of tests/test_engine.py, as three ranges.
    IDS = [
        ["A"],
        ["A"],
        ["A"],
        ["B"],
        ["B"],
        ["B"],
        ["C"],
        ["C"],
        ["C"],
        ["D"],
        ["D"],
        ["D"],
        ["D"],
        ["E"],
    ]
    # Excel serials: 46000 = 2025-12-09, 46023 = 2026-01-01, 46054 = 2026-02-01, 46082 = 2026-03-01
    MONTHS = [[46000], [46023], [46054], [46000], [46023], [46082], [46023], [46054], [46082],
              [46000], [46023], [46054], [46082], [46082]]  # fmt: skip
    MRR = [
        [100],
        [120],
        [120],
        [200],
        [150],
        [180],
        [50],
        [80],
        [80],
        [300],
        [300],
        [300],
        [300],
        [40],
    ]

    def test_mrr_movements_spills_one_row_per_month(self):
        table = call("CX_MRR_MOVEMENTS", self.IDS, self.MONTHS, self.MRR)
        assert table[0] == ["month", "mrr", "mrr_new", "mrr_reactivation", "mrr_expansion",
                            "mrr_contraction", "mrr_churn", "net_new_mrr"]  # fmt: skip
        assert [row[0] for row in table[1:]] == ["2025-12", "2026-01", "2026-02", "2026-03"]
        assert table[1][1] == 600 and table[1][2] == ""  # the first month has no movements
        # March: new 40, reactivation 180, churn 120, net new 100 (worked in test_engine).
        assert table[4][1:] == [600, 40, 180, 0, 0, 120, 100]

    def test_cohort_retention(self):
        table = call("CX_COHORT_RETENTION", self.IDS, self.MONTHS, self.MRR)
        assert table[0][:2] == ["cohort", "0"]
        dec = table[1]
        # The December cohort A, B, D: 600, then 570, 420 (A 120 + D 300), 480 (B 180 + D 300).
        assert dec[0] == "2025-12" and dec[1:] == pytest.approx(
            [1.0, 570 / 600, 420 / 600, 480 / 600]
        )
        logos = call("CX_COHORT_RETENTION", self.IDS, self.MONTHS, self.MRR, "logos")
        assert logos[1][1:] == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3])

    def test_large_books_are_exact_or_refused(self):
        # Rupiah: A 5e12 in Jan (serial 46023) and 5e12 + 1 in Feb, B 5e12 both months:
        # MRR 1e13 and 1e13 + 1, expansion exactly 1 (beyond int64 in micro-units).
        ids, months = [["A"], ["A"], ["B"], ["B"]], [[46023], [46054], [46023], [46054]]
        table = call("CX_MRR_MOVEMENTS", ids, months, [[5e12], [5e12 + 1], [5e12], [5e12]])
        assert table[2][1] == 10_000_000_000_001 and table[2][4] == 1
        # one value with six decimals makes the unit a millionth: 1e13 is then refused
        bad = [[5e12], [5e12 + 1], [5e12], [0.123456]]
        with pytest.raises(xw.XlwingsError, match="MRR is too large to add up exactly"):
            call("CX_MRR_MOVEMENTS", ids, months, bad)

    def test_bad_row_is_named(self):
        with pytest.raises(xw.XlwingsError, match=r"row 2 of the ranges: mrr 'x' is not a number"):
            call("CX_MRR_MOVEMENTS", [["A"], ["A"]], [[46023], [46054]], [[1], ["x"]])
        with pytest.raises(xw.XlwingsError, match="same number of cells"):
            call("CX_MRR_MOVEMENTS", [["A"], ["A"]], [[46023]], [[1], [2]])


class TestModels:
    def test_sbg_retention_over_a_survival_row(self):
        # Fader & Hardie (2007), the high-end cohort, given as one row of cells.
        table = call("CX_SBG_RETENTION", [[1000, 869, 743, 653, 593, 551, 517, 491]], 5)
        rows = {row[0]: row[1:] for row in table[1:]}
        assert round(rows["alpha"][0], 3) == 0.668 and round(rows["beta"][0], 3) == 3.806
        assert rows["0"][0] == 1.0 and len(rows) == 3 + 6

    def test_derl(self):
        # Fader & Hardie (2010): high-end cohort, d = 10 %, 7 renewals: 7.530.
        assert round(value("CX_DERL", 0.668, 3.806, 0.1, 7), 3) == 7.530
        with pytest.raises(xw.XlwingsError, match="CX_DERL: renewals must be a whole"):
            call("CX_DERL", 0.668, 3.806, 0.1, 2.5)

    def test_rising_curve_is_a_clear_error(self):
        with pytest.raises(xw.XlwingsError, match="CX_SBG_RETENTION: the survival curve rises"):
            call("CX_SBG_RETENTION", [[1000, 600, 700]])

    def test_clv_and_p_alive_over_transaction_ranges(self):
        from cxkpi_xl.models import simulate_transactions

        tx = simulate_transactions(200, seed=4)
        ids = [[c] for c in tx["customer_id"]]
        serials = [
            [float((d - pd.Timestamp("1899-12-30")).days)] for d in tx["date"]
        ]  # Excel dates
        amounts = [[a] for a in tx["amount"]]
        clv = call("CX_CLV_PREDICT", ids, serials, amounts)
        assert clv[0] == [
            "customer_id",
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "p_alive",
            "predicted_clv",
        ]
        assert len(clv) == 201 and all(row[-1] > 0 for row in clv[1:])
        direct = cxkpi_xl.cltv_predicted(tx["customer_id"], tx["date"], tx["amount"])
        assert [row[-1] for row in clv[1:]] == pytest.approx(direct["predicted_clv"].tolist())
        alive = call("CX_P_ALIVE", ids, serials)
        assert len(alive) == 201 and all(0 <= row[-1] <= 1 for row in alive[1:])

    def test_too_few_customers(self):
        with pytest.raises(xw.XlwingsError, match="too few customers"):
            call("CX_P_ALIVE", [["a"], ["a"], ["b"]], [[46023], [46030], [46040]])
