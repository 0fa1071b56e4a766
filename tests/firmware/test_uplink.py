"""The reader's uplink (firmware/lib/uplink.py) under the MicroPython unix port, against a real
Mosquitto with TLS, passwords and the contract's ACL; tests/support/gateway_double.py plays the gateway
and checks everything the reader sends independently of the firmware.

Each test runs one reader process (tests/mpy/uplink_probe.py) with its journal on a file-backed
NOR flash and its state folder on disk, so a reader can be killed (SIGKILL: a power cut as far
as the process is concerned) and started again on the same journal and files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.broker import Broker
from support.gateway_double import ROOT as TOPIC_ROOT
from support.gateway_double import GatewayDouble
from support.host import NOW, T2024, T2044, root_key, rsa_key, setup
from support.micropython_runner import ROOT

from simulators.firmware_runner import micropython_binary, micropython_env
from trustcore import keys, revocation, trust_list
from trustcore import reader_config as rc

PROBE = ROOT / "tests" / "mpy" / "uplink_probe.py"
READERS = ("rdr-ev", "rdr-cfg", "rdr-cmd", "rdr-time", "rdr-junk", "rdr-list")
USERS = {rid: "pw-" + rid for rid in READERS} | {"gateway": "pw-gateway"}
MAC_KEYS = {rid: hashlib.sha256(b"mac key of " + rid.encode()).digest() for rid in READERS}
FIGURES: dict[str, Any] = {}


class PersistentBroker(Broker):
    """tests/support/broker.py's Mosquitto with persistence on, so a restart keeps retained messages,
    persistent sessions and the messages queued for them, as a production broker does. Without
    it the gateway double would miss whatever a reader sent between the broker's restart and the
    gateway's own re-subscription: the broker acknowledges a publish nobody is subscribed to."""

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        if not conf.exists():
            super().start()  # writes the CA, passwords, ACL and configuration, then runs it
            super().stop()
            on = f"persistence true\npersistence_location {self.folder}/\n"
            conf.write_text(conf.read_text().replace("persistence false\n", on))
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start: " + self.log())


@dataclass(frozen=True)
class Env:
    broker: PersistentBroker
    gw: GatewayDouble
    ca_der: Path
    config_key_file: Path
    root_file: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("uplink-broker")
    b = PersistentBroker(folder, USERS)
    b.start()
    ca_der = folder / "ca.der"
    ca_der.write_bytes(
        x509.load_pem_x509_certificate(b.ca.read_bytes()).public_bytes(serialization.Encoding.DER)
    )
    cfg_file = folder / "config.cose_key"
    cfg_file.write_bytes(keys.cose_key_bytes(rsa_key("config").public_key()))
    root_file = folder / "root.cose_key"
    root_file.write_bytes(keys.cose_key_bytes(root_key().public_key()))
    gw = GatewayDouble(b.port, USERS["gateway"], MAC_KEYS, rsa_key("config"))
    yield Env(b, gw, ca_der, cfg_file, root_file)
    gw.close()
    b.stop()
    if FIGURES:
        print("\nuplink figures: " + json.dumps(FIGURES))


class Reader:
    """One probe process; its JSON lines are collected by a thread."""

    def __init__(self, env: Env, rid: str, folder: Path, **opts: Any) -> None:
        state = folder / "state"
        state.mkdir(parents=True, exist_ok=True)
        self.cfg = {"rid": rid, "password": USERS[rid], "mac": MAC_KEYS[rid].hex(),
                    "tls_port": env.broker.tls_port, "ca": str(env.ca_der),
                    "flash": str(folder / "flash.bin"), "state": str(state),
                    "config_key": str(env.config_key_file), "root": str(env.root_file), **opts}  # fmt: skip
        self.lines: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.err: list[str] = []
        conf = folder / f"probe-{time.monotonic_ns()}.json"
        conf.write_text(json.dumps(self.cfg))
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=2M", str(PROBE), str(conf)],
            cwd=ROOT, env=micropython_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.ready = self.wait("ready", timeout=30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self.cond:
                    self.lines.append(json.loads(line))
                    self.cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def find(self, ev: str, pred: Callable[[dict[str, Any]], bool] | None = None,
             start: int = 0) -> list[dict[str, Any]]:  # fmt: skip
        with self.cond:
            return [x for x in self.lines[start:] if x.get("ev") == ev and (pred is None or pred(x))]

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def wait(self, ev: str, pred: Callable[[dict[str, Any]], bool] | None = None, *, start: int = 0,
             timeout: float = 20) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for x in self.lines[start:]:
                    if x.get("ev") == ev and (pred is None or pred(x)):
                        return x
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {ev!r} from the reader; stderr: {''.join(self.err)[-2000:]}")
                self.cond.wait(min(left, 0.2))

    def send(self, **op: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(op) + "\n")
        self.proc.stdin.flush()

    def stats(self) -> dict[str, Any]:
        m = self.mark()
        self.send(op="stats")
        return self.wait("stats", start=m)

    def drained(self, timeout: float = 10) -> dict[str, Any]:
        """Stats once every journal record has its PUBACK."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if s["journal"]["depth"] == 0 or time.monotonic() > deadline:
                return s
            time.sleep(0.05)

    def applied(self, what: str, status: str, *, start: int = 0, timeout: float = 20) -> dict[str, Any]:
        return self.wait("applied", lambda x: x["what"] == what and x["status"] == status, start=start,
                         timeout=timeout)  # fmt: skip

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        assert not [e for e in self.err if "Traceback" in e], "".join(self.err)


@pytest.fixture
def readers() -> Iterator[list[Reader]]:
    made: list[Reader] = []
    yield made
    for r in made:
        r.close()


def start(readers: list[Reader], env: Env, rid: str, folder: Path, **opts: Any) -> Reader:
    r = Reader(env, rid, folder, **opts)
    readers.append(r)
    return r


# ---- events: in order, exactly once at the gateway -----------------------------------------------


@pytest.mark.micropython
def test_journal_delivered_in_order_exactly_once_through_outage_and_kill(
    env: Env, tmp_path: Path, readers: list[Reader]
) -> None:
    rid, gw = "rdr-ev", env.gw
    r = start(readers, env, rid, tmp_path, blocks=16)
    r.wait("connected")

    # One tap at a time: from the app's append (kick) to the gateway.
    lat = []
    for i in range(5):
        t0 = time.monotonic()
        r.send(op="append", n=1, tag="single")
        assert gw.wait_records(rid, i + 1)
        lat.append(time.monotonic() - t0)
    FIGURES["single_tap_to_gateway_ms"] = round(sorted(lat)[2] * 1000, 1)

    # A burst while connected: the delivery rate through TLS, QoS 1, a window of 8.
    t0 = time.monotonic()
    r.send(op="append", n=300, tag="burst")
    assert gw.wait_records(rid, 305, timeout=30)
    FIGURES["delivery_records_per_s"] = round(300 / (time.monotonic() - t0))

    # Taps go on while the broker is down (offline taps), then the broker returns.
    mark = r.mark()
    r.send(op="append", n=150, every_ms=10, tag="outage")
    assert gw.wait_records(rid, 325)
    env.broker.stop()
    r.wait("disconnected", start=mark)
    time.sleep(1.0)
    env.broker.start()
    t_up = time.monotonic()
    back = r.wait("connected", start=mark, timeout=15)
    FIGURES["reconnect_after_broker_restart_s"] = round(time.monotonic() - t_up, 2)  # mostly backoff
    FIGURES["tls_connect_ms"] = back["ms"]  # TCP + TLS handshake + CONNACK
    assert back["session_present"] is True  # the persistent session survived the restart
    r.wait("appended", lambda x: x["tag"] == "outage", start=mark)
    assert gw.wait_records(rid, 455, timeout=30)

    # Killed in the middle of a stream, then started again on the same journal.
    r.send(op="append", n=200, every_ms=3, tag="kill")
    assert gw.wait_records(rid, 505)
    r.kill()
    r2 = start(readers, env, rid, tmp_path, blocks=16)
    j = r2.ready["journal"]
    assert j["last_seq"] >= 505 and j["delivered_seq"] <= j["last_seq"]
    r2.wait("connected")
    r2.send(op="append", n=20, tag="after")
    last = r2.wait("appended")["last"]
    assert gw.wait_records(rid, last, timeout=30)
    s = r2.drained()
    assert s["journal"]["depth"] == 0 and s["journal"]["delivered_seq"] == last
    FIGURES["reader_heap_in_use_kb"] = round(s["heap_used"] / 1024)  # whole probe, 64-bit unix port

    view = gw.reader(rid)
    assert gw.gaps(rid, last) == []
    assert view.conflicts == [] and view.quarantine == [] and view.out_of_order == 0
    assert view.first_seen == list(range(1, last + 1))
    staff = [rec.get(13) for _, rec in gw.records(rid)]
    assert staff[:305] == ["single-0"] * 5 + [f"burst-{i}" for i in range(300)]
    assert [x for x in staff if x and x.startswith("outage-")] == [f"outage-{i}" for i in range(150)]
    kill = [x for x in staff if x and x.startswith("kill-")]
    assert kill == [f"kill-{i}" for i in range(len(kill))]  # a prefix: the rest died unrecorded
    assert [x for x in staff if x and x.startswith("after-")] == [f"after-{i}" for i in range(20)]
    FIGURES["wire_duplicates_after_outage_and_kill"] = view.duplicates
    FIGURES["records_delivered"] = last
    # The retained status tells the gateway the reader is back; a killed reader's will said offline.
    assert gw.wait(lambda: gw.last_status(rid).get(1) is True)
    assert {1: False} in view.status


# ---- configuration -------------------------------------------------------------------------------


def _config(seq: int, reader: str, key: Any = None) -> bytes:
    src = {"reader_id": reader, "door": [{"id": "d1", "name": "Cửa chính"}]}
    return rc.build(src, key or rsa_key("config"), seq, 1780000000)


@pytest.mark.micropython
def test_config_applied_and_rollback_tamper_wrong_reader_refused(
    env: Env, tmp_path: Path, readers: list[Reader]
) -> None:
    rid, gw = "rdr-cfg", env.gw
    r = start(readers, env, rid, tmp_path, report_every=0)
    r.wait("connected")
    gw.send_config(rid, _config(3, rid))
    r.applied("config", "ok")
    assert gw.wait(lambda: gw.last_status(rid).get(5) == 3)

    good4 = _config(4, rid)
    tampered = bytearray(good4)
    tampered[-5] ^= 0x01
    cases = [
        (_config(2, rid), "rollback"),
        (bytes(tampered), "bad_signature"),
        (_config(9, "rdr-other"), "wrong_reader"),
        (_config(9, rid, rsa_key("not-the-config-key")), "unknown_root"),
        (b"\xa1\x01\x02", "malformed"),
        (b"", "malformed"),
    ]
    for blob, status in cases:
        m = r.mark()
        gw.send_config(rid, blob)
        r.applied("config", status, start=m)
    assert r.stats()["config"] == 3
    gw.send_config(rid, good4)
    r.applied("config", "ok", start=m)
    assert gw.wait(lambda: gw.last_status(rid).get(5) == 4)

    # Kept on flash: a restarted reader holds seq 4 before the broker says anything.
    r.kill()
    r2 = start(readers, env, rid, tmp_path, report_every=0)
    assert r2.ready["held"]["config"] == "ok"
    r2.wait("connected")
    assert r2.stats()["config"] == 4
    # Every outcome reached the gateway as a journalled notice; the retained seq 4 is a no-op.
    want = ["ok", "rollback", "bad_signature", "wrong_reader", "unknown_root", "malformed", "malformed", "ok"]
    assert gw.wait(lambda: len([n for n in gw.notices(rid) if n["what"] == "config"]) >= len(want))
    time.sleep(0.5)
    assert [n["status"] for n in gw.notices(rid) if n["what"] == "config"] == want
    assert r2.find("applied", lambda x: x["what"] == "config") == []


# ---- commands ------------------------------------------------------------------------------------


@pytest.mark.micropython
def test_commands_executed_once_replay_expired_and_foreign_refused(
    env: Env, tmp_path: Path, readers: list[Reader]
) -> None:
    rid, gw = "rdr-cmd", env.gw
    r = start(readers, env, rid, tmp_path, clock={"quality": 2}, report_every=0)
    r.wait("connected")
    now = int(time.time())
    gw.cmd_seq = 100
    open1 = gw.command_blob(rid, "open", {"door": "d1"})
    gw.send_command(rid, open1)
    r.wait("command", lambda x: x["action"] == "open")
    r.applied("cmd", "ok")

    refusals = [
        (open1, "replay"),
        (gw.command_blob(rid, "open", exp=now - 60), "expired"),
        (gw.command_blob("rdr-someone-else", "open"), "wrong_reader"),
        (gw.command_blob(rid, "selfdestruct"), "unknown_action"),
        (gw.command_blob(rid, "open", key=rsa_key("not-the-config-key")), "unknown_root"),
        (b"\xd2\x84garbage", "malformed"),
    ]
    for blob, status in refusals:
        m = r.mark()
        gw.send_command(rid, blob)
        r.applied("cmd", status, start=m)
    m = r.mark()
    lockdown = gw.command_blob("*", "lockdown")
    gw.send_command("*", lockdown)
    r.wait("command", lambda x: x["action"] == "lockdown", start=m)
    m = r.mark()
    gw.send_command(rid, gw.command_blob(rid, "resync"))  # the uplink also asks for retained objects again
    r.wait("command", lambda x: x["action"] == "resync", start=m)
    assert [x["action"] for x in r.find("command")] == ["open", "lockdown", "resync"]
    assert r.stats()["cmd_seq"] == gw.cmd_seq

    # The last executed seq is on flash: after a restart the same command is still a replay. A
    # command sent while the reader was off waits in its persistent session and runs on return.
    # With the clock unset an expired command runs (its expiry cannot be judged), once. A command
    # whose action fails is reported as failed and costs the link nothing.
    r.kill()
    gw.send_command(rid, gw.command_blob(rid, "open", {"door": "queued"}))
    r2 = start(readers, env, rid, tmp_path, clock={"quality": 0}, report_every=0, raise_on=["reboot"])
    r2.wait("command", lambda x: x["args"] == {"door": "queued"})
    m = r2.mark()
    gw.send_command("*", lockdown)
    r2.applied("cmd", "replay", start=m)
    gw.send_command(rid, gw.command_blob(rid, "release", exp=now - 60))
    r2.wait("command", lambda x: x["action"] == "release")
    gw.send_command(rid, gw.command_blob(rid, "reboot"))
    r2.applied("cmd", "failed")
    assert [x["action"] for x in r2.find("command")] == ["open", "release", "reboot"]
    r2.wait("connected")
    s = r2.stats()
    assert s["cmd_seq"] == gw.cmd_seq and s["uplink"]["connects"] == 1 and s["connected"]
    # Every command, executed or refused, reached the gateway in the journal.
    want = ["ok", "replay", "expired", "wrong_reader", "unknown_action", "unknown_root", "malformed", "ok",
            "ok", "ok", "replay", "ok", "failed"]  # fmt: skip
    assert gw.wait(lambda: len([n for n in gw.notices(rid) if n["what"] == "cmd"]) >= len(want))
    assert [n["status"] for n in gw.notices(rid) if n["what"] == "cmd"] == want


# ---- time ----------------------------------------------------------------------------------------


@pytest.mark.micropython
def test_time_reply_needs_the_mac_and_the_current_nonce(
    env: Env, tmp_path: Path, readers: list[Reader]
) -> None:
    rid, gw = "rdr-time", env.gw
    gw.time_mode = "bad_mac"
    try:
        r = start(readers, env, rid, tmp_path, clock={"quality": 0}, health_every=0.3)
        r.applied("time", "bad_mac")
        gw.time_mode = "stale"  # a genuine reply, but to an earlier heartbeat
        r.applied("time", "stale")
        gw.publish(f"{TOPIC_ROOT}r/{rid}/time", cbor2.dumps(["not", "a", "reply"]), qos=0)
        r.applied("time", "malformed")
        assert r.find("clock") == [] and r.stats()["clock_ms"] is None
        gw.time_mode = "ok"
        gw.time_offset_ms = 12345
        got = r.wait("clock")
        assert abs(got["unix_ms"] - (time.time() * 1000 + 12345)) < 2000
        health = gw.reader(rid).health[-1]
        assert set(health) >= {1, 2, 3, 4, 5, 6, 7, 8} and len(health[8]) == 8
    finally:
        gw.time_mode = "ok"
        gw.time_offset_ms = 0


# ---- bad messages on every topic -----------------------------------------------------------------


@pytest.mark.micropython
def test_garbage_and_oversize_on_every_topic_are_counted_and_never_stop_the_reader(
    env: Env, tmp_path: Path, readers: list[Reader]
) -> None:
    rid, gw = "rdr-junk", env.gw
    r = start(readers, env, rid, tmp_path, report_every=60)
    r.wait("connected")
    junk = [b"", b"\xff", os.urandom(64), cbor2.dumps({0: "cmd"}), cbor2.dumps([1, 2, 3]),
            b"\xd2\x84\x40\xa0\x40\x40", b"\x9f" * 40]  # fmt: skip
    topics = [f"{TOPIC_ROOT}r/{rid}/cfg", f"{TOPIC_ROOT}r/{rid}/cmd", f"{TOPIC_ROOT}r/{rid}/time",
              f"{TOPIC_ROOT}all/trust", f"{TOPIC_ROOT}all/crl", f"{TOPIC_ROOT}all/cmd"]  # fmt: skip
    sent = 0
    for t in topics:
        for j in junk:
            gw.publish(t, j)
            sent += 1
    big = os.urandom(20000)  # beyond any valid message: skipped without dropping the connection
    gw.publish(f"{TOPIC_ROOT}r/{rid}/cmd", big)
    gw.publish(f"{TOPIC_ROOT}r/{rid}/cfg", big, retain=True)
    sent += 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = r.stats()
        if s["uplink"]["rejected"] >= sent:
            break
        time.sleep(0.2)
    u = s["uplink"]
    assert u["rejected"] == sent and u["oversize"] == 2
    assert u["connects"] == 1 and s["connected"] is True and u["errors"] == 0
    # Reported, throttled: one notice per (topic kind, reason), not one per message.
    notes = [(x["what"], x["status"]) for x in r.find("applied")]
    assert len(notes) == len(set(notes)) and len(notes) < sent
    assert ("cmd", "oversize") in notes and ("config", "oversize") in notes
    assert {w for w, _ in notes} >= {"config", "cmd", "time", "trust_manifest", "crl_manifest"}
    # Still delivering.
    r.send(op="append", n=5, tag="still")
    last = r.wait("appended")["last"]
    assert gw.wait_records(rid, last)
    assert gw.gaps(rid) == []
    # The retained oversize configuration comes again on every connection and is skipped again.
    r.kill()
    r2 = start(readers, env, rid, tmp_path)
    r2.applied("config", "oversize")
    assert r2.stats()["uplink"]["connects"] == 1
    gw.clear_retained(f"{TOPIC_ROOT}r/{rid}/cfg")


# ---- lists: chunked, resumable, verified ---------------------------------------------------------


def _trust(seq: int, n_issuers: int = 10) -> bytes:
    base = setup().entry
    entries = [base]
    for i in range(n_issuers - 1):
        lo = 200000 + i * 1000
        entries.append(trust_list.IssuerEntry(rsa_key(f"issuer-{i}").public_key(), T2024, T2044, lo, lo + 999,
                                              f"Cơ quan {i}"))  # fmt: skip
    return trust_list.build(root_key(), seq, NOW, entries)


@pytest.fixture
def clean_lists(env: Env) -> Iterator[None]:
    yield
    for kind in ("trust", "crl"):
        env.gw.clear_retained(f"{TOPIC_ROOT}all/{kind}")


@pytest.mark.micropython
def test_trust_list_in_chunks_resumes_after_a_kill_and_bad_objects_keep_the_old_list(
    env: Env, tmp_path: Path, readers: list[Reader], clean_lists: None
) -> None:
    rid, gw = "rdr-list", env.gw
    state = tmp_path / "state"
    state.mkdir()
    (state / "trust.cbor").write_bytes(setup().trust_blob)  # provisioned: seq 5
    new = _trust(6)
    chunk = 512
    n = (len(new) + chunk - 1) // chunk
    assert n >= 6
    first = n // 2
    r = start(readers, env, rid, tmp_path, report_every=0)
    assert r.ready["held"]["trust"] == "ok"
    r.wait("connected")
    gw.send_chunks(new, chunk, range(first))
    gw.send_manifest("trust", gw.manifest_blob("trust", new, 6, chunk))
    r.wait("chunk", lambda x: x["have"] == first)
    r.kill()  # power cut in the middle of the download

    gw.send_chunks(new, chunk, range(first, n))
    r2 = start(readers, env, rid, tmp_path, report_every=0)
    assert r2.wait("resume")["have"] == first
    r2.applied("trust", "ok", timeout=30)
    s = r2.stats()
    assert s["trust"] == 6 and s["transfers"] == {}
    assert len(r2.find("chunk")) == n - first  # nothing written twice
    assert (state / "trust.cbor").read_bytes() == new
    assert not (state / "trust.part").exists() and not (state / "trust.prog").exists()
    assert gw.wait(lambda: gw.last_status(rid).get(3) == 6)

    # Bad objects: the held list (seq 6) stays, the staging file goes.
    other = _trust(7, 9)
    lying_sha = hashlib.sha256(other).digest()
    corrupt = bytearray(other)
    corrupt[len(corrupt) // 2] ^= 0x40
    bad_sig = bytearray(_trust(8))
    bad_sig[-3] ^= 0x01
    old = _trust(4)
    cases = [
        ("bad_digest", bytes(corrupt), 7, lying_sha),    # chunks do not hash to the manifest's SHA
        ("bad_signature", bytes(bad_sig), 8, None),        # intact transfer of a forged list
        ("rollback", old, 9, None),                        # manifest says 9, the list itself is seq 4
    ]
    for status, obj, seq, sha in cases:
        m = r2.mark()
        gw.send_chunks(obj, chunk, sha=sha)
        gw.send_manifest("trust", gw.manifest_blob("trust", other if sha else obj, seq, chunk, sha=sha))
        r2.applied("trust", status, start=m)
        s = r2.stats()
        assert s["trust"] == 6 and s["transfers"] == {}
        assert (state / "trust.cbor").read_bytes() == new
        assert not (state / "trust.part").exists()
    m = r2.mark()
    gw.send_manifest("trust", b"\xd2\x84\x40\xa0\x40\x40")
    r2.applied("trust_manifest", "malformed", start=m)
    gw.send_manifest("trust", gw.manifest_blob("trust", new, 10, 4096))
    r2.applied("trust_manifest", "malformed", start=m)  # chunks over 2 KiB
    gw.send_manifest("trust", gw.manifest_blob("trust", new, 5, chunk))
    r2.applied("trust_manifest", "rollback", start=m)

    # Chunks that do not fit the manifest are refused; the transfer goes on with the right ones.
    small = _trust(11, 3)
    sha8 = hashlib.sha256(small).digest()[:4].hex()
    gw.publish(f"{TOPIC_ROOT}all/blob/{sha8}/0", b"x" * 100, retain=True)
    gw.publish(f"{TOPIC_ROOT}all/blob/{sha8}/50", b"y" * chunk, retain=True)
    m = r2.mark()
    gw.send_manifest("trust", gw.manifest_blob("trust", small, 11, chunk))
    r2.applied("trust_chunk", "bad_length", start=m)
    r2.applied("trust_chunk", "bad_index", start=m)
    gw.send_chunks(small, chunk)
    r2.applied("trust", "ok", start=m)
    assert r2.stats()["trust"] == 11
    gw.clear_retained(f"{TOPIC_ROOT}all/blob/{sha8}/50")

    # A revocation list the same way (one shot).
    crl = revocation.build(root_key(), 2, NOW, [1005, 1006, 77777])
    m = r2.mark()
    gw.offer_list("crl", crl, 2, chunk=256)
    r2.applied("crl", "ok", start=m)
    assert gw.wait(lambda: gw.last_status(rid).get(4) == 2)
    assert r2.stats()["crl"] == 2


# ---- the pieces on their own (CPython runs the same firmware modules) ------------------------------


def _uplink(tmp_path: Path, rng: Callable[[], float]) -> Any:
    import uplink

    settings = {"reader_id": "r1", "password": "pw", "mac_key": b"k" * 32, "host": "127.0.0.1", "port": 1,
                "state_dir": str(tmp_path), "backoff_min_s": 1, "backoff_max_s": 300}
    return uplink.Uplink(settings, None, {}, rng=rng)


def test_backoff_doubles_with_jitter_between_min_and_max(tmp_path: Path) -> None:
    low, high = _uplink(tmp_path, lambda: 0.0), _uplink(tmp_path, lambda: 0.9999)
    assert [low.backoff_ms(a) for a in range(4)] == [1000, 1000, 2000, 4000]
    assert [high.backoff_ms(a) for a in range(4)] == [1000, 1999, 3999, 7999]
    for a in range(40):  # never above the cap, never below the floor, never overflowing
        for u in (low, high):
            assert 1000 <= u.backoff_ms(a) <= 300000
    assert high.backoff_ms(30) == 299985 and low.backoff_ms(30) == 150000
    broken = _uplink(tmp_path, lambda: 1 / 0)  # a failing random source still gives a delay
    assert broken.backoff_ms(3) == 6000


def test_chunk_topics_parse_strictly() -> None:
    import blob_transfer as bt

    assert bt.parse_chunk_topic("cbcc/v1/all/blob/0a1b2c3d/0") == ("0a1b2c3d", 0)
    assert bt.parse_chunk_topic("cbcc/v1/all/blob/0a1b2c3d/31") == ("0a1b2c3d", 31)
    blob = "cbcc/v1/all/blob/"
    bad_topics = [blob + "0a1b2c3d/", blob + "0a1b2c3d/01", blob + "0a1b2c3/1", blob + "0a1b2c3d/1/2",
                  blob + "0a1b2c3d/-1", blob + "0a1b2c3d/123456", blob + "0a1b2c3dd/1", "cbcc/v1/all/trust"]
    for bad in bad_topics:
        assert bt.parse_chunk_topic(bad) == (None, -1), bad


def test_transfer_resumes_from_its_progress_file_and_discards_damage(tmp_path: Path) -> None:
    import blob_transfer as bt

    obj = os.urandom(3000)
    m = bt.Manifest("crl", 4, len(obj), hashlib.sha256(obj).digest(), 512)
    t = bt.start(str(tmp_path), m)
    assert (tmp_path / "crl.part").stat().st_size == 3000 and t.n == 6
    assert t.write(0, obj[:512]) == bt.OK and t.write(5, obj[2560:]) == bt.OK
    assert t.write(0, obj[:512]) == bt.DUPLICATE
    assert t.write(6, b"x") == bt.BAD_INDEX and t.write(1, obj[512:1000]) == bt.BAD_LENGTH
    again = bt.resume(str(tmp_path), "crl")  # a reboot
    assert again is not None and again.have == 2 and not again.complete()
    for i in (1, 2, 3, 4):
        assert again.write(i, obj[i * 512:(i + 1) * 512]) == bt.OK
    assert again.complete() and again.verify() and again.read() == obj
    (tmp_path / "crl.part").write_bytes(b"\x00" * 3000)  # flash content that does not hash
    assert not again.verify()
    (tmp_path / "crl.part").write_bytes(b"\x00" * 10)  # wrong size: discarded at resume
    assert bt.resume(str(tmp_path), "crl") is None and not (tmp_path / "crl.prog").exists()
    t = bt.start(str(tmp_path), m)
    (tmp_path / "crl.prog").write_bytes(b"\xff\x00garbage")
    assert bt.resume(str(tmp_path), "crl") is None and not (tmp_path / "crl.part").exists()
    assert bt.resume(str(tmp_path), "trust") is None


def test_time_reply_is_single_use_and_bounded_in_time(tmp_path: Path) -> None:
    import hmac_sha256
    import timesync
    from support.gateway_double import time_mac

    key = b"t" * 32
    ts = timesync.TimeSync(hmac_sha256.Hmac(key), "r1", window_ms=10000)
    n = ts.nonce()
    t = 1780000000123
    ok = cbor2.dumps([n, t, time_mac(key, "r1", n, t)])
    assert ts.check(cbor2.dumps([n, t, time_mac(b"x" * 32, "r1", n, t)]))[0] == "bad_mac"
    assert ts.check(cbor2.dumps([n, t, time_mac(key, "r2", n, t)]))[0] == "bad_mac"
    assert ts.check(cbor2.dumps([n, t + 1, time_mac(key, "r1", n, t)]))[0] == "bad_mac"
    status, ms, rtt = ts.check(ok)
    assert status == "ok" and rtt is not None and ms == t + rtt // 2
    assert ts.check(ok)[0] == "stale"  # a nonce answers once
    n2 = ts.nonce()
    assert ts.check(ok)[0] == "stale"  # an old nonce is not the outstanding one
    ts.window_ms = -1  # a reply held back by the broker beyond the window
    assert ts.check(cbor2.dumps([n2, 5, time_mac(key, "r1", n2, 5)]))[0] == "stale"
    for junk in (b"", b"\xff", cbor2.dumps([n2, -1, b"x" * 32]), cbor2.dumps([n2[:4], 5, b"x" * 32]),
                 cbor2.dumps([n2, True, b"x" * 32]), cbor2.dumps({1: 2})):  # fmt: skip
        assert ts.check(junk)[0] == "malformed"


def test_replay_floor_survives_a_damaged_or_half_renamed_store(tmp_path: Path) -> None:
    import commands

    store = tmp_path / "cmd.seq"
    c = commands.Commands(None, "r1", str(store))
    assert c.last is None
    c.commit(41)
    assert commands.Commands(None, "r1", str(store)).last == 41
    good = store.read_bytes()
    (tmp_path / "cmd.seq.new").write_bytes(commands._encode_seq(42))  # a rename cut short
    assert commands.Commands(None, "r1", str(store)).last == 42
    store.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # damaged: the other copy counts
    assert commands.Commands(None, "r1", str(store)).last == 42
