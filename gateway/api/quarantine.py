"""Quarantined messages (not stored as events: forged, garbage, unknown reader, conflict)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import col, select

from gateway.api.common import Cursor, Limit, Order, Since, Until, after_cursor, page
from gateway.api.deps import DB, as_utc, readers_in_scope, require
from gateway.api.errors import not_found, responses
from gateway.api.schemas import INT64_MAX, READER_ID_PATTERN, QuarantineDetail, QuarantineOut, QuarantinePage
from gateway.auth import QUARANTINE_READ, Principal
from gateway.models import Quarantine

router = APIRouter(prefix="/quarantine", tags=["quarantine"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(QUARANTINE_READ))]


def _scoped(q: Any, principal: Principal) -> Any:
    """Scoped callers see messages of their own readers only (not those of unknown readers)."""
    if principal.scoped:
        q = q.where(col(Quarantine.reader_id).in_(readers_in_scope(principal)))
    return q


@router.get("", response_model=QuarantinePage, summary="Tin nhắn bị cách ly (quarantined messages)")
def list_quarantine(
    session: DB,
    principal: CanRead,
    reason: Annotated[str | None, Query(pattern=r"^[a-z0-9_:-]{1,64}$", max_length=64)] = None,
    reader_id: Annotated[str | None, Query(pattern=READER_ID_PATTERN, max_length=63)] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Order = "desc",
) -> QuarantinePage:
    q = _scoped(select(Quarantine), principal)
    if reason is not None:
        q = q.where(Quarantine.reason == reason)
    if reader_id is not None:
        q = q.where(Quarantine.reader_id == reader_id)
    if since is not None:
        q = q.where(col(Quarantine.received_at) >= as_utc(since))
    if until is not None:
        q = q.where(col(Quarantine.received_at) < as_utc(until))
    if cursor is not None:
        q = q.where(after_cursor(col(Quarantine.id), cursor, order))
    q = q.order_by(col(Quarantine.id) if order == "asc" else col(Quarantine.id).desc()).limit(limit + 1)
    rows = session.exec(q).all()
    items, nxt = page(rows, limit, lambda r: r.id)
    return QuarantinePage(items=[QuarantineOut.model_validate(r) for r in items], next=nxt)


@router.get(
    "/{item_id}",
    response_model=QuarantineDetail,
    responses=responses(404),
    summary="Một tin nhắn bị cách ly, kèm nội dung (one message, with its payload)",
)
def get_quarantined(
    item_id: Annotated[int, Path(ge=1, le=INT64_MAX)], session: DB, principal: CanRead
) -> QuarantineDetail:
    row = session.exec(_scoped(select(Quarantine).where(Quarantine.id == item_id), principal)).first()
    if row is None:
        raise not_found("quarantined message")
    data = QuarantineOut.model_validate(row).model_dump()
    return QuarantineDetail(**data, payload_hex=row.payload.hex())
