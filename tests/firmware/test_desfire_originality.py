"""NXP originality signature (Read_Sig, ECDSA secp224r1 over the UID, no hashing).

Vectors: the DESFire Light example printed in NXP AN12343 §11.2.1 (Table 44), and signatures
read from genuine DESFire EV2 and EV3 chips as published by the Proxmark3 project
(tools/recover_pk.py self-tests), which also publishes the EV2/EV3 public keys.
Host verification uses the `cryptography` package; the reader's pure-Python verifier
(desfire_crypto.p224_verify) must agree with it on both interpreters.
"""

from __future__ import annotations

import json

import desfire
import desfire_crypto as dc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from support.micropython_runner import run_snippet
from test_desfire_protocol import OK, Scripted

h = bytes.fromhex
KEYS = dict(dc.NXP_ORIGINALITY_KEYS)

SAMPLES = [  # (key name, UID, r || s)
    ("DESFire Light", "045A115A346180",
     "1CA298FC3F0F04A329254AC0DF7A3EB8E756C076CD1BAAF47B8BBA6DCD78BCC64DFD3E80E679D9A663CAE9E4D4C2C77023077CC549CE4A61"),
    ("DESFire EV2", "042A41CAE45380",
     "B2769F8DDB575AEA2A680ADCA8FFED4FAB81A1E9908E2B82FE0FABB697BBD9B23835C416970E75768F12902ACA491349E94E6589EAF4F508"),
    ("DESFire EV2", "045640CAE45380",
     "D34B53A8C2C100D700DEA1C4C0D0DE4409F3A418CD8D57C4F41F146E42AD9A55F014199ABBF5CA259C7799DB0AE20D5E77D4950AC7E95D33"),
    ("DESFire EV2", "040D259A965B80",
     "B158073A7100C88C3726F4299FA58311FC3CB18744686DE3F234928AD74578F5CAD7FCEC1DCB962ECC7CC000B8557B37F45B76DC6573A58F"),
    ("DESFire EV3", "04448BD2DB6B80",
     "5CBB5632795C8F15263FEFB095B51C7B541AFD914A1AE44EF6FB8AF605EDF13DBFEE6C3A2DB372245E671DFE0D42CB1F0D0B8FE67A89D2F6"),
    ("DESFire EV3", "04445DD2DB6B80",
     "166BFD9F9BFAA451172566101580DF9894F582C4A4E258C15037AD2F35A475CF1D7FB817618623A6569F991931AFB2766984E21A18512A6D"),
]


def host_verify(pub_hex: str, uid: bytes, sig: bytes) -> bool:
    """ECDSA with NONE hashing = a prehashed 28-byte value holding the UID as an integer."""
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP224R1(), h(pub_hex))
    der = utils.encode_dss_signature(int.from_bytes(sig[:28], "big"), int.from_bytes(sig[28:], "big"))
    try:
        pub.verify(der, uid.rjust(28, b"\x00"), ec.ECDSA(utils.Prehashed(hashes.SHA224())))
        return True
    except InvalidSignature:
        return False


@pytest.mark.parametrize(("name", "uid", "sig"), SAMPLES)
def test_published_signatures_verify_on_host(name: str, uid: str, sig: str) -> None:
    assert host_verify(KEYS[name], h(uid), h(sig))
    assert dc.originality_key_name(h(uid), h(sig)) == name


@pytest.mark.parametrize(("name", "uid", "sig"), SAMPLES)
def test_tampered_signatures_fail(name: str, uid: str, sig: str) -> None:
    bad_uid = bytearray(h(uid))
    bad_uid[-1] ^= 1
    assert not host_verify(KEYS[name], bytes(bad_uid), h(sig))
    assert dc.originality_key_name(bytes(bad_uid), h(sig)) is None
    bad_sig = bytearray(h(sig))
    bad_sig[40] ^= 0x10
    assert dc.originality_key_name(h(uid), bytes(bad_sig)) is None


def test_curve_constants_match_cryptography() -> None:
    for name, pub_hex in dc.NXP_ORIGINALITY_KEYS:
        pt = dc.p224_point(h(pub_hex))
        assert pt is not None, name
        nums = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP224R1(), h(pub_hex)).public_numbers()
        assert pt == (nums.x, nums.y)
    assert dc.p224_point(h("04" + "00" * 56)) is None
    assert dc.p224_point(h(KEYS["DESFire EV3"])[:-1] + b"\x00") is None


def test_pure_verifier_agrees_on_random_keys() -> None:
    for i in range(6):
        priv = ec.derive_private_key(1234567 + i * 7919, ec.SECP224R1())
        pub = priv.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        uid = bytes([4, i, 2, 3, 4, 5, 0x80])
        der = priv.sign(uid.rjust(28, b"\x00"), ec.ECDSA(utils.Prehashed(hashes.SHA224())))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(28, "big") + s.to_bytes(28, "big")
        assert dc.p224_verify(dc.p224_point(pub), uid, sig)
        assert not dc.p224_verify(dc.p224_point(pub), uid[:-1] + b"\x81", sig)


def test_out_of_range_signature_values() -> None:
    pub = dc.p224_point(h(KEYS["DESFire EV3"]))
    n = dc.P224_N.to_bytes(28, "big")
    assert not dc.p224_verify(pub, h("04448BD2DB6B80"), bytes(56))
    assert not dc.p224_verify(pub, h("04448BD2DB6B80"), n + n)
    assert not dc.p224_verify(pub, h("04448BD2DB6B80"), bytes(55))
    assert not dc.p224_verify(None, h("04448BD2DB6B80"), bytes(56))


def test_read_sig_command_plain() -> None:
    sig = h(SAMPLES[0][2])
    t = Scripted([(h("903C0000010000"), sig + OK)])  # AN12343 Table 44 C-APDU
    assert desfire.Desfire(t).read_sig() == sig


@pytest.mark.micropython
def test_pure_verifier_under_micropython() -> None:
    cases = [[uid, sig] for _, uid, sig in SAMPLES]
    code = (
        "import desfire_crypto as dc, binascii, json, time\n"
        "h = binascii.unhexlify\n"
        f"cases = {json.dumps(cases)}\n"
        "out = [dc.originality_key_name(h(u), h(s)) for u, s in cases]\n"
        "out.append(dc.originality_key_name(h('04448BD2DB6B81'), h(cases[4][1])))\n"
        "pub = dc.p224_point(h(dict(dc.NXP_ORIGINALITY_KEYS)['DESFire EV3']))\n"
        "t0 = time.ticks_us()\n"
        "for _ in range(5):\n"
        "    dc.p224_verify(pub, h(cases[4][0]), h(cases[4][1]))\n"
        "out.append(time.ticks_diff(time.ticks_us(), t0) / 5)\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got[:-2] == [name for name, _, _ in SAMPLES]
    assert got[-2] is None
    print(f"P-224 verify under the unix port: {got[-1]:.0f} us (x70: {got[-1] * 70 / 1000:.0f} ms on ESP32)")
