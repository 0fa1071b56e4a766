"""A paho test client for broker tests (Mosquitto and the embedded broker): CONNACK, SUBACK and
messages land in queues so tests wait on them with deadlines."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties


class Peer:
    """A paho client that connects at construction; ``rc`` is the CONNACK reason code."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        ca: Path | None = None,
        host: str = "127.0.0.1",
        client_id: str = "",
        protocol: int = paho.MQTTv311,
        clean: bool = True,
        manual_ack: bool = False,
        properties: Properties | None = None,
    ) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[Any] = queue.Queue()
        self._suback: queue.Queue[list[Any]] = queue.Queue()
        self.disconnected = False
        v5 = protocol == paho.MQTTv5
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                             clean_session=None if v5 else clean, manual_ack=manual_ack)  # fmt: skip
        self.c.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self.c.on_message = lambda _c, _u, m: self.messages.put(m)
        self.c.on_subscribe = lambda _c, _u, _m, rcs, _p: self._suback.put(list(rcs))
        self.c.on_disconnect = lambda *_a: setattr(self, "disconnected", True)
        if user is not None:
            self.c.username_pw_set(user, password)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca))
        kw: dict[str, Any] = {"clean_start": clean, "properties": properties} if v5 else {}
        self.c.connect(host, port, keepalive=30, **kw)
        self.c.loop_start()
        try:
            self.rc: Any = self._connack.get(timeout=10)
        except queue.Empty:  # no CONNACK at all (a broker that drops the connection)
            self.rc = None
        if self.rc is None or self.rc.is_failure:
            self.c.loop_stop()

    @property
    def ok(self) -> bool:
        return self.rc is not None and not self.rc.is_failure

    def subscribe(self, *topics: str) -> list[int]:
        out = []
        for t in topics:
            self.c.subscribe(t, qos=1)
            out += [int(rc.value) for rc in self._suback.get(timeout=5)]
        return out

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def take(self, n: int, timeout: float = 5) -> list[paho.MQTTMessage]:
        out: list[paho.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            try:
                out.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def drain(self, wait: float = 0.7) -> list[tuple[str, bytes]]:
        return [(m.topic, m.payload) for m in self.take(10_000, timeout=wait)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self) -> None:
        """Cut the connection without DISCONNECT (a crashed gateway)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()
