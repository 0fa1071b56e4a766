"""Attendance refusals read in the reader's language: a refused punch file's rows stay structured
(row, column, reason) until shown, so the contract's English ``row N: column: reason``
(attendance-v1 §3) and its Vietnamese rendering come from the same error — through the API (per
request's Accept-Language), the command line (CBCC_LANG) and the import summary."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cbcc.app import app
from gateway.attendance import store
from gateway.attendance.errors import AttendanceError
from gateway.attendance.imports import PunchImport
from gateway.attendance.punchfile import read_leaves, read_punches
from messages import text_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_gateway_api import Env, make_env

API = "/api/v1/attendance"
BAD = (
    "staff,time,terminal\nCB01,2026-03-02T07:58:00+07:00,T1\nCB01,2026-03-02 07:59,T1\n"
    ",2026-03-02T08:00:00Z,T1\n"
)
NO_OFFSET_EN = "row 3: time: '2026-03-02 07:59' has no UTC offset (write it like 2026-03-02T07:58:00+07:00)"
NO_OFFSET_VI = "dòng 3: time: '2026-03-02 07:59' thiếu độ lệch UTC (hãy viết như 2026-03-02T07:58:00+07:00)"


def _refusal(tmp_path: Path, text: str = BAD, name: str = "p.csv") -> AttendanceError:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(AttendanceError) as exc:
        read_leaves(f) if "kind" in text.splitlines()[0] else read_punches(f)
    return exc.value


def test_rows_keep_the_contract_format_in_english_and_read_vietnamese(tmp_path: Path) -> None:
    exc = _refusal(tmp_path)
    assert [text_in(x, "en") for x in exc.lines] == [NO_OFFSET_EN, "row 4: staff: empty"]
    assert [text_in(x, "vi") for x in exc.lines] == [NO_OFFSET_VI, "dòng 4: staff: để trống"]
    head_en = "p.csv: 2 bad row(s), nothing imported"
    assert text_in(exc, "en") == "\n".join((head_en, NO_OFFSET_EN, "row 4: staff: empty"))
    assert text_in(exc, "vi").startswith("p.csv: 2 dòng sai, không nhập gì\n" + NO_OFFSET_VI)
    again = pickle.loads(pickle.dumps(exc.args[0]))  # noqa: S301 — our own bytes; the id and fields survive
    assert text_in(again, "en") == text_in(exc, "en")


def test_header_and_leave_rows_in_both_languages(tmp_path: Path) -> None:
    exc = _refusal(tmp_path, "staff,terminal\nCB01,T1\n")
    assert (text_in(exc, "en"), text_in(exc, "vi")) == (
        "row 1: header: missing column time",
        "dòng 1: header: thiếu cột time",
    )
    leave = "staff,kind,from,to,half,reason\nCB01,X,2026-03-09,2026-03-06,noon,\n"
    exc = _refusal(tmp_path, leave, "nghi.csv")
    en, vi = text_in(exc, "en").splitlines(), text_in(exc, "vi").splitlines()
    assert en[0] == "nghi.csv: 4 bad row(s), nothing imported"
    assert vi[0] == "nghi.csv: 4 dòng sai, không nhập gì"
    assert "row 2: to: 2026-03-06 is before from 2026-03-09 (reversed range)" in en
    assert "dòng 2: to: 06/03/2026 trước ngày from 09/03/2026 (khoảng ngược)" in vi  # dd/mm/yyyy
    assert "row 2: half: 'noon' is not am or pm" in en and "dòng 2: half: 'noon' không phải am hoặc pm" in vi


def test_import_summary_in_both_languages() -> None:
    rep = PunchImport(rows=5, new=3, unknown=["x"])
    assert text_in(rep.summary(), "en") == (
        "imported 5 row(s): 3 new punch(es), 2 already present; 1 of unknown staff kept aside"
    )
    assert text_in(rep.summary(), "vi") == (
        "đã nhập 5 dòng: 3 lượt chấm công mới, 2 lượt đã có; 1 lượt của cán bộ chưa có hồ sơ được giữ riêng"
    )


def test_cli_refusal_in_the_chosen_language(tmp_path: Path) -> None:
    env = {"CBCC_DATABASE__URL": f"sqlite:///{tmp_path / 'g.db'}"}
    f = tmp_path / "p.csv"
    f.write_text(BAD, encoding="utf-8")
    runner = CliRunner()
    vi = runner.invoke(app, ["attendance", "import-punches", str(f)], env=env | {"CBCC_LANG": "vi"})
    en = runner.invoke(app, ["attendance", "import-punches", str(f)], env=env | {"CBCC_LANG": "en"})
    assert vi.exit_code == en.exit_code == 1  # refused input (attendance-v1 §2)
    assert NO_OFFSET_VI in " ".join(vi.output.split()) and "dòng 4: staff: để trống" in vi.output
    assert NO_OFFSET_EN in " ".join(en.output.split()) and "row 4: staff: empty" in en.output
    bad_shift = ["attendance", "shift", "set", "hc", "--name", "HC", "--sessions", "07:30", "--days", "Mon"]
    vi = runner.invoke(app, bad_shift, env=env | {"CBCC_LANG": "vi"})
    en = runner.invoke(app, bad_shift, env=env | {"CBCC_LANG": "en"})
    assert "--sessions: phiên '07:30' không có dạng HH:MM-HH:MM" in vi.output
    assert "--sessions: session '07:30' is not HH:MM-HH:MM" in en.output


@pytest.fixture
def aenv(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}")
    with e.engine.begin() as conn:
        staff = {
            "staff_code": "CB0001",
            "full_name": "Nguyễn Thị Hương",
            "agency_code": "H01.02",
            "unit": "H01.02",
            "position": "",
            "active": True,
            "updated_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
        conn.execute(sa.insert(store.T_STAFF), [staff])
        store.set_shift(conn, "hc", "HC", "07:30-11:30,13:00-17:00", "Mon-Fri", 0, 0)
        store.assign(conn, "hc", date(2026, 1, 1), None, unit="H01.02")
    yield e
    e.client.close()
    e.engine.dispose()


def _both(env: Env, who: str, method: str, path: str, body: object) -> tuple[str, str]:
    """The same refused request's ``detail`` without Accept-Language (Vietnamese) and in English."""
    vi = env.client.request(method, API + path, json=body, headers=env.h(who))
    en = env.client.request(method, API + path, json=body, headers=env.h(who) | {"Accept-Language": "en"})
    assert vi.status_code == en.status_code and vi.json()["code"] == en.json()["code"]
    return vi.json()["detail"], en.json()["detail"]


def test_api_refusals_in_the_request_language(aenv: Env) -> None:
    leave = {"staff": "CB0001", "kind": "P", "from": "2026-03-09", "to": "2026-03-06", "reason": "phép"}
    vi, en = _both(aenv, "hr", "POST", "/leave", leave)
    assert en == "--to: 2026-03-06 is before --from 2026-03-09 (reversed range)"
    assert vi == "--to: 06/03/2026 trước --from 09/03/2026 (khoảng ngược)"  # dd/mm/yyyy
    punches = {"punches": [{"staff": "CB0001", "time": "2026-03-05T17:00:00"},
                           {"staff": "CB0001", "time": "hôm qua"}]}  # fmt: skip
    vi, en = _both(aenv, "hr", "POST", "/punches", punches)
    assert en == (
        "punches[0]: time: '2026-03-05T17:00:00' has no UTC offset (write it like "
        "2026-03-02T07:58:00+07:00); punches[1]: time: 'hôm qua' is not an ISO 8601 time"
    )
    assert vi == (
        "punches[0]: time: '2026-03-05T17:00:00' thiếu độ lệch UTC (hãy viết như 2026-03-02T07:58:00+07:00); "
        "punches[1]: time: 'hôm qua' không phải thời điểm ISO 8601"
    )
    shift = {"name": "Ca", "sessions": "07:30-11:30", "days": "Mon-Fri"}
    vi, en = _both(aenv, "hr_h1", "PUT", "/shifts/c1", shift)
    assert en == "a shift is shared by every unit; only an unscoped account may change it"
    assert vi == (
        "Ca làm việc dùng chung cho mọi đơn vị; chỉ tài khoản không giới hạn đơn vị mới được thay đổi"
    )
    vi, en = _both(aenv, "hr", "PUT", "/shifts/c1", shift | {"days": "Thu2-Thu6"})
    assert (en, vi) == (
        "--days: 'Thu2-Thu6' is not a day or range of Mon..Sun",
        "--days: 'Thu2-Thu6' không phải một ngày hay khoảng ngày trong Mon..Sun",
    )


def test_the_past_month_refusal_names_its_dates_as_each_language_writes_them(
    aenv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.api.attendance as api

    monkeypatch.setattr(api, "today", lambda: date(2026, 12, 6))  # the earliest end: 30/11/2026
    aid = aenv.client.get(API + "/assignments", headers=aenv.h("hr")).json()[0]["id"]
    vi, en = _both(aenv, "hr", "PATCH", f"/assignments/{aid}", {"to": "2026-10-05"})
    assert en == (
        "to: 2026-10-05 is in a past month, whose timesheets keep the shift; end it on 2026-11-30 or later"
    )
    assert vi == (
        "to: 05/10/2026 thuộc tháng đã qua, bảng chấm công của tháng đó giữ nguyên ca; "
        "hãy kết thúc từ ngày 30/11/2026 trở đi"
    )
    # refused: nothing changed, nothing audited; the machine fields stay ISO
    listed = aenv.client.get(API + "/assignments", headers=aenv.h("hr")).json()[0]
    assert (listed["from"], listed["to"]) == ("2026-01-01", None)
    with aenv.engine.connect() as conn:
        audited = conn.execute(sa.select(store.T_AUDIT.c.action)).scalars().all()
    assert "attendance.assign.end" not in audited
    # the command line says the same in the operator's language
    with aenv.engine.begin() as conn, pytest.raises(AttendanceError) as exc:
        store.end_assignment(conn, aid, date(2026, 10, 5), date(2026, 12, 6), "test")
    assert (text_in(exc.value, "vi"), text_in(exc.value, "en")) == (vi, en)
