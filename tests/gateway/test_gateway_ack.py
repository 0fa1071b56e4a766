"""Issue 15, finding 8 (gateway half): the end-to-end confirmation on ``cbcc/v1/r/{rid}/ack``.

The worked example in docs/mqtt.md ("Confirmations") is recomputed from the document's own lines
with nothing but ``hmac``; the ingest writer confirms exactly the seqs a commit settled (stored,
re-sent, quarantined after a good MAC; never a bad MAC); the live consumer publishes them after
the commit to the reader's own topic, where the reader may read them under the contract's ACL."""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from support.broker import ACL, Broker
from support.ingest import TOPIC, Store, reader_key, record, setup_store, tap
from support.micropython_runner import ROOT

from gateway import ack
from gateway.ingest import IngestWriter, Message
from gateway.mqtt.broker_config import READER_READ
from gateway.mqtt.consumer import Consumer
from gateway.sealed import seal
from gateway.settings import IngestSettings, MqttSettings

MQTT_MD = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
RID = "rd-0001"
KEY = reader_key(RID)
BROKER_USERS = {"gateway": "gw-pass", RID: "rd-pass"}


def _example() -> dict[str, str]:
    start = MQTT_MD.index("## Confirmations: `cbcc/v1/r/{rid}/ack`")
    sec = MQTT_MD[start : MQTT_MD.index("\n## ", start + 3)]
    block = sec.split("**Worked example**", 1)[1].split("```", 2)[1]
    out: dict[str, str] = {}
    for line in block.splitlines():
        m = re.match(r"^([a-z ]+):\s+(.+?)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_worked_example_recomputes_from_the_text() -> None:
    ex = _example()
    key, rid = bytes.fromhex(ex["key"]), ex["rid"]
    seqs = [int(x) for x in ex["seqs"].split()]
    body = bytes.fromhex(ex["ranges"])
    # as the table says: n (1 byte), then n x (lo u32 BE, hi u32 BE)
    n = body[0]
    assert len(body) == 1 + 8 * n
    got: set[int] = set()
    for i in range(n):
        lo = int.from_bytes(body[1 + 8 * i : 5 + 8 * i], "big")
        hi = int.from_bytes(body[5 + 8 * i : 9 + 8 * i], "big")
        got.update(range(lo, hi + 1))
    assert got == set(seqs)
    head = b"cbcc-ack1" + len(rid).to_bytes(1, "big") + rid.encode()
    assert ex["mac input"].startswith(head.hex() + " ")
    mac = hmac.new(key, head + body, "sha256").digest()
    assert mac.hex() == ex["mac"]
    assert "1 + 24 + 32 = 57 bytes" in ex["payload"]
    # and the gateway's code writes the same bytes, and reads them back
    assert ack.messages(key, rid, seqs) == [body + mac]
    assert ack.decode(key, rid, body + mac) == [(1, 5), (7, 7), (9, 10)]


def test_decode_refuses_what_the_doc_refuses() -> None:
    good = ack.encode(KEY, RID, [(1, 2), (4, 4)])
    for bad in (good[:-1], good + b"\0", bytes([3]) + good[1:], good[:-1] + bytes([good[-1] ^ 1]),
                ack.encode(KEY, RID, [(4, 4), (1, 2)]), ack.encode(KEY, RID, [(1, 2), (3, 4)]),
                ack.encode(KEY, "rd-0002", [(1, 2)])):  # fmt: skip
        with pytest.raises(ValueError):
            ack.decode(KEY, RID, bad)
    with pytest.raises(ValueError):
        ack.body([(i * 3, i * 3) for i in range(33)])
    assert len(ack.messages(KEY, RID, range(0, 200, 2))) == 4  # 100 ranges: 32 + 32 + 32 + 4


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st_ = setup_store(f"sqlite:///{tmp_path / 'gw.db'}", [RID, "rd-0002"], tmp_path / "master.key")
    yield st_
    st_.engine.dispose()


def _msg(payload: bytes, rid: str = RID) -> Message:
    return Message(TOPIC.format(rid), payload, 1, time.time())


def _confirmed(res: Any, rid: str = RID) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for topic, payload in res.acks:
        if topic == ack.topic(rid):
            out.extend(ack.decode(reader_key(rid), rid, payload))
    return out


def test_a_commit_confirms_what_it_settled_and_no_bad_mac(store: Store) -> None:
    w = IngestWriter(store.engine, store.keys)
    r1 = w.write_batch([_msg(tap(RID, s)) for s in (1, 2, 3, 5)] + [_msg(tap("rd-0002", 9), "rd-0002")])
    assert r1.stored == 5
    assert _confirmed(r1) == [(1, 3), (5, 5)] and _confirmed(r1, "rd-0002") == [(9, 9)]
    # a re-send (a broker lost them) is confirmed again; a bad record after a good MAC is
    # quarantined AND confirmed; a forged MAC is neither stored nor confirmed
    bad_record = seal(KEY, RID, 6, bytes(cbor2.dumps({1: 1, 2: 2, 3: "tap\x00"})))
    forged = seal(b"\x01" * 32, RID, 7, record())
    conflict = tap(RID, 2, serial=4242)
    r2 = w.write_batch([_msg(tap(RID, 3)), _msg(bad_record), _msg(forged), _msg(conflict), _msg(tap(RID, 8))])
    assert (r2.stored, r2.duplicates) == (1, 1)
    assert r2.quarantined == {"bad_record": 1, "bad_mac": 1, "conflict": 1}
    assert _confirmed(r2) == [(2, 3), (6, 6), (8, 8)]
    assert 7 not in r2.confirmed.get(RID, set())


def test_a_refused_record_is_confirmed_after_the_split(store: Store) -> None:
    """db_rejected (the database refused it alone) is settled too: never re-sent forever."""
    import sqlalchemy as sa

    with store.engine.begin() as c:
        c.execute(sa.text("CREATE TRIGGER no13 BEFORE INSERT ON event WHEN NEW.seq = 13 "
                          "BEGIN SELECT RAISE(ABORT, 'seq 13 refused'); END"))  # fmt: skip
    w = IngestWriter(store.engine, store.keys)
    res = w.write_batch([_msg(tap(RID, s)) for s in range(10, 17)])
    assert res.stored == 6 and res.quarantined == {"db_rejected": 1}
    assert sorted(s for lo, hi in _confirmed(res) for s in range(lo, hi + 1)) == list(range(10, 17))


def test_reader_acl_allows_its_own_ack_topic() -> None:
    assert "ack" in READER_READ
    assert "pattern read cbcc/v1/r/%u/ack" in ACL


def test_the_consumer_publishes_the_confirmation_after_commit(broker: Broker, store: Store) -> None:
    got: list[bytes] = []
    ready = threading.Event()
    reader = paho.Client(CallbackAPIVersion.VERSION2, client_id=RID)
    reader.username_pw_set(RID, "rd-pass")
    reader.on_connect = lambda c, *_a: c.subscribe(ack.topic(RID), 1)
    reader.on_subscribe = lambda *_a: ready.set()
    reader.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    reader.connect("127.0.0.1", broker.port)
    reader.loop_start()
    assert ready.wait(10)
    ms = MqttSettings(host="127.0.0.1", port=broker.port, username="gateway", password=SecretStr("gw-pass"),
                      client_id="gateway", tls=False, embedded=False)  # fmt: skip
    cons = Consumer(ms, IngestWriter(store.engine, store.keys), ingest=IngestSettings())
    cons.start()
    try:
        assert cons.wait_connected(10)
        # as a reader does: what is not confirmed is sent again (the gateway's subscription may
        # not be in place yet for the first ones: the broker drops them, nothing confirms them)
        deadline = time.monotonic() + 30
        seen: set[int] = set()
        while time.monotonic() < deadline and seen != set(range(1, 6)):
            for s in sorted(set(range(1, 6)) - seen):
                reader.publish(TOPIC.format(RID), tap(RID, s), qos=1)
            time.sleep(1)
            for p in list(got):
                seen.update(s for lo, hi in ack.decode(KEY, RID, p) for s in range(lo, hi + 1))
        assert seen == set(range(1, 6))
    finally:
        cons.stop()
        reader.loop_stop()
        reader.disconnect()


def test_the_one_process_gateway_confirms_through_its_embedded_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded broker commits before its PUBACK; the confirmation still goes out, so a reader
    that waits for confirmations (it met an external broker before) is served here too."""
    from fastapi.testclient import TestClient
    from support.broker import free_port

    from gateway import bootstrap
    from gateway.service import Gateway
    from gateway.settings import load_settings

    monkeypatch.setenv("CBCC_PASSPHRASE", "mật khẩu thử nghiệm")
    settings = load_settings(None, data_dir=tmp_path / "data",
                             database={"url": f"sqlite:///{tmp_path / 'g.db'}"},
                             mqtt={"embedded": True, "port": free_port(), "embedded_tls_host": "127.0.0.1",
                                   "embedded_tls_port": free_port()})  # fmt: skip
    token = bootstrap.init(settings, None).admin_token
    gw = Gateway(settings)
    gw.start()
    rid = "hn-snv-p310"
    got: list[bytes] = []
    ready = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=rid, protocol=paho.MQTTv311, clean_session=False)
    try:
        with TestClient(gw.app) as api:
            r = api.post("/api/v1/readers", json={"id": rid, "name": "Cửa", "site": "hn-snv", "role": "door"},
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert r.status_code == 201, r.text
            new = r.json()
        key = bytes.fromhex(new["mac_key_hex"])
        c.username_pw_set(rid, new["mqtt_password"])
        c.tls_set(ca_certs=str(settings.data_dir / "broker" / "ca.crt"))
        c.on_connect = lambda cl, *_a: cl.subscribe(ack.topic(rid), 1)
        c.on_subscribe = lambda *_a: ready.set()
        c.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
        c.connect("127.0.0.1", settings.mqtt.embedded_tls_port)
        c.loop_start()
        assert ready.wait(10)
        rec = record(t=int(time.time()))
        for n in (1, 2, 3):
            c.publish(TOPIC.format(rid), seal(key, rid, n, rec), qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 15
        seen: set[int] = set()
        while time.monotonic() < deadline and seen != {1, 2, 3}:
            time.sleep(0.1)
            for p in list(got):
                seen.update(s for lo, hi in ack.decode(key, rid, p) for s in range(lo, hi + 1))
        assert seen == {1, 2, 3}
    finally:
        c.loop_stop()
        c.disconnect()
        gw.stop()


def test_a_worker_process_returns_the_confirmations(store: Store, tmp_path: Path) -> None:
    """Worker-process ingest (gateway.ingest_worker): the keys stay in the child; the parent gets
    the confirmations ready to publish in the BatchResult."""
    from gateway.ingest_worker import ProcessWriter, WorkerSpec

    w = ProcessWriter(WorkerSpec(store.url, tmp_path / "master.key"))
    w.start()
    try:
        res = w.write_batch([_msg(tap(RID, s)) for s in (4, 5, 6, 9)])
        assert res.stored == 4 and _confirmed(res) == [(4, 6), (9, 9)]
    finally:
        w.stop()
