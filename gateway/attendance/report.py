"""Producing a timesheet: the engine's report, recorded in the audit log (Decree 13/2023: every
report of personal attendance data is an access), written as JSON here or handed to the renderers
(``gateway.attendance.render``, owned by the reports work) for csv / xlsx / pdf / html."""

from __future__ import annotations

import importlib
from typing import Any

import sqlalchemy as sa

from gateway.attendance import store
from gateway.attendance.errors import AttendanceError, cause, field_error
from gateway.attendance.header import ReportHeader
from gateway.attendance.times import parse_month
from messages import _


def header_for(db: store.DB, report: dict[str, Any], unit: str | None) -> ReportHeader:
    """The sheet's header from the staff records: the agency (Đơn vị), the unit (Bộ phận), and each
    person's position (column C)."""
    codes = sorted({r["staff"] for r in report["staff"]})
    positions: dict[str, str] = {}
    agencies: set[str] = set()
    with store.connect(db) as conn:
        for i in range(0, len(codes), 1000):
            q = sa.select(store.T_STAFF.c.staff_code, store.T_STAFF.c.position, store.T_STAFF.c.agency_code)
            for code, pos, ag in conn.execute(q.where(store.T_STAFF.c.staff_code.in_(codes[i : i + 1000]))):
                positions[code] = pos
                agencies.add(ag)
    agency = next(iter(agencies)) if len(agencies) == 1 else ""
    units = {r["unit"] for r in report["staff"]}
    unit_name = unit or (next(iter(units)) if len(units) == 1 else "")
    return ReportHeader(
        agency_name=agency,
        agency_code=agency,
        unit_code=unit or "",
        unit_name=unit_name,
        month=report["month"],
        positions=positions,
    )


def produce(
    db: store.DB,
    month: str,
    unit: str | None,
    staff: str | None,
    fmt: str,
    lang: str = "vi",
    *,
    actor: str,
    role: str = "",
    scope: str = "",
) -> bytes:
    """The report bytes in ``fmt``; refuses an unknown month, unit or person (nothing recorded)."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise AttendanceError(field_error("--month", cause(exc))) from None
    with store.connect(db) as conn:
        if staff is not None and not store.staff_known(conn, [staff]):
            raise AttendanceError(_("--staff: unknown staff code {staff!r}", staff=staff))
        if unit is not None and not store.unit_known(conn, unit):
            has = conn.execute(sa.select(store.T_ASSIGN.c.id).where(store.T_ASSIGN.c.unit == unit)).first()
            if has is None:
                raise AttendanceError(_("--unit: no staff record or assignment has unit {unit!r}", unit=unit))
    report = store.compute_month(db, month, unit=unit, staff=staff, scope=scope)
    if fmt == "json":
        data = store.report_json(report)
    else:
        try:  # the renderers (gateway/attendance/render, the reports work) may not be installed
            render = importlib.import_module("gateway.attendance.render").render
        except (ImportError, AttributeError):
            raise AttendanceError(
                _("--format {format}: not available in this build (renderers not installed)", format=fmt)
            ) from None
        store.attach_overtime(db, report)  # approved overtime: a section of the printed forms
        data = bytes(render(report, header_for(db, report, unit), fmt, lang))
    with store.connect(db) as conn:
        store.audit(
            conn,
            actor,
            "attendance.report",
            unit or staff or "*",
            role=role,
            month=month,
            format=fmt,
            unit=unit,
            staff=staff,
            rows=len(report["staff"]),
        )
    return data
