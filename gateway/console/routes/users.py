"""Console accounts (admin only): create with a role and unit scope, disable, unlock."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import col, delete, select

from gateway import audit
from gateway.auth import ROLES, TOKENS_MANAGE, scope_within
from gateway.console import accounts, web
from gateway.console.web import Viewer
from gateway.models import ConsoleSession, ConsoleUser

router = APIRouter()


@router.get("/users")
def users(view: Viewer) -> Response:
    web.need(view, TOKENS_MANAGE)
    with view.db() as s:
        rows = [
            u
            for u in s.exec(select(ConsoleUser).order_by(col(ConsoleUser.username))).all()
            if scope_within(view.principal.unit_scope, u.unit_scope)
        ]
    return web.render(view.request, "users.html", view=view, users=rows, roles=ROLES)


@router.post("/users")
async def create(view: Viewer) -> Response:
    fields = await web.check_csrf(view)
    web.need(view, TOKENS_MANAGE)
    scope = fields.get("unit_scope", "").strip()
    with view.db() as s:
        try:
            if not scope_within(view.principal.unit_scope, scope):
                raise accounts.AccountError("The unit scope must lie within your own.")
            accounts.create_user(
                s,
                fields.get("username", ""),
                fields.get("password", ""),
                fields.get("role", ""),
                unit_scope=scope,
                full_name=fields.get("full_name", ""),
                created_by=view.principal.actor,
            )
        except accounts.AccountError as exc:
            rows = s.exec(select(ConsoleUser).order_by(col(ConsoleUser.username))).all()
            return web.render(
                view.request, "users.html", status=400, view=view, users=rows, roles=ROLES, error=str(exc)
            )
        s.commit()
    return web.redirect(web.PREFIX + "/users")


@router.post("/users/{user_id}/{action}")
async def change(user_id: int, action: str, view: Viewer) -> Response:
    await web.check_csrf(view)
    web.need(view, TOKENS_MANAGE)
    if action not in ("disable", "enable", "unlock"):
        raise web.ConsoleError(404, "Not found.")
    with view.db() as s:
        user = s.get(ConsoleUser, user_id) if 0 < user_id < 2**31 else None
        if user is None or not scope_within(view.principal.unit_scope, user.unit_scope):
            raise web.ConsoleError(404, "Not found.")
        if user.id == view.principal.user_id and action == "disable":
            raise web.ConsoleError(400, "You cannot disable your own account.")
        if action == "unlock":
            user.locked_until = None
            user.failed_logins = 0
        else:
            user.active = action == "enable"
            if not user.active:
                s.exec(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
        s.add(user)
        audit.record(
            s,
            view.principal.actor,
            f"console.user.{action}",
            f"user:{user.username}",
            role=view.principal.role,
            ip=view.ip,
        )
        s.commit()
    return web.redirect(web.PREFIX + "/users")
