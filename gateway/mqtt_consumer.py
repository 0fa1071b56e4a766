"""Adapter: events from the broker into :class:`gateway.ingest.IngestWriter`, acknowledged after commit.

paho-mqtt 2 with ``manual_ack=True`` and a persistent session (MQTT 5: ``clean_start`` False and a
session expiry; MQTT 3.1.1, for the embedded amqtt broker: ``clean_session`` False), QoS 1
subscriptions to ``cbcc/v1/r/+/ev``, ``+/status`` and ``+/health`` — through ``$share/<group>/``
when ``shared_group`` is set, so several gateway processes share the readers' load (they keep no
state of their own: PostgreSQL deduplicates).

Threads: paho's network thread only decodes packets and puts messages on a bounded queue (it blocks
when the queue is full, so the broker keeps the rest: with MQTT 5 the Receive Maximum we announce
keeps the broker from sending more un-acknowledged messages than the queue holds). One writer
thread takes batches (``batch_max`` messages or ``batch_wait_ms``), calls ``write_batch`` and only
then acknowledges every message of the batch. If the database fails, the batch is kept and retried
every ``db_retry_s`` while the messages stay un-acknowledged at the broker: ingest pauses, nothing
is lost. A message received on an earlier connection is never acknowledged on a later one (its
packet id may mean something else there); the broker re-sends it and ingest counts a duplicate.

Status (retained, QoS 1) and health (QoS 0) go to the ``on_status`` / ``on_health`` callbacks on a
thread of their own; a status is acknowledged as soon as it is received.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import metrics
from gateway.ingest import BatchResult, Message
from gateway.settings import IngestSettings, MqttSettings

log = logging.getLogger("cbcc.gateway.mqtt")

ROOT = "cbcc/v1/r/"
EVENT_TOPICS = (ROOT + "+/ev", ROOT + "+/status", ROOT + "+/health")
SideCallback = Callable[[str, bytes, float], None]  # (reader id, payload, received at Unix s)


class BatchWriter(Protocol):
    def write_batch(self, msgs: Sequence[Message]) -> BatchResult: ...


class _Item(NamedTuple):
    msg: Message
    qos: int
    gen: int


def subscriptions(shared_group: str | None) -> list[str]:
    prefix = f"$share/{shared_group}/" if shared_group else ""
    return [prefix + t for t in EVENT_TOPICS]


def make_client(s: MqttSettings, *, client_id: str | None = None, manual_ack: bool = True) -> paho.Client:
    """A paho client with the gateway's settings (protocol, session, TLS, credentials, backoff)."""
    v5 = s.protocol == "5"
    kw: dict[str, Any] = {} if v5 else {"clean_session": False}
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or s.client_id,
                    protocol=paho.MQTTv5 if v5 else paho.MQTTv311, manual_ack=manual_ack, **kw)  # fmt: skip
    if s.username:
        c.username_pw_set(s.username, s.password.get_secret_value() or None)
    if s.tls:
        c.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None)
    c.reconnect_delay_set(1, 30)  # exponential backoff, forever (paho's loop thread)
    c.max_inflight_messages_set(1000)  # our own publishes
    c.max_queued_messages_set(0)
    return c


def connect_async(c: paho.Client, s: MqttSettings, receive_max: int) -> None:
    if s.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = receive_max
        c.connect_async(s.host, s.port, keepalive=s.keepalive, clean_start=False, properties=props)
    else:
        c.connect_async(s.host, s.port, keepalive=s.keepalive)


def _rid(topic: str) -> str:
    parts = topic.split("/")
    return parts[3] if len(parts) == 5 else ""


class Consumer:
    def __init__(
        self,
        mqtt_settings: MqttSettings,
        writer: BatchWriter,
        on_status: SideCallback | None = None,
        on_health: SideCallback | None = None,
        *,
        ingest: IngestSettings | None = None,
        receive_max: int | None = None,
        on_batch: Callable[[BatchResult, Sequence[Message]], None] | None = None,
    ) -> None:
        self.settings = mqtt_settings
        self.writer = writer
        self.on_status = on_status
        self.on_health = on_health
        self.on_batch = on_batch
        self.ingest = ingest or IngestSettings()
        # Un-acknowledged messages the broker may send us (MQTT 5); the queue holds them all.
        self.receive_max = receive_max or min(65535, max(1000, 4 * self.ingest.batch_max))
        self._q: queue.Queue[_Item] = queue.Queue(maxsize=self.receive_max + 1000)
        self._side: queue.Queue[tuple[str, str, bytes, float]] = queue.Queue(maxsize=10_000)
        self._gen = 0
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.stored = 0
        self.batches = 0
        self.db_failures = 0
        self._threads: list[threading.Thread] = []
        self.client = make_client(mqtt_settings)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for name, target in (("cbcc-ingest-writer", self._writer_loop), ("cbcc-fleet-side", self._side_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        connect_async(self.client, self.settings, self.receive_max)
        self.client.loop_start()

    def stop(self, timeout: float = 10) -> None:
        """Stop taking messages, finish (commit and ack) the batch in hand, disconnect."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 10) -> bool:
        return self.connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> paho.MQTTMessageInfo:
        """For other modules (time replies, configurations, commands, list chunks)."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---- paho thread: only queue puts and immediate acks ----------------------------------------

    def _on_connect(self, c: paho.Client, _u: Any, flags: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("mqtt connect refused: %s", rc)
            return
        self._gen += 1
        c.subscribe([(t, 1) for t in subscriptions(self.settings.shared_group)])
        metrics.MQTT_CONNECTED.set(1)
        log.info("mqtt connected (session present: %s)", getattr(flags, "session_present", None))
        self.connected.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        log.warning("mqtt disconnected: %s", rc)

    def _on_message(self, c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        topic = m.topic
        now = time.time()
        if topic.endswith("/ev"):
            self._q.put(_Item(Message(topic, bytes(m.payload), m.mid, now), m.qos, self._gen))
            return
        if m.qos:
            c.ack(m.mid, m.qos)
        kind = topic.rsplit("/", 1)[-1]
        if kind in ("status", "health"):
            if kind == "health":
                metrics.HEARTBEATS.inc()
            try:
                self._side.put_nowait((kind, _rid(topic), bytes(m.payload), now))
            except queue.Full:
                log.warning("fleet queue full: %s dropped", kind)

    # ---- writer thread -----------------------------------------------------------------------

    def _take_batch(self) -> list[_Item]:
        try:
            first = self._q.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.ingest.batch_wait_ms / 1000
        limit = self.ingest.batch_max
        get = self._q.get
        while len(batch) < limit:
            try:
                batch.append(get(False))
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _writer_loop(self) -> None:
        batch: list[_Item] = []
        while True:
            if not batch:
                if self._stop.is_set():
                    return
                batch = self._take_batch()
                if not batch:
                    continue
            msgs = [it.msg for it in batch]
            try:
                res = self.writer.write_batch(msgs)
            except Exception as exc:  # the database is away: keep the batch, ack nothing
                self.db_failures += 1
                log.warning("ingest batch of %d not committed (%s); retry in %.1f s", len(batch),
                            type(exc).__name__, self.ingest.db_retry_s)  # fmt: skip
                if self._stop.wait(self.ingest.db_retry_s):
                    return  # stopping: the broker re-sends what was not acknowledged
                continue
            gen = self._gen
            ack = self.client.ack
            for it in batch:
                if it.qos and it.gen == gen:
                    ack(it.msg.mid, it.qos)
            self.stored += res.stored
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(res, msgs)
            batch = []

    # ---- status and health -------------------------------------------------------------------

    def _side_loop(self) -> None:
        while not self._stop.is_set():
            try:
                kind, rid, payload, at = self._side.get(timeout=0.2)
            except queue.Empty:
                continue
            cb = self.on_status if kind == "status" else self.on_health
            if cb is None:
                continue
            try:
                cb(rid, payload, at)
            except Exception:
                log.exception("%s callback failed for %s", kind, rid)


class BareDrain:
    """Benchmark baseline: the same paho settings, every message acknowledged at once, nothing else."""

    def __init__(self, mqtt_settings: MqttSettings, *, receive_max: int = 8000) -> None:
        self.settings = mqtt_settings
        self.receive_max = receive_max
        self.count = 0
        self._cond = threading.Condition()
        self.client = make_client(mqtt_settings)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if not rc.is_failure:
            c.subscribe([(t, 1) for t in subscriptions(self.settings.shared_group)])

    def _on_message(self, c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        if m.qos:
            c.ack(m.mid, m.qos)
        self.count += 1
        if self.count % 1000 == 0:
            with self._cond:
                self._cond.notify_all()

    def start(self) -> None:
        connect_async(self.client, self.settings, self.receive_max)
        self.client.loop_start()

    def wait(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
