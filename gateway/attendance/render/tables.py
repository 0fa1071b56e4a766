"""A titled table (``summary.Table``) in the four report formats.

The summaries are small next to the timesheet, so this is the plain path: openpyxl in normal
mode, a reportlab table with its header row on every page, the same CSV guard and HTML base as
the timesheet.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from xml.sax.saxutils import escape

from .csvfile import safe
from .html import page
from .labels import labels
from .summary import Cell, Table


def _show(v: Cell, lang: str = "vi") -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        s = f"{v:.2f}".rstrip("0").rstrip(".")
        return s.replace(".", ",") if lang == "vi" else s
    return str(v)


def _csv(table: Table) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe(c) for c in table.columns])
    for row in (*table.rows, *((table.total,) if table.total else ())):
        w.writerow(["" if v is None else (str(v) if isinstance(v, (int, float)) else safe(v)) for v in row])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _html(table: Table) -> bytes:
    text_cols = {i for i, v in enumerate(table.rows[0]) if isinstance(v, str)} if table.rows else set()
    return page(
        "table.html.j2",
        lang=table.lang,
        title=table.title,
        table=table,
        text_cols=text_cols,
        show=lambda v: _show(v, table.lang),
    )


def _xlsx(table: Table) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Border, Font, Side  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    from .xlsx import FONT, PAPER_A4, _splice

    wb = Workbook()
    ws = wb.active
    ws.title = table.title[:31].replace("/", "-")
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    n = len(table.columns)
    ws.cell(1, 1, table.title).font = Font(name=FONT, size=13, bold=True)
    for i, line in enumerate(table.subtitle, start=2):
        ws.cell(i, 1, line).font = Font(name=FONT, size=10, italic=True)
    head = 2 + len(table.subtitle)
    for j, c in enumerate(table.columns, start=1):
        cell = ws.cell(head, j, c)
        cell.font = Font(name=FONT, size=10, bold=True)
        cell.border = box
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(j)].width = max(8, min(28, len(c) + 2))
    body = Font(name=FONT, size=10)
    bold = Font(name=FONT, size=10, bold=True)
    rows = [*table.rows, *((table.total,) if table.total else ())]
    for i, row in enumerate(rows, start=head + 1):
        for j, v in enumerate(row, start=1):
            cell = ws.cell(i, j, v)
            cell.border = box
            cell.font = bold if table.total is not None and i == head + len(rows) else body
    ws.freeze_panes = ws.cell(head + 1, 1).coordinate
    ws.print_title_rows = f"{head}:{head}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = PAPER_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.auto_filter.ref = f"A{head}:{get_column_letter(n)}{head + len(table.rows)}"
    buf = io.BytesIO()
    wb.save(buf)
    return _splice(buf.getvalue(), {}, "1980-01-01T00:00:00Z")  # same table, same bytes


def _pdf(table: Table) -> bytes:
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.enums import TA_CENTER  # type: ignore[import-untyped]
    from reportlab.lib.units import mm  # type: ignore[import-untyped]
    from reportlab.platypus import Paragraph, Spacer, TableStyle  # type: ignore[import-untyped]
    from reportlab.platypus import Table as RLTable

    from .pdf import FONT, FONT_BOLD, MARGIN, PAGE, doc_bytes, style

    head = style("th", 7, bold=True, align=TA_CENTER, leading=8)
    rows: list[list[Any]] = [[Paragraph(escape(c), head) for c in table.columns]]
    rows += [[_show(v, table.lang) for v in row] for row in table.rows]
    if table.total:
        rows.append([_show(v, table.lang) for v in table.total])
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, 7.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEEEEE")),
    ]
    if table.total:
        cmds.append(("FONT", (0, -1), (-1, -1), FONT_BOLD, 7.5))
    width = PAGE[0] - 2 * MARGIN
    flow: list[Any] = [Paragraph(escape(table.title), style("t", 13, bold=True, align=TA_CENTER, leading=16))]
    flow += [Paragraph(escape(s), style("s", 8.5, align=TA_CENTER)) for s in table.subtitle]
    flow += [
        Spacer(1, 3 * mm),
        RLTable(
            rows,
            colWidths=[width / len(table.columns)] * len(table.columns),
            repeatRows=1,
            style=TableStyle(cmds),
        ),
    ]
    return doc_bytes(flow, labels(table.lang)["page"], table.title, table.title)


def render_table(table: Table, fmt: str) -> bytes:
    """``table`` as xlsx, pdf, csv or html; ValueError for another format."""
    writers = {"xlsx": _xlsx, "pdf": _pdf, "csv": _csv, "html": _html}
    if fmt not in writers:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(writers)}")
    return writers[fmt](table)
