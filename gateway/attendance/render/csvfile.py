"""The timesheet as CSV: one row per person, for Excel and for scripts.

UTF-8 with a BOM (Excel then reads the Vietnamese letters), CRLF lines, a header row in the chosen
language, day columns headed by the day number, numbers with a dot. Formula injection is guarded
like the gateway's events CSV: a cell starting with ``= + - @`` TAB or CR gets a leading
apostrophe — except the form's symbol ``+`` on its own, which no spreadsheet runs as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from ..header import ReportHeader
from .labels import nfc
from .timesheet import Timesheet, build, overtime_table

_RISKY = ("=", "+", "-", "@", "\t", "\r")


def safe(value: Any) -> str:
    """A cell's text, NFC, with a leading apostrophe where a spreadsheet would see a formula."""
    if value is None:
        return ""
    text = nfc(str(value))
    if text[:1] in _RISKY and text != "+":
        text = "'" + text
    return text


def _n(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def write(
    report: Mapping[str, Any], header: ReportHeader, lang: str = "vi", *, half: str = "fraction"
) -> bytes:
    return write_timesheet(build(report, header, lang, half))


def write_timesheet(ts: Timesheet) -> bytes:
    t = ts.text
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(
        [safe(x) for x in (t["stt"], t["staff"], t["name"], t["position"], t["unit_code"])]
        + [str(c.date.day) for c in ts.columns]
        + [safe(t[k]) for k in ("time_paid", "unpaid", "insurance")]
    )
    for r in ts.rows:
        w.writerow(
            [str(r.stt), safe(r.staff), safe(r.name), safe(r.position), safe(r.unit)]
            + [safe(c) for c in r.cells]
            + [_n(r.time_paid), _n(r.unpaid), _n(r.insurance)]
        )
    w.writerow(
        ["", "", safe(t["total"]), "", ""]
        + [""] * len(ts.columns)
        + [_n(ts.time_paid), _n(ts.unpaid), _n(ts.insurance)]
    )
    if ts.overtime:  # approved overtime: after a blank line, its own header
        head, body = overtime_table(ts)
        w.writerow([])
        w.writerow([safe(t["overtime_title"])])
        w.writerow([safe(x) for x in head])
        for line in body:
            w.writerow([safe(x) for x in line])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")
