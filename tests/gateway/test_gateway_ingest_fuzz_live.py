"""Issue 15: fuzzing the live ingest — real Mosquitto, the gateway's consumer, real PostgreSQL.

Every message is sealed with the reader's VALID key (an attacker with a stolen key, or a reader
with a bug) around a random or mutated record: random maps of known and unknown keys, wrong types,
out-of-range integers, over-long text, control characters (NUL included), repeated keys, padded
and indefinite-length encodings, floats, nesting, plus some valid taps and raw garbage. Ingest must
store or quarantine every one of them (rows + quarantine rows = messages sent) without stalling.
``CBCC_FUZZ_N`` sets the count (default 3,000; the closing note reports a longer run)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from support.broker import Broker
from support.ingest import TOPIC, Publisher, reader_ids, reader_key, record, setup_store

from gateway.ingest import IngestWriter
from gateway.models import Event, Quarantine
from gateway.mqtt.consumer import Consumer
from gateway.sealed import seal
from gateway.settings import IngestSettings, MqttSettings

GW = "gw-fuzz-pass"
KEYS = [1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 0, 6, 99, -1]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    (tmp_path / "broker").mkdir()
    b = Broker(tmp_path / "broker", {"gateway": GW}, persistence=True)
    b.start()
    yield b
    b.stop()


def _value(rng: random.Random) -> Any:
    pick = rng.randrange(14)
    if pick == 0:
        return rng.randint(-(2**64) + 1, 2**64 - 1)
    if pick == 1:
        return rng.randint(0, 3)
    if pick == 2:
        return "".join(chr(rng.choice([0, 1, 0x1B, 0x7F, 0x85, 0x41, 0x1EA1, 0xD7FF, 0x10FFFF]))
                       for _ in range(rng.randint(0, 8)))  # fmt: skip
    if pick == 3:
        return "x" * rng.choice([0, 8, 16, 17, 32, 33, 48, 49, 64, 65, 500, 501])
    if pick == 4:
        return rng.choice([True, False, None])
    if pick == 5:
        return rng.random() * 10**rng.randint(0, 20)
    if pick == 6:
        return rng.randbytes(rng.randint(0, 20))
    if pick == 7:
        return [_value(rng) for _ in range(rng.randint(0, 3))]
    if pick == 8:
        return {rng.choice(KEYS): _value(rng) for _ in range(rng.randint(0, 3))}
    if pick == 9:
        return rng.choice(["tap", "alarm", "notice", "boot", "grant", "deny", "in", "out", "desfire"])
    if pick == 10:
        return 1_760_000_000 + rng.randint(-10**6, 10**6)
    return rng.randint(0, 2**31)


def _record(rng: random.Random, seq: int) -> bytes:
    mode = rng.randrange(8)
    if mode == 0:  # a valid tap
        return record("tap", 1_760_000_000 + seq, 2, 1, seq, decision="grant", staff=f"CB{seq:06d}")
    base = {3: rng.choice(["tap", "alarm", "notice", ""]), 1: 1_760_000_000 + seq, 2: rng.randint(0, 3)}
    for _ in range(rng.randint(0, 8)):
        base[rng.choice(KEYS)] = _value(rng)
    enc = bytearray(cbor2.dumps(base))
    if mode == 1 and len(base) < 23:  # a repeated key appended, the head's count raised
        enc[0] += 1
        enc += cbor2.dumps(13) + cbor2.dumps(_value(rng))
    elif mode == 2:  # indefinite-length map
        enc = bytearray(b"\xbf") + enc[1:] + b"\xff"
    elif mode == 3 and enc:  # one byte mutated
        enc[rng.randrange(len(enc))] ^= 1 << rng.randrange(8)
    elif mode == 4:  # truncated or extended
        enc = enc[: rng.randrange(len(enc) + 1)] + rng.randbytes(rng.randint(0, 3))
    return bytes(enc)


def messages(rids: list[str], n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rid = rids[i % len(rids)]
        seq = i // len(rids) + 1
        if rng.random() < 0.05:
            payload = rng.randbytes(rng.randint(0, 1100))  # not even sealed
        else:
            payload = seal(reader_key(rid), rid, seq, _record(rng, seq))
        out.append((TOPIC.format(rid), payload))
    return out


def test_fuzz_live_ingest_stores_or_quarantines_everything(
    pg_url: str, tmp_path: Path, broker: Broker
) -> None:
    n = int(os.environ.get("CBCC_FUZZ_N", "3000"))
    seed = int(os.environ.get("CBCC_FUZZ_SEED", "15"))
    rids = reader_ids(20, "fz")
    store = setup_store(pg_url, rids, tmp_path / "master.key")
    s = MqttSettings(host="127.0.0.1", port=broker.port, username="gateway", password=SecretStr(GW),
                     client_id="gw-fuzz", embedded=False)  # fmt: skip
    c = Consumer(s, IngestWriter(store.engine, store.keys),
                 ingest=IngestSettings(batch_max=500, batch_wait_ms=20))  # fmt: skip
    c.start()
    assert c.wait_connected(10)
    msgs = messages(rids, n, seed)
    pub = Publisher(broker.port, "gateway", GW, clients=1, name="fuzz")
    t0 = time.monotonic()

    def total() -> tuple[int, int]:
        with store.engine.connect() as conn:
            ev = conn.execute(sa.select(sa.func.count()).select_from(Event)).scalar_one()
            q = conn.execute(sa.select(sa.func.count()).select_from(Quarantine)).scalar_one()
        return int(ev), int(q)

    try:
        pub.publish_all(msgs)
        pub.wait_acked(n, timeout=120)
        deadline = time.monotonic() + 120
        while sum(total()) < n and time.monotonic() < deadline:
            assert c.health.stuck() is None
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        pub.close()
        c.stop()
    seconds = time.monotonic() - t0
    stored, quarantined = total()
    with store.engine.connect() as conn:
        q = sa.select(Quarantine.reason, sa.func.count()).group_by(Quarantine.reason)  # type: ignore[call-overload]
        reasons = dict(conn.execute(q).all())
    print(f"fuzz live ingest: {n} messages in {seconds:.1f} s: stored {stored}, quarantined {quarantined} "
          f"{reasons}, db failures {c.db_failures}")  # fmt: skip
    assert stored + quarantined == n, (stored, quarantined, reasons)
    assert stored > 0 and quarantined > 0
    store.engine.dispose()
