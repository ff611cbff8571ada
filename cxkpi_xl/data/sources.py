"""Sources beyond a workbook and a CSV folder: a folder of Parquet files (read by DuckDB,
embedded), a DuckDB database file, and a connection URL of an Ibis backend
(``postgres://...``, ``duckdb://...``, ``snowflake://...``, ``bigquery://...``) or a local
Spark session (``spark://local``).

The tables are found by the schema's names, ignoring case, under an optional schema and
table name prefix (the ``source_tables`` setting: ``cx.`` is the schema ``cx``, ``kpi_``
a prefix, ``cx.kpi_`` both). Each table's columns are checked against the schema's types
in the source (a date column where numbers belong is refused with one line), the schema's
columns are fetched, and the frames go through the very same validation as a CSV folder
or a workbook (:func:`cxkpi_xl.data.reader.read` on DataFrames), so the Data Issues and
the KPIs are the same; an issue names the source's table (``MRR.parquet``, ``cx.mrr``)
and its row as the same table exported to CSV would number it (the header is row 1), in
the order the source returns the rows.

With ``pushdown=True`` (the default), Usage, the largest table, is validated and
summarised in the source's engine (:func:`usage_pushdown`): only a
:class:`~cxkpi_xl.data.usage.UsageSummary` (users per day and month, distinct
month/customer/feature triples) and its first bad rows of each kind reach Python, and the
engine computes the usage KPIs from the summary. When a reader rule cannot be applied in
the source (text days, times of day, users neither text nor whole numbers), Usage is read
row by row; :func:`reduce_usage` then still drops repeated rows in the source when every
row is clean. ``tests/test_usage_pushdown.py`` proves the JSON equal to the CSV folder's.

Credentials never come from the workbook: a ``source`` setting with a password in it is
refused. PostgreSQL takes them from ``PGUSER``/``PGPASSWORD``/``PGHOST`` (or
``~/.pgpass``), Snowflake and BigQuery from their own configuration; a URL may name an
environment variable as ``${NAME}``, replaced when it is opened.

duckdb, ibis-framework and pyspark are optional extras, imported only here and only when
such a source is read.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from .issues import Issue
from .schema import (
    CUSTOMER_ID_COLUMNS,
    DATE,
    ID,
    MONTH,
    NUMBER,
    TABLES,
    TABLES_BY_NAME,
    TEXT,
    YESNO,
    Table,
)


class SourceError(Exception):
    """Raised inside this module; :func:`read_source` hands it on as the reader's
    ``SourceError`` (this module does not import the reader, which calls it)."""


def column_key(name: Any) -> str:
    return _reader.column_key(name)


_reader: Any = None
"""The reader module, handed over by :func:`read_source` (the reader calls this module,
so it cannot be imported from here)."""

PARQUET = ".parquet"
DUCKDB_FILES = (".duckdb", ".ddb", ".db")
SPARK = "spark"
SETTINGS_TABLE = "settings"
EXTRAS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "postgresql": "postgres",
    "spark": "spark",
    "pyspark": "spark",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
}


def is_url(source: Any) -> bool:
    return isinstance(source, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def is_source(source: Any) -> bool:
    """Whether ``source`` is one of the sources of this module (not a workbook, a CSV
    folder or DataFrames)."""
    if is_url(source):
        return True
    if not isinstance(source, str | os.PathLike):
        return hasattr(source, "list_tables") or type(source).__name__ == "SparkSession"
    path = Path(source)
    if path.suffix.lower() in DUCKDB_FILES:
        return True
    if path.is_dir():
        entries = list(path.iterdir())
        named = {t.name.lower() for t in TABLES}
        has_csv = any(p.suffix.lower() == ".csv" and p.stem.lower() in named for p in entries)
        return not has_csv and any(_parquet_table(p) for p in entries)
    return path.suffix.lower() == PARQUET


def _parquet_table(entry: Path) -> bool:
    """A table of a Parquet folder: a ``.parquet`` file, or a folder of them (named
    ``Usage.parquet/`` or ``Usage/``, as Spark and DuckDB write partitioned tables)."""
    if entry.suffix.lower() == PARQUET:
        return True
    return entry.is_dir() and any(entry.rglob("*.parquet"))


def _expand(url: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise SourceError(f"the source names the environment variable {name}, which is not set")
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, url)


def has_password(url: str) -> bool:
    """Whether a URL holds a password (user:password@ or password=...)."""
    parts = urlsplit(url)
    if parts.password and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", parts.password):
        return True
    query = parse_qs(parts.query)
    return any(k.lower() in ("password", "pwd") for k in query)


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SourceError(
            f"reading this source needs {module}: pip install 'cxkpi-xl[{extra}]'"
        ) from None


@dataclass
class _Opened:
    con: Any
    label: str
    tables: dict[str, Any]  # lower-case name -> ibis table
    names: dict[str, str]  # lower-case name -> the name as the source shows it
    database: Any = None
    outside: tuple[str, ...] = ()  # tables the source_tables setting left out
    private: bool = False  # DuckDB in memory for this read alone (a Parquet folder)


def _parquet(path: Path) -> _Opened:
    ibis = _need("ibis", "duckdb")
    con = ibis.duckdb.connect()
    # Never a progress bar on standard output (it would run into cxkpi's JSON there)
    con.raw_sql("SET enable_progress_bar = false")
    con.raw_sql("SET enable_progress_bar_print = false")
    files = [path] if path.is_file() else sorted(path.iterdir())
    tables: dict[str, Any] = {}
    names: dict[str, str] = {}
    for f in files:
        if not _parquet_table(f):
            continue
        key = (f.stem if f.suffix.lower() == PARQUET else f.name).lower()
        pattern = str(f / "**" / "*.parquet") if f.is_dir() else str(f)
        try:
            tables[key] = con.read_parquet(pattern, table_name=f"t_{len(tables)}")
        except Exception as e:
            raise SourceError(f"{f.name} cannot be read as Parquet: {_line(e)}") from None
        names[key] = f.name
    return _Opened(con, str(path), tables, names, private=True)


def spark_folder(folder: str, home: Path | None = None) -> Path | None:
    """The folder of ``spark://local/FOLDER``: FOLDER as written (``/data/cx``), else
    relative (``spark://local/cx`` for ``cx`` in ``home``, the current folder by default);
    None when neither is a folder."""
    for path in (Path(folder), (home or Path.cwd()) / folder.lstrip("/")):
        if folder.strip("/") and path.is_dir():
            return path
    return None


def _spark(url: str) -> Any:
    """A local Spark session: ``spark://local`` (or ``spark://local[4]``) and optionally a
    folder ``spark://local/DIR`` whose Parquet files become the session's views."""
    _need("pyspark", "spark")
    from pyspark.sql import SparkSession

    m = re.match(r"^(?:py)?spark://(local(?:\[[0-9*]+\])?)(/.*)?$", url)
    if not m:
        raise SourceError(
            f"{url}: a Spark source is spark://local or spark://local/FOLDER (local mode); "
            "for a cluster, pass its SparkSession to cxkpi_xl.data.sources.read_source"
        )
    session = (
        SparkSession.builder.master(m.group(1))
        .appName("cxkpi")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    folder = m.group(2)
    if folder:
        path = spark_folder(folder)
        if path is None:
            raise SourceError(f"{url}: no such folder {folder} (nor {folder[1:]} in {Path.cwd()})")
        for t in session.catalog.listTables():  # the views of an earlier folder
            if t.isTemporary:
                session.catalog.dropTempView(t.name)
        for f in sorted(path.iterdir()):
            if f.suffix.lower() == PARQUET:
                session.read.parquet(str(f)).createOrReplaceTempView(f.stem.lower())
    return session


def _connect(source: Any) -> tuple[Any, str]:
    """An Ibis backend for a source, and its label."""
    ibis = _need("ibis", "duckdb")
    if not isinstance(source, str | os.PathLike):  # a SparkSession or an Ibis backend
        if hasattr(source, "list_tables"):
            return source, type(source).__module__
        if type(source).__name__ == "SparkSession":
            return ibis.pyspark.connect(source), "Spark session"
        raise SourceError(f"{type(source).__name__} is not a source cxkpi can read")
    if isinstance(source, str) and source.lower().startswith("duckdb://"):
        source = duckdb_url_path(_expand(source))  # a file: must exist, read-only
    if isinstance(source, os.PathLike) or not is_url(source):
        path = Path(source)
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        _need("duckdb", "duckdb")
        if path.is_file():
            with path.open("rb") as f:
                head = f.read(16)
            if head.startswith(b"SQLite format 3"):
                raise SourceError(
                    f"{path.name} is a SQLite database, not a DuckDB one: export its tables "
                    "to Parquet or CSV, or copy them into a DuckDB file"
                )
            if len(head) >= 12 and head[8:12] != b"DUCK":  # DuckDB's magic bytes
                raise SourceError(
                    f"{path.name} cannot be opened as a DuckDB database: it is not one "
                    "(no DuckDB header)"
                )
        try:
            return ibis.duckdb.connect(str(path), read_only=True), str(path)
        except Exception as e:
            raise SourceError(
                f"{path.name} cannot be opened as a DuckDB database: {_line(e)}"
            ) from None
    scheme = source.split("://", 1)[0].lower()
    shown = _hide_password(source)
    if scheme in ("spark", "pyspark"):
        _need("ibis", "spark")
        return ibis.pyspark.connect(_spark(source)), shown
    extra = EXTRAS.get(scheme, scheme)
    if scheme in ("postgres", "postgresql"):
        _need("psycopg", extra)
    url = _expand(source)
    try:
        return ibis.connect(url), shown
    except SourceError:
        raise
    except ImportError:
        install = (
            f"pip install 'cxkpi-xl[{extra}]'"
            if scheme in EXTRAS
            else f"cxkpi-xl has no extra for it; Ibis' is pip install 'ibis-framework[{scheme}]'"
        )
        raise SourceError(f"{shown}: the {scheme} backend is not installed: {install}") from None
    except Exception as e:
        raise SourceError(f"{shown} cannot be reached: {_line(e)}") from None


def duckdb_url_path(url: str) -> str:
    """The file of a ``duckdb://`` URL (``duckdb:///abs/cx.duckdb``, ``duckdb://cx.duckdb``
    relative to the working folder). DuckDB would create a missing file and open it for
    writing; cxkpi opens the file itself, read-only, so a typo is "no such file"."""
    path = url.split("://", 1)[1]
    if not path or path == ":memory:":
        raise SourceError(f"{url}: name the DuckDB file (duckdb:///path/to/cx.duckdb)")
    return path


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _split_tables_setting(where: str | None) -> tuple[str | None, str]:
    """``source_tables`` as (schema or None, prefix)."""
    if not where:
        return None, ""
    if "." in where:
        schema, prefix = where.rsplit(".", 1)
        return schema or None, prefix
    return None, where


def _database_tables(con: Any, label: str, where: str | None) -> _Opened:
    schema, prefix = _split_tables_setting(where)
    try:
        listed = con.list_tables(database=schema) if schema else con.list_tables()
    except Exception as e:
        raise SourceError(f"{label}: cannot list its tables ({_line(e)})") from None
    tables: dict[str, Any] = {}
    names: dict[str, str] = {}
    outside = []
    for name in listed:
        low = name.lower()
        if not low.startswith(prefix.lower()):
            outside.append(name)
            continue
        key = low[len(prefix) :]
        if key in names:
            continue
        try:
            tables[key] = con.table(name, database=schema) if schema else con.table(name)
        except Exception as e:
            raise SourceError(f"{label}: cannot open table {name} ({_line(e)})") from None
        names[key] = f"{schema}.{name}" if schema else name
    if where:
        label = f"{label} (tables under {where})"
    return _Opened(con, label, tables, names, outside=tuple(outside))


def _open(source: Any, where: str | None) -> _Opened:
    if isinstance(source, str | os.PathLike) and not is_url(source):
        path = Path(source)
        if path.suffix.lower() == PARQUET or (path.is_dir() and is_source(path)):
            return _parquet(path)
    con, label = _connect(source)
    return _database_tables(con, label, where)


# --- types ---------------------------------------------------------------------------

_ACCEPTED = {
    ID: ("integer", "string", "decimal"),
    TEXT: ("string", "integer", "floating", "decimal", "boolean", "date", "timestamp"),
    NUMBER: ("integer", "floating", "decimal", "string"),
    DATE: ("date", "timestamp", "string"),
    MONTH: ("date", "timestamp", "string"),
    YESNO: ("boolean", "string", "integer"),
}
_WORDS = {
    ID: "ids (text or whole numbers)",
    TEXT: "text",
    NUMBER: "numbers",
    DATE: "dates",
    MONTH: "dates (any day of the month)",
    YESNO: "yes/no values",
}


def _kind(dtype: Any) -> str:
    for kind in ("null", "boolean", "integer", "floating", "decimal", "string", "date"):
        if getattr(dtype, f"is_{kind}")():
            return kind
    if dtype.is_timestamp():
        return "timestamp"
    return str(dtype)


def _columns(table: Table, label: str, expr: Any) -> Any:
    """The schema's columns of one source table (others are not fetched), checked for
    their types, decimals cast to float and time zones dropped."""
    wanted = {column_key(c.name): c for c in table.columns}
    picked = []
    for name, dtype in expr.schema().items():
        col = wanted.get(column_key(name))
        if col is None:
            continue
        kind = _kind(dtype)
        if kind != "null" and kind not in _ACCEPTED[col.type]:
            raise SourceError(
                f"{label}, column {name}: its type in the source is {dtype}, "
                f"but {table.name}.{col.name} holds {_WORDS[col.type]}"
            )
        value = expr[name]
        if kind == "decimal":
            value = value.cast("float64")
        elif kind == "timestamp" and getattr(dtype, "timezone", None):
            value = value.cast("timestamp")
        picked.append(value.name(name))
    return expr.select(picked) if picked else None


def _frame(
    label: str, expr: Any, repeated: Collection[str] = (), days: bool = False
) -> pd.DataFrame:
    """One table's rows as pandas columns, through Arrow: a text column as a categorical
    (each distinct value one Python string, the rows small integer codes: millions of
    repeated customer ids would otherwise be millions of strings), a date as
    datetime64, a time zone dropped. A text column whose first 100,000 rows are mostly
    distinct (response ids) stays plain text, unless it is one of ``repeated`` (the
    columns holding a customer id: 5 million answers of 1 million customers look
    distinct in their first rows, yet each id comes back five times). With ``days`` a
    date column too comes as a categorical (its distinct days; for the reader, not for
    frames to be put together). The categoricals' codes are Arrow's, in order of first
    appearance, which the reader takes as they are (``reader.CODED``)."""
    # In batches: DuckDB does not hold the whole result while Arrow copies it.
    table = _run(label, expr, lambda: expr.to_pyarrow_batches(chunk_size=1 << 20).read_all())
    import pyarrow as pa

    columns: dict[str, Any] = {}
    normal: set[str] = set()
    coded: set[str] = set()  # categoricals coded in order of first appearance (Arrow's)
    for name in table.column_names:
        # Each column taken out of the Arrow table, so that its Arrow memory is freed as
        # soon as it is converted, not held until the last column is.
        column, table = table.column(name), table.drop_columns([name])
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            head = column.slice(0, 100_000).combine_chunks().dictionary_encode()
            if 2 * len(head.dictionary) > len(head) and column_key(name) not in repeated:
                columns[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
                if _as_written(column):
                    normal.add(column_key(name))
                continue
            encoded = column.combine_chunks().dictionary_encode()  # one memo, not per chunk
            columns[name] = pd.Categorical.from_codes(
                encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                pd.Index(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object),
            )
            coded.add(column_key(name))
            if _as_written(encoded.dictionary):
                normal.add(column_key(name))
            continue
        if days and pa.types.is_date32(kind) and len(column):
            # A date column as a categorical of its distinct days (a few thousand), coded
            # as the text: the reader reads each day once and takes the rows by code,
            # instead of making and hashing 20 million datetime64 values.
            encoded = column.combine_chunks().dictionary_encode()
            distinct = pd.Index(encoded.dictionary.to_pandas(date_as_object=False))
            columns[name] = pd.Categorical.from_codes(
                encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), distinct
            )
            coded.add(column_key(name))
            continue
        values = column.to_pandas(date_as_object=False)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_localize(None)
        columns[name] = values
    frame = pd.DataFrame(columns, copy=False)  # a copy of millions of rows costs seconds
    frame.attrs[_reader.AS_WRITTEN] = frozenset(normal)
    frame.attrs[_reader.CODED] = frozenset(coded)
    return frame


def _as_written(column: Any) -> bool:
    """Whether the reader would keep every value of a text column as it is, as an id or
    as text (``reader.AS_WRITTEN``): each value starts with a printable ASCII character
    other than ``#`` (an Excel error such as ``#N/A`` starts so) and ends with a printable
    ASCII character (so no space of any kind at either end, nothing empty), and is not
    digits then ``.0`` (``1001.0``, an id a CSV export typed as a number). Anything else
    is left to the reader's own rules, value by value."""
    import pyarrow.compute as pc

    ok = pc.match_substring_regex(column, r"(?s)^[!\x22\x24-~](.*[!-~])?$")
    number = pc.match_substring_regex(column, r"^[0-9]+\.0$")
    bad = pc.or_kleene(pc.invert(ok), number)
    return not pc.any(bad).as_py()


# --- reading -------------------------------------------------------------------------


def read_source(
    source: Any,
    overrides: Mapping[str, Any] | None = None,
    *,
    reader: Any,
    pushdown: bool = True,
) -> Any:
    """Read a Parquet folder, DuckDB file, connection URL, SparkSession or Ibis backend
    into a validated ``Dataset``, as :func:`~cxkpi_xl.data.reader.read` reads a CSV
    folder (``reader`` is that module: ``read`` hands itself over). ``overrides`` are
    settings (``source_tables`` among them). Raises the reader's ``SourceError`` with one
    line for a source that cannot be read."""
    global _reader
    _reader = reader
    try:
        return _read_source(source, overrides, pushdown)
    except SourceError as e:
        raise reader.SourceError(str(e)) from None


def _read_source(source: Any, overrides: Mapping[str, Any] | None, pushdown: bool) -> Any:
    overrides = dict(overrides or {})
    where = overrides.pop("source_tables", None)
    overrides.pop("source", None)
    opened = _open(source, where)
    raw_settings = _settings(opened)
    inputs = [t for t in TABLES if t.name != "HealthWeights"]
    if not any(t.name.lower() in opened.tables for t in inputs):
        found = ", ".join(sorted(opened.names.values())[:10])
        if not found and opened.outside:  # the prefix of source_tables matched none
            found = f"none under {where}; without the prefix: " + ", ".join(
                sorted(opened.outside)[:10]
            )
        raise SourceError(
            f"{opened.label} has none of the input tables: looked for "
            f"{', '.join(t.name for t in inputs)} (in any case; its tables: {found or 'none'})"
        )
    labels: dict[str, str] = {}
    exprs: dict[str, Any] = {}
    # Every table's columns checked first (Usage's first), so that a wrong type is the same
    # one line whichever connection reads the table.
    for table in sorted(TABLES, key=lambda t: t.name != "Usage"):
        key = table.name.lower()
        if key not in opened.tables:
            continue
        labels[table.name] = opened.names[key]
        exprs[table.name] = _columns(table, labels[table.name], opened.tables[key])
    job: _Steps | None = None
    other = opened
    spill: str | None = None
    if pushdown and exprs.get("Usage") is not None:
        # Usage summarised in the source's engine, in a thread where the engine runs its
        # queries without Python's lock while this thread reads and validates the other
        # tables through a second connection; one after the other (Usage first, so that
        # the engine's peak of memory and the other tables' do not add up) where there is
        # no second connection to be had.
        alongside = _alongside(source, where, opened)
        if alongside is not None:
            spill = _limit_memory(opened)
        steps = usage_steps(exprs["Usage"], labels["Usage"], unordered=alongside is not None)
        job = _Steps(steps, opened, alongside is not None)
        other = alongside or opened
    try:
        data, push = _validate(opened, other, exprs, labels, job, raw_settings, overrides)
    except BaseException:
        if job is not None:
            job.cancel()
        raise
    finally:
        if other is not opened:
            _disconnect(other)
        if spill is not None:
            # The thread waited for and its DuckDB closed first, so that no spilled block
            # is written into the folder after it is deleted.
            if job is not None:
                job.cancel()
            _disconnect(opened)
            shutil.rmtree(spill, ignore_errors=True)
    if push is not None:
        columns = tuple(c.name for c in TABLES_BY_NAME["Usage"].columns)
        data.issues = _usage_issues(data.issues, push, columns)
        data.tables["Usage"] = data.tables["Usage"].iloc[0:0]
        data.usage_summary = push.summary
    data.issues = [
        replace(i, sheet=labels[i.sheet]) if i.sheet in labels else i for i in data.issues
    ]
    data.source = opened.label
    return data


def _validate(
    opened: _Opened,
    other: _Opened,
    exprs: dict[str, Any],
    labels: dict[str, str],
    job: _Steps | None,
    raw_settings: dict[str, Any],
    overrides: dict[str, Any],
) -> tuple[Any, _UsagePushdown | None]:
    """The tables read (the other tables through ``other``), Usage's bad rows or rows
    taken from ``job`` when it summarises Usage, and all validated by the reader; the
    Usage summary waited for last."""
    frames: dict[str, Any] = {}
    push: _UsagePushdown | None = None
    for table in TABLES:
        if table.name not in exprs or (job is not None and table.name == "Usage"):
            continue
        key, label = table.name.lower(), labels[table.name]
        expr = exprs[table.name]
        if expr is None:  # none of its columns: the reader says which it has
            frames[table.name] = pd.DataFrame(columns=list(opened.tables[key].schema().names))
            continue
        if other is not opened:
            expr = _columns(table, label, other.tables[key])
        if table.name == "Usage":
            expr = reduce_usage(expr)
        frames[table.name] = _frame(label, expr, _id_columns(table), True)  # days coded
    if job is not None:
        push = job.next()
        if push is None:  # the rules cannot be applied in the source: row by row
            usage = TABLES_BY_NAME["Usage"]
            expr = reduce_usage(exprs["Usage"])
            frames["Usage"] = _frame(labels["Usage"], expr, _id_columns(usage), True)
        else:  # the bad rows, for the reader to word
            frames["Usage"] = push.sample
    frames = {t.name: frames[t.name] for t in TABLES if t.name in frames}  # schema order
    frames["Settings"] = raw_settings
    data = _reader.read(frames, overrides)
    if push is not None:
        push.summary = job.next()  # type: ignore[union-attr]
    return data, push


def _id_columns(table: Table) -> set[str]:
    """The columns of ``table`` holding a customer id (its own key aside)."""
    return {column_key(c) for t, c in CUSTOMER_ID_COLUMNS if t == table.name and c != table.key}


class _Steps:
    """The values of a generator of steps (:func:`usage_steps`), worked out in a thread
    (``threaded``) while the caller does other work, or at once. :meth:`next` hands on
    each value in turn, or raises the error that ended the steps."""

    def __init__(self, steps: Iterator[Any], opened: _Opened, threaded: bool) -> None:
        import queue
        import threading

        self._steps = steps
        self._opened = opened
        self._values: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="cxkpi-usage", daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            for value in self._steps:
                self._values.put((True, value))
                if self._stop.is_set():
                    break
        except BaseException as e:  # handed to the caller by next()
            self._values.put((False, e))
        finally:
            self._steps.close()

    def next(self) -> Any:
        ok, value = self._values.get()
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """Stop the steps (the engine's running query interrupted) and wait for them."""
        self._stop.set()
        thread = self._thread
        while thread is not None and thread.is_alive():
            interrupt = getattr(getattr(self._opened.con, "con", None), "interrupt", None)
            if interrupt is not None:
                interrupt()
            thread.join(0.05)


USAGE_MEMORY = "1GB"
"""DuckDB's memory for the Usage summary while the other tables are read alongside (the
rest spills to a temporary folder of the read's own, deleted after): the other tables'
peak in Python and the engine's then add up to no more than the larger of the two one
after the other (about 3 GB each at scale 1)."""


def _alongside(source: Any, where: str | None, opened: _Opened) -> _Opened | None:
    """A second connection to the source, for its other tables while Usage is summarised
    through the first (when :func:`overlap` says so): for a Parquet folder, read by a
    DuckDB of its own, whose queries run without Python's lock. None for the other
    sources (a DuckDB file, whose settings are shared by every connection to it in the
    process; PostgreSQL, Spark, a backend handed over, whose connections are not known to
    take a second query at once): their tables are read one query at a time, Usage first,
    as before."""
    if not opened.private or not isinstance(source, str | os.PathLike) or not overlap():
        return None
    return _open(source, where)


OVERLAP = "CXKPI_SOURCE_OVERLAP"
"""Environment variable: 1 reads a Parquet folder's other tables while its Usage is
summarised, 0 one after the other; unset, :func:`overlap` decides."""


def overlap() -> bool:
    """Whether a Parquet folder's other tables are read while its Usage is summarised:
    ``CXKPI_SOURCE_OVERLAP`` (1 or 0), else on 4 cores or more. On 2 cores DuckDB's own
    two threads already take both, and at scale 1 the overlap was no faster (33-74 s
    against 31-85 s one after the other, on the shared machine) with 0.5 GB more peak
    memory and 0.3 GB more held after the read."""
    value = os.environ.get(OVERLAP, "").strip()
    if value in ("0", "1"):
        return value == "1"
    return (os.cpu_count() or 1) >= 4


def _limit_memory(opened: _Opened) -> str:
    """Cap the memory of ``opened``'s DuckDB at :data:`USAGE_MEMORY`, spilling to a new
    temporary folder (returned, for the caller to delete: DuckDB's default is ``.tmp``
    in the working folder)."""
    import tempfile

    spill = tempfile.mkdtemp(prefix="cxkpi-duckdb-")
    quoted = spill.replace("'", "''")
    opened.con.raw_sql(f"SET temp_directory = '{quoted}'")
    uncapped = opened.con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    opened.con.raw_sql(f"SET memory_limit = '{USAGE_MEMORY}'")
    setattr(opened.con, CAPPED, uncapped.replace(" ", ""))
    return spill


CAPPED = "_cxkpi_uncapped"
"""Set on a backend whose memory :func:`_limit_memory` capped: its memory limit before
(see :func:`_run`)."""


def _disconnect(opened: _Opened) -> None:
    try:
        opened.con.disconnect()
    except Exception:
        pass


def _settings(opened: _Opened) -> dict[str, Any]:
    """name/value rows of a Settings table, if the source has one."""
    expr = opened.tables.get(SETTINGS_TABLE)
    if expr is None:
        return {}
    frame = _frame(opened.names[SETTINGS_TABLE], expr)
    if frame.shape[1] < 2:
        return {}
    out: dict[str, Any] = {}
    for name, value in zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True):
        key = str(name).strip().lower()
        if value is None or (isinstance(value, float) and value != value):
            continue  # NULL: a blank setting (the default), as a blank CSV cell
        if key and key != "name":
            out[key] = value
    return out


def reduce_usage(expr: Any) -> Any:
    """Usage reduced in the source's engine to its distinct rows, when every row is clean
    (its day a date and its user present); else the table as it is, so that the reader
    reports each bad row. The engine counts distinct users, customers and features per
    day and period, so distinct rows give the same KPIs."""
    schema = expr.schema()
    names = {column_key(n): n for n in schema}
    day, user = names.get("activitydate"), names.get("userid")
    if day is None or user is None or not schema[day].is_temporal():
        return expr
    # No day may lie far from the others (the reader's far-date rule looks at every row):
    # days within ten years of each other never are.
    span = expr.aggregate(lo=expr[day].min(), hi=expr[day].max()).execute()
    lo, hi = pd.Timestamp(span["lo"].iat[0]), pd.Timestamp(span["hi"].iat[0])
    if pd.isna(lo) or hi - lo > pd.Timedelta(days=3652):
        return expr
    blank_user = expr[user].isnull()
    if schema[user].is_string():
        blank_user = blank_user | (expr[user].strip() == "")
    bad = expr.filter(expr[day].isnull() | blank_user).count()
    if int(bad.execute()) > 0:
        return expr
    return expr.distinct()


# --- Usage summarised in the source's engine -------------------------------------------

ISSUE_ROWS = 20
"""Rows listed per kind of bad Usage row; one more issue counts the rest."""

_SENTINEL_USER = "\x00cxkpi"
"""The user of the row appended to the bad rows handed to the reader: its one issue (a
blank day) marks where the reader puts the Usage issues, and is then taken out."""


_ODD_SPACES = "".join(
    c for c in map(chr, range(0x3001)) if c.isspace() and c not in " \t\n\r\x0b\x0c"
)
"""What Python's ``str.strip`` strips (as the reader does) and SQL's trim does not (Ibis
trims spaces, tabs, line breaks, vertical tabs and form feeds in every backend)."""


@dataclass
class _Kind:
    """One kind of bad Usage row: the schema column its issue names, its place among the
    reader's issues of that column (0 a bad value, 1 a far date, 2 a blank), whether the
    reader writes it as a blank, the condition in the source and its count."""

    column: str
    phase: int
    condition: Any
    count: int = 0


@dataclass
class _UsagePushdown:
    summary: Any  # UsageSummary (None until the second step of usage_steps)
    sample: pd.DataFrame  # the first bad rows of each kind, then the sentinel row
    rows: np.ndarray  # their row numbers (the sentinel's is 0)
    kinds: dict[int, list[_Kind]]  # row number -> the kinds it was listed for
    listed: list[_Kind]
    far_issues: list[Any]


def _source_day(expr: Any, day: str) -> tuple[Any, Any] | None:
    """(day, month index) expressions of the Usage day column, or None when it is not a
    date (text days: the reader's date parsing runs in Python)."""
    dtype = expr.schema()[day]
    if dtype.is_date():
        d = expr[day]
    elif dtype.is_timestamp():
        d = expr[day].date()
    else:
        return None
    return d, (d.year() * 12 + d.month() - 1).cast("int64")


def usage_pushdown(expr: Any, label: str) -> _UsagePushdown | None:
    """Usage validated and summarised in the source's engine (the schema's columns of the
    table, as :func:`_columns` selects them); None when a rule cannot be applied there, and
    the table is then read row by row (correct, slower).

    The reader's Usage rules, as the source applies them: a row with nothing in it is not
    data; a blank day or user skips the row; a user that is an Excel error (``#N/A``) skips
    it; a day far outside the column's other days (``reader._far_dates``: the median and
    MAD are taken from the count of rows per day, exactly) skips it; a customer or feature
    that is an Excel error is a blank. Customers and features are normalised by the
    reader's own rules over their distinct values (one definition of an id), users by the
    same rule written in the engine (spaces stripped, ``1001.0`` is ``1001``).

    Read row by row instead: days held as text (their format and day/month order are the
    reader's to work out) or timestamps with a time of day (the far-date rule looks at the
    exact time), users that are neither text nor whole numbers, and text users with
    whitespace at either end that SQL's trim keeps (``_ODD_SPACES``: a no-break space)."""
    steps = usage_steps(expr, label)
    try:
        push = next(steps)
        if push is not None:
            push.summary = next(steps)
    finally:
        steps.close()
    return push


def usage_steps(expr: Any, label: str, unordered: bool = False) -> Iterator[Any]:
    """:func:`usage_pushdown` in two steps, so that the reader can word the first bad rows
    while the source's engine is still summarising: first the bad rows (a
    :class:`_UsagePushdown` whose summary is still None; None when Usage is to be read row
    by row, and then nothing more), then the :class:`~cxkpi_xl.data.usage.UsageSummary`.
    The first step counts the bad rows of each kind (users once per distinct user, rows per
    day for the far-date rule, the customers' and features' distinct values); the second
    scans the clean rows twice, for the users per month and day and for the triples.

    With ``unordered`` (a DuckDB of this read alone), the second step's queries no longer
    keep the rows' order (none of them needs it; the bad rows, numbered by their order,
    are the first step's), which lets DuckDB spill their results instead of running out
    of memory under a cap."""
    from .usage import UsageSummary

    ibis = _need("ibis", "duckdb")
    schema = expr.schema()
    names = {column_key(n): n for n in schema}
    day, user = names.get("activitydate"), names.get("userid")
    cust, feat = names.get("customerid"), names.get("feature")
    if day is None or user is None:
        return None  # the reader says which required column is missing
    days = _source_day(expr, day)
    utype = schema[user]
    if days is None or not (utype.is_string() or utype.is_integer()):
        yield None
        return
    d, month = days
    text_user = utype.is_string()
    u = expr[user]
    key, user_blank, user_error, _ = _user_rules(u, text_user)
    never = u.isnull() & ibis.literal(False)  # a column (a literal is no column to sum)
    timed = never
    if schema[day].is_timestamp():
        timed = expr[day] != expr[day].truncate("D")
    filled = ibis.literal(False)
    for name in (day, user, cust, feat):
        if name is None:
            continue
        present = expr[name].notnull()
        if schema[name].is_string():
            present = present & (expr[name] != "")
        filled = filled | present
    data = expr.filter(filled)  # the reader drops rows with nothing in them

    def count(cond: Any, n: Any = 1) -> Any:
        return cond.fill_null(False).ifelse(n, 0).sum()

    # The user rules on each distinct user once (with its count of rows), not on each row.
    def checks(rows: Any) -> Any:
        by_user = rows.group_by(uu=u).aggregate(
            n=u.isnull().count(), timed=count(timed), day_blank=count(expr[day].isnull())
        )
        g_key, g_blank, g_error, g_odd = _user_rules(by_user.uu, text_user)
        hashes = {}
        if hashed:  # whether the users' 64-bit hashes tell them all apart (see below)
            hashes = {"keys": g_key.nunique(), "hashes": g_key.hash().nunique()}
        return by_user.aggregate(
            timed=by_user.timed.sum(),
            day_blank=by_user.day_blank.sum(),
            odd=count(g_odd & by_user.uu.notnull(), by_user.n),
            user_blank=count(g_blank, by_user.n),
            user_error=count(g_error, by_user.n),
            normalised=count(g_key != by_user.uu, by_user.n),
            **hashes,
        )

    # DuckDB groups rows by an integer faster, and in less memory, than by a text: the
    # users per day and month are counted by the hash of each user when no two users (as
    # the reader writes them) have one hash, as the checks below count (else by the text).
    hashed = text_user and expr._find_backend(use_default=True).name == "duckdb"

    # A row with a day is data: only when some day is blank must the rows with nothing in
    # them be told apart, which reads every column of every row, not just the day and user.
    c = _execute(label, checks(expr)).iloc[0]
    if int(c["day_blank"] or 0):
        c = _execute(label, checks(data)).iloc[0]
    if int(c["timed"] or 0) or int(c["odd"] or 0):
        yield None
        return
    if not int(c["normalised"] or 0):
        key = u  # every user is already as the reader writes it: no work per row
    user_key = key.hash() if hashed and int(c["keys"]) == int(c["hashes"]) else key

    # The far-date rule, exactly as the reader's, from the count of rows per day (a far day
    # is a whole day: its rows are left out of the clean ones below).
    dated = expr.filter(expr[day].notnull())  # a row with a day is data
    per_day = _execute(label, dated.group_by(d=d).aggregate(n=expr[day].count()))
    day_values = _days(per_day["d"])
    day_counts = per_day["n"].to_numpy(np.int64)
    far_days = _far_days(day_values, day_counts)
    kinds: list[_Kind] = []
    far_cond = None
    far_issue_text = ""
    if far_days.any():
        ok_days = day_values[~far_days]
        lo, hi = ok_days.min(), ok_days.max()
        lo_d = pd.Timestamp(lo.astype("datetime64[D]"))
        hi_d = pd.Timestamp(hi.astype("datetime64[D]"))
        far_cond = expr[day].notnull() & ((d < lo_d.date()) | (d > hi_d.date()))
        far_issue_text = f"is far outside the column's other dates ({lo_d.date()} to {hi_d.date()})"
        kinds.append(_Kind("activity_date", 1, far_cond, int(day_counts[far_days].sum())))
    kinds.append(_Kind("activity_date", 2, expr[day].isnull(), int(c["day_blank"] or 0)))
    kinds.append(_Kind("user_id", 0, user_error, int(c["user_error"] or 0)))
    kinds.append(_Kind("user_id", 2, user_blank & ~user_error, int(c["user_blank"] or 0)))

    # Customers and features: their distinct values, normalised by the reader's rules.
    def dictionary(name: str | None, convert: Any, column: str) -> tuple[Any, np.ndarray, Any]:
        """(the source's distinct values with their codes, each code's normalised code
        (-1: blank or bad), the normalised values); a kind for its Excel errors."""
        if name is None:
            return None, np.zeros(0, np.int64), np.zeros(0, dtype=object)
        col = expr[name]
        present = col.notnull() & (col != "") if schema[name].is_string() else col.notnull()
        distinct = expr.select(v=col).filter(present).distinct()  # present: the row is data
        coded = _cache(distinct.mutate(code=ibis.row_number().over(order_by=distinct.v)), cached)
        values = _execute(label, coded)
        raw = np.empty(len(values), dtype=object)
        raw[values["code"].to_numpy(np.int64)] = values["v"].to_numpy(object)
        converted, bad, codes = _reader._normalise_by_unique(pd.Series(raw, dtype=object), convert)
        normal = np.array([*converted, None], dtype=object)[codes]
        recode, uniques = pd.factorize(normal)
        if bad:
            bad_values = [raw[i] for i in bad]
            if schema[name].is_string():
                bad_values = [str(v) for v in bad_values]
            cond = expr[name].isin(bad_values)
            n = int(_execute(label, data.filter(cond).count()))
            kinds.append(_Kind(column, 0, cond, n))
        return coded, recode.astype(np.int64), np.asarray(uniques, dtype=object)

    cached: list[Any] = []
    try:
        cust_coded, cust_recode, customers = dictionary(cust, _reader._to_id, "customer_id")
        feat_coded, feat_recode, features = dictionary(feat, _reader._to_text, "feature")
        yield _bad_rows(expr, filled, label, kinds, (day, user), far_issue_text)

        # The clean rows, summarised.
        clean = expr.filter(expr[day].notnull())  # each filter only where it has work to do
        if int(c["user_blank"] or 0):
            clean = clean.filter(~user_blank.fill_null(True))
        if int(c["user_error"] or 0):
            clean = clean.filter(~user_error)
        if far_cond is not None:
            clean = clean.filter(~far_cond)
        if unordered:
            expr._find_backend(use_default=True).raw_sql("SET preserve_insertion_order = false")
        day_list, day_users, months, month_users = _active_users(label, clean, d, month, user_key)
        # Each clean row's customer and feature codes (a join with the small coded tables),
        # then the distinct triples of three integers: cheaper than of two strings.
        rows = clean.select(
            m=month.cast("int32"),
            c=clean[cust] if cust is not None else ibis.literal(None, "string"),
            f=clean[feat] if feat is not None else ibis.literal(None, "string"),
        )
        if cust_coded is not None:
            rows = rows.left_join(cust_coded, rows.c == cust_coded.v)
            rows = rows.select(rows.m, rows.f, cc=cust_coded.code.cast("int32"))
        else:
            rows = rows.select(rows.m, rows.f, cc=ibis.literal(None, "int32"))
        if feat_coded is not None:
            rows = rows.left_join(feat_coded, rows.f == feat_coded.v)
            rows = rows.select(rows.m, rows.cc, fc=feat_coded.code.cast("int32"))
        else:
            rows = rows.select(rows.m, rows.cc, fc=ibis.literal(None, "int32"))
        triples = rows.distinct()  # in batches: DuckDB does not hold them all while Arrow does
        got = _run(
            label, triples, lambda: triples.to_pyarrow_batches(chunk_size=1 << 20).read_all()
        )
    finally:
        for table in cached:
            _release(table)

    # int32, as the other codes (43 million triples at scale 1), each column's Arrow
    # memory freed as soon as it is converted
    t_month, got = got["m"].to_numpy(), got.drop_columns(["m"])
    t_cust, got = _recode(got["cc"], cust_recode), got.drop_columns(["cc"])
    t_feat = _recode(got["fc"], feat_recode)
    if _one_to_one(cust_recode) and _one_to_one(feat_recode):
        m, c_, f_ = t_month, t_cust, t_feat  # distinct already
    else:  # distinct again: two source values may be one id (" C1" and "C1")
        nc, nf = len(customers) + 1, len(features) + 1
        m0 = int(t_month.min()) if len(t_month) else 0
        k = pd.unique(((t_month.astype(np.int64) - m0) * nc + t_cust + 1) * nf + t_feat + 1)
        m, c_, f_ = k // nf // nc + m0, (k // nf) % nc - 1, k % nf - 1
    del got
    yield UsageSummary.build(
        day_list, day_users, months, month_users, m, c_, f_, customers, features
    )


def _active_users(
    label: str, clean: Any, d: Any, month: Any, key: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(days, distinct users of each, months, distinct users of each) of the clean Usage
    rows, in one pass: each (month, user) with the days of the month it was active as the
    bits of one integer (bit i: day i + 1), then per month the count of its users and, for
    each day, of the users with that day's bit. One group-by of the rows instead of two
    distinct counts (per day and per month), each as costly. A backend without a bitwise
    OR aggregate (Ibis' Spark) counts the distinct users per day and per month instead."""
    import ibis.expr.operations as ops

    ibis = _need("ibis", "duckdb")
    if not clean._find_backend(use_default=True).has_operation(ops.BitOr):
        per_day = _execute(label, clean.group_by(d=d).aggregate(users=key.nunique()))
        per_month = _execute(label, clean.group_by(m=month).aggregate(users=key.nunique()))
        return (
            _days(per_day["d"]),
            per_day["users"].to_numpy(np.int64),
            per_month["m"].to_numpy(np.int64),
            per_month["users"].to_numpy(np.int64),
        )
    # 2 ** (day - 1), written so that every backend shifts a 64-bit integer by a small one
    # (PostgreSQL has no bigint << bigint, and its EXTRACT is numeric: the cast is kept)
    bit = ibis.literal(2**31, "int64") >> (32 - d.day().cast("int16"))
    active = clean.group_by(m=month, u=key).aggregate(b=bit.bit_or())
    per_day = {f"d{i}": ((active.b >> i) & 1).sum() for i in range(31)}
    got = _execute(label, active.group_by("m").aggregate(users=active.count(), **per_day))
    months = got["m"].to_numpy(np.int64)
    counts = got[[f"d{i}" for i in range(31)]].fillna(0).to_numpy(np.int64)  # month x day
    month_at, day_at = np.nonzero(counts)
    first = (months - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days = first[month_at] + day_at
    return days, counts[month_at, day_at], months, got["users"].to_numpy(np.int64)


def _cache(table: Any, cached: list[Any]) -> Any:
    """``table`` as a temporary table of the backend (noted in ``cached``, for
    :func:`_release`), so that the queries that join it do not work it out again; the
    expression as it is where the backend has no temporary tables."""
    try:
        out = table.cache()
    except Exception:
        return table
    cached.append(out)
    return out


def _release(table: Any) -> None:
    """Free a temporary table made by ``.cache()``. Ibis 12's SQL backends write its DROP
    without the table's name under sqlglot 30 (a parser error): it is then dropped here by
    its name (Ibis has forgotten it before the error)."""
    try:
        table.release()
    except Exception:
        backend = table._find_backend(use_default=True)
        result = backend.raw_sql(f'DROP TABLE IF EXISTS "{table.op().name}"')
        if backend.name != "duckdb" and hasattr(result, "close"):  # a cursor (DuckDB's own
            result.close()  # connection is returned: not to be closed)


def _user_rules(u: Any, text: bool) -> tuple[Any, Any, Any, Any]:
    """The reader's rules for a user id, as expressions: (its normalised key, blank, an
    Excel error, has whitespace at an end that SQL's trim keeps)."""
    from .cells import EXCEL_ERRORS

    ibis = _need("ibis", "duckdb")
    never = u.isnull() & ibis.literal(False)
    if not text:
        return u, u.isnull(), never, never
    t = u.strip()
    key = t.re_search(r"^[0-9]+\.0$").ifelse(t.substr(0, t.length() - 2), t)
    blank = u.isnull() | (t == "")
    error = (u.startswith("#") & t.upper().isin(sorted(EXCEL_ERRORS))).fill_null(False)
    odd = t.re_search(f"^[{_ODD_SPACES}]|[{_ODD_SPACES}]$")
    return key, blank, error, odd


def _one_to_one(recode: np.ndarray) -> bool:
    """Whether no two source values are one normalised value, nor blank (NULL is)."""
    return bool((recode >= 0).all()) and len(np.unique(recode)) == len(recode)


def _days(values: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 (int64) of a column of dates as a backend returns them."""
    return pd.to_datetime(values).to_numpy("datetime64[D]").astype(np.int64)


def _far_days(days: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Which of the distinct ``days`` (days since 1970, each ``counts`` times in the
    column) the reader's far-date rule finds far (``reader._far_dates``, which judges
    each distinct date with its count of rows)."""
    return _reader._far_dates(pd.Series(days.astype("datetime64[D]")), np.asarray(counts))


def _recode(codes: Any, recode: np.ndarray) -> np.ndarray:
    """The normalised code (-1: none) of each source code (an Arrow column, NULL: none).
    When each source value is its own normalised value (``recode`` is 0, 1, 2, ...), the
    source's codes are kept as they are, in their own integer type."""
    import pyarrow.compute as pc

    if not len(recode):
        return np.full(len(codes), -1, np.int64)
    source = pc.fill_null(codes, -1).to_numpy()
    if np.array_equal(recode, np.arange(len(recode))):
        return source
    return np.append(recode, -1)[source]  # -1 takes the last: none


def _execute(label: str, expr: Any) -> Any:
    return _run(label, expr, lambda: expr.execute())


def _arrow(label: str, expr: Any) -> Any:
    return _run(label, expr, lambda: expr.to_pyarrow())


def _run(label: str, expr: Any, query: Any) -> Any:
    """``query()``, its error as one line; a query that runs out of the memory
    :func:`_limit_memory` capped is run again without the cap (slower to have tried,
    never a failed read for the cap's sake)."""
    try:
        return query()
    except Exception as e:
        error = e
    backend = expr._find_backend(use_default=True)
    uncapped = getattr(backend, CAPPED, None)
    if "Out of Memory" in str(error) and uncapped:
        setattr(backend, CAPPED, None)
        backend.raw_sql(f"SET memory_limit = '{uncapped}'")  # (RESET leaves the cap in force)
        try:
            return query()
        except Exception as e:
            error = e
    raise SourceError(f"{label} cannot be read: {_line(error)}") from None


def _bad_rows(
    expr: Any,
    filled: Any,
    label: str,
    kinds: list[_Kind],
    required: tuple[str, str],
    far_text: str,
) -> _UsagePushdown:
    """The first :data:`ISSUE_ROWS` rows of each kind of bad row, numbered as the row path
    numbers them (in the order the source returns the rows, the header row 1)."""
    ibis = _need("ibis", "duckdb")
    listed = [k for k in kinds if k.count]
    kinds_of: dict[int, list[_Kind]] = {}
    frames = []
    far_issues = []
    if listed:
        numbered = expr.mutate(_row=ibis.row_number() + 2)
        for kind in listed:
            first = numbered.filter(filled, kind.condition.fill_null(False))
            got = _frame(label, first.order_by("_row").limit(ISSUE_ROWS))
            for i, row in enumerate(got["_row"].to_numpy(np.int64)):
                kinds_of.setdefault(int(row), []).append(kind)
                if kind.phase == 1:  # a far day: the reader's words, from the whole column
                    value = got[required[0]].iat[i]
                    far_issues.append(
                        Issue("Usage", int(row), kind.column, value, far_text, "skipped the row")
                    )
            frames.append(got)
    columns = list(expr.schema().names)
    sample = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["_row"])
    sample = sample.drop_duplicates("_row").sort_values("_row", kind="stable")
    keep = [any(k.phase != 1 for k in kinds_of[int(r)]) for r in sample["_row"]]
    sample = sample.loc[np.asarray(keep, dtype=bool)]
    rows = [*sample["_row"].astype("int64"), 0]
    out = pd.DataFrame(
        {c: pd.Series(sample[c].tolist() if c in sample else [], dtype=object) for c in columns}
    )
    # The far-date rule must not look at these few rows' days: one day for all of them.
    day = required[0]
    out[day] = [pd.Timestamp("2000-01-01") if _filled(v) else None for v in out[day]]
    sentinel = {c: None for c in columns} | {required[1]: _SENTINEL_USER}
    out = pd.concat([out, pd.DataFrame([sentinel], dtype=object)], ignore_index=True)
    return _UsagePushdown(None, out, np.asarray(rows, np.int64), kinds_of, listed, far_issues)


def _filled(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and v != v) and v is not pd.NaT


def _usage_issues(issues: list[Any], push: _UsagePushdown, columns: tuple[str, ...]) -> list[Any]:
    """The issues of a read whose Usage rows were ``push.sample``: the reader's own issues
    of those rows (each kept for the kinds its row was listed for, with its row number),
    the far days, and one issue per kind counting the rows not listed, in the reader's
    order (by column, then bad values, far days, blanks, then by row)."""
    block = [
        i for i, x in enumerate(issues) if x.sheet == "Usage" and x.row is not None and x.row >= 2
    ]
    if not block:
        return issues
    start, end = block[0], block[-1] + 1
    found: list[tuple[tuple[int, int, int], Issue]] = []
    for issue in issues[start:end]:
        row = int(push.rows[issue.row - 2])
        if row == 0:
            continue  # the sentinel's
        phase = 2 if issue.problem == "is blank but required" else 0
        if any(k.column == issue.column and k.phase == phase for k in push.kinds[row]):
            found.append(((columns.index(issue.column), phase, row), replace(issue, row=row)))
    for issue in push.far_issues:
        found.append(((columns.index(issue.column), 1, issue.row), issue))
    for kind in push.listed:
        rest = kind.count - min(kind.count, ISSUE_ROWS)
        if rest:
            action = (
                "used a blank" if kind.column in ("customer_id", "feature") else "skipped the row"
            )
            more = Issue(
                "Usage", None, kind.column, None, f"and {rest} more rows like this", action
            )
            found.append(((columns.index(kind.column), kind.phase, 1 << 62), more))
    found.sort(key=lambda f: f[0])
    return [*issues[:start], *(i for _, i in found), *issues[end:]]
