"""The template's Refresh KPIs button and, for an ``.xlsm``, xlwings' standalone VBA.

openpyxl writes the workbook; this module then works on the saved package's parts:

- it adds a drawing with the ``cxkpi_refresh`` shape (:mod:`cxkpi_xl.report.button`) to
  the Start here sheet;
- for a macro-enabled workbook it adds ``xl/vbaProject.bin``, copied unchanged from the
  ``quickstart_standalone.xlsm`` that the installed xlwings package ships (xlwings' own
  standalone module: ``RunPython``, ``ImportPythonUDFs`` and ``SampleCall``, which runs
  ``import BOOK; BOOK.main()``), its relationship, and the macro-enabled content type of
  the workbook part. xlwings outside its ``pro`` folder is BSD-3-Clause licensed, which
  allows this; the VBA declares the DLL of that xlwings version, so it is taken from the
  xlwings that is installed, not stored in this repository.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from cxkpi_xl.report.button import CT_DRAWING, MACRO, add_to_drawing, start_button

VBA_PART = "xl/vbaProject.bin"
CT_VBA = "application/vnd.ms-office.vbaProject"
CT_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
CT_XLSM = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
REL_VBA = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
REL_DRAWING = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/drawing"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
VBA_SOURCE = "quickstart_standalone.xlsm"
"""The workbook of the xlwings package whose vbaProject.bin the template carries."""

# Children of <worksheet> that come after <drawing> (ECMA-376 CT_Worksheet order).
_AFTER_DRAWING = (
    "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
    "webPublishItems", "tableParts", "extLst",
)  # fmt: skip


class ButtonError(Exception):
    """The button or the VBA cannot be added; the message is one line for the user."""


def vba_source() -> Path:
    """The installed xlwings' standalone quickstart workbook."""
    import xlwings

    path = Path(xlwings.__file__).parent / VBA_SOURCE
    if not path.is_file():
        raise ButtonError(
            f"xlwings {xlwings.__version__} has no {VBA_SOURCE}: cannot write a macro-enabled "
            "workbook (write an .xlsx instead)"
        )
    return path


def vba_project() -> bytes:
    """The bytes of xlwings' standalone ``vbaProject.bin``."""
    with zipfile.ZipFile(vba_source()) as z:
        return z.read(VBA_PART)


def _rels_xml(rels: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{x}"/>' for i, t, x in rels)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{NS_PKG_REL}">{body}</Relationships>'
    ).encode()


def _sheet_part(parts: dict[str, bytes], sheet: str) -> str:
    """The worksheet part of ``sheet`` in an openpyxl-written package."""
    workbook = parts["xl/workbook.xml"].decode()
    m = re.search(rf'<sheet\b[^>]*name="{re.escape(sheet)}"[^>]*r:id="(\w+)"', workbook)
    if m is None:
        raise ButtonError(f"the template has no sheet {sheet!r}")
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    t = re.search(rf'<Relationship\b[^>]*Id="{m.group(1)}"[^>]*/>', rels)
    assert t is not None
    target = re.search(r'Target="([^"]+)"', t.group(0))
    assert target is not None
    return (
        target.group(1).lstrip("/")
        if target.group(1).startswith("/")
        else ("xl/" + target.group(1))
    )


def add_button(data: bytes, sheet: str, *, macro_enabled: bool) -> bytes:
    """The package ``data`` (as openpyxl saved it) with the Refresh KPIs button on
    ``sheet`` and, if ``macro_enabled``, xlwings' standalone VBA project."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        order = z.namelist()
        parts = {n: z.read(n) for n in order}
    sheet_part = _sheet_part(parts, sheet)
    n = 1
    while f"xl/drawings/drawing{n}.xml" in parts:
        n += 1
    dpart = f"xl/drawings/drawing{n}.xml"
    drawing, drels = add_to_drawing(None, [], start_button(MACRO if macro_enabled else None))
    new: dict[str, bytes] = {dpart: drawing}
    if drels:
        new[f"xl/drawings/_rels/drawing{n}.xml.rels"] = _rels_xml(drels)

    # the sheet links to the drawing
    sheet_rels = re.sub(r"([^/]+)$", r"_rels/\1.rels", sheet_part)
    rels: list[tuple[str, str, str]] = []
    if sheet_rels in parts:
        text = parts[sheet_rels].decode()
        for element in re.findall(r"<Relationship\b[^>]*>", text):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', element))
            rels.append((attrs["Id"], attrs["Type"], attrs["Target"]))
    taken = {r[0] for r in rels}
    k = 1
    while f"rId{k}" in taken:
        k += 1
    rels.append((f"rId{k}", REL_DRAWING, f"/{dpart}"))
    new[sheet_rels] = _rels_xml(rels)
    xml = parts[sheet_part].decode()
    element = f'<drawing xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:id="rId{k}"/>'  # noqa: E501
    at = min(
        [m.start() for tag in _AFTER_DRAWING for m in [re.search(rf"<{tag}\b", xml)] if m]
        + [xml.rindex("</worksheet>")]
    )
    new[sheet_part] = (xml[:at] + element + xml[at:]).encode()

    types = parts["[Content_Types].xml"].decode()
    extra = f'<Override PartName="/{dpart}" ContentType="{CT_DRAWING}"/>'
    if macro_enabled:
        if CT_XLSX not in types:
            raise ButtonError("the workbook part has an unexpected content type")
        types = types.replace(CT_XLSX, CT_XLSM, 1)
        extra += f'<Override PartName="/{VBA_PART}" ContentType="{CT_VBA}"/>'
        new[VBA_PART] = vba_project()
        wb_rels = parts["xl/_rels/workbook.xml.rels"].decode()
        ids = {int(i) for i in re.findall(r'Id="rId(\d+)"', wb_rels)}
        rel = f'<Relationship Id="rId{max(ids, default=0) + 1}" Type="{REL_VBA}" Target="vbaProject.bin"/>'  # noqa: E501
        new["xl/_rels/workbook.xml.rels"] = wb_rels.replace(
            "</Relationships>", rel + "</Relationships>"
        ).encode()
    new["[Content_Types].xml"] = types.replace("</Types>", extra + "</Types>").encode()

    parts.update(new)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in [*order, *(p for p in new if p not in order)]:
            z.writestr(name, parts[name])
    return out.getvalue()


__all__ = ["VBA_SOURCE", "ButtonError", "add_button", "vba_project", "vba_source"]
