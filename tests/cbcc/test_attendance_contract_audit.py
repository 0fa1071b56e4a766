"""An auditor's scenarios for contract attendance-v1 (/work/shared/spec/attendance-v1.md), run through
the contract's own commands (§2) on a fresh gateway database.

Every expected value below was computed by hand from the contract's words and the calendar facts of
the context document (attendance-vn.md), never read back from the engine. The working is in the
comments next to each value. Where the contract leaves a reading open, the comment says ``READING``
and names the paragraph of docs/attendance.md that fixes our choice.

Shifts used (grace in minutes):
- ``hc``   07:30-11:30,13:00-17:00 Mon-Fri, grace-in 5, grace-out 5 (two sessions of 240 min)
- ``lech`` 07:00-11:00,13:00-16:00 Mon-Fri, grace 0 (sessions of 240 and 180 min)
- ``dem``  22:00-06:00 Mon-Fri, grace 0 (one session of 480 min crossing midnight)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cbcc.app import app

STAFF = """staff_code,full_name,agency_code,unit,position
CB01,Nguyễn Văn An,000.00.31.H26,VP,Chuyên viên
CB02,Trần Thị Bình,000.00.31.H26,VP,Trưởng phòng
CB03,Lê Văn Cường,000.00.31.H26,TC,Chuyên viên
CB04,Phạm Thị Dung,000.00.31.H26,KT,Kế toán
CB05,Hoàng Văn Em,000.00.31.H26,KT,Kế toán
"""

Run = Callable[..., Any]


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Run:
    """A fresh gateway database (SQLite, then PostgreSQL) with the staff records above and the
    three shifts."""
    env = {"CBCC_DATABASE__URL": db_url, "CBCC_LANG": "en"}

    def run(*args: str, code: int = 0) -> Any:
        res = CliRunner().invoke(app, list(args), env=env)
        assert res.exit_code == code, (args, res.exit_code, res.output, res.exception)
        return res

    run.url = db_url  # type: ignore[attr-defined]
    (tmp_path / "staff.csv").write_text(STAFF, encoding="utf-8")
    run("sync", "import", str(tmp_path / "staff.csv"))
    shift = ("attendance", "shift", "set")
    run(
        *shift,
        "hc",
        "--name",
        "Hành chính",
        "--sessions",
        "07:30-11:30,13:00-17:00",
        "--days",
        "Mon-Fri",
        "--grace-in",
        "5",
        "--grace-out",
        "5",
    )
    run(*shift, "lech", "--name", "Lệch", "--sessions", "07:00-11:00,13:00-16:00", "--days", "Mon-Fri")
    run(*shift, "dem", "--name", "Ca đêm", "--sessions", "22:00-06:00", "--days", "Mon-Fri")
    return run


def punches(cli: Run, tmp_path: Path, rows: list[tuple[str, str]], name: str = "p.csv") -> Any:
    f = tmp_path / name
    f.write_text("staff,time,terminal\n" + "".join(f"{s},{t},T1\n" for s, t in rows), encoding="utf-8")
    return cli("attendance", "import-punches", str(f))


def report(cli: Run, month: str, *extra: str) -> dict[str, Any]:
    raw = cli("report", "attendance", "--month", month, "--format", "json", "--out", "-", *extra).stdout_bytes
    return json.loads(raw)  # type: ignore[no-any-return]


def person(rep: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in rep["staff"] if r["staff"] == code)


def day(
    symbol: str = "",
    in_: str | None = None,
    out: str | None = None,
    worked: int = 0,
    late: int = 0,
    early: int = 0,
    value: float = 0.0,
    leave: dict[str, Any] | None = None,
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "in": in_,
        "out": out,
        "worked_min": worked,
        "late_min": late,
        "early_min": early,
        "value": value,
        "leave": leave,
        "flags": sorted(flags),
    }


def got(p: dict[str, Any], date: str) -> dict[str, Any]:
    """One day of the report with only the contract's fields; flags as a set (§5 fixes no order)."""
    d = p["days"][date]
    keys = ("symbol", "in", "out", "worked_min", "late_min", "early_min", "value", "leave", "flags")
    return {k: (sorted(d[k]) if k == "flags" else d[k]) for k in keys}


def totals(
    work_days: float,
    leave: dict[str, float] | None = None,
    late_count: int = 0,
    late_min: int = 0,
    early_count: int = 0,
    early_min: int = 0,
    missing_punch: int = 0,
    holidays: int = 0,
) -> dict[str, Any]:
    return {
        "work_days": work_days,
        "leave": leave or {},
        "late_count": late_count,
        "late_min": late_min,
        "early_count": early_count,
        "early_min": early_min,
        "missing_punch": missing_punch,
        "holidays": holidays,
    }


def got_totals(p: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "work_days",
        "leave",
        "late_count",
        "late_min",
        "early_count",
        "early_min",
        "missing_punch",
        "holidays",
    )
    return {k: p["totals"][k] for k in keys}


ABSENT = day(flags=("absent",))  # a working day with no part (rule 10)
REST = day()  # a rest day / day off / date without occurrence: symbol "", nothing else
PLUS_FULL = dict(symbol="+", value=1.0)


def test_duplicates_truncation_grace_day_value_missing_punch(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    punches(
        cli,
        tmp_path,
        [
            # Mon 2 Mar: the chain 0 s, 100 s, 200 s, 250 s at the end of the day. Rule 4 compares with
            # the previous KEPT punch: 17:00:00 kept; 17:01:40 (+100 s) dup; 17:03:20 (+200 s from the
            # kept 17:00:00) kept; 17:04:10 (+50 s from the kept 17:03:20) dup. out = 17:03.
            ("CB01", "2026-03-02T07:29:10+07:00"),
            ("CB01", "2026-03-02T17:00:00+07:00"),
            ("CB01", "2026-03-02T17:01:40+07:00"),
            ("CB01", "2026-03-02T17:03:20+07:00"),
            ("CB01", "2026-03-02T17:04:10+07:00"),
            # Tue 3 Mar: 17:00:59 then 17:02:01 = 62 s apart -> dup (on exact times, rule 1), although the
            # truncated minutes 17:00 and 17:02 are 120 s apart. in 07:31:59 -> 07:31 (not > 07:35).
            ("CB01", "2026-03-03T07:31:59+07:00"),
            ("CB01", "2026-03-03T17:00:59+07:00"),
            ("CB01", "2026-03-03T17:02:01+07:00"),
            # Wed 4 Mar: exactly at grace both ends: 07:35 is not > 07:35; 16:55 is not < 16:55.
            ("CB01", "2026-03-04T07:35:00+07:00"),
            ("CB01", "2026-03-04T16:55:00+07:00"),
            # Thu 5 Mar: 07:35:59 truncates to 07:35 (not late); 16:54:59 -> 16:54 < 16:55: early 6.
            ("CB01", "2026-03-05T07:35:59+07:00"),
            ("CB01", "2026-03-05T16:54:59+07:00"),
            # Fri 6 Mar: 07:36 > 07:35: late 6 (measured from 07:30, not from the grace end).
            ("CB01", "2026-03-06T07:36:00+07:00"),
            ("CB01", "2026-03-06T16:55:00+07:00"),
            # Mon 9 Mar: rule 8 at exactly half: 09:30-11:30 = 120 = 240/2, 13:00-15:00 = 120 -> 1.0.
            ("CB01", "2026-03-09T09:30:00+07:00"),
            ("CB01", "2026-03-09T15:00:00+07:00"),
            # Tue 10 Mar: 09:31-11:30 = 119 < 120 -> morning does not count; afternoon 120 counts.
            ("CB01", "2026-03-10T09:31:00+07:00"),
            ("CB01", "2026-03-10T15:00:00+07:00"),
            # Wed 11 Mar: afternoon 13:00-14:59 = 119 -> only the morning counts.
            ("CB01", "2026-03-11T07:30:00+07:00"),
            ("CB01", "2026-03-11T14:59:00+07:00"),
            # Thu 12 Mar: nothing -> absent.
            # Fri 13 Mar: one punch, late by the clock, but rule 5: no late/early with a single punch.
            ("CB01", "2026-03-13T08:00:00+07:00"),
            # Mon 16 Mar: two punches 119 s apart (07:59:59, 08:01:58) -> one kept punch: missing_punch.
            ("CB01", "2026-03-16T07:59:59+07:00"),
            ("CB01", "2026-03-16T08:01:58+07:00"),
            # Tue 17 Mar: exactly 120 s apart is not a duplicate ("less than 120 s"): in 07:00, out 07:02.
            ("CB01", "2026-03-17T07:00:00+07:00"),
            ("CB01", "2026-03-17T07:02:00+07:00"),
        ],
    )
    p = person(report(cli, "2026-03"), "CB01")
    assert len(p["days"]) == 31 and min(p["days"]) == "2026-03-01" and max(p["days"]) == "2026-03-31"
    assert got(p, "2026-03-01") == REST  # Sunday
    # 07:29-17:03: overlap 07:30-11:30 (240) + 13:00-17:00 (240) = 480.
    assert got(p, "2026-03-02") == day("+", "07:29", "17:03", 480, value=1.0)
    # 07:31-17:00: 239 + 240 = 479.
    assert got(p, "2026-03-03") == day("+", "07:31", "17:00", 479, value=1.0)
    # 07:35-16:55: 235 + 235 = 470.
    assert got(p, "2026-03-04") == day("+", "07:35", "16:55", 470, value=1.0)
    # 07:35-16:54: 235 + 234 = 469; early = 17:00 - 16:54 = 6.
    assert got(p, "2026-03-05") == day("+", "07:35", "16:54", 469, early=6, value=1.0, flags=("early",))
    # 07:36-16:55: 234 + 235 = 469; late = 07:36 - 07:30 = 6.
    assert got(p, "2026-03-06") == day("+", "07:36", "16:55", 469, late=6, value=1.0, flags=("late",))
    # 120 + 120 = 240; late 09:30-07:30 = 120; early 17:00-15:00 = 120; both sessions exactly half.
    assert got(p, "2026-03-09") == day(
        "+", "09:30", "15:00", 240, late=120, early=120, value=1.0, flags=("late", "early")
    )
    # 119 + 120 = 239; late 121; early 120; value 0.5.
    assert got(p, "2026-03-10") == day(
        "+", "09:31", "15:00", 239, late=121, early=120, value=0.5, flags=("late", "early")
    )
    # 240 + 119 = 359; early 17:00 - 14:59 = 121; value 0.5.
    assert got(p, "2026-03-11") == day("+", "07:30", "14:59", 359, early=121, value=0.5, flags=("early",))
    assert got(p, "2026-03-12") == ABSENT
    # READING (docs/attendance.md "missing punch"): rule 5 names only missing_punch for this day.
    assert got(p, "2026-03-13") == day("", "08:00", None, flags=("missing_punch",))
    assert got(p, "2026-03-16") == day("", "07:59", None, flags=("missing_punch",))
    # 07:00-07:02: overlap with 07:30-11:30 is empty: worked 0, value 0; early 17:00-07:02 = 598.
    # No worked session and no leave: no part -> symbol "" and absent (rule 10).
    assert got(p, "2026-03-17") == day("", "07:00", "07:02", 0, early=598, flags=("early", "absent"))
    # Totals: value 1+1+1+1+1+1+0.5+0.5 = 7.0; late on 6, 9, 10: 6+120+121 = 247; early on 5, 9, 10,
    # 11, 17: 6+120+120+121+598 = 965; missing punch on 13 and 16.
    assert got_totals(p) == totals(
        7.0, late_count=3, late_min=247, early_count=5, early_min=965, missing_punch=2
    )

    # HR adds the missing out on 13 Mar: 08:00-17:10: 210 + 240 = 450; late 08:00-07:30 = 30.
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB01",
        "--add-punch",
        "2026-03-13T17:10:00+07:00",
        "--reason",
        "quên",
    )
    # HR voids 17:00:59 on 3 Mar: 17:02:01 is now 90 min+ after the previous kept 07:31:59 -> kept: out 17:02.
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB01",
        "--void-punch",
        "2026-03-03T17:00:59+07:00",
        "--reason",
        "sai",
    )
    p = person(report(cli, "2026-03"), "CB01")
    assert got(p, "2026-03-13") == day(
        "+", "08:00", "17:10", 450, late=30, value=1.0, flags=("late", "corrected")
    )
    assert got(p, "2026-03-03") == day("+", "07:31", "17:02", 479, value=1.0, flags=("corrected",))
    assert got_totals(p) == totals(
        8.0, late_count=4, late_min=277, early_count=5, early_min=965, missing_punch=1
    )
    # A correction TIME without an offset is refused (§2: every TIME carries its offset) and changes nothing.
    before = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB01",
        "--add-punch",
        "2026-03-16T17:00:00",
        "--reason",
        "x",
        code=1,
    )
    after = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    assert after == before


def test_night_shift_window_and_outside_shift(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--staff", "CB02", "--shift", "dem", "--from", "2026-03-01")
    punches(
        cli,
        tmp_path,
        [
            # Tue 3 Mar occurrence, window 20:00 3 Mar -> 10:00 4 Mar.
            ("CB02", "2026-03-03T21:50:00+07:00"),
            ("CB02", "2026-03-04T06:05:00+07:00"),
            # Wed 4 Mar: in 22:10 (late 10, grace 0); out 09:59:30 on 5 Mar, still inside the window.
            ("CB02", "2026-03-04T22:10:00+07:00"),
            ("CB02", "2026-03-05T09:59:30+07:00"),
            # Thu 5 Mar: one punch only.
            ("CB02", "2026-03-05T21:00:00+07:00"),
            # Fri 6 Mar: out 05:30 on Saturday: early 30.
            ("CB02", "2026-03-06T22:00:00+07:00"),
            ("CB02", "2026-03-07T05:30:00+07:00"),
            # Sat 7 Mar afternoon: outside any occurrence (Fri's window ended at 10:00 Sat).
            ("CB02", "2026-03-07T12:00:00+07:00"),
            ("CB02", "2026-03-07T15:00:00+07:00"),
            # The same instant written in UTC is the same punch (rule 4 is on exact times: 0 s -> dup).
            ("CB02", "2026-03-03T14:50:00Z"),
        ],
    )
    p = person(report(cli, "2026-03"), "CB02")
    assert got(p, "2026-03-02") == ABSENT  # Monday's night: no punch at all
    # 21:50 -> +1 06:05: overlap with 22:00-06:00 = 480.
    assert got(p, "2026-03-03") == day("+", "21:50", "+1 06:05", 480, value=1.0)
    # 22:10 -> +1 09:59: overlap 22:10-06:00 = 470; late 10.
    assert got(p, "2026-03-04") == day("+", "22:10", "+1 09:59", 470, late=10, value=1.0, flags=("late",))
    assert got(p, "2026-03-05") == day("", "21:00", None, flags=("missing_punch",))
    # 22:00 -> +1 05:30: 450 >= 240: value 1.0; early 06:00 - 05:30 = 30.
    assert got(p, "2026-03-06") == day("+", "22:00", "+1 05:30", 450, early=30, value=1.0, flags=("early",))
    # Saturday: no occurrence; the afternoon punches are shown with outside_shift (rule 11).
    assert got(p, "2026-03-07") == day("", "12:00", "15:00", flags=("outside_shift",))
    assert got(p, "2026-03-08") == REST
    assert got_totals(p) == totals(
        3.0, late_count=1, late_min=10, early_count=1, early_min=30, missing_punch=1
    )


def test_half_day_leave_and_leave_over_rest_days(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    cli("attendance", "assign", "--unit", "TC", "--shift", "hc", "--from", "2026-01-01")
    cli("attendance", "assign", "--staff", "CB03", "--shift", "lech", "--from", "2026-03-01")
    leave = ("attendance", "leave", "add", "--staff")
    cli(
        *leave,
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-16",
        "--to",
        "2026-03-16",
        "--half",
        "am",
        "--reason",
        "a",
    )
    cli(
        *leave,
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-17",
        "--to",
        "2026-03-17",
        "--half",
        "pm",
        "--reason",
        "b",
    )
    cli(
        *leave,
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-18",
        "--to",
        "2026-03-19",
        "--half",
        "am",
        "--reason",
        "c",
    )
    cli(
        *leave,
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-20",
        "--to",
        "2026-03-20",
        "--half",
        "pm",
        "--reason",
        "d",
    )
    # Thu 26 - Mon 30 Mar, with Fri 27 made a day off: leave only on 26 and 30 (rule 9).
    cli("attendance", "calendar", "set", "2026-03-27", "--dayoff", "Nghỉ bù")
    cli(*leave, "CB01", "--kind", "P", "--from", "2026-03-26", "--to", "2026-03-30", "--reason", "e")
    cli(*leave, "CB01", "--kind", "Ô", "--from", "2026-03-31", "--to", "2026-03-31", "--reason", "ốm")
    cli(
        *leave,
        "CB03",
        "--kind",
        "P",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-02",
        "--half",
        "pm",
        "--reason",
        "f",
    )
    cli(
        *leave,
        "CB03",
        "--kind",
        "P",
        "--from",
        "2026-03-03",
        "--to",
        "2026-03-03",
        "--half",
        "am",
        "--reason",
        "g",
    )
    punches(
        cli,
        tmp_path,
        [
            ("CB01", "2026-03-16T12:55:00+07:00"),  # am leave, pm worked
            ("CB01", "2026-03-16T17:02:00+07:00"),
            ("CB01", "2026-03-17T07:30:00+07:00"),  # pm leave, am worked
            ("CB01", "2026-03-17T11:35:00+07:00"),
            # 18 Mar: am leave, nothing worked.
            ("CB01", "2026-03-19T13:20:00+07:00"),  # am leave, late on the afternoon
            ("CB01", "2026-03-19T17:00:00+07:00"),
            ("CB01", "2026-03-20T07:30:00+07:00"),  # pm leave, early on the morning
            ("CB01", "2026-03-20T11:00:00+07:00"),
            ("CB03", "2026-03-02T07:00:00+07:00"),  # lech: pm leave (180), am worked (240)
            ("CB03", "2026-03-02T11:00:00+07:00"),
            ("CB03", "2026-03-03T13:00:00+07:00"),  # lech: am leave (240), pm worked (180)
            ("CB03", "2026-03-03T16:00:00+07:00"),
            ("CB03", "2026-03-04T13:00:00+07:00"),  # lech: pm 13:00-14:30 = 90 = 180/2
            ("CB03", "2026-03-04T14:30:00+07:00"),
        ],
    )
    rep = report(cli, "2026-03")
    a = person(rep, "CB01")
    half_p = {"kind": "P", "value": 0.5}
    # 16: worked 13:00-17:00 = 240 -> 0.5; not late: the day's first session to work starts 13:00 (rule 7).
    # Symbol: P (am, 240) vs + (pm, 240): tie -> the earlier part, am -> "P".
    assert got(a, "2026-03-16") == day("P", "12:55", "17:02", 240, value=0.5, leave=half_p)
    # 17: worked 240 -> 0.5; the last session to work ends 11:30: 11:35 is not early. Tie -> "+" (am).
    assert got(a, "2026-03-17") == day("+", "07:30", "11:35", 240, value=0.5, leave=half_p)
    # 18: only the leave half: symbol P, no punches, not absent (the day has a part).
    assert got(a, "2026-03-18") == day("P", leave=half_p)
    # 19: late = 13:20 - 13:00 = 20 (> 13:05); worked 220 >= 120 -> 0.5.
    assert got(a, "2026-03-19") == day(
        "P", "13:20", "17:00", 220, late=20, value=0.5, leave=half_p, flags=("late",)
    )
    # 20: early = 11:30 - 11:00 = 30 (< 11:25); worked 210 -> 0.5.
    assert got(a, "2026-03-20") == day(
        "+", "07:30", "11:00", 210, early=30, value=0.5, leave=half_p, flags=("early",)
    )
    full_p = {"kind": "P", "value": 1.0}
    assert got(a, "2026-03-26") == day("P", leave=full_p)
    assert got(a, "2026-03-27") == REST  # day off inside the leave range: not leave
    assert got(a, "2026-03-28") == REST  # Saturday inside the range: not leave
    assert got(a, "2026-03-29") == REST
    assert got(a, "2026-03-30") == day("P", leave=full_p)
    assert got(a, "2026-03-31") == day("Ô", leave={"kind": "Ô", "value": 1.0})
    # work_days 0.5 * 4 = 2.0; P = 0.5 * 5 + 1 + 1 = 4.5; Ô 1.0; late 19 (20); early 20 (30).
    assert got_totals(a) == totals(
        2.0, {"P": 4.5, "Ô": 1.0}, late_count=1, late_min=20, early_count=1, early_min=30
    )
    c = person(rep, "CB03")  # the staff assignment (lech) wins over the unit's (hc)
    # 2 Mar: am 07:00-11:00 worked 240 > pm leave 180 -> "+"; not early: last session to work ends 11:00.
    assert got(c, "2026-03-02") == day("+", "07:00", "11:00", 240, value=0.5, leave=half_p)
    # 3 Mar: am leave 240 > pm worked 180 -> "P"; not late: first session to work starts 13:00.
    assert got(c, "2026-03-03") == day("P", "13:00", "16:00", 180, value=0.5, leave=half_p)
    # 4 Mar: 90 = exactly half of 180 -> 0.5; late 13:00 - 07:00 = 360; early 16:00 - 14:30 = 90.
    assert got(c, "2026-03-04") == day(
        "+", "13:00", "14:30", 90, late=360, early=90, value=0.5, flags=("late", "early")
    )
    assert got_totals(c) == totals(1.5, {"P": 1.0}, late_count=1, late_min=360, early_count=1, early_min=90)


def test_assignment_precedence_and_report_listing(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    cli(
        "attendance", "assign", "--unit", "VP", "--shift", "lech", "--from", "2026-03-16"
    )  # later --from wins
    cli(
        "attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2026-02-01"
    )  # staff beats unit
    cli(
        "attendance",
        "assign",
        "--staff",
        "CB02",
        "--shift",
        "lech",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-13",
    )
    cli("attendance", "assign", "--staff", "CB05", "--shift", "hc", "--from", "2026-03-18")
    rows = []
    for code in ("CB01", "CB02"):
        for d in ("06", "09", "13", "16"):
            rows += [(code, f"2026-03-{d}T07:00:00+07:00"), (code, f"2026-03-{d}T16:00:00+07:00")]
    rows += [("CB04", "2026-03-10T08:00:00+07:00"), ("CB04", "2026-03-10T17:00:00+07:00")]  # no assignment
    rows += [("CB03", "2026-02-27T08:00:00+07:00")]  # February only: not listed in March
    punches(cli, tmp_path, rows)
    rep = report(cli, "2026-03")
    assert rep["month"] == "2026-03"
    # Listed: an assignment or a punch in March; CB03 has neither in March. Sorted by code.
    assert [r["staff"] for r in rep["staff"]] == ["CB01", "CB02", "CB04", "CB05"]
    assert (person(rep, "CB02")["name"], person(rep, "CB02")["unit"]) == ("Trần Thị Bình", "VP")
    # 07:00-16:00 under hc: 240 + 180 = 420, early 17:00 - 16:00 = 60; under lech: 240 + 180, early 0.
    under_hc = day("+", "07:00", "16:00", 420, early=60, value=1.0, flags=("early",))
    under_lech = day("+", "07:00", "16:00", 420, value=1.0)
    a, b = person(rep, "CB01"), person(rep, "CB02")
    assert [got(a, f"2026-03-{d}") for d in ("06", "09", "13", "16")] == [under_hc] * 4
    # CB02: unit hc on 6; staff lech 9..13 (--to inclusive); unit's later lech from 16.
    assert [got(b, f"2026-03-{d}") for d in ("06", "09", "13", "16")] == [
        under_hc,
        under_lech,
        under_lech,
        under_lech,
    ]
    assert got(person(rep, "CB04"), "2026-03-10") == day("", "08:00", "17:00", flags=("outside_shift",))
    assert got_totals(person(rep, "CB04")) == totals(0.0)
    e = person(rep, "CB05")
    assert got(e, "2026-03-17") == REST  # before the assignment: no occurrence, not absent
    assert got(e, "2026-03-18") == ABSENT
    assert got_totals(e) == totals(0.0)
    # CB01: 4 days of 1.0, early 60 each.
    assert got_totals(a) == totals(4.0, early_count=4, early_min=240)
    assert got_totals(b) == totals(4.0, early_count=1, early_min=60)
    assert [r["staff"] for r in report(cli, "2026-03", "--unit", "VP")["staff"]] == ["CB01", "CB02"]
    assert [r["staff"] for r in report(cli, "2026-03", "--staff", "CB04")["staff"]] == ["CB04"]
    # Byte-identical on a re-run, to stdout and to a file.
    first = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    out = tmp_path / "r.json"
    cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", str(out))
    assert out.read_bytes() == first
    assert json.dumps(json.loads(first), sort_keys=True, ensure_ascii=False) == json.dumps(
        json.loads(first), ensure_ascii=False
    )  # keys already sorted


# The calendar out of the box (context doc "Holidays and swapped working days"), for a Mon-Fri shift:
# (month, {date: expected symbol with no punches}, holidays in the month on Mon-Fri)
CALENDAR = [
    # 2025: 1 Jan (Wed); Tết 25 Jan - 2 Feb: the weekdays 27-31 Jan are the 5 statutory days.
    ("2025-01", {"2025-01-01": "L", "2025-01-24": "a", "2025-01-27": "L", "2025-01-31": "L"}, 6),
    ("2025-02", {"2025-02-03": "a"}, 0),
    # Hùng Vương Mon 7 Apr; 30 Apr (Wed); Sat 26 Apr worked instead of Fri 2 May.
    ("2025-04", {"2025-04-07": "L", "2025-04-26": "a", "2025-04-30": "L", "2025-04-27": ""}, 2),
    ("2025-05", {"2025-05-01": "L", "2025-05-02": "", "2025-05-05": "a"}, 1),
    # Quốc khánh 30 Aug - 2 Sep: Mon 1 and Tue 2 Sep.
    ("2025-09", {"2025-09-01": "L", "2025-09-02": "L", "2025-09-03": "a"}, 2),
    # 2026: 1 Jan (Thu); Fri 2 Jan swapped for Sat 10 Jan.
    ("2026-01", {"2026-01-01": "L", "2026-01-02": "", "2026-01-10": "a", "2026-01-03": ""}, 1),
    # Tết 14-22 Feb, statutory 16-20 Feb.
    ("2026-02", {"2026-02-13": "a", "2026-02-16": "L", "2026-02-20": "L", "2026-02-23": "a"}, 5),
    # Hùng Vương Sun 26 Apr observed Mon 27 Apr; 30 Apr (Thu).
    ("2026-04", {"2026-04-26": "", "2026-04-27": "L", "2026-04-30": "L", "2026-04-29": "a"}, 2),
    ("2026-05", {"2026-05-01": "L", "2026-05-04": "a"}, 1),
    # Quốc khánh 29 Aug - 2 Sep: Mon 31 Aug swapped for Sat 22 Aug; Tue 1 and Wed 2 Sep statutory.
    ("2026-08", {"2026-08-22": "a", "2026-08-31": "", "2026-08-29": ""}, 0),
    ("2026-09", {"2026-09-01": "L", "2026-09-02": "L", "2026-09-03": "a"}, 2),
]


def test_statutory_calendar_2025_2026(cli: Run) -> None:
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2025-01-01")
    for month, days, holidays in CALENDAR:
        p = person(report(cli, month), "CB01")
        for date, symbol in days.items():
            want = ABSENT if symbol == "a" else day(symbol)  # "a": a working day with no punch
            assert (date, got(p, date)) == (date, want)
        assert (month, p["totals"]["holidays"]) == (month, holidays)


def test_holidays_on_days_leave_and_punches_on_holidays(cli: Run, tmp_path: Path) -> None:
    cli(
        "attendance",
        "shift",
        "set",
        "mwf",
        "--name",
        "Thứ 2-4-6",
        "--sessions",
        "08:00-12:00",
        "--days",
        "Mon,Wed,Fri",
    )
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2025-01-01")
    cli("attendance", "assign", "--staff", "CB03", "--shift", "mwf", "--from", "2025-01-01")
    cli("attendance", "calendar", "set", "2026-03-25", "--holiday", "Ngày hội")  # Wed
    cli("attendance", "calendar", "set", "2026-03-28", "--workday")  # a Saturday worked
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "T",
        "--from",
        "2026-04-27",
        "--to",
        "2026-04-29",
        "--reason",
        "tai nạn",
    )
    punches(
        cli,
        tmp_path,
        [
            ("CB01", "2026-01-10T07:30:00+07:00"),  # compensatory Saturday worked
            ("CB01", "2026-01-10T17:00:00+07:00"),
            ("CB01", "2026-04-30T08:00:00+07:00"),  # on a public holiday
            ("CB01", "2026-04-30T11:00:00+07:00"),
            ("CB01", "2026-04-26T09:00:00+07:00"),  # on a Sunday
            ("CB01", "2026-04-26T10:30:00+07:00"),
            ("CB03", "2026-01-10T08:00:00+07:00"),  # mwf also occurs on the compensatory Saturday
            ("CB03", "2026-01-10T12:00:00+07:00"),
            ("CB03", "2026-03-28T08:00:00+07:00"),
            ("CB03", "2026-03-28T12:00:00+07:00"),
        ],
    )
    jan = report(cli, "2026-01")
    assert got(person(jan, "CB01"), "2026-01-10") == day("+", "07:30", "17:00", 480, value=1.0)
    assert got(person(jan, "CB03"), "2026-01-10") == day("+", "08:00", "12:00", 240, value=1.0)
    # 1 Jan is a Thursday: L for hc, but not on mwf's DAYS: "" and not counted.
    assert got(person(jan, "CB03"), "2026-01-01") == REST
    assert person(jan, "CB03")["totals"]["holidays"] == 0
    assert got(person(jan, "CB03"), "2026-01-02") == REST  # Fri 2 Jan: swapped day off
    # Feb 2026: 16 (Mon), 18 (Wed), 20 (Fri) on mwf's DAYS -> 3.
    assert person(report(cli, "2026-02"), "CB03")["totals"]["holidays"] == 3
    mar = report(cli, "2026-03")
    assert got(person(mar, "CB01"), "2026-03-25") == day("L")
    assert got(person(mar, "CB03"), "2026-03-25") == day("L")
    assert got(person(mar, "CB01"), "2026-03-28") == ABSENT  # --workday Saturday, nobody came
    assert got(person(mar, "CB03"), "2026-03-28") == day("+", "08:00", "12:00", 240, value=1.0)
    assert person(mar, "CB01")["totals"]["holidays"] == 1 and person(mar, "CB03")["totals"]["holidays"] == 1
    apr = person(report(cli, "2026-04"), "CB01")
    t = {"kind": "T", "value": 1.0}
    assert got(apr, "2026-04-27") == day("L")  # the observed holiday inside the leave range: not leave
    assert got(apr, "2026-04-28") == day("T", leave=t)
    assert got(apr, "2026-04-29") == day("T", leave=t)
    assert got(apr, "2026-04-30") == day("L", "08:00", "11:00", flags=("outside_shift",))
    assert got(apr, "2026-04-26") == day("", "09:00", "10:30", flags=("outside_shift",))
    # April: working days 1-3, 6-10, 13-17, 20-24 (18) are absent; 27 L, 28-29 T, 30 L.
    assert got_totals(apr) == totals(0.0, {"T": 2.0}, holidays=2)


PUNCH_FILE = (
    "\ufeffnote,time,terminal,staff,extra\n"  # BOM, columns in another order, extra columns
    "vào,2026-03-02T00:29:30Z,T1,CB01,x\n"  # 07:29:30 local
    "ra,2026-03-02T17:01:00+07:00,T2,CB01,\n"
    "ra,2026-03-02T10:05:00Z,T1,CB09,\n"  # unknown staff, 17:05 local
    "vào,2026-03-02T07:44:00+07:00,T1,CB09,\n"
)


def test_punch_file_import(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "staff,time,terminal\nCB01,2026-03-03T07:30:00+07:00,T1\nCB01,2026-03-03T17:00:00,T1\n",
        encoding="utf-8",
    )
    base = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    res = cli("attendance", "import-punches", str(bad), code=1)
    assert "row 3" in res.output and "time" in res.output  # the header is row 1
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == base
    )
    f = tmp_path / "p.csv"
    f.write_text(PUNCH_FILE, encoding="utf-8")
    res = cli("attendance", "import-punches", str(f))
    assert "row 4" in res.output and "row 5" in res.output and "CB09" in res.output  # reported, kept aside
    first = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    p = person(json.loads(first), "CB01")
    # 07:29-17:01: 240 + 240 = 480.
    assert got(p, "2026-03-02") == day("+", "07:29", "17:01", 480, value=1.0)
    assert "CB09" not in [r["staff"] for r in json.loads(first)["staff"]]
    cli("attendance", "import-punches", str(f))  # the same file again: nothing changes
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == first
    )
    # The staff record of CB09 arrives (unit VP): the kept-aside punches count now, 07:44-17:05.
    (tmp_path / "s9.csv").write_text(
        "staff_code,full_name,agency_code,unit\nCB09,Đỗ Thị Giang,000.00.31.H26,VP\n", encoding="utf-8"
    )
    cli("sync", "import", str(tmp_path / "s9.csv"))
    g = person(report(cli, "2026-03"), "CB09")
    # late 07:44 - 07:30 = 14 (> 07:35); worked 226 + 240 = 466.
    assert got(g, "2026-03-02") == day("+", "07:44", "17:05", 466, late=14, value=1.0, flags=("late",))
    assert got_totals(g) == totals(1.0, late_count=1, late_min=14)
    # Importing the file once more after that still changes nothing.
    again = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    cli("attendance", "import-punches", str(f))
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == again
    )


def test_refused_input_and_usage_errors(cli: Run) -> None:
    base = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    # A crossing session that is not the last one (§2): refused.
    cli(
        "attendance",
        "shift",
        "set",
        "x",
        "--name",
        "X",
        "--sessions",
        "22:00-06:00,07:00-08:00",
        "--days",
        "Mon-Fri",
        code=1,
    )
    cli("attendance", "assign", "--staff", "CB01", "--shift", "nope", "--from", "2026-03-01", code=1)
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-05",
        "--to",
        "2026-03-05",
        code=2,
    )  # --reason missing: a usage error
    cli("report", "attendance", "--month", "2026-03", "--format", "json", code=2)  # --out missing
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == base
    )


def test_day_value_odd_session_length(cli: Run, tmp_path: Path) -> None:
    # Morning 07:30-11:45 = 255 min: half is 127.5, so 127 min does not count and 128 does (rule 8).
    cli(
        "attendance",
        "shift",
        "set",
        "le",
        "--name",
        "Lẻ",
        "--sessions",
        "07:30-11:45,13:00-17:00",
        "--days",
        "Mon-Fri",
    )
    cli("attendance", "assign", "--staff", "CB04", "--shift", "le", "--from", "2026-03-01")
    rows = [("CB04", "2026-03-02T09:38:00+07:00"), ("CB04", "2026-03-02T17:00:00+07:00")]
    rows += [("CB04", "2026-03-03T09:37:00+07:00"), ("CB04", "2026-03-03T17:00:00+07:00")]
    punches(cli, tmp_path, rows)
    p = person(report(cli, "2026-03"), "CB04")
    # 09:38-11:45 = 127 < 127.5: no; 13:00-17:00 = 240: yes -> 0.5; worked 367; late 09:38 - 07:30 = 128.
    assert got(p, "2026-03-02") == day("+", "09:38", "17:00", 367, late=128, value=0.5, flags=("late",))
    # 09:37-11:45 = 128 >= 127.5: yes -> 1.0; worked 368; late 127.
    assert got(p, "2026-03-03") == day("+", "09:37", "17:00", 368, late=127, value=1.0, flags=("late",))


def test_night_shift_month_boundary_midnight_and_window_edges(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--staff", "CB02", "--shift", "dem", "--from", "2026-01-01")
    punches(
        cli,
        tmp_path,
        [
            ("CB02", "2026-03-02T22:00:00+07:00"),  # out at midnight: "+1 00:00"
            ("CB02", "2026-03-03T00:00:00+07:00"),
            ("CB02", "2026-03-04T20:00:00+07:00"),  # exactly the window's start (2 h before 22:00)
            ("CB02", "2026-03-05T06:00:00+07:00"),
            ("CB02", "2026-03-31T21:55:00+07:00"),  # the last night of March, out on 1 April
            ("CB02", "2026-04-01T06:00:00+07:00"),
            ("CB02", "2026-01-09T22:00:00+07:00"),  # Fri 9 Jan 2026 and the compensatory Sat 10 Jan
            ("CB02", "2026-01-10T06:00:00+07:00"),
            ("CB02", "2026-01-10T22:00:00+07:00"),
            ("CB02", "2026-01-11T06:00:00+07:00"),
        ],
    )
    mar = person(report(cli, "2026-03"), "CB02")
    # 22:00-00:00 = 120 < 240 (half of 480): value 0, no part -> "" and absent; early 06:00 - 00:00 = 360.
    assert got(mar, "2026-03-02") == day("", "22:00", "+1 00:00", 120, early=360, flags=("early", "absent"))
    assert got(mar, "2026-03-04") == day("+", "20:00", "+1 06:00", 480, value=1.0)
    assert got(mar, "2026-03-31") == day("+", "21:55", "+1 06:00", 480, value=1.0)
    apr = person(report(cli, "2026-04"), "CB02")
    assert got(apr, "2026-04-01") == ABSENT  # the 06:00 punch belongs to 31 March's occurrence
    jan = person(report(cli, "2026-01"), "CB02")
    assert got(jan, "2026-01-09") == day("+", "22:00", "+1 06:00", 480, value=1.0)
    assert got(jan, "2026-01-10") == day("+", "22:00", "+1 06:00", 480, value=1.0)  # compensatory Saturday
    assert got(jan, "2026-01-02") == REST  # swapped day off
    assert got(jan, "2026-01-01") == day("L")


def test_mon_sun_shift_around_tet_and_new_year(cli: Run) -> None:
    # Days off are the swapped WEEKDAYS (rule 2): a Mon-Sun shift still occurs on the Tết weekend days
    # 14, 15, 21, 22 Feb 2026 and on Sat 3 Jan 2026; only the statutory/observed days are L.
    cli(
        "attendance",
        "shift",
        "set",
        "ca",
        "--name",
        "Ca sáng",
        "--sessions",
        "06:00-14:00",
        "--days",
        "Mon-Sun",
    )
    cli("attendance", "assign", "--staff", "CB05", "--shift", "ca", "--from", "2026-01-01")
    feb = person(report(cli, "2026-02"), "CB05")
    assert [got(feb, f"2026-02-{d}") for d in ("14", "15", "16", "20", "21", "22")] == [
        ABSENT,
        ABSENT,
        day("L"),
        day("L"),
        ABSENT,
        ABSENT,
    ]
    assert feb["totals"]["holidays"] == 5  # 16-20 Feb
    jan = person(report(cli, "2026-01"), "CB05")
    assert [got(jan, f"2026-01-0{d}") for d in "1234"] == [day("L"), REST, ABSENT, ABSENT]
    assert jan["totals"]["holidays"] == 1


def test_half_day_leave_grace_on_the_remaining_session(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    for code, half in (("CB01", "am"), ("CB02", "pm")):
        cli(
            "attendance",
            "leave",
            "add",
            "--staff",
            code,
            "--kind",
            "H",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
            "--half",
            half,
            "--reason",
            "học",
        )
    rows = [
        ("CB01", "2026-03-02T13:05:00+07:00"),
        ("CB01", "2026-03-02T17:00:00+07:00"),
    ]  # at grace: not late
    rows += [("CB01", "2026-03-03T13:06:00+07:00"), ("CB01", "2026-03-03T17:00:00+07:00")]  # late 6
    rows += [
        ("CB02", "2026-03-02T07:30:00+07:00"),
        ("CB02", "2026-03-02T11:25:00+07:00"),
    ]  # at grace: not early
    rows += [("CB02", "2026-03-03T07:30:00+07:00"), ("CB02", "2026-03-03T11:24:00+07:00")]  # early 6
    punches(cli, tmp_path, rows)
    rep = report(cli, "2026-03")
    h = {"kind": "H", "value": 0.5}
    a, b = person(rep, "CB01"), person(rep, "CB02")
    assert got(a, "2026-03-02") == day("H", "13:05", "17:00", 235, value=0.5, leave=h)
    assert got(a, "2026-03-03") == day(
        "H", "13:06", "17:00", 234, late=6, value=0.5, leave=h, flags=("late",)
    )
    assert got(b, "2026-03-02") == day("+", "07:30", "11:25", 235, value=0.5, leave=h)
    assert got(b, "2026-03-03") == day(
        "+", "07:30", "11:24", 234, early=6, value=0.5, leave=h, flags=("early",)
    )
    assert got_totals(a) == totals(1.0, {"H": 1.0}, late_count=1, late_min=6)
    assert got_totals(b) == totals(1.0, {"H": 1.0}, early_count=1, early_min=6)


def test_punch_file_formats_and_arrival_order(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    a = tmp_path / "a.csv"
    # CRLF line ends (a spreadsheet's export), quoted fields, another offset, fractional seconds.
    a.write_bytes(
        b'staff,time,terminal\r\n"CB01","2026-03-02T07:31:00+07:00","C\xc3\xa1 1"\r\n'
        b"CB01,2026-03-02T19:00:00.750+09:00,T1\r\n"
    )
    cli("attendance", "import-punches", str(a))
    b = tmp_path / "b.csv"  # arrives later but is earlier in time: 07:30:00 is kept, 07:31:00 (+60 s) is not
    b.write_text("staff,time,terminal\nCB01,2026-03-02T07:30:00+07:00,T1\n", encoding="utf-8")
    cli("attendance", "import-punches", str(b))
    empty = tmp_path / "e.csv"
    empty.write_text("staff,time,terminal\n", encoding="utf-8")
    cli("attendance", "import-punches", str(empty))
    p = person(report(cli, "2026-03"), "CB01")
    # out 19:00:00.750+09:00 = 17:00:00.750 local -> 17:00. 07:30-17:00: 480.
    assert got(p, "2026-03-02") == day("+", "07:30", "17:00", 480, value=1.0)
    base = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    # A file with an unknown staff's good row and a malformed row: the whole file is refused, nothing is
    # kept aside either (§3: "nothing is imported").
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "staff,time,terminal\nCB09,2026-03-03T07:30:00+07:00,T1\nCB01,2026-02-30T07:30:00+07:00,T1\n"
        ",2026-03-03T07:30:00+07:00,T1\n",
        encoding="utf-8",
    )
    res = cli("attendance", "import-punches", str(bad), code=1)
    assert "row 3" in res.output and "row 4" in res.output
    nohdr = tmp_path / "nohdr.csv"  # the time column is missing: the header (row 1) is refused
    nohdr.write_text("staff,terminal\nCB01,T1\n", encoding="utf-8")
    assert "row 1" in cli("attendance", "import-punches", str(nohdr), code=1).output
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == base
    )
    (tmp_path / "s9.csv").write_text(
        "staff_code,full_name,agency_code,unit\nCB09,Đỗ Thị Giang,000.00.31.H26,VP\n", encoding="utf-8"
    )
    cli("sync", "import", str(tmp_path / "s9.csv"))
    assert (
        got(person(report(cli, "2026-03"), "CB09"), "2026-03-03") == ABSENT
    )  # the refused row never counted


def test_dayoff_and_holiday_set_after_the_facts(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB02",
        "--kind",
        "P",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-11",
        "--reason",
        "phép",
    )
    punches(cli, tmp_path, [("CB01", "2026-03-06T07:30:00+07:00"), ("CB01", "2026-03-06T17:00:00+07:00")])
    cli("attendance", "calendar", "set", "2026-03-06", "--dayoff", "Nghỉ đột xuất")
    cli("attendance", "calendar", "set", "2026-03-10", "--holiday", "Ngày lễ địa phương")
    rep = report(cli, "2026-03")
    # A day off: no occurrence; the punches are outside_shift, not work (rule 11).
    assert got(person(rep, "CB01"), "2026-03-06") == day("", "07:30", "17:00", flags=("outside_shift",))
    b = person(rep, "CB02")
    p1 = {"kind": "P", "value": 1.0}
    assert [got(b, f"2026-03-{d}") for d in ("09", "10", "11")] == [
        day("P", leave=p1),
        day("L"),
        day("P", leave=p1),
    ]
    assert got_totals(b) == totals(0.0, {"P": 2.0}, holidays=1)
    assert person(rep, "CB01")["totals"]["holidays"] == 1


def test_refused_corrections_and_leave(cli: Run) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    base = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    c = ("attendance", "correct", "--staff")
    cli(*c, "CB01", "--void-punch", "2026-03-02T07:30:00+07:00", "--reason", "x", code=1)  # no such punch
    cli(*c, "CB99", "--add-punch", "2026-03-02T07:30:00+07:00", "--reason", "x", code=1)  # unknown staff
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-09",
        "--reason",
        "x",
        code=1,
    )  # --from after --to
    cli(
        "attendance", "calendar", "set", "2026-03-10", "--workday", "--dayoff", "x", code=2
    )  # one of three only
    cli("attendance", "calendar", "set", "2026-03-10", code=2)
    assert (
        cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
        == base
    )


def test_json_does_not_depend_on_the_language(cli: Run, tmp_path: Path) -> None:
    cli("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB02",
        "--kind",
        "Cô",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-09",
        "--reason",
        "con ốm",
    )
    punches(cli, tmp_path, [("CB01", "2026-03-06T07:40:00+07:00"), ("CB01", "2026-03-07T09:00:00+07:00")])
    out = {}
    for lang in ("en", "vi"):
        env = {"CBCC_DATABASE__URL": cli.url, "CBCC_LANG": lang}  # type: ignore[attr-defined]
        args = ["report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-"]
        res = CliRunner().invoke(app, args, env=env)
        assert res.exit_code == 0, res.output
        out[lang] = res.stdout_bytes
    assert out["en"] == out["vi"]


def test_readings_where_the_contract_is_open(cli: Run, tmp_path: Path) -> None:
    """Each case here is one the contract leaves open; the expected value is OUR reading, written in
    docs/attendance.md (the section named in each comment), not something the contract forces."""
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2026-01-01")
    cli("attendance", "assign", "--staff", "CB02", "--shift", "dem", "--from", "2026-01-01")
    leave = ("attendance", "leave", "add", "--staff", "CB01", "--kind", "P")
    cli(*leave, "--from", "2026-03-04", "--to", "2026-03-04", "--half", "am", "--reason", "x")
    cli(*leave, "--from", "2026-03-05", "--to", "2026-03-05", "--reason", "x")
    # READING docs §2 (Files): contract §3 names `staff,time,terminal`; we accept a file without `terminal`.
    f = tmp_path / "noterm.csv"
    f.write_text(
        "time,staff\n"
        "2026-03-02T05:30:00+07:00,CB01\n"  # the window's first minute (07:30 - 2 h)
        "2026-03-02T21:00:30+07:00,CB01\n"  # within the window's last minute (17:00 + 4 h)
        "2026-03-03T05:29:59+07:00,CB01\n"  # before the window of a working day: not shown
        "2026-03-03T07:30:00+07:00,CB01\n"
        "2026-03-03T17:00:00+07:00,CB01\n"
        "2026-03-04T14:00:00+07:00,CB01\n"  # one punch on a day with a half-day leave
        "2026-03-05T07:30:00+07:00,CB01\n"  # a whole day of leave, and a whole day worked
        "2026-03-05T17:00:00+07:00,CB01\n"
        "2026-03-04T00:30:00+07:00,CB02\n"  # the 3 March night: in after midnight
        "2026-03-04T06:00:00+07:00,CB02\n",
        encoding="utf-8",
    )
    cli("attendance", "import-punches", str(f))
    rep = report(cli, "2026-03")
    a, b = person(rep, "CB01"), person(rep, "CB02")
    # READING §3.2 (window both ends inclusive, compared on the punch's minute): 21:00:30 is in.
    assert got(a, "2026-03-02") == day("+", "05:30", "21:00", 480, value=1.0)
    # READING §3.9: a punch on a working date outside its window is not shown (an overtime candidate).
    assert got(a, "2026-03-03") == day("+", "07:30", "17:00", 480, value=1.0)
    # READING §3.5: rule 5 says symbol "" for a single punch, rule 10 gives the leave half as the day's
    # only part; we show the leave symbol (the leave is certain, the missing punch is pending).
    assert got(a, "2026-03-04") == day(
        "P", "14:00", None, leave={"kind": "P", "value": 0.5}, flags=("missing_punch",)
    )
    # READING §3.4: a session covered by leave never counts as worked; the minutes are still shown.
    assert got(a, "2026-03-05") == day("P", "07:30", "17:00", 480, leave={"kind": "P", "value": 1.0})
    # READING §3 "Times on the next day": an `in` after midnight is written like an `out`: "+1 00:30".
    # 00:30-06:00 = 330 >= 240 -> 1.0; late 00:30 (next day) - 22:00 = 150.
    assert got(b, "2026-03-03") == day("+", "+1 00:30", "+1 06:00", 330, late=150, value=1.0, flags=("late",))


def test_leave_over_a_compensatory_saturday_two_session_night_and_refusals(cli: Run, tmp_path: Path) -> None:
    cli(
        "attendance",
        "shift",
        "set",
        "toi",
        "--name",
        "Ca tối",
        "--sessions",
        "18:00-22:00,23:00-03:00",
        "--days",
        "Mon-Fri",
    )
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2026-01-01")
    cli("attendance", "assign", "--staff", "CB02", "--shift", "toi", "--from", "2026-01-01")
    # Fri 9 - Mon 12 Jan 2026: Sat 10 Jan is the compensatory working day (an occurrence): leave on
    # 9, 10 and 12; Sunday 11 is not leave.
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-01-09",
        "--to",
        "2026-01-12",
        "--reason",
        "việc riêng",
    )
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB02",
        "--kind",
        "P",
        "--from",
        "2026-03-03",
        "--to",
        "2026-03-03",
        "--half",
        "pm",
        "--reason",
        "x",
    )
    rows = [("CB02", "2026-03-02T17:55:00+07:00"), ("CB02", "2026-03-03T03:10:00+07:00")]
    rows += [("CB02", "2026-03-03T17:55:00+07:00"), ("CB02", "2026-03-03T22:00:00+07:00")]
    punches(cli, tmp_path, rows)
    jan = person(report(cli, "2026-01"), "CB01")
    p1 = {"kind": "P", "value": 1.0}
    assert [got(jan, f"2026-01-{d}") for d in ("09", "10", "11", "12")] == [
        day("P", leave=p1),
        day("P", leave=p1),
        REST,
        day("P", leave=p1),
    ]
    assert got_totals(jan) == totals(0.0, {"P": 3.0}, holidays=1)  # 1 Jan
    b = person(report(cli, "2026-03"), "CB02")
    # 17:55 -> +1 03:10: 18:00-22:00 (240) + 23:00-03:00 (240) = 480.
    assert got(b, "2026-03-02") == day("+", "17:55", "+1 03:10", 480, value=1.0)
    # pm (= the last session, 23:00-03:00) on leave: 18:00-22:00 worked (240) -> 0.5; the last session
    # to work ends 22:00: not early; tie 240/240 -> the earlier part, "+".
    assert got(b, "2026-03-03") == day(
        "+", "17:55", "22:00", 240, value=0.5, leave={"kind": "P", "value": 0.5}
    )
    before = [
        cli("report", "attendance", "--month", m, "--format", "json", "--out", "-").stdout_bytes
        for m in ("2026-01", "2026-03")
    ]
    cli(
        "attendance",
        "assign",
        "--staff",
        "CB03",
        "--shift",
        "hc",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-09",
        code=1,
    )
    cli(
        "attendance",
        "shift",
        "set",
        "hc",
        "--name",
        "x",
        "--sessions",
        "07:30-11:30",
        "--days",
        "Mon-Fun",
        code=1,
    )
    cli(
        "attendance",
        "shift",
        "set",
        "hc",
        "--name",
        "x",
        "--sessions",
        "13:00-17:00,07:30-11:30",
        "--days",
        "Mon-Fri",
        code=1,
    )
    w = tmp_path / "w.csv"  # §3: UTF-8; a Windows-1258 export is refused as a whole
    w.write_bytes("staff,time,terminal\nCB01,2026-03-04T07:30:00+07:00,Máy 1\n".encode("cp1258"))
    cli("attendance", "import-punches", str(w), code=1)
    after = [
        cli("report", "attendance", "--month", m, "--format", "json", "--out", "-").stdout_bytes
        for m in ("2026-01", "2026-03")
    ]
    assert after == before
