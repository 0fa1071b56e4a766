"""HR: the year's calendar as the timesheet uses it — public holidays, swapped days off and
compensatory working days, shipped (the ``holidays`` package and ``data/vn_calendar.toml``) or the
site's own overrides — and editing those overrides.

Through the attendance API's handlers (``calendar``, ``set_calendar``, ``unset_calendar``), which
call the CLI's store functions: one rule. The calendar is shared by every unit, so only an
unscoped account changes it.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from gateway.api import attendance as api_att
from gateway.auth import ATTENDANCE_READ, ATTENDANCE_WRITE
from gateway.console import i18n, web
from gateway.console.routes.hr import _bad, _note
from gateway.console.web import Viewer

router = APIRouter()


def _year(text: str) -> int:
    if not text:
        return datetime.now(i18n.VN_TZ).year
    year = web.whole(text, 4)
    if year is None or not 2000 <= year <= 2100:
        raise web.ConsoleError(400, "The year is 2000 to 2100.")
    return year


def _day(text: str) -> date:
    try:
        d = i18n.parse_day(text)
    except ValueError:
        raise web.ConsoleError(400, "A date is day/month/year, e.g. 02/09/2026.") from None
    if not 2000 <= d.year <= 2100:
        raise web.ConsoleError(400, "The year is 2000 to 2100.")
    return d


def _local_names(year: int, lang: str, days: list[api_att.CalendarDayOut]) -> dict[date, str]:
    """Names of the ``holidays`` package in the page's language, for the shipped dates that carry
    the package's own (English) name — display only; the engine and the reports keep theirs."""
    import holidays as pkg

    base = pkg.country_holidays("VN", years=year)
    local = pkg.country_holidays("VN", years=year, language="vi" if lang == "vi" else "en_US")
    return {
        c.date: local[c.date]
        for c in days
        if c.source == "shipped" and c.date in local and base.get(c.date) == c.name
    }


@router.get("/attendance/calendar")
def calendar(view: Viewer, year: str = "", done: str = "") -> Response:
    web.need(view, ATTENDANCE_READ)
    y = _year(year)
    today = datetime.now(i18n.VN_TZ).date()
    with view.db() as s:
        days = web.api_call(api_att.calendar, s, view.principal, y)
    return web.render(
        view.request,
        "hr_calendar.html",
        view=view,
        year=y,
        days=days,
        local_names=_local_names(y, view.lang, days),
        done=done if done in ("set", "unset") else "",
        can_edit=view.can(ATTENDANCE_WRITE) and not view.principal.scoped,
        first=(today if today.year == y else date(y, 1, 1)).isoformat(),
    )


@router.post("/attendance/calendar")
async def set_day(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    d = _day(f.get("day", ""))
    try:
        body = api_att.CalendarIn.model_validate(
            {"kind": f.get("kind", ""), "name": " ".join(f.get("name", "").split())}
        )
    except ValidationError as exc:
        raise _bad(exc) from None
    with view.db() as s:
        web.api_call(api_att.set_calendar, d, s, view.principal, body)
    _note(view, "console.attendance.calendar.set", d.isoformat(), kind=body.kind, name=body.name)
    return web.redirect(f"{web.PREFIX}/attendance/calendar?year={d.year}&done=set")


@router.post("/attendance/calendar/unset")
async def unset_day(view: Viewer) -> Response:
    f = await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    d = _day(f.get("day", ""))
    with view.db() as s:
        web.api_call(api_att.unset_calendar, d, s, view.principal)
    _note(view, "console.attendance.calendar.unset", d.isoformat())
    return web.redirect(f"{web.PREFIX}/attendance/calendar?year={d.year}&done=unset")
