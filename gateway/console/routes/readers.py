"""Readers with their health; one reader: remote open (confirmed, with a reason), commands and
the door configuration edited in a form and pushed as the signed configuration."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import Session, col, select

from gateway import audit
from gateway.api import commands as api_commands
from gateway.api import readers as api_readers
from gateway.api.schemas import READER_ID_PATTERN, CommandIn, ConfigPushIn
from gateway.auth import COMMANDS_SEND, CONFIG_PUSH, READERS_READ
from gateway.console import configform, web
from gateway.console.web import Viewer
from gateway.models import Command, ConfigPush, ConsoleConfigSource, Reader, RevocationPublication, now_utc

router = APIRouter()
_RID = re.compile(READER_ID_PATTERN)


def _rid(reader_id: str) -> str:
    if not _RID.match(reader_id) or len(reader_id) > 63:
        raise web.ConsoleError(404, "Not found.")
    return reader_id


def latest_list_seq(s: Session) -> int | None:
    row = s.exec(
        select(RevocationPublication).order_by(col(RevocationPublication.seq).desc()).limit(1)
    ).first()
    return row.seq if row else None


@router.get("/readers")
def readers(view: Viewer, site: str | None = None, after: str | None = None) -> Response:
    web.need(view, READERS_READ)
    with view.db() as s:
        page = web.api_call(
            api_readers.list_readers,
            s,
            view.principal,
            limit=200,
            site=site if site and len(site) <= 64 else None,
            after=_rid(after) if after else None,
        )
        list_seq = latest_list_seq(s)
    return web.render(
        view.request,
        "readers.html",
        view=view,
        readers=page.items,
        next=page.next,
        list_seq=list_seq,
        now=now_utc(),
    )


@router.get("/readers/{reader_id}")
def reader(reader_id: str, view: Viewer) -> Response:
    web.need(view, READERS_READ)
    with view.db() as s:
        r = web.api_call(api_readers.get_reader, _rid(reader_id), s, view.principal)
        pushes = s.exec(
            select(ConfigPush)
            .where(ConfigPush.reader_id == r.id)
            .order_by(col(ConfigPush.id).desc())
            .limit(10)
        ).all()
        commands = s.exec(
            select(Command).where(Command.target == r.id).order_by(col(Command.id).desc()).limit(10)
        ).all()
        list_seq = latest_list_seq(s)
    return web.render(
        view.request,
        "reader.html",
        view=view,
        r=r,
        pushes=pushes,
        commands=commands,
        list_seq=list_seq,
        now=now_utc(),
    )


@router.post("/readers/{reader_id}/open")
async def open_door(reader_id: str, view: Viewer) -> Response:
    fields = await web.check_csrf(view)
    web.need(view, COMMANDS_SEND)
    rid = _rid(reader_id)
    reason = fields.get("reason", "").strip()[:500]
    if not reason or fields.get("confirm") != "yes":
        raise web.ConsoleError(400, "Give a reason and tick the confirmation box.")
    with view.db() as s:
        sent = web.api_call(
            api_commands.send_command, CommandIn(reader_id=rid, action="open"), view.ctx, s, view.principal
        )
        audit.record(
            s,
            view.principal.actor,
            "console.door.open",
            f"reader:{rid}",
            role=view.principal.role,
            reason=reason,
            ip=view.ip,
            command=sent.items[0].seq if sent.items else None,
        )
        s.commit()
    return web.redirect(f"{web.PREFIX}/readers/{rid}")


def _stored_source(s: Session, r: Reader) -> dict[str, Any]:
    row = s.get(ConsoleConfigSource, r.id)
    if row is not None:
        src: dict[str, Any] = json.loads(row.source)
        return src
    return configform.default_source(r.site, r.door_id or "cua-chinh", r.name or r.id)


@router.get("/readers/{reader_id}/config")
def config_page(reader_id: str, view: Viewer) -> Response:
    web.need(view, READERS_READ)
    with view.db() as s:
        web.api_call(api_readers.get_reader, _rid(reader_id), s, view.principal)
        r = s.get(Reader, reader_id)
        if r is None:  # removed since the check above
            raise web.ConsoleError(404, "Not found.")
        src = _stored_source(s, r)
    return web.render(view.request, "config.html", view=view, r=r, form=configform.to_form(src))


@router.post("/readers/{reader_id}/config")
async def push_config(reader_id: str, view: Viewer) -> Response:
    await web.check_csrf(view)
    web.need(view, CONFIG_PUSH)
    rid = _rid(reader_id)
    lists = await web.form_lists(view)
    with view.db() as s:
        web.api_call(api_readers.get_reader, rid, s, view.principal)
        r = s.get(Reader, rid)
        if r is None:
            raise web.ConsoleError(404, "Not found.")
        try:
            src = configform.from_form(lists)
        except configform.FormError as exc:
            return web.render(
                view.request,
                "config.html",
                status=400,
                view=view,
                r=r,
                form=configform.to_form(configform.partial(lists)),
                error=str(exc),
            )
        try:
            push = web.api_call(
                api_readers.push_config, rid, ConfigPushIn(config=src), view.ctx, s, view.principal
            )
        except web.ConsoleError as exc:
            if exc.status != 400:
                raise
            return web.render(
                view.request,
                "config.html",
                status=400,
                view=view,
                r=r,
                form=configform.to_form(src),
                error=exc.message,
            )
        row = s.get(ConsoleConfigSource, rid) or ConsoleConfigSource(
            reader_id=rid, source="{}", updated_at=now_utc()
        )
        row.source = json.dumps(src, ensure_ascii=False)
        row.seq = push.seq
        row.updated_at = now_utc()
        row.updated_by = view.principal.actor
        s.add(row)
        audit.record(
            s,
            view.principal.actor,
            "console.config.push",
            f"reader:{rid}",
            role=view.principal.role,
            seq=push.seq,
            ip=view.ip,
        )
        s.commit()
    return web.redirect(f"{web.PREFIX}/readers/{rid}")
