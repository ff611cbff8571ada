"""Sources beyond a workbook (``cxkpi_xl/data/sources.py``): the same data through a CSV
folder and through Parquet (DuckDB), a DuckDB file, a real PostgreSQL server started here
on a local socket, and Spark in local mode give the same JSON to 1e-9, Data Issues
included (an issue names the source's table: ``MRR.csv`` there, ``MRR.parquet`` or
``mrr`` here, compared by the table's name). The reference is always the CSV folder,
read by the reader's own CSV path, never by this module.

The data sets: the sample (``generate("tiny")``, typed columns: dates, numbers, ids) and
the hand-built real-shaped set of tests/real_shaped.py (every cell text as exported:
``1,200.50``, ``#N/A``, day-first dates, out-of-scale scores), whose Data Issues must come
out the same.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from cxkpi_xl.cli import main
from cxkpi_xl.data import reader as reader_module
from cxkpi_xl.data.reader import SourceError, read
from cxkpi_xl.data.sample import generate, write_csv, write_workbook
from cxkpi_xl.data.schema import TABLES_BY_NAME
from cxkpi_xl.engine import compute

from . import real_shaped

ibis = pytest.importorskip("ibis", reason="the duckdb extra (ibis-framework, duckdb) is absent")
duckdb = pytest.importorskip("duckdb", reason="the duckdb extra is absent")

from cxkpi_xl.data import sources  # noqa: E402

# -- the data sets --------------------------------------------------------------------


def sample_tables() -> dict[str, pd.DataFrame]:
    return {k: v for k, v in generate("tiny").items() if k != "HealthWeights"}


def hand_tables(tmp: Path) -> dict[str, pd.DataFrame]:
    """The real-shaped CSV files as text, exactly as the files hold them."""
    folder = real_shaped.write_csv(tmp / "hand-csv")
    return {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in folder.glob("*.csv")}


def csv_json(tables: dict[str, pd.DataFrame], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return report_json(folder)


def report_json(source: Any, **kw: Any) -> dict[str, Any]:
    data = read(source, kw or None)
    report = compute(data)
    out = report.as_json()
    out["breakdowns"] = {
        k: json.loads(v.to_json(orient="split", date_format="iso"))
        for k, v in report.breakdowns.items()
    }
    for issue in out["issues"]:  # MRR.csv, MRR.parquet, mrr, cx.kpi_mrr -> mrr
        table = issue["table"].removesuffix(".csv").removesuffix(".parquet")
        issue["table"] = table.split(".")[-1].lower().removeprefix("kpi_")
    return out


def assert_close(a: Any, b: Any, where: str = "") -> None:
    """Equal JSON, numbers to 1e-9 (relative, or absolute near 0)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (a != a and b != b), (where, a, b)
    else:
        assert a == b, (where, a, b)


def to_parquet(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", coerce_timestamps="us")
    return folder


def to_duckdb(tables: dict[str, pd.DataFrame], path: Path, prefix: str = "") -> Path:
    con = duckdb.connect(str(path))
    for i, (name, frame) in enumerate(tables.items()):
        # every other table in upper case: the names are found ignoring case
        table = prefix + (name.upper() if i % 2 else name.lower())
        con.register("frame", frame)
        con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM frame')
        con.unregister("frame")
    con.close()
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict]]:
    tmp = tmp_path_factory.mktemp("sets")
    out = {}
    for name, tables in (("sample", sample_tables()), ("hand", hand_tables(tmp))):
        out[name] = (tables, csv_json(tables, tmp / f"{name}-csv"))
    return out


SETS = ("sample", "hand")


def test_the_hand_built_set_has_issues_and_the_sample_has_kpis(datasets):
    """The comparisons below compare something: the hand-built set has Data Issues (its
    #N/A, its out-of-scale scores), the sample KPIs and breakdowns."""
    assert len(datasets["hand"][1]["issues"]) >= 3
    sample = datasets["sample"][1]
    assert sample["breakdowns"] and any(v and v[-1] is not None for v in sample["kpis"].values())


# -- Parquet and DuckDB files --------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_parquet_gives_the_csv_json(datasets, tmp_path, name):
    tables, expected = datasets[name]
    assert_close(expected, report_json(to_parquet(tables, tmp_path / "pq")))


@pytest.mark.parametrize("name", SETS)
def test_a_duckdb_file_gives_the_csv_json(datasets, tmp_path, name):
    tables, expected = datasets[name]
    path = to_duckdb(tables, tmp_path / "cx.duckdb")
    assert_close(expected, report_json(path))
    assert_close(expected, report_json(f"duckdb://{path}"))


def test_a_prefix_and_a_schema_find_the_tables(datasets, tmp_path):
    tables, expected = datasets["sample"]
    path = tmp_path / "pre.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA cx")
    for name, frame in tables.items():
        con.register("frame", frame)
        con.execute(f'CREATE TABLE cx."KPI_{name}" AS SELECT * FROM frame')
        con.execute(f'CREATE TABLE main."{name}" AS SELECT * FROM frame LIMIT 0')  # decoys
        con.unregister("frame")
    con.close()
    assert_close(expected, report_json(path, source_tables="cx.kpi_"))
    assert report_json(path)["kpis"] != expected["kpis"]  # the empty decoys elsewhere
    # A prefix that matches nothing names the tables it left out, not "its tables: none".
    with pytest.raises(SourceError) as e:
        read(path, {"source_tables": "cx.sales_"})
    assert "its tables: none under cx.sales_; without the prefix: KPI_Costs" in str(e.value)


def test_pushed_down_usage_gives_the_plain_json(datasets, tmp_path):
    """Usage reduced to distinct rows in DuckDB gives the same KPIs as every row, on data
    where each usage row is there three times (so the reduction does reduce)."""
    tables, _ = datasets["sample"]
    tables = dict(tables)
    tables["Usage"] = pd.concat([tables["Usage"]] * 3, ignore_index=True)
    folder = to_parquet(tables, tmp_path / "pq")
    expr = sources._parquet(folder).tables["usage"]
    sources._reader = reader_module
    reduced = sources.reduce_usage(sources._columns(TABLES_BY_NAME["Usage"], "u", expr))
    assert int(reduced.count().execute()) * 3 == len(tables["Usage"])
    pushed = compute(sources.read_source(folder, reader=reader_module, pushdown=True)).as_json()
    plain = compute(sources.read_source(folder, reader=reader_module, pushdown=False)).as_json()
    assert_close(plain, pushed)
    assert any(v and v[-1] for k, v in plain["kpis"].items() if "stickiness" in k)


def test_usage_with_a_bad_row_is_not_reduced_and_the_row_is_an_issue(tmp_path):
    usage = pd.DataFrame(
        {
            "activity_date": ["2026-01-05", "2026-01-05", "not a day"],
            "user_id": ["u1", "u1", "u2"],
            "customer_id": ["1", "1", "1"],
        }
    )
    folder = to_parquet({"Usage": usage}, tmp_path / "pq")
    sources._reader = reader_module  # what read() hands over
    expr = sources._columns(TABLES_BY_NAME["Usage"], "u", sources._parquet(folder).tables["usage"])
    assert sources.reduce_usage(expr) is expr  # text days: validated row by row in Python
    data = read(folder)
    assert [(i.sheet, i.row, i.column) for i in data.issues] == [
        ("Usage.parquet", 4, "activity_date")
    ]


# -- one-line messages --------------------------------------------------------------


def one_line(excinfo: pytest.ExceptionInfo[SourceError]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_source_without_the_tables_says_what_it_looked_for(tmp_path):
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    con.execute("CREATE TABLE sales (x INTEGER)")
    con.close()
    with pytest.raises(SourceError) as e:
        read(tmp_path / "other.duckdb")
    text = one_line(e)
    assert "none of the input tables" in text and "Customers" in text and "sales" in text


def test_a_wrong_column_type_is_one_line(tmp_path):
    mrr = pd.DataFrame(
        {"customer_id": ["1"], "month": ["2026-01-01"], "mrr": pd.to_datetime(["2026-01-01"])}
    )
    with pytest.raises(SourceError) as e:
        read(to_parquet({"MRR": mrr}, tmp_path / "pq"))
    text = one_line(e)
    assert "MRR.parquet, column mrr" in text and "holds numbers" in text


def test_an_unreachable_source_is_one_line(tmp_path):
    with pytest.raises(SourceError) as e:
        read(f"postgres://nobody@/nothing?host={tmp_path}&connect_timeout=2")
    assert "cannot be reached" in one_line(e)
    with pytest.raises(SourceError) as e:
        read(tmp_path / "missing.duckdb")
    assert "no such file" in one_line(e)
    (tmp_path / "junk.duckdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(SourceError) as e:
        read(tmp_path / "junk.duckdb")
    assert "cannot be opened as a DuckDB database" in one_line(e)


def test_a_password_in_the_source_setting_is_refused(tmp_path):
    book = write_workbook({"Customers": sample_tables()["Customers"]}, tmp_path / "b.xlsx")
    from cxkpi_xl.data.choose import source_of_book

    with pytest.raises(SourceError) as e:
        source_of_book({"source": "postgres://me:secret@db/cx"})
    assert "password" in one_line(e) and "secret" not in one_line(e)
    assert source_of_book({"source": "postgres://me:${PGPASSWORD}@db/cx"}) is not None
    assert book.exists()


def test_an_environment_variable_in_a_url_is_used_and_a_missing_one_named(tmp_path, monkeypatch):
    path = to_duckdb({"Customers": sample_tables()["Customers"]}, tmp_path / "e.duckdb")
    monkeypatch.setenv("CX_DB", str(path))
    assert len(read("duckdb://${CX_DB}").tables["Customers"]) > 0
    monkeypatch.delenv("CX_DB")
    with pytest.raises(SourceError) as e:
        read("duckdb://${CX_DB}")
    assert "CX_DB" in one_line(e)


# -- the command line ---------------------------------------------------------------


def test_cxkpi_kpis_reads_a_parquet_folder(datasets, tmp_path):
    tables, _ = datasets["sample"]
    folder = to_parquet(tables, tmp_path / "pq")
    got = CliRunner().invoke(main, ["kpis", str(folder), "--format", "json"])
    assert got.exit_code == 0, got.output
    csv = CliRunner().invoke(main, ["kpis", str(tmp_path / "none"), "--format", "json"])
    assert csv.exit_code != 0
    write_csv(tables, tmp_path / "csv")
    ref = CliRunner().invoke(main, ["kpis", str(tmp_path / "csv"), "--format", "json"])
    assert_close(json.loads(ref.stdout)["kpis"], json.loads(got.stdout)["kpis"])


def test_cxkpi_kpis_with_a_bad_source_exits_with_one_line(tmp_path):
    got = CliRunner().invoke(main, ["kpis", str(tmp_path / "nothing.duckdb")])
    assert got.exit_code != 0 and "no such file" in got.output
    assert "Traceback" not in got.output and len(got.output.strip().splitlines()) == 1


def test_refresh_with_a_source_writes_the_sources_report_into_the_book(datasets, tmp_path):
    from openpyxl import load_workbook

    tables, _ = datasets["sample"]
    folder = to_parquet(tables, tmp_path / "pq")
    book = write_workbook({"Customers": tables["Customers"].head(3)}, tmp_path / "book.xlsx")
    got = CliRunner().invoke(main, ["refresh", str(book), "--source", str(folder), "-q"])
    assert got.exit_code == 0, got.output
    from cxkpi_xl.refresh import refresh

    done = refresh(book, source=folder)
    expected = compute(read(folder))
    assert done.report.periods == expected.periods
    assert_close(
        {k: list(map(float, v)) for k, v in expected.kpis.items()},
        {k: list(map(float, v)) for k, v in done.report.kpis.items()},
    )
    ws = load_workbook(book, read_only=True)["Report"]
    cells = [c for row in ws.iter_rows(values_only=True) for c in row if c is not None]
    assert expected.periods[-1] in [str(c) for c in cells]  # the source's periods, not 3 rows'


def test_refresh_reads_the_source_the_books_settings_name(datasets, tmp_path):
    tables, _ = datasets["sample"]
    path = to_duckdb(tables, tmp_path / "named.duckdb")
    book = write_workbook(
        {
            "Customers": tables["Customers"].head(2),
            "Settings": pd.DataFrame({"name": ["source"], "value": [path.name]}),
        },
        tmp_path / "book.xlsx",
    )
    from cxkpi_xl.refresh import refresh

    done = refresh(book)
    expected = compute(read(path))
    assert done.report.periods == expected.periods
    assert done.report.kpis.keys() == expected.kpis.keys()


# -- a real PostgreSQL server on a local socket ---------------------------------------

PG_BIN = Path(os.environ.get("CXKPI_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _pg_bin() -> Path | None:
    if (PG_BIN / "initdb").exists():
        return PG_BIN
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own, on a socket in a temporary folder (no TCP port),
    run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is absent")
    bin_ = _pg_bin()
    if bin_ is None:
        pytest.skip("PostgreSQL's server binaries (Debian's postgresql) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="cxkpi-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "cx", "--no-sync")
    options = f"-k {folder} -c listen_addresses='' -F"
    log = str(folder / "log")
    run(str(bin_ / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield f"postgres://cx@/postgres?host={folder}"
    finally:
        subprocess.run(
            [*as_user, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.2)
        shutil.rmtree(folder, ignore_errors=True)


def _pg_load(url: str, schema: str, tables: dict[str, pd.DataFrame]) -> None:
    con = ibis.connect(url)
    con.raw_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    for name, frame in tables.items():
        con.create_table(name.lower(), frame, database=schema)
    con.disconnect()


@pytest.mark.parametrize("name", SETS)
def test_postgresql_gives_the_csv_json(postgres, datasets, name):
    tables, expected = datasets[name]
    _pg_load(postgres, f"cx_{name}", tables)
    assert_close(expected, report_json(postgres, source_tables=f"cx_{name}."))


def test_postgresql_wrong_type_and_missing_tables_are_one_line(postgres):
    bad = pd.DataFrame({"customer_id": ["1"], "month": [True], "mrr": [1.0]})
    _pg_load(postgres, "cx_bad", {"MRR": bad})
    with pytest.raises(SourceError) as e:
        read(postgres, {"source_tables": "cx_bad."})
    assert "cx_bad.mrr, column month" in one_line(e) and "holds dates" in one_line(e)
    _pg_load(postgres, "cx_none", {"Sales": pd.DataFrame({"x": [1]})})
    with pytest.raises(SourceError) as e:
        read(postgres, {"source_tables": "cx_none."})
    assert "none of the input tables" in one_line(e)


# -- Spark in local mode --------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_ok() -> None:
    pytest.importorskip("pyspark", reason="the spark extra (pyspark) is absent")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (Debian's default-jre-headless)")


@pytest.mark.parametrize("name", SETS)
def test_spark_local_gives_the_csv_json(spark_ok, datasets, tmp_path, name):
    tables, expected = datasets[name]
    folder = to_parquet(tables, tmp_path / "pq")
    assert_close(expected, report_json(f"spark://local[1]{folder}"))


# -- without the extras ---------------------------------------------------------------

BLOCKED = """
import sys
for name in ("duckdb", "ibis", "pyspark", "psycopg"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
"""


def test_the_core_reads_csv_without_the_extras_and_names_the_extra_for_parquet(tmp_path):
    tables = sample_tables()
    write_csv(tables, tmp_path / "csv")
    to_parquet(tables, tmp_path / "pq")
    code = BLOCKED + (
        "from cxkpi_xl.data.reader import SourceError, read\n"
        "from cxkpi_xl.engine import compute\n"
        f"assert compute(read({str(tmp_path / 'csv')!r})).periods\n"
        "try:\n"
        f"    read({str(tmp_path / 'pq')!r})\n"
        "except SourceError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines() == [
        "reading this source needs ibis: pip install 'cxkpi-xl[duckdb]'"
    ]


def test_a_table_without_the_schemas_columns_is_left_out_naming_its_columns(tmp_path):
    folder = to_parquet(
        {"Customers": sample_tables()["Customers"], "MRR": pd.DataFrame({"cust": ["1"], "x": [1]})},
        tmp_path / "pq",
    )
    data = read(folder)
    [issue] = [i for i in data.issues if i.sheet == "MRR.parquet"]
    assert "customer_id and month and mrr are missing" in issue.problem
    assert "'cust', 'x'" in issue.problem and data.tables["MRR"].empty


def test_null_settings_of_a_database_are_blanks_not_issues(datasets, tmp_path):
    # A Settings table written by a database holds NULL where the CSV cell is blank
    # (report_start, report_end): they are the defaults, not data issues.
    tables, _ = datasets["sample"]
    settings = pd.DataFrame(
        {"name": ["granularity", "report_start", "report_end"], "value": ["quarter", None, None]}
    )
    folder = to_parquet({**tables, "Settings": settings}, tmp_path / "pq")
    got = report_json(str(folder))
    assert got["granularity"] == "quarter"
    assert not [i for i in got["issues"] if i["table"].lower().startswith("settings")]


def test_a_duckdb_url_opens_its_file_read_only_and_never_creates_one(datasets, tmp_path):
    tables, _ = datasets["sample"]
    path = to_duckdb(tables, tmp_path / "cx.duckdb")
    before = path.read_bytes()
    got = report_json(f"duckdb://{path}")
    assert_close(got, report_json(str(path)))
    assert path.read_bytes() == before
    missing = tmp_path / "nosuch.duckdb"
    with pytest.raises(SourceError) as e:
        read(f"duckdb://{missing}")
    assert "no such file" in one_line(e)
    assert not missing.exists()


def test_a_books_relative_duckdb_url_is_taken_from_the_books_folder(tmp_path, monkeypatch):
    from cxkpi_xl.data.choose import source_of_book

    monkeypatch.chdir(tmp_path)
    book_folder = tmp_path / "books"
    assert source_of_book({"source": "duckdb://cx.duckdb"}, book_folder) == str(
        book_folder / "cx.duckdb"
    )


def test_a_table_as_a_folder_of_parquet_files_is_read(datasets, tmp_path):
    # Usage/part-0.parquet, Usage/part-1.parquet: a partitioned table, as Spark writes it.
    tables, _ = datasets["sample"]
    plain = to_parquet(tables, tmp_path / "plain")
    folder = to_parquet({k: v for k, v in tables.items() if k != "Usage"}, tmp_path / "parts")
    usage = tables["Usage"]
    (folder / "Usage").mkdir()
    half = len(usage) // 2
    usage.iloc[:half].to_parquet(folder / "Usage" / "part-0.parquet", coerce_timestamps="us")
    usage.iloc[half:].to_parquet(folder / "Usage" / "part-1.parquet", coerce_timestamps="us")
    got = report_json(str(folder))
    assert got["kpis"]["stickiness"] == report_json(str(plain))["kpis"]["stickiness"]
    assert any(v is not None for v in got["kpis"]["stickiness"])


def test_a_stray_csv_does_not_hide_a_parquet_folder(datasets, tmp_path):
    tables, _ = datasets["sample"]
    folder = to_parquet(tables, tmp_path / "pq")
    (folder / "notes.csv").write_text("a,b\n1,2\n")
    assert (
        report_json(str(folder))["kpis"]["mrr"]
        == report_json(str(to_parquet(tables, tmp_path / "clean")))["kpis"]["mrr"]
    )


def test_cxkpi_kpis_of_a_book_reads_the_source_its_settings_name(datasets, tmp_path):
    # The same numbers as `cxkpi refresh` writes into that book: from the named source.
    tables, _ = datasets["sample"]
    to_parquet(tables, tmp_path / "pq")
    book = write_workbook(
        {
            "Customers": tables["Customers"].head(2),
            "Settings": pd.DataFrame({"name": ["source"], "value": ["pq"]}),
        },
        tmp_path / "book.xlsx",
    )
    got = CliRunner().invoke(main, ["kpis", str(book), "--format", "json"])
    assert got.exit_code == 0, got.output
    ref = CliRunner().invoke(main, ["kpis", str(tmp_path / "pq"), "--format", "json"])
    assert json.loads(got.stdout)["kpis"] == json.loads(ref.stdout)["kpis"]
    assert any(v is not None for v in json.loads(got.stdout)["kpis"]["mrr"])


def test_a_sqlite_file_is_named_not_opened_by_duckdb(tmp_path):
    # DuckDB would try to download its SQLite extension (no network here): refused first.
    import sqlite3

    path = tmp_path / "lite.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (customer_id TEXT)")
    con.commit()
    con.close()
    with pytest.raises(SourceError) as e:
        read(path)
    assert one_line(e).startswith("lite.db is a SQLite database, not a DuckDB one")


def test_a_backend_without_an_extra_names_ibis_own(monkeypatch):
    import ibis

    def missing(*_a, **_k):  # type: ignore[no-untyped-def]
        raise ImportError("No module named 'MySQLdb'")

    monkeypatch.setattr(ibis, "connect", missing)
    with pytest.raises(SourceError) as e:
        read("mysql://me@db/cx")
    text = one_line(e)
    assert "ibis-framework[mysql]" in text and "cxkpi-xl[mysql]" not in text


def test_a_book_holding_only_settings_that_name_a_source_refreshes_from_it(datasets, tmp_path):
    # Such a book was refused as having "none of the input tables"; and a book that names a
    # source has its own tables left unread (their rows' issues are not the Report's).
    tables, _ = datasets["sample"]
    to_parquet(tables, tmp_path / "pq")
    settings = pd.DataFrame({"name": ["source", "granularity"], "value": ["pq", "quarter"]})
    only = write_workbook({"Settings": settings}, tmp_path / "only.xlsx")
    from cxkpi_xl.refresh import refresh

    done = refresh(only)
    expected = compute(read(tmp_path / "pq", {"granularity": "quarter"}))
    assert done.report.periods == expected.periods and done.report.periods[0].endswith("-Q1")
    assert_close(
        {k: list(map(float, v)) for k, v in expected.kpis.items()},
        {k: list(map(float, v)) for k, v in done.report.kpis.items()},
    )
    bad = tables["Customers"].head(2).assign(signup_date="not a date")
    both = write_workbook({"Customers": bad, "Settings": settings}, tmp_path / "both.xlsx")
    assert not any("not a date" in str(i.value) for i in refresh(both).report.issues)


def test_a_spark_folder_may_be_relative_to_the_current_or_the_books_folder(tmp_path, monkeypatch):
    # spark://local/cx meant the folder cx beside the user, and was looked for at /cx.
    from cxkpi_xl.data.choose import source_of_book
    from cxkpi_xl.data.sources import spark_folder

    (tmp_path / "book" / "cx").mkdir(parents=True)
    (tmp_path / "here" / "cx").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here")
    assert spark_folder("/cx") == tmp_path / "here" / "cx"
    assert spark_folder(f"{tmp_path}/book/cx") == tmp_path / "book" / "cx"  # as written
    assert spark_folder("/nothing") is None
    named = source_of_book({"source": "spark://local[2]/cx"}, tmp_path / "book")
    assert named == f"spark://local[2]{(tmp_path / 'book' / 'cx').resolve()}"
