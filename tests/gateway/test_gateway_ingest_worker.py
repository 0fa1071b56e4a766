"""Ingest with ``ingest.workers = 1`` (verification and the database write in a child process) and the
gateway's faster paho client: exactly once, the worker killed mid-batch, the database away.
Real Mosquitto (persistent), real PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import SecretStr
from support.broker import Broker
from support.ingest import (
    TOPIC,
    Publisher,
    event_stream,
    expected_keys,
    reader_ids,
    record,
    setup_store,
    tap,
)
from support.tcp_proxy import TcpProxy

from gateway.ingest import Message
from gateway.ingest_worker import ProcessWriter, WorkerError, WorkerSpec, resolve
from gateway.models import Alarm, Event
from gateway.mqtt.consumer import FAST_OK, BareDrain, Consumer, IngestClient, make_client
from gateway.sealed import seal
from gateway.settings import IngestSettings, MqttSettings

GW_PASSWORD = "gw-worker"
FLEET_EFFECTS = "gateway.fleet:apply_event_effects"
SLOW_S = 0.8


def slow_effects(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Effects (imported by reference in the worker) that hold the transaction open on alarms."""
    from gateway.fleet import apply_event_effects

    apply_event_effects(conn, rows)
    time.sleep(SLOW_S)


# ---- the fast paho client ----------------------------------------------------------------------------


def _publish_packet(topic: bytes, mid: int, payload: bytes, props: bytes | None) -> bytearray:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid)
    if props is not None:
        body += bytes((len(props),)) + props
    return bytearray(body + payload)


@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_fast_publish_decoding_agrees_with_paho(protocol: MQTTProtocolVersion) -> None:
    assert FAST_OK, "this paho lacks the hooks IngestClient overrides"
    c = IngestClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol, manual_ack=True)
    got: list[tuple[str, bytes, int]] = []
    slow: list[tuple[str, bytes, int]] = []
    c.event_sink = lambda t, p, m: got.append((t, p, m))
    c.on_message = lambda _c, _u, m: slow.append((m.topic, bytes(m.payload), m.mid))
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    cases = [(b"cbcc/v1/r/rd-0001/ev", 7, tap("rd-0001", 1)), (b"cbcc/v1/r/rd-0002/status", 65535, b""),
             ("cbcc/v1/r/đ/ev".encode(), 1, b"\x00" * 900)]  # fmt: skip
    for topic, mid, payload in cases:
        for header in (0x32, 0x3A):  # QoS 1, QoS 1 + DUP
            pkt = _publish_packet(topic, mid, payload, b"" if v5 else None)
            c._in_packet["command"], c._in_packet["packet"] = header, pkt
            c._handle_publish()
            ref = _packet.decode_publish(header, bytes(pkt), protocol)
            assert got[-1] == (ref.topic.decode(), bytes(ref.payload), ref.mid)
    assert len(got) == 6 and not slow
    # what the direct path leaves to paho: properties (MQTT 5), QoS 0
    if v5:
        pkt = _publish_packet(b"cbcc/v1/r/rd-0001/ev", 9, b"abc", b"\x01\x01")  # payload format indicator
        c._in_packet["command"], c._in_packet["packet"] = 0x32, pkt
        c._handle_publish()
        assert slow[-1] == ("cbcc/v1/r/rd-0001/ev", b"abc", 9)
    pkt = bytearray(struct.pack("!H", 5) + b"a/b/c" + (b"\x00" if v5 else b"") + b"q0")
    c._in_packet["command"], c._in_packet["packet"] = 0x30, pkt
    c._handle_publish()
    assert slow[-1][:2] == ("a/b/c", b"q0") and len(got) == 6


def test_ack_many_is_one_write_of_pubacks() -> None:
    c = IngestClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTProtocolVersion.MQTTv5,
                     manual_ack=True)  # fmt: skip
    c.ack_many([1, 258, 65535])
    (pkt,) = list(c._out_packet)
    assert bytes(pkt["packet"]) == b"\x40\x02\x00\x01" + b"\x40\x02\x01\x02" + b"\x40\x02\xff\xff"


# ---- fixtures ------------------------------------------------------------------------------------------


# The shared ``broker`` fixture (tests/conftest.py) starts Mosquitto with these users, durable.
BROKER_USERS = {"gateway": GW_PASSWORD}
BROKER_PERSISTENCE = True


def mqtt_settings(b: Broker, client_id: str = "gw-worker") -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=b.port, username="gateway", password=SecretStr(GW_PASSWORD),
                        client_id=client_id, embedded=False)  # fmt: skip


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def count(engine: sa.Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(Event.__table__)).scalar_one())  # type: ignore[attr-defined]


def keys_of(engine: sa.Engine) -> list[tuple[str, int]]:
    with engine.connect() as c:
        return [(r, q) for r, q in c.execute(sa.select(Event.reader_id, Event.seq))]  # type: ignore[call-overload]


def alarm_stream(rids: list[str], total: int, every: int) -> list[tuple[str, bytes]]:
    """``event_stream`` with every ``every``-th event an alarm (so the effects run in many batches)."""
    out = []
    for i, (topic, payload) in enumerate(event_stream(rids, total)):
        if i % every == 0:
            rid = topic.split("/")[3]
            seq = 1 + i // len(rids)
            rec = record("alarm", alarm="tamper", active=True, t=1_760_000_000 + seq)
            payload = seal(_key(rid), rid, seq, rec)
        out.append((topic, payload))
    return out


def _key(rid: str) -> bytes:
    from support.ingest import reader_key

    return reader_key(rid)


def assert_exactly(engine: sa.Engine, rids: list[str], total: int) -> None:
    keys = keys_of(engine)
    assert len(keys) == len(set(keys)) == total
    assert set(keys) == expected_keys(rids, total)


# ---- the worker process --------------------------------------------------------------------------------


def test_worker_writes_like_the_thread(pg_url: str, tmp_path: Path) -> None:
    rid = "rd-0001"
    st = setup_store(pg_url, [rid], tmp_path / "master.key")
    w = ProcessWriter(WorkerSpec(pg_url, tmp_path / "master.key", effects=FLEET_EFFECTS))
    w.start()
    try:
        msgs = [Message(TOPIC.format(rid), tap(rid, s), s, time.time()) for s in range(1, 21)]
        r1 = w.write_batch(msgs)
        r2 = w.write_batch([*msgs[:5], Message(TOPIC.format(rid), b"junk", 99, time.time())])
        assert (r1.stored, r2.stored, r2.duplicates, dict(r2.quarantined)) == (20, 0, 5, {"not_cbor": 1})
        alarm = seal(_key(rid), rid, 21, record("alarm", alarm="tamper", active=True))
        assert w.write_batch([Message(TOPIC.format(rid), alarm, 1, time.time())]).stored == 1
        with st.engine.connect() as c:
            assert c.execute(sa.select(sa.func.count()).select_from(Alarm.__table__)).scalar_one() == 1  # type: ignore[attr-defined]
        w.forget(rid)  # the worker's key cache reloads it from the database
        assert w.write_batch([Message(TOPIC.format(rid), tap(rid, 22), 1, time.time())]).stored == 1
    finally:
        w.stop()
    assert w.pid is None and count(st.engine) == 22
    st.engine.dispose()


def test_worker_that_cannot_start_reports_why(tmp_path: Path) -> None:
    w = ProcessWriter(WorkerSpec(f"sqlite:///{tmp_path / 'g.db'}", tmp_path / "absent.key"))
    with pytest.raises(WorkerError):
        w.start()
    with pytest.raises(ValueError):
        resolve("no_colon")


def test_worker_exactly_once_through_mosquitto(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    rids = reader_ids(20)
    st = setup_store(pg_url, rids, tmp_path / "master.key")
    w = ProcessWriter(WorkerSpec(pg_url, tmp_path / "master.key", effects=FLEET_EFFECTS))
    w.start()
    c = Consumer(mqtt_settings(broker), w, ingest=IngestSettings(batch_max=500, batch_wait_ms=20, workers=1))
    c.start()
    assert c.wait_connected(10)
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    try:
        stream = alarm_stream(rids, 6000, every=500)
        n = pub.publish_all(stream)
        n += pub.publish_all(stream[:1500])  # re-sent: duplicates
        pub.wait_acked(n)
        wait_for(lambda: count(st.engine) >= 6000, 60, "ingest through the worker")
        time.sleep(0.5)
    finally:
        pub.close()
        c.stop()
        w.stop()
    assert_exactly(st.engine, rids, 6000)
    with st.engine.connect() as conn:  # the effects ran in the worker's transactions
        assert conn.execute(sa.select(sa.func.count()).select_from(Alarm.__table__)).scalar_one() > 0  # type: ignore[attr-defined]
    # everything was acknowledged after its commit: the session holds nothing more
    d = BareDrain(mqtt_settings(broker), fast=False)
    d.start()
    time.sleep(1.5)
    d.stop()
    assert d.count == 0
    st.engine.dispose()


def test_worker_killed_mid_batch(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    """SIGKILL of the worker while it holds a transaction (slow effects), again and again: the
    batch is re-sent to a new worker, nothing lost, nothing doubled."""
    rids, total = reader_ids(30), 12_000
    st = setup_store(pg_url, rids, tmp_path / "master.key")
    w = ProcessWriter(WorkerSpec(pg_url, tmp_path / "master.key",
                                 effects="test_gateway_ingest_worker:slow_effects"))  # fmt: skip
    w.start()
    ing = IngestSettings(batch_max=1000, batch_wait_ms=20, workers=1, db_retry_s=0.2)
    c = Consumer(mqtt_settings(broker), w, ingest=ing)
    c.start()
    assert c.wait_connected(10)
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    rng = random.Random(int(os.environ.get("CBCC_KILL_SEED", "0")) or None)
    kills = 0
    try:
        pub.publish_all(alarm_stream(rids, total, every=400), rate=3000)
        for _ in range(4):
            time.sleep(rng.uniform(0.2, SLOW_S))
            pid = w.pid
            if pid is None or count(st.engine) >= total:
                break
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_for(lambda pid=pid: w.pid not in (None, pid), 60, "a new worker")  # type: ignore[misc]
        pub.wait_acked(total, timeout=60)
        wait_for(lambda: count(st.engine) >= total, 120, f"{total} rows")
        time.sleep(1.0)
    finally:
        pub.close()
        c.stop()
        w.stop()
    assert kills >= 3 and w.restarts >= 3, (kills, w.restarts)
    assert_exactly(st.engine, rids, total)
    st.engine.dispose()


def test_worker_database_outage(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    rids, total = reader_ids(20), 10_000
    st = setup_store(pg_url, rids, tmp_path / "master.key")
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    via_proxy = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    w = ProcessWriter(WorkerSpec(via_proxy, tmp_path / "master.key"))
    w.start()
    ing = IngestSettings(batch_max=500, batch_wait_ms=20, workers=1, db_retry_s=0.5)
    c = Consumer(mqtt_settings(broker), w, ingest=ing)
    c.start()
    assert c.wait_connected(10)
    stream = list(event_stream(rids, total))
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    try:
        pub.publish_all(stream[:3000])
        wait_for(lambda: count(st.engine) >= 3000, 60, "first rows")
        proxy.cut()
        pub.publish_all(stream[3000:])
        pub.wait_acked(total, timeout=60)
        t_cut = time.monotonic()
        while time.monotonic() - t_cut < 8:
            assert count(st.engine) == 3000  # paused, nothing half-written
            assert c.queued <= c.receive_max
            time.sleep(0.5)
        assert c.db_failures >= 3 and w.restarts == 0  # the worker reported errors, it did not die
        proxy.restore()
        wait_for(lambda: count(st.engine) >= total, 90, "all rows after the outage")
        time.sleep(1.0)
    finally:
        pub.close()
        c.stop()
        w.stop()
        proxy.close()
    assert_exactly(st.engine, rids, total)
    st.engine.dispose()


def test_make_client_falls_back_to_stock() -> None:
    s = MqttSettings(embedded=False)
    assert isinstance(make_client(s), IngestClient) == FAST_OK
    assert type(make_client(s, fast=False)) is paho.Client
