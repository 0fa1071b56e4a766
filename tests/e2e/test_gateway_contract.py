"""Contract test: the real reader firmware (a virtual reader under MicroPython) against the real
gateway service (consumer, ingest, fleet, downlink, REST API) through a real Mosquitto with TLS,
passwords and ACLs, storing into PostgreSQL. Facility work goes through the HTTP API only."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support.broker import Broker

from cbcc import demo_cards as pdemo
from cbcc import demo_gateway as gdemo
from gateway import bootstrap
from gateway.service import Gateway
from gateway.settings import load_settings
from simulators import firmware_runner
from trustcore import reader_config as host_config

RID = "hn-snv-contract"


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.micropython
def test_reader_firmware_against_the_gateway(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CBCC_PASSPHRASE", "contract-test-passphrase")
    broker = Broker(tmp_path / "broker", {"gateway": "pw-gateway-0123456789"})
    (tmp_path / "broker").mkdir()
    broker.start()
    settings = load_settings(
        None,
        data_dir=tmp_path / "gw",
        database={"url": pg_url},
        mqtt={
            "embedded": False,
            "host": "127.0.0.1",
            "port": broker.port,
            "username": "gateway",
            "password": "pw-gateway-0123456789",
            "client_id": "gw-contract",
            "protocol": "5",
        },
    )
    token = bootstrap.init(settings, None).admin_token
    gw = Gateway(settings)
    api = TestClient(gw.app)
    auth = {"Authorization": f"Bearer {token}"}
    proc: subprocess.Popen[str] | None = None
    try:
        r = api.post(
            "/api/v1/readers",
            json={"id": RID, "name": "Cổng chính", "site": "hn-snv", "role": "door"},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        secret = r.json()
        broker.users[RID] = secret["mqtt_password"]
        broker.restart()  # the broker learns the new reader's password (SIGHUP in production)
        gw.start()

        work = tmp_path / "cards"
        work.mkdir()
        pdemo._setup(work, int(time.time()))
        issuer = {k: os.urandom(16).hex() for k in ("amk", "read", "uid", "picc")}
        vr = gdemo.VirtualReader(
            RID, "Cổng chính", "door", [*gdemo._tap("huong", 300), *gdemo._tap("tuan", 1300)], []
        )
        assert gw.downlink is not None
        cfg = gdemo.reader_files(
            work,
            vr,
            secret,
            broker.tls_port,
            issuer,
            ca_pem=broker.ca.read_bytes(),
            config_key=settings.data_dir / "config.cose_key",
            tail=[{"at_ms": 2500, "wait_delivered": 20000}, {"at_ms": 30000, "exit": True}],
        )
        (cfg.parent / "reader.cfg").write_bytes(
            host_config.build({**gdemo.CONFIG, "reader_id": RID}, gw.downlink._key, 1, int(time.time()))
        )
        proc = subprocess.Popen(
            gdemo.reader_command(cfg),
            cwd=firmware_runner.ROOT,
            env=firmware_runner.micropython_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def rows() -> list[Any]:
            with gw.engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text(
                            "SELECT seq, kind, decision, reason, staff_code FROM event "
                            "WHERE reader_id = :r ORDER BY seq"
                        ),
                        {"r": RID},
                    )
                )

        def taps() -> list[tuple[str, str]]:
            return [(r[2], r[3]) for r in rows() if r[1] == "tap"]

        _wait(lambda: len(taps()) == 2, 60, "both taps stored")
        assert taps() == [("grant", "granted"), ("deny", "revoked")]

        def reader() -> dict[str, Any]:
            gw.fleet.flush()
            return dict(api.get(f"/api/v1/readers/{RID}", headers=auth).json())

        _wait(lambda: reader().get("online") is True and reader().get("config_seq") == 1, 20, "status online")
        # A facility manager changes the door's name and pushes it; then opens the door remotely.
        src = {**gdemo.CONFIG, "door": [{**gdemo.CONFIG["door"][0], "name": "Cổng chính (mới)"}]}  # type: ignore[index]
        r = api.post(f"/api/v1/readers/{RID}/config", json={"config": src}, headers=auth)
        assert r.status_code == 202, r.text
        assert r.json()["seq"] == 2
        _wait(lambda: reader().get("config_seq") == 2, 20, "configuration applied")
        r = api.post("/api/v1/commands", json={"reader_id": RID, "action": "open"}, headers=auth)
        assert r.status_code == 202, r.text

        def command_outcome() -> str | None:
            items = api.get("/api/v1/commands", params={"target": RID}, headers=auth).json()["items"]
            return items[0]["outcome"] if items else None

        _wait(lambda: command_outcome() == "ok", 20, "command executed")
        pushes = api.get(f"/api/v1/readers/{RID}/config-pushes", headers=auth).json()["items"]
        assert pushes[0]["outcome"] == "ok" and pushes[0]["applied_at"] is not None
        # Nothing quarantined, each (reader, seq) once, every sequence number present.
        assert api.get("/api/v1/quarantine", headers=auth).json()["items"] == []
        seqs = [r[0] for r in rows()]
        assert seqs == list(range(1, len(seqs) + 1))
        assert reader()["time_quality"] == 2
    finally:
        if proc is not None:
            proc.kill()
            proc.communicate(timeout=10)
        gw.stop()
        broker.stop()
