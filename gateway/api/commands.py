"""Commands to readers (open, lockdown, release, reboot, resync), one reader or a whole site,
and their outcomes as the readers report them. Signing and sending is the downlink's job; it
writes the audit entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session, col, select

from gateway.api.common import Cursor, Limit, Order, after_cursor, page
from gateway.api.context import ApiContext, DownlinkLike
from gateway.api.deps import DB, Ctx, reader_visible, readers_in_scope, require, unit_filter
from gateway.api.errors import ApiError, conflict, invalid, not_found, reason, responses
from gateway.api.schemas import INT32_MAX, READER_ID_PATTERN, CommandIn, CommandOut, CommandPage, CommandsSent
from gateway.auth import COMMANDS_READ, COMMANDS_SEND, Principal
from gateway.models import Command, Reader
from messages import N_

router = APIRouter(prefix="/commands", tags=["commands"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(COMMANDS_READ))]
CanSend = Annotated[Principal, Depends(require(COMMANDS_SEND))]


def _downlink(ctx: ApiContext) -> DownlinkLike:
    if ctx.downlink is None:
        raise ApiError(
            503,
            "downlink_unavailable",
            N_(
                "commands are not available: this gateway runs without a downlink "
                "(no signing key or no MQTT connection configured)"
            ),
        )
    return ctx.downlink


def _scope(q: Any, principal: Principal) -> Any:
    """Scoped callers see commands to their readers only (never site-wide broadcasts "*")."""
    if principal.scoped:
        q = q.where(col(Command.target).in_(readers_in_scope(principal)))
    return q


def _as_commands(result: object) -> list[Command]:
    if result is None:
        return []
    if isinstance(result, Command):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes):
        return [c for c in result if isinstance(c, Command)]
    return []


@router.post(
    "",
    response_model=CommandsSent,
    status_code=202,
    responses=responses(404, 503),
    summary="Gửi lệnh tới một đầu đọc hoặc cả địa điểm (send a command to a reader or a site)",
)
def send_command(body: CommandIn, ctx: Ctx, session: DB, principal: CanSend) -> CommandsSent:
    if (body.reader_id is None) == (body.site is None):
        raise invalid(N_("give exactly one of reader_id or site"))
    if body.reader_id is not None:
        reader_visible(session, principal, body.reader_id)
        targets = [body.reader_id]
    else:
        targets = _site_readers(session, principal, body.site or "")
    downlink = _downlink(ctx)
    sent: list[Command] = []
    try:
        if body.site is not None and body.action == "lockdown" and not principal.scoped:
            sent = _as_commands(
                downlink.lockdown_site(body.site, principal.actor, role=principal.role, ttl_s=body.ttl_s)
            )
        else:
            for target in targets:
                sent.append(
                    downlink.send_command(
                        target, body.action, body.args, principal.actor, role=principal.role, ttl_s=body.ttl_s
                    )
                )
    except LookupError:
        raise not_found("reader") from None
    except sa.exc.IntegrityError:
        raise conflict(N_("a concurrent change took the same sequence number; try again")) from None
    except ValueError as exc:
        raise invalid(reason(exc), "downlink_refused") from None
    return CommandsSent(items=[CommandOut.model_validate(c) for c in sent])


def _site_readers(session: Session, principal: Principal, site: str) -> list[str]:
    """A site's enabled readers visible to the caller; a site with none is "not found"."""
    ids = list(
        session.exec(
            select(Reader.id)
            .where(
                Reader.site == site,
                Reader.enabled == True,  # noqa: E712
                unit_filter(Reader.unit, principal),
            )
            .order_by(col(Reader.id))
        ).all()
    )
    if not ids:
        raise not_found("site")
    return ids


@router.get("", response_model=CommandPage, summary="Danh sách lệnh và kết quả (commands with outcomes)")
def list_commands(
    session: DB,
    principal: CanRead,
    target: Annotated[
        str | None,
        Query(
            pattern=rf"^(\*|{READER_ID_PATTERN[1:-1]})$",
            max_length=63,
            description="Đầu đọc, hoặc * (broadcast)",
        ),
    ] = None,
    action: Annotated[str | None, Query(pattern="^(open|lockdown|release|reboot|resync)$")] = None,
    pending: Annotated[bool | None, Query(description="true: chưa có kết quả; false: đã có kết quả")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Order = "desc",
) -> CommandPage:
    q = _scope(select(Command), principal)
    if target is not None:
        q = q.where(Command.target == target)
    if action is not None:
        q = q.where(Command.action == action)
    if pending is not None:
        q = q.where(col(Command.outcome).is_(None) if pending else col(Command.outcome).is_not(None))
    if cursor is not None:
        q = q.where(after_cursor(col(Command.id), cursor, order, INT32_MAX))
    q = q.order_by(col(Command.id) if order == "asc" else col(Command.id).desc()).limit(limit + 1)
    rows = session.exec(q).all()
    items, nxt = page(rows, limit, lambda c: c.id)
    return CommandPage(items=[CommandOut.model_validate(c) for c in items], next=nxt)


@router.get(
    "/{command_id}", response_model=CommandOut, responses=responses(404), summary="Một lệnh (one command)"
)
def get_command(
    command_id: Annotated[int, Path(ge=1, le=INT32_MAX)], session: DB, principal: CanRead
) -> CommandOut:
    cmd = session.exec(_scope(select(Command).where(Command.id == command_id), principal)).first()
    if cmd is None:
        raise not_found("command")
    return CommandOut.model_validate(cmd)
