"""COSE_Sign1 produce/parse/verify on the host (RS256 strict, ES256 for test objects)."""

from __future__ import annotations

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from support.host import p256_key, rsa_key

from trustcore import cbor_det, cose, keys


def test_sign1_layout() -> None:
    key = rsa_key("a")
    blob = cose.sign1(b"\xa1\x01\x01", key)
    assert blob[0] == 0xD2
    outer = cbor2.loads(blob)
    assert outer.tag == 18
    protected, unprotected, payload, signature = outer.value
    assert cbor2.loads(protected) == {1: -257, 4: keys.kid_of(key.public_key())}
    assert protected == bytes.fromhex("a2013901000448") + keys.kid_of(key.public_key())
    assert unprotected == {} and payload == b"\xa1\x01\x01" and len(signature) == 256


def test_sig_structure_is_signature1_with_empty_aad() -> None:
    assert cose.sig_structure(b"P", b"Y") == cbor2.dumps(["Signature1", b"P", b"", b"Y"])
    assert cose.sig_structure(b"P", b"Y").startswith(b"\x84\x6aSignature1")


@pytest.mark.parametrize("role", ["rsa2048", "rsa3072", "p256"])
def test_round_trip(role: str) -> None:
    key: keys.PrivateKey = (
        p256_key("es") if role == "p256" else rsa_key("a", 2048 if role == "rsa2048" else 3072)
    )
    blob = cose.sign1(b"payload", key)
    msg = cose.verify_sign1(blob, key.public_key(), 2048)
    assert msg.payload == b"payload"
    assert msg.alg == (cose.ALG_ES256 if role == "p256" else cose.ALG_RS256)
    if role == "p256":
        assert len(msg.signature) == 64


def test_verify_rejects_other_key_and_tampering() -> None:
    blob = cose.sign1(b"payload", rsa_key("a"))
    with pytest.raises(InvalidSignature):
        cose.verify_sign1(blob, rsa_key("b").public_key(), 2048)
    tampered = blob.replace(b"payload", b"paylaod")
    with pytest.raises(InvalidSignature):
        cose.verify_sign1(tampered, rsa_key("a").public_key(), 2048)
    with pytest.raises(cose.CoseFormatError):
        cose.verify_sign1(blob[:-1], rsa_key("a").public_key(), 2048)


def test_rs256_strictness() -> None:
    key = rsa_key("a")
    msg = cose.parse_sign1(cose.sign1(b"x", key), 2048)
    pub = key.public_key()
    n = pub.public_numbers().n
    assert cose.verify_signature(msg, pub)
    for sig in (msg.signature[1:], b"\x00" + msg.signature, n.to_bytes(256, "big"), b"\xff" * 256, b""):
        bad = cose.Sign1(msg.protected, msg.alg, msg.kid, {}, msg.payload, sig)
        assert not cose.verify_signature(bad, pub)
    # RS256 header with an EC key, or ES256 header with an RSA key: never verifies.
    assert not cose.verify_signature(msg, p256_key("es").public_key())
    es = cose.parse_sign1(cose.sign1(b"x", p256_key("es")), 2048)
    assert not cose.verify_signature(es, pub)


def test_parse_limits_and_header_rules() -> None:
    key = rsa_key("a")
    kid = keys.kid_of(key.public_key())
    blob = cose.sign1(b"x", key)
    with pytest.raises(cose.CoseFormatError, match="larger"):
        cose.parse_sign1(blob, len(blob) - 1)
    assert cose.parse_sign1(blob, len(blob)).kid == kid

    def with_protected(header: bytes) -> bytes:
        return cbor_det.dumps(cbor2.CBORTag(18, [header, {}, b"x", b"s"]))

    good = cose.parse_sign1(with_protected(cbor_det.dumps({1: -257, 4: kid, 3: 0, "x": [1]})), 1024)
    assert good.alg == -257 and good.kid == kid
    for header in (
        cbor_det.dumps({1: -257, 4: kid, 2: [3]}),
        cbor_det.dumps({1: -257}),
        cbor_det.dumps({4: kid}),
        cbor_det.dumps({1: -257, 4: kid[:7]}),
        cbor_det.dumps({1: "RS256", 4: kid}),
        cbor_det.dumps({1: True, 4: kid}),
        cbor_det.dumps([1, -257]),
        b"",
    ):
        with pytest.raises(cose.CoseFormatError):
            cose.parse_sign1(with_protected(header), 1024)


def test_alg_for_key_type() -> None:
    assert cose.alg_for(rsa_key("a")) == cose.ALG_RS256
    assert cose.alg_for(p256_key("es")) == cose.ALG_ES256
