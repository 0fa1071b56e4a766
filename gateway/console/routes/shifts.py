"""HR: work shifts (sessions, days, grace minutes) and their assignment to a person or a unit for a
range of dates.

Reads and changes go through the attendance API's handlers (``gateway.api.attendance``:
``shifts``, ``set_shift``, ``assignments``, ``assign``), which call the CLI's store functions: the
same validation, the same refusals, the same scope (a shift is shared by every unit, so only an
unscoped account edits one; a scoped HR officer assigns within their units), the same domain audit
entries. The console adds its own entry with the client's address.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from gateway.api import attendance as api_att
from gateway.attendance.engine import WEEKDAYS
from gateway.auth import ATTENDANCE_READ, ATTENDANCE_WRITE
from gateway.console import i18n, web
from gateway.console.routes.hr import _bad, _note
from gateway.console.web import Viewer

router = APIRouter()
CLOCK: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
SESSIONS: Final = 4  # rows of the form (a split shift has 2; 4 covers every real schedule)


def _page(view: Any, status: int = 200, error: str = "", form: dict[str, Any] | None = None,
          edit: str = "", done: str = "") -> Response:  # fmt: skip
    with view.db() as s:
        shifts = web.api_call(api_att.shifts, s, view.principal)
        assigned = web.api_call(api_att.assignments, s, view.principal)
    by_id = {sh.id: sh for sh in shifts}
    if form is None:
        form = _form_of(by_id.get(edit)) if edit else _form_of(None)
    return web.render(
        view.request,
        "hr_shifts.html",
        status=status,
        view=view,
        shifts=shifts,
        names={sh.id: sh.name for sh in shifts},
        assigned=list(reversed(assigned)),
        form=form,
        editing=edit if edit in by_id else "",
        error=error,
        done=done,
        sessions_n=SESSIONS,
        weekdays=WEEKDAYS,
        edit_shifts=view.can(ATTENDANCE_WRITE) and not view.principal.scoped,
        today=datetime.now(i18n.VN_TZ).date().isoformat(),
        end_floor=_end_floor().isoformat(),
    )


def _end_floor() -> date:
    """The earliest end date offered (the store refuses earlier ones: a past month is closed)."""
    return datetime.now(i18n.VN_TZ).date().replace(day=1) - timedelta(1)


def _form_of(sh: api_att.ShiftOut | None) -> dict[str, Any]:
    if sh is None:
        return {"id": "", "name": "", "sessions": [("07:30", "11:30"), ("13:00", "17:00")],
                "days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "grace_in": 5, "grace_out": 5}  # fmt: skip
    pairs = [tuple(p.split("-", 1)) for p in sh.sessions.split(",") if "-" in p]
    return {"id": sh.id, "name": sh.name, "sessions": pairs, "days": sh.days.split(","),
            "grace_in": sh.grace_in, "grace_out": sh.grace_out}  # fmt: skip


@router.get("/attendance/shifts")
def shifts(view: Viewer, edit: str = "", done: str = "") -> Response:
    web.need(view, ATTENDANCE_READ)
    return _page(view, edit=edit, done=done if done in ("shift", "assign", "end", "delete") else "")


@router.post("/attendance/shifts")
async def save_shift(view: Viewer) -> Response:
    await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    f = await web.form_lists(view)

    def one(name: str) -> str:
        return (f.get(name) or [""])[0].strip()

    pairs: list[tuple[str, str]] = []
    for i in range(1, SESSIONS + 1):
        a, b = one(f"start{i}"), one(f"end{i}")
        if a or b:
            pairs.append((a, b))
    days = [d for d in f.get("day", []) if d in WEEKDAYS]
    form: dict[str, Any] = {"id": one("id"), "name": one("name"), "sessions": pairs, "days": days,
            "grace_in": one("grace_in"), "grace_out": one("grace_out")}  # fmt: skip
    edit = one("editing")

    def again(message: str, status: int = 422) -> Response:
        return _page(view, status=status, error=message, form=form, edit=edit)

    if not pairs or any(not (CLOCK.match(a) and CLOCK.match(b)) for a, b in pairs):
        return again("Each session needs a start and an end time (HH:MM).")
    if not days:
        return again("Tick at least one day of the week.")
    grace = (web.whole(form["grace_in"], 4), web.whole(form["grace_out"], 4))
    if None in grace:
        return again("Grace minutes are whole numbers.")
    try:
        body = api_att.ShiftBody.model_validate(
            {
                "name": " ".join(form["name"].split()),
                "sessions": ",".join(f"{a}-{b}" for a, b in pairs),
                "days": ",".join(days),
                "grace_in": grace[0],
                "grace_out": grace[1],
            }
        )
    except ValidationError as exc:
        return again(_bad(exc).message)
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", form["id"]):
        return again("The shift id is 1 to 64 letters, digits, '.', '_' or '-'.")
    with view.db() as s:
        try:
            out = web.api_call(api_att.set_shift, form["id"], s, view.principal, body)
        except web.ConsoleError as exc:
            return again(exc.message, exc.status)
    _note(view, "console.attendance.shift", out.id, sessions=out.sessions, days=out.days)
    return web.redirect(f"{web.PREFIX}/attendance/shifts?done=shift")


@router.post("/attendance/assign")
async def assign(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    target = f.get("target", "")
    who = f.get("who", "").strip()
    if target not in ("staff", "unit") or not who:
        raise web.ConsoleError(400, "Say whether the shift is for a person or a unit, and which.")
    body = {"shift": f.get("shift", ""), target: who, "from": web.form_day(f.get("from")),
            "to": web.form_day(f.get("to"), required=False)}  # fmt: skip
    try:
        item = api_att.AssignIn.model_validate(body)
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        out = web.api_call(api_att.assign, s, view.principal, item)
    _note(view, "console.attendance.assign", who, id=out.id, shift=item.shift, start=item.start, end=item.end)
    return web.redirect(f"{web.PREFIX}/attendance/shifts?done=assign")


@router.post("/attendance/assignments/{aid}/end")
async def end_assignment(aid: int, view: Viewer) -> Response:
    """End an assignment on a date (the API's ``PATCH /attendance/assignments/{id}``)."""
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    try:
        body = api_att.AssignEnd.model_validate({"to": web.form_day(f.get("to"))})
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        try:
            out = web.api_call(api_att.end_assignment, aid, s, view.principal, body)
        except web.ConsoleError as exc:
            if exc.status == 404:
                raise
            return _page(view, status=exc.status, error=exc.message)
    _note(view, "console.attendance.assign.end", out.staff or out.unit or "", id=aid, end=out.end)
    return web.redirect(f"{web.PREFIX}/attendance/shifts?done=end")


@router.post("/attendance/assignments/{aid}/delete")
async def delete_assignment(aid: int, view: Viewer) -> Response:
    """Delete an assignment entered by mistake (``DELETE /attendance/assignments/{id}``); one
    already applied to a computed day is refused with the reason, on the page."""
    await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    with view.db() as s:
        try:
            web.api_call(api_att.delete_assignment, aid, s, view.principal)
        except web.ConsoleError as exc:
            if exc.status == 404:
                raise
            return _page(view, status=exc.status, error=exc.message)
    _note(view, "console.attendance.assign.delete", str(aid), id=aid)
    return web.redirect(f"{web.PREFIX}/attendance/shifts?done=delete")
