"""The rule engine: punches, schedules, calendar, leave and unit history in; the contract's monthly
report out (``../shared/spec/attendance-v1.md`` §4-§5). Pure: no database, no clock, no I/O.

Everything is integers until the report is written: times are local minutes since 1970-01-01
Asia/Ho_Chi_Minh (UTC+7, no DST), exact punch times are UTC microseconds, day values are
``Fraction`` (a 3-session shift gives exact thirds), turned into floats only in the output.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from gateway.attendance.calendar import Calendar

TZ_OFFSET_S = 7 * 3600
DUPLICATE_US = 120_000_000  # rule 4: < 120 s after the previous kept punch
BEFORE_MIN = 120  # rule 3: window opens 2 h before the first session
AFTER_MIN = 240  # ... and closes 4 h after the last session
EPOCH_ORD = date(1970, 1, 1).toordinal()
LEAVE_KINDS = ("Ô", "Cô", "TS", "T", "P", "H", "NB", "KL", "N", "LĐ", "CT")
FLAG_ORDER = ("missing_punch", "absent", "late", "early", "corrected", "outside_shift")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Shift:
    """``sessions``: (start, end) minutes from the start date's midnight; end > start; only the last
    session may end after 24:00 (a night shift)."""

    id: str
    name: str
    sessions: tuple[tuple[int, int], ...]
    days: frozenset[int]  # 0 = Monday
    grace_in: int = 0
    grace_out: int = 0

    @property
    def weekday_shift(self) -> bool:
        return any(d < 5 for d in self.days)


@dataclass(frozen=True)
class Assignment:
    shift: str
    start: date
    end: date | None
    staff: str | None = None  # exactly one of staff / unit
    unit: str | None = None
    seq: int = 0  # insertion order: breaks ties between equal starts


@dataclass(frozen=True)
class Leave:
    staff: str
    kind: str
    start: date
    end: date
    half: str | None = None  # None | "am" | "pm"


@dataclass(frozen=True)
class Span:
    """From ``start`` on, the person belongs to ``unit`` (``agency`` is the agency code)."""

    start: date
    unit: str
    agency: str = ""

    def matches(self, unit: str) -> bool:
        return unit in (self.unit, self.agency)


@dataclass
class MonthInput:
    year: int
    month: int
    calendar: Calendar
    shifts: dict[str, Shift]
    assignments: list[Assignment]
    names: dict[str, str]  # staff code -> full name (known staff only)
    spans: dict[str, list[Span]]  # staff code -> spans sorted by start
    punches: dict[str, list[tuple[int, bool]]]  # staff -> (UTC microseconds, added by correction)
    voids: dict[str, set[int]] = field(default_factory=dict)  # staff -> local minutes voided
    leaves: dict[str, list[Leave]] = field(default_factory=dict)


# ---- parsing helpers shared by the CLI, the API and the store -------------------------------------


def parse_hhmm(text: str) -> int:
    h, sep, m = text.strip().partition(":")
    if not sep or len(h) != 2 or len(m) != 2 or not (h + m).isdigit():
        raise ValueError(f"{text!r} is not HH:MM")
    hh, mm = int(h), int(m)
    if hh > 23 or mm > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return hh * 60 + mm


def parse_sessions(text: str) -> tuple[tuple[int, int], ...]:
    """``"07:30-11:30,13:00-17:00"``; a session ending at or before its start crosses midnight,
    allowed only for the last one; sessions must not overlap and must be in order."""
    out: list[tuple[int, int]] = []
    parts = [p.strip() for p in text.split(",")]
    for i, part in enumerate(parts):
        a, sep, b = part.partition("-")
        if not sep:
            raise ValueError(f"session {part!r} is not HH:MM-HH:MM")
        s, e = parse_hhmm(a), parse_hhmm(b)
        if e <= s:
            if i != len(parts) - 1:
                raise ValueError(f"session {part!r} crosses midnight but is not the last session")
            e += 1440
        if out and s < out[-1][1]:
            raise ValueError(f"session {part!r} overlaps or precedes session {parts[i - 1]!r}")
        out.append((s, e))
    if out and out[-1][1] - out[0][0] > 1440:
        raise ValueError("the sessions span more than 24 hours")
    return tuple(out)


def parse_days(text: str) -> frozenset[int]:
    """``Mon-Fri``, ``Mon-Sun``, ``Mon,Wed,Fri``, ``Sat-Mon`` (wraps), combinations of those."""
    days: set[int] = set()
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        try:
            i = WEEKDAYS.index(a.strip().capitalize())
            j = WEEKDAYS.index(b.strip().capitalize()) if sep else i
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a day or range of Mon..Sun") from None
        while True:
            days.add(i)
            if i == j:
                break
            i = (i + 1) % 7
    return frozenset(days)


def format_sessions(sessions: Iterable[tuple[int, int]]) -> str:
    return ",".join(f"{s // 60:02d}:{s % 60:02d}-{e % 1440 // 60:02d}:{e % 60:02d}" for s, e in sessions)


def format_days(days: Iterable[int]) -> str:
    return ",".join(WEEKDAYS[d] for d in sorted(days))


# ---- the month --------------------------------------------------------------------------------


def month_dates(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return [first + timedelta(n) for n in range((nxt - first).days)]


def local_minute(us: int) -> int:
    return (us // 1_000_000 + TZ_OFFSET_S) // 60


def day_base(d: date) -> int:
    return (d.toordinal() - EPOCH_ORD) * 1440


def fmt_time(minute: int, base: int) -> str:
    """``HH:MM`` on the reported date, ``+1 HH:MM`` on the next one (``-1`` the day before)."""
    days, m = divmod(minute - base, 1440)
    hhmm = f"{m // 60:02d}:{m % 60:02d}"
    return hhmm if days == 0 else f"{days:+d} {hhmm}"


def unit_on(spans: Sequence[Span], d: date) -> Span | None:
    i = bisect.bisect_right([s.start for s in spans], d) - 1
    return spans[i] if i >= 0 else None


class _Resolver:
    """Which shift a person works on a date: by staff beats by unit; a later start beats an
    earlier one; among equal starts the later entry wins."""

    def __init__(self, assignments: Sequence[Assignment]) -> None:
        self.by_staff: dict[str, list[Assignment]] = {}
        self.by_unit: dict[str, list[Assignment]] = {}
        for a in sorted(assignments, key=lambda a: (a.start, a.seq), reverse=True):
            if a.staff is not None:
                self.by_staff.setdefault(a.staff, []).append(a)
            elif a.unit is not None:
                self.by_unit.setdefault(a.unit, []).append(a)

    def shift(self, staff: str, span: Span | None, d: date) -> str | None:
        for a in self.by_staff.get(staff, ()):
            if a.start <= d and (a.end is None or d <= a.end):
                return a.shift
        if span is None:
            return None
        for key in (span.unit, span.agency) if span.agency != span.unit else (span.unit,):
            for a in self.by_unit.get(key, ()):
                if a.start <= d and (a.end is None or d <= a.end):
                    return a.shift
        return None

    def has_any(self, staff: str) -> bool:
        return staff in self.by_staff


@dataclass(frozen=True)
class _Occ:
    day: date
    shift: Shift
    base: int  # local minute of the start date's midnight
    lo: int  # window, inclusive, local minutes
    hi: int


def occurs(shift: Shift, d: date, cal: Calendar) -> bool:
    """Rule 3: on its DAYS except public holidays and days off; compensatory working days add an
    occurrence for shifts that work any of Mon-Fri."""
    kind = cal.kind(d)
    if kind in ("holiday", "dayoff"):
        return False
    return d.weekday() in shift.days or (kind == "workday" and shift.weekday_shift)


def _dedup(times: list[tuple[int, bool]]) -> list[tuple[int, bool]]:
    """Rule 4 on exact times (sorted input): drop a punch < 120 s after the previous kept one."""
    kept: list[tuple[int, bool]] = []
    last = -(1 << 62)
    for t in times:
        if t[0] - last >= DUPLICATE_US:
            kept.append(t)
            last = t[0]
    return kept


def _overlap(a: int, b: int, s: int, e: int) -> int:
    return max(0, min(b, e) - max(a, s))


def _blank(symbol: str = "") -> dict[str, Any]:
    return {"symbol": symbol, "in": None, "out": None, "worked_min": 0, "late_min": 0, "early_min": 0,
            "value": 0.0, "leave": None, "flags": []}  # fmt: skip


def _leave_on(leaves: Sequence[Leave], d: date) -> Leave | None:
    for lv in leaves:
        if lv.start <= d <= lv.end:
            return lv
    return None


def _occurrence_day(
    occ: _Occ, punches: list[tuple[int, bool]], voided: bool, leave: Leave | None
) -> tuple[dict[str, Any], Fraction, Fraction]:
    """One occurrence (rules 5-10). Returns the day entry, its worked value and its leave value."""
    sh = occ.shift
    n = len(sh.sessions)
    share = Fraction(1, n)
    sessions = [(occ.base + s, occ.base + e) for s, e in sh.sessions]
    leave_idx: set[int] = set()
    if leave is not None:
        leave_idx = {0} if leave.half == "am" else {n - 1} if leave.half == "pm" else set(range(n))
    kept = _dedup(punches)
    day = _blank()
    flags: set[str] = set()
    if voided or any(c for _, c in kept):
        flags.add("corrected")
    worked_idx: list[int] = []
    if kept:
        tin = local_minute(kept[0][0])
        day["in"] = fmt_time(tin, occ.base)
        if len(kept) == 1:
            flags.add("missing_punch")
        else:
            tout = local_minute(kept[-1][0])
            day["out"] = fmt_time(tout, occ.base)
            day["worked_min"] = sum(_overlap(tin, tout, s, e) for s, e in sessions)
            for i, (s, e) in enumerate(sessions):
                if i not in leave_idx and 2 * _overlap(tin, tout, s, e) >= e - s:
                    worked_idx.append(i)
            required = [sessions[i] for i in range(n) if i not in leave_idx]
            if required:
                start, end = required[0][0], required[-1][1]
                if tin > start + sh.grace_in:
                    day["late_min"] = tin - start
                    flags.add("late")
                if tout < end - sh.grace_out:
                    day["early_min"] = end - tout
                    flags.add("early")
    value = share * len(worked_idx)
    leave_value = share * len(leave_idx)
    day["value"] = float(value)
    if leave is not None:
        day["leave"] = {"kind": leave.kind, "value": float(leave_value)}
    # Rule 10: the part (worked "+" or the leave) with more scheduled minutes, the earlier on a tie.
    parts: dict[str, list[int]] = {}
    for i in worked_idx:
        parts.setdefault("+", []).append(i)
    if leave is not None:
        parts[leave.kind] = sorted(leave_idx)
    if parts:
        def weight(sym: str) -> tuple[int, int]:
            idx = parts[sym]
            return (-sum(sessions[i][1] - sessions[i][0] for i in idx), min(idx))

        day["symbol"] = min(parts, key=weight)
    elif "missing_punch" not in flags:
        flags.add("absent")
    day["flags"] = [f for f in FLAG_ORDER if f in flags]
    return day, value, leave_value


def compute(inp: MonthInput, *, unit: str | None = None, staff: str | None = None,
            include: set[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The contract report for the month. Rows are (person, unit) pairs: a person transferred
    mid-month has one row per unit, each holding only the days they belonged to it.

    ``include``: staff codes to list even without assignment or punch (``--staff``)."""
    dates = month_dates(inp.year, inp.month)
    first, last = dates[0], dates[-1]
    scan = [first - timedelta(1), *dates]  # a night shift of the last day of the previous month
    cal = inp.calendar
    res = _Resolver(inp.assignments)
    occ_cache: dict[tuple[str, date], _Occ] = {}
    rows: list[tuple[tuple[str, str], dict[str, Any]]] = []
    codes = sorted(inp.names) if staff is None else [staff] if staff in inp.names else []
    lo_us = (day_base(first - timedelta(1)) * 60 - TZ_OFFSET_S) * 1_000_000
    for code in codes:
        spans = inp.spans.get(code, [])
        punches = sorted(p for p in inp.punches.get(code, ()) if p[0] >= lo_us)
        voids = inp.voids.get(code, set())
        if voids:
            punches = [p for p in punches if local_minute(p[0]) not in voids]
        leaves = inp.leaves.get(code, [])
        # Per date: the unit (span) and the occurrence, if any.
        span_of: dict[date, Span | None] = {}
        occs: list[_Occ] = []
        shift_of: dict[date, Shift] = {}
        for d in scan:
            sp = unit_on(spans, d)
            span_of[d] = sp
            sid = res.shift(code, sp, d)
            if sid is None or sid not in inp.shifts:
                continue
            sh = inp.shifts[sid]
            shift_of[d] = sh
            if occurs(sh, d, cal):
                key = (sid, d)
                occ = occ_cache.get(key)
                if occ is None:
                    base = day_base(d)
                    occ = _Occ(d, sh, base, base + sh.sessions[0][0] - BEFORE_MIN,
                               base + sh.sessions[-1][1] + AFTER_MIN)  # fmt: skip
                    occ_cache[key] = occ
                occs.append(occ)
        listed = include is not None and code in include
        if not listed and not shift_of.keys() - {scan[0]} and not any(
            local_minute(p[0]) >= day_base(first) for p in punches
        ):
            continue
        # Rule 3: each punch to the (earliest) occurrence whose window holds it; else outside.
        in_occ: dict[date, list[tuple[int, bool]]] = {}
        outside: dict[date, list[tuple[int, bool]]] = {}
        j = 0
        for p in punches:
            m = local_minute(p[0])
            while j < len(occs) and occs[j].hi < m:
                j += 1
            if j < len(occs) and occs[j].lo <= m:
                in_occ.setdefault(occs[j].day, []).append(p)
            else:
                outside.setdefault(date.fromordinal(m // 1440 + EPOCH_ORD), []).append(p)
        void_days: set[date] = set()
        for vm in voids:
            for o in occs:
                if o.lo <= vm <= o.hi:
                    void_days.add(o.day)
                    break
            else:
                void_days.add(date.fromordinal(vm // 1440 + EPOCH_ORD))
        occ_by_day = {o.day: o for o in occs}
        # One row per unit the person belonged to during the month.
        units: dict[str, list[date]] = {}
        for d in dates:
            sp = span_of[d]
            if sp is not None and (unit is None or sp.matches(unit)):
                units.setdefault(sp.unit or sp.agency, []).append(d)
        if not spans and unit is None:
            units[""] = list(dates)
        for ucode, member_days in units.items():
            member = set(member_days)
            days: dict[str, dict[str, Any]] = {}
            work = Fraction(0)
            leave_tot: dict[str, Fraction] = {}
            late_n = late_m = early_n = early_m = missing = hol = 0
            for d in dates:
                if d not in member:
                    days[d.isoformat()] = _blank()
                    continue
                sh = shift_of.get(d)
                is_hol = d in cal.holidays and sh is not None and d.weekday() in sh.days
                hol += is_hol
                occ = occ_by_day.get(d)
                if occ is not None:
                    day, v, lv = _occurrence_day(occ, in_occ.get(d, []), d in void_days,
                                                 _leave_on(leaves, d))  # fmt: skip
                    work += v
                    if day["leave"] is not None:
                        k = day["leave"]["kind"]
                        leave_tot[k] = leave_tot.get(k, Fraction(0)) + lv
                    late_n += day["late_min"] > 0
                    late_m += day["late_min"]
                    early_n += day["early_min"] > 0
                    early_m += day["early_min"]
                    missing += "missing_punch" in day["flags"]
                else:
                    day = _blank("L" if is_hol else "")
                    out = _dedup(outside.get(d, []))
                    if out:
                        day["in"] = fmt_time(local_minute(out[0][0]), day_base(d))
                        if len(out) > 1:
                            day["out"] = fmt_time(local_minute(out[-1][0]), day_base(d))
                        fl = {"outside_shift"}
                        if d in void_days or any(c for _, c in out):
                            fl.add("corrected")
                        day["flags"] = [f for f in FLAG_ORDER if f in fl]
                days[d.isoformat()] = day
            sp = next((span_of[d] for d in member_days if span_of[d] is not None), None)
            row = {
                "staff": code,
                "name": inp.names[code],
                "unit": ucode,
                "agency": sp.agency if sp is not None else "",
                "days": days,
                "totals": {
                    "work_days": float(work),
                    "leave": {k: float(v) for k, v in leave_tot.items()},
                    "late_count": late_n, "late_min": late_m,
                    "early_count": early_n, "early_min": early_m,
                    "missing_punch": missing, "holidays": hol,
                },
            }  # fmt: skip
            rows.append(((code, member_days[0].isoformat() if member_days else ""), row))
    rows.sort(key=lambda r: r[0])
    return {"month": f"{inp.year:04d}-{inp.month:02d}", "staff": [r for _, r in rows]}
