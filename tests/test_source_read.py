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
