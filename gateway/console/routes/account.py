"""Login, logout, first-run setup, password change and language."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from gateway.console import accounts, i18n, web
from gateway.console.web import Viewer

router = APIRouter()
PRE = "cbcc_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site: an open redirect)."""
    if target and target.startswith(web.PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return web.PREFIX + "/"


def _pre_form(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    token = secrets.token_urlsafe(24)
    resp = web.render(request, template, status=status, csrf=token, **context)
    resp.set_cookie(
        PRE,
        token,
        httponly=True,
        samesite="strict",
        secure=web.secure_cookie(request),
        path=web.PREFIX,
        max_age=3600,
    )
    return resp


async def _pre_check(request: Request) -> dict[str, str]:
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    cookie = request.cookies.get(PRE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), fields.get("csrf", "").encode()):
        raise web.ConsoleError(403, "The form has expired; reload the page and try again.")
    return fields


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if web.setup_pending(request):
        return web.redirect(web.PREFIX + "/setup")
    return _pre_form(request, "login.html", next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await _pre_check(request)
    ctx = web.get_ctx(request)
    ip = web.client_ip(request)
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            user = accounts.login(s, fields.get("username", ""), fields.get("password", ""), ip=ip)
        except accounts.AccountError as exc:
            s.commit()  # the failure count and its audit entry
            return _pre_form(
                request,
                "login.html",
                status=401,
                error=str(exc),
                next=_safe_next(fields.get("next")),
                username=fields.get("username", "")[:64],
            )
        secret, _row = accounts.open_session(s, user, ip=ip)
        s.commit()
    resp = web.redirect(_safe_next(fields.get("next")))
    web.set_session_cookie(resp, request, secret)
    resp.delete_cookie(PRE, path=web.PREFIX)
    return resp


@router.post("/logout")
async def logout(view: Viewer) -> Response:
    await web.check_csrf(view)
    with view.db() as s:
        accounts.close_session(s, view.request.cookies.get(web.COOKIE, ""))
        s.commit()
    resp = web.redirect(web.PREFIX + "/login")
    resp.delete_cookie(web.COOKIE, path=web.PREFIX)
    return resp


@router.get("/setup")
def setup_page(request: Request) -> Response:
    if not web.setup_pending(request):
        return web.redirect(web.PREFIX + "/login")
    return _pre_form(request, "setup.html")


@router.post("/setup")
async def setup(request: Request) -> Response:
    fields = await _pre_check(request)
    token = web.setup_pending(request)
    if not token:
        raise web.ConsoleError(404, "The first administrator already exists.")
    if not hmac.compare_digest(token.encode(), fields.get("token", "").strip().encode()):
        return _pre_form(
            request, "setup.html", status=403, error="Wrong setup token (see the gateway's log)."
        )
    ctx = web.get_ctx(request)
    with Session(ctx.engine, expire_on_commit=False) as s:
        try:
            if fields.get("password") != fields.get("password2"):
                raise accounts.AccountError("The two passwords differ.")
            accounts.create_user(
                s,
                fields.get("username", ""),
                fields.get("password", ""),
                "admin",
                full_name=fields.get("full_name", ""),
                created_by="setup",
            )
        except accounts.AccountError as exc:
            return _pre_form(request, "setup.html", status=400, error=str(exc))
        s.commit()
    request.app.state.console_setup_token = None
    return web.redirect(web.PREFIX + "/login")


@router.get("/account")
def account_page(view: Viewer) -> Response:
    return web.render(view.request, "account.html", view=view)


@router.post("/account/password")
async def change_password(view: Viewer) -> Response:
    fields = await web.check_csrf(view)
    with view.db() as s:
        user = web.user_row(view, s)
        try:
            if fields.get("new") != fields.get("new2"):
                raise accounts.AccountError("The two passwords differ.")
            accounts.change_password(s, user, fields.get("old", ""), fields.get("new", ""), ip=view.ip)
        except accounts.AccountError as exc:
            return web.render(view.request, "account.html", status=400, view=view, error=str(exc))
        secret, _ = accounts.open_session(s, user, ip=view.ip)
        s.commit()
    resp = web.redirect(web.PREFIX + "/account?changed=1")
    web.set_session_cookie(resp, view.request, secret)
    return resp


@router.get("/lang/{lang}")
def set_language(request: Request, lang: str, next: str | None = None) -> Response:
    resp = web.redirect(_safe_next(next))
    resp.set_cookie(
        web.LANG_COOKIE,
        i18n.pick(lang),
        samesite="strict",
        secure=web.secure_cookie(request),
        path=web.PREFIX,
        max_age=365 * 86400,
    )
    return resp
