"""What a workbook's zip package says about its sheets, without pandas or numpy: each
sheet's part and the Tables on it (from the relationships), how large a grid its
``<dimension>`` spans, and whether that grid is far larger than its data. The reader uses
these, and so does :mod:`~cxkpi_xl.data.prefetch`, which starts parsing a changed table
before the rest of a refresh has even been imported."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

MIN_XML_BYTES_PER_CELL = 8
"""No cell takes fewer bytes of sheet XML (``<c r="A1"/>`` takes 11)."""


@dataclass
class _Part:
    """Where a sheet lives in the package, and how large a grid it spans."""

    name: str  # the part, e.g. xl/worksheets/sheet1.xml
    tables: dict[str, tuple[str, int, int]]
    """Table name (lower) -> (its range, header rows, totals rows)."""


def _package_sheets(z: zipfile.ZipFile) -> dict[str, _Part]:
    """Sheet name -> its part and the Tables on it, from the package's relationships."""
    from defusedxml import ElementTree

    parts = {n.lower(): n for n in z.namelist()}

    def resolve(base: str, target: str) -> str | None:
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            stack = base.rsplit("/", 1)[0].split("/") if "/" in base else []
            for piece in target.split("/"):
                if piece == "..":
                    stack = stack[:-1]
                elif piece not in ("", "."):
                    stack.append(piece)
            path = "/".join(stack)
        return parts.get(path.lower())

    def rels_of(part: str) -> dict[str, tuple[str, str]]:
        folder, _, file = part.rpartition("/")
        rels = parts.get(f"{folder}/_rels/{file}.rels".lower())
        if rels is None:
            return {}
        try:
            root = ElementTree.fromstring(z.read(rels))
        except Exception:  # a damaged part: calamine decides whether the book is readable
            return {}
        return {
            r.get("Id", ""): (r.get("Type", ""), r.get("Target", ""))
            for r in root
            if r.get("TargetMode") != "External"
        }

    book = parts.get("xl/workbook.xml", "xl/workbook.xml")
    try:
        root = ElementTree.fromstring(z.read(book))
    except Exception:
        return {}
    rels = rels_of(book)
    out: dict[str, _Part] = {}
    for node in root.iter():
        if not node.tag.endswith("}sheet") and node.tag != "sheet":
            continue
        rid = next((v for k, v in node.attrib.items() if k.endswith("}id")), None)
        if rid not in rels:
            continue
        part = resolve(book, rels[rid][1])
        if part is None:
            continue
        tables: dict[str, tuple[str, int, int]] = {}
        for kind, target in rels_of(part).values():
            table_part = resolve(part, target) if kind.endswith("/table") else None
            if table_part is None:
                continue
            try:
                t = ElementTree.fromstring(z.read(table_part))
                counts = int(t.get("headerRowCount", "1")), int(t.get("totalsRowCount", "0"))
            except Exception:
                continue
            name = t.get("displayName") or t.get("name") or ""
            tables[name.lower()] = (t.get("ref", ""), *counts)
        out[node.get("name", "")] = _Part(part, tables)
    return out


_DIMENSION = re.compile(rb'<dimension ref="([A-Z]+\d+)(?::([A-Z]+\d+))?"')


def _dimension_cells(z: zipfile.ZipFile, part: str) -> int | None:
    """How many cells the sheet's ``<dimension>`` spans (None when its XML has none near
    the start): what :func:`_scan_sheet` finds first, from the first 64 KiB alone."""
    with z.open(part) as f:
        return _dimension_span(_DIMENSION.search(f.read(1 << 16)))


def _dimension_span(m: re.Match[bytes] | None) -> int | None:
    """How many cells a ``<dimension ref="A1:E9">`` match spans (None for no match)."""
    if m is None:
        return None
    first = cell_index(m.group(1).decode())
    last = cell_index(m.group(2).decode()) if m.group(2) else first
    return (last[0] - first[0] + 1) * (last[1] - first[1] + 1)


def _oversized(z: zipfile.ZipFile, part: str, cells: int) -> bool:
    """True if the sheet's grid (``cells``) is far larger than its data (a stray value at
    XFD100000): calamine would allocate the whole grid, so the sheet is read another way."""
    most = max(1 << 20, z.getinfo(part).file_size // MIN_XML_BYTES_PER_CELL)
    return cells > 4 * most


def cell_index(ref: str) -> tuple[int, int]:
    """0-based (row, column) of a cell reference such as ``C2``."""
    letters = "".join(ch for ch in ref if ch.isalpha()).upper()
    digits = "".join(ch for ch in ref if ch.isdigit())
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return int(digits) - 1, col - 1
