"""Virtual readers: the real reader firmware under the MicroPython unix port (RF simulator as
its MFRC522 and cards, a file as its journal flash) against a real Mosquitto with TLS, passwords
and ACLs; a paho client plays the gateway and checks every sealed event with standard libraries
only."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import cbor2
import pytest
from support import host as hs
from support.broker import Broker
from test_mqtt_client import Gateway, _der
from test_rf_support import ISSUER

from simulators.firmware_runner import ROOT, micropython_binary, micropython_env
from trustcore import keys, revocation
from trustcore import reader_config as host_config

RID = "hn-snv-vr-01"
PASSWORD = "pw-" + RID
MAC_KEY = bytes(range(100, 132))
UID_A = bytes.fromhex("04A1B2C3D4E5F6")
UID_B = bytes.fromhex("04112233445566")
UID_C, UID_D, UID_E, UID_F, UID_G = (bytes.fromhex(f"04C0FFEE0000{i:02X}") for i in range(5))
CONFIG_SRC: dict[str, Any] = {
    "reader_id": RID, "site": "Thử nghiệm", "timezone": "UTC+07:00",
    "group": [{"id": "so-noi-vu", "agency": ["000.00.36"]}, {"id": "ca-dem", "agency": ["000.00.37"]}],
    "schedule": [{"id": "ca-ngay", "weekly": ["Mon-Sun 00:00-24:00"]},
                 {"id": "toi", "weekly": ["Mon-Sun 22:00-23:00"]}],
    "door": [{"id": "cong-chinh", "name": "Cổng chính", "requires_anti_clone": True, "retap_seconds": 3}],
    "rule": [{"groups": ["so-noi-vu"], "doors": ["cong-chinh"], "schedule": "ca-ngay"},
             {"groups": ["ca-dem"], "doors": ["cong-chinh"], "schedule": "toi"}],
}  # fmt: skip


BROKER_USERS = {RID: PASSWORD, "gateway": "pw-gateway"}  # for the shared ``broker`` fixture


def _setup(tmp: Path, broker: Broker) -> Path:
    s = hs.setup()
    cfg_key = hs.rsa_key("config")
    files = {
        "root.cose_key": keys.cose_key_bytes(s.root.public_key()),
        "config.cose_key": keys.cose_key_bytes(cfg_key.public_key()),
        "trust.cbor": s.trust_blob,
        "crl.cbor": revocation.build(s.root, 1, hs.NOW, [1005]),
        "reader.cfg": host_config.build(CONFIG_SRC, cfg_key, 1, hs.NOW),
        "huong.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_A, k2=1001)),
        "tuan.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_B, k2=1005, k3="CB-00001005")),
        # one card for each way a tap is refused (the clock is 2026-06-01 07:00 in Hà Nội)
        "expired.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_C, k2=1010, k10=hs.NOW - 86400)),
        "rogue.cbor": hs.mint_raw(hs.rsa_key("rogue"), hs.claims(k11=UID_D, k2=1011)),
        "copied.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_A, k2=1012)),  # bound to another chip
        "outsider.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_F, k2=1013, k5="000.00.99.H01")),
        "night.cbor": hs.mint_raw(s.issuer, hs.claims(k11=UID_G, k2=1014, k5="000.00.37.H02")),
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    (tmp / "state").mkdir(exist_ok=True)
    cfg = {
        "reader_id": RID, "password": PASSWORD, "mac_key": MAC_KEY.hex(), "role": "door",
        "broker": {"host": "127.0.0.1", "port": broker.tls_port,
                   "ca_der": str(_der(broker.ca, tmp / "ca.der")), "server_hostname": "localhost"},
        "root_key": str(tmp / "root.cose_key"), "config_key": str(tmp / "config.cose_key"),
        "state_dir": str(tmp / "state"), "journal_image": str(tmp / "journal.img"), "journal_blocks": 16,
        "issuer_keys": {"amk": ISSUER.amk_master.hex(), "read": ISSUER.read_master.hex(),
                        "uid": ISSUER.uid_master.hex(), "picc": ISSUER.picc_master.hex()},
        "cards": {"huong": {"credential": str(tmp / "huong.cbor"), "uid": UID_A.hex()},
                  "tuan": {"credential": str(tmp / "tuan.cbor"), "uid": UID_B.hex()},
                  "expired": {"credential": str(tmp / "expired.cbor"), "uid": UID_C.hex()},
                  "rogue": {"credential": str(tmp / "rogue.cbor"), "uid": UID_D.hex()},
                  "copied": {"credential": str(tmp / "copied.cbor"), "uid": UID_E.hex()},
                  "outsider": {"credential": str(tmp / "outsider.cbor"), "uid": UID_F.hex()},
                  "night": {"credential": str(tmp / "night.cbor"), "uid": UID_G.hex()}},
        "trust": str(tmp / "trust.cbor"), "crl": str(tmp / "crl.cbor"), "config": str(tmp / "reader.cfg"),
        "unix_ms": hs.NOW * 1000, "keepalive": 5, "backoff_min_s": 0.2, "backoff_max_s": 1,
    }  # fmt: skip
    path = tmp / "reader.json"
    path.write_text(json.dumps(cfg))
    return path


def _run(cfg: Path, steps: list[dict[str, Any]], tmp: Path, timeout: float = 120) -> list[dict[str, Any]]:
    script = tmp / "taps.json"
    script.write_text(json.dumps(steps))
    proc = subprocess.run(
        [micropython_binary(), "-X", "heapsize=2M", "firmware/tools/virtual_reader.py", str(cfg),
         "--taps", str(script)],
        cwd=ROOT, env=micropython_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _open(payload: bytes) -> tuple[int, dict[int, Any]]:
    """The gateway's check, with nothing from the firmware: CBOR [1, seq, record, mac]."""
    ver, seq, rec, tag = cbor2.loads(payload)
    rid = RID.encode()
    want = hmac.new(MAC_KEY, b"cbcc-ev1" + bytes([len(rid)]) + rid + seq.to_bytes(8, "big") + rec,
                    hashlib.sha256).digest()  # fmt: skip
    assert ver == 1 and hmac.compare_digest(want, tag)
    return seq, cbor2.loads(rec)


def _events(gw: Gateway, n: int) -> list[tuple[int, dict[int, Any]]]:
    got = [_open(p) for t, p, _ in gw.take(n, timeout=30) if t == f"cbcc/v1/r/{RID}/ev"]
    return got


TAPS = [
    {"at_ms": 300, "present": "huong"}, {"at_ms": 1200, "remove": "huong"},
    {"at_ms": 1500, "present": "tuan"}, {"at_ms": 2400, "remove": "tuan"},
    # opened without a tap, after the 5 s unlock of the first tap has ended: forced open
    {"at_ms": 6500, "door": "open"}, {"at_ms": 7000, "door": "close"},
]


@pytest.mark.micropython
def test_taps_reach_the_gateway_sealed_in_order(broker: Broker, tmp_path: Path) -> None:
    cfg = _setup(tmp_path, broker)
    gw = Gateway(broker, [f"cbcc/v1/r/{RID}/ev"])
    try:
        steps = [*TAPS, {"at_ms": 7300, "wait_delivered": 20000}, {"at_ms": 0, "exit": True}]
        out = _run(cfg, steps, tmp_path)
        decisions = [(o["decision"], o["reason"], o["serial"]) for o in out if "decision" in o]
        assert decisions == [("grant", "granted", 1001), ("deny", "revoked", 1005)]
        assert out[-1]["journal_depth"] == 0
        evs = _events(gw, 20)
    finally:
        gw.close()
    seqs = [s for s, _ in evs]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, none missing, none twice
    taps = [(r[10], r[11], r[12]) for _, r in evs if r[3] == "tap"]
    assert taps == [("grant", "granted", 1001), ("deny", "revoked", 1005)]
    alarms = [(r[20], r[21]) for _, r in evs if r[3] == "alarm"]
    assert ("forced_open", True) in alarms and ("forced_open", False) in alarms


@pytest.mark.micropython
def test_offline_taps_are_delivered_once_after_the_broker_returns(broker: Broker, tmp_path: Path) -> None:
    cfg = _setup(tmp_path, broker)
    broker.stop()
    try:
        out = _run(cfg, [*TAPS[:4], {"at_ms": 3000, "exit": True}], tmp_path)
    finally:
        broker.start()
    assert [o["decision"] for o in out if "decision" in o] == ["grant", "deny"]  # decided offline
    assert out[-1]["journal_depth"] >= 2
    gw = Gateway(broker, [f"cbcc/v1/r/{RID}/ev"])
    try:
        # The same reader restarts on the same journal file: it must deliver what it kept.
        out = _run(cfg, [{"at_ms": 100, "wait_delivered": 20000}, {"at_ms": 0, "exit": True}], tmp_path)
        assert out[-1]["journal_depth"] == 0
        evs = _events(gw, 10)
        # and a third run finds nothing left to send: each record went out exactly once
        _run(cfg, [{"at_ms": 1500, "exit": True}], tmp_path)
        assert gw.take(1, timeout=1.0) == []
    finally:
        gw.close()
    taps = [(r[10], r[12]) for _, r in evs if r[3] == "tap"]
    assert taps == [("grant", 1001), ("deny", 1005)]
    assert [s for s, _ in evs] == sorted({s for s, _ in evs})


@pytest.mark.micropython
def test_reader_killed_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    cfg = _setup(tmp_path, broker)
    gw = Gateway(broker, [f"cbcc/v1/r/{RID}/ev"])
    steps = []
    for i in range(6):
        steps += [{"at_ms": 200 + i * 700, "present": "huong" if i % 2 == 0 else "tuan"},
                  {"at_ms": 700 + i * 700, "remove": "huong" if i % 2 == 0 else "tuan"}]
    script = tmp_path / "taps.json"
    script.write_text(json.dumps([*steps, {"at_ms": 60000, "exit": True}]))
    proc = subprocess.Popen(
        [micropython_binary(), "-X", "heapsize=2M", "firmware/tools/virtual_reader.py", str(cfg),
         "--taps", str(script)],
        cwd=ROOT, env=micropython_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        decided: list[dict[str, Any]] = []
        for line in proc.stdout:
            if '"decision"' in line:
                decided.append(json.loads(line))
                if len(decided) == 4:
                    break
        proc.kill()  # power cut in the middle of taps and deliveries
        proc.wait()
        out = _run(cfg, [{"at_ms": 100, "wait_delivered": 20000}, {"at_ms": 0, "exit": True}], tmp_path)
        assert out[-1]["journal_depth"] == 0
        evs = _events(gw, 40)
    finally:
        if proc.poll() is None:
            proc.kill()
        gw.close()
    by_seq: dict[int, dict[int, Any]] = {}
    for seq, rec in evs:
        if seq in by_seq:
            assert by_seq[seq] == rec  # a resend after the kill is the same record, not a new punch
        by_seq[seq] = rec
    assert sorted(by_seq) == list(range(1, len(by_seq) + 1))
    taps = [(r[10], r[12]) for r in by_seq.values() if r[3] == "tap"]
    # every tap decided before the kill reached the gateway (a re-tap within 3 s is one event)
    journalled = [(d["decision"], d["serial"]) for d in decided if d["reason"] != "duplicate"]
    assert taps[: len(journalled)] == journalled


@pytest.mark.micropython
def test_every_refusal_at_a_real_door(broker: Broker, tmp_path: Path) -> None:
    cfg = _setup(tmp_path, broker)
    gw = Gateway(broker, [f"cbcc/v1/r/{RID}/ev"])
    names = ["expired", "rogue", "copied", "outsider", "night", "tuan", "huong"]
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        steps += [{"at_ms": 300 + i * 600, "present": name}, {"at_ms": 700 + i * 600, "remove": name}]
    try:
        out = _run(cfg, [*steps, {"at_ms": 300 + len(names) * 600, "wait_delivered": 20000},
                         {"at_ms": 0, "exit": True}], tmp_path)  # fmt: skip
        evs = _events(gw, 30)
    finally:
        gw.close()
    got = [(o["decision"], o["reason"]) for o in out if "decision" in o]
    assert got == [
        ("deny", "expired"), ("deny", "unknown_issuer"), ("deny", "uid_mismatch"),
        ("deny", "no_access"), ("deny", "out_of_schedule"), ("deny", "revoked"), ("grant", "granted"),
    ]
    assert [(r[10], r[11]) for _, r in evs if r[3] == "tap"] == got  # each journalled and delivered
    assert out[-1]["relay_changes"] == 1  # energised once, for the one granted tap (still on at exit)


def test_script_steps_are_known(tmp_path: Path) -> None:
    # guard against silent typos in the scripts above
    known = {"at_ms", "present", "remove", "door", "rex", "fire", "tamper", "wait_delivered", "exit"}
    for step in TAPS:
        assert set(step) <= known
    assert os.path.exists(ROOT / "firmware" / "tools" / "virtual_reader.py")
