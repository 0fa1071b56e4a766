"""Languages of the console: Vietnamese (default) and English, from Babel catalogs.

The catalogs are ``locale/<lang>/LC_MESSAGES/messages.po`` (msgids are English; the Vietnamese
catalog translates every one, tests/gateway/test_console.py checks it covers each msgid in the templates
and code). They are compiled in memory when the gateway starts (Babel's ``write_mo``): no ``.mo``
file to build or commit. Dates, times and numbers use Babel's CLDR data for the chosen locale, in
Vietnam's time (UTC+7, no daylight saving).
"""

from __future__ import annotations

import gettext
import io
import re
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import date as CivilDate
from functools import cache, lru_cache
from pathlib import Path
from typing import Final

from babel.dates import format_date, format_datetime, format_time, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from messages import Message, dates

LANGS: Final = ("vi", "en")
DEFAULT: Final = "vi"
LOCALE_DIR: Final = Path(__file__).with_name("locale")
VN_TZ: Final = timezone(timedelta(hours=7), "ICT")
DAY_VN: Final = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Date fields are text (day/month/year), not the browser's date picker, whose format follows the
# machine's locale (12/06/2026 on an English one would read as 12 June to a Vietnamese officer).
DAY_PATTERN: Final = r"\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}"
CLOCK_PATTERN: Final = r"([01]\d|2[0-3]):[0-5]\d"


def parse_day(text: str) -> date:
    """``dd/mm/yyyy`` (how the forms show dates in Vietnamese) or ISO ``yyyy-mm-dd``; ValueError."""
    s = text.strip()
    m = DAY_VN.match(s)
    if m:
        return date(int(m[3]), int(m[2]), int(m[1]))
    if len(s) != 10:
        raise ValueError(s)
    return date.fromisoformat(s)


class _Translations(gettext.GNUTranslations):
    """The console's catalog, and a refusal from the gateway's own rules (the API handlers the
    console calls raise ``messages.Message``: English id and fields) rendered in this language too."""

    lang = DEFAULT

    def gettext(self, message: str) -> str:
        if isinstance(message, Message):
            return message.in_lang(self.lang)
        return super().gettext(message)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    tr = _Translations(buf)
    tr.lang = lang
    return tr


def pick(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT


class Formats:
    """Date, time and number formatting for one language (templates call these)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def dt(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_datetime(
            value, "short" if self.lang == "en" else "HH:mm:ss dd/MM/yyyy", tzinfo=VN_TZ, locale=self.lang
        )

    def time(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_time(value, "HH:mm:ss", tzinfo=VN_TZ, locale=self.lang)

    def date(self, value: datetime) -> str:
        return format_date(value.astimezone(VN_TZ), "full", locale=self.lang)

    def day(self, value: CivilDate | str | None, weekday: bool = False) -> str:
        """A civil date (no time zone): ``Thứ Năm, 01/01/2026`` / ``Thu, Jan 1, 2026``."""
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = CivilDate.fromisoformat(value)
        if self.lang == "vi":
            if not weekday:
                return dates.day(value, self.lang)  # the messages' own dd/mm/yyyy
            pattern = "EEEE, dd/MM/yyyy"
        else:
            pattern = "EEE, MMM d, yyyy" if weekday else "MMM d, yyyy"
        return _civil(value, pattern, self.lang)

    def day_input(self, value: CivilDate | str | None) -> str:
        """A date as a form field shows it: ``06/12/2026`` in Vietnamese, ISO in English."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = CivilDate.fromisoformat(value)
        return dates.day(value, self.lang)

    def day_hint(self) -> str:
        return "ngày/tháng/năm" if self.lang == "vi" else "YYYY-MM-DD"

    def weekdays(self) -> list[str]:
        """Monday … Sunday, abbreviated in this language (``Th 2`` … ``CN``)."""
        names = get_day_names("abbreviated", locale=self.lang)
        return [names[i] for i in range(7)]

    def num(self, value: int | float | None) -> str:
        return "—" if value is None else _decimal(value, self.lang)


# Babel formats one number or date in ~50-100 µs; a timesheet page formats hundreds of the same few
# values (work days, minutes, the month's dates)
@lru_cache(maxsize=4096, typed=True)
def _decimal(value: int | float, lang: str) -> str:
    return format_decimal(value, locale=lang)


@lru_cache(maxsize=4096)
def _civil(value: CivilDate, pattern: str, lang: str) -> str:
    return format_date(value, pattern, locale=lang)
