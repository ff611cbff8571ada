"""How the Report prints: landscape, one page wide, a page number in the footer, the
page breaks the layout chose, the KPI-title column repeated on every page
(``_xlnm.Print_Titles`` in the workbook part), and the colour scales of the heat maps.
The worksheet XML fragments are written in schema order by the package writer."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from .layout import Sheet

HEAT_COLOURS = ("FFF8696B", "FFFFEB84", "FF63BE7B")  # Excel's red-yellow-green scale


def sheet_pr_xml(sheet: Sheet) -> str:
    """``<sheetPr>``: fit to page, for a sheet printed one page wide."""
    return '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>' if sheet.fit_width else ""


def page_setup_xml(sheet: Sheet) -> str:
    """From ``<conditionalFormatting>`` to ``<rowBreaks>``, in the worksheet's order."""
    out = []
    for i, ref in enumerate(sheet.color_scales, start=1):
        cfvo = '<cfvo type="min"/><cfvo type="percentile" val="50"/><cfvo type="max"/>'
        colours = "".join(f'<color rgb="{c}"/>' for c in HEAT_COLOURS)
        out.append(
            f'<conditionalFormatting sqref="{ref}"><cfRule type="colorScale" priority="{i}">'
            f"<colorScale>{cfvo}{colours}</colorScale></cfRule></conditionalFormatting>"
        )
    out.append(
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    )
    if sheet.fit_width:
        out.append('<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>')
        footer = escape(f"&L{sheet.name}&RPage &P of &N")
        out.append(f"<headerFooter><oddFooter>{footer}</oddFooter></headerFooter>")
    else:
        out.append('<pageSetup orientation="landscape" fitToHeight="0"/>')
    if sheet.breaks:
        brk = "".join(f'<brk id="{r}" max="16383" man="1"/>' for r in sheet.breaks)
        n = len(sheet.breaks)
        out.append(f'<rowBreaks count="{n}" manualBreakCount="{n}">{brk}</rowBreaks>')
    return "".join(out)


def print_titles_name(sheet: Sheet) -> str | None:
    """The value of the sheet's ``_xlnm.Print_Titles`` (``'Report'!$A:$A``), or None."""
    if not sheet.print_titles:
        return None
    first, _, last = sheet.print_titles.partition(":")
    quoted = "'" + sheet.name.replace("'", "''") + "'"
    return f"{quoted}!${first}:${last or first}"


def with_print_titles(wb_text: str, local_id: int, value: str) -> str:
    """A workbook part's text with ``_xlnm.Print_Titles`` of the sheet at ``local_id``
    (0-based) set to ``value``: an existing one for that sheet replaced, else added
    (with a ``<definedNames>`` where the schema puts it, when there is none)."""
    m = re.search(r"<([\w.-]+:)?workbook[\s>]", wb_text)
    p = (m.group(1) or "") if m else ""
    name = (
        f'<{p}definedName name="_xlnm.Print_Titles" localSheetId="{local_id}">'
        f"{escape(value)}</{p}definedName>"
    )
    own = re.compile(
        rf'<{re.escape(p)}definedName\b(?=[^>]*name="_xlnm.Print_Titles")'
        rf'(?=[^>]*localSheetId="{local_id}")[^>]*>.*?</{re.escape(p)}definedName>',
        re.S,
    )
    if own.search(wb_text):
        return own.sub(lambda _: name, wb_text, count=1)
    close = wb_text.find(f"</{p}definedNames>")
    if close >= 0:
        return wb_text[:close] + name + wb_text[close:]
    empty = re.search(rf"<{re.escape(p)}definedNames\s*/>", wb_text)
    if empty:
        body = f"<{p}definedNames>{name}</{p}definedNames>"
        return wb_text[: empty.start()] + body + wb_text[empty.end() :]
    after = None
    for tag in ("externalReferences", "functionGroups", "sheets"):
        m = re.search(rf"</{re.escape(p)}{tag}>", wb_text)
        if m:
            after = m.end()
            break
    if after is None:
        return wb_text
    return wb_text[:after] + f"<{p}definedNames>{name}</{p}definedNames>" + wb_text[after:]


__all__ = ["page_setup_xml", "print_titles_name", "sheet_pr_xml", "with_print_titles"]
