"""The "Refresh KPIs" button: a DrawingML shape named ``cxkpi_refresh``.

openpyxl cannot draw shapes, so the shape is written here as XML, for the template's
Start here sheet and for the Report sheet's header (both written at package level). One
shape serves every runtime:

- classic xlwings (a macro-enabled workbook): the shape's ``macro`` attribute runs the
  workbook's ``SampleCall`` macro (xlwings' standalone VBA), which imports the ``.py`` file
  named after the workbook and calls its ``main()``;
- xlwings Lite and Server (no macro): the script bound with
  ``@script(button="[cxkpi_refresh]<sheet>!<cell>")`` runs when the shape is clicked; the
  shape links to the cell it sits on, which is how those runtimes see the click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

NAME = "cxkpi_refresh"
"""The shape's name, which the Lite/Server button reference names in brackets."""
LABEL = "Refresh KPIs"
MACRO = "SampleCall"
"""The macro of xlwings' standalone VBA module that the button runs (classic xlwings)."""

START_CELL = "A14"
"""Where the button sits on Start here (below the instructions)."""
REPORT_CELL = "B1"
"""Where the button sits on the Report: the right end of the frozen header cell B1, so
it stays in view while the table scrolls."""

NS_XDR = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
NS_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_HYPERLINK = NS_R + "/hyperlink"
CT_DRAWING = "application/vnd.openxmlformats-officedocument.drawing+xml"
EMU_PER_POINT = 12_700
NAVY = "1F3864"


@dataclass(frozen=True)
class Button:
    """Where one button goes and what a click does."""

    sheet: str
    cell: str
    width: float = 144.0
    """in points (2 inches)"""
    height: float = 30.0
    """in points"""
    col_offset: float = 0.0
    """from the cell's left edge, in points"""
    row_offset: float = 0.0
    """from the cell's top edge, in points"""
    macro: str | None = None
    """the macro to run (classic xlwings); None in a workbook without VBA"""
    font_size: int = 12

    @property
    def reference(self) -> str:
        """The button reference of xlwings Lite/Server: ``[cxkpi_refresh]Sheet!A14``."""
        return f"[{NAME}]{self.sheet}!{self.cell}"

    @property
    def link_target(self) -> str:
        """The in-workbook hyperlink target of the shape: the cell under it."""
        return "#" + quote_sheet(self.sheet) + "!" + self.cell


def start_button(macro: str | None) -> Button:
    return Button("Start here", START_CELL, macro=macro)


def report_button(macro: str | None) -> Button:
    # B1 is 44 characters wide (about 240 points): the button fills its right half,
    # inside the 15-point header row.
    return Button(
        "Report", REPORT_CELL, width=110.0, height=13.5, col_offset=124.0, row_offset=0.75,
        macro=macro, font_size=9,
    )  # fmt: skip


def quote_sheet(name: str) -> str:
    """A sheet name as a reference writes it: quoted unless it is a plain word."""
    if name.replace("_", "").isalnum() and not name[0].isdigit():
        return name
    return "'" + name.replace("'", "''") + "'"


def cell_position(cell: str) -> tuple[int, int]:
    """Zero-based (column, row) of an A1 reference."""
    letters = "".join(ch for ch in cell if ch.isalpha()).upper()
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return col - 1, int("".join(ch for ch in cell if ch.isdigit())) - 1


def _emu(points: float) -> int:
    return round(points * EMU_PER_POINT)


def anchor_xml(button: Button, shape_id: int, link_rid: str | None) -> str:
    """The ``xdr:oneCellAnchor`` of the button (prefixes ``xdr``, ``a`` and ``r``, which
    the drawing part declares). ``link_rid`` is the drawing's relationship to the cell
    under the shape (for Lite/Server), or None."""
    col, row = cell_position(button.cell)
    cx, cy = _emu(button.width), _emu(button.height)
    macro = f"[0]!{button.macro}" if button.macro else ""
    link = f'<a:hlinkClick r:id="{link_rid}"/>' if link_rid else ""
    descr = "Refresh KPIs: recompute the Report and Data Issues sheets"
    return (
        "<xdr:oneCellAnchor>"
        f"<xdr:from><xdr:col>{col}</xdr:col><xdr:colOff>{_emu(button.col_offset)}</xdr:colOff>"
        f"<xdr:row>{row}</xdr:row><xdr:rowOff>{_emu(button.row_offset)}</xdr:rowOff></xdr:from>"
        f'<xdr:ext cx="{cx}" cy="{cy}"/>'
        f'<xdr:sp macro={quoteattr(macro)} textlink="">'
        f'<xdr:nvSpPr><xdr:cNvPr id="{shape_id}" name="{NAME}" descr={quoteattr(descr)}>'
        f"{link}</xdr:cNvPr><xdr:cNvSpPr/></xdr:nvSpPr>"
        f'<xdr:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{cx}" cy="{cy}"/></a:xfrm>'
        '<a:prstGeom prst="roundRect"><a:avLst/></a:prstGeom>'
        f'<a:solidFill><a:srgbClr val="{NAVY}"/></a:solidFill><a:ln><a:noFill/></a:ln>'
        "</xdr:spPr>"
        '<xdr:txBody><a:bodyPr vertOverflow="clip" horzOverflow="clip" wrap="none" '
        'lIns="0" tIns="0" rIns="0" bIns="0" rtlCol="0" anchor="ctr"/><a:lstStyle/>'
        f'<a:p><a:pPr algn="ctr"/><a:r><a:rPr lang="en-US" sz="{button.font_size * 100}" '
        'b="1"><a:solidFill><a:srgbClr val="FFFFFF"/></a:solidFill></a:rPr>'
        f"<a:t>{escape(LABEL)}</a:t></a:r></a:p></xdr:txBody>"
        "</xdr:sp><xdr:clientData/></xdr:oneCellAnchor>"
    )


def drawing_xml(anchors: list[str]) -> bytes:
    """A drawing part holding ``anchors``."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<xdr:wsDr xmlns:xdr="{NS_XDR}" xmlns:a="{NS_A}" xmlns:r="{NS_R}">'
        + "".join(anchors)
        + "</xdr:wsDr>"
    ).encode("utf-8")


def add_to_drawing(
    drawing: bytes | None, rels: list[tuple[str, str, str]], button: Button
) -> tuple[bytes, list[tuple[str, str, str]]]:
    """The drawing part with the button added (a new part if ``drawing`` is None), and
    its relationships (Id, Type, Target) with the button's link added when it has no
    macro. The shape's id is one more than the largest in the drawing."""
    rels = list(rels)
    rid = None
    if button.macro is None:
        taken = {r[0] for r in rels}
        n = 1
        while f"rId{n}" in taken:
            n += 1
        rid = f"rId{n}"
        rels.append((rid, REL_HYPERLINK, button.link_target))
    if drawing is None:
        return drawing_xml([anchor_xml(button, 2, rid)]), rels
    text = drawing.decode("utf-8")

    ids = [int(i) for i in re.findall(r'<(?:\w+:)?cNvPr\b[^>]*?\bid="(\d+)"', text)]
    anchor = anchor_xml(button, max([1, *ids]) + 1, rid)
    root = re.search(r"<(\w+:)?wsDr\b[^>]*>", text)
    if root is None:
        raise ValueError("not a drawing part")
    prefix = root.group(1) or ""
    declare = ""
    for p, ns in (("xdr", NS_XDR), ("a", NS_A), ("r", NS_R)):
        if f"xmlns:{p}=" not in root.group(0):
            declare += f' xmlns:{p}="{ns}"'
    if declare:  # the anchor's prefixes, declared on the anchor itself
        anchor = anchor.replace("<xdr:oneCellAnchor>", f"<xdr:oneCellAnchor{declare}>", 1)
    close = f"</{prefix}wsDr>"
    at = text.rindex(close)
    return (text[:at] + anchor + text[at:]).encode("utf-8"), rels


__all__ = [
    "LABEL",
    "MACRO",
    "NAME",
    "Button",
    "add_to_drawing",
    "anchor_xml",
    "drawing_xml",
    "report_button",
    "start_button",
]
