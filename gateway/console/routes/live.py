"""Home page: active alarms and the live event feed (server-sent events), alarm acknowledgement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Final

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session, col, func, select

from gateway.api import alarms as api_alarms
from gateway.api import events as api_events
from gateway.api.schemas import AlarmAck
from gateway.auth import ALARMS_ACK, ALARMS_READ, EVENTS_READ, Principal
from gateway.console import accounts, web
from gateway.console.web import Viewer
from gateway.models import Event
from trustcore.messages_vi import reason_text

router = APIRouter()
# A feed queries when this process's ingest commits (ApiContext.events_bell) and, for events
# committed by another process (a separate ingest, a sibling gateway), at least every POLL_S.
POLL_S: Final = 0.5
MIN_GAP_S: Final = 0.05
ROWS: Final = 100  # per query
HEARTBEAT_S: Final = 15.0
RECHECK_S: Final = 30.0


def describe(e: Event, lang: str) -> str:
    """What an event's verdict means, for people (Vietnamese wording from the reader's messages)."""
    if e.kind == "tap":
        return reason_text(e.reason or "", e.decision) if lang == "vi" else (e.reason or "")
    if e.kind == "alarm":
        return f"{e.alarm or ''} {'ON' if e.active else 'OFF'}"
    return e.detail or ""


@router.get("/")
def home(view: Viewer) -> Response:
    with view.db() as s:
        alarms = (
            web.api_call(api_alarms.list_alarms, s, view.principal, active=True, limit=50)
            if view.can(ALARMS_READ)
            else None
        )
        events = (
            web.api_call(
                api_events.list_events, s, view.principal, api_events.EventFilter(), limit=30, order="desc"
            )
            if view.can(EVENTS_READ)
            else None
        )
    return web.render(
        view.request,
        "home.html",
        view=view,
        alarms=alarms.items if alarms else None,
        events=events.items if events else None,
        describe=describe,
    )


@router.post("/alarms/{alarm_id}/ack")
async def ack(alarm_id: int, view: Viewer) -> Response:
    fields = await web.check_csrf(view)
    web.need(view, ALARMS_ACK)
    if not 1 <= alarm_id <= 2**31 - 1:
        raise web.ConsoleError(404, "Not found.")
    note = fields.get("note", "")[:500]
    with view.db() as s:
        web.api_call(api_alarms.acknowledge, alarm_id, AlarmAck(note=note), s, view.principal)
    return web.redirect(web.PREFIX + "/")


def _new_events(engine: object, principal: Principal, after: int) -> list[Event]:
    flt = api_events.EventFilter()
    with Session(engine) as s:  # type: ignore[arg-type]
        q = select(Event).where(col(Event.id) > after, *flt.conditions(principal))
        return list(s.exec(q.order_by(col(Event.id)).limit(ROWS)).all())


def _top(engine: object) -> int:
    with Session(engine) as s:  # type: ignore[arg-type]
        top = s.exec(select(func.max(Event.id))).one()
        return int(top or 0)


def _still_valid(engine: object, secret: str) -> bool:
    with Session(engine) as s:  # type: ignore[arg-type]
        ok = accounts.resume(s, secret) is not None
        s.commit()
    return ok


def sse(event_id: int, html: str) -> bytes:
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"id: {event_id}\nevent: row\n{data}\n".encode()


@router.get("/live/stream")
async def stream(view: Viewer) -> Response:
    """New events visible to the user, as ready table rows (``event: row``); ``Last-Event-ID``
    resumes after a reconnect. Ends when the session does (checked every 30 s)."""
    web.need(view, EVENTS_READ)
    engine = view.ctx.engine
    principal, lang, request = view.principal, view.lang, view.request
    secret = request.cookies.get(web.COOKIE, "")
    header = request.headers.get("last-event-id", "")
    last = int(header) if header.isdigit() and len(header) < 19 else await run_in_threadpool(_top, engine)

    bell = view.ctx.events_bell

    async def gen() -> AsyncIterator[bytes]:
        nonlocal last
        yield b"retry: 1000\n\n"
        beat = check = time.monotonic()
        rung = bell.rings
        while True:
            if await request.is_disconnected():
                return
            queried = time.monotonic()
            rows = await run_in_threadpool(_new_events, engine, principal, last)
            for e in rows:
                last = e.id or last
                html = web.render_fragment("_event_row.html", lang, e=e, describe=describe)
                yield sse(last, html)
            now = time.monotonic()
            if now - beat > HEARTBEAT_S:
                beat = now
                yield b": keep-alive\n\n"
            if now - check > RECHECK_S:
                check = now
                if not await run_in_threadpool(_still_valid, engine, secret):
                    return
            if len(rows) < ROWS:  # else more are waiting: query again at once
                rung = await bell.wait(rung, POLL_S)
                pause = MIN_GAP_S - (time.monotonic() - queried)
                if pause > 0:  # commits many times a second: one query per MIN_GAP_S at most
                    await asyncio.sleep(pause)

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
