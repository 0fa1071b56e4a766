"""Punch and leave files (CSV or XLSX), validated whole before anything is stored.

Punch files: the contract's CSV (``staff,time,terminal`` in any order, extra columns ignored,
UTF-8 with or without BOM) and the same columns in an XLSX sheet, with the headers terminal
software exports (ZKTeco "AC-No." / "Time", Vietnamese labels). Leave files: ``staff, kind, from,
to, half, reason``. Row numbers count the header as row 1, like a spreadsheet.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from gateway.attendance import engine as rules
from gateway.attendance.errors import AttendanceError, bad_rows, cause, row_error
from gateway.attendance.store import nfc
from gateway.attendance.times import parse_date, parse_time
from messages import _

MAX_ERRORS = 200
PUNCH_ALIASES = {
    "staff": "staff",
    "staff_code": "staff",
    "mã cán bộ": "staff",
    "mã cbccvc": "staff",
    "ac-no.": "staff",
    "ac-no": "staff",
    "userid": "staff",
    "user id": "staff",
    "emp no.": "staff",
    "time": "time",
    "datetime": "time",
    "date time": "time",
    "checktime": "time",
    "thời gian": "time",
    "terminal": "terminal",
    "device": "terminal",
    "machine": "terminal",
    "máy chấm công": "terminal",
}
LEAVE_ALIASES = {
    "staff": "staff",
    "staff_code": "staff",
    "mã cán bộ": "staff",
    "kind": "kind",
    "ký hiệu": "kind",
    "from": "from",
    "từ ngày": "from",
    "to": "to",
    "đến ngày": "to",
    "half": "half",
    "nửa ngày": "half",
    "reason": "reason",
    "lý do": "reason",
}


@dataclass
class Punch:
    row: int
    staff: str
    at: datetime
    terminal: str


@dataclass
class LeaveRow:
    row: int
    staff: str
    kind: str
    start: date
    end: date
    half: str | None
    reason: str


@dataclass
class Parsed:
    digest: str
    punches: list[Punch] = field(default_factory=list)
    leaves: list[LeaveRow] = field(default_factory=list)


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _rows(path: Path, data: bytes) -> Iterator[list[str]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # type: ignore[import-untyped]

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise AttendanceError(
                _("{file}: not a readable XLSX file ({error})", file=path.name, error=type(exc).__name__)
            ) from None
        for row in wb.worksheets[0].iter_rows(values_only=True):
            yield [nfc(_cell(v)) for v in row]
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AttendanceError(_("{file}: not UTF-8 (byte {byte})", file=path.name, byte=exc.start)) from None
    for row in csv.reader(io.StringIO(text, newline="")):
        yield [nfc(v) for v in row]


def _header(first: list[str] | None, aliases: dict[str, str], required: tuple[str, ...]) -> dict[str, int]:
    if first is None:
        raise AttendanceError(row_error(1, "header", _("the file is empty")))
    cols: dict[str, int] = {}
    for i, name in enumerate(first):
        key = aliases.get(name.strip().lower())
        if key is not None and key not in cols:
            cols[key] = i
    missing = [c for c in required if c not in cols]
    if missing:
        raise AttendanceError(
            row_error(1, "header", _("missing column {columns}", columns=", ".join(missing)))
        )
    return cols


def _get(row: list[str], cols: dict[str, int], name: str) -> str:
    i = cols.get(name)
    return row[i].strip() if i is not None and i < len(row) else ""


def read_punches(path: Path, assume: timezone | None = None) -> Parsed:
    """Every row validated; raises :class:`AttendanceError` listing every bad row."""
    data = _read(path)
    out = Parsed(hashlib.sha256(data).hexdigest()[:16])
    rows = _rows(path, data)
    cols = _header(next(rows, None), PUNCH_ALIASES, ("staff", "time"))
    errors: list[str] = []
    for n, row in enumerate(rows, start=2):
        if not any(v.strip() for v in row):
            continue
        staff, t, term = _get(row, cols, "staff"), _get(row, cols, "time"), _get(row, cols, "terminal")
        bad = len(errors)
        if not staff:
            errors.append(row_error(n, "staff", _("empty")))
        elif len(staff) > 32 or any(c.isspace() for c in staff):
            errors.append(row_error(n, "staff", _("{value!r} is not a staff code", value=staff[:40])))
        at = None
        try:
            at = parse_time(t, assume) if t else None
            if at is None:
                errors.append(row_error(n, "time", _("empty")))
        except ValueError as exc:
            errors.append(row_error(n, "time", cause(exc)))
        if len(term) > 64:
            errors.append(row_error(n, "terminal", _("longer than {max} characters", max=64)))
        if len(errors) == bad and at is not None:
            out.punches.append(Punch(n, staff, at, term))
        if len(errors) >= MAX_ERRORS:
            errors.append(_("... (stopped after {max} errors)", max=MAX_ERRORS))
            break
    if errors:
        raise AttendanceError(bad_rows(path.name, len(errors)), errors)
    return out


def read_leaves(path: Path) -> Parsed:
    data = _read(path)
    out = Parsed(hashlib.sha256(data).hexdigest()[:16])
    rows = _rows(path, data)
    cols = _header(next(rows, None), LEAVE_ALIASES, ("staff", "kind", "from", "to", "reason"))
    errors: list[str] = []
    for n, row in enumerate(rows, start=2):
        if not any(v.strip() for v in row):
            continue
        bad = len(errors)
        staff, kind, reason = _get(row, cols, "staff"), _get(row, cols, "kind"), _get(row, cols, "reason")
        half = _get(row, cols, "half").lower() or None
        if not staff:
            errors.append(row_error(n, "staff", _("empty")))
        if kind not in rules.LEAVE_KINDS:
            errors.append(
                row_error(
                    n,
                    "kind",
                    _("{value!r} is not one of {kinds}", value=kind, kinds=" ".join(rules.LEAVE_KINDS)),
                )
            )
        dates: list[date] = []
        for col in ("from", "to"):
            try:
                dates.append(parse_date(_get(row, cols, col)[:10]))
            except ValueError as exc:
                errors.append(row_error(n, col, cause(exc)))
        if len(dates) == 2 and dates[1] < dates[0]:
            errors.append(
                row_error(
                    n, "to", _("{end} is before from {start} (reversed range)", end=dates[1], start=dates[0])
                )
            )
        if half not in (None, "am", "pm"):
            errors.append(row_error(n, "half", _("{value!r} is not am or pm", value=half)))
        if not reason:
            errors.append(row_error(n, "reason", _("empty")))
        if len(errors) == bad:
            out.leaves.append(LeaveRow(n, staff, kind, dates[0], dates[1], half, reason))
    if errors:
        raise AttendanceError(bad_rows(path.name, len(errors)), errors)
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AttendanceError(_("cannot read {path}: {reason}", path=path, reason=exc.strerror)) from None
