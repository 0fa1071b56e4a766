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
        try:
            return str(buf[pos:pos + v], "utf-8"), pos + v
        except Exception:
            raise CborError("invalid utf-8")
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
