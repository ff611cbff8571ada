"""A real-shaped data set built by hand: 30 customers over 2026-01..2026-06 as exports
write them, for the acceptance test of issue 11 (tests/test_real_shaped.py).

Exports differ from test data: headers such as `Customer ID` and `Signup Date`, months
written `Jan 2026`, day-first dates `15/03/2026` in one file and ISO dates in another,
amounts typed `1,200.50`, `$2,000` or ` 60 `, an error cell `#N/A`, and survey answers
that are out of scale, not whole, words or blank. Customers 1001..1024 signed up in 2025,
before the first month with MRR data, and pay in January.

Every cell is kept here twice: as typed (what the files hold) and as meant (what the
acceptance test computes from), so the expected KPIs never come from a parser.

MRR by customer and month (`-` no row, `0` a row holding 0; typed cells in quotes):

    id    signup      churn       Jan    Feb    Mar         Apr    May      Jun
    1001  2025-02-03              100    100    100         100    100      100
    1002  2025-02-17              100    100    150         150    150      150    Mar +50
    1003  2025-03-05              200    200    200         150    150      150    Apr -50
    1004  2025-03-21               90     90     90          90     90      120    Jun +30
    1005  2025-04-09  2026-02-17  300     -      -           -      -        -     Feb churn
    1006  2025-04-28              250    250    250         250    250      250
    1007  2025-05-06             1000   1000  "1,200.50"  1200.5 1200.5   1200.5   Mar +200.5
    1008  2025-05-19               80     80     80          80     80       80
    1009  2025-06-02             1800   1800   1800        1800  "$2,000"  2000    May +200
    1010  2025-06-23              500    500  "#N/A"        500    500      500    Mar unknown
    1011  2025-07-07              400    400    400         400    400      250    Jun -150
    1012  2025-07-30              150    150    150         150     0        0     May churn
    1013  2025-08-11               60     60  " 60 "         60     60       60
    1014  2025-08-25              120    120    120         180    180      180    Apr +60
    1015  2025-09-01               75     75     75          75     75       75
    1016  2025-09-16              300    300    250         250    250      250    Mar -50
    1017  2025-10-04               95     95     95          95     95       95
    1018  2025-10-20              220    220    220         220    220       -     Jun churn
    1019  2025-11-08              130    130    130         130    130      130
    1020  2025-11-24              500    500    500         500    500      650    Jun +150
    1021  2025-12-02               45     45     45          45     45       45
    1022  2025-12-15              600    600    600         600    450      450    May -150
    1023  2025-12-29              110    110    110         110    110      110
    1024  2025-12-31              170    170    170         170    170      170
    1025  2026-01-14              200    200     -           -     250      250    Mar out, May back
    1026  2026-02-03               -     150    150         150    150      150    Feb new
    1027  2026-03-10  2026-05-22   -      -     300         300     -        -     Mar new, May out
    1028  2026-04-08               -      -      -          400    400      400    Apr new
    1029  2026-05-19               -      -      -           -      90       90    May new
    1030  2026-06-12               -      -      -           -      -       350    Jun new

Churn happens both ways: by `churn_date` in Customers (1005, 1027; their MRR rows stop in
the same month) and by MRR alone (1012 to 0, 1018 and 1025 rows missing). 1025 comes back
in May: the one reactivation. 1010's March cell is the error `#N/A`: unknown, not zero.
Several signup dates are ambiguous as day/month (03/02/2026 is 3 February only because
the column also holds 17/02/2025, 28/04/2025, ...).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
MONTH_TYPED = {m: dt.date(2026, i + 1, 1).strftime("%b %Y") for i, m in enumerate(MONTHS)}
UNREADABLE = "#N/A"  # an Excel error value: what a VLOOKUP that found nothing leaves behind
# Cells typed as text, with what the user meant.
TYPED_AMOUNTS = {"1,200.50": 1200.5, "$2,000": 2000.0, " 60 ": 60.0}

_D = dt.date
# customer_id: (signup_date, churn_date, segment)
CUSTOMERS: dict[int, tuple[dt.date, dt.date | None, str]] = {
    1001: (_D(2025, 2, 3), None, "SMB"),
    1002: (_D(2025, 2, 17), None, "SMB"),
    1003: (_D(2025, 3, 5), None, "Mid-market"),
    1004: (_D(2025, 3, 21), None, "SMB"),
    1005: (_D(2025, 4, 9), _D(2026, 2, 17), "Mid-market"),
    1006: (_D(2025, 4, 28), None, "SMB"),
    1007: (_D(2025, 5, 6), None, "Enterprise"),
    1008: (_D(2025, 5, 19), None, "SMB"),
    1009: (_D(2025, 6, 2), None, "Enterprise"),
    1010: (_D(2025, 6, 23), None, "Mid-market"),
    1011: (_D(2025, 7, 7), None, "Mid-market"),
    1012: (_D(2025, 7, 30), None, "SMB"),
    1013: (_D(2025, 8, 11), None, "SMB"),
    1014: (_D(2025, 8, 25), None, "SMB"),
    1015: (_D(2025, 9, 1), None, "SMB"),
    1016: (_D(2025, 9, 16), None, "Mid-market"),
    1017: (_D(2025, 10, 4), None, "SMB"),
    1018: (_D(2025, 10, 20), None, "Mid-market"),
    1019: (_D(2025, 11, 8), None, "SMB"),
    1020: (_D(2025, 11, 24), None, "Mid-market"),
    1021: (_D(2025, 12, 2), None, "SMB"),
    1022: (_D(2025, 12, 15), None, "Enterprise"),
    1023: (_D(2025, 12, 29), None, "SMB"),
    1024: (_D(2025, 12, 31), None, "SMB"),
    1025: (_D(2026, 1, 14), None, "Mid-market"),
    1026: (_D(2026, 2, 3), None, "SMB"),
    1027: (_D(2026, 3, 10), _D(2026, 5, 22), "Mid-market"),
    1028: (_D(2026, 4, 8), None, "Enterprise"),
    1029: (_D(2026, 5, 19), None, "SMB"),
    1030: (_D(2026, 6, 12), None, "Mid-market"),
}

_ = None
# customer_id: MRR Jan..Jun as typed; None is no row.
MRR: dict[int, list[float | str | None]] = {
    1001: [100, 100, 100, 100, 100, 100],
    1002: [100, 100, 150, 150, 150, 150],
    1003: [200, 200, 200, 150, 150, 150],
    1004: [90, 90, 90, 90, 90, 120],
    1005: [300, _, _, _, _, _],
    1006: [250, 250, 250, 250, 250, 250],
    1007: [1000, 1000, "1,200.50", 1200.5, 1200.5, 1200.5],
    1008: [80, 80, 80, 80, 80, 80],
    1009: [1800, 1800, 1800, 1800, "$2,000", 2000],
    1010: [500, 500, UNREADABLE, 500, 500, 500],
    1011: [400, 400, 400, 400, 400, 250],
    1012: [150, 150, 150, 150, 0, 0],
    1013: [60, 60, " 60 ", 60, 60, 60],
    1014: [120, 120, 120, 180, 180, 180],
    1015: [75, 75, 75, 75, 75, 75],
    1016: [300, 300, 250, 250, 250, 250],
    1017: [95, 95, 95, 95, 95, 95],
    1018: [220, 220, 220, 220, 220, _],
    1019: [130, 130, 130, 130, 130, 130],
    1020: [500, 500, 500, 500, 500, 650],
    1021: [45, 45, 45, 45, 45, 45],
    1022: [600, 600, 600, 600, 450, 450],
    1023: [110, 110, 110, 110, 110, 110],
    1024: [170, 170, 170, 170, 170, 170],
    1025: [200, 200, _, _, 250, 250],
    1026: [_, 150, 150, 150, 150, 150],
    1027: [_, _, 300, 300, _, _],
    1028: [_, _, _, 400, 400, 400],
    1029: [_, _, _, _, 90, 90],
    1030: [_, _, _, _, _, 350],
}  # fmt: skip

# (response_id, customer_id, response_date, survey, score as typed); "" is a blank cell.
# Dirty rows: NPS "11" (outside 0..10), "7.5" (not whole), "ten" (text), "" (blank) and
# CSAT "6" (outside 1..5).
SURVEYS: list[tuple[str, int, dt.date, str, str]] = [
    ("R001", 1001, _D(2026, 1, 8), "NPS", "10"),
    ("R002", 1002, _D(2026, 1, 12), "NPS", "9"),
    ("R003", 1003, _D(2026, 1, 15), "NPS", "7"),
    ("R004", 1006, _D(2026, 1, 20), "NPS", "3"),
    ("R005", 1008, _D(2026, 1, 22), "NPS", "10"),
    ("R006", 1010, _D(2026, 1, 27), "NPS", "8"),
    ("R007", 1005, _D(2026, 1, 9), "CSAT", "5"),
    ("R008", 1007, _D(2026, 1, 16), "CSAT", "4"),
    ("R009", 1012, _D(2026, 1, 29), "CSAT", "2"),
    ("R010", 1011, _D(2026, 2, 3), "NPS", "9"),
    ("R011", 1013, _D(2026, 2, 10), "NPS", "6"),
    ("R012", 1014, _D(2026, 2, 14), "NPS", "10"),
    ("R013", 1015, _D(2026, 2, 18), "NPS", "11"),
    ("R014", 1017, _D(2026, 2, 25), "NPS", "8"),
    ("R015", 1009, _D(2026, 2, 5), "CSAT", "3"),
    ("R016", 1016, _D(2026, 2, 19), "CSAT", "5"),
    ("R017", 1019, _D(2026, 3, 2), "NPS", "10"),
    ("R018", 1020, _D(2026, 3, 6), "NPS", "7.5"),
    ("R019", 1021, _D(2026, 3, 11), "NPS", "5"),
    ("R020", 1022, _D(2026, 3, 17), "NPS", "9"),
    ("R021", 1023, _D(2026, 3, 23), "NPS", "0"),
    ("R022", 1026, _D(2026, 3, 30), "NPS", "7"),
    ("R023", 1018, _D(2026, 3, 4), "CSAT", "4"),
    ("R024", 1024, _D(2026, 3, 13), "CSAT", "6"),
    ("R025", 1003, _D(2026, 3, 26), "CSAT", "5"),
    ("R026", 1024, _D(2026, 4, 1), "NPS", "10"),
    ("R027", 1001, _D(2026, 4, 9), "NPS", "9"),
    ("R028", 1002, _D(2026, 4, 14), "NPS", "ten"),
    ("R029", 1004, _D(2026, 4, 21), "NPS", "8"),
    ("R030", 1007, _D(2026, 4, 28), "NPS", "4"),
    ("R031", 1010, _D(2026, 4, 7), "CSAT", "1"),
    ("R032", 1011, _D(2026, 4, 16), "CSAT", "4"),
    ("R033", 1008, _D(2026, 5, 4), "NPS", "9"),
    ("R034", 1009, _D(2026, 5, 8), "NPS", ""),
    ("R035", 1012, _D(2026, 5, 12), "NPS", "2"),
    ("R036", 1016, _D(2026, 5, 19), "NPS", "10"),
    ("R037", 1028, _D(2026, 5, 25), "NPS", "10"),
    ("R038", 1018, _D(2026, 5, 29), "NPS", "7"),
    ("R039", 1013, _D(2026, 5, 6), "CSAT", "5"),
    ("R040", 1019, _D(2026, 5, 13), "CSAT", "4"),
    ("R041", 1021, _D(2026, 5, 27), "CSAT", "3"),
    ("R042", 1020, _D(2026, 6, 2), "NPS", "9"),
    ("R043", 1022, _D(2026, 6, 5), "NPS", "6"),
    ("R044", 1025, _D(2026, 6, 9), "NPS", "10"),
    ("R045", 1029, _D(2026, 6, 15), "NPS", "8"),
    ("R046", 1030, _D(2026, 6, 19), "NPS", "9"),
    ("R047", 1003, _D(2026, 6, 24), "NPS", "1"),
    ("R048", 1006, _D(2026, 6, 30), "NPS", "10"),
    ("R049", 1023, _D(2026, 6, 10), "CSAT", "2"),
    ("R050", 1024, _D(2026, 6, 22), "CSAT", "5"),
]

CUSTOMER_HEADER = ["Customer ID", "Customer Name", "Segment", "Signup Date", "Churn Date"]
MRR_HEADER = ["Customer ID", "Month", "MRR"]
SURVEY_HEADER = ["Response ID", "Customer ID", "Response Date", "Survey", "Score"]


def mrr_rows() -> list[tuple[int, str, float | str]]:
    """The MRR export's rows in file order (month by month, as billing exports list them):
    (customer_id, month "2026-01", MRR as typed). Row i is on spreadsheet row i + 2."""
    return [
        (cid, month, cells[i])
        for i, month in enumerate(MONTHS)
        for cid, cells in MRR.items()
        if cells[i] is not None
    ]


def write_csv(folder: Path, exported: bool = True) -> Path:
    """Customers.csv with day-first dates (15/03/2026), MRR.csv with `Jan 2026` months and
    typed amounts, Surveys.csv with ISO dates, all with export headers.

    With `exported=False`, the same rows in the schema's own form (its column names, ISO
    dates, amounts as meant): what the reader's fixes are not needed for, so the engine
    can be judged on its own. The `#N/A` and the dirty survey answers stay."""
    folder.mkdir(parents=True, exist_ok=True)

    def day(d: dt.date | None) -> str:
        if d is None:
            return ""
        return d.strftime("%d/%m/%Y") if exported else d.isoformat()

    def header(names: list[str]) -> list[str]:
        return names if exported else [n.lower().replace(" ", "_") for n in names]

    def amount(typed: float | str) -> float | str:
        return typed if exported else TYPED_AMOUNTS.get(str(typed), typed)

    with open(folder / "Customers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header(CUSTOMER_HEADER))
        for cid, (signup, churn, segment) in CUSTOMERS.items():
            w.writerow([cid, f"Customer {cid}", segment, day(signup), day(churn)])
    with open(folder / "MRR.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header(MRR_HEADER))
        for cid, month, typed in mrr_rows():
            w.writerow([cid, MONTH_TYPED[month] if exported else f"{month}-01", amount(typed)])
    with open(folder / "Surveys.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header(SURVEY_HEADER))
        for rid, cid, d, survey, score in SURVEYS:
            w.writerow([rid, cid, d.isoformat(), survey, score])
    return folder


def _as_excel_stores(typed: str) -> float | int | str | None:
    """A typed score as Excel keeps it: numbers as numbers, words as text, blank empty."""
    if typed == "":
        return None
    try:
        number = float(typed)
    except ValueError:
        return typed
    return int(number) if number.is_integer() else number


def write_xlsx(path: Path) -> Path:
    """The same tables as plain sheets (header row 1), the way Excel stores what was typed:
    dates and months as date cells, numbers and IDs as numbers, `ten` as text, the
    `#N/A` as an error cell, and the two amounts that came in from an export as text
    (`1,200.50`, `$2,000`) as text; the ` 60 ` typed with spaces Excel stores as 60."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    ws = wb.create_sheet("Customers")
    ws.append(CUSTOMER_HEADER)
    for cid, (signup, churn, segment) in CUSTOMERS.items():
        ws.append([cid, f"Customer {cid}", segment, signup, churn])
    for row in ws.iter_rows(min_row=2, min_col=4, max_col=5):
        for cell in row:
            cell.number_format = "dd/mm/yyyy"

    ws = wb.create_sheet("MRR")
    ws.append(MRR_HEADER)
    for cid, month, typed in mrr_rows():
        if typed == " 60 ":
            typed = 60
        year, mon = map(int, month.split("-"))
        ws.append([cid, dt.date(year, mon, 1), typed])
        ws.cell(ws.max_row, 2).number_format = "mmm yyyy"
        if typed == UNREADABLE:
            assert ws.cell(ws.max_row, 3).data_type == "e"  # an error cell, not text

    ws = wb.create_sheet("Surveys")
    ws.append(SURVEY_HEADER)
    for rid, cid, day, survey, score in SURVEYS:
        ws.append([rid, cid, day, survey, _as_excel_stores(score)])
        ws.cell(ws.max_row, 3).number_format = "yyyy-mm-dd"
    wb.save(path)
    return path
