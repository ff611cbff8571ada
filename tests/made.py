"""Small workbooks made by hand for what the real-workbook corpus lacks: part names in
capitals, Strict Open XML, threaded comments, a slicer, an Excel 4 macro sheet, a digital
signature. Each is built at package level from an openpyxl workbook, the way the
features appear in files Excel writes."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.chart import BarChart, Reference
from openpyxl.comments import Comment
from openpyxl.worksheet.table import Table

PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
STRICT = {
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main": (
        "http://purl.oclc.org/ooxml/spreadsheetml/main"
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships": (
        "http://purl.oclc.org/ooxml/officeDocument/relationships"
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/main": (
        "http://purl.oclc.org/ooxml/drawingml/main"
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/chart": (
        "http://purl.oclc.org/ooxml/drawingml/chart"
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing": (
        "http://purl.oclc.org/ooxml/drawingml/spreadsheetDrawing"
    ),
}
"""Transitional namespaces (and relationship types under them) and their Strict ones."""


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def rewrite(path: Path, changes: dict[str, bytes | None], renames: dict[str, str] | None = None):
    """Rewrite a package: parts replaced, added or (None) removed, some renamed."""
    old = parts(path)
    renames = renames or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in {**old, **changes}.items():
            if data is not None:
                z.writestr(renames.get(name, name), data)


def _append(text: bytes, close: str, xml: str) -> bytes:
    s = text.decode("utf-8")
    at = s.rindex(close)
    return (s[:at] + xml + s[at:]).encode("utf-8")


def _board(path: Path, chart: bool = True) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Board"
    ws.append(["quarter", "revenue"])
    for i in range(1, 6):
        ws.append([f"Q{i}", i * 1000])
    if chart:
        c = BarChart()
        c.add_data(Reference(ws, min_col=2, min_row=1, max_row=6), titles_from_data=True)
        ws.add_chart(c, "D2")
    wb.save(path)
    return path


def capitals_book(path: Path) -> Path:
    """Sheet, drawing and chart parts spelled with capitals (Sheet1.xml), as some report
    generators write them; the sheet has a chart hanging off its rels."""
    _board(path)
    old = parts(path)
    swaps = [("sheet1.xml", "Sheet1.xml"), ("drawing1.xml", "Drawing1.xml")]
    swaps += [("chart1.xml", "Chart1.xml")]

    def spell(s: str) -> str:
        for a, b in swaps:
            s = s.replace(a, b)
        return s

    changes: dict[str, bytes | None] = {}
    for name, data in old.items():
        if name.endswith(".rels") or name == "[Content_Types].xml":
            changes[name] = spell(data.decode("utf-8")).encode("utf-8")
    rewrite(path, changes, {n: spell(n) for n in old})
    return path


def strict_book(path: Path) -> Path:
    """A Strict Open XML workbook ("Strict Open XML Spreadsheet" in Excel's Save As):
    every namespace and relationship type in its Strict form, conformance="strict"."""
    _board(path, chart=False)
    changes: dict[str, bytes | None] = {}
    for name, data in parts(path).items():
        text = data.decode("utf-8")
        for old, new in STRICT.items():
            text = text.replace(old, new)
        if name == "xl/workbook.xml":
            text = re.sub(r"<workbook\b", '<workbook conformance="strict"', text, count=1)
        changes[name] = text.encode("utf-8")
    rewrite(path, changes)
    return path


def threaded_comments_book(path: Path) -> Path:
    """A threaded comment (Excel 365) with its person list, beside the legacy comment
    and VML shape Excel keeps for older versions."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Notes"
    ws["A1"] = "churn"
    ws["A1"].comment = Comment("[Threaded comment] Is this net of expansions?", "Ana")
    wb.save(path)
    p = parts(path)
    sheet_rels = "xl/worksheets/_rels/sheet1.xml.rels"
    tc = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<ThreadedComments '
        'xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments" '
        'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><threadedComment '
        'ref="A1" dT="2026-01-05T10:00:00.00" personId="{6F1C9F0A-0000-4000-8000-000000000001}" '
        'id="{0E5A7D3C-0000-4000-8000-000000000002}"><text>Is this net of expansions?</text>'
        "</threadedComment></ThreadedComments>"
    )
    persons = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<personList '
        'xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments" '
        'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><person '
        'displayName="Ana" id="{6F1C9F0A-0000-4000-8000-000000000001}" userId="ana@example.com" '
        'providerId="None"/></personList>'
    )
    rewrite(
        path,
        {
            "xl/threadedComments/threadedComment1.xml": tc.encode(),
            "xl/persons/person.xml": persons.encode(),
            sheet_rels: _append(
                p[sheet_rels],
                "</Relationships>",
                '<Relationship Id="rIdTc1" Type="http://schemas.microsoft.com/office/2017/10/'
                'relationships/threadedComment" '
                'Target="../threadedComments/threadedComment1.xml"/>',
            ),
            "xl/_rels/workbook.xml.rels": _append(
                p["xl/_rels/workbook.xml.rels"],
                "</Relationships>",
                '<Relationship Id="rIdP1" Type="http://schemas.microsoft.com/office/2017/10/'
                'relationships/person" Target="persons/person.xml"/>',
            ),
            "[Content_Types].xml": _append(
                p["[Content_Types].xml"],
                "</Types>",
                '<Override PartName="/xl/threadedComments/threadedComment1.xml" '
                'ContentType="application/vnd.ms-excel.threadedcomments+xml"/>'
                '<Override PartName="/xl/persons/person.xml" '
                'ContentType="application/vnd.ms-excel.person+xml"/>',
            ),
        },
    )
    return path


def slicer_book(path: Path) -> Path:
    """A Table with a slicer (Excel 2013+ table slicer): the slicer part off the sheet,
    its cache off the workbook, both listed in the x14/x15 extensions."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Deals"
    ws.append(["region", "amount"])
    for r, a in [("North", 10), ("South", 20), ("North", 30)]:
        ws.append([r, a])
    ws.add_table(Table(displayName="Deals", ref="A1:B4"))
    wb.save(path)
    p = parts(path)
    x14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
    slicer = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<slicers xmlns="{x14}" xmlns:mc="http://schemas.openxmlformats.org/markup-'
        'compatibility/2006"><slicer name="region" cache="Slicer_region" caption="region" '
        'rowHeight="241300"/></slicers>'
    )
    cache = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<slicerCacheDefinition xmlns="{x14}" name="Slicer_region" sourceName="region">'
        '<extLst><x:ext xmlns:x15="http://schemas.microsoft.com/office/spreadsheetml/2010/11/'
        'main" xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'uri="{2F2917AC-EB37-4324-AD4E-5DD8C200BD13}"><x15:tableSlicerCache tableId="1" '
        'column="1"/></x:ext></extLst></slicerCacheDefinition>'
    )
    ext_sheet = (
        '<extLst><ext uri="{3A4CF648-6AED-40f4-86FF-DC5316D8AED3}" xmlns:x14="'
        f'{x14}"><x14:slicerList><x14:slicer r:id="rIdSl1"/></x14:slicerList></ext></extLst>'
    )
    ext_book = (
        '<extLst><ext uri="{46BE6895-7355-4a93-B00E-2C351335B9C9}" xmlns:x15="http://schemas.'
        'microsoft.com/office/spreadsheetml/2010/11/main"><x15:slicerCaches xmlns:x14="'
        f'{x14}"><x14:slicerCache r:id="rIdSc1"/></x15:slicerCaches></ext></extLst>'
    )
    sheet_rels = "xl/worksheets/_rels/sheet1.xml.rels"
    rewrite(
        path,
        {
            "xl/slicers/slicer1.xml": slicer.encode(),
            "xl/slicerCaches/slicerCache1.xml": cache.encode(),
            "xl/worksheets/sheet1.xml": _append(
                p["xl/worksheets/sheet1.xml"], "</worksheet>", ext_sheet
            ),
            "xl/workbook.xml": _append(p["xl/workbook.xml"], "</workbook>", ext_book),
            sheet_rels: _append(
                p[sheet_rels],
                "</Relationships>",
                '<Relationship Id="rIdSl1" Type="http://schemas.microsoft.com/office/2007/'
                'relationships/slicer" Target="../slicers/slicer1.xml"/>',
            ),
            "xl/_rels/workbook.xml.rels": _append(
                p["xl/_rels/workbook.xml.rels"],
                "</Relationships>",
                '<Relationship Id="rIdSc1" Type="http://schemas.microsoft.com/office/2007/'
                'relationships/slicerCache" Target="slicerCaches/slicerCache1.xml"/>',
            ),
            "[Content_Types].xml": _append(
                p["[Content_Types].xml"],
                "</Types>",
                '<Override PartName="/xl/slicers/slicer1.xml" '
                'ContentType="application/vnd.ms-excel.slicer+xml"/>'
                '<Override PartName="/xl/slicerCaches/slicerCache1.xml" '
                'ContentType="application/vnd.ms-excel.slicerCache+xml"/>',
            ),
        },
    )
    return path


def macro_sheet_book(path: Path) -> Path:
    """An .xlsm with an Excel 4.0 macro sheet (Macro1) beside a worksheet."""
    _board(path.with_suffix(".xlsx"), chart=False).rename(path)
    p = parts(path)
    macro = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xm:macrosheet '
        'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData><row r="1">'
        '<c r="A1" t="b"><f>RETURN()</f><v>1</v></c></row></sheetData></xm:macrosheet>'
    )
    wb = p["xl/workbook.xml"].decode()
    wb = re.sub(r"(</(?:\w+:)?sheets>)", r'<sheet name="Macro1" sheetId="99" r:id="rIdM1"/>\1', wb)
    ct = (
        p["[Content_Types].xml"]
        .decode()
        .replace(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        )
    )
    rewrite(
        path,
        {
            "xl/macrosheets/sheet1.xml": macro.encode(),
            "xl/workbook.xml": wb.encode(),
            "xl/_rels/workbook.xml.rels": _append(
                p["xl/_rels/workbook.xml.rels"],
                "</Relationships>",
                '<Relationship Id="rIdM1" Type="http://schemas.microsoft.com/office/2006/'
                'relationships/xlMacrosheet" Target="macrosheets/sheet1.xml"/>',
            ),
            "[Content_Types].xml": _append(
                ct.encode(),
                "</Types>",
                '<Override PartName="/xl/macrosheets/sheet1.xml" '
                'ContentType="application/vnd.ms-excel.macrosheet+xml"/>',
            ),
        },
    )
    return path


def signed_book(path: Path) -> Path:
    """A workbook with a digital signature (its _xmlsignatures parts)."""
    _board(path, chart=False)
    p = parts(path)
    rewrite(
        path,
        {
            "_rels/.rels": _append(
                p["_rels/.rels"],
                "</Relationships>",
                f'<Relationship Id="rIdSig" Type="{PKG_RELS}/digital-signature/origin" '
                'Target="_xmlsignatures/origin.sigs"/>',
            ),
            "[Content_Types].xml": _append(
                p["[Content_Types].xml"],
                "</Types>",
                '<Default Extension="sigs" ContentType="application/vnd.openxmlformats-package.'
                'digital-signature-origin"/><Override PartName="/_xmlsignatures/sig1.xml" '
                'ContentType="application/vnd.openxmlformats-package.digital-signature-'
                'xmlsignature+xml"/>',
            ),
            "_xmlsignatures/origin.sigs": b"",
            "_xmlsignatures/sig1.xml": b"<Signature xmlns='http://www.w3.org/2000/09/xmldsig#'/>",
            "_xmlsignatures/_rels/origin.sigs.rels": (
                f'<Relationships xmlns="{PKG_RELS}"><Relationship Id="rId1" Type="'
                f'{PKG_RELS}/digital-signature/signature" Target="sig1.xml"/></Relationships>'
            ).encode(),
        },
    )
    return path


MADE = {
    "made_capitals.xlsx": capitals_book,
    "made_strict.xlsx": strict_book,
    "made_threaded_comments.xlsx": threaded_comments_book,
    "made_slicer.xlsx": slicer_book,
    "made_macro_sheet.xlsm": macro_sheet_book,
    "made_signed.xlsx": signed_book,
}
"""The hand-made workbooks, by file name."""


def make_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [build(folder / name) for name, build in MADE.items()]
