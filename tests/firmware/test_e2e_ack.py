"""Issue 15, finding 8: nothing is lost when the broker loses what it acknowledged.

The real reader uplink (tests/mpy/uplink_probe.py under the MicroPython unix port, journal on a
file-backed NOR flash) talks TLS to a real Mosquitto with persistence and a LONG autosave
interval; the real gateway consumer commits into SQLite and publishes its confirmations. The
broker then loses acknowledged events three ways: ``kill -9`` after PUBACK and before autosave,
its persistence file deleted between runs, and, as the control, a reader that releases its
records on PUBACK (``confirm: false``, the old behaviour) loses them in the same crash. A reader
whose records the gateway quarantines (a control character in a text field) gets them confirmed
and does not send them again and again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlmodel import Session
from support.broker import Broker
from support.host import root_key, rsa_key
from test_uplink import MAC_KEYS, USERS, Reader

from gateway import ack, db
from gateway.ingest import IngestWriter
from gateway.models import Event, Quarantine
from gateway.mqtt.consumer import Consumer
from gateway.registry import KeyCache, register
from gateway.secretbox import SecretBox
from gateway.settings import IngestSettings, MqttSettings
from trustcore import keys

# the probe's identities (test_uplink.USERS / MAC_KEYS) under the names this test gives them
NEW, OLD, BAD = "rdr-ev", "rdr-cfg", "rdr-junk"
RIDS = (NEW, OLD, BAD)



@dataclass
class Rig:
    broker: Broker
    ca_der: Path
    config_key_file: Path
    root_file: Path
    engine: sa.engine.Engine
    keys: KeyCache
    consumer: Consumer | None = None

    def gateway_up(self) -> None:
        ms = MqttSettings(host="127.0.0.1", port=self.broker.port, username="gateway", tls=False,
                          password=SecretStr(USERS["gateway"]), client_id="gateway",
                          embedded=False)  # fmt: skip
        self.consumer = Consumer(ms, IngestWriter(self.engine, self.keys), ingest=IngestSettings())
        self.consumer.start()
        assert self.consumer.wait_connected(15)
        time.sleep(0.5)  # its SUBSCRIBE granted

    def gateway_down(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer = None

    def taps(self, rid: str) -> list[tuple[int, str]]:
        """(seq, staff) of the reader's stored taps, by seq."""
        with self.engine.connect() as c:
            t = Event.__table__  # type: ignore[attr-defined]
            rows = c.execute(sa.select(t.c.seq, t.c.staff_code).where(t.c.reader_id == rid, t.c.kind == "tap")
                             .order_by(t.c.seq))  # fmt: skip
            return [(r[0], r[1]) for r in rows]

    def quarantined(self, rid: str) -> list[str]:
        with self.engine.connect() as c:
            q = Quarantine.__table__  # type: ignore[attr-defined]
            return [r[0] for r in c.execute(sa.select(q.c.reason).where(q.c.reader_id == rid))]

    def wait_taps(self, rid: str, staff: list[str], timeout: float = 60) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.taps(rid)
            if sorted(s for _, s in got) == sorted(staff) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder, USERS, persistence=True)  # autosave_interval 1800: far beyond the test
    b.start()
    ca_der = folder / "ca.der"
    ca_der.write_bytes(x509.load_pem_x509_certificate(b.ca.read_bytes()).public_bytes(serialization.Encoding.DER))
    cfg_file = folder / "config.cose_key"
    cfg_file.write_bytes(keys.cose_key_bytes(rsa_key("config").public_key()))
    root_file = folder / "root.cose_key"
    root_file.write_bytes(keys.cose_key_bytes(root_key().public_key()))
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    box = SecretBox.from_file(tmp_path / "master.key", create=True)
    with Session(engine) as s:
        for rid in RIDS:
            register(s, box, rid, mac_key=MAC_KEYS[rid])
        s.commit()
    kc = KeyCache(engine, box)
    kc.load_all()
    r = Rig(b, ca_der, cfg_file, root_file, engine, kc)
    yield r
    r.gateway_down()
    b.stop()
    engine.dispose()


def _reader(rig: Rig, rid: str, folder: Path, readers: list[Reader], **opts: Any) -> Reader:
    r = Reader(cast(Any, rig), rid, folder, blocks=16, **opts)
    readers.append(r)
    r.wait("connected", timeout=30)
    return r


@pytest.fixture
def readers() -> Iterator[list[Reader]]:
    made: list[Reader] = []
    yield made
    for r in made:
        r.close()


def _puback_only(r: Reader, n: int, tag: str) -> None:
    """Append n taps while no gateway is connected: the broker PUBACKs and queues them."""
    m = r.mark()
    r.send(op="append", n=n, tag=tag)
    r.wait("appended", lambda x: x["tag"] == tag, start=m)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = r.stats()
        if s["uplink"]["published"] >= s["journal"]["last_seq"]:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # the last PUBACKs in


def _confirming(rig: Rig, r: Reader, rid: str) -> None:
    """First contact: a few taps committed and confirmed, which turns the reader to waiting for
    the gateway's confirmation (for good)."""
    r.send(op="append", n=3, tag="first")
    got = rig.wait_taps(rid, [f"first-{i}" for i in range(3)])
    assert len(got) == 3
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = r.stats()
        if s["uplink"]["confirmations"] and s["journal"]["depth"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"not confirmed: {s}")


@pytest.mark.micropython
@pytest.mark.mosquitto
def test_kill9_after_puback_before_autosave_loses_nothing(rig: Rig, tmp_path: Path,
                                                          readers: list[Reader]) -> None:  # fmt: skip
    rig.gateway_up()
    new = _reader(rig, NEW, tmp_path / "new", readers)
    old = _reader(rig, OLD, tmp_path / "old", readers, confirm=False)  # the control
    _confirming(rig, new, NEW)
    old.send(op="append", n=3, tag="first")
    assert len(rig.wait_taps(OLD, [f"first-{i}" for i in range(3)])) == 3
    rig.gateway_down()  # the broker now holds what it acknowledged, in memory only
    _puback_only(new, 40, "crash")
    _puback_only(old, 40, "crash")
    assert new.stats()["journal"]["depth"] >= 40  # held until the gateway confirms
    assert old.stats()["journal"]["depth"] == 0  # released on PUBACK
    proc = rig.broker.proc
    assert proc is not None
    proc.kill()  # kill -9: no save
    proc.wait()
    rig.broker.start()
    rig.gateway_up()
    want = [f"first-{i}" for i in range(3)] + [f"crash-{i}" for i in range(40)]
    got = rig.wait_taps(NEW, want, timeout=90)
    assert sorted(s for _, s in got) == sorted(want)  # every one, once (one row per seq)
    assert [q for q in rig.quarantined(NEW) if q != "unknown_reader"] == []
    deadline = time.monotonic() + 30
    while new.stats()["journal"]["depth"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert new.stats()["journal"]["depth"] == 0
    # the control: the reader that trusted the PUBACK lost what the broker had not saved
    lost = [s for _, s in rig.taps(OLD) if s.startswith("crash-")]
    assert len(lost) < 40


@pytest.mark.micropython
@pytest.mark.mosquitto
def test_broker_persistence_deleted_between_runs_loses_nothing(rig: Rig, tmp_path: Path,
                                                               readers: list[Reader]) -> None:  # fmt: skip
    rig.gateway_up()
    r = _reader(rig, NEW, tmp_path / "r", readers)
    _confirming(rig, r, NEW)
    rig.gateway_down()
    _puback_only(r, 30, "gone")
    rig.broker.stop()  # a clean stop saves the database ...
    db_file = rig.broker.folder / "mosquitto.db"
    assert db_file.exists()
    db_file.unlink()  # ... which is then lost: a fresh broker, no session, no queue
    rig.broker.start()
    rig.gateway_up()
    want = [f"first-{i}" for i in range(3)] + [f"gone-{i}" for i in range(30)]
    got = rig.wait_taps(NEW, want, timeout=90)
    assert sorted(s for _, s in got) == sorted(want)
    assert [s for s, _ in got] == sorted({s for s, _ in got})


@pytest.mark.micropython
@pytest.mark.mosquitto
def test_quarantined_records_are_confirmed_not_resent_forever(rig: Rig, tmp_path: Path,
                                                              readers: list[Reader]) -> None:  # fmt: skip
    rig.gateway_up()
    r = _reader(rig, BAD, tmp_path / "b", readers, confirm=True, confirm_timeout=1)
    r.send(op="append", n=10, tag="bad\x01")  # a control character: bad_record at the gateway
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = r.stats()
        if s["journal"]["last_seq"] >= 10 and s["journal"]["depth"] == 0:
            break
        time.sleep(0.2)
    assert s["journal"]["depth"] == 0, s  # the gateway confirmed them: released
    assert rig.quarantined(BAD).count("bad_record") == 10
    sent = s["uplink"]["published"]
    time.sleep(4)  # four confirmation timeouts: nothing is pending, nothing is sent again
    s2 = r.stats()
    assert s2["uplink"]["resent"] == 0 and s2["uplink"]["published"] == sent
    assert rig.quarantined(BAD).count("bad_record") == 10
    assert rig.taps(BAD) == []


# ---- the reader's side of the confirmation, in process (CPython over the firmware modules) ---------


def _held(tmp_path: Path, n: int, **settings_: Any) -> Any:
    import uplink
    from journal import Journal
    from sim.nor_flash import NorFlash

    j = Journal(NorFlash(blocks=4, block_size=4096))
    for i in range(n):
        j.append(b"rec%d" % i)
    s = {"reader_id": "r1", "password": "pw", "mac_key": b"k" * 32, "host": "127.0.0.1", "port": 1,
         "state_dir": str(tmp_path)} | settings_  # fmt: skip
    return uplink.Uplink(s, j, {})


def test_confirmations_release_records_in_order_only(tmp_path: Path) -> None:
    up = _held(tmp_path, 20)
    j, key = up.journal, b"k" * 32
    assert up.confirm is None
    up._on_ack(ack.encode(key, "r1", [(3, 5)]))  # a gap: 1-2 not committed yet
    assert j.delivered_seq() == 0 and up.confirm is True and (tmp_path / "confirm").exists()
    up._on_ack(ack.encode(key, "r1", [(1, 2), (7, 7)]))
    assert j.delivered_seq() == 5  # 1-2 then the held 3-5; 7 waits for 6
    up._on_ack(ack.encode(key, "r1", [(6, 6), (8, 40)]))  # beyond the journal: up to its end only
    assert j.delivered_seq() == 20 and j.depth() == 0
    assert up.stats["delivered"] == 20 and up.stats["confirmations"] == 3
    # for good: a new uplink on the same state folder waits for confirmations from the start
    assert _held(tmp_path, 1).confirm is True


def test_foreign_or_broken_confirmations_release_nothing(tmp_path: Path) -> None:
    up = _held(tmp_path, 5)
    j, key = up.journal, b"k" * 32
    good = ack.encode(key, "r1", [(1, 5)])
    for bad in (ack.encode(b"x" * 32, "r1", [(1, 5)]), ack.encode(key, "r2", [(1, 5)]), good[:-1],
                good + b"\0", b"", bytes([2]) + good[1:], ack.encode(key, "r1", [(3, 4), (1, 1)]),
                ack.encode(key, "r1", [(1, 2), (3, 5)])):  # fmt: skip
        up._on_ack(bad)
    assert j.delivered_seq() == 0 and up.confirm is None and up.stats["rejected"] == 8
    up._on_ack(good)
    assert j.delivered_seq() == 5


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_confirmation_bytes_never_raise_or_release(payload: bytes) -> None:
    import asyncio
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        up = _held(Path(d), 3)
        asyncio.run(up._on_message("cbcc/v1/r/r1/ack", payload, False))  # as the client calls it
        assert up.journal.delivered_seq() == 0 and up.stats["errors"] == 0


def test_confirm_false_keeps_the_puback_release(tmp_path: Path) -> None:
    up = _held(tmp_path, 3, confirm=False)
    up._on_ack(ack.encode(b"k" * 32, "r1", [(1, 3)]))
    assert up.confirm is False and not (tmp_path / "confirm").exists()
