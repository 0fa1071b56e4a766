"""The rule engine: punches, schedules, calendar, leave and unit history in; the contract's monthly
report out (``../shared/spec/attendance-v1.md`` §4-§5). Pure: no database, no clock, no I/O.

Everything is integers until the report is written: times are local minutes since 1970-01-01
Asia/Ho_Chi_Minh (UTC+7, no DST), exact punch times are UTC microseconds, day values are integer
multiples of 1/27720 (the least common multiple of 1..12, so any shift of up to 12 sessions gives
exact shares) and become floats only in the output, by one correctly rounded division: a third is
written 0.3333333333333333 and three thirds sum to exactly 1.0.

Built for bulk (10,000 people, a month, 1.2 M punches): occurrences are shared per (shift, date),
a unit's shift plan per (unit, date) is resolved once, and the per-day work is plain integer code.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from gateway.attendance.calendar import Calendar
from messages import _

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
    on_holidays: bool = False  # a round-the-clock shift that runs on public holidays and days off

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
    punches: dict[str, list[int]]  # staff -> exact punch times, UTC microseconds (any order)
    voids: dict[str, set[int]] = field(default_factory=dict)  # staff -> local minutes voided
    leaves: dict[str, list[Leave]] = field(default_factory=dict)
    corrected: dict[str, set[int]] = field(default_factory=dict)  # staff -> times added by HR


# ---- parsing helpers shared by the CLI, the API and the store -------------------------------------


def parse_hhmm(text: str) -> int:
    h, sep, m = text.strip().partition(":")
    if not sep or len(h) != 2 or len(m) != 2 or not (h + m).isdigit():
        raise ValueError(_("{value!r} is not HH:MM", value=text))
    hh, mm = int(h), int(m)
    if hh > 23 or mm > 59:
        raise ValueError(_("{value!r} is not a time of day", value=text))
    return hh * 60 + mm


def parse_sessions(text: str) -> tuple[tuple[int, int], ...]:
    """``"07:30-11:30,13:00-17:00"``; a session ending at or before its start crosses midnight,
    allowed only for the last one; sessions must not overlap and must be in order."""
    out: list[tuple[int, int]] = []
    parts = [p.strip() for p in text.split(",")]
    for i, part in enumerate(parts):
        a, sep, b = part.partition("-")
        if not sep:
            raise ValueError(_("session {value!r} is not HH:MM-HH:MM", value=part))
        s, e = parse_hhmm(a), parse_hhmm(b)
        if e <= s:
            if i != len(parts) - 1:
                raise ValueError(
                    _("session {value!r} crosses midnight but is not the last session", value=part)
                )
            e += 1440
        if out and s < out[-1][1]:
            raise ValueError(
                _(
                    "session {value!r} overlaps or precedes session {previous!r}",
                    value=part,
                    previous=parts[i - 1],
                )
            )
        out.append((s, e))
    if out and out[-1][1] - out[0][0] > 1440:
        raise ValueError(_("the sessions span more than 24 hours"))
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
            raise ValueError(_("{value!r} is not a day or range of Mon..Sun", value=part.strip())) from None
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
    return _fmt(minute, base)


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
    sessions: tuple[tuple[int, int], ...]  # absolute local minutes
    share: int  # VALUE_UNIT / number of sessions


VALUE_UNIT = 27720  # lcm(1..12): a day value is an integer number of 1/27720
_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]


def occurs(shift: Shift, d: date, cal: Calendar) -> bool:
    """Rule 3: on its DAYS except public holidays and days off; compensatory working days add an
    occurrence for shifts that work any of Mon-Fri. A shift with ``on_holidays`` (the contract's
    option for round-the-clock shifts; off by default) also runs on holidays and days off."""
    kind = cal.kind(d)
    if kind in ("holiday", "dayoff"):
        return shift.on_holidays and d.weekday() in shift.days
    return d.weekday() in shift.days or (kind == "workday" and shift.weekday_shift)


def _fmt(minute: int, base: int) -> str:
    days, m = divmod(minute - base, 1440)
    return _HHMM[m] if days == 0 else f"{days:+d} {_HHMM[m]}"


def _blank(symbol: str = "") -> dict[str, Any]:
    return {
        "symbol": symbol,
        "in": None,
        "out": None,
        "worked_min": 0,
        "late_min": 0,
        "early_min": 0,
        "value": 0.0,
        "leave": None,
        "flags": [],
    }


def _leave_on(leaves: Sequence[Leave], d: date) -> Leave | None:
    for lv in leaves:
        if lv.start <= d <= lv.end:
            return lv
    return None


_FLAG_LISTS: dict[frozenset[str], list[str]] = {}


def _flags(fl: set[str]) -> list[str]:
    """The flags in the contract's order (a fresh list: callers may keep and change it)."""
    key = frozenset(fl)
    known = _FLAG_LISTS.get(key)
    if known is None:
        known = _FLAG_LISTS[key] = [f for f in FLAG_ORDER if f in fl]
    return known.copy()


def _occurrence_day(
    occ: _Occ, punches: list[int], voided: bool, leave: Leave | None, corrected: set[int] | None = None
) -> tuple[dict[str, Any], int, int]:
    """One occurrence (rules 5-10). Returns the day entry, its worked value and its leave value
    (in 1/VALUE_UNIT)."""
    sessions = occ.sessions
    n = len(sessions)
    if leave is None:
        leave_idx: tuple[int, ...] = ()
    else:
        leave_idx = (0,) if leave.half == "am" else (n - 1,) if leave.half == "pm" else tuple(range(n))
    kept = punches  # already deduplicated (rule 4) by compute
    flags: set[str] = set()
    if voided or (corrected and any(t in corrected for t in kept)):
        flags.add("corrected")
    t_in = t_out = None
    worked_min = late = early = 0
    worked_idx: list[int] = []
    if kept:
        tin = (kept[0] // 1_000_000 + TZ_OFFSET_S) // 60
        t_in = _fmt(tin, occ.base)
        if len(kept) == 1:
            flags.add("missing_punch")
        else:
            tout = (kept[-1] // 1_000_000 + TZ_OFFSET_S) // 60
            t_out = _fmt(tout, occ.base)
            first = last = None
            for i, (s, e) in enumerate(sessions):
                ov = (tout if tout < e else e) - (tin if tin > s else s)  # min/max: calls, slower
                if ov > 0:
                    worked_min += ov
                if i in leave_idx:
                    continue
                if 2 * ov >= e - s:
                    worked_idx.append(i)
                if first is None:
                    first = s
                last = e
            if first is not None and last is not None:
                sh = occ.shift
                if tin > first + sh.grace_in:
                    late = tin - first
                    flags.add("late")
                if tout < last - sh.grace_out:
                    early = last - tout
                    flags.add("early")
    value = occ.share * len(worked_idx)
    leave_value = occ.share * len(leave_idx)
    # Rule 10: the part (worked "+" or the leave) with more scheduled minutes, the earlier on a tie.
    symbol = ""
    if worked_idx and leave_idx:
        w = sum(sessions[i][1] - sessions[i][0] for i in worked_idx)
        lv_min = sum(sessions[i][1] - sessions[i][0] for i in leave_idx)
        if w != lv_min:
            symbol = "+" if w > lv_min else leave.kind  # type: ignore[union-attr]
        else:
            symbol = "+" if worked_idx[0] < leave_idx[0] else leave.kind  # type: ignore[union-attr]
    elif worked_idx:
        symbol = "+"
    elif leave_idx:
        symbol = leave.kind  # type: ignore[union-attr]
    elif "missing_punch" not in flags:
        flags.add("absent")
    day = {
        "symbol": symbol,
        "in": t_in,
        "out": t_out,
        "worked_min": worked_min,
        "late_min": late,
        "early_min": early,
        "value": value / VALUE_UNIT,
        "leave": None if leave is None else {"kind": leave.kind, "value": leave_value / VALUE_UNIT},
        "flags": _flags(flags) if flags else [],
    }
    return day, value, leave_value


def _occurrences(sids: list[str | None], occ_of: dict[str, list[_Occ | None]]) -> list[_Occ]:
    """The occurrences of a plan (one shift id or None per scanned date), in date order."""
    return [o for o in (occ_of[s][i] if s is not None else None for i, s in enumerate(sids)) if o is not None]


def _assign(punches: list[int], occs: list[_Occ]) -> tuple[dict[date, list[int]], dict[int, list[int]]]:
    """Rules 3 and 4 for one person: sorted punches (UTC µs) to the occurrence whose window holds
    them — the first (in order) whose window has not closed — or to their local day (outside),
    keeping in each group only punches >= 120 s after its previous kept one. A window's punches
    are one run of the sorted list: its ends are found by bisection on the microsecond bounds of
    the window's minutes, so the per-punch work is only the duplicate test (10,000 people,
    1.28 M punches: ``compute`` 1.326 s -> 1.278 s CPU against one walk testing every punch)."""
    in_occ: dict[date, list[int]] = {}
    outside: dict[int, list[int]] = {}  # local day number -> kept punches
    n, nocc = len(punches), len(occs)
    i = j = 0
    bisect_left = bisect.bisect_left
    while i < n:
        p = punches[i]
        m = (p // 1_000_000 + TZ_OFFSET_S) // 60
        while j < nocc and occs[j].hi < m:
            j += 1
        occ = occs[j] if j < nocc else None
        if occ is not None and occ.lo <= m:
            # every punch up to the window's last minute belongs to it
            k = bisect_left(punches, ((occ.hi + 1) * 60 - TZ_OFFSET_S) * 1_000_000, i + 1)
            lst = in_occ.setdefault(occ.day, [])
            last = lst[-1] if lst else -(1 << 62)
            for q in punches[i:k]:
                if q - last >= DUPLICATE_US:
                    lst.append(q)
                    last = q
        else:
            # outside until the next window opens
            k = bisect_left(punches, (occ.lo * 60 - TZ_OFFSET_S) * 1_000_000, i + 1) if occ else n
            for q in punches[i:k]:
                day = (q // 1_000_000 + TZ_OFFSET_S) // 86400
                grp = outside.get(day)
                if grp is None:
                    outside[day] = [q]
                elif q - grp[-1] >= DUPLICATE_US:
                    grp.append(q)
        i = k
    return in_occ, outside


def compute(
    inp: MonthInput,
    *,
    unit: str | None = None,
    staff: str | None = None,
    include: set[str] | None = None,
    overtime: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The contract report for the month. Rows are (person, unit) pairs: a person transferred
    mid-month has one row per unit, each holding only the days they belonged to it.

    ``include``: staff codes to list even without assignment or punch (``--staff``).
    ``overtime``: if given, receives the month's overtime candidates (:func:`overtime_candidate`);
    they are not part of the contract's report."""
    dates = month_dates(inp.year, inp.month)
    first = dates[0]
    scan = [first - timedelta(1), *dates]  # a night shift of the last day of the previous month
    keys = [d.isoformat() for d in dates]
    cal = inp.calendar
    res = _Resolver(inp.assignments)
    month_lo = day_base(first)
    month_hi = day_base(dates[-1]) + 1440  # the punches loaded reach 2 days past the month's end
    lo_us = (day_base(scan[0]) * 60 - TZ_OFFSET_S) * 1_000_000
    # Per shift: its occurrence (or None) on each scanned date, and whether each date is a public
    # holiday on its DAYS.
    occ_of: dict[str, list[_Occ | None]] = {}
    hol_of: dict[str, list[bool]] = {}
    for sid, sh in inp.shifts.items():
        share = VALUE_UNIT // len(sh.sessions)
        row_o: list[_Occ | None] = []
        for d in scan:
            if occurs(sh, d, cal):
                base = day_base(d)
                ses = tuple((base + a, base + b) for a, b in sh.sessions)
                row_o.append(_Occ(d, sh, base, ses[0][0] - BEFORE_MIN, ses[-1][1] + AFTER_MIN, ses, share))
            else:
                row_o.append(None)
        occ_of[sid] = row_o
        hol_of[sid] = [d in cal.holidays and d.weekday() in sh.days for d in scan]
    unit_plan: dict[Span, tuple[list[str | None], list[_Occ]]] = {}
    rows: list[tuple[tuple[str, str], dict[str, Any]]] = []
    codes = sorted(inp.names) if staff is None else [staff] if staff in inp.names else []
    nscan = len(scan)
    for code in codes:
        spans = inp.spans.get(code, [])
        if len(spans) == 1 and spans[0].start <= scan[0]:
            span_of: list[Span | None] = [spans[0]] * nscan
        else:
            span_of = [unit_on(spans, d) for d in scan]
        if res.has_any(code) or len(spans) != 1:
            sids = [res.shift(code, span_of[i], d) for i, d in enumerate(scan)]
            sids = [s if s in inp.shifts else None for s in sids]
            occs = None
        else:  # the unit's plan and its occurrences, shared by everyone in it (read only)
            sp0 = spans[0]
            plan = unit_plan.get(sp0)
            if plan is None:
                shared = [res.shift(code, sp0, d) for d in scan]
                shared = [s if s in inp.shifts else None for s in shared]
                plan = unit_plan[sp0] = (shared, _occurrences(shared, occ_of))
            sids, occs = plan
        raw = inp.punches.get(code)
        punches = sorted(raw) if raw else []
        if punches and punches[0] < lo_us:
            punches = punches[bisect.bisect_left(punches, lo_us) :]
        voids = inp.voids.get(code)
        if voids:
            punches = [p for p in punches if local_minute(p) not in voids]
        corrected = inp.corrected.get(code)
        listed = include is not None and code in include
        if (
            not listed
            and not any(sids[1:])
            and not any(month_lo <= (p // 1_000_000 + TZ_OFFSET_S) // 60 < month_hi for p in punches)
        ):
            continue
        if occs is None:
            occs = _occurrences(sids, occ_of)
        # Rule 3: each punch to the (earliest) occurrence whose window holds it, else to its date
        # (outside); rule 4 in the same pass: within each group, a punch < 120 s after the group's
        # previous kept punch is dropped. The lists hold kept punches only.
        in_occ, outside = _assign(punches, occs)
        void_days: set[date] = set()
        for vm in voids or ():
            for o in occs:
                if o.lo <= vm <= o.hi:
                    void_days.add(o.day)
                    break
            else:
                void_days.add(date.fromordinal(vm // 1440 + EPOCH_ORD))
        leaves = inp.leaves.get(code, ())
        # One row per unit the person belonged to during the month.
        units: dict[str, list[int]] = {}
        for i in range(1, nscan):
            sp = span_of[i]
            if sp is not None and (unit is None or sp.matches(unit)):
                units.setdefault(sp.unit or sp.agency, []).append(i)
        if not spans and unit is None:
            units[""] = list(range(1, nscan))
        for ucode, member_idx in units.items():
            member = range(1, nscan) if len(member_idx) == nscan - 1 else set(member_idx)
            days: dict[str, dict[str, Any]] = {}
            work = 0
            leave_tot: dict[str, int] = {}
            late_n = late_m = early_n = early_m = missing = hol = 0
            for i in range(1, nscan):
                key = keys[i - 1]
                if i not in member:
                    days[key] = _blank()
                    continue
                d = scan[i]
                day_sid = sids[i]
                is_hol = day_sid is not None and hol_of[day_sid][i]
                hol += is_hol
                occ = occ_of[day_sid][i] if day_sid is not None else None
                if occ is not None:
                    day, v, lv = _occurrence_day(
                        occ,
                        in_occ.get(d, []),
                        d in void_days,
                        _leave_on(leaves, d) if leaves else None,
                        corrected,
                    )
                    work += v
                    if day["leave"] is not None:
                        k = day["leave"]["kind"]
                        leave_tot[k] = leave_tot.get(k, 0) + lv
                    if day["late_min"]:
                        late_n += 1
                        late_m += day["late_min"]
                    if day["early_min"]:
                        early_n += 1
                        early_m += day["early_min"]
                    if day["in"] is not None and day["out"] is None:
                        missing += 1
                    if overtime is not None:
                        ot_kind = "holiday" if d in cal.holidays else "weekday"  # on_holidays shifts
                        ot = None
                        if day["out"] is not None:
                            kept = in_occ[d]
                            ot = overtime_candidate(code, d, ot_kind, kept[0], kept[-1], occ.sessions)
                        # Punches of this date outside the occurrence's window (called back at
                        # night): their in-out span is a candidate too, one per person-day.
                        away = outside.get(d.toordinal() - EPOCH_ORD)
                        if away and len(away) > 1:
                            extra = overtime_candidate(code, d, ot_kind, away[0], away[-1], ())
                            ot = _merge_overtime(ot, extra)
                        if ot is not None:
                            overtime.append(ot)
                else:
                    day = _blank("L" if is_hol else "")
                    dn = d.toordinal() - EPOCH_ORD
                    out = outside.get(dn)
                    if out:
                        day["in"] = _fmt((out[0] // 1_000_000 + TZ_OFFSET_S) // 60, dn * 1440)
                        if len(out) > 1:
                            day["out"] = _fmt((out[-1] // 1_000_000 + TZ_OFFSET_S) // 60, dn * 1440)
                        fl = {"outside_shift"}
                        if d in void_days or (corrected and any(t in corrected for t in out)):
                            fl.add("corrected")
                        day["flags"] = _flags(fl)
                        if overtime is not None and len(out) > 1:
                            kind = "holiday" if d in cal.holidays else "weekday"
                            if kind == "weekday" and (d.weekday() >= 5 or d in cal.dayoffs):
                                kind = "weekend"
                            ot = overtime_candidate(code, d, kind, out[0], out[-1], ())
                            if ot is not None:
                                overtime.append(ot)
                days[key] = day
            sp = span_of[member_idx[0]] if member_idx else None
            row = {
                "staff": code,
                "name": inp.names[code],
                "unit": ucode,
                "agency": sp.agency if sp is not None else "",
                "days": days,
                "totals": {
                    "work_days": work / VALUE_UNIT,
                    "leave": {k: v / VALUE_UNIT for k, v in leave_tot.items()},
                    "late_count": late_n,
                    "late_min": late_m,
                    "early_count": early_n,
                    "early_min": early_m,
                    "missing_punch": missing,
                    "holidays": hol,
                },
            }
            rows.append(((code, scan[member_idx[0]].isoformat() if member_idx else ""), row))
    rows.sort(key=lambda r: r[0])
    return {"month": f"{inp.year:04d}-{inp.month:02d}", "staff": [r for _, r in rows]}


def _merge_overtime(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return a or b
    return a | {
        "minutes": a["minutes"] + b["minutes"],
        "night_min": a["night_min"] + b["night_min"],
        "intervals": a["intervals"] + b["intervals"],
    }


def _night(a: int, b: int) -> int:
    """Minutes of [a, b) (local minutes) between 22:00 and 06:00."""
    total = 0
    day0 = a // 1440 * 1440
    for start in range(day0 - 1440, b + 1, 1440):
        total += max(0, min(b, start + 1800) - max(a, start + 1320))  # 22:00 .. next 06:00
    return total


def overtime_candidate(
    code: str, d: date, kind: str, t_in_us: int, t_out_us: int, sessions: Sequence[tuple[int, int]]
) -> dict[str, Any] | None:
    """Minutes worked outside the schedule on one date: before the first and after the last session
    of an occurrence (kind ``weekday``), or the whole in-out span on a rest day (``weekend``) or a
    public holiday (``holiday``); ``night_min`` is the part between 22:00 and 06:00. Candidates
    only: they count once approved (``att_overtime``)."""
    tin = (t_in_us // 1_000_000 + TZ_OFFSET_S) // 60
    tout = (t_out_us // 1_000_000 + TZ_OFFSET_S) // 60
    spans = (
        [(tin, min(tout, sessions[0][0])), (max(tin, sessions[-1][1]), tout)] if sessions else [(tin, tout)]
    )
    spans = [(a, b) for a, b in spans if b > a]
    minutes = sum(b - a for a, b in spans)
    if minutes <= 0:
        return None
    base = day_base(d)
    return {
        "staff": code,
        "date": d.isoformat(),
        "kind": kind,
        "minutes": minutes,
        "night_min": sum(_night(a, b) for a, b in spans),
        "intervals": [[_fmt(a, base), _fmt(b, base)] for a, b in spans],
    }
