"""Graft cxkpi's input Tables into any workbook at package level, the way a user adds
sheets to a workbook they already have: new worksheet parts holding an Excel Table each,
their sheet entries and relationships, and nothing else changed.

Written independently of cxkpi_xl.package (no shared code), so a bug in the writer's
part handling cannot hide itself in the test's own input."""

from __future__ import annotations

import math
import posixpath
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd

TRANSITIONAL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"
NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_MAIN_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
CT_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_TABLE = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"


class GraftError(Exception):
    """The package cannot be read well enough to graft into (a broken test file)."""


def _col(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def _cell(ref: str, v) -> str:  # type: ignore[no-untyped-def]
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, pd.Timestamp):
        v = v.strftime("%Y-%m-%d")
    if isinstance(v, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
    return f'<c r="{ref}"><v>{float(v)!r}</v></c>'


def _sheet_xml(frame: pd.DataFrame, ns: str, rns: str) -> bytes:
    rows = [[str(c) for c in frame.columns], *frame.astype(object).values.tolist()]
    body = []
    for r, row in enumerate(rows, start=1):
        cells = "".join(_cell(f"{_col(c)}{r}", v) for c, v in enumerate(row, start=1))
        body.append(f'<row r="{r}">{cells}</row>')
    ref = f"A1:{_col(len(frame.columns))}{len(rows)}"
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{ns}" '
        f'xmlns:r="{rns}"><dimension ref="{ref}"/><sheetData>{"".join(body)}</sheetData>'
        f'<tableParts count="1"><tablePart r:id="rId1"/></tableParts></worksheet>'
    ).encode()


def _table_xml(name: str, table_id: int, frame: pd.DataFrame, ns: str) -> bytes:
    ref = f"A1:{_col(len(frame.columns))}{len(frame) + 1}"
    cols = "".join(
        f'<tableColumn id="{i}" name={quoteattr(str(c))}/>' for i, c in enumerate(frame.columns, 1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<table xmlns="{ns}" '
        f'id="{table_id}" name="{name}" displayName="{name}" ref="{ref}">'
        f'<autoFilter ref="{ref}"/><tableColumns count="{len(frame.columns)}">{cols}'
        "</tableColumns></table>"
    ).encode()


def _rels_name(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def graft(source: Path, target: Path, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Write ``source`` plus one sheet and Table per entry of ``tables`` to ``target``;
    returns the sheet names of the result in order. Raises GraftError for a package
    that cannot be read."""
    try:
        with zipfile.ZipFile(source) as z:
            parts = {i.filename: z.read(i) for i in z.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
        raise GraftError(str(e)) from e
    lower = {n.lower(): n for n in parts}
    root_rels = parts.get(lower.get("_rels/.rels", ""), b"").decode("utf-8", "replace")
    m = re.search(r'Target="/?([^"]*)"[^>]*Type="[^"]*/officeDocument"', root_rels) or re.search(
        r'Type="[^"]*/officeDocument"[^>]*Target="/?([^"]*)"', root_rels
    )
    wb_part = lower.get((m.group(1) if m else "xl/workbook.xml").lower())
    ct_name = lower.get("[content_types].xml")
    if wb_part is None or ct_name is None:
        raise GraftError("no workbook part")
    wb = parts[wb_part].decode("utf-8")
    strict = NS_MAIN_STRICT in wb
    ns, rns = (NS_MAIN_STRICT, STRICT) if strict else (NS_MAIN, TRANSITIONAL)
    rels_name = lower.get(_rels_name(wb_part).lower())
    if rels_name is None:
        raise GraftError("no workbook rels")
    rels = parts[rels_name].decode("utf-8")
    folder = posixpath.dirname(wb_part)
    sheet_ids = [int(x) for x in re.findall(r'<(?:\w+:)?sheet\b[^>]*\ssheetId="(\d+)"', wb)]
    next_id = max([0, *sheet_ids]) + 1
    table_ids = [
        int(x)
        for n, d in parts.items()
        if n.lower().startswith(posixpath.join(folder, "tables/").lower())
        for x in re.findall(rb'<(?:\w+:)?table\b[^>]*\sid="(\d+)"', d)[:1]
    ]
    next_table = max([0, *table_ids]) + 1
    p = re.search(r"<(\w+:)?sheets\b", wb)
    if p is None:
        raise GraftError("no sheets element")
    wp = p.group(1) or ""
    rp = (re.search(r"<(\w+:)?Relationships\b", rels) or re.search("", "")).group(1) or ""
    ct = parts[ct_name].decode("utf-8")
    cp = (re.search(r"<(\w+:)?Types\b", ct) or re.search("", "")).group(1) or ""
    entries, new_rels, overrides = [], [], []
    for i, (name, frame) in enumerate(tables.items(), start=1):
        n = 1
        while f"{folder}/worksheets/cxin{n}.xml".lower() in lower:
            n += 1
        sheet = f"{folder}/worksheets/cxin{n}.xml"
        t = 1
        while f"{folder}/tables/cxintable{t}.xml".lower() in lower:
            t += 1
        table = f"{folder}/tables/cxintable{t}.xml"
        for created in (sheet, table, _rels_name(sheet)):
            lower[created.lower()] = created
        parts[sheet] = _sheet_xml(frame, ns, rns)
        parts[table] = _table_xml(name, next_table, frame, ns)
        parts[_rels_name(sheet)] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rns}/table" Target="../tables/cxintable{t}.xml"/>'
            "</Relationships>"
        ).encode()
        rid = f"rIdCxIn{i}"
        entries.append(
            f'<{wp}sheet xmlns:r="{rns}" name="{name}" sheetId="{next_id}" r:id="{rid}"/>'
        )
        new_rels.append(f'<{rp}Relationship Id="{rid}" Type="{rns}/worksheet" Target="/{sheet}"/>')
        overrides.append(f'<{cp}Override PartName="/{sheet}" ContentType="{CT_SHEET}"/>')
        overrides.append(f'<{cp}Override PartName="/{table}" ContentType="{CT_TABLE}"/>')
        next_id += 1
        next_table += 1
    close = wb.index(f"</{wp}sheets>")
    parts[wb_part] = (wb[:close] + "".join(entries) + wb[close:]).encode("utf-8")
    close = rels.rindex(f"</{rp}Relationships>")
    parts[rels_name] = (rels[:close] + "".join(new_rels) + rels[close:]).encode("utf-8")
    close = ct.rindex(f"</{cp}Types>")
    parts[ct_name] = (ct[:close] + "".join(overrides) + ct[close:]).encode("utf-8")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in parts.items():
            out.writestr(name, data)
    return sheet_names(target)


def sheet_names(path: Path) -> list[str]:
    """The sheet names of a package, in order, read from its workbook part as text."""
    with zipfile.ZipFile(path) as z:
        lower = {n.lower(): n for n in z.namelist()}
        root = z.read(lower["_rels/.rels"]).decode("utf-8", "replace")
        m = re.search(r'Target="/?([^"]*)"[^>]*Type="[^"]*/officeDocument"', root) or re.search(
            r'Type="[^"]*/officeDocument"[^>]*Target="/?([^"]*)"', root
        )
        wb = z.read(lower[(m.group(1) if m else "xl/workbook.xml").lower()]).decode("utf-8")
    from xml.sax.saxutils import unescape

    return [
        unescape(x, {"&quot;": '"', "&apos;": "'"})
        for x in re.findall(r'<(?:\w+:)?sheet\b[^>]*?\sname="([^"]*)"', wb)
    ]
