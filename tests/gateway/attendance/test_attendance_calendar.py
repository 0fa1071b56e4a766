"""The shipped calendar for 2025 and 2026, against dates written by hand from the announcements
(Labour Code 2019 art. 112; the Government's swap decisions; see gateway/attendance/data)."""

from __future__ import annotations

from datetime import date

from gateway.attendance.calendar import Override, build


def _d(*days: str) -> set[date]:
    return {date.fromisoformat(x) for x in days}


def test_2025() -> None:
    cal = build([2025])
    assert set(cal.holidays) == _d(
        "2025-01-01",  # New Year, Wednesday
        "2025-01-27",
        "2025-01-28",
        "2025-01-29",
        "2025-01-30",
        "2025-01-31",
        "2025-02-01",  # Tết Ất Tỵ
        "2025-04-07",  # Hùng Vương, Monday 10/3 lunar
        "2025-04-30",
        "2025-05-01",
        "2025-09-01",
        "2025-09-02",  # Quốc khánh and the adjacent day
    )
    assert set(cal.dayoffs) == _d("2025-05-02")  # Friday swapped ...
    assert set(cal.workdays) == _d("2025-04-26")  # ... for Saturday 26 April


def test_2026() -> None:
    cal = build([2026])
    assert set(cal.holidays) == _d(
        "2026-01-01",
        "2026-02-16",
        "2026-02-17",
        "2026-02-18",
        "2026-02-19",
        "2026-02-20",  # Tết Bính Ngọ (statutory days)
        "2026-04-26",
        "2026-04-27",  # Hùng Vương on Sunday, observed Monday
        "2026-04-30",
        "2026-05-01",
        "2026-09-01",
        "2026-09-02",
        "2026-11-24",  # Ngày Văn hóa Việt Nam (data, see vn_calendar.toml)
    )
    assert set(cal.dayoffs) == _d("2026-01-02", "2026-08-31")
    assert set(cal.workdays) == _d("2026-01-10", "2026-08-22")
    assert cal.kind(date(2026, 1, 2)) == "dayoff" and cal.kind(date(2026, 1, 10)) == "workday"
    assert cal.kind(date(2026, 3, 2)) == ""


def test_site_overrides_win_and_are_exclusive() -> None:
    cal = build(
        [2026],
        [
            Override(date(2026, 11, 24), "workday"),
            Override(date(2026, 3, 9), "holiday", "Lễ"),
            Override(date(2026, 1, 10), "dayoff", "Không làm bù"),
        ],
    )
    assert cal.kind(date(2026, 11, 24)) == "workday"
    assert cal.kind(date(2026, 3, 9)) == "holiday" and cal.holidays[date(2026, 3, 9)] == "Lễ"
    assert cal.kind(date(2026, 1, 10)) == "dayoff"
    assert date(2026, 11, 24) in build([2026]).holidays  # the cached base is untouched
