"""The KPI catalogue is the one registry: everything that lists KPIs agrees with it."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import cxkpi_xl
from cxkpi_xl.catalogue import (
    CATALOGUE,
    FAMILIES,
    UNITS,
    excel_functions,
    get,
    markdown_table,
)
from cxkpi_xl.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = ROOT.parent / "shared" / "reference" / "kpi-definitions.md"


def test_ids_and_excel_names_are_unique_and_well_formed():
    ids = [k.id for k in CATALOGUE]
    assert len(ids) == len(set(ids))
    for k in CATALOGUE:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", k.id)
        assert k.unit in UNITS and k.family in FAMILIES
        assert k.title and k.formula and k.source
        if k.excel_name:
            assert re.fullmatch(r"CX_[A-Z0-9_]+", k.excel_name)


@pytest.mark.skipif(not DEFINITIONS.exists(), reason="shared/ is not beside the checkout")
def test_every_kpi_of_the_definitions_is_in_the_catalogue():
    text = DEFINITIONS.read_text(encoding="utf-8")
    # Every id in the first column of the definition tables, e.g. "| `nps` | ...".
    defined = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))
    defined |= {"mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn"}
    defined.add("net_new_mrr")
    missing = defined - {k.id for k in CATALOGUE}
    assert not missing, f"KPIs of kpi-definitions.md missing from the catalogue: {missing}"


def test_the_engine_computes_the_catalogues_report_kpis_in_its_order():
    """The engine lists what it computes per period (it cannot read the catalogue, which
    sits above it); the catalogue says what the report shows. They must be one list."""
    from cxkpi_xl.engine import NOT_COMPUTED, REPORT_KPIS

    in_report = [k.id for k in CATALOGUE if k.in_report and k.id not in NOT_COMPUTED]
    assert list(REPORT_KPIS) == in_report
    assert NOT_COMPUTED <= {k.id for k in CATALOGUE if k.in_report}


def test_functions_are_exported_and_documented():
    for k in CATALOGUE:
        if k.function is None:
            continue
        assert getattr(cxkpi_xl, k.function.__name__) is k.function, k.id
        doc = inspect.getdoc(k.function) or ""
        assert ">>>" in doc, f"{k.id} has no doctested example"
        assert "formula" in doc.lower() or k.unit == "table", k.id
        params = inspect.signature(k.function).parameters
        if k.id in (
            "mrr_movements",
            "cohort_retention",
            "cltv_predicted",
            "probability_alive",
            "sbg_retention",
        ):  # tables
            continue
        assert "zero_division" in params, f"{k.id} has no zero_division"
        assert params["zero_division"].kind is inspect.Parameter.KEYWORD_ONLY


def test_function_names_follow_the_id():
    # One identifier per KPI: the Python function is named after the KPI id.
    for k in CATALOGUE:
        if k.function is not None:
            assert k.function.__name__ == k.id


def test_required_excel_names_exist():
    from .excel import REQUIRED_NAMES as required

    assert set(required) <= {k.excel_name for k in excel_functions()}


def test_get():
    assert get("nps").excel_name == "CX_NPS"
    with pytest.raises(KeyError, match=r"unknown KPI 'npx'"):
        get("npx")


def test_readme_generated_blocks_are_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_readme", ROOT / "tools" / "sync_readme.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sync.render(readme) == readme, "README is stale: run python tools/sync_readme.py"


def test_readme_table_is_generated_from_the_catalogue():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- kpi-table:start -->\n(.*?)<!-- kpi-table:end -->", readme, flags=re.S)
    assert block, "README lacks the kpi-table markers"
    assert block.group(1) == markdown_table(), (
        "README KPI table is stale: run `cxkpi functions --format markdown` and paste it"
    )


def test_cli_functions_lists_every_kpi():
    runner = CliRunner()
    table = runner.invoke(main, ["functions"])
    assert table.exit_code == 0, table.output
    for k in CATALOGUE:
        assert k.id in table.output
    rows = json.loads(runner.invoke(main, ["functions", "--format", "json"]).output)
    assert [r["id"] for r in rows] == [k.id for k in CATALOGUE]
    nrr = next(r for r in rows if r["id"] == "net_revenue_retention")
    assert nrr["excel_name"] == "CX_NRR"
    assert nrr["arguments"] == ["start_mrr", "expansion", "contraction", "churned_mrr"]
    md = runner.invoke(main, ["functions", "--format", "markdown"]).output
    assert md == markdown_table()


def test_every_excel_argument_is_described():
    from cxkpi_xl.catalogue import ARGUMENTS

    for k in excel_functions():
        for name in k.arguments:
            assert ARGUMENTS.get(name), f"{k.excel_name}: argument {name!r} has no description"
