"""Dependencies shared by the routers: the database session, the caller and their rights."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, col, select

from gateway.api.context import ApiContext
from gateway.api.errors import forbidden, not_found, unauthorized
from gateway.auth import AuthError, Principal
from gateway.models import Reader

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="API token `cbcc_<id>_<secret>` (tạo bằng `cbcc gateway token create`)",
)


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_ctx)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    with Session(ctx.engine, expire_on_commit=False) as session:
        yield session


DB = Annotated[Session, Depends(get_session)]


def get_principal(
    request: Request,
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise unauthorized()
    with Session(ctx.engine) as session:
        try:
            principal = ctx.authenticator.authenticate(session, creds.credentials)
        except AuthError as exc:
            request.state.auth_failure = exc.reason
            raise unauthorized("invalid, expired or revoked API token") from None
        session.commit()  # last_used_at, when it was due
    request.state.token_id = principal.token_id
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that admits only callers whose role has ``permission``."""

    def _check(principal: Caller) -> Principal:
        if not principal.can(permission):
            raise forbidden(f"role '{principal.role}' may not {permission.replace(':', ' ')}")
        return principal

    return _check


def unit_filter(column: Any, principal: Principal) -> Any:
    """SQL condition: ``column`` (a unit code) lies within the caller's scope."""
    if not principal.scoped:
        return sa.true()
    return col(column).startswith(principal.unit_scope, autoescape=True)


def readers_in_scope(principal: Principal) -> Any:
    """A sub-select of the reader ids the caller may see."""
    return select(Reader.id).where(unit_filter(Reader.unit, principal))


def reader_visible(session: Session, principal: Principal, reader_id: str) -> Reader:
    reader = session.get(Reader, reader_id)
    if reader is None or not principal.sees_unit(reader.unit):
        raise not_found("reader")
    return reader


def as_utc(value: datetime) -> datetime:
    """A query time in UTC (a naive one is taken as UTC); out-of-range offsets clamp to the ends."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year < 2 else datetime.max).replace(tzinfo=UTC)
