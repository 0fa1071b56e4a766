"""HR: importing a punch file (CSV / XLSX, terminal exports such as ZKTeco's) — the CLI's import
(``gateway.attendance.imports.import_punches``): every row checked first, one bad row and nothing
is imported (each bad row listed), rows of unknown staff codes stored and kept aside until the
staff record arrives (listed). Before anything is stored, every known person of the file is checked
against the user's unit scope by the API's own ``check_staff`` (anyone outside: nothing imported).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from gateway.api import attendance as api_att
from gateway.attendance import imports, store
from gateway.attendance.errors import AttendanceError
from gateway.attendance.punchfile import read_punches
from gateway.attendance.times import VN
from gateway.auth import ATTENDANCE_WRITE
from gateway.console import web
from gateway.console.routes.hr import _note
from gateway.console.web import Viewer
from messages import text_in

router = APIRouter()
UPLOAD_MAX: Final = 20 * 1024 * 1024  # a month of an agency's terminal export is a few MB
SHOWN: Final = 200  # rows listed on the page (errors or unknown staff)


def _refused(view: Any, exc: AttendanceError, name: str) -> Response:
    """The refused file's headline and rows in the viewer's language (they stay messages until here)."""
    lines = [text_in(line, view.lang) for line in exc.lines]
    return _page(view, 400, errors=lines, headline=text_in(exc.headline, view.lang), filename=name)


def _page(view: Any, status: int = 200, **context: Any) -> Response:
    ctx: dict[str, Any] = {"result": None, "errors": [], "headline": "", "filename": ""}
    ctx.update(context)
    return web.render(view.request, "hr_punches.html", status=status, view=view, shown=SHOWN, **ctx)


@router.get("/attendance/punches")
def punches(view: Viewer) -> Response:
    web.need(view, ATTENDANCE_WRITE)
    return _page(view)


@router.post("/attendance/punches")
async def import_file(view: Viewer) -> Response:
    await web.check_csrf(view)
    web.need(view, ATTENDANCE_WRITE)
    form = await view.request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise web.ConsoleError(400, "Choose a CSV or XLSX file.")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise web.ConsoleError(400, "Choose a CSV or XLSX file.")
    data = await upload.read(UPLOAD_MAX + 1)
    if len(data) > UPLOAD_MAX:
        raise web.ConsoleError(413, "The file is larger than 20 MB.")
    assume = VN if form.get("local") == "yes" else None
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename).name)[-80:] or f"punches{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            codes = sorted({p.staff for p in read_punches(path, assume).punches})
        except AttendanceError as exc:
            return _refused(view, exc, name)
        outside: list[str] = []
        with view.db() as s:
            for code in sorted(store.staff_known(s.connection(), codes)):
                try:  # the API's scope check, one person at a time
                    web.api_call(api_att.check_staff, s, view.principal, code)
                except web.ConsoleError:
                    outside.append(code)
        if outside:
            lines = [f"staff: {c} is outside your units" for c in outside]
            return _page(view, 403, errors=lines, headline=f"{name}: nothing imported", filename=name)
        try:
            result = imports.import_punches(view.ctx.engine, path, actor=view.principal.actor, assume=assume)
        except AttendanceError as exc:
            return _refused(view, exc, name)
    result.unknown = [text_in(line, view.lang) for line in result.unknown]
    _note(view, "console.attendance.import_punches", name, rows=result.rows, new=result.new,
          unknown=len(result.unknown))  # fmt: skip
    return _page(view, result=result, filename=name)
