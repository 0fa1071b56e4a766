"""The gateway REST API (gateway.api) and its tokens (gateway.auth), on SQLite and PostgreSQL:
the role matrix, unit scoping, pagination, the CSV export, token life cycle, audit entries,
limits on input, and the OpenAPI document kept in docs/openapi.json.

``CBCC_UPDATE_OPENAPI=1 uv run pytest tests/gateway/test_gateway_api.py -k openapi`` rewrites the document.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import audit, auth, db
from gateway.api import ApiContext, create_app
from gateway.models import (
    Alarm,
    ApiToken,
    AuditEntry,
    Command,
    ConfigPush,
    Door,
    Event,
    Quarantine,
    Reader,
    now_utc,
)
from gateway.secretbox import SecretBox
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.json"
API = "/api/v1"
T0 = datetime(2025, 3, 3, 1, 0, 0, tzinfo=UTC)


# ---- a downlink double (the real one is gateway/mqtt/downlink.py) ---------------------------------


class FakeDownlink:
    """Records commands and configuration pushes as rows, as the real downlink does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seq = 1000
        self.lockdowns: list[str] = []

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def push_config(
        self, reader_id: str, source: Mapping[str, Any], actor: str, role: str = ""
    ) -> ConfigPush:
        if "bad" in source:
            raise ValueError("configuration refused: unknown key 'bad'")
        with Session(self.engine, expire_on_commit=False) as s:
            push = ConfigPush(
                reader_id=reader_id, seq=self._next(), sha256="0" * 64, pushed_by=actor, pushed_at=now_utc()
            )
            s.add(push)
            audit.record(s, actor, "config.push", f"reader:{reader_id}", role=role)
            s.commit()
            return push

    def send_command(
        self, target: str, action: str, args: Any, actor: str, role: str = "", ttl_s: int = 300
    ) -> Command:
        with Session(self.engine, expire_on_commit=False) as s:
            now = now_utc()
            cmd = Command(
                seq=self._next(),
                target=target,
                action=action,
                args=json.dumps(args),
                issued_by=actor,
                issued_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
            s.add(cmd)
            audit.record(s, actor, "command.send", f"reader:{target}", role=role, command=action)
            s.commit()
            return cmd

    def lockdown_site(self, site: str, actor: str, role: str = "", ttl_s: int = 300) -> list[Command]:
        self.lockdowns.append(site)
        return [self.send_command("*", "lockdown", {"site": site}, actor, role, ttl_s)]


# ---- the environment: a database with two units, tokens for every role ------------------------


@dataclass
class Env:
    engine: Engine
    client: TestClient
    ctx: ApiContext
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(API + path, headers=self.h(who), **kw)

    def post(self, who: str, path: str, body: Any = None) -> Any:
        return self.client.post(API + path, headers=self.h(who), json=body)


def _event(reader_id: str, seq: int, **kw: Any) -> Event:
    at = kw.pop("occurred_at", T0 + timedelta(minutes=seq))
    return Event(
        reader_id=reader_id,
        seq=seq,
        kind=kw.pop("kind", "tap"),
        occurred_at=at,
        received_at=at,
        time_quality=2,
        record=b"\xa1\x01\x02",
        mac=b"\x00" * 32,
        **kw,
    )


def seed(engine: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    box_blob = b"\x01" + b"\x00" * 60
    with Session(engine) as s:
        s.add(Door(id="h1-main", name="Cửa chính Sở Nội vụ", site="hn", unit="H01.01"))
        s.add(Door(id="h2-main", name="Cổng Sở Tài chính", site="hn", unit="H02"))
        s.flush()
        s.add(
            Reader(
                id="r-h1", name="Đầu đọc 1", site="hn", unit="H01.01", door_id="h1-main", mac_key_enc=box_blob
            )
        )
        s.add(
            Reader(
                id="r-h2", name="Đầu đọc 2", site="hn", unit="H02", door_id="h2-main", mac_key_enc=box_blob
            )
        )
        s.add(
            Reader(id="r-h1b", site="dn", unit="H01.02", role="attendance", mac_key_enc=box_blob, online=True)
        )
        s.flush()
        s.add(
            _event(
                "r-h1",
                1,
                decision="grant",
                staff_code="CB0001",
                serial=111,
                door="h1-main",
                detail="Nguyễn Văn Ánh — lối vào",
                direction="in",
            )
        )
        s.add(
            _event(
                "r-h2", 1, decision="deny", reason="revoked", staff_code="CB0002", serial=222, door="h2-main"
            )
        )
        s.add(_event("r-h1b", 1, decision="punch", staff_code="=HYPERLINK(1)", serial=333))
        a1 = Alarm(reader_id="r-h1", kind="held_open", raised_at=T0, detail="cửa mở quá lâu")
        a2 = Alarm(reader_id="r-h2", kind="tamper", raised_at=T0)
        s.add(a1)
        s.add(a2)
        c1 = Command(seq=900001, target="r-h1", action="open", issued_by="x", issued_at=T0, expires_at=T0)
        c2 = Command(seq=900002, target="r-h2", action="reboot", issued_by="x", issued_at=T0, expires_at=T0)
        c3 = Command(seq=900003, target="*", action="lockdown", issued_by="x", issued_at=T0, expires_at=T0)
        for c in (c1, c2, c3):
            s.add(c)
        q1 = Quarantine(
            received_at=T0, topic="cbcc/v1/r/r-h1/ev", reader_id="r-h1", reason="bad_mac", payload=b"\x00\x01"
        )
        q2 = Quarantine(
            received_at=T0, topic="cbcc/v1/r/r-h2/ev", reader_id="r-h2", reason="bad_mac", payload=b"\x02"
        )
        s.add(q1)
        s.add(q2)
        s.commit()
        for name, row in (
            ("alarm_h1", a1),
            ("alarm_h2", a2),
            ("cmd_h1", c1),
            ("cmd_h2", c2),
            ("cmd_all", c3),
            ("q_h1", q1),
            ("q_h2", q2),
        ):
            assert row.id is not None
            ids[name] = row.id
        for e in s.exec(select(Event)).all():
            assert e.id is not None
            ids[f"ev_{e.reader_id}"] = e.id
    return ids


TOKEN_SPECS = {
    "admin": ("admin", ""),
    "facility": ("facility", ""),
    "hr": ("hr", ""),
    "auditor": ("auditor", ""),
    "facility_h1": ("facility", "H01"),
    "hr_h1": ("hr", "H01"),
    "auditor_h1": ("auditor", "H01"),
    "admin_h1": ("admin", "H01"),
}


def make_env(url: str, *, downlink: bool = True, metrics_open: bool | None = None) -> Env:
    db.migrate(url)
    engine = db.make_engine(url)
    ids = seed(engine)
    tokens: dict[str, str] = {}
    with Session(engine) as s:
        for who, (role, scope) in TOKEN_SPECS.items():
            _row, plaintext = auth.create_token(s, f"token {who}", role, scope, "test")
            tokens[who] = plaintext
        s.commit()
    ctx = ApiContext(
        engine=engine,
        settings=Settings(),
        box=SecretBox(os.urandom(32)),
        downlink=FakeDownlink(engine) if downlink else None,
        metrics_open=metrics_open,
    )
    client = TestClient(create_app(ctx), raise_server_exceptions=False)
    return Env(engine=engine, client=client, ctx=ctx, tokens=tokens, ids=ids)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    url = db_url  # SQLite and PostgreSQL (tests/conftest.py)
    e = make_env(url)
    yield e
    e.client.close()
    e.engine.dispose()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}")
    yield e
    e.client.close()
    e.engine.dispose()


# ---- role matrix ----------------------------------------------------------------------------

# (endpoint class, method, path, body) → roles that may call it. Bodies are valid so an allowed
# call succeeds (2xx); a denied one must be 403 whatever the body.
MATRIX: list[tuple[str, str, str, Any, set[str]]] = [
    ("readers read", "GET", "/readers", None, {"admin", "facility", "auditor"}),
    ("readers read", "GET", "/readers/r-h1", None, {"admin", "facility", "auditor"}),
    ("readers read", "GET", "/readers/laggards", None, {"admin", "facility", "auditor"}),
    ("readers write", "POST", "/readers", {"id": "new-{role}", "unit": "H01.09"}, {"admin", "facility"}),
    ("readers write", "PATCH", "/readers/r-h1", {"name": "Đầu đọc {role}"}, {"admin", "facility"}),
    (
        "config push",
        "POST",
        "/readers/r-h1/config",
        {"config": {"door": {"unlock_ms": 3000}}},
        {"admin", "facility"},
    ),
    ("readers read", "GET", "/readers/r-h1/config-pushes", None, {"admin", "facility", "auditor"}),
    ("doors read", "GET", "/doors", None, {"admin", "facility", "auditor"}),
    ("doors read", "GET", "/doors/h1-main", None, {"admin", "facility", "auditor"}),
    (
        "doors write",
        "POST",
        "/doors",
        {"id": "d-{role}", "name": "Cửa {role}", "unit": "H01.01"},
        {"admin", "facility"},
    ),
    ("doors write", "PATCH", "/doors/h1-main", {"description": "sửa bởi {role}"}, {"admin", "facility"}),
    ("events read", "GET", "/events", None, {"admin", "facility", "hr", "auditor"}),
    ("events read", "GET", "/events/{ev_r-h1}", None, {"admin", "facility", "hr", "auditor"}),
    ("events export", "GET", "/events/export.csv", None, {"admin", "hr", "auditor"}),
    ("alarms read", "GET", "/alarms", None, {"admin", "facility", "auditor"}),
    ("alarms read", "GET", "/alarms/{alarm_h1}", None, {"admin", "facility", "auditor"}),
    ("commands send", "POST", "/commands", {"reader_id": "r-h1", "action": "open"}, {"admin", "facility"}),
    ("commands read", "GET", "/commands", None, {"admin", "facility", "auditor"}),
    ("commands read", "GET", "/commands/{cmd_h1}", None, {"admin", "facility", "auditor"}),
    ("quarantine", "GET", "/quarantine", None, {"admin", "auditor"}),
    ("quarantine", "GET", "/quarantine/{q_h1}", None, {"admin", "auditor"}),
    ("audit log", "GET", "/audit", None, {"admin", "auditor"}),
    ("tokens", "GET", "/tokens", None, {"admin"}),
    ("tokens", "POST", "/tokens", {"name": "by {role}", "role": "hr"}, {"admin"}),
    ("whoami", "GET", "/whoami", None, {"admin", "facility", "hr", "auditor"}),
]


def _fill(path: str, ids: dict[str, int]) -> str:
    for k, v in ids.items():
        path = path.replace("{" + k + "}", str(v))
    return path


def test_role_matrix(env: Env) -> None:
    for role in auth.ROLES:
        for cls, method, path, body, allowed in MATRIX:
            payload = json.loads(json.dumps(body).replace("{role}", role)) if body is not None else None
            r = env.client.request(method, API + _fill(path, env.ids), headers=env.h(role), json=payload)
            if role in allowed:
                assert 200 <= r.status_code < 300, (role, cls, method, path, r.status_code, r.text)
            else:
                assert r.status_code == 403, (role, cls, method, path, r.status_code, r.text)
                assert r.json()["code"] == "forbidden"
    # the alarm acknowledgement is a one-off: facility may, hr and auditor may not
    for role in ("hr", "auditor"):
        assert env.post(role, f"/alarms/{env.ids['alarm_h1']}/ack", {}).status_code == 403
    assert env.post("facility", f"/alarms/{env.ids['alarm_h1']}/ack", {"note": "đã xem"}).status_code == 200
    # metrics: auditor and admin
    for role, status in (("admin", 200), ("auditor", 200), ("facility", 403), ("hr", 403)):
        assert env.client.get("/metrics", headers=env.h(role)).status_code == status
    assert env.client.get("/metrics").status_code == 401


def test_no_token_or_bad_token_is_401(lite: Env) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
        {"Authorization": "Bearer cbcc_aaaaaaaaaaaa_" + "a" * 40},
        # the admin token with its last character changed (to one it is not: 1 token in 36 ends in "x")
        {
            "Authorization": "Bearer "
            + lite.tokens["admin"][:-1]
            + ("y" if lite.tokens["admin"][-1] == "x" else "x")
        },
    ):
        r = lite.client.get(API + "/readers", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


# ---- unit scoping -----------------------------------------------------------------------------


def test_unit_scoping(env: Env) -> None:
    ids = env.ids
    f = "facility_h1"
    assert {r["id"] for r in env.get(f, "/readers").json()["items"]} == {"r-h1", "r-h1b"}
    assert {d["id"] for d in env.get(f, "/doors").json()["items"]} == {"h1-main"}
    assert {e["reader_id"] for e in env.get(f, "/events").json()["items"]} == {"r-h1", "r-h1b"}
    assert {e["reader_id"] for e in env.get("hr_h1", "/events?staff_code=CB0002").json()["items"]} == set()
    assert {a["id"] for a in env.get(f, "/alarms").json()["items"]} == {ids["alarm_h1"]}
    assert {c["id"] for c in env.get(f, "/commands").json()["items"]} == {ids["cmd_h1"]}
    assert {q["id"] for q in env.get("auditor_h1", "/quarantine").json()["items"]} == {ids["q_h1"]}
    # the unscoped see everything
    assert len(env.get("facility", "/readers").json()["items"]) == 3
    assert len(env.get("facility", "/commands").json()["items"]) == 3
    # foreign ids are "not found", never "forbidden"
    for path in (
        "/readers/r-h2",
        "/doors/h2-main",
        f"/events/{ids['ev_r-h2']}",
        f"/alarms/{ids['alarm_h2']}",
        f"/commands/{ids['cmd_h2']}",
        f"/commands/{ids['cmd_all']}",
        "/readers/r-h2/config-pushes",
    ):
        r = env.get("facility_h1" if "quarantine" not in path else "auditor_h1", path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["code"] == "not_found"
        assert (
            r.json() == env.get("facility_h1", path.replace("h2", "zz")).json()
            or "events" in path
            or "alarms" in path
            or "commands" in path
        )  # same answer as for an id that does not exist
    assert env.get("auditor_h1", f"/quarantine/{ids['q_h2']}").status_code == 404
    for method, path, body in (
        ("PATCH", "/readers/r-h2", {"name": "x"}),
        ("PATCH", "/doors/h2-main", {"name": "x"}),
        ("DELETE", "/doors/h2-main", None),
        ("POST", f"/alarms/{ids['alarm_h2']}/ack", {}),
        ("POST", "/readers/r-h2/config", {"config": {}}),
        ("POST", "/commands", {"reader_id": "r-h2", "action": "open"}),
        ("POST", "/commands", {"site": "nowhere", "action": "lockdown"}),
    ):
        r = env.client.request(method, API + path, headers=env.h(f), json=body)
        assert r.status_code == 404, (method, path, r.text)
    # cannot create or move things out of the scope
    assert env.post(f, "/readers", {"id": "x-out", "unit": "H02"}).status_code == 403
    assert env.post(f, "/doors", {"id": "x-out", "name": "x", "unit": "H02"}).status_code == 403
    r = env.client.patch(API + "/readers/r-h1", headers=env.h(f), json={"unit": "H02"})
    assert r.status_code == 403 and r.json()["code"] == "out_of_scope"
    r = env.client.patch(API + "/readers/r-h1", headers=env.h(f), json={"door_id": "h2-main"})
    assert r.status_code == 422  # the foreign door "does not exist"
    # a site command reaches only the caller's readers there
    r = env.post(f, "/commands", {"site": "hn", "action": "lockdown"})
    assert r.status_code == 202
    assert [c["target"] for c in r.json()["items"]] == ["r-h1"]
    assert env.ctx.downlink is not None and env.ctx.downlink.lockdowns == []  # type: ignore[attr-defined]
    r = env.post("facility", "/commands", {"site": "hn", "action": "lockdown"})
    assert r.status_code == 202 and [c["target"] for c in r.json()["items"]] == ["*"]
    # CSV export is scoped too
    text = env.get("hr_h1", "/events/export.csv").content.decode("utf-8-sig")
    readers = {row[3] for row in list(csv.reader(io.StringIO(text)))[1:]}
    assert readers == {"r-h1", "r-h1b"}
    # the audit log needs an unscoped token
    r = env.get("auditor_h1", "/audit")
    assert r.status_code == 403 and r.json()["code"] == "scope_too_narrow"
    # a scoped admin manages tokens only within its scope
    assert (
        env.post("admin_h1", "/tokens", {"name": "wide", "role": "admin", "unit_scope": ""}).status_code
        == 403
    )
    r = env.post("admin_h1", "/tokens", {"name": "narrow", "role": "hr", "unit_scope": "H01.01"})
    assert r.status_code == 201
    listed = {t["unit_scope"] for t in env.get("admin_h1", "/tokens").json()["items"]}
    assert listed <= {"H01", "H01.01"}


# ---- events: pagination and CSV ---------------------------------------------------------------


def test_pagination_is_stable(env: Env) -> None:
    with Session(env.engine) as s:
        for seq in range(2, 252):
            s.add(_event("r-h1", seq, staff_code=f"CB{seq:04d}"))
        s.commit()
    for order in ("asc", "desc"):
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            q = f"/events?reader_id=r-h1&limit=40&order={order}" + (f"&cursor={cursor}" if cursor else "")
            body = env.get("hr", q).json()
            seen += [e["id"] for e in body["items"]]
            pages += 1
            if pages == 2:  # new events arriving while paging neither repeat nor shift rows
                with Session(env.engine) as s:
                    s.add(
                        _event("r-h1", (5000 if order == "desc" else 1000) + len(seen), staff_code="CB9999")
                    )
                    s.commit()
            cursor = body["next"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        assert seen == sorted(seen, reverse=order == "desc")
        with Session(env.engine) as s:
            all_ids = sorted(e.id for e in s.exec(select(Event).where(Event.reader_id == "r-h1")).all())
        if order == "asc":
            assert seen == all_ids  # including the ones that arrived at the end
        else:
            assert set(seen) >= set(all_ids[:-2])
    # filters: time range, staff code, serial, kind, decision, door
    assert len(env.get("hr", "/events?staff_code=CB0010").json()["items"]) == 1
    assert len(env.get("hr", "/events?serial=222").json()["items"]) == 1
    assert len(env.get("hr", "/events?decision=deny").json()["items"]) == 1
    assert len(env.get("hr", "/events?door=h1-main").json()["items"]) == 1
    frm = (T0 + timedelta(minutes=10)).isoformat()
    to = (T0 + timedelta(minutes=20)).isoformat()
    got = env.get("hr", "/events", params={"from": frm, "to": to, "reader_id": "r-h1"}).json()["items"]
    assert [e["seq"] for e in got] == list(range(10, 20))
    # the same window given in Vietnam time (+07:00)
    vn = (
        (T0 + timedelta(minutes=10))
        .astimezone(__import__("datetime").timezone(timedelta(hours=7)))
        .isoformat()
    )
    got = env.get("hr", "/events", params={"from": vn, "to": to, "reader_id": "r-h1"}).json()["items"]
    assert [e["seq"] for e in got] == list(range(10, 20))
    assert got[0]["occurred_at"].endswith("Z")


def test_csv_export(env: Env) -> None:
    r = env.get("hr", "/events/export.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    raw = r.content
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    text = raw[3:].decode("utf-8")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:3] == ["Mã sự kiện", "Thời điểm (UTC)", "Giờ Việt Nam (UTC+7)"]
    assert all(unicodedata.is_normalized("NFC", h) for h in header)
    assert "Mã cán bộ" in header and "Số serial thẻ" in header
    by_reader = {row[3]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    h1 = by_reader["r-h1"]
    assert h1["Mã cán bộ"] == "CB0001"
    assert h1["Quyết định"] == "Cho qua"
    assert h1["Hướng"] == "Vào"
    assert h1["Chi tiết"] == "Nguyễn Văn Ánh — lối vào"
    assert h1["Thời điểm (UTC)"] == "2025-03-03T01:01:00Z"
    assert h1["Giờ Việt Nam (UTC+7)"] == "2025-03-03 08:01:00"
    assert by_reader["r-h2"]["Quyết định"] == "Từ chối"
    assert by_reader["r-h1b"]["Mã cán bộ"] == "'=HYPERLINK(1)"  # no formula injection into Excel
    # filters and the row limit apply
    rows = list(
        csv.reader(io.StringIO(env.get("hr", "/events/export.csv?decision=deny").content.decode("utf-8-sig")))
    )
    assert len(rows) == 2 and rows[1][3] == "r-h2"
    rows = list(
        csv.reader(io.StringIO(env.get("hr", "/events/export.csv?max_rows=1").content.decode("utf-8-sig")))
    )
    assert len(rows) == 2


def test_csv_export_streams_many_rows(lite: Env) -> None:
    with Session(lite.engine) as s:
        for seq in range(2, 2603):
            s.add(_event("r-h1", seq, staff_code="CB0001"))
        s.commit()
    text = lite.get("hr", "/events/export.csv?reader_id=r-h1").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert len(rows) == 2602
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)


# ---- tokens ----------------------------------------------------------------------------------


def test_token_expiry_and_revocation(env: Env) -> None:
    with Session(env.engine) as s:
        row, soon = auth.create_token(s, "short", "hr", "", "test", expires_at=now_utc() + timedelta(hours=1))
        s.commit()
        short_id = row.id
    h = {"Authorization": f"Bearer {soon}"}
    assert env.client.get(API + "/events", headers=h).status_code == 200
    with Session(env.engine) as s:
        row2 = s.get(ApiToken, short_id)
        assert row2 is not None and row2.last_used_at is not None
        first_use = db.utc(row2.last_used_at)
        row2.expires_at = now_utc() - timedelta(seconds=1)
        s.add(row2)
        s.commit()
    assert env.client.get(API + "/events", headers=h).status_code == 401  # despite the verified-secret memo
    # revocation through the API takes effect at once
    created = env.post(
        "admin", "/tokens", {"name": "Phòng Tổ chức cán bộ", "role": "hr", "unit_scope": "H01"}
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    tid = created.json()["token"]["id"]
    assert secret.startswith(f"cbcc_{tid}_")
    assert created.json()["token"]["state"] == "active"
    h2 = {"Authorization": f"Bearer {secret}"}
    assert env.client.get(API + "/events", headers=h2).status_code == 200
    r = env.client.delete(API + f"/tokens/{tid}", headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert env.client.get(API + "/events", headers=h2).status_code == 401
    assert env.client.delete(API + f"/tokens/{tid}", headers=env.h("admin")).status_code == 200  # idempotent
    assert env.client.delete(API + "/tokens/zzzzzzzzzzzz", headers=env.h("admin")).status_code == 404
    listed = {t["id"]: t for t in env.get("admin", "/tokens").json()["items"]}
    assert listed[tid]["state"] == "revoked" and listed[short_id]["state"] == "expired"
    assert "secret_hash" not in listed[tid]
    assert first_use is not None


def test_auth_module() -> None:
    for bad in (("", "hr", ""), ("x", "root", ""), ("x", "hr", "H01 02"), ("x" * 101, "hr", "")):
        with pytest.raises(auth.TokenError):
            auth.create_token(None, *bad, "t")  # type: ignore[arg-type]
    assert (
        auth.in_scope("", "anything") and auth.in_scope("H01", "H01.02") and not auth.in_scope("H01", "H02")
    )
    assert not auth.in_scope("H01", None)
    assert (
        auth.scope_within("", "H01")
        and auth.scope_within("H01", "H01.1")
        and not auth.scope_within("H01", "")
    )
    assert auth.PERMISSIONS["admin"] == auth.ALL_PERMISSIONS
    assert auth.TOKENS_MANAGE not in auth.PERMISSIONS["auditor"]
    assert all(
        not p.endswith(("write", "send", "ack", "push", "manage")) for p in auth.PERMISSIONS["auditor"]
    )


def test_last_used_is_rate_limited(lite: Env) -> None:
    with Session(lite.engine) as s:
        row, tok = auth.create_token(s, "poller", "auditor", "", "test")
        s.commit()
        tid = row.id
    a = auth.Authenticator()
    t = now_utc()
    with Session(lite.engine) as s:
        a.authenticate(s, tok, now=t)
        s.commit()
        a.authenticate(s, tok, now=t + timedelta(seconds=30))
        s.commit()
        r = s.get(ApiToken, tid)
        assert r is not None and db.utc(r.last_used_at) == t  # no write 30 s later
        a.authenticate(s, tok, now=t + timedelta(seconds=61))
        s.commit()
        s.refresh(r)
        assert db.utc(r.last_used_at) == t + timedelta(seconds=61)
        with pytest.raises(auth.AuthError):
            a.authenticate(s, tok.replace(tid, "zzzzzzzzzzzz"))  # unknown id: same uniform failure


# ---- audit ------------------------------------------------------------------------------------


def _actions(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return [a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]  # type: ignore[arg-type]


def test_every_change_is_audited(env: Env) -> None:
    before = len(_actions(env.engine))
    calls = [
        ("POST", "/doors", {"id": "d9", "name": "Cửa kho", "unit": "H01.01"}, "door.create"),
        ("PATCH", "/doors/d9", {"name": "Cửa kho 2"}, "door.update"),
        ("DELETE", "/doors/d9", None, "door.delete"),
        ("POST", "/readers", {"id": "r9", "unit": "H01.01", "name": "Máy chấm công"}, "reader.register"),
        ("PATCH", "/readers/r9", {"enabled": False}, "reader.update"),
        ("POST", f"/alarms/{env.ids['alarm_h1']}/ack", {"note": "đã xử lý"}, "alarm.ack"),
        ("POST", "/tokens", {"name": "máy chủ báo cáo", "role": "auditor"}, "token.create"),
        ("POST", "/readers/r-h1/config", {"config": {"door": {"unlock_ms": 3000}}}, "config.push"),
        ("POST", "/commands", {"reader_id": "r-h1", "action": "resync"}, "command.send"),
    ]
    for method, path, body, action in calls:
        r = env.client.request(method, API + path, headers=env.h("admin"), json=body)
        assert r.status_code < 300, (path, r.text)
        assert _actions(env.engine)[-1] == action
    assert len(_actions(env.engine)) == before + len(calls)
    entries = env.get("admin", "/audit?action=reader.register").json()["items"]
    assert entries[0]["target"] == "reader:r9" and entries[0]["actor"].startswith("token:")
    assert entries[0]["detail"]["name"] == "Máy chấm công"
    # a refused change writes nothing
    n = len(_actions(env.engine))
    assert env.post("admin", "/doors", {"id": "h1-main", "name": "dup"}).status_code == 409
    assert env.post("admin", "/readers/r-h1/config", {"config": {"bad": 1}}).status_code == 422
    assert env.post("admin", f"/alarms/{env.ids['alarm_h1']}/ack", {}).status_code == 409
    assert len(_actions(env.engine)) == n


def test_register_reader_returns_secrets_once(lite: Env) -> None:
    seen: list[tuple[str, str]] = []
    lite.ctx.on_reader_registered = lambda rid, pw: seen.append((rid, pw))
    r = lite.post(
        "facility",
        "/readers",
        {
            "id": "hn-a-1",
            "name": "Cổng A",
            "site": "hn",
            "unit": "H01.01",
            "door_id": "h1-main",
            "role": "both",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(bytes.fromhex(body["mac_key_hex"])) == 32 and body["mqtt_password"]
    assert seen == [("hn-a-1", body["mqtt_password"])]
    again = lite.get("facility", "/readers/hn-a-1").json()
    assert "mac_key_hex" not in again and "mac_key_enc" not in again and "mqtt_password" not in again
    with Session(lite.engine) as s:
        row = s.get(Reader, "hn-a-1")
        assert row is not None
        assert lite.ctx.box.open(row.mac_key_enc, "reader-mac:hn-a-1").hex() == body["mac_key_hex"]
    assert lite.post("facility", "/readers", {"id": "hn-a-1"}).status_code == 409
    assert lite.post("facility", "/readers", {"id": "x2", "door_id": "nope"}).status_code == 422


def test_laggards_and_reader_filters(lite: Env) -> None:
    with Session(lite.engine) as s:
        r = s.get(Reader, "r-h1")
        assert r is not None
        r.pushed_config_seq, r.config_seq, r.pushed_config_at = 5, 4, now_utc() - timedelta(hours=1)
        s.add(r)
        s.commit()
    got = lite.get("facility", "/readers/laggards?older_than_s=60").json()["items"]
    assert [x["id"] for x in got] == ["r-h1"]
    assert lite.get("facility", "/readers/laggards?older_than_s=7200").json()["items"] == []
    assert [x["id"] for x in lite.get("facility", "/readers?online=true").json()["items"]] == ["r-h1b"]
    assert [x["id"] for x in lite.get("facility", "/readers?unit=H01").json()["items"]] == ["r-h1", "r-h1b"]
    assert [x["id"] for x in lite.get("facility", "/readers?site=dn").json()["items"]] == ["r-h1b"]
    p1 = lite.get("facility", "/readers?limit=2").json()
    p2 = lite.get("facility", f"/readers?limit=2&after={p1['next']}").json()
    assert [x["id"] for x in p1["items"] + p2["items"]] == ["r-h1", "r-h1b", "r-h2"] and p2["next"] is None


# ---- no downlink, health, metrics, logs -------------------------------------------------------


def test_without_downlink_commands_answer_503(tmp_path: Path) -> None:
    e = make_env(f"sqlite:///{tmp_path / 'g.db'}", downlink=False, metrics_open=True)
    for path, body in (
        ("/commands", {"reader_id": "r-h1", "action": "open"}),
        ("/readers/r-h1/config", {"config": {}}),
    ):
        r = e.post("admin", path, body)
        assert r.status_code == 503 and r.json()["code"] == "downlink_unavailable"
        assert "downlink" in r.json()["detail"]
    assert e.client.get("/metrics").status_code == 200  # open flag
    assert "cbcc_events_stored" in e.client.get("/metrics").text
    e.engine.dispose()


def test_healthz(lite: Env) -> None:
    r = lite.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok", "ingest": "ok"}
    broken = ApiContext(
        engine=db.make_engine("postgresql://nobody@127.0.0.1:1/none"), settings=Settings(), box=lite.ctx.box
    )
    r = TestClient(create_app(broken), raise_server_exceptions=False).get("/healthz")
    assert r.status_code == 503 and r.json()["database"] == "unreachable"


def test_access_log_is_json_without_secrets(lite: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cbcc.api.access")
    lite.get("hr", "/events?staff_code=CB0001")
    lite.client.get(API + "/events", headers={"Authorization": "Bearer cbcc_aaaaaaaaaaaa_" + "b" * 40})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cbcc.api.access"]
    assert lines[0]["method"] == "GET" and lines[0]["path"] == API + "/events" and lines[0]["status"] == 200
    assert lines[0]["token_id"] == lite.tokens["hr"].split("_")[1]
    assert isinstance(lines[0]["duration_ms"], float)
    assert lines[1]["status"] == 401 and lines[1]["token_id"] is None
    text = caplog.text
    assert "CB0001" not in text and lite.tokens["hr"] not in text and "b" * 40 not in text


# ---- bad input is 4xx, never 5xx ---------------------------------------------------------------


def test_absurd_input_is_4xx(env: Env) -> None:
    bad_gets = [
        "/events?limit=0",
        "/events?staf_code=CB0001",
        "/events?limit=1&limit=2",
        "/events?to=1700000000",
        "/events?limit=1001",
        "/events?limit=-1",
        "/events?limit=1e9",
        "/events?cursor=abc",
        "/events?cursor=99999999999999999999",
        "/events?serial=-1",
        f"/events?serial={2**64}",
        "/events?from=yesterday",
        "/events?reader_id=" + "a" * 100,
        "/events?staff_code=%00",
        "/events?kind=%27%3B%20DROP%20TABLE%20event",
        "/events?order=sideways",
        "/events/0",
        f"/events/{2**70}",
        "/readers/UPPER",
        "/readers/" + "a" * 80,
        "/doors/%00x",
        "/alarms/abc",
        "/quarantine?reason=%00",
        "/audit?actor=%ff%fe",
        "/tokens/short",
        "/readers/laggards?older_than_s=-5",
        "/events/export.csv?max_rows=0",
        "/alarms?active=maybe",
        "/readers?site=" + "s" * 65,
    ]
    for path in bad_gets:
        r = env.get("admin", path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert set(r.json()) >= {"detail", "code"}, path
    # and the odd-but-valid: far-away dates, NUL-free Unicode, the largest cursor
    for path in (
        "/events?from=0001-01-01T00:00:00%2B14:00&to=9999-12-31T23:59:59-12:00",
        "/events?cursor=999999999999999999&order=desc",
        f"/events?serial={2**63 - 1}",
    ):
        r = env.get("admin", path)
        assert r.status_code == 200, (path, r.text)
    bad_posts = [
        ("/doors", {"id": "ok", "name": "x\x00y"}),
        ("/doors", {"id": "ok", "name": ""}),
        ("/doors", {"id": "bad id", "name": "x"}),
        ("/doors", {"id": "ok", "name": "x", "extra": 1}),
        ("/doors", [1, 2, 3]),
        ("/readers", {"id": "r" * 64}),
        ("/readers", {"id": "ok", "role": "king"}),
        ("/tokens", {"name": "x", "role": "root"}),
        ("/tokens", {"name": "x", "role": "hr", "expires_at": "2000-01-01T00:00:00Z"}),
        ("/tokens", {"name": "x", "role": "hr", "unit_scope": "a b"}),
        ("/commands", {"action": "open"}),
        ("/commands", {"reader_id": "r-h1", "site": "hn", "action": "open"}),
        ("/commands", {"reader_id": "r-h1", "action": "selfdestruct"}),
        ("/commands", {"reader_id": "r-h1", "action": "open", "ttl_s": 10**12}),
        ("/readers/r-h1/config", {"config": {"x": "y" * 70_000}}),
        (f"/alarms/{2**40}/ack", {}),
    ]
    for path, body in bad_posts:
        r = env.post("admin", path, body)
        assert 400 <= r.status_code < 500, (
            path,
            body if len(str(body)) < 200 else "…",
            r.status_code,
            r.text,
        )
    r = env.client.post(
        API + "/doors",
        headers={**env.h("admin"), "content-type": "application/json"},
        content=b'{"id": "x", "name": ',
    )
    assert r.status_code == 422
    r = env.client.post(
        API + "/doors",
        headers={**env.h("admin"), "content-type": "application/json"},
        content=b'{"id": "x", "name": "\\ud800"}',
    )
    assert r.status_code == 422, r.text


# ---- OpenAPI ----------------------------------------------------------------------------------


def openapi_text() -> str:
    engine = db.make_engine("sqlite://")
    doc = create_app(ApiContext(engine=engine, settings=Settings(), box=SecretBox(b"\x00" * 32))).openapi()
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def test_openapi_document_current() -> None:
    text = openapi_text()
    if os.environ.get("CBCC_UPDATE_OPENAPI") == "1":
        OPENAPI.write_text(text, encoding="utf-8")
    assert OPENAPI.exists(), "docs/openapi.json is missing: CBCC_UPDATE_OPENAPI=1 uv run pytest -k openapi"
    current = OPENAPI.read_text(encoding="utf-8")
    old, new = (hashlib.sha256(t.encode()).hexdigest()[:12] for t in (current, text))
    assert current == text, (
        f"docs/openapi.json is stale ({old} ≠ {new}): "
        "CBCC_UPDATE_OPENAPI=1 uv run pytest tests/gateway/test_gateway_api.py -k openapi"
    )
    doc = json.loads(text)
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "422" in op["responses"]:
                ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (method, path)


# ---- with the real downlink and fleet --------------------------------------------------------


def test_with_real_downlink_and_fleet(env: Env) -> None:
    import tomllib

    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.fleet import Fleet
    from gateway.mqtt.downlink import Downlink
    from gateway.registry import KeyCache

    published: list[tuple[str, bytes, int, bool]] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        published.append((topic, payload, qos, retain))

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    env.ctx.downlink = Downlink(env.engine, key, publish)
    env.ctx.fleet = Fleet(env.engine, KeyCache(env.engine, env.ctx.box), publish)
    source = tomllib.loads((ROOT / "docs" / "reader-config.example.toml").read_text(encoding="utf-8"))
    source.pop("reader_id", None)
    r = env.post("facility", "/readers/r-h1/config", {"config": source})
    assert r.status_code == 202, r.text
    assert r.json()["seq"] >= 1 and len(r.json()["sha256"]) == 64
    assert published[-1][0] == "cbcc/v1/r/r-h1/cfg" and published[-1][3] is True
    pushes = env.get("auditor", "/readers/r-h1/config-pushes").json()["items"]
    assert [p["seq"] for p in pushes] == [r.json()["seq"]]
    r = env.post("facility", "/readers/r-h1/config", {"config": {"no_such_key": 1}})
    assert r.status_code == 422 and r.json()["code"] == "downlink_refused"
    # the reader has not applied it: a laggard (older_than_s=0), for the scoped token too
    got = env.get("facility_h1", "/readers/laggards?older_than_s=0").json()["items"]
    assert [x["id"] for x in got] == ["r-h1"]
    # commands: one reader, then a whole site (unscoped: the downlink's site lockdown)
    r = env.post("facility", "/commands", {"reader_id": "r-h1", "action": "open", "args": {"ms": 3000}})
    assert r.status_code == 202, r.text
    assert published[-1][0] == "cbcc/v1/r/r-h1/cmd"
    r = env.post("facility", "/commands", {"site": "hn", "action": "lockdown", "ttl_s": 600})
    assert r.status_code == 202
    assert sorted(c["target"] for c in r.json()["items"]) == ["r-h1", "r-h2"]
    listed = env.get("facility", "/commands?action=lockdown&pending=true").json()["items"]
    assert {c["target"] for c in listed} >= {"r-h1", "r-h2"}
    actions = _actions(env.engine)
    assert "config.push" in actions and "command.open" in actions and actions.count("command.lockdown") == 2


def test_door_building_over_the_api_and_the_cli(lite: Env, tmp_path: Path) -> None:
    """``building`` (site → building → door in the console) is set like ``site``: one rule
    (``Code``: letters, digits, ``. _ / -``, ≤ 64) for the API and the CLI, which runs the API's
    handlers; audited; the console groups by it."""
    from typer.testing import CliRunner

    from cbcc.app import app

    r = lite.post(
        "admin", "/doors", {"id": "b-1", "name": "Cửa B1", "site": "hn", "building": "B", "unit": "H01"}
    )
    assert r.status_code == 201 and r.json()["building"] == "B"
    assert lite.get("facility", "/doors/b-1").json()["building"] == "B"
    r = lite.client.patch(API + "/doors/b-1", headers=lite.h("facility"), json={"building": "Nhà B"})
    assert r.status_code == 422  # spaces and accents: not a code
    r = lite.client.patch(API + "/doors/b-1", headers=lite.h("facility"), json={"building": "B/2"})
    assert r.status_code == 200 and r.json()["building"] == "B/2"
    assert (
        lite.client.patch(API + "/doors/b-1", headers=lite.h("hr"), json={"building": "C"}).status_code == 403
    )
    entries = lite.get("admin", "/audit?action=door.update").json()["items"]
    assert entries[0]["detail"] == {"building": "B/2"}
    # the CLI: the same handlers, the same refusals (exit 1, nothing changed)
    url = str(lite.engine.url)
    run = CliRunner()
    env = {"CBCC_DATABASE__URL": url, "CBCC_LANG": "en"}
    res = run.invoke(
        app,
        [
            "gateway",
            "door",
            "add",
            "c-1",
            "--name",
            "Cổng C",
            "--site",
            "hn",
            "--building",
            "C",
            "--unit",
            "H02",
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    res = run.invoke(app, ["gateway", "door", "set", "c-1", "--building", "Nhà C"], env=env)
    assert res.exit_code == 1 and "--building" in res.output
    res = run.invoke(app, ["gateway", "door", "set", "nope", "--building", "C"], env=env)
    assert res.exit_code == 1 and "not found" in res.output
    res = run.invoke(app, ["gateway", "door", "set", "b-1", "--building", ""], env=env)
    assert res.exit_code == 0, res.output
    res = run.invoke(app, ["gateway", "door", "list"], env=env)
    assert "c-1\thn\tC\tH02\tCổng C" in res.output and "b-1\thn\t\tH01\tCửa B1" in res.output
    with Session(lite.engine) as s:
        assert s.get(Door, "c-1").building == "C"  # type: ignore[union-attr]
        assert s.get(Door, "b-1").building == ""  # type: ignore[union-attr]
    assert lite.get("admin", "/audit?action=door.create").json()["items"][0]["actor"] == "cli"
