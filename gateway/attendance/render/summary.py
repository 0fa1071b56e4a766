"""Reports computed from the JSON report: per-unit summary, one day's attendance, a person's history.

All three are plain functions over the contract's report dict (§5) returning a ``Table`` that
``tables.render_table`` writes as XLSX, PDF, CSV or HTML, so the console, the CLI and the API show
the same figures. ``chart_svg`` draws late / early minutes per unit as a small inline SVG.

Definitions (docs/attendance-reports.md):

- a *scheduled* person-day is one the person had to work: a symbol other than ``L`` or ``""``
  (worked or on leave), or flagged ``absent`` / ``missing_punch``;
- *absent* = flagged ``absent`` (a working day with no part worked and no leave);
- absence rate = absent / scheduled, in percent (leave is not absence; it is reported beside it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from .labels import FLAGS, WEEKDAYS, labels, nfc
from .timesheet import month_of

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    """A titled table: what every summary report is, whatever the format."""

    title: str
    subtitle: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: tuple[Cell, ...] | None = None
    lang: str = "vi"
    svg: str | None = None  # a chart shown under the table in HTML
    widths: tuple[float, ...] = field(default=())


@dataclass
class UnitFigures:
    unit: str
    people: int = 0
    scheduled: int = 0
    work_days: float = 0.0
    leave_days: float = 0.0
    absent: int = 0
    missing_punch: int = 0
    late_count: int = 0
    late_min: int = 0
    early_count: int = 0
    early_min: int = 0

    @property
    def absence_rate(self) -> float:
        return round(100.0 * self.absent / self.scheduled, 1) if self.scheduled else 0.0


def scheduled(day: Mapping[str, Any]) -> bool:
    sym = day.get("symbol") or ""
    flags = day.get("flags") or ()
    return sym not in ("", "L") or "absent" in flags or "missing_punch" in flags


def day_counts(person: Mapping[str, Any], until: str | None = None) -> tuple[int, int]:
    """(scheduled, absent) person-days of one row. ``until`` (a date): the days after it are not
    yet due — neither scheduled nor absent (the contract's report flags the rest of the current
    month ``absent``; a page of the month in progress counts only what has happened)."""
    sched = absent = 0
    for key, day in (person.get("days") or {}).items():
        if until is not None and key > until:
            continue
        if scheduled(day):
            sched += 1
        if "absent" in (day.get("flags") or ()):
            absent += 1
    return sched, absent


RowFigures = tuple[int, int, float, float, int, int, int, int, int, int]


def row_figures(person: Mapping[str, Any], until: str | None = None) -> RowFigures:
    """One row's share of its unit's :class:`UnitFigures` (people = 1, then the fields in their
    order), its day counts up to ``until`` (:func:`day_counts`)."""
    tot = person.get("totals") or {}
    sched, absent = day_counts(person, until)
    return (
        1,
        sched,
        float(tot.get("work_days", 0.0)),
        sum(float(v) for v in (tot.get("leave") or {}).values()),
        absent,
        int(tot.get("missing_punch", 0)),
        int(tot.get("late_count", 0)),
        int(tot.get("late_min", 0)),
        int(tot.get("early_count", 0)),
        int(tot.get("early_min", 0)),
    )


def figures_of(rows: Iterable[tuple[str, RowFigures]]) -> list[UnitFigures]:
    """The units' figures from their rows' shares (unit code, :func:`row_figures`), sorted by unit
    code, each sum taken in the rows' order."""
    units: dict[str, list[Any]] = {}
    for unit, fig in rows:
        acc = units.get(unit)
        if acc is None:
            units[unit] = list(fig)
        else:
            for i, v in enumerate(fig):
                acc[i] += v
    return [UnitFigures(k, *units[k]) for k in sorted(units)]


def unit_figures(report: Mapping[str, Any], until: str | None = None) -> list[UnitFigures]:
    """One entry per unit of the report, sorted by unit code; the days after ``until`` (a date)
    are not yet due (:func:`day_counts`)."""
    return figures_of((str(p.get("unit", "")), row_figures(p, until)) for p in report.get("staff") or ())


def _r(v: float) -> float | int:
    return int(v) if v == int(v) else round(v, 2)


def unit_summary(
    report: Mapping[str, Any], lang: str = "vi", unit_names: Mapping[str, str] | None = None
) -> Table:
    """Per-unit late/early counts and minutes, absences and the absence rate of one month."""
    t = labels(lang)
    year, month = month_of(report)
    names = unit_names or {}
    figs = unit_figures(report)
    cols = (
        "unit_code",
        "unit",
        "people",
        "scheduled_days",
        "work_days",
        "leave_days",
        "absent_days",
        "absence_rate",
        "missing_punch",
        "late_count",
        "late_min",
        "early_count",
        "early_min",
    )
    rows = tuple(
        (
            f.unit,
            nfc(names.get(f.unit, "")),
            f.people,
            f.scheduled,
            _r(f.work_days),
            _r(f.leave_days),
            f.absent,
            f.absence_rate,
            f.missing_punch,
            f.late_count,
            f.late_min,
            f.early_count,
            f.early_min,
        )
        for f in figs
    )
    all_ = UnitFigures(
        "",
        sum(f.people for f in figs),
        sum(f.scheduled for f in figs),
        sum(f.work_days for f in figs),
        sum(f.leave_days for f in figs),
        sum(f.absent for f in figs),
        sum(f.missing_punch for f in figs),
        sum(f.late_count for f in figs),
        sum(f.late_min for f in figs),
        sum(f.early_count for f in figs),
        sum(f.early_min for f in figs),
    )
    total = (
        t["total"],
        "",
        all_.people,
        all_.scheduled,
        _r(all_.work_days),
        _r(all_.leave_days),
        all_.absent,
        all_.absence_rate,
        all_.missing_punch,
        all_.late_count,
        all_.late_min,
        all_.early_count,
        all_.early_min,
    )
    return Table(
        t["summary_title"],
        (t["month_line"].format(m=f"{month:02d}", y=year),),
        tuple(t[c] for c in cols),
        rows,
        total,
        lang,
        chart_svg(figs, lang),
    )


DailyEntry = tuple[tuple[Cell, ...], tuple[int, ...]] | None


def daily_entry(person: Mapping[str, Any], date: str, lang: str = "vi") -> DailyEntry:
    """One row's line of :func:`daily` and its (present, late, early, absent, on leave, missing
    punch) counts, or None when the row has no such date."""
    day = (person.get("days") or {}).get(date)
    if day is None:
        return None
    flags = day.get("flags") or ()
    leave = day.get("leave")
    line = (
        str(person.get("unit", "")),
        str(person.get("staff", "")),
        nfc(str(person.get("name", ""))),
        nfc(day.get("symbol") or ""),
        day.get("in"),
        day.get("out"),
        day.get("worked_min"),
        day.get("late_min") or None,
        day.get("early_min") or None,
        f"{nfc(leave['kind'])} {float(leave['value']):g}" if leave else None,
        ", ".join(FLAGS[lang].get(f, f) for f in flags) or None,
    )
    counts = (
        1 if float(day.get("value") or 0) > 0 else 0,
        1 if "late" in flags else 0,
        1 if "early" in flags else 0,
        1 if "absent" in flags else 0,
        1 if leave else 0,
        1 if "missing_punch" in flags else 0,
    )
    return line, counts


def daily_key(person: Mapping[str, Any]) -> tuple[str, str]:
    """The order of :func:`daily`'s lines: by unit code, then staff code."""
    return (str(person.get("unit")), str(person.get("staff")))


def daily(report: Mapping[str, Any], date: str, lang: str = "vi") -> Table:
    """Everyone's attendance on one date: symbol, in, out, late, early, flags; counts in the
    subtitle."""
    if date[:7] != report.get("month"):
        _check_date(date)
        raise ValueError(f"date: {date} is not in the report's month {report.get('month')}")
    people = sorted(report.get("staff") or (), key=daily_key)
    return daily_table(date, lang, (daily_entry(p, date, lang) for p in people))


def _check_date(date: str) -> dt.date:
    try:
        return dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"date: {date!r} is not YYYY-MM-DD") from None


def daily_table(date: str, lang: str, entries: Iterable[DailyEntry]) -> Table:
    """:func:`daily`'s table from its rows' entries (:func:`daily_entry`, in :func:`daily_key`
    order; None: the row has no such date)."""
    t = labels(lang)
    d = _check_date(date)
    rows = []
    tally = [0] * 6
    for got in entries:
        if got is None:
            continue
        line, adds = got
        for i, c in enumerate(adds):
            tally[i] += c
        rows.append(line)
    present, late, early, absent, on_leave, missing = tally
    cols = (
        "unit_code",
        "staff",
        "name",
        "symbol",
        "in",
        "out",
        "worked_min",
        "late_min",
        "early_min",
        "leave",
        "flags",
    )
    counts = (
        f"{t['present']}: {present} · {t['late']}: {late} · {t['early']}: {early} · "
        f"{t['absent_days']}: {absent} · {t['leave']}: {on_leave} · {t['missing_punch']}: {missing}"
    )
    wd = WEEKDAYS[lang][d.weekday()]
    return Table(
        t["daily_title"].format(d=f"{wd} {d.day:02d}/{d.month:02d}/{d.year}"),
        (counts,),
        tuple(t[c] for c in cols),
        tuple(rows),
        None,
        lang,
    )


def history(reports: Iterable[Mapping[str, Any]], staff: str, lang: str = "vi") -> Table:
    """One person's days over the given monthly reports, oldest first, with a total per month."""
    t = labels(lang)
    flag_names = FLAGS[lang]
    rows: list[tuple[Cell, ...]] = []
    name = ""
    found = False
    for report in sorted(reports, key=lambda r: str(r.get("month"))):
        for person in report.get("staff") or ():
            if person.get("staff") != staff:
                continue
            found = True
            name = nfc(str(person.get("name", "")))
            for date, day in sorted((person.get("days") or {}).items()):
                d = dt.date.fromisoformat(date)
                leave = day.get("leave")
                rows.append(
                    (
                        date,
                        WEEKDAYS[lang][d.weekday()],
                        str(person.get("unit", "")),
                        nfc(day.get("symbol") or ""),
                        day.get("in"),
                        day.get("out"),
                        day.get("worked_min"),
                        day.get("late_min") or None,
                        day.get("early_min") or None,
                        day.get("value"),
                        f"{nfc(leave['kind'])} {float(leave['value']):g}" if leave else None,
                        ", ".join(flag_names.get(f, f) for f in day.get("flags") or ()) or None,
                    )
                )
            tot = person.get("totals") or {}
            leave = tot.get("leave") or {}
            leave_text = ", ".join(f"{nfc(k)} {float(v):g}" for k, v in sorted(leave.items()))
            rows.append(
                (
                    f"{t['total']} {report.get('month')}",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    tot.get("late_min"),
                    tot.get("early_min"),
                    tot.get("work_days"),
                    leave_text or None,
                    None,
                )
            )
    if not found:
        raise ValueError(f"staff: {staff} is in none of the reports")
    cols = (
        "date",
        "weekday",
        "unit_code",
        "symbol",
        "in",
        "out",
        "worked_min",
        "late_min",
        "early_min",
        "value",
        "leave",
        "flags",
    )
    return Table(
        t["history_title"], (f"{name} ({staff})",), tuple(t[c] for c in cols), tuple(rows), None, lang
    )


def chart_svg(figs: Sequence[UnitFigures], lang: str = "vi", width: int = 640) -> str:
    """Horizontal bars of late and early minutes per unit, as standalone SVG text (no script, no CSS file)."""
    t = labels(lang)
    bar, gap, label_w, top = 9, 6, 90, 28
    peak = max([f.late_min for f in figs] + [f.early_min for f in figs] + [1])
    scale = (width - label_w - 60) / peak
    height = top + len(figs) * (2 * bar + gap) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif" font-size="10" role="img">',
        f"<title>{escape(t['chart_title'])}</title>",
        f'<text x="0" y="12" font-weight="bold">{escape(t["chart_title"])}</text>',
        f'<rect x="{width - 150}" y="4" width="10" height="10" fill="#c0504d"/>'
        f'<text x="{width - 136}" y="13">{escape(t["late"])}</text>',
        f'<rect x="{width - 80}" y="4" width="10" height="10" fill="#4f81bd"/>'
        f'<text x="{width - 66}" y="13">{escape(t["early"])}</text>',
    ]
    y = top
    for f in figs:
        out.append(f'<text x="{label_w - 4}" y="{y + bar + 3}" text-anchor="end">{escape(f.unit)}</text>')
        for value, colour in ((f.late_min, "#c0504d"), (f.early_min, "#4f81bd")):
            w = round(value * scale, 1)
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar}" fill="{colour}">'
                f"<title>{escape(f.unit)}: {value}</title></rect>"
                f'<text x="{label_w + w + 3}" y="{y + bar - 1}" font-size="8">{value}</text>'
            )
            y += bar
        y += gap
    out.append("</svg>")
    return "".join(out)
