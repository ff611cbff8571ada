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
    [issue] = issues_of(data, "required column missing")
    assert (issue.sheet, issue.row, issue.column) == ("MRR", 1, "mrr")
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
