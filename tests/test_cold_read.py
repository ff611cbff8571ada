"""The cold read of a workbook: tables parsed in parallel threads with the garbage
collector paused, and the column-at-a-time fast paths of normalising, give exactly what
reading one table after another and one value at a time gives."""

from __future__ import annotations

import datetime as dt
import gc
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxkpi_xl.data.reader as reader
from cxkpi_xl.data import parallel_read
from cxkpi_xl.data.parallel_read import gc_paused, read_threads, run_all
from cxkpi_xl.reader import SourceError, read
from cxkpi_xl.sample import generate

from .workbooks import write_tables


def messy_book(path: Path) -> Path:
    """A sample workbook with what makes reading hard: Excel error cells, text numbers,
    dates typed as text, blank rows inside and at the end of a Table, a table on a plain
    sheet (no Excel Table) whose data start at B2."""
    import openpyxl
    from openpyxl.worksheet.table import Table

    tables = {k: v for k, v in generate("tiny", seed=3).items() if k != "HealthWeights"}
    funnel = tables.pop("Funnel")
    write_tables(path, tables)
    wb = openpyxl.load_workbook(path)
    ws = wb["MRR"]
    ws["C3"] = "#DIV/0!"  # openpyxl writes a string starting with # as an error cell
    ws["C4"] = "1,200.50"
    ws["C5"] = "(35.00)"
    ws["B6"] = "2025-03"
    ws["B7"] = "15/03/2025"
    for cell in ws[9]:  # a blank row inside the Table
        cell.value = None
    ws = wb["Customers"]
    ws["A3"] = "#N/A"
    ws["E4"] = "#REF!"
    ws["A5"] = " 1001.0 "
    ws["E5"] = "2025-01-15"
    ws = wb["Orders"]
    ws["D2"] = "$1,200.50"
    ws["D3"] = "ten"
    for cell in ws[ws.max_row]:  # the Table's last row left blank
        cell.value = None
    ws = wb["Surveys"]
    ws["E2"] = "9"
    ws["D3"] = "#VALUE!"
    ws = wb.create_sheet("Funnel")  # a plain sheet, data from B2
    ws.cell(2, 2, "month")
    ws.cell(2, 3, "visitors")
    ws.cell(2, 4, "conversions")
    for i, row in enumerate(funnel.itertuples(index=False), 3):
        ws.cell(i, 2, row.month.to_pydatetime())
        ws.cell(i, 3, int(row.visitors) if i != 4 else "#N/A")
        ws.cell(i, 4, str(int(row.conversions)) if i == 5 else int(row.conversions))
    assert "Funnel" not in {t for s in wb.worksheets for t in s.tables}
    wb["Usage"].tables["Usage"].ref  # noqa: B018 (the Usage Table is there)
    assert isinstance(wb["Usage"].tables["Usage"], Table)
    wb.save(path)
    assert openpyxl.load_workbook(path)["MRR"]["C3"].data_type == "e"
    return path


def read_with(book: Path, threads: int, monkeypatch: pytest.MonkeyPatch) -> reader.Dataset:
    monkeypatch.setenv(parallel_read.READ_THREADS, str(threads))
    return read(book)


def test_reading_in_threads_gives_what_reading_one_table_after_another_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    book = messy_book(tmp_path / "messy.xlsx")
    one = read_with(book, 1, monkeypatch)
    frames_in: set[int] = set()
    make_frame = reader._frame_from_rows

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        frames_in.add(threading.get_ident())
        return make_frame(*args, **kwargs)

    monkeypatch.setattr(reader, "_frame_from_rows", spy)
    two = read_with(book, 2, monkeypatch)
    assert frames_in and threading.get_ident() not in frames_in  # built in the pool
    assert list(one.tables) == list(two.tables)
    for name in one.tables:
        pd.testing.assert_frame_equal(one.tables[name], two.tables[name], check_exact=True)
    assert one.issues == two.issues
    assert one.settings.values == two.settings.values and one.absent == two.absent
    # The book is as messy as it should be: each kind of trouble is read, not lost.
    problems = {(i.sheet, i.row, i.column, i.problem) for i in two.issues}
    assert ("MRR", 3, "mrr", "is the Excel error #DIV/0!, not a value") in problems
    assert ("Customers", 3, "customer_id", "is the Excel error #N/A, not a value") in problems
    assert ("Customers", 4, "signup_date", "is the Excel error #REF!, not a value") in problems
    assert ("Orders", 3, "amount", "is not a number") in problems
    assert ("Funnel", 4, "visitors", "is the Excel error #N/A, not a value") in problems
    mrr = two.tables["MRR"].set_index(reader.ROW)["mrr"]
    assert mrr[4] == 1200.5 and np.isnan(mrr[3]) and 9 not in mrr.index
    assert two.tables["MRR"].set_index(reader.ROW)["month"][7] == pd.Timestamp("2025-03-01")
    assert "1001" in set(two.tables["Customers"]["customer_id"])
    assert two.tables["Orders"].set_index(reader.ROW)["amount"][2] == 1200.5
    funnel = two.tables["Funnel"].set_index(reader.ROW)  # row 4 (visitors #N/A) left out
    assert list(funnel.index[:2]) == [3, 5] and funnel["conversions"].dtype.kind == "f"


def test_a_read_that_raises_in_a_thread_turns_the_garbage_collector_on_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    book = messy_book(tmp_path / "messy.xlsx")
    make_frame = reader._frame_from_rows
    seen: list[bool] = []

    def broken(rows, header):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        if header and header[0] == "ticket_id":
            raise RuntimeError("calamine fell over")
        return make_frame(rows, header)

    monkeypatch.setattr(reader, "_frame_from_rows", broken)
    monkeypatch.setenv(parallel_read.READ_THREADS, "2")
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="calamine fell over"):
        read(book)
    assert seen and not any(seen)  # off while the tables were built
    assert gc.isenabled()  # and on again after
    gc.disable()  # a caller that had it off keeps it off
    try:
        with pytest.raises(RuntimeError):
            read(book)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_first_table_in_order_that_fails_is_the_error_whatever_thread_ran_it():
    def fails(message: str):  # type: ignore[no-untyped-def]
        def job() -> int:
            raise ValueError(message)

        return job

    jobs = [lambda: 1, fails("second"), lambda: 3, fails("fourth")]
    # the largest (by size) runs first, yet the error is the one of the earlier table
    with pytest.raises(ValueError, match="second"):
        run_all(jobs, 2, [1, 1, 1, 100])
    assert run_all([lambda: 1, lambda: 2, lambda: 3], 2, [1, 9, 5]) == [1, 2, 3]
    assert run_all([lambda: 1, lambda: 2], 1, [1, 2]) == [1, 2]


def test_overlapping_pauses_turn_the_collector_on_once_the_last_ends():
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("3", 3), (" 2 ", 2), ("0", None), ("two", None), ("", None)]
)
def test_read_threads_comes_from_the_environment_when_it_is_a_count(
    value: str, expected: int | None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(parallel_read.READ_THREADS, value)
    monkeypatch.setattr(parallel_read.os, "cpu_count", lambda: 8)
    assert read_threads() == (expected or parallel_read.MAX_THREADS)
    monkeypatch.setattr(parallel_read.os, "cpu_count", lambda: 1)
    assert read_threads() == (expected or 1)


TEXTS = [
    "1001",
    " 1001.0 ",
    "1001.0",
    "abc.0",
    ".0",
    "12.50",
    "",
    "   ",
    "\u00a0",
    "#N/A",
    " #n/a ",
    "#DIV/0!",
    "#hashtag",
    "  padded  ",
    "Café",
]


@pytest.mark.parametrize("convert", [reader._to_id, reader._to_text])
def test_text_columns_normalised_a_column_at_a_time_equal_one_value_at_a_time(convert):  # type: ignore[no-untyped-def]
    raw = pd.Series([*TEXTS, None, *reversed(TEXTS)], dtype="str")
    fast = reader._normalise_by_unique(raw, convert)
    slow = reader._normalise_by_unique(raw, lambda v: convert(v))  # not the fast path
    assert fast[0] == slow[0] and fast[1] == slow[1]
    assert fast[2].tolist() == slow[2].tolist()
    values = dict(zip(TEXTS, fast[0], strict=False))
    assert values[" 1001.0 "] == ("1001" if convert is reader._to_id else "1001.0")
    assert values["abc.0"] == "abc.0" and values["#hashtag"] == "#hashtag"
    assert values[" #n/a "] == "#n/a"  # an error value starts with # as Excel shows it
    assert fast[1] == {
        9: "is the Excel error #N/A, not a value",
        11: "is the Excel error #DIV/0!, not a value",
    }
    assert (fast[2] == -1).sum() == 2 * 3 + 1  # "", "   ", nbsp twice, and None
    mixed = pd.Series(["1", 2.0, " 3 "], dtype=object)  # not all text: one at a time
    assert reader._normalise_by_unique(mixed, convert)[0] == ["1", "2", "3"]


def test_blank_rows_are_dropped_wherever_they_are():
    frame = pd.DataFrame(
        {
            "a": ["x", None, "", np.nan, "y", None],
            "b": [1.0, np.nan, np.nan, 2.0, np.nan, np.nan],
            "c": pd.Series([None, None, "", None, None, ""], dtype=object),
            "d": pd.to_datetime([None, None, None, None, None, "2026-01-01"]),
        }
    )
    rows = np.arange(2, 8)
    kept, kept_rows = reader._drop_blank_rows(frame, rows)
    assert kept_rows.tolist() == [2, 5, 6, 7]
    assert kept["a"].tolist()[0] == "x" and kept["b"].tolist()[1] == 2.0
    assert kept.index.tolist() == [0, 1, 2, 3]
    full = frame.iloc[[0, 3]].reset_index(drop=True)
    same, same_rows = reader._drop_blank_rows(full, np.array([2, 5]))
    assert same is full and same_rows.tolist() == [2, 5]


def test_a_workbook_that_is_not_one_is_still_one_line(tmp_path: Path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="not a zip package"):
        read(bad)
    assert gc.isenabled()


def test_dates_as_python_dates_are_read_as_before(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    tables = {
        "Customers": pd.DataFrame(
            {"customer_id": ["1", "2"], "signup_date": [dt.datetime(2026, 1, 5), "2026-01-06"]}
        )
    }
    book = write_tables(tmp_path / "d.xlsx", tables)
    one, two = read_with(book, 1, monkeypatch), read_with(book, 2, monkeypatch)
    dates = two.tables["Customers"]["signup_date"].tolist()
    assert dates == [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-06")]
    pd.testing.assert_frame_equal(one.tables["Customers"], two.tables["Customers"])


def sheet_without_dimension(path: Path, refs: list[str], errors: dict[str, str]) -> Path:
    """A package holding one sheet part whose cells are at ``refs`` (no <dimension>),
    with the error cells ``errors`` (ref -> error) among them."""
    import re
    import zipfile

    def row_of(ref: str) -> int:
        return int(re.sub(r"[A-Z]", "", ref))

    rows: dict[int, list[str]] = {}
    for ref in refs:
        cell = (
            f'<c r="{ref}" t="e"><v>{errors[ref]}</v></c>'
            if ref in errors
            else f'<c r="{ref}"><v>1</v></c>'
        )
        rows.setdefault(row_of(ref), []).append(cell)
    body = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(rows.items()))
    xml = f"<worksheet><sheetData>{body}</sheetData></worksheet>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", xml)
    return path


@pytest.mark.parametrize(
    ("refs", "width"),
    [
        (["A1", "C5"], 26),
        (["A1", "AB2", "C5"], 702),
        (["A1", "AB2", "XFD3", "C5"], 16384),
        (["A1", "XFD2", "AB3", "C5"], 16384),
        (["ZZ1", "A7"], 702),
        (["AAA1", "A7"], 16384),
    ],
)
def test_the_scan_bounds_a_grid_without_dimension_by_its_widest_reference(
    tmp_path: Path, refs: list[str], width: int
):
    import zipfile

    errors = {refs[-1]: "#N/A"}
    book = sheet_without_dimension(tmp_path / "s.xlsx", refs, errors)
    with zipfile.ZipFile(book) as z:
        scan = reader._scan_sheet(z, "xl/worksheets/sheet1.xml")
    last_row = max(int("".join(ch for ch in r if ch.isdigit())) for r in refs)
    assert scan.cells == last_row * width
    ((ref, error),) = errors.items()
    assert scan.errors == {reader.cell_index(ref): error}


def test_dates_made_once_per_distinct_value_equal_dates_made_per_row():
    from cxkpi_xl.data.cells import parse_date
    from cxkpi_xl.data.schema import TABLES_BY_NAME, Settings

    signup = [
        "2026-01-05",
        dt.datetime(2026, 1, 5),
        46000,
        "15/03/2026",
        None,
        "2026-01-05",
        pd.Timestamp("2026-02-01").as_unit("ns"),
        "  ",
        46000.0,
    ]
    raw = pd.DataFrame({"customer_id": [str(i) for i in range(len(signup))], "signup_date": signup})
    rows = np.arange(2, 2 + len(signup))
    issues: list = []
    got = reader._normalise_table(
        TABLES_BY_NAME["Customers"], "Customers", raw, rows, issues, Settings()
    )
    kept = [i for i, v in enumerate(signup) if v is not None and str(v).strip()]
    per_row = pd.to_datetime(
        pd.Series([parse_date(signup[i], "DMY") for i in kept]), errors="coerce"
    )
    assert got[reader.ROW].tolist() == [int(rows[i]) for i in kept]
    pd.testing.assert_series_equal(got["signup_date"], per_row, check_names=False)
    months = pd.DataFrame(
        {
            "customer_id": ["1", "1", "2", "2"],
            "month": ["2026-01-15", dt.datetime(2026, 2, 3), "Mar 2026", None],
            "mrr": [1.0, 2.0, 3.0, 4.0],
        }
    )
    got = reader._normalise_table(
        TABLES_BY_NAME["MRR"], "MRR", months, np.arange(2, 6), issues, Settings()
    )
    per_row = pd.to_datetime(
        pd.Series([parse_date(v) for v in months["month"][:3]]), errors="coerce"
    )
    expected = per_row.dt.to_period("M").dt.to_timestamp()
    pd.testing.assert_series_equal(got["month"], expected, check_names=False)
    assert got["month"].dt.day.tolist() == [1, 1, 1]


def test_the_book_pool_lends_each_workbook_to_one_thread_at_a_time_and_closes_its_own():
    from cxkpi_xl.data.parallel_read import BookPool

    class Book:
        def __init__(self, name: str):
            self.name, self.closed = name, False

        def close(self) -> None:
            self.closed = True

    first = Book("first")
    made: list[Book] = []

    def open_book() -> Book:
        made.append(Book(f"extra{len(made)}"))
        return made[-1]

    pool = BookPool(first, open_book)
    with pool.book() as a:
        with pool.book() as b:  # a second thread at the same time gets a second workbook
            assert a is first and b is made[0] and len(made) == 1
        with pool.book() as c:  # the second is free again: nothing new is opened
            assert c is made[0] and len(made) == 1
    pool.close()
    assert made[0].closed and not first.closed  # the caller's workbook stays open


def test_reading_only_some_tables_in_threads_gives_those_tables_as_a_full_read_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The seam the read cache uses: ``_workbook_tables(path, only=...)``."""
    book = messy_book(tmp_path / "messy.xlsx")
    monkeypatch.setenv(parallel_read.READ_THREADS, "2")
    full, settings = reader._workbook_tables(book)
    some, same_settings = reader._workbook_tables(book, only={"MRR", "Funnel", "Usage"})
    assert sorted(some) == ["Funnel", "MRR", "Usage"] and settings == same_settings
    for name, raw in some.items():
        pd.testing.assert_frame_equal(raw.frame, full[name].frame)
        assert raw.rows.tolist() == full[name].rows.tolist()
        assert (raw.sheet, raw.header_row, raw.first_column) == (
            full[name].sheet,
            full[name].header_row,
            full[name].first_column,
        )
    assert full["Funnel"].first_column == 1 and full["Funnel"].rows[0] == 3


def test_the_dimension_alone_sizes_the_grid_as_the_scan_does(tmp_path: Path):
    """Whether calamine may parse a sheet is judged from its <dimension> (the first 64 KiB)
    before the scan for error cells, which runs while calamine parses: both count the
    same grid, and a sheet without <dimension> has no quick answer (it is scanned)."""
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in range(1, 40):
        ws.append([r, f"x{r}", None, r * 2.5])
    ws["F45"] = 1
    wb.save(tmp_path / "d.xlsx")
    with zipfile.ZipFile(tmp_path / "d.xlsx") as z:
        part = "xl/worksheets/sheet1.xml"
        assert reader._dimension_cells(z, part) == reader._scan_sheet(z, part).cells == 45 * 6
    nodim = sheet_without_dimension(tmp_path / "n.xlsx", ["A1", "C5"], {})
    with zipfile.ZipFile(nodim) as z:
        assert reader._dimension_cells(z, "xl/worksheets/sheet1.xml") is None


def test_generated_workbooks_are_sized_as_excel_sizes_them(tmp_path: Path):
    """write_workbook (cxkpi demo, the benchmarks) writes each sheet's <dimension>, as
    Excel does: openpyxl's read-only mode knows the sheet's size, and the reader sizes
    the grid from it without scanning the sheet first."""
    import zipfile

    import openpyxl

    from cxkpi_xl.data.sample import generate, write_workbook

    tables = generate("tiny")
    book = write_workbook(tables, tmp_path / "g.xlsx")
    wb = openpyxl.load_workbook(book, read_only=True)
    try:
        for name, frame in tables.items():
            ws = wb["Settings" if name == "HealthWeights" else name]
            assert (ws.max_row, ws.max_column) == (len(frame) + 1, frame.shape[1]), name
    finally:
        wb.close()
    with zipfile.ZipFile(book) as z:
        parts = reader._package_sheets(z)
        surveys = parts["Surveys"].name
        cells = (len(tables["Surveys"]) + 1) * tables["Surveys"].shape[1]
        assert reader._dimension_cells(z, surveys) == reader._scan_sheet(z, surveys).cells == cells
