"""API tokens (admin): create (the secret is shown once), list, revoke. An admin token with a
unit scope manages only tokens within that scope, so it cannot mint a wider one."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from gateway import audit, auth
from gateway.api.common import commit
from gateway.api.deps import DB, Caller, require
from gateway.api.errors import forbidden, invalid, not_found, reason, responses
from gateway.api.schemas import TokenCreate, TokenCreated, TokenList, TokenOut, WhoAmI
from gateway.auth import TOKENS_MANAGE, Principal
from gateway.models import ApiToken
from messages import N_

router = APIRouter(tags=["tokens"], responses=responses(400, 401, 403, 422))

CanManage = Annotated[Principal, Depends(require(TOKENS_MANAGE))]
TokenIdPath = Annotated[str, Path(pattern=r"^[a-z0-9]{12}$", description="Mã token (12 ký tự)")]


def _out(row: ApiToken) -> TokenOut:
    return TokenOut.model_validate(auth.describe(row))


@router.get("/whoami", response_model=WhoAmI, summary="Token đang dùng (the calling token)")
def whoami(principal: Caller) -> WhoAmI:
    perms = sorted(auth.PERMISSIONS.get(principal.role, frozenset()))
    return WhoAmI(
        token_id=principal.token_id,
        name=principal.name,
        role=principal.role,
        unit_scope=principal.unit_scope,
        permissions=perms,
    )


@router.get("/tokens", response_model=TokenList, summary="Danh sách token (list tokens)")
def list_tokens(session: DB, principal: CanManage) -> TokenList:
    return TokenList(items=[_out(r) for r in auth.list_tokens(session, within_scope=principal.unit_scope)])


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Tạo token (create a token; its secret is shown once)",
)
def create_token(body: TokenCreate, session: DB, principal: CanManage) -> TokenCreated:
    if not auth.scope_within(principal.unit_scope, body.unit_scope):
        raise forbidden(N_("a token may only create tokens within its own unit scope"), "out_of_scope")
    expires = body.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    try:
        row, plaintext = auth.create_token(
            session, body.name, body.role, body.unit_scope, principal.actor, expires_at=expires
        )
    except auth.TokenError as exc:
        raise invalid(reason(exc)) from None
    except OverflowError:
        raise invalid(N_("expires_at is out of range")) from None
    audit.record(
        session,
        principal.actor,
        "token.create",
        f"token:{row.id}",
        role=principal.role,
        name=row.name,
        token_role=row.role,
        unit_scope=row.unit_scope,
        expires_at=row.expires_at,
    )
    commit(session, "token id collision, try again")
    return TokenCreated(token=_out(row), secret=plaintext)


@router.get(
    "/tokens/{token_id}", response_model=TokenOut, responses=responses(404), summary="Một token (one token)"
)
def get_token(token_id: TokenIdPath, session: DB, principal: CanManage) -> TokenOut:
    row = session.get(ApiToken, token_id)
    if row is None or not auth.scope_within(principal.unit_scope, row.unit_scope):
        raise not_found("token")
    return _out(row)


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenOut,
    responses=responses(404),
    summary="Thu hồi token (revoke; takes effect at once)",
)
def revoke_token(token_id: TokenIdPath, session: DB, principal: CanManage) -> TokenOut:
    row = session.get(ApiToken, token_id)
    if row is None or not auth.scope_within(principal.unit_scope, row.unit_scope):
        raise not_found("token")
    if row.revoked_at is None:
        auth.revoke_token(session, token_id)
        audit.record(
            session,
            principal.actor,
            "token.revoke",
            f"token:{token_id}",
            role=principal.role,
            name=row.name,
            token_role=row.role,
        )
        commit(session, "the token changed meanwhile")
    return _out(row)
