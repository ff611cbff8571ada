"""`cxkpi kpis` as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from cxkpi_xl.cli import main
from cxkpi_xl.engine import compute, report_kpi_ids
from cxkpi_xl.reader import read
from cxkpi_xl.sample import generate, write_csv

from .workbooks import write_tables


def test_json_matches_the_schema_doc(tmp_path):
    tables = generate("tiny")
    book = write_tables(tmp_path / "b.xlsx", tables)
    result = CliRunner().invoke(main, ["kpis", str(book), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out) == ["granularity", "periods", "kpis"]
    assert out["granularity"] == "month"
    assert list(out["kpis"]) == report_kpi_ids()
    assert all(len(v) == len(out["periods"]) for v in out["kpis"].values())
    assert out == compute(read(tables), breakdowns=False).as_json()


def test_table_csv_and_settings(tmp_path):
    folder = write_csv(generate("tiny"), tmp_path / "csv")
    table = CliRunner().invoke(main, ["kpis", str(folder), "--set", "granularity=quarter"])
    assert table.exit_code == 0, table.output
    assert "Net Promoter Score" in table.output and "-Q" in table.output
    csv = CliRunner().invoke(
        main, ["kpis", str(folder), "--format", "csv", "--set", "granularity=year"]
    )
    header = csv.stdout.splitlines()[0].split(",")
    assert header[:2] == ["kpi", "title"] and header[2].isdigit()


def test_data_issues_go_to_stderr_and_do_not_fail(tmp_path):
    tables = generate("tiny")
    tables["MRR"] = tables["MRR"].astype({"mrr": object})
    tables["MRR"].loc[0, "mrr"] = "ten"
    folder = write_csv(tables, tmp_path / "csv")
    result = CliRunner().invoke(main, ["kpis", str(folder), "--format", "json"])
    assert result.exit_code == 0
    assert "1 data issue found" in result.stderr and "MRR.csv row 2, mrr: 'ten'" in result.stderr
    json.loads(result.stdout)


def test_unreadable_source_exits_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a workbook")
    result = CliRunner().invoke(main, ["kpis", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "not an xlsx/xlsm" in result.stderr
    assert (
        CliRunner().invoke(main, ["kpis", str(tmp_path), "--set", "granularity=week"]).exit_code
        == 1
    )


def test_sample_csv_writes_where_kpis_reads(tmp_path):
    result = CliRunner().invoke(
        main, ["sample", str(tmp_path), "--size", "tiny", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "Customers.csv").exists() and (tmp_path / "Settings.csv").exists()
    out = CliRunner().invoke(main, ["kpis", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    from_csv = json.loads(out.stdout)
    assert from_csv == compute(read(generate("tiny")), breakdowns=False).as_json()
    again = CliRunner().invoke(main, ["sample", str(tmp_path), "--format", "csv"])
    assert again.exit_code == 1 and "use --force" in again.stderr


def test_no_input_tables_exits_non_zero_naming_what_it_looks_for(tmp_path):
    (tmp_path / "export.csv").write_text("a\n1\n")
    result = CliRunner().invoke(main, ["kpis", str(tmp_path)])
    assert result.exit_code == 1
    assert "none of the input tables: looked for Customers.csv, MRR.csv" in result.stderr


def test_issue_messages_show_values_as_typed(tmp_path):
    (tmp_path / "Surveys.csv").write_text(
        "response_date,survey,score\n2026-01-05,NPS,11\n2026-01-06,NPS,9\n"
    )
    result = CliRunner().invoke(main, ["kpis", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0
    assert "Surveys.csv row 2, score: 11 is outside 0..10 (NPS scale) (skipped the row)" in (
        result.stderr
    )
    tables = {"Surveys": pd.DataFrame({"response_date": ["2026-01-05"], "survey": ["NPS"]})}
    tables["Surveys"]["score"] = np.float64(11.0)  # as a float read from Excel
    book = write_tables(tmp_path / "b.xlsx", tables)
    result = CliRunner().invoke(main, ["kpis", str(book), "--format", "json"])
    assert "score: 11 is outside 0..10" in result.stderr and "np.float64" not in result.stderr


def export_typed(tables, folder, european=False):
    """The tables as spreadsheet exports write them: headers in words ("Customer Id"),
    dates day first, months as "Jan 2026", money with a currency and thousands separators;
    ``european``: semicolons between fields, 1.234,5 and 15.03.2026."""
    from cxkpi_xl.schema import DATE, MONTH, NUMBER, TABLES_BY_NAME

    folder.mkdir()
    for name, frame in tables.items():
        out = frame.copy()
        for col in TABLES_BY_NAME[name].columns:
            if col.name not in out:
                continue
            values = out[col.name]
            if col.type == DATE:
                fmt = "%d.%m.%Y" if european else "%d/%m/%Y"
                out[col.name] = pd.to_datetime(values).dt.strftime(fmt).fillna("")
            elif col.type == MONTH:
                out[col.name] = pd.to_datetime(values).dt.strftime("%b %Y")
            elif col.name in ("mrr", "amount"):
                text = [f"{v:,}" for v in values.astype(float)]
                if european:
                    text = [t.replace(",", "_").replace(".", ",").replace("_", ".") for t in text]
                out[col.name] = [f"{t} €" if european else f"${t}" for t in text]
            elif col.type == NUMBER and european:
                out[col.name] = [
                    "" if pd.isna(v) else f"{v}".replace(".", ",") for v in values.astype(float)
                ]
        out.columns = [c.replace("_", " ").title() for c in out.columns]
        out.to_csv(folder / f"{name.lower()}.csv", index=False, sep=";" if european else ",")
    settings = "name;value\ndecimal_separator;comma\n" if european else "name,value\n"
    (folder / "Settings.csv").write_text(settings)
    return folder


def test_a_folder_typed_as_exports_gives_the_same_kpis(tmp_path):
    tables = generate("tiny")
    clean = compute(read(tables), breakdowns=False).as_json()
    for european in (False, True):
        folder = export_typed(tables, tmp_path / f"export{european}", european)
        result = CliRunner().invoke(main, ["kpis", str(folder), "--format", "json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["periods"] == clean["periods"] and out["kpis"] == clean["kpis"]
