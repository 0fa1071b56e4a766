"""An issuer key rollover seen by a virtual reader (the real firmware under the MicroPython unix
port, RF simulator cards, on-flash trust store) through a real Mosquitto: the trust list with the
old and the new key (shared range) arrives in retained chunks and both cards open the door; then
the list without the old key (retired) arrives and the old card is refused, the new one still opens.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support import host as hs
from support.broker import Broker
from test_mqtt_client import Gateway
from test_virtual_reader import BROKER_USERS, RID, UID_A, UID_B, _run, _setup  # noqa: F401 - the broker users

from trustcore import cbor_det, cose, trust_list

CHUNK = 512


def _offer_trust(gw: Gateway, blob: bytes, seq: int) -> None:
    """What the gateway's list publisher does: retained chunks, then the signed manifest."""
    sha = hashlib.sha256(blob).digest()
    n = (len(blob) + CHUNK - 1) // CHUNK
    for i in range(n):
        gw.publish(f"cbcc/v1/all/blob/{sha[:4].hex()}/{i}", blob[i * CHUNK : (i + 1) * CHUNK], retain=True)
    payload = {0: "manifest", 1: 1, 2: seq, 3: int(time.time()), 4: "trust", 5: len(blob), 6: sha, 7: CHUNK}
    gw.publish("cbcc/v1/all/trust", cose.sign1(cbor_det.dumps(payload), hs.rsa_key("config")), retain=True)


def _taps(names: list[str]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):  # after the list had time to arrive and be checked
        steps += [{"at_ms": 4000 + i * 900, "present": name}, {"at_ms": 4500 + i * 900, "remove": name}]
    return [*steps, {"at_ms": 4000 + len(names) * 900, "exit": True}]


@pytest.mark.micropython
def test_rollover_through_the_broker(broker: Broker, tmp_path: Path) -> None:
    s = hs.setup()
    cfg_path = _setup(tmp_path, broker)
    new_key = hs.rsa_key("a-rollover")
    old = s.entry
    new = trust_list.IssuerEntry(
        new_key.public_key(), old.nbf, old.exp, old.serial_lo, old.serial_hi, old.name
    )
    (tmp_path / "new.cbor").write_bytes(hs.mint_raw(new_key, hs.claims(k11=UID_B, k2=1002, k3="CB-00001002")))
    cfg = json.loads(cfg_path.read_text())
    cfg["cards"] = {"old": {"credential": str(tmp_path / "huong.cbor"), "uid": UID_A.hex()},
                    "new": {"credential": str(tmp_path / "new.cbor"), "uid": UID_B.hex()}}  # fmt: skip
    cfg_path.write_text(json.dumps(cfg))
    gw = Gateway(broker, [f"cbcc/v1/r/{RID}/ev"])
    try:
        # before: the provisioned list (seq 5) knows only the old key
        out = _run(cfg_path, _taps(["old", "new"]), tmp_path)
        assert [(o["decision"], o["reason"]) for o in out if "decision" in o] == [
            ("grant", "granted"), ("deny", "unknown_issuer")]  # fmt: skip
        # rollover: both keys, one range, one authority
        _offer_trust(gw, trust_list.build(s.root, 6, hs.NOW, [old, new]), 6)
        out = _run(cfg_path, _taps(["old", "new"]), tmp_path)
        assert any(o.get("applied") == "trust" and o.get("status") == "ok" and o.get("seq") == 6 for o in out)
        assert [(o["decision"], o["reason"]) for o in out if "decision" in o] == [
            ("grant", "granted"), ("grant", "granted")]  # fmt: skip
        # the old key retired: left out of the next list
        _offer_trust(gw, trust_list.build(s.root, 7, hs.NOW, [new]), 7)
        out = _run(cfg_path, _taps(["old", "new"]), tmp_path)
        assert any(o.get("applied") == "trust" and o.get("status") == "ok" and o.get("seq") == 7 for o in out)
        assert [(o["decision"], o["reason"]) for o in out if "decision" in o] == [
            ("deny", "unknown_issuer"), ("grant", "granted")]  # fmt: skip
    finally:
        gw.publish("cbcc/v1/all/trust", b"", retain=True)
        gw.close()
