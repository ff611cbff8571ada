"""Reading tables from a source through Arrow (``sources._frame``): which text columns
become categoricals, and that a source read in either shape gives the CSV folder's
report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ibis", reason="the duckdb extra (ibis-framework, duckdb) is absent")
pytest.importorskip("duckdb", reason="the duckdb extra is absent")

from cxkpi_xl.data import reader as reader_module
from cxkpi_xl.data import sources
from cxkpi_xl.data.reader import read
from cxkpi_xl.data.sample import generate
from cxkpi_xl.data.schema import TABLES_BY_NAME

from .test_sources import assert_close, csv_json, report_json, to_parquet


def _surveys_where_the_first_rows_look_distinct(n_customers: int = 60_000) -> pd.DataFrame:
    """Two answers per customer, the second block after the first: the first 100,000
    rows hold 60,000 distinct customers (mostly distinct), the column as a whole a
    customer per two answers."""
    ids = [f"C{i:06d}" for i in range(n_customers)]
    n = 2 * n_customers
    return pd.DataFrame(
        {
            "response_id": [f"R{i}" for i in range(n)],
            "customer_id": ids + ids,
            "response_date": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) % 90, "D"),
            "survey": ["NPS"] * n,
            "score": (np.arange(n) % 11).astype(float),
        }
    )


def test_a_customer_column_is_categorical_even_when_its_first_rows_look_distinct(tmp_path):
    folder = to_parquet({"Surveys": _surveys_where_the_first_rows_look_distinct()}, tmp_path)
    sources._reader = reader_module
    opened = sources._open(folder, None)
    expr = sources._columns(TABLES_BY_NAME["Surveys"], "Surveys", opened.tables["surveys"])
    plain = sources._frame("Surveys", expr)
    assert plain["customer_id"].dtype == object  # the first 100,000 rows decide alone
    frame = sources._frame("Surveys", expr, {"customerid"})
    assert isinstance(frame["customer_id"].dtype, pd.CategoricalDtype)
    assert frame["response_id"].dtype == object  # unique ids stay plain text
    assert frame["customer_id"].astype(object).tolist() == plain["customer_id"].tolist()


def test_a_source_gives_the_csv_report_with_such_a_customer_column(tmp_path: Path):
    tables = {k: v for k, v in generate("tiny").items() if k != "HealthWeights"}
    surveys = _surveys_where_the_first_rows_look_distinct(3_000)
    known = tables["Customers"]["customer_id"].tolist()
    surveys["customer_id"] = [known[i % len(known)] for i in range(len(surveys))]
    tables["Surveys"] = surveys
    expected = csv_json(tables, tmp_path / "csv")
    got = report_json(to_parquet(tables, tmp_path / "parquet"))
    assert_close(got, expected)
    data = read(to_parquet(tables, tmp_path / "parquet2"))
    assert isinstance(data.tables["Surveys"]["customer_id"].dtype, pd.CategoricalDtype)


def test_text_the_reader_would_keep_as_it_is_is_taken_whole(tmp_path: Path, monkeypatch):
    """A source's mostly distinct text column (response ids, names) whose values the
    reader would keep as they are is checked in Arrow and taken whole; one value that
    needs the reader (a space at an end, an Excel error, ``1001.0``, an empty string, a
    character beyond ASCII at an end) sends the column through the reader's rules, value
    by value. Either way the Dataset and the report are the CSV folder's."""
    from cxkpi_xl.data import reader as r

    tables = {k: v for k, v in generate("tiny").items() if k != "HealthWeights"}
    n = len(tables["Surveys"])
    clean = [f"R-{i:05d}" for i in range(n)]
    cases = {
        "clean": (clean, True),
        "space": ([*clean[:-1], " R-x"], False),
        "error": (["#N/A", *clean[1:]], False),
        "number": (["1001.0", *clean[1:]], False),
        "empty": (["", *clean[1:]], False),
        "accent inside": (["Réponse", *clean[1:]], True),  # kept as it is: fine
        "no-break space": (["R-1\xa0", *clean[1:]], False),  # str.strip strips it
        "accent at the end": (["Réponsé", *clean[1:]], False),  # not judged: the reader's
        "blank": ([None, *clean[1:]], True),
    }
    for name, (ids, fast) in cases.items():
        tables["Surveys"] = tables["Surveys"].assign(response_id=ids)
        taken: list[str] = []
        real = r._normalise_table

        def spy(table, sheet, raw, *a, taken=taken, real=real, **k):
            if table.name == "Surveys":
                taken.extend(raw.attrs.get(r.AS_WRITTEN, ()))
            return real(table, sheet, raw, *a, **k)

        monkeypatch.setattr(r, "_normalise_table", spy)
        folder = to_parquet(tables, tmp_path / f"{name}-parquet")
        got = read(folder)
        monkeypatch.setattr(r, "_normalise_table", real)
        assert ("responseid" in taken) == fast, name
        expected = read(csv_folder(tables, tmp_path / f"{name}-csv"))
        assert got.tables["Surveys"]["response_id"].tolist() == (
            expected.tables["Surveys"]["response_id"].tolist()
        ), name
        assert [i.as_row()[1:] for i in got.issues if i.column == "response_id"] == [
            i.as_row()[1:] for i in expected.issues if i.column == "response_id"
        ], name  # all but the table's label (Surveys.parquet, Surveys.csv)
        assert_close(report_json(folder), report_json(tmp_path / f"{name}-csv"))


def csv_folder(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


# --- MRR and Surveys: codes from Arrow, the same Dataset and Data Issues -----------------


def _as_days(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Date columns as Python dates, which Parquet stores as date32 (as real exports do)."""
    out = frame.copy()
    for c in columns:
        out[c] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in out[c]]
    return out


def _dirty(tables: dict[str, pd.DataFrame], typed: bool) -> dict[str, pd.DataFrame]:
    """The sample data with what real MRR and Surveys exports hold: repeated customer and
    month rows, repeated response ids, blank and unusable ids, amounts, dates, scores and
    survey names. ``typed``: MRR's amount stays a number column (blanks and negatives
    only); otherwise text, as a careless export makes it."""
    mrr = tables["MRR"].copy()
    known = mrr["customer_id"].astype(object).tolist()
    mrr["customer_id"] = mrr["customer_id"].astype(object)
    mrr.loc[3, "customer_id"] = f" {known[3]} "  # spaces around: the same customer
    mrr.loc[5, "customer_id"] = None
    mrr.loc[7, "customer_id"] = "#N/A"
    mrr.loc[9, "month"] = None
    mrr.loc[11, "mrr"] = None
    mrr.loc[13, "mrr"] = -5.0
    mrr.loc[15, "month"] = pd.Timestamp("1900-01-01")  # far outside the others
    mrr = pd.concat([mrr, mrr.iloc[[20, 21]]], ignore_index=True)  # a second row each
    if not typed:
        mrr["mrr"] = [None if pd.isna(v) else f"{v:g}" for v in mrr["mrr"]]
        mrr.loc[17, "mrr"] = "lots"
    sv = tables["Surveys"].copy()
    sv["response_id"] = sv["response_id"].astype(object)
    sv.loc[2, "response_id"] = sv.loc[1, "response_id"]  # repeated
    sv.loc[4, "response_id"] = "#REF!"
    sv.loc[6, "response_id"] = "77.0"
    sv["customer_id"] = sv["customer_id"].astype(object)
    sv.loc[8, "customer_id"] = "NOT-A-CUSTOMER"
    sv.loc[10, "customer_id"] = ""
    sv["survey"] = sv["survey"].astype(object)
    sv.loc[12, "survey"] = "nps"
    sv.loc[14, "survey"] = "Poll"
    sv.loc[16, "survey"] = None
    sv.loc[17, "survey"] = "#N/A"
    sv.loc[19, "survey"] = " CSAT "
    sv.loc[18, "score"] = 99.0
    sv.loc[20, "score"] = None
    sv.loc[22, "response_date"] = None
    sv = pd.concat([sv, sv.iloc[[30]]], ignore_index=True)
    out = dict(tables)
    out["MRR"] = _as_days(mrr, ["month"])
    out["Surveys"] = _as_days(sv, ["response_date"])
    return out


def _number(v: object) -> object:
    """A value as a number when it reads as one (a Parquet column holds -5.0 where the
    CSV file holds the text -5.0); anything else as it is."""
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return v


def _issues(data: object) -> list[list[object]]:
    """Data Issues rows but the table's label, values by :func:`_number`."""
    return [[r[1], r[2], _number(r[3]), *r[4:]] for r in (i.as_row() for i in data.issues)]


@pytest.mark.parametrize("typed", [True, False])
def test_dirty_mrr_and_surveys_read_as_the_csv_folder(tmp_path: Path, typed: bool):
    tables = {k: v for k, v in generate("tiny").items() if k != "HealthWeights"}
    tables = _dirty(tables, typed)
    folder = to_parquet(tables, tmp_path / "parquet")
    got = read(folder)
    expected = read(csv_folder(tables, tmp_path / "csv"))
    assert _issues(got) == _issues(expected)
    columns = {"MRR": 7, "Surveys": 7}
    assert {i.sheet.split(".")[0] for i in expected.issues} >= set(columns)
    for name, at_least in columns.items():  # the rules above all fired
        assert sum(i.sheet.startswith(name) for i in expected.issues) >= at_least, name
        g, e = got.tables[name], expected.tables[name]
        assert list(g.columns) == list(e.columns), name
        for c in e.columns:
            assert g[c].astype(object).where(g[c].notna(), None).tolist() == (
                e[c].astype(object).where(e[c].notna(), None).tolist()
            ), (name, c)
    got_json, expected_json = report_json(folder), report_json(tmp_path / "csv")
    for issue in [*got_json["issues"], *expected_json["issues"]]:
        issue["value"] = _number(issue["value"])  # -5 from Parquet, "-5.0" from CSV
    assert_close(got_json, expected_json)


def test_a_source_hands_the_reader_arrow_codes_for_ids_and_days(tmp_path: Path):
    """The customer ids and days of a big table come as categoricals coded by Arrow, in
    order of first appearance, every category used: the codes pd.factorize would make,
    so the reader takes them (reader.CODED) instead of hashing every row again."""
    tables = _dirty({k: v for k, v in generate("tiny").items() if k != "HealthWeights"}, True)
    folder = to_parquet({"MRR": tables["MRR"]}, tmp_path)
    sources._reader = reader_module
    opened = sources._open(folder, None)
    expr = sources._columns(TABLES_BY_NAME["MRR"], "MRR", opened.tables["mrr"])
    frame = sources._frame("MRR", expr, {"customerid"}, True)
    assert frame.attrs[reader_module.CODED] == {"customerid", "month"}
    for c in ("customer_id", "month"):
        assert isinstance(frame[c].dtype, pd.CategoricalDtype), c
        codes, uniques = pd.factorize(frame[c].astype(object), use_na_sentinel=True)
        assert (frame[c].cat.codes.to_numpy() == codes).all(), c
        assert list(frame[c].cat.categories) == list(uniques), c
    assert "customerid" not in frame.attrs[reader_module.AS_WRITTEN]  # " C.. ", "#N/A"
    plain = sources._frame("MRR", expr, {"customerid"})  # days as datetime64 without
    assert plain["month"].dtype.kind == "M"
    assert "month" not in plain.attrs[reader_module.CODED]
