"""Issue 15, finding 2: a reader must not be able to join the gateways' shared subscription.

The attack of the outside review, run against the broker exactly as ``cbcc broker config`` makes
it: reader-01 (valid credentials, TLS) subscribes to ``$share/<group>/cbcc/v1/r/+/ev`` — with the
deployment's real group name, the old documented one, and without ``$share`` — while reader-02
publishes 1,000 events; the gateway, in the shared group, must receive every one of them. Before:
Mosquitto's acl_file granted the subscription, handed the attacker every second message and then
refused delivery: 500 of 1,000 events lost, each acknowledged to its reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from support.mqtt_peer import Peer
from test_gateway_broker import Mosquitto, _needs_mosquitto, generate  # noqa: F401 (autouse fixture)

from gateway.mqtt import broker_config as bc

N = 1000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = generate(tmp_path / "broker", ["reader-01", "reader-02"])
    m.start()
    yield m
    m.stop()


def test_a_reader_cannot_join_the_gateways_shared_group(broker: Mosquitto) -> None:
    roster = bc.BrokerFiles(broker.folder).load_roster()
    group = getattr(roster, "shared_group", "cbcc-ingest")
    assert group != "cbcc-ingest" and len(group) >= 16  # random per deployment, not the documented name
    shared = f"$share/{group}/cbcc/v1/r/+/ev"
    attacks = (shared, "$share/cbcc-ingest/cbcc/v1/r/+/ev", "cbcc/v1/r/+/ev", "cbcc/v1/#",
               "$share/x/cbcc/v1/r/reader-01/cmd")  # fmt: skip
    old_style = broker.reader("reader-01", protocol=paho.MQTTv311)  # readers speak 3.1.1
    try:
        assert all(c >= 0x80 for c in old_style.subscribe(*attacks))  # refused at SUBSCRIBE
    finally:
        old_style.close()
    gw = broker.gateway(client_id="gw-attack", protocol=paho.MQTTv5)
    attacker = broker.reader("reader-01", protocol=paho.MQTTv5)  # stays connected while events flow
    victim = Peer(broker.tls_port, "reader-02", broker.passwords["reader-02"], ca=broker.ca)
    try:
        assert gw.ok and victim.ok and attacker.ok
        assert gw.subscribe(shared) == [1]
        codes = attacker.subscribe(*attacks)
        assert all(c >= 0x80 for c in codes), codes
        assert attacker.subscribe("cbcc/v1/r/reader-01/cmd") == [1]  # its own downlink: granted
        for i in range(N):
            victim.c.publish("cbcc/v1/r/reader-02/ev", i.to_bytes(4, "big"), qos=1)
        got = gw.take(N, timeout=30)
        stolen = len(attacker.drain(0.5))
        seen = sorted(int.from_bytes(m.payload, "big") for m in got)
        assert seen == list(range(N)), f"gateway got {len(seen)} of {N}; attacker got {stolen}"
        assert stolen == 0
    finally:
        for p in (gw, victim, attacker):
            if p.ok:
                p.close()
