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
  refreshing again does not grow it;
- ``docProps/app.xml``: the sheet titles, when it has the usual layout;
- ``xl/calcChain.xml``: removed only if it refers to a replaced sheet.

Every other part is copied as its compressed bytes, byte for byte. Cell text is written
as inline strings (``xl/sharedStrings.xml`` is never touched) and can never be a formula.
The new file is written next to the target, flushed, fsynced, then moved over it with
``os.replace``: a crash at any moment leaves either the old file or the new one.
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

from ..data.cells import cell_index
from .layout import Chart, Sheet, column_letter, styles_used

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
REL_OFFICE_DOCUMENT = NS_R + "/officeDocument"
REL_WORKSHEET = NS_R + "/worksheet"
REL_DRAWING = NS_R + "/drawing"
REL_CHART = NS_R + "/chart"
REL_STYLES = NS_R + "/styles"
REL_CALC_CHAIN = NS_R + "/calcChain"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_DRAWING = "application/vnd.openxmlformats-officedocument.drawing+xml"
CT_CHART = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9}
BUILTIN_FORMATS |= {"0.00%": 10, "@": 49}


class PackageError(Exception):
    """The workbook cannot be written safely; the message is one line for the user."""


# --- reading the package ------------------------------------------------------------


def _parse(data: bytes) -> Any:
    from defusedxml.ElementTree import fromstring

    return fromstring(data)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rels_path(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def _resolve(source_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source_part), target))


def _relationships(z: zipfile.ZipFile, part: str) -> list[dict[str, str]]:
    """The relationships of ``part``: Id, Type, Target (resolved to a part name) and
    TargetMode."""
    name = _rels_path(part)
    if name not in z.NameToInfo:
        return []
    out = []
    for rel in _parse(z.read(name)):
        a = dict(rel.attrib)
        if a.get("TargetMode") != "External":
            a["part"] = _resolve(part, a.get("Target", ""))
        out.append(a)
    return out


def _workbook_part(z: zipfile.ZipFile) -> str:
    for rel in _relationships(z, ""):
        if rel.get("Type") == REL_OFFICE_DOCUMENT:
            return rel["part"]
    return "xl/workbook.xml"


def _canon(el: Any) -> tuple[Any, ...]:
    """An element as a comparable value: local names, attributes sorted, children."""
    attrs = tuple(sorted((_local(k), v) for k, v in el.attrib.items()))
    return (_local(el.tag), attrs, tuple(_canon(c) for c in el))


def _prefix(text: str, local: str) -> str:
    """The namespace prefix (with its colon, or empty) the part uses for ``local``."""
    m = re.search(rf"<(\w+:)?{local}[\s>/]", text)
    return (m.group(1) or "") if m else ""


def _text_of(el: Any) -> str:
    """The text of a shared or inline string element (its ``t`` runs joined)."""
    return "".join(t.text or "" for t in el.iter() if _local(t.tag) == "t")


def _shared_string(z: zipfile.ZipFile, wb_part: str, index: int) -> str | None:
    for rel in _relationships(z, wb_part):
        if rel.get("Type", "").endswith("/sharedStrings") and rel["part"] in z.NameToInfo:
            from defusedxml.ElementTree import iterparse

            n = -1
            with z.open(rel["part"]) as f:
                for _, el in iterparse(f):
                    if _local(el.tag) == "si":
                        n += 1
                        if n == index:
                            return _text_of(el)
                        el.clear()
    return None


def _first_cells(z: zipfile.ZipFile, wb_part: str, part: str, count: int) -> list[str]:
    """The text of the first ``count`` cells of row 1 of a worksheet part."""
    from defusedxml.ElementTree import iterparse

    cells: dict[str, str] = {}
    wanted = [f"{column_letter(i + 1)}1" for i in range(count)]
    with z.open(part) as f:
        for _, el in iterparse(f):
            tag = _local(el.tag)
            if tag == "c" and el.get("r") in wanted:
                kind = el.get("t", "n")
                if kind == "inlineStr":
                    cells[el.get("r")] = _text_of(el)
                else:
                    v = next((c.text for c in el if _local(c.tag) == "v"), None)
                    if kind == "s" and v is not None and v.isdigit():
                        cells[el.get("r")] = _shared_string(z, wb_part, int(v)) or ""
                    else:
                        cells[el.get("r")] = v or ""
            elif tag == "row":
                break
    return [cells.get(w, "") for w in wanted]


# --- styles -------------------------------------------------------------------------


def _merge_styles(text: str, styles: dict[str, dict[str, Any]]) -> tuple[str, dict[str, int]]:
    """Add what ``styles`` need to a styles.xml text, reusing identical entries already
    there; returns the new text and each style's cellXfs index."""
    root = _parse(text.encode("utf-8"))
    section = {_local(c.tag): c for c in root}
    for needed in ("fonts", "fills", "cellXfs"):
        if needed not in section:
            raise PackageError(f"the workbook's styles part has no {needed}")
    p = _prefix(text, "styleSheet")
    added: dict[str, list[str]] = {"numFmts": [], "fonts": [], "fills": [], "cellXfs": []}
    known = {k: [_canon(c) for c in section.get(k, [])] for k in added}
    fmt_ids = {c.get("formatCode"): int(c.get("numFmtId")) for c in section.get("numFmts", [])}
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
            text = _append_children(text, p, kind, items, len(known[kind]))
    return text, out


def _leaf(el: Any, p: str) -> str:
    attrs = "".join(f" {_local(k)}={quoteattr(v)}" for k, v in el.attrib.items() if "}" not in k)
    return f"<{p}{_local(el.tag)}{attrs}/>"


def _unprefix(xml: str, p: str) -> str:
    return xml.replace(f"<{p}", "<").replace(f"</{p}", "</") if p else xml


def _append_children(text: str, p: str, section: str, items: list[str], count: int) -> str:
    """Append elements to a section of a part's text and set its ``count``."""
    body = "".join(items)
    m = re.search(rf"<{re.escape(p)}{section}\b([^>]*?)(/?)>", text)
    if m is None:  # only numFmts may be missing: it is the first child of styleSheet
        root = re.search(rf"<{re.escape(p)}styleSheet\b[^>]*>", text)
        assert root is not None
        tag = f'<{p}{section} count="{count}">{body}</{p}{section}>'
        return text[: root.end()] + tag + text[root.end() :]
    attrs = re.sub(r'\scount="\d*"', "", m.group(1))
    start = f'<{p}{section} count="{count}"{attrs}>'
    if m.group(2):  # <fonts count="0"/>
        return text[: m.start()] + start + body + f"</{p}{section}>" + text[m.end() :]
    close = text.index(f"</{p}{section}>", m.end())
    return text[: m.start()] + start + text[m.end() : close] + body + text[close:]


# --- rendering our parts -------------------------------------------------------------


def sheet_xml(sheet: Sheet, style_ids: dict[str, int], drawing_rid: str | None) -> bytes:
    """The worksheet part of ``sheet``: inline strings, numbers, styles, widths, panes."""
    out = io.StringIO()
    w = out.write
    w('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
    w(f'<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_R}">')
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
    w('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>')
    w('<pageSetup orientation="landscape" fitToHeight="0"/>')
    if drawing_rid:
        w(f'<drawing r:id="{drawing_rid}"/>')
    w("</worksheet>")
    return out.getvalue().encode("utf-8")


def chart_parts(sheet_name: str, charts: list[Chart]) -> tuple[bytes, list[bytes]]:
    """The drawing part and the chart parts of ``charts``, rendered by openpyxl."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference

    wb = Workbook()
    ws = wb.active
    ws.title = sheet_name
    for spec in charts:
        chart: Any = BarChart() if spec.kind == "bar" else LineChart()
        chart.title = spec.title
        chart.height, chart.width = 8.5, 15
        chart.y_axis.numFmt = spec.y_format
        chart.y_axis.majorGridlines = None if spec.kind == "bar" else chart.y_axis.majorGridlines
        # openpyxl >= 3.1 hides axes unless told otherwise
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        last = 2 + spec.periods
        for row in spec.rows:
            ref = Reference(ws, min_col=2, max_col=last, min_row=row, max_row=row)
            chart.add_data(ref, from_rows=True, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=3, max_col=last, min_row=1, max_row=1))
        for series in chart.series:  # a trend is drawn point to point, not smoothed
            series.smooth = False
        ws.add_chart(chart, spec.anchor)
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(buf) as z:
        drawing = z.read("xl/drawings/drawing1.xml")
        charts_xml = [z.read(f"xl/charts/chart{i + 1}.xml") for i in range(len(charts))]
    return drawing, charts_xml


# --- writing ------------------------------------------------------------------------


def _free_name(used: set[str], pattern: str) -> str:
    n = 1
    while pattern.format(n) in used:
        n += 1
    name = pattern.format(n)
    used.add(name)
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
    zin.fp.seek(fields[zipfile._FH_FILENAME_LENGTH] + fields[zipfile._FH_EXTRA_FIELD_LENGTH], 1)
    raw = zin.fp.read(info.compress_size)
    new = copy.copy(info)
    new.flag_bits &= ~0x08  # sizes and CRC go into the local header, no data descriptor
    new.header_offset = zout.fp.tell()
    zout.fp.write(new.FileHeader())
    zout.fp.write(raw)
    zout.filelist.append(new)
    zout.NameToInfo[new.filename] = new
    zout.start_dir = zout.fp.tell()


def check_writable(target: Path) -> None:
    """Refuse a target that is open in Excel, read-only, or in a folder we cannot write."""
    owner = target.with_name("~$" + target.name)
    if owner.exists():
        raise PackageError(
            f"{target.name} is open in Excel ({owner.name} exists): close it and refresh again"
        )
    if target.exists() and not (target.stat().st_mode & stat.S_IWUSR):
        raise PackageError(f"{target.name} is read-only: nothing was changed")
    folder = target.parent
    if not os.access(folder, os.W_OK):
        raise PackageError(f"cannot write in {folder}: nothing was changed")


def write_sheets(
    source: Path,
    target: Path,
    sheets: list[Sheet],
    owned_by: dict[str, tuple[str, ...]],
    after_write: Callable[[], None] | None = None,
) -> None:
    """Write ``sheets`` into the package ``source``, saving the result as ``target``
    (which may be ``source``). ``owned_by[name]`` is the text of the first cells of a
    sheet we wrote before: a sheet of that name that does not start so is the user's,
    and is refused rather than overwritten."""
    with zipfile.ZipFile(source) as zin:
        parts = _plan(zin, sheets, owned_by)
        _write_atomic(zin, target, parts, after_write)


def _plan(
    z: zipfile.ZipFile, sheets: list[Sheet], owned_by: dict[str, tuple[str, ...]]
) -> dict[str, bytes | None]:
    """The parts to write (bytes) or remove (None); every other part is copied."""
    wb_part = _workbook_part(z)
    if wb_part not in z.NameToInfo:
        raise PackageError(f"the package has no workbook part {wb_part}")
    wb_text = z.read(wb_part).decode("utf-8")
    wb_rels = _relationships(z, wb_part)
    ct_text = z.read("[Content_Types].xml").decode("utf-8")
    wb_root = _parse(wb_text.encode("utf-8"))
    sheet_elems = [el for el in wb_root.iter() if _local(el.tag) == "sheet"]
    existing = {el.get("name"): el for el in sheet_elems}
    used = set(z.NameToInfo)
    out: dict[str, bytes | None] = {}

    # Parts of the sheets we replace, and what hangs off them only, are removed.
    replaced = _replaced_sheets(z, wb_part, [s.name for s in sheets], owned_by)
    # Parts reachable from a replaced sheet go, unless a part outside that reach uses them.
    reach = {p for part in replaced.values() for p in _closure(z, part, set())}
    referenced_elsewhere: set[str] = set()
    for name in z.NameToInfo:
        source = name.replace("_rels/", "").removesuffix(".rels")
        if name.endswith(".rels") and source not in reach:
            referenced_elsewhere |= {r.get("part", "") for r in _relationships(z, source)}
    for part in replaced.values():
        for doomed in _closure(z, part, referenced_elsewhere):
            out[doomed] = None
            used.discard(doomed)

    new_overrides: list[tuple[str, str]] = []
    new_wb_rels: list[tuple[str, str, str]] = []
    new_sheet_entries: list[str] = []
    styles_part = next((r["part"] for r in wb_rels if r.get("Type") == REL_STYLES), None)
    if styles_part is None or styles_part not in z.NameToInfo:
        raise PackageError("the workbook has no styles part")
    styles_text, style_ids = _merge_styles(z.read(styles_part).decode("utf-8"), styles_used(sheets))
    out[styles_part] = styles_text.encode("utf-8")

    sheet_ids = [int(el.get("sheetId", "0")) for el in sheet_elems]
    rel_numbers = [int(m) for r in wb_rels for m in re.findall(r"^rId(\d+)$", r["Id"])]
    next_rel, next_sheet_id = max([0, *rel_numbers]) + 1, max([0, *sheet_ids]) + 1
    for sheet in sheets:
        part = replaced.get(sheet.name) or _free_name(used, "xl/worksheets/sheet{}.xml")
        if sheet.name not in replaced:
            rid = f"rId{next_rel}"
            next_rel += 1
            new_wb_rels.append((rid, REL_WORKSHEET, "/" + part))
            new_sheet_entries.append(
                f'<{{p}}sheet name={quoteattr(sheet.name)} sheetId="{next_sheet_id}" '
                f'r:id="{rid}" xmlns:r="{NS_R}"/>'
            )
            next_sheet_id += 1
        drawing_rid = None
        if sheet.charts:
            drawing, charts = chart_parts(sheet.name, sheet.charts)
            dpart = _free_name(used, "xl/drawings/drawing{}.xml")
            chart_names = [_free_name(used, "xl/charts/chart{}.xml") for _ in charts]
            for i, name in enumerate(chart_names):
                out[name] = charts[i]
                new_overrides.append((name, CT_CHART))
            out[dpart] = drawing
            out[_rels_path(dpart)] = _rels_xml(
                (f"rId{i + 1}", REL_CHART, "/" + name) for i, name in enumerate(chart_names)
            )
            new_overrides.append((dpart, CT_DRAWING))
            drawing_rid = "rId1"
            out[_rels_path(part)] = _rels_xml([(drawing_rid, REL_DRAWING, "/" + dpart)])
        out[part] = sheet_xml(sheet, style_ids, drawing_rid)
        new_overrides.append((part, CT_WORKSHEET))

    if new_sheet_entries:
        p = _prefix(wb_text, "sheets")
        entries = "".join(e.replace("{p}", p) for e in new_sheet_entries)
        close = wb_text.index(f"</{p}sheets>")
        out[wb_part] = (wb_text[:close] + entries + wb_text[close:]).encode("utf-8")
        rels_text = z.read(_rels_path(wb_part)).decode("utf-8")
        rp = _prefix(rels_text, "Relationships")
        body = "".join(
            f'<{rp}Relationship Id="{i}" Type="{t}" Target={quoteattr(target)}/>'
            for i, t, target in new_wb_rels
        )
        close = rels_text.rindex(f"</{rp}Relationships>")
        out[_rels_path(wb_part)] = (rels_text[:close] + body + rels_text[close:]).encode("utf-8")
        app = _app_titles(z, [s.name for s in sheets if s.name not in replaced], sheet_elems)
        if app is not None:
            out["docProps/app.xml"] = app

    # calcChain: only a replaced sheet's formulas could be in it; then it goes.
    calc = next((r for r in wb_rels if r.get("Type") == REL_CALC_CHAIN), None)
    replaced_ids = {existing[name].get("sheetId") for name in replaced if name in existing}
    if calc and calc["part"] in z.NameToInfo and replaced_ids:
        chain = z.read(calc["part"]).decode("utf-8")
        if any(f'i="{i}"' in chain for i in replaced_ids):
            out[calc["part"]] = None
            rels_name = _rels_path(wb_part)
            rels_text = (out.get(rels_name) or z.read(rels_name)).decode("utf-8")  # type: ignore[union-attr]
            rels_text = re.sub(
                rf"<(\w+:)?Relationship\b[^>]*Id=\"{calc['Id']}\"[^>]*/>", "", rels_text
            )
            out[rels_name] = rels_text.encode("utf-8")

    out["[Content_Types].xml"] = _content_types(ct_text, out, new_overrides)
    return out


def _replaced_sheets(
    z: zipfile.ZipFile, wb_part: str, names: list[str], owned_by: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """The part of each sheet of ``names`` the workbook already has; refuses a sheet that
    is not one we wrote (its first cells are not ``owned_by[name]``)."""
    rel_by_id = {r["Id"]: r for r in _relationships(z, wb_part)}
    wb_root = _parse(z.read(wb_part))
    existing = {el.get("name"): el for el in wb_root.iter() if _local(el.tag) == "sheet"}
    replaced: dict[str, str] = {}
    for name in names:
        el = existing.get(name)
        if el is None:
            continue
        rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
        rel = rel_by_id.get(rid or "")
        if rel is None or rel.get("Type") != REL_WORKSHEET or rel["part"] not in z.NameToInfo:
            raise PackageError(f"the sheet {name!r} is not a worksheet that can be replaced")
        header = owned_by.get(name, ())
        if tuple(_first_cells(z, wb_part, rel["part"], len(header))) != header:
            raise PackageError(
                f"the workbook has its own sheet named {name!r} (not written by cxkpi): "
                "rename it and refresh again"
            )
        replaced[name] = rel["part"]
    return replaced


def check_sheets(source: Path, owned_by: dict[str, tuple[str, ...]]) -> None:
    """Refuse early (before the slow part of a refresh) a workbook whose sheets of the
    names in ``owned_by`` are the user's own."""
    with zipfile.ZipFile(source) as z:
        _replaced_sheets(z, _workbook_part(z), list(owned_by), owned_by)


def _closure(z: zipfile.ZipFile, part: str, keep: set[str]) -> list[str]:
    """``part``, its rels, and the parts reachable from it that nothing else refers to."""
    found = [part]
    if _rels_path(part) in z.NameToInfo:
        found.append(_rels_path(part))
    for rel in _relationships(z, part):
        target = rel.get("part")
        if target and target in z.NameToInfo and target not in keep and target not in found:
            found.extend(t for t in _closure(z, target, keep) if t not in found)
    return found


def _content_types(text: str, parts: dict[str, bytes | None], new: list[tuple[str, str]]) -> bytes:
    p = _prefix(text, "Types")
    removed = {"/" + name for name, data in parts.items() if data is None}
    added = {"/" + name for name, _ in new}

    def keep(m: re.Match[str]) -> str:
        name = re.search(r'PartName="([^"]*)"', m.group(0))
        return "" if name and name.group(1) in removed | added else m.group(0)

    text = re.sub(rf"<{re.escape(p)}Override\b[^>]*/>", keep, text)
    body = "".join(f'<{p}Override PartName="/{name}" ContentType="{ct}"/>' for name, ct in new)
    close = text.rindex(f"</{p}Types>")
    return (text[:close] + body + text[close:]).encode("utf-8")


def _app_titles(z: zipfile.ZipFile, names: list[str], sheet_elems: list[Any]) -> bytes | None:
    """docProps/app.xml with the new sheet titles, or None to leave it as it is (absent,
    or not the usual layout of one worksheet count and the titles in sheet order)."""
    if not names or "docProps/app.xml" not in z.NameToInfo:
        return None
    text = z.read("docProps/app.xml").decode("utf-8")
    vt = _prefix(text, "i4")
    pairs = re.search(rf"<{vt}i4>(\d+)</{vt}i4>", text)
    titles = re.search(rf'(<(?:\w+:)?TitlesOfParts>\s*<{vt}vector size=")(\d+)("[^>]*>)', text)
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


def _write_atomic(
    zin: zipfile.ZipFile,
    target: Path,
    parts: dict[str, bytes | None],
    after_write: Callable[[], None] | None,
) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".~{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
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
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        if after_write is not None:
            after_write()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_part(
    zout: zipfile.ZipFile, name: str, data: bytes, like: zipfile.ZipInfo | None
) -> None:
    info = zipfile.ZipInfo(name, date_time=like.date_time if like else (1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zout.writestr(info, data, compresslevel=6)
