"""The reader: one test per validation problem of the schema (reported with its row, the
rest of the data still used), the three source forms, and the refusals."""

from __future__ import annotations

import datetime as dt
import zipfile

import pandas as pd
import pytest

from cxkpi_xl.engine import compute
from cxkpi_xl.reader import SourceError, read
from cxkpi_xl.sample import generate, write_csv

from .workbooks import write_tables


def issues_of(data, problem):
    return [i for i in data.issues if problem in i.problem]


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["1001", "1002", "1003"],
        "signup_date": ["2026-01-05", "2026-01-06", "2026-01-07"],
    }
)


def test_missing_required_column_drops_that_table_only():
    mrr = pd.DataFrame({"customer_id": ["1001"], "month": ["2026-01-01"]})  # no mrr column
    data = read({"Customers": CUSTOMERS, "MRR": mrr})
    [issue] = issues_of(data, "missing")
    assert (issue.sheet, issue.row, issue.column) == ("MRR", 1, "mrr")
    assert issue.problem == (
        "the required column mrr is missing (the columns are 'customer_id', 'month')"
    )
    assert data.tables["MRR"].empty and len(data.tables["Customers"]) == 3


def test_duplicate_keys():
    customers = pd.DataFrame({"customer_id": ["1", "2", "1"], "signup_date": ["2026-01-01"] * 3})
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o1"],
            "customer_id": ["1", "2"],
            "order_date": ["2026-01-02"] * 2,
            "amount": [5, 6],
        }
    )
    tickets = pd.DataFrame(
        {"ticket_id": [7, "7"], "opened_date": ["2026-01-02"] * 2, "contacts": [1, 2]}
    )
    data = read({"Customers": customers, "Orders": orders, "Tickets": tickets})
    dups = {(i.sheet, i.row, i.column) for i in issues_of(data, "duplicate")}
    # Row numbers as Excel shows them: the header is row 1.
    assert dups == {
        ("Customers", 4, "customer_id"),
        ("Orders", 3, "order_id"),
        ("Tickets", 3, "ticket_id"),
    }
    assert len(data.tables["Customers"]) == 2 and len(data.tables["Orders"]) == 1


def test_ids_typed_as_numbers_match_text_ids():
    mrr = pd.DataFrame(
        {"customer_id": [1001.0, 1002], "month": ["2026-01-01"] * 2, "mrr": [10, 20]}
    )
    data = read({"Customers": CUSTOMERS, "MRR": mrr})
    assert data.tables["MRR"]["customer_id"].tolist() == ["1001", "1002"]
    assert not issues_of(data, "not in Customers")


def test_unparseable_dates():
    customers = CUSTOMERS.assign(
        churn_date=["soon", None, None], signup_date=["2026-01-05", "bad", "2026-01-07"]
    )
    data = read({"Customers": customers})
    bad = {(i.row, i.column, i.action) for i in issues_of(data, "not a date")}
    assert bad == {(3, "signup_date", "skipped the row"), (2, "churn_date", "used a blank")}
    assert data.tables["Customers"]["customer_id"].tolist() == ["1001", "1003"]


def test_dates_in_every_form():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "signup_date": [
                dt.date(2026, 1, 5),
                "2026-01-05",
                46027,
                pd.Timestamp("2026-01-05 10:00"),
            ],
        }
    )
    data = read({"Customers": customers})
    assert data.tables["Customers"]["signup_date"].dt.date.tolist()[:3] == [dt.date(2026, 1, 5)] * 3
    assert not data.issues


def test_text_in_a_number_column():
    mrr = pd.DataFrame(
        {"customer_id": ["1001", "1002"], "month": ["2026-01-01"] * 2, "mrr": ["ten", 20]}
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1"],
            "customer_id": ["1001"],
            "order_date": ["2026-01-02"],
            "amount": [5],
            "quantity": ["two"],
        }
    )
    data = read({"Customers": CUSTOMERS, "MRR": mrr, "Orders": orders})
    got = {(i.sheet, i.row, i.column, i.action) for i in issues_of(data, "not a number")}
    # an unreadable MRR is unknown, not zero: the row stays (engine._carry_unknown)
    unknown = "counted no MRR for 2026-01 (no month next to it to take it from)"
    assert got == {("MRR", 2, "mrr", unknown), ("Orders", 2, "quantity", "used a blank")}
    assert data.tables["MRR"]["mrr"].fillna(-1).tolist() == [-1, 20.0]  # -1: unknown
    assert len(data.tables["Orders"]) == 1


def test_negative_money_and_counts():
    mrr = pd.DataFrame(
        {"customer_id": ["1001", "1002"], "month": ["2026-01-01"] * 2, "mrr": [-5, 20]}
    )
    tickets = pd.DataFrame(
        {"ticket_id": [1, 2], "opened_date": ["2026-01-02"] * 2, "contacts": [-1, 2]}
    )
    data = read({"Customers": CUSTOMERS, "MRR": mrr, "Tickets": tickets})
    got = {(i.sheet, i.row, i.column) for i in issues_of(data, "negative")}
    assert got == {("MRR", 2, "mrr"), ("Tickets", 2, "contacts")}
    assert len(data.tables["Tickets"]) == 1
    # a negative MRR is kept as unknown (engine._carry_unknown), not left out
    assert data.tables["MRR"]["mrr"].isna().tolist() == [True, False]


def test_scores_outside_their_survey_scale():
    surveys = pd.DataFrame(
        {
            "response_date": ["2026-01-02"] * 6,
            "survey": ["NPS", "NPS", "csat", "CSAT", "CES", "Poll"],
            "score": [11, 9, 5, 6, 7, 3],
        }
    )
    data = read({"Surveys": surveys})
    got = {(i.row, i.column) for i in data.issues}
    # NPS 11 (row 2), CSAT 6 on 1-5 (row 5), unknown survey "Poll" (row 7).
    assert got == {(2, "score"), (5, "score"), (7, "survey")}
    assert data.tables["Surveys"]["survey"].tolist() == ["NPS", "CSAT", "CES"]
    # A 10-point CSAT setting makes the 6 valid.
    assert not any(i.row == 5 for i in read({"Surveys": surveys}, {"csat_scale": 10}).issues)


def test_rows_whose_customer_is_unknown():
    mrr = pd.DataFrame(
        {"customer_id": ["1001", "9999"], "month": ["2026-01-01"] * 2, "mrr": [10, 20]}
    )
    orders = pd.DataFrame(
        {"order_id": ["o1"], "customer_id": ["8888"], "order_date": ["2026-01-02"], "amount": [5]}
    )
    data = read({"Customers": CUSTOMERS, "MRR": mrr, "Orders": orders})
    got = {(i.sheet, i.row, i.value, i.action) for i in issues_of(data, "not in Customers")}
    assert got == {("MRR", 3, "9999", "used the row"), ("Orders", 2, "8888", "used the row")}
    assert compute(data).kpis["mrr"][0] == 30.0  # the row is still counted


def test_churn_before_signup():
    customers = CUSTOMERS.assign(churn_date=["2025-12-01", None, None])
    data = read({"Customers": customers})
    [issue] = issues_of(data, "before signup_date")
    assert (issue.row, issue.action) == (2, "ignored the churn date")
    assert data.tables["Customers"]["churn_date"].isna().all()


def test_blank_required_value_and_blank_rows():
    mrr = pd.DataFrame(
        {
            "customer_id": ["1001", None, None],
            "month": ["2026-01-01", "2026-01-01", None],
            "mrr": [1, 2, None],
        }
    )
    data = read({"Customers": CUSTOMERS, "MRR": mrr})
    [issue] = data.issues  # the wholly blank last row is not data
    assert (issue.row, issue.column, issue.problem) == (3, "customer_id", "is blank but required")


def test_bad_setting_in_the_workbook_is_an_issue_and_the_default_is_used(tmp_path):
    path = write_tables(
        tmp_path / "b.xlsx",
        {"Customers": CUSTOMERS},
        {"granularity": "fortnight", "csat_scale": 10},
    )
    data = read(path)
    assert data.settings["granularity"] == "month" and data.settings["csat_scale"] == 10
    [issue] = data.issues
    assert issue.sheet == "Settings" and "fortnight" in issue.problem


def test_three_sources_give_the_same_kpis(tmp_path):
    tables = generate("tiny")
    from_frames = compute(read(tables), breakdowns=False).as_json()
    xlsx = write_tables(tmp_path / "tiny.xlsx", tables)
    from_xlsx = compute(read(xlsx), breakdowns=False).as_json()
    from_csv = compute(read(write_csv(tables, tmp_path / "csv")), breakdowns=False).as_json()
    assert from_xlsx == from_frames
    assert from_csv == from_frames


def test_table_found_by_name_with_excel_row_numbers(tmp_path):
    import openpyxl
    from openpyxl.worksheet.table import Table

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "My data"  # the sheet is named otherwise; the Table is found by its name
    ws["A1"] = "MRR by customer"
    ws.append([])
    ws.append(["Customer_ID", "Month", "MRR", "note"])  # headers in any case, extra column
    ws.append(["1001", dt.date(2026, 1, 1), 10, "x"])
    ws.append(["1002", dt.date(2026, 1, 1), "oops", "y"])
    ws.add_table(Table(displayName="MRR", ref="A3:D5"))
    wb.save(tmp_path / "t.xlsx")
    data = read(tmp_path / "t.xlsx")
    [issue] = data.issues
    assert (issue.sheet, issue.row, issue.column) == ("My data", 5, "mrr")
    assert data.tables["MRR"]["mrr"].tolist()[0] == 10.0  # "oops" is kept as unknown
    assert data.tables["MRR"]["mrr"].isna().tolist() == [False, True]


class TestRefusals:
    def test_not_a_package(self, tmp_path):
        p = tmp_path / "x.xlsx"
        p.write_text("hello")
        with pytest.raises(SourceError, match="not an xlsx/xlsm workbook"):
            read(p)

    def test_zip_that_is_not_a_workbook(self, tmp_path):
        p = tmp_path / "x.xlsx"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("hello.txt", "hi")
        with pytest.raises(SourceError, match="not an xlsx/xlsm workbook"):
            read(p)

    def test_password_protected(self, tmp_path):
        # Encrypted OOXML is an OLE compound file: its signature is D0 CF 11 E0 A1 B1 1A E1.
        p = tmp_path / "secret.xlsx"
        p.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504)
        with pytest.raises(SourceError, match="password-protected"):
            read(p)

    def test_zip_bomb(self, tmp_path):
        p = tmp_path / "bomb.xlsx"
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("[Content_Types].xml", "<Types/>")
            z.writestr("xl/workbook.xml", "<workbook/>")
            z.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 << 20))  # 64 MiB of zeros
        with pytest.raises(SourceError, match="zip bomb"):
            read(p)

    def test_wrong_suffix_and_missing(self, tmp_path):
        with pytest.raises(SourceError, match="no such file"):
            read(tmp_path / "nope.xlsx")
        (tmp_path / "a.txt").write_text("x")
        with pytest.raises(SourceError, match=r"not an \.xlsx/\.xlsm"):
            read(tmp_path / "a.txt")

    def test_bad_override(self):
        with pytest.raises(ValueError, match="unknown setting"):
            read({}, {"granularty": "month"})


# --- cells as exports and people type them (issue 11.2) ------------------------------


def mrr_of(values, settings=None):
    """The mrr column as read from text cells (one customer-month per value)."""
    n = len(values)
    mrr = pd.DataFrame(
        {"customer_id": [str(i) for i in range(n)], "month": ["2026-01-01"] * n, "mrr": values}
    )
    return read({"MRR": mrr}, settings)


def test_numbers_typed_as_exports_write_them():
    data = mrr_of(
        [
            "1,200.50",  # thousands separator: 1200.5
            "$1,200.50",  # currency symbol: 1200.5
            " 12 ",  # surrounding spaces: 12
            "€ 3",  # 3
            "£4.25",  # 4.25
            "¥1,000",  # 1000
            "USD 1,200",  # currency code: 1200
            "1 200 EUR",  # space groups thousands, code after: 1200
            "1,234,567",  # 1234567
            "0.5",  # 0.5
        ]
    )
    assert data.tables["MRR"]["mrr"].tolist() == [
        1200.5, 1200.5, 12, 3, 4.25, 1000, 1200, 1200, 1234567, 0.5
    ]  # fmt: skip
    assert not data.issues


def test_accounting_negative_is_negative():
    # (1,200.50) is -1200.50: refused as negative money, like -1200.50.
    data = mrr_of(["(1,200.50)", "-1200.50", "10"])
    got = [(i.row, i.value, i.problem) for i in data.issues]
    assert got == [(2, "(1,200.50)", "is negative"), (3, "-1200.50", "is negative")]


def test_numbers_that_are_not_numbers():
    data = mrr_of(["1,2,3", "12abc", "1,5", "1.200,50", "10"])
    got = {i.value: i.problem for i in data.issues}
    assert got["1,2,3"] == "is not a number"
    assert got["12abc"] == "is not a number"
    # With the default decimal separator "." these look like the other convention: the
    # message says what they would be with decimal_separator ",".
    assert got["1,5"].endswith("(with the setting decimal_separator , it would be 1.5)")
    assert got["1.200,50"].endswith("it would be 1200.5)")
    # The unreadable rows stay as unknown MRR (NaN), for the engine to carry over rather
    # than read as no MRR (kpi-definitions: unknown is not zero).
    assert data.tables["MRR"]["mrr"].isna().tolist() == [True] * 4 + [False]
    assert data.tables["MRR"]["mrr"].iloc[-1] == 10.0


def test_decimal_separator_comma():
    values = ["1.200,50", "1 200,50 €", "12,5", "1.200", "7"]
    data = mrr_of(values, {"decimal_separator": ","})
    # 1200.50, 1200.50, 12.5, 1200 (a thousands separator now, not 1.2), 7
    assert data.tables["MRR"]["mrr"].tolist() == [1200.5, 1200.5, 12.5, 1200.0, 7.0]
    assert not data.issues
    # The setting's word forms (a lone comma is awkward in Settings.csv).
    assert read({}, {"decimal_separator": "comma"}).settings["decimal_separator"] == ","
    # A number stored as a number is a number whatever the setting.
    numbers = pd.DataFrame({"customer_id": ["a"], "month": ["2026-01-01"], "mrr": [1.5]})
    assert read({"MRR": numbers}, {"decimal_separator": ","}).tables["MRR"]["mrr"].tolist() == [1.5]


def test_excel_error_values_are_named():
    data = mrr_of(["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "5"])
    got = [(i.row, i.problem) for i in data.issues]
    assert got == [
        (2, "is the Excel error #N/A, not a value"),
        (3, "is the Excel error #DIV/0!, not a value"),
        (4, "is the Excel error #VALUE!, not a value"),
        (5, "is the Excel error #REF!, not a value"),
    ]
    # An unreadable MRR cell is unknown, not zero: the row stays and the action says
    # what the engine does with it (test_engine covers the carrying).
    assert all("MRR" in i.action for i in data.issues)
    customers = pd.DataFrame(
        {"customer_id": ["1", "#N/A"], "signup_date": ["#NAME?", "2026-01-01"]}
    )
    got = {(i.row, i.column, i.problem) for i in read({"Customers": customers}).issues}
    assert got == {
        (2, "signup_date", "is the Excel error #NAME?, not a value"),
        (3, "customer_id", "is the Excel error #N/A, not a value"),
    }


def signups(values, settings=None):
    customers = pd.DataFrame(
        {"customer_id": [str(i) for i in range(len(values))], "signup_date": values}
    )
    return read({"Customers": customers}, settings)


def dates_of(data):
    return [str(d.date()) for d in data.tables["Customers"]["signup_date"]]


def test_dates_as_people_type_them():
    data = signups(
        [
            "2026-03-15",  # ISO
            "2026-03-15T10:30:00",  # ISO with a time
            46096,  # Excel serial: 46096 days after 1899-12-30 is 2026-03-15
            "46096",  # the same serial as text
            "2026-03",  # a month: its first day
            "Mar 2026",
            "March 2026",
            "March 15, 2026",
            "15 Mar 2026",
            "15-Mar-26",  # Excel's d-mmm-yy
            "Sunday, March 15, 2026",
            "2026/03/15",
            "20260315",  # YYYYMMDD
            "15.03.2026",  # numeric, day first (15 > 12)
            "03/15/2026 10:30 AM",  # numeric with a time, month first (15 > 12)
        ],
        {"date_order": "auto"},
    )
    # The column holds both 15.03.2026 (day first) and 03/15/2026 (month first): each is
    # read as the only date it can be, and one issue says the column mixes orders.
    assert dates_of(data) == ["2026-03-15"] * 4 + ["2026-03-01"] * 3 + ["2026-03-15"] * 8
    [mixed] = data.issues
    assert mixed.row is None and "date_order" in mixed.action


def test_day_month_order_inferred_per_column():
    # 15/03/2026 can only be day first, so 03/04/2026 in the same column is 3 April.
    assert dates_of(signups(["15/03/2026", "03/04/2026"])) == ["2026-03-15", "2026-04-03"]
    # 03/15/2026 can only be month first, so 03/04/2026 is 4 March.
    assert dates_of(signups(["03/15/2026", "03/04/2026"])) == ["2026-03-15", "2026-03-04"]
    # Two-digit years follow Excel: 26 is 2026.
    assert dates_of(signups(["15/03/26", "03/04/26"])) == ["2026-03-15", "2026-04-03"]


def test_all_ambiguous_dates_give_one_issue_naming_the_setting():
    data = signups(["03/04/2026", "05/06/2026", "03/04/2026"])
    # No date shows the order: read month first (Excel's US order), one issue.
    assert dates_of(data) == ["2026-03-04", "2026-05-06", "2026-03-04"]
    [issue] = data.issues
    assert (issue.column, issue.row) == ("signup_date", None)
    assert "fit both" in issue.problem and "set date_order" in issue.action
    # The setting decides, and then there is nothing to report.
    data = signups(["03/04/2026", "05/06/2026"], {"date_order": "DMY"})
    assert dates_of(data) == ["2026-04-03", "2026-06-05"] and not data.issues


def test_ambiguous_column_takes_the_order_of_the_other_date_columns():
    customers = pd.DataFrame(
        {
            "customer_id": ["1", "2"],
            "signup_date": ["03/04/2025", "05/06/2025"],  # ambiguous on its own
            "churn_date": ["25/12/2025", None],  # day first
        }
    )
    data = read({"Customers": customers})
    assert [str(d.date()) for d in data.tables["Customers"]["signup_date"]] == [
        "2025-04-03",
        "2025-06-05",
    ]
    [issue] = data.issues
    assert "the other date columns" in issue.action


def test_date_order_setting_refuses_dates_that_do_not_fit():
    data = signups(["03/15/2026", "03/04/2026"], {"date_order": "DMY"})
    [issue] = data.issues
    assert (issue.row, issue.problem) == (
        2,
        "is not a date in DMY order (the date_order setting)",
    )
    assert dates_of(data) == ["2026-04-03"]
    assert dates_of(signups(["26/03/15"], {"date_order": "YMD"})) == ["2026-03-15"]


def test_a_year_in_a_date_column_is_not_a_date():
    data = signups([2024, "2024", 2024.0, "2026-01-05"])
    # Never 1905-07-16 (serial 2024): a whole number 1900..2100 is a year.
    assert [i.problem for i in data.issues] == ["looks like a year, not a date"] * 3
    assert dates_of(data) == ["2026-01-05"]


def test_no_such_day():
    data = signups(["31/02/2026", "15/03/2026"])
    [issue] = data.issues
    assert issue.problem == "is not a date (no such day)"


# --- headers as exports write them (issue 11.3) -------------------------------------


def test_headers_match_ignoring_case_spaces_underscores_and_hyphens():
    customers = pd.DataFrame(
        {"Customer ID": ["1", "2"], "SignupDate": ["2026-01-05", "2026-01-06"], "SEGMENT": "x"}
    )
    mrr = pd.DataFrame(
        {"customer-id": ["1"], "Month": ["2026-01-01"], " MRR ": ["$10"], "Notes": ["y"]}
    )
    data = read({"customers": customers, "mrr": mrr})
    assert data.tables["Customers"]["customer_id"].tolist() == ["1", "2"]
    assert data.tables["Customers"]["segment"].tolist() == ["x", "x"]
    assert data.tables["MRR"]["mrr"].tolist() == [10.0]
    assert not data.issues


def test_blank_and_duplicate_headers_on_a_plain_sheet(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "customers"  # a plain sheet (no Excel Table), its name in another case
    ws.append(["Customer ID", "Signup Date", None, "customer_id", None])
    ws.append(["1", "2026-01-05", "stray", "9", None])
    ws.append(["2", "2026-01-06", None, "8", None])
    wb.save(tmp_path / "b.xlsx")
    data = read(tmp_path / "b.xlsx")
    got = {(i.row, i.column, i.problem, i.action) for i in data.issues}
    second = "is a second customer_id column (the first is 'Customer ID')"
    assert got == {
        (1, "column C", "has values but no header", "ignored the column"),
        (1, "column D", second, "used the first"),
    }
    assert data.tables["Customers"]["customer_id"].tolist() == ["1", "2"]


def test_csv_file_names_in_any_case_and_a_missing_column_in_words(tmp_path):
    (tmp_path / "CUSTOMERS.CSV").write_text("Customer ID,Signup Date\n1,2026-01-05\n")
    (tmp_path / "mrr.csv").write_text("Customer ID,Amount\n1,10\n")
    data = read(tmp_path)
    assert data.tables["Customers"]["customer_id"].tolist() == ["1"]
    [issue] = data.issues
    assert issue.problem == (
        "the required columns month and mrr are missing (the columns are 'Customer ID', 'Amount')"
    )
    assert issue.action == "left out the MRR table" and data.tables["MRR"].empty


# --- outlier dates (issue 11.5) -----------------------------------------------------


def test_dates_far_outside_their_column_are_left_out():
    values = [f"2025-{m:02d}-10" for m in range(1, 13)] + ["2204-01-10", "9999-12-31", 2]
    data = signups(values)
    # Median 2025-07-10; the twelve real dates lie within half a year of it, so the
    # window is the ten-year floor. 2204, 9999 and serial 2 (1900-01-01) lie outside.
    far = [(i.row, i.action) for i in data.issues]
    assert far == [(14, "skipped the row"), (15, "skipped the row"), (16, "skipped the row")]
    assert "far outside the column's other dates (2025-01-10 to 2025-12-10)" in (
        data.issues[0].problem
    )
    assert len(data.tables["Customers"]) == 12


def test_customers_years_older_than_the_rest_stay():
    # Nine years before the median is inside the ten-year floor: a real old customer.
    values = ["2016-06-01"] + [f"2025-{m:02d}-01" for m in range(1, 13)]
    assert not signups(values).issues


def test_a_typo_year_does_not_make_thousands_of_periods():
    customers = pd.DataFrame(
        {"customer_id": ["1", "2", "3", "4"], "signup_date": ["2025-12-01"] * 4}
    )
    mrr = pd.DataFrame(
        {
            "customer_id": ["1", "2", "3", "4"],
            "month": ["2026-01-01", "2026-02-01", "2026-03-01", "2206-02-01"],
            "mrr": [10, 10, 10, 10],
        }
    )
    data = read({"Customers": customers, "MRR": mrr})
    [issue] = data.issues
    assert (issue.row, issue.column) == (5, "month")
    assert compute(data, breakdowns=False).periods == ["2026-01", "2026-02", "2026-03"]


# --- no source, no silence (issue 11.6) ---------------------------------------------


def test_a_folder_without_input_tables_is_refused_naming_the_files(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match=r"none of the input tables: looked for Customers\.csv"):
        read(tmp_path)


def test_a_workbook_without_input_tables_is_refused(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.active.append(["customer_id", "signup_date"])
    wb.save(tmp_path / "b.xlsx")
    with pytest.raises(SourceError, match=r"b\.xlsx has none of the input tables"):
        read(tmp_path / "b.xlsx")


# --- values as the user typed them (issue 11.7) --------------------------------------


def test_show_value():
    import numpy as np

    from cxkpi_xl.cells import show_value

    assert show_value(np.float64(11.0)) == "11"
    assert show_value(11.0) == "11" and show_value(np.int64(3)) == "3"
    assert show_value(1200.5) == "1200.5"
    assert show_value("ten") == "'ten'"
    assert show_value(pd.Timestamp("2026-03-15")) == "2026-03-15"
    assert show_value(None) == "(blank)"


# --- a stray far cell (issue 12.4) --------------------------------------------------

READ_IN_A_CHILD = """
import json, resource, sys
from cxkpi_xl.reader import read
data = read(sys.argv[1])
print(json.dumps({
    "customers": data.tables["Customers"]["customer_id"].tolist(),
    "mrr": data.tables["MRR"]["mrr"].tolist(),
    "issues": len(data.issues),
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def far_cell_book(path, cell, dimension=True):
    """Customers as an Excel Table and MRR as a plain sheet, each with one value at
    ``cell``; without ``dimension`` the sheets lose their <dimension> element (as some
    writers leave it out), so the reader must find the far cell itself."""
    import openpyxl
    from openpyxl.worksheet.table import Table

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["customer_id", "signup_date"])
    for i in range(1, 4):
        ws.append([str(i), dt.date(2026, 1, i)])
    ws.add_table(Table(displayName="Customers", ref="A1:B4"))
    ws[cell] = "stray"
    mrr = wb.create_sheet("MRR")
    mrr.append(["Customer ID", "Month", "MRR"])
    for i in range(1, 4):
        mrr.append([str(i), dt.date(2026, 1, 1), 10 * i])
    mrr[cell] = 1
    wb.save(path)
    if not dimension:
        import re

        src = zipfile.ZipFile(path)
        out = path.with_name("nodim.xlsx")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for info in src.infolist():
                data = src.read(info)
                if info.filename.startswith("xl/worksheets/sheet"):
                    data = re.sub(rb"<dimension [^>]*/>", b"", data)
                z.writestr(info, data)
        return out
    return path


@pytest.mark.parametrize(
    ("cell", "dimension"), [("XFD100000", True), ("XFD3000", True), ("XFD100000", False)]
)
def test_a_stray_far_cell_neither_aborts_nor_costs_memory(tmp_path, cell, dimension):
    import json
    import subprocess
    import sys

    book = far_cell_book(tmp_path / "far.xlsx", cell, dimension)
    # In a child process: calamine's abort (SIGABRT) on the 100000 x 16384 grid would
    # kill pytest itself; here it fails the test.
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_A_CHILD, str(book)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["customers"] == ["1", "2", "3"] and out["mrr"] == [10.0, 20.0, 30.0]
    assert out["issues"] == 0
    # The 3000 x 16384 grid alone takes 1.5 GB in calamine; the data takes nothing.
    assert out["peak_mb"] < 600


def test_excel_error_cells_in_a_workbook_are_named_not_blank(tmp_path):
    import openpyxl
    from openpyxl.worksheet.table import Table

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["customer_id", "signup_date", "churn_date"])
    ws.append(["1", dt.date(2026, 1, 5), "#N/A"])  # openpyxl stores "#N/A" as an error cell
    ws.append(["2", "#REF!", None])
    ws.append(["3", dt.date(2026, 1, 7), None])
    ws.add_table(Table(displayName="Customers", ref="A1:C4"))
    mrr = wb.create_sheet("MRR")  # a plain sheet, data from B2
    mrr["B2"], mrr["C2"], mrr["D2"] = "customer_id", "month", "mrr"
    mrr.append([None, "1", dt.date(2026, 1, 1), "#DIV/0!"])
    mrr.append([None, "3", dt.date(2026, 1, 1), 30])
    wb.save(tmp_path / "b.xlsx")
    assert openpyxl.load_workbook(tmp_path / "b.xlsx")["MRR"]["D3"].data_type == "e"
    data = read(tmp_path / "b.xlsx")
    got = {(i.sheet, i.row, i.column, i.problem, i.action) for i in data.issues}
    assert got == {
        ("Customers", 2, "churn_date", "is the Excel error #N/A, not a value", "used a blank"),
        ("Customers", 3, "signup_date", "is the Excel error #REF!, not a value", "skipped the row"),
        # customer 1 has no other MRR month to take the unknown amount from
        ("MRR", 3, "mrr", "is the Excel error #DIV/0!, not a value",
         "counted no MRR for 2026-01 (no month next to it to take it from)"),
    }  # fmt: skip
    assert data.tables["MRR"]["mrr"].fillna(-1).tolist() == [-1, 30.0]


def test_csv_from_excel_on_windows_semicolons_and_windows_1252(tmp_path):
    # Excel's plain "CSV" where the decimal separator is a comma: ";" between fields,
    # Windows-1252 text (é is the byte E9, not UTF-8).
    (tmp_path / "Customers.csv").write_bytes(
        "Customer ID;Customer Name;Signup Date\n1;Café Müller;15.03.2026\n".encode("cp1252")
    )
    data = read(tmp_path)
    customers = data.tables["Customers"]
    assert customers["customer_name"].tolist() == ["Café Müller"]
    assert str(customers["signup_date"].iat[0].date()) == "2026-03-15"
    assert not data.issues


def test_a_setting_named_as_a_whole_column_is_an_issue(tmp_path):
    path = write_tables(tmp_path / "b.xlsx", {"Customers": CUSTOMERS}, {"csat_scale": 10})
    import openpyxl
    from openpyxl.workbook.defined_name import DefinedName

    wb = openpyxl.load_workbook(path)
    del wb.defined_names["csat_scale"]
    wb.defined_names["csat_scale"] = DefinedName("csat_scale", attr_text="Settings!$B:$B")
    wb.save(path)
    data = read(path)
    [issue] = data.issues
    assert issue.problem == "the name csat_scale refers to Settings!$B:$B, not to one cell"
    assert data.settings["csat_scale"] == 5  # the default
