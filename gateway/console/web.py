"""What every console page shares: templates, the logged-in user, CSRF, rights, errors.

A page asks for :data:`Viewer` (a logged-in user, else a redirect to the login page) and checks a
permission of :mod:`gateway.auth` with :func:`need`; objects outside the user's unit scope are
answered 404 by the same functions the REST API uses. Every POST carries the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``), checked by :func:`check_csrf`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import quote as quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from gateway.api.context import ApiContext
from gateway.api.errors import ApiError
from gateway.auth import PERMISSIONS
from gateway.console import accounts, i18n
from gateway.models import ConsoleSession, ConsoleUser
from messages import Message

log = logging.getLogger("cbcc.console")

COOKIE: Final = "cbcc_console"
LANG_COOKIE: Final = "cbcc_lang"
PREFIX: Final = "/console"
TEMPLATES: Final = Path(__file__).with_name("templates")

T = TypeVar("T")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)


class ConsoleError(Exception):
    """Shown to the user as an HTML error page (``message`` is a msgid)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def lang_of(request: Request) -> str:
    return i18n.pick(request.cookies.get(LANG_COOKIE))


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


@dataclass
class View:
    """The logged-in user of this request and what rendering needs."""

    request: Request
    ctx: ApiContext
    principal: accounts.UserPrincipal
    session_row: ConsoleSession
    lang: str

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)

    @property
    def ip(self) -> str:
        return client_ip(self.request)

    def db(self) -> Session:
        return Session(self.ctx.engine, expire_on_commit=False)


def get_view(request: Request) -> View:
    ctx = get_ctx(request)
    secret = request.cookies.get(COOKIE, "")
    with Session(ctx.engine, expire_on_commit=False) as s:
        found = accounts.resume(s, secret) if secret else None
        s.commit()
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    user, row = found
    view = View(request, ctx, accounts.principal_of(user), row, lang_of(request))
    request.state.console_view = view
    return view


Viewer = Annotated[View, Depends(get_view)]


def need(view: View, permission: str) -> None:
    """Refuse (403) a user whose role lacks ``permission`` — the server's check, whatever the page shows."""
    if not view.can(permission):
        raise ConsoleError(403, "Your role may not do this.")


async def check_csrf(view: View) -> dict[str, str]:
    """The POSTed form, after its CSRF token matched the session's (else 403)."""
    form = await view.request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    presented = view.request.headers.get("x-csrf-token") or fields.get("csrf")
    if not accounts.csrf_ok(view.session_row, presented):
        raise ConsoleError(403, "The form has expired; reload the page and try again.")
    return fields


async def form_lists(view: View) -> dict[str, list[str]]:
    """The POSTed form with repeated fields as lists (CSRF already checked by :func:`check_csrf`)."""
    form = await view.request.form()
    out: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


_WHOLE = re.compile(r"[0-9]{1,18}")


def whole(text: str, digits: int = 18) -> int | None:
    """A whole number typed as ASCII digits (at most ``digits`` of them), else None. ``str.isdigit``
    also accepts "²" (int() refuses it) and thousands of digits (int() refuses those too): both
    were 500s."""
    text = text.strip()
    return int(text) if len(text) <= digits and _WHOLE.fullmatch(text) else None


def form_day(text: str | None, required: bool = True) -> str | None:
    """A date field (``dd/mm/yyyy`` or ISO) as ISO for the API's models; empty → None if allowed."""
    if not (text or "").strip():
        if required:
            raise ConsoleError(400, "A date is day/month/year, e.g. 02/09/2026.")
        return None
    try:
        return i18n.parse_day(text or "").isoformat()
    except ValueError:
        raise ConsoleError(400, "A date is day/month/year, e.g. 02/09/2026.") from None


class _Refusal(Message):
    """An API refusal's text, rendered again in the page's language by the templates' ``_``
    (its message id and fields are the shared catalog's, as in the API's answers)."""

    exc: ApiError

    def __new__(cls, exc: ApiError) -> _Refusal:
        text = str.__new__(cls, exc.detail)
        text.msgid, text.fields, text.exc = exc.detail, dict(exc.params), exc
        return text

    def in_lang(self, code: str) -> str:
        return self.exc.text(code)


def api_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a REST API handler as a function; its refusals become console errors."""
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        detail = exc.detail if isinstance(exc.detail, Message) or not exc.params else _Refusal(exc)
        raise ConsoleError(exc.status, detail) from None


def _gettext(lang: str) -> Callable[[str], str]:
    """The console catalog's gettext; a domain refusal raised with ``messages._`` (a
    :class:`messages.Message`, from the shared catalog) is rendered again in ``lang``."""
    tr = i18n.translations(lang)

    def gettext(text: str) -> str:
        return text.in_lang(lang) if isinstance(text, Message) else tr.gettext(text)

    return gettext


def render(
    request: Request, template: str, status: int = 200, view: View | None = None, **context: Any
) -> HTMLResponse:
    lang = view.lang if view is not None else lang_of(request)
    tr = i18n.translations(lang)
    tpl = _env.get_template(template)
    html = tpl.render(
        request=request,
        view=view,
        lang=lang,
        prefix=PREFIX,
        fmt=i18n.Formats(lang),
        _=_gettext(lang),
        gettext=tr.gettext,
        ngettext=tr.ngettext,
        perms=PERMISSIONS,
        csrf=view.session_row.csrf if view is not None else context.pop("csrf", ""),
        path=request.url.path,
        quote=quote,
        json=json,
        day_pattern=i18n.DAY_PATTERN,
        clock_pattern=i18n.CLOCK_PATTERN,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def render_fragment(template: str, lang: str, **context: Any) -> str:
    tr = i18n.translations(lang)
    return _env.get_template(template).render(
        lang=lang,
        prefix=PREFIX,
        fmt=i18n.Formats(lang),
        _=tr.gettext,
        gettext=tr.gettext,
        ngettext=tr.ngettext,
        **context,
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request),
        path=PREFIX,
        max_age=int(accounts.ABSOLUTE.total_seconds()),
    )


def session_scope(engine: Any) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


def user_row(view: View, s: Session) -> ConsoleUser:
    user = s.get(ConsoleUser, view.principal.user_id)
    if user is None:
        raise ConsoleError(404, "Not found.")
    return user


UNCHECKED: Final = "\x00unchecked"


def setup_pending_app(app: Any, ctx: ApiContext) -> str | None:
    """The one-time setup token while no administrator exists, else None. Decided (and the token
    logged) once the database answers: at start, or at the first console request if it did not;
    an administrator created meanwhile by other means ends it."""
    token: str | None = getattr(app.state, "console_setup_token", None)
    if token is None:
        return None
    try:
        with Session(ctx.engine) as s:
            first_run = not accounts.has_admin(s)
    except Exception:  # database not reachable or not migrated yet: ask again later
        log.debug("console: cannot tell yet whether an administrator exists", exc_info=True)
        return None
    if not first_run:
        app.state.console_setup_token = None
        return None
    if token == UNCHECKED:
        token = accounts.setup_token()
        app.state.console_setup_token = token
        log.warning("console: no administrator yet; create one at %s/setup with the one-time setup token %s",
                    PREFIX, token)  # fmt: skip
    return token


def setup_pending(request: Request) -> str | None:
    return setup_pending_app(request.app, get_ctx(request))
