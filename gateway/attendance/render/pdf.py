"""The timesheet as a PDF: A4 landscape, DejaVu Sans Condensed embedded, header rows on every page.

reportlab embeds a subset of a TrueType font and writes each character as one glyph; it does not
shape combining marks. Vietnamese in NFC is all precomposed letters (ễ, ặ, ữ are single code
points that DejaVu has), so every text is NFC-normalised before it reaches the page
(``timesheet.build`` and ``labels`` do it) and nothing depends on mark positioning. The fonts
ship in ``fonts/`` under their licence (Bitstream Vera / DejaVu: redistribution allowed); nothing
is fetched at run time.

Every page: the agency / unit / month line on top, the table's three header rows again
(``repeatRows``), "Trang n/N" at the bottom. The first page also has the form's full heading;
the last has the symbol legend and the signature block.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen import canvas as rl_canvas  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ..header import ReportHeader
from .timesheet import Timesheet, build, number, overtime_table

FONT_DIR = Path(__file__).parent / "fonts"
FONT, FONT_BOLD = "DejaVuSansCondensed", "DejaVuSansCondensed-Bold"
PAGE = landscape(A4)
MARGIN = 10 * mm
GREY = colors.HexColor("#D9D9D9")
MARK_COLOURS = {"missing": colors.HexColor("#FFD966"), "absent": colors.HexColor("#F4B183")}


def _fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(FONT_DIR / "DejaVuSansCondensed.ttf")))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSansCondensed-Bold.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)


def style(
    name: str, size: float = 8, bold: bool = False, align: int = TA_LEFT, leading: float | None = None
) -> ParagraphStyle:
    _fonts()  # a Paragraph looks its font family up when it is made
    return ParagraphStyle(
        name,
        fontName=FONT_BOLD if bold else FONT,
        fontSize=size,
        leading=leading or size * 1.2,
        alignment=align,
    )


class _NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Holds the pages until the end so each can say "page n of N"."""

    page_label = "{n}/{total}"
    running = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initialFontName", FONT)  # else Helvetica, not embedded, is referenced
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for n, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(FONT, 7)
            self.drawRightString(PAGE[0] - MARGIN, MARGIN / 2, self.page_label.format(n=n, total=total))
            if n > 1:
                self.drawString(MARGIN, PAGE[1] - MARGIN + 2 * mm, self.running)
            super().showPage()
        super().save()


def doc_bytes(flow: list[Any], page_label: str, running: str, title: str) -> bytes:
    """Lay out ``flow`` on A4 landscape pages with the running line and page numbers."""
    _fonts()
    buf = io.BytesIO()
    canvas_cls = type("_Canvas", (_NumberedCanvas,), {"page_label": page_label, "running": running})
    doc = SimpleDocTemplate(
        buf,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 3 * mm,
        bottomMargin=MARGIN,
        title=title,
        creator="cbcc",
        author="cbcc",
        invariant=1,
    )
    doc.build(flow, canvasmaker=canvas_cls)
    return buf.getvalue()


def _table(ts: Timesheet) -> Table:
    t = ts.text
    n = len(ts.columns)
    head = style("head", 6.5, bold=True, align=TA_CENTER, leading=7.5)
    name = style("name", 7, leading=8)
    rows: list[list[Any]] = []
    q = ["time_paid", "unpaid", "insurance"]
    rows.append(
        [
            Paragraph(escape(t["stt"]), head),
            Paragraph(escape(t["name"]), head),
            Paragraph(escape(t["position"]), head),
            Paragraph(escape(t["days"]), head),
        ]
        + [""] * (n - 1)
        + [Paragraph(escape(t["quy_ra_cong"]), head), "", ""]
    )
    rows.append(
        ["", "", ""] + [str(c.date.day) for c in ts.columns] + [Paragraph(escape(t[k]), head) for k in q]
    )
    rows.append(["A", "B", "C"] + [c.weekday for c in ts.columns] + ["", "", ""])
    for r in ts.rows:
        rows.append(
            [
                str(r.stt),
                Paragraph(escape(r.name), name),
                Paragraph(escape(r.position), name),
                *r.cells,
                number(r.time_paid, ts.lang),
                number(r.unpaid, ts.lang),
                number(r.insurance, ts.lang),
            ]
        )
    last = len(rows)
    rows.append(
        [t["total"], "", ""]
        + [""] * n
        + [number(v, ts.lang) for v in (ts.time_paid, ts.unpaid, ts.insurance)]
    )
    q0 = 3 + n
    widths = [16, 110, 80] + [15.5] * n + [46, 42, 42]
    cmds: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, 7),
        ("FONT", (0, 0), (-1, 2), FONT_BOLD, 6.5),
        ("FONT", (0, last), (-1, last), FONT_BOLD, 7),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("ALIGN", (0, 0), (-1, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 1),
        ("RIGHTPADDING", (0, 0), (-1, -1), 1),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("SPAN", (0, 0), (0, 1)),
        ("SPAN", (1, 0), (1, 1)),
        ("SPAN", (2, 0), (2, 1)),
        ("SPAN", (3, 0), (q0 - 1, 0)),
        ("SPAN", (q0, 0), (q0 + 2, 0)),
        ("SPAN", (q0, 1), (q0, 2)),
        ("SPAN", (q0 + 1, 1), (q0 + 1, 2)),
        ("SPAN", (q0 + 2, 1), (q0 + 2, 2)),
        ("SPAN", (0, last), (2, last)),
    ]
    for j, c in enumerate(ts.columns):
        if c.rest:
            cmds.append(("BACKGROUND", (3 + j, 1), (3 + j, last), GREY))
    for i, r in enumerate(ts.rows):
        for j, mark in enumerate(r.marks):
            if mark:
                cmds.append(("BACKGROUND", (3 + j, 3 + i), (3 + j, 3 + i), MARK_COLOURS[mark]))
    return Table(rows, colWidths=widths, repeatRows=3, style=TableStyle(cmds))


def _overtime(ts: Timesheet) -> list[Any]:
    """The approved-overtime section below the form (nothing when nobody has any)."""
    if not ts.overtime:
        return []
    head_text, body = overtime_table(ts)
    head = style("head", 6.5, bold=True, align=TA_CENTER, leading=7.5)
    name = style("name", 7, leading=8)
    rows: list[list[Any]] = [[Paragraph(escape(x), head) for x in head_text]]
    rows += [[line[0], Paragraph(escape(line[1]), name), *line[2:]] for line in body]
    last = len(rows) - 1
    table = Table(
        rows,
        colWidths=[26, 140] + [80] * 5,
        repeatRows=1,
        hAlign="LEFT",
        style=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 7),
                ("FONT", (0, last), (-1, last), FONT_BOLD, 7),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        ),
    )
    title = Paragraph(escape(ts.text["overtime_title"]), style("ot_title", 8.5, bold=True))
    return [Spacer(1, 3 * mm), KeepTogether([title, Spacer(1, 1.5 * mm), table])] if len(rows) < 40 else [
        Spacer(1, 3 * mm),
        title,
        Spacer(1, 1.5 * mm),
        table,
    ]


def _signatures(ts: Timesheet) -> list[Any]:
    t = ts.text
    sign = style("sign", 8.5, bold=True, align=TA_CENTER)
    hint = style("hint", 7.5, align=TA_CENTER)
    date = Table(
        [["", "", Paragraph(escape(t["place_date"]), hint)]],
        colWidths=["33%", "33%", "34%"],
        style=TableStyle([("FONT", (0, 0), (-1, -1), FONT, 7)]),
    )
    who = ("signer_timekeeper", "signer_head", "signer_approver")
    block = Table(
        [
            [Paragraph(escape(t[w]), sign) for w in who],
            [Paragraph(escape(t["sign_hint"]), hint) for _ in who],
            ["", "", ""],
        ],
        colWidths=["33%", "33%", "34%"],
        rowHeights=[None, None, 16 * mm],
        style=TableStyle([("FONT", (0, 0), (-1, -1), FONT, 7)]),
    )
    return [date, block]


def write(
    report: Mapping[str, Any], header: ReportHeader, lang: str = "vi", *, half: str = "fraction"
) -> bytes:
    """The PDF bytes of the timesheet (byte-identical for the same input: invariant mode)."""
    return write_timesheet(build(report, header, lang, half))


def write_timesheet(ts: Timesheet) -> bytes:
    _fonts()
    t, h = ts.text, ts.header
    month = t["month_line"].format(m=f"{ts.month:02d}", y=ts.year)
    left = style("left", 8.5, bold=True)
    right = style("right", 8.5, bold=True, align=TA_RIGHT)
    small = style("small", 6.5, align=TA_RIGHT)
    top = Table(
        [
            [Paragraph(escape(f"{t['agency']}: {h.agency_name}"), left), Paragraph(escape(t["form"]), right)],
            [
                Paragraph(escape(f"{t['unit']}: {h.unit_name}"), left),
                Paragraph(escape(t["form_basis"]), small),
            ],
            [Paragraph(escape(f"{t['agency_code']}: {h.agency_code}"), left), ""],
        ],
        colWidths=["55%", "45%"],
        style=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 7),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        ),
    )
    legend = style("legend", 7, leading=9)
    flow: list[Any] = [
        top,
        Spacer(1, 2 * mm),
        Paragraph(escape(t["title"]), style("title", 14, bold=True, align=TA_CENTER, leading=17)),
        Paragraph(escape(month), style("month", 9, align=TA_CENTER)),
        Spacer(1, 3 * mm),
        _table(ts),
        *_overtime(ts),
        Spacer(1, 3 * mm),
        KeepTogether(
            [
                Paragraph(
                    "<b>"
                    + escape(t["legend"])
                    + ":</b> "
                    + " · ".join(f"<b>{escape(s)}</b> {escape(m)}" for s, m in ts.legend),
                    legend,
                ),
                Spacer(1, 3 * mm),
                *_signatures(ts),
            ]
        ),
    ]
    running = f"{h.agency_name} · {h.unit_name} · {t['title']} · {month}"
    return doc_bytes(flow, t["page"], running, f"{t['title']} {month}")
