"""Readers: list and filter, register (key and MQTT password shown once), update, configuration
push, and the laggards that have not applied the configuration sent to them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session, col, select

from gateway import audit, registry
from gateway.api.common import Cursor, Limit, after_cursor, commit, page, update_and_audit
from gateway.api.deps import DB, Ctx, reader_visible, require, unit_filter
from gateway.api.errors import ApiError, conflict, forbidden, invalid, not_found, reason, responses
from gateway.api.schemas import (
    CODE_PATTERN,
    INT32_MAX,
    READER_ID_PATTERN,
    ConfigPushIn,
    ConfigPushOut,
    ConfigPushPage,
    ReaderOut,
    ReaderPage,
    ReaderRegister,
    ReaderUpdate,
    RegisteredReader,
)
from gateway.auth import CONFIG_PUSH, READERS_READ, READERS_WRITE, Principal
from gateway.fleet import laggard_filter
from gateway.models import ConfigPush, Door, Reader, now_utc
from messages import N_

router = APIRouter(prefix="/readers", tags=["readers"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(READERS_READ))]
CanWrite = Annotated[Principal, Depends(require(READERS_WRITE))]
CanPush = Annotated[Principal, Depends(require(CONFIG_PUSH))]
ReaderIdPath = Annotated[str, Path(pattern=READER_ID_PATTERN, max_length=63, description="Mã đầu đọc")]


def _door_visible(session: Session, principal: Principal, door_id: str) -> Door:
    door = session.get(Door, door_id)
    if door is None or not principal.sees_unit(door.unit):
        raise invalid(N_("door {id} does not exist"), "unknown_door", id=door_id)
    return door


@router.get("", response_model=ReaderPage, summary="Danh sách đầu đọc (list readers)")
def list_readers(
    session: DB,
    principal: CanRead,
    limit: Limit = 100,
    after: Annotated[
        str | None,
        Query(
            pattern=READER_ID_PATTERN, max_length=63, description="Con trỏ: mã đầu đọc cuối của trang trước"
        ),
    ] = None,
    site: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=64, description="Địa điểm")] = None,
    unit: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, max_length=64, description="Tiền tố mã đơn vị (unit-code prefix)"),
    ] = None,
    online: Annotated[bool | None, Query(description="Chỉ trực tuyến / ngoại tuyến")] = None,
    enabled: Annotated[bool | None, Query(description="Chỉ đang dùng / đã tắt")] = None,
    role: Annotated[str | None, Query(pattern="^(door|attendance|both)$")] = None,
) -> ReaderPage:
    q = select(Reader).where(unit_filter(Reader.unit, principal))
    if after is not None:
        q = q.where(col(Reader.id) > after)
    if site is not None:
        q = q.where(Reader.site == site)
    if unit is not None:
        q = q.where(col(Reader.unit).startswith(unit, autoescape=True))
    if online is not None:
        q = q.where(Reader.online == online)
    if enabled is not None:
        q = q.where(Reader.enabled == enabled)
    if role is not None:
        q = q.where(Reader.role == role)
    rows = session.exec(q.order_by(col(Reader.id)).limit(limit + 1)).all()
    items, nxt = page(rows, limit, lambda r: r.id)
    return ReaderPage(items=[ReaderOut.model_validate(r) for r in items], next=nxt)


@router.get(
    "/laggards",
    response_model=ReaderPage,
    summary="Đầu đọc chưa áp dụng cấu hình đã gửi (readers behind their pushed configuration)",
)
def laggards(
    ctx: Ctx,
    session: DB,
    principal: CanRead,
    older_than_s: Annotated[
        int,
        Query(ge=0, le=365 * 86400, description="Cấu hình gửi đã lâu hơn (pushed more than this many s ago)"),
    ] = 300,
) -> ReaderPage:
    found: list[Reader] = []
    if ctx.fleet is not None:
        for item in ctx.fleet.laggards(float(older_than_s)):
            rid = item if isinstance(item, str) else getattr(item, "id", None)
            row = session.get(Reader, rid) if isinstance(rid, str) else None
            if row is not None:
                found.append(row)
    else:
        cutoff = now_utc() - timedelta(seconds=older_than_s)
        query = select(Reader).where(laggard_filter(cutoff)).order_by(col(Reader.id))
        found = list(session.exec(query).all())
    visible = [r for r in found if principal.sees_unit(r.unit)][:1000]
    return ReaderPage(items=[ReaderOut.model_validate(r) for r in visible], next=None)


@router.get(
    "/{reader_id}",
    response_model=ReaderOut,
    responses=responses(404),
    summary="Một đầu đọc, kèm trạng thái và sức khỏe (one reader, with status and health)",
)
def get_reader(reader_id: ReaderIdPath, session: DB, principal: CanRead) -> ReaderOut:
    return ReaderOut.model_validate(reader_visible(session, principal, reader_id))


@router.post(
    "",
    response_model=RegisteredReader,
    status_code=201,
    responses=responses(409),
    summary="Đăng ký đầu đọc (register a reader; key and MQTT password shown once)",
)
def register_reader(body: ReaderRegister, ctx: Ctx, session: DB, principal: CanWrite) -> RegisteredReader:
    if not principal.sees_unit(body.unit):
        raise forbidden(N_("the reader's unit is outside this token's scope"), "out_of_scope")
    if session.get(Reader, body.id) is not None:
        raise conflict(N_("reader {id} is already registered"), id=body.id)
    if body.door_id is not None:
        _door_visible(session, principal, body.door_id)
    try:
        new = registry.register(
            session,
            ctx.box,
            body.id,
            name=body.name,
            site=body.site,
            unit=body.unit,
            door_id=body.door_id,
            role=body.role,
        )
    except registry.RegistryError as exc:
        raise invalid(reason(exc)) from None
    audit.record(
        session,
        principal.actor,
        "reader.register",
        f"reader:{body.id}",
        role=principal.role,
        name=body.name,
        site=body.site,
        unit=body.unit,
        door_id=body.door_id,
        reader_role=body.role,
    )
    commit(session, f"reader {body.id} is already registered")
    if ctx.on_reader_registered is not None:
        ctx.on_reader_registered(body.id, new.mqtt_password)
    return RegisteredReader(
        reader=ReaderOut.model_validate(new.reader),
        mac_key_hex=new.mac_key.hex(),
        mqtt_password=new.mqtt_password,
    )


@router.patch(
    "/{reader_id}",
    response_model=ReaderOut,
    responses=responses(404),
    summary="Sửa tên, địa điểm, cửa, vai trò, bật/tắt (update a reader)",
)
def update_reader(
    reader_id: ReaderIdPath, body: ReaderUpdate, ctx: Ctx, session: DB, principal: CanWrite
) -> ReaderOut:
    reader = reader_visible(session, principal, reader_id)
    changes: dict[str, Any] = {}
    for field in ("name", "site", "unit", "role", "enabled"):
        value = getattr(body, field)
        if value is not None and value != getattr(reader, field):
            changes[field] = value
    if body.clear_door and body.door_id is not None:
        raise invalid(N_("give either door_id or clear_door, not both"))
    if body.clear_door and reader.door_id is not None:
        changes["door_id"] = None
    elif body.door_id is not None and body.door_id != reader.door_id:
        _door_visible(session, principal, body.door_id)
        changes["door_id"] = body.door_id
    if "unit" in changes and not principal.sees_unit(changes["unit"]):
        raise forbidden(N_("the new unit is outside this token's scope"), "out_of_scope")
    changed = update_and_audit(session, reader, changes, actor=principal.actor, role=principal.role,
                               action="reader.update", target=f"reader:{reader_id}",
                               conflict_detail=N_("the reader changed meanwhile"))  # fmt: skip
    if changed and ctx.key_cache is not None and "enabled" in changes:
        ctx.key_cache.forget(reader_id)
    if changed and ctx.on_reader_enabled is not None and "enabled" in changes:
        ctx.on_reader_enabled(reader_id, bool(changes["enabled"]))
    return ReaderOut.model_validate(reader)


@router.post(
    "/{reader_id}/config",
    response_model=ConfigPushOut,
    status_code=202,
    responses=responses(404, 503),
    summary="Gửi cấu hình đã ký tới đầu đọc (push a signed configuration)",
)
def push_config(
    reader_id: ReaderIdPath, body: ConfigPushIn, ctx: Ctx, session: DB, principal: CanPush
) -> ConfigPushOut:
    reader_visible(session, principal, reader_id)
    if ctx.downlink is None:
        raise ApiError(
            503,
            "downlink_unavailable",
            N_(
                "configuration push is not available: this gateway runs without a downlink "
                "(no signing key or no MQTT connection configured)"
            ),
        )
    try:
        push = ctx.downlink.push_config(reader_id, body.config, principal.actor, principal.role)
    except LookupError:
        raise not_found("reader") from None
    except sa.exc.IntegrityError:
        raise conflict(N_("a concurrent change took the same sequence number; try again")) from None
    except ValueError as exc:
        raise invalid(reason(exc), "downlink_refused") from None
    return ConfigPushOut.model_validate(push)


@router.get(
    "/{reader_id}/config-pushes",
    response_model=ConfigPushPage,
    responses=responses(404),
    summary="Lịch sử gửi cấu hình (configuration pushes, newest first)",
)
def config_pushes(
    reader_id: ReaderIdPath, session: DB, principal: CanRead, limit: Limit = 100, cursor: Cursor = None
) -> ConfigPushPage:
    reader_visible(session, principal, reader_id)
    q = select(ConfigPush).where(ConfigPush.reader_id == reader_id)
    if cursor is not None:
        q = q.where(after_cursor(col(ConfigPush.id), cursor, "desc", INT32_MAX))
    rows = session.exec(q.order_by(col(ConfigPush.id).desc()).limit(limit + 1)).all()
    items, nxt = page(rows, limit, lambda r: r.id)
    return ConfigPushPage(items=[ConfigPushOut.model_validate(r) for r in items], next=nxt)
