# Compact CBOR (RFC 8949) decoder for the reader, with the limits of credential-v1 §1.
#
# Accepts only what the contract allows: definite lengths, integers, byte and text strings,
# arrays, maps (int or text keys, no duplicates), false/true/null, and tag 18 at the top of a
# COSE object when the caller allows it. No floats, no other tags, no trailing bytes.
# Every length is checked against the bytes remaining before anything is allocated, and
# nesting is bounded, so a hostile buffer costs at most its own size.
# Runs unchanged on MicroPython and CPython.


class CborError(ValueError):
    pass


MAX_DEPTH = 4


_RISKY_LEADS = (b"\xc0", b"\xc1", b"\xe0", b"\xed")


def _utf8_strict(b):
    # MicroPython's decoder checks only the shape of UTF-8 (lead byte, continuation count);
    # refuse what it lets through: overlong forms, UTF-16 surrogates, code points > U+10FFFF.
    # Called after that decoder accepted b, so every multi-byte sequence is complete.
    # Only sequences led by C0, C1, E0, ED or F0..FF can be any of those: text without such a
    # lead byte (Vietnamese is mostly C3..C6 and E1) needs no walk byte by byte.
    if b and max(b) < 0xF0:
        for lead in _RISKY_LEADS:
            if lead in b:
                break
        else:
            return True
    n = len(b)
    i = 0
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
        elif c < 0xE0:
            if c < 0xC2:
                return False
            i += 2
        elif c < 0xF0:
            d = b[i + 1]
            if (c == 0xE0 and d < 0xA0) or (c == 0xED and d >= 0xA0):
                return False
            i += 3
        else:
            d = b[i + 1]
            if c > 0xF4 or (c == 0xF0 and d < 0x90) or (c == 0xF4 and d >= 0x90):
                return False
            i += 4
    return True


def _decoder_is_lax():
    try:
        str(b"\xed\xa0\x80", "utf-8")  # a surrogate: CPython refuses it, MicroPython does not
    except Exception:
        return False
    return True


_LAX_UTF8 = _decoder_is_lax()

_FALSE = 20
_TRUE = 21
_NULL = 22


def _arg(buf, pos, end, info):
    # Returns (value, new_pos) for the argument that follows an initial byte.
    if info < 24:
        return info, pos
    if info == 24:
        n = 1
    elif info == 25:
        n = 2
    elif info == 26:
        n = 4
    elif info == 27:
        n = 8
    else:
        # 28..30 are reserved, 31 is indefinite length: both are refused.
        raise CborError("indefinite or reserved length")
    if pos + n > end:
        raise CborError("truncated")
    return int.from_bytes(buf[pos:pos + n], "big"), pos + n


def _item(buf, pos, end, depth):
    # The hot path of every tap: one byte of head, the argument inline when it fits in it.
    if pos >= end:
        raise CborError("truncated")
    ib = buf[pos]
    major = ib >> 5
    v = ib & 31
    pos += 1
    if v >= 24:
        if major == 7:
            raise CborError("float or simple value")
        v, pos = _arg(buf, pos, end, v)
    if major == 0:
        return v, pos
    if major == 2:
        if v > end - pos:
            raise CborError("truncated")
        return buf[pos:pos + v], pos + v
    if major == 3:
        if v > end - pos:
            raise CborError("truncated")
        raw = buf[pos:pos + v]
        try:
            s = str(raw, "utf-8")
        except Exception:
            raise CborError("invalid utf-8")
        # ASCII text (same length in characters and bytes) needs no second look.
        if _LAX_UTF8 and len(s) != v and not _utf8_strict(raw):
            raise CborError("invalid utf-8")
        return s, pos + v
    if major == 1:
        return -1 - v, pos
    if major == 7:
        if v == _FALSE:
            return False, pos
        if v == _TRUE:
            return True, pos
        if v == _NULL:
            return None, pos
        raise CborError("simple value")
    if major == 6:
        raise CborError("tag not allowed here")
    # Arrays and maps open a nesting level.
    if depth >= MAX_DEPTH:
        raise CborError("too deep")
    depth += 1
    if major == 4:
        # Each element takes at least one byte: a count beyond the bytes left is a lie.
        if v > end - pos:
            raise CborError("truncated")
        arr = []
        for _ in range(v):
            x, pos = _item(buf, pos, end, depth)
            arr.append(x)
        return arr, pos
    # major == 5: map; each pair takes at least two bytes.
    if v > (end - pos) >> 1:
        raise CborError("truncated")
    out = {}
    for _ in range(v):
        if pos < end and buf[pos] < 24:
            # the usual key, a small unsigned integer, read inline
            k = buf[pos]
            pos += 1
        else:
            k, pos = _item(buf, pos, end, depth)
            if not isinstance(k, (int, str)) or isinstance(k, bool):
                raise CborError("map key type")
        if k in out:
            raise CborError("duplicate map key")
        x, pos = _item(buf, pos, end, depth)
        out[k] = x
    return out, pos


def decode(buf, start=0, end=None):
    """Decode exactly one item spanning buf[start:end] (buf: bytes); raise CborError otherwise."""
    if end is None:
        end = len(buf)
    obj, pos = _item(buf, start, end, 0)
    if pos != end:
        raise CborError("trailing bytes")
    return obj


def head(major, n):
    """Encode a CBOR initial byte and argument in shortest form."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25, n >> 8, n & 0xFF))
    if n < 0x100000000:
        return bytes((mt | 26, n >> 24, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


def span(buf, pos, end, major):
    """Read a definite-length string head of the given major type at pos.

    Returns (content_start, content_end) without copying; used by the COSE layer to hash the
    protected header and payload exactly as received.
    """
    if pos >= end:
        raise CborError("truncated")
    ib = buf[pos]
    if ib >> 5 != major:
        raise CborError("wrong type")
    n, pos = _arg(buf, pos + 1, end, ib & 31)
    if n > end - pos:
        raise CborError("truncated")
    return pos, pos + n


def array_head(buf, pos, end):
    """Read a definite-length array head at pos; returns (count, next_pos)."""
    if pos >= end:
        raise CborError("truncated")
    ib = buf[pos]
    if ib >> 5 != 4:
        raise CborError("wrong type")
    return _arg(buf, pos + 1, end, ib & 31)


def item(buf, pos, end, depth):
    """Decode one item at pos with `depth` containers already open; returns (obj, next_pos).
    Used to decode one element of a larger object streamed from flash (trust_store)."""
    return _item(buf, pos, end, depth)


def skip(buf, pos, end, depth):
    """Decode and discard one item (bounded like any other); returns next_pos."""
    return _item(buf, pos, end, depth)[1]


def encode(obj):
    """Small deterministic encoder for the reader's own records (ints, str, bytes, lists, dicts).

    Map keys are sorted by their encoded bytes (RFC 8949 §4.2.1).
    """
    if obj is True:
        return b"\xf5"
    if obj is False:
        return b"\xf4"
    if obj is None:
        return b"\xf6"
    if isinstance(obj, int):
        if obj >= 0:
            return head(0, obj)
        return head(1, -1 - obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return head(2, len(obj)) + bytes(obj)
    if isinstance(obj, str):
        b = obj.encode()
        return head(3, len(b)) + b
    if isinstance(obj, (list, tuple)):
        parts = [head(4, len(obj))]
        for x in obj:
            parts.append(encode(x))
        return b"".join(parts)
    if isinstance(obj, dict):
        items = []
        for k in obj:
            items.append((encode(k), encode(obj[k])))
        items.sort()  # keys are unique, so the sort never compares values
        parts = [head(5, len(items))]
        for kb, vb in items:
            parts.append(kb)
            parts.append(vb)
        return b"".join(parts)
    raise CborError("cannot encode")
