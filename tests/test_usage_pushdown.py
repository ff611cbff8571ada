"""Usage validated and summarised in the source's engine (``sources.usage_pushdown``): the
same JSON as the CSV folder's row path (KPIs, segment and owner breakdowns, feature
adoption, Data Issues) at every granularity; the bad rows' first ISSUE_ROWS listed as the
reader words them, with a count of the rest; no Usage frame in Python; and the cases the
source cannot check read row by row.

The reference is the CSV folder, read and validated row by row by the reader, and the
engine's summary of those rows (``UsageSummary.from_rows``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cxkpi_xl.data import reader as reader_module
from cxkpi_xl.data.reader import _far_dates, _weighted_median, read
from cxkpi_xl.data.usage import UsageSummary
from cxkpi_xl.engine import compute

from .test_sources import (  # noqa: F401 (their fixtures, by name)
    _pg_load,
    assert_close,
    csv_json,
    hand_tables,
    postgres,
    report_json,
    sample_tables,
    spark_ok,
    to_duckdb,
    to_parquet,
)

pytest.importorskip("duckdb", reason="the duckdb extra is absent")

from cxkpi_xl.data import sources

GRANULARITIES = ("month", "quarter", "year")


def hand_usage() -> pd.DataFrame:
    """Usage for the hand-built set (customers 1001..1030, 2026-01..2026-06) as a
    database holds it: typed days, and ids and features as exports write them: spaces,
    ``1003.0``, ``#N/A``, a customer not in Customers, a blank and an error user, a far
    day and a blank one."""
    rows: list[tuple[Any, ...]] = []
    for i in range(240):
        day = pd.Timestamp("2026-01-01") + pd.Timedelta(days=(i * 7) % 181)
        cust = str(1001 + (i * 13) % 30)
        user = f"u{(i * 5) % 37}"
        feature = ("reports", "Export", " alerts ", None)[i % 4]
        rows.append((day, user, cust, feature))
    rows += [
        (pd.Timestamp("2026-02-03"), "  u3", " 1002", "reports"),  # u3 and 1002 again
        (pd.Timestamp("2026-02-04"), "42.0", "1003.0", "api"),  # 42 and 1003
        (pd.Timestamp("2026-02-04"), "42", "1003", "api"),
        (pd.Timestamp("2026-03-09"), "u7", "#N/A", "reports"),  # a blank customer
        (pd.Timestamp("2026-03-10"), "u8", "9999", "sso"),  # not in Customers
        (pd.Timestamp("2026-03-11"), "", "1004", "reports"),  # blank user: skipped
        (pd.Timestamp("2026-03-12"), "#REF!", "1004", "reports"),  # an error user
        (pd.Timestamp("2204-05-01"), "u9", "1005", "never"),  # a far day
        (pd.NaT, "u9", "1005", "never"),  # a blank day
        (pd.Timestamp("2026-04-01"), "u10", "1006", "#DIV/0!"),  # a blank feature
    ]
    return pd.DataFrame(rows, columns=["activity_date", "user_id", "customer_id", "feature"])


def with_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """The days as DATE values (not timestamps) in the Parquet file."""
    out = frame.copy()
    out["activity_date"] = [None if pd.isna(v) else v.date() for v in frame["activity_date"]]
    return out


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pd.DataFrame]]:
    tmp = tmp_path_factory.mktemp("usage-sets")
    hand = hand_tables(tmp)
    hand["Usage"] = hand_usage()
    return {"sample": sample_tables(), "hand": hand}


def pushed(source: Any, **settings: Any) -> reader_module.Dataset:
    data = read(source, settings or None)
    assert data.usage_summary is not None, "the summary was not built in the source"
    assert data.tables["Usage"].empty  # no Usage rows in Python
    return data


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("name", ("sample", "hand"))
def test_a_parquet_folder_summarised_gives_the_csv_json(sets, tmp_path, name, granularity):
    tables = sets[name]
    expected = csv_json(tables, tmp_path / "csv") if granularity == "month" else None
    folder = to_parquet(tables, tmp_path / "pq")
    if expected is None:
        tables_csv = tmp_path / "csv2"
        csv_json(tables, tables_csv)
        expected = report_json(tables_csv, granularity=granularity)
    pushed(folder)
    got = report_json(folder, granularity=granularity)
    assert_close(expected, got)
    # the comparison compares something: usage KPIs, by segment and owner, adoption
    assert any(v is not None for v in got["kpis"]["stickiness"])
    assert any(v is not None for v in got["kpis"]["product_usage_rate"])
    adoption = got["breakdowns"]["feature_adoption"]
    assert adoption["data"] and adoption["index"]
    by_segment = got["breakdowns"]["segment"]["data"]
    assert any(row[1] == "product_usage_rate" and any(row[2:]) for row in by_segment)


def test_the_hand_sets_usage_issues_are_the_row_paths(sets, tmp_path):
    """Spaces, ``1003.0``, ``#N/A`` and the rest: the same Data Issues, in the same order,
    with the same rows, through DATE days in Parquet and in a DuckDB file."""
    tables = dict(sets["hand"])
    expected = csv_json(tables, tmp_path / "csv")
    usage = [i for i in expected["issues"] if i["table"] == "usage"]
    assert Counter(i["column"] for i in usage) == {
        "activity_date": 2, "user_id": 2, "customer_id": 1, "feature": 1
    }  # fmt: skip
    tables["Usage"] = with_dates(tables["Usage"])
    folder = to_parquet(tables, tmp_path / "pq")
    pushed(folder)
    assert_close(expected, report_json(folder))
    path = to_duckdb(tables, tmp_path / "cx.duckdb")
    pushed(path)
    assert_close(expected, report_json(path))


def test_the_summary_is_the_rows_summary(sets, tmp_path):
    """The summary built in DuckDB equals the one the engine builds from the validated
    rows: the same users per day and month, the same (month, customer, feature) values."""
    tables = sets["hand"]
    csv_json(tables, tmp_path / "csv")
    rows = read(tmp_path / "csv").tables["Usage"]
    expected = UsageSummary.from_rows(rows)
    got = pushed(to_parquet(tables, tmp_path / "pq")).usage_summary
    for field in ("days", "day_users", "months", "month_users"):
        assert np.array_equal(getattr(expected, field), getattr(got, field)), field

    def triples(s: UsageSummary) -> set[tuple[int, Any, Any]]:
        c = [s.customers[i] if i >= 0 else None for i in s.t_customer]
        f = [s.features[i] if i >= 0 else None for i in s.t_feature]
        return set(zip(s.t_month.tolist(), c, f, strict=True))

    assert triples(expected) == triples(got)
    assert len(got.t_month) == len(triples(got))  # distinct
    assert "1003" in set(got.customers) and "1003.0" not in set(got.customers)
    assert "alerts" in set(got.features) and "#DIV/0!" not in set(got.features)


def bad_usage(n: int = 3_000, seed: int = 7) -> tuple[pd.DataFrame, dict[str, int]]:
    """Usage with more bad rows of each kind than are listed, scattered."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 180, n), unit="D")
    frame = pd.DataFrame(
        {
            "activity_date": days,
            "user_id": [f"u{i}" for i in rng.integers(0, 300, n)],
            "customer_id": [str(1001 + i) for i in rng.integers(0, 30, n)],
            "feature": rng.choice(["reports", "export", "alerts"], n),
        }
    )
    counts = {"blank user": 25, "blank day": 23, "far day": 22, "error customer": 21}
    spots = rng.permutation(n)
    at = 0
    for kind, count in counts.items():
        rows = spots[at : at + count]
        at += count
        if kind == "blank user":
            frame.loc[rows, "user_id"] = None
        elif kind == "blank day":
            frame.loc[rows, "activity_date"] = pd.NaT
        elif kind == "far day":
            frame.loc[rows, "activity_date"] = pd.Timestamp("2204-03-01")
        else:
            frame.loc[rows, "customer_id"] = "#N/A"
    return frame, counts


def test_bad_usage_rows_list_the_first_of_each_kind_and_count_the_rest(sets, tmp_path):
    tables = dict(sets["sample"])
    tables["Usage"], counts = bad_usage()
    expected = csv_json(tables, tmp_path / "csv")
    folder = to_parquet(tables, tmp_path / "pq")
    pushed(folder)
    got = report_json(folder)
    assert_close(expected["kpis"], got["kpis"])
    assert_close(expected["breakdowns"], got["breakdowns"])
    other = [i for i in expected["issues"] if i["table"] != "usage"]
    assert [i for i in got["issues"] if i["table"] != "usage"] == other

    def kind(i: dict[str, Any]) -> str:
        if i["column"] == "customer_id":
            return "error customer"
        if i["column"] == "user_id":
            return "blank user"
        return "far day" if i["problem"].startswith("is far") else "blank day"

    row_path = [i for i in expected["issues"] if i["table"] == "usage"]
    assert Counter(kind(i) for i in row_path) == counts  # the reference lists every row
    listed: list[dict[str, Any]] = []
    for name in ("far day", "blank day", "blank user", "error customer"):  # reader's order
        first = [i for i in row_path if kind(i) == name][: sources.ISSUE_ROWS]
        rest = counts[name] - sources.ISSUE_ROWS
        assert rest > 0
        more = {**first[-1], "row": None, "value": None}
        more["problem"] = f"and {rest} more rows like this"
        listed += [*first, more]
    assert [i for i in got["issues"] if i["table"] == "usage"] == listed
    # in the reader's place: where the row path's Usage issues are
    start = expected["issues"].index(row_path[0])
    assert got["issues"][start : start + len(listed)] == listed


def test_row_numbers_follow_the_files_order_over_many_row_groups(tmp_path):
    """Bad rows far apart in a file of several row groups keep the row numbers the row
    path gives them (the order the source returns the rows)."""
    n = 400_000
    usage = pd.DataFrame(
        {
            "activity_date": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(np.arange(n) % 90, unit="D"),
            "user_id": [f"u{i % 1000}" for i in range(n)],
        }
    )
    blank = [5, 150_000, 260_001, 399_998]
    usage.loc[blank, "user_id"] = None
    folder = tmp_path / "pq"
    folder.mkdir()
    usage.to_parquet(folder / "Usage.parquet", row_group_size=50_000)
    data = pushed(folder)
    assert [i.row for i in data.issues] == [r + 2 for r in blank]
    assert {i.problem for i in data.issues} == {"is blank but required"}


def test_no_usage_frame_reaches_python(sets, tmp_path, monkeypatch):
    """Memory: what is fetched of Usage is its bad rows (none here) and its summary, whose
    arrays are small ints: the rows' frame is never made."""
    tables = dict(sets["sample"])
    tables["Usage"] = pd.concat([tables["Usage"]] * 20, ignore_index=True)
    folder = to_parquet(tables, tmp_path / "pq")
    fetched: list[tuple[str, int]] = []
    real = sources._frame

    def frame(label: str, expr: Any, *more: Any) -> pd.DataFrame:
        out = real(label, expr, *more)
        fetched.append((label, len(out)))
        return out

    monkeypatch.setattr(sources, "_frame", frame)
    data = pushed(folder)
    assert not [f for f in fetched if f[0].lower().startswith("usage")]
    s = data.usage_summary
    assert s.t_month.dtype.itemsize <= 4 and s.t_customer.dtype.itemsize <= 4
    assert s.t_feature.dtype.itemsize <= 2
    assert len(s.t_month) < len(tables["Usage"]) / 20  # distinct triples, not rows
    assert s.nbytes < 12 * len(s.t_month) + 16 * (len(s.days) + len(s.months))


def test_without_pushdown_the_rows_are_read(sets, tmp_path):
    folder = to_parquet(sets["sample"], tmp_path / "pq")
    data = sources.read_source(folder, reader=reader_module, pushdown=False)
    assert data.usage_summary is None and len(data.tables["Usage"]) > 0
    assert_close(
        compute(data).as_json(),
        compute(sources.read_source(folder, reader=reader_module)).as_json(),
    )


CHANGES = {
    "text days": lambda u: u.assign(activity_date=u["activity_date"].dt.strftime("%d/%m/%Y")),
    "a time of day": lambda u: u.assign(activity_date=u["activity_date"] + pd.Timedelta("3h")),
    "a tab after a user": lambda u: u.assign(user_id=u["user_id"] + "\t"),
    "a no-break space before a user": lambda u: u.assign(user_id="\u00a0" + u["user_id"]),
    "whole-number users": lambda u: u.assign(user_id=pd.factorize(u["user_id"])[0] + 1),
    "users like 12.0": lambda u: u.assign(
        user_id=[f"{i}.0" for i in pd.factorize(u["user_id"])[0]]
    ),
}
PUSHED = {"whole-number users", "users like 12.0", "a tab after a user"}
"""Summarised in the source; the others are read row by row."""


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_usage_the_source_cannot_check_is_read_row_by_row(sets, tmp_path, change):
    """Days as text or timestamps with a time, users with a no-break space (which SQL's trim
    keeps): no summary, the rows are read and validated by the reader; users as whole
    numbers, ``12.0`` or with a tab (which Ibis' trim strips) are summarised; either way
    the JSON is the CSV's."""
    tables = dict(sets["sample"])
    tables["Usage"] = CHANGES[change](tables["Usage"])
    expected = csv_json(tables, tmp_path / "csv")
    folder = to_parquet(tables, tmp_path / "pq")
    data = read(folder)
    if change in PUSHED:
        assert data.usage_summary is not None
    else:
        assert data.usage_summary is None and len(data.tables["Usage"]) > 0
    assert_close(expected, report_json(folder))


@pytest.mark.parametrize("seed", range(20))
def test_far_days_from_counts_are_the_readers_far_dates(seed):
    """``_far_days`` on (day, count) finds the days the reader's ``_far_dates`` finds on
    every row, and ``_weighted_median`` is ``np.median`` of the repeated values."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    days = rng.integers(19_000, 19_000 + int(rng.integers(1, 6_000)), n)
    if seed % 3 == 0:
        days[: int(rng.integers(1, 5))] = rng.integers(80_000, 90_000)  # 2190s
    if seed % 4 == 0:
        days[-int(rng.integers(1, 5)) :] = 0  # 1970
    values, counts = np.unique(days, return_counts=True)
    sources._reader = reader_module
    # every row its own date once: the rule over the rows
    as_rows = _far_dates(pd.Series(days.astype("datetime64[D]")), np.ones(n, dtype=int))
    far_values = set(values[sources._far_days(values, counts)].tolist())
    assert set(days[as_rows].tolist()) == far_values
    assert _weighted_median(values.astype(float), counts) == np.median(days)


def test_the_memo_key_follows_the_summary(sets, tmp_path):
    """With Usage summarised, a change to the usage changes the USAGE part's key."""
    from cxkpi_xl.engine.assemble import _encode_ids
    from cxkpi_xl.engine.axis import _axis
    from cxkpi_xl.engine.memo import USAGE, part_key

    tables = dict(sets["sample"])
    one = _encode_ids(pushed(to_parquet(tables, tmp_path / "a")))
    tables["Usage"] = tables["Usage"].iloc[:-1]
    two = _encode_ids(pushed(to_parquet(tables, tmp_path / "b")))
    axis = _axis(one, "month")
    assert part_key(USAGE, one, axis) == part_key(USAGE, one, axis)
    assert part_key(USAGE, one, axis) != part_key(USAGE, two, axis)


def test_refresh_from_a_summarised_source_does_not_call_usage_empty(sets, tmp_path):
    from cxkpi_xl.refresh import empty_tables

    data = pushed(to_parquet(sets["sample"], tmp_path / "pq"))
    assert "Usage" in empty_tables(data.tables)  # the rows are not there ...
    assert not data.usage_summary.empty  # ... and refresh asks the summary


def test_date_days_and_timestamp_days_agree(sets, tmp_path):
    tables = dict(sets["sample"])
    a = report_json(to_parquet(tables, tmp_path / "ts"))
    tables["Usage"] = with_dates(tables["Usage"])
    b = report_json(to_parquet(tables, tmp_path / "date"))
    assert_close(a, b)
    assert isinstance(with_dates(sets["sample"]["Usage"])["activity_date"].iat[0], dt.date)


def test_postgresql_summarises_usage_as_duckdb_does(request, sets, tmp_path):
    """The same summary and Data Issues from a real PostgreSQL server (its trim, regular
    expressions, COUNT(DISTINCT) and window functions)."""
    url = request.getfixturevalue("postgres")
    tables = dict(sets["hand"])
    expected = csv_json(tables, tmp_path / "csv")
    tables["Usage"] = with_dates(tables["Usage"])
    _pg_load(url, "cx_usage", tables)
    pushed(url, source_tables="cx_usage.")
    assert_close(expected, report_json(url, source_tables="cx_usage."))


@pytest.mark.usefixtures("spark_ok")
def test_spark_summarises_usage_as_duckdb_does(sets, tmp_path):
    tables = dict(sets["hand"])
    expected = csv_json(tables, tmp_path / "csv")
    folder = to_parquet(tables, tmp_path / "pq")
    pushed(f"spark://local[1]{folder}")
    assert_close(expected, report_json(f"spark://local[1]{folder}"))


def test_a_memo_hit_does_not_summarise_the_usage_rows(sets, tmp_path, monkeypatch):
    """On the row path (a CSV folder) the summary is built only when the usage KPIs are
    computed: a second compute that finds them in the memo does not build it."""
    from cxkpi_xl.engine.memo import Memo

    csv_json(sets["sample"], tmp_path / "csv")
    data = read(tmp_path / "csv")
    built: list[int] = []
    real = UsageSummary.from_rows.__func__

    def counted(cls: type[UsageSummary], u: pd.DataFrame) -> UsageSummary:
        built.append(len(u))
        return real(cls, u)

    monkeypatch.setattr(UsageSummary, "from_rows", classmethod(counted))
    memo = Memo(tmp_path / "memo")
    first = compute(data, breakdowns=False, memo=memo).as_json()
    assert built == [len(data.tables["Usage"])] and memo.misses.count("usage") == 1
    second = compute(data, breakdowns=False, memo=memo).as_json()
    assert built == [len(data.tables["Usage"])] and memo.hits.count("usage") == 1
    assert_close(first, second)
    assert data.usage_summary is None  # the user's Dataset is left as it was


def only_bad_users_some_days(frame: pd.DataFrame) -> pd.DataFrame:
    """The hand set's Usage with days whose only rows have a blank or an error user (no
    clean user that day), and a day whose users are one user written two ways."""
    extra = pd.DataFrame(
        [
            (pd.Timestamp("2026-07-02"), "", "1004", "reports"),  # day 2: blank users only
            (pd.Timestamp("2026-07-02"), None, "1005", "reports"),
            (pd.Timestamp("2026-07-03"), "#N/A", "1004", "reports"),  # day 3: an error only
            (pd.Timestamp("2026-07-04"), "77.0", "1004", "reports"),  # day 4: user 77 twice
            (pd.Timestamp("2026-07-04"), " 77", "1005", "export"),
        ],
        columns=frame.columns,
    )
    return pd.concat([frame, extra], ignore_index=True)


@pytest.mark.parametrize("normalised", (False, True))
def test_days_without_a_clean_user_are_no_days_of_the_summary(sets, tmp_path, normalised):
    """The users per day are counted in the pass that counts the rows per day: a day whose
    rows all have a blank or an error user has no clean user and is no day of the summary
    (as a group-by of the clean rows has none), a far day neither; a user written two ways
    is one user. The same days and users as the row path's summary, with users that need
    normalising and with users that need none."""
    tables = dict(sets["hand"])
    usage = only_bad_users_some_days(tables["Usage"])
    if not normalised:  # every user as the reader writes it, but for the bad ones
        users = usage["user_id"]
        usage["user_id"] = [
            v if pd.isna(v) or v in ("", "#N/A", "#REF!") else str(v).strip().removesuffix(".0")
            for v in users
        ]
    tables["Usage"] = usage
    csv_json(tables, tmp_path / "csv")
    expected = UsageSummary.from_rows(read(tmp_path / "csv").tables["Usage"])
    got = pushed(to_parquet(tables, tmp_path / "pq")).usage_summary
    day = lambda s: (pd.Timestamp(s) - pd.Timestamp("1970-01-01")).days  # noqa: E731
    assert day("2026-07-02") not in set(got.days) and day("2026-07-03") not in set(got.days)
    assert day("2204-05-01") not in set(got.days)  # the far day
    assert got.day_users[list(got.days).index(day("2026-07-04"))] == 1
    for field in ("days", "day_users", "months", "month_users"):
        assert np.array_equal(getattr(expected, field), getattr(got, field)), field


def test_the_temporary_tables_are_dropped(sets, tmp_path, monkeypatch):
    """The coded customers and features are temporary tables of the source while the
    triples are worked out, and are dropped after: none is left in the connection."""
    import ibis

    cons: list[Any] = []
    connect = ibis.duckdb.connect
    monkeypatch.setattr(
        ibis.duckdb, "connect", lambda *a, **k: cons.append(connect(*a, **k)) or cons[-1]
    )
    made: list[str] = []
    cache = sources._cache

    def spy(table: Any, cached: list[Any]) -> Any:
        out = cache(table, cached)
        made.append(out.op().name)
        return out

    monkeypatch.setattr(sources, "_cache", spy)
    pushed(to_parquet(sets["hand"], tmp_path / "pq"))
    assert len(made) == 2 and cons  # Usage's connection (and the other tables' alongside)
    left = set(cons[0].list_tables())
    assert not left & set(made), left


def test_release_drops_a_cached_table():
    """``_release`` drops a table made by ``.cache()`` (by name where Ibis' own DROP is
    not valid SQL), and the rest of the connection is left as it was."""
    import ibis

    con = ibis.duckdb.connect()
    kept = con.create_table("kept", ibis.memtable({"a": [1, 2, 3]}))
    before = con.list_tables()
    cached: list[Any] = []
    table = sources._cache(kept.filter(kept.a > 1), cached)
    assert cached == [table] and table.op().name in con.list_tables()
    assert int(table.count().execute()) == 2
    sources._release(table)
    assert table.op().name not in con.list_tables()
    assert con.list_tables() == before and "kept" in before
