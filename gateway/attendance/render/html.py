"""The attendance reports as self-contained HTML (Jinja2, autoescaped, printable CSS, no external files).

The browser's print is the intended paper path: ``@page`` A4 landscape, the table head repeats on
every printed page (``thead`` as a header group), rows are not split across pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, partial
from pathlib import Path
from typing import Any

import jinja2

from ..header import ReportHeader
from .labels import nfc
from .timesheet import Timesheet, build, number, overtime_table

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(template: str, **context: Any) -> bytes:
    """One rendered page, NFC, UTF-8."""
    return nfc(environment().get_template(template).render(**context)).encode("utf-8")


def write(
    report: Mapping[str, Any], header: ReportHeader, lang: str = "vi", *, half: str = "fraction"
) -> bytes:
    return write_timesheet(build(report, header, lang, half))


def write_timesheet(ts: Timesheet) -> bytes:
    t = ts.text
    month_line = t["month_line"].format(m=f"{ts.month:02d}", y=ts.year)
    return page(
        "timesheet.html.j2",
        lang=ts.lang,
        t=t,
        h=ts.header,
        ts=ts,
        month_line=month_line,
        title=f"{t['title']} – {ts.header.unit_name} – {month_line}",
        rest=[c.rest for c in ts.columns],
        num=partial(number, lang=ts.lang),
        overtime=overtime_table(ts) if ts.overtime else None,
    )
