"""Ingest under failure: the gateway process killed (-9) again and again, the broker restarted,
PostgreSQL unreachable for a minute. Real Mosquitto (persistent), real PostgreSQL; at the end every
event is stored exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr
from support.broker import Broker
from support.ingest import Publisher, Store, event_stream, expected_keys, reader_ids, setup_store
from support.tcp_proxy import TcpProxy

from gateway.ingest import IngestWriter
from gateway.models import Event
from gateway.mqtt.consumer import Consumer, connect_async, make_client, subscriptions
from gateway.settings import IngestSettings, MqttSettings

ROOT = Path(__file__).resolve().parents[2]
GW_PASSWORD = "gw-failures"


# The shared ``broker`` fixture (tests/conftest.py) starts Mosquitto with these users, durable.
BROKER_USERS = {"gateway": GW_PASSWORD}
BROKER_PERSISTENCE = True


def settings_for(b: Broker, client_id: str = "gw-ingest") -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=b.port, username="gateway", password=SecretStr(GW_PASSWORD),
                        client_id=client_id, embedded=False)  # fmt: skip


def prime_session(s: MqttSettings) -> None:
    """Create the gateway's persistent session and subscriptions at the broker, then leave: from
    now on the broker queues every event for it, whether a gateway process runs or not."""
    c = make_client(s)
    done = threading.Event()
    c.on_subscribe = lambda *_a: done.set()
    c.on_connect = lambda cl, *_a: cl.subscribe([(t, 1) for t in subscriptions(s.shared_group)])
    connect_async(c, s, 100)
    c.loop_start()
    assert done.wait(10), "could not subscribe"
    c.disconnect()
    c.loop_stop()


def count(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as c:
        row = c.execute(sa.text("SELECT count(*), count(DISTINCT (reader_id, seq)) FROM event")).one()
    return int(row[0]), int(row[1])


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def assert_exactly(store: Store, rids: list[str], total: int) -> None:
    with store.engine.connect() as c:
        keys = [(r, s) for r, s in c.execute(sa.select(Event.reader_id, Event.seq))]  # type: ignore[call-overload]
    assert len(keys) == total, f"{len(keys)} rows, want {total}"
    assert set(keys) == expected_keys(rids, total)  # nothing lost, nothing extra, no duplicates


def start_publishing(b: Broker, rids: list[str], total: int,
                     **kw: object) -> tuple[Publisher, threading.Thread]:  # fmt: skip
    pub = Publisher(b.port, "gateway", GW_PASSWORD, clients=2, inflight=4000)
    t = threading.Thread(target=pub.publish_all, args=(event_stream(rids, total),), kwargs=kw, daemon=True)
    t.start()
    return pub, t


# ---- kill -9 of the gateway process -----------------------------------------------------------------


def gateway_process(db_url: str, master_key: Path, s: MqttSettings, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "CBCC_DATABASE__URL": db_url, "CBCC_MASTER_KEY_FILE": str(master_key),
        "CBCC_MQTT__HOST": s.host, "CBCC_MQTT__PORT": str(s.port), "CBCC_MQTT__USERNAME": s.username,
        "CBCC_MQTT__PASSWORD": s.password.get_secret_value(), "CBCC_MQTT__CLIENT_ID": s.client_id,
        "CBCC_MQTT__EMBEDDED": "false", "CBCC_INGEST__BATCH_MAX": "2000", "CBCC_INGEST__BATCH_WAIT_MS": "20",
    })  # fmt: skip
    with log.open("ab") as f:
        return subprocess.Popen([sys.executable, "-m", "gateway.ingest_main"], cwd=ROOT, env=env, stdout=f,
                                stderr=subprocess.STDOUT)  # fmt: skip


def test_gateway_killed_repeatedly_during_200k(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    total, rids = 200_000, reader_ids(200)
    store = setup_store(pg_url, rids, tmp_path / "master.key")
    s = settings_for(broker)
    prime_session(s)
    pub, pub_thread = start_publishing(broker, rids, total)
    log = tmp_path / "gateway.log"
    rng = random.Random(int(os.environ.get("CBCC_KILL_SEED", "0")) or None)
    kills: list[int] = []
    gw = gateway_process(pg_url, tmp_path / "master.key", s, log)
    try:
        last = 0
        for _ in range(4):
            # let this process get going (it must have committed something), then kill it at a
            # random moment: mid-batch, mid-commit or mid-ack
            wait_for(lambda last=last: count(store.engine)[0] > last, 60, "progress after a restart")  # type: ignore[misc]
            time.sleep(rng.uniform(0.3, 2.5))
            last = count(store.engine)[0]
            if last >= total:
                break
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            kills.append(last)
            gw = gateway_process(pg_url, tmp_path / "master.key", s, log)
        pub_thread.join(120)
        pub.wait_acked(total, timeout=120)
        wait_for(lambda: count(store.engine)[0] >= total, 150, f"{total} rows (log: {log})")
        time.sleep(1.0)  # anything re-sent late must be a duplicate, not a new row
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(20)
        except subprocess.TimeoutExpired:
            gw.kill()
        pub.close()
    print(f"killed at {kills} stored rows")
    assert len(kills) >= 3, f"the gateway finished before 3 kills: {kills}"
    assert count(store.engine) == (total, total)
    assert_exactly(store, rids, total)
    store.engine.dispose()


# ---- the broker restarted while events flow ---------------------------------------------------------


def test_broker_restarted_mid_stream(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    total, rids = 60_000, reader_ids(100)
    store = setup_store(pg_url, rids, tmp_path / "master.key")
    s = settings_for(broker)
    prime_session(s)
    c = Consumer(s, IngestWriter(store.engine, store.keys),
                 ingest=IngestSettings(batch_max=2000, batch_wait_ms=20))  # fmt: skip
    c.start()
    pub, pub_thread = start_publishing(broker, rids, total, rate=8000)
    try:
        for _ in range(2):
            time.sleep(2.5)
            broker.restart()  # SIGTERM: Mosquitto saves sessions and queues, reloads them on start
        pub_thread.join(120)
        pub.wait_acked(total, timeout=120)
        wait_for(lambda: count(store.engine)[0] >= total, 120, f"{total} rows")
        time.sleep(1.0)
    finally:
        pub.close()
        c.stop()
    assert_exactly(store, rids, total)
    store.engine.dispose()


# ---- PostgreSQL unreachable for a minute -------------------------------------------------------------


def test_database_unreachable_for_a_minute(pg_url: str, tmp_path: Path, broker: Broker) -> None:
    total, rids = 40_000, reader_ids(50)
    store = setup_store(pg_url, rids, tmp_path / "master.key")
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    via_proxy = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    from gateway import db

    gw_engine = db.make_engine(via_proxy)
    s = settings_for(broker)
    prime_session(s)
    c = Consumer(s, IngestWriter(gw_engine, store.keys),
                 ingest=IngestSettings(batch_max=1000, batch_wait_ms=20, db_retry_s=1.0))  # fmt: skip
    c.start()
    stream = list(event_stream(rids, total))
    pub = Publisher(broker.port, "gateway", GW_PASSWORD)
    try:
        pub.publish_all(stream[:10_000])
        wait_for(lambda: count(store.engine)[0] >= 10_000, 60, "first 10k rows")
        proxy.cut()
        t_cut = time.monotonic()
        pub.publish_all(stream[10_000:])  # the readers go on; the broker keeps it all
        pub.wait_acked(total, timeout=60)
        max_queued = 0
        while time.monotonic() - t_cut < 60:
            assert count(store.engine)[0] == 10_000  # ingest paused: nothing half-written
            max_queued = max(max_queued, c.queued)
            time.sleep(1)
        assert c.db_failures >= 10  # retried every second, never acknowledged
        assert max_queued <= c.receive_max  # the broker held the rest (Receive Maximum)
        proxy.restore()
        wait_for(lambda: count(store.engine)[0] >= total, 90, f"{total} rows after the outage")
        time.sleep(1.0)
    finally:
        pub.close()
        c.stop()
        proxy.close()
        gw_engine.dispose()
    assert_exactly(store, rids, total)
    store.engine.dispose()
