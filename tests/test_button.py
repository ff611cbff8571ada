"""The Refresh KPIs button: the macro-enabled template carries xlwings' standalone VBA and a
shape that runs its macro; the .xlsx carries the shape for xlwings Lite and Server; the
Report gets the same button; refreshing keeps the VBA and the Start here drawing byte for
byte; LibreOffice renders the button."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xlwings
from click.testing import CliRunner

import cxkpi_xl.excel as excel
from cxkpi_xl.cli import main
from cxkpi_xl.refresh import refresh

from .lo import RECALC_ON_LOAD, soffice

XDR = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
QUICKSTART = Path(xlwings.__file__).parent / "quickstart_standalone.xlsm"


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    """The templates as a user writes them: ``cxkpi template`` with sample data."""
    folder = tmp_path_factory.mktemp("button")
    out = {}
    for name in ("cx_kpis.xlsm", "cx_plain.xlsx"):
        done = CliRunner().invoke(
            main, ["template", str(folder / name), "--sample-data", "--size", "tiny"]
        )
        assert done.exit_code == 0, done.output
        out[name] = folder / name
    return out


def _rels(z: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, target as written) of ``part``'s relationships."""
    folder, name = part.rsplit("/", 1)
    root = ET.fromstring(z.read(f"{folder}/_rels/{name}.rels"))
    return {r.get("Id"): (r.get("Type"), r.get("Target")) for r in root.iter(PKG + "Relationship")}


def _part(source: str, target: str) -> str:
    if target.startswith("/"):
        return target[1:]
    return str(Path(source).parent / target)


def sheet_part(z: zipfile.ZipFile, sheet: str) -> str:
    wb = ET.fromstring(z.read("xl/workbook.xml"))
    rid = next(s.get(R + "id") for s in wb.iter(MAIN + "sheet") if s.get("name") == sheet)
    return _part("xl/workbook.xml", _rels(z, "xl/workbook.xml")[rid][1])


def drawing_part(z: zipfile.ZipFile, sheet: str) -> str:
    part = sheet_part(z, sheet)
    rid = ET.fromstring(z.read(part)).find(MAIN + "drawing").get(R + "id")
    return _part(part, _rels(z, part)[rid][1])


def buttons(z: zipfile.ZipFile, sheet: str) -> list[dict[str, str | None]]:
    """The shapes named cxkpi_refresh in ``sheet``'s drawing: macro, text, link target."""
    part = drawing_part(z, sheet)
    out = []
    for sp in ET.fromstring(z.read(part)).iter(XDR + "sp"):
        nv = sp.find(f"{XDR}nvSpPr/{XDR}cNvPr")
        if nv.get("name") != "cxkpi_refresh":
            continue
        link = nv.find(A + "hlinkClick")
        target = _rels(z, part)[link.get(R + "id")] if link is not None else None
        out.append(
            {
                "macro": sp.get("macro"),
                "text": "".join(t.text or "" for t in sp.iter(A + "t")),
                "link": target[1] if target else None,
                "link_type": target[0].rsplit("/", 1)[-1] if target else None,
            }
        )
    return out


def vba_modules(path: Path) -> dict[str, str]:
    """Module name -> VBA source, extracted by oletools' olevba."""
    olevba = pytest.importorskip("oletools.olevba")
    parser = olevba.VBA_Parser(str(path))
    try:
        return {name: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def test_the_xlsm_carries_xlwings_standalone_vba_unchanged(books):
    with zipfile.ZipFile(books["cx_kpis.xlsm"]) as z, zipfile.ZipFile(QUICKSTART) as q:
        assert z.read("xl/vbaProject.bin") == q.read("xl/vbaProject.bin")
        types = ET.fromstring(z.read("[Content_Types].xml"))
        overrides = {o.get("PartName"): o.get("ContentType") for o in types.iter(CT + "Override")}
        assert overrides["/xl/workbook.xml"] == (
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
        )
        assert overrides["/xl/vbaProject.bin"] == "application/vnd.ms-office.vbaProject"
        kinds = {t.rsplit("/", 1)[-1]: x for t, x in _rels(z, "xl/workbook.xml").values()}
        assert _part("xl/workbook.xml", kinds["vbaProject"]) == "xl/vbaProject.bin"
        # the code names of the VBA project's document modules
        wb = z.read("xl/workbook.xml").decode()
        assert 'codeName="ThisWorkbook"' in wb
    with zipfile.ZipFile(books["cx_plain.xlsx"]) as z:
        assert not [n for n in z.namelist() if "vba" in n.lower()]
        assert b"macroEnabled" not in z.read("[Content_Types].xml")


def test_the_button_runs_the_macro_that_imports_the_module_the_template_writes(books):
    book = books["cx_kpis.xlsm"]
    with zipfile.ZipFile(book) as z:
        (shape,) = buttons(z, "Start here")
    assert shape["text"] == "Refresh KPIs" and shape["link"] is None
    # Excel's form for a macro of this workbook: [0]!Name
    m = re.fullmatch(r"\[0\]!(\w+)", shape["macro"] or "")
    assert m, shape["macro"]
    macro = m.group(1)
    modules = vba_modules(book)
    code = "\n".join(modules.values())
    body = re.search(rf"^Sub {macro}\(\)\s*$(.*?)^End Sub", code, re.M | re.S)
    assert body, f"no Sub {macro} in the VBA"
    # SampleCall: mymodule = the workbook's name up to its last dot; RunPython "import
    # mymodule;mymodule.main()". Its two statements, read as written:
    lines = [line.strip() for line in body.group(1).strip().splitlines()]
    assert lines == [
        'mymodule = Left(ThisWorkbook.Name, (InStrRev(ThisWorkbook.Name, ".", -1, '
        "vbTextCompare) - 1))",
        'RunPython "import " & mymodule & ";" & mymodule & ".main()"',
    ]
    assert re.search(r"^Public Function RunPython\(", code, re.M)
    # What those statements compute for this workbook, and that the file is there.
    module_name = book.name[: book.name.rindex(".")]
    runner = book.parent / f"{module_name}.py"
    assert runner.is_file()
    spec = importlib.util.spec_from_file_location(module_name, runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is excel.main


def test_the_vba_imports_the_functions_from_the_workbooks_conf_sheet(books):
    """ImportPythonUDFs reads "UDF Modules" from the sheet PROJECT_NAME & ".conf"."""
    code = "\n".join(vba_modules(books["cx_kpis.xlsm"]).values())
    assert re.search(r"^Sub ImportPythonUDFs\(\)", code, re.M)
    project = re.search(r'PROJECT_NAME As String = "(\w+)"', code).group(1)
    assert 'wb.Sheets(PROJECT_NAME & ".conf")' in code
    import openpyxl

    wb = openpyxl.load_workbook(books["cx_kpis.xlsm"], read_only=True)
    conf = wb[f"{project}.conf"]
    rows = {r[0]: r[1] for r in conf.iter_rows(values_only=True)}
    assert rows["UDF Modules"] == "cxkpi_xl.udfs"


def test_the_xlsx_shape_is_bound_to_the_lite_and_server_script(books):
    with zipfile.ZipFile(books["cx_plain.xlsx"]) as z:
        (shape,) = buttons(z, "Start here")
    assert shape["macro"] == "" and shape["text"] == "Refresh KPIs"
    # The script's button reference names the shape, its sheet and the cell it links to.
    m = re.fullmatch(r"\[(\w+)\](.+)!([A-Z]+\d+)", excel.cx_refresh.__xlscript__["button"])
    assert m and m.group(1) == "cxkpi_refresh"
    assert shape["link_type"] == "hyperlink"
    assert shape["link"] == f"#'{m.group(2)}'!{m.group(3)}"


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.mark.parametrize("name", ["cx_kpis.xlsm", "cx_plain.xlsx"])
def test_refresh_twice_keeps_the_vba_and_the_button_byte_for_byte(books, tmp_path, name):
    book = tmp_path / name
    shutil.copy(books[name], book)
    before = _parts(book)
    with zipfile.ZipFile(book) as z:
        start = [sheet_part(z, "Start here"), drawing_part(z, "Start here")]
    kept = [
        *start,
        *(p.rsplit("/", 1)[0] + "/_rels/" + p.rsplit("/", 1)[1] + ".rels" for p in start),
    ]
    if name.endswith(".xlsm"):
        kept.append("xl/vbaProject.bin")
    kept = [p for p in kept if p in before]  # (the .xlsm's shape has no link, no rels)
    assert len(kept) >= 3
    refresh(book)
    first = _parts(book)
    refresh(book)
    second = _parts(book)
    for part in kept:
        assert first[part] == before[part] == second[part], part
    # every part of the template is as it was, except the bookkeeping refresh updates
    bookkeeping = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                   "xl/styles.xml", "docProps/app.xml"}  # fmt: skip
    changed = {p for p in before if p not in bookkeeping and first.get(p) != before[p]}
    assert not changed
    # the Report's button: drawn by the first refresh, the same bytes after the second
    with zipfile.ZipFile(book) as z:
        report = drawing_part(z, "Report")
        (shape,) = buttons(z, "Report")
    assert first[report] == second[report]
    if name.endswith(".xlsm"):
        assert shape["macro"] == "[0]!SampleCall" and shape["link"] is None
    else:
        assert shape["macro"] == ""
        m = re.fullmatch(
            r"\[(\w+)\](.+)!([A-Z]+\d+)", excel.cx_refresh_report.__xlscript__["button"]
        )
        assert m and shape["link"] == f"#{m.group(2)}!{m.group(3)}"


def _pdf_pages(pdf: Path) -> list[str]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return [
        subprocess.run(
            ["pdftotext", "-f", str(p), "-l", str(p), str(pdf), "-"], capture_output=True, text=True
        ).stdout
        for p in range(1, pages + 1)
    ]


def test_libreoffice_opens_the_xlsm_and_renders_the_buttons(books, tmp_path):
    exe = soffice()
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils is not installed")
    book = tmp_path / "cx_kpis.xlsm"
    shutil.copy(books["cx_kpis.xlsm"], book)
    refresh(book)
    profile = tmp_path / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(RECALC_ON_LOAD)
    subprocess.run(
        [exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
        capture_output=True, timeout=600,
    )  # fmt: skip
    pdf = tmp_path / "cx_kpis.pdf"
    assert pdf.exists(), "LibreOffice did not open the .xlsm"
    pages = _pdf_pages(pdf)
    start = next(p for p in pages if "How to use this workbook" in p)
    # The Start here text names the button once; the shape's label is the other one.
    import openpyxl

    ws = openpyxl.load_workbook(book, read_only=True)["Start here"]
    in_cells = sum(str(r[0] or "").count("Refresh KPIs") for r in ws.iter_rows(values_only=True))
    assert start.count("Refresh KPIs") == in_cells + 1
    # the Report's first page: it opens with the Report's title
    report = [p for p in pages if "CX KPI report" in p]
    assert report and "Refresh KPIs" in report[0]


def test_the_report_buttons_script_refreshes_through_xlwings_dispatch():
    """cx_refresh_report, run as xlwings Lite/Server run a script, writes the Report and
    Data Issues sheets as cx_refresh does."""
    import asyncio

    from xlwings.server import custom_scripts_call

    from cxkpi_xl.data.sample import generate
    from cxkpi_xl.data.schema import TABLES

    from .test_excel_script import payload

    names = {t.name for t in TABLES} - {"HealthWeights"}
    tables = {k: v for k, v in generate("tiny", seed=5).items() if k in names}
    books = [xlwings.Book(json=payload(tables, {})) for _ in range(2)]
    for book, script in zip(books, ("cx_refresh_report", "cx_refresh"), strict=True):
        asyncio.run(custom_scripts_call(excel, script, typehint_to_value={xlwings.Book: book}))
    first, second = (b.json()["actions"] for b in books)
    assert [a["func"] for a in first].count("addSheet") == 2
    assert first == second
