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

With :func:`reduce_usage` (``pushdown=True``, the default), the Usage table, the largest
one, is reduced in the source's engine to its distinct (day, user, customer, feature)
rows before it reaches Python, when its days are typed as dates, none is blank, no user
is blank and the days lie within ten years of each other (checked in the source's engine
first; else every row is read and validated in Python): the engine's usage KPIs count
distinct users, customers and features, so they are the same (tests/test_sources.py
proves the JSON equal both ways).

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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from .schema import DATE, ID, MONTH, NUMBER, TABLES, TEXT, YESNO, Table


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


def _parquet(path: Path) -> _Opened:
    ibis = _need("ibis", "duckdb")
    con = ibis.duckdb.connect()
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
    return _Opened(con, str(path), tables, names)


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


def _frame(label: str, expr: Any) -> pd.DataFrame:
    """One table's rows as pandas columns, through Arrow: a text column as a categorical
    (each distinct value one Python string, the rows small integer codes: millions of
    repeated customer ids would otherwise be millions of strings), a date as
    datetime64, a time zone dropped."""
    try:
        table = expr.to_pyarrow()
    except Exception as e:
        raise SourceError(f"{label} cannot be read: {_line(e)}") from None
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            head = column.slice(0, 100_000).combine_chunks().dictionary_encode()
            if 2 * len(head.dictionary) > len(head):  # mostly distinct (response ids): plain
                columns[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
                continue
            encoded = column.dictionary_encode().combine_chunks()
            columns[name] = pd.Categorical.from_codes(
                encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                pd.Index(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object),
            )
            continue
        values = column.to_pandas(date_as_object=False)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_localize(None)
        columns[name] = values
    return pd.DataFrame(columns, copy=False)  # a copy of millions of rows costs seconds


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
    frames: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for table in TABLES:
        key = table.name.lower()
        if key not in opened.tables:
            continue
        label = opened.names[key]
        expr = _columns(table, label, opened.tables[key])
        if expr is None:  # none of its columns: the reader says which it has
            frames[table.name] = pd.DataFrame(columns=list(opened.tables[key].schema().names))
            labels[table.name] = label
            continue
        if pushdown and table.name == "Usage":
            expr = reduce_usage(expr)
        frames[table.name] = _frame(label, expr)
        labels[table.name] = label
    frames["Settings"] = raw_settings
    data = _reader.read(frames, overrides)
    data.issues = [
        replace(i, sheet=labels[i.sheet]) if i.sheet in labels else i for i in data.issues
    ]
    data.source = opened.label
    return data


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
