"""Every rendered format is byte-identical for the same report, even across a change of the wall
clock (openpyxl writes the save time into docProps/core.xml, and zip entries carry a timestamp)."""

from __future__ import annotations

import io
import time
import zipfile

from attendance_report_fixture import april_2026, april_header

from gateway.attendance.render import render, summary, tables


def test_timesheet_bytes_do_not_depend_on_the_clock() -> None:
    fmts = ("xlsx", "pdf", "csv", "html")
    first = {f: render(april_2026(), april_header(), f) for f in fmts}
    time.sleep(2.1)  # zip timestamps have a 2 s resolution; core.xml has seconds
    for f in fmts:
        assert render(april_2026(), april_header(), f) == first[f], f


def test_xlsx_stamps_are_the_reports_month() -> None:
    data = render(april_2026(), april_header(), "xlsx")
    z = zipfile.ZipFile(io.BytesIO(data))
    core = z.read("docProps/core.xml").decode()
    assert "2026-04-01T00:00:00Z</dcterms:created>" in core
    assert "2026-04-01T00:00:00Z</dcterms:modified>" in core
    assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_summary_xlsx_is_deterministic() -> None:
    table = summary.unit_summary(april_2026(), unit_names={"PHC": "Phòng Hành chính"})
    a = tables.render_table(table, "xlsx")
    time.sleep(2.1)  # a clock-stamped file would differ
    assert a == tables.render_table(table, "xlsx")
