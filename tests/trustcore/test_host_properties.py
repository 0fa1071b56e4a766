"""Property tests: hostile bytes never crash a verifier and always yield a known answer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.host import NOW, UID, claims, mint_raw, root_key, setup

from trustcore import cose, credential, revocation, signed_object, trust_list

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cred() -> bytes:
    return mint_raw(setup().issuer, claims(k13=["nv.all"]))


def _verify(blob: bytes) -> credential.Verdict:
    s = setup()
    return credential.verify(blob, s.trust, UID, NOW, s.crl)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[i:]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@given(st.binary(max_size=1100))
@SETTINGS
def test_arbitrary_bytes_give_a_known_reason(data: bytes) -> None:
    v = _verify(data)
    assert v.reason in credential.REASONS
    assert v.reason != "ok"


@given(st.data())
@SETTINGS
def test_mutated_credentials_never_raise(data: st.DataObject) -> None:
    original = _cred()
    blob = data.draw(mutated(original))
    v = _verify(blob)
    assert v.reason in credential.REASONS
    if v.reason != "malformed":
        assert v.serial is not None and v.staff is not None
    if v.reason == "ok":
        # Only the unsigned unprotected header may differ from the original.
        got, want = cose.parse_sign1(blob, 1024), cose.parse_sign1(original, 1024)
        assert (got.protected, got.payload, got.signature) == (want.protected, want.payload, want.signature)


@given(st.integers(0, 10_000), st.integers(0, 7))
@SETTINGS
def test_single_bit_flip_is_never_ok(position: int, bit: int) -> None:
    original = _cred()
    data = bytearray(original)
    data[position % len(data)] ^= 1 << bit
    assert _verify(bytes(data)).reason != "ok"


@given(st.data())
@SETTINGS
def test_mutated_trust_lists_give_a_known_status(data: st.DataObject) -> None:
    blob = data.draw(mutated(setup().trust_blob))
    held = data.draw(st.none() | st.integers(0, 10))
    res = trust_list.load(blob, root_key().public_key(), held)
    assert res.status in signed_object.STATUSES
    assert (res.trust_list is not None) == (res.status in ("ok", "noop"))


@given(st.binary(max_size=2000))
@SETTINGS
def test_arbitrary_bytes_as_lists(data: bytes) -> None:
    pub = root_key().public_key()
    assert trust_list.load(data, pub).status in signed_object.STATUSES
    assert revocation.load(data, pub).status in signed_object.STATUSES


@given(st.data())
@SETTINGS
def test_mutated_revocation_lists_give_a_known_status(data: st.DataObject) -> None:
    original = revocation.build(root_key(), 3, 0, [5, 1005, 2**53 - 1])
    blob = data.draw(mutated(original))
    res = revocation.load(blob, root_key().public_key())
    assert res.status in signed_object.STATUSES
    if res.status == "ok":
        assert blob == original
