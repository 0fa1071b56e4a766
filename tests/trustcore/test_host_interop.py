"""Interop with two independent COSE implementations, both directions: pycose and python-cwt.

Credentials and a trust list they sign (RS256, kid in the protected header) verify with ours;
what we produce verifies with theirs.
"""

from __future__ import annotations

import cbor2
import pytest
from cwt import COSE, COSEKey
from pycose.algorithms import RsaPkcs1Sha256
from pycose.headers import KID, Algorithm
from pycose.keys import CoseKey
from pycose.messages import Sign1Message
from support.host import NOW, UID, claims, clear_pem, root_key, setup

from trustcore import cbor_det, cose, credential, keys, trust_list
from trustcore.keys import PrivateKey


def pycose_sign(payload: bytes, key: PrivateKey) -> bytes:
    msg = Sign1Message(phdr={Algorithm: RsaPkcs1Sha256, KID: keys.kid_of(key.public_key())}, payload=payload)
    msg.key = CoseKey.from_pem_private_key(clear_pem(key).decode())
    out: bytes = msg.encode()
    return out


def pycose_verify(blob: bytes, cose_key: dict[int, object], kid: bytes) -> bytes:
    """Verify with pycose, its key built straight from a COSE_Key map (as found in a trust list)."""
    msg = Sign1Message.decode(blob)
    msg.key = CoseKey.from_dict(cose_key)
    assert msg.verify_signature()
    assert msg.phdr[KID] == kid
    payload: bytes = msg.payload
    return payload


def cwt_sign(payload: bytes, key: PrivateKey) -> bytes:
    kid = keys.kid_of(key.public_key())
    signer = COSEKey.from_pem(clear_pem(key), alg="RS256", kid=kid)
    out: bytes = COSE.new().encode_and_sign(payload, signer, protected={1: -257, 4: kid})
    return out


def cwt_verify(blob: bytes, cose_key: dict[int, object], kid: bytes) -> bytes:
    out: bytes = COSE.new().decode(blob, COSEKey.new({**cose_key, 2: kid, 3: -257}))
    return out


def their_verify(lib: str, blob: bytes, public_key: keys.PublicKey) -> bytes:
    return VERIFIERS[lib](blob, keys.cose_key_map(public_key), keys.kid_of(public_key))


SIGNERS = {"pycose": pycose_sign, "cwt": cwt_sign}
VERIFIERS = {"pycose": pycose_verify, "cwt": cwt_verify}


@pytest.mark.parametrize("lib", ["pycose", "cwt"])
def test_their_credential_verifies_with_ours(lib: str) -> None:
    s = setup()
    c = claims(k13=["Tầng 3", "nv.all"], k4="Đặng Thị Ánh Nguyệt")
    blob = SIGNERS[lib](cbor2.dumps(c), s.issuer)
    v = credential.verify(blob, s.trust, UID, NOW)
    assert (v.reason, v.serial, v.staff) == ("ok", 1001, "CB-00001001")
    # A wrong UID or a tampered payload is still caught on their bytes.
    assert credential.verify(blob, s.trust, b"\x00" * 7, NOW).reason == "uid_mismatch"
    assert credential.verify(blob.replace(b"CB-00001001", b"CB-00001002"), s.trust, UID, NOW).reason == (
        "bad_signature"
    )


@pytest.mark.parametrize("lib", ["pycose", "cwt"])
def test_our_credential_verifies_with_theirs(lib: str) -> None:
    s = setup()
    blob = credential.mint(claims(k13=["nv.all"]), s.issuer)
    payload = their_verify(lib, blob, s.issuer.public_key())
    assert cbor2.loads(payload) == claims(k13=["nv.all"])


@pytest.mark.parametrize("lib", ["pycose", "cwt"])
def test_their_trust_list_loads_with_ours(lib: str) -> None:
    s = setup()
    payload = trust_list.build_payload(12, NOW, [s.entry])
    blob = SIGNERS[lib](payload, s.root)
    res = trust_list.load(blob, s.root.public_key(), held_seq=5)
    assert res.status == "ok" and res.trust_list is not None
    assert res.trust_list.seq == 12 and res.trust_list.get(s.entry.kid) == s.entry
    # And a credential checked against the list they signed.
    v = credential.verify(credential.mint(claims(), s.issuer), res.trust_list, UID, NOW)
    assert v.reason == "ok"


@pytest.mark.parametrize("lib", ["pycose", "cwt"])
def test_our_trust_list_verifies_with_theirs(lib: str) -> None:
    s = setup()
    payload = their_verify(lib, s.trust_blob, s.root.public_key())
    decoded = cbor2.loads(payload)
    assert decoded[1] == 1 and decoded[2] == 5
    entries = {e[1]: e for e in decoded[4]}
    # The issuer's COSE_Key as published in our trust list is usable by their library as is.
    listed = entries[s.entry.kid]
    cred = credential.mint(claims(), s.issuer)
    assert cbor2.loads(VERIFIERS[lib](cred, listed[2], listed[1])) == claims()


@pytest.mark.parametrize("lib", ["pycose", "cwt"])
def test_their_signature_under_the_wrong_key_is_rejected(lib: str) -> None:
    s = setup()
    forged = SIGNERS[lib](trust_list.build_payload(12, NOW, [s.entry]), s.issuer)
    assert trust_list.load(forged, root_key().public_key()).status == "unknown_root"
    with pytest.raises(Exception):  # noqa: B017 - each library raises its own type
        their_verify(lib, credential.mint(claims(), s.issuer), s.root.public_key())


def test_sig_structure_matches_pycose() -> None:
    s = setup()
    blob = credential.mint(claims(), s.issuer)
    msg = Sign1Message.decode(blob)
    parsed = cose.parse_sign1(blob, credential.MAX_SIZE)
    assert msg._create_sig_structure() == parsed.to_be_signed()
    assert cbor_det.is_core_deterministic(parsed.protected)
