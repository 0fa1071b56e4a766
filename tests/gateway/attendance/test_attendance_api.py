"""Attendance over HTTP: roles, the hr token's unit scope, refused input (422, nothing changed),
and the audit trail of every timesheet produced."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

# The API test environment (tokens of every role and scope) lives with the gateway API tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_gateway_api import Env, make_env

from gateway.attendance import store
from gateway.attendance.times import VN
from gateway.models import AuditEntry

API = "/api/v1/attendance"


@pytest.fixture(params=["sqlite", "postgresql"])
def aenv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'g.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    e = make_env(url)
    e.client.headers["Accept-Language"] = "en"  # the texts matched below (Vietnamese: test_attendance_i18n)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with e.engine.begin() as conn:
        conn.execute(
            sa.insert(store.T_STAFF),
            [
                {"staff_code": "CB0001", "full_name": "Nguyễn Thị Hương", "agency_code": "H01.02",
                 "unit": "H01.02", "position": "", "active": True, "updated_at": now},
                {"staff_code": "CB0002", "full_name": "Trần Văn Đức", "agency_code": "H02.01",
                 "unit": "H02.01", "position": "", "active": True, "updated_at": now},
            ],
        )  # fmt: skip
        store.set_shift(conn, "hc", "HC", "07:30-11:30,13:00-17:00", "Mon-Fri", 0, 0)
        store.assign(conn, "hc", date(2026, 1, 1), None, unit="H01.02")
        store.assign(conn, "hc", date(2026, 1, 1), None, unit="H02.01")
    yield e
    e.client.close()
    e.engine.dispose()


def test_report_roles_and_scope(aenv: Env) -> None:
    c = aenv.client
    for who in ("admin", "hr", "auditor"):
        r = c.get(f"{API}/report", params={"month": "2026-03"}, headers=aenv.h(who))
        assert r.status_code == 200, r.text
        assert [s["staff"] for s in r.json()["staff"]] == ["CB0001", "CB0002"]
    assert c.get(f"{API}/report", params={"month": "2026-03"}, headers=aenv.h("facility")).status_code == 403
    r = c.get(f"{API}/report", params={"month": "2026-03"}, headers=aenv.h("hr_h1"))
    assert [s["staff"] for s in r.json()["staff"]] == ["CB0001"]  # H02 is outside the token's scope
    assert (
        c.get(
            f"{API}/report", params={"month": "2026-03", "unit": "H02.01"}, headers=aenv.h("hr_h1")
        ).status_code
        == 403
    )
    assert (
        c.get(
            f"{API}/report", params={"month": "2026-03", "staff": "CB0002"}, headers=aenv.h("hr_h1")
        ).status_code
        == 403
    )
    assert c.get(f"{API}/report", params={"month": "2026-13"}, headers=aenv.h("hr")).status_code == 422
    with aenv.engine.connect() as conn:
        rows = conn.execute(sa.select(AuditEntry.actor, AuditEntry.role).where(  # type: ignore[call-overload]
            AuditEntry.action == "attendance.report")).all()  # fmt: skip
    assert len(rows) == 4 and {r[1] for r in rows} == {"admin", "hr", "auditor"}


def test_changes_and_refusals(aenv: Env) -> None:
    c = aenv.client
    body = {"staff": "CB0001", "kind": "P", "from": "2026-03-02", "to": "2026-03-03", "reason": "phép"}
    assert c.post(f"{API}/leave", json=body, headers=aenv.h("auditor")).status_code == 403
    assert c.post(f"{API}/leave", json=body, headers=aenv.h("hr")).status_code == 201
    r = c.post(f"{API}/leave", json=body | {"from": "2026-03-03", "to": "2026-03-04"}, headers=aenv.h("hr"))
    assert r.status_code == 422 and "overlaps" in r.text
    r = c.post(f"{API}/leave", json=body | {"from": "2026-03-09", "to": "2026-03-06"}, headers=aenv.h("hr"))
    assert r.status_code == 422 and "reversed" in r.text
    assert c.post(f"{API}/leave", json=body | {"staff": "CB0002", "from": "2026-03-09", "to": "2026-03-09"},
                  headers=aenv.h("hr_h1")).status_code == 403  # fmt: skip
    bad = {"punches": [{"staff": "CB0002", "time": "2026-03-05T07:30:00+07:00"},
                       {"staff": "CB0002", "time": "2026-03-05T17:00:00"}]}  # fmt: skip
    r = c.post(f"{API}/punches", json=bad, headers=aenv.h("hr"))
    assert r.status_code == 422 and "punches[1]: time" in r.text
    good = {"punches": [{"staff": "CB0002", "time": "2026-03-05T07:30:00+07:00"},
                        {"staff": "CB0002", "time": "2026-03-05T10:05:00Z", "terminal": "T1"}]}  # fmt: skip
    r = c.post(f"{API}/punches", json=good, headers=aenv.h("hr"))
    assert r.json() == {"rows": 2, "new": 2, "unknown_staff": []}
    corr = {"staff": "CB0002", "action": "void", "time": "2026-03-05T17:05:00+07:00", "reason": "nhầm"}
    assert c.post(f"{API}/corrections", json=corr, headers=aenv.h("hr")).status_code == 201
    rep = c.get(f"{API}/report", params={"month": "2026-03"}, headers=aenv.h("hr")).json()
    d = rep["staff"][1]["days"]["2026-03-05"]
    assert (d["in"], d["out"], d["flags"]) == ("07:30", None, ["missing_punch", "corrected"])
    p = rep["staff"][0]["days"]["2026-03-02"]
    assert p["symbol"] == "P" and p["leave"] == {"kind": "P", "value": 1.0}
    r = c.get(f"{API}/punches", params={"staff": "CB0002", "from": "2026-03-05", "to": "2026-03-05"},
              headers=aenv.h("hr"))  # fmt: skip
    assert [x["source"] for x in r.json()] == ["api", "api"]


def test_overtime_over_http(aenv: Env) -> None:
    c = aenv.client
    body = {"punches": [{"staff": "CB0001", "time": "2026-03-10T07:00:00+07:00"},
                        {"staff": "CB0001", "time": "2026-03-10T18:00:00+07:00"}]}  # fmt: skip
    assert c.post(f"{API}/punches", json=body, headers=aenv.h("hr")).status_code == 200
    q = {"month": "2026-03", "staff": "CB0001"}
    r = c.get(f"{API}/overtime", params=q, headers=aenv.h("hr"))
    # 30 min before 07:30 and 60 after 17:00
    assert [(o["date"], o["minutes"], o["approved_min"]) for o in r.json()] == [("2026-03-10", 90, 0)]
    ok = {"staff": "CB0001", "date": "2026-03-10", "minutes": 60, "reason": "trực"}
    assert c.post(f"{API}/overtime", json=ok | {"minutes": 91}, headers=aenv.h("hr")).status_code == 422
    assert c.post(f"{API}/overtime", json=ok, headers=aenv.h("auditor")).status_code == 403
    assert c.post(f"{API}/overtime", json=ok, headers=aenv.h("hr")).status_code == 204
    assert c.get(f"{API}/overtime", params=q, headers=aenv.h("hr")).json()[0]["approved_min"] == 60


def test_shifts_over_http(aenv: Env) -> None:
    c = aenv.client
    body = {"name": "Bảo vệ", "sessions": "06:00-18:00", "days": "Mon-Sun", "on_holidays": True}
    assert c.put(f"{API}/shifts/bv", json=body, headers=aenv.h("auditor")).status_code == 403
    assert c.put(f"{API}/shifts/bv", json=body, headers=aenv.h("hr_h1")).status_code == 403  # unit-scoped
    r = c.put(f"{API}/shifts/bv", json=body, headers=aenv.h("hr"))
    assert r.status_code == 200, r.text
    week = "Mon,Tue,Wed,Thu,Fri,Sat,Sun"
    assert r.json() == body | {"id": "bv", "grace_in": 0, "grace_out": 0, "days": week}
    bad = c.put(f"{API}/shifts/x", json=body | {"sessions": "22:00-02:00,03:00-06:00"}, headers=aenv.h("hr"))
    assert bad.status_code == 422 and "--sessions" in bad.text
    listed = c.get(f"{API}/shifts", headers=aenv.h("auditor")).json()
    assert [(s["id"], s["on_holidays"]) for s in listed] == [("bv", True), ("hc", False)]


def test_shifts_assignments_calendar_roles_and_scope(aenv: Env) -> None:
    """The CLI's rules over HTTP: shifts and the calendar are shared (unscoped writers only), a
    scoped hr token assigns within its units, every refusal changes nothing, every change audited."""
    c = aenv.client
    shift = {"name": "Ca sáng", "sessions": "06:00-14:00", "days": "Mon-Sat", "grace_in": 10}
    assert c.put(f"{API}/shifts/sang", json=shift, headers=aenv.h("auditor")).status_code == 403
    assert c.put(f"{API}/shifts/sang", json=shift, headers=aenv.h("facility")).status_code == 403
    assert c.put(f"{API}/shifts/sang", json=shift, headers=aenv.h("hr_h1")).status_code == 403  # shared
    bad = c.put(
        f"{API}/shifts/sang", json=shift | {"sessions": "14:00-06:00,07:00-08:00"}, headers=aenv.h("hr")
    )
    assert bad.status_code == 422 and "sessions" in bad.text
    r = c.put(f"{API}/shifts/sang", json=shift, headers=aenv.h("hr"))
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "sang", "name": "Ca sáng", "sessions": "06:00-14:00",
                        "days": "Mon,Tue,Wed,Thu,Fri,Sat", "grace_in": 10, "grace_out": 0,
                        "on_holidays": False}  # fmt: skip
    got = c.get(f"{API}/shifts", headers=aenv.h("auditor")).json()
    assert [s["id"] for s in got] == ["hc", "sang"]
    assert c.get(f"{API}/shifts", headers=aenv.h("facility")).status_code == 403
    # assignments: a scoped hr token within its units only
    a = {"shift": "sang", "staff": "CB0002", "from": "2026-03-01"}
    assert c.post(f"{API}/assignments", json=a, headers=aenv.h("hr_h1")).status_code == 403
    assert c.post(f"{API}/assignments", json=a | {"staff": None, "unit": "H02.01"},
                  headers=aenv.h("hr_h1")).status_code == 403  # fmt: skip
    assert c.post(f"{API}/assignments", json=a | {"unit": "H01.02"}, headers=aenv.h("hr")).status_code == 422
    r = c.post(f"{API}/assignments", json=a | {"to": "2026-02-01"}, headers=aenv.h("hr"))
    assert r.status_code == 422 and "before" in r.text
    assert c.post(f"{API}/assignments", json=a | {"shift": "nope"}, headers=aenv.h("hr")).status_code == 422
    r = c.post(
        f"{API}/assignments", json=a | {"staff": "CB0001", "to": "2026-03-31"}, headers=aenv.h("hr_h1")
    )
    assert r.status_code == 201, r.text
    assert c.post(f"{API}/assignments", json=a, headers=aenv.h("hr")).status_code == 201
    mine = c.get(f"{API}/assignments", headers=aenv.h("hr_h1")).json()
    assert [(x["staff"], x["unit"]) for x in mine] == [(None, "H01.02"), ("CB0001", None)]
    assert mine[1]["from"] == "2026-03-01" and mine[1]["to"] == "2026-03-31"
    assert len(c.get(f"{API}/assignments", headers=aenv.h("admin")).json()) == 4
    # the engine follows: CB0001 works Saturday 7 March 2026 on the new shift
    rep = c.get(f"{API}/report", params={"month": "2026-03", "staff": "CB0001"}, headers=aenv.h("hr")).json()
    assert rep["staff"][0]["days"]["2026-03-07"]["flags"] == ["absent"]
    # calendar: shipped swaps listed with their source; a site override, then removed
    cal = c.get(f"{API}/calendar", params={"year": 2026}, headers=aenv.h("auditor")).json()
    by_day = {d["date"]: d for d in cal}
    assert by_day["2026-01-02"]["kind"] == "dayoff" and by_day["2026-01-10"]["kind"] == "workday"
    tet = by_day["2026-02-17"]
    assert (tet["kind"], tet["source"], tet["shipped"]) == ("holiday", "shipped", "holiday") and tet["name"]
    over = {"kind": "dayoff", "name": "Kỷ niệm thành lập"}
    assert c.put(f"{API}/calendar/2026-03-09", json=over, headers=aenv.h("hr_h1")).status_code == 403
    assert c.put(f"{API}/calendar/2026-03-09", json=over, headers=aenv.h("auditor")).status_code == 403
    assert (
        c.put(f"{API}/calendar/2026-03-09", json={"kind": "dayoff"}, headers=aenv.h("hr")).status_code == 422
    )
    assert c.put(f"{API}/calendar/2026-03-09", json=over, headers=aenv.h("hr")).status_code == 204
    assert (
        c.put(f"{API}/calendar/2026-11-24", json={"kind": "workday"}, headers=aenv.h("hr")).status_code == 204
    )
    cal = {d["date"]: d for d in c.get(f"{API}/calendar", params={"year": 2026}, headers=aenv.h("hr")).json()}
    assert cal["2026-03-09"] == {"date": "2026-03-09", "kind": "dayoff", "name": "Kỷ niệm thành lập",
                                 "source": "site", "shipped": ""}  # fmt: skip
    assert cal["2026-11-24"]["kind"] == "workday" and cal["2026-11-24"]["shipped"] == "holiday"
    rep = c.get(f"{API}/report", params={"month": "2026-03", "staff": "CB0002"}, headers=aenv.h("hr")).json()
    assert rep["staff"][0]["days"]["2026-03-09"]["flags"] == []  # a day off: not absent
    assert c.delete(f"{API}/calendar/2026-03-09", headers=aenv.h("hr_h1")).status_code == 403
    assert c.delete(f"{API}/calendar/2026-03-09", headers=aenv.h("hr")).status_code == 204
    assert c.delete(f"{API}/calendar/2026-03-09", headers=aenv.h("hr")).status_code == 404
    cal = {d["date"] for d in c.get(f"{API}/calendar", params={"year": 2026}, headers=aenv.h("hr")).json()}
    assert "2026-03-09" not in cal
    with aenv.engine.connect() as conn:
        acts = [r[0] for r in conn.execute(sa.select(AuditEntry.action))]  # type: ignore[call-overload]
    for act in (
        "attendance.shift.set",
        "attendance.assign",
        "attendance.calendar.set",
        "attendance.calendar.unset",
    ):
        assert act in acts, act


def test_assignment_end_and_delete(aenv: Env) -> None:
    """End keeps the months an assignment applied to; delete only one no computed day used; a
    scoped hr token never reaches another unit's assignment (404, nothing changes); audited."""
    c = aenv.client
    today = datetime.now(UTC).astimezone(VN).date()
    floor = today.replace(day=1) - timedelta(1)  # the last day of the previous month
    listed = c.get(f"{API}/assignments", headers=aenv.h("admin")).json()
    ids = {(x["staff"], x["unit"]): x["id"] for x in listed}
    mine, theirs = ids[(None, "H01.02")], ids[(None, "H02.01")]
    store.refresh_days(aenv.engine)  # the computed person-days (att_day), January 2026 on

    def rows() -> list[tuple[object, ...]]:
        with aenv.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(store.T_ASSIGN).order_by(store.T_ASSIGN.c.id))]

    before = rows()
    end = {"to": today.isoformat()}
    assert c.patch(f"{API}/assignments/{theirs}", json=end, headers=aenv.h("hr_h1")).status_code == 404
    assert c.delete(f"{API}/assignments/{theirs}", headers=aenv.h("hr_h1")).status_code == 404
    assert c.delete(f"{API}/assignments/99999", headers=aenv.h("hr")).status_code == 404
    for role in ("auditor", "facility"):
        assert c.patch(f"{API}/assignments/{mine}", json=end, headers=aenv.h(role)).status_code == 403
        assert c.delete(f"{API}/assignments/{mine}", headers=aenv.h(role)).status_code == 403
    r = c.delete(f"{API}/assignments/{mine}", headers=aenv.h("hr_h1"))  # January was computed
    assert r.status_code == 409 and r.json()["code"] == "conflict" and "2026-01-01" in r.json()["detail"]
    r = c.patch(f"{API}/assignments/{mine}", json={"to": (floor - timedelta(1)).isoformat()},
                headers=aenv.h("hr_h1"))  # fmt: skip
    assert r.status_code == 422 and floor.isoformat() in r.json()["detail"]  # a closed month
    r = c.patch(f"{API}/assignments/{mine}", json={"to": "2025-12-31"}, headers=aenv.h("hr_h1"))
    assert r.status_code == 422 and "2026-01-01" in r.json()["detail"]  # before its start
    assert rows() == before
    r = c.patch(f"{API}/assignments/{mine}", json={"to": floor.isoformat()}, headers=aenv.h("hr_h1"))
    assert r.status_code == 200, r.text
    assert r.json() == {"id": mine, "shift": "hc", "staff": None, "unit": "H01.02", "from": "2026-01-01",
                        "to": floor.isoformat()}  # fmt: skip
    # the engine follows: this month has no shift for CB0001, January keeps it (5 Jan: absent)
    month = today.strftime("%Y-%m")
    now = c.get(f"{API}/report", params={"month": month, "staff": "CB0001"}, headers=aenv.h("hr")).json()
    assert all(not d["flags"] for s in now["staff"] for d in s["days"].values())
    jan = c.get(f"{API}/report", params={"month": "2026-01", "staff": "CB0001"}, headers=aenv.h("hr")).json()
    assert jan["staff"][0]["days"]["2026-01-05"]["flags"] == ["absent"]
    # one entered by mistake, never computed: deleted
    a = {"shift": "hc", "staff": "CB0001", "from": (today + timedelta(40)).isoformat()}
    new = c.post(f"{API}/assignments", json=a, headers=aenv.h("hr_h1")).json()["id"]
    assert c.delete(f"{API}/assignments/{new}", headers=aenv.h("hr_h1")).status_code == 204
    assert [r[0] for r in rows()] == [mine, theirs]
    with aenv.engine.connect() as conn:
        t = store.T_AUDIT
        q = sa.select(t.c.action, t.c.target).where(t.c.action.startswith("attendance.assign."))
        done = conn.execute(q)
        assert [tuple(x) for x in done] == [
            ("attendance.assign.end", "H01.02"),
            ("attendance.assign.delete", "CB0001"),
        ]
