"""National card database sync and the revocation list each reader holds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import col, func, select

from gateway.api.deps import unit_filter
from gateway.auth import CARDS_READ, READERS_READ
from gateway.console import web
from gateway.console.web import Viewer
from gateway.models import Card, CardChange, Reader, RevocationPublication, SyncState

router = APIRouter()


@router.get("/sync")
def sync(view: Viewer) -> Response:
    web.need(view, CARDS_READ)
    with view.db() as s:
        states = s.exec(select(SyncState).order_by(col(SyncState.name))).all()
        pubs = s.exec(
            select(RevocationPublication).order_by(col(RevocationPublication.seq).desc()).limit(10)
        ).all()
        pending = s.exec(select(func.count()).select_from(Card).where(Card.pending_upstream == True)).one()  # noqa: E712
        last_change = s.exec(select(CardChange).order_by(col(CardChange.id).desc()).limit(1)).first()
        readers = (
            s.exec(
                select(Reader)
                .where(unit_filter(Reader.unit, view.principal))
                .order_by(col(Reader.id))
                .limit(500)
            ).all()
            if view.can(READERS_READ)
            else []
        )
    latest = pubs[0].seq if pubs else None
    return web.render(
        view.request,
        "sync.html",
        view=view,
        states=states,
        pubs=pubs,
        pending=pending,
        last_change=last_change,
        readers=readers,
        latest=latest,
    )
