"""Doors: create, read, update, delete (a door still used by a reader cannot be deleted)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session, col, func, select

from gateway import audit
from gateway.api.common import Limit, commit, page, update_and_audit
from gateway.api.deps import DB, require, unit_filter
from gateway.api.errors import conflict, forbidden, not_found, responses
from gateway.api.schemas import CODE_PATTERN, DOOR_ID_PATTERN, DoorCreate, DoorOut, DoorPage, DoorUpdate
from gateway.auth import DOORS_READ, DOORS_WRITE, Principal
from gateway.models import Door, Reader
from messages import N_

router = APIRouter(prefix="/doors", tags=["doors"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(DOORS_READ))]
CanWrite = Annotated[Principal, Depends(require(DOORS_WRITE))]
DoorIdPath = Annotated[str, Path(pattern=DOOR_ID_PATTERN, max_length=64, description="Mã cửa")]


def _visible(session: Session, principal: Principal, door_id: str) -> Door:
    door = session.get(Door, door_id)
    if door is None or not principal.sees_unit(door.unit):
        raise not_found("door")
    return door


@router.get("", response_model=DoorPage, summary="Danh sách cửa (list doors)")
def list_doors(
    session: DB,
    principal: CanRead,
    limit: Limit = 100,
    after: Annotated[
        str | None,
        Query(pattern=DOOR_ID_PATTERN, max_length=64, description="Con trỏ: mã cửa cuối của trang trước"),
    ] = None,
    site: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64)] = None,
    unit: Annotated[
        str | None, Query(pattern=CODE_PATTERN, max_length=64, description="Tiền tố mã đơn vị")
    ] = None,
) -> DoorPage:
    q = select(Door).where(unit_filter(Door.unit, principal))
    if after is not None:
        q = q.where(col(Door.id) > after)
    if site is not None:
        q = q.where(Door.site == site)
    if unit is not None:
        q = q.where(col(Door.unit).startswith(unit, autoescape=True))
    rows = session.exec(q.order_by(col(Door.id)).limit(limit + 1)).all()
    items, nxt = page(rows, limit, lambda d: d.id)
    return DoorPage(items=[DoorOut.model_validate(d) for d in items], next=nxt)


@router.get("/{door_id}", response_model=DoorOut, responses=responses(404), summary="Một cửa (one door)")
def get_door(door_id: DoorIdPath, session: DB, principal: CanRead) -> DoorOut:
    return DoorOut.model_validate(_visible(session, principal, door_id))


@router.post(
    "", response_model=DoorOut, status_code=201, responses=responses(409), summary="Thêm cửa (create)"
)
def create_door(body: DoorCreate, session: DB, principal: CanWrite) -> DoorOut:
    if not principal.sees_unit(body.unit):
        raise forbidden(N_("the door's unit is outside this token's scope"), "out_of_scope")
    if session.get(Door, body.id) is not None:
        raise conflict(N_("door {id} already exists"), id=body.id)
    door = Door(
        id=body.id,
        name=body.name,
        site=body.site,
        building=body.building,
        unit=body.unit,
        description=body.description,
    )
    session.add(door)
    audit.record(
        session,
        principal.actor,
        "door.create",
        f"door:{body.id}",
        role=principal.role,
        name=body.name,
        site=body.site,
        building=body.building,
        unit=body.unit,
    )
    commit(session, f"door {body.id} already exists")
    return DoorOut.model_validate(door)


@router.patch("/{door_id}", response_model=DoorOut, responses=responses(404), summary="Sửa cửa (update)")
def update_door(door_id: DoorIdPath, body: DoorUpdate, session: DB, principal: CanWrite) -> DoorOut:
    door = _visible(session, principal, door_id)
    changes: dict[str, Any] = {}
    for field in ("name", "site", "building", "unit", "description"):
        value = getattr(body, field)
        if value is not None and value != getattr(door, field):
            changes[field] = value
    if "unit" in changes and not principal.sees_unit(changes["unit"]):
        raise forbidden(N_("the new unit is outside this token's scope"), "out_of_scope")
    update_and_audit(session, door, changes, actor=principal.actor, role=principal.role,
                     action="door.update", target=f"door:{door_id}",
                     conflict_detail=N_("the door changed meanwhile"))  # fmt: skip
    return DoorOut.model_validate(door)


@router.delete("/{door_id}", status_code=204, responses=responses(404, 409), summary="Xóa cửa (delete)")
def delete_door(door_id: DoorIdPath, session: DB, principal: CanWrite) -> None:
    door = _visible(session, principal, door_id)
    used = session.exec(select(func.count()).select_from(Reader).where(Reader.door_id == door_id)).one()
    if used:
        raise conflict(N_("door {id} is still used by {n} reader(s)"), id=door_id, n=str(used))
    session.delete(door)
    audit.record(
        session,
        principal.actor,
        "door.delete",
        f"door:{door_id}",
        role=principal.role,
        name=door.name,
        unit=door.unit,
    )
    commit(session, f"door {door_id} is still used by a reader")
