"""Approved overtime in the printed timesheet: a section below the form in XLSX, PDF, CSV and HTML
(hours:minutes per kind and the night part); read back from each file."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

import openpyxl  # type: ignore[import-untyped]
from attendance_report_fixture import april_2026, april_header
from pypdf import PdfReader

from gateway.attendance.render import render
from gateway.attendance.render.timesheet import build, hm


def with_overtime() -> dict[str, Any]:
    rep = april_2026()
    # NV001: 150 min on weekdays (30 of them at night), 90 on Sat 18 April; NV002: 45 on 30 April.
    rep["staff"][0]["overtime"] = {"weekday": 150, "weekend": 90, "holiday": 0, "night": 30}
    rep["staff"][1]["overtime"] = {"weekday": 0, "weekend": 0, "holiday": 45, "night": 0}
    return rep


def test_hours_and_minutes() -> None:
    assert (hm(0), hm(5), hm(60), hm(150), hm(1505)) == ("", "0:05", "1:00", "2:30", "25:05")


def test_overtime_rows() -> None:
    ts = build(with_overtime(), april_header())
    assert [(r.stt, r.name, r.weekday, r.weekend, r.holiday, r.night, r.total) for r in ts.overtime] == [
        (1, "Nguyễn Thị Hằng", 150, 90, 0, 30, 240),
        (2, "Trần Văn Đức", 0, 0, 45, 0, 45),
    ]
    assert build(april_2026(), april_header()).overtime == ()  # none: no section


def test_xlsx_section() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(render(with_overtime(), april_header(), "xlsx")))
    ws = wb.worksheets[0]
    cells = [[c.value for c in row] for row in ws.iter_rows()]
    title = next(i for i, r in enumerate(cells) if r[0] == "LÀM THÊM GIỜ ĐÃ DUYỆT (giờ:phút)")
    head, a, b, total = (cells[title + k] for k in (1, 2, 3, 4))
    # figures sit in every 4th column from D (merged over 4 day columns)
    pick = lambda r: [r[0], r[1], *(r[3 + 4 * j] for j in range(5))]  # noqa: E731
    kinds = ["Ngày thường", "Ngày nghỉ hằng tuần", "Ngày lễ, Tết", "Tổng cộng", "Trong đó làm đêm"]
    assert pick(head) == ["STT", "Họ và tên", *kinds]
    assert pick(a) == ["1", "Nguyễn Thị Hằng", "2:30", "1:30", None, "4:00", "0:30"]
    assert pick(b) == ["2", "Trần Văn Đức", None, None, "0:45", "0:45", None]
    assert pick(total) == [None, "Cộng", "2:30", "1:30", "0:45", "4:45", "0:30"]
    # the signature block still follows
    assert any(r[0] == "Người chấm công" for r in cells[title:])
    plain = openpyxl.load_workbook(io.BytesIO(render(april_2026(), april_header(), "xlsx"))).worksheets[0]
    assert not any(c.value == "LÀM THÊM GIỜ ĐÃ DUYỆT (giờ:phút)" for r in plain.iter_rows() for c in r)


def test_pdf_csv_html_sections() -> None:
    rep = with_overtime()
    pdf = render(rep, april_header(), "pdf")
    text = unicodedata.normalize("NFC", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    assert "LÀM THÊM GIỜ ĐÃ DUYỆT" in text and "Trong đó làm đêm" in text
    assert "4:00" in text and "4:45" in text and "0:45" in text
    assert pdf == render(with_overtime(), april_header(), "pdf")
    rows = list(csv.reader(io.StringIO(render(rep, april_header(), "csv").decode("utf-8-sig"))))
    i = rows.index(["LÀM THÊM GIỜ ĐÃ DUYỆT (giờ:phút)"])
    assert rows[i - 1] == [] and rows[i + 2] == ["1", "Nguyễn Thị Hằng", "2:30", "1:30", "", "4:00", "0:30"]
    assert rows[i + 4] == ["", "Cộng", "2:30", "1:30", "0:45", "4:45", "0:30"]
    html = render(rep, april_header(), "html").decode()
    assert "LÀM THÊM GIỜ ĐÃ DUYỆT" in html and "<td>4:45</td>" in html
    en = render(rep, april_header(), "html", "en").decode()
    assert "APPROVED OVERTIME (h:mm)" in en
