"""The gateway service follows the national database on its own: the change feed is synced in a
background thread, revocation changes publish a delta at once, local locks are pushed upstream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from support.broker import free_port

from gateway import bootstrap, crl_publisher
from gateway.models import Card
from gateway.service import Gateway
from gateway.settings import load_settings
from simulators.national import NationalSim, create_app
from trustcore import keys


def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.1)


def test_service_syncs_publishes_and_pushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_PASSPHRASE", "mật khẩu thử nghiệm")
    sim = NationalSim(7, 6_000, 1_500, reveal=0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(sim, token="t0k3n"), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    _until(lambda: server.started, 10, "simulator up")
    (tmp_path / "token").write_text("t0k3n\n")
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        database={"url": f"sqlite:///{tmp_path / 'g.db'}"},
        mqtt={
            "embedded": True,
            "port": free_port(),
            "embedded_tls_host": "127.0.0.1",
            "embedded_tls_port": free_port(),
        },
        national={"url": f"http://127.0.0.1:{port}", "token_file": tmp_path / "token", "interval_s": 1},
    )
    bootstrap.init(settings, None)
    gw = Gateway(settings, root_key=keys.generate_rsa(3072))
    gw.start()
    try:

        def count(q: str) -> int:
            with gw.engine.connect() as c:
                return int(c.execute(sa.text(q)).scalar() or 0)

        _until(lambda: count("SELECT count(*) FROM card") >= 6_000, 60, "enrolment synced")
        assert gw.crl is not None
        gw.crl.tick()  # the first full list
        fulls = count("SELECT count(*) FROM revocationpublication WHERE kind = 'full'")
        assert fulls >= 1
        before = count("SELECT count(*) FROM revocationpublication")
        sim.advance(1_500)  # the national side: transfers, locks, revocations, reissues …
        # (a full list or a delta, whichever is smaller: hundreds of changes on a small list → full)
        _until(
            lambda: count("SELECT count(*) FROM revocationpublication") > before, 20, "a new list published"
        )
        # A facility manager locks a lost card: a delta at once, and the lock goes upstream.
        with gw.engine.connect() as c:
            serial = c.execute(sa.select(Card.serial).where(Card.status == "issued").limit(1)).scalar_one()
        published = crl_publisher.lock_card(gw.engine, serial, "facility-hn")
        assert published is not None and published.kind == "delta"
        _until(
            lambda: count(f"SELECT count(*) FROM card WHERE serial = {serial} AND NOT pending_upstream") == 1,
            20,
            "the local lock pushed upstream",
        )
    finally:
        gw.stop()
        server.should_exit = True
