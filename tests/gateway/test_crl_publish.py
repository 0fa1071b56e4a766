"""The national revocation list from the gateway (gateway/crl_publisher.py) to the readers.

- the builder reads the card table (SQLite and PostgreSQL) and agrees with
  provisioning/crl_national's reference lookup and with the firmware's reader;
- what the publisher sends (chunks, manifests, cleared topics) is taken by the firmware's uplink
  (under CPython: firmware/lib is importable), and hostile manifests and chunks are refused with
  a reason while the held list stays;
- end to end with the real firmware under MicroPython (firmware/tools/virtual_reader.py) and a
  real Mosquitto: a card locked at the gateway is denied within 5 s, and a reader that was
  offline catches up by the delta alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import blob_transfer
import cbor2
import cose_key
import crl_national as fw
import paho.mqtt.client as paho
import pytest
import uplink
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session, select
from support import host as hs

from gateway import crl_publisher as cp
from gateway import db
from gateway.models import AuditEntry, Card, CardChange, RevocationPublication
from trustcore import cose, keys
from trustcore import crl_national as host

ROOT = hs.root_key()
CONFIG_KEY = hs.rsa_key("config")
T0 = datetime(2026, 6, 1, tzinfo=UTC)


class Sent:
    """A publish() that records (the retained state as a broker would keep it, and the order)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes, bool]] = []
        self.retained: dict[str, bytes] = {}

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        assert qos == 1
        self.log.append((topic, payload, retain))
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)


def make_engine(url: str) -> Any:
    db.migrate(url)
    return db.make_engine(url)


def add_cards(engine: Any, rng: random.Random, rate: float = 0.1) -> dict[int, str]:
    """Three issuers (two of them interleaved, so their extents overlap), statuses of every kind."""
    statuses: dict[int, str] = {}
    with Session(engine) as s:
        for issuer, serials in (("000.00.36.H40", range(1000, 1600)),
                                ("000.00.01.G01", range(5000, 5400, 2)),
                                ("000.00.02.G02", range(5001, 5400, 2))):  # fmt: skip
            for serial in serials:
                st = "issued"
                if rng.random() < rate:
                    st = rng.choice(["locked", "revoked", "expired", "replaced"])
                statuses[serial] = st
                s.add(
                    Card(
                        serial=serial, staff_code=f"CB-{serial:08d}", issuer=issuer, status=st, updated_at=T0
                    )
                )
        s.commit()
    return statuses


def publisher(engine: Any, folder: Path, sent: cp.Publish, **kw: Any) -> cp.CrlPublisher:
    return cp.CrlPublisher(
        engine, cp.local_root_signer(ROOT), ROOT.public_key(), CONFIG_KEY, sent, folder, **kw
    )


@pytest.fixture
def engine(db_url: str, tmp_path: Path) -> Iterator[Any]:
    url = db_url  # SQLite and PostgreSQL (tests/conftest.py)
    e = make_engine(url)
    yield e
    e.dispose()


# ---- a reader under CPython: the firmware's uplink fed the published messages -------------------


class FwReader:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.root = cose_key.load(keys.cose_key_bytes(ROOT.public_key()))
        self.lst = fw.NationalList(self.root, str(folder))
        self.lst.load_held()
        self.notes: list[tuple[str, str]] = []
        cfg = cose_key.load(keys.cose_key_bytes(CONFIG_KEY.public_key()))
        settings = {"reader_id": "rdr", "password": "pw", "mac_key": bytes(32), "host": "127.0.0.1",
                    "port": 1, "server_hostname": "localhost", "state_dir": str(folder), "report_every_s": 0}
        lists = {"config_key": cfg, "ncrl": self.lst}
        self.up = uplink.Uplink(settings, None, lists, on_applied=self._applied)
        self.up._kick = _NoEvent()  # type: ignore[assignment]
        self.up._work = _NoEvent()  # type: ignore[assignment]

    def _applied(self, what: str, status: str, info: Any) -> None:
        self.notes.append((what, status))

    def feed(self, messages: list[tuple[str, bytes]]) -> None:
        for topic, payload in messages:
            asyncio.run(self.up._on_message(topic, payload, True))
        for _ in range(100_000):
            if not self.up.background_step():
                break

    def subscribed(self, retained: dict[str, bytes]) -> list[tuple[str, bytes]]:
        """What a (re)connection brings: the retained manifests, then the chunks of the transfers
        they started (the worker subscribes to them)."""
        out = [(t, p) for t, p in retained.items() if t in (cp.TOPIC_FULL, cp.TOPIC_DELTA)]
        out.sort(key=lambda tp: tp[0] != cp.TOPIC_FULL)
        return out

    def sync(self, retained: dict[str, bytes], rounds: int = 4) -> None:
        """Connections until nothing new happens: manifests, chunks of what is under way."""
        for _ in range(rounds):
            self.feed(self.subscribed(retained))
            subs = {x.sha8 for x in self.up.transfers.values()}
            self.feed(
                [(t, p) for t, p in retained.items() if t.startswith(cp.BLOB) and t.split("/")[4] in subs]
            )
            self.up._want_subs.clear()


class _NoEvent:
    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


# ---- builder -------------------------------------------------------------------------------------


def test_builder_from_db_agrees_with_the_reference(engine: Any, tmp_path: Path) -> None:
    rng = random.Random(7)
    statuses = add_cards(engine, rng)
    body, n = cp.build_full_from_db(engine, bucket_entries=16)
    revoked = {s for s, st in statuses.items() if st != "issued"}
    assert n == len(revoked) > 50
    # interleaved issuers: extents merged into one range
    assert cp.issuer_ranges(engine) == [host.Range(1000, 1600), host.Range(5000, 5400)]
    blob = host.sign(ROOT, host.Header(9, 1, host.KIND_FULL, len(body), hashlib.sha256(body).digest()), body)
    ref = host.load(blob, ROOT.public_key())
    assert ref.seq == 9
    r = FwReader(tmp_path / "fw")
    p = tmp_path / "in.obj"
    p.write_bytes(blob)
    assert r.lst.offer(str(p)) == "ok"
    for serial in range(990, 5410):
        want = serial in revoked
        assert ref.is_revoked(serial) is want, serial
        assert r.lst.is_revoked(serial) is want, serial


def test_publisher_full_then_deltas_readers_follow(engine: Any, tmp_path: Path) -> None:
    statuses = add_cards(engine, random.Random(3))
    sent = Sent()
    pub = publisher(engine, tmp_path / "objs", sent)
    full = pub.publish()
    assert full is not None and full.kind == "full" and pub.publish() is None  # nothing changed
    # chunks before the manifest; the delta topic cleared; everything retained
    topics = [t for t, _, _ in sent.log]
    assert topics.index(cp.TOPIC_FULL) > max(i for i, t in enumerate(topics) if t.startswith(cp.BLOB))
    assert sent.retained.keys() >= {cp.TOPIC_FULL} and cp.TOPIC_DELTA not in sent.retained
    assert all(retain for _, _, retain in sent.log)
    reader = FwReader(tmp_path / "r1")
    reader.sync(sent.retained)
    assert reader.notes == [("ncrl", "ok")] and reader.lst.seq == full.seq

    # a lock: a delta, the reader denies the card, status and audit recorded
    victim = next(s for s, st in statuses.items() if st == "issued")
    assert not reader.lst.is_revoked(victim)
    d1 = cp.lock_card(engine, victim, "facility-1", publisher=pub)
    assert d1 is not None and d1.kind == "delta" and d1.base_seq == full.seq and d1.seq > full.seq
    with Session(engine) as s:
        card = s.get(Card, victim)
        assert card is not None and card.status == "locked" and card.pending_upstream
        assert [c.kind for c in s.exec(select(CardChange)).all()] == ["card.locked"]
        assert [a.action for a in s.exec(select(AuditEntry)).all()] == ["card.lock"]
    assert cp.lock_card(engine, victim, "facility-1", publisher=pub) is None  # already locked
    reader.sync(sent.retained)
    assert reader.notes[-1] == ("ncrl_delta", "ok") and reader.lst.is_revoked(victim)

    # a second change: the next delta replaces the first, whose chunks are cleared
    other = next(s for s, st in statuses.items() if st == "issued" and s != victim)
    with Session(engine) as s:
        c = s.get(Card, other)
        assert c is not None
        c.status, c.updated_at = "revoked", T0
        s.add(c)
        s.commit()
    assert pub.tick() is not None  # noticed by the periodic check without a hook
    d2 = pub.current_delta
    assert d2 is not None and d2.seq > d1.seq
    assert not [t for t in sent.retained if t.startswith(cp.BLOB + d1.sha256[:8])]
    reader.sync(sent.retained)
    assert reader.lst.seq == d2.seq and reader.lst.is_revoked(other) and reader.lst.is_revoked(victim)

    # a reader that joins now fetches the full list, then the delta on top of it
    late = FwReader(tmp_path / "late")
    late.sync(sent.retained)
    assert ("ncrl", "ok") in late.notes and ("ncrl_delta", "ok") in late.notes and late.lst.seq == d2.seq

    # a new full list: the delta topic and the old objects' chunks are cleared
    f2 = pub.publish(force_full=True)
    assert f2 is not None and f2.kind == "full"
    assert cp.TOPIC_DELTA not in sent.retained
    blobs = {t.split("/")[4] for t in sent.retained if t.startswith(cp.BLOB)}
    assert blobs == {f2.sha256[:8]}
    reader.sync(sent.retained)
    assert reader.lst.seq == f2.seq and reader.lst.delta is None and reader.lst.is_revoked(victim)
    with Session(engine) as s:
        rows = s.exec(select(RevocationPublication).order_by(RevocationPublication.seq)).all()  # type: ignore[arg-type]
        kinds = [(r.kind, r.base_seq) for r in rows]
        assert kinds == [("full", None), ("delta", full.seq), ("delta", full.seq), ("full", None)]
        assert all(Path(r.path).is_file() and r.size == Path(r.path).stat().st_size for r in rows)

    # a new publisher (gateway restart) picks the state up from the rows and files
    pub2 = publisher(engine, tmp_path / "objs", Sent())
    assert pub2.current_full is not None and pub2.current_full.seq == f2.seq and pub2.publish() is None


def test_delta_costs_at_most_3_bytes_per_entry(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    rng = random.Random(11)
    rows = [{"serial": serial, "staff_code": "x", "issuer": f"I{i}", "updated_at": T0, "gen": 1,
             "pending_upstream": False, "status": "revoked" if rng.random() < 0.05 else "issued"}
            for i, lo in enumerate(range(0, 2_000_000, 100_000))
            for serial in range(lo, lo + 5_000)]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(cp.CARD.insert(), rows)
    pub = publisher(engine, tmp_path / "o", Sent())
    assert pub.publish() is not None
    with engine.begin() as conn:
        issued = [r[0] for r in conn.execute(cp.CARD.select().with_only_columns(cp.CARD.c.serial)
                                              .where(cp.CARD.c.status == "issued"))]  # fmt: skip
        lock = rng.sample(issued, 1000)
        conn.execute(cp.CARD.update().where(cp.CARD.c.serial.in_(lock)).values(status="locked"))
    d = pub.publish()
    assert d is not None and d.kind == "delta"
    assert d.size / 1000 <= 3.0, d.size  # header (~470 B) included


def test_wrong_base_notice_sends_the_full_list_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    add_cards(engine, random.Random(5))
    sent = Sent()
    clock = [1000.0]
    pub = publisher(engine, tmp_path / "o", sent, clock=lambda: clock[0])
    full = pub.publish()
    assert full is not None
    n = len(sent.log)
    assert not pub.on_notice("r1", "ncrl", "bad_digest") and not pub.on_notice("r1", "cmd", "wrong_base")
    assert pub.on_notice("r1", "ncrl_delta", "wrong_base")
    assert not pub.on_notice("r2", "ncrl_delta", "wrong_base")  # at most once per 30 s
    again = sent.log[n:]
    assert again[-1][0] == cp.TOPIC_FULL and len(again) == 1 + -(-full.size // cp.CHUNK)
    clock[0] += 31
    assert pub.on_notice("r2", "ncrl_delta", "wrong_base")


def test_signer_output_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the refusal matched below
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    add_cards(engine, random.Random(5))
    wrong = cp.CrlPublisher(engine, cp.local_root_signer(hs.rsa_key("not-root", 3072)), ROOT.public_key(),
                            CONFIG_KEY, Sent(), tmp_path / "o")  # fmt: skip
    with pytest.raises(cp.CrlPublishError, match="national root"):
        wrong.publish()
    assert wrong.on_cards_changed([1]) is None and wrong.stats["errors"] == 1
    with Session(engine) as s:
        assert s.exec(select(RevocationPublication)).all() == []


# ---- hostile manifests and chunks ------------------------------------------------------------------


def _state(tmp_path: Path) -> tuple[Any, Sent, cp.CrlPublisher, FwReader, dict[int, str]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    rng = random.Random(9)
    statuses = {serial: "revoked" if rng.random() < 0.3 else "issued" for serial in range(1000, 41000)}
    rows = [{"serial": serial, "staff_code": "x", "issuer": "I", "updated_at": T0, "gen": 1,
             "pending_upstream": False, "status": st} for serial, st in statuses.items()]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(cp.CARD.insert(), rows)  # ~5 KB of list: a few chunks
    sent = Sent()
    pub = publisher(engine, tmp_path / "o", sent)
    pub.publish()
    reader = FwReader(tmp_path / "r")
    reader.sync(sent.retained)
    assert reader.lst.seq == 1
    return engine, sent, pub, reader, statuses


def _object(sent: Sent, topic: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    m = sent.retained[topic]
    payload = cbor2.loads(cose.parse_sign1(m, 4096).payload)
    sha8 = payload[6][:4].hex()
    parts = sorted(((t, p) for t, p in sent.retained.items() if t.startswith(cp.BLOB + sha8)),
                   key=lambda tp: int(tp[0].rsplit("/", 1)[1]))  # fmt: skip
    return m, parts


def _fresh_full(pub: cp.CrlPublisher, engine: Any, statuses: dict[int, str]) -> None:
    serial = next(s for s, st in statuses.items() if st == "issued")
    statuses[serial] = "locked"
    with engine.begin() as conn:
        conn.execute(cp.CARD.update().where(cp.CARD.c.serial == serial).values(status="locked"))
    assert pub.publish(force_full=True) is not None


ATTACKS = ["truncated_chunk", "swapped_chunks", "tampered_chunk", "duplicate_tampered", "truncated_manifest",
           "tampered_manifest", "foreign_manifest", "oversize_manifest", "kind_mismatch",
           "root_tampered_object"]  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_chunks_and_manifests_keep_the_held_list(attack: str, tmp_path: Path) -> None:
    engine, sent, pub, reader, statuses = _state(tmp_path)
    held = reader.lst.seq
    was_revoked = next(s for s, st in statuses.items() if st != "issued")
    _fresh_full(pub, engine, statuses)
    m, parts = _object(sent, cp.TOPIC_FULL)
    assert len(parts) >= 2
    want: tuple[str, str]
    if attack == "truncated_chunk":
        parts[0] = (parts[0][0], parts[0][1][:-1])
        want = ("ncrl_chunk", "bad_length")
    elif attack == "swapped_chunks":  # same lengths, contents on each other's topic
        parts[0], parts[1] = (parts[0][0], parts[1][1]), (parts[1][0], parts[0][1])
        want = ("ncrl", "bad_digest")
    elif attack == "tampered_chunk":
        b = bytearray(parts[-1][1])
        b[len(b) // 2] ^= 1
        parts[-1] = (parts[-1][0], bytes(b))
        want = ("ncrl", "bad_digest")
    elif attack == "duplicate_tampered":  # a second copy of a chunk is never written over the first
        b = bytearray(parts[0][1])
        b[0] ^= 0xFF
        parts.insert(1, (parts[0][0], bytes(b)))
        parts.append((parts[-1][0], bytes(b)[: len(parts[-1][1])]))
        want = ("ncrl", "ok")
    elif attack == "truncated_manifest":
        m = m[:-7]
        want = ("ncrl_manifest", "malformed")
    elif attack == "tampered_manifest":
        b = bytearray(m)
        b[-300] ^= 1
        m = bytes(b)
        want = ("ncrl_manifest", "bad_signature")
    elif attack == "foreign_manifest":  # signed by someone else than the gateway
        blob = b"".join(p for _, p in parts)
        m = cp.manifest(hs.rsa_key("intruder"), 99, 1, "ncrl", blob)
        want = ("ncrl_manifest", "unknown_root")
    elif attack == "oversize_manifest":
        payload = {0: "manifest", 1: 1, 2: 99, 3: 1, 4: "ncrl", 5: (1 << 20) + 1, 6: bytes(32), 7: 2048}
        from trustcore import cbor_det

        m = cose.sign1(cbor_det.dumps(payload), CONFIG_KEY, alg=cose.ALG_RS256)
        want = ("ncrl_manifest", "too_large")
    elif attack == "kind_mismatch":  # a trust-list manifest replayed on the national topic
        blob = b"".join(p for _, p in parts)
        m = cp.manifest(CONFIG_KEY, 99, 1, "trust", blob)
        want = ("ncrl_manifest", "malformed")
    else:  # the gateway's key, but the object's body changed after the root signed it
        changed = bytearray(b"".join(p for _, p in parts))
        changed[-1] ^= 1
        m = cp.manifest(CONFIG_KEY, 99, 1, "ncrl", bytes(changed))
        sha8 = hashlib.sha256(bytes(changed)).hexdigest()[:8]
        parts = [(f"{cp.BLOB}{sha8}/{i}", c) for i, c in enumerate(cp.chunks(bytes(changed)))]
        want = ("ncrl", "bad_digest")
    reader.feed([(cp.TOPIC_FULL, m)])
    # out of order is fine (each chunk goes to its offset); a duplicate after the first copy is
    # never written: the first one on flash stays
    reader.feed(parts if attack == "duplicate_tampered" else list(reversed(parts)))
    assert reader.notes[-1][:2] == want, reader.notes
    if want[1] != "ok":
        assert reader.lst.seq == held and reader.lst.base is not None
        assert reader.lst.is_revoked(was_revoked)
    # the reader keeps working: a reboot loads what it holds
    reader.lst.close()
    again = fw.NationalList(reader.root, str(reader.folder))
    assert again.load_held() == "ok" and again.seq == reader.lst.seq


def test_delta_for_another_base_is_refused_and_the_full_list_asked_for(tmp_path: Path) -> None:
    engine, sent, pub, reader, statuses = _state(tmp_path)
    old_full = dict(sent.retained)
    _fresh_full(pub, engine, statuses)
    _fresh_full(pub, engine, statuses)  # seq 3
    victim = next(s for s, st in statuses.items() if st == "issued")
    cp.lock_card(engine, victim, "x", publisher=pub)  # delta 4 on base 3
    m, parts = _object(sent, cp.TOPIC_DELTA)
    reader.feed([(cp.TOPIC_DELTA, m), *parts])  # the reader holds base 1: wrong base
    assert reader.notes[-1] == ("ncrl_delta", "wrong_base") and reader.lst.seq == 1
    assert cp.TOPIC_FULL in reader.up._want_subs  # asks for the retained full list again
    reader.sync(sent.retained)
    assert reader.lst.seq == 4 and reader.lst.is_revoked(victim)
    assert old_full  # (the first full list's topics were cleared meanwhile)


# ---- end to end: real firmware under MicroPython, real Mosquitto -----------------------------------


RID = "hn-snv-ncrl-01"
UID_A = bytes.fromhex("04A1B2C3D4E5F6")
UID_B = bytes.fromhex("04112233445566")
CONFIG_SRC: dict[str, Any] = {
    "reader_id": RID, "site": "Thử nghiệm", "timezone": "UTC+07:00",
    "group": [{"id": "so-noi-vu", "agency": ["000.00.36"]}],
    "schedule": [{"id": "ca-ngay", "weekly": ["Mon-Sun 00:00-24:00"]}],
    "door": [{"id": "cong-chinh", "name": "Cổng chính"}],
    "rule": [{"groups": ["so-noi-vu"], "doors": ["cong-chinh"], "schedule": "ca-ngay"}],
}  # fmt: skip


class Vr:
    """The virtual reader as a process; each JSON line stamped with the host's monotonic time."""

    def __init__(self, cfg: Path, steps: list[dict[str, Any]], folder: Path) -> None:
        from simulators.firmware_runner import ROOT as FW_ROOT
        from simulators.firmware_runner import micropython_binary, micropython_env

        script = folder / f"steps-{time.monotonic_ns()}.json"
        script.write_text(json.dumps(steps))
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.err: list[str] = []
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=2M", "firmware/tools/virtual_reader.py", str(cfg),
             "--taps", str(script)],
            cwd=FW_ROOT, env=micropython_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append((time.monotonic(), json.loads(line)))
        self.err.extend(self.proc.stderr)

    def find(self, after: float = 0, **kv: Any) -> tuple[float, dict[str, Any]] | None:
        for t, d in list(self.lines):
            if t >= after and all(d.get(k) == v for k, v in kv.items()):
                return t, d
        return None

    def wait(self, what: str, timeout: float = 60, after: float = 0, **kv: Any) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.find(after, **kv)
            if got is not None:
                return got[0]
            if self.proc.poll() is not None and not self.find(after, **kv):
                time.sleep(0.3)
                break
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}: {self.lines[-8:]} {''.join(self.err)[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _taps(card: str, start_ms: int, period_ms: int, until_ms: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for t in range(start_ms, until_ms, period_ms):
        steps += [{"at_ms": t, "present": card}, {"at_ms": t + period_ms // 2, "remove": card}]
    return [*steps, {"at_ms": until_ms, "exit": True}]


@pytest.mark.micropython
def test_a_lock_is_denied_within_5_s_and_an_offline_reader_catches_up_by_delta(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from support.broker import Broker
    from test_rf_support import ISSUER

    from trustcore import reader_config as host_config

    b = Broker(tmp_path / "broker", {RID: "pw-" + RID, "gateway": "pw-gateway"})
    (tmp_path / "broker").mkdir()
    b.start()
    gw = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-ncrl-test", protocol=paho.MQTTv5)
    gw.username_pw_set("gateway", "pw-gateway")
    gw.connect("127.0.0.1", b.port)
    gw.loop_start()
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    vr: Vr | None = None
    try:
        sent: list[str] = []

        def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
            sent.append(topic)
            gw.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

        # the card table: issuer "a" issues 1000…1999, 10 % revoked (never our two cards)
        rng = random.Random(1)
        with Session(engine) as s:
            for serial in range(1000, 2000):
                st = "issued" if serial in (1001, 1002) or rng.random() > 0.1 else "revoked"
                s.add(Card(serial=serial, staff_code=f"CB-{serial:08d}", issuer="000.00.36.H40", status=st,
                           updated_at=T0))  # fmt: skip
            s.commit()
        pub = publisher(engine, tmp_path / "objs", publish)
        full = pub.publish()
        assert full is not None

        setup = hs.setup()
        files = {
            "root.cose_key": keys.cose_key_bytes(ROOT.public_key()),
            "config.cose_key": keys.cose_key_bytes(CONFIG_KEY.public_key()),
            "trust.cbor": setup.trust_blob,
            "reader.cfg": host_config.build(CONFIG_SRC, CONFIG_KEY, 1, hs.NOW),
            "huong.cbor": hs.mint_raw(setup.issuer, hs.claims(k11=UID_A, k2=1001)),
            "lan.cbor": hs.mint_raw(setup.issuer, hs.claims(k11=UID_B, k2=1002, k3="CB-00001002")),
            "ca.der": x509.load_pem_x509_certificate(b.ca.read_bytes()).public_bytes(
                serialization.Encoding.DER
            ),
        }
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        (tmp_path / "state").mkdir()
        cfg = {
            "reader_id": RID, "password": "pw-" + RID, "mac_key": (bytes(range(32))).hex(), "role": "door",
            "broker": {"host": "127.0.0.1", "port": b.tls_port, "ca_der": str(tmp_path / "ca.der"),
                       "server_hostname": "localhost"},
            "root_key": str(tmp_path / "root.cose_key"), "config_key": str(tmp_path / "config.cose_key"),
            "state_dir": str(tmp_path / "state"), "journal_image": str(tmp_path / "journal.img"),
            "journal_blocks": 16,
            "issuer_keys": {"amk": ISSUER.amk_master.hex(), "read": ISSUER.read_master.hex(),
                            "uid": ISSUER.uid_master.hex(), "picc": ISSUER.picc_master.hex()},
            "cards": {"huong": {"credential": str(tmp_path / "huong.cbor"), "uid": UID_A.hex()},
                      "lan": {"credential": str(tmp_path / "lan.cbor"), "uid": UID_B.hex()}},
            "trust": str(tmp_path / "trust.cbor"), "config": str(tmp_path / "reader.cfg"),
            "unix_ms": hs.NOW * 1000, "keepalive": 5, "backoff_min_s": 0.2, "backoff_max_s": 1,
        }  # fmt: skip
        cfg_path = tmp_path / "reader.json"
        cfg_path.write_text(json.dumps(cfg))

        # 1. online: the reader fetches the full list, Hương is granted; she is locked at the
        #    gateway and the next tap after the delta arrives is denied
        vr = Vr(cfg_path, _taps("huong", 500, 500, 60_000), tmp_path)
        vr.wait("the full list", applied="ncrl", status="ok", seq=full.seq)
        t_grant = vr.wait("a grant", decision="grant", serial=1001)
        assert t_grant > 0
        t_lock = time.monotonic()
        delta = cp.lock_card(engine, 1001, "facility-1", publisher=pub)
        t_published = time.monotonic()
        assert delta is not None and delta.kind == "delta"
        t_applied = vr.wait("the delta applied", 10, t_lock, applied="ncrl_delta", status="ok", seq=delta.seq)
        t_deny = vr.wait("the deny", 10, t_lock, decision="deny", serial=1001)
        lock_to_deny = t_deny - t_lock
        print(f"\nlock-to-deny {lock_to_deny:.2f} s (published after {t_published - t_lock:.2f} s, "
              f"applied after {t_applied - t_lock:.2f} s, taps every 0.5 s)")  # fmt: skip
        assert lock_to_deny < 5.0, lock_to_deny
        assert vr.find(t_deny, decision="grant", serial=1001) is None
        assert vr.find(0, decision="deny", reason="revoked", serial=1001) is not None
        vr.kill()

        # 2. offline: Lan is locked while the reader is away; when it comes back it loads what
        #    it held, fetches the retained delta only (not the full list) and denies her
        delta2 = cp.lock_card(engine, 1002, "facility-1", publisher=pub)
        assert delta2 is not None and delta2.kind == "delta" and delta2.base_seq == full.seq
        vr = Vr(cfg_path, _taps("lan", 300, 500, 30_000), tmp_path)
        start = vr.wait("the start", 20, started=RID)
        t_applied2 = vr.wait("the second delta", 20, applied="ncrl_delta", status="ok", seq=delta2.seq)
        t_deny2 = vr.wait("Lan denied", 20, decision="deny", serial=1002)
        print(f"offline reader: delta applied {t_applied2 - start:.2f} s, Lan denied {t_deny2 - start:.2f} s "
              "after its start")  # fmt: skip
        assert t_deny2 >= t_applied2 - 0.05  # denied because of the delta (lines arrive in order)
        assert vr.find(t_applied2 + 0.05, decision="grant", serial=1002) is None
        assert vr.find(0, applied="ncrl") is None  # the full list was not fetched again
        started = vr.find(0, started=RID)
        assert started is not None and started[1]["ncrl_seq"] == delta.seq  # held across the restart
        vr.kill()
        assert not [e for e in vr.err if "Traceback" in e], "".join(vr.err)
    finally:
        if vr is not None:
            vr.kill()
        gw.loop_stop()
        gw.disconnect()
        engine.dispose()
        b.stop()


def test_manifest_kinds_and_limits() -> None:
    assert blob_transfer.limit_for("ncrl") == 512 * 2048 and blob_transfer.limit_for("crl") == 65536
    assert blob_transfer.limit_for("ncrl_delta") >= fw.MAX_DELTA_BODY + fw.MAX_HEADER


def test_cli_command_is_well_formed() -> None:
    import typer
    from typer.testing import CliRunner

    from cbcc.crl_publish import crl_publish

    app = typer.Typer()
    app.command("publish")(crl_publish)
    app.command("other")(lambda: None)
    out = CliRunner().invoke(app, ["publish", "--help"])
    assert out.exit_code == 0 and "--root-key" in out.output and "--full" in out.output
