"""One gateway process as a small office runs it: `cbcc gateway init`, then the service with
its embedded broker and SQLite. Events are committed before the embedded broker acknowledges them
to the reader, so a crash or a database outage never loses one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from support.broker import free_port

from gateway import bootstrap
from gateway.sealed import seal
from gateway.service import Gateway
from gateway.settings import Settings, load_settings

# One time for every record of the run: a record re-sent a second later must be byte-identical to
# the first send (a different time makes it a conflict, correctly quarantined, not a duplicate).
_NOW = int(time.time())


def _record(n: int) -> bytes:
    now = _NOW
    return cbor2.dumps(
        {
            1: now,
            2: 2,
            3: "tap",
            4: 1,
            5: 1000 + n,
            10: "grant",
            11: "granted",
            12: 5000 + n,
            13: f"CB-{n:06d}",
            14: "desfire",
            15: True,
            16: "cong-chinh",
        }
    )


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Gateway, str, Settings]]:
    monkeypatch.setenv("CBCC_PASSPHRASE", "mật khẩu thử nghiệm")
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        database={"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        mqtt={
            "embedded": True,
            "port": free_port(),
            "embedded_tls_host": "127.0.0.1",
            "embedded_tls_port": free_port(),
        },
    )
    out = bootstrap.init(settings, None)
    assert out.admin_token and (tmp_path / "data" / "broker" / "ca.der").exists()
    again = bootstrap.init(settings, None)  # idempotent: keeps keys, makes no second admin
    assert again.admin_token is None
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw, out.admin_token, settings
    finally:
        gw.stop()


def _register(gw: Gateway, token: str, rid: str) -> dict[str, Any]:
    with TestClient(gw.app) as c:
        r = c.post(
            "/api/v1/readers",
            json={"id": rid, "name": "Cửa chính", "site": "hn-snv", "role": "door"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


def _reader_client(settings: Settings, rid: str, password: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=rid, protocol=paho.MQTTv311, clean_session=False)
    c.username_pw_set(rid, password)
    c.tls_set(ca_certs=str(settings.data_dir / "broker" / "ca.crt"))
    c.connect("127.0.0.1", settings.mqtt.embedded_tls_port)
    c.loop_start()
    return c


def _rows(gw: Gateway) -> list[tuple[str, int, str]]:
    with gw.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(sa.text("SELECT reader_id, seq, staff_code FROM event ORDER BY seq"))
        ]


def test_office_gateway_stores_events_from_a_registered_reader(office: tuple[Gateway, str, Settings]) -> None:
    gw, token, settings = office
    new = _register(gw, token, "hn-snv-p301")
    key = bytes.fromhex(new["mac_key_hex"])
    c = _reader_client(settings, "hn-snv-p301", new["mqtt_password"])
    try:
        infos = [
            c.publish("cbcc/v1/r/hn-snv-p301/ev", seal(key, "hn-snv-p301", n, _record(n)), qos=1)
            for n in range(1, 51)
        ]
        for i in infos:
            i.wait_for_publish(10)
        # Every PUBACK came after the commit: the rows are there as soon as the acks are.
        assert [r[1] for r in _rows(gw)] == list(range(1, 51))
        # A re-sent event (the reader lost a PUBACK) is not a second row.
        c.publish(
            "cbcc/v1/r/hn-snv-p301/ev", seal(key, "hn-snv-p301", 7, _record(7)), qos=1
        ).wait_for_publish(10)
        assert len(_rows(gw)) == 50
        # Forged: right topic, wrong key. Quarantined, never an event.
        c.publish(
            "cbcc/v1/r/hn-snv-p301/ev", seal(b"k" * 32, "hn-snv-p301", 99, _record(99)), qos=1
        ).wait_for_publish(10)
        with gw.engine.connect() as conn:
            reasons = [r[0] for r in conn.execute(sa.text("SELECT reason FROM quarantine"))]
        assert reasons == ["bad_mac"] and len(_rows(gw)) == 50
        with TestClient(gw.app) as api:
            r = api.get(
                "/api/v1/events",
                params={"reader_id": "hn-snv-p301", "limit": 5},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200 and len(r.json()["items"]) == 5
    finally:
        c.loop_stop()
        c.disconnect()


def test_puback_waits_for_the_commit(
    office: tuple[Gateway, str, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, token, settings = office
    new = _register(gw, token, "hn-snv-p302")
    key = bytes.fromhex(new["mac_key_hex"])
    assert gw.broker_ingest is not None
    gw.broker_ingest.retry_s = 0.2
    real = gw.writer.write_batch
    down = {"on": True}

    def flaky(msgs: Any) -> Any:
        if down["on"]:
            raise OSError("database unavailable")
        return real(msgs)

    monkeypatch.setattr(gw.writer, "write_batch", flaky)
    c = _reader_client(settings, "hn-snv-p302", new["mqtt_password"])
    try:
        info = c.publish("cbcc/v1/r/hn-snv-p302/ev", seal(key, "hn-snv-p302", 1, _record(1)), qos=1)
        time.sleep(1.5)
        assert not info.is_published()  # no PUBACK: the reader keeps the event in its journal
        assert _rows(gw) == []
        down["on"] = False
        info.wait_for_publish(10)
        assert info.is_published() and [r[1] for r in _rows(gw)] == [1]
        assert gw.broker_ingest.db_failures >= 3
    finally:
        c.loop_stop()
        c.disconnect()


def test_reader_cannot_publish_as_another(office: tuple[Gateway, str, Settings]) -> None:
    gw, token, settings = office
    a = _register(gw, token, "hn-snv-a")
    _register(gw, token, "hn-snv-b")
    c = _reader_client(settings, "hn-snv-a", a["mqtt_password"])
    try:
        key = bytes.fromhex(a["mac_key_hex"])
        c.publish("cbcc/v1/r/hn-snv-b/ev", seal(key, "hn-snv-b", 1, _record(1)), qos=1).wait_for_publish(10)
        time.sleep(0.5)
        assert _rows(gw) == []
    finally:
        c.loop_stop()
        c.disconnect()


def test_a_lock_publishes_a_delta_readers_receive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-contained gateway (it holds the root key) publishes the national list at start and
    a delta at once when a facility manager locks a card; readers get both as retained messages."""
    from datetime import UTC, datetime

    from gateway import crl_publisher
    from gateway.models import Card
    from trustcore import keys

    monkeypatch.setenv("CBCC_PASSPHRASE", "mật khẩu thử nghiệm")
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        database={"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        mqtt={
            "embedded": True,
            "port": free_port(),
            "embedded_tls_host": "127.0.0.1",
            "embedded_tls_port": free_port(),
        },
    )
    token = bootstrap.init(settings, None).admin_token
    assert token
    now = datetime.now(UTC)
    from gateway import db

    engine = db.make_engine(settings.database.url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Card.__table__),
            [  # type: ignore[attr-defined]
                {
                    "serial": s,
                    "staff_code": f"CB-{s}",
                    "issuer": "000.00.31",
                    "gen": 1,
                    "status": "revoked" if s % 10 == 0 else "issued",
                    "updated_at": now,
                    "pending_upstream": False,
                }
                for s in range(2_000_000, 2_000_500)
            ],
        )
    engine.dispose()
    gw = Gateway(settings, root_key=keys.generate_rsa(3072))
    gw.start()
    try:
        assert gw.crl is not None
        gw.crl.tick()  # the first full list
        new = _register(gw, token, "hn-snv-p303")
        got: dict[str, bytes] = {}
        c = _reader_client(settings, "hn-snv-p303", new["mqtt_password"])
        c.on_message = lambda _c, _u, m: got.__setitem__(m.topic, bytes(m.payload))
        c.subscribe([("cbcc/v1/all/ncrl", 1), ("cbcc/v1/all/ncrl_delta", 1)])
        deadline = time.monotonic() + 5
        while "cbcc/v1/all/ncrl" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "cbcc/v1/all/ncrl" in got  # retained: a reader that connects later gets it
        t0 = time.monotonic()
        crl_publisher.lock_card(gw.engine, 2_000_123, "token:test")
        while not got.get("cbcc/v1/all/ncrl_delta") and time.monotonic() - t0 < 5:
            time.sleep(0.02)
        assert got.get("cbcc/v1/all/ncrl_delta"), "no delta within 5 s of the lock"
        c.loop_stop()
        c.disconnect()
    finally:
        gw.stop()
