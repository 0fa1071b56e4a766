"""Helpers shared by the ingest tests and the ingest benchmark: a database with registered readers,
correctly sealed events (HMAC computed here as docs/mqtt.md says, independently of the firmware),
a fast MQTT publisher, and the broker settings ingest needs (persistence, deep queues)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway import db
from gateway.registry import KeyCache, register
from gateway.sealed import seal
from gateway.secretbox import SecretBox

TOPIC = "cbcc/v1/r/{}/ev"


def reader_key(rid: str) -> bytes:
    """Deterministic per-reader key, so a child process can compute the same keys."""
    return hashlib.sha256(b"cbcc-test-key:" + rid.encode()).digest()


def reader_ids(n: int, prefix: str = "rd") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


@dataclass
class Store:
    url: str
    engine: Engine
    box: SecretBox
    keys: KeyCache
    mac: dict[str, bytes]


def setup_store(url: str, rids: Iterable[str], master_key: Path) -> Store:
    """Migrate ``url``, register the readers (keys from :func:`reader_key`), load a key cache."""
    db.migrate(url)
    engine = db.make_engine(url)
    box = SecretBox.from_file(master_key, create=True)
    mac = {}
    with Session(engine) as s:
        for rid in rids:
            mac[rid] = reader_key(rid)
            register(s, box, rid, mac_key=mac[rid])
        s.commit()
    keys = KeyCache(engine, box)
    keys.load_all()
    return Store(url, engine, box, keys, mac)


def record(kind: str = "tap", t: int = 1_760_000_000, tq: int = 2, boot: int = 1, uptime_ms: int = 1000,
           **fields: Any) -> bytes:  # fmt: skip
    names = {"decision": 10, "reason": 11, "serial": 12, "staff": 13, "tech": 14, "anti_clone": 15,
             "door": 16, "direction": 17, "punch": 18, "alarm": 20, "active": 21, "detail": 22}  # fmt: skip
    m: dict[int, Any] = {3: kind, 1: t, 2: tq, 4: boot, 5: uptime_ms}
    for k, v in fields.items():
        m[names[k]] = v
    return bytes(cbor2.dumps(m))


def tap(rid: str, seq: int, *, t: int | None = None, tq: int = 2, boot: int = 1, uptime_ms: int | None = None,
        serial: int | None = None) -> bytes:  # fmt: skip
    """A sealed tap event of reader ``rid`` numbered ``seq`` (deterministic content)."""
    rec = record("tap", t if t is not None else 1_760_000_000 + seq, tq, boot,
                 uptime_ms if uptime_ms is not None else 1000 * seq, decision="grant", reason="ok",
                 serial=serial if serial is not None else 100000 + seq, staff=f"S{seq % 997:05d}",
                 tech="desfire", anti_clone=True, door="d1", direction="in")  # fmt: skip
    return seal(reader_key(rid), rid, seq, rec)


def event_stream(rids: list[str], total: int, start_seq: int = 1) -> Iterator[tuple[str, bytes]]:
    """``total`` events spread round-robin over the readers, each reader's seqs in order."""
    n = len(rids)
    for i in range(total):
        rid = rids[i % n]
        yield TOPIC.format(rid), tap(rid, start_seq + i // n)


def expected_keys(rids: list[str], total: int, start_seq: int = 1) -> set[tuple[str, int]]:
    n = len(rids)
    return {(rids[i % n], start_seq + i // n) for i in range(total)}


class Publisher:
    """A fast QoS 1 publisher: several paho clients (MQTT 3.1.1), many messages in flight each."""

    def __init__(self, port: int, user: str, password: str, *, clients: int = 2, inflight: int = 2000,
                 name: str = "pub", window: int = 20_000) -> None:  # fmt: skip
        # paho numbers a message when publish() is called and keys its outgoing store by that number,
        # so more than 65535 un-acknowledged messages per client would overwrite each other: the
        # publisher keeps at most ``window`` un-acknowledged in total.
        self.window = window
        self.clients: list[paho.Client] = []
        self._acked = 0
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        for i in range(clients):
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.getpid()}-{i}",
                            protocol=paho.MQTTv311, clean_session=True)  # fmt: skip
            c.username_pw_set(user, password)
            c.max_inflight_messages_set(inflight)
            c.max_queued_messages_set(0)
            c.reconnect_delay_set(0.2, 2)
            c.on_publish = self._on_publish
            c.connect("127.0.0.1", port, keepalive=60)
            c.loop_start()
            self.clients.append(c)
        deadline = time.monotonic() + 10
        while not all(c.is_connected() for c in self.clients):
            if time.monotonic() > deadline:
                raise RuntimeError("publisher did not connect")
            time.sleep(0.02)

    def _on_publish(self, _c: paho.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            self._acked += 1
            if self._acked % 500 == 0:
                self._done.notify_all()

    @property
    def acked(self) -> int:
        with self._lock:
            return self._acked

    def publish_all(self, msgs: Iterable[tuple[str, bytes]], *, rate: float | None = None,
                    on_sent: Any = None) -> int:  # fmt: skip
        """Publish; ``rate`` paces to that many messages per second. Returns the count sent."""
        n = 0
        t0 = time.perf_counter()
        clients = self.clients
        k = len(clients)
        for topic, payload in msgs:
            if rate is not None:
                due = t0 + n / rate
                while True:
                    now = time.perf_counter()
                    if now >= due:
                        break
                    time.sleep(min(due - now, 0.002))
            if n - self._acked >= self.window:
                with self._done:
                    while n - self._acked >= self.window:
                        self._done.wait(0.05)
            if on_sent is not None:
                on_sent(topic, payload)
            clients[n % k].publish(topic, payload, qos=1)
            n += 1
        return n

    def wait_acked(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with self._done:
            while self._acked < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"publisher: {self._acked} of {n} acknowledged")
                self._done.wait(min(left, 0.2))

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()
