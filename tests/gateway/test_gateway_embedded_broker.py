"""The embedded broker (amqtt in the gateway process): logins, the contract ACL, TLS, a manual-ack
MQTT 3.1.1 gateway, and the reader's own MQTT client (firmware/lib/mqtt.py under CPython)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import mqtt  # firmware/lib/mqtt.py (conftest puts firmware/lib on the path)
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import mqtt_peer
from support.broker import free_port, make_ca_and_server_cert

from gateway.mqtt.broker_config import Acl, TlsFiles, hash_password
from gateway.mqtt.embedded_broker import EmbeddedBroker

PASSWORDS = {"reader-01": "pw-r1", "reader-02": "pw-r2", "gateway": "pw-gw"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    folder = tmp_path_factory.mktemp("embedded")
    ca, cert, key = make_ca_and_server_cert(folder)
    # One password as a Mosquitto $7$ hash: the embedded broker can use `cbcc broker config` files.
    users = {**PASSWORDS, "reader-02": hash_password(PASSWORDS["reader-02"])}
    b = EmbeddedBroker("127.0.0.1", 0, users, Acl(frozenset({"gateway"})),
                       tls=TlsFiles(ca, cert, key), tls_host="127.0.0.1", tls_port=0)  # fmt: skip
    b.start()
    yield b
    b.stop()


def ca_of(b: EmbeddedBroker) -> Path:
    assert b.tls is not None
    return b.tls.cafile


def Peer(b: EmbeddedBroker, user: str | None, password: str | None = None, *,
         client_id: str | None = None, tls: bool = False, clean: bool = True,
         manual_ack: bool = False) -> mqtt_peer.Peer:  # fmt: skip
    """paho over MQTT 3.1.1 (amqtt speaks nothing else); ``rc`` is the CONNACK reason code."""
    if user is not None and password is None:
        password = PASSWORDS[user]
    cid = client_id if client_id is not None else (user or "")
    return mqtt_peer.Peer(b.tls_port if tls else b.port, user, password, ca=ca_of(b) if tls else None,
                          client_id=cid, clean=clean, manual_ack=manual_ack)  # fmt: skip


# ---- logins ---------------------------------------------------------------------------------


def test_logins(broker: EmbeddedBroker) -> None:
    assert Peer(broker, "reader-01").ok
    assert Peer(broker, "reader-02").ok  # checked against its $7$ hash
    assert not Peer(broker, "reader-01", "wrong").ok
    assert not Peer(broker, "reader-02", "pw-r1").ok
    assert not Peer(broker, None, client_id="anon").ok
    assert not Peer(broker, "nobody", "x").ok
    # A client id other than the username is refused (no posing as the gateway's session).
    assert not Peer(broker, "reader-01", client_id="gateway").ok
    assert Peer(broker, "reader-01", tls=True).ok


def test_tls_needs_our_ca(broker: EmbeddedBroker, tmp_path: Path) -> None:
    other, _, _ = make_ca_and_server_cert(tmp_path)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="reader-01", protocol=paho.MQTTv311)
    c.tls_set(ca_certs=str(other))
    with pytest.raises(ssl.SSLError):
        c.connect("127.0.0.1", broker.tls_port)


# ---- the contract ACL ---------------------------------------------------------------------


def test_reader_publishes_only_its_own_topics(broker: EmbeddedBroker) -> None:
    gw, r1 = Peer(broker, "gateway"), Peer(broker, "reader-01", tls=True)
    try:
        assert gw.subscribe("cbcc/v1/#") == [1]
        r1.publish("cbcc/v1/r/reader-02/ev", b"forged")
        r1.publish("cbcc/v1/r/reader-01/cmd", b"self-command")
        r1.publish("cbcc/v1/all/trust", b"fake-manifest")
        r1.publish("cbcc/v1/r/reader-01/ev", b"ev")
        r1.publish("cbcc/v1/r/reader-01/status", b"st")
        assert gw.drain() == [("cbcc/v1/r/reader-01/ev", b"ev"), ("cbcc/v1/r/reader-01/status", b"st")]
    finally:
        r1.close()
        gw.close()


def test_reader_reads_only_its_own_and_broadcast(broker: EmbeddedBroker) -> None:
    gw, r1 = Peer(broker, "gateway"), Peer(broker, "reader-01")
    try:
        codes = r1.subscribe("cbcc/v1/r/reader-01/cmd", "cbcc/v1/all/#", "cbcc/v1/r/reader-02/cmd",
                             "cbcc/v1/r/+/cfg", "cbcc/v1/#")  # fmt: skip
        assert codes == [1, 1, 0x80, 0x80, 0x80]
        gw.publish("cbcc/v1/r/reader-02/cmd", b"not-for-r1")
        gw.publish("cbcc/v1/r/reader-01/cmd", b"open")
        gw.publish("cbcc/v1/all/blob/0123abcd/0", b"chunk")
        assert set(r1.drain()) == {
            ("cbcc/v1/r/reader-01/cmd", b"open"),
            ("cbcc/v1/all/blob/0123abcd/0", b"chunk"),
        }
    finally:
        r1.close()
        gw.close()


# ---- the gateway as a manual-ack MQTT 3.1.1 client ----------------------------------------


def settle_gateway_session() -> None:
    """amqtt reuses a just-closed clean session for a clean_session=False CONNECT without making
    it persistent; its session monitor (every 1 s) removes closed clean sessions. Earlier tests
    connect as the gateway with clean sessions, so wait for that before testing persistence."""
    time.sleep(1.5)


def test_manual_ack_gateway_receives_qos1_and_offline_queue(broker: EmbeddedBroker) -> None:
    settle_gateway_session()
    gw = Peer(broker, "gateway", clean=False, manual_ack=True)
    r1 = Peer(broker, "reader-01")
    try:
        gw.subscribe("cbcc/v1/r/+/ev")
        for i in range(50):
            r1.publish("cbcc/v1/r/reader-01/ev", b"%02d" % i)
        got = gw.take(50)
        assert sorted(m.payload for m in got) == [b"%02d" % i for i in range(50)]
        assert {m.qos for m in got} == {1}
        for m in got:
            gw.c.ack(m.mid, m.qos)
        time.sleep(0.3)
        gw.close()
        # Let amqtt see the DISCONNECT first: a message routed to a connection that is closing is
        # lost with it (the same limit as the xfail test below).
        time.sleep(1)
        # Published while the persistent gateway session is offline: queued and delivered.
        r1.publish("cbcc/v1/r/reader-01/ev", b"while-away")
        gw = Peer(broker, "gateway", clean=False, manual_ack=True)
        got = gw.take(1)
        assert [m.payload for m in got] == [b"while-away"]
        gw.c.ack(got[0].mid, 1)
        time.sleep(0.3)
    finally:
        r1.close()
        gw.close()


@pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12 drops a delivered QoS 1 message from the session when the connection ends "
    "before its PUBACK (or after 5 s without one): it is not redelivered on reconnect",
)
def test_unacked_message_is_redelivered_to_persistent_session(broker: EmbeddedBroker) -> None:
    settle_gateway_session()
    gw = Peer(broker, "gateway", clean=False, manual_ack=True)
    r1 = Peer(broker, "reader-01")
    try:
        gw.subscribe("cbcc/v1/r/+/ev")
        r1.publish("cbcc/v1/r/reader-01/ev", b"never-acked")
        assert [m.payload for m in gw.take(1)] == [b"never-acked"]
        gw.drop()  # gateway crashes before committing the row (no PUBACK)
        time.sleep(0.5)
        gw = Peer(broker, "gateway", clean=False, manual_ack=True)
        assert [m.payload for m in gw.take(1, timeout=8)] == [b"never-acked"]
    finally:
        r1.close()
        gw.close()
        cleanup = Peer(broker, "gateway", clean=True)  # leave no persistent session behind
        cleanup.close()


@pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12 applies a CONNECT's clean-session flag to the stored session of that client id "
    "before it authenticates: a refused login still wipes the gateway's queued messages",
)
def test_refused_login_cannot_wipe_the_gateway_session(broker: EmbeddedBroker) -> None:
    settle_gateway_session()
    gw = Peer(broker, "gateway", clean=False)
    gw.subscribe("cbcc/v1/r/+/ev")
    gw.close()
    try:
        assert not Peer(broker, "gateway", "wrong-password", clean=True).ok
        r1 = Peer(broker, "reader-01")
        r1.publish("cbcc/v1/r/reader-01/ev", b"tap")
        r1.close()
        gw = Peer(broker, "gateway", clean=False)
        assert gw.drain(2) == [("cbcc/v1/r/reader-01/ev", b"tap")]
        gw.close()
    finally:
        Peer(broker, "gateway", clean=True).close()


# ---- the reader's own client (firmware/lib/mqtt.py) under CPython --------------------------


def test_firmware_client_publishes_and_subscribes(broker: EmbeddedBroker) -> None:
    gw = Peer(broker, "gateway")
    gw.subscribe("cbcc/v1/r/+/ev")
    got: list[tuple[str, bytes, bool]] = []

    async def scenario() -> tuple[bool, int]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(ca_of(broker)))
        c = mqtt.Client("reader-01", user="reader-01", password=PASSWORDS["reader-01"], keepalive=30,
                        clean=False, handler=lambda t, p, r: got.append((t, bytes(p), r)))  # fmt: skip
        await c.connect("127.0.0.1", broker.tls_port, ssl=ctx, server_hostname="localhost")
        granted = await c.subscribe("cbcc/v1/r/reader-01/cmd", 1)
        await c.subscribe("cbcc/v1/all/#", 1)
        with pytest.raises(mqtt.MQTTError):
            await c.subscribe("cbcc/v1/r/reader-02/cmd", 1)
        pids: list[int] = []
        for i in range(20):  # as the uplink does: up to `window` in flight, acknowledged in order
            pids.append(await c.publish_start("cbcc/v1/r/reader-01/ev", b"%03d" % i, qos=1))
            while len(pids) >= c.window:
                await c.wait_ack(pids.pop(0))
        for pid in pids:
            await c.wait_ack(pid)
        await c.publish("cbcc/v1/r/reader-02/ev", b"forged", qos=1)
        await asyncio.to_thread(gw.publish, "cbcc/v1/r/reader-02/cmd", b"not-mine")
        await asyncio.to_thread(gw.publish, "cbcc/v1/r/reader-01/cmd", b"open")
        await asyncio.to_thread(gw.publish, "cbcc/v1/all/crl", b"manifest")
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        ok = c.connected
        await c.disconnect()
        return ok, granted

    try:
        connected, granted = asyncio.run(scenario())
        assert connected and granted == 1
        assert [(t, p) for t, p, _ in got] == [
            ("cbcc/v1/r/reader-01/cmd", b"open"),
            ("cbcc/v1/all/crl", b"manifest"),
        ]
        assert gw.drain() == [("cbcc/v1/r/reader-01/ev", b"%03d" % i) for i in range(20)]
    finally:
        gw.close()


def test_firmware_client_refused_with_wrong_password(broker: EmbeddedBroker) -> None:
    async def scenario() -> str:
        c = mqtt.Client("reader-01", user="reader-01", password="wrong")
        try:
            await c.connect("127.0.0.1", broker.port)
        except mqtt.MQTTError as e:
            return str(e)
        return "connected"

    assert asyncio.run(scenario()).startswith("refused:")


def test_start_and_stop_inside_a_running_loop() -> None:
    async def scenario() -> bool:
        b = EmbeddedBroker("127.0.0.1", free_port(), {"gateway": "pw"})
        await b.start_async()
        try:
            c = mqtt.Client("gateway", user="gateway", password="pw")
            await c.connect("127.0.0.1", b.port)
            await c.publish("cbcc/v1/r/x/cmd", b"hi", qos=1)
            await c.disconnect()
            return True
        finally:
            await b.stop_async()

    assert asyncio.run(scenario())
