"""Card and staff search (without diacritics), one card with its history, and the lock of a lost card."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import col, select

from gateway import audit
from gateway.api import cards as api_cards
from gateway.api import events as api_events
from gateway.auth import CARDS_LOCK, CARDS_READ, EVENTS_READ
from gateway.console import search, web
from gateway.console.routes.live import describe
from gateway.console.web import Viewer
from gateway.models import CardChange

router = APIRouter()


def _serial(serial: str) -> int:
    if not serial.isdigit() or len(serial) > 16:
        raise web.ConsoleError(404, "Not found.")
    return int(serial)


@router.get("/cards")
def cards(view: Viewer, q: str = "") -> Response:
    web.need(view, CARDS_READ)
    hits = None
    if q.strip():
        with view.db() as s:
            hits = search.search(s, view.principal, q)
            # Personal data looked up: who searched for what (Decree 13/2023).
            audit.record(
                s,
                view.principal.actor,
                "console.card.search",
                "",
                role=view.principal.role,
                query=q[:100],
                found=len(hits),
                ip=view.ip,
            )
            s.commit()
    return web.render(view.request, "cards.html", view=view, q=q[:100], hits=hits)


@router.get("/cards/{serial}")
def card(serial: str, view: Viewer) -> Response:
    web.need(view, CARDS_READ)
    n = _serial(serial)
    with view.db() as s:
        c = web.api_call(api_cards.get_card, n, s, view.principal)
        changes = s.exec(
            select(CardChange).where(CardChange.serial == n).order_by(col(CardChange.id).desc()).limit(50)
        ).all()
        events = None
        if view.can(EVENTS_READ):
            flt = api_events.EventFilter(serial=n)
            events = web.api_call(
                api_events.list_events, s, view.principal, flt, limit=50, order="desc"
            ).items
        audit.record(
            s, view.principal.actor, "console.card.view", str(n), role=view.principal.role, ip=view.ip
        )
        s.commit()
    return web.render(
        view.request, "card.html", view=view, c=c, changes=changes, events=events, describe=describe
    )


@router.post("/cards/{serial}/lock")
async def lock(serial: str, view: Viewer) -> Response:
    fields = await web.check_csrf(view)
    web.need(view, CARDS_LOCK)
    n = _serial(serial)
    reason = fields.get("reason", "").strip()[:500]
    if not reason or fields.get("confirm") != "yes":
        raise web.ConsoleError(400, "Give a reason and tick the confirmation box.")
    with view.db() as s:
        web.api_call(api_cards.lock, n, api_cards.LockIn(reason=reason.replace("\n", " ")), s, view.principal)
        audit.record(
            s,
            view.principal.actor,
            "console.card.lock",
            str(n),
            role=view.principal.role,
            reason=reason,
            ip=view.ip,
        )
        s.commit()
    return web.redirect(f"{web.PREFIX}/cards/{n}")
