"""Root cause of the ``topic:unexpected`` notice some demo runs showed (issue 16).

amqtt 0.12, when a client connects, re-sends retained messages for *every* subscription filter
in the broker — every client's, not the connecting session's — and without the topic ACL
(``Broker.client_connected`` loops over the broker-wide ``_subscriptions``). The gateway
subscribes ``cbcc/v1/r/+/status``; once one reader has published its retained status, the next
reader to connect is handed that status (another reader's topic), and the firmware rejects it
and journals ``topic:unexpected``. Whether it happened depended on which reader connected first:
a race. It was also a leak across readers (statuses, pushed configurations) past the ACL.

The tests force the interleaving: the retained message exists before the second reader connects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import mqtt_peer

from gateway.mqtt.broker_config import Acl
from gateway.mqtt.embedded_broker import EmbeddedBroker

PASSWORDS = {"reader-01": "pw-r1", "reader-02": "pw-r2", "gateway": "pw-gw"}


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("127.0.0.1", 0, PASSWORDS, Acl(frozenset({"gateway"})))
    b.start()
    yield b
    b.stop()


def peer(b: EmbeddedBroker, user: str, clean: bool = True) -> mqtt_peer.Peer:
    p = mqtt_peer.Peer(b.port, user, PASSWORDS[user], client_id=user, clean=clean)
    assert p.ok
    return p


def _topics(p: mqtt_peer.Peer, wait: float = 1.0) -> list[str]:
    time.sleep(wait)
    return [m.topic for m in p.take(100, timeout=0.2)]


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "persistent-session"])
def test_a_connecting_reader_gets_no_retained_message_of_another_readers_topic(
    broker: EmbeddedBroker, clean: bool
) -> None:
    gw = peer(broker, "gateway")
    assert gw.subscribe("cbcc/v1/r/+/status") == [1]
    r1 = peer(broker, "reader-01")
    r1.publish("cbcc/v1/r/reader-01/status", b"\xa1\x01\x01", retain=True)
    r1.publish("cbcc/v1/r/reader-01/cfg", b"reader-01's configuration", retain=True)  # as if pushed
    assert [m.topic for m in gw.take(1)] == ["cbcc/v1/r/reader-01/status"]

    r2 = peer(broker, "reader-02", clean=clean)  # the firmware connects with clean=False
    got = _topics(r2)
    assert got == [], f"reader-02 was sent topics it never subscribed to: {got}"
    assert r2.subscribe("cbcc/v1/r/reader-02/cfg", "cbcc/v1/all/trust") == [1, 1]
    got = _topics(r2)
    assert got == [], f"reader-02 received {got}"
    for p in (gw, r1, r2):
        p.close()


def test_a_reader_still_gets_the_retained_messages_of_its_own_subscriptions(broker: EmbeddedBroker) -> None:
    gw = peer(broker, "gateway")
    gw.publish("cbcc/v1/all/trust", b"manifest", retain=True)
    gw.publish("cbcc/v1/r/reader-02/cfg", b"cfg", retain=True)
    r2 = peer(broker, "reader-02", clean=False)
    assert r2.subscribe("cbcc/v1/r/reader-02/cfg", "cbcc/v1/all/trust") == [1, 1]
    assert sorted(_topics(r2)) == ["cbcc/v1/all/trust", "cbcc/v1/r/reader-02/cfg"]
    r2.close()
    # Reconnecting a persistent session: its own retained messages come again, nothing else.
    r1 = peer(broker, "reader-01")
    r1.publish("cbcc/v1/r/reader-01/status", b"s", retain=True)
    r2 = peer(broker, "reader-02", clean=False)
    assert sorted(_topics(r2)) == ["cbcc/v1/all/trust", "cbcc/v1/r/reader-02/cfg"]
    for p in (gw, r1, r2):
        p.close()
