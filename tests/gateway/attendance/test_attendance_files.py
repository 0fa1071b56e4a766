"""Punch and leave files: terminal exports (ZKTeco-style XLSX with local times), and a fuzzed
parser that only ever accepts a file or refuses it with row messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.attendance.errors import AttendanceError
from gateway.attendance.punchfile import read_leaves, read_punches


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the row texts matched below (Vietnamese: test_attendance_i18n.py)


def test_zkteco_style_xlsx(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["No.", "AC-No.", "Name", "Time", "Device"])
    ws.append([1, "CB0001", "An", datetime(2026, 3, 2, 7, 58, 12), "MCC-1"])
    ws.append([2, "CB0001", "An", datetime(2026, 3, 2, 17, 5), "MCC-1"])
    f = tmp_path / "zk.xlsx"
    wb.save(f)
    with pytest.raises(AttendanceError) as exc:  # local times without an offset are refused ...
        read_punches(f)
    assert "row 2: time:" in str(exc.value) and "row 3: time:" in str(exc.value)
    got = read_punches(f, assume=timezone(timedelta(hours=7)))  # ... unless the offset is stated
    assert [(p.row, p.staff, p.at, p.terminal) for p in got.punches] == [
        (2, "CB0001", datetime(2026, 3, 2, 0, 58, 12, tzinfo=UTC), "MCC-1"),
        (3, "CB0001", datetime(2026, 3, 2, 10, 5, tzinfo=UTC), "MCC-1"),
    ]


def test_leave_file(tmp_path: Path) -> None:
    f = tmp_path / "leave.csv"
    rows = [
        "mã cán bộ,ký hiệu,từ ngày,đến ngày,nửa ngày,lý do",
        "CB0001,P,2026-03-02,2026-03-03,,phép",
        "CB0002,Ô,2026-03-05,2026-03-04,,ốm",
        "CB0003,X,2026-03-05,2026-03-05,noon,",
    ]
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(AttendanceError) as exc:
        read_leaves(f)
    text = str(exc.value)
    for part in ("row 3: to:", "reversed", "row 4: kind:", "row 4: half:", "row 4: reason: empty"):
        assert part in text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(max_size=300).map(lambda s: ("staff,time,terminal\n" + s).encode()))
def test_fuzzed_punch_file_is_accepted_or_refused(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "fuzz.csv"
    f.write_bytes(data)
    try:
        parsed = read_punches(f)
    except AttendanceError:
        return
    for p in parsed.punches:  # whatever was accepted is well formed
        assert p.staff and not any(c.isspace() for c in p.staff) and p.at.tzinfo is not None
