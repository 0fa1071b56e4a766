"""National compact revocation list v1 (``docs/revocation-list-national-v1.md``): host side.

An object is a COSE_Sign1 header made by the national root key (RS256) immediately followed by a
detached body. The header's payload names the body's length and SHA-256:

``{0: "ncrl", 1: 1, 2: seq, 3: iat, 4: kind (0 full | 1 delta), 5: body length, 6: body SHA-256,
7: base seq, 8: base body SHA-256}`` (keys 7 and 8 only in a delta).

A **full** body codes the revoked serials per serial range: each range is cut into fixed-width
buckets of serials, a bucket's revoked serials are Rice-coded gaps (parameter ``k`` per range),
and an index of bit offsets (one per bucket, no serial field: the bucket number is computed from
the serial) lets a reader decode one bucket read from flash. A **delta** body carries the serials
added to and removed from a named base (Exp-Golomb-coded gaps of raw serials); the reader keeps
one delta beside its base, and each new delta replaces the previous one (deltas are cumulative
since their base).

This module builds both, parses them strictly (the same checks as ``firmware/lib/crl_national.py``,
in the same order, with the same statuses) and answers ``is_revoked`` by the reader's own bucket
algorithm, so the two can be compared on any input.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_det, cose, keys, signed_object
from trustcore.errors import N_, TemplatedError, Text, TrustcoreError

TYPE_TAG = "ncrl"
VERSION = 1
KIND_FULL = 0
KIND_DELTA = 1
MAGIC = b"NCRL"
BODY_VERSION = 1

MAX_HEADER = 2048
MAX_FULL_BODY = 1 << 24
MAX_DELTA_BODY = 1 << 18
MAX_RANGES = 1024
MAX_SPAN = (1 << 32) - 1
MAX_WIDTH = (1 << 24) - 1
MAX_RICE_K = 22
MAX_EG_K = 52
MAX_BUCKET_BYTES = 256
MAX_DELTA_ENTRIES = 16384
SERIAL_LIMIT = 1 << 53
FULL_HEAD = 21
RANGE_ENTRY = 15
DELTA_HEAD = 24
DEFAULT_BUCKET_ENTRIES = 64
SEQ_STATE_NAME = "ncrl.seq"

OK = signed_object.OK
NOOP = signed_object.NOOP
ROLLBACK = signed_object.ROLLBACK
MALFORMED = signed_object.MALFORMED
TOO_LARGE = "too_large"
BAD_LENGTH = "bad_length"
BAD_DIGEST = "bad_digest"
WRONG_BASE = "wrong_base"


class BodyError(TemplatedError, ValueError):
    """The body does not follow the format (status ``malformed``); the message says where."""


# ---- bits --------------------------------------------------------------------------------------


class _BitWriter:
    """MSB-first bit string."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, nbits: int) -> None:
        self.acc = (self.acc << nbits) | value
        self.n += nbits
        while self.n >= 8:
            self.n -= 8
            self.out.append((self.acc >> self.n) & 0xFF)
        self.acc &= (1 << self.n) - 1

    def tell(self) -> int:
        return len(self.out) * 8 + self.n

    def rice(self, v: int, k: int) -> None:
        """q = v >> k zeros, a one, then the k low bits of v."""
        self.put(0, v >> k)
        self.put((1 << k) | (v & ((1 << k) - 1)), k + 1)

    def exp_golomb(self, v: int, k: int) -> None:
        """x = v + 2^k has n bits: n - k - 1 zeros, then x."""
        x = v + (1 << k)
        n = x.bit_length()
        self.put(0, n - k - 1)
        self.put(x, n)

    def getvalue(self) -> bytes:
        if self.n:
            return bytes(self.out) + bytes([(self.acc << (8 - self.n)) & 0xFF])
        return bytes(self.out)


class _BitReader:
    """Reads an MSB-first bit string held as text ('0'/'1'), bounded by ``end``."""

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.bits = format(int.from_bytes(data, "big"), "b").zfill(len(data) * 8) if data else ""
        self.pos = start
        self.end = end

    def zeros(self) -> int:
        """Count zeros up to a one and consume both."""
        one = self.bits.find("1", self.pos, self.end)
        if one < 0:
            raise BodyError(N_("unary code runs past its end"))
        z = one - self.pos
        self.pos = one + 1
        return z

    def read(self, n: int) -> int:
        if self.pos + n > self.end:
            raise BodyError(N_("code runs past its end"))
        v = int(self.bits[self.pos : self.pos + n], 2) if n else 0
        self.pos += n
        return v

    def rice(self, k: int) -> int:
        q = self.zeros()
        return (q << k) | self.read(k)

    def exp_golomb(self, k: int) -> int:
        z = self.zeros()
        if z + k > 54:
            raise BodyError(N_("Exp-Golomb code too long"))
        x = (1 << (z + k)) | self.read(z + k)
        return x - (1 << k)


def rice_bits(values: Sequence[int], k: int) -> int:
    return len(values) * (k + 1) + sum(v >> k for v in values)


def exp_golomb_bits(values: Sequence[int], k: int) -> int:
    return sum(2 * (v + (1 << k)).bit_length() - k - 1 for v in values)


def _best_k(values: Sequence[int], cost: Any, kmax: int) -> int:
    """The parameter with the fewest bits; the cost is convex in k, so walk from a guess."""
    if not values:
        return 0
    mean = sum(values) / len(values)
    k = min(kmax, max(0, int(mean).bit_length() - 1))
    best = cost(values, k)
    for step in (-1, 1):
        while 0 <= k + step <= kmax:
            c = cost(values, k + step)
            if c >= best:
                break
            k += step
            best = c
    return k


# ---- ranges and the full body ------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Serials ``lo`` … ``hi - 1`` of one issuer (or one key of an issuer)."""

    lo: int
    hi: int


@dataclass(frozen=True)
class CodedRange:
    """One entry of a full body's range table."""

    lo: int
    span: int
    k: int
    width: int
    first: int  # number of the range's first bucket (computed, not stored)

    @property
    def buckets(self) -> int:
        return -(-self.span // self.width)


def check_ranges(ranges: Iterable[Range]) -> list[Range]:
    out = sorted(ranges, key=lambda r: r.lo)
    for i, r in enumerate(out):
        if not 0 <= r.lo < r.hi <= SERIAL_LIMIT:
            raise TrustcoreError(N_("serial range {lo}…{hi} is empty or outside 0 … 2^53"), lo=r.lo, hi=r.hi)
        if i and out[i - 1].hi > r.lo:
            raise TrustcoreError(
                N_("serial ranges {lo1}…{hi1} and {lo2}…{hi2} overlap"),
                lo1=out[i - 1].lo,
                hi1=out[i - 1].hi,
                lo2=r.lo,
                hi2=r.hi,
            )
    return out


def check_serials(serials: Iterable[int]) -> list[int]:
    out = sorted(set(serials))
    for s in out[:1] + out[-1:]:
        if not 0 <= s < SERIAL_LIMIT:
            raise TrustcoreError(N_("serial {serial} is outside 0 … 2^53-1"), serial=s)
    return out


def _bucket_values(lo: int, width: int, serials: Sequence[int]) -> list[list[int]]:
    """Per bucket: the first serial's offset from the bucket start, then gaps minus one."""
    out: list[list[int]] = []
    prev = 0
    for s in serials:
        j = (s - lo) // width
        while len(out) <= j:
            out.append([])
            prev = lo + (len(out) - 1) * width - 1
        out[j].append(s - prev - 1)
        prev = s
    return out


def _plan_range(lo: int, hi: int, serials: Sequence[int], bucket_entries: int) -> tuple[int, int, int]:
    """(span, k, width) for a range trimmed to [lo, hi) holding ``serials``."""
    span = hi - lo
    if not serials:
        return span, 0, min(span, MAX_WIDTH)
    width = max(1, min(span, MAX_WIDTH, round(bucket_entries * span / len(serials))))
    while True:
        buckets = _bucket_values(lo, width, serials)
        k = _best_k([v for b in buckets for v in b], rice_bits, MAX_RICE_K)
        if width == 1 or all(rice_bits(b, k) <= (MAX_BUCKET_BYTES - 1) * 8 for b in buckets):
            return span, k, width
        width = max(1, width * 2 // 3)


def _split(serials: list[int], ranges: list[Range], keep_empty: bool) -> list[tuple[int, int, list[int]]]:
    """Assign serials to ranges; each piece is trimmed to its first and last revoked serial and
    at most MAX_SPAN long. A serial outside every range is an error."""
    pieces: list[tuple[int, int, list[int]]] = []
    i = 0
    for r in ranges:
        if i < len(serials) and serials[i] < r.lo:
            raise TrustcoreError(N_("revoked serial {serial} is in no serial range"), serial=serials[i])
        mine: list[int] = []
        while i < len(serials) and serials[i] < r.hi:
            mine.append(serials[i])
            i += 1
        if not mine:
            if keep_empty:
                pieces.append((r.lo, min(r.hi, r.lo + MAX_WIDTH), []))
            continue
        start = 0
        while start < len(mine):
            lo = mine[start]
            end = start
            while end + 1 < len(mine) and mine[end + 1] - lo < MAX_SPAN:
                end += 1
            pieces.append((lo, mine[end] + 1, mine[start : end + 1]))
            start = end + 1
    if i < len(serials):
        raise TrustcoreError(N_("revoked serial {serial} is in no serial range"), serial=serials[i])
    return pieces


def build_full_body(
    serials: Iterable[int],
    ranges: Iterable[Range],
    *,
    bucket_entries: int = DEFAULT_BUCKET_ENTRIES,
    keep_empty: bool = False,
) -> bytes:
    """The full body for ``serials`` (each inside one of ``ranges``)."""
    if bucket_entries < 1:
        raise TrustcoreError(N_("bucket entries must be at least 1"))
    revoked = check_serials(serials)
    pieces = _split(revoked, check_ranges(ranges), keep_empty)
    if len(pieces) > MAX_RANGES:
        raise TrustcoreError(
            N_("{n} coded ranges; a list holds at most {max}"), n=len(pieces), max=MAX_RANGES
        )
    table = bytearray()
    bits = _BitWriter()
    index: list[int] = []
    for lo, hi, mine in pieces:
        span, k, width = _plan_range(lo, hi, mine, bucket_entries)
        table += lo.to_bytes(7, "big") + span.to_bytes(4, "big") + bytes([k]) + width.to_bytes(3, "big")
        buckets = _bucket_values(lo, width, mine)
        nb = -(-span // width)
        buckets += [[] for _ in range(nb - len(buckets))]
        for values in buckets:
            index.append(bits.tell())
            for v in values:
                bits.rice(v, k)
    total = bits.tell()
    index.append(total)
    w = 3 if total < 1 << 24 else 4
    head = (
        MAGIC
        + bytes([BODY_VERSION, KIND_FULL, w])
        + len(pieces).to_bytes(2, "big")
        + len(revoked).to_bytes(4, "big")
        + (len(index) - 1).to_bytes(4, "big")
        + total.to_bytes(4, "big")
    )
    body = head + bytes(table) + b"".join(x.to_bytes(w, "big") for x in index) + bits.getvalue()
    if len(body) > MAX_FULL_BODY:
        raise TrustcoreError(
            N_("the body would be {size} bytes; a full list is at most {max}"),
            size=len(body),
            max=MAX_FULL_BODY,
        )
    return body


def _u(b: bytes, off: int, n: int) -> int:
    return int.from_bytes(b[off : off + n], "big")


@dataclass(frozen=True)
class FullBody:
    """A parsed, fully validated full body."""

    body: bytes
    count: int
    ranges: tuple[CodedRange, ...]
    index_width: int
    index_at: int
    data_at: int
    total_bits: int

    def _entry(self, b: int) -> int:
        return _u(self.body, self.index_at + b * self.index_width, self.index_width)

    def _range_of(self, serial: int) -> CodedRange | None:
        lo, hi = 0, len(self.ranges)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ranges[mid].lo <= serial:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        r = self.ranges[lo - 1]
        return r if serial - r.lo < r.span else None

    def is_revoked(self, serial: int) -> bool:
        """The reader's algorithm: range, bucket number, two index entries, decode one bucket."""
        r = self._range_of(serial)
        if r is None:
            return False
        j, t = divmod(serial - r.lo, r.width)
        s, e = self._entry(r.first + j), self._entry(r.first + j + 1)
        sb = s >> 3
        reader = _BitReader(
            self.body[self.data_at + sb : self.data_at + ((e + 7) >> 3)], s - 8 * sb, e - 8 * sb
        )
        p = -1
        while reader.pos < reader.end:
            p += reader.rice(r.k) + 1
            if p >= t:
                return p == t
        return False

    def serials(self) -> Iterator[int]:
        data = self.body[self.data_at :]
        reader = _BitReader(data, 0, self.total_bits)
        for r in self.ranges:
            for j in range(r.buckets):
                s, e = self._entry(r.first + j), self._entry(r.first + j + 1)
                reader.pos, reader.end = s, e
                p = -1
                while reader.pos < e:
                    p += reader.rice(r.k) + 1
                    yield r.lo + j * r.width + p


def parse_full_body(body: bytes) -> FullBody:
    """Strict parse and full decode (every bucket, every code); raises BodyError."""
    if len(body) < FULL_HEAD or body[:4] != MAGIC or body[4] != BODY_VERSION or body[5] != KIND_FULL:
        raise BodyError(N_("not a full body of version 1"))
    w, nranges, count, nbuckets, total = (
        body[6],
        _u(body, 7, 2),
        _u(body, 9, 4),
        _u(body, 13, 4),
        _u(body, 17, 4),
    )
    if w not in (3, 4) or nranges > MAX_RANGES:
        raise BodyError(N_("index width or range count out of bounds"))
    index_at = FULL_HEAD + RANGE_ENTRY * nranges
    data_at = index_at + w * (nbuckets + 1)
    if data_at + (total + 7) // 8 != len(body):
        raise BodyError(N_("section sizes do not add up to the body length"))
    ranges: list[CodedRange] = []
    first = 0
    prev_end = 0
    for i in range(nranges):
        o = FULL_HEAD + RANGE_ENTRY * i
        lo, span, k, width = _u(body, o, 7), _u(body, o + 7, 4), body[o + 11], _u(body, o + 12, 3)
        if lo < prev_end or span < 1 or lo + span > SERIAL_LIMIT or k > MAX_RICE_K:
            raise BodyError(N_("range {i}: out of order, empty or out of bounds"), i=i)
        if not 1 <= width <= min(span, MAX_WIDTH):
            raise BodyError(N_("range {i}: bucket width out of bounds"), i=i)
        ranges.append(CodedRange(lo, span, k, width, first))
        first += ranges[-1].buckets
        prev_end = lo + span
    if first != nbuckets:
        raise BodyError(N_("bucket count does not match the ranges"))
    fb = FullBody(body, count, tuple(ranges), w, index_at, data_at, total)
    prev = 0
    for b in range(nbuckets + 1):
        x = fb._entry(b)
        if (b == 0 and x != 0) or x < prev or ((x + 7) >> 3) - (prev >> 3) > MAX_BUCKET_BYTES:
            raise BodyError(N_("index entry {b}: out of order, or its bucket is too long"), b=b)
        prev = x
    if prev != total:
        raise BodyError(N_("last index entry is not the data length"))
    if total & 7 and body[-1] & ((1 << (8 - (total & 7))) - 1):
        raise BodyError(N_("padding bits are not zero"))
    seen = 0
    for r in fb.ranges:
        reader = _BitReader(body[data_at:], 0, total)
        for j in range(r.buckets):
            reader.pos, reader.end = fb._entry(r.first + j), fb._entry(r.first + j + 1)
            limit = min(r.width, r.span - j * r.width)
            p = -1
            while reader.pos < reader.end:
                p += reader.rice(r.k) + 1
                if p >= limit:
                    raise BodyError(
                        N_("range at {lo}: bucket {j} codes a serial beyond its width"), lo=r.lo, j=j
                    )
                seen += 1
    if seen != count:
        raise BodyError(
            N_("the header counts {count} serials, the buckets hold {seen}"), count=count, seen=seen
        )
    return fb


# ---- delta body --------------------------------------------------------------------------------


def _eg_set(serials: Sequence[int]) -> tuple[int, int, bytes]:
    """(k, bits, bytes) for a strictly ascending list: first serial, then gaps minus one."""
    values = [s - (serials[i - 1] + 1 if i else 0) for i, s in enumerate(serials)]
    k = _best_k(values, exp_golomb_bits, MAX_EG_K)
    bits = _BitWriter()
    for v in values:
        bits.exp_golomb(v, k)
    return k, bits.tell(), bits.getvalue()


def build_delta_body(added: Iterable[int], removed: Iterable[int]) -> bytes:
    add, rem = check_serials(added), check_serials(removed)
    if set(add) & set(rem):
        raise TrustcoreError(N_("a serial cannot be both added and removed by one delta"))
    if len(add) > MAX_DELTA_ENTRIES or len(rem) > MAX_DELTA_ENTRIES:
        raise TrustcoreError(
            N_("a delta adds and removes at most {max} serials each; publish a full list"),
            max=MAX_DELTA_ENTRIES,
        )
    ka, ta, da = _eg_set(add)
    kr, tr, dr = _eg_set(rem)
    head = MAGIC + bytes([BODY_VERSION, KIND_DELTA, ka, kr])
    head += b"".join(x.to_bytes(4, "big") for x in (len(add), len(rem), ta, tr))
    body = head + da + dr
    if len(body) > MAX_DELTA_BODY:
        raise TrustcoreError(
            N_("the delta body would be {size} bytes; at most {max}"), size=len(body), max=MAX_DELTA_BODY
        )
    return body


@dataclass(frozen=True)
class DeltaBody:
    added: frozenset[int]
    removed: frozenset[int]


def _eg_decode(data: bytes, k: int, n: int, nbits: int) -> list[int]:
    if n > MAX_DELTA_ENTRIES or k > MAX_EG_K:
        raise BodyError(N_("delta set too large or parameter out of range"))
    reader = _BitReader(data, 0, nbits)
    out: list[int] = []
    prev = -1
    for _ in range(n):
        prev += reader.exp_golomb(k) + 1
        if prev >= SERIAL_LIMIT:
            raise BodyError(N_("serial beyond 2^53"))
        out.append(prev)
    if reader.pos != nbits:
        raise BodyError(N_("delta set: bits left over"))
    return out


def parse_delta_body(body: bytes) -> DeltaBody:
    if len(body) < DELTA_HEAD or body[:4] != MAGIC or body[4] != BODY_VERSION or body[5] != KIND_DELTA:
        raise BodyError(N_("not a delta body of version 1"))
    ka, kr = body[6], body[7]
    na, nr, ta, tr = (_u(body, 8 + 4 * i, 4) for i in range(4))
    la, lr = (ta + 7) // 8, (tr + 7) // 8
    if DELTA_HEAD + la + lr != len(body):
        raise BodyError(N_("section sizes do not add up to the body length"))
    parts = []
    for data, t in ((body[DELTA_HEAD : DELTA_HEAD + la], ta), (body[DELTA_HEAD + la :], tr)):
        if t & 7 and data[-1] & ((1 << (8 - (t & 7))) - 1):
            raise BodyError(N_("padding bits are not zero"))
        parts.append(data)
    add = _eg_decode(parts[0], ka, na, ta)
    rem = _eg_decode(parts[1], kr, nr, tr)
    if set(add) & set(rem):
        raise BodyError(N_("a serial is both added and removed"))
    return DeltaBody(frozenset(add), frozenset(rem))


# ---- the signed header -------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    seq: int
    iat: int
    kind: int
    length: int
    digest: bytes
    base_seq: int | None = None
    base_digest: bytes | None = None


def header_payload(h: Header) -> bytes:
    m: dict[int, Any] = {0: TYPE_TAG, 1: VERSION, 2: h.seq, 3: h.iat, 4: h.kind, 5: h.length, 6: h.digest}
    if h.kind == KIND_DELTA:
        m[7] = h.base_seq
        m[8] = h.base_digest
    return cbor_det.dumps(m)


def parse_header_payload(p: Mapping[int | str, Any]) -> Header | None:
    u = signed_object.as_uint
    seq, iat, kind, length, digest = u(p.get(2)), u(p.get(3)), u(p.get(4)), u(p.get(5)), p.get(6)
    if p.get(0) != TYPE_TAG or u(p.get(1)) != VERSION or seq is None or iat is None or length is None:
        return None
    if kind not in (KIND_FULL, KIND_DELTA) or not isinstance(digest, bytes) or len(digest) != 32:
        return None
    if kind == KIND_FULL:
        if 7 in p or 8 in p:
            return None
        return Header(seq, iat, kind, length, digest)
    base_seq, base_digest = u(p.get(7)), p.get(8)
    if base_seq is None or base_seq >= seq or not isinstance(base_digest, bytes) or len(base_digest) != 32:
        return None
    return Header(seq, iat, kind, length, digest, base_seq, base_digest)


def sign(root_key: rsa.RSAPrivateKey, h: Header, body: bytes) -> bytes:
    """The object: the signed header, then the body."""
    if h.length != len(body) or h.digest != hashlib.sha256(body).digest():
        raise TrustcoreError(N_("header does not describe the body"))
    return cose.sign1(header_payload(h), root_key, alg=cose.ALG_RS256) + body


def header_end(blob: bytes) -> int:
    """Where the COSE_Sign1 header item ends (looked for in the first MAX_HEADER bytes)."""
    fp = io.BytesIO(blob[:MAX_HEADER])
    try:
        cbor2.CBORDecoder(fp).decode()
    except Exception as exc:
        raise BodyError(N_("no COSE_Sign1 header: {reason}"), reason=str(exc)) from None
    return fp.tell()


# ---- building ----------------------------------------------------------------------------------


def build_full(
    root_key: rsa.RSAPrivateKey,
    seq: int,
    iat: int,
    serials: Iterable[int],
    ranges: Iterable[Range],
    *,
    bucket_entries: int = DEFAULT_BUCKET_ENTRIES,
    keep_empty: bool = False,
) -> bytes:
    body = build_full_body(serials, ranges, bucket_entries=bucket_entries, keep_empty=keep_empty)
    return sign(root_key, Header(seq, iat, KIND_FULL, len(body), hashlib.sha256(body).digest()), body)


def build_delta(
    root_key: rsa.RSAPrivateKey, seq: int, iat: int, base: NationalList, serials: Iterable[int]
) -> bytes:
    """A delta from ``base`` (a loaded full list) to the revoked set ``serials``."""
    if base.full is None or base.full_header is None:
        raise TrustcoreError(N_("the base must be a full national list"))
    if seq <= base.full_header.seq:
        raise TrustcoreError(N_("a delta's seq must be above its base's ({seq})"), seq=base.full_header.seq)
    now = set(check_serials(serials))
    old = set(base.full.serials())
    body = build_delta_body(now - old, old - now)
    h = Header(
        seq,
        iat,
        KIND_DELTA,
        len(body),
        hashlib.sha256(body).digest(),
        base.full_header.seq,
        base.full_header.digest,
    )
    return sign(root_key, h, body)


# ---- loading (the reader's statuses, in the reader's order) ------------------------------------


@dataclass
class NationalList:
    """What a reader holds: a full list and at most one delta on top of it."""

    root: keys.PublicKey
    full: FullBody | None = None
    full_header: Header | None = None
    delta: DeltaBody | None = None
    delta_header: Header | None = None
    detail: str = field(default="")  # why not taken: a Text the catalog renders (messages.text_in)

    @property
    def seq(self) -> int | None:
        h = self.delta_header or self.full_header
        return None if h is None else h.seq

    def count(self) -> int:
        n = 0 if self.full is None else self.full.count
        if self.delta is not None:
            n += len(self.delta.added) - len(self.delta.removed)
        return n

    def is_revoked(self, serial: int) -> bool:
        if self.full is None or not 0 <= serial < SERIAL_LIMIT:
            return False
        hit = self.full.is_revoked(serial)
        if self.delta is None:
            return hit
        return serial not in self.delta.removed if hit else serial in self.delta.added

    def offer(self, blob: bytes) -> str:
        """Verify an object and take it when its status is ``ok``; ``detail`` says why not."""
        status, header, detail = check(blob, self.root)
        self.detail = detail or ""
        if header is None or status != OK:
            return status
        if header.kind == KIND_DELTA:
            fh = self.full_header
            if fh is None or header.base_seq != fh.seq or header.base_digest != fh.digest:
                return WRONG_BASE
        status = signed_object.seq_status(header.seq, self.seq)
        if status != OK:
            return status
        if header.length != len(blob) - header_end(blob):
            return BAD_LENGTH
        payload = blob[len(blob) - header.length :]
        if hashlib.sha256(payload).digest() != header.digest:
            return BAD_DIGEST
        try:
            if header.kind == KIND_FULL:
                full = parse_full_body(payload)
                self.full, self.full_header, self.delta, self.delta_header = full, header, None, None
            else:
                self.delta, self.delta_header = parse_delta_body(payload), header
        except BodyError as exc:
            self.detail = exc.args[0]
            return MALFORMED
        return OK


def check(blob: bytes, root: keys.PublicKey) -> tuple[str, Header | None, str | None]:
    """Envelope and header checks: (status, header when ok, detail)."""
    try:
        end = header_end(blob)
    except BodyError as exc:
        return MALFORMED, None, exc.args[0]
    status, payload = signed_object.open_signed(blob[:end], MAX_HEADER, root)
    if payload is None:
        return status, None, None
    header = parse_header_payload(payload)
    if header is None:
        return MALFORMED, None, Text(N_("the signed header does not fit the format"))
    if header.length > (MAX_FULL_BODY if header.kind == KIND_FULL else MAX_DELTA_BODY):
        return TOO_LARGE, None, None
    return OK, header, None


def load(blob: bytes, root: keys.PublicKey) -> NationalList:
    """A holder with ``blob`` offered to it (see ``detail`` and the return of ``offer``)."""
    held = NationalList(root)
    held.offer(blob)
    return held


# ---- inputs ------------------------------------------------------------------------------------


def parse_ranges_text(text: str) -> list[Range]:
    """One range a line: ``LO HI`` (HI exclusive) or ``LO:HI``, optional text after them;
    blank lines and text after '#' are ignored."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].replace(":", " ").split()
        if not item:
            continue
        if len(item) < 2 or not item[0].isdigit() or not item[1].isdigit():
            raise TrustcoreError(
                N_("line {number}: expected 'LO HI' (HI exclusive): {line!r}"),
                number=number,
                line=line.strip(),
            )
        out.append(Range(int(item[0]), int(item[1])))
    return check_ranges(out)


def entropy_bits(revoked: int, issued: int) -> float:
    """log2 C(issued, revoked): the fewest bits any exact code can average for such a set."""
    from math import lgamma, log

    if revoked <= 0 or revoked >= issued:
        return 0.0
    return (lgamma(issued + 1) - lgamma(revoked + 1) - lgamma(issued - revoked + 1)) / log(2)
