"""Doors by site → building → door with their state; site lockdown and release (confirmed, with a reason)."""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import col, select

from gateway import audit
from gateway.api import commands as api_commands
from gateway.api.deps import unit_filter
from gateway.api.schemas import CommandIn
from gateway.auth import COMMANDS_SEND, DOORS_READ
from gateway.console import doorstate, web
from gateway.console.web import Viewer
from gateway.models import Door, Reader

router = APIRouter()
SITE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")


def _site(site: str) -> str:
    if not 1 <= len(site) <= 64 or not set(site) <= SITE_CHARS:
        raise web.ConsoleError(404, "Not found.")
    return site


@router.get("/doors")
def doors(view: Viewer, site: str | None = None) -> Response:
    web.need(view, DOORS_READ)
    with view.db() as s:
        sites = sorted(
            set(s.exec(select(Door.site).where(unit_filter(Door.unit, view.principal))).all())
            | set(s.exec(select(Reader.site).where(unit_filter(Reader.unit, view.principal))).all())
        )
        chosen = site if site in sites else (sites[0] if sites else None)
        tree: dict[str, list[tuple[Door, list[Reader], str]]] = defaultdict(list)
        loose: list[tuple[Reader, str]] = []
        if chosen is not None:
            door_rows = s.exec(
                select(Door)
                .where(Door.site == chosen, unit_filter(Door.unit, view.principal))
                .order_by(col(Door.building), col(Door.id))
            ).all()
            readers = s.exec(
                select(Reader)
                .where(Reader.site == chosen, unit_filter(Reader.unit, view.principal))
                .order_by(col(Reader.id))
            ).all()
            states = doorstate.read(s, readers)
            by_door: dict[str | None, list[Reader]] = defaultdict(list)
            for r in readers:
                by_door[r.door_id].append(r)
            for d in door_rows:
                rs = by_door.get(d.id, [])
                tree[d.building or ""].append((d, rs, doorstate.worst(states[r.id].state() for r in rs)))
            known = {d.id for d in door_rows}
            loose = [(r, states[r.id].state()) for r in readers if r.door_id not in known]
    return web.render(
        view.request, "doors.html", view=view, sites=sites, site=chosen, tree=dict(tree), loose=loose
    )


@router.post("/sites/{site}/lockdown")
async def lockdown(site: str, view: Viewer) -> Response:
    return await _site_command(site, view, "lockdown")


@router.post("/sites/{site}/release")
async def release(site: str, view: Viewer) -> Response:
    return await _site_command(site, view, "release")


async def _site_command(site: str, view: Viewer, action: str) -> Response:
    fields = await web.check_csrf(view)
    web.need(view, COMMANDS_SEND)
    site = _site(site)
    reason = fields.get("reason", "").strip()[:500]
    if not reason or fields.get("confirm") != "yes":
        raise web.ConsoleError(400, "Give a reason and tick the confirmation box.")
    with view.db() as s:
        sent = web.api_call(
            api_commands.send_command, CommandIn(site=site, action=action), view.ctx, s, view.principal
        )
        audit.record(
            s,
            view.principal.actor,
            f"console.site.{action}",
            f"site:{site}",
            role=view.principal.role,
            reason=reason,
            ip=view.ip,
            commands=[c.seq for c in sent.items],
        )
        s.commit()
    return web.redirect(f"{web.PREFIX}/doors?site={web.quote(site)}")
