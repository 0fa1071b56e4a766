"""A host-side stand-in for the gateway's side of the MQTT contract (docs/mqtt.md), for tests.

Built on paho-mqtt (MQTT v5), cbor2, Python's ``hmac`` and the provisioning signing code, and on
nothing of the firmware: it checks what readers send independently of the code that sent it.

- Events: opens every sealed event (``[1, seq, record, mac]``) with the reader's key, stores each
  ``(rid, seq)`` once, counts duplicates (same record again: fine, at-least-once on the wire) and
  conflicts (same number, different record: never fine), quarantines bad MACs and notes records
  whose first arrival is out of sequence order; ``gaps(rid)`` lists numbers never seen.
- Status and health: keeps every map received; answers each heartbeat with a time reply
  (``time_mode``: "ok", "off", "bad_mac" or "stale" to test the reader's refusals).
- Downlink: signed configurations, commands (one increasing command counter for all readers and
  the broadcast topic), list manifests with retained chunks, raw publishes for garbage.

The real gateway (a later issue) replaces this; it is deliberately small.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cbor2
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from trustcore import cbor_det, cose, keys

ROOT = "cbcc/v1/"


def seal_input(rid: str, seq: int) -> bytes:
    r = rid.encode()
    return b"cbcc-ev1" + bytes([len(r)]) + r + seq.to_bytes(8, "big")


def time_mac(key: bytes, rid: str, nonce: bytes, unix_ms: int) -> bytes:
    msg = b"cbcc-time1" + rid.encode() + nonce + unix_ms.to_bytes(8, "big")
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass
class ReaderView:
    """What the gateway knows of one reader."""

    records: dict[int, bytes] = field(default_factory=dict)  # seq -> record bytes, stored once
    first_seen: list[int] = field(default_factory=list)       # seqs in order of first arrival
    duplicates: int = 0
    conflicts: list[int] = field(default_factory=list)
    out_of_order: int = 0
    quarantine: list[str] = field(default_factory=list)
    status: list[dict[int, Any]] = field(default_factory=list)
    health: list[dict[int, Any]] = field(default_factory=list)
    nonces: list[bytes] = field(default_factory=list)
    time_replies: int = 0


class GatewayDouble:
    def __init__(
        self,
        port: int,
        password: str,
        mac_keys: dict[str, bytes],
        config_key: keys.PrivateKey,
        *,
        host: str = "127.0.0.1",
        user: str = "gateway",
        client_id: str = "gw-double",
    ) -> None:
        self.mac_keys = mac_keys
        self.config_key = config_key
        self.readers: dict[str, ReaderView] = {}
        self.time_mode = "ok"
        self.time_offset_ms = 0
        self.cmd_seq = 0
        self.cond = threading.Condition()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.c.username_pw_set(user, password)
        self.c.reconnect_delay_set(1, 2)
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self._subscribed = threading.Event()
        # A persistent session, as the real gateway keeps: what readers send while it is away
        # (a broker restart, its own reconnect) is queued for it, not dropped.
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.c.connect(host, port, clean_start=False, properties=props)
        self.c.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("gateway double did not connect")

    # ---- connection ------------------------------------------------------------------------

    def _on_connect(self, c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            return
        c.subscribe([(ROOT + "r/+/ev", 1), (ROOT + "r/+/status", 1), (ROOT + "r/+/health", 1)])
        self._subscribed.set()

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()

    def reader(self, rid: str) -> ReaderView:
        with self.cond:
            return self.readers.setdefault(rid, ReaderView())

    # ---- receiving ---------------------------------------------------------------------------

    def _on_message(self, _c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        parts = m.topic.split("/")
        if len(parts) != 5 or parts[:3] != ["cbcc", "v1", "r"]:
            return
        rid, kind = parts[3], parts[4]
        payload = bytes(m.payload)
        with self.cond:
            view = self.readers.setdefault(rid, ReaderView())
            if kind == "ev":
                self._event(rid, view, payload)
            elif kind == "status":
                view.status.append(self._map(payload))
            elif kind == "health":
                h = self._map(payload)
                view.health.append(h)
                nonce = h.get(8)
                if isinstance(nonce, bytes):
                    view.nonces.append(nonce)
                    self._answer_time(rid, view)
            self.cond.notify_all()

    @staticmethod
    def _map(payload: bytes) -> dict[int, Any]:
        try:
            m = cbor2.loads(payload)
        except Exception:  # a broken status is recorded as empty
            return {}
        return m if isinstance(m, dict) else {}

    def _event(self, rid: str, view: ReaderView, payload: bytes) -> None:
        key = self.mac_keys.get(rid)
        if key is None:
            view.quarantine.append("unknown reader")
            return
        try:
            w = cbor2.loads(payload)
        except Exception:
            view.quarantine.append("not CBOR")
            return
        if not (isinstance(w, list) and len(w) == 4 and w[0] == 1 and type(w[1]) is int and w[1] >= 0
                and isinstance(w[2], bytes) and isinstance(w[3], bytes)):  # fmt: skip
            view.quarantine.append("not a sealed event")
            return
        seq, rec, tag = w[1], w[2], w[3]
        want = hmac.new(key, seal_input(rid, seq) + rec, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, want):
            view.quarantine.append(f"bad MAC for seq {seq}")
            return
        held = view.records.get(seq)
        if held is not None:
            if held == rec:
                view.duplicates += 1
            else:
                view.conflicts.append(seq)
            return
        if view.first_seen and seq < max(view.records):
            view.out_of_order += 1
        view.records[seq] = rec
        view.first_seen.append(seq)

    def _answer_time(self, rid: str, view: ReaderView) -> None:
        key = self.mac_keys.get(rid)
        if key is None or self.time_mode == "off":
            return
        nonce = view.nonces[-1]
        if self.time_mode == "stale":
            if len(view.nonces) < 2:
                return
            nonce = view.nonces[-2]
        ms = int(time.time() * 1000) + self.time_offset_ms
        tag = time_mac(key, rid, nonce, ms)
        if self.time_mode == "bad_mac":
            tag = bytes([tag[0] ^ 1]) + tag[1:]
        self.c.publish(ROOT + f"r/{rid}/time", cbor2.dumps([nonce, ms, tag]), qos=0)
        view.time_replies += 1

    # ---- views -------------------------------------------------------------------------------

    def records(self, rid: str) -> list[tuple[int, dict[int, Any]]]:
        with self.cond:
            view = self.readers.get(rid, ReaderView())
            return [(s, cbor2.loads(view.records[s])) for s in sorted(view.records)]

    def notices(self, rid: str) -> list[dict[str, Any]]:
        """The DETAIL of every notice record (what the reader's on_applied journalled)."""
        return [r[22] for _, r in self.records(rid) if r.get(3) == "notice" and isinstance(r.get(22), dict)]

    def gaps(self, rid: str, upto: int | None = None) -> list[int]:
        with self.cond:
            have = set(self.readers.get(rid, ReaderView()).records)
        top = upto if upto is not None else max(have, default=0)
        return [s for s in range(1, top + 1) if s not in have]

    def last_status(self, rid: str) -> dict[int, Any]:
        with self.cond:
            view = self.readers.get(rid)
            return dict(view.status[-1]) if view and view.status else {}

    def wait(self, pred: Callable[[], bool], timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def wait_records(self, rid: str, n: int, timeout: float = 20) -> bool:
        return self.wait(lambda: len(self.readers.get(rid, ReaderView()).records) >= n, timeout)

    # ---- sending -----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        self.c.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def sign(self, payload: dict[int, Any], key: keys.PrivateKey | None = None) -> bytes:
        return cose.sign1(cbor_det.dumps(payload), key or self.config_key, alg=cose.ALG_RS256)

    def send_config(self, rid: str, blob: bytes) -> None:
        self.publish(ROOT + f"r/{rid}/cfg", blob, retain=True)

    def command_blob(
        self,
        target: str,
        action: str,
        args: Any = None,
        *,
        seq: int | None = None,
        exp: int | None = None,
        iat: int | None = None,
        key: keys.PrivateKey | None = None,
    ) -> bytes:
        if seq is None:
            self.cmd_seq += 1
            seq = self.cmd_seq
        now = int(time.time())
        payload = {0: "cmd", 1: 1, 2: seq, 3: now if iat is None else iat, 4: target,
                   5: now + 300 if exp is None else exp, 6: action, 7: args}  # fmt: skip
        return self.sign(payload, key)

    def send_command(self, target: str, blob: bytes) -> None:
        topic = ROOT + ("all/cmd" if target == "*" else f"r/{target}/cmd")
        self.publish(topic, blob)

    def manifest_blob(
        self,
        kind: str,
        obj: bytes,
        seq: int,
        chunk: int,
        *,
        sha: bytes | None = None,
        key: keys.PrivateKey | None = None,
    ) -> bytes:
        digest = hashlib.sha256(obj).digest() if sha is None else sha
        payload = {0: "manifest", 1: 1, 2: seq, 3: int(time.time()), 4: kind, 5: len(obj), 6: digest,
                   7: chunk}  # fmt: skip
        return self.sign(payload, key)

    def send_chunks(self, obj: bytes, chunk: int, indices: Iterable[int] | None = None,
                    sha: bytes | None = None) -> None:  # fmt: skip
        sha8 = (hashlib.sha256(obj).digest() if sha is None else sha)[:4].hex()
        n = (len(obj) + chunk - 1) // chunk
        for i in range(n) if indices is None else indices:
            self.publish(ROOT + f"all/blob/{sha8}/{i}", obj[i * chunk:(i + 1) * chunk], retain=True)

    def send_manifest(self, kind: str, manifest: bytes) -> None:
        self.publish(ROOT + f"all/{kind}", manifest, retain=True)

    def offer_list(self, kind: str, obj: bytes, seq: int, chunk: int = 1024) -> None:
        """The whole object as retained chunks, then its manifest (retained)."""
        self.send_chunks(obj, chunk)
        self.send_manifest(kind, self.manifest_blob(kind, obj, seq, chunk))

    def clear_retained(self, topic: str) -> None:
        self.publish(topic, b"", retain=True)
