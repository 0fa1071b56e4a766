"""Interim inline revocation list v1: format, statuses, binary search."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.host import p256_key, root_key, rsa_key

from trustcore import cbor_det, cbor_strict, cose, keys, revocation
from trustcore.errors import TrustcoreError


def test_payload_layout() -> None:
    blob = revocation.build(root_key(), 4, 99, [300, 5, 2**53 - 1, 5])
    msg = cose.parse_sign1(blob, revocation.MAX_SIZE)
    assert msg.kid == keys.kid_of(root_key().public_key()) and msg.alg == cose.ALG_RS256
    payload = cbor_strict.decode(msg.payload)
    body = (5).to_bytes(7, "big") + (300).to_bytes(7, "big") + (2**53 - 1).to_bytes(7, "big")
    assert payload == {0: "crl", 1: 1, 2: 4, 3: 99, 4: body}
    assert msg.payload == cbor_det.dumps(payload)


def test_load_and_lookup() -> None:
    root = root_key()
    res = revocation.load(revocation.build(root, 4, 0, [1, 10, 100]), root.public_key())
    assert res.status == "ok" and res.crl is not None
    crl = res.crl
    assert len(crl) == 3 and list(crl.serials()) == [1, 10, 100]
    assert [s for s in range(0, 120) if crl.is_revoked(s)] == [1, 10, 100]
    assert not crl.is_revoked(-1) and not crl.is_revoked(2**60)
    assert revocation.load(revocation.build(root, 4, 0, []), root.public_key(), 4).status == "noop"
    assert revocation.load(revocation.build(root, 3, 0, []), root.public_key(), 4).status == "rollback"


def test_statuses_and_payload_rules() -> None:
    root = root_key()
    pub = root.public_key()
    body = revocation.encode_serials([1, 2, 3])

    def signed(payload: object, key: keys.PrivateKey = root) -> bytes:
        return cose.sign1(cbor_det.dumps(payload), key, kid=keys.kid_of(pub))

    assert revocation.load(signed({0: "crl", 1: 1, 2: 1, 3: 0, 4: body, 9: [1]}), pub).status == "ok"
    assert revocation.load(signed({0: "crl", 1: 1, 2: 1, 3: 0, 4: body}, p256_key("es")), pub).status == (
        "unsupported_alg"
    )
    other = rsa_key("other-root", 3072)
    assert revocation.load(cose.sign1(cbor_det.dumps({0: "crl"}), other), pub).status == "unknown_root"
    for payload in (
        {0: "crl", 1: 1, 2: 1, 3: 0, 4: body[7:14] + body[:7] + body[14:]},
        {0: "crl", 1: 1, 2: 1, 3: 0, 4: body[:7] + body},
        {0: "crl", 1: 1, 2: 1, 3: 0, 4: body + b"\x00"},
        {0: "crl", 1: 1, 2: 1, 3: 0, 4: body + (2**53).to_bytes(7, "big")},
        {1: 1, 2: 1, 3: 0, 4: body},
        {0: "trust", 1: 1, 2: 1, 3: 0, 4: body},
        {0: "crl", 1: 2, 2: 1, 3: 0, 4: body},
        {0: "crl", 1: True, 2: 1, 3: 0, 4: body},
        {0: "crl", 1: 1, 2: "1", 3: 0, 4: body},
        {0: "crl", 1: 1, 2: 1, 3: 0, 4: [1, 2, 3]},
        [0, "crl"],
    ):
        assert revocation.load(signed(payload), pub).status == "malformed", payload


def test_builder_limits() -> None:
    with pytest.raises(TrustcoreError, match="2\\^53"):
        revocation.encode_serials([2**53])
    with pytest.raises(TrustcoreError, match="at most 16384"):
        revocation.build(root_key(), 1, 0, range(1, 2400))
    assert len(revocation.build(root_key(), 1, 0, range(1, 2200))) <= revocation.MAX_SIZE


@given(st.sets(st.integers(min_value=0, max_value=2**53 - 1), max_size=60), st.integers(0, 2**53 - 1))
@settings(max_examples=200, deadline=None)
def test_binary_search_matches_set_membership(serials: set[int], probe: int) -> None:
    crl = revocation.RevocationList(1, 0, revocation.encode_serials(serials))
    assert crl.is_revoked(probe) == (probe in serials)
    for s in serials:
        assert crl.is_revoked(s)
