"""Alarms: list (active or all) and acknowledge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session, col, select

from gateway import audit
from gateway.api.common import Cursor, Limit, Order, Since, Until, after_cursor, commit, page
from gateway.api.deps import DB, as_utc, readers_in_scope, require
from gateway.api.errors import conflict, not_found, responses
from gateway.api.schemas import INT32_MAX, READER_ID_PATTERN, AlarmAck, AlarmOut, AlarmPage
from gateway.auth import ALARMS_ACK, ALARMS_READ, Principal
from gateway.models import Alarm, now_utc
from messages import N_

router = APIRouter(prefix="/alarms", tags=["alarms"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(ALARMS_READ))]
CanAck = Annotated[Principal, Depends(require(ALARMS_ACK))]
AlarmIdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="Mã báo động")]


def _visible(session: Session, principal: Principal, alarm_id: int) -> Alarm:
    q = select(Alarm).where(Alarm.id == alarm_id)
    if principal.scoped:
        q = q.where(col(Alarm.reader_id).in_(readers_in_scope(principal)))
    alarm = session.exec(q).first()
    if alarm is None:
        raise not_found("alarm")
    return alarm


@router.get("", response_model=AlarmPage, summary="Danh sách báo động (list alarms; active ones by default)")
def list_alarms(
    session: DB,
    principal: CanRead,
    active: Annotated[
        bool | None, Query(description="true: đang bật (mặc định); false: đã tắt; bỏ trống: tất cả")
    ] = True,
    acknowledged: Annotated[bool | None, Query(description="Đã / chưa xác nhận")] = None,
    reader_id: Annotated[str | None, Query(pattern=READER_ID_PATTERN, max_length=63)] = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$", max_length=32)] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Order = "desc",
) -> AlarmPage:
    q = select(Alarm)
    if principal.scoped:
        q = q.where(col(Alarm.reader_id).in_(readers_in_scope(principal)))
    if active is not None:
        q = q.where(Alarm.active == active)
    if acknowledged is not None:
        q = q.where(
            col(Alarm.acknowledged_at).is_not(None) if acknowledged else col(Alarm.acknowledged_at).is_(None)
        )
    if reader_id is not None:
        q = q.where(Alarm.reader_id == reader_id)
    if kind is not None:
        q = q.where(Alarm.kind == kind)
    if since is not None:
        q = q.where(col(Alarm.raised_at) >= as_utc(since))
    if until is not None:
        q = q.where(col(Alarm.raised_at) < as_utc(until))
    if cursor is not None:
        q = q.where(after_cursor(col(Alarm.id), cursor, order, INT32_MAX))
    q = q.order_by(col(Alarm.id) if order == "asc" else col(Alarm.id).desc()).limit(limit + 1)
    rows = session.exec(q).all()
    items, nxt = page(rows, limit, lambda a: a.id)
    return AlarmPage(items=[AlarmOut.model_validate(a) for a in items], next=nxt)


@router.get(
    "/{alarm_id}", response_model=AlarmOut, responses=responses(404), summary="Một báo động (one alarm)"
)
def get_alarm(alarm_id: AlarmIdPath, session: DB, principal: CanRead) -> AlarmOut:
    return AlarmOut.model_validate(_visible(session, principal, alarm_id))


@router.post(
    "/{alarm_id}/ack",
    response_model=AlarmOut,
    responses=responses(404, 409),
    summary="Xác nhận báo động (acknowledge an alarm)",
)
def acknowledge(alarm_id: AlarmIdPath, body: AlarmAck, session: DB, principal: CanAck) -> AlarmOut:
    alarm = _visible(session, principal, alarm_id)
    if alarm.acknowledged_at is not None:
        who = str(alarm.acknowledged_by)
        raise conflict(N_("alarm {id} was already acknowledged by {who}"), id=str(alarm_id), who=who)
    alarm.acknowledged_by = principal.actor
    alarm.acknowledged_at = now_utc()
    session.add(alarm)
    audit.record(
        session,
        principal.actor,
        "alarm.ack",
        f"alarm:{alarm_id}",
        role=principal.role,
        reader_id=alarm.reader_id,
        kind=alarm.kind,
        note=body.note,
    )
    commit(session, "the alarm changed meanwhile")
    return AlarmOut.model_validate(alarm)
