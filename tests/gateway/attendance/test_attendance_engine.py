"""The rule engine on the scenarios where other products go wrong. Every expected value below was
worked out by hand from the contract's rules (../shared/spec/attendance-v1.md §4), not by running
the code; the arithmetic is in the comments."""

from __future__ import annotations

import json
import random
from datetime import date

from att_support import HC, NIGHT, day, month_input, row
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.attendance import engine
from gateway.attendance.calendar import Override
from gateway.attendance.engine import Assignment, Leave, Shift, Span

BLANK = {
    "symbol": "",
    "in": None,
    "out": None,
    "worked_min": 0,
    "late_min": 0,
    "early_min": 0,
    "value": 0.0,
    "leave": None,
    "flags": [],
}
HC_GRACE = Shift("hc", "HC", HC.sessions, HC.days, grace_in=5, grace_out=5)
# Hải Dương summer hours: a longer morning (270 min) than afternoon (210 min).
SUMMER = Shift("he", "Mùa hè", engine.parse_sessions("07:00-11:30,13:30-17:00"), engine.parse_days("Mon-Fri"))


def test_ordinary_days_late_early_grace_double_taps_and_resent_logs() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(HC_GRACE,),
            punches={
                "A1": [
                    "2026-03-02 07:28:00",
                    "2026-03-02 07:28:40",  # double tap 40 s later: a duplicate
                    "2026-03-02 17:02:00",
                    "2026-03-02 17:02:00",  # a re-sent log: the exact same time again
                    "2026-03-03 07:36:59",
                    "2026-03-03 16:54:10",  # truncated to 07:36 and 16:54
                    "2026-03-04 07:35:00",
                    "2026-03-04 16:55:00",  # exactly at the grace limits
                    "2026-03-06 07:30:00",  # forgot to check out
                    "2026-03-07 09:00:00",
                    "2026-03-07 11:00:00",  # Saturday: outside any occurrence
                ]
            },
        )
    )
    # 07:28-17:02 covers both sessions: 240 + 240.
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "07:28",
        "out": "17:02",
        "worked_min": 480,
        "value": 1.0,
    }
    # in 07:36 > 07:30 + 5 -> late 6; out 16:54 < 17:00 - 5 -> early 6; worked 234 + 234.
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "07:36",
        "out": "16:54",
        "worked_min": 468,
        "late_min": 6,
        "early_min": 6,
        "value": 1.0,
        "flags": ["late", "early"],
    }
    # 07:35 is not after 07:35, 16:55 not before 16:55: no late, no early; worked 235 + 235.
    assert day(rep, "2026-03-04") == {
        **BLANK,
        "symbol": "+",
        "in": "07:35",
        "out": "16:55",
        "worked_min": 470,
        "value": 1.0,
    }
    assert day(rep, "2026-03-05") == {**BLANK, "flags": ["absent"]}
    assert day(rep, "2026-03-06") == {**BLANK, "in": "07:30", "flags": ["missing_punch"]}
    assert day(rep, "2026-03-07") == {**BLANK, "in": "09:00", "out": "11:00", "flags": ["outside_shift"]}
    assert day(rep, "2026-03-08") == BLANK
    assert len(row(rep)["days"]) == 31
    # 3 worked days; the other 19 weekdays of March 2026 are absent.
    assert row(rep)["totals"] == {
        "work_days": 3.0,
        "leave": {},
        "late_count": 1,
        "late_min": 6,
        "early_count": 1,
        "early_min": 6,
        "missing_punch": 1,
        "holidays": 0,
    }
    assert sum("absent" in d["flags"] for d in row(rep)["days"].values()) == 22 - 4


def test_night_shift_across_midnight_is_reported_under_its_start_date() -> None:
    staff_night = [Assignment("dem", date(2026, 1, 1), None, staff="A1")]
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(NIGHT,),
            assignments=staff_night,
            punches={
                "A1": [
                    "2026-03-02 21:50:00",
                    "2026-03-03 06:05:00",
                    "2026-03-03 22:20:00",
                    "2026-03-04 05:40:00",
                    "2026-03-05 20:00:00",
                    "2026-03-06 10:00:00",  # both exactly on the window's edges (20:00 / +1 10:00)
                    "2026-03-31 21:58:00",
                    "2026-04-01 06:03:00",  # last night of the month
                ]
            },
        )
    )
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "21:50",
        "out": "+1 06:05",
        "worked_min": 480,
        "value": 1.0,
    }
    # 22:20 -> late 20; 05:40 -> early 20; worked 22:20-05:40 = 440.
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "22:20",
        "out": "+1 05:40",
        "worked_min": 440,
        "late_min": 20,
        "early_min": 20,
        "value": 1.0,
        "flags": ["late", "early"],
    }
    assert day(rep, "2026-03-05")["in"] == "20:00" and day(rep, "2026-03-05")["out"] == "+1 10:00"
    # The 06:05 on 3 March belongs to the night of the 2nd: the 3rd's own night has its own punches.
    assert day(rep, "2026-03-04") == {**BLANK, "flags": ["absent"]}
    assert day(rep, "2026-03-31")["out"] == "+1 06:03"
    april = engine.compute(
        month_input(
            2026,
            4,
            shifts=(NIGHT,),
            assignments=staff_night,
            punches={"A1": ["2026-03-31 21:58:00", "2026-04-01 06:03:00"]},
        )
    )
    assert day(april, "2026-04-01") == {**BLANK, "flags": ["absent"]}  # the 06:03 is March's


def test_forgotten_checkout_then_hr_correction() -> None:
    before = engine.compute(month_input(2026, 3, punches={"A1": ["2026-03-02 07:25:00"]}))
    assert day(before, "2026-03-02") == {**BLANK, "in": "07:25", "flags": ["missing_punch"]}
    after = engine.compute(
        month_input(
            2026, 3, punches={"A1": ["2026-03-02 07:25:00"]}, corrected={"A1": ["2026-03-02 17:10:00"]}
        )
    )
    assert day(after, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "07:25",
        "out": "17:10",
        "worked_min": 480,
        "value": 1.0,
        "flags": ["corrected"],
    }
    assert row(after)["totals"]["missing_punch"] == 0 and row(before)["totals"]["missing_punch"] == 1
    # A wrong tap at 18:30 voided: out is 17:01 again.
    voided = engine.compute(
        month_input(
            2026,
            3,
            punches={"A1": ["2026-03-03 07:29:00", "2026-03-03 17:01:00", "2026-03-03 18:30:20"]},
            voids={"A1": ["2026-03-03 18:30:00"]},
        )
    )
    assert day(voided, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "07:29",
        "out": "17:01",
        "worked_min": 480,
        "value": 1.0,
        "flags": ["corrected"],
    }


def test_new_year_2026_swap() -> None:
    rep = engine.compute(month_input(2026, 1, punches={"A1": ["2026-01-10 07:30:00", "2026-01-10 17:00:00"]}))
    assert day(rep, "2026-01-01") == {**BLANK, "symbol": "L"}  # Thursday, New Year
    assert day(rep, "2026-01-02") == BLANK  # Friday swapped away: a plain day off, not L
    assert day(rep, "2026-01-05") == {**BLANK, "flags": ["absent"]}
    # Saturday 10 January is worked instead of the 2nd: an occurrence.
    assert day(rep, "2026-01-10") == {
        **BLANK,
        "symbol": "+",
        "in": "07:30",
        "out": "17:00",
        "worked_min": 480,
        "value": 1.0,
    }
    assert day(rep, "2026-01-17") == BLANK  # an ordinary Saturday
    assert row(rep)["totals"]["holidays"] == 1


def test_hung_vuong_2026_on_sunday_observed_monday() -> None:
    mon_sun = Shift("hc7", "HC 7", HC.sessions, engine.parse_days("Mon-Sun"))
    names = {"A1": "Nguyễn Văn An", "A2": "Trần Thị Bình"}
    rep = engine.compute(
        month_input(
            2026,
            4,
            shifts=(HC, mon_sun),
            names=names,
            assignments=[
                Assignment("hc", date(2020, 1, 1), None, staff="A1"),
                Assignment("hc7", date(2020, 1, 1), None, staff="A2"),
            ],
        )
    )
    assert day(rep, "2026-04-26", "A1") == BLANK  # Sunday: not on A1's days
    assert day(rep, "2026-04-26", "A2")["symbol"] == "L"
    for code in ("A1", "A2"):
        assert day(rep, "2026-04-27", code)["symbol"] == "L"  # observed on Monday
        assert day(rep, "2026-04-30", code)["symbol"] == "L"
    assert row(rep, "A1")["totals"]["holidays"] == 2  # 27 and 30 April
    assert row(rep, "A2")["totals"]["holidays"] == 3  # 26, 27 and 30 April


def test_2025_calendar_tet_and_swapped_saturday() -> None:
    jan = engine.compute(month_input(2025, 1))
    assert [d for d, v in row(jan)["days"].items() if v["symbol"] == "L"] == [
        "2025-01-01",
        "2025-01-27",
        "2025-01-28",
        "2025-01-29",
        "2025-01-30",
        "2025-01-31",
    ]
    assert row(jan)["totals"]["holidays"] == 6
    apr = engine.compute(month_input(2025, 4))
    assert day(apr, "2025-04-07")["symbol"] == "L"  # Hùng Vương
    assert day(apr, "2025-04-26") == {**BLANK, "flags": ["absent"]}  # Saturday worked for Fri 2 May
    assert row(apr)["totals"]["holidays"] == 2
    may = engine.compute(month_input(2025, 5))
    assert day(may, "2025-05-01")["symbol"] == "L"
    assert day(may, "2025-05-02") == BLANK
    assert row(may)["totals"]["holidays"] == 1


def test_calendar_overrides() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            overrides=[
                Override(date(2026, 3, 9), "holiday", "Lễ địa phương"),
                Override(date(2026, 3, 10), "dayoff", "Nghỉ"),
                Override(date(2026, 3, 14), "workday"),
            ],
        )
    )
    assert day(rep, "2026-03-09")["symbol"] == "L"
    assert day(rep, "2026-03-10") == BLANK
    assert day(rep, "2026-03-14")["flags"] == ["absent"]
    assert row(rep)["totals"]["holidays"] == 1


def test_half_days() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(HC,),
            leaves=[
                Leave("A1", "P", date(2026, 3, 2), date(2026, 3, 2), "am"),
                Leave("A1", "Ô", date(2026, 3, 3), date(2026, 3, 3), "pm"),
            ],
            punches={
                "A1": [
                    "2026-03-02 13:00:00",
                    "2026-03-02 17:00:00",
                    "2026-03-03 07:40:00",
                    "2026-03-03 11:30:00",
                ]
            },
        )
    )
    # Morning on leave, afternoon worked: 240 min each, the earlier part (P) wins the tie.
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "P",
        "in": "13:00",
        "out": "17:00",
        "worked_min": 240,
        "value": 0.5,
        "leave": {"kind": "P", "value": 0.5},
    }
    # Afternoon on leave: only the morning is required; in 07:40 -> late 10; out 11:30 is its end.
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "07:40",
        "out": "11:30",
        "worked_min": 230,
        "late_min": 10,
        "value": 0.5,
        "leave": {"kind": "Ô", "value": 0.5},
        "flags": ["late"],
    }
    t = row(rep)["totals"]
    assert t["work_days"] == 1.0 and t["leave"] == {"P": 0.5, "Ô": 0.5}
    summer = engine.compute(
        month_input(
            2026,
            6,
            shifts=(SUMMER,),
            assignments=[Assignment("he", date(2026, 1, 1), None, unit="VP")],
            leaves=[
                Leave("A1", "P", date(2026, 6, 1), date(2026, 6, 1), "am"),
                Leave("A1", "P", date(2026, 6, 2), date(2026, 6, 2), "pm"),
            ],
            punches={
                "A1": [
                    "2026-06-01 13:30:00",
                    "2026-06-01 17:00:00",
                    "2026-06-02 07:00:00",
                    "2026-06-02 11:30:00",
                ]
            },
        )
    )
    assert day(summer, "2026-06-01")["symbol"] == "P"  # 270 min of leave against 210 worked
    assert day(summer, "2026-06-02")["symbol"] == "+"  # 270 worked against 210 of leave


def test_leave_over_holidays_and_weekends_counts_only_on_occurrences() -> None:
    leaves = [
        Leave("A1", "P", date(2026, 4, 27), date(2026, 5, 1)),
        Leave("A1", "P", date(2026, 3, 6), date(2026, 3, 9)),
    ]
    apr = engine.compute(month_input(2026, 4, leaves=leaves))
    assert day(apr, "2026-04-27") == {**BLANK, "symbol": "L"}
    assert day(apr, "2026-04-28") == {**BLANK, "symbol": "P", "leave": {"kind": "P", "value": 1.0}}
    assert day(apr, "2026-04-30") == {**BLANK, "symbol": "L"}
    assert row(apr)["totals"]["leave"] == {"P": 2.0} and row(apr)["totals"]["holidays"] == 2
    may = engine.compute(month_input(2026, 5, leaves=leaves))
    assert day(may, "2026-05-01") == {**BLANK, "symbol": "L"} and row(may)["totals"]["leave"] == {}
    mar = engine.compute(month_input(2026, 3, leaves=leaves))
    assert day(mar, "2026-03-07") == BLANK and day(mar, "2026-03-08") == BLANK  # weekend inside the range
    assert row(mar)["totals"]["leave"] == {"P": 2.0}  # Friday 6 and Monday 9


def test_punches_on_a_holiday_are_outside_shift() -> None:
    rep = engine.compute(month_input(2026, 4, punches={"A1": ["2026-04-30 08:00:00", "2026-04-30 12:00:00"]}))
    assert day(rep, "2026-04-30") == {
        **BLANK,
        "symbol": "L",
        "in": "08:00",
        "out": "12:00",
        "flags": ["outside_shift"],
    }
    assert row(rep)["totals"]["work_days"] == 0.0


def test_transfer_mid_month_one_row_per_unit() -> None:
    ca2 = Shift("ca2", "Ca 2", engine.parse_sessions("08:00-12:00,13:30-17:30"), engine.parse_days("Mon-Fri"))
    spans = {"A1": [Span(date(1900, 1, 1), "VP"), Span(date(2026, 3, 16), "TC")]}
    inp = month_input(
        2026,
        3,
        shifts=(HC, ca2),
        spans=spans,
        assignments=[
            Assignment("hc", date(2020, 1, 1), None, unit="VP"),
            Assignment("ca2", date(2020, 1, 1), None, unit="TC"),
        ],
        punches={
            "A1": ["2026-03-13 07:30:00", "2026-03-13 17:00:00", "2026-03-16 08:00:00", "2026-03-16 17:30:00"]
        },
    )
    rep = engine.compute(inp)
    assert [r["unit"] for r in rep["staff"]] == ["VP", "TC"]
    vp, tc = row(rep, unit="VP"), row(rep, unit="TC")
    assert vp["days"]["2026-03-13"]["value"] == 1.0 and vp["days"]["2026-03-16"] == BLANK
    assert tc["days"]["2026-03-13"] == BLANK
    # 08:00-17:30 on the TC shift: 240 + 240.
    assert tc["days"]["2026-03-16"] == {
        **BLANK,
        "symbol": "+",
        "in": "08:00",
        "out": "17:30",
        "worked_min": 480,
        "value": 1.0,
    }
    assert vp["totals"]["work_days"] == 1.0 and tc["totals"]["work_days"] == 1.0
    # VP: 10 weekdays 2-13 March, 9 absent; TC: 12 weekdays 16-31 March, 11 absent.
    assert sum("absent" in d["flags"] for d in vp["days"].values()) == 9
    assert sum("absent" in d["flags"] for d in tc["days"].values()) == 11
    only_tc = engine.compute(inp, unit="TC")
    assert [r["unit"] for r in only_tc["staff"]] == ["TC"]


def test_assignment_precedence() -> None:
    sang = Shift("sang", "Sáng", engine.parse_sessions("07:00-11:00"), engine.parse_days("Mon-Fri"))
    ca2 = Shift("ca2", "Ca 2", engine.parse_sessions("08:00-12:00,13:30-17:30"), engine.parse_days("Mon-Fri"))
    names = {"A1": "Nguyễn Văn An", "A2": "Trần Thị Bình"}
    taps = ["2026-03-19 07:30:00", "2026-03-19 17:00:00", "2026-03-20 07:30:00", "2026-03-20 17:00:00"]
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(HC, sang, ca2),
            names=names,
            assignments=[
                Assignment("hc", date(2020, 1, 1), None, unit="VP", seq=1),
                Assignment("sang", date(2026, 3, 10), None, staff="A1", seq=2),
                Assignment("ca2", date(2026, 3, 20), None, unit="VP", seq=3),
            ],
            punches={"A1": taps, "A2": taps},
        )
    )
    # A2 follows the unit: hc on the 19th, ca2 from the 20th (out 17:00 -> early 30; 240 + 210).
    assert day(rep, "2026-03-19", "A2")["worked_min"] == 480
    assert day(rep, "2026-03-20", "A2") == {
        **BLANK,
        "symbol": "+",
        "in": "07:30",
        "out": "17:00",
        "worked_min": 450,
        "early_min": 30,
        "value": 1.0,
        "flags": ["early"],
    }
    # A1's own assignment wins over the unit's later one: 07:00-11:00, whose window closes at 15:00, so
    # the 17:00 tap is outside it: in 07:30, a missing punch.
    assert day(rep, "2026-03-20", "A1") == {**BLANK, "in": "07:30", "flags": ["missing_punch"]}
    # On the 19th too (the staff assignment from the 10th), not hc.
    assert day(rep, "2026-03-19", "A1") == {**BLANK, "in": "07:30", "flags": ["missing_punch"]}


def test_three_sessions_give_exact_thirds() -> None:
    three = Shift(
        "x3",
        "3 ca",
        engine.parse_sessions("06:00-10:00,10:30-14:30,15:00-19:00"),
        engine.parse_days("Mon-Fri"),
    )
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(three,),
            assignments=[Assignment("x3", date(2026, 1, 1), None, unit="VP")],
            punches={
                "A1": [
                    "2026-03-02 06:00:00",
                    "2026-03-02 14:30:00",
                    "2026-03-03 06:00:00",
                    "2026-03-03 14:30:00",
                    "2026-03-04 06:00:00",
                    "2026-03-04 14:30:00",
                ]
            },
        )
    )
    assert day(rep, "2026-03-02")["value"] == 2 / 3
    assert row(rep)["totals"]["work_days"] == 2.0  # 3 x 2/3, exact


def test_a_session_counts_from_half_its_length() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            punches={
                "A1": [
                    "2026-03-02 09:30:00",
                    "2026-03-02 17:00:00",  # morning 120 of 240: counts
                    "2026-03-03 09:31:00",
                    "2026-03-03 17:00:00",
                ]
            },
        )
    )  # 119 of 240: does not
    assert day(rep, "2026-03-02")["value"] == 1.0 and day(rep, "2026-03-02")["late_min"] == 120
    assert day(rep, "2026-03-03")["value"] == 0.5 and day(rep, "2026-03-03")["symbol"] == "+"


def test_parsers_refuse_bad_schedules() -> None:
    import pytest

    for bad in ("07:30-11:30,11:00-17:00", "22:00-06:00,07:00-08:00", "7:30-11:30", "07:30-25:00", "07:30"):
        with pytest.raises(ValueError):
            engine.parse_sessions(bad)
    assert engine.parse_days("Sat-Mon") == frozenset({5, 6, 0})
    with pytest.raises(ValueError):
        engine.parse_days("Mon-Fry")


def _report_bytes(inp: engine.MonthInput) -> bytes:
    return json.dumps(engine.compute(inp), sort_keys=True, ensure_ascii=False).encode()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9 * 24 * 60 - 1), st.integers(0, 59)), min_size=0, max_size=25),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_reordering_or_duplicating_punches_never_changes_the_timesheet(
    offsets: list[tuple[int, int]], rnd: random.Random, night: bool
) -> None:
    base = ["2026-03-01 00:00:00"]
    from datetime import datetime, timedelta

    t0 = datetime.fromisoformat(base[0])
    times = [(t0 + timedelta(minutes=m, seconds=s)).isoformat(sep=" ") for m, s in offsets]
    shifts = (NIGHT,) if night else (HC,)
    assigns = [Assignment(shifts[0].id, date(2026, 1, 1), None, unit="VP")]
    ref = _report_bytes(month_input(2026, 3, shifts=shifts, assignments=assigns, punches={"A1": times}))
    shuffled = times + rnd.sample(times, k=len(times) // 2) if times else []
    rnd.shuffle(shuffled)
    assert (
        _report_bytes(month_input(2026, 3, shifts=shifts, assignments=assigns, punches={"A1": shuffled}))
        == ref
    )


def test_overtime_candidates() -> None:
    found: list[dict[str, object]] = []
    engine.compute(
        month_input(
            2026,
            3,
            punches={
                "A1": [
                    "2026-03-02 06:30:00", "2026-03-02 19:15:00",  # 60 before 07:30, 135 after 17:00
                    "2026-03-07 18:00:00", "2026-03-07 23:30:00",  # Saturday: 330, of which 90 after 22:00
                    "2026-03-14 21:00:00", "2026-03-15 01:00:00",  # two rest dates, one punch each: none
                    "2026-03-03 07:30:00", "2026-03-03 17:00:00",  # on schedule: no candidate
                ]
            },
        ),
        overtime=found,
    )  # fmt: skip
    assert found == [
        {"staff": "A1", "date": "2026-03-02", "kind": "weekday", "minutes": 195, "night_min": 0,
         "intervals": [["06:30", "07:30"], ["17:00", "19:15"]]},
        {"staff": "A1", "date": "2026-03-07", "kind": "weekend", "minutes": 330, "night_min": 90,
         "intervals": [["18:00", "23:30"]]},
    ]  # fmt: skip
