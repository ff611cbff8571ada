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
    # the schema doc's keys, then the issue-16 "Does CX pay?" analysis
    assert list(out) == ["granularity", "periods", "kpis", "issues", "cx_impact"]
    assert out["granularity"] == "month"
    assert list(out["kpis"]) == report_kpi_ids()
    assert all(len(v) == len(out["periods"]) for v in out["kpis"].values())
    assert out == compute(read(tables), breakdowns=False, impact=True).as_json()


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


def test_every_issue_is_reachable_from_json_and_issues(tmp_path):
    # Seven MRR rows of text: the JSON holds all seven with JSON-native values, the
    # stderr list shows five and points at --issues, which lists all seven.
    mrr = pd.DataFrame(
        {
            "customer_id": ["A"] * 8,
            "month": [f"2026-0{m}-01" for m in range(1, 9)],
            "mrr": [10, "x1", "x2", "x3", "x4", "x5", "x6", 11.0],
        }
    )
    folder = tmp_path / "csv"
    folder.mkdir()
    mrr.to_csv(folder / "MRR.csv", index=False)
    result = CliRunner().invoke(main, ["kpis", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    issues = json.loads(result.stdout)["issues"]
    assert len(issues) == 6
    assert issues[0] == {
        "table": "MRR.csv",  # where the user finds the row: the file or sheet
        "row": 3,  # the header is row 1, "x1" is on row 3
        "column": "mrr",
        "value": "x1",
        "problem": issues[0]["problem"],  # worded by the reader
        "action": "kept the previous month's MRR for 2026-02",
    }
    assert "and 1 more: cxkpi kpis --issues lists them all" in result.stderr
    every = CliRunner().invoke(main, ["kpis", str(folder), "--issues"])
    assert every.exit_code == 0
    assert every.stderr.count("kept the previous month's MRR") == 6
    assert "6 data issues (on stderr)" in every.stdout


def test_issue_values_are_json_native():
    import datetime as dt

    import numpy as np

    from cxkpi_xl.engine import json_value

    # 11.0 was typed 11; numpy scalars become Python ones; dates become ISO text
    assert json_value(np.float64(11.0)) == 11 and type(json_value(np.float64(11.0))) is int
    assert json_value(np.float64(2.5)) == 2.5 and json_value(np.int64(3)) == 3
    assert json_value(pd.Timestamp("2026-03-01")) == "2026-03-01"
    assert json_value(np.datetime64("2026-03-01T10:30")) == "2026-03-01T10:30:00"
    assert json_value(dt.date(2026, 1, 5)) == "2026-01-05"
    assert json_value(float("nan")) is None and json_value(None) is None
    assert json_value("") is None and json_value("  ") is None  # a blank cell is null
    assert json_value(" ten ") == " ten "  # text stays as typed
    assert json_value(float("inf")) == "inf"


def test_a_book_too_large_to_add_exactly_exits_with_one_line(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    pd.DataFrame(
        {"customer_id": ["A", "B"], "month": ["2026-01-01"] * 2, "mrr": [3e12, 0.123456]}
    ).to_csv(folder / "MRR.csv", index=False)
    result = CliRunner().invoke(main, ["kpis", str(folder)])
    assert result.exit_code == 1
    assert "MRR is too large to add up exactly" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_sample_csv_writes_where_kpis_reads(tmp_path):
    result = CliRunner().invoke(
        main, ["sample", str(tmp_path), "--size", "tiny", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "Customers.csv").exists() and (tmp_path / "Settings.csv").exists()
    out = CliRunner().invoke(main, ["kpis", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    from_csv = json.loads(out.stdout)
    assert from_csv == compute(read(generate("tiny")), breakdowns=False, impact=True).as_json()
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
