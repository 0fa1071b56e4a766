# A compact asyncio MQTT 3.1.1 client for the reader (MicroPython; also runs on CPython).
#
# Why our own: micropython-lib's umqtt is blocking (a stalled broker would stall the door
# loop), and the well-known asyncio clients are not installable from the registries a build
# machine here can reach. This one does what a reader needs and no more: CONNECT with
# username/password and a Last Will, TLS through an ssl context (broker CA pinned by the
# caller), keepalive, QoS 0/1 publish with a bounded in-flight window, QoS 1 subscriptions
# whose messages are acknowledged only after the handler has returned, and a hard cap on
# incoming packet size. It never reconnects by itself: one Client is one connection; the
# uplink owns the reconnect policy (exponential backoff, never giving up).
import asyncio
import struct

from ticks import elapsed_ms, ticks_ms

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

CONNACK_TEXT = {1: "bad protocol version", 2: "client id rejected", 3: "server unavailable",
                4: "bad username or password", 5: "not authorised"}


class MQTTError(Exception):
    pass


def _str(b):
    if isinstance(b, str):
        b = b.encode()
    if len(b) > 0xFFFF:
        raise MQTTError("string too long")
    return struct.pack("!H", len(b)) + b


def _remaining_length(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def packet(first_byte, body):
    return bytes((first_byte,)) + _remaining_length(len(body)) + body


def connect_packet(client_id, user, password, keepalive, will, clean):
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will is not None:
        topic, message, retain, qos = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _str(topic) + _str(message)
    if user is not None:
        flags |= 0x80
        payload += _str(user)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    return packet(CONNECT, _str(b"MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive) + payload)


def publish_packet(topic, payload, qos, retain, pid, dup=False):
    first = PUBLISH | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _str(topic)
    if qos:
        body += struct.pack("!H", pid)
    return packet(first, body + payload)


def parse_publish(first, body):
    """Split an incoming PUBLISH into (topic, payload, qos, retain, pid); MQTTError if malformed."""
    qos = (first >> 1) & 3
    if qos == 3 or len(body) < 2:
        raise MQTTError("malformed publish")
    n = (body[0] << 8) | body[1]
    pos = 2 + n
    if pos > len(body):
        raise MQTTError("malformed publish")
    try:
        topic = str(body[2:pos], "utf-8")
    except Exception:
        raise MQTTError("topic not utf-8")
    pid = 0
    if qos:
        if pos + 2 > len(body):
            raise MQTTError("malformed publish")
        pid = (body[pos] << 8) | body[pos + 1]
        pos += 2
    return topic, body[pos:], qos, bool(first & 1), pid


class Client:
    """One MQTT connection. handler(topic, payload, retained) may be a plain function or a
    coroutine function; for QoS 1 messages the PUBACK goes out after it returns, so a message
    the reader failed to take (an exception) is redelivered by the broker on the next session."""

    def __init__(self, client_id, user=None, password=None, keepalive=60, will=None, clean=True,
                 max_packet=8192, handler=None, window=8, skip_oversize=False):
        self.client_id = client_id
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.will = will
        self.clean = clean
        self.max_packet = max_packet
        self.handler = handler
        self.window = window
        # skip_oversize: an incoming PUBLISH beyond max_packet is read and discarded in small
        # pieces (topic and packet id kept, the handler sees an empty payload and `truncated` is
        # set) instead of ending the connection. With a persistent session the broker would
        # otherwise resend it on every reconnect and the link would never come up.
        self.skip_oversize = skip_oversize
        self.truncated = False
        self.connected = False
        self.session_present = False
        self.error = None
        self._r = None
        self._w = None
        self._pid = 0
        self._acks = {}  # pid -> asyncio.Event; the event is set when the PUBACK/SUBACK arrives
        self._results = {}
        self._closed = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._tasks = []
        self._wlock = asyncio.Lock()
        self._last_rx = ticks_ms()
        self.stats = {"tx": 0, "rx": 0, "bad": 0}

    # ---- connection ----------------------------------------------------------------------

    async def connect(self, host, port, ssl=None, server_hostname=None, timeout=10):
        try:
            if ssl is None:
                self._r, self._w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            else:
                self._r, self._w = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=ssl, server_hostname=server_hostname), timeout)
            await self._send(connect_packet(self.client_id, self.user, self.password, self.keepalive,
                                            self.will, self.clean))
            first, body = await asyncio.wait_for(self._read_packet(), timeout)  # type: int, bytes
        except MQTTError:
            await self._teardown()
            raise
        except Exception as e:  # noqa: BLE001 - socket, TLS and timeout errors differ by port
            await self._teardown()
            raise MQTTError("connect failed: %r" % (e,))
        if first != CONNACK or len(body) != 2:
            await self._teardown()
            raise MQTTError("expected CONNACK")
        if body[1]:
            await self._teardown()
            raise MQTTError("refused: " + CONNACK_TEXT.get(body[1], str(body[1])))
        self.session_present = bool(body[0] & 1)
        self.connected = True
        self._last_rx = ticks_ms()
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._pinger())]

    async def disconnect(self):
        if self.connected:
            try:
                await self._send(packet(DISCONNECT, b""))
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass
        await self._teardown()

    async def wait_closed(self):
        await self._closed.wait()

    async def _teardown(self, error=None):
        if error is not None and self.error is None:
            self.error = error
        self.connected = False
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self._tasks = []
        w = self._w
        self._w = None
        if w is not None:
            try:
                w.close()
                await w.wait_closed()
            except Exception:  # noqa: BLE001
                pass
        for ev in self._acks.values():
            ev.set()  # wake every waiter; they see the connection is gone
        self._space.set()
        self._closed.set()

    # ---- sending -------------------------------------------------------------------------

    async def _send(self, data):
        w = self._w
        if w is None:
            raise MQTTError("not connected")
        async with self._wlock:
            w.write(data)
            await w.drain()
        self.stats["tx"] += 1

    def _next_pid(self):
        # Bounded search: at most `window` ids are in use at once.
        for _ in range(65535):
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._acks:
                return self._pid
        raise MQTTError("no free packet id")

    async def publish(self, topic, payload, qos=0, retain=False, timeout=10):
        """Publish; for QoS 1 return only once the broker's PUBACK has arrived."""
        pid = await self.publish_start(topic, payload, qos, retain)
        if qos:
            await self.wait_ack(pid, timeout)

    async def publish_start(self, topic, payload, qos=0, retain=False):
        """Send a PUBLISH without waiting for its PUBACK (at most `window` in flight); returns
        its packet id for wait_ack. MQTT brokers acknowledge in order, so a caller that starts
        records in order and waits in order keeps the journal's order."""
        if qos not in (0, 1):
            raise MQTTError("qos 2 is not supported")
        pid = 0
        if qos:
            while len(self._acks) >= self.window:
                if not self.connected:
                    raise MQTTError("not connected")
                self._space.clear()
                await self._space.wait()
            pid = self._next_pid()
            self._acks[pid] = asyncio.Event()
        try:
            await self._send(publish_packet(topic, payload, qos, retain, pid))
        except Exception as e:  # noqa: BLE001
            self._acks.pop(pid, None)
            await self._teardown(MQTTError("send failed: %r" % (e,)))
            raise MQTTError("send failed")
        return pid

    async def wait_ack(self, pid, timeout=10):
        ev = self._acks.get(pid)
        if ev is None:
            raise MQTTError("unknown packet id")
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except Exception:  # noqa: BLE001 - TimeoutError differs by port
            self._release(pid)
            raise MQTTError("no PUBACK")
        ok = self._results.pop(pid, None) is not None
        self._release(pid)
        if not ok:
            raise MQTTError("connection lost before PUBACK")

    def _release(self, pid):
        self._acks.pop(pid, None)
        self._results.pop(pid, None)
        self._space.set()

    async def subscribe(self, topic, qos=1, timeout=10):
        pid = self._next_pid()
        ev = asyncio.Event()
        self._acks[pid] = ev
        await self._send(packet(SUBSCRIBE, struct.pack("!H", pid) + _str(topic) + bytes((qos,))))
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except Exception:  # noqa: BLE001
            self._release(pid)
            raise MQTTError("no SUBACK")
        granted = self._results.get(pid)
        self._release(pid)
        if granted is None or granted == 0x80:
            raise MQTTError("subscription refused: " + topic)
        return granted

    # ---- receiving -----------------------------------------------------------------------

    async def _read_packet(self):
        r = self._r
        if r is None:
            raise MQTTError("not connected")
        first = (await r.readexactly(1))[0]
        n = 0
        shift = 0
        for _ in range(4):
            b = (await r.readexactly(1))[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        else:
            raise MQTTError("bad remaining length")
        if n <= self.max_packet:
            body = await r.readexactly(n) if n else b""
        elif self.skip_oversize and first & 0xF0 == PUBLISH and self.connected:
            head = await r.readexactly(2)
            keep = 2 + ((head[0] << 8) | head[1]) + (2 if first & 0x06 else 0)
            if keep > n or keep > 512:
                raise MQTTError("packet too large: %d" % n)
            body = head + await r.readexactly(keep - 2)
            left = n - keep
            while left > 0:
                k = left if left < 512 else 512
                await r.readexactly(k)
                left -= k
            self.truncated = True
        else:
            raise MQTTError("packet too large: %d" % n)
        self._last_rx = ticks_ms()
        self.stats["rx"] += 1
        return first, body

    async def _reader(self):
        try:
            while True:
                first, body = await self._read_packet()
                kind = first & 0xF0
                if kind == PUBLISH:
                    await self._on_publish(first, body)
                elif kind == PUBACK or kind == SUBACK:
                    if len(body) < 2 or (kind == PUBACK and len(body) != 2):
                        raise MQTTError("malformed ack")
                    pid = (body[0] << 8) | body[1]
                    ev = self._acks.get(pid)
                    if ev is not None:
                        self._results[pid] = body[2] if kind == SUBACK and len(body) > 2 else 0
                        ev.set()
                elif kind == PINGRESP:
                    pass
                else:
                    raise MQTTError("unexpected packet 0x%02x" % first)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any broken stream ends this connection only
            await self._teardown(e)

    async def _on_publish(self, first, body):
        try:
            topic, payload, qos, retain, pid = parse_publish(first, body)
        except MQTTError:
            self.stats["bad"] += 1
            raise
        if self.handler is not None:
            try:
                res = self.handler(topic, payload, retain)
                if res is not None and hasattr(res, "send"):  # a coroutine
                    await res
            except Exception:  # noqa: BLE001 - the handler refused it: no PUBACK, broker resends
                self.stats["bad"] += 1
                if qos:
                    raise MQTTError("handler failed; message left unacknowledged")
                return
        if qos == 1:
            await self._send(packet(PUBACK, struct.pack("!H", pid)))

    async def _pinger(self):
        ka = self.keepalive
        if not ka:
            return
        try:
            while self.connected:
                await asyncio.sleep(ka / 2)
                if elapsed_ms(self._last_rx) > ka * 1500:
                    await self._teardown(MQTTError("keepalive timeout"))
                    return
                await self._send(packet(PINGREQ, b""))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            await self._teardown(e)
