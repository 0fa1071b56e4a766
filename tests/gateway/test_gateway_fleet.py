"""The reader fleet (gateway/fleet.py) and the downlink (gateway/mqtt/downlink.py).

Unit tests run on SQLite and PostgreSQL. The contract tests run the REAL reader firmware under
MicroPython (firmware/tools/virtual_reader.py) against a real Mosquitto, with Fleet and Downlink
behind a small paho consumer written here (and a small ingest of the reader's sealed events, which
checks each MAC and hands new alarm/notice rows to ``fleet.apply_event_effects`` in the same
transaction, as gateway/ingest.py does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session, select

from gateway import db, fleet, registry
from gateway.models import Alarm, AuditEntry, BootAnchor, Command, ConfigPush, Event, Reader
from gateway.mqtt.downlink import Downlink, DownlinkError
from gateway.registry import KeyCache
from gateway.secretbox import SecretBox
from trustcore import cose, keys
from trustcore import reader_config as rc

T0 = datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC).timestamp()
KEYS = {rid: hashlib.sha256(b"mac " + rid.encode()).digest() for rid in ("r1", "r2", "r3")}
SIGNING_KEY = keys.generate_rsa(2048)
DOOR_SRC: dict[str, Any] = {"door": [{"id": "d1", "name": "Cửa chính"}]}


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Env:
    def __init__(self, url: str) -> None:
        db.migrate(url)
        self.engine = db.make_engine(url)
        self.box = box = SecretBox(os.urandom(32))
        with Session(self.engine) as s:
            for rid, site, role in (
                ("r1", "hq", "door"),
                ("r2", "hq", "attendance"),
                ("r3", "annex", "door"),
            ):
                registry.register(s, box, rid, site=site, role=role, mac_key=KEYS[rid])
            s.commit()
        self.keys = KeyCache(self.engine, box)
        self.keys.load_all()
        self.sent: list[tuple[str, bytes, int, bool]] = []
        self.clock = Clock()
        self.fleet = fleet.Fleet(self.engine, self.keys, self.publish, offline_grace_s=60, clock=self.clock)
        self.down = Downlink(self.engine, SIGNING_KEY, self.publish, clock=self.clock)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, qos, retain))

    def reader(self, rid: str) -> Reader:
        with Session(self.engine) as s:
            r = s.get(Reader, rid)
            assert r is not None
            return r

    def rows(self, model: Any, *where: Any) -> list[Any]:
        with Session(self.engine) as s:
            return list(s.exec(select(model).where(*where)).all())

    def at(self, dt_s: float = 0) -> datetime:
        return datetime.fromtimestamp(self.clock.t + dt_s, UTC)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    url = db_url  # SQLite and PostgreSQL (tests/conftest.py)
    e = Env(url)
    yield e
    e.engine.dispose()


def status(online: bool = True, fw: str = "cbcc-fw 0.1", trust: int | None = 3, crl: int | None = 4,
           cfg: int | None = 1, boot: int = 7, role: str = "door") -> bytes:  # fmt: skip
    if not online:
        return cbor2.dumps({1: False})
    return cbor2.dumps({1: True, 2: fw, 3: trust, 4: crl, 5: cfg, 6: boot, 7: role})


def health(uptime: int = 100, nonce: bytes | None = b"\x01" * 8, tq: int = 0) -> bytes:
    h: dict[int, Any] = {1: uptime, 2: 50000, 4: 2, 5: 0, 6: 1, 7: tq, 9: 1780000000}
    if nonce is not None:
        h[8] = nonce
    return cbor2.dumps(h)


# ---- status, health, time replies ------------------------------------------------------------------


def test_status_and_health_land_in_the_reader_row(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(), env.at())
    env.clock.t += 5
    f.on_health("r1", health(uptime=300), env.at())
    assert f.flush() >= 3  # status row, health row, boot anchor
    r = env.reader("r1")
    assert (r.online, r.firmware, r.trust_seq, r.crl_seq, r.config_seq, r.boot) == (
        True,
        "cbcc-fw 0.1",
        3,
        4,
        1,
        7,
    )
    assert (r.uptime_s, r.free_heap, r.rf_errors, r.journal_depth, r.journal_fill, r.time_quality) == (
        300, 50000, 2, 0, 1, 0)  # fmt: skip
    assert db.utc(r.status_at) == env.at(-5) and db.utc(r.last_seen) == env.at() == db.utc(r.health_at)
    (anchor,) = env.rows(BootAnchor)
    assert (anchor.reader_id, anchor.boot, anchor.source) == ("r1", 7, "heartbeat")
    assert anchor.offset_ms == int(env.clock.t * 1000) - 300_000
    assert f.flush() == 0  # nothing new

    # Null seqs (a reader that holds no trust list yet) are stored as null.
    f.on_status("r2", status(trust=None, crl=None, cfg=None, role="attendance"), env.at())
    f.flush()
    r2 = env.reader("r2")
    assert (r2.online, r2.trust_seq, r2.crl_seq, r2.config_seq) == (True, None, None, None)


def test_boot_anchor_keeps_the_smallest_offset_and_never_overrides_a_synced_one(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(boot=3), env.at())
    f.on_health("r1", health(uptime=100, nonce=b"a" * 8), env.at(0.9))  # delayed: larger offset
    f.flush()
    env.clock.t += 30
    f.on_health("r1", health(uptime=130, nonce=b"b" * 8), env.at(0.2))  # better
    env.clock.t += 30
    f.on_health("r1", health(uptime=160, nonce=b"c" * 8), env.at(0.7))  # worse: not written
    f.flush()
    (a,) = env.rows(BootAnchor)
    assert a.offset_ms == int((T0 + 30.2) * 1000) - 130_000
    # a reboot: new boot number, new anchor
    f.on_status("r1", status(boot=4), env.at())
    f.on_health("r1", health(uptime=2, nonce=b"d" * 8), env.at())
    f.flush()
    assert sorted(a.boot for a in env.rows(BootAnchor)) == [3, 4]
    # an anchor from a synced event (gateway.timefix) is better than any heartbeat
    with env.engine.begin() as conn:
        four = sa.update(fleet.ANCHOR).where(fleet.ANCHOR.c.boot == 4)
        conn.execute(four.values(source="synced_event", offset_ms=123))
    f.on_health("r1", health(uptime=3, nonce=b"e" * 8), env.at(-5))
    f.flush()
    assert [a.offset_ms for a in env.rows(BootAnchor, BootAnchor.boot == 4)] == [123]


def test_time_reply_answers_the_newest_nonce_once_with_the_reader_key(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(), env.at())
    f.on_health("r1", health(nonce=b"n1n1n1n1"), env.at())
    ((topic, payload, qos, retain),) = env.sent
    assert (topic, qos, retain) == ("cbcc/v1/r/r1/time", 0, False)
    nonce, ms, tag = cbor2.loads(payload)
    assert (nonce, ms) == (b"n1n1n1n1", int(T0 * 1000))
    want = hmac.new(
        KEYS["r1"], b"cbcc-time1" + b"r1" + nonce + ms.to_bytes(8, "big"), hashlib.sha256
    ).digest()
    assert tag == want
    f.on_health("r1", health(nonce=b"n1n1n1n1"), env.at())  # the same heartbeat again: not answered twice
    f.on_health("r1", health(nonce=None), env.at())  # no nonce: nothing to answer
    f.on_health("r1", health(nonce=b"n2n2n2n2"), env.at(-11))  # held back > 10 s: the reader would refuse
    assert len(env.sent) == 1
    f.on_health("r1", health(nonce=b"n3n3n3n3"), env.at(-2))
    assert len(env.sent) == 2 and cbor2.loads(env.sent[-1][1])[0] == b"n3n3n3n3"
    assert f.stats["time_replies"] == 2 and f.stats["time_skipped"] == 2


def test_unknown_and_disabled_readers_are_counted_and_ignored(env: Env) -> None:
    f = env.fleet
    f.on_status("nobody", status(), env.at())
    f.on_health("nobody", health(), env.at())
    f.on_health("../../etc", health(), env.at())
    with Session(env.engine) as s:
        r3 = s.get(Reader, "r3")
        assert r3 is not None
        r3.enabled = False
        s.add(r3)
        s.commit()
    env.keys.forget("r3")
    f.on_health("r3", health(), env.at())
    assert f.stats["unknown"] == 4 and env.sent == []
    assert f.flush() == 0
    assert env.rows(Reader, Reader.id == "nobody") == [] and env.reader("r3").last_seen is None


def test_offline_after_grace_raises_an_alarm_cleared_on_return(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(), env.at())
    f.flush()
    env.clock.t += 10
    f.on_status("r1", status(online=False), env.at())  # the Last Will
    f.flush()
    r = env.reader("r1")
    assert r.online is False and r.firmware == "cbcc-fw 0.1"  # the will changes only `online`
    assert env.rows(Alarm) == []
    env.clock.t += 30
    f.on_status("r1", status(online=False), env.at())  # the retained will again (a resubscribe)
    env.clock.t += 35  # 65 s after the will: past the 60 s grace, though the retained copy is younger
    f.flush()
    (a,) = env.rows(Alarm)
    assert (a.reader_id, a.kind, a.active) == ("r1", "offline", True)
    env.clock.t += 100
    f.flush()
    assert len(env.rows(Alarm)) == 1  # raised once
    # a new Fleet (gateway restart) knows the alarm is up and does not raise it twice
    f2 = fleet.Fleet(env.engine, env.keys, env.publish, offline_grace_s=60, clock=env.clock)
    f2.flush()
    assert len(env.rows(Alarm)) == 1
    f2.on_status("r1", status(), env.at())
    f2.flush()
    (a,) = env.rows(Alarm)
    assert a.active is False and db.utc(a.cleared_at) == env.at()
    assert env.reader("r1").online is True


def test_will_right_after_status_keeps_the_status_fields(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(cfg=5), env.at())
    f.on_status("r1", status(online=False), env.at(1))
    f.flush()
    r = env.reader("r1")
    assert (r.online, r.config_seq, r.boot) == (False, 5, 7)


def test_role_mismatch_alarm(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(role="attendance"), env.at())
    f.flush()
    (a,) = env.rows(Alarm)
    assert (a.kind, a.active) == ("role_mismatch", True) and "attendance" in a.detail
    f.on_status("r1", status(role="door"), env.at())
    f.flush()
    assert [x.active for x in env.rows(Alarm)] == [False]


def test_flush_keeps_updates_when_the_database_fails(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    f = env.fleet
    f.on_status("r1", status(cfg=9), env.at())

    def boom(*_a: Any, **_k: Any) -> int:
        raise sa.exc.OperationalError("x", {}, Exception("db down"))

    monkeypatch.setattr(f, "_write", boom)
    with pytest.raises(sa.exc.OperationalError):
        f.flush()
    monkeypatch.undo()
    assert f.flush() >= 1 and env.reader("r1").config_seq == 9


# ---- garbage never raises ------------------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.text(max_size=80), st.binary(max_size=40), st.floats(allow_nan=True))  # fmt: skip
_value = st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.integers(-1, 12), c,
                                                                                    max_size=3),
                      max_leaves=8)  # fmt: skip
_maps = st.dictionaries(st.integers(-1, 12) | st.text(max_size=3), _value, max_size=10).map(cbor2.dumps)


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The domain errors read in the process's language (messages._): these match the English."""
    monkeypatch.setenv("CBCC_LANG", "en")


@pytest.fixture(scope="module")
def garbage_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(f"sqlite:///{tmp_path_factory.mktemp('garbage') / 'g.db'}")
    yield e
    e.engine.dispose()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["status", "health"]),
                          st.sampled_from(["r1", "r2", "zz", "", "R1"]),
                          st.one_of(st.binary(max_size=64), _maps)), max_size=6))  # fmt: skip
def test_garbage_never_raises(garbage_env: Env, msgs: list[tuple[str, str, bytes]]) -> None:
    f = garbage_env.fleet
    for kind, rid, payload in msgs:
        (f.on_status if kind == "status" else f.on_health)(rid, payload, garbage_env.at())
    f.flush()  # whatever was accepted fits the columns
    assert f.stats["errors"] == 0


def test_garbage_is_counted(env: Env) -> None:
    f = env.fleet
    for p in (b"", b"\xff\xff", cbor2.dumps([1, 2]), cbor2.dumps({1: "yes"}), cbor2.dumps({1: True, 6: -1}),
              cbor2.dumps({1: True, 7: "admin"}), cbor2.dumps({1: True, 3: 2**64})):  # fmt: skip
        f.on_status("r1", p, env.at())
    for p in (cbor2.dumps({8: b"short"}), cbor2.dumps({1: -5}), cbor2.dumps({2: 2**40}), b"\x00" * 2000):
        f.on_health("r1", p, env.at())
    f.on_status("r1", None, env.at())  # type: ignore[arg-type]
    assert f.stats["garbage"] == 12 and f.stats["errors"] == 0 and env.sent == []
    assert f.flush() == 0


# ---- events: alarms and notices ----------------------------------------------------------------------


def _ev(rid: str, seq: int, kind: str, at: datetime, **cols: Any) -> dict[str, Any]:
    return {"reader_id": rid, "seq": seq, "kind": kind, "occurred_at": at, "received_at": at,
            "time_quality": 2,
            "time_corrected": False, "record": b"r", "mac": b"m", **cols}  # fmt: skip


def _apply(env: Env, rows: list[dict[str, Any]]) -> None:
    with env.engine.begin() as conn:
        for row in rows:
            conn.execute(sa.insert(Event.__table__), row)  # type: ignore[attr-defined]
        fleet.apply_event_effects(conn, rows)


def test_alarm_events_raise_and_clear_idempotently(env: Env) -> None:
    t = env.at()
    _apply(env, [_ev("r1", 1, "alarm", t, alarm="forced_open", active=True, detail="d1"),
                 _ev("r1", 2, "tap", t, decision="grant"),
                 _ev("r2", 1, "alarm", t, alarm="tamper", active=True)])  # fmt: skip
    with env.engine.begin() as conn:  # the same rows again (a retried batch): nothing new
        fleet.apply_event_effects(conn, [_ev("r1", 1, "alarm", t, alarm="forced_open", active=True)])
    assert sorted((a.reader_id, a.kind, a.active, a.event_seq) for a in env.rows(Alarm)) == [
        ("r1", "forced_open", True, 1), ("r2", "tamper", True, 1)]  # fmt: skip
    _apply(env, [_ev("r1", 3, "alarm", t + timedelta(seconds=9), alarm="forced_open", active=False)])
    (a,) = env.rows(Alarm, Alarm.reader_id == "r1")
    assert a.active is False and db.utc(a.cleared_at) == t + timedelta(seconds=9)
    with env.engine.begin() as conn:  # a re-delivered raise of a cleared alarm stays cleared
        fleet.apply_event_effects(conn, [_ev("r1", 1, "alarm", t, alarm="forced_open", active=True)])
    assert [x.active for x in env.rows(Alarm, Alarm.reader_id == "r1")] == [False]
    with env.engine.begin() as conn:  # junk rows are ignored
        fleet.apply_event_effects(conn, [{"kind": "alarm"}, _ev("r1", 9, "alarm", t, alarm=None, active=True),
                                         _ev("r1", 10, "notice", t, detail="nonsense"), {}])  # fmt: skip


def test_notices_set_command_and_config_outcomes(env: Env) -> None:
    c1 = env.down.send_command("r1", "open", {"door": "d1"}, "alice")
    c2 = env.down.send_command("r1", "lockdown", None, "alice")
    env.down.send_command("r2", "open", None, "alice")
    env.clock.t += 2
    _apply(
        env,
        [
            _ev("r1", 1, "notice", env.at(), detail="cmd:ok"),
            _ev("r1", 2, "notice", env.at(), detail="mode:lockdown"),
        ],
    )
    got = {c.seq: c.outcome for c in env.rows(Command)}
    assert got == {c1.seq: None, c2.seq: "ok", c2.seq + 1: None}  # the latest outstanding one
    _apply(env, [_ev("r1", 3, "notice", env.at(), detail='{"what": "cmd", "status": "expired"}')])
    assert {c.seq: c.outcome for c in env.rows(Command)}[c1.seq] == "expired"

    p1 = env.down.push_config("r1", DOOR_SRC, "bob")
    p2 = env.down.push_config("r1", DOOR_SRC, "bob")
    env.clock.t += 1
    _apply(env, [_ev("r1", 4, "notice", env.at(), detail="config:rollback")])
    assert {p.seq: p.outcome for p in env.rows(ConfigPush)} == {p1.seq: None, p2.seq: "rollback"}
    p3 = env.down.push_config("r1", DOOR_SRC, "bob")
    env.clock.t += 1
    _apply(env, [_ev("r1", 5, "notice", env.at(), detail="config:ok")])
    pushes = {p.seq: p for p in env.rows(ConfigPush)}
    assert [pushes[s].outcome for s in (p1.seq, p2.seq, p3.seq)] == ["superseded", "rollback", "ok"]
    assert db.utc(pushes[p3.seq].applied_at) == env.at()


def test_laggards_raise_config_not_applied_until_the_reader_catches_up(env: Env) -> None:
    f = env.fleet
    f.on_status("r1", status(cfg=1), env.at())
    f.on_status("r2", status(cfg=None, role="attendance"), env.at())
    f.flush()
    p1 = env.down.push_config("r1", DOOR_SRC, "bob")
    env.down.push_config("r2", DOOR_SRC, "bob")
    assert p1.seq == 2  # above the seq the reader reports
    assert f.laggards(300) == []  # just pushed
    env.clock.t += 301
    assert [r.id for r in f.laggards(300)] == ["r1", "r2"]
    assert [r.id for r in f.laggards(300)] == ["r1", "r2"]
    assert sorted((a.reader_id, a.kind, a.active) for a in env.rows(Alarm)) == [
        ("r1", "config_not_applied", True), ("r2", "config_not_applied", True)]  # fmt: skip
    f.on_status("r1", status(cfg=2), env.at())
    f.flush()
    assert [r.id for r in f.laggards(300)] == ["r2"]
    assert {a.reader_id: a.active for a in env.rows(Alarm)} == {"r1": False, "r2": True}


# ---- downlink ------------------------------------------------------------------------------------------


def test_push_config_numbers_signs_audits_and_publishes_after_commit(env: Env) -> None:
    seen_rows: list[int] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        seen_rows.append(len(env.rows(ConfigPush)))  # the row is committed before the publish
        env.publish(topic, payload, qos, retain)

    down = Downlink(env.engine, SIGNING_KEY, publish, clock=env.clock)
    env.fleet.on_status("r1", status(cfg=41), env.at())  # provisioned with seq 41 by `cbcc config build`
    env.fleet.flush()
    p = down.push_config("r1", {"reader_id": "r1", **DOOR_SRC}, "bob", role="facility")
    assert p.seq == 42 and seen_rows == [1]
    ((topic, blob, qos, retain),) = env.sent
    assert (topic, qos, retain) == ("cbcc/v1/r/r1/cfg", 1, True)
    assert p.sha256 == hashlib.sha256(blob).hexdigest()
    shown = rc.parse_payload(
        cbor2.loads(cose.verify_sign1(blob, SIGNING_KEY.public_key(), rc.MAX_SIZE).payload)
    )
    assert shown is not None and shown["reader_id"] == "r1" and shown["seq"] == 42
    r = env.reader("r1")
    assert r.pushed_config_seq == 42 and db.utc(r.pushed_config_at) == env.at()
    (a,) = env.rows(AuditEntry)
    got = (a.actor, a.role, a.action, a.target, json.loads(a.detail)["seq"])
    assert got == ("bob", "facility", "config.push", "r1", 42)
    assert down.push_config("r1", DOOR_SRC, "bob").seq == 43
    assert down.push_config("r2", DOOR_SRC, "bob").seq == 1  # a counter per reader


@pytest.mark.parametrize(
    ("rid", "src", "message"),
    [
        ("nobody", DOOR_SRC, "reader nobody is not registered"),
        ("r1", {"reader_id": "r2", **DOOR_SRC}, "the source is for reader 'r2'"),
        ("r1", {"door": [{"id": "d1", "name": "x", "mode": "open"}]}, "door[0].mode: must be one of"),
        ("r1", {"dooor": []}, "dooor"),
    ],
)
@pytest.mark.usefixtures("english")
def test_push_config_errors(env: Env, rid: str, src: dict[str, Any], message: str) -> None:
    with pytest.raises(DownlinkError, match=message.replace("[", r"\[").replace("]", r"\]")):
        env.down.push_config(rid, src, "bob")
    assert env.sent == [] and env.rows(ConfigPush) == [] and env.rows(AuditEntry) == []


def _open_command(blob: bytes) -> dict[int, Any]:
    msg = cose.verify_sign1(blob, SIGNING_KEY.public_key(), 2048)
    p: dict[int, Any] = cbor2.loads(msg.payload)
    return p


def test_commands_share_one_counter_and_are_signed(env: Env) -> None:
    c1 = env.down.send_command("r1", "open", {"door": "d1"}, "alice", role="facility", ttl_s=60)
    c2 = env.down.send_command("*", "lockdown", None, "alice")
    c3 = env.down.send_command("r2", "resync", None, "alice")
    assert [c.seq for c in (c1, c2, c3)] == [1, 2, 3]
    assert [t for t, *_ in env.sent] == ["cbcc/v1/r/r1/cmd", "cbcc/v1/all/cmd", "cbcc/v1/r/r2/cmd"]
    assert all(q == 1 and not retain for _, _, q, retain in env.sent)
    p = _open_command(env.sent[0][1])
    now = int(env.clock.t)
    assert p == {0: "cmd", 1: 1, 2: 1, 3: now, 4: "r1", 5: now + 60, 6: "open", 7: {"door": "d1"}}
    assert _open_command(env.sent[1][1])[4] == "*"
    assert db.utc(c1.expires_at) == env.at(60) and c1.args == '{"door": "d1"}'
    cmds = env.rows(Command)
    assert sorted(c.seq for c in cmds) == [1, 2, 3]
    assert [a.action for a in env.rows(AuditEntry)] == ["command.open", "command.lockdown", "command.resync"]

    locked = env.down.lockdown_site("hq", "chief")
    assert [(c.target, c.seq, c.action) for c in locked] == [("r1", 4, "lockdown"), ("r2", 5, "lockdown")]
    assert [t for t, *_ in env.sent[3:]] == ["cbcc/v1/r/r1/cmd", "cbcc/v1/r/r2/cmd"]
    assert len(env.rows(AuditEntry, AuditEntry.actor == "chief")) == 2


@pytest.mark.parametrize(
    ("target", "action", "args", "ttl", "message"),
    [
        ("nobody", "open", None, 300, "reader nobody is not registered"),
        ("r1", "selfdestruct", None, 300, "action must be one of"),
        ("r1", "open", {"x": object()}, 300, "args"),
        ("r1", "open", "x" * 2000, 300, "too large"),
        ("r1", "open", None, 0, "ttl_s"),
    ],
)
@pytest.mark.usefixtures("english")
def test_command_errors(env: Env, target: str, action: str, args: Any, ttl: int, message: str) -> None:
    with pytest.raises(DownlinkError, match=message):
        env.down.send_command(target, action, args, "alice", ttl_s=ttl)
    assert env.sent == [] and env.rows(Command) == []
    with pytest.raises(DownlinkError, match="no enabled reader at site"):
        env.down.lockdown_site("moon", "chief")


def test_counter_survives_a_failed_publish_and_a_new_downlink(env: Env) -> None:
    def broken(*_a: Any) -> None:
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        Downlink(env.engine, SIGNING_KEY, broken, clock=env.clock).send_command("r1", "open", None, "a")
    assert env.down.send_command("r1", "open", None, "a").seq == 2  # never the same number twice


# ---- contract with the real firmware: a virtual reader against a real Mosquitto ----------------------

VR = "hn-snv-fleet-01"
VR_KEY = hashlib.sha256(b"mac key of " + VR.encode()).digest()
VR_SRC: dict[str, Any] = {"site": "Thử nghiệm", "door": [{"id": "cong-chinh", "name": "Cổng chính"}]}
GW_PASSWORD = "pw-gateway"


class MiniGateway:
    """The gateway's MQTT side for the contract test: paho v5, persistent session; status and
    health go to Fleet, sealed events are checked with the reader key and stored once, with
    ``apply_event_effects`` in the same transaction; a thread flushes Fleet every 0.2 s."""

    def __init__(self, port: int, engine: sa.Engine, keys: KeyCache) -> None:
        self.engine = engine
        self.keys = keys
        self.published: list[tuple[str, bytes]] = []
        self.fleet: fleet.Fleet | None = None
        self.errors: list[str] = []
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-fleet-test", protocol=paho.MQTTv5)
        self.c.username_pw_set("gateway", GW_PASSWORD)
        self.c.on_message = self._on_message
        ready = threading.Event()

        def on_connect(c: paho.Client, _u: Any, _f: Any, rc_: Any, _p: Any = None) -> None:
            c.subscribe([("cbcc/v1/r/+/status", 1), ("cbcc/v1/r/+/health", 0), ("cbcc/v1/r/+/ev", 1)])
            ready.set()

        self.c.on_connect = on_connect
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ready.wait(10)
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)

    def start(self, f: fleet.Fleet) -> None:
        self.fleet = f
        self._flusher.start()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.published.append((topic, payload))
        self.c.publish(topic, payload, qos=qos, retain=retain)

    def _flush_loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                assert self.fleet is not None
                self.fleet.flush()
            except Exception as exc:
                self.errors.append(repr(exc))

    def _on_message(self, _c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        parts = m.topic.split("/")
        if len(parts) != 5 or self.fleet is None:
            return
        rid, kind, now = parts[3], parts[4], datetime.now(UTC)
        try:
            if kind == "status":
                self.fleet.on_status(rid, bytes(m.payload), now)
            elif kind == "health":
                self.fleet.on_health(rid, bytes(m.payload), now)
            elif kind == "ev":
                self._ingest(rid, bytes(m.payload), now)
        except Exception as exc:
            self.errors.append(repr(exc))

    def _ingest(self, rid: str, payload: bytes, now: datetime) -> None:
        key = self.keys.get(rid)
        ver, seq, rec, tag = cbor2.loads(payload)
        r = rid.encode()
        want = hmac.new(key or b"", b"cbcc-ev1" + bytes([len(r)]) + r + seq.to_bytes(8, "big") + rec,
                        hashlib.sha256).digest()  # fmt: skip
        assert key is not None and ver == 1 and hmac.compare_digest(tag, want)
        m = cbor2.loads(rec)
        row = {"reader_id": rid, "seq": seq, "kind": m[3], "occurred_at": now,
               "reader_time": datetime.fromtimestamp(m[1], UTC), "time_quality": m[2],
               "time_corrected": False,
               "received_at": now, "boot": m.get(4), "uptime_ms": m.get(5), "alarm": m.get(20),
               "active": m.get(21), "detail": m.get(22) if isinstance(m.get(22), str) else None,
               "record": rec, "mac": tag}  # fmt: skip
        table: sa.Table = Event.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            have = conn.execute(
                sa.select(table.c.id).where(table.c.reader_id == rid, table.c.seq == seq)
            ).first()
            if have is None:
                conn.execute(sa.insert(table), row)
                fleet.apply_event_effects(conn, [row])

    def close(self) -> None:
        self._stop.set()
        if self._flusher.is_alive():
            self._flusher.join(5)
        self.c.loop_stop()
        self.c.disconnect()


class VirtualReader:
    """firmware/tools/virtual_reader.py (the real firmware under MicroPython) as a process."""

    def __init__(self, folder: Path, broker: Any) -> None:
        from test_rf_support import ISSUER  # the simulated cards' issuer (no cards here)

        from simulators.firmware_runner import ROOT as FW_ROOT
        from simulators.firmware_runner import micropython_binary, micropython_env

        ca_der = folder / "ca.der"
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca_der.write_bytes(x509.load_pem_x509_certificate(broker.ca.read_bytes())
                           .public_bytes(serialization.Encoding.DER))  # fmt: skip
        (folder / "config.cose_key").write_bytes(keys.cose_key_bytes(SIGNING_KEY.public_key()))
        (folder / "reader.cfg").write_bytes(rc.build(VR_SRC, SIGNING_KEY, 1, int(time.time()), reader_id=VR))
        (folder / "state").mkdir()
        cfg = {
            "reader_id": VR, "password": "pw-" + VR, "mac_key": VR_KEY.hex(), "role": "door", "boot": 1,
            "broker": {"host": "127.0.0.1", "port": broker.tls_port, "ca_der": str(ca_der),
                       "server_hostname": "localhost"},
            "root_key": str(folder / "config.cose_key"), "config_key": str(folder / "config.cose_key"),
            "state_dir": str(folder / "state"), "journal_image": str(folder / "journal.img"),
            "journal_blocks": 16,
            "issuer_keys": {"amk": ISSUER.amk_master.hex(), "read": ISSUER.read_master.hex(),
                            "uid": ISSUER.uid_master.hex(), "picc": ISSUER.picc_master.hex()},
            "cards": {}, "config": str(folder / "reader.cfg"),
            # no "unix_ms": the clock starts unset, so only an accepted time reply can make it synced
            "keepalive": 5, "health_every_s": 1, "backoff_min_s": 0.2, "backoff_max_s": 1,
        }  # fmt: skip
        (folder / "reader.json").write_text(json.dumps(cfg))
        (folder / "steps.json").write_text(json.dumps([{"at_ms": 120000, "exit": True}]))
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=2M", "firmware/tools/virtual_reader.py",
             str(folder / "reader.json"), "--taps", str(folder / "steps.json")],
            cwd=FW_ROOT, env=micropython_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))
        self.err.extend(self.proc.stderr)

    def applied(self, what: str) -> list[str]:
        return [x["status"] for x in list(self.lines) if x.get("applied") == what]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _wait(pred: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


@pytest.fixture
def contract(tmp_path: Path) -> Iterator[tuple[Env, MiniGateway, Any]]:
    from support.broker import Broker

    b = Broker(tmp_path / "broker", {VR: "pw-" + VR, "gateway": GW_PASSWORD})
    (tmp_path / "broker").mkdir()
    b.start()
    env = Env(f"sqlite:///{tmp_path / 'g.db'}")
    box = env.box
    with Session(env.engine) as s:
        registry.register(s, box, VR, site="thu-nghiem", role="door", mac_key=VR_KEY)
        s.commit()
    keycache = KeyCache(env.engine, box)
    keycache.load_all()
    gw = MiniGateway(b.port, env.engine, keycache)
    f = fleet.Fleet(env.engine, keycache, gw.publish, offline_grace_s=60)
    env.fleet = f
    env.down = Downlink(env.engine, SIGNING_KEY, gw.publish)
    gw.start(f)
    try:
        yield env, gw, b
    finally:
        gw.close()
        env.engine.dispose()
        b.stop()


@pytest.mark.micropython
def test_contract_with_the_real_firmware(contract: tuple[Env, MiniGateway, Any], tmp_path: Path) -> None:
    env, gw, broker = contract
    vr = VirtualReader(tmp_path, broker)
    try:
        # status and health land in the reader row; the time reply is accepted (the clock was unset,
        # the reader reports it synced in its next heartbeat)
        _wait(lambda: env.reader(VR).online and env.reader(VR).health_at is not None, "status and health")
        r = env.reader(VR)
        assert (r.firmware, r.config_seq, r.boot, r.crl_seq) == ("cbcc-fw 0.1", 1, 1, None)
        assert r.journal_fill is not None and r.uptime_s is not None
        _wait(lambda: env.reader(VR).time_quality == 2, "a time reply accepted by the reader", 20)
        assert env.fleet.stats["time_replies"] >= 1
        assert [a.reader_id for a in env.rows(BootAnchor)] == [VR]
        assert env.rows(Alarm) == []  # the role the reader reports is the registered one

        # a pushed configuration is applied: the status catches up, the notice marks the push
        push = env.down.push_config(VR, VR_SRC, "facility-1", role="facility")
        assert push.seq == 2  # above the seq 1 the reader was provisioned with
        _wait(lambda: env.reader(VR).config_seq == 2, "status config_seq 2")
        _wait(lambda: env.rows(ConfigPush)[0].outcome == "ok", "the config:ok notice")
        assert env.rows(ConfigPush)[0].applied_at is not None
        assert env.fleet.laggards(0) == []

        # an "open" command is executed and reported
        cmd = env.down.send_command(VR, "open", {"door": "cong-chinh"}, "guard-1")
        _wait(lambda: env.rows(Command, Command.seq == cmd.seq)[0].outcome == "ok", "the cmd:ok notice")
        assert vr.applied("cmd") == ["ok"]

        # the same signed command again (a replay through the broker) is refused, journalled, and
        # leaves the command's outcome alone
        topic, blob = gw.published[-1]
        assert topic == f"cbcc/v1/r/{VR}/cmd"
        gw.c.publish(topic, blob, qos=1).wait_for_publish(5)
        _wait(lambda: vr.applied("cmd") == ["ok", "replay"], "the reader refusing the replay")
        _wait(lambda: bool(env.rows(Event, Event.detail == "cmd:replay")), "the cmd:replay notice")
        assert env.rows(Command, Command.seq == cmd.seq)[0].outcome == "ok"

        # building-wide lockdown of the reader's site
        (lock,) = env.down.lockdown_site("thu-nghiem", "chief")
        _wait(lambda: env.rows(Command, Command.seq == lock.seq)[0].outcome == "ok", "lockdown executed")
        _wait(lambda: bool(env.rows(Event, Event.detail == "mode:locked_down")), "the reader in lockdown")
        assert not env.rows(Event, Event.detail.startswith("time:"))  # type: ignore[union-attr]
    finally:
        vr.kill()
    # killed: the broker sends the Last Will, the row says offline
    _wait(lambda: env.reader(VR).online is False, "the Last Will")
    assert gw.errors == [] and env.fleet.stats["errors"] == 0 and env.fleet.stats["garbage"] == 0
    assert not [e for e in vr.err if "Traceback" in e], "".join(vr.err)
