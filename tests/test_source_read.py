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
