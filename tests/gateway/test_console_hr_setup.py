"""The console's HR set-up pages by direct requests (no browser): shifts and their assignment,
the calendar, punch import — roles (admin / facility / hr / auditor), unit scopes (a scoped hr
officer by form and by URL), CSRF on every POST, refusals that change nothing, audit entries, and
both languages. The browser test is tests/e2e/test_console_e2e.py."""

from __future__ import annotations

import html
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway import db
from gateway.api import ApiContext, create_app
from gateway.attendance import store
from gateway.console import accounts, i18n
from gateway.models import StaffRecord
from gateway.secretbox import SecretBox
from gateway.settings import Settings

PW = "mat-khau-rat-dai-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
USERS = (
    ("admin", "admin", ""),
    ("facility", "facility", ""),
    ("hr", "hr", ""),
    ("hr-a", "hr", "H01"),
    ("auditor", "auditor", ""),
)


@dataclass
class Env:
    engine: Engine
    app: object

    def login(self, username: str, lang: str = "vi") -> tuple[TestClient, str]:
        c = TestClient(self.app, base_url="http://testserver")  # type: ignore[arg-type]
        page = c.get("/console/login")
        r = c.post(
            "/console/login",
            data={"csrf": _csrf(page.text), "username": username, "password": PW, "next": "/console/"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        c.get(f"/console/lang/{lang}")
        return c, _csrf(c.get("/console/account").text)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    with Session(engine) as s:
        for code, name, unit in (
            ("CB-A1", "Nguyễn Văn An", "H01.01"),
            ("CB-A2", "Đặng Thị Đào", "H01.02"),
            ("CB-B1", "Nguyễn Văn Anh", "H02.01"),
        ):
            s.add(StaffRecord(staff_code=code, full_name=name, agency_code=unit, unit=unit, updated_at=T0))
        s.commit()
        for username, role, scope in USERS:
            accounts.create_user(s, username, PW, role, unit_scope=scope, created_by="test")
        s.commit()
    with engine.begin() as conn:
        store.set_shift(conn, "hc", "Hành chính", "07:30-11:30,13:00-17:00", "Mon-Fri", 5, 5)
    ctx = ApiContext(engine=engine, settings=Settings(), box=SecretBox(os.urandom(32)))
    yield Env(engine, create_app(ctx))
    engine.dispose()


def _rows(env: Env, table: str) -> list[tuple[object, ...]]:
    with env.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]


def _actions(env: Env) -> list[str]:
    with env.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT action FROM auditentry"))]


SHIFT = {
    "id": "ca-sang",
    "name": "Ca sáng",
    "start1": "06:00",
    "end1": "10:00",
    "start2": "10:30",
    "end2": "14:00",
    "day": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
    "grace_in": "10",
    "grace_out": "0",
}
ASSIGN = {"shift": "ca-sang", "target": "staff", "who": "CB-A1", "from": "01/03/2026", "to": "31/03/2026"}
POSTS = (
    ("/console/attendance/shifts", SHIFT),
    ("/console/attendance/assign", ASSIGN),
    ("/console/attendance/calendar", {"day": "2026-03-09", "kind": "workday"}),
    ("/console/attendance/calendar/unset", {"day": "2026-03-09"}),
)


def test_every_new_post_needs_the_csrf_token(env: Env) -> None:
    c, _token = env.login("admin")
    for path, data in POSTS:
        for bad in ({}, {"csrf": "forged"}):
            assert c.post(path, data={**data, **bad}).status_code == 403, path
    r = c.post(
        "/console/attendance/punches",
        data={"csrf": "forged"},
        files={"file": ("p.csv", b"staff,time\nCB-A1,2026-03-02T07:58:00+07:00\n")},
    )
    assert r.status_code == 403
    assert (
        _rows(env, "att_assignment") == []
        and _rows(env, "att_calendar") == []
        and _rows(env, "att_punch") == []
    )
    assert [r[0] for r in _rows(env, "att_shift")] == ["hc"]


def test_roles_on_every_new_page_and_action(env: Env) -> None:
    pages = (
        "/console/attendance/shifts",
        "/console/attendance/calendar?year=2026",
        "/console/attendance/punches",
    )
    fac, ftok = env.login("facility")
    for path in pages:
        assert fac.get(path).status_code == 403, path
    for path, data in POSTS:
        assert fac.post(path, data={**data, "csrf": ftok}).status_code == 403, path
    aud, atok = env.login("auditor")  # reads shifts and the calendar, changes nothing, imports nothing
    assert aud.get(pages[0]).status_code == 200 and aud.get(pages[1]).status_code == 200
    assert aud.get(pages[2]).status_code == 403
    for path, data in POSTS:
        assert aud.post(path, data={**data, "csrf": atok}).status_code == 403, path
    shifts = aud.get(pages[0]).text
    assert (
        'action="/console/attendance/shifts"' not in shifts
        and 'action="/console/attendance/assign"' not in shifts
    )
    assert 'method="post" action="/console/attendance/calendar"' not in aud.get(pages[1]).text
    assert _rows(env, "att_assignment") == [] and _rows(env, "att_calendar") == []


def test_shift_edit_and_assign_through_the_api_rules(env: Env) -> None:
    hr, token = env.login("hr")
    page = hr.get("/console/attendance/shifts")
    assert page.status_code == 200 and "Hành chính" in page.text and "Ca mới" in page.text
    # refused by the engine's own rule (overlapping sessions): the form comes back with its values
    r = hr.post("/console/attendance/shifts", data={**SHIFT, "end1": "11:00", "csrf": token})
    text = html.unescape(r.text)  # the engine's refusal in the viewer's language
    assert r.status_code == 422 and "chồng lên hoặc đứng trước phiên" in text and 'value="Ca sáng"' in text
    en, en_token = env.login("hr", lang="en")
    r = en.post("/console/attendance/shifts", data={**SHIFT, "end1": "11:00", "csrf": en_token})
    assert r.status_code == 422 and "overlaps or precedes session" in html.unescape(r.text)
    r = hr.post("/console/attendance/shifts", data={**SHIFT, "day": [], "csrf": token})
    assert r.status_code == 422 and "Đánh dấu ít nhất một ngày" in r.text
    r = hr.post("/console/attendance/shifts", data={**SHIFT, "end2": "", "csrf": token})
    assert r.status_code == 422
    assert [x[0] for x in _rows(env, "att_shift")] == ["hc"]
    r = hr.post("/console/attendance/shifts", data={**SHIFT, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=shift")
    with env.engine.connect() as conn:
        row = conn.execute(sa.select(store.T_SHIFT).where(store.T_SHIFT.c.id == "ca-sang")).one()
    assert (row.sessions, row.days, row.grace_in) == (
        "06:00-10:00,10:30-14:00",
        "Mon,Tue,Wed,Thu,Fri,Sat",
        10,
    )
    # edit: the form is filled from the stored shift; a change replaces it
    edit = hr.get("/console/attendance/shifts?edit=ca-sang").text
    assert 'value="10:30"' in edit and 'id="sh-d-Sat" name="day" value="Sat" checked' in edit
    r = hr.post(
        "/console/attendance/shifts",
        data={**SHIFT, "grace_in": "15", "editing": "ca-sang", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with env.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT grace_in FROM att_shift WHERE id = 'ca-sang'")).scalar() == 15
    # assign: refusals (unknown staff, reversed dates, unknown shift) change nothing
    for bad, word in (
        ({"who": "CB-ZZ"}, "mã cán bộ không có"),
        ({"to": "2026-02-01"}, "trước --from"),
        ({"shift": "nope"}, "không có ca"),
    ):  # the store's refusals, in the viewer's language
        r = hr.post("/console/attendance/assign", data={**ASSIGN, **bad, "csrf": token})
        assert r.status_code == 422 and word in html.unescape(r.text), (bad, r.status_code)
    for bad_day in ("31/02/2026", "2026/03/01", "3-1-2026"):  # dates: day/month/year or ISO
        r = hr.post("/console/attendance/assign", data={**ASSIGN, "from": bad_day, "csrf": token})
        assert r.status_code == 400 and "ngày/tháng/năm" in r.text, bad_day
    assert _rows(env, "att_assignment") == []
    r = hr.post("/console/attendance/assign", data={**ASSIGN, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=assign")
    unit = {**ASSIGN, "target": "unit", "who": "H02.01", "to": ""}
    assert (
        hr.post(
            "/console/attendance/assign", data={**unit, "csrf": token}, follow_redirects=False
        ).status_code
        == 303
    )
    listed = hr.get("/console/attendance/shifts").text
    assert (
        "01/03/2026" in listed and "31/03/2026" in listed and "không thời hạn" in listed
    )  # Vietnamese dates
    with env.engine.connect() as conn:
        got = conn.execute(
            sa.text('SELECT shift_id, staff_code, unit, start, "end" FROM att_assignment')
        ).all()
    assert [tuple(g) for g in got] == [
        ("ca-sang", "CB-A1", None, "2026-03-01", "2026-03-31"),
        ("ca-sang", None, "H02.01", "2026-03-01", None),
    ]
    # the engine uses it: CB-A1 is due on Saturday 7 March
    rep = store.compute_month(env.engine, "2026-03", staff="CB-A1")
    assert rep["staff"][0]["days"]["2026-03-07"]["flags"] == ["absent"]
    acts = _actions(env)
    for a in (
        "attendance.shift.set",
        "console.attendance.shift",
        "attendance.assign",
        "console.attendance.assign",
    ):
        assert a in acts, a


def test_scoped_hr_assigns_within_its_units_and_never_edits_shared_things(env: Env) -> None:
    hra, token = env.login("hr-a")  # hr of H01 only
    page = hra.get("/console/attendance/shifts").text
    assert 'action="/console/attendance/shifts"' not in page and 'action="/console/attendance/assign"' in page
    assert hra.post("/console/attendance/shifts", data={**SHIFT, "csrf": token}).status_code == 403
    for who, target in (("CB-B1", "staff"), ("H02.01", "unit"), ("H02", "unit")):
        r = hra.post(
            "/console/attendance/assign",
            data={**ASSIGN, "shift": "hc", "who": who, "target": target, "csrf": token},
        )
        assert r.status_code == 403, who
    assert (
        hra.post(
            "/console/attendance/calendar", data={"day": "2026-03-09", "kind": "workday", "csrf": token}
        ).status_code
        == 403
    )
    assert (
        'method="post" action="/console/attendance/calendar"'
        not in hra.get("/console/attendance/calendar").text
    )
    assert _rows(env, "att_assignment") == [] and _rows(env, "att_calendar") == []
    r = hra.post(
        "/console/attendance/assign", data={**ASSIGN, "shift": "hc", "csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303
    # another unit's assignment (made by an unscoped officer) is not listed to the scoped one
    hr, htok = env.login("hr")
    hr.post("/console/attendance/assign", data={**ASSIGN, "shift": "hc", "who": "CB-B1", "csrf": htok})
    listed = hra.get("/console/attendance/shifts").text
    assert "CB-A1" in listed and "CB-B1" not in listed
    assert "CB-B1" in hr.get("/console/attendance/shifts").text
    # punch file with a person of another unit: nothing imported
    mixed = "staff,time\nCB-A1,2026-03-02T07:58:00+07:00\nCB-B1,2026-03-02T07:59:00+07:00\n"
    r = hra.post(
        "/console/attendance/punches", data={"csrf": token}, files={"file": ("p.csv", mixed.encode())}
    )
    assert r.status_code == 403 and "Không nhập gì" in r.text and "CB-B1" in r.text
    assert _rows(env, "att_punch") == []


def test_calendar_shows_shipped_swaps_and_edits_overrides(env: Env) -> None:
    hr, token = env.login("hr")
    page = hr.get("/console/attendance/calendar?year=2026")
    assert page.status_code == 200
    text = page.text
    # the shipped 2026 New Year swap: Friday 2 Jan off, Saturday 10 Jan worked (Vietnamese dates)
    assert "Thứ Sáu, 02/01/2026" in text and "Thứ Bảy, 10/01/2026" in text and "Có sẵn" in text
    assert hr.get("/console/attendance/calendar?year=1999").status_code == 400
    r = hr.post("/console/attendance/calendar", data={"day": "2026-03-09", "kind": "dayoff", "csrf": token})
    assert r.status_code == 422 and "name" in r.text  # a day off needs a name (the store's rule)
    r = hr.post("/console/attendance/calendar", data={"day": "2026-13-09", "kind": "workday", "csrf": token})
    assert r.status_code == 400
    assert _rows(env, "att_calendar") == []
    r = hr.post(
        "/console/attendance/calendar",
        data={"day": "9/3/2026", "kind": "dayoff", "name": "Kỷ niệm", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("year=2026&done=set")
    r = hr.post(
        "/console/attendance/calendar",
        data={"day": "2026-11-24", "kind": "workday", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    text = hr.get("/console/attendance/calendar?year=2026").text
    assert "Thứ Hai, 09/03/2026" in text and "Kỷ niệm" in text and "Ghi đè tại đơn vị" in text
    assert "thay cho: Ngày lễ (L)" in text  # 24 Nov: a shipped holiday turned into a working day
    assert store.calendar_year(env.engine.connect(), 2026)  # the same rows the page shows
    r = hr.post(
        "/console/attendance/calendar/unset",
        data={"day": "2026-03-09", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = hr.post("/console/attendance/calendar/unset", data={"day": "2026-03-09", "csrf": token})
    assert r.status_code == 404
    assert [(str(d), k) for d, k, *_ in _rows(env, "att_calendar")] == [("2026-11-24", "workday")]
    en, _t = env.login("hr", lang="en")
    text = en.get("/console/attendance/calendar?year=2026").text
    assert "Fri, Jan 2, 2026" in text and "Day off (swapped)" in text and '<html lang="en">' in text
    acts = _actions(env)
    for a in ("attendance.calendar.set", "console.attendance.calendar.set", "attendance.calendar.unset"):
        assert a in acts, a


def _xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_punch_import_rows_errors_and_unknown_staff(env: Env) -> None:
    hr, token = env.login("hr")
    assert "Nhập tệp chấm công" in hr.get("/console/attendance/punches").text
    bad = (
        "staff,time,terminal\n"
        "CB-A1,2026-03-02T07:58:00+07:00,T1\n"
        "CB-A2,2026-03-02 07:59,T1\n"  # no offset
        ",2026-03-02T08:00:00+07:00,T1\n"  # no staff
    )
    r = hr.post(
        "/console/attendance/punches", data={"csrf": token}, files={"file": ("cham.csv", bad.encode())}
    )
    assert r.status_code == 400
    text = html.unescape(r.text)  # each row in the viewer's language, the column name as in the file
    assert "Không nhập gì" in text and "dòng 3: time: '2026-03-02 07:59' thiếu độ lệch UTC" in text
    assert "dòng 4: staff: để trống" in text and "cham.csv: 2 dòng sai" in text
    en, en_token = env.login("hr", lang="en")
    r = en.post(
        "/console/attendance/punches", data={"csrf": en_token}, files={"file": ("cham.csv", bad.encode())}
    )
    text = html.unescape(r.text)  # the contract's own wording (attendance-v1 §3) for an English viewer
    assert "row 3: time: '2026-03-02 07:59' has no UTC offset" in text and "row 4: staff: empty" in text
    assert _rows(env, "att_punch") == []
    r = hr.post("/console/attendance/punches", data={"csrf": token}, files={"file": ("x.xlsx", b"not a zip")})
    assert r.status_code == 400 and "XLSX" in r.text and "Không nhập gì" in r.text
    r = hr.post("/console/attendance/punches", data={"csrf": token}, files={"file": ("x.txt", b"a")})
    assert r.status_code == 400
    # local times accepted when the box is ticked; an unknown staff code kept aside and listed
    good = _xlsx(
        [
            ["AC-No.", "Time", "Device"],
            ["CB-A1", "2026-03-02 07:58:00", "T1"],
            ["CB-A1", "2026-03-02 17:05:00", "T1"],
            ["CB-X9", "2026-03-02 07:50:00", "T2"],
        ]
    )
    r = hr.post(
        "/console/attendance/punches", data={"csrf": token, "local": "yes"}, files={"file": ("zk.xlsx", good)}
    )
    assert r.status_code == 200, r.text[:500]
    text = html.unescape(r.text)
    assert (
        "Đã nhập tệp" in text
        and "Chấm công của mã chưa có" in text
        and "dòng 4: staff: mã cán bộ chưa có 'CB-X9'" in text
    )
    with env.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT staff_code, source FROM att_punch ORDER BY at")).all()
    assert sorted(tuple(g) for g in got) == [("CB-A1", "import"), ("CB-A1", "import"), ("CB-X9", "import")]
    # the same file again: nothing new, every row already present
    r = hr.post(
        "/console/attendance/punches", data={"csrf": token, "local": "yes"}, files={"file": ("zk.xlsx", good)}
    )
    assert re.search(r"Lượt chấm mới</dt><dd>0<", r.text) and re.search(r"Đã có</dt><dd>3<", r.text)
    with env.engine.begin() as conn:
        store.assign(conn, "hc", date(2026, 3, 1), None, staff="CB-A1")
    day = store.compute_month(env.engine, "2026-03", staff="CB-A1")["staff"][0]["days"]["2026-03-02"]
    assert (day["in"], day["out"]) == ("07:58", "17:05")
    acts = _actions(env)
    assert "attendance.import_punches" in acts and "console.attendance.import_punches" in acts


def test_new_pages_in_both_languages_with_labels(env: Env) -> None:
    for lang, words in (
        ("vi", ("Ca làm việc", "Lịch", "Nhập chấm công")),
        ("en", ("Shifts", "Calendar", "Import punches")),
    ):
        c, _t = env.login("admin", lang=lang)
        for path, word in zip(
            ("/console/attendance/shifts", "/console/attendance/calendar", "/console/attendance/punches"),
            words,
            strict=True,
        ):
            r = c.get(path)
            assert r.status_code == 200 and f'<html lang="{lang}">' in r.text and word in r.text, (lang, path)
            # every form control has a label
            ids = set(re.findall(r'<(?:input|select)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', r.text))
            labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', r.text))
            assert ids and ids <= labelled, (path, ids - labelled)


def test_date_and_time_fields_are_vietnamese_whatever_the_browser_locale(env: Env) -> None:
    """Text fields, not the browser's pickers (whose format follows the machine's locale)."""
    vi, _t = env.login("hr")
    page = vi.get("/console/attendance/shifts").text
    assert re.search(r'id="as-from"[^>]*value="\d{2}/\d{2}/\d{4}"', page)
    assert 'type="date"' not in page and 'type="time"' not in page
    assert re.search(r'id="sh-s1"[^>]*value="07:30"', page)  # 24-hour clock
    changes = vi.get("/console/attendance/changes").text
    assert re.search(r'id="co-day"[^>]*value="\d{2}/\d{2}/\d{4}"', changes) and 'type="time"' not in changes
    en, _t = env.login("hr", lang="en")
    assert re.search(r'id="as-from"[^>]*value="\d{4}-\d{2}-\d{2}"', en.get("/console/attendance/shifts").text)


def test_scoped_hr_typing_another_units_url(env: Env) -> None:
    """The timesheet, its downloads and the overtime list of another unit, by URL: nobody of it."""
    with env.engine.begin() as conn:
        store.assign(conn, "hc", date(2026, 3, 1), None, unit="H02.01")
        store.assign(conn, "hc", date(2026, 3, 1), None, unit="H01.01")
    hra, _t = env.login("hr-a")
    page = hra.get("/console/attendance?month=2026-03&unit=H02.01")
    assert (
        page.status_code in (200, 403, 404) and "CB-B1" not in page.text and "Nguyễn Văn Anh" not in page.text
    )
    csv = hra.get("/console/attendance/timesheet.csv?month=2026-03&unit=H02.01")
    assert "CB-B1" not in csv.text
    assert "CB-B1" not in hra.get("/console/attendance?month=2026-03").text
    assert "CB-A1" in hra.get("/console/attendance?month=2026-03").text


def test_assignment_end_and_delete_by_role_and_unit(env: Env) -> None:
    """End and delete by form: CSRF, roles, another unit's assignment by URL (404, unchanged), a
    refusal shown on the page in the user's language, audit entries of the domain and the console."""
    today = datetime.now(UTC).astimezone(i18n.VN_TZ).date()
    floor = today.replace(day=1) - timedelta(1)
    with env.engine.begin() as conn:
        a1 = store.assign(conn, "hc", date(2026, 3, 1), None, staff="CB-A1")
        b1 = store.assign(conn, "hc", date(2026, 3, 1), None, staff="CB-B1")
        later = store.assign(conn, "hc", today + timedelta(40), None, unit="H01.02")
    store.refresh_days(env.engine)
    before = _rows(env, "att_assignment")
    end = {"to": floor.strftime("%d/%m/%Y")}
    hra, token = env.login("hr-a")  # hr of H01 only
    page = hra.get("/console/attendance/shifts").text
    assert f'/assignments/{a1}/end"' in page and f"/assignments/{b1}/" not in page
    at = "/console/attendance/assignments"
    for path in (f"{at}/{b1}/end", f"{at}/{b1}/delete"):
        assert hra.post(path, data={**end, "csrf": token}).status_code == 404, path
    for path in (f"{at}/{a1}/end", f"{at}/{later}/delete"):
        assert hra.post(path, data={**end, "csrf": "forged"}).status_code == 403, path
        for role in ("facility", "auditor"):
            c, t = env.login(role)
            assert c.post(path, data={**end, "csrf": t}).status_code == 403, (role, path)
    assert "assignments/" not in env.login("auditor")[0].get("/console/attendance/shifts").text
    r = hra.post(f"{at}/{a1}/delete", data={"csrf": token})
    assert r.status_code == 409 and "đã áp dụng vào bảng chấm công ngày 01/03/2026" in html.unescape(r.text)
    r = hra.post(f"{at}/{a1}/end", data={"csrf": token, "to": "28/02/2026"})
    assert r.status_code == 422 and "trước ngày bắt đầu" in html.unescape(r.text)
    assert hra.post(f"{at}/{a1}/end", data={"csrf": token, "to": "31/02/2026"}).status_code == 400
    assert _rows(env, "att_assignment") == before
    r = hra.post(f"{at}/{a1}/end", data={**end, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    page = hra.get(r.headers["location"]).text
    assert "Đã kết thúc phân ca." in page and f'id="as-end-{a1}"' in page
    r = hra.post(f"{at}/{later}/delete", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "Đã xoá phân ca." in hra.get(r.headers["location"]).text
    ends = [(x[0], str(x[5])) for x in _rows(env, "att_assignment")]  # id, end (SQLite's text)
    assert ends == [(a1, floor.isoformat()), (b1, "None")]
    assert [a for a in _actions(env) if ".assign." in a] == [
        "attendance.assign.end",
        "console.attendance.assign.end",
        "attendance.assign.delete",
        "console.attendance.assign.delete",
    ]
    en, etok = env.login("hr-a", lang="en")
    r = en.post(f"{at}/{a1}/delete", data={"csrf": etok})
    assert r.status_code == 409 and "end it, do not delete it" in html.unescape(r.text)
