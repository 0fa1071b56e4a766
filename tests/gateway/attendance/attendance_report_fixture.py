"""JSON reports of the attendance contract's shape (§5), written out day by day for the renderer tests.

``april_2026()`` is a small hand-made month whose totals the tests check by hand; ``synthetic()``
makes a large one (any number of people) for the benchmark. Both build days the way the contract
says a report looks; they do not run the engine.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from typing import Any

from gateway.attendance.header import ReportHeader

# Vietnam, April 2026: Giỗ Tổ Hùng Vương falls on Sun 26 Apr and is taken on Mon 27 Apr; 30 Apr.
APRIL_HOLIDAYS = {"2026-04-27", "2026-04-30"}


def day(symbol: str = "", *, tin: str | None = None, tout: str | None = None, worked: int = 0,
        late: int = 0, early: int = 0, value: float = 0.0, leave: tuple[str, float] | None = None,
        flags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"symbol": symbol, "in": tin, "out": tout, "worked_min": worked, "late_min": late,
            "early_min": early, "value": value,
            "leave": {"kind": leave[0], "value": leave[1]} if leave else None, "flags": sorted(flags)}


def work(tin: str = "07:55", tout: str = "17:02", late: int = 0, early: int = 0) -> dict[str, Any]:
    flags = (("late",) if late else ()) + (("early",) if early else ())
    return day("+", tin=tin, tout=tout, worked=480 - late - early, late=late, early=early, value=1.0,
               flags=flags)


def person(code: str, name: str, unit: str, month: str, overrides: dict[str, dict[str, Any]],
           holidays: set[str]) -> dict[str, Any]:
    """A Mon–Fri person: worked every working day except ``overrides``; L on ``holidays``."""
    y, m = (int(x) for x in month.split("-"))
    days: dict[str, dict[str, Any]] = {}
    for d in range(1, calendar.monthrange(y, m)[1] + 1):
        date = dt.date(y, m, d)
        key = date.isoformat()
        if key in overrides:
            days[key] = overrides[key]
        elif key in holidays and date.weekday() < 5:
            days[key] = day("L")
        elif date.weekday() >= 5:
            days[key] = day()
        else:
            days[key] = work()
    return {"staff": code, "name": name, "unit": unit, "days": days, "totals": totals(days, holidays)}


def totals(days: dict[str, dict[str, Any]], holidays: set[str]) -> dict[str, Any]:
    leave: dict[str, float] = {}
    for d in days.values():
        if d["leave"]:
            leave[d["leave"]["kind"]] = leave.get(d["leave"]["kind"], 0.0) + d["leave"]["value"]
    return {
        "work_days": sum(d["value"] for d in days.values()),
        "leave": leave,
        "late_count": sum(1 for d in days.values() if d["late_min"] > 0),
        "late_min": sum(d["late_min"] for d in days.values()),
        "early_count": sum(1 for d in days.values() if d["early_min"] > 0),
        "early_min": sum(d["early_min"] for d in days.values()),
        "missing_punch": sum(1 for d in days.values() if "missing_punch" in d["flags"]),
        "holidays": sum(1 for k in holidays if dt.date.fromisoformat(k).weekday() < 5),
    }


def april_2026() -> dict[str, Any]:
    """Three people of one unit, April 2026 (20 working days, holidays 27 and 30 April).

    - NV001 Nguyễn Thị Hằng: 12 min late on 2 Apr, P on 8 Apr, half P (am) on 9 Apr.
    - NV002 Trần Văn Đức: Ô 13–14 Apr, KL 15 Apr, a missing punch on 16 Apr, absent 17 Apr,
      a night punch pair on Sat 18 Apr outside any shift.
    - NV003 Lê Quang Vĩnh: TS every working day.
    """
    m = "2026-04"
    hang = {
        "2026-04-02": work(tin="08:12", late=12),
        "2026-04-08": day("P", leave=("P", 1.0)),
        "2026-04-09": day("P", tin="13:01", tout="17:03", worked=240, value=0.5, leave=("P", 0.5)),
    }
    duc = {
        "2026-04-13": day("Ô", leave=("Ô", 1.0)),
        "2026-04-14": day("Ô", leave=("Ô", 1.0)),
        "2026-04-15": day("KL", leave=("KL", 1.0)),
        "2026-04-16": day("", tin="07:50", flags=("missing_punch",)),
        "2026-04-17": day("", flags=("absent",)),
        "2026-04-18": day("", tin="22:01", tout="+1 05:58", flags=("outside_shift",)),
    }
    vinh = {}
    for d in range(1, 31):
        date = dt.date(2026, 4, d)
        if date.weekday() < 5 and date.isoformat() not in APRIL_HOLIDAYS:
            vinh[date.isoformat()] = day("TS", leave=("TS", 1.0))
    return {"month": m, "staff": [
        person("NV001", "Nguyễn Thị Hằng", "PHC", m, hang, APRIL_HOLIDAYS),
        person("NV002", "Trần Văn Đức", "PHC", m, duc, APRIL_HOLIDAYS),
        person("NV003", "Lê Quang Vĩnh", "PHC", m, vinh, APRIL_HOLIDAYS),
    ]}


def april_header(month: str = "2026-04") -> ReportHeader:
    return ReportHeader(
        agency_name="Sở Nội vụ tỉnh Hải Dương", agency_code="1234567", unit_code="PHC",
        unit_name="Phòng Hành chính – Tổng hợp", month=month,
        positions={"NV001": "Chuyên viên 01.003 bậc 3", "NV002": "Cán sự bậc 2", "NV003": "Trưởng phòng"},
    )


SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Quang", "Ngọc")
GIVEN = ("Hằng", "Đức", "Vĩnh", "Thảo", "Hưng", "Phương", "Tuấn", "Yến", "Dũng", "Nguyệt", "Khải")
LEAVE_KINDS = ("P", "Ô", "KL", "H", "CT", "Cô")


def synthetic(n_staff: int, n_units: int, month: str = "2026-03", seed: int = 1) -> dict[str, Any]:
    """A large month: mostly worked days with late/early minutes, some leave, absences, missing punches."""
    rnd = random.Random(seed)
    staff = []
    for i in range(n_staff):
        overrides: dict[str, dict[str, Any]] = {}
        y, m = (int(x) for x in month.split("-"))
        for d in range(1, calendar.monthrange(y, m)[1] + 1):
            date = dt.date(y, m, d)
            if date.weekday() >= 5:
                continue
            r = rnd.random()
            key = date.isoformat()
            if r < 0.03:
                overrides[key] = day(k := rnd.choice(LEAVE_KINDS), leave=(k, 1.0))
            elif r < 0.04:
                overrides[key] = day("P", tin="13:02", tout="17:01", worked=240, value=0.5,
                                     leave=("P", 0.5))
            elif r < 0.05:
                overrides[key] = day("", flags=("absent",))
            elif r < 0.06:
                overrides[key] = day("", tin="07:58", flags=("missing_punch",))
            elif r < 0.15:
                overrides[key] = work(tin=f"08:{rnd.randrange(1, 40):02d}", late=rnd.randrange(1, 40))
            elif r < 0.2:
                overrides[key] = work(tout=f"16:{rnd.randrange(20, 59):02d}", early=rnd.randrange(1, 40))
        name = f"{rnd.choice(SURNAMES)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
        staff.append(person(f"CB{i:06d}", name, f"U{i % n_units:02d}", month, overrides, set()))
    return {"month": month, "staff": staff}
