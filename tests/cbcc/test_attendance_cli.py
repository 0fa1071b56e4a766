"""The contract's commands through the real ``cbcc`` command tree, on SQLite and PostgreSQL: exit
codes, refused input that changes nothing, held-aside punches, idempotent imports, corrections,
unit history, the audit log, and byte-identical JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cbcc.app import app
from gateway import db

STAFF = """staff_code,full_name,agency_code,unit,position
CB01,Nguyễn Văn An,000.00.31.H26,VP,Chuyên viên
CB02,Trần Thị Bình,000.00.31.H26,VP,Trưởng phòng
CB03,Lê Văn Cường,000.00.31.H26,TC,Chuyên viên
"""
PUNCHES = """\ufeffterminal,time,staff,note
T1,2026-03-02T07:58:00+07:00,CB01,x
T1,2026-03-02T07:58:50+07:00,CB01,double tap
T1,2026-03-02T17:05:00+07:00,CB01,
T1,2026-03-03T07:45:00+07:00,CB02,
T1,2026-03-03T17:00:00+07:00,CB02,
T1,2026-03-02T00:30:00Z,CB09,unknown yet
T1,2026-03-02T10:10:00Z,CB09,
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    url = f"sqlite:///{tmp_path}/g.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    env = {"CBCC_DATABASE__URL": url, "CBCC_LANG": "en"}  # the English texts matched below

    def run(*args: str, code: int = 0) -> Any:
        res = CliRunner().invoke(app, list(args), env=env)
        assert res.exit_code == code, (args, res.exit_code, res.output, res.exception)
        return res

    run.url = url  # type: ignore[attr-defined]
    (tmp_path / "staff.csv").write_text(STAFF, encoding="utf-8")
    run("sync", "import", str(tmp_path / "staff.csv"))
    run(
        "attendance",
        "shift",
        "set",
        "hc",
        "--name",
        "Hành chính",
        "--sessions",
        "07:30-11:30,13:00-17:00",
        "--days",
        "Mon-Fri",
        "--grace-in",
        "5",
    )
    run("attendance", "assign", "--unit", "VP", "--shift", "hc", "--from", "2026-01-01")
    run("attendance", "assign", "--unit", "TC", "--shift", "hc", "--from", "2026-01-01")
    return run


def _count(url: str, table: str) -> int:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    engine.dispose()
    return n


def _report(cli: Callable[..., Any], *extra: str) -> dict[str, Any]:
    res = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-", *extra)
    return json.loads(res.stdout_bytes)  # type: ignore[no-any-return]


def test_punch_file_round_trip(cli: Callable[..., Any], tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text(PUNCHES, encoding="utf-8")
    res = cli("attendance", "import-punches", str(f))
    assert "row 7: staff: unknown staff code 'CB09'" in res.output and "row 8" in res.output
    rep = _report(cli)
    assert [r["staff"] for r in rep["staff"]] == [
        "CB01",
        "CB02",
        "CB03",
    ]  # CB09 held aside; CB03 has an assignment
    a1 = rep["staff"][0]
    assert a1["name"] == "Nguyễn Văn An" and a1["unit"] == "VP"
    # 07:58 > 07:30 + 5: late 28; worked 212 + 240.
    assert a1["days"]["2026-03-02"] == {
        "symbol": "+",
        "in": "07:58",
        "out": "17:05",
        "worked_min": 452,
        "late_min": 28,
        "early_min": 0,
        "value": 1.0,
        "leave": None,
        "flags": ["late"],
    }
    n = _count(cli.url, "att_punch")  # type: ignore[attr-defined]
    assert n == 7
    first = cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", "-").stdout_bytes
    again = cli("attendance", "import-punches", str(f))
    assert "0 new punch" in again.output
    assert _count(cli.url, "att_punch") == n  # type: ignore[attr-defined]
    out = tmp_path / "r.json"
    cli("report", "attendance", "--month", "2026-03", "--format", "json", "--out", str(out))
    assert out.read_bytes() == first  # byte-identical
    assert first.endswith(b"\n") and "Nguyễn".encode() in first
    # The staff record of CB09 arrives: the held-aside punches count (07:30 and 17:10 local).
    (tmp_path / "a9.csv").write_text(
        "staff_code,full_name,agency_code,unit\nCB09,Phạm Thị Dung,000.00.31.H26,VP\n", encoding="utf-8"
    )
    cli("sync", "import", str(tmp_path / "a9.csv"))
    a9 = next(r for r in _report(cli)["staff"] if r["staff"] == "CB09")
    assert a9["days"]["2026-03-02"]["in"] == "07:30" and a9["days"]["2026-03-02"]["out"] == "17:10"
    assert a9["days"]["2026-03-02"]["value"] == 1.0
    # The rendered forms through the same command (the renderers' own tests check the layout).
    import openpyxl  # type: ignore[import-untyped]

    xlsx = tmp_path / "r.xlsx"
    cli("report", "attendance", "--month", "2026-03", "--unit", "VP", "--format", "xlsx", "--out", str(xlsx))
    cells = {
        str(c.value) for ws in openpyxl.load_workbook(xlsx).worksheets for r in ws.iter_rows() for c in r
    }
    assert "Nguyễn Văn An" in cells and "Phạm Thị Dung" in cells and "Lê Văn Cường" not in cells
    pdf = cli("report", "attendance", "--month", "2026-03", "--format", "pdf", "--out", "-").stdout_bytes
    assert pdf.startswith(b"%PDF")
    engine = db.make_engine(cli.url)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text("SELECT action FROM auditentry ORDER BY id"))]
    engine.dispose()
    assert actions.count("attendance.report") == 6 and "attendance.import_punches" in actions


def test_bad_punch_file_changes_nothing(cli: Callable[..., Any], tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(
        "staff,time,terminal\nA1,2026-03-02T07:58:00+07:00,T1\nA1,2026-03-02T17:05:00,T1\n"
        ",2026-03-02T17:05:00+07:00,T1\nA2,yesterday,T1\n",
        encoding="utf-8",
    )
    res = cli("attendance", "import-punches", str(f), code=1)
    assert "row 3: time:" in res.output and "no UTC offset" in res.output
    assert "row 4: staff: empty" in res.output and "row 5: time:" in res.output
    assert _count(cli.url, "att_punch") == 0  # type: ignore[attr-defined]
    f.write_text("staff,when\nA1,2026-03-02T07:58:00+07:00\n", encoding="utf-8")
    assert "row 1: header: missing column time" in cli("attendance", "import-punches", str(f), code=1).output
    f.write_bytes(b"staff,time\nA1,\xff\xfe\n")
    cli("attendance", "import-punches", str(f), code=1)
    assert _count(cli.url, "att_punch") == 0  # type: ignore[attr-defined]


def test_refused_commands_and_usage_errors(cli: Callable[..., Any]) -> None:
    res = cli(
        "attendance",
        "shift",
        "set",
        "x",
        "--name",
        "X",
        "--sessions",
        "07:30-11:30,11:00-17:00",
        "--days",
        "Mon-Fri",
        code=1,
    )
    assert "--sessions" in res.output and "overlaps" in res.output
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
        "Mon",
        code=1,
    )
    cli(
        "attendance",
        "shift",
        "set",
        "x",
        "--name",
        "X",
        "--sessions",
        "07:00-08:00",
        "--days",
        "Mon-Fry",
        code=1,
    )
    assert _count(cli.url, "att_shift") == 1  # type: ignore[attr-defined]
    cli(
        "attendance",
        "assign",
        "--staff",
        "CB01",
        "--unit",
        "VP",
        "--shift",
        "hc",
        "--from",
        "2026-01-01",
        code=2,
    )
    cli("attendance", "assign", "--unit", "NOPE", "--shift", "hc", "--from", "2026-01-01", code=1)
    cli("attendance", "assign", "--staff", "CB01", "--shift", "zz", "--from", "2026-01-01", code=1)
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2026-13-01", code=1)
    cli(
        "attendance",
        "assign",
        "--staff",
        "CB01",
        "--shift",
        "hc",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-01",
        code=1,
    )
    assert _count(cli.url, "att_assignment") == 2  # type: ignore[attr-defined]
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
        "r",
        code=1,
    )
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "X",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-09",
        "--reason",
        "r",
        code=1,
    )
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-10",
        "--half",
        "noon",
        "--reason",
        "r",
        code=2,
    )
    cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "P",
        "--from",
        "2026-03-09",
        "--to",
        "2026-03-10",
        "--reason",
        "phép năm",
    )
    res = cli(
        "attendance",
        "leave",
        "add",
        "--staff",
        "CB01",
        "--kind",
        "Ô",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-12",
        "--reason",
        "ốm",
        code=1,
    )
    assert "overlaps" in res.output
    assert _count(cli.url, "att_leave") == 1  # type: ignore[attr-defined]
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB01",
        "--add-punch",
        "2026-03-02T17:00:00",
        "--reason",
        "r",
        code=1,
    )
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB01",
        "--void-punch",
        "2026-03-02T17:00:00+07:00",
        "--reason",
        "r",
        code=1,
    )
    cli(
        "attendance",
        "correct",
        "--staff",
        "ZZ",
        "--add-punch",
        "2026-03-02T17:00:00+07:00",
        "--reason",
        "r",
        code=1,
    )
    cli("attendance", "correct", "--staff", "CB01", "--reason", "r", code=2)
    assert _count(cli.url, "att_correction") == 0  # type: ignore[attr-defined]
    cli("attendance", "calendar", "set", "2026-03-20", "--workday", "--holiday", "x", code=2)
    cli("report", "attendance", "--month", "2026-3", "--format", "json", "--out", "-", code=1)
    cli("report", "attendance", "--month", "2026-03", "--format", "doc", "--out", "-", code=2)
    cli(
        "report",
        "attendance",
        "--month",
        "2026-03",
        "--staff",
        "ZZ",
        "--format",
        "json",
        "--out",
        "-",
        code=1,
    )
    cli("attendance", "frobnicate", code=2)


def test_leave_correction_calendar_and_transfer(cli: Callable[..., Any]) -> None:
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB02",
        "--add-punch",
        "2026-03-02T07:31:00+07:00",
        "--reason",
        "quên",
    )
    rep = _report(cli, "--staff", "CB02")
    assert rep["staff"][0]["days"]["2026-03-02"]["flags"] == ["missing_punch", "corrected"]
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB02",
        "--add-punch",
        "2026-03-02T16:58:00+07:00",
        "--reason",
        "quên",
    )
    d = _report(cli, "--staff", "CB02")["staff"][0]["days"]["2026-03-02"]
    # 07:31 is within the 5 min grace; 16:58 -> early 2; worked 239 + 238.
    assert (d["in"], d["out"], d["worked_min"], d["early_min"], d["flags"]) == (
        "07:31",
        "16:58",
        477,
        2,
        ["early", "corrected"],
    )
    cli(
        "attendance",
        "correct",
        "--staff",
        "CB02",
        "--void-punch",
        "2026-03-02T16:58:30+07:00",
        "--reason",
        "nhầm",
    )
    d = _report(cli, "--staff", "CB02")["staff"][0]["days"]["2026-03-02"]
    assert (d["out"], d["flags"]) == (None, ["missing_punch", "corrected"])
    assert _count(cli.url, "att_punch") == 2  # type: ignore[attr-defined]  # raw punches are kept
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
        "2026-03-06",
        "--half",
        "am",
        "--reason",
        "việc riêng",
    )
    cli("attendance", "calendar", "set", "2026-03-06", "--holiday", "Lễ của tỉnh")
    cli("attendance", "calendar", "set", "2026-03-14", "--workday")
    a1 = _report(cli, "--staff", "CB01")["staff"][0]
    assert (
        a1["days"]["2026-03-05"]["leave"] == {"kind": "P", "value": 0.5}
        and a1["days"]["2026-03-05"]["symbol"] == "P"
    )
    assert a1["days"]["2026-03-06"]["symbol"] == "L" and a1["days"]["2026-03-06"]["leave"] is None
    assert a1["days"]["2026-03-14"]["flags"] == ["absent"]
    assert a1["totals"]["leave"] == {"P": 0.5} and a1["totals"]["holidays"] == 1
    cli("attendance", "transfer", "--staff", "CB01", "--unit", "TC", "--from", "2026-03-16")
    rows = _report(cli)["staff"]
    assert [(r["staff"], r["unit"]) for r in rows] == [
        ("CB01", "VP"),
        ("CB01", "TC"),
        ("CB02", "VP"),
        ("CB03", "TC"),
    ]
    tc = _report(cli, "--unit", "TC")["staff"]
    assert [(r["staff"], r["unit"]) for r in tc] == [("CB01", "TC"), ("CB03", "TC")]
    assert tc[0]["days"]["2026-03-13"]["flags"] == [] and tc[0]["days"]["2026-03-16"]["flags"] == ["absent"]


def test_overtime_approval(cli: Callable[..., Any], tmp_path: Path) -> None:
    f = tmp_path / "ot.csv"
    f.write_text(
        "staff,time\nCB01,2026-03-02T07:00:00+07:00\nCB01,2026-03-02T18:30:00+07:00\n", encoding="utf-8"
    )
    cli("attendance", "import-punches", str(f))
    # 30 min before 07:30 and 90 after 17:00.
    lines = cli("attendance", "overtime", "list", "--month", "2026-03", "--staff", "CB01").output.splitlines()
    assert [json.loads(x) for x in lines] == [
        {"staff": "CB01", "date": "2026-03-02", "kind": "weekday", "minutes": 120, "night_min": 0,
         "intervals": [["07:00", "07:30"], ["17:00", "18:30"]], "approved_min": 0}
    ]  # fmt: skip
    args = ("attendance", "overtime", "approve", "--staff", "CB01", "--date", "2026-03-02", "--reason", "họp")
    assert "0..120" in cli(*args, "--minutes", "121", code=1).output
    cli(*args, "--minutes", "90")
    out = cli("attendance", "overtime", "list", "--month", "2026-03", "--staff", "CB01").output
    assert json.loads(out)["approved_min"] == 90
    # The printed timesheet carries it (90 weekday minutes, none at night); the contract's JSON not.
    res = cli("report", "attendance", "--month", "2026-03", "--unit", "VP", "--format", "csv", "--out", "-")
    lines = res.stdout_bytes.decode("utf-8-sig").splitlines()
    i = lines.index("LÀM THÊM GIỜ ĐÃ DUYỆT (giờ:phút)")
    assert lines[i + 2] == "1,Nguyễn Văn An,1:30,,,1:30,"
    assert "overtime" not in _report(cli)["staff"][0]


def test_round_the_clock_shift_option(cli: Callable[..., Any], tmp_path: Path) -> None:
    args = ("attendance", "shift", "set", "bv", "--name", "Bảo vệ", "--sessions", "06:00-18:00")
    args += ("--days", "Mon-Sun")
    res = cli(*args, "--on-holidays")
    assert "(holidays too)" in res.output
    assert "holidays too" in cli("attendance", "shift", "list").output
    cli("attendance", "assign", "--staff", "CB03", "--shift", "bv", "--from", "2026-01-01")
    cli("attendance", "calendar", "set", "2026-03-10", "--holiday", "Lễ tỉnh")
    f = tmp_path / "bv.csv"
    f.write_text("staff,time,terminal\nCB03,2026-03-10T05:58:00+07:00,G\nCB03,2026-03-10T18:01:00+07:00,G\n")
    cli("attendance", "import-punches", str(f))
    d = _report(cli, "--staff", "CB03")["staff"][0]["days"]["2026-03-10"]
    # 06:00-18:00 worked whole on the holiday: 720 min, value 1.
    assert (d["symbol"], d["in"], d["out"], d["worked_min"], d["value"]) == ("+", "05:58", "18:01", 720, 1.0)
    cli(*args)  # replaced without the option: the default, no shift on holidays
    assert "holidays too" not in cli("attendance", "shift", "list").output
    d = _report(cli, "--staff", "CB03")["staff"][0]["days"]["2026-03-10"]
    assert (d["symbol"], d["value"], d["flags"]) == ("L", 0.0, ["outside_shift"])


def test_backfill_command(cli: Callable[..., Any]) -> None:
    engine = db.make_engine(cli.url)  # type: ignore[attr-defined]
    at = "2026-03-02 00:29:00+00:00"
    with engine.begin() as conn:  # an attendance terminal's tap stored before the attendance tables
        conn.execute(
            sa.text(
                "INSERT INTO event (reader_id, seq, kind, occurred_at, reader_time, time_quality,"
                " time_corrected, received_at, boot, uptime_ms, decision, reason, serial, staff_code,"
                " technology, anti_clone, record, mac) VALUES ('r9', 1, 'tap', :at, :at, 2, false, :at,"
                " 1, 1, 'punch', 'ok', 1, 'CB01', 'desfire', true, :b, :b)"
            ),
            {"at": at, "b": b"x"},
        )
    engine.dispose()
    assert "1 punch(es)" in cli("attendance", "backfill", "--from", "2026-03-01").output
    assert "0 punch(es)" in cli("attendance", "backfill").output  # again: nothing new
    cli("attendance", "backfill", "--from", "2026-13-01", code=1)
    assert _report(cli, "--staff", "CB01")["staff"][0]["days"]["2026-03-02"]["in"] == "07:29"


def test_calendar_unset_and_show(cli: Callable[..., Any]) -> None:
    """``calendar unset`` removes a site override (the shipped day comes back); ``show`` lists the
    shipped swaps and the overrides from the same ``store.calendar_year`` as the API and console."""
    cli("attendance", "calendar", "set", "2026-11-24", "--workday")
    cli("attendance", "calendar", "set", "2026-03-09", "--dayoff", "Kỷ niệm")
    out = cli("attendance", "calendar", "show", "--year", "2026").output
    assert "2026-11-24 Tue workday" in out and "2026-03-09 Mon dayoff   Kỷ niệm" in out
    assert "2026-01-02 Fri dayoff" in out and "2026-01-10 Sat workday" in out  # shipped swap
    cli("attendance", "calendar", "unset", "2026-11-24")
    cli("attendance", "calendar", "unset", "2026-11-24", code=1)  # nothing left to remove
    cli("attendance", "calendar", "unset", "2026-13-01", code=1)
    out = cli("attendance", "calendar", "show", "--year", "2026").output
    assert "2026-11-24 Tue L" in out and "2026-03-09 Mon dayoff" in out


def _assignments(url: str) -> list[tuple[Any, ...]]:
    from gateway.attendance import store

    engine = db.make_engine(url)
    with engine.connect() as conn:
        t = store.T_ASSIGN
        q = sa.select(t.c.id, t.c.shift_id, t.c.staff_code, t.c.unit, t.c.start, t.c.end).order_by(t.c.id)
        rows = [tuple(r) for r in conn.execute(q)]
    engine.dispose()
    return rows


def test_assignment_list_end_and_delete(
    cli: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``assignment list`` shows the ids ``end`` and ``delete`` take; both keep the store's rules
    (a past month is closed; a computed day forbids delete) with "today" the Vietnam date of
    ``times.today`` (set here to 18 Mar 2026), refuse with exit 1 changing nothing, and audit like
    the API."""
    from datetime import date

    from gateway.attendance import store, times

    monkeypatch.setattr(times, "today", lambda: date(2026, 3, 18))  # closed: February and before
    url = cli.url  # type: ignore[attr-defined]
    vp, tc = (r[0] for r in _assignments(url))
    out = cli("attendance", "assignment", "list").output
    assert out.splitlines() == [
        f"{vp}\tunit VP: hc from 2026-01-01 to …",
        f"{tc}\tunit TC: hc from 2026-01-01 to …",
    ]
    assert cli("attendance", "assignment", "list", "--unit", "TC").output.splitlines() == [
        f"{tc}\tunit TC: hc from 2026-01-01 to …"
    ]
    assert cli("attendance", "assignment", "list", "--staff", "CB01").output == ""  # only the unit's
    assert "'NOPE'" in cli("attendance", "assignment", "list", "--staff", "NOPE", code=1).output
    assert "'NOPE'" in cli("attendance", "assignment", "list", "--unit", "NOPE", code=1).output
    cli("attendance", "assignment", "list", "--staff", "CB01", "--unit", "VP", code=2)
    assert "assignment" not in cli("attendance", "shift", "list").output  # one home: assignment list
    f = tmp_path / "p.csv"
    f.write_text(PUNCHES, encoding="utf-8")
    cli("attendance", "import-punches", str(f))
    before = _report(cli, "--staff", "CB01")["staff"][0]["days"]
    assert before["2026-03-11"]["flags"] == ["absent"] and before["2026-03-02"]["value"] == 1.0

    # refused: nothing changes, no audit entry
    rows = _assignments(url)
    res = cli("attendance", "assignment", "end", str(vp), "--to", "2026-02-27", code=1)
    assert "2026-02-28" in res.output  # the earliest end allowed
    assert (
        "2025-12-31" in cli("attendance", "assignment", "end", str(vp), "--to", "2025-12-31", code=1).output
    )
    assert "--to" in cli("attendance", "assignment", "end", str(vp), "--to", "2026-13-01", code=1).output
    assert (
        "no shift assignment 9999"
        in cli("attendance", "assignment", "end", "9999", "--to", "2026-03-31", code=1).output
    )
    assert "no shift assignment 9999" in cli("attendance", "assignment", "delete", "9999", code=1).output
    cli("attendance", "assignment", "end", str(vp), code=2)  # --to is required
    cli("attendance", "assignment", "delete", "x", code=2)
    cli("attendance", "assignment", "delete", "0", code=2)
    cli("attendance", "assignment", "delete", str(2**31), code=2)  # beyond the INTEGER column
    assert _assignments(url) == rows

    # end: the row keeps its start, the report follows (no shift after the 10th: not absent)
    res = cli("attendance", "assignment", "end", str(vp), "--to", "2026-03-10")
    assert res.output.strip() == f"shift assignment {vp} (unit VP, shift hc) ends on 2026-03-10"
    assert _assignments(url)[0] == (vp, "hc", None, "VP", date(2026, 1, 1), date(2026, 3, 10))
    after = _report(cli, "--staff", "CB01")["staff"][0]["days"]
    assert after["2026-03-11"]["flags"] == [] and after["2026-03-10"]["flags"] == ["absent"]
    assert after["2026-03-02"] == before["2026-03-02"]
    res = cli("attendance", "assignment", "end", str(vp), "--to", "2026-03-20")
    assert "ends on 2026-03-20 (was 2026-03-10)" in res.output
    assert (
        f"{vp}\tunit VP: hc from 2026-01-01 to 2026-03-20" in cli("attendance", "assignment", "list").output
    )

    # delete: refused for an assignment a computed day used (it stays), done for a mistaken one
    cli("attendance", "refresh")
    res = cli("attendance", "assignment", "delete", str(tc), code=1)
    assert "2026-01-01" in res.output and "end it, do not delete it" in res.output
    cli("attendance", "assign", "--staff", "CB01", "--shift", "hc", "--from", "2026-04-01")
    (mistake,) = (r[0] for r in _assignments(url) if r[2] == "CB01")
    assert cli("attendance", "assignment", "list", "--staff", "CB01").output.startswith(f"{mistake}\t")
    res = cli("attendance", "assignment", "delete", str(mistake))
    assert res.output.strip() == f"shift assignment {mistake} (staff CB01, shift hc) deleted"
    assert [r[0] for r in _assignments(url)] == [vp, tc]

    # a later today: March is closed too, so the end of 20 March may not move any more
    monkeypatch.setattr(times, "today", lambda: date(2026, 5, 2))
    res = cli("attendance", "assignment", "end", str(vp), "--to", "2026-06-30", code=1)
    assert "already ended on 2026-03-20" in res.output

    engine = db.make_engine(url)
    with engine.connect() as conn:
        t = store.T_AUDIT
        q = sa.select(t.c.action, t.c.actor, t.c.target, t.c.detail).order_by(t.c.id)
        audited = [
            (r.action, r.actor, r.target, json.loads(r.detail))
            for r in conn.execute(q.where(t.c.action.startswith("attendance.assign.")))
        ]
    engine.dispose()
    assert audited == [
        ("attendance.assign.end", "cli", "VP",
         {"id": vp, "shift": "hc", "start": "2026-01-01", "end": "2026-03-10", "was": None}),
        ("attendance.assign.end", "cli", "VP",
         {"id": vp, "shift": "hc", "start": "2026-01-01", "end": "2026-03-20", "was": "2026-03-10"}),
        ("attendance.assign.delete", "cli", "CB01",
         {"id": mistake, "shift": "hc", "start": "2026-04-01", "end": None}),
    ]  # fmt: skip


def test_assignment_commands_speak_vietnamese_by_default(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CBCC_LANG=en the same refusals and results read in Vietnamese."""
    from datetime import date

    from gateway.attendance import times

    monkeypatch.setattr(times, "today", lambda: date(2026, 3, 18))
    vp, tc = (r[0] for r in _assignments(cli.url))  # type: ignore[attr-defined]
    cli("attendance", "refresh")

    def vi(*args: str, code: int = 0) -> str:
        env = {"CBCC_DATABASE__URL": cli.url, "CBCC_LANG": "vi"}  # type: ignore[attr-defined]
        res = CliRunner().invoke(app, list(args), env=env)
        assert res.exit_code == code, (args, res.output)
        return res.output

    assert (
        vi("attendance", "assignment", "list", "--unit", "VP") == f"{vp}\tđơn vị VP: hc từ 01/01/2026 đến …\n"
    )
    assert "hãy kết thúc, không xoá" in vi("attendance", "assignment", "delete", str(tc), code=1)
    assert "hãy kết thúc từ ngày 28/02/2026 trở đi" in vi(
        "attendance", "assignment", "end", str(vp), "--to", "2026-01-31", code=1
    )
    assert "Không có phân ca 9999" in vi("attendance", "assignment", "delete", "9999", code=1)
    out = vi("attendance", "assignment", "end", str(vp), "--to", "2026-03-31")
    assert out.strip() == f"Phân ca {vp} (đơn vị VP, ca hc) kết thúc ngày 31/03/2026"
