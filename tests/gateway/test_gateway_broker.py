"""`cbcc broker config` writes a Mosquitto configuration that a real Mosquitto runs as is.

The folder comes from the CLI itself (ports chosen free and passed as options, a CA made with
--make-ca); the only lines the test adds are ``user`` and ``log_dest``, so that the broker runs as
whoever runs the tests and logs into its folder. paho-mqtt plays readers and the gateway.
"""

from __future__ import annotations

import csv
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.broker import ACL, free_port, make_ca_and_server_cert
from support.mqtt_peer import Peer
from support.pg import require
from typer.testing import CliRunner

from cbcc.broker import broker_app
from gateway.mqtt import broker_config as bc
from gateway.mqtt import dynsec_admin

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the texts matched below (tests/messages: Vietnamese)


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    """Skip without Mosquitto, with the reason; under CI=true that is a failure (tests/support/pg.py)."""
    if not Path(MOSQUITTO).exists():
        require("Mosquitto", f"{MOSQUITTO} is not installed")

READERS = ["reader-01", "reader-02"]


# ---- a Mosquitto running the generated folder -----------------------------------------------


@dataclass
class Mosquitto:
    folder: Path
    tls_port: int
    local_port: int
    passwords: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    def start(self) -> None:
        conf = self.folder / "test-run.conf"
        conf.write_text(
            (self.folder / "mosquitto.conf").read_text()
            + f"user {getpass.getuser()}\nlog_dest file {self.folder / 'mosquitto.log'}\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + self.log())
            try:
                for port in (self.tls_port, self.local_port):
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        pass
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: " + self.log())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Mosquitto saves its persistence file on the way out
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def apply_roster(self) -> None:
        """What the operator does after add/remove-reader: SIGHUP for password_file + acl_file; a
        restart with the dynamic-security plugin (it reads its file only at start)."""
        if (self.folder / "dynamic-security.json").exists():
            self.stop()
            self.start()
        else:
            self.reload()

    def log(self) -> str:
        p = self.folder / "mosquitto.log"
        return p.read_text() if p.exists() else ""

    def reader(self, rid: str, **kw: Any) -> Peer:
        return Peer(self.tls_port, rid, self.passwords[rid], ca=self.ca, **kw)

    def gateway(self, **kw: Any) -> Peer:
        return Peer(self.local_port, "gateway", self.passwords["gateway"], **kw)


def _read_credentials(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in sorted(folder.glob("credentials-*.csv")):
        assert p.stat().st_mode & 0o777 == 0o600, p
        with p.open() as f:
            out |= {row["username"]: row["password"] for row in csv.DictReader(f)}
    return out


def generate(folder: Path, readers: list[str]) -> Mosquitto:
    tls_port, local_port = free_port(), free_port()
    pp = folder.parent / f"{folder.name}.pass"
    pp.write_text("correct horse battery staple\n")
    (folder / "db").mkdir(parents=True)
    args = ["config", "--out", str(folder), "--make-ca", "--server-name", "localhost",
            "--server-name", "127.0.0.1", "--passphrase-file", str(pp), "--tls-port", str(tls_port),
            "--local-port", str(local_port), "--persistence-dir", str(folder / "db")]  # fmt: skip
    for r in readers:
        args += ["--reader", r]
    result = CliRunner().invoke(broker_app, args)
    assert result.exit_code == 0, result.output
    m = Mosquitto(folder, tls_port, local_port)
    m.passwords = _read_credentials(folder)
    return m


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    m = generate(tmp_path_factory.mktemp("gen") / "broker", READERS)
    m.start()
    yield m
    m.stop()


# ---- an MQTT peer -----------------------------------------------------------------------------


# ---- the generated files, without a broker --------------------------------------------------


def test_reader_rules_are_the_contract_acl() -> None:
    """The per-reader blocks are tests/support/broker.py's pattern ACL (checked against asyncapi.yaml by
    test_mqtt_contract.py) with %u replaced by the reader id."""
    contract = {tuple(line.split()[1:]) for line in ACL.splitlines() if line.startswith("pattern ")}
    for rid in ("reader-01", "hn-snv-t3-p301"):
        assert {(a, t.replace(rid, "%u")) for a, t in bc.reader_rules(rid)} == contract
    text = bc.acl_file_text(["reader-01"], ["gateway"])
    block = text.split("user reader-01\n")[1].split("\n\n")[0].splitlines()
    assert {tuple(line.split()[1:]) for line in block} == set(bc.reader_rules("reader-01"))


def test_acl_model() -> None:
    acl = bc.Acl(gateway_users=frozenset({"gateway"}))
    assert acl.may_publish("r1", "cbcc/v1/r/r1/ev")
    assert not acl.may_publish("r1", "cbcc/v1/r/r2/ev")
    assert not acl.may_publish("r1", "cbcc/v1/r/r1/cmd")
    assert not acl.may_publish("r1", "cbcc/v1/all/trust")
    assert acl.may_receive("r1", "cbcc/v1/all/blob/0123abcd/7")
    assert acl.may_subscribe("r1", "cbcc/v1/all/#") and acl.may_subscribe("r1", "cbcc/v1/all/blob/+/3")
    assert not acl.may_subscribe("r1", "cbcc/v1/r/+/cmd") and not acl.may_subscribe("r1", "cbcc/v1/#")
    assert acl.may_publish("gateway", "cbcc/v1/r/r2/cmd") and acl.may_subscribe("gateway", "cbcc/v1/r/+/ev")
    assert not acl.may_publish(None, "cbcc/v1/r/r1/ev")
    with pytest.raises(bc.BrokerConfigError):
        bc.check_user("a/b")
    for bad in ("", "x+y", "x#", "a:b", "%u", "a b"):
        assert not bc.Acl().rules(bad)


def test_password_hash_format(tmp_path: Path) -> None:
    h = bc.hash_password("secret", salt=bytes(12))
    assert h.startswith("$7$101$AAAAAAAAAAAAAAAA$") and len(h.split("$")[4]) == 88
    assert bc.verify_password("secret", h) and not bc.verify_password("Secret", h)
    assert not bc.verify_password("secret", "$6$abc$def")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        require("mosquitto_passwd", "not installed (it comes with Mosquitto)")
    pw = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pw), "alice", "s3cret"], check=True)
    assert bc.verify_password("s3cret", bc.parse_password_file(pw.read_text())["alice"])


def test_generated_settings(broker: Mosquitto) -> None:
    conf = (broker.folder / "mosquitto.conf").read_text()
    lines = set(conf.splitlines())
    for want in ("allow_anonymous false", "persistence true", "tls_version tlsv1.2",
                 "max_inflight_messages 1000", f"max_queued_messages {bc.MIN_QUEUE}",
                 f"listener {broker.tls_port}", f"listener {broker.local_port} 127.0.0.1",
                 "use_username_as_clientid true", "per_listener_settings false"):  # fmt: skip
        assert want in lines, want
    assert bc.queue_depth(200, 4000) == 1_600_000 > bc.queue_depth(2) == bc.MIN_QUEUE
    # Only the two configured listeners: no stray default listener on 1883.
    assert broker.proc is not None
    listening = {c.laddr.port for c in psutil.Process(broker.proc.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}  # fmt: skip
    assert listening == {broker.tls_port, broker.local_port}
    assert (broker.folder / "ca.key").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" in (broker.folder / "ca.key").read_bytes()
    assert (broker.folder / "passwd").stat().st_mode & 0o777 == 0o600
    assert set(broker.passwords) == {"gateway", bc.ADMIN_USER, *READERS}
    assert len(set(broker.passwords.values())) == 4


def test_config_refuses_to_overwrite(broker: Mosquitto) -> None:
    result = CliRunner().invoke(broker_app, ["config", "--out", str(broker.folder), "--make-ca"])
    assert result.exit_code == 1 and "already exists" in result.output


# ---- the running broker ---------------------------------------------------------------------


def test_reader_publishes_only_its_own_topics(broker: Mosquitto) -> None:
    gw = broker.gateway(client_id="gw-acl")
    r1 = broker.reader("reader-01")
    try:
        assert gw.subscribe("cbcc/v1/#") == [1]
        r1.publish("cbcc/v1/r/reader-02/ev", b"forged")
        r1.publish("cbcc/v1/r/reader-01/cmd", b"self-command")
        r1.publish("cbcc/v1/all/trust", b"fake-manifest")
        r1.publish("cbcc/v1/r/reader-01/ev", b"ev")
        r1.publish("cbcc/v1/r/reader-01/status", b"st")
        r1.publish("cbcc/v1/r/reader-01/health", b"hl", qos=0)
        got = gw.drain()
        assert got == [("cbcc/v1/r/reader-01/ev", b"ev"), ("cbcc/v1/r/reader-01/status", b"st"),
                       ("cbcc/v1/r/reader-01/health", b"hl")]  # fmt: skip
    finally:
        r1.close()
        gw.close()


def test_reader_reads_only_its_own_and_broadcast(broker: Mosquitto) -> None:
    gw = broker.gateway(client_id="gw-read")
    r1 = broker.reader("reader-01")
    try:
        codes = r1.subscribe("cbcc/v1/r/reader-01/cmd", "cbcc/v1/r/reader-01/time", "cbcc/v1/all/#",
                             "cbcc/v1/r/reader-02/cmd", "cbcc/v1/r/+/cfg")  # fmt: skip
        assert codes[:3] == [1, 1, 1]
        gw.publish("cbcc/v1/r/reader-02/cmd", b"not-for-r1")
        gw.publish("cbcc/v1/r/reader-02/cfg", b"not-for-r1-either")
        gw.publish("cbcc/v1/r/reader-01/cmd", b"open")
        gw.publish("cbcc/v1/r/reader-01/time", b"t", qos=0)
        gw.publish("cbcc/v1/all/blob/0123abcd/0", b"chunk")
        assert set(r1.drain()) == {("cbcc/v1/r/reader-01/cmd", b"open"), ("cbcc/v1/r/reader-01/time", b"t"),
                                   ("cbcc/v1/all/blob/0123abcd/0", b"chunk")}  # fmt: skip
    finally:
        r1.close()
        gw.close()


def test_wrong_password_and_anonymous_are_refused(broker: Mosquitto) -> None:
    assert not Peer(broker.tls_port, "reader-01", "wrong", ca=broker.ca).ok
    assert not Peer(broker.tls_port, "reader-01", broker.passwords["reader-02"], ca=broker.ca).ok
    assert not Peer(broker.tls_port, None, None, ca=broker.ca).ok
    assert not Peer(broker.local_port, None, None).ok
    assert not Peer(broker.local_port, "nobody", "x").ok


def test_tls_with_the_ca_and_plain_only_on_loopback(broker: Mosquitto, tmp_path: Path) -> None:
    r = broker.reader("reader-02")
    assert r.ok
    r.close()
    other_ca, _, _ = make_ca_and_server_cert(tmp_path)
    with pytest.raises(OSError):  # ssl.SSLCertVerificationError: not our CA
        Peer(broker.tls_port, "reader-02", broker.passwords["reader-02"], ca=other_ca)
    # 127.0.0.2 is loopback too but not the address the plain listener is bound to; the TLS
    # listener (every interface) answers there.
    with socket.create_connection(("127.0.0.2", broker.tls_port), timeout=2):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", broker.local_port), timeout=2)


def test_a_reader_cannot_take_over_the_gateway_session(broker: Mosquitto) -> None:
    """With client id = username, a reader that claims the gateway's client id gets its own."""
    gw = broker.gateway(client_id="gateway", clean=False)
    try:
        gw.subscribe("cbcc/v1/r/+/ev")
        impostor = broker.reader("reader-01", client_id="gateway", clean=True)
        assert impostor.ok
        impostor.publish("cbcc/v1/r/reader-01/ev", b"still-here")
        assert gw.drain() == [("cbcc/v1/r/reader-01/ev", b"still-here")]
        assert not gw.disconnected
        impostor.close()
    finally:
        gw.close()


def test_batching_gateway_is_not_throttled_to_20_in_flight(broker: Mosquitto) -> None:
    """A manual-ack gateway holds 200 unacknowledged messages at once, over MQTT 3.1.1
    (max_inflight_messages 1000) and over MQTT 5 (its Receive Maximum 65535 replaces it)."""
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 65535
    for kw in ({}, {"protocol": paho.MQTTv5, "properties": props}):
        gw = broker.gateway(manual_ack=True, **kw)
        r1 = broker.reader("reader-01")
        try:
            gw.subscribe("cbcc/v1/r/reader-01/ev")
            for i in range(200):
                r1.c.publish("cbcc/v1/r/reader-01/ev", b"%03d" % i, qos=1)
            got = gw.take(200, timeout=15)  # none acknowledged yet
            assert [m.payload for m in got] == [b"%03d" % i for i in range(200)], kw
            for m in got:
                gw.c.ack(m.mid, m.qos)
        finally:
            r1.close()
            gw.close()


def test_add_and_remove_a_reader_then_sighup(broker: Mosquitto) -> None:
    runner = CliRunner()
    result = runner.invoke(broker_app, ["add-reader", str(broker.folder), "reader-03"])
    assert result.exit_code == 0 and "kill -HUP" in result.output, result.output
    broker.passwords = _read_credentials(broker.folder)
    assert not broker.reader("reader-03").ok  # not before the reload
    broker.apply_roster()
    gw = broker.gateway(client_id="gw-add")
    r3 = broker.reader("reader-03")
    try:
        assert r3.ok
        gw.subscribe("cbcc/v1/r/+/ev")
        r3.publish("cbcc/v1/r/reader-02/ev", b"forged")
        r3.publish("cbcc/v1/r/reader-03/ev", b"hello")
        assert gw.drain() == [("cbcc/v1/r/reader-03/ev", b"hello")]
    finally:
        r3.close()
        gw.close()
    assert runner.invoke(broker_app, ["add-reader", str(broker.folder), "reader-03"]).exit_code == 1
    result = runner.invoke(broker_app, ["remove-reader", str(broker.folder), "reader-03"])
    assert result.exit_code == 0, result.output
    broker.apply_roster()
    assert not broker.reader("reader-03").ok
    assert broker.reader("reader-01").ok


def test_queued_message_for_offline_gateway_survives_restart(tmp_path: Path) -> None:
    m = generate(tmp_path / "broker", ["reader-01"])
    m.start()
    try:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 86400
        gw = m.gateway(protocol=paho.MQTTv5, clean=False, properties=props)
        gw.subscribe("cbcc/v1/r/+/ev")
        gw.close()
        r1 = m.reader("reader-01")
        r1.publish("cbcc/v1/r/reader-01/ev", b"tap-while-gateway-down")
        r1.close()
        m.stop()
        assert (tmp_path / "broker" / "db" / "mosquitto.db").exists()
        m.start()
        gw = m.gateway(protocol=paho.MQTTv5, clean=False, properties=props)
        try:
            assert gw.drain(3) == [("cbcc/v1/r/reader-01/ev", b"tap-while-gateway-down")]
        finally:
            gw.close()
    finally:
        m.stop()
    assert os.stat(tmp_path / "broker" / "passwd").st_mode & 0o777 == 0o600


def test_add_reader_takes_the_password_the_gateway_made(broker: Mosquitto, tmp_path: Path) -> None:
    """`cbcc gateway reader add --secrets-out` makes the password; the broker must use that one."""
    import json

    from gateway.mqtt.broker_config import BrokerFiles, verify_password

    runner = CliRunner()
    secrets = tmp_path / "r4.secrets.json"
    secrets.write_text(json.dumps({"reader_id": "reader-04", "mac_key": "00" * 32,
                                   "mqtt_password": "gateway-made-password-0123"}))  # fmt: skip
    folder = str(broker.folder)
    wrong = runner.invoke(broker_app, ["add-reader", folder, "reader-05", "--secrets", str(secrets)])
    assert wrong.exit_code == 1 and "not the secrets file of reader reader-05" in wrong.output
    result = runner.invoke(broker_app, ["add-reader", folder, "reader-04", "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    stored = BrokerFiles(broker.folder).load_hashes()["reader-04"]
    assert verify_password("gateway-made-password-0123", stored)
    assert runner.invoke(broker_app, ["remove-reader", str(broker.folder), "reader-04"]).exit_code == 0


def test_add_and_remove_a_reader_live_without_restart(broker: Mosquitto, tmp_path: Path) -> None:
    """--live: the running Mosquitto learns the new reader through $CONTROL/dynamic-security/v1 (as
    cbcc-admin) — it connects and publishes with no restart — and a removed reader is disconnected
    at once and refused afterwards; the files are written for the next start as before."""
    assert (broker.folder / "dynamic-security.json").exists()
    admin = tmp_path / "admin.pass"
    admin.write_text(broker.passwords[bc.ADMIN_USER] + "\n")
    live = ["--live", f"127.0.0.1:{broker.local_port}", "--admin-password-file", str(admin)]
    runner = CliRunner()
    pid = broker.proc.pid if broker.proc is not None else None
    result = runner.invoke(broker_app, ["add-reader", str(broker.folder), "reader-07", *live])
    assert result.exit_code == 0 and "no restart" in result.output, result.output
    broker.passwords = _read_credentials(broker.folder)
    gw = broker.gateway(client_id="gw-live")
    r7 = broker.reader("reader-07")
    try:
        assert r7.ok  # no restart happened
        assert broker.proc is not None and broker.proc.pid == pid
        gw.subscribe("cbcc/v1/r/+/ev")
        r7.publish("cbcc/v1/r/reader-01/ev", b"forged")  # its role is the contract's, as in the file
        r7.publish("cbcc/v1/r/reader-07/ev", b"live")
        assert gw.drain() == [("cbcc/v1/r/reader-07/ev", b"live")]
        # the same reader again (a second run of a set-up): its password and role are set again
        with dynsec_admin.connect(f"127.0.0.1:{broker.local_port}", admin) as a:
            a.add_reader("reader-07", broker.passwords["reader-07"])
        result = runner.invoke(broker_app, ["remove-reader", str(broker.folder), "reader-07", *live])
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 5
        while not r7.disconnected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r7.disconnected  # kicked by deleteClient
        assert not broker.reader("reader-07").ok
    finally:
        r7.close()
        gw.close()
    assert "reader-07" not in bc.BrokerFiles(broker.folder).load_roster().readers
    assert broker.reader("reader-01").ok


def test_live_needs_the_admin(broker: Mosquitto, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-the-admin-password\n")
    live = f"127.0.0.1:{broker.local_port}"
    r = CliRunner().invoke(broker_app, ["add-reader", str(broker.folder), "reader-08", "--live", live,
                                        "--admin-password-file", str(wrong)])  # fmt: skip
    assert r.exit_code == 1 and "refused the admin user" in r.output, r.output
    assert "reader-08" not in bc.BrokerFiles(broker.folder).load_roster().readers  # nothing changed
    r = CliRunner().invoke(broker_app, ["add-reader", str(broker.folder), "reader-08", "--live", live])
    assert r.exit_code == 1 and "--admin-password-file" in r.output, r.output


def test_gateway_api_registration_reaches_the_running_broker(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway on this Mosquitto with ``[mqtt] admin_password_file``: a reader registered through
    the API logs in at once (no restart, no `cbcc broker`), disabling it disconnects and refuses
    it, enabling it lets it back — the registration's password is the broker's."""
    from fastapi.testclient import TestClient

    from gateway import bootstrap
    from gateway.service import Gateway
    from gateway.settings import load_settings

    monkeypatch.setenv("CBCC_PASSPHRASE", "mật khẩu thử nghiệm")
    admin = tmp_path / "admin.pass"
    admin.write_text(broker.passwords[bc.ADMIN_USER] + "\n")
    settings = load_settings(
        None, data_dir=tmp_path / "data", database={"url": f"sqlite:///{tmp_path / 'gw.db'}"},
        mqtt={"embedded": False, "host": "127.0.0.1", "port": broker.local_port, "username": "gateway",
              "password": broker.passwords["gateway"], "admin_password_file": str(admin)},
    )  # fmt: skip
    token = bootstrap.init(settings, None).admin_token
    gw = Gateway(settings)
    gw.start()
    pid = broker.proc.pid if broker.proc is not None else None
    try:
        with TestClient(gw.app) as c:
            auth = {"Authorization": f"Bearer {token}"}
            r = c.post("/api/v1/readers", json={"id": "reader-09", "site": "hn-snv", "role": "door"},
                       headers=auth)  # fmt: skip
            assert r.status_code == 201, r.text
            password = r.json()["mqtt_password"]
            broker.passwords["reader-09"] = password
            r9 = broker.reader("reader-09")
            assert r9.ok and broker.proc is not None and broker.proc.pid == pid
            r = c.patch("/api/v1/readers/reader-09", json={"enabled": False}, headers=auth)
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 5
            while not r9.disconnected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert r9.disconnected  # disableClient kicked it
            r9.close()
            assert not broker.reader("reader-09").ok
            r = c.patch("/api/v1/readers/reader-09", json={"enabled": True}, headers=auth)
            assert r.status_code == 200, r.text
            again = broker.reader("reader-09")
            assert again.ok
            again.close()
    finally:
        gw.stop()


def test_a_reader_a_gateway_added_live_survives_a_folder_change(broker: Mosquitto, tmp_path: Path) -> None:
    """A gateway with ``[mqtt] admin_password_file`` registers a reader in the running broker only
    (``gateway.service.teach_broker``): Mosquitto's plugin saves it to dynamic-security.json,
    roster.json does not list it. ``cbcc broker add-reader`` of another reader then rewrites the
    folder (no --live: applied by a restart) — and must carry the first one over, or it is locked
    out after the restart."""
    from gateway.service import teach_broker
    from gateway.settings import MqttSettings, Settings

    admin = tmp_path / "admin.pass"
    admin.write_text(broker.passwords[bc.ADMIN_USER] + "\n")
    mqtt = MqttSettings(embedded=False, host="127.0.0.1", port=broker.local_port, admin_password_file=admin)
    settings = Settings(data_dir=tmp_path / "gw", mqtt=mqtt)
    assert teach_broker(settings, "reader-11", "gateway-made-password-1111")
    files = bc.BrokerFiles(broker.folder)
    deadline = time.monotonic() + 10  # the plugin saves its state after the command
    while "reader-11" not in files.dynsec.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reader-11" not in files.load_roster().readers  # known to the broker only
    result = CliRunner().invoke(broker_app, ["add-reader", str(broker.folder), "reader-12"])
    assert result.exit_code == 0, result.output
    assert {"reader-11", "reader-12"} <= set(files.load_roster().readers)
    assert bc.verify_password("gateway-made-password-1111", files.load_hashes()["reader-11"])
    broker.passwords = _read_credentials(broker.folder) | {"reader-11": "gateway-made-password-1111"}
    broker.apply_roster()
    for rid in ("reader-11", "reader-12"):
        peer = broker.reader(rid)
        try:
            assert peer.ok, rid
        finally:
            peer.close()
    for rid in ("reader-11", "reader-12"):  # now in the roster, so removable like any other
        assert CliRunner().invoke(broker_app, ["remove-reader", str(broker.folder), rid]).exit_code == 0
    broker.apply_roster()
    assert not broker.reader("reader-11").ok
