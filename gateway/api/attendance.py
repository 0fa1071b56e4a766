"""Attendance over HTTP: the monthly timesheet (the contract's JSON report, or a rendered file),
raw punches, punch upload, leave and corrections.

Scope: an ``hr`` token with a unit scope sees and changes only people whose unit (or agency code)
lies under it. Every timesheet produced is recorded in the audit log (Decree 13/2023/NĐ-CP), as
is every change. Refused input is a 422 naming the field or row, and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from gateway.api.deps import DB, require
from gateway.api.errors import ApiError, conflict, forbidden, invalid, not_found, reason, responses
from gateway.api.schemas import INT32_MAX, TEXT_PATTERN
from gateway.attendance import report as reports
from gateway.attendance import store
from gateway.attendance.errors import AttendanceError, cause, field_error
from gateway.attendance.times import parse_time, today
from gateway.auth import ATTENDANCE_READ, ATTENDANCE_WRITE, Principal, in_scope
from messages import N_, Joined, _

router = APIRouter(prefix="/attendance", tags=["attendance"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(ATTENDANCE_READ))]
CanWrite = Annotated[Principal, Depends(require(ATTENDANCE_WRITE))]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="Mã cán bộ")]
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _refused(exc: AttendanceError) -> ApiError:
    return invalid(reason(exc), code="refused")


def check_staff(session: Session, principal: Principal, staff: str) -> None:
    row = (
        session.connection()
        .execute(
            sa.select(store.T_STAFF.c.unit, store.T_STAFF.c.agency_code).where(
                store.T_STAFF.c.staff_code == staff
            )
        )
        .first()
    )
    if row is None:
        raise invalid(_("staff: unknown staff code {staff!r}", staff=staff), code="refused")
    if principal.scoped and not (
        in_scope(principal.unit_scope, row[0]) or in_scope(principal.unit_scope, row[1])
    ):
        raise forbidden(_("staff {staff} is outside this token's units", staff=staff))


def check_unit(principal: Principal, unit: str) -> None:
    """A report of one unit: only a unit within the caller's units (its people elsewhere are not
    theirs to see, and the console would otherwise compute an empty month)."""
    if principal.scoped and not in_scope(principal.unit_scope, unit):
        raise ApiError(403, "forbidden", N_("unit {unit} is outside your units"), params={"unit": unit})


@router.get(
    "/report",
    summary="Bảng chấm công tháng (monthly timesheet)",
    response_class=Response,
    responses={200: {"content": {m: {} for m in MEDIA.values()}}},
)
def report(
    session: DB,
    principal: CanRead,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    unit: Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN)] = None,
    staff: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,32}$")] = None,
    fmt: Annotated[Literal["json", "csv", "xlsx", "pdf", "html"], Query(alias="format")] = "json",
    lang: Annotated[Literal["vi", "en"], Query()] = "vi",
) -> Response:
    if unit is not None:
        check_unit(principal, unit)
    if staff is not None:
        check_staff(session, principal, staff)
    try:
        data = reports.produce(
            session,
            month,
            unit,
            staff,
            fmt,
            lang,
            actor=principal.actor,
            role=principal.role,
            scope=principal.unit_scope,
        )
    except AttendanceError as exc:
        raise _refused(exc) from None
    session.commit()
    return Response(
        data,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="cham-cong-{month}.{fmt}"'},
    )


class PunchOut(BaseModel):
    time: datetime
    source: str = Field(description="reader | import | correction")
    ref: str
    terminal: str


@router.get("/punches", response_model=list[PunchOut], summary="Lượt chấm công gốc (raw punches)")
def punches(
    session: DB,
    principal: CanRead,
    staff: Annotated[str, Query(pattern=r"^[A-Za-z0-9._-]{1,32}$")],
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
) -> list[PunchOut]:
    check_staff(session, principal, staff)
    if end < start or (end - start).days > 62:
        raise invalid(_("from/to: a range of at most 62 days, from <= to"))
    p = store.T_PUNCH
    rows = (
        session.connection()
        .execute(
            sa.select(p.c.at, p.c.source, p.c.ref, p.c.terminal)
            .where(
                p.c.staff_code == staff,
                p.c.at >= store.utc_midnight(start),
                p.c.at < store.utc_midnight(end + timedelta(1)),
            )
            .order_by(p.c.at)
        )
        .all()
    )
    store.audit(
        session.connection(),
        principal.actor,
        "attendance.punches.read",
        staff,
        role=principal.role,
        start=start,
        end=end,
    )
    session.commit()
    return [
        PunchOut(time=t if t.tzinfo else t.replace(tzinfo=UTC), source=s, ref=r, terminal=term)
        for t, s, r, term in rows
    ]


class PunchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: Code
    time: str = Field(max_length=40, description="ISO 8601 with its offset, e.g. 2026-03-02T07:58:00+07:00")
    terminal: str = Field(default="", max_length=64, pattern=TEXT_PATTERN)


class PunchUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    punches: list[PunchIn] = Field(max_length=100_000)


class UploadOut(BaseModel):
    rows: int
    new: int
    unknown_staff: list[str]


@router.post("/punches", response_model=UploadOut, summary="Nạp lượt chấm công (upload punches)")
def upload(session: DB, principal: CanWrite, body: PunchUpload) -> UploadOut:
    """All rows validated first: any bad one refuses the upload (422 listing ``punches[i]``)."""
    errors, rows = [], []
    for i, p in enumerate(body.punches):
        try:
            rows.append(
                store.PunchRow(p.staff, parse_time(p.time), "api", f"api:{principal.actor}", p.terminal)
            )
        except ValueError as exc:
            errors.append(field_error(f"punches[{i}]: time", cause(exc)))
    if errors:
        raise invalid(Joined(errors[:50], "; "), code="refused")
    conn = session.connection()
    known = store.staff_known(conn, (r.staff for r in rows))
    if principal.scoped:
        for code in sorted(known & {r.staff for r in rows}):
            check_staff(session, principal, code)
    new = store.add_punches(conn, rows)
    store.audit(
        conn, principal.actor, "attendance.punches.upload", "", role=principal.role, rows=len(rows), new=new
    )
    session.commit()
    return UploadOut(rows=len(rows), new=new, unknown_staff=sorted({r.staff for r in rows} - known))


class LeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: Code
    kind: str = Field(max_length=4, description="Ô Cô TS T P H NB KL N LĐ CT")
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    half: Literal["am", "pm"] | None = None
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


class Created(BaseModel):
    id: int


@router.post("/leave", response_model=Created, status_code=201, summary="Ghi nghỉ (record leave)")
def leave(session: DB, principal: CanWrite, body: LeaveIn) -> Created:
    check_staff(session, principal, body.staff)
    conn = session.connection()
    try:
        lid = store.add_leave(conn, body.staff, body.kind, body.start, body.end, body.half, body.reason)
    except AttendanceError as exc:
        raise _refused(exc) from None
    store.audit(
        conn,
        principal.actor,
        "attendance.leave.add",
        body.staff,
        role=principal.role,
        kind=body.kind,
        start=body.start,
        end=body.end,
        half=body.half,
        reason=body.reason,
    )
    session.commit()
    return Created(id=lid)


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: Code
    action: Literal["add", "void"]
    time: str = Field(max_length=40, description="ISO 8601 with its offset")
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


@router.post(
    "/corrections", response_model=Created, status_code=201, summary="Sửa lượt chấm công (correction)"
)
def correction(session: DB, principal: CanWrite, body: CorrectionIn) -> Created:
    check_staff(session, principal, body.staff)
    try:
        at = parse_time(body.time)
    except ValueError as exc:
        raise invalid(field_error("time", cause(exc)), code="refused") from None
    try:
        cid = store.correct(session.connection(), body.staff, body.action, at, body.reason, principal.actor)
    except AttendanceError as exc:
        raise _refused(exc) from None
    session.commit()
    return Created(id=cid)


@router.get("/overtime", summary="Giờ làm thêm đề xuất (overtime candidates)")
def overtime(
    session: DB,
    principal: CanRead,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    staff: Annotated[str, Query(pattern=r"^[A-Za-z0-9._-]{1,32}$")],
) -> list[dict[str, object]]:
    check_staff(session, principal, staff)
    try:
        found = store.overtime(session, month, staff=staff)
    except (AttendanceError, ValueError) as exc:
        raise invalid(reason(exc), code="refused") from None
    session.commit()
    return found


class OvertimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: Code
    day: date = Field(alias="date")
    minutes: int = Field(ge=0, le=1440)
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


@router.post("/overtime", status_code=204, summary="Duyệt làm thêm giờ (approve overtime)")
def approve_overtime(session: DB, principal: CanWrite, body: OvertimeIn) -> Response:
    check_staff(session, principal, body.staff)
    try:
        store.approve_overtime(
            session.connection(), body.staff, body.day, body.minutes, body.reason, principal.actor
        )
    except AttendanceError as exc:
        raise _refused(exc) from None
    session.commit()
    return Response(status_code=204)


# ---- shifts, assignments, calendar (the CLI's store functions: one set of rules) ---------------------

ShiftId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Mã ca (shift id)")]


def _unscoped(principal: Principal, what: str) -> None:
    """Shifts and the calendar are shared by every unit: a unit-scoped caller may not change them."""
    if principal.scoped:
        raise forbidden(
            _("{what} is shared by every unit; only an unscoped account may change it", what=_(what))
        )


class ShiftBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Hành chính",
                    "sessions": "07:30-11:30,13:00-17:00",
                    "days": "Mon-Fri",
                    "grace_in": 5,
                    "grace_out": 5,
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    sessions: str = Field(
        max_length=200, description='"07:30-11:30,13:00-17:00"; only the last may cross midnight'
    )
    days: str = Field(max_length=64, description="Mon-Fri, Mon-Sun, Mon,Wed,Fri …")
    # strict: a JSON true / "5" is refused, not read as 1 / 5 (the schema says integer)
    grace_in: int = Field(default=0, ge=0, le=240, strict=True, description="Minutes late before it counts")
    grace_out: int = Field(default=0, ge=0, le=240, strict=True, description="Minutes early before it counts")
    on_holidays: bool = Field(
        default=False, description="Round-the-clock: also runs on public holidays and days off"
    )


class ShiftOut(BaseModel):
    id: str
    name: str
    sessions: str
    days: str
    grace_in: int
    grace_out: int
    on_holidays: bool


@router.get("/shifts", response_model=list[ShiftOut], summary="Ca làm việc (shifts)")
def shifts(session: DB, principal: CanRead) -> list[ShiftOut]:
    t = store.T_SHIFT
    rows = session.connection().execute(sa.select(t).order_by(t.c.id)).all()
    return [
        ShiftOut(
            id=r.id,
            name=r.name,
            sessions=r.sessions,
            days=r.days,
            grace_in=r.grace_in,
            grace_out=r.grace_out,
            on_holidays=bool(r.on_holidays),
        )
        for r in rows
    ]


@router.put("/shifts/{shift_id}", response_model=ShiftOut, summary="Tạo hoặc sửa ca (set a shift)")
def set_shift(
    shift_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")],
    session: DB,
    principal: CanWrite,
    body: ShiftBody,
) -> ShiftOut:
    """Create or replace a shift (``cbcc attendance shift set``); every person's timesheet using it
    is recomputed."""
    _unscoped(principal, N_("a shift"))
    conn = session.connection()
    try:
        sh = store.set_shift(
            conn,
            shift_id,
            body.name,
            body.sessions,
            body.days,
            body.grace_in,
            body.grace_out,
            body.on_holidays,
        )
    except AttendanceError as exc:
        raise _refused(exc) from None
    store.audit(
        conn,
        principal.actor,
        "attendance.shift.set",
        sh.id,
        role=principal.role,
        sessions=body.sessions,
        days=body.days,
        grace_in=body.grace_in,
        grace_out=body.grace_out,
        on_holidays=body.on_holidays,
    )
    session.commit()
    from gateway.attendance import engine as rules

    return ShiftOut(
        id=sh.id,
        name=sh.name,
        sessions=rules.format_sessions(sh.sessions),
        days=rules.format_days(sh.days),
        grace_in=sh.grace_in,
        grace_out=sh.grace_out,
        on_holidays=sh.on_holidays,
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"shift": "hc", "unit": "H01", "from": "2026-01-01"}]},
    )
    shift: ShiftId
    staff: Code | None = None
    unit: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=TEXT_PATTERN, description="unit or agency code"
    )
    start: date = Field(alias="from")
    end: date | None = Field(default=None, alias="to")


class AssignOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: int
    shift: str
    staff: str | None
    unit: str | None
    start: date = Field(alias="from")
    end: date | None = Field(alias="to")


def _assignment_visible(session: Session, principal: Principal, staff: str | None, unit: str | None) -> bool:
    if not principal.scoped:
        return True
    if unit is not None:
        return in_scope(principal.unit_scope, unit)
    try:
        check_staff(session, principal, staff or "")
    except ApiError:
        return False
    return True


@router.get(
    "/assignments",
    response_model=list[AssignOut],
    response_model_by_alias=True,
    summary="Phân ca (shift assignments)",
)
def assignments(session: DB, principal: CanRead) -> list[AssignOut]:
    """Every assignment of a person or unit in the caller's scope, oldest first."""
    t = store.T_ASSIGN
    rows = session.connection().execute(sa.select(t).order_by(t.c.id)).all()
    return [
        AssignOut(id=r.id, shift=r.shift_id, staff=r.staff_code, unit=r.unit, start=r.start, end=r.end)
        for r in rows
        if _assignment_visible(session, principal, r.staff_code, r.unit)
    ]


@router.post("/assignments", response_model=Created, status_code=201, summary="Giao ca (assign a shift)")
def assign(session: DB, principal: CanWrite, body: AssignIn) -> Created:
    """A shift for one person or a unit from a date (``cbcc attendance assign``): a person's own
    assignment wins over the unit's, a later ``from`` over an earlier one."""
    if (body.staff is None) == (body.unit is None):
        raise invalid(_("give exactly one of staff and unit"), code="refused")
    if body.staff is not None:
        check_staff(session, principal, body.staff)
    elif principal.scoped and not in_scope(principal.unit_scope, body.unit):
        raise forbidden(_("unit {unit} is outside this token's units", unit=body.unit))
    conn = session.connection()
    try:
        aid = store.assign(conn, body.shift, body.start, body.end, body.staff, body.unit)
    except AttendanceError as exc:
        raise _refused(exc) from None
    store.audit(
        conn,
        principal.actor,
        "attendance.assign",
        body.staff or body.unit or "",
        role=principal.role,
        shift=body.shift,
        start=body.start,
        end=body.end,
    )
    session.commit()
    return Created(id=aid)


class AssignEnd(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [{"to": "2026-12-31"}]}
    )
    end: date = Field(alias="to", description="the last day the shift applies (inclusive)")


AssignmentId = Annotated[int, Path(ge=1, le=INT32_MAX, description="the assignment's id (GET /assignments)")]


def _visible_assignment(session: Session, principal: Principal, aid: int) -> store.AssignmentRow:
    """The assignment, if the caller may see it; one outside their units is answered as missing."""
    a = store.assignment(session.connection(), aid)
    if a is None or not _assignment_visible(session, principal, a.staff, a.unit):
        raise not_found("shift assignment")
    return a


@router.patch(
    "/assignments/{aid}",
    response_model=AssignOut,
    response_model_by_alias=True,
    summary="Kết thúc phân ca (end a shift assignment)",
    responses=responses(404),
)
def end_assignment(aid: AssignmentId, session: DB, principal: CanWrite, body: AssignEnd) -> AssignOut:
    """Set the last day of an assignment; the row stays, so the months it applied to keep it. The
    new end may not reach into a past month (its timesheet is closed): at the earliest the last
    day of the previous month; 422 otherwise, and for an end before the start."""
    a = _visible_assignment(session, principal, aid)
    conn = session.connection()
    try:
        store.end_assignment(conn, aid, body.end, today(), principal.actor, principal.role)
    except AttendanceError as exc:
        raise invalid(reason(exc), code="refused") from None
    session.commit()
    return AssignOut(id=aid, shift=a.shift, staff=a.staff, unit=a.unit, start=a.start, end=body.end)


@router.delete(
    "/assignments/{aid}",
    status_code=204,
    response_class=Response,
    summary="Xoá phân ca nhập nhầm (delete a shift assignment)",
    responses=responses(404, 409),
)
def delete_assignment(aid: AssignmentId, session: DB, principal: CanWrite) -> Response:
    """Remove an assignment entered by mistake: only one that never applied to a computed
    timesheet day up to today (of the person, or of anyone ever in the unit); 409 otherwise —
    end it instead (``PATCH``)."""
    _visible_assignment(session, principal, aid)  # 404 outside the scope
    conn = session.connection()
    try:
        store.delete_assignment(conn, aid, today(), principal.actor, principal.role)
    except AttendanceError as exc:
        raise conflict(reason(exc)) from None
    session.commit()
    return Response(status_code=204)


class CalendarDayOut(BaseModel):
    date: date
    kind: Literal["holiday", "dayoff", "workday"]
    name: str
    source: Literal["shipped", "site"] = Field(description="shipped calendar, or the site's override")
    shipped: str = Field(description="the shipped kind an override replaces; empty: an ordinary date")


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"kind": "workday"}]})
    kind: Literal["holiday", "dayoff", "workday"]
    name: str = Field(
        default="", max_length=200, pattern=TEXT_PATTERN, description="needed for holiday / dayoff"
    )


@router.get("/calendar", response_model=list[CalendarDayOut], summary="Lịch ngày lễ, nghỉ bù (calendar)")
def calendar(
    session: DB, principal: CanRead, year: Annotated[int, Query(ge=2000, le=2100)]
) -> list[CalendarDayOut]:
    """Public holidays, swapped days off and compensatory working days of a year, as the engine
    uses them: the shipped calendar with the site's overrides."""
    return [
        CalendarDayOut(date=c.day, kind=c.kind, name=c.name, source=c.source, shipped=c.shipped)
        for c in store.calendar_year(session.connection(), year)
    ]


DayPath = Annotated[date, Path(description="YYYY-MM-DD")]


@router.put("/calendar/{day}", status_code=204, summary="Ghi đè một ngày (override a date)")
def set_calendar(day: DayPath, session: DB, principal: CanWrite, body: CalendarIn) -> Response:
    """``cbcc attendance calendar set``: one kind per date, the last one wins; ``workday`` on a
    public holiday cancels it."""
    _unscoped(principal, N_("the calendar"))
    if not 2000 <= day.year <= 2100:
        raise invalid(_("day: a year 2000..2100"), code="refused")
    conn = session.connection()
    try:
        store.calendar_set(conn, day, body.kind, body.name)
    except AttendanceError as exc:
        raise _refused(exc) from None
    store.audit(
        conn,
        principal.actor,
        "attendance.calendar.set",
        day.isoformat(),
        role=principal.role,
        kind=body.kind,
        name=body.name or None,
    )
    session.commit()
    return Response(status_code=204)


@router.delete(
    "/calendar/{day}",
    status_code=204,
    responses=responses(404),
    summary="Bỏ ghi đè một ngày (remove an override)",
)
def unset_calendar(day: DayPath, session: DB, principal: CanWrite) -> Response:
    _unscoped(principal, N_("the calendar"))
    conn = session.connection()
    if not store.calendar_unset(conn, day):
        raise not_found("calendar override")
    store.audit(conn, principal.actor, "attendance.calendar.unset", day.isoformat(), role=principal.role)
    session.commit()
    return Response(status_code=204)
