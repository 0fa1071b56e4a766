"""Dependencies shared by the routers: the database session, the caller and their rights."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, col, select

from gateway.api.context import ApiContext
from gateway.api.errors import ApiError, not_found, role_may_not, unauthorized
from gateway.auth import AuthError, Principal, scope_prefixes
from gateway.models import Reader
from messages import N_

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
    source = request.client.host if request.client is not None else "-"
    wait = ctx.auth_limiter.retry_after(source)
    if wait > 0:  # before any database or argon2 work
        request.state.auth_failure = "rate limited"
        raise ApiError(429, "too_many_failures", N_("too many failed authentications from this address"),
                       {"Retry-After": str(int(wait) + 1)})  # fmt: skip
    with Session(ctx.engine) as session:
        try:
            principal = ctx.authenticator.authenticate(session, creds.credentials)
        except AuthError as exc:
            ctx.auth_limiter.failed(source)
            request.state.auth_failure = exc.reason
            raise unauthorized(N_("The API token is invalid, expired or revoked.")) from None
        session.commit()  # last_used_at, when it was due
    request.state.token_id = principal.token_id
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that admits only callers whose role has ``permission``."""

    def _check(principal: Caller) -> Principal:
        if not principal.can(permission):
            raise role_may_not(principal.role, permission)
        return principal

    _check.cbcc_permission = permission  # type: ignore[attr-defined]  # read by api.roles_doc
    return _check


def unit_filter(column: Any, principal: Principal) -> Any:
    """SQL condition: ``column`` (a unit code) lies within the caller's scope (whole segments)."""
    if not principal.scoped:
        return sa.true()
    exact, prefixes = scope_prefixes(principal.unit_scope)
    conds = [col(column).startswith(p, autoescape=True) for p in prefixes]
    if exact is not None:
        conds.append(col(column) == exact)
    return sa.or_(*conds)


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


def _query_names(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    """(path template, METHOD) → the query parameters the OpenAPI document declares."""
    cached: dict[tuple[str, str], frozenset[str]] | None = getattr(app.state, "query_names", None)
    if cached is None:
        cached = {}
        for path, ops in app.openapi().get("paths", {}).items():
            for method, op in ops.items():
                names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
                cached[(path, method.upper())] = frozenset(names)
        app.state.query_names = cached
    return cached


def _declared(app: Any, path_format: str, method: str) -> frozenset[str] | None:
    """The operation's query parameters; routes of included routers carry their path without
    the include prefix, hence the suffix match."""
    table = _query_names(app)
    exact = table.get((path_format, method))
    if exact is not None:
        return exact
    for (path, m), names in table.items():
        if m == method and path.endswith(path_format):
            return names
    return None


def strict_query(request: Request) -> None:
    """Refuse query parameters an operation does not know, or gives twice: a misspelt filter
    (``?staf_code=``) must not silently return everything."""
    if not request.query_params:
        return
    path = getattr(request.scope.get("route"), "path_format", None)
    if not isinstance(path, str):
        return
    known = _declared(request.app, path, request.method)
    if known is None:
        return
    seen: set[str] = set()
    for name, _value in request.query_params.multi_items():
        if name not in known:
            raise ApiError(422, "unknown_parameter", N_("unknown query parameter {name}"),
                           params={"name": repr(name[:40])})  # fmt: skip
        if name in seen:
            raise ApiError(422, "repeated_parameter", N_("query parameter {name} given more than once"),
                           params={"name": repr(name[:40])})  # fmt: skip
        seen.add(name)


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document offers at this request's path (for 405's Allow)."""
    out: set[str] = set()
    target = request.url.path
    table = _query_names(request.app)
    literal = sorted(method for path, method in table if path == target)
    if literal:  # a fixed path ("/readers/laggards") wins over a template ("/readers/{reader_id}")
        return literal
    for path, method in table:
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"
        if re.match(pattern, target):
            out.add(method)
    return sorted(out)
