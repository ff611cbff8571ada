"""What a workbook's zip package says about its sheets, without pandas or numpy: each
sheet's part and the Tables on it (from the relationships), how large a grid its
``<dimension>`` spans, and whether that grid is far larger than its data. The reader uses
these, and so does :mod:`~cxkpi_xl.data.prefetch`, which starts parsing a changed table
before the rest of a refresh has even been imported."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

State = dict[str, list[int]]
"""Each part of a package: [CRC-32, size], from its zip directory."""


def state_of(z: zipfile.ZipFile) -> State:
    """Each part's [CRC-32, size] from an open package's directory (nothing is inflated)."""
    return {i.filename: [i.CRC, i.file_size] for i in z.infolist()}


MAX_UNCOMPRESSED = 1 << 30  # 1 GiB of XML is far beyond any real KPI workbook
MAX_PART = 512 << 20  # one sheet's XML; calamine holds about 4x this in memory
MAX_RATIO = 100  # deflate reaches ~10-30x on sheet XML; bombs reach thousands
RATIO_CHECK_FROM = 8 << 20  # small parts may compress well without harm
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


def package_problem(path: Path) -> str | None:
    """Why the file is not a safe xlsx/xlsm package, in one line (None if it is one):
    from its zip directory alone, before any part is inflated."""
    if not path.exists():
        return f"{path}: no such file or folder"
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return (
            f"{path.name} is password-protected or an old .xls file: "
            "save it as .xlsx (or .xlsm) without a password"
        )
    if not zipfile.is_zipfile(path):
        return f"{path.name} is not an xlsx/xlsm workbook (not a zip package)"
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return f"{path.name} is a damaged zip package: {e}"
    names = {i.filename.lower() for i in infos}
    if "[content_types].xml" not in names:
        return f"{path.name} is a zip file but not an xlsx/xlsm workbook"
    if "xl/workbook.xml" not in {i.filename for i in infos}:
        return (
            f"{path.name} has no part xl/workbook.xml (where Excel keeps the workbook): "
            "it is not a workbook cxkpi can read; open it in Excel and save it again"
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        return (
            f"{path.name} would unpack to {total / 2**30:.1f} GiB: refused as a possible zip bomb"
        )
    for i in infos:
        if i.file_size > MAX_PART:
            return (
                f"{path.name}: part {i.filename} would unpack to "
                f"{i.file_size / 2**20:,.0f} MiB, more than cxkpi reads ({MAX_PART >> 20} MiB): "
                "refused"
            )
        if i.file_size > RATIO_CHECK_FROM and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            return (
                f"{path.name}: part {i.filename} is compressed "
                f"{i.file_size // max(i.compress_size, 1)} to 1: refused as a possible zip bomb"
            )
    return None
