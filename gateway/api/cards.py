"""Cards as the national database knows them, and the local lock of a lost card.

A lock applies at once: the card is marked locked (and flagged for the national database, which
the gateway's sync pushes it to), and the national revocation list's delta goes out to every
reader (gateway.crl_publisher). Scoped tokens see and lock only cards of staff within their unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway import crl_publisher
from gateway.api.common import Limit
from gateway.api.deps import DB, require, unit_filter
from gateway.api.errors import ApiError, not_found, reason, responses
from gateway.api.schemas import TEXT_PATTERN, Out
from gateway.auth import CARDS_LOCK, CARDS_READ, Principal
from gateway.errors import GatewayError
from gateway.models import Card, StaffRecord
from messages import N_

router = APIRouter(prefix="/cards", tags=["cards"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(CARDS_READ))]
CanLock = Annotated[Principal, Depends(require(CARDS_LOCK))]
SerialPath = Annotated[int, Path(ge=0, le=2**53, description="Số serial thẻ (card serial)")]


class CardOut(Out):
    serial: int
    staff_code: str = Field(description="Mã cán bộ")
    full_name: str | None = Field(description="Họ và tên (từ CSDL quốc gia)")
    agency_code: str | None = Field(description="Mã cơ quan của cán bộ")
    issuer: str = Field(description="Cơ quan cấp thẻ")
    gen: int = Field(description="Lần cấp (thẻ cấp lại: gen + 1)")
    status: str = Field(description="issued | locked | revoked | expired | replaced")
    issued_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime
    pending_upstream: bool = Field(description="Khóa tại chỗ chưa báo lên CSDL quốc gia")


class CardPage(BaseModel):
    items: list[CardOut]


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Báo mất thẻ"}]})

    reason: str = Field(default="", max_length=500, pattern=TEXT_PATTERN, description="Lý do khóa")


class LockOut(BaseModel):
    card: CardOut
    list_seq: int | None = Field(description="Số thứ tự danh sách thu hồi vừa phát (None: chưa phát)")
    list_kind: str | None = Field(description="full | delta")


def _out(card: Card, staff: StaffRecord | None) -> CardOut:
    return CardOut(
        serial=card.serial,
        staff_code=card.staff_code,
        full_name=staff.full_name if staff else None,
        agency_code=staff.agency_code if staff else None,
        issuer=card.issuer,
        gen=card.gen,
        status=card.status,
        issued_at=card.issued_at,
        expires_at=card.expires_at,
        updated_at=card.updated_at,
        pending_upstream=card.pending_upstream,
    )


def _visible(session: Session, principal: Principal, serial: int) -> tuple[Card, StaffRecord | None]:
    card = session.get(Card, serial)
    if card is None:
        raise not_found("card")
    staff = session.get(StaffRecord, card.staff_code)
    if not principal.sees_unit(staff.agency_code if staff else card.issuer):
        raise not_found("card")
    return card, staff


@router.get("", response_model=CardPage, summary="Thẻ của một cán bộ (cards of a staff member)")
def list_cards(
    session: DB,
    principal: CanRead,
    staff_code: Annotated[str, Query(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="Mã cán bộ")],
    limit: Limit = 100,
) -> CardPage:
    staff = session.get(StaffRecord, staff_code)
    q = select(Card).where(Card.staff_code == staff_code)
    if principal.scoped:
        if staff is None:
            q = q.where(unit_filter(Card.issuer, principal))
        elif not principal.sees_unit(staff.agency_code):
            return CardPage(items=[])
    rows = session.exec(q.order_by(col(Card.serial)).limit(limit)).all()
    return CardPage(items=[_out(c, staff) for c in rows])


@router.get("/{serial}", response_model=CardOut, responses=responses(404), summary="Một thẻ (one card)")
def get_card(serial: SerialPath, session: DB, principal: CanRead) -> CardOut:
    return _out(*_visible(session, principal, serial))


@router.post(
    "/{serial}/lock",
    response_model=LockOut,
    status_code=202,
    responses=responses(404, 409),
    summary="Khóa thẻ bị mất ngay tại chỗ (lock a lost card now)",
)
def lock(serial: SerialPath, body: LockIn, session: DB, principal: CanLock) -> LockOut:
    card, _ = _visible(session, principal, serial)
    if card.status != "issued":
        params = {"serial": str(serial), "status": card.status}
        raise ApiError(409, "not_issued", N_("card {serial} is already {status}"), params=params)
    engine = session.get_bind()
    assert isinstance(engine, Engine)  # noqa: S101 — type narrowing for mypy, not input validation
    try:
        published = crl_publisher.lock_card(
            engine,
            serial,
            principal.actor,
            role=principal.role,
            reason=body.reason,
        )
    except GatewayError as exc:
        raise ApiError(409, "not_issued", reason(exc)) from None
    session.expire_all()
    card, staff = _visible(session, principal, serial)
    return LockOut(
        card=_out(card, staff),
        list_seq=published.seq if published else None,
        list_kind=published.kind if published else None,
    )
