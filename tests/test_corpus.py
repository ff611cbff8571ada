"""Refresh never damages a workbook made by someone else: a deterministic sample of the
real-workbook corpus (../shared/data/real-workbooks/: 436 files from the test suites of
ClosedXML and calamine, made by Excel, LibreOffice and libraries) and the hand-made
files of tests/made.py, each with the input Tables grafted in at package level, is
refreshed twice. Every part outside the sheets refresh owns and the bookkeeping parts must
stay byte for byte; calamine, openpyxl and LibreOffice must open the result; the sheet
list must be the user's plus Report and Data Issues. A broken package must be refused in
one line, unchanged. benchmarks/corpus.py runs the same over every file."""

from __future__ import annotations

from pathlib import Path

import pytest

import cxkpi_xl.refresh as refresh_module

from .corpus import CORPUS, check, input_tables, libreoffice_opens
from .lo import soffice
from .made import make_all

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EVERY = 20
"""The sample: every 20th file of the sorted corpus, plus the interesting ones below."""
INTERESTING = {
    # pivot tables, charts, chartsheets, Strict, odd namespaces, missing styles, VBA
    "calamine/tests_pivots.xlsx",
    "calamine/tests_strict_iso_paths.xlsx",
    "calamine/tests_nonstandard-xml-ns-prefix.xlsx",
    "calamine/tests_inlineStr_cdata.xlsx",
    "calamine/tests_vba.xlsm",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_LO_xlsx_universal-content-strict.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_EmptyStyles.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_LO_xlsx_tdf100709.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_LoadPivotTables.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_DialogSheet.xlsx",
    # refused, each for its own reason (below)
    "calamine/tests_issue252.xlsx",
    "calamine/tests_minimal_package.xlsx",
    "calamine/tests_pass_protected.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_SheetsWithoutRelId.xlsx",
    "closedxml/ClosedXML.Tests_Resource_TryToLoad_~$LoadPivotTables.xlsx",
    "closedxml/ClosedXML.Tests_Resource_Other_Protection_protectstructurewithpassword.xlsx",
}
REFUSED = {
    "tests_issue252.xlsx": "damaged zip package (Bad CRC-32",
    "tests_issue_530.xlsx": "has no part xl/workbook.xml",  # Windows paths: xl\workbook.xml
    "tests_minimal_package.xlsx": "has no part xl/workbook.xml",  # workbook.xml at the root
    "tests_pass_protected.xlsx": "password-protected",
    "ClosedXML.Tests_Resource_TryToLoad_LO_xlsm_pass_CVE-2016-0122-1.xlsm": "not a zip package",
    "ClosedXML.Tests_Resource_TryToLoad_LO_xlsm_tdf111974.xlsm": "Relationship not found",
    "ClosedXML.Tests_Resource_TryToLoad_SheetsWithoutRelId.xlsx": "Relationship not found",
    "ClosedXML.Tests_Resource_TryToLoad_~$LoadPivotTables.xlsx": "not a zip package",
    "ClosedXML.Tests_Resource_Examples_Misc_WorkbookProtection.xlsx": "structure is protected",
    "ClosedXML.Tests_Resource_Other_Protection_protectstructurewithoutpassword.xlsx": (
        "structure is protected"
    ),
    "ClosedXML.Tests_Resource_Other_Protection_protectstructurewithpassword.xlsx": (
        "structure is protected"
    ),
    "made_macro_sheet.xlsm": "Excel 4.0 macro sheet 'Macro1'",
    "made_signed.xlsx": "digitally signed: refreshing would remove its signature",
}
"""Every file of the corpus (and of tests/made.py) refresh refuses, and why."""


def sample() -> list[Path]:
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".xlsx", ".xlsm"))
    picked = [f for i, f in enumerate(files) if i % EVERY == 0]
    picked += [f for f in files if f"{f.parent.name}/{f.name}" in INTERESTING]
    return sorted(set(picked))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Every sampled file checked, then one LibreOffice run over all the results. The
    input Tables are the same in every file, so their KPIs are computed once (the
    writing, not the engine, is under test)."""
    if not CORPUS.exists():
        pytest.skip("the real-workbook corpus is not there")
    work = tmp_path_factory.mktemp("corpus")
    files = sample() + make_all(work / "made")
    tables = input_tables()
    mp = pytest.MonkeyPatch()
    _REPORT.clear()
    mp.setattr(refresh_module, "compute", _compute_once)
    try:
        found = [check(f, work / str(i), tables) for i, f in enumerate(files)]
    finally:
        mp.undo()
    soffice()  # LibreOffice must be there in CI; elsewhere the test is skipped without it
    libreoffice_opens(found, work / "lo")
    return found


_REPORT = []


def _compute_once(data, **_memo):  # type: ignore[no-untyped-def]
    if not _REPORT:
        from cxkpi_xl.engine import compute

        _REPORT.append(compute(data))
    return _REPORT[0]


def test_the_sample_covers_the_corpus_and_the_hand_made_files(outcomes):
    names = {o.name for o in outcomes}
    assert len(outcomes) >= 35
    assert {"made_capitals.xlsx", "made_strict.xlsx", "made_slicer.xlsx"} <= names
    assert {"tests_pivots.xlsx", "tests_strict_iso_paths.xlsx"} <= names


def test_libreoffice_opened_the_results(outcomes):
    opened = [o.name for o in outcomes if o.libreoffice]
    refreshed = [o.name for o in outcomes if o.status == "refreshed"]
    assert len(opened) >= 0.9 * len(refreshed), sorted(set(refreshed) - set(opened))


def test_every_workbook_is_refreshed_without_damage_or_refused_in_one_line(outcomes):
    wrong = []
    for o in outcomes:
        if o.problems:
            wrong.append(f"{o.name}: {'; '.join(o.problems)}")
        elif o.name in REFUSED:
            if o.status != "refused" or REFUSED[o.name] not in o.message:
                wrong.append(f"{o.name}: expected a refusal ({REFUSED[o.name]}), got {o.message}")
        elif o.status != "refreshed":
            wrong.append(f"{o.name}: refused: {o.message}")
    assert not wrong, "\n".join(wrong)
