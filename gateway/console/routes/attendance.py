"""HR: today's arrivals and absences, late / early per unit (SVG drawn on the server), the monthly
timesheet grid and its XLSX / PDF / CSV downloads — all from the attendance engine
(``gateway.attendance``) and its renderers, within the user's unit scope, audited."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import datetime
from operator import itemgetter
from typing import Any, Final, cast

from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup, escape

from gateway import audit
from gateway.api import attendance as api_att
from gateway.attendance import report as att_report
from gateway.attendance import store
from gateway.attendance.engine import month_dates
from gateway.attendance.errors import AttendanceError, cause
from gateway.attendance.render import summary
from gateway.auth import ATTENDANCE_READ
from gateway.console import i18n, web
from gateway.console.web import Viewer

router = APIRouter()
MONTH: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
UNIT: Final = re.compile(r"^[A-Za-z0-9._/ -]{1,64}$")
GRID_MAX: Final = 300  # people shown on the page; the downloads hold everyone
DAILY_MAX: Final = 200  # lines of the day panel shown (its counts are of everyone)
# people computed per request with no unit chosen; above it the page asks for a unit (a month of
# the whole nation — 2 M people — takes minutes, and one of 5,000 about a second)
PEOPLE_MAX: Final = 5000
PICK_MAX: Final = 300  # units offered to choose from
TYPES: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}


def _args(view: Viewer, month: str, unit: str) -> tuple[str, str | None]:
    """The month and the unit asked for; a unit outside the user's units is refused (the API's
    rule), not computed as an empty month."""
    month = month or datetime.now(i18n.VN_TZ).strftime("%Y-%m")
    if not MONTH.match(month):
        raise web.ConsoleError(400, "Month is YYYY-MM.")
    if unit and not UNIT.match(unit):
        raise web.ConsoleError(400, "A filter has characters that are not allowed.")
    if unit:
        web.api_call(api_att.check_unit, view.principal, unit)
    return month, unit or None


@router.get("/attendance")
def attendance(view: Viewer, month: str = "", unit: str = "") -> Response:
    web.need(view, ATTENDANCE_READ)
    month, unit_q = _args(view, month, unit)
    engine = view.ctx.engine
    scope = view.principal.unit_scope
    if unit_q is None and too_many(engine, scope):
        return pick_unit(view, month, "console.attendance.view", "attendance.html", unit=unit)
    kept = store.kept_month(engine, month, unit_q, scope)
    with view.db() as s:
        audit.record(
            s,
            view.principal.actor,
            "console.attendance.view",
            unit_q or "*",
            role=view.principal.role,
            month=month,
            people=len(kept.rows),
            ip=view.ip,
        )
        s.commit()
    today = datetime.now(i18n.VN_TZ).date().isoformat()
    return web.render(
        view.request,
        "attendance.html",
        view=view,
        month=month,
        unit=unit,
        parts=page_parts(kept, unit_q or "", scope, today, view.lang),
    )


def page_parts(kept: store.Kept, unit: str, scope: str, today: str, lang: str) -> Markup:
    """The page's day panel, per-unit figures and chart, and the grid of ``kept``, rendered once
    per content: the same kept number (``Kept.gen``: no row changed), unit, scope, day and language
    give the same HTML (an agency of 4,300 people: ~0.1 s of deriving, escaping and formatting per
    request saved). A new number renders them again, each row's share remembered while it is the
    same row (:class:`Derived`)."""
    key = (kept.gen, unit, scope, today, lang)
    with _DERIVED_LOCK:
        got = _PAGES.get(key)
    if got is not None:
        return got
    report = {"month": kept.month, "staff": kept.rows}
    shown_day = panel_day(report, kept.month, today)
    year, mon = (int(x) for x in kept.month.split("-"))
    days = [d.isoformat() for d in month_dates(year, mon)]
    # the contract marks the month's days still to come "absent" (rule 10, kept in the JSON and
    # the files); the page counts and shows only the days that are due
    derived = Derived((unit, scope, kept.month, today, shown_day or "", lang))
    slots = derived.rows(kept.rows, days, i18n.translations(lang).gettext("absent"))
    daily = daily_rows = None
    if shown_day:
        lines = [s for s in sorted(slots, key=itemgetter(3)) if s[2] is not None]
        daily = summary.daily_table(shown_day, lang, (s[2] for s in lines))
        daily_rows = [derived.daily_html(s) for s in lines[:DAILY_MAX]]
    figs = summary.figures_of(s[1] for s in slots)
    got = Markup(  # noqa: S704 (the template escapes; the chart's renderer escapes every text it draws)
        web.render_fragment(
            "_attendance_parts.html",
            lang,
            month=kept.month,
            daily=daily,
            chart=Markup(summary.chart_svg(figs, lang)) if figs else None,  # noqa: S704
            figs=figs,
            days=days,
            daily_rows=daily_rows,
            grid_rows=[derived.grid_html(slot) for slot in slots[:GRID_MAX]],
            total=len(kept.rows),
            grid_max=GRID_MAX,
            today=today,
            shown_day=shown_day,
        )
    )
    with _DERIVED_LOCK:
        _PAGES[key] = got
        _PAGES.move_to_end(key)
        while len(_PAGES) > DERIVED_KEYS:
            _PAGES.popitem(last=False)
    return got


def _has_data(report: dict[str, Any], day: str) -> bool:
    """Someone punched, or was on leave, on ``day``."""
    for p in report["staff"]:
        d = p["days"].get(day)
        if d is not None and (d.get("in") is not None or d.get("leave")):
            return True
    return False


def panel_day(report: dict[str, Any], month: str, today: str) -> str | None:
    """The day of the "today" panel: today in the current month; when today has nothing yet (early
    morning, a rest day, the demo's story day in the past) the latest day of the month up to
    today with punches or leave, which the page labels with its date. None for a future month or
    one with nothing at all (a past month) — the grid says it."""
    if month > today[:7]:
        return None
    year, mon = (int(x) for x in month.split("-"))
    for d in reversed([x.isoformat() for x in month_dates(year, mon)]):
        if d <= today and _has_data(report, d):
            return d
    return today if month == today[:7] else None


Slot = list[Any]  # row, (unit, its figures), day panel entry, panel order, grid line, panel line


class Derived:
    """What the page derives from each row — its share of the unit figures, its line of the day
    panel, its grid cells — remembered between requests for the same page, day and language
    while the row is the same object: the kept month (``store.kept_month``) shares an unchanged
    person's rows and gives a recomputed one new rows. One loop with no call per unchanged row:
    deriving an agency's 4,300 rows anew after each new punch cost ~60-230 ms, and calling back
    per row ~35 ms."""

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.until, self.date, self.lang = key[3], key[4], key[5]  # days after today: not yet due
        with _DERIVED_LOCK:
            self.old = _DERIVED.get(key, {})

    def rows(self, rows: list[dict[str, Any]], days: list[str], absent_word: str) -> list[Slot]:
        """Each row's slot, in the rows' order; remembered for the next request (these only)."""
        self.days, self.absent_word = days, absent_word
        old, until, date, lang = self.old, self.until, self.date, self.lang
        new: dict[int, Slot] = {}
        out = []
        for p in rows:
            slot = old.get(id(p))
            if slot is None or slot[0] is not p:  # held there: an id is not reused meanwhile
                slot = [
                    p,
                    (str(p.get("unit", "")), summary.row_figures(p, until)),
                    summary.daily_entry(p, date, lang) if date else None,
                    summary.daily_key(p),
                    None,
                    None,
                ]
            new[id(p)] = slot
            out.append(slot)
        with _DERIVED_LOCK:
            _DERIVED[self.key] = new
            _DERIVED.move_to_end(self.key)
            while len(_DERIVED) > DERIVED_KEYS:
                _DERIVED.popitem(last=False)
        return out

    def grid_html(self, slot: Slot) -> Markup:
        """The slot's grid line: name, staff code, the days' cells (:func:`grid_cells`), work days."""
        if slot[4] is None:
            p = slot[0]
            cells = grid_cells([p], self.days, self.until, self.absent_word)[0]
            work = i18n.Formats(self.lang).num((p.get("totals") or {}).get("work_days"))
            slot[4] = Markup(  # noqa: S704 (each text escaped)
                f'<tr><th scope="row">{escape(p.get("name", ""))}</th><td>{escape(p.get("staff", ""))}</td>'
                f"{cells}<td>{escape(work)}</td></tr>"
            )
        return cast(Markup, slot[4])

    def daily_html(self, slot: Slot) -> Markup:
        """The slot's line of the day panel (its entry's cells; none shown empty)."""
        if slot[5] is None:
            line = slot[2][0]
            slot[5] = Markup(  # noqa: S704 (each text escaped)
                "<tr>" + "".join(f"<td>{'' if c is None else escape(c)}</td>" for c in line) + "</tr>"
            )
        return cast(Markup, slot[5])


_DERIVED: OrderedDict[tuple[str, ...], dict[int, Slot]] = OrderedDict()
_PAGES: OrderedDict[tuple[Any, ...], Markup] = OrderedDict()
_DERIVED_LOCK = threading.Lock()
DERIVED_KEYS: Final = 8


def grid_cells(people: list[dict[str, Any]], days: list[str], today: str, absent_word: str) -> list[Markup]:
    """Each person's day symbols as the grid's ``<td>`` cells, each distinct cell escaped once (a
    page of 300 people has 9,300 cells, ~25 ms through the template's loop): a day still to come is
    a shaded empty cell, a due absence a marked one (the contract's report flags both ``absent``)."""
    future = '<td class="future"></td>'
    mark = '<span aria-hidden="true">×</span>'
    absent = f'<td class="absent">{mark}<span class="sr">{escape(absent_word)}</span></td>'
    done: dict[str, str] = {}
    out = []
    for p in people:
        got = p["days"]
        cells = []
        for d in days:
            if d > today:
                cells.append(future)
                continue
            day = got.get(d)
            if day is not None and "absent" in day["flags"]:
                cells.append(absent)
                continue
            sym = day["symbol"] if day else ""
            html = done.get(sym)
            if html is None:
                html = done[sym] = f"<td>{escape(sym)}</td>"
            cells.append(html)
        out.append(Markup("".join(cells)))  # noqa: S704 (each text escaped above)
    return out


def too_many(engine: Any, scope: str) -> bool:
    """More people in the user's scope than a page computes per request."""
    return store.people_in_view(engine, scope, bound=PEOPLE_MAX) > PEOPLE_MAX


def pick_unit(view: Viewer, month: str, action: str, template: str, **extra: Any) -> Response:
    """The page without the month computed: the agencies in scope with their head counts, to choose one."""
    units = store.agencies_in_view(view.ctx.engine, view.principal.unit_scope, limit=PICK_MAX)
    with view.db() as s:
        p = view.principal
        audit.record(s, p.actor, action, "*", role=p.role, month=month, people=0, ip=view.ip)
        s.commit()
    return web.render(
        view.request,
        template,
        view=view,
        month=month,
        pick=units,
        pick_max=PICK_MAX,
        people_max=PEOPLE_MAX,
        **extra,
    )


@router.get("/attendance/timesheet.{fmt}")
def timesheet(fmt: str, view: Viewer, month: str = "", unit: str = "") -> Response:
    web.need(view, ATTENDANCE_READ)
    if fmt not in TYPES:
        raise web.ConsoleError(404, "Not found.")
    month, unit_q = _args(view, month, unit)
    if unit_q is None and too_many(view.ctx.engine, view.principal.unit_scope):
        # as the page: a whole scope this large (the nation: minutes) is not computed per request
        raise web.ConsoleError(400, "Too many people in your scope for one download: choose a unit first.")
    try:
        data = att_report.produce(
            view.ctx.engine,
            month,
            unit_q,
            None,
            fmt,
            view.lang,
            actor=view.principal.actor,
            role=view.principal.role,
            scope=view.principal.unit_scope,
        )
    except AttendanceError as exc:
        raise web.ConsoleError(400, cause(exc)) from None  # a message: shown in the viewer's language
    name = f"bang-cham-cong-{month}{'-' + re.sub(r'[^A-Za-z0-9.-]', '_', unit_q) if unit_q else ''}.{fmt}"
    return Response(
        data, media_type=TYPES[fmt], headers={"content-disposition": f'attachment; filename="{name}"'}
    )
