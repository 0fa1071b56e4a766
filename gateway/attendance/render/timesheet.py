"""The monthly timesheet (Bảng chấm công, Mẫu C01-HD) as data: one home for what every format prints.

The JSON report (contract attendance-v1 §5) is turned here, once, into the form's rows: the day
cells with their symbols, which columns are rest days, and the three "Quy ra công" figures. The
XLSX, PDF, CSV and HTML writers only lay this out, so the four formats cannot disagree.

Quy ra công (documented in docs/attendance-reports.md):

- số công hưởng lương thời gian = ``totals.work_days`` + ``totals.holidays`` + the leave of the
  kinds the agency keeps paying on time wage (``TIME_PAID_LEAVE``: P, H, NB, CT, LĐ, N);
- số công nghỉ không lương = leave ``KL``;
- số công hưởng BHXH = leave ``Ô``, ``Cô``, ``TS``, ``T`` (paid by social insurance).

Approved overtime: a report row may carry an extra ``overtime`` field (``{"weekday": min,
"weekend": min, "holiday": min, "night": min}``, approved minutes only; ``night`` is the part of the
others worked 22:00-06:00), added by ``gateway.attendance.report`` for the rendered formats; the
people with any are listed in a section of their own below the form (h:mm).

Half days: ``half="fraction"`` (default) writes ``½P`` on a day with half a day of leave (the
other half worked or not) and ``½+`` on a day with half a day worked and no leave; ``half="symbol"``
writes the report's symbol alone, as the form's instructions say (the longer part wins).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..header import ReportHeader
from .labels import WEEKDAYS, labels, legend, nfc

TIME_PAID_LEAVE = ("P", "H", "NB", "CT", "LĐ", "N")
UNPAID_LEAVE = ("KL",)
INSURANCE_LEAVE = ("Ô", "Cô", "TS", "T")
KNOWN_LEAVE = frozenset(TIME_PAID_LEAVE + UNPAID_LEAVE + INSURANCE_LEAVE)
HALF_STYLES = ("fraction", "symbol")
_PLAIN = frozenset(("", "+", "L", "P", "H", "NB", "KL", "N", "CT", "TS", "T", "Ô", "Cô", "LĐ"))
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class DayColumn:
    date: dt.date
    weekday: str  # "T2".."CN" / "Mo".."Su"
    rest: bool  # shaded: nobody had to work, or a public holiday


@dataclass(frozen=True)
class Row:
    stt: int
    staff: str
    name: str
    position: str
    unit: str
    cells: tuple[str, ...]  # one per day of the month
    marks: tuple[str, ...]  # "" / "missing" / "absent": highlighted on screen, not printed as text
    time_paid: float
    unpaid: float
    insurance: float


OT_KINDS = ("weekday", "weekend", "holiday")


@dataclass(frozen=True)
class OvertimeRow:
    """One person's approved overtime of the month, in minutes."""

    stt: int
    staff: str
    name: str
    unit: str
    weekday: int
    weekend: int
    holiday: int
    night: int

    @property
    def total(self) -> int:
        return self.weekday + self.weekend + self.holiday


@dataclass(frozen=True)
class Timesheet:
    header: ReportHeader
    lang: str
    text: dict[str, str]
    year: int
    month: int
    columns: tuple[DayColumn, ...]
    rows: tuple[Row, ...]
    time_paid: float
    unpaid: float
    insurance: float
    legend: tuple[tuple[str, str], ...]
    overtime: tuple[OvertimeRow, ...] = ()


def month_of(report: Mapping[str, Any]) -> tuple[int, int]:
    m = _MONTH.match(str(report.get("month", "")))
    if m is None:
        raise ValueError(f"report.month: {report.get('month')!r} is not YYYY-MM")
    return int(m.group(1)), int(m.group(2))


def month_dates(year: int, month: int) -> list[dt.date]:
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def cell_text(day: Mapping[str, Any], half: str = "fraction") -> str:
    """What one day cell shows (see the module docstring for the two half-day styles)."""
    symbol = nfc(str(day.get("symbol") or ""))
    if half == "symbol":
        return symbol
    leave = day.get("leave")
    if leave and float(leave["value"]) == 0.5:
        return "½" + nfc(str(leave["kind"]))
    if not leave and float(day.get("value") or 0.0) == 0.5:
        return "½+"
    return symbol


def quy_ra_cong(totals: Mapping[str, Any]) -> tuple[float, float, float]:
    """(time-paid, unpaid, social-insurance) days from one person's ``totals``."""
    leave = {nfc(k): float(v) for k, v in (totals.get("leave") or {}).items()}
    unknown = sorted(set(leave) - KNOWN_LEAVE)
    if unknown:
        raise ValueError(f"totals.leave: unknown leave kind(s) {', '.join(unknown)}")
    time_paid = float(totals.get("work_days", 0.0)) + float(totals.get("holidays", 0))
    time_paid += sum(leave.get(k, 0.0) for k in TIME_PAID_LEAVE)
    unpaid = sum(leave.get(k, 0.0) for k in UNPAID_LEAVE)
    insurance = sum(leave.get(k, 0.0) for k in INSURANCE_LEAVE)
    return time_paid, unpaid, insurance


def build(
    report: Mapping[str, Any], header: ReportHeader, lang: str = "vi", half: str = "fraction"
) -> Timesheet:
    """The timesheet of ``report``; ValueError naming the field for a report it cannot print."""
    text = labels(lang)
    header = dataclasses.replace(
        header,
        agency_name=nfc(header.agency_name),
        agency_code=nfc(header.agency_code),
        unit_code=nfc(header.unit_code),
        unit_name=nfc(header.unit_name),
    )
    if half not in HALF_STYLES:
        raise ValueError(f"half: {half!r} is not one of {', '.join(HALF_STYLES)}")
    year, month = month_of(report)
    if header.month != report["month"]:
        raise ValueError(f"header.month: {header.month!r} is not the report's month {report['month']!r}")
    dates = month_dates(year, month)
    keys = [d.isoformat() for d in dates]
    staff = report.get("staff")
    if not isinstance(staff, list):
        raise ValueError("report.staff: missing or not a list")
    working = [False] * len(keys)
    holiday = [False] * len(keys)
    rows: list[Row] = []
    overtime: list[OvertimeRow] = []
    for i, person in enumerate(staff, start=1):
        ot = person.get("overtime")
        if ot:
            try:
                mins = [int(ot.get(k, 0)) for k in (*OT_KINDS, "night")]
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"report.staff[{i - 1}].overtime: not a mapping of minutes") from None
            if any(mins):
                overtime.append(
                    OvertimeRow(
                        len(overtime) + 1,
                        str(person.get("staff", "")),
                        nfc(str(person.get("name", ""))),
                        str(person.get("unit", "")),
                        *mins,
                    )
                )
        days = person.get("days") or {}
        cells: list[str] = []
        marks: list[str] = []
        for j, key in enumerate(keys):
            day = days.get(key)
            if day is None:
                cells.append("")
                marks.append("")
                continue
            sym = day.get("symbol") or ""
            flags = day.get("flags") or ()
            leave = day.get("leave")
            if half == "fraction" and (leave or day.get("value") == 0.5):
                cells.append(cell_text(day, half))
            else:
                cells.append(sym if sym in _PLAIN else nfc(sym))
            if flags:
                marks.append("missing" if "missing_punch" in flags else "absent" if "absent" in flags else "")
                if "absent" in flags or "missing_punch" in flags:
                    working[j] = True
            else:
                marks.append("")
            if sym and sym != "L":
                working[j] = True
            elif sym == "L":
                holiday[j] = True
        try:
            tp, ul, ins = quy_ra_cong(person.get("totals") or {})
        except ValueError as exc:
            raise ValueError(f"report.staff[{i - 1}] ({person.get('staff')}): {exc}") from None
        code = str(person.get("staff", ""))
        rows.append(
            Row(
                i,
                code,
                nfc(str(person.get("name", ""))),
                nfc(header.positions.get(code, "")),
                str(person.get("unit", "")),
                tuple(cells),
                tuple(marks),
                tp,
                ul,
                ins,
            )
        )
    names = WEEKDAYS[lang]
    columns = tuple(
        DayColumn(d, names[d.weekday()], holiday[j] or (not working[j] if rows else d.weekday() >= 5))
        for j, d in enumerate(dates)
    )
    return Timesheet(
        header,
        lang,
        text,
        year,
        month,
        columns,
        tuple(rows),
        sum(r.time_paid for r in rows),
        sum(r.unpaid for r in rows),
        sum(r.insurance for r in rows),
        tuple(legend(lang)),
        tuple(overtime),
    )


def hm(minutes: int) -> str:
    """Minutes as printed in the overtime section: ``2:05``; empty for zero."""
    return f"{minutes // 60}:{minutes % 60:02d}" if minutes else ""


def overtime_table(ts: Timesheet) -> tuple[list[str], list[list[str]]]:
    """The overtime section as text: its header and its rows (with a total row), for every format."""
    t = ts.text
    keys = ("stt", "name", "ot_weekday", "ot_weekend", "ot_holiday", "ot_total", "ot_night")
    head = [t[k] for k in keys]
    body = [
        [str(r.stt), r.name, hm(r.weekday), hm(r.weekend), hm(r.holiday), hm(r.total), hm(r.night)]
        for r in ts.overtime
    ]
    kinds = ("weekday", "weekend", "holiday", "total", "night")
    sums = [sum(getattr(r, k) for r in ts.overtime) for k in kinds]
    body.append(["", t["total"], *(hm(v) for v in sums)])
    return head, body


def number(value: float, lang: str) -> str:
    """A day count as printed: ``21``, ``20,5`` (vi) / ``20.5`` (en), empty for zero."""
    if value == 0:
        return ""
    s = f"{value:.2f}".rstrip("0").rstrip(".")
    return s.replace(".", ",") if lang == "vi" else s
