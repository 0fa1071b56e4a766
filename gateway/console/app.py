"""Mounting the console on the gateway's FastAPI app: routes, static files, headers, errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.context import ApiContext
from gateway.console import web
from gateway.console.routes import (
    account,
    attendance,
    audit_log,
    calendar,
    cards,
    doors,
    hr,
    live,
    punches,
    readers,
    shifts,
    sync,
    users,
)

log = logging.getLogger("cbcc.console")

# No inline script or style anywhere: everything comes from /console/static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the console's security headers to every console response (pure ASGI, so the
    live feed's server-sent events stream untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                if "/static/" not in str(scope.get("path", "")):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def install(app: FastAPI, ctx: ApiContext) -> None:
    """Mount the console at /console: its own sub-application (no OpenAPI entries, its own HTML
    errors) in the gateway's process, on the same ApiContext (engine, downlink, fleet)."""
    sub = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    sub.state.ctx = ctx
    for module in (account, live, doors, readers, cards, sync, audit_log, users, attendance, hr, shifts,
                   calendar, punches):  # fmt: skip
        sub.include_router(module.router)
    sub.mount("/static", StaticFiles(directory=web.TEMPLATES.with_name("static")), name="static")
    sub.add_middleware(SecurityHeaders)

    async def console_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, web.ConsoleError):  # registered for this class only
            raise exc
        view = getattr(request.state, "console_view", None)
        return web.render(request, "error.html", status=exc.status, view=view, message=exc.message)

    async def login_required(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, web.LoginRequired):  # registered for this class only
            raise exc
        if request.method != "GET" or request.headers.get("accept", "").startswith("text/event-stream"):
            return Response(status_code=401)
        return web.redirect(f"{web.PREFIX}/login?next={web.quote(exc.next_url, safe='')}")

    sub.add_exception_handler(web.ConsoleError, console_error)
    sub.add_exception_handler(web.LoginRequired, login_required)
    sub.state.console_setup_token = web.UNCHECKED
    web.setup_pending_app(sub, ctx)
    app.state.console = sub
    app.mount(web.PREFIX, sub)
