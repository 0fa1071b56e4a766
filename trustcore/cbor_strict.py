"""Strict CBOR decoder for everything a verifier reads (credential-v1 §1 limits).

cbor2 is lenient by design (indefinite lengths, floats, any tag, duplicate keys: last wins), so a
verifier cannot use it on hostile bytes and still promise the reader's exact answers. This walker
accepts only what the contract allows and fails closed on everything else:

- definite lengths only; no floats; simple values only false/true/null;
- no tags, except tag 18 at the very top, and only in its shortest form (first byte 0xD2);
- map keys are int or tstr, never duplicated; text is valid UTF-8 (RFC 3629, as CPython checks it);
- nesting depth is bounded (the top array or map is depth 1); nothing may follow the item.

Non-shortest integer heads are accepted unless ``deterministic=True``: verifiers check the bytes
they received and do not re-encode (§1). With ``deterministic=True`` the same walker also checks
RFC 8949 §4.2.1 core deterministic form (used by the producer side and the tests).
"""

from __future__ import annotations

from typing import Any

from cbor2 import CBORTag

from trustcore.errors import N_, TemplatedError

MAX_DEPTH = 4
COSE_SIGN1_TAG = 18
_TAG18_BYTE = 0xD2


class CborStrictError(TemplatedError, ValueError):
    """The bytes are not CBOR this project accepts; the message says which rule failed."""


class _Walker:
    def __init__(self, data: bytes, max_depth: int, deterministic: bool, allow_cose_tag: bool) -> None:
        self.buf = data
        self.end = len(data)
        self.pos = 0
        self.max_depth = max_depth
        self.det = deterministic
        self.top_tag_allowed = allow_cose_tag

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        if info > 27:
            # 28..30 are reserved; 31 is the indefinite-length marker (or a stray "break").
            raise CborStrictError(N_("indefinite-length or reserved encoding"))
        n = 1 << (info - 24)
        if self.pos + n > self.end:
            raise CborStrictError(N_("truncated"))
        value = int.from_bytes(self.buf[self.pos : self.pos + n], "big")
        self.pos += n
        if self.det and value < (24 if n == 1 else 1 << (4 * n)):
            raise CborStrictError(N_("integer or length not in shortest form"))
        return value

    def item(self, depth: int) -> Any:
        if self.pos >= self.end:
            raise CborStrictError(N_("truncated"))
        start = self.pos
        initial = self.buf[start]
        self.pos += 1
        major, info = initial >> 5, initial & 31
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info == 22:
                return None
            raise CborStrictError(N_("float, undefined or other simple value"))
        value = self._argument(info)
        if major == 0:
            return value
        if major == 1:
            return -1 - value
        if major in (2, 3):
            if value > self.end - self.pos:
                raise CborStrictError(N_("truncated"))
            raw = self.buf[self.pos : self.pos + value]
            self.pos += value
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise CborStrictError(N_("invalid UTF-8 in text string")) from None
        if major == 6:
            if depth == 0 and start == 0 and initial == _TAG18_BYTE and self.top_tag_allowed:
                return CBORTag(COSE_SIGN1_TAG, self.item(depth))
            raise CborStrictError(N_("tag not allowed here"))
        if depth >= self.max_depth:
            raise CborStrictError(N_("nesting too deep"))
        if major == 4:
            return [self.item(depth + 1) for _ in range(self._bounded_count(value))]
        return self._map(value, depth + 1)

    def _bounded_count(self, count: int) -> int:
        # Each element takes at least one byte: a count beyond the bytes left is a lie.
        if count > self.end - self.pos:
            raise CborStrictError(N_("truncated"))
        return count

    def _map(self, count: int, depth: int) -> dict[int | str, Any]:
        out: dict[int | str, Any] = {}
        previous_key: bytes | None = None
        for _ in range(self._bounded_count(count)):
            key_start = self.pos
            key = self.item(depth)
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise CborStrictError(N_("map key must be an integer or a text string"))
            if key in out:
                raise CborStrictError(N_("duplicate map key"))
            if self.det:
                encoded_key = self.buf[key_start : self.pos]
                if previous_key is not None and encoded_key <= previous_key:
                    raise CborStrictError(N_("map keys not sorted by their encoded bytes"))
                previous_key = encoded_key
            out[key] = self.item(depth)
        return out


def decode(
    data: bytes, *, max_depth: int = MAX_DEPTH, allow_cose_tag: bool = False, deterministic: bool = False
) -> Any:
    """Decode exactly one strictly-valid CBOR item spanning all of ``data``.

    Returns ints, bytes, str, lists, dicts, bools, None, and (only when ``allow_cose_tag``) a
    ``cbor2.CBORTag`` of tag 18 at the top. Raises ``CborStrictError`` on anything else.
    """
    walker = _Walker(bytes(data), max_depth, deterministic, allow_cose_tag)
    value = walker.item(0)
    if walker.pos != walker.end:
        raise CborStrictError(N_("trailing bytes after the CBOR item"))
    return value
