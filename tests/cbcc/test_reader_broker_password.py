"""``cbcc gateway reader add`` tells the embedded broker the reader's password, as the API and
``cbcc reader setup`` do (one function, ``gateway.service.teach_broker``): before, only the CLI
path left the broker's password file without the reader, which then could not log in."""

from __future__ import annotations

import json
from pathlib import Path

from test_first_hour import run

from gateway.mqtt import broker_config as bc


def test_gateway_reader_add_writes_the_embedded_brokers_password_file(tmp_path: Path) -> None:
    assert run(tmp_path, "gateway", "init").returncode == 0
    secrets = tmp_path / "p301.json"
    proc = run(tmp_path, "gateway", "reader", "add", "hn-snv-t3-p301", "--secrets-out", str(secrets))
    assert proc.returncode == 0, proc.stderr
    password = json.loads(secrets.read_text())["mqtt_password"]
    passwd = tmp_path / "home" / "gateway" / "broker" / "passwd"
    stored = bc.parse_password_file(passwd.read_text())["hn-snv-t3-p301"]
    assert bc.verify_password(password, stored)
    assert passwd.stat().st_mode & 0o077 == 0
