"""The audit trail (read-only). Audit entries name many kinds of targets, some outside any unit,
so only tokens without a unit scope may read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import col, select

from gateway.api.common import Cursor, Limit, Order, Since, Until, after_cursor, page
from gateway.api.deps import DB, as_utc, require
from gateway.api.errors import forbidden, responses
from gateway.api.schemas import AuditOut, AuditPage
from gateway.auth import AUDIT_READ, Principal
from gateway.models import AuditEntry
from messages import N_

router = APIRouter(prefix="/audit", tags=["audit"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(AUDIT_READ))]


@router.get("", response_model=AuditPage, summary="Nhật ký kiểm toán (audit log)")
def list_audit(
    session: DB,
    principal: CanRead,
    actor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$", max_length=64)] = None,
    action: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z0-9_.:-]{1,64}$", max_length=64, description="Ví dụ reader.register, token.create"
        ),
    ] = None,
    target: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9_.:/*-]{1,128}$", max_length=128, description="Ví dụ reader:hn-a-cong-chinh"
        ),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Order = "desc",
) -> AuditPage:
    if principal.scoped:
        raise forbidden(
            N_("the audit log is readable only with a token without a unit scope"), "scope_too_narrow"
        )
    q = select(AuditEntry)
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    if action is not None:
        q = q.where(AuditEntry.action == action)
    if target is not None:
        q = q.where(AuditEntry.target == target)
    if since is not None:
        q = q.where(col(AuditEntry.at) >= as_utc(since))
    if until is not None:
        q = q.where(col(AuditEntry.at) < as_utc(until))
    if cursor is not None:
        q = q.where(after_cursor(col(AuditEntry.id), cursor, order))
    q = q.order_by(col(AuditEntry.id) if order == "asc" else col(AuditEntry.id).desc()).limit(limit + 1)
    rows = session.exec(q).all()
    items, nxt = page(rows, limit, lambda r: r.id)
    return AuditPage(items=[AuditOut.model_validate(r) for r in items], next=nxt)
