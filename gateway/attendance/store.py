"""Reading and writing the attendance tables: bulk loads for the engine, validated writes for the
commands and the API. Every write function validates everything first and changes nothing when it
refuses (one transaction).

The hot path (``load_month``) reads with SQLAlchemy Core, one query per table, punches as integer
microseconds computed by the database, never one ORM object per row.
"""

from __future__ import annotations

import json
import struct
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from gateway.attendance import calendar as vncal
from gateway.attendance import engine as rules
from gateway.attendance.bulk import no_gc, settle
from gateway.attendance.errors import AssignmentInUse, AttendanceError, cause, field_error
from gateway.attendance.models import (
    AttAssignment,
    AttCalendar,
    AttCorrection,
    AttDay,
    AttDirty,
    AttLeave,
    AttOvertime,
    AttPunch,
    AttShift,
    AttStamp,
    AttUnitSpan,
)
from gateway.attendance.times import VN, local_date, parse_month
from gateway.auth import in_scope, scope_prefixes
from gateway.models import AuditEntry, StaffRecord, now_utc
from messages import _

T_PUNCH = AttPunch.__table__  # type: ignore[attr-defined]
T_CORR = AttCorrection.__table__  # type: ignore[attr-defined]
T_SHIFT = AttShift.__table__  # type: ignore[attr-defined]
T_ASSIGN = AttAssignment.__table__  # type: ignore[attr-defined]
T_CAL = AttCalendar.__table__  # type: ignore[attr-defined]
T_LEAVE = AttLeave.__table__  # type: ignore[attr-defined]
T_SPAN = AttUnitSpan.__table__  # type: ignore[attr-defined]
T_DAY = AttDay.__table__  # type: ignore[attr-defined]
T_DIRTY = AttDirty.__table__  # type: ignore[attr-defined]
T_STAMP = AttStamp.__table__  # type: ignore[attr-defined]
T_STAFF = StaffRecord.__table__  # type: ignore[attr-defined]
T_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
ALL = "*"  # att_dirty.staff_code: every person of the month
EARLIEST = date(1900, 1, 1)


DB = Engine | Session | Connection


@contextmanager
def connect(db: DB) -> Iterator[Connection]:
    """A connection in a transaction: an engine's own (committed here), or the caller's."""
    if isinstance(db, Engine):
        with db.begin() as conn:
            yield conn
    elif isinstance(db, Session):
        yield db.connection()
    else:
        yield db


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _among(conn: Connection, column: Any, codes: Iterable[str]) -> Any:
    """SQL condition: ``column`` is one of ``codes``. On PostgreSQL one array parameter
    (``= ANY``): an IN list of an agency's 4,300 codes cost ~30 ms of client CPU per statement
    to render and parse, several statements per page."""
    codes = list(codes)
    if _pg(conn) and not any("," in c for c in codes):  # one text: psycopg's array dumper
        joined = sa.bindparam(None, ",".join(codes), type_=sa.Text)  # checked each element
        return column == sa.any_(sa.func.string_to_array(joined, ",", type_=ARRAY(sa.Text)))
    if _pg(conn):
        return column == sa.any_(sa.bindparam(None, codes, type_=ARRAY(sa.String)))
    return column.in_(codes)


def _custom_plans(conn: Connection) -> None:
    """Plan each statement of this transaction for its own parameters (PostgreSQL). psycopg
    prepares a statement from its 5th run on a connection and the server then may keep a generic
    plan: for a page of one agency that plan read the whole unit history / staff records for the
    list of 4,300 codes (0.2 s → 1.1-1.4 s per request from the 10th request on)."""
    if _pg(conn):
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def _insert(conn: Connection, table: sa.Table) -> Any:
    if _pg(conn):
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def audit(conn: Connection, actor: str, action: str, target: str, role: str = "", **detail: Any) -> None:
    """Decree 13/2023: who changed or read whose attendance (the gateway's audit log)."""
    conn.execute(
        sa.insert(T_AUDIT).values(
            at=now_utc(),
            actor=actor[:64],
            role=role[:16],
            action=action[:64],
            target=target[:128],
            detail=json.dumps(detail, ensure_ascii=False, default=str)[:2000],
        )
    )


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s.strip())


# ---- staff, units and unit history -----------------------------------------------------------------


def staff_known(conn: Connection, codes: Iterable[str]) -> set[str]:
    codes = list(set(codes))
    found: set[str] = set()
    for i in range(0, len(codes), 1000):
        chunk = codes[i : i + 1000]
        found.update(
            r[0] for r in conn.execute(sa.select(T_STAFF.c.staff_code).where(T_STAFF.c.staff_code.in_(chunk)))
        )
    return found


def staff_names(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """Full names of these staff codes (the known ones)."""
    codes = list(set(codes))
    found: dict[str, str] = {}
    for i in range(0, len(codes), 1000):
        chunk = codes[i : i + 1000]
        q = sa.select(T_STAFF.c.staff_code, T_STAFF.c.full_name).where(T_STAFF.c.staff_code.in_(chunk))
        found.update((str(c), str(n)) for c, n in conn.execute(q))
    return found


def unit_known(conn: Connection, unit: str) -> bool:
    q = sa.select(T_STAFF.c.staff_code).where(sa.or_(T_STAFF.c.unit == unit, T_STAFF.c.agency_code == unit))
    return conn.execute(q.limit(1)).first() is not None


def refresh_spans(
    conn: Connection,
    only: Any = None,
    seen: dict[str, list[tuple[date, str, str]]] | None = None,
    records: dict[str, tuple[str, str, str]] | None = None,
) -> int:
    """Follow the staff records into the unit history: a record whose unit differs from the span in
    effect on the civil date of its last change (a transfer) opens a span from that date; a person
    seen for the first time belongs to their unit from the beginning. A span HR recorded by hand
    (:func:`record_transfer`) on that very date wins. Returns the spans added.

    ``only``: a condition on the staff records — follow only those (a report of one unit or scope
    need not read the nation's 2 M records and spans per request). ``seen``: filled with the unit
    history of those records as it stands afterwards (a page then need not read it again).
    ``records``: filled with those records' (full name, position, agency code), for
    :func:`load_month` (one read of an agency's 4,300 records instead of two: ~20 ms each)."""
    spans: dict[str, list[tuple[date, str, str]]] = {}
    q_span = sa.select(T_SPAN.c.staff_code, T_SPAN.c.start, T_SPAN.c.unit, T_SPAN.c.agency_code)
    q_staff = sa.select(T_STAFF.c.staff_code, T_STAFF.c.unit, T_STAFF.c.agency_code, T_STAFF.c.updated_at)
    if records is not None:
        q_staff = q_staff.add_columns(T_STAFF.c.full_name, T_STAFF.c.position)
    if only is not None:
        q_staff = q_staff.where(only)
        q_span = q_span.where(T_SPAN.c.staff_code.in_(sa.select(T_STAFF.c.staff_code).where(only)))
    for code, start, unit, agency in conn.execute(q_span):
        spans.setdefault(code, []).append((start, unit, agency))
    new: list[dict[str, Any]] = []
    rows: Any = conn.execute(q_staff)
    if records is not None:
        rows = rows.all()
        records.update((r[0], (r[4], r[5], r[2])) for r in rows)
        rows = (r[:4] for r in rows)
    for code, unit, agency, updated in rows:
        mine = spans.get(code)
        if mine is None:
            new.append({"staff_code": code, "start": EARLIEST, "unit": unit, "agency_code": agency})
            continue
        since = local_date(updated if updated.tzinfo else updated.replace(tzinfo=UTC))
        current = max((s for s in mine if s[0] <= since), default=None)
        if current is not None and (current[1], current[2]) == (unit, agency):
            continue
        if any(s[0] == since for s in mine):
            continue
        new.append({"staff_code": code, "start": since, "unit": unit, "agency_code": agency})
    if seen is not None:
        for code, mine in spans.items():
            seen[code] = list(mine)
        for r in new:
            seen.setdefault(r["staff_code"], []).append((r["start"], r["unit"], r["agency_code"]))
    if new:
        conn.execute(sa.insert(T_SPAN), new)
        for r in new:
            if r["start"] != EARLIEST:
                mark_months(conn, r["staff_code"], r["start"], None)
    return len(new)


def record_transfer(conn: Connection, staff: str, unit: str, start: date, agency: str = "") -> None:
    """HR states a transfer date the staff records do not carry (an explicit span)."""
    conn.execute(sa.delete(T_SPAN).where(T_SPAN.c.staff_code == staff, T_SPAN.c.start == start))
    conn.execute(sa.insert(T_SPAN).values(staff_code=staff, start=start, unit=unit, agency_code=agency))
    mark_months(conn, staff, start, None)


# ---- dirty person-months (incremental recompute) --------------------------------------------------


def _months_touching(d: date) -> set[str]:
    """The months whose inputs hold date d (:func:`load_month` reads from the day before the 1st
    to the 1st of the next month): d's own, the previous month (its last night shift, early on
    the 1st) and the next month (its input starts on our last day)."""
    return {(d + timedelta(k)).strftime("%Y-%m") for k in (-1, 0, 1)}


def mark_dirty(conn: Connection, items: Iterable[tuple[str, date]]) -> None:
    """Mark person-months for :func:`refresh_days` and raise their stamps (:func:`_stamps`): every
    write of an input of one person's month (punches, voids, leave, corrections, unit history)
    comes here, and every rule-wide one (shifts, assignments, calendar) as ``ALL``."""
    keys = {(s, m) for s, d in items for m in _months_touching(d)}
    if not keys:
        return
    bump = _insert(conn, T_STAMP).on_conflict_do_update(
        index_elements=["staff_code", "month"], set_={"seq": T_STAMP.c.seq + 1}
    )
    conn.execute(bump, [{"staff_code": s, "month": m, "seq": 1} for s, m in sorted(keys)])
    # a person-month already marked keeps its first mark (``since``) and counts one more, so a
    # refresh running meanwhile does not take this mark for one it has computed (refresh_days)
    mark = _insert(conn, T_DIRTY)
    mark = mark.on_conflict_do_update(
        index_elements=["staff_code", "month"], set_={"marks": T_DIRTY.c.marks + 1}
    )
    now = now_utc()
    conn.execute(mark, [{"staff_code": s, "month": m, "since": now, "marks": 1} for s, m in sorted(keys)])


def mark_all_dirty(conn: Connection, first: date, last: date | None) -> None:
    """A schedule or calendar change: every person of the months it touches."""
    mark_months(conn, ALL, first, last)


def mark_months(conn: Connection, staff: str, first: date, last: date | None) -> None:
    """Every month of [first, last] (open: until next month) for one person or ``ALL``."""
    last = last or max(first, date.today() + timedelta(31))
    first = max(first, date(last.year - 10, 1, 1))  # a schedule change reaches 10 years back at most
    m, months = date(first.year, first.month, 1), []
    while m <= last:
        months.append(m)
        m = date(m.year + m.month // 12, m.month % 12 + 1, 1)
    mark_dirty(conn, [(staff, d) for d in months])


# ---- writes ------------------------------------------------------------------------------------


@dataclass
class PunchRow:
    staff: str
    at: datetime  # UTC
    source: str
    ref: str = ""
    terminal: str = ""


def add_punches(conn: Connection, rows: Sequence[PunchRow]) -> int:
    """Insert raw punches; one already stored for the same person and exact time adds nothing.
    Returns how many were new (their person-months are marked for recompute)."""
    if not rows:
        return 0
    now = now_utc()
    ins = _insert(conn, T_PUNCH).on_conflict_do_nothing(index_elements=["staff_code", "at"])
    params = [
        {
            "staff_code": r.staff,
            "at": r.at,
            "source": r.source,
            "ref": r.ref[:128],
            "terminal": r.terminal[:64],
            "received_at": now,
        }
        for r in rows
    ]
    done = conn.execute(ins.returning(T_PUNCH.c.staff_code, T_PUNCH.c.at), params).all()
    mark_dirty(conn, [(s, local_date(a if a.tzinfo else a.replace(tzinfo=UTC))) for s, a in done])
    return len(done)


def set_shift(
    conn: Connection,
    sid: str,
    name: str,
    sessions: str,
    days: str,
    grace_in: int,
    grace_out: int,
    on_holidays: bool = False,
) -> rules.Shift:
    sid = sid.strip()
    if not sid or len(sid) > 64:
        raise AttendanceError(_("ID: 1 to 64 characters"))
    try:
        sess = rules.parse_sessions(sessions)
    except ValueError as exc:
        raise AttendanceError(field_error("--sessions", cause(exc))) from None
    if not sess:
        raise AttendanceError(_("--sessions: at least one session"))
    try:
        dset = rules.parse_days(days)
    except ValueError as exc:
        raise AttendanceError(field_error("--days", cause(exc))) from None
    for opt, v in (("--grace-in", grace_in), ("--grace-out", grace_out)):
        if not 0 <= v <= 240:
            raise AttendanceError(field_error(opt, _("{value} is not 0..240 minutes", value=v)))
    if not nfc(name):
        raise AttendanceError(_("--name: empty"))
    row = {
        "name": nfc(name)[:200],
        "sessions": rules.format_sessions(sess),
        "days": rules.format_days(dset),
        "grace_in": grace_in,
        "grace_out": grace_out,
        "on_holidays": bool(on_holidays),
        "updated_at": now_utc(),
    }
    if conn.execute(sa.select(T_SHIFT.c.id).where(T_SHIFT.c.id == sid)).first():
        conn.execute(sa.update(T_SHIFT).where(T_SHIFT.c.id == sid).values(**row))
        mark_all_dirty(conn, EARLIEST, None)
    else:
        conn.execute(sa.insert(T_SHIFT).values(id=sid, **row))
    return rules.Shift(sid, str(row["name"]), sess, dset, grace_in, grace_out, bool(on_holidays))


def assign(
    conn: Connection,
    shift: str,
    start: date,
    end: date | None,
    staff: str | None = None,
    unit: str | None = None,
) -> int:
    """Returns the assignment's id."""
    if (staff is None) == (unit is None):
        raise AttendanceError(_("give exactly one of --staff and --unit"))
    if conn.execute(sa.select(T_SHIFT.c.id).where(T_SHIFT.c.id == shift)).first() is None:
        raise AttendanceError(_("--shift: no shift {shift!r} (cbcc attendance shift set)", shift=shift))
    if end is not None and end < start:
        raise AttendanceError(_("--to: {end} is before --from {start}", end=end, start=start))
    if staff is not None and not staff_known(conn, [staff]):
        raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
    if unit is not None and not unit_known(conn, unit):
        raise AttendanceError(_("--unit: no staff record has unit or agency code {unit!r}", unit=unit))
    res = conn.execute(
        sa.insert(T_ASSIGN).values(
            shift_id=shift, staff_code=staff, unit=unit, start=start, end=end, created_at=now_utc()
        )
    )
    mark_all_dirty(conn, start, end)
    key = res.inserted_primary_key
    if key is None:  # every supported dialect reports it for a single-row insert
        raise RuntimeError("no id for the new assignment")
    return int(key[0])


@dataclass(frozen=True)
class AssignmentRow:
    id: int
    shift: str
    staff: str | None
    unit: str | None
    start: date
    end: date | None


def assignment(conn: Connection, aid: int) -> AssignmentRow | None:
    t = T_ASSIGN
    r = conn.execute(
        sa.select(t.c.id, t.c.shift_id, t.c.staff_code, t.c.unit, t.c.start, t.c.end).where(t.c.id == aid)
    ).first()
    return None if r is None else AssignmentRow(*r)


def end_assignment(
    conn: Connection, aid: int, end: date, today: date, actor: str, role: str = ""
) -> AssignmentRow:
    """Set the last day of an assignment (the row stays: the months it applied to keep it),
    audited ``attendance.assign.end`` as ``actor``.

    A past month's timesheet is closed, so the change may not reach into one: the new end is at
    the earliest the last day of the previous month (of ``today``), and an assignment that already
    ended in a past month is not moved. Returns the row as it was before."""
    a = assignment(conn, aid)
    if a is None:
        raise AttendanceError(_("no shift assignment {id}", id=aid))
    if end < a.start:
        raise AttendanceError(_("to: {end} is before its start {start}", end=end, start=a.start))
    if end.year > 2100:
        raise AttendanceError(_("to: {end} is after 2100", end=end))
    floor = today.replace(day=1) - timedelta(1)
    if a.end is not None and a.end < floor:
        raise AttendanceError(
            _("shift assignment {id} already ended on {end}, in a past month's timesheet", id=aid, end=a.end)
        )
    if end < floor:
        raise AttendanceError(
            _("to: {end} is in a past month, whose timesheets keep the shift; end it on {floor} or later",
              end=end, floor=floor)
        )  # fmt: skip
    conn.execute(sa.update(T_ASSIGN).where(T_ASSIGN.c.id == aid).values(end=end))
    target = a.staff or a.unit or ""
    audit(
        conn,
        actor,
        "attendance.assign.end",
        target,
        role,
        id=aid,
        shift=a.shift,
        start=a.start,
        end=end,
        was=a.end,
    )
    old = a.end or date.max
    if old != end:  # the days between the two ends change
        mark_all_dirty(conn, min(old, end) + timedelta(1), None if a.end is None else max(old, end))
    return a


def first_computed_day(conn: Connection, a: AssignmentRow, today: date) -> date | None:
    """The first day up to ``today`` in the assignment's range with a computed timesheet day of
    someone it covers (the person, or anyone ever in the unit or agency), or None. Conservative
    for a unit: a person's day counts even if another assignment of theirs won it."""
    d = T_DAY
    last = min(a.end or today, today)
    if last < a.start:
        return None
    q = sa.select(sa.func.min(d.c.day, type_=sa.Date)).where(d.c.day >= a.start, d.c.day <= last)
    if a.staff is not None:
        q = q.where(d.c.staff_code == a.staff)
    else:
        members = sa.select(T_SPAN.c.staff_code).where(
            sa.or_(T_SPAN.c.unit == a.unit, T_SPAN.c.agency_code == a.unit)
        )
        q = q.where(d.c.staff_code.in_(members))
    found: date | None = conn.execute(q).scalar()
    return found


def delete_assignment(conn: Connection, aid: int, today: date, actor: str, role: str = "") -> AssignmentRow:
    """Remove an assignment made by mistake: only one that never applied to a computed day up to
    ``today`` (a timesheet someone may have seen or exported); otherwise it is to be ended.
    Audited ``attendance.assign.delete`` as ``actor``."""
    a = assignment(conn, aid)
    if a is None:
        raise AttendanceError(_("no shift assignment {id}", id=aid))
    used = first_computed_day(conn, a, today)
    if used is not None:
        raise AssignmentInUse(
            _("shift assignment {id} already applies to the timesheet of {day}: end it, do not delete it",
              id=aid, day=used)
        )  # fmt: skip
    conn.execute(sa.delete(T_ASSIGN).where(T_ASSIGN.c.id == aid))
    target = a.staff or a.unit or ""
    audit(
        conn, actor, "attendance.assign.delete", target, role, id=aid, shift=a.shift, start=a.start, end=a.end
    )
    mark_all_dirty(conn, a.start, a.end)
    return a


def calendar_set(conn: Connection, day: date, kind: str, name: str = "") -> None:
    if kind not in vncal.KINDS:
        raise AttendanceError(
            _("kind {kind!r} is not one of {kinds}", kind=kind, kinds=", ".join(vncal.KINDS))
        )
    if kind != "workday" and not nfc(name):
        raise AttendanceError(field_error(f"--{kind}", _("a name is needed")))
    conn.execute(sa.delete(T_CAL).where(T_CAL.c.day == day))
    conn.execute(sa.insert(T_CAL).values(day=day, kind=kind, name=nfc(name)[:200], set_at=now_utc()))
    mark_all_dirty(conn, day, day)


def calendar_unset(conn: Connection, day: date) -> bool:
    """Remove the site's override of ``day`` (the shipped calendar applies again); False if none."""
    done = conn.execute(sa.delete(T_CAL).where(T_CAL.c.day == day)).rowcount
    if done:
        mark_all_dirty(conn, day, day)
    return bool(done)


@dataclass(frozen=True)
class CalendarDay:
    day: date
    kind: str  # holiday | dayoff | workday
    name: str
    source: str  # shipped (package + data/vn_calendar.toml) | site (att_calendar)
    shipped: str = ""  # the shipped kind a site override replaces ("" = an ordinary date)


def calendar_year(conn: Connection, year: int) -> list[CalendarDay]:
    """The resolved calendar of ``year`` as the engine uses it (``calendar show``, the console), each
    date with where it comes from and the shipped kind a site override replaces."""
    shipped = vncal.build([year], [])
    overrides = {
        d: (k, n)
        for d, k, n in conn.execute(sa.select(T_CAL.c.day, T_CAL.c.kind, T_CAL.c.name))
        if d.year == year
    }
    resolved = vncal.build([year], [vncal.Override(d, k, n) for d, (k, n) in overrides.items()])
    out = [
        CalendarDay(d, kind, name, "site" if d in overrides else "shipped", shipped.kind(d))
        for kind, table in (
            ("holiday", resolved.holidays),
            ("dayoff", resolved.dayoffs),
            ("workday", resolved.workdays),
        )
        for d, name in table.items()
        if d.year == year
    ]
    return sorted(out, key=lambda c: c.day)


def add_leave(
    conn: Connection, staff: str, kind: str, start: date, end: date, half: str | None, reason: str
) -> int:
    kind = nfc(kind)
    if kind not in rules.LEAVE_KINDS:
        raise AttendanceError(
            field_error(
                "--kind", _("{value!r} is not one of {kinds}", value=kind, kinds=" ".join(rules.LEAVE_KINDS))
            )
        )
    if end < start:
        raise AttendanceError(
            _("--to: {end} is before --from {start} (reversed range)", end=end, start=start)
        )
    if half not in (None, "am", "pm"):
        raise AttendanceError(field_error("--half", _("{value!r} is not am or pm", value=half)))
    if not nfc(reason):
        raise AttendanceError(_("--reason: empty"))
    if not staff_known(conn, [staff]):
        raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
    clash = conn.execute(
        sa.select(T_LEAVE.c.kind, T_LEAVE.c.start, T_LEAVE.c.end).where(
            T_LEAVE.c.staff_code == staff, T_LEAVE.c.start <= end, T_LEAVE.c.end >= start
        )
    ).first()
    if clash is not None:
        raise AttendanceError(
            _(
                "--from/--to: overlaps leave {kind} {start}..{end} of {staff}",
                kind=clash[0],
                start=clash[1],
                end=clash[2],
                staff=staff,
            )
        )
    lid = conn.execute(
        sa.insert(T_LEAVE).values(
            staff_code=staff,
            kind=kind,
            start=start,
            end=end,
            half=half,
            reason=nfc(reason)[:500],
            created_at=now_utc(),
        )
    ).inserted_primary_key
    d, days = start, []
    while d <= end:
        days.append((staff, d))
        d += timedelta(1)
    mark_dirty(conn, days)
    return int(lid[0]) if lid else 0


def correct(conn: Connection, staff: str, action: str, at: datetime, reason: str, actor: str) -> int:
    """Add a punch (a raw punch with source ``correction``) or void every punch of that minute."""
    if not nfc(reason):
        raise AttendanceError(_("--reason: empty"))
    if not staff_known(conn, [staff]):
        raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
    minute = at.replace(second=0, microsecond=0)
    if action == "void":
        hit = conn.execute(
            sa.select(T_PUNCH.c.id).where(
                T_PUNCH.c.staff_code == staff,
                T_PUNCH.c.at >= minute,
                T_PUNCH.c.at < minute + timedelta(minutes=1),
            )
        ).first()
        if hit is None:
            raise AttendanceError(
                _(
                    "--void-punch: {staff} has no punch at {time}",
                    staff=staff,
                    time=at.astimezone(VN),
                )
            )
    elif action != "add":
        raise AttendanceError(_("unknown correction {action!r}", action=action))
    res = conn.execute(
        sa.insert(T_CORR).values(
            staff_code=staff,
            action=action,
            at=at,
            reason=nfc(reason)[:500],
            actor=actor[:64],
            created_at=now_utc(),
        )
    )
    pk = res.inserted_primary_key
    if pk is None:  # every supported database returns it
        raise AttendanceError(_("the correction was not stored"))
    cid = int(pk[0])
    if action == "add":
        ins = _insert(conn, T_PUNCH).on_conflict_do_nothing(index_elements=["staff_code", "at"])
        conn.execute(
            ins.values(
                staff_code=staff,
                at=at,
                source="correction",
                ref=f"correction:{cid}",
                terminal="",
                received_at=now_utc(),
            )
        )
    mark_dirty(conn, [(staff, local_date(at))])
    audit(conn, actor, f"attendance.correct.{action}", staff, at=at.isoformat(), reason=nfc(reason))
    return cid


# ---- the month's inputs in bulk ---------------------------------------------------------------------


def _us_expr(conn: Connection) -> Any:
    col = T_PUNCH.c.at
    if _pg(conn):
        return sa.cast(sa.func.extract("epoch", col) * 1_000_000, sa.BigInteger)
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" in UTC.
    return sa.cast(sa.func.strftime("%s", col), sa.Integer) * 1_000_000 + sa.cast(
        sa.func.coalesce(sa.func.nullif(sa.func.substr(col, 21, 6), ""), "0"), sa.Integer
    )


def utc_midnight(d: date) -> datetime:
    """The UTC instant of civil midnight starting ``d`` in Vietnam."""
    return datetime(d.year, d.month, d.day, tzinfo=VN).astimezone(UTC)


@dataclass
class Loaded:
    inp: rules.MonthInput
    positions: dict[str, str] = field(default_factory=dict)
    agency_of: dict[str, str] = field(default_factory=dict)


def load_month(
    conn: Connection,
    year: int,
    month: int,
    staff: Sequence[str] | None = None,
    seen: dict[str, list[tuple[date, str, str]]] | None = None,
    records: dict[str, tuple[str, str, str]] | None = None,
    common: tuple[Any, Any, Any] | None = None,
) -> Loaded:
    """Everything the engine needs for the month (and the night shift reaching into it), in one
    query per table. ``staff``: only these people (incremental recompute). ``seen``: their unit
    history as :func:`refresh_spans` just read it (not read again); ``records``: their staff
    records as it read them; ``common``: :func:`load_common`'s answer (not read again)."""
    dates = rules.month_dates(year, month)
    lo, hi = utc_midnight(dates[0] - timedelta(1)), utc_midnight(dates[-1] + timedelta(2))
    cal, shifts, assigns = common or load_common(conn, year, month)

    def only(q: Any, col: Any) -> Any:
        return q.where(_among(conn, col, staff)) if staff is not None else q

    names: dict[str, str] = {}
    positions: dict[str, str] = {}
    agency_of: dict[str, str] = {}
    if records is not None and staff is not None:
        people: Any = ((c, *records[c]) for c in staff if c in records)
    else:
        q_staff = sa.select(
            T_STAFF.c.staff_code, T_STAFF.c.full_name, T_STAFF.c.position, T_STAFF.c.agency_code
        )
        people = conn.execute(only(q_staff, T_STAFF.c.staff_code))
    for code, name, pos, ag in people:
        names[code], positions[code], agency_of[code] = name, pos, ag
    spans = _spans_of(conn, staff, seen)
    us = _us_expr(conn)
    punches = _pg_punches(conn, lo, hi, staff) if _pg(conn) else _sqlite_punches(conn, lo, hi, staff)
    # The punches HR added (source "correction"): only for the people with an added punch in the
    # range (att_correction is small), through the index on (staff_code, at). Filtering every punch
    # of the range on ``source`` (no index) cost ~0.1 s on each of 3 PostgreSQL processes per
    # report, 1.28 M punches; a join let SQLite's planner walk all the punches (4.6 s).
    corrected: dict[str, set[int]] = {}
    q = sa.select(T_CORR.c.staff_code).where(T_CORR.c.action == "add", T_CORR.c.at >= lo, T_CORR.c.at < hi)
    who = sorted({r[0] for r in conn.execute(only(q, T_CORR.c.staff_code))})
    for i in range(0, len(who), 1000):
        q = sa.select(T_PUNCH.c.staff_code, us).where(
            T_PUNCH.c.staff_code.in_(who[i : i + 1000]),
            T_PUNCH.c.at >= lo,
            T_PUNCH.c.at < hi,
            T_PUNCH.c.source == "correction",
        )
        for code, t in conn.execute(q):
            corrected.setdefault(code, set()).add(int(t))
    voids: dict[str, set[int]] = {}
    for code, at in conn.execute(
        only(
            sa.select(T_CORR.c.staff_code, T_CORR.c.at).where(
                T_CORR.c.action == "void", T_CORR.c.at >= lo, T_CORR.c.at < hi
            ),
            T_CORR.c.staff_code,
        )
    ):
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        voids.setdefault(code, set()).add(rules.local_minute(int(at.timestamp()) * 1_000_000))
    leaves: dict[str, list[rules.Leave]] = {}
    for code, kind, st, en, half in conn.execute(
        only(
            sa.select(
                T_LEAVE.c.staff_code, T_LEAVE.c.kind, T_LEAVE.c.start, T_LEAVE.c.end, T_LEAVE.c.half
            ).where(T_LEAVE.c.start <= dates[-1], T_LEAVE.c.end >= dates[0] - timedelta(1)),
            T_LEAVE.c.staff_code,
        )
    ):
        leaves.setdefault(code, []).append(rules.Leave(code, kind, st, en, half))
    inp = rules.MonthInput(year, month, cal, shifts, assigns, names, spans, punches, voids, leaves, corrected)
    return Loaded(inp, positions, agency_of)


def _spans_of(
    conn: Connection, staff: Sequence[str] | None, seen: dict[str, list[tuple[date, str, str]]] | None
) -> dict[str, list[rules.Span]]:
    spans: dict[str, list[rules.Span]] = {}
    if seen is not None and staff is not None:
        for code in sorted(set(staff)):
            if code in seen:
                spans[code] = [rules.Span(st, un, ag) for st, un, ag in sorted(seen[code])]
        return spans
    q_span = sa.select(T_SPAN.c.staff_code, T_SPAN.c.start, T_SPAN.c.unit, T_SPAN.c.agency_code)
    q_span = q_span.order_by(T_SPAN.c.staff_code, T_SPAN.c.start)
    if staff is not None:
        q_span = q_span.where(_among(conn, T_SPAN.c.staff_code, staff))
    for code, st, un, ag in conn.execute(q_span):
        spans.setdefault(code, []).append(rules.Span(st, un, ag))
    return spans


def load_common(conn: Connection, year: int, month: int) -> tuple[Any, Any, Any]:
    """The month's inputs every person's rows depend on: (calendar, shifts, assignments)."""
    dates = rules.month_dates(year, month)
    years = sorted({dates[0].year, (dates[0] - timedelta(1)).year})
    overrides = [
        vncal.Override(d, k, n)
        for d, k, n in conn.execute(sa.select(T_CAL.c.day, T_CAL.c.kind, T_CAL.c.name))
    ]
    cal = vncal.build(years, overrides)
    shifts = {}
    for sid, name, sess, days, gi, go, oh in conn.execute(
        sa.select(
            T_SHIFT.c.id,
            T_SHIFT.c.name,
            T_SHIFT.c.sessions,
            T_SHIFT.c.days,
            T_SHIFT.c.grace_in,
            T_SHIFT.c.grace_out,
            T_SHIFT.c.on_holidays,
        )
    ):
        shifts[sid] = rules.Shift(
            sid, name, rules.parse_sessions(sess), rules.parse_days(days), gi, go, bool(oh)
        )
    assigns = [
        rules.Assignment(sh, st, en, sc, un, i)
        for i, sh, st, en, sc, un in conn.execute(
            sa.select(
                T_ASSIGN.c.id,
                T_ASSIGN.c.shift_id,
                T_ASSIGN.c.start,
                T_ASSIGN.c.end,
                T_ASSIGN.c.staff_code,
                T_ASSIGN.c.unit,
            ).where(
                sa.or_(T_ASSIGN.c.end.is_(None), T_ASSIGN.c.end >= dates[0] - timedelta(1)),
                T_ASSIGN.c.start <= dates[-1],
            )
        )
    ]
    return cal, shifts, assigns


_PG_PUNCHES = "SELECT staff_code, array_send(array_agg(at)) FROM att_punch WHERE at >= %s AND at < %s"
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's timestamps count microseconds from 2000-01-01 UTC
_PG_ARRAY_HEAD = 20  # a 1-dimension array_send: ndim, has-null, element type, length, lower bound


def _pg_punches(
    conn: Connection, lo: datetime, hi: datetime, staff: Sequence[str] | None
) -> dict[str, list[int]]:
    """One row per person: their punch times as the binary form of a ``timestamptz[]``
    (``array_send``: each element a 4-byte length and the server's own int64 microseconds since
    2000), unpacked in C by ``struct`` into UTC microseconds since 1970 (exact). The server only
    gathers index entries: converting each time to a number there (``extract(epoch ...)`` is
    ``numeric``) cost it about as much as reading them (1.28 M punches, loaded machine: wall
    0.99-2.71 s against 0.65-1.66 s now, client CPU 0.07-0.13 s against 0.14-0.19 s)."""
    sql = _PG_PUNCHES
    params: list[Any] = [lo, hi]
    if staff is not None:
        sql += " AND staff_code = ANY(string_to_array(%s, ','))"  # one text (see _among)
        params.append(",".join(staff))
        if any("," in c for c in staff):
            sql, params[-1] = sql.replace("string_to_array(%s, ',')", "%s"), list(staff)
    raw: Any = conn.connection.driver_connection
    out: dict[str, list[int]] = {}
    unpack, head, epoch = struct.unpack_from, _PG_ARRAY_HEAD, _PG_EPOCH_US
    with raw.cursor(binary=True) as cur:
        cur.execute(sql + " GROUP BY staff_code", params)
        for code, data in cur:
            n = (len(data) - head) // 12
            out[code] = [t + epoch for t in unpack(">" + "4xq" * n, data, head)]
    return out


def _sqlite_punches(
    conn: Connection, lo: datetime, hi: datetime, staff: Sequence[str] | None
) -> dict[str, list[int]]:
    """One row per staff record: their punch times as one comma-separated text, split in Python
    (1.2 M punches: far fewer Python objects than one row each). Each person's run is read from
    the unique index on (staff_code, at), which holds both columns: filtering the whole table on
    ``at`` used the index on ``at`` alone, looked up every row and sorted them for the grouping
    (1.28 M punches: 3.1 s against 0.84 s of SQLite's time). Punches of codes without a staff
    record are left out here: the engine reports only staff it has records for."""
    times = (
        sa.select(sa.func.group_concat(_us_expr(conn), ","))
        .where(T_PUNCH.c.staff_code == T_STAFF.c.staff_code, T_PUNCH.c.at >= lo, T_PUNCH.c.at < hi)
        .scalar_subquery()
    )
    q = sa.select(T_STAFF.c.staff_code, times)
    if staff is not None:
        q = q.where(T_STAFF.c.staff_code.in_(list(staff)))
    return {code: list(map(int, text.split(","))) for code, text in conn.execute(q) if text}


def catch_up_month(conn: Connection, year: int, month: int) -> int:
    """Reader punches that were provisional at ingest (clock unset) and are final now."""
    from gateway.attendance.readers import catch_up

    dates = rules.month_dates(year, month)
    return catch_up(conn, utc_midnight(dates[0] - timedelta(1)), utc_midnight(dates[-1] + timedelta(2)))


def scope_where(column: Any, scope: str) -> Any:
    """SQL condition: ``column`` (a unit code) lies within ``scope`` — the rule of
    :func:`gateway.auth.in_scope` (whole segments: ``H01`` covers ``H01.05``, never ``H010``)."""
    if not scope:
        return sa.true()
    exact, prefixes = scope_prefixes(scope)
    conds = [column.startswith(p, autoescape=True) for p in prefixes]
    if exact is not None:
        conds.append(column == exact)
    return sa.or_(*conds)


def _in_view(unit: str | None, scope: str) -> tuple[Any, Any]:
    """(condition on the unit history, condition on the staff records) selecting the people a
    report of ``unit`` within ``scope`` can hold: anyone ever in it, or in it now."""
    span = sa.or_(scope_where(T_SPAN.c.unit, scope), scope_where(T_SPAN.c.agency_code, scope))
    staff = sa.or_(scope_where(T_STAFF.c.unit, scope), scope_where(T_STAFF.c.agency_code, scope))
    if unit is not None:
        span = sa.and_(sa.or_(T_SPAN.c.unit == unit, T_SPAN.c.agency_code == unit), span)
        staff = sa.and_(sa.or_(T_STAFF.c.unit == unit, T_STAFF.c.agency_code == unit), staff)
    return span, staff


def _after(text: str) -> str | None:
    """The least string above every string starting with ``text`` in code point order (= the byte
    order of UTF-8 = ``COLLATE "C"``), or None when the last character has no successor."""
    nxt = ord(text[-1]) + 1
    if nxt > 0x10FFFF or 0xD800 <= nxt <= 0xDFFF:
        return None
    return text[:-1] + chr(nxt)


def _agency_in_scope(conn: Connection, scope: str) -> Any:
    """The staff records whose agency code is within ``scope``. On PostgreSQL as byte-order ranges,
    which the index on ``agency_code COLLATE "C"`` (migration 0007) serves: a LIKE on a bound
    parameter reads all 2 M records (seconds on a cold cache)."""
    if not scope or not _pg(conn):
        return scope_where(T_STAFF.c.agency_code, scope)
    code = T_STAFF.c.agency_code.collate("C")

    def lit(v: str) -> Any:  # in the statement's text: psycopg's prepared generic plan (from the
        return sa.literal(v, literal_execute=True)  # 6th run on) read the whole table (5 s)

    exact, prefixes = scope_prefixes(scope)
    conds = [code == lit(exact)] if exact is not None else []
    for p in prefixes:
        hi = _after(p)
        conds.append(sa.and_(code >= lit(p), code < lit(hi)) if hi is not None else code >= lit(p))
    return sa.or_(*conds)


def people_in_view(db: DB, scope: str = "", bound: int | None = None) -> int:
    """How many staff records have their agency within ``scope`` (now); with ``bound``, counting
    stops past it (a page only needs to know whether the population is too large to compute per
    request). Records in scope by their unit only are not counted (no index serves them)."""
    with connect(db) as conn:
        q = sa.select(T_STAFF.c.staff_code).where(_agency_in_scope(conn, scope))
        if bound is not None:
            q = q.limit(bound + 1)
        return int(conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one())


# The distinct agency codes in [lo, hi) by index probes (a skip scan), at most :cap: also the
# console search's per-agency plan (gateway/console/search.py).
AGENCY_CODES_PG = sa.text(
    """WITH RECURSIVE c(code) AS (
      (SELECT agency_code COLLATE "C" FROM staffrecord
        WHERE agency_code COLLATE "C" >= :lo AND agency_code COLLATE "C" < :hi ORDER BY 1 LIMIT 1)
      UNION ALL
      SELECT (SELECT agency_code COLLATE "C" FROM staffrecord
               WHERE agency_code COLLATE "C" > c.code AND agency_code COLLATE "C" < :hi ORDER BY 1 LIMIT 1)
        FROM c WHERE c.code IS NOT NULL)
    SELECT code FROM c WHERE code IS NOT NULL LIMIT :cap"""
)

# The head count of each agency: the sum of the changes the triggers on staffrecord append
# (migration 0010_consolegaps); ``rows`` tells when to fold them back to one row per agency.
HEADCOUNT_PG = sa.text(
    """SELECT agency_code, sum(n), count(*) FROM agency_headcount
        WHERE agency_code >= :lo AND agency_code < :hi
        GROUP BY agency_code HAVING sum(n) > 0 ORDER BY agency_code LIMIT :cap"""
)
# One row per agency again. Rows another transaction appends meanwhile are not visible to the
# DELETE and stay; a concurrent fold waits for this one, then finds the rows gone.
HEADCOUNT_FOLD_PG = sa.text(
    """WITH gone AS (DELETE FROM agency_headcount RETURNING agency_code, n)
    INSERT INTO agency_headcount (agency_code, n)
    SELECT agency_code, sum(n) FROM gone GROUP BY agency_code HAVING sum(n) <> 0"""
)
HEADCOUNT_FOLD_AT = 2000  # rows beyond one per agency read that trigger a fold


def agencies_in_view(db: DB, scope: str = "", limit: int = 300) -> list[tuple[str, int]]:
    """(agency code, head count now) of the staff records with their agency within ``scope``, at
    most ``limit`` in code order: what a page offers to choose from when the scope is too large.
    PostgreSQL reads the counts the database keeps (``agency_headcount``); counting per request
    read every record of the scope (2 M nationally: 0.6-1.7 s)."""
    with connect(db) as conn:
        if not _pg(conn):
            q = (
                sa.select(T_STAFF.c.agency_code, sa.func.count())
                .where(_agency_in_scope(conn, scope))
                .group_by(T_STAFF.c.agency_code)
                .order_by(T_STAFF.c.agency_code)
                .limit(limit)
            )
            return [(str(a), int(n)) for a, n in conn.execute(q)]
        hi = (_after(scope) if scope else None) or "\U0010ffff"
        rows = conn.execute(HEADCOUNT_PG, {"lo": scope, "hi": hi, "cap": limit * 2}).all()
        if sum(int(r[2]) for r in rows) > len(rows) + HEADCOUNT_FOLD_AT:
            conn.execute(HEADCOUNT_FOLD_PG)
        return [(str(a), int(n)) for a, n, _rows in rows if in_scope(scope, a)][:limit]


def _codes_in_view(
    conn: Connection,
    unit: str | None,
    scope: str,
    seen: dict[str, list[tuple[date, str, str]]] | None = None,
    records: dict[str, tuple[str, str, str]] | None = None,
) -> list[str]:
    span_cond, staff_cond = _in_view(unit, scope)
    # those in view now, and those who were (a transfer out of it opens their next span); found
    # first, each by its index (migration 0009): as one OR with a subquery PostgreSQL read all 2 M
    # staff records per request (0.4-0.5 s)
    now = set(conn.execute(sa.select(T_STAFF.c.staff_code).where(staff_cond)).scalars())
    were = set(conn.execute(sa.select(T_SPAN.c.staff_code).where(span_cond)).scalars())
    if not refresh_spans(conn, _among(conn, T_STAFF.c.staff_code, sorted(now | were)), seen, records):
        return sorted(were)  # no span added: the same query's answer
    return sorted({r[0] for r in conn.execute(sa.select(T_SPAN.c.staff_code).where(span_cond))})


# ---- computed rows kept per process for the console's pages ------------------------------------------


_GEN = count(1)  # the kept contents' numbers (_Memo.gen)


@dataclass
class _Memo:
    """One page's month (a key of :data:`_MEMO`): the inputs every row depends on, and per person
    what their rows were computed at (staff record, stamp) with the rows and overtime candidates.
    ``gen``: this content's number (a new one whenever any row, candidate or the people changed);
    ``scoped``, ``cands``: the rows and the candidates within a scope, derived once per scope."""

    common: tuple[Any, ...]
    people: dict[str, tuple[tuple[Any, ...], list[dict[str, Any]], list[dict[str, Any]]]]
    gen: int = field(default_factory=lambda: next(_GEN))
    scoped: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Kept:
    """A month of one unit as the console's pages see it (:func:`kept_month`): every object is
    shared with the process's memo — read only. ``gen`` is the same for two calls exactly when
    their rows and candidates are the same, so a page may keep what it derived from them."""

    gen: int
    month: str
    rows: list[dict[str, Any]]  # the report's staff rows within the scope, by code then date
    memo: _Memo = field(repr=False, compare=False)
    scope: str = ""

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """The overtime candidates of :attr:`rows`, by (staff, date); gathered once per scope."""
        with _MEMO_LOCK:
            got = self.memo.cands.get(self.scope)
        if got is None:
            got = [o for _, _, cs in self.memo.people.values() for o in cs]
            if len(self.rows) < sum(len(rs) for _, rs, _ in self.memo.people.values()):
                keep = {r["staff"] for r in self.rows}
                got = [o for o in got if o["staff"] in keep]
            with _MEMO_LOCK:
                self.memo.cands[self.scope] = got
        return got


_MEMO: OrderedDict[tuple[Any, ...], _Memo] = OrderedDict()
_MEMO_LOCK = threading.Lock()
SETTLE_MIN = 1000  # people recomputed at once from which the kept rows are settled (bulk.settle)
MEMO_KEYS = 4  # months of units kept (least recently used dropped)
SCOPES_KEPT = 8  # scopes' rows kept per memo
_Record = tuple[str, str, str, str, Any]  # full name, position, agency, unit, updated_at


def _view_records(
    conn: Connection, unit: str | None, scope: str
) -> tuple[dict[str, _Record], set[str] | None]:
    """The staff records of the people a report of ``unit`` within ``scope`` can hold (in it now,
    or ever per the unit history), and the latter's codes (None: the nation, everyone)."""
    cols = (
        T_STAFF.c.full_name,
        T_STAFF.c.position,
        T_STAFF.c.agency_code,
        T_STAFF.c.unit,
        T_STAFF.c.updated_at,
    )
    q = sa.select(T_STAFF.c.staff_code, *cols)
    if unit is None and not scope:
        return {r[0]: tuple(r[1:]) for r in conn.execute(q).all()}, None
    span_cond, staff_cond = _in_view(unit, scope)
    recs: dict[str, _Record] = {r[0]: tuple(r[1:]) for r in conn.execute(q.where(staff_cond)).all()}
    were = set(conn.execute(sa.select(T_SPAN.c.staff_code).where(span_cond)).scalars().all())
    if more := sorted(were - recs.keys()):
        recs.update(
            (r[0], tuple(r[1:])) for r in conn.execute(q.where(_among(conn, T_STAFF.c.staff_code, more)))
        )
    return recs, were


def _stamps(conn: Connection, month: str, codes: Sequence[str] | None) -> dict[str, int]:
    """The month's change stamps (:func:`mark_dirty`) of these people (None: all) and ``ALL``'s."""
    q = sa.select(T_STAMP.c.staff_code, T_STAMP.c.seq).where(T_STAMP.c.month == month)
    if codes is not None:
        q = q.where(_among(conn, T_STAMP.c.staff_code, [*codes, ALL]))
    return {str(c): int(n) for c, n in conn.execute(q).all()}


def _compute_kept(
    conn: Connection,
    year: int,
    month: int,
    unit: str | None,
    scope: str,
) -> _Memo:
    """``rules.compute`` of the people a report of ``unit`` within ``scope`` holds, computing only
    those whose staff record or change stamp (:func:`mark_dirty`) differs from the last call for
    the same month and unit in this process — and everyone when the calendar, shifts,
    assignments or the month's ``ALL`` stamp differ. A page of an agency (4,300 people) then
    reads their staff records and stamps, not their ~310,000 punches, and a new punch loads and
    recomputes one person. Stamps are read before the inputs they cover (a change committed in
    between is computed now and again next time, never missed). The rows' ``days`` and the
    candidates (``overtime``, by staff code and date) are shared between calls: read only (the row
    memo is replaced, never changed, so a returned one stays as it was)."""
    key = (year, month, unit)
    with _MEMO_LOCK:
        kept = _MEMO.get(key)
    old = kept.people if kept is not None else {}
    recs, were = _view_records(conn, unit, scope)
    catch_up_month(conn, year, month)
    mon = f"{year:04d}-{month:02d}"
    stamps = _stamps(conn, mon, None if were is None else list(recs))
    # what each person's rows depend on of their own: staff record and stamp, compared once
    mine = {c: (r, stamps.get(c)) for c, r in recs.items()}
    moved = [c for c, v in mine.items() if (p := old.get(c)) is None or p[0] != v]
    restamped = False
    if moved:
        # follow a changed staff record (a transfer) or unit history into the spans, as a full
        # report does for everyone; the spans it adds raise their stamps
        only = None if were is None and kept is None else _among(conn, T_STAFF.c.staff_code, moved)
        if refresh_spans(conn, only):
            restamped = True
            stamps = _stamps(conn, mon, None if were is None else list(recs))
            mine = {c: (r, stamps.get(c)) for c, r in recs.items()}
            if were is not None:
                were = set(
                    conn.execute(sa.select(T_SPAN.c.staff_code).where(_in_view(unit, scope)[0])).scalars()
                )
    codes = sorted(recs.keys() if were is None else were & recs.keys())
    common = (*load_common(conn, year, month), stamps.get(ALL))
    same = kept is not None and kept.common == common
    if not same:  # a rule every row depends on changed (or nothing is kept): everyone
        stale = codes
    elif not restamped:  # the people compared above are the ones to compute
        inside = set(codes)
        stale = [c for c in moved if c in inside]
    else:
        stale = [c for c in codes if (p := old.get(c)) is None or p[0] != mine[c]]
    people = dict(old) if same else {}  # a copy: a memo is never changed once made
    if stale:
        records = {c: recs[c][:3] for c in stale}
        inp = load_month(conn, year, month, stale, records=records, common=common[:3]).inp
        found: list[dict[str, Any]] = []
        rows: dict[str, list[dict[str, Any]]] = {c: [] for c in stale}
        cands: dict[str, list[dict[str, Any]]] = {c: [] for c in stale}
        for row in rules.compute(inp, unit=unit, overtime=found)["staff"]:
            rows[row["staff"]].append(row)
        for ot in found:
            cands[ot["staff"]].append(ot)
        for c in stale:
            cands[c].sort(key=itemgetter("date"))  # stable: in overtime()'s order as they come
            people[c] = (mine[c], rows[c], cands[c])
    if kept is not None and same and not stale and list(old) == codes:
        memo = kept  # nothing changed: the same content, the same number
    else:
        memo = _Memo(common, {c: people[c] for c in codes})  # the engine's order: code, date
    with _MEMO_LOCK:
        _MEMO[key] = memo
        _MEMO.move_to_end(key)
        while len(_MEMO) > MEMO_KEYS:
            _MEMO.popitem(last=False)
    if len(stale) >= SETTLE_MIN:
        settle()
    return memo


def _rows_in_scope(scope: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose unit or agency lies within ``scope``, each (unit, agency) pair tested once
    (an agency's 4,300 rows share a few dozen: the test per row cost ~20 ms)."""
    seen: dict[tuple[str, str], bool] = {}
    out = []
    for r in rows:
        key = (r["unit"], r["agency"])
        ok = seen.get(key)
        if ok is None:
            ok = seen[key] = in_scope(scope, key[0]) or in_scope(scope, key[1])
        if ok:
            out.append(r)
    return out


def kept_month(db: DB, month: str, unit: str | None = None, scope: str = "") -> Kept:
    """The console's pages' month of ``unit`` within ``scope``: only the people whose inputs
    changed since the last call for the same month and unit in this process are computed
    (:func:`_compute_kept`); the rows and candidates are shared: read only."""
    year, mon = parse_month(month)
    with no_gc(), connect(db) as conn:
        _custom_plans(conn)
        memo = _compute_kept(conn, year, mon, unit, scope)
    with _MEMO_LOCK:
        rows = memo.scoped.get(scope)
    if rows is None:
        rows = [r for _, rs, _ in memo.people.values() for r in rs]
        # a unit within the scope: its rows are of that unit or agency (Span.matches), all within
        if scope and not (unit is not None and in_scope(scope, unit)):
            rows = _rows_in_scope(scope, rows)
        with _MEMO_LOCK:
            memo.scoped[scope] = rows
            while len(memo.scoped) > SCOPES_KEPT:
                memo.scoped.pop(next(iter(memo.scoped)))
                memo.cands.clear()
    return Kept(memo.gen, f"{year:04d}-{mon:02d}", rows, memo, scope)


def compute_month(
    db: DB,
    month: str,
    unit: str | None = None,
    staff: str | None = None,
    scope: str = "",
    kept: bool = False,
) -> dict[str, Any]:
    """The contract's report dict for ``month`` ("YYYY-MM"), optionally one unit or one person.

    ``scope``: a unit-code scope (an ``hr`` token's); rows of other units are left out, and only
    the people ever in it are loaded and computed (not the whole nation). ``kept`` (not with
    ``staff``): :func:`kept_month`'s rows, each a fresh copy (their days shared: read only)."""
    if kept and staff is None:
        k = kept_month(db, month, unit, scope)
        return {"month": k.month, "staff": [dict(r) for r in k.rows]}
    year, mon = parse_month(month)
    with no_gc(), connect(db) as conn:
        report = _report(conn, year, mon, unit, staff, scope, None)
    if scope:
        report["staff"] = _rows_in_scope(scope, report["staff"])
    return report


def _report(
    conn: Connection,
    year: int,
    mon: int,
    unit: str | None,
    staff: str | None,
    scope: str,
    overtime: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """:func:`compute_month`'s report before the scope filter (``overtime``: filled with the
    candidates)."""
    _custom_plans(conn)
    codes: list[str] | None = [staff] if staff is not None else None
    seen: dict[str, list[tuple[date, str, str]]] | None = None
    records: dict[str, tuple[str, str, str]] | None = None
    if codes is None and (unit is not None or scope):  # only the people who were ever in view
        seen, records = {}, {}
        codes = _codes_in_view(conn, unit, scope, seen, records)
    else:
        refresh_spans(conn)
    catch_up_month(conn, year, mon)
    loaded = load_month(conn, year, mon, codes, seen, records)
    include = {staff} if staff and overtime is None else None  # a person's report lists them anyway
    return rules.compute(loaded.inp, unit=unit, staff=staff, include=include, overtime=overtime)


def report_json(report: dict[str, Any]) -> bytes:
    """The contract's byte-identical JSON: sorted keys, UTF-8 (not escaped), floats as Python
    writes them (1.0, 0.5), one trailing newline."""
    return (json.dumps(report, sort_keys=True, ensure_ascii=False) + "\n").encode()


# ---- computed person-days, kept current incrementally ---------------------------------------------


@dataclass
class RefreshReport:
    person_months: int = 0
    days_written: int = 0
    days_deleted: int = 0


_DAY_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode  # json.dumps makes one per call
_PG_BULK_ROWS = 1000  # from this many rows on, PostgreSQL gets them by COPY / one unnest statement


def _store_rows(conn: Connection, report: dict[str, Any], codes: set[str] | None, out: RefreshReport) -> None:
    fresh: dict[tuple[str, date, str], str] = {}
    day_of = {d: date.fromisoformat(d) for d in (report["staff"][0]["days"] if report["staff"] else ())}
    for row in report["staff"]:
        code, unit = row["staff"], row["unit"]
        for d, entry in row["days"].items():
            key = (code, day_of.get(d) or date.fromisoformat(d), unit)
            fresh[key] = _DAY_JSON(entry)
    dates = rules.month_dates(*parse_month(report["month"]))
    q = sa.select(T_DAY.c.staff_code, T_DAY.c.day, T_DAY.c.unit, T_DAY.c.data).where(
        T_DAY.c.day >= dates[0], T_DAY.c.day <= dates[-1]
    )
    if codes is not None:
        q = q.where(_among(conn, T_DAY.c.staff_code, codes))
    old = {(s, d, u): data for s, d, u, data in conn.execute(q)}
    gone = old.keys() - fresh.keys()
    changed = [k for k, v in fresh.items() if old.get(k) != v]
    stale = [k for k in changed if k in old] + sorted(gone)
    if _pg(conn) and len(stale) + len(changed) >= _PG_BULK_ROWS:
        _pg_replace_days(conn, stale, [(s, d, u, fresh[(s, d, u)]) for s, d, u in changed])
    else:
        if stale:
            conn.execute(
                sa.delete(T_DAY).where(
                    T_DAY.c.staff_code == sa.bindparam("s"),
                    T_DAY.c.day == sa.bindparam("d"),
                    T_DAY.c.unit == sa.bindparam("u"),
                ),
                [{"s": s, "d": d, "u": u} for s, d, u in stale],
            )
        if changed:
            now = now_utc()
            conn.execute(
                sa.insert(T_DAY),
                [
                    {"staff_code": s, "day": d, "unit": u, "data": fresh[(s, d, u)], "computed_at": now}
                    for s, d, u in changed
                ],
            )
    out.days_written += len(changed)
    out.days_deleted += len(gone)


def _pg_replace_days(
    conn: Connection, stale: list[tuple[str, date, str]], rows: list[tuple[str, date, str, str]]
) -> None:
    """Many person-days at once (a whole month after a schedule change): the stale ones deleted by
    one statement over arrays, the new ones sent by COPY on the transaction's own connection
    (300,000 rows through executemany cost ~12 s of this process's CPU)."""
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        if stale:
            cur.execute(
                "DELETE FROM att_day USING unnest(%s::varchar[], %s::date[], %s::varchar[]) AS x(s, d, u)"
                " WHERE att_day.staff_code = x.s AND att_day.day = x.d AND att_day.unit = x.u",
                [[s for s, _d, _u in stale], [d for _s, d, _u in stale], [u for _s, _d, u in stale]],
            )
        if rows:
            now = now_utc()
            with cur.copy("COPY att_day (staff_code, day, unit, data, computed_at) FROM STDIN") as cp:
                for s, d, u, data in rows:
                    cp.write_row((s, d, u, data, now))


def refresh_days(db: DB) -> RefreshReport:
    """Recompute the person-months whose inputs changed (``att_dirty``) and rewrite only the
    person-days whose result differs. A whole-month mark (``*``) recomputes everyone that month."""
    out = RefreshReport()
    with no_gc(), connect(db) as conn:
        refresh_spans(conn)
        dirty: dict[str, set[str]] = {}
        read = conn.execute(sa.select(T_DIRTY.c.staff_code, T_DIRTY.c.month, T_DIRTY.c.marks)).all()
        for s, m, _n in read:
            dirty.setdefault(m, set()).add(s)
        waiting: list[dict[str, Any]] = []  # punches of staff codes not known yet: kept for later
        for month, codes in sorted(dirty.items()):
            year, mon = parse_month(month)
            if ALL in codes:
                named = codes - {ALL}
                unknown = named - staff_known(conn, named)
                waiting += [{"staff_code": s, "month": month} for s in sorted(unknown)]
                loaded = load_month(conn, year, mon)
                report = rules.compute(loaded.inp)
                _store_rows(conn, report, None, out)
                out.person_months += len(report["staff"])
            else:
                known = sorted(codes & staff_known(conn, codes))
                waiting += [{"staff_code": s, "month": month} for s in sorted(codes - set(known))]
                if not known:
                    continue
                loaded = load_month(conn, year, mon, known)
                report = rules.compute(loaded.inp, include=None)
                _store_rows(conn, report, set(known), out)
                out.person_months += len(known)
        # the marks computed: each row as it was read. A mark made since (its count moved, or a
        # new row) stays for the next refresh; the rows of staff not known yet stay as they are
        # (they count as soon as the staff record arrives, contract §3)
        keep = {(w["staff_code"], w["month"]) for w in waiting}
        done = [{"s": s, "m": m, "n": n} for s, m, n in read if (s, m) not in keep]
        if done:
            d = T_DIRTY.c
            conn.execute(
                sa.delete(T_DIRTY).where(
                    d.staff_code == sa.bindparam("s"),
                    d.month == sa.bindparam("m"),
                    d.marks == sa.bindparam("n"),
                ),
                done,
            )
    return out


def stored_days(db: DB, month: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The computed person-days of a month: (staff, date, unit) -> day entry."""
    dates = rules.month_dates(*parse_month(month))
    with connect(db) as conn:
        rows = conn.execute(
            sa.select(T_DAY.c.staff_code, T_DAY.c.day, T_DAY.c.unit, T_DAY.c.data).where(
                T_DAY.c.day >= dates[0], T_DAY.c.day <= dates[-1]
            )
        ).all()
    return {(s, d.isoformat(), u): json.loads(data) for s, d, u, data in rows}


# ---- overtime ----------------------------------------------------------------------------------

T_OVERTIME = AttOvertime.__table__  # type: ignore[attr-defined]


def overtime(
    db: DB,
    month: str,
    unit: str | None = None,
    staff: str | None = None,
    scope: str = "",
    kept: bool = False,
) -> list[dict[str, Any]]:
    """The month's overtime candidates, each with the minutes approved so far (0 if none), by
    (staff, date).

    ``scope``: only the people with a row of the month within it (as :func:`compute_month`), and
    only they are loaded and computed. ``kept`` (not with ``staff``): :func:`kept_month`'s
    candidates (one memo serves both)."""
    year, mon = parse_month(month)
    if kept and staff is None:
        found = kept_month(db, month, unit, scope).candidates  # in (staff, date) order already
    else:
        found = []
        with no_gc(), connect(db) as conn:  # as compute_month: the engine's many small objects
            report = _report(conn, year, mon, unit, staff, scope, found)
        if scope:
            keep = {r["staff"] for r in _rows_in_scope(scope, report["staff"])}
            found = [o for o in found if o["staff"] in keep]
        found.sort(key=itemgetter("staff", "date"))
    approved = _approved(db, year, mon, None)
    return [{**ot, "approved_min": approved.get((ot["staff"], ot["date"]), 0)} for ot in found]


def overtime_page(
    db: DB, month: str, unit: str | None, scope: str, start: int, count: int, least: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The console's page: ``count`` of the kept candidates (:func:`kept_month`) from ``start``
    (0-based), of those with at least ``least`` minutes, each with its approval, and how many
    such there are. An agency-month has ~90,000 candidates: copying each with its approval cost
    ~0.1-0.2 s, and a page of 500 forms ~0.1 s to render."""
    year, mon = parse_month(month)
    found = kept_month(db, month, unit, scope).candidates
    if least > 0:
        found = [o for o in found if o["minutes"] >= least]
    page = found[max(start, 0) : max(start, 0) + max(count, 0)]
    approved = _approved(db, year, mon, sorted({o["staff"] for o in page}))
    return [{**ot, "approved_min": approved.get((ot["staff"], ot["date"]), 0)} for ot in page], len(found)


def _approved(db: DB, year: int, mon: int, codes: Sequence[str] | None) -> dict[tuple[str, str], int]:
    """The month's approved overtime minutes by (staff, ISO date), of these people (None: all)."""
    dates = rules.month_dates(year, mon)
    o = T_OVERTIME
    q = sa.select(o.c.staff_code, o.c.day, o.c.minutes).where(o.c.day >= dates[0], o.c.day <= dates[-1])
    with connect(db) as conn:
        if codes is not None:
            if not codes:
                return {}
            q = q.where(_among(conn, o.c.staff_code, codes))
        return {(s, d.isoformat()): m for s, d, m in conn.execute(q)}


def approve_overtime(conn: Connection, staff: str, day: date, minutes: int, reason: str, actor: str) -> None:
    """Approve up to the candidate minutes of that person-day (0 withdraws an approval)."""
    if not nfc(reason):
        raise AttendanceError(_("--reason: empty"))
    if not staff_known(conn, [staff]):
        raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
    cands = [o for o in overtime(conn, day.strftime("%Y-%m"), staff=staff) if o["date"] == day.isoformat()]
    most = cands[0]["minutes"] if cands else 0
    if not 0 <= minutes <= most:
        raise AttendanceError(
            _(
                "--minutes: {minutes} is not within 0..{most} (the candidate minutes of {day})",
                minutes=minutes,
                most=most,
                day=day,
            )
        )
    conn.execute(sa.delete(T_OVERTIME).where(T_OVERTIME.c.staff_code == staff, T_OVERTIME.c.day == day))
    if minutes:
        conn.execute(
            sa.insert(T_OVERTIME).values(
                staff_code=staff,
                day=day,
                minutes=minutes,
                reason=nfc(reason)[:500],
                approved_by=actor[:64],
                approved_at=now_utc(),
            )
        )
    audit(conn, actor, "attendance.overtime.approve", staff, day=day, minutes=minutes, reason=nfc(reason))


def approved_overtime(db: DB, month: str, codes: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The month's approved overtime by person-day, classified like its candidate: ``{"staff",
    "date", "kind" (weekday | weekend | holiday), "minutes", "night"}``. Approved minutes count up
    to the candidate's (a punch voided after the approval lowers them); the night part is the
    candidate's night share of the approved minutes, rounded half up. Only the people with an
    approval are recomputed, so a month without any costs one query."""
    year, mon = parse_month(month)
    dates = rules.month_dates(year, mon)
    with connect(db) as conn:
        q = sa.select(T_OVERTIME.c.staff_code, T_OVERTIME.c.day, T_OVERTIME.c.minutes).where(
            T_OVERTIME.c.day >= dates[0], T_OVERTIME.c.day <= dates[-1]
        )
        approved = {(s, d.isoformat()): m for s, d, m in conn.execute(q)}
        if codes is not None:
            wanted = set(codes)
            approved = {k: v for k, v in approved.items() if k[0] in wanted}
        if not approved:
            return []
        who = sorted({s for s, _ in approved})
        loaded = load_month(conn, year, mon, who)
    found: list[dict[str, Any]] = []
    rules.compute(loaded.inp, overtime=found)
    cand = {(o["staff"], o["date"]): o for o in found}
    out = []
    for (s, d), m in sorted(approved.items()):
        c = cand.get((s, d))
        if c is None:
            continue
        mins = min(m, int(c["minutes"]))
        night = (mins * int(c["night_min"]) * 2 + int(c["minutes"])) // (2 * int(c["minutes"]))
        out.append({"staff": s, "date": d, "kind": c["kind"], "minutes": mins, "night": night})
    return out


def attach_overtime(db: DB, report: dict[str, Any]) -> None:
    """Add each row's approved overtime of the month (``row["overtime"]``: minutes by kind and at
    night) for the rendered timesheet; the contract's JSON is written without it. A person
    transferred mid-month has it on the row of the unit they were in that day."""
    rows = report["staff"]
    if not rows:
        return
    for ot in approved_overtime(db, report["month"], {r["staff"] for r in rows}):
        mine = [r for r in rows if r["staff"] == ot["staff"]]
        row = next((r for r in mine if r["days"].get(ot["date"], {}).get("in") is not None), mine[0])
        acc = row.setdefault("overtime", {"weekday": 0, "weekend": 0, "holiday": 0, "night": 0})
        acc[ot["kind"]] += ot["minutes"]
        acc["night"] += ot["night"]
