"""Differential testing: the host verifier (provisioning, cbor2 + cryptography) and the reader's
verifier (firmware/lib, run here under CPython; under MicroPython by the fuzz test) are written
independently. On any input, signed or mutated, they must give the same reason, serial and staff.
"""

from __future__ import annotations

import functools
from typing import Any

import cose_key
import credential as fw_credential
import revocation as fw_revocation
import trust as fw_trust
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import host as hs
from support.micropython_runner import run_micropython

from trustcore import credential as host_credential
from trustcore import keys, revocation


@functools.cache
def _reader_side() -> tuple[fw_trust.TrustList, fw_revocation.RevocationList]:
    s = hs.setup()
    root = cose_key.load(keys.cose_key_bytes(s.root.public_key()))
    tl = fw_trust.TrustList(root)
    assert tl.update(s.trust_blob) == "ok"
    crl = fw_revocation.RevocationList(root)
    assert crl.update(revocation.build(s.root, 1, hs.NOW, [1005])) == "ok"
    return tl, crl


def _both(blob: bytes, uid: bytes = hs.UID, now: int = hs.NOW) -> tuple[Any, Any]:
    s = hs.setup()
    host = host_credential.verify(blob, s.trust, uid, now, s.crl)
    tl, crl = _reader_side()
    reason, claims = fw_credential.verify(blob, uid, now, tl, crl)
    reader = (reason, None, None) if claims is None else (reason, claims[2], claims[3])
    return (host.reason, host.serial, host.staff), reader


cbor_values = st.recursive(
    st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.text(max_size=12) | st.binary(max_size=12)
    | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.integers(-3, 15), inner, max_size=3),
    max_leaves=6,
)


@given(
    overrides=st.dictionaries(st.integers(min_value=0, max_value=15), cbor_values, max_size=3),
    drop=st.sets(st.integers(min_value=1, max_value=13), max_size=2),
    now=st.sampled_from([hs.T2024, hs.NOW, hs.T2035, hs.T2044]),
    uid=st.sampled_from([hs.UID, bytes.fromhex("04a1b2c3d4e5f7"), b"\x01\x02\x03\x04"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_agree_on_signed_claims_of_any_shape(
    overrides: dict[int, Any], drop: set[int], now: int, uid: bytes
) -> None:
    claim_map: dict[Any, Any] = hs.claims()
    claim_map.update(overrides)
    for k in drop:
        claim_map.pop(k, None)
    blob = hs.mint_raw(hs.setup().issuer, claim_map)
    if len(blob) > 1024:
        return
    host, reader = _both(blob, uid, now)
    assert host == reader


@functools.cache
def _valid_blob() -> bytes:
    return hs.mint_raw(hs.setup().issuer, hs.claims(k13=["nv-all"]))


@given(st.data())
@settings(max_examples=1500, deadline=None)
def test_agree_on_mutated_credentials(data: st.DataObject) -> None:
    blob = bytearray(_valid_blob())
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and blob:
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del blob[i:]
        elif op == "insert":
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del blob[i : i + data.draw(st.integers(1, 16))]
    host, reader = _both(bytes(blob))
    assert host == reader


def test_mutation_fuzz_under_micropython() -> None:
    """The reader's mutation loop (firmware/tools/fuzz_verify.py), a smaller run than the
    100k-case benchmark: no exception escapes and no changed credential verifies."""
    import json

    m = hs.manifest()
    ok = next(c for c in m["cases"] if c["expect"] == "ok" and c["crl"] and not c.get("trust"))
    v = hs.VECTORS
    proc = run_micropython(
        [
            "firmware/tools/fuzz_verify.py", str(v / ok["file"]), str(v / m["trust"]), str(v / m["root"]),
            "--uid", ok["uid"], "--now", str(ok["now"]), "--crl", str(v / m["crl"]),
            "--cases", "6000", "--seed", "20261124",
        ],
        heap="256K",
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cases"] == 6000
    assert result["crashes"] == 0
    outcomes = result["outcomes"]
    # The loop really reached every entry point.
    for prefix in ("cred:", "trust:", "crl:", "rootkey:", "cbor:"):
        assert any(k.startswith(prefix) for k in outcomes), prefix
