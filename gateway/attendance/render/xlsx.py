"""The timesheet as an XLSX workbook formatted to print like the paper Mẫu C01-HD.

Sheet 1 is the form: A4 landscape, fit to one page wide, the three table-header rows repeated on
every printed page, borders, frozen panes below the header and right of column C, rest-day
columns shaded, days with a missing punch / unexplained absence highlighted (screen only: the
printed text is the form's). Sheet 2 (optional) lists every person-day: in, out, late, early.

Speed: openpyxl builds everything that is not a body row (styles, page setup, print titles,
merged header cells, legend, signature block). The body rows (10,000 people × 37 cells, or
310,000 person-days) are written as SpreadsheetML ``<row>`` elements by ``_Rows`` and spliced into
the saved sheet's ``<sheetData>`` where they belong: openpyxl spends ~20 µs per cell, far too
slow for the 5 s budget of a 10,000-person month; the splice costs ~1 µs per cell. The body cells
use the style ids openpyxl registered for the prototype cells, inline strings and plain numbers.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell import Cell  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from ..header import ReportHeader
from .labels import FLAGS
from .timesheet import Timesheet, build, overtime_table

FONT = "Times New Roman"  # the font of Vietnamese administrative documents; has every Vietnamese letter
HEADER_ROWS = (8, 10)  # the table header: printed again on every page
FIRST_DATA_ROW = 11
PAPER_A4 = 9  # ECMA-376 paperSize code
DETAILS_MAX_ROWS = 1000  # default: the details sheet for up to this many timesheet rows
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0
_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})  # a bare CR would read as LF


class _Styles:
    """Prepared cells: the header and footer cells copy their style; body cells use their style id."""

    def __init__(self, ws: Any) -> None:
        thin = Side(style="thin", color="000000")
        box = Border(left=thin, right=thin, top=thin, bottom=thin)
        centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
        middle = Alignment(horizontal="center", vertical="center")
        left = Alignment(horizontal="left", vertical="center")
        grey = PatternFill("solid", fgColor="D9D9D9")
        self.ws = ws
        self._proto: dict[str, Any] = {}
        add = self._add
        add("text", Font(name=FONT, size=10), None, None)
        add("bold", Font(name=FONT, size=10, bold=True), None, None)
        add("title", Font(name=FONT, size=14, bold=True), None, Alignment(horizontal="center"))
        add("subtitle", Font(name=FONT, size=11, italic=True), None, Alignment(horizontal="center"))
        add("right", Font(name=FONT, size=10, bold=True), None, Alignment(horizontal="right"))
        add("rightsmall", Font(name=FONT, size=8, italic=True), None, Alignment(horizontal="right"))
        add("sign", Font(name=FONT, size=10, bold=True), None, Alignment(horizontal="center"))
        add("hint", Font(name=FONT, size=9, italic=True), None, Alignment(horizontal="center"))
        add("head", Font(name=FONT, size=9, bold=True), box, centre)
        add("head_rest", Font(name=FONT, size=9, bold=True), box, centre, grey)
        add("name", Font(name=FONT, size=10), box, left)
        add("cell", Font(name=FONT, size=10), box, middle)
        add("rest", Font(name=FONT, size=10), box, middle, grey)
        add("missing", Font(name=FONT, size=10), box, middle, PatternFill("solid", fgColor="FFD966"))
        add("absent", Font(name=FONT, size=10), box, middle, PatternFill("solid", fgColor="F4B183"))
        add("total", Font(name=FONT, size=10, bold=True), box, centre)
        self.ids = {k: self._cell(k).style_id for k in self._proto}

    def _add(self, key: str, font: Any, border: Any, align: Any, fill: Any = None) -> None:
        c = Cell(self.ws)
        c.font = font
        if border is not None:
            c.border = border
        if align is not None:
            c.alignment = align
        if fill is not None:
            c.fill = fill
        self._proto[key] = c

    def _cell(self, key: str) -> Any:
        return self._proto[key]

    def put(self, row: int, col: int, value: Any, style: str) -> None:
        c = self.ws.cell(row=row, column=col, value=value)
        c._style = self._proto[style]._style.__copy__()


class _Rows:
    """SpreadsheetML ``<row>`` elements built as text (see the module docstring), from an iterable
    of rows that is only walked while the sheet is written into the zip (:meth:`chunks`): the XML
    of the 310,000-row details sheet is never whole in memory (built whole, then joined and
    encoded, it took ~1.2 GB)."""

    CHUNK = 2000  # rows encoded and written at a time
    ZIP64_CELLS = 1_000_000  # more cells than this may pass 2 GiB unzipped (a cell is < 1 kB): Zip64

    def __init__(
        self, first_row: int, n_cols: int, rows: Iterable[Iterable[tuple[Any, int]]], n_rows: int
    ) -> None:
        self.first = first_row
        self.letters = [get_column_letter(i) for i in range(1, n_cols + 1)]
        self.rows = rows
        self.zip64 = n_rows * n_cols > self.ZIP64_CELLS
        # A text cell's XML after its reference, per (text, style id): the day symbols repeat.
        self._tails: dict[tuple[str, int], str] = {}

    def _tail(self, value: str, sid: int) -> str:
        key = (value, sid)
        tail = self._tails.get(key)
        if tail is None:
            text = _ILLEGAL.sub("", value).translate(_ESC)
            tail = f'" s="{sid}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            if len(self._tails) < 100_000:
                self._tails[key] = tail
        return tail

    def _row(self, row: int, cells: Iterable[tuple[Any, int]]) -> str:
        """One row of (value, style id); a value of None writes a styled empty cell."""
        r = str(row)
        out = [f'<row r="{r}">']
        tail = self._tail
        for letter, (value, sid) in zip(self.letters, cells, strict=False):
            if value is None or value == "":
                out.append(f'<c r="{letter}{r}" s="{sid}"/>')
            elif type(value) is str:
                out.append(f'<c r="{letter}{r}{tail(value, sid)}')
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(f'<c r="{letter}{r}" s="{sid}"><v>{value!r}</v></c>')
            else:
                out.append(f'<c r="{letter}{r}{tail(str(value), sid)}')
        out.append("</row>")
        return "".join(out)

    def chunks(self) -> Iterator[bytes]:
        part: list[str] = []
        for n, cells in enumerate(self.rows, start=self.first):
            part.append(self._row(n, cells))
            if len(part) == self.CHUNK:
                yield "".join(part).encode("utf-8")
                part.clear()
        if part:
            yield "".join(part).encode("utf-8")


def _num(v: float) -> float | int | None:
    if v == 0:
        return None
    return int(v) if v == int(v) else v


def _form_sheet(wb: Any, ts: Timesheet) -> tuple[Any, _Rows]:
    t = ts.text
    n_days = len(ts.columns)
    last_col = 3 + n_days + 3
    ws = wb.active
    ws.title = "Timesheet" if ts.lang == "en" else "Bảng chấm công"
    st = _Styles(ws)
    ids = st.ids
    put = st.put
    merge = ws.merge_cells
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 24
    ws.column_dimensions["C"].width = 20
    for j in range(n_days):
        ws.column_dimensions[get_column_letter(4 + j)].width = 4.3
    for j in range(3):
        ws.column_dimensions[get_column_letter(4 + n_days + j)].width = 9
    ps = ws.page_setup
    ps.orientation = "landscape"
    ps.paperSize = PAPER_A4
    ps.fitToWidth = 1
    ps.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    ws.print_title_rows = f"{HEADER_ROWS[0]}:{HEADER_ROWS[1]}"
    ws.oddFooter.center.text = "&P / &N"
    ws.freeze_panes = f"D{FIRST_DATA_ROW}"
    h = ts.header
    right_col = last_col - 12
    lc = get_column_letter(last_col)
    rc = get_column_letter(right_col)
    put(1, 1, f"{t['agency']}: {h.agency_name}", "bold")
    put(1, right_col, t["form"], "right")
    merge(f"{rc}1:{lc}1")
    put(2, 1, f"{t['unit']}: {h.unit_name}", "bold")
    put(2, right_col, t["form_basis"], "rightsmall")
    merge(f"{rc}2:{lc}2")
    put(3, 1, f"{t['agency_code']}: {h.agency_code}", "bold")
    put(5, 1, t["title"], "title")
    merge(f"A5:{lc}5")
    put(6, 1, t["month_line"].format(m=f"{ts.month:02d}", y=ts.year), "subtitle")
    merge(f"A6:{lc}6")
    # the table header, rows 8-10 (printed on every page)
    q0 = 4 + n_days
    for c in range(1, last_col + 1):
        for r in (8, 9, 10):
            put(r, c, None, "head")
    put(8, 1, t["stt"], "head")
    put(8, 2, t["name"], "head")
    put(8, 3, t["position"], "head")
    put(8, 4, t["days"], "head")
    put(8, q0, t["quy_ra_cong"], "head")
    for c, x in enumerate(("A", "B", "C"), start=1):
        put(10, c, x, "head")
    for j, col in enumerate(ts.columns):
        style = "head_rest" if col.rest else "head"
        put(9, 4 + j, col.date.day, style)
        put(10, 4 + j, col.weekday, style)
    for j, k in enumerate(("time_paid", "unpaid", "insurance")):
        put(9, q0 + j, t[k], "head")
        merge(f"{get_column_letter(q0 + j)}9:{get_column_letter(q0 + j)}10")
    for col_letter in "ABC":
        merge(f"{col_letter}8:{col_letter}9")
    merge(f"D8:{get_column_letter(3 + n_days)}8")
    merge(f"{get_column_letter(q0)}8:{get_column_letter(q0 + 2)}8")
    ws.row_dimensions[9].height = 54
    # the body (written into the sheet as it is saved)
    day_ids = [ids["rest"] if c.rest else ids["cell"] for c in ts.columns]
    mark_ids = {"missing": ids["missing"], "absent": ids["absent"]}
    name_id, num_id = ids["name"], ids["cell"]

    def body_rows() -> Iterator[list[tuple[Any, int]]]:
        for row in ts.rows:
            cells: list[tuple[Any, int]] = [(row.stt, num_id), (row.name, name_id), (row.position, name_id)]
            cells += [
                (text, mark_ids[mark] if mark else day_ids[j])
                for j, (text, mark) in enumerate(zip(row.cells, row.marks, strict=True))
            ]
            cells += [
                (_num(row.time_paid), num_id),
                (_num(row.unpaid), num_id),
                (_num(row.insurance), num_id),
            ]
            yield cells

    body = _Rows(FIRST_DATA_ROW, last_col, body_rows(), len(ts.rows))
    # the "Cộng" row, legend, signatures: below the body
    r = FIRST_DATA_ROW + len(ts.rows)
    for c in range(1, last_col + 1):
        put(r, c, None, "total" if c <= 3 or c >= q0 else ("rest" if ts.columns[c - 4].rest else "cell"))
    put(r, 1, t["total"], "total")
    merge(f"A{r}:C{r}")
    for j, v in enumerate((ts.time_paid, ts.unpaid, ts.insurance)):
        put(r, q0 + j, _num(v), "total")
    if ts.overtime:  # approved overtime: its own small table, each figure over 4 day columns
        r += 2
        put(r, 1, t["overtime_title"], "bold")
        head, lines = overtime_table(ts)
        span = 4
        for n, line in enumerate([head, *lines]):
            r += 1
            kind = "head" if n == 0 else "total" if n == len(lines) else ""
            put(r, 1, line[0], kind or "cell")
            put(r, 2, line[1], kind or "name")
            merge(f"B{r}:C{r}")
            put(r, 3, None, kind or "name")
            for m, text in enumerate(line[2:]):
                c0 = 4 + m * span
                for c in range(c0, c0 + span):
                    put(r, c, text if c == c0 else None, kind or "cell")
                merge(f"{get_column_letter(c0)}{r}:{get_column_letter(c0 + span - 1)}{r}")
        ws.row_dimensions[r - len(lines)].height = 30
    r += 2
    put(r, 1, t["legend"] + ":", "bold")
    per_line = 5
    for i in range(0, len(ts.legend), per_line):
        r += 1
        put(r, 2, "   ".join(f"{s}: {m}" for s, m in ts.legend[i : i + per_line]), "text")
    r += 2
    third = last_col // 3
    put(r, 2 * third + 1, t["place_date"], "hint")
    merge(f"{get_column_letter(2 * third + 1)}{r}:{lc}{r}")
    for key in ("sign", "hint"):
        r += 1
        for i, who in enumerate(("signer_timekeeper", "signer_head", "signer_approver")):
            c0, c1 = 1 + i * third, ((i + 1) * third if i < 2 else last_col)
            put(r, c0, t[who] if key == "sign" else t["sign_hint"], key)
            merge(f"{get_column_letter(c0)}{r}:{get_column_letter(c1)}{r}")
    return ws, body


def _details_sheet(wb: Any, ts: Timesheet, report: Mapping[str, Any]) -> tuple[Any, _Rows]:
    t = ts.text
    ws = wb.create_sheet("Daily details" if ts.lang == "en" else "Chi tiết theo ngày")
    st = _Styles(ws)
    cols = (
        "staff",
        "name",
        "date",
        "weekday",
        "symbol",
        "in",
        "out",
        "worked_min",
        "late_min",
        "early_min",
        "value",
        "leave",
        "flags",
    )
    widths = (12, 24, 11, 5, 7, 7, 9, 9, 9, 9, 6, 8, 24)
    for i, (c, w) in enumerate(zip(cols, widths, strict=True), start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
        st.put(1, i, t[c], "head")
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = PAPER_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddFooter.center.text = "&P / &N"

    def body_rows() -> Iterator[tuple[tuple[Any, int], ...]]:
        flag_names = FLAGS[ts.lang]
        wd = {c.date.isoformat(): c.weekday for c in ts.columns}
        s = st.ids["cell"]
        n = st.ids["name"]
        for r, person in zip(ts.rows, report["staff"], strict=True):
            for key, day in sorted((person.get("days") or {}).items()):
                leave = day.get("leave")
                yield (
                    (
                        (r.staff, n),
                        (r.name, n),
                        (key, s),
                        (wd.get(key, ""), s),
                        (day.get("symbol"), s),
                        (day.get("in"), s),
                        (day.get("out"), s),
                        (day.get("worked_min"), s),
                        (day.get("late_min") or None, s),
                        (day.get("early_min") or None, s),
                        (day.get("value"), s),
                        (f"{leave['kind']} {leave['value']:g}" if leave else None, s),
                        (", ".join(flag_names.get(f, f) for f in day.get("flags") or ()), n),
                    )
                )

    n_days = sum(len(p.get("days") or ()) for p in report["staff"])
    body = _Rows(2, len(cols), body_rows(), n_days)
    return ws, body


ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every zip entry's timestamp: the same bytes for the same report
_STAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry stamped :data:`ZIP_TIME`, deflated at level 1 (speed over a few % of size)."""
    entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o600 << 16
    entry._compresslevel = 1  # type: ignore[attr-defined]  # public as compress_level from 3.13
    return entry


def _splice(xlsx: bytes, bodies: dict[int, tuple[int, _Rows]], stamp: str = "") -> bytes:
    """Insert each sheet's body rows into its ``<sheetData>`` before the first row numbered after it,
    streamed into the zip entry chunk by chunk.

    Deterministic: openpyxl writes the save time into ``docProps/core.xml`` and zip entries carry
    the wall clock; both are replaced by ``stamp`` (the report's month) and :data:`ZIP_TIME`, so the
    same report gives byte-identical files."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            m = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", info.filename)
            if m and int(m.group(1)) in bodies:
                first, rows = bodies[int(m.group(1))]
                head, tail = _split_rows(data, first)
                with dst.open(_entry(info.filename), "w", force_zip64=rows.zip64) as f:
                    f.write(head)
                    for chunk in rows.chunks():
                        f.write(chunk)
                    f.write(tail)
                continue
            if info.filename == "docProps/core.xml" and stamp:
                data = _STAMP.sub(rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            dst.writestr(_entry(info.filename), data)
    return out.getvalue()


def _split_rows(sheet: bytes, first: int) -> tuple[bytes, bytes]:
    """The sheet's XML before and after where rows ``first``... go."""
    for m in re.finditer(rb'<row r="(\d+)"', sheet):
        if int(m.group(1)) >= first:
            return sheet[: m.start()], sheet[m.start() :]
    end = sheet.index(b"</sheetData>") if b"</sheetData>" in sheet else -1
    if end < 0:  # openpyxl writes <sheetData/> for an empty sheet
        i = sheet.index(b"<sheetData/>")
        return sheet[:i] + b"<sheetData>", b"</sheetData>" + sheet[i + len(b"<sheetData/>") :]
    return sheet[:end], sheet[end:]


def write(
    report: Mapping[str, Any],
    header: ReportHeader,
    lang: str = "vi",
    *,
    half: str = "fraction",
    details: bool | None = None,
) -> bytes:
    """The XLSX bytes of the timesheet (plus the daily-details sheet when ``details``; None: when
    the sheet has at most ``DETAILS_MAX_ROWS`` rows)."""
    return write_timesheet(build(report, header, lang, half), report, details=details)


def write_timesheet(ts: Timesheet, report: Mapping[str, Any], *, details: bool | None = None) -> bytes:
    if details is None:
        details = len(ts.rows) <= DETAILS_MAX_ROWS
    wb = Workbook()
    _, body = _form_sheet(wb, ts)
    bodies = {1: (FIRST_DATA_ROW, body)}
    if details:
        _, rows = _details_sheet(wb, ts, report)
        bodies[2] = (2, rows)
    stamp = f"{ts.year:04d}-{ts.month:02d}-01T00:00:00Z"
    wb.properties.creator = "cbcc"
    buf = io.BytesIO()
    wb.save(buf)
    return _splice(buf.getvalue(), bodies, stamp)
