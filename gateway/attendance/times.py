"""Civil time in Asia/Ho_Chi_Minh: parsing the contract's TIME and DATE arguments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from messages import _

VN = timezone(timedelta(hours=7), "ICT")


def parse_time(text: str, assume: timezone | None = None) -> datetime:
    """ISO 8601 with its offset (``2026-03-02T07:58:00+07:00``); returned in UTC. A time without an
    offset is refused unless ``assume`` is given (spreadsheets from terminals that write local time)."""
    s = text.strip()
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(_("{value!r} is not an ISO 8601 time", value=s)) from None
    if t.tzinfo is None:
        if assume is None:
            raise ValueError(
                _("{value!r} has no UTC offset (write it like 2026-03-02T07:58:00+07:00)", value=s)
            )
        t = t.replace(tzinfo=assume)
    if not 2000 <= t.year <= 2100:
        raise ValueError(_("{value!r} is out of range (a reader clock that was never set?)", value=s))
    return t.astimezone(UTC)


def parse_date(text: str) -> date:
    s = text.strip()
    try:
        if len(s) != 10:
            raise ValueError
        return date.fromisoformat(s)
    except ValueError:
        raise ValueError(_("{value!r} is not a date YYYY-MM-DD", value=s)) from None


def parse_month(text: str) -> tuple[int, int]:
    s = text.strip()
    try:
        y, m = s.split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError
        year, month = int(y), int(m)
        if not 1 <= month <= 12 or not 2000 <= year <= 2100:
            raise ValueError
    except ValueError:
        raise ValueError(_("{value!r} is not a month YYYY-MM", value=s)) from None
    return year, month


def local_date(t: datetime) -> date:
    return t.astimezone(VN).date()


def today() -> date:
    """Today's date in Vietnam: the "today" of the closed-month and computed-day rules for shift
    assignments (the API, the console through it, and ``cbcc attendance assignment``)."""
    return local_date(datetime.now(UTC))
