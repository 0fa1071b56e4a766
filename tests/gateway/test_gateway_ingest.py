"""Ingest: sealed events opened strictly, stored exactly once, everything else quarantined and counted,
times corrected; on SQLite and PostgreSQL, directly and through a real Mosquitto."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from support.broker import Broker
from support.ingest import (
    TOPIC,
    Publisher,
    Store,
    event_stream,
    expected_keys,
    reader_key,
    record,
    setup_store,
    tap,
)

from gateway import metrics, sealed, timefix
from gateway.db import utc
from gateway.ingest import BatchResult, IngestWriter, Message
from gateway.models import BootAnchor, Event, Quarantine
from gateway.mqtt.consumer import Consumer
from gateway.sealed import Rejected, open_sealed, seal
from gateway.settings import IngestSettings, MqttSettings

RID = "rd-0001"
KEY = reader_key(RID)


# ---- sealed: the domain ------------------------------------------------------------------------


def test_open_sealed_roundtrip() -> None:
    rec = record("alarm", alarm="tamper", active=True, detail="lid")
    o = open_sealed(RID, KEY, seal(KEY, RID, 7, rec))
    assert (o.seq, o.record, len(o.mac)) == (7, rec, 32)
    assert o.fields["kind"] == "alarm" and o.fields["alarm"] == "tamper" and o.fields["active"] is True
    # the MAC input of docs/mqtt.md, computed here independently
    msg = b"cbcc-ev1" + bytes([len(RID)]) + RID.encode() + (7).to_bytes(8, "big") + rec
    assert o.mac == hmac.new(KEY, msg, "sha256").digest()


def test_door_index_from_the_reader_is_stored_as_text() -> None:
    """firmware/lib/terminal.py sends field 16 as the door's index in its configuration."""
    base = {1: 1_780_000_000, 2: 2, 3: "tap", 10: "grant", 11: "ok"}
    assert open_sealed(RID, KEY, seal(KEY, RID, 1, cbor2.dumps({**base, 16: 0}))).fields["door"] == "0"
    assert (
        open_sealed(RID, KEY, seal(KEY, RID, 2, cbor2.dumps({**base, 16: "cong"}))).fields["door"] == "cong"
    )
    for bad in (-1, 2**31, 1.5, True):
        assert _reason(seal(KEY, RID, 3, cbor2.dumps({**base, 16: bad}))) == "bad_record"


def _reason(payload: bytes, key: bytes = KEY, rid: str = RID) -> str:
    with pytest.raises(Rejected) as e:
        open_sealed(rid, key, payload)
    return e.value.reason


def test_open_sealed_rejections() -> None:
    good = seal(KEY, RID, 1, record())
    assert _reason(b"\xff\x00garbage") == "not_cbor"
    assert _reason(good + b"\x00") == "not_cbor"  # trailing bytes
    assert _reason(b"\x00" * 1025) == "oversize"
    assert _reason(cbor2.dumps({"a": 1})) == "not_sealed"
    assert _reason(cbor2.dumps([2, 1, b"", b"\0" * 32])) == "not_sealed"
    assert _reason(cbor2.dumps([True, 1, b"", b"\0" * 32])) == "not_sealed"  # bool is not 1
    assert _reason(cbor2.dumps([1, -1, b"", b"\0" * 32])) == "not_sealed"
    assert _reason(cbor2.dumps([1, 2**64, b"", b"\0" * 32])) == "not_sealed"
    assert _reason(cbor2.dumps([1, 1, "text", b"\0" * 32])) == "not_sealed"
    assert _reason(good, key=b"k" * 32) == "bad_mac"
    assert _reason(good, rid="rd-0002") == "bad_mac"  # the reader id is bound
    w = cbor2.loads(good)
    assert _reason(cbor2.dumps([1, 2, w[2], w[3]])) == "bad_mac"  # renumbered
    # a correctly sealed record of the wrong shape: bad_record, never a crash
    for rec in (b"\xff", cbor2.dumps([1, 2]), cbor2.dumps({"k": 1}), cbor2.dumps({3: "tap", 1: 5}),
                record(t="x"), record(tq=7), record(kind=""), record(boot=-1), record(serial="12"),  # type: ignore[arg-type]
                record(anti_clone=1), record(detail="x" * 501), record(t=2**40)):  # fmt: skip
        assert _reason(seal(KEY, RID, 3, rec)) == "bad_record", rec


_cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.binary(max_size=40) | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.integers(0, 30) | st.text(max_size=3), kids,
                                                               max_size=6),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1200))
def test_fuzz_bytes_only_rejected(data: bytes) -> None:
    with contextlib.suppress(Rejected):
        open_sealed(RID, KEY, data)


@settings(max_examples=300, deadline=None)
@given(_cbor_values, st.integers(0, 2**63 - 1))
def test_fuzz_sealed_records_only_rejected(value: Any, seq: int) -> None:
    """A structure sealed with the right key (a reader bug, a stolen key) still cannot crash ingest."""
    rec = cbor2.dumps(value)
    for payload in (seal(KEY, RID, seq, rec), cbor2.dumps(value), cbor2.dumps([1, seq, rec, value])):
        try:
            o = open_sealed(RID, KEY, payload)
        except Rejected:
            continue
        assert isinstance(o.fields["kind"], str)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(0, 299), st.integers(1, 255))
def test_fuzz_flipped_bytes_never_accepted(rec: bytes, pos: int, flip: int) -> None:
    good = bytearray(seal(KEY, RID, 9, rec))
    i = pos % len(good)
    good[i] ^= flip
    try:
        o = open_sealed(RID, KEY, bytes(good))
    except Rejected:
        return
    # only a change that decodes to the same sealed content can pass (e.g. a non-minimal encoding)
    assert (o.seq, o.record) == (9, rec)


# ---- timefix -------------------------------------------------------------------------------------


def test_timefix_arithmetic() -> None:
    off = timefix.offset_from_event(1_760_000_100, 100_000)
    assert off == 1_760_000_000_000
    assert timefix.corrected(off, 50_000) == datetime.fromtimestamp(1_760_000_050, UTC)
    assert timefix.corrected(-5, 3) is None
    assert timefix.offset_from_heartbeat(1_760_000_000_500, 500) == 1_760_000_000_000


# ---- the writer, on both databases ---------------------------------------------------------------


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    url = db_url  # SQLite and PostgreSQL (tests/conftest.py)
    st_ = setup_store(url, [f"rd-{i:04d}" for i in range(4)], tmp_path / "master.key")
    yield st_
    st_.engine.dispose()


def msg(payload: bytes, rid: str = RID, topic: str | None = None, mid: int = 1) -> Message:
    return Message(topic or TOPIC.format(rid), payload, mid, time.time())


def events(s: Store) -> list[dict[str, Any]]:
    with s.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.select(Event.__table__).order_by("reader_id", "seq"))]  # type: ignore[attr-defined]


def quarantine(s: Store) -> list[dict[str, Any]]:
    with s.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.select(Quarantine.__table__).order_by("id"))]  # type: ignore[attr-defined]


def test_exactly_once_duplicates_and_conflict(store: Store) -> None:
    w = IngestWriter(store.engine, store.keys)
    batch = [msg(tap(RID, s)) for s in range(1, 51)]
    r1 = w.write_batch(batch)
    assert (r1.stored, r1.duplicates, r1.conflicts) == (50, 0, 0)
    # the same again (lost PUBACKs), plus duplicates inside one batch, plus new ones
    r2 = w.write_batch(batch[:20] + batch[:5] + [msg(tap(RID, s)) for s in range(51, 61)])
    assert (r2.stored, r2.duplicates, r2.conflicts) == (10, 25, 0)
    # a different record under a stored number: a conflict, quarantined, never overwritten
    forged = msg(tap(RID, 3, serial=999))
    r3 = w.write_batch([forged, msg(tap(RID, 61)), msg(tap(RID, 61, serial=5))])
    assert (r3.stored, r3.duplicates, r3.conflicts) == (1, 0, 2)
    assert r3.quarantined == {"conflict": 2}
    rows = events(store)
    assert [r["seq"] for r in rows] == list(range(1, 62))
    assert next(r for r in rows if r["seq"] == 3)["serial"] == 100003
    q = quarantine(store)
    assert [x["reason"] for x in q] == ["conflict", "conflict"]
    assert forged.payload in {bytes(x["payload"]) for x in q}
    row = rows[0]
    assert row["kind"] == "tap" and row["decision"] == "grant" and row["staff_code"] == "S00001"
    assert row["anti_clone"] is True and row["door"] == "d1" and row["time_corrected"] is False
    assert utc(row["occurred_at"]) == datetime.fromtimestamp(1_760_000_001, UTC)
    assert bytes(row["record"]) == cbor2.loads(batch[0].payload)[2]


def test_bad_messages_quarantined_and_counted(store: Store) -> None:
    w = IngestWriter(store.engine, store.keys)
    before = {r: metrics.QUARANTINED.labels(r)._value.get() for r in ("bad_mac", "unknown_reader")}
    bad = [
        msg(seal(b"x" * 32, RID, 1, record())),  # forged MAC
        msg(seal(reader_key("ghost-1"), "ghost-1", 1, record()), rid="ghost-1"),  # unknown reader
        msg(b"\x9f\xff\x00garbage"),
        msg(b"\x00" * 5000),  # oversize: kept truncated to 4 KiB
        msg(seal(KEY, RID, 2, record(tq="two"))),  # type: ignore[arg-type] # wrong schema
        msg(tap(RID, 4), topic="cbcc/v1/r/rd-0001/status"),  # wrong topic for an event
        msg(tap(RID, 4), topic="cbcc/v1/r/UPPER/ev"),
        msg(tap("rd-0002", 1), rid=RID),  # another reader's event replayed under this topic
    ]
    good = [msg(tap(RID, 1)), msg(tap(RID, 3)), msg(tap(RID, 2))]  # out of order
    res = w.write_batch(bad[:4] + good[:1] + bad[4:] + good[1:])
    assert res.stored == 3 and res.out_of_order == 1
    assert res.quarantined == {"bad_mac": 2, "unknown_reader": 1, "not_cbor": 1, "oversize": 1,
                               "bad_record": 1, "bad_topic": 2}  # fmt: skip
    q = {x["reason"]: x for x in quarantine(store)}
    assert len(q["oversize"]["payload"]) == 4096 and q["oversize"]["payload_size"] == 5000
    assert q["unknown_reader"]["reader_id"] == "ghost-1"
    assert metrics.QUARANTINED.labels("bad_mac")._value.get() == before["bad_mac"] + 2
    # replaying the whole batch: nothing new stored, good ones counted as duplicates
    res2 = w.write_batch(bad + good)
    assert res2.stored == 0 and res2.duplicates == 3
    assert len(events(store)) == 3


def test_time_correction_and_fix_pending(store: Store) -> None:
    w = IngestWriter(store.engine, store.keys)
    r2 = "rd-0002"
    # boot 5 of rd-0001: clock unset first, then synced in the same batch -> corrected at once
    batch = [msg(tap(RID, 1, t=1000, tq=0, boot=5, uptime_ms=10_000)),
             msg(tap(RID, 2, t=1_760_000_100, tq=2, boot=5, uptime_ms=100_000))]  # fmt: skip
    # rd-0002 boot 9: clock unset, no anchor yet -> provisional
    batch.append(msg(tap(r2, 1, t=0, tq=0, boot=9, uptime_ms=40_000), rid=r2))
    res = w.write_batch(batch)
    assert res.corrected == 1 and res.provisional == 1
    by = {(r["reader_id"], r["seq"]): r for r in events(store)}
    e1 = by[(RID, 1)]
    assert e1["time_corrected"] is True
    assert utc(e1["occurred_at"]) == datetime.fromtimestamp(1_760_000_010, UTC)
    assert utc(e1["reader_time"]) == datetime.fromtimestamp(1000, UTC)  # original kept
    p = by[(r2, 1)]
    assert p["time_corrected"] is False
    assert abs(utc(p["occurred_at"]).timestamp() - time.time()) < 60  # type: ignore[union-attr]
    # a later batch of the same boot of rd-0001 uses the stored anchor
    res = w.write_batch([msg(tap(RID, 3, t=1000, tq=0, boot=5, uptime_ms=20_000))])
    assert res.corrected == 1
    # the fleet module writes a heartbeat anchor for rd-0002 boot 9; fix_pending corrects the row
    with store.engine.begin() as c:
        hb = {"reader_id": r2, "boot": 9, "offset_ms": 1_770_000_000_000, "source": "heartbeat",
              "at": datetime.now(UTC)}  # fmt: skip
        c.execute(sa.insert(BootAnchor.__table__), [hb])  # type: ignore[attr-defined]
        assert timefix.fix_pending(c) == 1
        assert timefix.fix_pending(c) == 0
    p = {(r["reader_id"], r["seq"]): r for r in events(store)}[(r2, 1)]
    assert p["time_corrected"] is True
    assert utc(p["occurred_at"]) == datetime.fromtimestamp(1_770_000_040, UTC)
    # a synced event arriving after provisional rows of its boot fixes them in its own batch
    w.write_batch([msg(tap(r2, 2, t=0, tq=0, boot=10, uptime_ms=1_000), rid=r2)])
    res = w.write_batch([msg(tap(r2, 3, t=1_760_000_002, tq=1, boot=10, uptime_ms=2_000), rid=r2)])
    assert res.corrected == 1
    p = {(r["reader_id"], r["seq"]): r for r in events(store)}[(r2, 2)]
    assert p["time_corrected"] is True and utc(p["occurred_at"]) == datetime.fromtimestamp(1_760_000_001, UTC)
    with store.engine.connect() as c:
        src = dict(c.execute(sa.select(BootAnchor.boot, BootAnchor.source)).all())  # type: ignore[call-overload]
    assert src == {5: "synced_event", 9: "heartbeat", 10: "synced_event"}


def test_effects_get_new_alarms_and_notices_in_the_transaction(store: Store) -> None:
    seen: list[list[dict[str, Any]]] = []

    def effects(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        assert conn.in_transaction()
        seen.append(rows)

    w = IngestWriter(store.engine, store.keys, effects)
    alarm = msg(seal(KEY, RID, 1, record("alarm", alarm="forced_open", active=True)))
    notice = msg(seal(KEY, RID, 2, record("notice", detail="cmd:ok")))
    w.write_batch([alarm, notice, msg(tap(RID, 3))])
    w.write_batch([alarm, notice])  # duplicates: no second effect
    assert len(seen) == 1 and [r["kind"] for r in seen[0]] == ["alarm", "notice"]
    assert seen[0][0]["alarm"] == "forced_open" and seen[0][1]["detail"] == "cmd:ok"

    def failing(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("fleet failed")

    w2 = IngestWriter(store.engine, store.keys, failing)
    with pytest.raises(RuntimeError):
        w2.write_batch([msg(seal(KEY, RID, 4, record("alarm", alarm="tamper", active=True)))])
    assert [r["seq"] for r in events(store)] == [1, 2, 3]  # rolled back with the effects


def test_pg_values_method_agrees(pg_url: str, tmp_path: Path) -> None:
    s = setup_store(pg_url, [RID], tmp_path / "master.key")
    w = IngestWriter(s.engine, s.keys, pg_method="values")
    r = w.write_batch([msg(tap(RID, i)) for i in range(1, 11)])
    r2 = w.write_batch([msg(tap(RID, i)) for i in range(5, 13)] + [msg(tap(RID, 1, serial=1))])
    assert (r.stored, r2.stored, r2.duplicates, r2.conflicts) == (10, 2, 6, 1)
    s.engine.dispose()


def test_database_down_raises_and_nothing_is_half_written(tmp_path: Path) -> None:
    s = setup_store(f"sqlite:///{tmp_path / 'g.db'}", [RID], tmp_path / "master.key")
    w = IngestWriter(s.engine, s.keys)
    with s.engine.begin() as c:
        c.exec_driver_sql("DROP TABLE quarantine")  # the quarantine insert fails at the end of the batch
    with pytest.raises(sa.exc.OperationalError):
        w.write_batch([msg(tap(RID, 1)), msg(b"junk")])
    assert events(s) == []
    s.engine.dispose()


def test_sealed_module_matches_firmware_seal() -> None:
    """Records sealed by the firmware's own code open with the gateway's."""
    import events as fw_events  # firmware/lib
    import hmac_sha256

    fields = {fw_events.DECISION: "grant", fw_events.STAFF: "A1"}
    rec = fw_events.record("tap", 1_760_000_000, 2, 3, 4000, fields)
    payload = fw_events.seal(hmac_sha256.Hmac(KEY), RID, 42, rec)
    o = sealed.open_sealed(RID, KEY, bytes(payload))
    assert o.seq == 42 and o.fields["staff_code"] == "A1" and o.fields["boot"] == 3


# ---- through a real Mosquitto ---------------------------------------------------------------------

GW_PASSWORD = "gw-secret"


# The shared ``broker`` fixture (tests/conftest.py) starts Mosquitto with these users, durable.
BROKER_USERS = {"gateway": GW_PASSWORD}
BROKER_PERSISTENCE = True


def mqtt_settings(b: Broker, *, client_id: str = "gw-test", tls: bool = False, **kw: Any) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=b.tls_port if tls else b.port, tls=tls,
                        ca_file=b.ca if tls else None, username="gateway", password=SecretStr(GW_PASSWORD),
                        client_id=client_id, embedded=False, **kw)  # fmt: skip


def count_events(s: Store) -> int:
    with s.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(Event.__table__)).scalar_one())  # type: ignore[attr-defined]


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def all_keys(s: Store) -> list[tuple[str, int]]:
    with s.engine.connect() as c:
        return [(r, q) for r, q in c.execute(sa.select(Event.reader_id, Event.seq))]  # type: ignore[call-overload]


def test_consumer_exactly_once_over_tls(store: Store, broker: Broker) -> None:
    rids = sorted(store.mac)
    statuses: list[tuple[str, bytes]] = []
    healths: list[str] = []
    w = IngestWriter(store.engine, store.keys)
    c = Consumer(mqtt_settings(broker, tls=True), w, lambda r, p, t: statuses.append((r, p)),
                 lambda r, p, t: healths.append(r),
                 ingest=IngestSettings(batch_max=500, batch_wait_ms=20))  # fmt: skip
    c.start()
    assert c.wait_connected(10)
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    try:
        stream = list(event_stream(rids, 4000))
        n = pub.publish_all(stream)
        n += pub.publish_all(stream[:1000])  # re-sent (lost PUBACKs on the reader side)
        n += pub.publish_all([(TOPIC.format(rids[0]), b"junk"), (TOPIC.format("ghost"), tap("ghost", 1)),
                              (TOPIC.format(rids[1]), seal(b"k" * 32, rids[1], 99, record()))])  # fmt: skip
        n += pub.publish_all([(f"cbcc/v1/r/{rids[2]}/status", cbor2.dumps({1: True})),
                              (f"cbcc/v1/r/{rids[3]}/health", cbor2.dumps({1: 5}))])  # fmt: skip
        pub.wait_acked(n)
        wait_for(lambda: count_events(store) >= 4000 and len(quarantine(store)) >= 3, 60, "ingest")
        wait_for(lambda: bool(statuses) and bool(healths), 10, "status and health")
        time.sleep(0.5)
    finally:
        pub.close()
        c.stop()
    keys = all_keys(store)
    assert len(keys) == len(set(keys)) == 4000
    assert set(keys) == expected_keys(rids, 4000)
    assert sorted(x["reason"] for x in quarantine(store)) == ["bad_mac", "not_cbor", "unknown_reader"]
    assert statuses == [(rids[2], cbor2.dumps({1: True}))] and healths == [rids[3]]


class FlakyWriter:
    """Fails the first ``failures`` batches like a database that is down."""

    def __init__(self, inner: IngestWriter, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def write_batch(self, msgs: Sequence[Message]) -> BatchResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
        return self.inner.write_batch(msgs)


def test_consumer_retries_without_acking(tmp_path: Path, broker: Broker) -> None:
    s = setup_store(f"sqlite:///{tmp_path / 'g.db'}", [RID], tmp_path / "master.key")
    flaky = FlakyWriter(IngestWriter(s.engine, s.keys), failures=3)
    c = Consumer(mqtt_settings(broker), flaky, ingest=IngestSettings(batch_max=100, db_retry_s=0.3))
    c.start()
    assert c.wait_connected(10)
    pub = Publisher(broker.port, "gateway", GW_PASSWORD, clients=1)
    try:
        pub.publish_all([(TOPIC.format(RID), tap(RID, i)) for i in range(1, 301)])
        pub.wait_acked(300)
        wait_for(lambda: count_events(s) == 300, 30, "ingest after the database came back")
    finally:
        pub.close()
        c.stop()
    assert flaky.calls >= 4 and c.db_failures == 3
    # the gateway's session at the broker holds nothing un-acknowledged: a new consumer on the same
    # session gets nothing more (every message was acked after its commit)
    c2 = Consumer(mqtt_settings(broker), IngestWriter(s.engine, s.keys))
    c2.start()
    assert c2.wait_connected(10)
    time.sleep(1.5)
    c2.stop()
    assert c2.batches == 0 and count_events(s) == 300
    s.engine.dispose()


def test_shared_subscription_scale_out(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    rids = [f"rd-{i:04d}" for i in range(20)]
    s = setup_store(pg_url, rids, tmp_path / "master.key")
    group = {"shared_group": "ingest"}
    cs = [Consumer(mqtt_settings(broker, client_id=f"gw-{i}", **group), IngestWriter(s.engine, s.keys),
                   ingest=IngestSettings(batch_max=200, batch_wait_ms=10)) for i in range(2)]  # fmt: skip
    for c in cs:
        c.start()
        assert c.wait_connected(10)
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    try:
        stream = list(event_stream(rids, 6000))
        pub.publish_all(stream + stream[:500])
        pub.wait_acked(6500)
        wait_for(lambda: count_events(s) >= 6000, 60, "ingest by two processes")
        time.sleep(0.5)
    finally:
        pub.close()
        for c in cs:
            c.stop()
    keys = all_keys(s)
    assert len(keys) == len(set(keys)) == 6000
    assert all(c.stored > 0 for c in cs), [c.stored for c in cs]  # both took a share
    s.engine.dispose()
