"""Write the rows of an input Table (``Invoices``, after ``cxkpi import``) into a user's
workbook at package level, as refresh writes its sheets: only the Table's worksheet part
and its table part change (the rows below the header, the Table's and the sheet's
ranges); every other part is copied byte for byte and the file is replaced atomically
(:func:`cxkpi_xl.report.package.replace_atomically`).

The Table must sit on a sheet that holds nothing else below its header (as the template
makes it): a value or formula below the header outside the Table's columns, or a formula
inside them, is refused rather than overwritten. Each column keeps the style of its first
data row (the template's input fill and number format); dates are written as Excel serial
numbers where that style is set, and as ISO text otherwise (the reader reads both).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd

from ..data.zipparts import cell_index
from .layout import column_letter
from .package import (
    Package,
    PackageError,
    _local,
    _write_atomic,
    check_writable,
)

EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def _key(name: Any) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def _find_table(pkg: Package, table: str) -> tuple[str, str, Any]:
    """(sheet part, table part, table root) of the Excel Table named ``table``."""
    for low, name in pkg.names.items():
        if not (low.startswith("xl/tables/") and low.endswith(".xml")):
            continue
        root = pkg.xml(name)
        if _local(root.tag) != "table":
            continue
        if (root.get("displayName") or root.get("name") or "").lower() != table.lower():
            continue
        for rels_low, rels_name in pkg.names.items():
            if not (rels_low.startswith("xl/worksheets/_rels/") and rels_low.endswith(".rels")):
                continue
            sheet = "xl/worksheets/" + rels_name.rsplit("/", 1)[1][: -len(".rels")]
            for rel in pkg.relationships(pkg.find(sheet) or sheet):
                if rel.get("part", "").lower() == low:
                    return pkg.find(sheet) or sheet, name, root
        raise PackageError(f"{pkg.name}: the {table} Table is on no worksheet")
    raise PackageError(
        f"{pkg.name} has no Excel Table named {table}: make a template with "
        f"'cxkpi template' (it has one), or write CSV with --out"
    )


def _cell_xml(ref: str, value: Any, style: str | None) -> str:
    s = f' s="{style}"' if style else ""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return f'<c r="{ref}"{s}/>' if style else ""
    if isinstance(value, bool):
        value = "Yes" if value else "No"
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        ts = pd.Timestamp(value)
        if style:
            serial = (ts.normalize() - EXCEL_EPOCH).days
            return f'<c r="{ref}"{s}><v>{serial}</v></c>'
        value = ts.date().isoformat()
    if isinstance(value, int | float):
        return f'<c r="{ref}"{s}><v>{float(value)!r}</v></c>'
    text = escape(str(value))
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def table_part_xml(text: str, ref: str) -> str:
    """The table part's text with its range (and its autoFilter's) set to ``ref``."""
    text = re.sub(r'(<(?:\w+:)?table\b[^>]*?\sref=")[^"]*(")', rf"\g<1>{ref}\2", text, count=1)
    return re.sub(r'(<(?:\w+:)?autoFilter\b[^>]*?\sref=")[^"]*(")', rf"\g<1>{ref}\2", text, count=1)


def write_table_rows(
    book: Path, table: str, frame: pd.DataFrame, target: Path | None = None
) -> int:
    """Replace the data rows of the Excel Table ``table`` in ``book`` with ``frame``'s rows
    (columns matched by name ignoring case, spaces and underscores; a Table column the
    frame lacks stays blank). Saves to ``target`` (default: ``book``) atomically and
    returns the number of rows written. Raises PackageError with a one-line reason."""
    target = target or book
    check_writable(target)
    with zipfile.ZipFile(book) as zin:
        pkg = Package(zin, book.name)
        sheet_part, table_part, root = _find_table(pkg, table)
        first, last = root.get("ref", "A1:A2").split(":")
        top, left = cell_index(first)
        _, right = cell_index(last)
        header_row = top + 1
        names = [c.get("name", "") for c in root.iter() if _local(c.tag) == "tableColumn"]
        by_key = {_key(c): c for c in frame.columns}
        columns = [by_key.get(_key(n)) for n in names]
        sheet_text = pkg.text(sheet_part)
        sheet = pkg.xml(sheet_part)
        styles: dict[int, str] = {}
        for row in (el for el in sheet.iter() if _local(el.tag) == "row"):
            r = int(row.get("r", "0"))
            if r <= header_row:
                continue
            for c in row:
                ref = c.get("r", "")
                _, col = cell_index(ref)
                has_value = any(_local(x.tag) in ("v", "is", "f") for x in c)
                if col < left or col > right:
                    if has_value:
                        raise PackageError(
                            f"{pkg.name}: cell {ref} below the {table} Table's header is "
                            "outside the Table: move it, nothing was changed"
                        )
                    continue
                if any(_local(x.tag) == "f" for x in c):
                    raise PackageError(
                        f"{pkg.name}: cell {ref} in the {table} Table holds a formula: "
                        "nothing was changed"
                    )
                if r == header_row + 1 and c.get("s"):
                    styles[col] = c.get("s", "")
        match = re.search(r"<((?:\w+:)?)sheetData\b[^>]*?(/>|>)", sheet_text)
        if match is None:
            raise PackageError(f"{pkg.name}: {sheet_part} has no sheetData")
        p = match.group(1)
        if match.group(2) == "/>":
            inner, end = "", match.end()
        else:
            close = sheet_text.index(f"</{p}sheetData>", match.end())
            inner, end = sheet_text[match.end() : close], close + len(f"</{p}sheetData>")
        kept = [
            m.group(0)
            for m in re.finditer(
                rf"<{re.escape(p)}row\b[^>]*?(?:/>|>.*?</{re.escape(p)}row>)", inner, re.S
            )
            if int(re.search(r'\sr="(\d+)"', m.group(0)).group(1)) <= header_row  # type: ignore[union-attr]
        ]
        out = io.StringIO()
        out.write(f"<{p}sheetData>")
        out.writelines(kept)
        letters = [column_letter(c + 1) for c in range(left, right + 1)]
        data = [frame[c].tolist() if c is not None else None for c in columns]
        n = len(frame)
        for i in range(max(n, 1)):
            r = header_row + 1 + i
            cells = []
            for j, letter in enumerate(letters):
                value = data[j][i] if data[j] is not None and i < n else None
                cells.append(_cell_xml(f"{letter}{r}", value, styles.get(left + j)))
            body = "".join(cells).replace("<c ", f"<{p}c ").replace("</c>", f"</{p}c>")
            body = re.sub(r"<(/?)(v|is|t)\b", rf"<\1{p}\2", body)
            out.write(f'<{p}row r="{r}">{body}</{p}row>')
        out.write(f"</{p}sheetData>")
        last_row = header_row + max(n, 1)
        ref = f"{first}:{column_letter(right + 1)}{last_row}"
        new_sheet = sheet_text[: match.start()] + out.getvalue() + sheet_text[end:]
        new_sheet = re.sub(
            r'(<(?:\w+:)?dimension\b[^>]*?\sref=")[^"]*(")',
            rf"\g<1>A1:{column_letter(right + 1)}{last_row}\2",
            new_sheet,
            count=1,
        )
        parts: dict[str, bytes | None] = {
            sheet_part: new_sheet.encode("utf-8"),
            table_part: table_part_xml(pkg.text(table_part), ref).encode("utf-8"),
        }
        _write_atomic(zin, target, parts, None)
    return n


__all__ = ["write_table_rows"]
