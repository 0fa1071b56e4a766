"""Renderers of the attendance reports: the monthly timesheet (Mẫu C01-HD) as XLSX, PDF, CSV, HTML.

``render`` is the interface the engine's CLI and API call (gateway/attendance/README.md); the
form's rows are computed once in ``timesheet.build`` and each format only lays them out.
Summaries, the daily report and a person's history are in ``summary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..header import ReportHeader

FORMATS = ("xlsx", "pdf", "csv", "html")


def render(
    report: Mapping[str, Any],
    header: ReportHeader,
    fmt: str,
    lang: str = "vi",
    *,
    half: str = "fraction",
    details: bool | None = None,
) -> bytes:
    """The timesheet of ``report`` in ``fmt``; ValueError for an unknown format, language or report field.

    ``half``: "fraction" (½P) or "symbol" (the report's symbol only); ``details``: the XLSX gets a
    second sheet with every person-day (in, out, late, early, flags); by default only up to
    ``xlsx.DETAILS_MAX_ROWS`` people (a unit's sheet), since 10,000 people make 310,000 rows.
    """
    from ..bulk import no_gc

    with no_gc():
        return _render(report, header, fmt, lang, half, details)


def _render(
    report: Mapping[str, Any], header: ReportHeader, fmt: str, lang: str, half: str, details: bool | None
) -> bytes:
    from . import csvfile, html, pdf, xlsx

    if fmt == "xlsx":
        return xlsx.write(report, header, lang, half=half, details=details)
    if fmt == "pdf":
        return pdf.write(report, header, lang, half=half)
    if fmt == "csv":
        return csvfile.write(report, header, lang, half=half)
    if fmt == "html":
        return html.write(report, header, lang, half=half)
    raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
