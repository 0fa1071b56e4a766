"""The web console through HTTP (no browser): accounts, sessions, CSRF, headers, roles and unit
scopes by direct requests, search without diacritics (SQLite and PostgreSQL), catalogs, vendored
files. The browser tests are tests/e2e/test_console_e2e.py."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import db
from gateway.api import ApiContext, create_app
from gateway.console import accounts, configform, doorstate, search
from gateway.console.routes.live import _new_events
from gateway.models import (
    Alarm,
    AuditEntry,
    Card,
    ConsoleSession,
    ConsoleUser,
    Door,
    Event,
    Reader,
    StaffRecord,
)
from gateway.secretbox import SecretBox
from gateway.settings import Settings
from gateway.textfold import fold

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PW = "mat-khau-rat-dai-1"
CONSOLE = Path(__file__).resolve().parents[2] / "gateway" / "console"


def _event(rid: str, seq: int, **kw: object) -> Event:
    return Event(
        reader_id=rid,
        seq=seq,
        kind=str(kw.pop("kind", "tap")),
        occurred_at=T0,
        received_at=T0,
        time_quality=2,
        record=b"\xa1\x01\x02",
        mac=b"\x00" * 32,
        **kw,
    )  # type: ignore[arg-type]


def seed(engine: Engine) -> None:
    blob = b"\x01" + b"\x00" * 60
    with Session(engine) as s:
        s.add(Door(id="d-a", name="Cổng A", site="hn", building="A", unit="H01"))
        s.add(Door(id="d-b", name="Cổng B", site="hn", building="B", unit="H02"))
        s.flush()
        s.add(Reader(id="r-a", name="Đầu đọc A", site="hn", unit="H01", door_id="d-a", mac_key_enc=blob))
        s.add(Reader(id="r-b", name="Đầu đọc B", site="hn", unit="H02", door_id="d-b", mac_key_enc=blob))
        s.flush()
        s.add(_event("r-a", 1, decision="grant", reason="granted", staff_code="CB-A1", serial=1001))
        s.add(_event("r-b", 1, decision="grant", reason="granted", staff_code="CB-B1", serial=2001))
        s.add(_event("r-b", 2, kind="door", detail="opened"))
        s.add(Alarm(reader_id="r-b", kind="forced_open", raised_at=T0))
        for code, name, agency, serial in (
            ("CB-A1", "Nguyễn Văn An", "H01.01", 1001),
            ("CB-A2", "Đặng Thị Đào", "H01.02", 1002),
            ("CB-B1", "Nguyễn Văn Anh", "H02.01", 2001),
        ):
            s.add(StaffRecord(staff_code=code, full_name=name, agency_code=agency, updated_at=T0))
            s.add(Card(serial=serial, staff_code=code, issuer=agency, status="issued", updated_at=T0))
        s.commit()
        for name, role, scope in (
            ("admin", "admin", ""),
            ("fac-a", "facility", "H01"),
            ("nhansu", "hr", ""),
            ("kiemtoan", "auditor", ""),
        ):
            accounts.create_user(s, name, PW, role, unit_scope=scope, created_by="test")
        s.commit()


@dataclass
class Env:
    engine: Engine
    client: TestClient

    def login(self, username: str, password: str = PW) -> TestClient:
        c = TestClient(self.client.app, base_url="http://testserver")
        page = c.get("/console/login")
        r = c.post(
            "/console/login",
            data={
                "csrf": csrf_of(page.text),
                "username": username,
                "password": password,
                "next": "/console/",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def make_env(url: str) -> Env:
    db.migrate(url)
    engine = db.make_engine(url)
    seed(engine)
    ctx = ApiContext(engine=engine, settings=Settings(), box=SecretBox(os.urandom(32)))
    return Env(engine, TestClient(create_app(ctx), raise_server_exceptions=True))


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Env]:
    env = make_env(f"sqlite:///{tmp_path / 'c.db'}")
    yield env
    env.engine.dispose()


@pytest.fixture
def pg_env(pg_url: str) -> Iterator[Env]:
    env = make_env(pg_url)
    yield env
    env.engine.dispose()


# ---- folding -------------------------------------------------------------------------------------


def test_fold() -> None:
    assert fold("Nguyễn Văn An") == "nguyen van an"
    assert fold("ĐẶNG  THỊ  ĐÀO ") == "dang thi dao"
    assert fold("Nguye\u0302\u0303n") == "nguyen"  # NFD input
    assert fold("") == "" and fold(None) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aăâeêioôơuưyđAĂÂĐ àáảãạằắẳẵặầấẩẫậềếểễệồốổỗộờớởỡợừứửữựỳýỷỹỵ", max_size=30))
def test_sqlite_fold_agrees_with_python(text: str) -> None:
    engine = db.make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT cbcc_fold(:t)"), {"t": text}).scalar_one() == fold(text)


def test_postgres_fold_agrees_and_uses_the_index(pg_env: Env) -> None:
    samples = [
        "Nguyễn Văn An",
        "ĐẶNG THỊ ĐÀO",
        "Trần  Thị Ngọc Ánh",
        "Lê Minh Tuấn",
        "Ưng Hoàng Phúc",
        "Ỷ Lan",
    ]
    with pg_env.engine.connect() as conn:
        for t in samples:
            assert conn.execute(sa.text("SELECT cbcc_fold(:t)"), {"t": t}).scalar_one() == fold(t)
        conn.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                sa.text("EXPLAIN SELECT * FROM staffrecord WHERE cbcc_fold(full_name) LIKE 'nguyen van an%'")
            )
        )
    assert "ix_staffrecord_name_fold" in plan, plan
    # the search's own query: prefix and order (name, code) from the index, no sort of all matches
    with pg_env.engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))
        conn.execute(sa.text("SET enable_bitmapscan = off"))
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                sa.text(
                    'EXPLAIN SELECT * FROM staffrecord WHERE (cbcc_fold(full_name) COLLATE "C")'
                    " LIKE 'nguyen van%' ORDER BY (cbcc_fold(full_name) COLLATE \"C\"), staff_code LIMIT 50"
                )
            )
        )
    assert "ix_staffrecord_name_fold" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_search_without_diacritics_within_scope(backend: str, request: pytest.FixtureRequest) -> None:
    env: Env = request.getfixturevalue("lite" if backend == "sqlite" else "pg_env")
    with Session(env.engine) as s:
        admin = accounts.principal_of(
            s.exec(select(ConsoleUser).where(ConsoleUser.username == "admin")).one()
        )
        fac = accounts.principal_of(s.exec(select(ConsoleUser).where(ConsoleUser.username == "fac-a")).one())
        names = [h.staff.full_name for h in search.search(s, admin, "nguyen van an")]
        assert names == ["Nguyễn Văn An", "Nguyễn Văn Anh"]
        assert [h.staff.full_name for h in search.search(s, fac, "nguyen van an")] == ["Nguyễn Văn An"]
        assert [h.staff.full_name for h in search.search(s, admin, "dang thi")] == ["Đặng Thị Đào"]
        assert [h.staff.staff_code for h in search.search(s, admin, "2001")] == ["CB-B1"]
        assert search.search(s, fac, "2001") == []  # another unit's card serial
        assert search.search(s, fac, "CB-B1") == []
        assert search.search(s, admin, "50%_") == []


# ---- accounts --------------------------------------------------------------------------------------


def test_lockout_and_session_expiry(lite: Env) -> None:
    with Session(lite.engine, expire_on_commit=False) as s:
        for _ in range(accounts.MAX_FAILURES):
            with pytest.raises(accounts.AccountError):
                accounts.login(s, "nhansu", "wrong-password-x")
            s.commit()
        with pytest.raises(accounts.AccountError):  # right password, but locked now
            accounts.login(s, "nhansu", PW)
        later = datetime.now(UTC) + accounts.LOCKOUT + timedelta(seconds=1)
        user = accounts.login(s, "nhansu", PW, now=later)
        secret, _ = accounts.open_session(s, user, now=later)
        s.commit()
        assert accounts.resume(s, secret, now=later + timedelta(minutes=10)) is not None
        assert accounts.resume(s, secret, now=later + accounts.IDLE + timedelta(minutes=11)) is None
        secret2, _ = accounts.open_session(s, user, now=later)
        t = later
        for _ in range(30):  # active all the time, still ends at the absolute limit
            t += timedelta(minutes=25)
            if accounts.resume(s, secret2, now=t) is None:
                break
        assert t - later > accounts.ABSOLUTE - timedelta(
            minutes=25
        ) and t - later <= accounts.ABSOLUTE + timedelta(minutes=25)
        fails = s.exec(select(AuditEntry).where(AuditEntry.action == "console.login.fail")).all()
        assert len(fails) == accounts.MAX_FAILURES + 1


def test_login_password_change_and_logout(lite: Env) -> None:
    c = lite.login("kiemtoan")
    assert c.get("/console/").status_code == 200
    page = c.get("/console/account")
    token = csrf_of(page.text)
    other = lite.login("kiemtoan")
    r = c.post(
        "/console/account/password",
        data={"csrf": token, "old": PW, "new": "mot-mat-khau-moi", "new2": "mot-mat-khau-moi"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert other.get("/console/", follow_redirects=False).status_code == 303  # other sessions ended
    assert c.get("/console/").status_code == 200  # this browser got a new session
    lite.login("kiemtoan", "mot-mat-khau-moi")
    token = csrf_of(c.get("/console/").text)
    assert c.post("/console/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert c.get("/console/", follow_redirects=False).headers["location"].startswith("/console/login")


def test_first_run_setup_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    app = create_app(ApiContext(engine=engine, settings=Settings(), box=SecretBox(os.urandom(32))))
    c = TestClient(app)
    token = app.state.console.state.console_setup_token
    assert token and len(token) >= 24
    assert c.get("/console/login", follow_redirects=False).headers["location"] == "/console/setup"
    page = c.get("/console/setup")
    data = {
        "csrf": csrf_of(page.text),
        "token": "sai",
        "username": "quantri",
        "password": PW,
        "password2": PW,
    }
    refused = c.post("/console/setup", data=data)
    assert refused.status_code == 403
    data["token"], data["csrf"] = token, csrf_of(refused.text)
    assert c.post("/console/setup", data=data, follow_redirects=False).status_code == 303
    assert c.post("/console/setup", data=data).status_code in (403, 404)  # one time only
    with Session(engine) as s:
        assert s.exec(select(ConsoleUser)).one().role == "admin"
    engine.dispose()


# ---- HTTP: headers, CSRF, roles, scopes -------------------------------------------------------------


def test_security_headers_and_cookie(lite: Env) -> None:
    c = TestClient(lite.client.app)
    page = c.get("/console/login")
    h = page.headers
    assert (
        "script-src 'self'" in h["content-security-policy"]
        and "unsafe-inline" not in h["content-security-policy"]
    )
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text and " on" not in re.sub(r"<[^>]*>", "", "")  # no inline handlers
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    r = c.post(
        "/console/login",
        data={"csrf": csrf_of(page.text), "username": "admin", "password": PW},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    https = TestClient(lite.client.app, base_url="https://testserver")
    page = https.get("/console/login")
    r = https.post(
        "/console/login",
        data={"csrf": csrf_of(page.text), "username": "admin", "password": PW},
        follow_redirects=False,
    )
    assert "Secure" in r.headers["set-cookie"] and "strict-transport-security" in r.headers


def test_every_post_needs_the_csrf_token(lite: Env) -> None:
    c = lite.login("admin")
    c.get("/console/")
    for path, data in (
        ("/console/readers/r-a/open", {"reason": "x", "confirm": "yes"}),
        ("/console/cards/1001/lock", {"reason": "x", "confirm": "yes"}),
        ("/console/sites/hn/lockdown", {"reason": "x", "confirm": "yes"}),
        ("/console/users", {"username": "moi", "password": PW, "role": "admin"}),
        ("/console/logout", {}),
        ("/console/account/password", {"old": PW, "new": PW + "x", "new2": PW + "x"}),
    ):
        for bad in ({}, {"csrf": "forged"}):
            r = c.post(path, data={**data, **bad})
            assert r.status_code == 403, (path, r.status_code)
    # the login form too (pre-session token): no cookie, no login
    r = TestClient(lite.client.app).post(
        "/console/login", data={"csrf": "x", "username": "admin", "password": PW}
    )
    assert r.status_code == 403
    with Session(lite.engine) as s:
        assert s.get(Card, 1001).status == "issued"  # type: ignore[union-attr]


def test_roles_enforced_on_the_server(lite: Env) -> None:
    hr = lite.login("nhansu")
    token = csrf_of(hr.get("/console/").text)
    assert "/console/readers/r-a/open" not in hr.get("/console/").text
    for path in (
        "/console/readers",
        "/console/readers/r-a",
        "/console/doors",
        "/console/audit",
        "/console/users",
    ):
        assert hr.get(path).status_code == 403, path
    for path in (
        "/console/readers/r-a/open",
        "/console/sites/hn/lockdown",
        "/console/cards/1001/lock",
        "/console/alarms/1/ack",
        "/console/readers/r-a/config",
    ):
        r = hr.post(path, data={"csrf": token, "reason": "thử", "confirm": "yes"})
        assert r.status_code == 403, path
    aud = lite.login("kiemtoan")
    token = csrf_of(aud.get("/console/").text)
    assert aud.get("/console/audit").status_code == 200
    assert aud.get("/console/audit.csv").text.startswith("\ufeffMã,")
    assert (
        aud.post(
            "/console/readers/r-a/open", data={"csrf": token, "reason": "x", "confirm": "yes"}
        ).status_code
        == 403
    )
    with Session(lite.engine) as s:
        assert s.get(Card, 1001).status == "issued"  # type: ignore[union-attr]


def test_unit_scope_by_typing_the_url(lite: Env) -> None:
    fac = lite.login("fac-a")
    token = csrf_of(fac.get("/console/").text)
    assert fac.get("/console/readers/r-a").status_code == 200
    assert fac.get("/console/readers/r-b").status_code == 404
    assert fac.get("/console/readers/r-b/config").status_code == 404
    assert fac.get("/console/cards/1001").status_code == 200
    assert fac.get("/console/cards/2001").status_code == 404
    assert "Nguyễn Văn Anh" not in fac.get("/console/cards", params={"q": "nguyen van"}).text
    assert "r-b" not in fac.get("/console/readers").text
    home = fac.get("/console/").text
    assert "CB-A1" in home and "CB-B1" not in home and "forced_open" not in home
    doors = fac.get("/console/doors").text
    assert "Cổng A" in doors and "Cổng B" not in doors
    r = fac.post("/console/readers/r-b/open", data={"csrf": token, "reason": "x", "confirm": "yes"})
    assert r.status_code == 404
    r = fac.post("/console/cards/2001/lock", data={"csrf": token, "reason": "mất thẻ", "confirm": "yes"})
    assert r.status_code == 404
    # the live feed's query uses the same scope
    with Session(lite.engine) as s:
        p = accounts.principal_of(s.exec(select(ConsoleUser).where(ConsoleUser.username == "fac-a")).one())
    assert {e.reader_id for e in _new_events(lite.engine, p, 0)} == {"r-a"}
    # a lock within scope works, needs a reason and the confirmation, and is audited
    assert fac.post("/console/cards/1001/lock", data={"csrf": token, "reason": "mất thẻ"}).status_code == 400
    r = fac.post(
        "/console/cards/1001/lock",
        data={"csrf": token, "reason": "mất thẻ", "confirm": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with Session(lite.engine) as s:
        assert s.get(Card, 1001).status == "locked"  # type: ignore[union-attr]
        assert (
            s.exec(select(AuditEntry).where(AuditEntry.action == "console.card.lock")).one().actor
            == "user:fac-a"
        )


def test_pages_render_in_both_languages(lite: Env) -> None:
    admin = lite.login("admin")
    for lang, word in (("vi", "Cửa"), ("en", "Doors")):
        admin.get(f"/console/lang/{lang}")
        for path in (
            "/console/",
            "/console/doors",
            "/console/readers",
            "/console/readers/r-a",
            "/console/readers/r-a/config",
            "/console/cards?q=nguyen",
            "/console/cards/1001",
            "/console/sync",
            "/console/audit",
            "/console/users",
            "/console/account",
        ):
            r = admin.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert f'<html lang="{lang}">' in r.text
        assert word in admin.get("/console/doors").text
    admin.get("/console/lang/vi")
    doors = admin.get("/console/doors").text
    assert "Bị mở cưỡng bức" in doors  # r-b: door opened and forced_open active


def test_config_form_round_trip() -> None:
    src = {
        "site": "Sở",
        "timezone": "UTC+07:00",
        "group": [{"id": "snv", "agency": ["000.00.31"]}, {"id": "all", "everyone": True}],
        "schedule": [{"id": "hc", "weekly": ["Mon-Fri 07:00-17:00", "Sat 08:00-12:00"]}],
        "holidays": {"2026-09-02": "L"},
        "door": [{"id": "cong", "name": "Cổng", "mode": "normal", "unlock_schedule": "hc"}],
        "rule": [{"groups": ["snv", "all"], "doors": ["cong"], "schedule": "hc"}],
    }
    form = configform.to_form(src)
    lists: dict[str, list[str]] = {"site": [form["site"]], "timezone": [form["timezone"]]}
    for g in form["groups"]:
        lists.setdefault("group_id", []).append(g["id"])
        lists.setdefault("group_kind", []).append(g["kind"])
        lists.setdefault("group_values", []).append(g["values"])
    for sc in form["schedules"]:
        lists.setdefault("schedule_id", []).append(sc["id"])
        lists.setdefault("schedule_weekly", []).append(sc["weekly"])
    for h in form["holidays"]:
        lists.setdefault("holiday_date", []).append(h["date"])
        lists.setdefault("holiday_kind", []).append(h["kind"])
    for d in form["doors"]:
        for k, v in (
            ("door_id", d["id"]),
            ("door_name", d["name"]),
            ("door_mode", d["mode"]),
            ("door_unlock", d["unlock"]),
            ("door_anticlone", "yes" if d["anticlone"] else "no"),
        ):
            lists.setdefault(k, []).append(v)
    for ru in form["rules"]:
        for k in ("groups", "doors", "schedule"):
            lists.setdefault("rule_" + k, []).append(ru[k])
    assert configform.from_form(lists) == src
    lists["door_mode"][0] = "open-sesame"
    with pytest.raises(configform.FormError):
        configform.from_form(lists)


def test_door_state_rules() -> None:
    now = T0
    assert doorstate.ReaderDoor("r", mode="locked_down", opened=True).state(now) == "lockdown"
    assert doorstate.ReaderDoor("r", opened=True, alarms={"forced_open"}).state(now) == "forced"
    assert doorstate.ReaderDoor("r", opened=True, alarms={"held_open"}).state(now) == "held_open"
    assert doorstate.ReaderDoor("r", opened=True).state(now) == "open"
    assert (
        doorstate.ReaderDoor("r", opened=False, last_grant=now - timedelta(seconds=2)).state(now)
        == "unlocked"
    )
    assert (
        doorstate.ReaderDoor("r", opened=False, last_grant=now - timedelta(seconds=20)).state(now) == "locked"
    )
    assert doorstate.ReaderDoor("r").state(now) == "unknown"
    assert doorstate.ReaderDoor("r", online=True).state(now) == "locked"
    assert doorstate.worst(["locked", "forced", "open"]) == "forced"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_door_states_in_two_queries(backend: str, request: pytest.FixtureRequest) -> None:
    """Each reader's latest door event / mode notice / grant / lockdown command, found however old
    (here behind 400 newer taps), in two statements for any number of readers."""
    from gateway.models import Command

    env: Env = request.getfixturevalue("lite" if backend == "sqlite" else "pg_env")
    blob = b"\x01" + b"\x00" * 60
    with Session(env.engine) as s:
        s.add(_event("r-a", 2, kind="notice", detail="mode:scheduled_unlocked"))
        for i in range(400):
            s.add(_event("r-a", 3 + i, decision="deny", reason="revoked", serial=1001))
        s.add(_event("r-a", 500, kind="door", detail="closed"))
        for i in range(30):  # readers that told nothing: unknown, and no query of their own
            s.add(Reader(id=f"r-x{i}", name="x", site="hn", unit="H01", mac_key_enc=blob))
        s.add(Reader(id="r-c", name="C", site="hn", unit="H01", mac_key_enc=blob, online=True))
        t = datetime(2026, 12, 1, tzinfo=UTC)
        for n, action in enumerate(("lockdown", "release", "lockdown")):
            s.add(
                Command(
                    seq=n + 1,
                    target="r-c",
                    action=action,
                    issued_by="t",
                    issued_at=t,
                    expires_at=t,
                    outcome="ok",
                )
            )
        s.commit()
        readers = s.exec(select(Reader)).all()
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        sa.event.listen(env.engine, "before_cursor_execute", count)
        try:
            states = doorstate.read(s, readers)
        finally:
            sa.event.remove(env.engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements
    assert states["r-a"].mode == "scheduled_unlocked" and states["r-a"].opened is False
    assert states["r-a"].state() == "unlocked"
    assert states["r-b"].opened is True and states["r-b"].state() == "forced"
    assert states["r-c"].state() == "lockdown"
    assert states["r-x0"].state() == "unknown"


# ---- catalogs and vendored files ---------------------------------------------------------------------


def _msgids() -> set[str]:
    from jinja2.ext import babel_extract

    ids: set[str] = set()
    opts = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    for p in sorted((CONSOLE / "templates").glob("*.html")):
        with p.open("rb") as f:
            for _line, _fn, msg, _c in babel_extract(f, ("_", "gettext", "ngettext"), [], opts):
                for m in msg if isinstance(msg, tuple) else (msg,):
                    if m:
                        ids.add(m)
    for p in CONSOLE.rglob("*.py"):
        ids |= set(re.findall(r'(?:AccountError|ConsoleError|FormError)\((?:\d+, )?"([^"]+)"', p.read_text()))
    return ids


def test_vietnamese_catalog_covers_every_message() -> None:
    from babel.messages.pofile import read_po

    with (CONSOLE / "locale/vi/LC_MESSAGES/messages.po").open("rb") as f:
        vi = read_po(f, locale="vi")
    translated = {i for m in vi if m.id and m.string for i in ((m.id,) if isinstance(m.id, str) else m.id)}
    missing = _msgids() - translated
    assert not missing, sorted(missing)
    with (CONSOLE / "locale/en/LC_MESSAGES/messages.po").open("rb") as f:
        en = read_po(f, locale="en")
    coded = {m.id for m in vi if isinstance(m.id, str) and re.match(r"^[a-z]+:", m.id)}
    assert coded and coded <= {m.id for m in en if m.string}  # coded labels have English text too


def test_vendored_htmx_matches_its_record() -> None:
    record = (CONSOLE / "static/VENDORED.md").read_text()
    digest = hashlib.sha256((CONSOLE / "static/htmx.min.js").read_bytes()).hexdigest()
    assert f"`{digest}`" in record and "2.0.8" in record and "0BSD" in record


def test_session_rows_hold_no_secret(lite: Env) -> None:
    c = lite.login("admin")
    secret = c.cookies.get("cbcc_console")
    assert secret
    with Session(lite.engine) as s:
        rows = s.exec(select(ConsoleSession)).all()
        assert rows and all(r.id_hash != secret and secret not in r.id_hash for r in rows)
        assert hashlib.sha256(secret.encode()).hexdigest() in {r.id_hash for r in rows}


def _hr_setup(env: Env) -> None:
    """Office hours for both units; CB-A1 punched 07:00 and 19:00 on Mon 2 Nov 2026 (Vietnam):
    30 + 120 = 150 overtime minutes found (before 07:30, after 17:00)."""
    from gateway.attendance import store as att_store

    with env.engine.begin() as conn:
        att_store.set_shift(conn, "hc", "Hành chính", "07:30-11:30,13:00-17:00", "Mon-Fri", 5, 5)
        for code in ("CB-A1", "CB-A2", "CB-B1"):
            att_store.assign(conn, "hc", datetime(2026, 11, 1).date(), None, staff=code)
        att_store.add_punches(
            conn,
            [
                att_store.PunchRow("CB-A1", datetime(2026, 11, 2, 0, 0, tzinfo=UTC), "import"),
                att_store.PunchRow("CB-A1", datetime(2026, 11, 2, 12, 0, tzinfo=UTC), "import"),
                att_store.PunchRow("CB-B1", datetime(2026, 11, 2, 0, 0, tzinfo=UTC), "import"),
                att_store.PunchRow("CB-B1", datetime(2026, 11, 2, 12, 0, tzinfo=UTC), "import"),
            ],
        )
    with Session(env.engine) as s:
        accounts.create_user(s, "nhansu-a", PW, "hr", unit_scope="H01", created_by="test")
        s.commit()


def _rows(env: Env, table: str) -> list[tuple[object, ...]]:
    with env.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]


def _actions(env: Env) -> list[str]:
    with Session(env.engine) as s:
        return [a.action for a in s.exec(select(AuditEntry)).all()]


def test_hr_leave_corrections_overtime_through_the_api_rules(lite: Env) -> None:
    _hr_setup(lite)
    hr = lite.login("nhansu")
    page = hr.get("/console/attendance/changes")
    assert page.status_code == 200 and "Ghi nghỉ" in page.text
    token = csrf_of(page.text)
    leave = {"staff": "CB-A1", "kind": "P", "from": "2026-11-03", "to": "2026-11-04", "reason": "Nghỉ phép"}
    for bad in ({}, {"csrf": "forged"}):  # CSRF on every HR form
        assert hr.post("/console/attendance/leave", data={**leave, **bad}).status_code == 403
    assert hr.post("/console/attendance/correction", data={"staff": "CB-A1"}).status_code == 403
    assert hr.post("/console/attendance/overtime", data={"staff": "CB-A1"}).status_code == 403
    assert _rows(lite, "att_leave") == []
    r = hr.post("/console/attendance/leave", data={**leave, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=leave")
    # the engine's rule: overlapping leave refused with its message, nothing stored
    r = hr.post("/console/attendance/leave", data={**leave, "csrf": token, "from": "2026-11-04"})
    assert r.status_code == 422 and "trùng với kỳ nghỉ" in r.text  # the store's refusal, in Vietnamese
    r = hr.post("/console/attendance/leave", data={**leave, "csrf": token, "kind": "ZZ"})
    assert r.status_code == 422
    assert len(_rows(lite, "att_leave")) == 1
    corr = {
        "staff": "CB-A1",
        "action": "add",
        "day": "2026-11-05",
        "clock": "07:31",
        "reason": "Quên quẹt thẻ",
    }
    r = hr.post("/console/attendance/correction", data={**corr, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    r = hr.post(
        "/console/attendance/correction", data={**corr, "csrf": token, "action": "void", "clock": "09:00"}
    )
    assert r.status_code == 422 and "không có lượt chấm công" in r.text  # void of a missing punch: refused
    r = hr.post("/console/attendance/correction", data={**corr, "csrf": token, "reason": " "})
    assert r.status_code == 400  # a reason is required
    assert len(_rows(lite, "att_correction")) == 1
    with lite.engine.connect() as conn:
        src = conn.execute(sa.text("SELECT source FROM att_punch WHERE at >= '2026-11-05'")).scalars().all()
    assert src == ["correction"]
    ot = hr.get("/console/attendance/overtime?month=2026-11")
    assert ot.status_code == 200 and "CB-A1" in ot.text and ">150<" in ot.text
    approve = {"staff": "CB-A1", "date": "2026-11-02", "minutes": "151", "reason": "Họp muộn"}
    r = hr.post("/console/attendance/overtime", data={**approve, "csrf": token})
    assert r.status_code == 422 and "0..150" in r.text  # bounded by the minutes found
    r = hr.post(
        "/console/attendance/overtime",
        data={**approve, "csrf": token, "minutes": "120"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with lite.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT staff_code, minutes FROM att_overtime")).all()
    assert [tuple(g) for g in got] == [("CB-A1", 120)]
    # leave import: one bad row and nothing is imported; then the good file
    bad = "staff,kind,from,to,reason\nCB-A2,Ô,2026-11-09,2026-11-10,Ốm\nCB-A2,XX,2026-11-12,2026-11-12,?\n"
    r = hr.post(
        "/console/attendance/leave/import",
        data={"csrf": token},
        files={"file": ("nghi.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 400 and "dòng 3" in r.text  # the file's rows, in the viewer's language
    assert len(_rows(lite, "att_leave")) == 1
    good = bad.splitlines()[:2]
    r = hr.post(
        "/console/attendance/leave/import",
        data={"csrf": token},
        files={"file": ("nghi.csv", "\n".join(good).encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert len(_rows(lite, "att_leave")) == 2
    acts = _actions(lite)
    for a in (
        "attendance.leave.add",
        "console.attendance.leave",
        "attendance.correct.add",
        "console.attendance.correction",
        "attendance.overtime.approve",
        "console.attendance.overtime",
        "attendance.import_leave",
        "console.attendance.leave_import",
    ):
        assert a in acts, a


def test_hr_unit_scope_and_roles_on_changes(lite: Env) -> None:
    _hr_setup(lite)
    hra = lite.login("nhansu-a")  # hr of H01 only
    token = csrf_of(hra.get("/console/attendance/changes").text)
    leave = {"staff": "CB-B1", "kind": "P", "from": "2026-11-03", "reason": "x", "csrf": token}
    assert hra.post("/console/attendance/leave", data=leave).status_code == 403
    corr = {"staff": "CB-B1", "action": "add", "day": "2026-11-05", "clock": "07:31", "reason": "x"}
    assert hra.post("/console/attendance/correction", data={**corr, "csrf": token}).status_code == 403
    ot = {"staff": "CB-B1", "date": "2026-11-02", "minutes": "10", "reason": "x", "csrf": token}
    assert hra.post("/console/attendance/overtime", data=ot).status_code == 403
    mixed = "staff,kind,from,to,reason\nCB-A1,P,2026-11-09,2026-11-09,x\nCB-B1,P,2026-11-09,2026-11-09,x\n"
    r = hra.post(
        "/console/attendance/leave/import",
        data={"csrf": token},
        files={"file": ("nghi.csv", mixed.encode(), "text/csv")},
    )
    assert r.status_code == 403
    page = hra.get("/console/attendance/overtime?month=2026-11").text
    assert "CB-A1" in page and "CB-B1" not in page  # other units' people are not listed
    assert _rows(lite, "att_leave") == [] and _rows(lite, "att_correction") == []
    assert _rows(lite, "att_overtime") == []
    # in scope: allowed
    leave_a = {**leave, "staff": "CB-A1"}
    assert hra.post("/console/attendance/leave", data=leave_a, follow_redirects=False).status_code == 303
    fac = lite.login("fac-a")
    ftok = csrf_of(fac.get("/console/").text)
    for path in ("/console/attendance", "/console/attendance/changes", "/console/attendance/overtime"):
        assert fac.get(path).status_code == 403, path
    assert fac.post("/console/attendance/leave", data={**leave_a, "csrf": ftok}).status_code == 403
    aud = lite.login("kiemtoan")  # reads attendance, changes nothing
    atok = csrf_of(aud.get("/console/").text)
    page = aud.get("/console/attendance/overtime?month=2026-11").text
    assert "CB-A1" in page and 'method="post" action="/console/attendance/overtime"' not in page
    assert aud.get("/console/attendance/changes").status_code == 403
    assert (
        aud.post("/console/attendance/overtime", data={**ot, "staff": "CB-A1", "csrf": atok}).status_code
        == 403
    )
    assert len(_rows(lite, "att_leave")) == 1


def test_overtime_page_pages_and_filters_by_minutes(lite: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every candidate is reachable a page at a time (an agency-month has ~90,000), in (staff,
    date) order; ``least`` keeps those of at least that many minutes; an approval returns to its
    page; a bad page or minimum is refused."""
    from gateway.attendance import store as att_store
    from gateway.console.routes import hr as hr_pages

    _hr_setup(lite)
    with lite.engine.begin() as conn:  # CB-A2: 07:20 and 17:05 on Tue 3 Nov: 10 + 5 = 15 minutes
        att_store.add_punches(
            conn,
            [
                att_store.PunchRow("CB-A2", datetime(2026, 11, 3, 0, 20, tzinfo=UTC), "import"),
                att_store.PunchRow("CB-A2", datetime(2026, 11, 3, 10, 5, tzinfo=UTC), "import"),
            ],
        )
    monkeypatch.setattr(hr_pages, "OT_PAGE", 1)
    hr = lite.login("nhansu")
    seen = []
    for n in (1, 2, 3):
        page = hr.get(f"/console/attendance/overtime?month=2026-11&page={n}").text
        assert f"Trang {n}/3" in page and f"{n}–{n} trong 3" in page
        assert (f"page={n + 1}" in page) == (n < 3) and (f"page={n - 1}" in page) == (n > 1)
        seen += [c for c in ("CB-A1", "CB-A2", "CB-B1") if f"<td>{c}</td>" in page]
    assert seen == ["CB-A1", "CB-A2", "CB-B1"]
    page = hr.get("/console/attendance/overtime?month=2026-11&least=100&page=2").text
    assert "<td>CB-B1</td>" in page and "Trang 2/2" in page and "least=100&amp;page=1" in page
    assert "CB-A2" not in hr.get("/console/attendance/overtime?month=2026-11&least=16").text
    page = hr.get("/console/attendance/overtime?month=2026-11&page=9").text  # past the end: the last
    assert "Trang 3/3" in page and "<td>CB-B1</td>" in page
    for bad in (
        "page=0",
        "page=x",
        "page=-1",
        "least=x",
        "least=2000",
        "page=" + "9" * 5000,
        "least=" + "9" * 5000,
    ):
        assert hr.get(f"/console/attendance/overtime?month=2026-11&{bad}").status_code == 400, bad
    token = csrf_of(hr.get("/console/").text)
    approve = {"staff": "CB-B1", "date": "2026-11-02", "minutes": "30", "reason": "Trực", "csrf": token}
    r = hr.post(
        "/console/attendance/overtime",
        data={**approve, "page": "2", "least": "100"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("page=2&least=100&done=1")


def test_numbers_typed_oddly_are_refused_not_errors(lite: Env) -> None:
    """A number field or parameter of thousands of digits, or of digits Python's ``isdigit``
    accepts but ``int`` refuses ("²"), is a 400 / 422 with the page's message (each was a 500)."""
    _hr_setup(lite)
    hr, admin = lite.login("nhansu"), lite.login("admin")
    token, atoken = csrf_of(hr.get("/console/").text), csrf_of(admin.get("/console/").text)
    for odd in ("9" * 5000, "²", "٣" * 40):
        assert admin.get(f"/console/attendance/calendar?year={odd}").status_code == 400
        assert hr.get(f"/console/attendance/overtime?month=2026-11&page={odd}").status_code == 400
        assert hr.get(f"/console/attendance/overtime?month=2026-11&least={odd}").status_code == 400
        assert (
            admin.get(f"/console/audit?cursor={odd}").status_code == 200
        )  # an unusable cursor: the first page
        approve = {"staff": "CB-A1", "date": "2026-11-02", "minutes": odd, "reason": "x", "csrf": token}
        assert hr.post("/console/attendance/overtime", data=approve).status_code == 400
        shift = {"csrf": atoken, "id": "x1", "name": "X", "start1": "07:30", "end1": "11:30", "day": "Mon"}
        r = admin.post("/console/attendance/shifts", data={**shift, "grace_in": odd, "grace_out": "0"})
        assert r.status_code == 422 and "Số phút cho phép là số nguyên" in r.text
    assert _rows(lite, "att_overtime") == []
    # the same form, well typed, is taken
    r = admin.post("/console/attendance/shifts", data={**shift, "grace_in": "5", "grace_out": "0"})
    assert r.status_code in (200, 303) and "Số phút cho phép là số nguyên" not in r.text


def test_attendance_pages_ask_for_a_unit_when_the_scope_is_too_large(
    lite: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the bound the month is not computed for the whole scope: the units in scope with their
    head counts are offered, and the page of one unit holds its people (the overtime page likewise)."""
    from gateway.console.routes import attendance as att_pages

    _hr_setup(lite)
    monkeypatch.setattr(att_pages, "PEOPLE_MAX", 1)
    hr = lite.login("nhansu")  # every unit: 3 people
    page = hr.get("/console/attendance?month=2026-11")
    assert page.status_code == 200 and "Chọn đơn vị" in page.text and "grid-h" not in page.text
    for unit in ("H01.01", "H01.02", "H02.01"):
        assert f"/console/attendance?month=2026-11&amp;unit={unit}" in page.text
    page = hr.get("/console/attendance?month=2026-11&unit=H01.01")
    assert page.status_code == 200 and "Chọn đơn vị" not in page.text and "CB-A1" in page.text
    assert "CB-B1" not in page.text
    ot = hr.get("/console/attendance/overtime?month=2026-11")
    assert ot.status_code == 200 and "Chọn đơn vị" in ot.text and "CB-A1" not in ot.text
    assert "/console/attendance/overtime?month=2026-11&amp;unit=H01.01" in ot.text
    ot = hr.get("/console/attendance/overtime?month=2026-11&unit=H01.01")
    assert ot.status_code == 200 and "CB-A1" in ot.text and ">150<" in ot.text and "CB-B1" not in ot.text
    token = csrf_of(ot.text)
    approve = {"staff": "CB-A1", "date": "2026-11-02", "minutes": "90", "reason": "Họp", "unit": "H01.01"}
    r = hr.post("/console/attendance/overtime", data={**approve, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("unit=H01.01&done=1")
    # a scoped officer is offered the units of their scope only, and sees nothing outside it
    hra = lite.login("nhansu-a")
    page = hra.get("/console/attendance?month=2026-11")
    assert "unit=H01.01" in page.text and "unit=H01.02" in page.text and "H02.01" not in page.text
    # a unit outside the scope, typed: refused with the reason, never computed (page, overtime, files)
    for path in ("/console/attendance", "/console/attendance/overtime", "/console/attendance/timesheet.csv"):
        r = hra.get(f"{path}?month=2026-11&unit=H02.01")
        assert r.status_code == 403 and "CB-B1" not in r.text, path
        assert "Đơn vị H02.01 nằm ngoài các đơn vị của bạn" in r.text, path
    # the whole scope as one file: refused like the page, a unit's file served
    for who in (hr, hra):
        r = who.get("/console/attendance/timesheet.csv?month=2026-11")
        assert r.status_code == 400 and "hãy chọn một đơn vị trước" in r.text
    r = hra.get("/console/attendance/timesheet.csv?month=2026-11&unit=H01.01")
    assert r.status_code == 200 and "CB-A1" in r.text
    monkeypatch.setattr(att_pages, "PEOPLE_MAX", 2)  # the scope fits: everyone of it, as before
    page = hra.get("/console/attendance?month=2026-11")
    assert "Chọn đơn vị" not in page.text and "CB-A1" in page.text and "CB-B1" not in page.text


def test_audit_dates_are_vietnamese_text_fields_checked_by_the_server(lite: Env) -> None:
    """dd/mm/yyyy shown and accepted (ISO too), a date alone as the last one is its whole day, an
    optional HH:MM narrows; a bad date or an inverted range is refused with the reason."""
    from gateway.models import AuditEntry

    vn = timezone(timedelta(hours=7))
    with Session(lite.engine) as s:
        for i, at in enumerate(
            (datetime(2026, 11, 30, 23, 59, tzinfo=vn), datetime(2026, 12, 1, 0, 0, tzinfo=vn),
             datetime(2026, 12, 1, 23, 59, tzinfo=vn), datetime(2026, 12, 2, 0, 0, tzinfo=vn))
        ):  # fmt: skip
            s.add(AuditEntry(at=at.astimezone(UTC), actor="t", role="admin", action="probe", target=f"T{i}"))
        s.commit()
    c = lite.login("admin")
    page = c.get("/console/audit").text
    assert 'type="date"' not in page and "ngày/tháng/năm" in page
    assert re.search(r'id="since"[^>]*placeholder="\d{2}/\d{2}/\d{4}"', page)
    assert 'aria-describedby="audit-dates-help"' in page and 'id="audit-dates-help"' in page

    def targets(**q: str) -> list[str]:
        r = c.get("/console/audit", params={"action": "probe", **q})
        assert r.status_code == 200, r.text
        return sorted(re.findall(r"<td>(T\d)</td>", r.text))

    assert targets(since="01/12/2026", until="01/12/2026") == ["T1", "T2"]  # the whole day
    assert targets(since="2026-12-01", until="2026-12-01") == ["T1", "T2"]  # ISO too
    assert targets(since="1/12/2026 23:00") == ["T2", "T3"]
    assert targets(until="01/12/2026 00:00") == ["T0"]
    day = {"since": "01/12/2026", "until": "01/12/2026"}
    csv = c.get("/console/audit.csv", params={"action": "probe", **day})
    assert csv.status_code == 200 and "T1" in csv.text and "T0" not in csv.text and "T3" not in csv.text
    for bad in ({"since": "12/31/2026"}, {"since": "2026-12-01T25:00"}, {"until": "hôm qua"}):
        r = c.get("/console/audit", params=bad)
        assert r.status_code == 400 and "ngày/tháng/năm (02/09/2026)" in r.text, bad
    r = c.get("/console/audit", params={"since": "02/12/2026", "until": "01/12/2026"})
    assert r.status_code == 400 and "Ngày đầu ở sau ngày cuối." in r.text


def test_month_in_progress_days_to_come_are_not_absences(lite: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Wed 4 Nov 2026 the grid shades 5-30 Nov as not yet due and marks the due absences; the
    unit figures count only due days; the day panel, with nothing on the 4th, shows Mon 2 Nov
    labelled as such. The contract's report still flags the days to come ``absent``."""
    from gateway.console.routes import attendance as att_pages

    class Wednesday(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Wednesday:
            return cls(2026, 11, 4, 9, 0, tzinfo=tz)

    _hr_setup(lite)
    monkeypatch.setattr(att_pages, "datetime", Wednesday)
    page = lite.login("nhansu").get("/console/attendance?month=2026-11").text
    row = re.search(r"<tr><th scope=\"row\">Nguyễn Văn An</th>(.*?)</tr>", page)
    assert row
    cells = re.findall(r"<td( class=\"\w+\")?>(.*?)</td>", row[1])[1:-1]  # the 30 days
    assert [c[0] for c in cells[4:]] == [' class="future"'] * 26 and all(c[1] == "" for c in cells[4:])
    assert cells[0] == ("", "") and cells[1] == ("", "+")  # Sunday 1 Nov: a rest day; Monday worked
    assert cells[2][0] == cells[3][0] == ' class="absent"'  # 3 and 4 Nov
    assert '<th scope="col" class="future">5<span class="sr"> (chưa đến ngày)</span></th>' in page
    fig = r"<tr><td>(H0\d\.0\d)</td><td>1</td><td>[^<]*</td><td>[^<]*</td><td>(\d+)</td>"
    absent = dict(re.findall(fig, page))
    assert absent == {"H01.01": "2", "H01.02": "3", "H02.01": "2"}  # due days only
    assert "NGÀY T2 02/11/2026</h2>" in page and "Hôm nay (04/11/2026) chưa có lượt chấm công" in page
    from gateway.attendance import store as att_store  # the contract's report: unchanged

    report = att_store.compute_month(lite.engine, "2026-11", staff="CB-A1")
    assert report["staff"][0]["days"]["2026-11-30"]["flags"] == ["absent"]
    # a past month: its latest day with punches, labelled; the grid has no day to come
    page = lite.login("nhansu").get("/console/attendance?month=2026-10").text
    assert 'class="future"' not in page and "today-h" not in page
    assert att_pages.panel_day({"staff": []}, "2026-12", "2026-11-04") is None


def test_attendance_pages_kept_between_requests_follow_a_change(lite: Env) -> None:
    """The attendance and overtime pages keep computed rows and what they derive from them
    between requests (``kept_month``, ``Derived``, the rendered parts): after a new punch today
    they equal the pages computed from nothing kept."""
    from gateway.attendance import store as att_store
    from gateway.console.routes import attendance as att_pages

    _hr_setup(lite)
    hr = lite.login("nhansu")
    now = datetime.now(UTC).replace(microsecond=0)
    month = (now + timedelta(hours=7)).strftime("%Y-%m")

    def pages() -> list[str]:
        got = [hr.get(f"/console/attendance{p}?month={month}") for p in ("", "/overtime")]
        assert all(r.status_code == 200 for r in got)
        return [re.sub(r'name="csrf" value="[^"]+"', "", r.text) for r in got]

    with lite.engine.begin() as conn:
        att_store.assign(conn, "hc", (now - timedelta(days=40)).date(), None, staff="CB-A2")
        att_store.add_punches(conn, [att_store.PunchRow("CB-A2", now - timedelta(hours=9), "import")])
    before = pages()
    assert "CB-A2" in before[0]
    with lite.engine.begin() as conn:  # CB-A2 leaves: today's out, maybe overtime, a new total
        att_store.add_punches(conn, [att_store.PunchRow("CB-A2", now - timedelta(minutes=1), "import")])
    after = pages()
    att_store._MEMO.clear()
    att_pages._DERIVED.clear()
    att_pages._PAGES.clear()
    assert pages() == after != before
