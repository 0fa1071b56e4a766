"""A running gateway with virtual readers for the console's browser tests and benchmark
(tests/e2e/test_console_e2e.py, tests/bench/console.py).

The gateway runs as ``cbcc gateway run`` would (embedded MQTT broker with TLS, HTTP API and the
console served by uvicorn on a free port), with the national root key so a card locked in the
console goes out as a signed revocation-list delta. Two readers of two units run the real
firmware under MicroPython, tapping cards on a script (one tap every ``period_ms``). The card
table holds the demo's cards, so the console can search and lock them.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from cbcc import demo_cards as pdemo
from cbcc import demo_gateway as gdemo
from gateway import bootstrap
from gateway.console import accounts
from gateway.models import Card, StaffRecord, now_utc
from gateway.service import Gateway
from gateway.settings import load_settings
from simulators import firmware_runner
from trustcore import keys
from trustcore import reader_config as host_config

PASSWORD = "mat-khau-thu-nghiem-1"
UNIT_A = "000.00.31"  # Sở Nội vụ Hà Nội: Hương, Tuấn, Trang
UNIT_B = "000.00.00"  # Bộ Nội vụ: Đức
READER_A = "hn-snv-cong-chinh"
READER_B = "bnv-cong-chinh"
# (serial, staff code, name, agency, issuer, status) — the demo's credentials (provisioning/demo.py)
CARDS = [
    (2_000_001, "CB010012345", "Nguyễn Thị Hương", "000.00.31.H26", "000.00.31", "issued"),
    (2_000_017, "CB010099017", "Lê Minh Tuấn", "000.00.31.H26", "000.00.31", "revoked"),
    (2_000_050, "CB010077050", "Phạm Thu Trang", "000.00.31.H26", "000.00.31", "issued"),
    (1_000_042, "CB000000042", "Trần Văn Đức", "000.00.00.G09", "000.00.00", "issued"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def taps(card: str, period_ms: int, until_ms: int, start_ms: int = 1500) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for t in range(start_ms, until_ms, period_ms):
        steps += [{"at_ms": t, "present": card}, {"at_ms": t + min(700, period_ms // 2), "remove": card}]
    return steps


@dataclass
class VirtualReader:
    """The real firmware under MicroPython; each JSON line it prints, stamped with host time."""

    proc: subprocess.Popen[str]
    lines: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None and self.proc.stderr is not None
            for line in self.proc.stdout:
                if line.startswith("{"):
                    self.lines.append((time.time(), json.loads(line)))
            self.err.extend(self.proc.stderr)

        threading.Thread(target=read, daemon=True).start()

    def decisions(self, after: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, d) for t, d in list(self.lines) if t >= after and "decision" in d]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Rig:
    def __init__(
        self,
        tmp: Path,
        db_url: str | None = None,
        *,
        period_ms: int = 2500,
        run_s: int = 600,
        trace_publish: bool = False,
    ) -> None:
        self.tmp = tmp
        self.db_url = db_url or f"sqlite:///{tmp / 'gw' / 'gateway.db'}"
        self.period_ms = period_ms
        self.run_s = run_s
        self.trace_publish = trace_publish  # readers print {"published": seq, "t_ms"} (the bench)
        self.readers: dict[str, VirtualReader] = {}
        self.gw: Gateway | None = None
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.base = ""

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, monkeypatch: pytest.MonkeyPatch) -> Rig:
        work = self.tmp / "cards"
        work.mkdir(parents=True)
        # The demo's cards and lists, with a root key passphrase we know (the demo keeps its own
        # secret in memory), so this gateway can sign national revocation lists with that root.
        known = "rig-root-passphrase-0123456789"
        with monkeypatch.context() as m:
            m.setattr(pdemo.secrets, "token_urlsafe", lambda n=None: known)
            pdemo._setup(work, int(time.time()))
        root = keys.load_private_key(work / "root.key.pem", lambda: known.encode())
        pass_file = self.tmp / "gateway.pass"
        keys.write_new_file(pass_file, secrets.token_urlsafe(24).encode(), private=True)
        self.broker_tls, http_port = free_port(), free_port()
        data = self.tmp / "gw"
        settings = load_settings(
            None,
            data_dir=data,
            database={"url": self.db_url},
            signing_passphrase_file=pass_file,
            mqtt={
                "embedded": True,
                "port": free_port(),
                "embedded_tls_host": "127.0.0.1",
                "embedded_tls_port": self.broker_tls,
            },
            http={"host": "127.0.0.1", "port": http_port},
        )
        token = bootstrap.init(settings, pass_file, server_names=["localhost"]).admin_token
        self.gw = gw = Gateway(settings, root_key=root)  # type: ignore[arg-type]
        self._seed()
        gw.start()
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(gw.app, host="127.0.0.1", port=http_port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait(lambda: bool(self.server.started), 15, "the HTTP server")
        self.base = f"http://127.0.0.1:{http_port}"
        api = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        issuer = {k: os.urandom(16).hex() for k in ("amk", "read", "uid", "picc")}
        assert gw.downlink is not None
        for rid, name, unit, door, building, card in (
            (READER_A, "Cổng chính Sở Nội vụ", UNIT_A, "snv-cong-chinh", "A", "huong"),
            (READER_B, "Cổng Bộ Nội vụ", UNIT_B, "bnv-cong", "B", "duc"),
        ):
            body = {"id": door, "name": name, "site": "ha-noi", "building": building, "unit": unit}
            r = api.post("/api/v1/doors", json=body)
            assert r.status_code == 201, r.text
            r = api.post(
                "/api/v1/readers",
                json={
                    "id": rid,
                    "name": name,
                    "site": "ha-noi",
                    "unit": unit,
                    "door_id": door,
                    "role": "door",
                },
            )
            assert r.status_code == 201, r.text
            vr = gdemo.VirtualReader(rid, name, "door", taps(card, self.period_ms, self.run_s * 1000), [])
            cfg = gdemo.reader_files(
                work,
                vr,
                r.json(),
                self.broker_tls,
                issuer,
                ca_pem=(data / "broker" / "ca.crt").read_bytes(),
                config_key=data / "config.cose_key",
                tail=[{"at_ms": self.run_s * 1000, "exit": True}],
            )
            if self.trace_publish:
                cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "trace_publish": True}))
            (cfg.parent / "reader.cfg").write_bytes(
                host_config.build({**gdemo.CONFIG, "reader_id": rid}, gw.downlink._key, 1, int(time.time()))
            )
            proc = subprocess.Popen(
                gdemo.reader_command(cfg),
                cwd=firmware_runner.ROOT,
                env=firmware_runner.micropython_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self.readers[rid] = VirtualReader(proc)
            self.readers[rid].start_reading()
        api.close()
        self._attendance()
        return self

    def _attendance(self) -> None:
        """HR's setup: the main gate of Sở Nội vụ counts as attendance; office hours for its staff."""
        from datetime import date

        from gateway.attendance import readers as att_readers
        from gateway.attendance import store as att_store

        assert self.gw is not None
        today = date.today()
        with self.gw.engine.begin() as conn:
            # Events name the door by its index in the reader's configuration ("0"), not by the
            # gateway's door id: opt in what the events carry (see the console note).
            att_readers.opt_in_door(conn, "0", True)
            att_store.set_shift(
                conn, "hanh-chinh", "Giờ hành chính", "07:30-11:30,13:00-17:00", "Mon-Sun", 5, 5
            )
            att_store.assign(conn, "hanh-chinh", today.replace(day=1), None, unit="000.00.31.H26")

    def _seed(self) -> None:
        assert self.gw is not None
        with Session(self.gw.engine) as s:
            for serial, code, name, agency, issuer, status in CARDS:
                s.add(StaffRecord(staff_code=code, full_name=name, agency_code=agency, updated_at=now_utc()))
                s.add(
                    Card(serial=serial, staff_code=code, issuer=issuer, status=status, updated_at=now_utc())
                )
            for username, role, scope in (
                ("quantri", "admin", ""),
                ("baove-snv", "facility", UNIT_A),
                ("nhansu", "hr", ""),
                ("kiemtoan", "auditor", ""),
            ):
                accounts.create_user(
                    s,
                    username,
                    PASSWORD,
                    role,
                    unit_scope=scope,
                    full_name={
                        "quantri": "Quản trị viên",
                        "baove-snv": "Nguyễn Văn Bảo",
                        "nhansu": "Trần Thị Nhàn",
                        "kiemtoan": "Lê Kiểm",
                    }[username],
                    created_by="rig",
                )
            s.commit()

    def stop(self) -> None:
        for vr in self.readers.values():
            vr.stop()
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        if self.gw is not None:
            self.gw.stop()
