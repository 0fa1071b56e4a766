"""Host CBOR: the strict decoder's rules one by one, and core deterministic encoding of our outputs."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.host import claims, root_key, setup

from trustcore import cbor_det, cbor_strict, cose, keys, revocation, trust_list

# ---- strict decoder ----------------------------------------------------------------------------

ACCEPTED: list[tuple[str, Any]] = [
    ("00", 0),
    ("17", 23),
    ("1818", 24),
    ("1b0000000100000000", 2**32),
    ("20", -1),
    ("3901 00".replace(" ", ""), -257),
    ("40", b""),
    ("6161", "a"),
    ("f4", False),
    ("f5", True),
    ("f6", None),
    ("a2 01 02 61 78 03".replace(" ", ""), {1: 2, "x": 3}),
    ("84 81 81 81 00 40 a0 60".replace(" ", ""), [[[[0]]], b"", {}, ""]),  # depth exactly 4
    ("1903e8", 1000),
    ("1a000003e8", 1000),  # not shortest, still accepted (verifiers don't re-encode)
]

REJECTED: list[tuple[str, str]] = [
    ("", "truncated"),
    ("18", "truncated"),
    ("5f4161ff", "indefinite"),
    ("7f6161ff", "indefinite"),
    ("9fff", "indefinite"),
    ("bfff", "indefinite"),
    ("ff", "indefinite"),  # stray break
    ("1c", "reserved"),
    ("f7", "simple"),  # undefined
    ("f820", "simple"),
    ("f93c00", "float"),
    ("fa3f800000", "float"),
    ("fb3ff0000000000000", "float"),
    ("c100", "tag"),
    ("d28100", "tag"),  # tag 18 only when the caller allows it
    ("a2010201 03".replace(" ", ""), "duplicate"),
    ("a1410001", "key"),  # bstr key
    ("a1f501", "key"),  # bool key
    ("a18001", "key"),  # array key
    ("62c328", "UTF-8"),
    ("62c0af", "UTF-8"),  # overlong
    ("63eda080", "UTF-8"),  # surrogate
    ("0000", "trailing"),
    ("8181818181 00".replace(" ", ""), "deep"),
    ("a1 01 81 81 81 81 00".replace(" ", ""), "deep"),
    ("9b0000000100000000", "truncated"),  # count lie
    ("5a00010000", "truncated"),
]


@pytest.mark.parametrize(("hexdata", "value"), ACCEPTED)
def test_strict_decoder_accepts(hexdata: str, value: Any) -> None:
    assert cbor_strict.decode(bytes.fromhex(hexdata)) == value


@pytest.mark.parametrize(("hexdata", "why"), REJECTED)
def test_strict_decoder_rejects(hexdata: str, why: str) -> None:
    with pytest.raises(cbor_strict.CborStrictError):
        cbor_strict.decode(bytes.fromhex(hexdata))


def test_top_level_tag_18_only_in_shortest_form_and_only_at_the_top() -> None:
    value = cbor_strict.decode(bytes.fromhex("d28100"), allow_cose_tag=True)
    assert isinstance(value, cbor2.CBORTag) and value.tag == 18 and value.value == [0]
    for bad in ("d8128100", "d1 8100", "81d200", "d2d28100"):
        with pytest.raises(cbor_strict.CborStrictError):
            cbor_strict.decode(bytes.fromhex(bad.replace(" ", "")), allow_cose_tag=True)


def test_tag_does_not_count_as_depth() -> None:
    assert cbor_strict.decode(bytes.fromhex("d281818181 00".replace(" ", "")), allow_cose_tag=True)


scalars = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=30)
    | st.text(max_size=12)
    | st.booleans()
    | st.none()
)
map_keys = st.integers(min_value=-(2**40), max_value=2**40) | st.text(max_size=6)


def nested(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return scalars
    inner = nested(depth - 1)
    return scalars | st.lists(inner, max_size=4) | st.dictionaries(map_keys, inner, max_size=4)


@given(nested(4))
@settings(max_examples=300, deadline=None)
def test_strict_decoder_agrees_with_cbor2_on_allowed_values(value: Any) -> None:
    encoded = cbor2.dumps(value)
    assert cbor_strict.decode(encoded) == value
    det = cbor_det.dumps(value)
    assert cbor_det.is_core_deterministic(det)
    assert cbor2.loads(det) == value


@given(st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_strict_decoder_only_raises_its_own_error(data: bytes) -> None:
    with contextlib.suppress(cbor_strict.CborStrictError):
        cbor_strict.decode(data, allow_cose_tag=True)


# ---- deterministic encoding --------------------------------------------------------------------


def _keys_in_encoded_order(data: bytes) -> list[bytes]:
    """Encoded keys of the top-level map, in the order they appear (bytewise re-check)."""
    count_byte = data[0]
    assert count_byte >> 5 == 5
    count = count_byte & 31
    assert count < 24
    pos, out = 1, []
    for _ in range(count):
        start = pos
        pos = _skip(data, pos)
        out.append(data[start:pos])
        pos = _skip(data, pos)
    assert pos == len(data)
    return out


def _skip(data: bytes, pos: int, found: list[bytes] | None = None) -> int:
    """Position after the item at ``pos`` (definite lengths only: enough for our own objects).

    Every map met on the way is appended to ``found`` as its encoded bytes.
    """
    start = pos
    ib = data[pos]
    major, info = ib >> 5, ib & 31
    pos += 1
    n = info
    if info >= 24:
        size = 1 << (info - 24)
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if major in (0, 1, 7):
        return pos
    if major in (2, 3):
        return pos + n
    if major == 6:
        return _skip(data, pos, found)
    for _ in range(n * (2 if major == 5 else 1)):
        pos = _skip(data, pos, found)
    if major == 5 and found is not None:
        found.append(data[start:pos])
    return pos


def _all_maps(data: bytes) -> list[bytes]:
    found: list[bytes] = []
    assert _skip(data, 0, found) == len(data)
    return found


def _assert_sorted_bytewise(encoded_map: bytes) -> None:
    ks = _keys_in_encoded_order(encoded_map) if encoded_map[0] & 31 < 24 else []
    assert ks == sorted(ks), ks
    assert len(set(ks)) == len(ks)


def _our_objects() -> dict[str, bytes]:
    s = setup()
    cred = cose.sign1(cbor_det.dumps(claims(k13=["a", "b"])), s.issuer)
    return {
        "credential": cred,
        "trust_list": s.trust_blob,
        "crl": revocation.build(s.root, 2, 0, [5, 1, 3]),
        "root_cose_key": keys.cose_key_bytes(root_key().public_key()),
    }


@pytest.mark.parametrize("name", ["credential", "trust_list", "crl", "root_cose_key"])
def test_our_outputs_are_core_deterministic(name: str) -> None:
    blob = _our_objects()[name]
    assert cbor_det.is_core_deterministic(blob)
    parts = [blob]
    if name != "root_cose_key":
        msg = cose.parse_sign1(blob, 16384)
        parts += [msg.protected, msg.payload]
        assert msg.unprotected == {}
    for part in parts:
        assert cbor_det.is_core_deterministic(part)
        for m in _all_maps(part):
            _assert_sorted_bytewise(m)
    # Re-encoding what we decoded gives the very same bytes.
    for part in parts[1:]:
        assert cbor_det.dumps(cbor2.loads(part)) == part


def test_dumps_sorts_bytewise_where_cbor2_canonical_sorts_length_first() -> None:
    value = {24: "a", -1: "b", "z": 1, 0: 2}
    length_first = cbor2.dumps(value, canonical=True)
    assert not cbor_det.is_core_deterministic(length_first)
    out = cbor_det.dumps(value)
    assert cbor_det.is_core_deterministic(out)
    assert _keys_in_encoded_order(out) == [b"\x00", b"\x18\x18", b"\x20", b"\x61z"]
    assert cbor2.loads(out) == value


def test_dumps_agrees_with_cbor2_canonical_for_small_int_keys() -> None:
    c = claims(k13=["x"])
    assert cbor_det.dumps(c) == cbor2.dumps(c, canonical=True)


def test_dumps_refuses_floats_and_checker_rejects_non_shortest() -> None:
    with pytest.raises(TypeError):
        cbor_det.dumps({1: 1.5})
    assert not cbor_det.is_core_deterministic(bytes.fromhex("1818"[:2] + "05"))  # 24-form for 5
    assert not cbor_det.is_core_deterministic(bytes.fromhex("a2020101 02".replace(" ", "")))  # unsorted
    assert cbor_det.is_core_deterministic(bytes.fromhex("a2010102 02".replace(" ", "")))


def test_trust_list_payload_uses_only_small_keys() -> None:
    entry = setup().entry.to_map()
    assert sorted(entry) == [1, 2, 3, 4, 5, 6, 7]
    assert trust_list.build_payload(1, 0, [setup().entry])[0] == 0xA4
