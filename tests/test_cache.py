"""The read cache (cxkpi_xl.data.cache) and the "nothing changed" refresh.

Every change is made the way Excel saves a workbook, at package level: the sheet XML is
rewritten and sharedStrings.xml rebuilt in order of first use across the sheets (so a new
string renumbers the strings of every later sheet, and those sheets' XML changes too). A
read through the cache must then equal a read without it: every table, dtype, issue."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cxkpi_xl
from cxkpi_xl.cli import main
from cxkpi_xl.data import cache as cache_module
from cxkpi_xl.data import prefetch
from cxkpi_xl.data.cache import Cache, book_dir, nothing_changed
from cxkpi_xl.data.reader import _package_sheets, read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.data.usage import UsageSummary
from cxkpi_xl.refresh import refresh

from .workbooks import write_tables

SST = "xl/sharedStrings.xml"
_SI = re.compile(rb"<si>(.*?)</si>", re.DOTALL)
_INLINE = re.compile(rb'(<c r="[A-Z]+\d+")([^>]*?) t="inlineStr"><is>(.*?)</is></c>', re.DOTALL)
_STRING_CELL = re.compile(rb'(<c r="[A-Z]+\d+"[^>]*?t="s"[^>]*>)<v>(\d+)</v>')


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return generate("tiny")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache_module.ENV, str(folder))
    return folder


@pytest.fixture
def book(tmp_path: Path, tables, root: Path) -> Path:
    path = write_tables(tmp_path / "book.xlsx", tables, {"csat_scale": 5})
    excel_save(path)  # as Excel keeps it: text in the shared strings
    assert b't="s"' in parts(path)[sheet_part(path, "Surveys")]
    return path


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_parts(path: Path, new: dict[str, bytes], stored: bool = False) -> None:
    kind = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", kind) as z:
        for name, data in new.items():
            z.writestr(name, data)


def sheet_part(path: Path, sheet: str) -> str:
    with zipfile.ZipFile(path) as z:
        return _package_sheets(z)[sheet].name


def cell_ref(tables: dict[str, pd.DataFrame], table: str, column: str, row: int) -> str:
    """The cell of a table's value (``row`` 0-based among the data rows)."""
    col = list(tables[table].columns).index(column)
    return f"{chr(65 + col)}{row + 2}"


def excel_save(
    path: Path,
    edits: dict[tuple[str, str], object] | None = None,
    changes: dict[str, bytes] | None = None,
) -> None:
    """Save as Excel would: set the cells ``(part, ref) -> value`` (text goes to the shared
    strings), then rebuild sharedStrings.xml in order of first use, sheet by sheet,
    renumbering every sheet's text cells; ``changes`` replaces other parts."""
    old = parts(path)
    if SST not in old:  # the first save: every text cell goes to the shared strings
        old[SST] = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst/>'
        rels = "xl/_rels/workbook.xml.rels"
        old[rels] = old[rels].replace(
            b"</Relationships>",
            b'<Relationship Id="rIdSst" Type="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
            b"</Relationships>",
        )
        types = "[Content_Types].xml"
        old[types] = old[types].replace(
            b"</Types>",
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
    strings = _SI.findall(old[SST])
    for part in [p for p in old if p.startswith("xl/worksheets/sheet")]:

        def shared(m: re.Match[bytes]) -> bytes:
            strings.append(m.group(3))
            return m.group(1) + m.group(2) + b' t="s"><v>%d</v></c>' % (len(strings) - 1)

        old[part] = _INLINE.sub(shared, old[part])
    for (part, ref), value in (edits or {}).items():
        xml = old[part]
        m = re.search(rb'<c r="' + ref.encode() + rb'"([^>]*?)(/>|>.*?</c>)', xml, re.DOTALL)
        assert m is not None, ref
        style = re.search(rb's="\d+"', m.group(1))
        s = b" " + style.group(0) if style else b""
        if isinstance(value, str):
            strings.append(f"<t>{value}</t>".encode())
            new = b'<c r="%s"%s t="s"><v>%d</v></c>' % (ref.encode(), s, len(strings) - 1)
        else:
            new = b'<c r="%s"%s t="n"><v>%s</v></c>' % (ref.encode(), s, repr(value).encode())
        old[part] = xml[: m.start()] + new + xml[m.end() :]
    order: list[bytes] = []
    index: dict[bytes, int] = {}

    def renumber(m: re.Match[bytes]) -> bytes:
        raw = strings[int(m.group(2))]
        if raw not in index:
            index[raw] = len(order)
            order.append(raw)
        return m.group(1) + b"<v>%d</v>" % index[raw]

    sheets = sorted(
        (p for p in old if p.startswith("xl/worksheets/sheet")),
        key=lambda p: int(re.sub(r"\D", "", p)),
    )
    for part in sheets:
        old[part] = _STRING_CELL.sub(renumber, old[part])
    head = old[SST][: old[SST].index(b"<sst")]
    old[SST] = (
        head
        + b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        + b'count="%d" uniqueCount="%d">' % (len(order), len(order))
        + b"".join(b"<si>" + s + b"</si>" for s in order)
        + b"</sst>"
    )
    old.update(changes or {})
    write_parts(path, old)


def assert_same_data(a, b) -> None:
    """Two Datasets alike in every table (values, dtypes, None against NaN), issue,
    absent column and setting."""
    assert a.issues == b.issues
    assert a.absent == b.absent
    assert a.settings == b.settings
    assert list(a.tables) == list(b.tables)
    for name in a.tables:
        x, y = a.tables[name], b.tables[name]
        assert list(x.dtypes.astype(str)) == list(y.dtypes.astype(str)), name
        if name == "Usage" and (x.empty != y.empty):  # one read kept Usage as its summary
            rows, kept = (x, b) if y.empty else (y, a)
            assert kept.usage_summary is not None
            assert kept.usage_summary.digest() == UsageSummary.from_rows(rows).digest()
            continue
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        for col in [c for c in x.columns if x[c].dtype == object]:
            assert [type(v) for v in x[col]] == [type(v) for v in y[col]], (name, col)
    for d in (a, b):  # a Usage summary the cache kept or made is that of the Usage rows
        if d.usage_summary is not None and not d.tables["Usage"].empty:
            made = UsageSummary.from_rows(d.tables["Usage"])
            assert d.usage_summary.digest() == made.digest()


def cached_read(path: Path, overrides=None) -> tuple:
    c = Cache()
    data = read(path, overrides, cache=c)
    return data, sorted(c.reused), sorted(c.reread)


ALL = sorted(
    [
        "Customers",
        "MRR",
        "Orders",
        "Surveys",
        "Tickets",
        "Usage",
        "Health",
        "Funnel",
        "Costs",
        "HealthWeights",
    ]
)


def test_cold_then_warm_read_equal_a_read_without_cache(book: Path):
    plain = read(book)
    cold, reused, reread = cached_read(book)
    assert (reused, reread) == ([], ALL)
    warm, reused, reread = cached_read(book)
    assert (reused, reread) == (ALL, [])
    assert_same_data(plain, cold)
    assert_same_data(plain, warm)
    assert cold.digests == warm.digests
    assert set(ALL) <= set(warm.digests)


def test_a_changed_text_cell_rereads_its_table_and_the_renumbered_ones(book: Path, tables):
    cached_read(book)
    surveys = sheet_part(book, "Surveys")
    customers = sheet_part(book, "Customers")
    before = parts(book)
    row = int(tables["Surveys"]["comment"].notna().to_numpy().argmax())
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "comment", row)): "Slow support"})
    after = parts(book)
    assert after[customers] == before[customers]  # earlier sheet: its indices stay
    assert after[SST] != before[SST]
    plain = read(book)
    data, reused, reread = cached_read(book)
    assert "Surveys" in reread
    assert "Customers" in reused
    renumbered = {n for n in ALL if after[sheet_part(book, n)] != before[sheet_part(book, n)]}
    assert renumbered <= set(reread)
    assert_same_data(plain, data)
    assert "Slow support" in set(data.tables["Surveys"]["comment"])


def test_a_shared_string_changed_under_an_unchanged_sheet_is_seen(book: Path, tables):
    """Only the strings changed (a tool that rewrites one string in place): the sheet's
    part is byte for byte the same, its values are not."""
    cached_read(book)
    customers = sheet_part(book, "Customers")
    old = parts(book)
    used = sorted({int(i) for i in _STRING_CELL_INDICES.findall(old[customers])})
    strings = _SI.findall(old[SST])
    segment = tables["Customers"]["segment"].iloc[0]
    at = strings.index(f"<t>{segment}</t>".encode())
    assert at in used
    new_sst = old[SST].replace(
        b"<si>" + strings[at] + b"</si>", b"<si><t>Renamed segment</t></si>", 1
    )
    write_parts(book, {**old, SST: new_sst})
    plain = read(book)
    data, _, reread = cached_read(book)
    assert "Customers" in reread
    assert_same_data(plain, data)
    assert "Renamed segment" in set(data.tables["Customers"]["segment"])


_STRING_CELL_INDICES = re.compile(rb'<c r="[A-Z]+\d+"[^>]*?t="s"[^>]*><v>(\d+)</v>')


def test_a_changed_number_rereads_only_its_table(book: Path, tables):
    cached_read(book)
    surveys = sheet_part(book, "Surveys")
    row = int((tables["Surveys"]["survey"] == "NPS").to_numpy().argmax())
    score = float(tables["Surveys"]["score"].iloc[row])
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", row)): 10 - score})
    plain = read(book)
    data, _reused, reread = cached_read(book)
    assert reread == ["Surveys"]
    assert_same_data(plain, data)


def test_digests_change_with_their_table_only(book: Path, tables):
    first = cached_read(book)[0].digests
    surveys = sheet_part(book, "Surveys")
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", 0)): 2.0})
    second = cached_read(book)[0].digests
    assert second["Surveys"] != first["Surveys"]
    assert {n: d for n, d in second.items() if n != "Surveys"} == {
        n: d for n, d in first.items() if n != "Surveys"
    }


def test_a_changed_setting_rereads_every_table(book: Path):
    cached_read(book)
    settings = sheet_part(book, "Settings")
    excel_save(book, {(settings, "B1"): 10})
    plain = read(book)
    assert plain.settings["csat_scale"] == 10
    data, reused, _ = cached_read(book)
    assert reused == []
    assert_same_data(plain, data)
    data, reused, _reread = cached_read(book, {"csat_scale": "7"})
    assert reused == [] and data.settings["csat_scale"] == 7


def test_a_changed_table_range_rereads_that_table(book: Path, tables):
    cached_read(book)
    old = parts(book)
    name = next(p for p, d in old.items() if p.startswith("xl/tables/") and b'"Surveys"' in d)
    last = len(tables["Surveys"]) + 1
    shorter = old[name].replace(f":F{last}".encode(), f":F{last - 5}".encode())
    assert shorter != old[name]
    excel_save(book, changes={name: shorter})
    plain = read(book)
    data, _reused, reread = cached_read(book)
    assert reread == ["Surveys"]
    assert len(data.tables["Surveys"]) < len(tables["Surveys"])
    assert_same_data(plain, data)


def _restyle(book: Path, style: int, number_format: int) -> None:
    """Give cell style ``style`` another number format, as Excel would save it."""
    old = parts(book)
    xfs = re.search(rb"<cellXfs[^>]*>(.*?)</cellXfs>", old["xl/styles.xml"], re.DOTALL)
    xf = re.findall(rb"<xf\b[^>]*?(?:/>|>.*?</xf>)", xfs.group(1), re.DOTALL)[style]
    new_xf = re.sub(rb'numFmtId="\d+"', b'numFmtId="%d"' % number_format, xf)
    assert new_xf != xf
    at = old["xl/styles.xml"].index(xfs.group(1))
    styles = old["xl/styles.xml"][:at] + xfs.group(1).replace(xf, new_xf, 1)
    styles += old["xl/styles.xml"][at + len(xfs.group(1)) :]
    excel_save(book, changes={"xl/styles.xml": styles})


def test_a_date_cells_style_changed_rereads_its_table(book: Path, tables):
    """Whether a number cell is a date is in styles.xml: the date cells' style turned to a
    plain number format is a change (the reader takes the serial numbers as dates)."""
    cached_read(book)
    surveys = sheet_part(book, "Surveys")
    ref = cell_ref(tables, "Surveys", "response_date", 0)
    style = re.search(rb'<c r="' + ref.encode() + rb'" s="(\d+)"', parts(book)[surveys])
    _restyle(book, int(style.group(1)), 2)
    plain = read(book)
    data, _, reread = cached_read(book)
    assert "Surveys" in reread
    assert_same_data(plain, data)


def test_number_cells_styled_as_dates_are_seen(book: Path, tables):
    """The plain cell style (the scores' style) given a date format: the scores read as
    dates, which are not numbers: the rows are skipped, cache or not."""
    old = parts(book)
    surveys = sheet_part(book, "Surveys")
    old[surveys] = re.sub(rb'(<c r="E\d+") t="n"', rb'\1 s="0" t="n"', old[surveys])
    write_parts(book, old)  # the scores carry the plain style, as Excel writes them
    cached_read(book)
    _restyle(book, 0, 14)
    plain = read(book)
    data, _, reread = cached_read(book)
    assert "Surveys" in reread
    assert_same_data(plain, data)
    assert len(data.tables["Surveys"]) < len(tables["Surveys"])


def test_an_appended_style_keeps_every_table(book: Path):
    """Our own refresh (and Excel) appends cell styles: the kept tables stay valid."""
    cached_read(book)
    old = parts(book)
    styles = re.sub(
        rb'<cellXfs count="(\d+)">(.*?)</cellXfs>',
        lambda m: (
            b'<cellXfs count="%d">' % (int(m.group(1)) + 1)
            + m.group(2)
            + b'<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
        ),
        old["xl/styles.xml"],
        flags=re.DOTALL,
    )
    assert styles != old["xl/styles.xml"]
    write_parts(book, {**old, "xl/styles.xml": styles})
    data, reused, reread = cached_read(book)
    assert (reused, reread) == (ALL, [])
    assert_same_data(read(book), data)


def test_same_size_book_with_its_mtime_restored_is_read_again(book: Path, tables):
    """Neither the size nor the modification time says that the file changed: the
    CRC-32s of the zip directory do."""
    write_parts(book, parts(book), stored=True)
    cached_read(book)
    stat = book.stat()
    surveys = sheet_part(book, "Surveys")
    old = parts(book)
    ref = cell_ref(tables, "Surveys", "score", 0)
    m = re.search(rb'(<c r="' + ref.encode() + rb'"[^>]*><v>)(\d)(</v>)', old[surveys])
    digit = b"3" if m.group(2) != b"3" else b"4"
    changed = old[surveys][: m.start(2)] + digit + old[surveys][m.end(2) :]
    write_parts(book, {**old, surveys: changed}, stored=True)
    os.utime(book, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert book.stat().st_size == stat.st_size and book.stat().st_mtime_ns == stat.st_mtime_ns
    data, _, reread = cached_read(book)
    assert reread == ["Surveys"]
    assert_same_data(read(book), data)


def _entries(book: Path) -> Path:
    return book_dir(book)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "manifest", "missing", "version"])
def test_a_damaged_cache_is_ignored_and_rebuilt(book: Path, damage: str):
    cached_read(book)
    folder = _entries(book)
    data_file = next(folder.glob("Surveys-*.parquet"))
    manifest = folder / "Surveys.json"
    if damage == "corrupt":
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data_file.write_bytes(bytes(raw))
    elif damage == "truncated":
        data_file.write_bytes(data_file.read_bytes()[:100])
    elif damage == "manifest":
        manifest.write_bytes(manifest.read_bytes()[:-20])
    elif damage == "missing":
        data_file.unlink()
    else:
        entry = json.loads(manifest.read_bytes())
        entry["key"]["cache"] = cache_module.CACHE_VERSION + 1
        manifest.write_text(json.dumps(entry))
    data, _reused, reread = cached_read(book)
    assert reread == ["Surveys"]
    assert_same_data(read(book), data)
    assert cached_read(book)[1] == ALL  # rebuilt


def test_another_product_version_is_ignored(book: Path, monkeypatch):
    cached_read(book)
    monkeypatch.setattr(cxkpi_xl, "__version__", "99.0")
    data, reused, _ = cached_read(book)
    assert reused == []
    assert_same_data(read(book), data)


KILLER = """
import os, signal, sys
from pathlib import Path
from cxkpi_xl.data import cache
from cxkpi_xl.data.reader import read

calls = []
real = cache._write_atomic

def dying(target, data, mode):
    calls.append(target)
    if len(calls) == int(sys.argv[2]):
        with open(target, "wb") as f:  # a write cut short, not even through a temp file
            f.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    real(target, data, mode)

cache._write_atomic = dying
read(Path(sys.argv[1]), cache=cache.Cache())
"""


@pytest.mark.parametrize("at", [1, 2, 5])
def test_a_run_killed_while_writing_the_cache_leaves_nothing_trusted(book: Path, at: int):
    run = subprocess.run([sys.executable, "-c", KILLER, str(book), str(at)], env=os.environ)
    assert run.returncode == -signal.SIGKILL
    data, _, reread = cached_read(book)
    assert reread  # the half-written entry was not used
    assert_same_data(read(book), data)


def test_cache_files_have_the_workbooks_mode(book: Path):
    book.chmod(0o640)
    cached_read(book)
    files = list(_entries(book).iterdir())
    assert files
    assert {f.stat().st_mode & 0o777 for f in files} == {0o640}
    assert _entries(book).stat().st_mode & 0o777 == 0o700


def test_the_cache_holds_only_the_workbooks_tables(book: Path):
    cached_read(book)
    names = {f.name.split("-")[0].split(".")[0] for f in _entries(book).iterdir()}
    assert names == set(ALL)


# --- the refresh and the command line --------------------------------------------


def _report(done) -> tuple:
    report = done.report
    kpis = {k: [None if v != v else v for v in vs] for k, vs in report.kpis.items()}
    return report.periods, kpis, report.issues


def test_refresh_after_an_excel_save_equals_a_refresh_without_cache(book: Path, tables):
    refresh(book)
    surveys = sheet_part(book, "Surveys")
    nps = (tables["Surveys"]["survey"] == "NPS") & tables["Surveys"]["comment"].notna()
    row = int(nps.to_numpy().argmax())
    excel_save(
        book,
        {
            (surveys, cell_ref(tables, "Surveys", "score", row)): 0.0,
            (surveys, cell_ref(tables, "Surveys", "comment", row)): "Never again",
            (surveys, cell_ref(tables, "Surveys", "score", row + 1)): 42.0,  # an issue
        },
    )
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    cached = refresh(book)
    fresh = refresh(twin, cache=False)
    assert _report(cached) == _report(fresh)
    assert any(i.value == 42.0 for i in cached.report.issues)
    from python_calamine import CalamineWorkbook

    def issues_sheet(path: Path) -> list:
        return CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Data Issues").to_python()

    assert issues_sheet(book) == issues_sheet(twin)


def test_nothing_changed_after_a_refresh_until_a_part_or_setting_changes(book: Path, tables):
    assert not nothing_changed(book, {})
    refresh(book)
    assert nothing_changed(book, {})
    assert not nothing_changed(book, {"csat_scale": "10"})
    surveys = sheet_part(book, "Surveys")
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", 0)): 1.0})
    assert not nothing_changed(book, {})


def test_cli_refresh_does_nothing_when_nothing_changed(book: Path):
    runner = CliRunner()
    first = runner.invoke(main, ["refresh", str(book), "-q"])
    assert first.exit_code == 0, first.output
    assert "Refreshed" in first.output
    before = book.read_bytes()
    again = runner.invoke(main, ["refresh", str(book), "-q"])
    assert again.exit_code == 0
    assert "nothing changed" in again.output
    assert book.read_bytes() == before
    forced = runner.invoke(main, ["refresh", str(book), "-q", "--force"])
    assert forced.exit_code == 0 and "Refreshed" in forced.output
    other = runner.invoke(main, ["refresh", str(book), "-q", "--set", "csat_scale=10"])
    assert "Refreshed" in other.output


def test_cli_no_cache_neither_reads_nor_writes_it(book: Path, root: Path):
    runner = CliRunner()
    done = runner.invoke(main, ["refresh", str(book), "-q", "--no-cache"])
    assert done.exit_code == 0, done.output
    assert not root.exists()
    runner.invoke(main, ["refresh", str(book), "-q"])
    assert (book_dir(book) / "stamp.json").exists()
    again = runner.invoke(main, ["refresh", str(book), "-q", "--no-cache"])
    assert "Refreshed" in again.output


def test_cli_cache_clear_removes_it(book: Path, root: Path):
    runner = CliRunner()
    runner.invoke(main, ["refresh", str(book), "-q"])
    assert any(root.iterdir())
    info = runner.invoke(main, ["cache", "info"])
    assert "1 workbook" in info.output
    cleared = runner.invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0 and "1 workbook" in cleared.output
    assert not root.exists()
    again = runner.invoke(main, ["refresh", str(book), "-q"])
    assert "Refreshed" in again.output


def test_nothing_changed_path_imports_no_pandas(book: Path):
    refresh(book)
    code = (
        "import sys\n"
        "from cxkpi_xl.cli import main\n"
        "try:\n"
        f"    main(['refresh', {str(book)!r}, '-q'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=os.environ, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "nothing changed" in run.stdout
    assert run.stdout.strip().endswith("[]")


def test_import_cxkpi_xl_is_lazy_and_every_public_name_resolves():
    code = (
        "import sys, cxkpi_xl\n"
        "print('pandas' in sys.modules, 'numpy' in sys.modules)\n"
        "from cxkpi_xl import nps, cohort_retention, cltv_predicted\n"
        "print(all(callable(getattr(cxkpi_xl, n)) for n in cxkpi_xl.__all__))\n"
        "print(set(cxkpi_xl.__all__) <= set(dir(cxkpi_xl)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.split() == ["False", "False", "True", "True"], run.stderr


def _dated_book(
    path: Path, tables, customers_format: str, surveys_text: bool, both: bool = False
) -> Path:
    """Surveys first (its shared strings come first, so its part stays the same when
    Customers changes), the Customers signup dates as text in ``customers_format``."""
    surveys = tables["Surveys"].copy()
    if surveys_text:  # days 1..12 only: each date fits both orders
        dates = surveys["response_date"]
        surveys["response_date"] = [f"{min(d.day, 12):02d}/{d.month:02d}/{d.year}" for d in dates]
    customers = tables["Customers"].copy()
    dates = customers["signup_date"]
    if both:  # days 1..12 only
        dates = [d.replace(day=min(d.day, 12)) for d in dates]
    customers["signup_date"] = [
        d.strftime(customers_format) if customers_format else d for d in dates
    ]
    write_tables(path, {"Surveys": surveys, "Customers": customers})
    excel_save(path)
    return path


def test_a_kept_table_that_took_the_sources_date_order_is_read_again_when_it_changes(
    tmp_path: Path, tables, root: Path
):
    """Surveys' dates fit both orders, so they take the order Customers' dates show; when
    Customers turns from day-first to month-first, Surveys (unchanged) is read again."""
    days = [d for d in tables["Customers"]["signup_date"] if d.day > 12]
    assert days  # so that the text dates show their order
    book = _dated_book(tmp_path / "dated.xlsx", tables, "%d/%m/%Y", True)
    first, _, _ = cached_read(book)
    surveys = sheet_part(book, "Surveys")
    before = parts(book)[surveys]
    _dated_book(book, tables, "%m/%d/%Y", True)
    assert parts(book)[surveys] == before
    plain = read(book)
    data, _, reread = cached_read(book)
    assert reread == ["Customers", "Surveys"]
    assert_same_data(plain, data)
    assert not first.tables["Surveys"]["response_date"].equals(
        data.tables["Surveys"]["response_date"]
    )


def test_a_date_order_needed_from_tables_kept_without_it_reads_everything(
    tmp_path: Path, tables, root: Path
):
    """At the first read no table needed the source's date order, so none was kept; now
    Customers' text dates need it: every table is read again, none trusted."""
    book = _dated_book(tmp_path / "dated.xlsx", tables, "", False)
    cached_read(book)
    surveys = sheet_part(book, "Surveys")
    before = parts(book)[surveys]
    _dated_book(book, tables, "%d/%m/%Y", False, both=True)
    assert parts(book)[surveys] == before
    plain = read(book)
    data, reused, _ = cached_read(book)
    assert reused == []
    assert_same_data(plain, data)


def test_a_report_sheet_changed_by_hand_is_a_change_but_document_properties_are_not(
    book: Path,
):
    refresh(book)
    old = parts(book)
    with zipfile.ZipFile(book) as z:
        report = _package_sheets(z)["Report"].name
    write_parts(book, {**old, "docProps/core.xml": old["docProps/core.xml"] + b" "})
    assert nothing_changed(book, {})
    typed = old[report].replace(
        b"</sheetData>", b'<row r="9999"><c r="A9999"><v>1</v></c></row></sheetData>'
    )
    assert typed != old[report]
    write_parts(book, {**old, report: typed})
    assert not nothing_changed(book, {})


def test_cache_clear_removes_only_the_caches_own_folders(book: Path, root: Path):
    read(book, cache=Cache())
    root.joinpath("notes.txt").write_text("mine")
    root.joinpath("photos").mkdir()
    assert cache_module.clear() == 1
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt", "photos"]


def test_a_changed_table_that_takes_the_sources_date_order_uses_the_kept_evidence(
    tmp_path: Path, tables, root: Path
):
    """Surveys takes the order Customers' dates show; a changed Surveys score re-reads
    Surveys alone, the order coming from what was kept of Customers."""
    book = _dated_book(tmp_path / "dated.xlsx", tables, "%d/%m/%Y", True)
    cached_read(book)
    surveys = sheet_part(book, "Surveys")
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", 0)): 3.0})
    plain = read(book)
    data, reused, reread = cached_read(book)
    assert reread == ["Surveys"] and "Customers" in reused
    assert_same_data(plain, data)


def test_mrr_made_from_invoices_has_a_digest_of_invoices_fx_and_settings(
    tmp_path: Path, tables, root: Path
):
    months = pd.date_range("2025-01-01", "2025-07-01", freq="MS")
    invoices = pd.DataFrame(
        {
            "invoice_id": [f"in{i}" for i in range(6)],
            "customer_id": ["C00001"] * 6,
            "kind": ["subscription"] * 6,
            "service_start": months[:-1],
            "service_end": months[1:],
            "amount": [100.0] * 6,
        }
    )
    book = write_tables(
        tmp_path / "billing.xlsx", {"Customers": tables["Customers"], "Invoices": invoices}
    )
    first, _, _ = cached_read(book)
    plain = read(book)
    assert len(first.tables["MRR"]) > 0  # made from the invoices
    assert_same_data(plain, first)
    again, reused, _ = cached_read(book)
    assert "Invoices" in reused and again.digests["MRR"] == first.digests["MRR"]
    invoices_part = sheet_part(book, "Invoices")
    old = parts(book)
    m = re.search(rb'(<c r="F2"[^>]*><v>)100(</v>)', old[invoices_part])
    changed = old[invoices_part][: m.start()] + m.group(1) + b"200" + m.group(2)
    write_parts(book, {**old, invoices_part: changed + old[invoices_part][m.end() :]})
    third, _, reread = cached_read(book)
    assert reread == ["Invoices"]
    assert third.digests["MRR"] != first.digests["MRR"]
    assert third.digests["Customers"] == first.digests["Customers"]
    assert_same_data(read(book), third)


def test_an_upgraded_library_is_a_change(book: Path, monkeypatch):
    refresh(book)
    assert nothing_changed(book, {})
    assert cached_read(book)[1] == ALL
    real = cache_module.libraries

    def upgraded(names):
        found = real(names)
        found["pandas"] = [1, 2]  # another file: pandas was upgraded
        return found

    monkeypatch.setattr(cache_module, "libraries", upgraded)
    assert not nothing_changed(book, {})
    data, reused, _ = cached_read(book)
    assert reused == []
    assert_same_data(read(book), data)


def test_refresh_reuses_the_compute_memo_only_where_its_inputs_are_unchanged(
    book: Path, tables, monkeypatch
):
    # A changed NPS answer: refresh re-reads Surveys, reuses the predictive models (they
    # read no survey) and recomputes "Does CX pay?" (it does); the whole Report, with its
    # breakdowns and cx_impact, equals a refresh without cache or memo.
    import cxkpi_xl.refresh as refresh_module

    memos: list = []
    real_memo = refresh_module._memo

    def keep(path: Path):  # type: ignore[no-untyped-def]
        memos.append(real_memo(path))
        return memos[-1]

    monkeypatch.setattr(refresh_module, "_memo", keep)
    refresh(book)
    assert memos[-1].hits == [] and "predictive" in memos[-1].misses
    surveys = sheet_part(book, "Surveys")
    nps = (tables["Surveys"]["survey"] == "NPS").to_numpy()
    row = int(nps.argmax())
    old = float(tables["Surveys"]["score"].iat[row])
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", row)): 10.0 - old})
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    cached = refresh(book)
    assert "predictive" in memos[-1].hits and "cx_impact" in memos[-1].misses
    fresh = refresh(twin, cache=False)
    assert len(memos) == 2  # no memo without the cache
    assert json.dumps(cached.report.as_json(), sort_keys=True) == json.dumps(
        fresh.report.as_json(), sort_keys=True
    )
    assert cached.report.breakdowns.keys() == fresh.report.breakdowns.keys()
    for name, frame in cached.report.breakdowns.items():
        pd.testing.assert_frame_equal(frame, fresh.report.breakdowns[name], check_exact=True)


def test_reloaded_text_keeps_one_object_per_distinct_value(book: Path):
    cached_read(book)
    data, reused, _ = cached_read(book)
    assert "Surveys" in reused
    ids = data.tables["Surveys"]["customer_id"]
    assert ids.nunique() < len(ids)  # repeated values, so sharing shows
    assert len({id(v) for v in ids}) == ids.nunique()


def test_usage_summary_is_kept_with_usage_and_reloaded(book: Path, tables):
    """The summary the engine makes of the Usage rows (distinct users per day and month,
    the (month, customer, feature) triples) is kept with Usage: a read that reuses Usage
    reloads it, equal to the summary of the rows; one that re-reads Usage makes it anew."""
    cold, _, _ = cached_read(book)
    assert cold.usage_summary is not None and not cold.usage_summary.empty
    kept = {f.name for f in _entries(book).iterdir() if f.name.startswith("Usage")}
    assert any(n.endswith("-summary.npz") for n in kept)
    assert not any(n.endswith(".parquet") for n in kept)  # its rows are never reloaded
    surveys = sheet_part(book, "Surveys")
    row = int((tables["Surveys"]["survey"] == "NPS").to_numpy().argmax())
    score = float(tables["Surveys"]["score"].iloc[row])
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", row)): 10 - score})
    warm, reused, _ = cached_read(book)
    assert "Usage" in reused
    assert warm.usage_summary is not None
    assert warm.usage_summary.digest() == cold.usage_summary.digest()
    assert warm.tables["Usage"].empty  # the rows are not loaded: the engine reads the summary
    assert_same_data(read(book), warm)


def test_usage_summary_round_trip_and_what_is_not_kept():
    from cxkpi_xl.data.cache import _summary_bytes, _summary_from

    rows = pd.DataFrame(
        {
            "activity_date": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-02-01"]),
            "user_id": ["u1", "u2", "u1"],
            "customer_id": ["Café 1", None, "😀 odd"],
            "feature": ["", "export", None],
        }
    )
    made = UsageSummary.from_rows(rows)
    back = _summary_from(_summary_bytes(made))
    assert back.digest() == made.digest()
    assert back.customers.dtype == object and list(back.customers) == ["Café 1", "😀 odd"]
    assert list(back.features) == ["", "export"]
    empty = UsageSummary.from_rows(rows.iloc[:0])
    assert _summary_from(_summary_bytes(empty)).digest() == empty.digest()
    with pytest.raises(TypeError):
        _summary_bytes(made.with_customers(np.array([1.0, 2.0], dtype=object)))


def test_tables_kept_in_the_background_are_kept_as_read(book: Path):
    """refresh keeps the re-read tables in a thread while it computes (Cache(background=
    True), then finish()): what is kept is the table as read, even if the caller changes
    the frame meanwhile, and the next read reuses every table."""
    c = Cache(background=True)
    data = read(book, cache=c)
    expected = data.tables["Customers"].copy()
    data.tables["Customers"].loc[:, "segment"] = "changed by the caller"
    c.finish()
    assert c._pending == [] and c._writer is None
    again, reused, reread = cached_read(book)
    assert (reused, reread) == (ALL, [])
    pd.testing.assert_frame_equal(again.tables["Customers"], expected, check_exact=True)


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        (["a", None, "b"], True),
        ([None, None], True),
        (["a", 1], False),  # text mixed with a number
        ([1.5, "a"], False),
        ([True, False], False),
        ([b"x", None], False),
        ([float("nan"), "a"], False),  # NaN would come back as None
        (["a", None, float("nan")], False),
    ],
)
def test_only_text_and_blanks_are_kept_in_a_column_of_objects(values, kept):
    from cxkpi_xl.data.cache import _frame_from, _frame_table, _table_bytes

    frame = pd.DataFrame({"c": pd.Series(values, dtype=object)})
    if not kept:
        with pytest.raises((TypeError, ValueError)):  # pyarrow's errors are both
            _frame_table(frame)
        return
    table, dtypes = _frame_table(frame)
    back = _frame_from(_table_bytes(table), dtypes)
    assert [type(v) for v in back["c"]] == [type(v) for v in values]
    assert back["c"].tolist() == values


def test_text_kept_in_many_row_groups_comes_back_as_written():
    """Each Parquet row group has a dictionary of its own: the text comes back with every
    value in place, blanks as None, a column of blanks alone too, numbers to the bit."""
    import io

    import pyarrow.parquet as pq

    from cxkpi_xl.data.cache import _frame_from, _frame_table

    n = 25_000
    frame = pd.DataFrame(
        {
            "a": pd.Series([f"x{i % 7}" if i % 5 else None for i in range(n)], dtype=object),
            "b": np.arange(n) / 3,
            "c": pd.Series([None] * n, dtype=object),
            "d": pd.Series([f"row {i}" for i in range(n)], dtype=object),  # all distinct
        }
    )
    table, dtypes = _frame_table(frame)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=1000)
    assert pq.ParquetFile(io.BytesIO(buffer.getvalue())).num_row_groups == 25
    back = _frame_from(buffer.getvalue(), dtypes)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert [type(v) for v in back["a"][:6]] == [type(None), str, str, str, str, type(None)]


# The changed table parsed ahead (cxkpi_xl.data.prefetch): while a refresh imports pandas
# and the engine, the Table whose parts changed since the cache kept it is parsed in a
# thread, and handed to the reader only for that table and the very same bytes.


def _one_score_changed(book: Path, tables, value: float = 3.0) -> str:
    surveys = sheet_part(book, "Surveys")
    excel_save(book, {(surveys, cell_ref(tables, "Surveys", "score", 0)): value})
    return surveys


def _state(book: Path) -> dict[str, list[int]]:
    return cache_module.zip_state(book)


def _calamine_table(book: Path, name: str):
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(book), load_tables=True).get_table_by_name(name)


def test_a_refresh_takes_the_changed_table_parsed_ahead(book: Path, tables, monkeypatch):
    refresh(book)
    _one_score_changed(book, tables)
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    taken: list[tuple[str, bool]] = []
    real = prefetch.take

    def take(path, table, state):
        got = real(path, table, state)
        taken.append((table, got is not None))
        return got

    monkeypatch.setattr(prefetch, "take", take)
    cached = refresh(book)
    assert ("Surveys", True) in taken  # parsed ahead, and used
    assert all(not used for table, used in taken if table != "Surveys")
    assert _report(cached) == _report(refresh(twin, cache=False))
    assert prefetch._books == {}  # nothing kept past the refresh


def test_a_prefetch_is_handed_over_once_for_its_table_and_bytes_alone(book: Path, tables):
    refresh(book)
    surveys = _one_score_changed(book, tables)
    state = _state(book)
    first = prefetch.start(book, book_dir)
    assert first is not None
    assert prefetch.take(book, "Orders", state) is None  # not the table it parsed
    assert prefetch.take(book, "Surveys", {**state, surveys: [0, 1]}) is None  # other bytes
    assert prefetch._books == {}  # and let go: the reader parses it itself
    first.parsed.result()  # its thread done (whether it parsed or saw it was let go)
    job = prefetch.start(book, book_dir)
    got = prefetch.take(book, "SURVEYS", state)  # Table names in any case, as Excel's
    fresh = _calamine_table(book, "Surveys")
    assert job is not None and got is not None, (job.chosen.result(), job.failure)
    assert (got.to_python(), got.start, list(got.columns)) == (
        fresh.to_python(),
        fresh.start,
        list(fresh.columns),
    )
    assert got.to_python()[0][list(fresh.columns).index("score")] == 3.0  # the new value
    assert prefetch.take(book, "Surveys", state) is None  # handed over once


def test_nothing_is_prefetched_without_a_cache_or_a_changed_table(book: Path, tables, root):
    """No cache, nothing changed, damaged manifests: nothing to parse ahead."""
    state = _state(book)
    prefetch.start(book, book_dir)  # no cache yet
    assert prefetch.take(book, "Surveys", state) is None
    refresh(book)
    state = _state(book)
    prefetch.start(book, book_dir)  # nothing changed since it was kept
    assert all(prefetch.take(book, t, state) is None for t in ("Surveys", "Orders", "MRR"))
    for manifest in book_dir(book).glob("*.json"):  # damaged manifests are passed over
        manifest.write_bytes(b"{not json")
    _one_score_changed(book, tables)
    state = _state(book)
    prefetch.discard(prefetch.start(book, book_dir))  # not taken: let go
    assert prefetch._books == {}


def test_a_sheet_without_its_dimension_is_left_to_the_reader(book: Path, tables):
    """Whether calamine may parse a sheet is judged from its <dimension>; without one the
    reader scans the sheet first, so the prefetch leaves it alone."""
    refresh(book)
    surveys = _one_score_changed(book, tables)
    old = parts(book)
    assert re.search(rb"<dimension [^>]*/>", old[surveys])
    write_parts(book, {**old, surveys: re.sub(rb"<dimension [^>]*/>", b"", old[surveys])})
    state = _state(book)
    prefetch.start(book, book_dir)
    assert prefetch.take(book, "Surveys", state) is None
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    assert _report(refresh(book)) == _report(refresh(twin, cache=False))


def test_a_book_saved_while_it_was_parsed_ahead_is_not_handed_over(book: Path, tables, monkeypatch):
    """The package's state is taken before the parse and again after it: a save in between
    (here, during calamine's open) drops the parse even for a reader that saw the first
    state."""
    import python_calamine

    refresh(book)
    _one_score_changed(book, tables)
    state = _state(book)
    saved = book.read_bytes()
    real = python_calamine.CalamineWorkbook

    class SavedMeanwhile:
        @staticmethod
        def from_path(path: str, **kw):
            opened = real.from_path(path, **kw)
            _one_score_changed(book, tables, 4.0)  # Excel saves again
            return opened

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", SavedMeanwhile)
    prefetch.start(book, book_dir)
    assert prefetch.take(book, "Surveys", state) is None
    assert book.read_bytes() != saved


def _swap_sheet_parts(book: Path, a: str, b: str) -> tuple[dict[str, bytes], str]:
    """The package with the parts of sheets ``a`` and ``b`` swapped, as a save that
    renumbers the sheet parts writes it; and the part that holds ``a`` now."""
    with zipfile.ZipFile(book) as z:
        sheets = _package_sheets(z)
    pa, pb = sheets[a].name, sheets[b].name
    old = parts(book)
    new = dict(old)
    new[pa], new[pb] = old[pb], old[pa]

    def rels(p: str) -> str:
        folder, _, name = p.rpartition("/")
        return f"{folder}/_rels/{name}.rels"

    ra, rb = old.get(rels(pa)), old.get(rels(pb))
    new.pop(rels(pa), None)
    new.pop(rels(pb), None)
    if ra is not None:
        new[rels(pb)] = ra
    if rb is not None:
        new[rels(pa)] = rb
    wr = "xl/_rels/workbook.xml.rels"
    na, nb = pa.split("/", 1)[1].encode(), pb.split("/", 1)[1].encode()
    new[wr] = old[wr].replace(na, b"@@").replace(nb, na).replace(b"@@", nb)
    return new, pb


def test_a_table_moved_to_an_oversized_sheet_is_not_parsed_ahead(book: Path, tables):
    """Whether calamine may parse is judged on the sheet that holds the Table now, not the
    one the cache saw it on: Surveys moved to another part (sheets renumbered) with a
    stray value far out, so that its grid is oversized, is left to the reader (which
    streams it), and the refresh equals one without the cache."""
    refresh(book)
    new, home = _swap_sheet_parts(book, "Surveys", "Settings")
    x = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:Z200000"/>', new[home])
    new[home] = x.replace(
        b"</sheetData>", b'<row r="200000"><c r="Z200000"><v>1</v></c></row></sheetData>'
    )
    write_parts(book, new)
    with zipfile.ZipFile(book) as z:
        assert _package_sheets(z)["Surveys"].name == home
    state = _state(book)
    job = prefetch.start(book, book_dir)
    assert job is not None and job.chosen.result() is None  # nothing chosen, nothing parsed
    assert prefetch.take(book, "Surveys", state) is None
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    assert _report(refresh(book)) == _report(refresh(twin, cache=False))


def test_a_package_the_reader_refuses_is_not_parsed_ahead(book: Path, tables, monkeypatch):
    """A part grown into a possible zip bomb: refresh refuses the workbook, and nothing of
    it was inflated or parsed in the background meanwhile."""
    import python_calamine

    from cxkpi_xl.refresh import RefreshError

    refresh(book)
    surveys = sheet_part(book, "Surveys")
    old = parts(book)
    write_parts(
        book,
        {
            **old,
            surveys: old[surveys].replace(b"</sheetData>", b" " * (40 << 20) + b"</sheetData>"),
        },
    )
    opened: list[str] = []
    real = python_calamine.CalamineWorkbook

    class Spy:
        @staticmethod
        def from_path(path: str, **kw):
            opened.append(threading.current_thread().name)
            return real.from_path(path, **kw)

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", Spy)
    with pytest.raises(RefreshError, match="possible zip bomb"):
        refresh(book)
    job = prefetch.start(book, book_dir)
    assert job is not None and job.chosen.result() is None and job.parsed.result() is None
    assert "cxkpi-prefetch" not in opened


class _Panic(BaseException):
    """As pyo3's PanicException, which a panic in calamine raises: not an Exception."""


def test_a_panic_in_the_parse_ahead_leaves_the_reader_to_parse(book: Path, tables, monkeypatch):
    """calamine panicking in the prefetch's thread (pyo3 raises a BaseException) must not
    leave the reader waiting: it parses the table itself and the refresh goes on."""
    import python_calamine

    refresh(book)
    _one_score_changed(book, tables)
    real = python_calamine.CalamineWorkbook

    class PanicsAhead:
        @staticmethod
        def from_path(path: str, **kw):
            if threading.current_thread().name == "cxkpi-prefetch":
                raise _Panic("called `Option::unwrap()` on a `None` value")
            return real.from_path(path, **kw)

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", PanicsAhead)
    twin = book.with_name("twin.xlsx")
    shutil.copy(book, twin)
    done: list = []
    worker = threading.Thread(target=lambda: done.append(refresh(book)), daemon=True)
    worker.start()
    worker.join(timeout=120)  # a prefetch that never answered would leave it waiting
    assert not worker.is_alive() and len(done) == 1
    assert _report(done[0]) == _report(refresh(twin, cache=False))


@pytest.mark.parametrize("name", ["loop.xlsx", "nul\0.xlsx"], ids=["symlink loop", "NUL byte"])
def test_a_path_the_cache_cannot_place_still_fails_with_a_refresh_error(tmp_path: Path, name):
    from cxkpi_xl.refresh import RefreshError

    path = tmp_path / name
    if name == "loop.xlsx":
        path.symlink_to(path)
    with pytest.raises(RefreshError):
        refresh(path)


def test_a_prefetch_taken_before_its_parse_begins_still_parses(book: Path, tables, monkeypatch):
    """The reader may take the prefetch as soon as its table is chosen, before its thread
    starts parsing: taken is not let go, so the parse goes on and is handed over (it once
    was not, when the thread read "no longer registered" as "discarded")."""
    import time
    from concurrent.futures import Future

    class SlowToGoOn(Future):
        def set_result(self, result):
            super().set_result(result)
            if threading.current_thread().name == "cxkpi-prefetch":
                time.sleep(0.5)  # the reader takes it meanwhile

    refresh(book)
    _one_score_changed(book, tables)
    state = _state(book)
    monkeypatch.setattr(prefetch, "Future", SlowToGoOn)
    job = prefetch.start(book, book_dir)
    got = prefetch.take(book, "Surveys", state)
    assert job is not None and got is not None, (job.chosen.result(), job.failure)
    assert got.to_python() == _calamine_table(book, "Surveys").to_python()
