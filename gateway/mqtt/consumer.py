"""Adapter: events from the broker into :class:`gateway.ingest.IngestWriter`, acknowledged after commit.

paho-mqtt 2 with ``manual_ack=True`` and a persistent session (MQTT 5: ``clean_start`` False and a
session expiry; MQTT 3.1.1, for the embedded amqtt broker: ``clean_session`` False), QoS 1
subscriptions to ``cbcc/v1/r/+/ev``, ``+/status`` and ``+/health`` — through ``$share/<group>/``
when ``shared_group`` is set, so several gateway processes share the readers' load (they keep no
state of their own: PostgreSQL deduplicates).

Threads: paho's network thread (an :class:`IngestClient`: buffered reads, a direct path for QoS 1
PUBLISH without properties) only decodes packets and appends messages to a bounded deque (it waits
when the deque is full, so the broker keeps the rest: with MQTT 5 the Receive Maximum we announce
keeps the broker from sending more un-acknowledged messages than the deque holds). One writer
thread takes batches (``batch_max`` messages or ``batch_wait_ms``), calls ``write_batch`` — in this
process or, with ``ingest.workers = 1``, in a worker process (:mod:`gateway.ingest_worker`) — and
only then acknowledges every message of the batch (one write of PUBACKs). If the database fails,
the batch is kept and retried every ``db_retry_s`` while the messages stay un-acknowledged at the
broker: ingest pauses, nothing is lost. A message received on an earlier connection is never
acknowledged on a later one (its packet id may mean something else there); the broker re-sends it
and ingest counts a duplicate.

Status (retained, QoS 1) and health (QoS 0) go to the ``on_status`` / ``on_health`` callbacks on a
thread of their own; a status is acknowledged as soon as it is received.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import metrics
from gateway.ingest import BatchResult, Message
from gateway.ingest_health import IngestHealth
from gateway.settings import IngestSettings, MqttSettings
from messages import _

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


_PUBACK = 0x40
LINGER_STEP_S = 0.002  # a batch of at most LONE_MAX stops lingering after a step with no new message
LONE_MAX = 8


class _BufferedSocket:
    """The broker's socket read in 64 KiB chunks: paho reads a packet in three ``recv`` calls (type
    byte, length bytes one by one, body), each a system call on a plain socket; here they are served
    from memory. ``pending()`` tells paho's loop that buffered bytes are waiting (paho already asks
    it of TLS sockets), so nothing stalls in the buffer. Everything else goes to the real socket."""

    __slots__ = ("_buf", "_pos", "_s")

    def __init__(self, s: Any) -> None:
        self._s = s
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        pos = self._pos
        buf = self._buf
        if pos >= len(buf):
            data: bytes = self._s.recv(65536 if n < 65536 else n)  # BlockingIOError passes through
            if len(data) <= n:
                self._buf, self._pos = b"", 0
                return data
            self._buf, self._pos = data, n
            return data[:n]
        end = pos + n
        self._pos = end
        return buf[pos:end]

    def pending(self) -> int:
        inner = getattr(self._s, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)


EventSink = Callable[[str, bytes, int], None]  # (topic, payload, packet id) of a QoS 1 PUBLISH


class IngestClient(paho.Client):
    """paho's client with the per-message work of a high-rate QoS 1 subscriber cut down.

    - the socket is read in large chunks (:class:`_BufferedSocket`) and ``loop_read`` handles every
      packet already received instead of one per ``select()``;
    - a QoS 1 PUBLISH without MQTT 5 properties (what readers send: they speak 3.1.1) is decoded
      here in a few slices and handed to ``event_sink(topic, payload, mid)`` — no MQTTMessage, no
      ``Properties`` object (paho builds one for every MQTT 5 PUBLISH even when it is empty: most
      of its per-message time), no topic matching. Anything else (QoS 0/2, properties, an empty
      topic, bad UTF-8, no sink) goes through paho's own path and ``on_message``;
    - :meth:`ack_many` queues the PUBACKs of a whole batch as one write.

    Only paho's internal hooks are overridden (``_create_socket``, ``loop_read``, ``_handle_publish``,
    ``_packet_queue``); :data:`FAST_OK` is False if this paho lacks them, and :func:`make_client`
    then returns the plain client. ``tests/gateway/test_gateway_ingest.py`` checks the decoding against
    paho's own for both protocols.
    """

    event_sink: EventSink | None = None
    after_read: Callable[[], None] | None = None  # on the network thread, after each burst of reads

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return sock if self._transport == "websockets" else _BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _round in range(2000):  # then let the loop write (acks) and check keepalive
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        if self.after_read is not None:
            self.after_read()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: paho.MQTTMessageInfo | None = None) -> MQTTErrorCode:  # fmt: skip
        # On the network thread itself (acks sent from a callback) there is no select() to wake:
        # the loop writes what is queued on its next turn. paho writes a byte to its wake-up
        # socket for every packet; that system call per message is skipped here.
        t = self._thread
        if t is not None and t.ident == threading.get_ident():
            self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0,
                                     "to_process": len(packet), "packet": packet, "info": info})  # fmt: skip
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_queue(command, packet, mid, qos, info)

    def _handle_publish(self) -> MQTTErrorCode:
        sink = self.event_sink
        header = self._in_packet["command"]
        if sink is None or (header & 0x06) != 0x02:  # not QoS 1
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            p = 2 + ((packet[0] << 8) | packet[1])
            topic = bytes(packet[2:p]).decode()
            mid = (packet[p] << 8) | packet[p + 1]
            p += 2
            if self._protocol == paho.MQTTv5:
                if packet[p] != 0:  # properties: paho's path
                    return super()._handle_publish()
                p += 1
        except (IndexError, UnicodeDecodeError):
            return super()._handle_publish()  # paho reports it its way
        if not topic or mid == 0:
            return super()._handle_publish()
        with self._in_callback_mutex:
            sink(topic, bytes(packet[p:]), mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS if self._manual_ack else self._send_puback(mid)

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each of these QoS 1 packet ids, as one queued write (manual_ack mode)."""
        if not mids:
            return
        packet = b"".join([_PUBACK_HEAD + m.to_bytes(2, "big") for m in mids])
        self._packet_queue(_PUBACK, packet, 0, 0)


_PUBACK_HEAD = bytes((_PUBACK, 2))
_HOOKS = ("_create_socket", "loop_read", "_handle_publish", "_packet_queue", "_packet_read",
          "_loop_rc_handle")  # fmt: skip
FAST_OK = all(callable(getattr(paho.Client, n, None)) for n in _HOOKS)


def make_client(s: MqttSettings, *, client_id: str | None = None, manual_ack: bool = True,
                fast: bool = True) -> paho.Client:  # fmt: skip
    """A paho client with the gateway's settings (protocol, session, TLS, credentials, backoff);
    an :class:`IngestClient` unless ``fast`` is False (or this paho lacks the hooks it uses)."""
    v5 = s.protocol == "5"
    kw: dict[str, Any] = {} if v5 else {"clean_session": False}
    cls = IngestClient if fast and FAST_OK else paho.Client
    c = cls(CallbackAPIVersion.VERSION2, client_id=client_id or s.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311, manual_ack=manual_ack, **kw)  # fmt: skip
    if s.username:
        c.username_pw_set(s.username, s.password.get_secret_value() or None)
    if s.tls:
        c.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None)
    c.reconnect_delay_set(1, 30)  # exponential backoff, forever (paho's loop thread)
    c.max_inflight_messages_set(1000)  # our own publishes
    c.max_queued_messages_set(0)
    return c


def ack_all(c: paho.Client, mids: Sequence[int]) -> None:
    """PUBACK these QoS 1 messages (one write with an :class:`IngestClient`)."""
    if isinstance(c, IngestClient):
        c.ack_many(mids)
    else:
        for mid in mids:
            c.ack(mid, 1)


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
        fast: bool = True,
    ) -> None:
        self.settings = mqtt_settings
        self.writer = writer
        self.on_status = on_status
        self.on_health = on_health
        self.on_batch = on_batch
        self.ingest = ingest or IngestSettings()
        # Un-acknowledged messages the broker may send us (MQTT 5); the queue holds them all.
        self.receive_max = receive_max or min(65535, max(1000, 4 * self.ingest.batch_max))
        # Events waiting for the writer. A deque (the network thread only appends; the writer
        # wakes itself on an Event when it was idle): a queue.Queue costs a lock and a notify per
        # message. Bounded: beyond ``_cap`` the network thread waits (MQTT 3.1.1 has no Receive
        # Maximum, so there the broker's in-flight limit and TCP hold the rest).
        self._cap = self.receive_max + 1000
        self._dq: deque[_Item] = deque()
        self._idle = False
        self._wake = threading.Event()
        self._side: queue.Queue[tuple[str, str, bytes, float]] = queue.Queue(maxsize=10_000)
        self._gen = 0
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.stored = 0
        self.batches = 0
        self.db_failures = 0
        self.health = IngestHealth(self.ingest.stuck_after_s)
        self._threads: list[threading.Thread] = []
        self.client = make_client(mqtt_settings, fast=fast)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        if isinstance(self.client, IngestClient):
            self.client.event_sink = self._on_publish

    @property
    def queued(self) -> int:
        """Events received and not yet committed-and-acknowledged nor taken by the writer."""
        return len(self._dq)

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
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        _drain_writes(self.client)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 10) -> bool:
        return self.connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> paho.MQTTMessageInfo:
        """For other modules (time replies, configurations, commands, list chunks)."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---- paho thread: only queue appends and immediate acks -------------------------------------

    def _on_connect(self, c: paho.Client, _u: Any, flags: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning(_("mqtt connect refused: {reason}", reason=rc))
            return
        self._gen += 1
        c.subscribe([(t, 1) for t in subscriptions(self.settings.shared_group)])
        metrics.MQTT_CONNECTED.set(1)
        log.info(
            _("mqtt connected (session present: {present})", present=getattr(flags, "session_present", None))
        )
        self.connected.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        log.warning(_("mqtt disconnected: {reason}", reason=rc))

    def _enqueue(self, item: _Item) -> None:
        dq = self._dq
        while len(dq) >= self._cap and not self._stop.is_set():
            self._wake.set()
            time.sleep(0.01)
        dq.append(item)
        if self._idle:
            self._idle = False
            self._wake.set()

    def _on_publish(self, topic: str, payload: bytes, mid: int) -> None:
        """A QoS 1 PUBLISH without properties (:class:`IngestClient`'s direct path)."""
        if topic.endswith("/ev"):
            self._enqueue(_Item(Message(topic, payload, mid, time.time()), 1, self._gen))
        else:
            self._side_message(topic, payload, mid, 1)

    def _on_message(self, c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        topic = m.topic
        if topic.endswith("/ev"):
            self._enqueue(_Item(Message(topic, bytes(m.payload), m.mid, time.time()), m.qos, self._gen))
        else:
            self._side_message(topic, bytes(m.payload), m.mid, m.qos)

    def _side_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        if qos:
            self.client.ack(mid, qos)
        kind = topic.rsplit("/", 1)[-1]
        if kind in ("status", "health"):
            if kind == "health":
                metrics.HEARTBEATS.inc()
            try:
                self._side.put_nowait((kind, _rid(topic), payload, time.time()))
            except queue.Full:
                log.warning(_("fleet queue full: {kind} dropped", kind=kind))

    # ---- writer thread -----------------------------------------------------------------------

    def _take_batch(self) -> list[_Item]:
        dq = self._dq
        if not dq:
            self._wake.clear()
            self._idle = True
            if not dq:
                self._wake.wait(0.2)
            self._idle = False
            if not dq:
                return []
        limit = self.ingest.batch_max
        deadline = time.monotonic() + self.ingest.batch_wait_ms / 1000
        # A lone tap (a few messages, then a quiet step) is committed at once, and so shown in
        # the console's live feed, instead of after the whole batch_wait_ms; under load the batch
        # lingers as before (smaller batches there cost more commits and confirmations: the
        # paced-rate latency got worse when any quiet step ended the linger).
        have = len(dq)
        while have < limit and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, LINGER_STEP_S))
            if len(dq) == have and have <= LONE_MAX:
                break
            have = len(dq)
        pop = dq.popleft
        return [pop() for _i in range(min(len(dq), limit))]

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
            except Exception as exc:  # the database (or the worker) is away: keep the batch, ack nothing
                self.db_failures += 1
                self.health.failed(exc)
                log.warning(
                    _(
                        "ingest batch of {count} not committed ({error}); retry in {seconds:.1f} s",
                        count=len(batch),
                        error=type(exc).__name__,
                        seconds=self.ingest.db_retry_s,
                    )
                )
                if self._stop.wait(self.ingest.db_retry_s):
                    return  # stopping: the broker re-sends what was not acknowledged
                continue
            self.health.committed()
            gen = self._gen
            ack_all(self.client, [it.msg.mid for it in batch if it.qos == 1 and it.gen == gen])
            for topic, payload in res.acks:  # end to end: the readers may now forget these records
                self.client.publish(topic, payload, qos=1)
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
                log.exception(_("{kind} callback failed for {id}", kind=kind, id=rid))


class BareDrain:
    """Benchmark baseline: the same paho settings, every message acknowledged at once, nothing else.

    ``fast=True``: the same :class:`IngestClient` the gateway uses, acknowledging each burst of
    reads in one write; ``fast=False``: paho's stock client, ``ack()`` in ``on_message``."""

    def __init__(self, mqtt_settings: MqttSettings, *, receive_max: int = 8000, fast: bool = True) -> None:
        self.settings = mqtt_settings
        self.receive_max = receive_max
        self.count = 0
        self._cond = threading.Condition()
        self._mids: list[int] = []
        self.client = make_client(mqtt_settings, fast=fast)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        if isinstance(self.client, IngestClient):
            self.client.event_sink = self._on_publish
            self.client.after_read = self._flush

    def _on_connect(self, c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if not rc.is_failure:
            c.subscribe([(t, 1) for t in subscriptions(self.settings.shared_group)])

    def _on_publish(self, _topic: str, _payload: bytes, mid: int) -> None:
        self._mids.append(mid)

    def _flush(self) -> None:
        mids = self._mids
        if mids:
            self._mids = []
            ack_all(self.client, mids)
            self._counted(len(mids))

    def _on_message(self, c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        if m.qos:
            c.ack(m.mid, m.qos)
        self._counted(1)

    def _counted(self, k: int) -> None:
        before = self.count
        self.count += k
        if self.count // 1000 != before // 1000:
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
        _drain_writes(self.client)
        self.client.disconnect()
        self.client.loop_stop()


def _drain_writes(c: paho.Client, timeout: float = 2.0, grace: float = 0.3) -> None:
    """Before DISCONNECT: let the network thread write the queued acknowledgements, and give the
    broker a moment to read them (acks still unread when the socket closes were seen lost with
    Mosquitto: the messages then come again, as duplicates)."""
    deadline = time.monotonic() + timeout
    while c.want_write() and c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    if c.is_connected():
        time.sleep(grace)
