"""Deterministic CBOR encoding for everything we produce (RFC 8949 §4.2.1, credential-v1 §1).

cbor2's ``canonical=True`` sorts map keys length-first (the old RFC 7049 rule); core deterministic
encoding sorts them by their encoded bytes. The two agree whenever all keys of a map encode to the
same length, which holds for every map this project writes (small integer keys), but ``dumps``
still checks its output and falls back to a bytewise sort, so the promise never rests on that.
"""

from __future__ import annotations

from typing import Any

import cbor2

from trustcore import cbor_strict


def is_core_deterministic(data: bytes) -> bool:
    """True when ``data`` is one CBOR item in core deterministic form (tag 18 allowed at the top).

    Checks shortest heads, definite lengths and map keys strictly ascending by encoded bytes.
    Floats never appear in our objects and are reported as not deterministic.
    """
    try:
        cbor_strict.decode(data, max_depth=64, allow_cose_tag=True, deterministic=True)
    except cbor_strict.CborStrictError:
        return False
    return True


def _bytewise_sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        pairs = [(cbor2.dumps(k), k, _bytewise_sorted(v)) for k, v in obj.items()]
        pairs.sort(key=lambda p: p[0])
        return {k: v for _, k, v in pairs}
    if isinstance(obj, list | tuple):
        return [_bytewise_sorted(x) for x in obj]
    if isinstance(obj, cbor2.CBORTag):
        return cbor2.CBORTag(obj.tag, _bytewise_sorted(obj.value))
    return obj


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` in core deterministic CBOR (cbor2 canonical, verified; bytewise re-sort if needed)."""
    if _has_float(obj):
        raise TypeError("floats are not part of any cbcc object")
    out: bytes = cbor2.dumps(obj, canonical=True)
    if not is_core_deterministic(out):
        # canonical=False keeps dict insertion order, which _bytewise_sorted has set.
        out = cbor2.dumps(_bytewise_sorted(obj))
    assert_core_deterministic(out)
    return out


def assert_core_deterministic(data: bytes) -> None:
    """Raise ``ValueError`` unless ``data`` is in core deterministic form."""
    if not is_core_deterministic(data):
        raise ValueError("CBOR is not in RFC 8949 §4.2.1 core deterministic form")


def _has_float(obj: Any) -> bool:
    if isinstance(obj, float):
        return True
    if isinstance(obj, dict):
        return any(_has_float(k) or _has_float(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return any(_has_float(x) for x in obj)
    return False
