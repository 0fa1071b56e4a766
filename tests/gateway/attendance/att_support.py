"""Building engine inputs by hand for the attendance tests (times are written as local civil times)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from gateway.attendance import calendar, engine

VN = timezone(timedelta(hours=7))
HC = engine.Shift(
    "hc", "Hành chính", engine.parse_sessions("07:30-11:30,13:00-17:00"), engine.parse_days("Mon-Fri")
)
NIGHT = engine.Shift("dem", "Ca đêm", engine.parse_sessions("22:00-06:00"), engine.parse_days("Mon-Sun"))


def us(local: str) -> int:
    """'2026-03-02 07:58:30' (Asia/Ho_Chi_Minh) -> UTC microseconds."""
    t = datetime.fromisoformat(local).replace(tzinfo=VN)
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def month_input(
    year: int,
    month: int,
    *,
    punches: dict[str, list[str]] | None = None,
    shifts: tuple[engine.Shift, ...] = (HC,),
    assignments: list[engine.Assignment] | None = None,
    leaves: list[engine.Leave] | None = None,
    spans: dict[str, list[engine.Span]] | None = None,
    names: dict[str, str] | None = None,
    overrides: list[calendar.Override] | None = None,
    corrected: dict[str, list[str]] | None = None,
    voids: dict[str, list[str]] | None = None,
) -> engine.MonthInput:
    names = names or {"A1": "Nguyễn Văn An"}
    p: dict[str, list[int]] = {}
    for code, times in (punches or {}).items():
        p.setdefault(code, []).extend(us(t) for t in times)
    for code, times in (corrected or {}).items():
        p.setdefault(code, []).extend(us(t) for t in times)
    v = {code: {engine.local_minute(us(t)) for t in times} for code, times in (voids or {}).items()}
    lv: dict[str, list[engine.Leave]] = {}
    for x in leaves or []:
        lv.setdefault(x.staff, []).append(x)
    return engine.MonthInput(
        year,
        month,
        calendar.build([year - 1, year], overrides or []),
        {s.id: s for s in shifts},
        assignments
        if assignments is not None
        else [engine.Assignment("hc", date(2020, 1, 1), None, unit="VP")],
        names,
        spans if spans is not None else {c: [engine.Span(date(1900, 1, 1), "VP")] for c in names},
        p,
        v,
        lv,
        {code: {us(t) for t in times} for code, times in (corrected or {}).items()},
    )


def row(report: dict[str, Any], code: str = "A1", unit: str | None = None) -> dict[str, Any]:
    rows = [r for r in report["staff"] if r["staff"] == code and (unit is None or r["unit"] == unit)]
    assert len(rows) == 1, rows
    return rows[0]


def day(report: dict[str, Any], d: str, code: str = "A1") -> dict[str, Any]:
    return row(report, code)["days"][d]  # type: ignore[no-any-return]
