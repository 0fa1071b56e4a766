"""Contract edges the first tests did not reach (audit of ../shared/spec/attendance-v1.md §2-§5).
Every expected value was worked out by hand from the rules; the arithmetic is in the comments."""

from __future__ import annotations

from datetime import date

import pytest
from att_support import HC, NIGHT, day, month_input, row

from gateway.attendance import engine
from gateway.attendance.calendar import Override
from gateway.attendance.engine import Assignment, Leave, Shift

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
ALL_NIGHT = [Assignment("dem", date(2020, 1, 1), None, unit="VP")]


def test_duplicates_are_measured_from_the_previous_kept_punch_on_exact_times() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            punches={
                "A1": [
                    # Mon 2: 17:01:30 is 90 s after the kept 17:00:00 (dropped); 17:02:30 is 150 s
                    # after that kept punch (kept, although only 60 s after the dropped one).
                    "2026-03-02 07:29:00",
                    "2026-03-02 17:00:00",
                    "2026-03-02 17:01:30",
                    "2026-03-02 17:02:30",
                    # Tue 3: exactly 120 s apart: not "less than 120 s", so both are kept.
                    "2026-03-03 07:29:00",
                    "2026-03-03 07:31:00",
                    # Wed 4: 119.999999 s apart on the exact times: a duplicate, though the
                    # minutes (07:29, 07:30) differ.
                    "2026-03-04 07:29:00.000000",
                    "2026-03-04 07:30:59.999999",
                ]
            },
        )
    )
    # 07:29-17:02 covers 07:30-11:30 and 13:00-17:00: 240 + 240.
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "07:29",
        "out": "17:02",
        "worked_min": 480,
        "value": 1.0,
    }
    # in 07:29, out 07:31: overlap with 07:30-11:30 is 1 min (< 120: no session counts);
    # not late (07:29 <= 07:30); early = 17:00 - 07:31 = 9 h 29 min = 569; no part -> absent.
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "in": "07:29",
        "out": "07:31",
        "worked_min": 1,
        "early_min": 569,
        "flags": ["absent", "early"],
    }
    assert day(rep, "2026-03-04") == {**BLANK, "in": "07:29", "flags": ["missing_punch"]}


def test_grace_boundaries_exactly_at_the_grace_minutes() -> None:
    g = Shift("hc", "HC", HC.sessions, HC.days, grace_in=10, grace_out=15)
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(g,),
            punches={
                "A1": [
                    "2026-03-02 07:40:59",  # 07:40 = 07:30 + 10: not late
                    "2026-03-02 16:45:00",  # 16:45 = 17:00 - 15: not early
                    "2026-03-03 07:41:00",  # 07:41 > 07:40: late 11 (from the start, not the grace)
                    "2026-03-03 16:44:59",  # 16:44 < 16:45: early 16
                ]
            },
        )
    )
    # worked 230 + 225 = 455
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "07:40",
        "out": "16:45",
        "worked_min": 455,
        "value": 1.0,
    }
    # worked 229 + 224 = 453
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "07:41",
        "out": "16:44",
        "worked_min": 453,
        "late_min": 11,
        "early_min": 16,
        "value": 1.0,
        "flags": ["late", "early"],
    }
    t = row(rep)["totals"]
    assert (t["late_count"], t["late_min"], t["early_count"], t["early_min"]) == (1, 11, 1, 16)


def test_window_edges_two_hours_before_four_hours_after() -> None:
    # hc on a weekday owns [05:30, 21:00]; a punch outside it belongs to no occurrence, so the
    # day's occurrence sees only the other punch.
    rep = engine.compute(
        month_input(
            2026,
            3,
            punches={
                "A1": [
                    "2026-03-02 05:30:00",
                    "2026-03-02 21:00:00",
                    "2026-03-03 05:29:00",
                    "2026-03-03 17:00:00",
                    "2026-03-04 07:30:00",
                    "2026-03-04 21:01:00",
                ]
            },
        )
    )
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "+",
        "in": "05:30",
        "out": "21:00",
        "worked_min": 480,
        "value": 1.0,
    }
    assert day(rep, "2026-03-03") == {**BLANK, "in": "17:00", "flags": ["missing_punch"]}
    assert day(rep, "2026-03-04") == {**BLANK, "in": "07:30", "flags": ["missing_punch"]}
    # A night shift of Tue 3 March owns 20:00 on the 3rd to 10:00 on the 4th.
    night = engine.compute(
        month_input(
            2026,
            3,
            shifts=(NIGHT,),
            assignments=ALL_NIGHT,
            punches={"A1": ["2026-03-03 20:00:00", "2026-03-04 10:00:00", "2026-03-05 10:01:00"]},
        )
    )
    # 20:00 .. +1 10:00 covers 22:00-06:00: 480.
    assert day(night, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "20:00",
        "out": "+1 10:00",
        "worked_min": 480,
        "value": 1.0,
    }
    # 10:01 on the 5th is after the window of the 4th's shift (closes 10:00 on the 5th) and
    # before the 5th's (opens 20:00): no occurrence holds it; the 4th has no punch at all.
    assert day(night, "2026-03-04") == {**BLANK, "flags": ["absent"]}
    assert day(night, "2026-03-05") == {**BLANK, "flags": ["absent"]}


def test_night_shift_on_the_last_day_of_the_month() -> None:
    punches = {"A1": ["2026-03-31 21:50:00", "2026-04-01 06:07:00"]}
    mar = engine.compute(month_input(2026, 3, shifts=(NIGHT,), assignments=ALL_NIGHT, punches=punches))
    # Tue 31 March 22:00 - 1 April 06:00 is worked whole: 480 min, reported under the 31st.
    assert day(mar, "2026-03-31") == {
        **BLANK,
        "symbol": "+",
        "in": "21:50",
        "out": "+1 06:07",
        "worked_min": 480,
        "value": 1.0,
    }
    apr = engine.compute(month_input(2026, 4, shifts=(NIGHT,), assignments=ALL_NIGHT, punches=punches))
    # The 06:07 punch is the March shift's out: April 1st's own shift has none.
    assert day(apr, "2026-04-01") == {**BLANK, "flags": ["absent"]}
    assert row(apr)["totals"]["work_days"] == 0.0


def test_half_day_leave_late_and_early_against_the_remaining_session() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            leaves=[
                Leave("A1", "P", date(2026, 3, 2), date(2026, 3, 2), "am"),
                Leave("A1", "H", date(2026, 3, 3), date(2026, 3, 3), "pm"),
                Leave("A1", "P", date(2026, 3, 4), date(2026, 3, 4), "am"),
            ],
            punches={
                "A1": [
                    "2026-03-02 13:10:00",  # am on leave: late against 13:00 -> 10
                    "2026-03-02 16:50:00",  # early against 17:00 -> 10
                    "2026-03-03 07:30:00",
                    "2026-03-03 11:20:00",  # pm on leave: early against 11:30 -> 10
                    "2026-03-04 13:00:00",  # forgot to check out on a half day
                ]
            },
        )
    )
    # pm worked 13:10-16:50 = 220 >= 120: counts 0.5; leave am 0.5. Parts: 240 leave (am) vs 240
    # worked (pm): a tie, the earlier (am, P) wins.
    assert day(rep, "2026-03-02") == {
        **BLANK,
        "symbol": "P",
        "in": "13:10",
        "out": "16:50",
        "worked_min": 220,
        "late_min": 10,
        "early_min": 10,
        "value": 0.5,
        "leave": {"kind": "P", "value": 0.5},
        "flags": ["late", "early"],
    }
    # am worked 07:30-11:20 = 230; the tie goes to the earlier part: the worked morning.
    assert day(rep, "2026-03-03") == {
        **BLANK,
        "symbol": "+",
        "in": "07:30",
        "out": "11:20",
        "worked_min": 230,
        "early_min": 10,
        "value": 0.5,
        "leave": {"kind": "H", "value": 0.5},
        "flags": ["early"],
    }
    # One punch: no work counted, the leave half stays (its symbol is the only part).
    assert day(rep, "2026-03-04") == {
        **BLANK,
        "symbol": "P",
        "in": "13:00",
        "leave": {"kind": "P", "value": 0.5},
        "flags": ["missing_punch"],
    }
    t = row(rep)["totals"]
    assert t["work_days"] == 1.0 and t["leave"] == {"P": 1.0, "H": 0.5} and t["missing_punch"] == 1


def test_leave_over_new_year_2026_holiday_swapped_friday_and_swap_saturday() -> None:
    # P from Thu 1 to Sat 10 January 2026: 1 Jan is a public holiday (L), Fri 2 Jan a swapped day
    # off, 3-4 the weekend, 5-9 Mon-Fri leave (5), Sat 10 Jan the compensatory working day: an
    # occurrence of the Mon-Fri shift, so leave (6 in all).
    rep = engine.compute(month_input(2026, 1, leaves=[Leave("A1", "P", date(2026, 1, 1), date(2026, 1, 10))]))
    assert day(rep, "2026-01-01") == {**BLANK, "symbol": "L"}
    assert day(rep, "2026-01-02") == BLANK
    assert day(rep, "2026-01-03") == BLANK and day(rep, "2026-01-04") == BLANK
    for d in range(5, 11):
        assert day(rep, f"2026-01-{d:02d}") == {**BLANK, "symbol": "P", "leave": {"kind": "P", "value": 1.0}}
    assert day(rep, "2026-01-11") == BLANK
    assert day(rep, "2026-01-12") == {**BLANK, "flags": ["absent"]}
    t = row(rep)["totals"]
    assert t["leave"] == {"P": 6.0} and t["holidays"] == 1 and t["work_days"] == 0.0


def test_observed_holidays_in_years_without_an_announced_table() -> None:
    # 2028: Sun 30 April -> the next working day after Mon 1 May (itself a holiday) is Tue 2 May.
    may = engine.compute(month_input(2028, 5))
    assert day(may, "2028-05-01") == {**BLANK, "symbol": "L"}
    assert day(may, "2028-05-02") == {**BLANK, "symbol": "L"}
    assert day(may, "2028-05-03") == {**BLANK, "flags": ["absent"]}
    assert row(may)["totals"]["holidays"] == 2
    # Sat 1 January 2028 -> Mon 3 January.
    jan = engine.compute(month_input(2028, 1))
    assert day(jan, "2028-01-01") == BLANK
    assert day(jan, "2028-01-03") == {**BLANK, "symbol": "L"}
    # Sat 2 September 2028 -> Mon 4 September; Fri 1 September is the adjacent day.
    sep = engine.compute(month_input(2028, 9))
    assert [d for d, v in row(sep)["days"].items() if v["symbol"] == "L"] == ["2028-09-01", "2028-09-04"]


def test_calendar_dayoff_and_workday_with_punches() -> None:
    rep = engine.compute(
        month_input(
            2026,
            3,
            overrides=[Override(date(2026, 3, 11), "dayoff", "Nghỉ"), Override(date(2026, 3, 14), "workday")],
            punches={
                "A1": [
                    "2026-03-11 08:00:00",  # a day off: outside any occurrence
                    "2026-03-11 10:00:00",
                    "2026-03-14 07:30:00",  # the Saturday worked: a full day
                    "2026-03-14 17:00:00",
                ]
            },
        )
    )
    assert day(rep, "2026-03-11") == {**BLANK, "in": "08:00", "out": "10:00", "flags": ["outside_shift"]}
    assert day(rep, "2026-03-14") == {
        **BLANK,
        "symbol": "+",
        "in": "07:30",
        "out": "17:00",
        "worked_min": 480,
        "value": 1.0,
    }
    # March 2026: 22 weekdays - the day off + the Saturday = 22 occurrences; 21 absent, 1 worked.
    days = row(rep)["days"].values()
    assert sum("absent" in d["flags"] for d in days) == 21
    assert row(rep)["totals"]["holidays"] == 0


def test_later_from_wins_among_a_persons_assignments() -> None:
    sang = Shift("sang", "Sáng", engine.parse_sessions("07:00-11:00"), engine.parse_days("Mon-Fri"))
    rep = engine.compute(
        month_input(
            2026,
            3,
            shifts=(HC, sang),
            assignments=[
                Assignment("hc", date(2026, 1, 1), None, staff="A1", seq=1),
                Assignment("sang", date(2026, 3, 10), date(2026, 3, 13), staff="A1", seq=2),
                # The unit's later assignment never beats a person's own.
                Assignment("sang", date(2026, 3, 16), None, unit="VP", seq=3),
            ],
            punches={
                "A1": [f"2026-03-{d} {t}" for d in ("09", "10", "16") for t in ("07:00:00", "11:00:00")]
            },
        )
    )
    # 9th: hc, 07:00-11:00 -> 210 of the morning (07:30-11:00): counts; early 17:00 - 11:00 = 360.
    assert day(rep, "2026-03-09")["value"] == 0.5 and day(rep, "2026-03-09")["early_min"] == 360
    # 10th: sang (07:00-11:00) worked whole: 240, value 1.
    assert day(rep, "2026-03-10") == {
        **BLANK,
        "symbol": "+",
        "in": "07:00",
        "out": "11:00",
        "worked_min": 240,
        "value": 1.0,
    }
    # 16th: the sang range ended on the 13th: hc again, like the 9th.
    assert day(rep, "2026-03-16")["early_min"] == 360


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Mon-Fri", {0, 1, 2, 3, 4}),
        ("Mon-Sun", {0, 1, 2, 3, 4, 5, 6}),
        ("Mon,Wed,Fri", {0, 2, 4}),
        ("Sat-Mon", {5, 6, 0}),
        ("mon, wed", {0, 2}),
        ("Mon-Wed,Sat", {0, 1, 2, 5}),
        ("Sun", {6}),
    ],
)
def test_days_forms(text: str, days: set[int]) -> None:
    assert engine.parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "Mon-", "Funday", "Mon;Tue", "Monday-Friday", "1-5"])
def test_days_refused(text: str) -> None:
    with pytest.raises(ValueError):
        engine.parse_days(text)


def test_sessions_crossing_midnight() -> None:
    assert engine.parse_sessions("22:00-06:00") == ((1320, 1800),)
    assert engine.parse_sessions("18:00-22:00,23:00-03:00") == ((1080, 1320), (1380, 1620))
    for bad in ("22:00-02:00,03:00-06:00", "13:00-17:00,07:30-11:30", "07:30-11:30,", "7:30-11:30"):
        with pytest.raises(ValueError):
            engine.parse_sessions(bad)


def test_round_the_clock_shift_runs_on_holidays_only_with_the_option() -> None:
    sessions, days = engine.parse_sessions("06:00-18:00"), engine.parse_days("Mon-Sun")
    overrides = [Override(date(2026, 3, 10), "holiday", "Lễ"), Override(date(2026, 3, 11), "dayoff", "Nghỉ")]
    taps = {"A1": ["2026-03-10 05:55:00", "2026-03-10 18:02:00"]}
    assign = [Assignment("bv", date(2020, 1, 1), None, unit="VP")]

    def month(on: bool) -> tuple[dict[str, object], list[dict[str, object]]]:
        ot: list[dict[str, object]] = []
        shift = Shift("bv", "Bảo vệ", sessions, days, on_holidays=on)
        rep = engine.compute(
            month_input(2026, 3, shifts=(shift,), assignments=assign, overrides=overrides, punches=taps),
            overtime=ot,
        )
        return rep, ot

    off, ot_off = month(False)
    # Default: no occurrence on the holiday (L, the taps outside any shift) nor on the day off.
    assert day(off, "2026-03-10") == {
        **BLANK,
        "symbol": "L",
        "in": "05:55",
        "out": "18:02",
        "flags": ["outside_shift"],
    }
    assert day(off, "2026-03-11") == BLANK
    # The whole span is a holiday overtime candidate: 05:55-18:02 = 727 min, 5 of them before 06:00.
    assert [(o["date"], o["kind"], o["minutes"], o["night_min"]) for o in ot_off] == [
        ("2026-03-10", "holiday", 727, 5)
    ]
    on, ot_on = month(True)
    # With the option the shift runs: 06:00-18:00 worked whole (720), value 1.
    assert day(on, "2026-03-10") == {
        **BLANK,
        "symbol": "+",
        "in": "05:55",
        "out": "18:02",
        "worked_min": 720,
        "value": 1.0,
    }
    assert day(on, "2026-03-11") == {**BLANK, "flags": ["absent"]}  # the day off runs too: nobody came
    # Outside the schedule: 05:55-06:00 (5, night) and 18:00-18:02 (2), holiday kind.
    assert [(o["date"], o["kind"], o["minutes"], o["night_min"]) for o in ot_on] == [
        ("2026-03-10", "holiday", 7, 5)
    ]
    # Still a public holiday on the person's DAYS in both cases.
    assert row(on)["totals"]["holidays"] == 1 == row(off)["totals"]["holidays"]
    assert row(on)["totals"]["work_days"] == 1.0 and row(off)["totals"]["work_days"] == 0.0


def test_listed_only_with_an_assignment_or_a_punch_in_the_month() -> None:
    names = {"A1": "Có ca", "B2": "Chấm ngày 1/4", "C3": "Chấm ngày 31/3", "D4": "Không gì"}
    inp = month_input(
        2026,
        3,
        names=names,
        assignments=[Assignment("hc", date(2020, 1, 1), None, staff="A1")],
        punches={"B2": ["2026-04-01 08:00:00"], "C3": ["2026-03-31 08:00:00"], "D4": ["2026-02-28 08:00:00"]},
    )
    # B2's only punch is in April, D4's in February: neither is listed in March.
    assert [r["staff"] for r in engine.compute(inp)["staff"]] == ["A1", "C3"]
    c3 = day(engine.compute(inp), "2026-03-31", "C3")
    assert c3 == {**BLANK, "in": "08:00", "flags": ["outside_shift"]}


def test_call_back_outside_the_window_is_an_overtime_candidate_of_that_day() -> None:
    found: list[dict[str, object]] = []
    engine.compute(
        month_input(
            2026,
            3,
            punches={
                "A1": [
                    # Mon 2: on schedule, then called back 22:00-23:30 (the window closed at 21:00).
                    "2026-03-02 07:30:00",
                    "2026-03-02 17:00:00",
                    "2026-03-02 22:00:00",
                    "2026-03-02 23:30:00",
                    # Tue 3: 30 before, 30 after the sessions, and 21:30-22:30 outside the window.
                    "2026-03-03 07:00:00",
                    "2026-03-03 17:30:00",
                    "2026-03-03 21:30:00",
                    "2026-03-03 22:30:00",
                ]
            },
        ),
        overtime=found,
    )
    assert found == [
        # 22:00-23:30: 90 min, all between 22:00 and 06:00.
        {"staff": "A1", "date": "2026-03-02", "kind": "weekday", "minutes": 90, "night_min": 90,
         "intervals": [["22:00", "23:30"]]},
        # 30 + 30 + 60 = 120; night: 22:00-22:30 = 30.
        {"staff": "A1", "date": "2026-03-03", "kind": "weekday", "minutes": 120, "night_min": 30,
         "intervals": [["07:00", "07:30"], ["17:00", "17:30"], ["21:30", "22:30"]]},
    ]  # fmt: skip
