"""Dates and times as a person reads them in each language: the one home of these formats.

Vietnamese readers write ``30/11/2026`` (``dd/mm/yyyy``), clock times ``08:05`` (``HH:MM``, the
seconds only when they are not zero) and a moment ``30/11/2026 08:05`` in the value's own offset
(the offset is named when it is not Vietnam's UTC+7; a naive value is shown as it is). English
keeps ISO 8601, exactly as ``str()`` writes the value (``2026-11-30``, ``08:05:00``,
``2026-11-30 08:05:00+07:00``): the attendance contract and its tests fix English texts.

:func:`messages.render` shows every ``date``/``datetime``/``time`` field of a message this way;
the console's form fields use :func:`day` too. Machine outputs (JSON, CSV, audit details, logs)
write their own ISO strings and never pass through here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

_VN_OFFSET = timedelta(hours=7)

Temporal = date | datetime | time


def day(value: date, code: str) -> str:
    """A civil date: ``30/11/2026`` in Vietnamese, ISO ``2026-11-30`` in English."""
    if code == "vi":
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    return value.isoformat()


def clock(value: time | datetime, code: str) -> str:
    """The wall-clock part: ``08:05`` (``08:05:30`` when there are seconds) in Vietnamese;
    English: ``str(time)`` (``08:05:00``)."""
    if code != "vi":
        return str(value if isinstance(value, time) else value.timetz())
    text = f"{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        text += f":{value.second:02d}"
    return text


def _offset(value: datetime | time) -> str:
    """`` UTC`` / `` UTC+05:30`` when the value is aware and not in Vietnam's UTC+7, else ``""``."""
    off = value.utcoffset()
    if off is None or off == _VN_OFFSET:
        return ""
    if not off:
        return " UTC"
    sign, off = ("-", -off) if off < timedelta(0) else ("+", off)
    minutes = int(off.total_seconds()) // 60
    return f" UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def moment(value: datetime, code: str) -> str:
    """A date and time in its own offset: ``30/11/2026 08:05`` in Vietnamese; English ``str()``."""
    if code != "vi":
        return str(value)
    return f"{day(value, code)} {clock(value, code)}{_offset(value)}"


def shown(value: Temporal, code: str) -> str:
    """``value`` (a date, datetime or time) as a person reads it in language ``code``."""
    if isinstance(value, datetime):  # before date: a datetime is a date
        return moment(value, code)
    if isinstance(value, date):
        return day(value, code)
    return clock(value, code) + (_offset(value) if code == "vi" else "")


class Shown:
    """A date/time field of a message for ``str.format``: ``{end}`` reads as :func:`shown` in the
    message's language; an explicit spec (``{end:%d.%m}``) or ``{end!r}`` still reach the value."""

    __slots__ = ("code", "value")

    def __init__(self, value: Temporal, code: str) -> None:
        self.value, self.code = value, code

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if spec else shown(self.value, self.code)

    def __str__(self) -> str:
        return shown(self.value, self.code)

    def __repr__(self) -> str:
        return repr(self.value)


def field(value: object, code: str) -> object:
    """A message field ready for ``str.format`` in language ``code``: dates and times wrapped in
    :class:`Shown`, anything else as it is."""
    return Shown(value, code) if isinstance(value, date | time) else value
