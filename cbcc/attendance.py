"""``cbcc attendance ...`` and ``cbcc report attendance ...`` (contract: attendance v1 §2).

Exit status 0 on success, 1 on refused input (a message naming the row or field; nothing
changed), 2 on usage errors (typer/click). Register with::

    app.add_typer(attendance_app, name="attendance")
    app.add_typer(report_app, name="report")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cbcc.common import cli_errors, stdout_console
from cbcc.gateway import ConfigFile, _settings
from messages import _

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

attendance_app = typer.Typer(no_args_is_help=True, help="Attendance: shifts, calendar, leave, punches.")
shift_app = typer.Typer(no_args_is_help=True, help="Work shifts (sessions, days, grace minutes).")
calendar_app = typer.Typer(no_args_is_help=True, help="Public holidays, swapped days off, working days.")
leave_app = typer.Typer(no_args_is_help=True, help="Leave and absences (Mẫu C01-HD symbols, CT).")
assignment_app = typer.Typer(
    no_args_is_help=True, help="Shift assignments: list them with their ids, end one, delete a mistaken one."
)
report_app = typer.Typer(no_args_is_help=True, help="Reports.")
attendance_app.add_typer(shift_app, name="shift")
attendance_app.add_typer(calendar_app, name="calendar")
attendance_app.add_typer(leave_app, name="leave")
attendance_app.add_typer(assignment_app, name="assignment")

FORMATS = ("json", "csv", "xlsx", "pdf", "html")


def _engine(config: Path | None) -> Engine:
    from gateway import db

    settings = _settings(config)
    db.migrate(settings.database.url)
    return db.make_engine(settings.database.url)


def _value(field: str, parse: Callable[[str], Any], text: str) -> Any:
    """Parse an option's value; a bad one is refused input (exit 1) naming the option."""
    from gateway.attendance.errors import AttendanceError

    try:
        return parse(text)
    except ValueError as exc:
        raise AttendanceError(f"{field}: {exc}") from None


def _date(field: str, text: str) -> date:
    from gateway.attendance.times import parse_date

    return _value(field, parse_date, text)  # type: ignore[no-any-return]


def _time(field: str, text: str) -> datetime:
    from gateway.attendance.times import parse_time

    return _value(field, parse_time, text)  # type: ignore[no-any-return]


def _usage(message: str) -> None:
    raise typer.BadParameter(message)  # click: usage error, exit 2


def _who(staff: str | None, unit: str | None) -> str:
    return _("staff {code}", code=staff) if staff else _("unit {code}", code=unit)


@shift_app.command("set")
def shift_set(
    shift_id: Annotated[str, typer.Argument(metavar="ID", help="Shift id (e.g. hc-summer).")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    sessions: Annotated[
        str, typer.Option("--sessions", help='"07:30-11:30,13:00-17:00"; night: "22:00-06:00".')
    ],
    days: Annotated[str, typer.Option("--days", help="Mon-Fri, Mon-Sun, Mon,Wed,Fri ...")],
    grace_in: Annotated[int, typer.Option("--grace-in", help="Minutes late before it counts.")] = 0,
    grace_out: Annotated[int, typer.Option("--grace-out", help="Minutes early before it counts.")] = 0,
    on_holidays: Annotated[
        bool,
        typer.Option(
            "--on-holidays/--not-on-holidays",
            help="A round-the-clock shift: it also runs on public holidays and days off (default: not).",
        ),
    ] = False,
    config: ConfigFile = None,
) -> None:
    """Create or replace a shift."""
    with cli_errors():
        from gateway.attendance import engine as rules
        from gateway.attendance import store

        with _engine(config).begin() as conn:
            sh = store.set_shift(conn, shift_id, name, sessions, days, grace_in, grace_out, on_holidays)
            store.audit(
                conn,
                "cli",
                "attendance.shift.set",
                sh.id,
                sessions=sessions,
                days=days,
                grace_in=grace_in,
                grace_out=grace_out,
                on_holidays=on_holidays,
            )
        stdout_console().print(
            _(
                "shift {id}: {sessions} on {days}",
                id=sh.id,
                sessions=rules.format_sessions(sh.sessions),
                days=rules.format_days(sh.days),
            )
            + (" " + _("(holidays too)") if sh.on_holidays else "")
        )


@shift_app.command("list")
def shift_list(config: ConfigFile = None) -> None:
    """The shifts (their assignments with ids: cbcc attendance assignment list)."""
    with cli_errors():
        import sqlalchemy as sa

        from gateway.attendance import store

        con = stdout_console()
        with _engine(config).connect() as conn:
            for row in conn.execute(sa.select(store.T_SHIFT).order_by(store.T_SHIFT.c.id)):
                grace = _(
                    "grace {minutes_in}/{minutes_out}", minutes_in=row.grace_in, minutes_out=row.grace_out
                )
                con.print(
                    f"{row.id}\t{row.name}\t{row.sessions}\t{row.days}\t{grace}"
                    + ("\t" + _("holidays too") if row.on_holidays else ""),
                    markup=False,
                )


@attendance_app.command("assign")
def assign(
    shift: Annotated[str, typer.Option("--shift", help="Shift id.")],
    start: Annotated[str, typer.Option("--from", help="First date, YYYY-MM-DD.")],
    staff: Annotated[str | None, typer.Option("--staff", help="One person (wins over the unit's).")] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="A unit (or agency code) from the staff records.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last date (default: open).")] = None,
    config: ConfigFile = None,
) -> None:
    """Assign a shift to a person or a unit from a date (a later --from wins)."""
    if (staff is None) == (unit is None):
        _usage(_("give exactly one of --staff and --unit"))
    with cli_errors():
        from gateway.attendance import store

        first = _date("--from", start)
        last = _date("--to", end) if end is not None else None
        with _engine(config).begin() as conn:
            store.assign(conn, shift, first, last, staff, unit)
            store.audit(
                conn, "cli", "attendance.assign", staff or unit or "", shift=shift, start=first, end=last
            )
        said = _("{who}: shift {shift} from {start}", who=_who(staff, unit), shift=shift, start=first)
        stdout_console().print(said + (" " + _("to {end}", end=last) if last else ""))


# The column is an INTEGER: an id outside it is a usage error (2), never a database error.
AssignmentId = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=2**31 - 1, help="The assignment's id (assignment list).")
]


@assignment_app.command("list")
def assignment_list(
    staff: Annotated[
        str | None, typer.Option("--staff", help="Only this person's own assignments (not their unit's).")
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit's (or agency code's).")] = None,
    config: ConfigFile = None,
) -> None:
    """Every shift assignment with its id (what end and delete take), oldest first."""
    if staff is not None and unit is not None:
        _usage(_("give at most one of --staff and --unit"))
    with cli_errors():
        import sqlalchemy as sa

        from gateway.attendance import store
        from gateway.attendance.errors import AttendanceError

        t = store.T_ASSIGN
        q = sa.select(t.c.id, t.c.shift_id, t.c.staff_code, t.c.unit, t.c.start, t.c.end).order_by(t.c.id)
        if staff is not None:
            q = q.where(t.c.staff_code == staff)
        elif unit is not None:
            q = q.where(t.c.unit == unit)
        with _engine(config).connect() as conn:
            rows = [store.AssignmentRow(*r) for r in conn.execute(q)]
            if not rows and staff is not None and not store.staff_known(conn, [staff]):
                raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
            if not rows and unit is not None and not store.unit_known(conn, unit):
                raise AttendanceError(
                    _("--unit: no staff record has unit or agency code {unit!r}", unit=unit)
                )
        for a in rows:
            line = _("{who}: {shift} from {start} to {end}", who=_who(a.staff, a.unit), shift=a.shift,
                     start=a.start, end=a.end or "…")  # fmt: skip
            typer.echo(f"{a.id}\t{line}")  # tab-separated: the id is the first field


@assignment_app.command("end")
def assignment_end(
    aid: AssignmentId,
    end: Annotated[str, typer.Option("--to", help="Its last day (inclusive), YYYY-MM-DD.")],
    config: ConfigFile = None,
) -> None:
    """Set the last day of an assignment; the days it already applied to keep it. A past month's
    timesheet is closed: the earliest end is the last day of the previous month (Vietnam date)."""
    with cli_errors():
        from gateway.attendance import store, times

        last = _date("--to", end)
        with _engine(config).begin() as conn:
            a = store.end_assignment(conn, aid, last, times.today(), "cli")
        said = _("shift assignment {id} ({who}, shift {shift}) ends on {end}", id=aid,
                 who=_who(a.staff, a.unit), shift=a.shift, end=last)  # fmt: skip
        stdout_console().print(said + (" " + _("(was {was})", was=a.end) if a.end else ""), markup=False)


@assignment_app.command("delete")
def assignment_delete(
    aid: AssignmentId,
    config: ConfigFile = None,
) -> None:
    """Delete an assignment entered by mistake: only one that never applied to a computed timesheet
    day up to today; one that did is ended instead (assignment end)."""
    with cli_errors():
        from gateway.attendance import store, times

        with _engine(config).begin() as conn:
            a = store.delete_assignment(conn, aid, times.today(), "cli")
        stdout_console().print(
            _(
                "shift assignment {id} ({who}, shift {shift}) deleted",
                id=aid,
                who=_who(a.staff, a.unit),
                shift=a.shift,
            ),
            markup=False,
        )


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD")],
    holiday: Annotated[
        str | None, typer.Option("--holiday", help="A public holiday (symbol L) named NAME.")
    ] = None,
    workday: Annotated[bool, typer.Option("--workday", help="A (compensatory) working day.")] = False,
    dayoff: Annotated[str | None, typer.Option("--dayoff", help="A plain day off named NAME.")] = None,
    config: ConfigFile = None,
) -> None:
    """Override the shipped calendar for one date."""
    if sum((holiday is not None, workday, dayoff is not None)) != 1:
        _usage(_("give exactly one of --holiday NAME, --workday, --dayoff NAME"))
    with cli_errors():
        from gateway.attendance import store

        d = _date("DATE", day)
        kind = "holiday" if holiday is not None else "dayoff" if dayoff is not None else "workday"
        with _engine(config).begin() as conn:
            store.calendar_set(conn, d, kind, holiday or dayoff or "")
            store.audit(
                conn, "cli", "attendance.calendar.set", d.isoformat(), kind=kind, name=holiday or dayoff
            )
        stdout_console().print(f"{d}: {kind} {holiday or dayoff or ''}".rstrip())


@calendar_app.command("show")
def calendar_show(
    year: Annotated[int, typer.Option("--year", help="Year.")],
    config: ConfigFile = None,
) -> None:
    """Public holidays, days off and compensatory working days of a year (with site overrides)."""
    with cli_errors():
        from gateway.attendance import engine as rules
        from gateway.attendance import store

        with _engine(config).connect() as conn:
            days = store.calendar_year(conn, year)
        con = stdout_console()
        for c in days:
            k = "L" if c.kind == "holiday" else c.kind
            con.print(f"{c.day} {rules.WEEKDAYS[c.day.weekday()]} {k:8} {c.name}", markup=False)


@calendar_app.command("unset")
def calendar_unset(
    day: Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD")],
    config: ConfigFile = None,
) -> None:
    """Remove the site's override of one date (the shipped calendar applies again)."""
    with cli_errors():
        from gateway.attendance import store
        from gateway.attendance.errors import AttendanceError

        d = _date("DATE", day)
        with _engine(config).begin() as conn:
            if not store.calendar_unset(conn, d):
                raise AttendanceError(_("DATE: {date} has no site override", date=d))
            store.audit(conn, "cli", "attendance.calendar.unset", d.isoformat())
        stdout_console().print(_("{date}: override removed", date=d))


@leave_app.command("add")
def leave_add(
    staff: Annotated[str, typer.Option("--staff", help="Staff code.")],
    kind: Annotated[str, typer.Option("--kind", help="Ô Cô TS T P H NB KL N LĐ CT")],
    start: Annotated[str, typer.Option("--from", help="First date.")],
    end: Annotated[str, typer.Option("--to", help="Last date (inclusive).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the record).")],
    half: Annotated[str | None, typer.Option("--half", help="am (first session) or pm (last).")] = None,
    config: ConfigFile = None,
) -> None:
    """Record leave for whole days or one half of every day of the range."""
    if half is not None and half not in ("am", "pm"):
        _usage(_("--half is am or pm"))
    with cli_errors():
        from gateway.attendance import store

        first, last = _date("--from", start), _date("--to", end)
        with _engine(config).begin() as conn:
            lid = store.add_leave(conn, staff, kind, first, last, half, reason)
            store.audit(
                conn,
                "cli",
                "attendance.leave.add",
                staff,
                kind=kind,
                start=first,
                end=last,
                half=half,
                reason=reason,
            )
        stdout_console().print(
            _(
                "leave #{id}: {staff} {kind} {start}..{end}",
                id=lid,
                staff=staff,
                kind=kind,
                start=first,
                end=last,
            )
            + (" " + half if half else "")
        )


@leave_app.command("import")
def leave_import(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX: staff, kind, from, to, half, reason.")],
    config: ConfigFile = None,
) -> None:
    """Import leave from a file: every row validated first; any bad row refuses the file."""
    with cli_errors():
        from gateway.attendance.imports import import_leaves

        n = import_leaves(_engine(config), file)
        stdout_console().print(_("imported {n} leave record(s)", n=n))


def _offset(text: str | None) -> timezone | None:
    if text is None:
        return None
    from gateway.attendance.errors import AttendanceError

    sign = {"+": 1, "-": -1}.get(text[:1])
    hh, _colon, mm = text[1:].partition(":")
    if sign is None or not (hh.isdigit() and mm.isdigit()) or int(hh) > 14 or int(mm) > 59:
        raise AttendanceError(_("--assume-offset: {text!r} is not like +07:00", text=text))
    return timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))


@attendance_app.command("import-punches")
def import_punches(
    file: Annotated[Path, typer.Argument(help="CSV (staff,time,terminal) or XLSX (also ZKTeco exports).")],
    assume_offset: Annotated[
        str | None,
        typer.Option(
            "--assume-offset", help="Offset for times written without one (e.g. +07:00); default: refuse."
        ),
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Import punches; a malformed row refuses the whole file. Unknown staff are kept aside."""
    with cli_errors():
        from gateway.attendance.imports import import_punches as run

        rep = run(_engine(config), file, assume=_offset(assume_offset))
        con = stdout_console()
        for line in rep.unknown:
            con.print(line, markup=False)
        con.print(rep.summary(), markup=False)


@attendance_app.command("correct")
def correct(
    staff: Annotated[str, typer.Option("--staff", help="Staff code.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
    add_punch: Annotated[str | None, typer.Option("--add-punch", help="TIME with offset.")] = None,
    void_punch: Annotated[
        str | None, typer.Option("--void-punch", help="TIME with offset (its minute).")
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who corrects (audit).")] = "cli",
    config: ConfigFile = None,
) -> None:
    """Add a missing punch or void a wrong one; the raw punches stay as they were."""
    if (add_punch is None) == (void_punch is None):
        _usage(_("give exactly one of --add-punch and --void-punch"))
    with cli_errors():
        from gateway.attendance import store

        action = "add" if add_punch is not None else "void"
        at = _time(f"--{action}-punch", add_punch or void_punch or "")
        with _engine(config).begin() as conn:
            cid = store.correct(conn, staff, action, at, reason, actor)
        stdout_console().print(
            _(
                "correction #{id}: {action} {staff} {at}",
                id=cid,
                action=action,
                staff=staff,
                at=at,
            )
        )


@attendance_app.command("transfer")
def transfer(
    staff: Annotated[str, typer.Option("--staff", help="Staff code.")],
    unit: Annotated[str, typer.Option("--unit", help="The unit from that date on.")],
    start: Annotated[str, typer.Option("--from", help="First date in the new unit.")],
    config: ConfigFile = None,
) -> None:
    """Record a transfer date the staff records do not carry (unit history)."""
    with cli_errors():
        from gateway.attendance import store
        from gateway.attendance.errors import AttendanceError

        d = _date("--from", start)
        with _engine(config).begin() as conn:
            if not store.staff_known(conn, [staff]):
                raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
            store.refresh_spans(conn)
            store.record_transfer(conn, staff, unit, d)
            store.audit(conn, "cli", "attendance.transfer", staff, unit=unit, start=d)
        stdout_console().print(_("{staff}: unit {unit} from {start}", staff=staff, unit=unit, start=d))


@attendance_app.command("backfill")
def backfill(
    start: Annotated[
        str | None, typer.Option("--from", help="First date of events to look at (default: the first event).")
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Take punches from reader events stored before attendance existed (or at opted-in doors).

    Running it again adds nothing."""
    with cli_errors():
        from gateway.attendance import readers, store

        since = store.utc_midnight(_date("--from", start)) if start is not None else None
        with _engine(config).begin() as conn:
            n = readers.backfill(conn, since)
            store.audit(conn, "cli", "attendance.backfill", start or "*", new=n)
        stdout_console().print(_("{n} punch(es) taken from stored reader events", n=n))


@attendance_app.command("refresh")
def refresh(config: ConfigFile = None) -> None:
    """Bring the stored person-days up to date (only the person-months whose inputs changed)."""
    with cli_errors():
        from gateway.attendance import store

        rep = store.refresh_days(_engine(config))
        stdout_console().print(
            _(
                "{months} person-month(s) recomputed, {written} day(s) written, {deleted} removed",
                months=rep.person_months,
                written=rep.days_written,
                deleted=rep.days_deleted,
            )
        )


@report_app.command("attendance")
def report_attendance(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    out: Annotated[str, typer.Option("--out", help="Output file, or - for standard output.")],
    fmt: Annotated[str, typer.Option("--format", help="json | csv | xlsx | pdf | html")] = "json",
    unit: Annotated[str | None, typer.Option("--unit", help="One unit.")] = None,
    staff: Annotated[str | None, typer.Option("--staff", help="One person.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="vi | en")] = "vi",
    actor: Annotated[str, typer.Option("--actor", help="Who asks (audit log).")] = "cli",
    config: ConfigFile = None,
) -> None:
    """The monthly timesheet (Bảng chấm công, Mẫu C01-HD); json is the contract's report."""
    if fmt not in FORMATS:
        _usage(f"--format is one of {', '.join(FORMATS)}")
    if lang not in ("vi", "en"):
        _usage("--lang is vi or en")
    with cli_errors():
        import sys

        from cbcc.common import write_atomic
        from gateway.attendance import report as reports

        data = reports.produce(_engine(config), month, unit, staff, fmt, lang, actor=actor, role="cli")
        if out == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            write_atomic(Path(out), data)


overtime_app = typer.Typer(no_args_is_help=True, help="Overtime candidates and their approval.")
attendance_app.add_typer(overtime_app, name="overtime")


@overtime_app.command("list")
def overtime_list(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    unit: Annotated[str | None, typer.Option("--unit", help="One unit.")] = None,
    staff: Annotated[str | None, typer.Option("--staff", help="One person.")] = None,
    config: ConfigFile = None,
) -> None:
    """Minutes outside the schedule (weekday / weekend / holiday, night part) and what is approved,
    as JSON lines."""
    with cli_errors():
        import json

        from gateway.attendance import store

        for ot in store.overtime(_engine(config), _value("--month", _month, month), unit, staff):
            typer.echo(json.dumps(ot, sort_keys=True, ensure_ascii=False))


@overtime_app.command("approve")
def overtime_approve(
    staff: Annotated[str, typer.Option("--staff", help="Staff code.")],
    day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD (the occurrence's start date).")],
    minutes: Annotated[int, typer.Option("--minutes", help="Minutes approved (0 withdraws).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
    actor: Annotated[str, typer.Option("--actor", help="Who approves (audit).")] = "cli",
    config: ConfigFile = None,
) -> None:
    """Approve overtime of one person-day, at most its candidate minutes."""
    with cli_errors():
        from gateway.attendance import store

        d = _date("--date", day)
        with _engine(config).begin() as conn:
            store.approve_overtime(conn, staff, d, minutes, reason, actor)
        stdout_console().print(
            _("{staff} {date}: {minutes} min of overtime approved", staff=staff, date=d, minutes=minutes)
        )


def _month(text: str) -> str:
    from gateway.attendance.times import parse_month

    parse_month(text)
    return text.strip()
