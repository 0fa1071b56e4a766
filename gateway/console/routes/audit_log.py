"""The audit log: who did what, when, from where; filterable, exported as CSV (Excel opens it)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from gateway.api import audit_log as api_audit
from gateway.api.events import _cell
from gateway.api.schemas import AuditOut
from gateway.auth import AUDIT_READ
from gateway.console import i18n, web
from gateway.console.web import View, Viewer
from gateway.db import utc

router = APIRouter()
ACTOR: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
ACTION: Final = re.compile(r"^[a-z0-9_.:-]{1,64}$")
TARGET: Final = re.compile(r"^[A-Za-z0-9_.:/*-]{1,128}$")
EXPORT_MAX: Final = 100_000


def _filters(view: View, actor: str, action: str, target: str, since: str, until: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value, pattern in (
        ("actor", actor, ACTOR),
        ("action", action, ACTION),
        ("target", target, TARGET),
    ):
        if value:
            if not pattern.match(value):
                raise web.ConsoleError(400, "A filter has characters that are not allowed.")
            out[name] = value
    first = _bound(since, end=False) if since else None
    last = _bound(until, end=True) if until else None
    if first is not None and last is not None and first >= last:
        raise web.ConsoleError(400, "The first date is after the last one.")
    out.update({k: v for k, v in (("since", first), ("until", last)) if v is not None})
    return out


# what the browser checks before sending (the server checks again): a date, optionally a time
WHEN_PATTERN: Final = rf"\s*({i18n.DAY_PATTERN})([ T]{i18n.CLOCK_PATTERN})?\s*"
WHEN: Final = re.compile(r"^(\S+?)(?:[ T]([01]?\d|2[0-3]):([0-5]\d))?$")


def _bound(text: str, end: bool) -> datetime:
    """A date filter as typed — ``06/12/2026`` (or ISO ``2026-12-06``), optionally with ``HH:MM`` —
    as an instant in Vietnam's time. A date alone as the last one means its whole day (the API's
    ``until`` excludes its instant: the next midnight)."""
    m = WHEN.match(text.strip())
    try:
        if m is None:
            raise ValueError(text)
        day = i18n.parse_day(m[1])
    except ValueError:
        raise web.ConsoleError(400, "A date is day/month/year (02/09/2026), with HH:MM if needed.") from None
    if m[2] is None:
        at = datetime(day.year, day.month, day.day, tzinfo=i18n.VN_TZ)
        return at + timedelta(days=1) if end else at
    return datetime(day.year, day.month, day.day, int(m[2]), int(m[3]), tzinfo=i18n.VN_TZ)


def ip_of(entry: AuditOut) -> str:
    """Where the action came from (console actions record the client address in the detail)."""
    detail = entry.detail
    return str(detail.get("ip", "")) if isinstance(detail, dict) else ""


def detail_text(entry: AuditOut) -> str:
    return json.dumps(entry.detail, ensure_ascii=False) if not isinstance(entry.detail, str) else entry.detail


@router.get("/audit")
def audit(
    view: Viewer,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    web.need(view, AUDIT_READ)
    flt = _filters(view, actor, action, target, since, until)
    with view.db() as s:
        page = web.api_call(
            api_audit.list_audit,
            s,
            view.principal,
            limit=100,
            cursor=cursor if web.whole(cursor) is not None else None,
            **flt,
        )
    return web.render(
        view.request,
        "audit.html",
        view=view,
        items=page.items,
        next=page.next,
        f={"actor": actor, "action": action, "target": target, "since": since, "until": until},
        ip_of=ip_of,
        detail_text=detail_text,
        today=datetime.now(i18n.VN_TZ).date().isoformat(),
        when_pattern=WHEN_PATTERN,
    )


HEADER: Final = (
    "Mã",
    "Thời điểm (giờ Việt Nam)",
    "Người thực hiện",
    "Vai trò",
    "Hành động",
    "Đối tượng",
    "Từ địa chỉ",
    "Chi tiết",
)


@router.get("/audit.csv")
def audit_csv(
    view: Viewer, actor: str = "", action: str = "", target: str = "", since: str = "", until: str = ""
) -> Response:
    web.need(view, AUDIT_READ)
    flt = _filters(view, actor, action, target, since, until)
    principal, engine = view.principal, view.ctx.engine

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        buf.write("\ufeff")
        w.writerow(HEADER)
        cursor: str | None = None
        sent = 0
        from sqlmodel import Session

        while sent < EXPORT_MAX:
            with Session(engine) as s:
                page = api_audit.list_audit(s, principal, limit=1000, cursor=cursor, order="asc", **flt)  # type: ignore[arg-type]
            for e in page.items:
                at = utc(e.at)
                w.writerow(
                    [
                        e.id,
                        at.astimezone(i18n.VN_TZ).strftime("%Y-%m-%d %H:%M:%S") if at else "",
                        _cell(e.actor),
                        _cell(e.role),
                        _cell(e.action),
                        _cell(e.target),
                        _cell(ip_of(e)),
                        _cell(detail_text(e)),
                    ]
                )
                sent += 1
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if page.next is None:
                return
            cursor = page.next

    with view.db() as s:
        from gateway import audit as audit_mod

        audit_mod.record(
            s,
            principal.actor,
            "console.audit.export",
            "",
            role=principal.role,
            ip=view.ip,
            filters={k: str(v) for k, v in flt.items()},  # as keywords, "action" collided (a 500)
        )
        s.commit()
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="nhat-ky-kiem-toan.csv"'},
    )
