"""Issue 15, finding 4: the documented two-gateway deployment, run as documented.

The broker is made by ``cbcc broker config`` with the gateway users that ``docs/deploy/compose.yaml``
gives its two gateway services (a third, ``loadgen``, publishes the readers' events); both gateway
processes (``python -m gateway.ingest_main``, the same settings as ``cbcc gateway run``) take the
identity from the compose file and the shared group from the broker's roster. One is killed (-9)
mid-stream and restarted, as systemd or compose would; every event must end up stored exactly once
and the broker must not have seen the two take over each other's connection. Before: both used the
username ``gateway`` while the broker forces client id = username, so they kicked each other off
continuously (about 10x slower ingest)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from support.ingest import Publisher, event_stream, reader_ids, setup_store
from test_gateway_broker import Mosquitto, _needs_mosquitto, _read_credentials  # noqa: F401 (autouse)
from test_gateway_ingest_failures import assert_exactly, count, prime_session, wait_for
from typer.testing import CliRunner

from cbcc.broker import broker_app
from gateway.mqtt import broker_config as bc
from gateway.settings import MqttSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"


def documented_identities() -> list[tuple[str, str]]:
    """(username, client id) of gateway-1 and gateway-2 as the compose file and example settings say."""
    base = load_settings(DEPLOY / "gateway.example.toml").mqtt
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    out = []
    for g in ("gateway-1", "gateway-2"):
        env = doc["services"][g]["environment"]
        user = env.get("CBCC_MQTT__USERNAME", base.username)
        out.append((user, env.get("CBCC_MQTT__CLIENT_ID", base.client_id)))
    return out


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "broker"
    (folder / "db").mkdir(parents=True)
    tls_port, local_port = bc_free_ports()
    pp = tmp_path / "ca.pass"
    pp.write_text("correct horse battery staple\n")
    users = [*sorted({u for u, _ in documented_identities()}), "loadgen"]
    args = ["config", "--out", str(folder), "--make-ca", "--server-name", "localhost",
            "--passphrase-file", str(pp), "--tls-port", str(tls_port), "--local-port", str(local_port),
            "--persistence-dir", str(folder / "db")]  # fmt: skip
    for u in users:
        args += ["--gateway-user", u]
    result = CliRunner().invoke(broker_app, args)
    assert result.exit_code == 0, result.output
    m = Mosquitto(folder, tls_port, local_port)
    m.passwords = _read_credentials(folder)
    m.start()
    yield m
    m.stop()


def bc_free_ports() -> tuple[int, int]:
    from support.broker import free_port

    return free_port(), free_port()


def gateway(url: str, key: Path, s: MqttSettings, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "CBCC_DATABASE__URL": url, "CBCC_MASTER_KEY_FILE": str(key), "CBCC_MQTT__EMBEDDED": "false",
        "CBCC_MQTT__HOST": s.host, "CBCC_MQTT__PORT": str(s.port), "CBCC_MQTT__USERNAME": s.username,
        "CBCC_MQTT__PASSWORD": s.password.get_secret_value(), "CBCC_MQTT__CLIENT_ID": s.client_id,
        "CBCC_MQTT__SHARED_GROUP": s.shared_group or "", "CBCC_MQTT__PROTOCOL": "5",
        "CBCC_INGEST__BATCH_MAX": "500", "CBCC_INGEST__BATCH_WAIT_MS": "20",
    })  # fmt: skip
    with log.open("ab") as f:
        return subprocess.Popen([sys.executable, "-m", "gateway.ingest_main"], cwd=ROOT, env=env, stdout=f,
                                stderr=subprocess.STDOUT)  # fmt: skip


def test_two_gateways_one_killed_mid_stream(pg_url: str, tmp_path: Path, broker: Mosquitto) -> None:
    total, rids = 30_000, reader_ids(30)
    store = setup_store(pg_url, rids, tmp_path / "master.key")
    group = getattr(bc.BrokerFiles(broker.folder).load_roster(), "shared_group", "cbcc-ingest")
    settings = [
        MqttSettings(host="127.0.0.1", port=broker.local_port, username=u, client_id=cid, protocol="5",
                     password=SecretStr(broker.passwords[u]), shared_group=group, embedded=False)
        for u, cid in documented_identities()
    ]
    for s in settings:
        prime_session(s)
    logs = [tmp_path / f"gw{i}.log" for i in (1, 2)]
    procs = [gateway(pg_url, tmp_path / "master.key", s, log) for s, log in zip(settings, logs, strict=True)]
    pub = Publisher(broker.local_port, "loadgen", broker.passwords["loadgen"], clients=1, inflight=2000,
                    name="loadgen")  # fmt: skip
    try:
        stream = list(event_stream(rids, total))
        pub.publish_all(stream[: total // 2], rate=6000)
        wait_for(lambda: count(store.engine)[0] > total // 8, 60, "progress")
        procs[0].send_signal(signal.SIGKILL)  # mid-stream: batches in hand, acks not sent
        procs[0].wait()
        pub.publish_all(stream[total // 2 :], rate=6000)
        pub.wait_acked(total, timeout=120)
        time.sleep(1.0)
        procs[0] = gateway(pg_url, tmp_path / "master.key", settings[0], logs[0])  # systemd restarts it
        wait_for(lambda: count(store.engine)[0] >= total, 120, f"{total} rows")
        time.sleep(1.0)
    finally:
        pub.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    takeovers = broker.log().count("already connected, closing old connection")
    survivor_drops = sum(1 for line in logs[1].read_text().splitlines()
                         if "mqtt disconnected" in line and "Normal disconnection" not in line)  # not stop
    assert takeovers == 0 and survivor_drops == 0, (
        f"gateways took over each other's connection {takeovers} times; the survivor lost its own "
        f"{survivor_drops} times"
    )
    assert count(store.engine) == (total, total)
    assert_exactly(store, rids, total)
    store.engine.dispose()
