"""HR changes: leave entry and import (CSV/XLSX), corrections (add / void a punch) with a reason,
overtime approval.

Every change goes through the attendance API's own handlers (``gateway.api.attendance``) with the
user's principal, so the rules, the unit-scope check (403 outside scope) and the domain audit
entries are the API's; the console adds its own audit entry with the client's address.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway import audit
from gateway.api import attendance as api_att
from gateway.attendance import imports, store
from gateway.attendance.engine import LEAVE_KINDS
from gateway.attendance.errors import AttendanceError
from gateway.attendance.punchfile import read_leaves
from gateway.auth import ATTENDANCE_READ, ATTENDANCE_WRITE
from gateway.console import i18n, web
from gateway.console.routes import attendance as att_pages
from gateway.console.web import Viewer
from messages import Joined

router = APIRouter()
MONTH: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CLOCK: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
UPLOAD_MAX: Final = 5 * 1024 * 1024  # a leave file of a whole agency is far smaller
OT_PAGE: Final = 100  # candidates shown on a page (each a form)
PAGE_MAX: Final = 100_000


def _bad(exc: ValidationError) -> web.ConsoleError:
    """A pydantic refusal as a one-line message naming the fields."""
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
    return web.ConsoleError(400, message)


def _note(view: Any, action: str, target: str, **detail: Any) -> None:
    with view.db() as s:
        audit.record(s, view.principal.actor, action, target, role=view.principal.role, ip=view.ip, **detail)
        s.commit()


def _vn_time(day: str, clock: str) -> str:
    iso = web.form_day(day)
    if not CLOCK.match(clock.strip()):
        raise web.ConsoleError(400, "A time is HH:MM (24 hours), e.g. 07:30.")
    return f"{iso}T{clock.strip()}:00+07:00"


@router.get("/attendance/changes")
def changes(view: Viewer, done: str = "") -> Response:
    web.need(view, ATTENDANCE_WRITE)
    return web.render(
        view.request,
        "hr_changes.html",
        view=view,
        kinds=LEAVE_KINDS,
        done=done if done in ("leave", "import", "correction") else "",
        today=datetime.now(i18n.VN_TZ).date().isoformat(),
    )


@router.post("/attendance/leave")
async def leave(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    body = {
        "staff": f.get("staff", "").strip(),
        "kind": f.get("kind", ""),
        "from": web.form_day(f.get("from")),
        "to": web.form_day(f.get("to") or f.get("from")),
        "half": f.get("half") or None,
        "reason": " ".join(f.get("reason", "").split()),
    }
    try:
        item = api_att.LeaveIn.model_validate(body)
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        out = web.api_call(api_att.leave, s, view.principal, item)
    _note(view, "console.attendance.leave", item.staff, id=out.id, kind=item.kind)
    return web.redirect(f"{web.PREFIX}/attendance/changes?done=leave")


@router.post("/attendance/leave/import")
async def leave_import(view: Viewer) -> Response:
    """The file is read and every row's person checked against the user's scope before anything is
    stored; the import itself is the CLI's (all rows or none)."""
    await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    form = await view.request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise web.ConsoleError(400, "Choose a CSV or XLSX file.")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise web.ConsoleError(400, "Choose a CSV or XLSX file.")
    data = await upload.read(UPLOAD_MAX + 1)
    if len(data) > UPLOAD_MAX:
        raise web.ConsoleError(413, "The file is larger than 5 MB.")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename).name)[-80:] or f"leave{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            staff = sorted({lv.staff for lv in read_leaves(path).leaves})
            with view.db() as s:
                known = store.staff_known(s.connection(), staff)  # unknown ones: row errors below
                for code in sorted(known):  # the API's scope check, one person at a time
                    web.api_call(api_att.check_staff, s, view.principal, code)
            rows = imports.import_leaves(view.ctx.engine, path, actor=view.principal.actor)
        except AttendanceError as exc:
            message = Joined([exc.headline, *exc.lines][:21], " · ")  # the row errors, as the CLI prints
            raise web.ConsoleError(400, message) from None
    _note(view, "console.attendance.leave_import", name, rows=rows, people=len(staff))
    return web.redirect(f"{web.PREFIX}/attendance/changes?done=import")


@router.post("/attendance/correction")
async def correction(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    body = {
        "staff": f.get("staff", "").strip(),
        "action": f.get("action", ""),
        "time": _vn_time(f.get("day", ""), f.get("clock", "")),
        "reason": " ".join(f.get("reason", "").split()),
    }
    try:
        item = api_att.CorrectionIn.model_validate(body)
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        out = web.api_call(api_att.correction, s, view.principal, item)
    _note(view, "console.attendance.correction", item.staff, id=out.id, change=item.action, at=item.time)
    return web.redirect(f"{web.PREFIX}/attendance/changes?done=correction")


@router.get("/attendance/overtime")
def overtime(
    view: Viewer, month: str = "", unit: str = "", done: str = "", page: str = "1", least: str = ""
) -> Response:
    """The month's candidates of the people in the user's scope (of one unit when the scope is too
    large to compute per request), with what is approved so far: ``OT_PAGE`` a page, by staff code
    and date, optionally only those of at least ``least`` minutes (an agency-month has ~90,000
    candidates, most of them a few minutes of early arrival)."""
    web.need(view, ATTENDANCE_READ)
    month = month or datetime.now(i18n.VN_TZ).strftime("%Y-%m")
    if not MONTH.match(month):
        raise web.ConsoleError(400, "Month is YYYY-MM.")
    at, least_min = web.whole(page, 6), web.whole(least or "0", 4)
    if at is None or not 1 <= at <= PAGE_MAX:
        raise web.ConsoleError(400, "The page number is not valid.")
    if least_min is None or least_min > 24 * 60:
        raise web.ConsoleError(400, "Minutes is a whole number.")
    if unit and not att_pages.UNIT.match(unit):
        raise web.ConsoleError(400, "A filter has characters that are not allowed.")
    if unit:
        web.api_call(api_att.check_unit, view.principal, unit)
    engine = view.ctx.engine
    scope = view.principal.unit_scope
    if not unit and att_pages.too_many(engine, scope):
        return att_pages.pick_unit(
            view, month, "console.attendance.overtime.view", "hr_overtime.html", unit="", done=done == "1",
            least=least_min,
        )  # fmt: skip
    first = (at - 1) * OT_PAGE
    shown, total = store.overtime_page(engine, month, unit or None, scope, first, OT_PAGE, least_min)
    if first >= total > 0:  # past the last page (fewer candidates since the link was made): the last
        at = -(-total // OT_PAGE)
        first = (at - 1) * OT_PAGE
        shown, total = store.overtime_page(engine, month, unit or None, scope, first, OT_PAGE, least_min)
    _note(view, "console.attendance.overtime.view", unit or "*", month=month, rows=total)
    with view.db() as s:
        names = store.staff_names(s.connection(), sorted({o["staff"] for o in shown}))
    fmt = i18n.Formats(view.lang)
    # each row's texts formatted here, not by calls in the template's loop (500 rows: ~40 ms)
    rows = [
        (
            o,
            names.get(o["staff"], ""),
            fmt.day(o["date"]),
            ", ".join(f"{a}–{b}" for a, b in o["intervals"]),
            fmt.num(o["minutes"]),
            fmt.num(o["approved_min"]),
        )
        for o in shown
    ]
    return web.render(
        view.request,
        "hr_overtime.html",
        view=view,
        month=month,
        unit=unit,
        rows=rows,
        total=total,
        done=done == "1",
        least=least_min,
        first=first,
        page=at,
        pages=max(1, -(-total // OT_PAGE)),
    )


@router.post("/attendance/overtime")
async def approve(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    minutes = web.whole(f.get("minutes", ""), 6)
    if minutes is None:
        raise web.ConsoleError(400, "Minutes is a whole number.")
    body = {
        "staff": f.get("staff", "").strip(),
        "date": f.get("date", ""),
        "minutes": minutes,
        "reason": " ".join(f.get("reason", "").split()),
    }
    try:
        item = api_att.OvertimeIn.model_validate(body)
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        web.api_call(api_att.approve_overtime, s, view.principal, item)
    _note(view, "console.attendance.overtime", item.staff, day=item.day, minutes=item.minutes)
    month = item.day.strftime("%Y-%m")
    unit = f.get("unit", "").strip()
    back = f"&unit={quote(unit)}" if unit and att_pages.UNIT.match(unit) else ""
    for name in ("page", "least"):  # back to the page the form was on
        value = web.whole(f.get(name, ""), 6)
        if value is not None:
            back += f"&{name}={value}"
    return web.redirect(f"{web.PREFIX}/attendance/overtime?month={month}{back}&done=1")
