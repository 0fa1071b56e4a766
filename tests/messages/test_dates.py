"""Dates and times inside a message read as each language writes them (messages/dates.py):
Vietnamese ``30/11/2026``, ``08:05``, ``30/11/2026 08:05``; English keeps ISO 8601 exactly as
before (the attendance contract fixes English texts)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta, timezone

from messages import Joined, Message, _, dates, render, text_in
from trustcore.errors import Text

VN = timezone(timedelta(hours=7))
PAST = "to: {end} is in a past month, whose timesheets keep the shift; end it on {floor} or later"


def test_the_past_month_refusal_in_each_language() -> None:
    said = _(PAST, end=date(2026, 10, 5), floor=date(2026, 11, 30))
    assert isinstance(said, Message)
    assert said.in_lang("en") == (
        "to: 2026-10-05 is in a past month, whose timesheets keep the shift; end it on 2026-11-30 or later"
    )
    assert said.in_lang("vi") == (
        "to: 05/10/2026 thuộc tháng đã qua, bảng chấm công của tháng đó giữ nguyên ca; "
        "hãy kết thúc từ ngày 30/11/2026 trở đi"
    )
    # the fields stay dates (another layer renders them again), also across processes
    assert said.fields == {"end": date(2026, 10, 5), "floor": date(2026, 11, 30)}
    again = pickle.loads(pickle.dumps(said))  # noqa: S301 — our own bytes
    assert again.in_lang("vi") == said.in_lang("vi") and again.in_lang("en") == said.in_lang("en")


def test_days_times_and_moments() -> None:
    d, t = date(2026, 3, 6), time(8, 5)
    assert (dates.shown(d, "vi"), dates.shown(d, "en")) == ("06/03/2026", "2026-03-06")
    assert (dates.shown(t, "vi"), dates.shown(t, "en")) == ("08:05", "08:05:00")
    assert dates.shown(time(8, 5, 30), "vi") == "08:05:30"  # seconds only when there are some
    at = datetime(2026, 11, 30, 8, 5, tzinfo=VN)
    assert (dates.shown(at, "vi"), dates.shown(at, "en")) == ("30/11/2026 08:05", "2026-11-30 08:05:00+07:00")
    # in the value's own offset, named when it is not Vietnam's
    assert dates.shown(datetime(2026, 11, 30, 1, 5, 9, 120, tzinfo=UTC), "vi") == "30/11/2026 01:05:09 UTC"
    west = timezone(-timedelta(hours=3, minutes=30))
    assert dates.shown(datetime(2026, 11, 30, 1, 5, tzinfo=west), "vi") == "30/11/2026 01:05 UTC-03:30"
    assert dates.shown(datetime(2026, 11, 30, 1, 5), "vi") == "30/11/2026 01:05"  # naive: as it is
    assert dates.shown(date(33, 1, 2), "vi") == "02/01/0033"


def test_render_reaches_every_kind_of_field() -> None:
    fields: dict[str, object] = {"a": date(2026, 1, 2)}
    assert render("{a}", fields, "vi") == "02/01/2026" and render("{a}", fields, "en") == "2026-01-02"
    # an explicit spec or !r still reaches the value itself
    assert render("{a:%d.%m} {a!r}", fields, "vi") == "02.01 datetime.date(2026, 1, 2)"
    assert render("{a!s}", fields, "vi") == "02/01/2026"
    # the trust core's Text keeps its English str, and reads Vietnamese through the catalog
    listed = Text("{date} is listed twice", date=date(2026, 1, 1))
    assert str(listed) == "2026-01-01 is listed twice"
    assert text_in(listed, "vi").startswith("01/01/2026 ")
    # a message inside another, and a headline with its rows
    inner = _("to {end}", end=date(2026, 5, 31))
    rows = Joined(
        [_("{who}: shift {shift} from {start}", who="CB01", shift="hc", start=date(2026, 5, 1)), inner]
    )
    assert "31/05/2026" in rows.in_lang("vi") and "01/05/2026" in rows.in_lang("vi")
    assert "2026-05-31" in rows.in_lang("en") and "2026-05-01" in rows.in_lang("en")
    # other values are untouched
    assert render("{n} {s}", {"n": 3, "s": "2026-01-02"}, "vi") == "3 2026-01-02"


def test_the_console_form_fields_use_the_same_format() -> None:
    from gateway.console.i18n import Formats

    assert Formats("vi").day_input("2026-12-06") == "06/12/2026" == dates.day(date(2026, 12, 6), "vi")
    assert Formats("en").day_input(date(2026, 12, 6)) == "2026-12-06"
