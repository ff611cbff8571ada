"""Write sheets into a user's xlsx/xlsm package without touching anything else in it.

A load and save through openpyxl loses what users keep in real workbooks (Excel 2010+
validation, sparklines, shapes, slicers, dynamic-array formulas, cached values, VBA
without ``keep_vba``). So refresh works on the package itself: it adds or replaces only
its own sheets (their sheet, drawing and chart parts) and the bookkeeping parts they
need, edited as text so everything else in them stays as it was:

- ``[Content_Types].xml``: an Override per new part, none for removed ones;
- ``xl/workbook.xml`` and its rels: a new sheet is appended (sheet positions, and so
  ``localSheetId`` of defined names, do not move); a replaced sheet keeps its entry;
- ``xl/styles.xml``: the few styles the sheets use, reused when already there, so
  refreshing again does not grow it (created, or completed, when a generator left it
  out or left sections of it out);
- ``docProps/app.xml``: the sheet titles, when it has the usual layout;
- ``xl/calcChain.xml``: removed only if it refers to a replaced sheet.

Part names are compared as OPC says, ignoring case: a workbook whose parts are spelled
``xl/worksheets/Sheet1.xml`` never gets a ``sheet1.xml`` beside it. Sheet names are
compared as Excel does, ignoring case (:func:`cxkpi_xl.layout.sheet_key`). Strict Open
XML workbooks get their sheets in the Strict namespaces (and no charts: the chart parts
are rendered in the Transitional ones).

Every other part is copied as its compressed bytes, byte for byte. Cell text is written
as inline strings (``xl/sharedStrings.xml`` is never touched) and can never be a formula.
The new file is written next to the target (a symbolic link's target), flushed, fsynced,
then moved over it with ``os.replace``: a crash at any moment leaves either the old file
or the new one. A new file gets the mode the umask gives; a rewritten one keeps its mode.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import posixpath
import re
import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..data.zipparts import cell_index
from .charts import chart_parts
from .layout import FORMER_HEADERS, REPORT_SHEET, Sheet, column_letter, sheet_key, styles_used
from .printing import page_setup_xml, print_titles_name, sheet_pr_xml, with_print_titles

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_MAIN_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
NS_R_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_DRAWING = "application/vnd.openxmlformats-officedocument.drawing+xml"
CT_CHART = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
CT_STYLES = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
CT_RELS = "application/vnd.openxmlformats-package.relationships+xml"
BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9}
BUILTIN_FORMATS |= {"0.00%": 10, "@": 49}
STYLE_SECTIONS = (
    ("numFmts", ""),
    ("fonts", '<{p}font><{p}sz val="11"/><{p}name val="Calibri"/><{p}family val="2"/></{p}font>'),
    (
        "fills",
        '<{p}fill><{p}patternFill patternType="none"/></{p}fill>'
        '<{p}fill><{p}patternFill patternType="gray125"/></{p}fill>',
    ),
    ("borders", "<{p}border><{p}left/><{p}right/><{p}top/><{p}bottom/><{p}diagonal/></{p}border>"),
    ("cellStyleXfs", '<{p}xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'),
    ("cellXfs", '<{p}xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'),
)
"""The sections of a styles part our cells need, in schema order, and what each holds in
a new workbook (where a generator left one out)."""
LATER_STYLE_SECTIONS = ("cellStyles", "dxfs", "tableStyles", "colors", "extLst")


class PackageError(Exception):
    """The workbook cannot be written safely; the message is one line for the user."""


# --- reading the package ------------------------------------------------------------


def _parse(data: bytes, part: str = "a part") -> Any:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data)
    except DefusedXmlException:
        raise PackageError(
            f"{part} declares a DOCTYPE or entities, which Excel never writes: refused as unsafe"
        ) from None
    except ParseError as e:
        raise PackageError(f"{part} is not well-formed XML ({e})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _kind(rel: dict[str, str]) -> str:
    """A relationship's type without its namespace (Transitional and Strict alike):
    ``worksheet``, ``styles``, ``officeDocument``, ..."""
    return rel.get("Type", "").rstrip("/").rsplit("/", 1)[-1]


def _rels_path(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def _source_of_rels(rels: str) -> str | None:
    """The part a ``.rels`` part belongs to (``""`` for the package), or None."""
    folder, name = posixpath.split(rels)
    if posixpath.basename(folder).lower() != "_rels" or not name.lower().endswith(".rels"):
        return None
    return posixpath.join(posixpath.dirname(folder), name[: -len(".rels")])


def _resolve(source_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source_part), target))


class Package:
    """A zip package read with OPC's rules: part names ignore case."""

    def __init__(self, z: zipfile.ZipFile, name: str = "the workbook"):
        self.z = z
        self.name = name
        self.names: dict[str, str] = {}
        for n in z.NameToInfo:
            if n.endswith("/"):
                continue
            if n.lower() in self.names:
                raise PackageError(
                    f"{name} has two parts named {self.names[n.lower()]} and {n} (part names "
                    "ignore case): the package is damaged"
                )
            self.names[n.lower()] = n

    def find(self, part: str) -> str | None:
        """The part's name as the package spells it, or None."""
        return self.names.get(part.lower())

    def read(self, part: str) -> bytes:
        found = self.find(part)
        if found is None:
            raise PackageError(f"{self.name} has no part {part}")
        return self.z.read(found)

    def text(self, part: str) -> str:
        data = self.read(part)
        boms = {b"\xef\xbb\xbf": "utf-8-sig", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}
        codec = next((c for bom, c in boms.items() if data.startswith(bom)), "utf-8")
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            raise PackageError(f"{part} is not UTF-8 text: the package is damaged") from None

    def xml(self, part: str) -> Any:
        return _parse(self.read(part), part)

    def relationships(self, part: str) -> list[dict[str, str]]:
        """The relationships of ``part``: Id, Type, Target, TargetMode, and ``part``, the
        target as this package spells it (resolved; as written when absent)."""
        name = self.find(_rels_path(part))
        if name is None:
            return []
        out = []
        for rel in self.xml(name):
            a = dict(rel.attrib)
            if a.get("TargetMode") != "External":
                resolved = _resolve(part, a.get("Target", ""))
                a["part"] = self.find(resolved) or resolved
            out.append(a)
        return out

    def workbook_part(self) -> str:
        for rel in self.relationships(""):
            if _kind(rel) == "officeDocument" and rel.get("part"):
                return rel["part"]
        return self.find("xl/workbook.xml") or "xl/workbook.xml"


def _canon(el: Any) -> tuple[Any, ...]:
    """An element as a comparable value: local names, attributes sorted, children."""
    attrs = tuple(sorted((_local(k), v) for k, v in el.attrib.items()))
    return (_local(el.tag), attrs, tuple(_canon(c) for c in el))


def _prefix(text: str, local: str) -> str:
    """The namespace prefix (with its colon, or empty) the part uses for ``local``."""
    m = re.search(rf"<([\w.-]+:)?{local}[\s>/]", text)
    return (m.group(1) or "") if m else ""


def _insert_before_close(text: str, p: str, local: str, body: str, part: str) -> str:
    """``body`` inserted before the closing tag of the last ``local`` element (an empty
    ``<local .../>`` is opened first)."""
    close = text.rfind(f"</{p}{local}>")
    if close >= 0:
        return text[:close] + body + text[close:]
    empty = list(re.finditer(rf"<{re.escape(p)}{local}\b([^>]*?)/>", text))
    if not empty:
        raise PackageError(f"{part} has no <{local}> element: the package is damaged")
    m = empty[-1]
    return text[: m.start()] + f"<{p}{local}{m.group(1)}>{body}</{p}{local}>" + text[m.end() :]


def _text_of(el: Any) -> str:
    """The text of a shared or inline string element (its ``t`` runs joined)."""
    return "".join(t.text or "" for t in el.iter() if _local(t.tag) == "t")


def _iterparse(pkg: Package, part: str) -> Any:
    from defusedxml.ElementTree import iterparse

    return iterparse(pkg.z.open(pkg.find(part) or part))


def _shared_string(pkg: Package, wb_part: str, index: int) -> str | None:
    for rel in pkg.relationships(wb_part):
        if _kind(rel) == "sharedStrings" and pkg.find(rel.get("part", "")):
            n = -1
            for _, el in _iterparse(pkg, rel["part"]):
                if _local(el.tag) == "si":
                    n += 1
                    if n == index:
                        return _text_of(el)
                    el.clear()
    return None


def _first_cells(pkg: Package, wb_part: str, part: str, count: int) -> list[str]:
    """The text of the first ``count`` cells of row 1 of a worksheet part."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    cells: dict[str, str] = {}
    wanted = [f"{column_letter(i + 1)}1" for i in range(count)]
    try:
        for _, el in _iterparse(pkg, part):
            tag = _local(el.tag)
            if tag == "c" and el.get("r") in wanted:
                kind = el.get("t", "n")
                if kind == "inlineStr":
                    cells[el.get("r")] = _text_of(el)
                else:
                    v = next((c.text for c in el if _local(c.tag) == "v"), None)
                    if kind == "s" and v is not None and v.isdigit():
                        cells[el.get("r")] = _shared_string(pkg, wb_part, int(v)) or ""
                    else:
                        cells[el.get("r")] = v or ""
            elif tag == "row":
                break
    except DefusedXmlException:
        raise PackageError(f"{part} declares a DOCTYPE or entities: refused as unsafe") from None
    except ParseError as e:
        raise PackageError(f"{part} is not well-formed XML ({e})") from None
    return [cells.get(w, "") for w in wanted]


# --- styles -------------------------------------------------------------------------


def _complete_styles(text: str, p: str, part: str) -> str:
    """A styles text with every section our cells need (fonts, fills, borders, cell
    style and cell formats): a missing one is added with what a new workbook holds."""
    present = {m.group(1) for m in re.finditer(rf"<{re.escape(p)}(\w+)\b", text)}
    order = [s for s, _ in STYLE_SECTIONS]
    for i, (section, default) in enumerate(STYLE_SECTIONS):
        if section in present or section == "numFmts":
            continue
        body = default.replace("{p}", p)
        count = len(re.findall(rf"<{re.escape(p)}(?:font|fill|border|xf)\b", body))
        tag = f'<{p}{section} count="{count}">{body}</{p}{section}>'
        later = [*order[i + 1 :], *LATER_STYLE_SECTIONS]
        at = None
        for nxt in later:
            m = re.search(rf"<{re.escape(p)}{nxt}\b", text)
            if m is not None:
                at = m.start()
                break
        if at is None:
            text = _insert_before_close(text, p, "styleSheet", tag, part)
        else:
            text = text[:at] + tag + text[at:]
        present.add(section)
    return text


def _merge_styles(
    text: str, styles: dict[str, dict[str, Any]], part: str = "xl/styles.xml"
) -> tuple[str, dict[str, int]]:
    """Add what ``styles`` need to a styles.xml text, reusing identical entries already
    there; returns the new text and each style's cellXfs index."""
    root = _parse(text.encode("utf-8"), part)
    if _local(root.tag) != "styleSheet":
        raise PackageError(f"{part} is not a styles part: the package is damaged")
    p = _prefix(text, "styleSheet")
    text = _complete_styles(text, p, part)
    root = _parse(text.encode("utf-8"), part)
    section = {_local(c.tag): c for c in root}
    added: dict[str, list[str]] = {"numFmts": [], "fonts": [], "fills": [], "cellXfs": []}
    known = {k: [_canon(c) for c in section.get(k, [])] for k in added}
    fmt_ids = {
        c.get("formatCode"): int(c.get("numFmtId"))
        for c in section.get("numFmts", [])
        if (c.get("numFmtId") or "").isdigit()
    }
    next_fmt = max([163, *fmt_ids.values()]) + 1

    def find_or_add(kind: str, xml: str) -> int:
        canon = _canon(_parse(f'<r xmlns="{NS_MAIN}">{_unprefix(xml, p)}</r>'.encode())[0])
        if canon in known[kind]:
            return known[kind].index(canon)
        known[kind].append(canon)
        added[kind].append(xml)
        return len(known[kind]) - 1

    font0 = next(iter(section["fonts"]), None)
    out: dict[str, int] = {}
    for key, spec in styles.items():
        fmt = spec.get("number_format", "General")
        if fmt in BUILTIN_FORMATS:
            fmt_id = BUILTIN_FORMATS[fmt]
        elif fmt in fmt_ids:
            fmt_id = fmt_ids[fmt]
        else:
            fmt_id = fmt_ids[fmt] = next_fmt
            next_fmt += 1
            added["numFmts"].append(f'<{p}numFmt numFmtId="{fmt_id}" formatCode={quoteattr(fmt)}/>')
            known["numFmts"].append(())
        font_id = 0
        if spec.get("bold") and font0 is not None:
            inner = "".join(_leaf(c, p) for c in font0 if _local(c.tag) != "b")
            font_id = find_or_add("fonts", f"<{p}font><{p}b/>{inner}</{p}font>")
        fill_id = 0
        if spec.get("fill"):
            fill_id = find_or_add(
                "fills",
                f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor rgb="{spec["fill"]}"/>'
                f'<{p}bgColor indexed="64"/></{p}patternFill></{p}fill>',
            )
        attrs = f'numFmtId="{fmt_id}" fontId="{font_id}" fillId="{fill_id}" borderId="0" xfId="0"'
        attrs += ' applyNumberFormat="1"' if fmt_id else ""
        attrs += ' applyFont="1"' if font_id else ""
        attrs += ' applyFill="1"' if fill_id else ""
        attrs += ' quotePrefix="1"' if spec.get("quote") else ""
        out[key] = find_or_add("cellXfs", f"<{p}xf {attrs}/>")
    for kind, items in added.items():
        if items:
            text = _append_children(text, p, kind, items, len(known[kind]), part)
    return text, out


def new_styles(strict: bool) -> str:
    """The styles part of a workbook that has none (some generators leave it out)."""
    ns = NS_MAIN_STRICT if strict else NS_MAIN
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{ns}"></styleSheet>'
    )


def _leaf(el: Any, p: str) -> str:
    attrs = "".join(f" {_local(k)}={quoteattr(v)}" for k, v in el.attrib.items() if "}" not in k)
    return f"<{p}{_local(el.tag)}{attrs}/>"


def _unprefix(xml: str, p: str) -> str:
    return xml.replace(f"<{p}", "<").replace(f"</{p}", "</") if p else xml


def _append_children(
    text: str, p: str, section: str, items: list[str], count: int, part: str
) -> str:
    """Append elements to a section of a part's text and set its ``count``."""
    body = "".join(items)
    m = re.search(rf"<{re.escape(p)}{section}\b([^>]*?)(/?)>", text)
    if m is None:  # only numFmts may be missing: it is the first child of styleSheet
        root = re.search(rf"<{re.escape(p)}styleSheet\b[^>]*>", text)
        if root is None:
            raise PackageError(f"{part} has no <styleSheet> element: the package is damaged")
        tag = f'<{p}{section} count="{count}">{body}</{p}{section}>'
        return text[: root.end()] + tag + text[root.end() :]
    attrs = re.sub(r'\scount="\d*"', "", m.group(1))
    start = f'<{p}{section} count="{count}"{attrs}>'
    if m.group(2):  # <fonts count="0"/>
        return text[: m.start()] + start + body + f"</{p}{section}>" + text[m.end() :]
    close = text.index(f"</{p}{section}>", m.end())
    return text[: m.start()] + start + text[m.end() : close] + body + text[close:]


# --- rendering our parts -------------------------------------------------------------


def sheet_xml(
    sheet: Sheet, style_ids: dict[str, int], drawing_rid: str | None, strict: bool = False
) -> bytes:
    """The worksheet part of ``sheet``: inline strings, numbers, styles, widths, panes;
    in the Strict Open XML namespaces for a Strict workbook."""
    out = io.StringIO()
    w = out.write
    w('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
    ns, ns_r = (NS_MAIN_STRICT, NS_R_STRICT) if strict else (NS_MAIN, NS_R)
    w(f'<worksheet xmlns="{ns}" xmlns:r="{ns_r}">')
    w(sheet_pr_xml(sheet))
    last_col = column_letter(max(sheet.width, 1))
    w(f'<dimension ref="A1:{last_col}{max(len(sheet.rows), 1)}"/>')
    w('<sheetViews><sheetView workbookViewId="0">')
    if sheet.freeze:
        ys, xs = cell_index(sheet.freeze)  # rows and columns above and left of the pane
        pane = "bottomRight" if xs and ys else ("bottomLeft" if ys else "topRight")
        split = (f' xSplit="{xs}"' if xs else "") + (f' ySplit="{ys}"' if ys else "")
        w(f'<pane{split} topLeftCell="{sheet.freeze}" activePane="{pane}" state="frozen"/>')
        w(f'<selection pane="{pane}" activeCell="{sheet.freeze}" sqref="{sheet.freeze}"/>')
    w('</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>')
    if sheet.widths:
        w("<cols>")
        for c, width in sorted(sheet.widths.items()):
            w(f'<col min="{c}" max="{c}" width="{width}" customWidth="1"/>')
        w("</cols>")
    w("<sheetData>")
    letters = [column_letter(i + 1) for i in range(sheet.width)]
    for r, cells in enumerate(sheet.rows, start=1):
        if not any(c is not None for c in cells):
            continue
        w(f'<row r="{r}">')
        for i, cell in enumerate(cells):
            if cell is None:
                continue
            value, style = cell
            s = style_ids[style]
            if isinstance(value, str):
                w(f'<c r="{letters[i]}{r}" s="{s}" t="inlineStr"><is><t xml:space="preserve">')
                w(escape(value))
                w("</t></is></c>")
            else:
                w(f'<c r="{letters[i]}{r}" s="{s}"><v>{float(value)!r}</v></c>')
        w("</row>")
    w("</sheetData>")
    w(page_setup_xml(sheet))
    if drawing_rid:
        w(f'<drawing r:id="{drawing_rid}"/>')
    w("</worksheet>")
    return out.getvalue().encode("utf-8")


# --- writing ------------------------------------------------------------------------


def _free_name(used: set[str], pattern: str) -> str:
    """The first name of ``pattern`` (``...{}...``) that no part has, nor its rels part
    (a stale one would be overwritten), ignoring case; ``used`` holds the lower-case names
    taken and gets the new one."""
    n = 1
    while {pattern.format(n).lower(), _rels_path(pattern.format(n)).lower()} & used:
        n += 1
    name = pattern.format(n)
    used.add(name.lower())
    return name


def _rels_xml(rels: Iterable[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f'<Relationship Id="{i}" Type="{t}" Target={quoteattr(target)}/>' for i, t, target in rels
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{NS_PKG_REL}">{body}</Relationships>'
    ).encode()


def _copy_raw(zin: zipfile.ZipFile, zout: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Copy a member's compressed bytes as they are (no inflate and deflate again)."""
    if info.flag_bits & 0x1 or zin.fp is None or zout.fp is None:  # encrypted: re-write
        zout.writestr(info, zin.read(info))
        return
    zin.fp.seek(info.header_offset)
    fields = struct.unpack(zipfile.structFileHeader, zin.fp.read(zipfile.sizeFileHeader))
    if fields[0] != zipfile.stringFileHeader:
        raise PackageError(f"the zip entry of {info.filename} is damaged")
    zin.fp.seek(fields[zipfile._FH_FILENAME_LENGTH] + fields[zipfile._FH_EXTRA_FIELD_LENGTH], 1)
    raw = zin.fp.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise PackageError(f"the zip entry of {info.filename} is cut short")
    new = copy.copy(info)
    new.flag_bits &= ~0x08  # sizes and CRC go into the local header, no data descriptor
    new.header_offset = zout.fp.tell()
    zout.fp.write(new.FileHeader())
    zout.fp.write(raw)
    zout.filelist.append(new)
    zout.NameToInfo[new.filename] = new
    zout.start_dir = zout.fp.tell()


def lock_files(path: Path) -> list[Path]:
    """The files by which Excel (``~$BOOK.xlsx``) and LibreOffice (``.~lock.BOOK.xlsx#``)
    say they have ``path`` open."""
    return [path.with_name("~$" + path.name), path.with_name(f".~lock.{path.name}#")]


def check_writable(target: Path) -> None:
    """Refuse a target that is open in Excel or LibreOffice, read-only, or in a folder we
    cannot write. A symbolic link is judged by the file it points to."""
    real = Path(os.path.realpath(target))
    for lock in {*lock_files(target), *lock_files(real)}:
        if lock.exists():
            app = "Excel" if lock.name.startswith("~$") else "LibreOffice"
            raise PackageError(
                f"{target.name} is open in {app} ({lock.name} exists): close it and refresh again"
            )
    if real.exists() and not (real.stat().st_mode & stat.S_IWUSR):
        raise PackageError(f"{target.name} is read-only: nothing was changed")
    folder = real.parent
    if not os.access(folder, os.W_OK):
        raise PackageError(f"cannot write in {folder}: nothing was changed")


def write_sheets(
    source: Path,
    target: Path,
    sheets: list[Sheet],
    owned_by: dict[str, tuple[str, ...]],
    after_write: Callable[[], None] | None = None,
    *,
    force: bool = False,
) -> None:
    """Write ``sheets`` into the package ``source``, saving the result as ``target``
    (which may be ``source``). ``owned_by[name]`` is the text of the first cells of a
    sheet we wrote before: a sheet of that name that does not start so is the user's,
    and is refused rather than overwritten. ``force`` writes a signed workbook (its
    signature goes: it would no longer match)."""
    with zipfile.ZipFile(source) as zin:
        parts = _plan(Package(zin, source.name), sheets, owned_by, force=force)
        _write_atomic(zin, target, parts, after_write)


def check_sheets(
    source: Path, owned_by: dict[str, tuple[str, ...]], *, force: bool = False
) -> None:
    """Refuse early (before the slow part of a refresh) a workbook refresh could not
    write: every edit is planned with empty sheets of the names in ``owned_by``."""
    with zipfile.ZipFile(source) as z:
        _plan(Package(z, source.name), [Sheet(n) for n in owned_by], owned_by, force=force)


SHEET_KINDS = {
    "xlMacrosheet": "an Excel 4.0 macro sheet",
    "xlIntlMacrosheet": "an Excel 4.0 international macro sheet",
}
"""Sheets the reader (calamine) cannot open a workbook with."""


def _refusals(
    pkg: Package, wb_root: Any, wb_rels: list[dict[str, str]], adds_sheets: bool, force: bool
) -> None:
    """Refuse a workbook with sheets the reader cannot open, a signed workbook (unless
    ``force``) and one whose structure is locked."""
    rel_by_id = {r.get("Id"): r for r in wb_rels}
    for el in wb_root.iter():
        if _local(el.tag) != "sheet":
            continue
        rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), "")
        kind = _kind(rel_by_id.get(rid, {}))
        if kind in SHEET_KINDS:
            raise PackageError(
                f"{pkg.name} has {SHEET_KINDS[kind]} {el.get('name')!r}, which cxkpi's "
                "reader cannot open: keep the input Tables in a workbook without it"
            )
    signed = sorted(n for k, n in pkg.names.items() if k.startswith("_xmlsignatures/"))
    if signed and not force:
        raise PackageError(
            f"{pkg.name} is digitally signed: refreshing would remove its signature; "
            "refresh with --force to do so anyway"
        )
    locks = [el for el in wb_root if _local(el.tag) == "workbookProtection"]
    if adds_sheets and any(el.get("lockStructure") in ("1", "true") for el in locks):
        raise PackageError(
            f"{pkg.name}'s structure is protected (Review > Protect Workbook), so no sheet "
            "can be added: unprotect it and refresh again"
        )


def _plan(
    pkg: Package, sheets: list[Sheet], owned_by: dict[str, tuple[str, ...]], force: bool = False
) -> dict[str, bytes | None]:
    """The parts to write (bytes) or remove (None); every other part is copied."""
    ct_name = pkg.find("[Content_Types].xml")
    if ct_name is None:
        raise PackageError(f"{pkg.name} has no [Content_Types].xml: the package is damaged")
    ct_text = pkg.text(ct_name)
    if _local(pkg.xml(ct_name).tag) != "Types":
        raise PackageError(
            "[Content_Types].xml is not a content-types part: the package is damaged"
        )
    wb_part = pkg.workbook_part()
    if pkg.find(wb_part) is None:
        raise PackageError(f"{pkg.name} has no workbook part {wb_part}")
    wb_text = pkg.text(wb_part)
    wb_root = pkg.xml(wb_part)
    strict = wb_root.tag.startswith("{" + NS_MAIN_STRICT + "}")
    ns_r = NS_R_STRICT if strict else NS_R
    wb_rels = pkg.relationships(wb_part)
    wb_rels_name = pkg.find(_rels_path(wb_part)) or _rels_path(wb_part)
    sheet_elems = [el for el in wb_root.iter() if _local(el.tag) == "sheet"]
    existing = {sheet_key(el.get("name", "")): el for el in sheet_elems}
    used = set(pkg.names)
    out: dict[str, bytes | None] = {}
    folder = posixpath.dirname(wb_part)

    replaced = _replaced_sheets(pkg, wb_part, [s.name for s in sheets], owned_by)
    _refusals(pkg, wb_root, wb_rels, any(s.name not in replaced for s in sheets), force)
    # Parts reachable from a replaced sheet go, unless a part outside that reach uses them.
    reach = {p.lower() for part in replaced.values() for p in _closure(pkg, part, set())}
    keep: set[str] = set()
    for name in pkg.names.values():
        source = _source_of_rels(name)
        if source is not None and source.lower() not in reach:
            keep |= {r.get("part", "").lower() for r in pkg.relationships(source)}
    for part in replaced.values():
        for doomed in _closure(pkg, part, keep):
            out[doomed] = None
            used.discard(doomed.lower())
    if force:  # a signed workbook: the signature parts and the package's link to them go
        for name in pkg.names.values():
            if name.lower().startswith("_xmlsignatures/"):
                out[name] = None
        root_rels_name = pkg.find("_rels/.rels")
        if root_rels_name is not None:
            root_rels = pkg.text(root_rels_name)
            signature = re.compile(r"<([\w.-]+:)?Relationship\b[^>]*_xmlsignatures/[^>]*/>", re.I)
            if signature.search(root_rels):
                out[root_rels_name] = signature.sub("", root_rels).encode("utf-8")

    new_overrides: list[tuple[str, str]] = []
    rels_text = pkg.text(wb_rels_name) if pkg.find(wb_rels_name) else None
    new_wb_rels: list[tuple[str, str, str]] = []
    new_sheet_entries: list[str] = []
    rel_numbers = [int(m) for r in wb_rels for m in re.findall(r"^rId(\d+)$", r.get("Id", ""))]
    next_rel = max([0, *rel_numbers]) + 1
    styles = next(
        (r for r in wb_rels if _kind(r) == "styles" and pkg.find(r.get("part", ""))), None
    )
    if styles is not None:
        styles_part = styles["part"]
        styles_text = pkg.text(styles_part)
    else:  # a generator left it out: a new one, with what a new workbook holds
        styles_part = posixpath.join(folder, "styles.xml")
        if styles_part.lower() in used:
            styles_part = _free_name(used, posixpath.join(folder, "styles{}.xml"))
        used.add(styles_part.lower())
        styles_text = new_styles(strict)
        new_wb_rels.append((f"rId{next_rel}", ns_r + "/styles", "/" + styles_part))
        next_rel += 1
        new_overrides.append((styles_part, CT_STYLES))
    styles_text, style_ids = _merge_styles(styles_text, styles_used(sheets), styles_part)
    out[styles_part] = styles_text.encode("utf-8")

    sheet_ids = [
        int(el.get("sheetId", "0")) for el in sheet_elems if el.get("sheetId", "").isdigit()
    ]
    next_sheet_id = max([0, *sheet_ids]) + 1
    for sheet in sheets:
        part = replaced.get(sheet.name) or _free_name(
            used, posixpath.join(folder, "worksheets/sheet{}.xml")
        )
        if sheet.name not in replaced:
            rid = f"rId{next_rel}"
            next_rel += 1
            new_wb_rels.append((rid, ns_r + "/worksheet", "/" + part))
            new_sheet_entries.append(
                f'<{{p}}sheet name={quoteattr(sheet.name)} sheetId="{next_sheet_id}" '
                f'r:id="{rid}" xmlns:r="{ns_r}"/>'
            )
            next_sheet_id += 1
        drawing_rid = None
        button = sheet.name == REPORT_SHEET and not strict  # the Refresh KPIs button
        if (sheet.charts or button) and not strict:
            drawing, charts = chart_parts(sheet.name, sheet.charts) if sheet.charts else (None, [])
            dpart = _free_name(used, posixpath.join(folder, "drawings/drawing{}.xml"))
            chart_names = [
                _free_name(used, posixpath.join(folder, "charts/chart{}.xml")) for _ in charts
            ]
            for i, name in enumerate(chart_names):
                out[name] = charts[i]
                new_overrides.append((name, CT_CHART))
            drawing_rels = [
                (f"rId{i + 1}", ns_r + "/chart", "/" + name) for i, name in enumerate(chart_names)
            ]
            if button:  # it runs the workbook's macro where there is VBA, else Lite's script
                from .button import MACRO, add_to_drawing, report_button

                vba = any(_kind(r) == "vbaProject" for r in wb_rels)
                drawing, drawing_rels = add_to_drawing(
                    drawing, drawing_rels, report_button(MACRO if vba else None)
                )
            assert drawing is not None
            out[dpart] = drawing
            out[_rels_path(dpart)] = _rels_xml(drawing_rels)
            used.add(_rels_path(dpart).lower())
            new_overrides.append((dpart, CT_DRAWING))
            drawing_rid = "rId1"
            out[_rels_path(part)] = _rels_xml([(drawing_rid, ns_r + "/drawing", "/" + dpart)])
            used.add(_rels_path(part).lower())
        out[part] = sheet_xml(sheet, style_ids, drawing_rid, strict)
        new_overrides.append((part, CT_WORKSHEET))

    if new_sheet_entries:
        p = _prefix(wb_text, "sheets")
        entries = "".join(e.replace("{p}", p) for e in new_sheet_entries)
        out[wb_part] = _insert_before_close(wb_text, p, "sheets", entries, wb_part).encode("utf-8")
        app = _app_titles(pkg, [s.name for s in sheets if s.name not in replaced], sheet_elems)
        if app is not None:
            out[pkg.find("docProps/app.xml") or "docProps/app.xml"] = app
    out.update(_print_titles(pkg, wb_part, wb_text, out, sheets, sheet_elems, replaced, strict))
    if new_wb_rels:
        if rels_text is None:
            raise PackageError(f"{pkg.name} has no relationships for {wb_part}: it is damaged")
        rp = _prefix(rels_text, "Relationships")
        body = "".join(
            f'<{rp}Relationship Id="{i}" Type="{t}" Target={quoteattr(target)}/>'
            for i, t, target in new_wb_rels
        )
        rels_text = _insert_before_close(rels_text, rp, "Relationships", body, wb_rels_name)
        out[wb_rels_name] = rels_text.encode("utf-8")

    # calcChain: only a replaced sheet's formulas could be in it; then it goes.
    calc = next(
        (r for r in wb_rels if _kind(r) == "calcChain" and pkg.find(r.get("part", ""))), None
    )
    replaced_ids = {
        existing[sheet_key(n)].get("sheetId") for n in replaced if sheet_key(n) in existing
    }
    if calc and replaced_ids:
        chain = pkg.text(calc["part"])
        if any(f'i="{i}"' in chain for i in replaced_ids):
            out[calc["part"]] = None
            done = out.get(wb_rels_name)
            text = done.decode("utf-8") if done else pkg.text(wb_rels_name)
            text = re.sub(
                rf"<([\w.-]+:)?Relationship\b[^>]*Id=\"{re.escape(calc['Id'])}\"[^>]*/>", "", text
            )
            out[wb_rels_name] = text.encode("utf-8")

    out[ct_name] = _content_types(ct_text, out, new_overrides, ct_name)
    return out


def _print_titles(
    pkg: Package,
    wb_part: str,
    wb_text: str,
    out: dict[str, bytes | None],
    sheets: list[Sheet],
    sheet_elems: list[Any],
    replaced: dict[str, str],
    strict: bool,
) -> dict[str, bytes | None]:
    """The workbook part with each sheet's repeated print titles (see
    :mod:`cxkpi_xl.report.printing`), or nothing when no sheet has them."""
    titled = [(s, print_titles_name(s)) for s in sheets if print_titles_name(s)]
    if not titled or strict:
        return {}
    done = out.get(wb_part)
    text = done.decode("utf-8") if done else wb_text
    order = [el.get("name", "") for el in sheet_elems]
    order += [s.name for s in sheets if s.name not in replaced]
    keys = [sheet_key(n) for n in order]
    for sheet, value in titled:
        if sheet_key(sheet.name) in keys and value:
            text = with_print_titles(text, keys.index(sheet_key(sheet.name)), value)
    return {wb_part: text.encode("utf-8")} if text != wb_text else {}


def _replaced_sheets(
    pkg: Package, wb_part: str, names: list[str], owned_by: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """The part of each sheet of ``names`` the workbook already has (its name compared as
    Excel does, ignoring case); refuses a sheet that is not one we wrote (its first cells
    are not ``owned_by[name]``)."""
    rel_by_id = {r.get("Id"): r for r in pkg.relationships(wb_part)}
    wb_root = pkg.xml(wb_part)
    existing = {
        sheet_key(el.get("name", "")): el for el in wb_root.iter() if _local(el.tag) == "sheet"
    }
    replaced: dict[str, str] = {}
    for name in names:
        el = existing.get(sheet_key(name))
        if el is None:
            continue
        shown = el.get("name")
        rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
        rel = rel_by_id.get(rid or "")
        if rel is None or _kind(rel) != "worksheet" or not pkg.find(rel.get("part", "")):
            raise PackageError(
                f"the workbook has its own sheet named {shown!r} (not a worksheet cxkpi "
                f"wrote): rename it and refresh again"
            )
        header = owned_by.get(name, ())
        known = (header, *FORMER_HEADERS.get(name, ()))  # an earlier version's sheet too
        if not any(tuple(_first_cells(pkg, wb_part, rel["part"], len(h))) == h for h in known):
            raise PackageError(
                f"the workbook has its own sheet named {shown!r} (not written by cxkpi): "
                "rename it and refresh again"
            )
        replaced[name] = rel["part"]
    return replaced


def _closure(pkg: Package, part: str, keep: set[str]) -> list[str]:
    """``part``, its rels, and the parts reachable from it that nothing else refers to
    (``keep``: lower-case names of parts referred to from elsewhere)."""
    found = [part]
    rels = pkg.find(_rels_path(part))
    if rels is not None:
        found.append(rels)
    for rel in pkg.relationships(part):
        target = pkg.find(rel.get("part", ""))
        if target and target.lower() not in keep and target not in found:
            found.extend(t for t in _closure(pkg, target, keep) if t not in found)
    return found


def _content_types(
    text: str, parts: dict[str, bytes | None], new: list[tuple[str, str]], part: str
) -> bytes:
    p = _prefix(text, "Types")
    removed = {"/" + name.lower() for name, data in parts.items() if data is None}
    added = {"/" + name.lower() for name, _ in new}

    def keep(m: re.Match[str]) -> str:
        name = re.search(r'PartName="([^"]*)"', m.group(0))
        return "" if name and name.group(1).lower() in removed | added else m.group(0)

    text = re.sub(rf"<{re.escape(p)}Override\b[^>]*/>", keep, text)
    defaults = {
        m.group(1).lower()
        for m in re.finditer(rf'<{re.escape(p)}Default\b[^>]*Extension="([^"]*)"', text)
    }
    rels = [
        (name, CT_RELS)
        for name, data in parts.items()
        if data is not None and name.lower().endswith(".rels") and "rels" not in defaults
    ]
    body = "".join(
        f'<{p}Override PartName="/{name}" ContentType="{ct}"/>' for name, ct in [*new, *rels]
    )
    return _insert_before_close(text, p, "Types", body, part).encode("utf-8")


def _app_titles(pkg: Package, names: list[str], sheet_elems: list[Any]) -> bytes | None:
    """docProps/app.xml with the new sheet titles, or None to leave it as it is (absent,
    or not the usual layout of one worksheet count and the titles in sheet order)."""
    app = pkg.find("docProps/app.xml")
    if not names or app is None:
        return None
    text = pkg.text(app)
    vt = _prefix(text, "i4")
    pairs = re.search(rf"<{vt}i4>(\d+)</{vt}i4>", text)
    titles = re.search(rf'(<(?:[\w.-]+:)?TitlesOfParts>\s*<{vt}vector size=")(\d+)("[^>]*>)', text)
    if pairs is None or titles is None:
        return None
    count = int(pairs.group(1))
    if count != len(sheet_elems):  # the first heading pair is not the worksheets
        return None
    body_start = titles.end()
    items = list(re.finditer(rf"<{vt}lpstr>.*?</{vt}lpstr>", text[body_start:], flags=re.S))
    if len(items) < count:
        return None
    insert_at = body_start + (items[count - 1].end() if count else 0)
    new_titles = "".join(f"<{vt}lpstr>{escape(n)}</{vt}lpstr>" for n in names)
    text = text[:insert_at] + new_titles + text[insert_at:]
    size = int(titles.group(2)) + len(names)
    text = text[: titles.start(2)] + str(size) + text[titles.end(2) :]
    text = text[: pairs.start(1)] + str(count + len(names)) + text[pairs.end(1) :]
    return text.encode("utf-8")


def new_file_mode() -> int:
    """The mode a new file gets from the umask (0o666 less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def replace_atomically(
    target: Path, write: Callable[[Any], None], before_replace: Callable[[], None] | None = None
) -> None:
    """Write a file through ``write(f)`` next to ``target`` (a symbolic link's target: the
    link stays a link), flush and fsync it, then move it over the target. The result
    keeps the target's mode, or gets the umask's for a new file. Any failure leaves the
    old file (or none) and no temporary file."""
    real = Path(os.path.realpath(target))
    fd, tmp = tempfile.mkstemp(prefix=f".~{real.stem}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mode = stat.S_IMODE(real.stat().st_mode) if real.exists() else new_file_mode()
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_atomic(
    zin: zipfile.ZipFile,
    target: Path,
    parts: dict[str, bytes | None],
    after_write: Callable[[], None] | None,
) -> None:
    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zout:
            written = set()
            for info in zin.infolist():
                name = info.filename
                if name in parts:
                    data = parts[name]
                    if data is not None:
                        _write_part(zout, name, data, info)
                        written.add(name)
                else:
                    _copy_raw(zin, zout, info)
            for name, data in parts.items():
                if data is not None and name not in written:
                    _write_part(zout, name, data, None)

    replace_atomically(target, write, after_write)


def _write_part(
    zout: zipfile.ZipFile, name: str, data: bytes, like: zipfile.ZipInfo | None
) -> None:
    info = zipfile.ZipInfo(name, date_time=like.date_time if like else (1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zout.writestr(info, data, compresslevel=6)
