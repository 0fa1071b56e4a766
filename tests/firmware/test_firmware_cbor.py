"""The reader's CBOR decoder: differential tests against cbor2 and the contract's limits.

The same limit table runs under CPython and under the real MicroPython unix port.
"""

from __future__ import annotations

import json
from typing import Any

import cbor
import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.micropython_runner import run_snippet

# Values the contract allows, nested at most 4 deep (the top item counts as depth 1).
scalars = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.booleans()
    | st.none()
)
keys = st.integers(min_value=-(2**32), max_value=2**32) | st.text(max_size=8)


def nested(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return scalars
    inner = nested(depth - 1)
    return scalars | st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5)


@given(nested(4))
@settings(max_examples=400)
def test_decodes_what_cbor2_encodes(value: Any) -> None:
    encoded = cbor2.dumps(value, canonical=True)
    assert cbor.decode(encoded) == value


def core_deterministic(value: Any) -> bytes:
    """Reference RFC 8949 §4.2.1 encoding: cbor2 for scalars, map keys sorted by encoded bytes.

    (cbor2's canonical=True sorts length-first, the older RFC 7049 rule, which differs as soon
    as keys of different encoded lengths meet.)
    """
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(core_deterministic(v) for v in value)
    if isinstance(value, dict):
        items = sorted((core_deterministic(k), core_deterministic(v)) for k, v in value.items())
        return _head(5, len(items)) + b"".join(k + v for k, v in items)
    return bytes(cbor2.dumps(value))


def _head(major: int, n: int) -> bytes:
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 24:
            return bytes([major << 5 | n])
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


@given(nested(4))
@settings(max_examples=300)
def test_own_encoder_is_core_deterministic(value: Any) -> None:
    mine = cbor.encode(value)
    assert mine == core_deterministic(value)
    assert cbor2.loads(mine) == value


@given(st.binary(max_size=200))
@settings(max_examples=1000)
def test_arbitrary_bytes_decode_or_raise_cborerror(data: bytes) -> None:
    try:
        value = cbor.decode(data)
    except cbor.CborError:
        return
    # Whatever the reader accepts, a reference decoder reads the same way.
    assert cbor2.loads(data) == value


def _depth(n: int) -> bytes:
    """n arrays nested in each other around one integer: nesting depth n."""
    return b"\x81" * n + b"\x01"


_VI = "Nguyễn Thị Hương".encode()


# (name, hex input, expected outcome: "ok" or "error")
LIMIT_CASES: list[tuple[str, str, str]] = [
    ("uint", "1903e8", "ok"),
    ("depth 4 arrays", _depth(4).hex(), "ok"),
    ("depth 5 arrays", _depth(5).hex(), "error"),
    ("depth 4 maps", "a101" * 4 + "01", "ok"),
    ("depth 5 maps", "a101" * 5 + "01", "error"),
    ("indefinite array", "9f01ff", "error"),
    ("indefinite map", "bf0101ff", "error"),
    ("indefinite bstr", "5f4101ff", "error"),
    ("indefinite tstr", "7f6161ff", "error"),
    ("break alone", "ff", "error"),
    ("reserved info 28", "1c", "error"),
    ("half float", "f93c00", "error"),
    ("double float", "fb3ff0000000000000", "error"),
    ("undefined", "f7", "error"),
    ("simple 16", "f0", "error"),
    ("tag 1", "c11a5f5e1000", "error"),
    ("tag 18 inside decode", "d28401020304", "error"),
    ("truncated uint", "1a0102", "error"),
    ("truncated bstr", "5801", "error"),
    ("bstr length lies", "5bffffffffffffffff00", "error"),
    ("array count lies", "9bffffffffffffffff00", "error"),
    ("map count lies", "bbffffffffffffffff0000", "error"),
    ("trailing garbage", "0100", "error"),
    ("duplicate key", "a201010102", "error"),
    ("bytes as map key", "a1410001", "error"),
    ("array as map key", "a1810101", "error"),
    ("bool as map key", "a1f501", "error"),
    ("invalid utf-8", "62c328", "error"),
    ("empty input", "", "error"),
    ("overlong utf-8", "62c0af", "error"),
    ("overlong 3-byte utf-8", "63e080af", "error"),
    ("utf-16 surrogate in utf-8", "63eda080", "error"),
    ("code point above U+10FFFF", "64f4908080", "error"),
    ("lead byte F5", "64f5808080", "error"),
    ("largest code point U+10FFFF", "64f48fbfbf", "ok"),
    ("null true false", "83f6f5f4", "ok"),
    ("vietnamese text", (bytes([0x60 | len(_VI)]) + _VI).hex(), "ok"),
    ("text cut inside a character", (bytes([0x65]) + _VI[:5]).hex(), "error"),
]


def _outcome(data: bytes) -> str:
    try:
        cbor.decode(data)
    except cbor.CborError:
        return "error"
    return "ok"


@pytest.mark.parametrize(("name", "hexin", "expected"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_limits_cpython(name: str, hexin: str, expected: str) -> None:
    assert _outcome(bytes.fromhex(hexin)) == expected


@pytest.mark.micropython
def test_limits_micropython() -> None:
    cases = [[name, hexin] for name, hexin, _ in LIMIT_CASES]
    code = (
        "import json, binascii, cbor\n"
        f"cases = json.loads({json.dumps(json.dumps(cases))})\n"
        "out = {}\n"
        "for name, h in cases:\n"
        "    try:\n"
        "        cbor.decode(binascii.unhexlify(h))\n"
        "        out[name] = 'ok'\n"
        "    except cbor.CborError:\n"
        "        out[name] = 'error'\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {name: expected for name, _, expected in LIMIT_CASES}


@pytest.mark.micropython
def test_encoder_matches_under_micropython() -> None:
    value = {1: 1, -1: b"\x00\xff", 13: ["Nguyễn", "Trần"], "x": [True, None, 2**40]}
    proc = run_snippet(
        "import cbor, binascii\n"
        "v = {1: 1, -1: b'\\x00\\xff', 13: ['Nguyễn', 'Trần'], 'x': [True, None, 2**40]}\n"
        "print(binascii.hexlify(cbor.encode(v)).decode())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert bytes.fromhex(proc.stdout.strip()) == cbor2.dumps(value, canonical=True)
