"""The reader's MQTT client (firmware/lib/mqtt.py) under the MicroPython unix port, against a
real Mosquitto started by the test with TLS, passwords and per-reader ACLs; paho plays the
gateway."""

from __future__ import annotations

import json
import queue
import subprocess
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion
from support.broker import Broker, make_ca_and_server_cert
from support.micropython_runner import ROOT, run_micropython

from simulators.firmware_runner import micropython_binary, micropython_env

PROBE = ROOT / "tests" / "mpy" / "mqtt_probe.py"
USERS = {"reader-01": "pw-reader-01", "reader-02": "pw-reader-02", "gateway": "pw-gateway"}


def _der(pem: Path, out: Path) -> Path:
    out.write_bytes(x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(serialization.Encoding.DER))
    return out


BROKER_USERS = USERS  # for the shared ``broker`` fixture (tests/conftest.py)


@pytest.fixture
def ca_der(broker: Broker) -> Path:
    return _der(broker.ca, broker.folder / "ca.der")


class Gateway:
    """A paho MQTT v5 client as the gateway: collects what arrives on its subscriptions."""

    def __init__(self, broker: Broker, topics: list[str]) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-test", protocol=paho.MQTTv5)
        self.c.username_pw_set("gateway", USERS["gateway"])
        self.c.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload, bool(m.retain)))
        subscribed = queue.Queue[int]()
        self.c.on_subscribe = lambda *_a: subscribed.put(1)
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        for t in topics:
            self.c.subscribe(t, qos=1)
            subscribed.get(timeout=5)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def take(self, n: int, timeout: float = 20) -> list[tuple[str, bytes, bool]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            try:
                out.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _probe(broker: Broker, ca: Path, **cfg: Any) -> list[dict[str, Any]]:
    base = {"user": "reader-01", "password": USERS["reader-01"], "tls_port": broker.tls_port, "ca": str(ca)}
    proc = run_micropython([str(PROBE), json.dumps({**base, **cfg})], timeout=120, heap="2M")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.micropython
def test_qos1_burst_arrives_complete_and_in_order(broker: Broker, ca_der: Path) -> None:
    gw = Gateway(broker, ["cbcc/v1/r/+/ev"])
    try:
        out = _probe(broker, ca_der, scenario="publish_burst", count=300)
        assert out[-1]["sent"] == 300
        got = gw.take(300)
        assert [p for _, p, _ in got] == [b"%06d" % i for i in range(300)]
        assert {t for t, _, _ in got} == {"cbcc/v1/r/reader-01/ev"}
    finally:
        gw.close()


@pytest.mark.micropython
def test_acl_stops_a_reader_posing_as_another(broker: Broker, ca_der: Path) -> None:
    gw = Gateway(broker, ["cbcc/v1/r/+/ev"])
    try:
        _probe(broker, ca_der, scenario="wrong_topic")
        got = gw.take(1, timeout=5)
        assert got == [("cbcc/v1/r/reader-01/ev", b"marker", False)]
        assert gw.take(1, timeout=0.5) == []
    finally:
        gw.close()


@pytest.mark.micropython
def test_refused_with_wrong_password_or_unpinned_ca(broker: Broker, ca_der: Path, tmp_path: Path) -> None:
    out = _probe(broker, ca_der, scenario="refused", bad_password="not-it")
    assert out[-1]["error"].startswith("refused:")
    other_ca, _, _ = make_ca_and_server_cert(tmp_path)
    out = _probe(broker, ca_der, scenario="refused", bad_ca=str(_der(other_ca, tmp_path / "other.der")))
    assert out[-1]["error"].startswith("connect failed")


@pytest.mark.micropython
def test_commands_arrive_and_oversize_packet_only_drops_the_connection(broker: Broker, ca_der: Path) -> None:
    gw = Gateway(broker, [])
    env = micropython_env()
    cfg = {"user": "reader-01", "password": USERS["reader-01"], "tls_port": broker.tls_port,
           "ca": str(ca_der), "scenario": "subscribe", "expect": 4}  # fmt: skip
    proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=2M", str(PROBE), json.dumps(cfg)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"subscribed": True}
        gw.publish("cbcc/v1/r/reader-01/cmd", b"open-now")
        gw.publish("cbcc/v1/r/reader-02/cmd", b"not-for-me")
        gw.publish("cbcc/v1/all/trust", b"manifest-7", retain=False)
        gw.publish("cbcc/v1/r/reader-01/cmd", b"x" * 20000)  # beyond the reader's 8 KiB cap
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        gw.close()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    payloads = [p for _, p, _ in result["received"]]
    assert payloads[:2] == ["open-now", "manifest-7"]
    assert "not-for-me" not in payloads
    assert "packet too large" in result["first_error"]
    assert result["reconnected"] is True


@pytest.mark.micropython
def test_last_will_marks_a_dead_reader_offline(broker: Broker, ca_der: Path) -> None:
    gw = Gateway(broker, ["cbcc/v1/r/+/status"])
    env = micropython_env()
    cfg = {"user": "reader-02", "password": USERS["reader-02"], "tls_port": broker.tls_port,
           "ca": str(ca_der), "scenario": "will", "keepalive": 2}  # fmt: skip
    proc = subprocess.Popen([micropython_binary(), str(PROBE), json.dumps(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"connected": True}
        assert gw.take(1) == [("cbcc/v1/r/reader-02/status", b'{"online": true}', False)]
        proc.kill()  # power cut: no DISCONNECT
        proc.wait()
        assert gw.take(1, timeout=10) == [("cbcc/v1/r/reader-02/status", b'{"online": false}', False)]
    finally:
        if proc.poll() is None:
            proc.kill()
        gw.close()
