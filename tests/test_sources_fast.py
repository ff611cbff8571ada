"""Reading a Parquet folder with Usage summarised in a thread while the other tables are read
and validated through a second connection (``sources._read_source``), and the users per day
and month counted in one pass (``sources._active_users``): the same Dataset as one query at
a time, the same one-line messages when a query fails on either side, the engine's
temporary folder deleted, and the summary equal to the engine's own summary of the rows
(``UsageSummary.from_rows``, an independent implementation in numpy)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data.reader import SourceError, read
from cxkpi_xl.data.usage import UsageSummary

from .test_sources import csv_json, hand_tables, to_parquet
from .test_usage_pushdown import hand_usage

pytest.importorskip("duckdb", reason="the duckdb extra is absent")

from cxkpi_xl.data import sources


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    tables = hand_tables(tmp_path_factory.mktemp("hand"))
    tables["Usage"] = hand_usage()
    return tables


@pytest.fixture(autouse=True)
def alongside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Usage summarised in a thread whatever the machine's cores (``overlap``)."""
    monkeypatch.setenv(sources.OVERLAP, "1")


def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads as for a source without a second connection: Usage first, in this thread."""
    monkeypatch.setenv(sources.OVERLAP, "0")


def usage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cxkpi-usage"]


def summary_fields(s: UsageSummary) -> dict[str, Any]:
    """A summary's contents; its triples as a sorted list (a DISTINCT in the engine
    returns them in no set order)."""
    out: dict[str, Any] = {
        f: getattr(s, f).tolist() for f in ("days", "day_users", "months", "month_users")
    }
    out["customers"], out["features"] = list(s.customers), list(s.features)
    triples = zip(s.t_month.tolist(), s.t_customer.tolist(), s.t_feature.tolist(), strict=True)
    out["triples"] = sorted(triples)
    return out


def test_the_threaded_read_is_the_one_at_a_time_read(hand, tmp_path, monkeypatch):
    """The hand set with dirty Usage (far and blank days, error users, ids written two
    ways): the same issues, tables and summary with Usage in a thread as without."""
    folder = to_parquet(hand, tmp_path / "pq")
    made: list[threading.Thread] = []
    start = threading.Thread.start

    def spy(self: threading.Thread) -> None:
        made.append(self)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", spy)
    threaded = read(folder)
    assert [t.name for t in made] == ["cxkpi-usage"]  # the summary was made in the thread
    one_at_a_time(monkeypatch)
    plain = read(folder)
    assert [t.name for t in made] == ["cxkpi-usage"]  # and no thread this time
    assert threaded.issues == plain.issues
    assert any(i.sheet == "Usage.parquet" for i in threaded.issues)
    assert summary_fields(threaded.usage_summary) == summary_fields(plain.usage_summary)
    for name, frame in plain.tables.items():
        pd.testing.assert_frame_equal(threaded.tables[name], frame, obj=name)
    assert not usage_threads()


def test_a_failing_usage_query_gives_the_same_line_in_the_thread(hand, tmp_path, monkeypatch):
    """A query of the summary's second step fails while the other tables are read: the
    read stops with the one line it gives one query at a time, and no thread is left."""
    folder = to_parquet(hand, tmp_path / "pq")
    real = sources._run

    def failing(label: str, expr: Any, query: Any) -> Any:
        if "fc" in getattr(
            expr, "columns", ()
        ):  # the triples' query, made to fail as the engine runs it
            bad = expr.mutate(m=expr.m.cast("string").concat("x").cast("int32"))
            return real(label, bad, lambda: bad.to_pyarrow())
        return real(label, expr, query)

    monkeypatch.setattr(sources, "_run", failing)
    with pytest.raises(SourceError) as threaded:
        read(folder)
    one_at_a_time(monkeypatch)
    with pytest.raises(SourceError) as plain:
        read(folder)
    assert str(threaded.value) == str(plain.value)
    assert str(threaded.value).startswith("Usage.parquet cannot be read: ")
    assert "\n" not in str(threaded.value)
    assert not usage_threads()


def test_a_failing_other_table_stops_the_usage_thread(hand, tmp_path, monkeypatch):
    """MRR cannot be read while Usage is being summarised: MRR's one line, the thread's
    query interrupted and waited for, its temporary folder deleted."""
    folder = to_parquet(hand, tmp_path / "pq")
    real = sources._frame
    folders: list[str] = []
    mkdtemp = sources_mkdtemp(monkeypatch, folders)
    started = threading.Event()
    steps = sources.usage_steps

    def slow_steps(expr: Any, label: str, **kwargs: Any) -> Any:
        for value in steps(expr, label, **kwargs):
            started.set()
            yield value

    def failing(label: str, expr: Any, *args: Any) -> Any:
        if label == "MRR.parquet":
            started.wait(10)
            raise sources.SourceError("MRR.parquet cannot be read: the disk is gone")
        return real(label, expr, *args)

    monkeypatch.setattr(sources, "usage_steps", slow_steps)
    monkeypatch.setattr(sources, "_frame", failing)
    with pytest.raises(SourceError, match=r"^MRR.parquet cannot be read: the disk is gone$"):
        read(folder)
    assert not usage_threads()
    assert mkdtemp.calls == 1 and folders and not Path(folders[0]).exists()


class _Calls:
    calls = 0


def sources_mkdtemp(monkeypatch: pytest.MonkeyPatch, folders: list[str]) -> _Calls:
    """Record the temporary folders made for DuckDB's spilling."""
    import tempfile

    real = tempfile.mkdtemp
    calls = _Calls()

    def spy(*args: Any, **kwargs: Any) -> str:
        calls.calls += 1
        folders.append(real(*args, **kwargs))
        return folders[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    return calls


def test_the_engine_spills_to_a_folder_of_its_own_deleted_after(hand, tmp_path, monkeypatch):
    """While Usage is summarised alongside, DuckDB's memory is capped and it spills to a
    temporary folder of the read's own (not ``.tmp`` in the working folder), deleted
    after; the working folder is left as it was."""
    folder = to_parquet(hand, tmp_path / "pq")
    folders: list[str] = []
    calls = sources_mkdtemp(monkeypatch, folders)
    settings: list[str] = []
    limit = sources._limit_memory

    def spy(opened: Any) -> str:
        spill = limit(opened)
        got = opened.con.raw_sql(
            "SELECT current_setting('temp_directory'), current_setting('memory_limit')"
        ).fetchone()
        settings.extend(got)
        return spill

    monkeypatch.setattr(sources, "_limit_memory", spy)
    monkeypatch.chdir(tmp_path)
    read(folder)
    assert calls.calls == 1
    assert settings[0] == folders[0]
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{sources.USAGE_MEMORY}'")
    assert settings[1] == con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert not Path(folders[0]).exists()
    assert not (tmp_path / ".tmp").exists()


def test_a_duckdb_file_is_read_one_query_at_a_time(hand, tmp_path):
    """A DuckDB file's settings are shared by its connections: no thread, no cap."""
    from .test_sources import to_duckdb

    path = to_duckdb(hand, tmp_path / "cx.duckdb")
    made: list[str] = []
    real = sources._limit_memory
    sources._limit_memory = lambda opened: made.append("cap") or real(opened)  # type: ignore
    try:
        data = read(path)
    finally:
        sources._limit_memory = real  # type: ignore[assignment]
    assert data.usage_summary is not None and not made


def usage_over_months(n: int = 4_000, seed: int = 3) -> pd.DataFrame:
    """Usage over 14 months, every day of them (1st to 31st) among the days, users
    active on many days of a month, and rows with nothing in them or only a user."""
    rng = np.random.default_rng(seed)
    first = pd.Timestamp("2025-01-01")
    days = first + pd.to_timedelta(np.r_[np.arange(424), rng.integers(0, 424, n - 424)], "D")
    frame = pd.DataFrame(
        {
            "activity_date": days,
            "user_id": [f"u{i}" for i in rng.integers(0, 40, n)],
            "customer_id": [str(1001 + i) for i in rng.integers(0, 30, n)],
            "feature": rng.choice(["reports", "export", "alerts"], n),
        }
    )
    extra = pd.DataFrame(
        [(pd.NaT, None, None, None), (pd.NaT, "", "", "")] * 4  # nothing in them: no data
        + [(pd.NaT, f"u{i}", None, None) for i in range(25)]  # blank days: 20 listed
        + [(pd.Timestamp("2025-03-31"), None, "1002", "api")],  # a blank user
        columns=frame.columns,
    )
    return pd.concat([frame, extra], ignore_index=True)


@pytest.mark.parametrize("normalised", [False, True])
def test_users_per_day_and_month_in_one_pass_are_the_rows_counts(
    hand, tmp_path, monkeypatch, normalised
):
    """The users of each day (bits of a month: the 1st is bit 0, the 31st bit 30) and of
    each month from one group-by equal the counts of the validated rows; users written two
    ways (``" u3"``, ``u3``) are one user."""
    tables = dict(hand)
    usage = usage_over_months()
    if normalised:
        usage.loc[::7, "user_id"] = "  " + usage.loc[::7, "user_id"].astype(str)
    tables["Usage"] = usage
    csv_json(tables, tmp_path / "csv")
    rows = read(tmp_path / "csv").tables["Usage"]
    expected = UsageSummary.from_rows(rows)
    got = read(to_parquet(tables, tmp_path / "pq")).usage_summary
    assert got is not None
    for field in ("days", "day_users", "months", "month_users"):
        assert np.array_equal(getattr(expected, field), getattr(got, field)), field
    assert len(got.days) == 424 and len(got.months) == 14
    d31 = (np.datetime64("2025-01-31") - np.datetime64("1970-01-01")).astype(np.int64)
    assert d31 in set(got.days.tolist())  # bit 30


def test_rows_with_nothing_in_them_are_no_usage_issues(hand, tmp_path):
    """Rows with nothing in them are not data in either path: of 25 blank days the first
    20 are listed as the CSV folder's reader lists them, then "and 5 more" (not 13, with
    the 8 empty rows); the blank user is one issue."""
    tables = dict(hand)
    tables["Usage"] = usage_over_months(500)
    expected = csv_json(tables, tmp_path / "csv")
    rows = [i for i in expected["issues"] if i["table"] == "usage"]
    assert [i["column"] for i in rows] == ["activity_date"] * 25 + ["user_id"]
    data = read(to_parquet(tables, tmp_path / "pq"))
    got = [i for i in data.issues if i.sheet == "Usage.parquet"]
    listed = [(i.row, i.column, i.problem) for i in got]
    assert listed[:20] == [(i["row"], i["column"], i["problem"]) for i in rows[:20]]
    assert listed[20] == (None, "activity_date", "and 5 more rows like this")
    assert listed[21:] == [(rows[25]["row"], "user_id", "is blank but required")]


def test_active_users_without_a_bitwise_or_counts_distinct_users(hand, tmp_path, monkeypatch):
    """A backend without a bitwise OR aggregate (Ibis' Spark) counts the distinct users
    per day and per month: the same summary."""
    import ibis.expr.operations as ops

    folder = to_parquet(dict(hand, Usage=usage_over_months()), tmp_path / "pq")
    with_bits = read(folder).usage_summary
    backend = type(sources._open(folder, None).con)
    has = backend.has_operation
    monkeypatch.setattr(
        backend,
        "has_operation",
        classmethod(lambda cls, op: op is not ops.BitOr and has.__func__(cls, op)),
    )
    without = read(folder).usage_summary
    assert summary_fields(with_bits) == summary_fields(without)


def test_a_query_out_of_the_capped_memory_runs_again_without_the_cap(hand, tmp_path, monkeypatch):
    """Capped far too low (1 MB), DuckDB runs out of memory in the thread: the query runs
    again without the cap, and the read gives what it gives one query at a time."""
    folder = to_parquet(dict(hand, Usage=usage_over_months(20_000)), tmp_path / "pq")
    monkeypatch.setattr(sources, "USAGE_MEMORY", "1MB")
    capped: list[Any] = []
    limit = sources._limit_memory
    monkeypatch.setattr(sources, "_limit_memory", lambda o: capped.append(o.con) or limit(o))
    folders: list[str] = []
    sources_mkdtemp(monkeypatch, folders)
    threaded = read(folder)
    con = capped.pop()
    assert getattr(con, sources.CAPPED) is None  # the cap was lifted
    del con
    gc.collect()  # the DuckDB, closed, leaves no spill folder behind (made again)
    assert folders and not any(Path(f).exists() for f in folders)
    one_at_a_time(monkeypatch)
    plain = read(folder)
    assert summary_fields(threaded.usage_summary) == summary_fields(plain.usage_summary)
    assert threaded.issues == plain.issues


@pytest.mark.parametrize(
    ("setting", "cores", "expected"),
    [("", 2, False), ("", 4, True), ("", None, False), ("1", 2, True), ("0", 8, False)],
)
def test_overlap_on_four_cores_or_as_the_setting_says(monkeypatch, setting, cores, expected):
    """Alongside on 4 cores or more (on 2, DuckDB's two threads already take both);
    ``CXKPI_SOURCE_OVERLAP`` 1 or 0 decides whatever the cores."""
    import os

    monkeypatch.setenv(sources.OVERLAP, setting)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert sources.overlap() is expected
