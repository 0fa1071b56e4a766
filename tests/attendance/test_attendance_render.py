"""The attendance reports read back: XLSX (openpyxl), PDF (pypdf text), CSV, HTML; summaries; NFC.

The fixture month (tests/attendance/attendance_report_fixture.py, April 2026) is written by hand; every
expected figure below is counted by hand from its docstring, not produced by running the code:
20 working days (22 weekdays less the holidays of 27 and 30 April), so
- NV001: 18.5 worked + 2 holidays + 1.5 P = 22 time-paid days;
- NV002: 15 worked + 2 holidays = 17 time-paid, KL 1 unpaid, Ô 2 insurance;
- NV003: 0 worked + 2 holidays = 2 time-paid, TS 20 insurance; Cộng 41 / 1 / 22.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import xml.etree.ElementTree as ET
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from attendance_report_fixture import april_2026, april_header, day, synthetic, totals, work
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from gateway.attendance.render import render, summary, tables
from gateway.attendance.render.timesheet import build, quy_ra_cong

# April 2026 starts on a Wednesday; day d is in column 3 + d (D = 1 April).
COL = {d: openpyxl.utils.get_column_letter(3 + d) for d in range(1, 31)}


def nfc(s: str) -> bool:
    return unicodedata.is_normalized("NFC", s)


@pytest.fixture(scope="module")
def xlsx() -> Any:
    return openpyxl.load_workbook(io.BytesIO(render(april_2026(), april_header(), "xlsx")))


def test_xlsx_header_and_print_setup(xlsx: Any) -> None:
    ws = xlsx.worksheets[0]
    assert ws.title == "Bảng chấm công"
    assert ws["A1"].value == "Đơn vị: Sở Nội vụ tỉnh Hải Dương"
    assert ws["A2"].value == "Bộ phận: Phòng Hành chính – Tổng hợp"
    assert ws["A3"].value == "Mã đơn vị QHNS: 1234567"
    assert ws["A5"].value == "BẢNG CHẤM CÔNG"
    assert ws["A6"].value == "Tháng 04 năm 2026"
    merged = {str(r) for r in ws.merged_cells.ranges}
    # 30 days + A, B, C + 3 "quy ra công" columns = AJ
    assert {"A5:AJ5", "A6:AJ6", "A8:A9", "B8:B9", "C8:C9", "D8:AG8", "AH8:AJ8", "AH9:AH10",
            "A14:C14"} <= merged
    assert (ws["A8"].value, ws["B8"].value, ws["C8"].value) == (
        "STT", "Họ và tên", "Ngạch bậc lương hoặc cấp bậc chức vụ")
    assert ws["D8"].value == "Ngày trong tháng" and ws["AH8"].value == "Quy ra công"
    assert (ws["AH9"].value, ws["AI9"].value, ws["AJ9"].value) == (
        "Số công hưởng lương thời gian", "Số công nghỉ không lương", "Số công hưởng BHXH")
    assert [ws[f"{COL[d]}9"].value for d in (1, 30)] == [1, 30]
    assert [ws[f"{COL[d]}10"].value for d in (1, 4, 5, 6)] == ["T4", "T7", "CN", "T2"]
    assert (ws["A10"].value, ws["B10"].value, ws["C10"].value) == ("A", "B", "C")
    ps = ws.page_setup
    assert ps.orientation == "landscape" and int(ps.paperSize) == 9
    assert int(ps.fitToWidth) == 1 and int(ps.fitToHeight) == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws.print_title_rows == "$8:$10"
    assert ws.freeze_panes == "D11"
    assert ws["B11"].font.name == "Times New Roman"
    assert ws["B11"].border.left.style == "thin"


def test_xlsx_body_totals_and_shading(xlsx: Any) -> None:
    ws = xlsx.worksheets[0]
    rows = {ws[f"B{r}"].value: r for r in (11, 12, 13)}
    assert list(rows) == ["Nguyễn Thị Hằng", "Trần Văn Đức", "Lê Quang Vĩnh"]
    hang, duc, vinh = rows.values()
    assert ws[f"C{hang}"].value == "Chuyên viên 01.003 bậc 3"
    assert [ws[f"{COL[d]}{hang}"].value for d in (1, 2, 4, 8, 9, 27, 30)] == [
        "+", "+", None, "P", "½P", "L", "L"]
    assert [ws[f"{COL[d]}{duc}"].value for d in (13, 14, 15, 16, 17, 18)] == [
        "Ô", "Ô", "KL", None, None, None]
    assert ws[f"{COL[1]}{vinh}"].value == "TS"
    assert [ws[f"{c}{hang}"].value for c in ("AH", "AI", "AJ")] == [22, None, None]
    assert [ws[f"{c}{duc}"].value for c in ("AH", "AI", "AJ")] == [17, 1, 2]
    assert [ws[f"{c}{vinh}"].value for c in ("AH", "AI", "AJ")] == [2, None, 20]
    assert ws["A14"].value == "Cộng"
    assert [ws[f"{c}14"].value for c in ("AH", "AI", "AJ")] == [41, 1, 22]
    grey = "00D9D9D9"
    for d in (4, 5, 27, 30):  # Saturday, Sunday, the two holidays
        assert ws[f"{COL[d]}9"].fill.fgColor.rgb == grey, d
        assert ws[f"{COL[d]}{hang}"].fill.fgColor.rgb == grey, d
    assert ws[f"{COL[6]}9"].fill.fill_type is None
    assert ws[f"{COL[16]}{duc}"].fill.fgColor.rgb == "00FFD966"  # missing punch
    assert ws[f"{COL[17]}{duc}"].fill.fgColor.rgb == "00F4B183"  # absent
    values = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(nfc(v) for v in values)
    texts = " ".join(values)
    for needed in ("Ký hiệu chấm công:", "KL: Nghỉ không lương", "Người chấm công", "Phụ trách bộ phận",
                   "Người duyệt", "(Ký, họ tên)", "……, ngày … tháng … năm …"):
        assert needed in texts, needed


def test_xlsx_details_sheet(xlsx: Any) -> None:
    ws = xlsx.worksheets[1]
    assert ws.max_row == 1 + 3 * 30
    rows = list(ws.iter_rows(min_row=1, values_only=True))
    assert rows[0][:7] == ("Mã CBCC", "Họ và tên", "Ngày", "Thứ", "Ký hiệu", "Vào", "Ra")
    by_key = {(r[0], r[2]): r for r in rows[1:]}
    late = by_key[("NV001", "2026-04-02")]
    assert (late[5], late[6], late[8], late[12]) == ("08:12", "17:02", 12, "muộn")
    night = by_key[("NV002", "2026-04-18")]
    assert (night[5], night[6], night[12]) == ("22:01", "+1 05:58", "ngoài ca")
    assert by_key[("NV001", "2026-04-09")][11] == "P 0.5"
    assert ws.print_title_rows == "$1:$1"


def test_xlsx_english_keeps_symbols() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(render(april_2026(), april_header(), "xlsx", "en")))
    ws = wb.worksheets[0]
    assert ws["A5"].value == "ATTENDANCE TIMESHEET"
    assert ws["A1"].value == "Agency: Sở Nội vụ tỉnh Hải Dương"
    assert ws[f"{COL[1]}10"].value == "We"
    assert ws[f"{COL[9]}11"].value == "½P" and ws[f"{COL[13]}12"].value == "Ô"
    assert ws["A14"].value == "Total"


def test_half_day_styles() -> None:
    report = april_2026()
    assert build(report, april_header()).rows[0].cells[8] == "½P"
    assert build(report, april_header(), half="symbol").rows[0].cells[8] == "P"
    report["staff"][0]["days"]["2026-04-10"] = day("+", tin="07:58", tout="11:31", worked=210, value=0.5)
    assert build(report, april_header()).rows[0].cells[9] == "½+"
    assert build(report, april_header(), half="symbol").rows[0].cells[9] == "+"


def pdf_text(data: bytes) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    return reader, [p.extract_text() for p in reader.pages]


def test_pdf_text_fonts_and_determinism() -> None:
    data = render(april_2026(), april_header(), "pdf")
    assert data == render(april_2026(), april_header(), "pdf")  # invariant mode: same bytes
    reader, pages = pdf_text(data)
    assert len(pages) == 1
    text = pages[0]
    assert nfc(text)
    for needed in ("Đơn vị: Sở Nội vụ tỉnh Hải Dương", "Mã đơn vị QHNS: 1234567", "BẢNG CHẤM CÔNG",
                   "Tháng 04 năm 2026", "Nguyễn Thị Hằng", "Trần Văn Đức", "Lê Quang Vĩnh", "Cán sự bậc 2",
                   "½P", "KL", "TS", "Cộng", "Người chấm công", "Phụ trách bộ phận", "Người duyệt",
                   "(Ký, họ tên)", "Ký hiệu chấm công", "LĐ Lao động nghĩa vụ", "Trang 1/1"):
        assert needed in text, needed
    lines = text.split("\n")
    total = lines.index("Cộng")
    assert lines[total + 1:total + 4] == ["41", "1", "22"]
    # the DejaVu subsets are embedded (a FontFile2 stream per font)
    fonts = {}
    for f in reader.pages[0]["/Resources"]["/Font"].values():
        f = f.get_object()
        if "DejaVu" in f["/BaseFont"]:
            fonts[f["/BaseFont"]] = "/FontFile2" in f["/FontDescriptor"]
    assert len(fonts) == 2 and all(fonts.values())


def test_pdf_many_pages_repeat_header_and_number() -> None:
    report = synthetic(120, 1, "2026-03", seed=3)
    header = april_header("2026-03")
    _, pages = pdf_text(render(report, header, "pdf"))
    assert len(pages) >= 3
    for n, text in enumerate(pages, start=1):
        assert "Họ và tên" in text and "Quy ra công" in text  # the table header on every page
        assert f"Trang {n}/{len(pages)}" in text
        if n > 1:
            assert "Sở Nội vụ tỉnh Hải Dương · Phòng Hành chính – Tổng hợp · BẢNG CHẤM CÔNG" in text
    everything = "\n".join(pages)
    for person in report["staff"]:
        assert person["name"] in everything
    assert "Người duyệt" in pages[-1] and "Người duyệt" not in pages[0]


def test_pdf_english() -> None:
    _, pages = pdf_text(render(april_2026(), april_header(), "pdf", "en"))
    assert "ATTENDANCE TIMESHEET" in pages[0] and "Page 1/1" in pages[0] and "Approved by" in pages[0]
    assert "Nguyễn Thị Hằng" in pages[0]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def test_csv_contents_and_formula_guard() -> None:
    report = april_2026()
    report["staff"][0]["name"] = "=HYPERLINK(\"http://x\")"
    header = april_header()
    header.positions["NV002"] = "-2+3"
    rows = read_csv(render(report, header, "csv"))
    assert rows[0][:5] == [
        "STT", "Mã CBCC", "Họ và tên", "Ngạch bậc lương hoặc cấp bậc chức vụ", "Mã bộ phận"]
    assert rows[0][5:35] == [str(d) for d in range(1, 31)]
    assert rows[0][35:] == ["Số công hưởng lương thời gian", "Số công nghỉ không lương", "Số công hưởng BHXH"]
    assert rows[1][2] == "'=HYPERLINK(\"http://x\")"
    assert rows[2][3] == "'-2+3"
    assert rows[1][5] == "+"  # the form's symbol stays as it is
    assert rows[1][4 + 9] == "½P"
    assert rows[1][35:] == ["22", "0", "0"]
    assert rows[2][35:] == ["17", "1", "2"]
    assert rows[4][2] == "Cộng" and rows[4][35:] == ["41", "1", "22"]
    assert len(rows) == 5


def test_html_contents_escaping_and_nfc() -> None:
    report = april_2026()
    report["staff"][1]["name"] = unicodedata.normalize("NFD", "Trần Văn Đức <script>")
    page = render(report, april_header(), "html").decode("utf-8")
    assert nfc(page)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="vi">' in page
    assert "Trần Văn Đức &lt;script&gt;" in page and "<script>" not in page
    for needed in ("BẢNG CHẤM CÔNG", "Tháng 04 năm 2026", "½P", "Người duyệt", "@page { size: A4 landscape"):
        assert needed in page
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained: nothing fetched
    en = render(april_2026(), april_header(), "html", "en").decode("utf-8")
    assert '<html lang="en">' in en and "ATTENDANCE TIMESHEET" in en and ">Ô<" in en


@pytest.mark.parametrize("args, message", [
    (("docx", "vi"), "format: 'docx'"),
    (("csv", "fr"), "lang: 'fr'"),
])
def test_bad_format_or_language(args: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(april_2026(), april_header(), *args)


def test_bad_report() -> None:
    with pytest.raises(ValueError, match=r"header\.month"):
        render(april_2026(), april_header("2026-05"), "csv")
    report = april_2026()
    report["staff"][0]["totals"]["leave"]["XX"] = 1.0
    with pytest.raises(ValueError, match=r"report.staff\[0\] \(NV001\): totals.leave: unknown leave kind"):
        render(report, april_header(), "xlsx")
    with pytest.raises(ValueError, match=r"report\.month"):
        render({"month": "2026-13", "staff": []}, april_header(), "pdf")


def test_empty_report_renders() -> None:
    empty = {"month": "2026-04", "staff": []}
    wb = openpyxl.load_workbook(io.BytesIO(render(empty, april_header(), "xlsx")))
    assert wb.worksheets[0]["A11"].value == "Cộng"
    _, pages = pdf_text(render(empty, april_header(), "pdf"))
    assert "BẢNG CHẤM CÔNG" in pages[0]


def test_unit_summary() -> None:
    table = summary.unit_summary(april_2026(), unit_names={"PHC": "Phòng Hành chính"})
    assert table.rows == (("PHC", "Phòng Hành chính", 3, 60, 33.5, 24.5, 1, 1.7, 1, 1, 12, 0, 0),)
    assert table.total is not None and table.total[2:] == (3, 60, 33.5, 24.5, 1, 1.7, 1, 1, 12, 0, 0)
    svg = ET.fromstring(table.svg or "")
    bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title")
            is not None]
    assert [r.find("{http://www.w3.org/2000/svg}title").text for r in bars] == ["PHC: 12", "PHC: 0"]


def test_daily_and_history() -> None:
    d = summary.daily(april_2026(), "2026-04-16")
    assert d.title == "BÁO CÁO CHẤM CÔNG NGÀY T5 16/04/2026"
    assert d.subtitle == ("Có mặt: 1 · Đi muộn: 0 · Về sớm: 0 · Số ngày vắng không lý do: 0 · Nghỉ: 1 · "
                          "Thiếu lượt chấm: 1",)
    assert [r[1] for r in d.rows] == ["NV001", "NV002", "NV003"]
    assert d.rows[1][4:6] == ("07:50", None) and d.rows[1][10] == "thiếu lượt chấm"
    with pytest.raises(ValueError, match="not in the report's month"):
        summary.daily(april_2026(), "2026-05-01")
    h = summary.history([april_2026()], "NV002")
    assert h.subtitle == ("Trần Văn Đức (NV002)",)
    assert len(h.rows) == 31
    assert h.rows[17][:6] == ("2026-04-18", "T7", "PHC", "", "22:01", "+1 05:58")
    assert h.rows[-1][0] == "Cộng 2026-04" and h.rows[-1][9] == 15.0 and h.rows[-1][10] == "KL 1, Ô 2"
    with pytest.raises(ValueError, match="NV999"):
        summary.history([april_2026()], "NV999")


@pytest.mark.parametrize("fmt", ["xlsx", "pdf", "csv", "html"])
def test_summary_tables_in_every_format(fmt: str) -> None:
    table = summary.unit_summary(april_2026())
    data = tables.render_table(table, fmt)
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
        assert ws["A1"].value == "TỔNG HỢP CHUYÊN CẦN THEO BỘ PHẬN" and ws["A4"].value == "PHC"
        assert ws.print_title_rows == "$3:$3"
    elif fmt == "pdf":
        text = pdf_text(data)[1][0]
        assert "TỔNG HỢP CHUYÊN CẦN THEO BỘ PHẬN" in text and "1,7" in text
    elif fmt == "csv":
        rows = read_csv(data)
        assert rows[1][:4] == ["PHC", "", "3", "60"] and rows[2][0] == "Cộng"
    else:
        page = data.decode()
        assert "<svg" in page and "TỔNG HỢP CHUYÊN CẦN THEO BỘ PHẬN" in page


SYMBOLS = st.sampled_from(["+", "P", "Ô", "KL", "TS", "L", "", "CT", "H"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(SYMBOLS, min_size=30, max_size=30), min_size=1, max_size=6),
       st.permutations(list(range(6))))
def test_property_csv_matches_model_and_totals(grid: list[list[str]], order: list[int]) -> None:
    """Any symbols: the CSV cells are the model's, the Cộng row is the sum of the rows, and the
    figures do not depend on the order the people come in."""
    staff = []
    for i, symbols in enumerate(grid):
        days = {}
        for d, s in enumerate(symbols, start=1):
            key = f"2026-04-{d:02d}"
            if s == "+":
                days[key] = work()
            elif s in ("", "L"):
                days[key] = day(s)
            else:
                days[key] = day(s, leave=(s, 1.0))
        staff.append({"staff": f"S{i}", "name": f"Người {i}", "unit": "U", "days": days,
                      "totals": totals(days, {"2026-04-27"})})
    report = {"month": "2026-04", "staff": staff}
    rows = read_csv(render(report, april_header(), "csv"))
    assert len(rows) == len(grid) + 2
    for symbols, row in zip(grid, rows[1:-1], strict=True):
        assert row[5:35] == symbols
    per_row = [quy_ra_cong(p["totals"]) for p in staff]
    expect = [sum(x[k] for x in per_row) for k in range(3)]
    assert [float(v) for v in rows[-1][35:]] == pytest.approx(expect)
    shuffled = {"month": "2026-04", "staff": [staff[i] for i in order if i < len(staff)]}
    ts, ts2 = build(report, april_header()), build(shuffled, april_header())
    assert (ts.time_paid, ts.unpaid, ts.insurance) == (ts2.time_paid, ts2.unpaid, ts2.insurance)
    assert [c.rest for c in ts.columns] == [c.rest for c in ts2.columns]


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_property_xlsx_body_text_round_trips(name: str) -> None:
    """Whatever a name holds (markup, ampersands, control characters, spaces), the spliced body rows
    stay well-formed XML and read back as the name, NFC, without the characters XML 1.0 forbids."""
    report = april_2026()
    report["staff"][0]["name"] = name
    data = render(report, april_header(), "xlsx", details=False)
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    expected = "".join(ch for ch in unicodedata.normalize("NFC", name)
                       if not (ord(ch) < 32 and ch not in "\t\n\r") and ch not in "\ufffe\uffff")
    assert (ws["B11"].value or "") == expected
