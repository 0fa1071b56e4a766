# National compact revocation list v1 (docs/revocation-list-national-v1.md): the reader's side.
#
# An object is a COSE_Sign1 header signed by the pinned national root (RS256) immediately
# followed by its detached body; the header's payload names the body's length and SHA-256:
#   {0: "ncrl", 1: 1, 2: seq, 3: iat, 4: kind (0 full | 1 delta), 5: length, 6: SHA-256,
#    7: base seq, 8: base SHA-256}                       (7 and 8 in a delta only)
# The held objects stay on flash (<folder>/ncrl.base and ncrl.delta) and are never loaded whole:
# a lookup reads two index entries and one bucket (at most 256 bytes) with seek/readinto into
# fixed buffers and decodes it with byte-wide tables. RAM: the range table (lists of ints, at most
# 1024 ranges), one 256-entry table per Rice parameter in use, and a delta's sample table (at
# most 512 samples per set, 7 + 4 + 4 bytes each).
#
#   lst = NationalList(root, folder)
#   lst.load_held()              # at boot: the held base (and delta), checked against the root
#   st = lst.offer(path)         # a downloaded object file; "ok" moves it into place
#   lst.is_revoked(serial)       # like revocation.RevocationList
#
# Statuses: those of signed.py, plus too_large (body over the limit for its kind), wrong_base (a
# delta for a base that is not the one held), bad_length, bad_digest (body against its header).
# Order: envelope and header, too_large, wrong_base, seq (noop / rollback), body length, body
# SHA-256 (streamed through a 512-byte buffer), body structure (malformed). Anything but ok leaves
# the held lists untouched. A body that is not well formed raises BodyError (a ValueError) inside,
# reported as malformed with .detail set.
import hashlib
import os
from array import array

import cbor
import signed
import statefile

TYPE = "ncrl"
VERSION = 1
KIND_FULL = 0
KIND_DELTA = 1
MAGIC = b"NCRL"
BODY_VERSION = 1

MAX_HEADER = 2048
MAX_FULL_BODY = 1 << 24
MAX_DELTA_BODY = 1 << 18
MAX_RANGES = 1024
MAX_WIDTH = (1 << 24) - 1
MAX_RICE_K = 22
MAX_EG_K = 52
MAX_BUCKET_BYTES = 256
MAX_DELTA_ENTRIES = 16384
MAX_SAMPLES = 512
SERIAL_LIMIT = 1 << 53
FULL_HEAD = 21
RANGE_ENTRY = 15
DELTA_HEAD = 24
_HASH_BUF = 512
STEP_BUCKETS = 8            # offer_steps: buckets decoded per step (~2-3 ms each on an ESP32)
STEP_HASH_BYTES = 16384     # offer_steps: body bytes hashed per step

TOO_LARGE = "too_large"
WRONG_BASE = "wrong_base"
BAD_LENGTH = "bad_length"
BAD_DIGEST = "bad_digest"

BASE_FILE = "ncrl.base"
DELTA_FILE = "ncrl.delta"


class BodyError(ValueError):
    pass


def _lz_table():
    # leading zeros of a byte (8 for 0)
    t = bytearray(256)
    t[0] = 8
    for b in range(1, 256):
        z = 0
        while not (b << z) & 0x80:
            z += 1
        t[b] = z
    return bytes(t)


LZ = _lz_table()


def rice_table(k):
    """For each byte: (value << 4) | length of the Rice code it begins with, 0 if none fits."""
    t = array("H", [0] * 256)
    if k > 7:
        return t
    for b in range(1, 256):
        z = LZ[b]
        ln = z + 1 + k
        if ln <= 8:
            t[b] = (((z << k) | ((b >> (8 - ln)) & ((1 << k) - 1))) << 4) | ln
    return t


def _u(b, off, n):
    v = 0
    for i in range(off, off + n):
        v = (v << 8) | b[i]
    return v


def _read_exact(f, off, buf, n):
    f.seek(off)
    got = f.readinto(buf)
    if got is None or got < n:
        raise BodyError("truncated")


def _zero_tail(buf, n, endbit):
    # bits after the bucket's last code, and two sentinel bytes, read as zeros
    rem = endbit & 7
    if rem:
        buf[n - 1] &= (0xFF00 >> rem) & 0xFF
    buf[n] = 0
    buf[n + 1] = 0


def rice_find(buf, n, s7, endbit, k, tab, t):
    """Is relative position t among the Rice-coded positions in buf[0:n] (bits s7 .. endbit)?
    Codes: the first position, then each gap minus one. buf has room for two more bytes.
    The table decodes a whole code from the next 8 bits when it fits; otherwise the unary part
    is counted a byte at a time and the k remainder bits are taken at once (the bit window
    stays under 2^30: small integers on an ESP32)."""
    _zero_tail(buf, n, endbit)
    lz = LZ
    km = (1 << k) - 1
    nb = 8 - s7
    acc = buf[0] & ((1 << nb) - 1)
    i = 1
    p = -1
    while True:
        if nb < 8:
            acc = ((acc & 0xFF) << 8) | buf[i]
            i += 1
            nb += 8
        c = tab[(acc >> (nb - 8)) & 0xFF]
        if c:
            nb -= c & 15
            p += (c >> 4) + 1
            if p >= t:
                return p == t
            continue
        if (i << 3) - nb >= endbit:
            return False
        q = 0
        z = lz[(acc >> (nb - 8)) & 0xFF]
        while z == 8:
            if i > n + 1:
                raise BodyError("unary code runs past its bucket")
            q += 8
            acc = ((acc & 0xFF) << 8) | buf[i]
            i += 1
            z = lz[(acc >> (nb - 8)) & 0xFF]
        nb -= z + 1
        while nb < k:
            if i > n + 1:
                raise BodyError("code runs past its bucket")
            acc = ((acc & ((1 << nb) - 1)) << 8) | buf[i]
            i += 1
            nb += 8
        nb -= k
        p += (((q + z) << k) | ((acc >> nb) & km)) + 1
        if p >= t:
            return p == t


def rice_scan(buf, n, s7, endbit, k, limit):
    """Decode a whole bucket strictly; returns the number of positions (all < limit)."""
    _zero_tail(buf, n, endbit)
    lz = LZ
    km = (1 << k) - 1
    nb = 8 - s7
    acc = buf[0] & ((1 << nb) - 1)
    i = 1
    p = -1
    count = 0
    while (i << 3) - nb < endbit:
        if nb < 8:
            acc = ((acc & 0xFF) << 8) | buf[i]
            i += 1
            nb += 8
        q = 0
        z = lz[(acc >> (nb - 8)) & 0xFF]
        while z == 8:
            if i > n + 1:
                raise BodyError("unary code runs past its bucket")
            q += 8
            acc = ((acc & 0xFF) << 8) | buf[i]
            i += 1
            z = lz[(acc >> (nb - 8)) & 0xFF]
        nb -= z + 1
        while nb < k:
            if i > n + 1:
                raise BodyError("code runs past its bucket")
            acc = ((acc & ((1 << nb) - 1)) << 8) | buf[i]
            i += 1
            nb += 8
        nb -= k
        if (i << 3) - nb > endbit:
            raise BodyError("code runs past its bucket")
        p += (((q + z) << k) | ((acc >> nb) & km)) + 1
        if p >= limit:
            raise BodyError("position beyond the bucket")
        count += 1
    return count


class _Bits:
    """Sequential MSB-first bits of a file region, through a small buffer (delta loading)."""

    def __init__(self, f, off, nbytes, buf):
        self.f = f
        self.off = off
        self.left = nbytes
        self.buf = buf
        self.i = 0
        self.n = 0
        self.acc = 0
        self.nb = 0
        self.pos = 0          # bits consumed

    def _byte(self):
        if self.i >= self.n:
            if self.left <= 0:
                raise BodyError("code runs past its section")
            self.f.seek(self.off)
            k = len(self.buf) if self.left > len(self.buf) else self.left
            got = self.f.readinto(self.buf)
            if got is None or got < k:
                raise BodyError("truncated")
            self.off += k
            self.left -= k
            self.n = k
            self.i = 0
        b = self.buf[self.i]
        self.i += 1
        return b

    def zeros(self):
        z = 0
        while True:
            if self.nb == 0:
                self.acc = self._byte()
                self.nb = 8
            x = (self.acc << (8 - self.nb)) & 0xFF
            if x == 0:
                z += self.nb
                self.pos += self.nb
                self.nb = 0
                if z > 64:
                    raise BodyError("unary code too long")
                continue
            lz = LZ[x]
            z += lz
            self.nb -= lz + 1
            self.pos += lz + 1
            return z

    def read(self, m):
        v = 0
        self.pos += m
        while m:
            if self.nb == 0:
                self.acc = self._byte()
                self.nb = 8
            take = m if m < self.nb else self.nb
            self.nb -= take
            v = (v << take) | ((self.acc >> self.nb) & ((1 << take) - 1))
            m -= take
        return v

    def exp_golomb(self, k):
        z = self.zeros()
        if z + k > 54:
            raise BodyError("Exp-Golomb code too long")
        return ((1 << (z + k)) | self.read(z + k)) - (1 << k)


def eg_find(buf, n, s7, endbit, k, count, prev, target):
    """Among count Exp-Golomb-coded serials after prev in buf[0:n] (bits s7 .. endbit), is
    target present? Codes are gaps minus one."""
    _zero_tail(buf, n, endbit)
    lz = LZ
    nb = 8 - s7
    acc = buf[0] & ((1 << nb) - 1)
    i = 1
    for _ in range(count):
        z = 0
        while True:
            if nb < 8:
                if i > n + 1:
                    raise BodyError("code runs past its segment")
                acc = ((acc & 0xFF) << 8) | buf[i]
                i += 1
                nb += 8
            y = lz[(acc >> (nb - 8)) & 0xFF]
            z += y
            if y < 8:
                nb -= y + 1
                break
            nb -= 8
            if z > 64:
                raise BodyError("unary code too long")
        m = z + k
        x = 1
        while m:
            if nb == 0:
                if i > n + 1:
                    raise BodyError("code runs past its segment")
                acc = buf[i]
                i += 1
                nb = 8
            take = m if m < nb else nb
            nb -= take
            x = (x << take) | ((acc >> nb) & ((1 << take) - 1))
            m -= take
        prev += x - (1 << k) + 1
        if prev >= target:
            return prev == target
    return False


# ---- the full list -------------------------------------------------------------------------

class FullBody:
    """A full body on flash: range table in RAM, index and buckets read per lookup.
    deep: True decodes every bucket, False checks the index only, None skips both (a body
    checked already)."""

    def __init__(self, f, off, length, buf, deep=True):
        self.f = f
        self.off = off
        self.buf = buf
        if length < FULL_HEAD:
            raise BodyError("short body")
        h = bytearray(FULL_HEAD)
        _read_exact(f, off, h, FULL_HEAD)
        if bytes(h[0:4]) != MAGIC or h[4] != BODY_VERSION or h[5] != KIND_FULL:
            raise BodyError("not a full body of version 1")
        w = h[6]
        nr = _u(h, 7, 2)
        self.count = _u(h, 9, 4)
        nbk = _u(h, 13, 4)
        total = _u(h, 17, 4)
        if (w != 3 and w != 4) or nr > MAX_RANGES:
            raise BodyError("index width or range count")
        self.iw = w
        self.ix = off + FULL_HEAD + RANGE_ENTRY * nr
        self.data = self.ix + w * (nbk + 1)
        if self.data + ((total + 7) >> 3) != off + length:
            raise BodyError("section sizes do not add up to the body length")
        self.nbuckets = nbk
        self.total = total
        self.ib = bytearray(2 * w)
        lo = []
        span = []
        k = []
        width = []
        first = []
        tabs = []
        cache = {}  # type: dict
        e = bytearray(RANGE_ENTRY)
        fb = 0
        prev_end = 0
        for r in range(nr):
            _read_exact(f, off + FULL_HEAD + RANGE_ENTRY * r, e, RANGE_ENTRY)
            a = _u(e, 0, 7)
            s = _u(e, 7, 4)
            kr = e[11]
            wr = _u(e, 12, 3)
            if a < prev_end or s < 1 or a + s > SERIAL_LIMIT or kr > MAX_RICE_K:
                raise BodyError("range table: order or bounds")
            if wr < 1 or wr > s or wr > MAX_WIDTH:
                raise BodyError("range table: bucket width")
            lo.append(a)
            span.append(s)
            k.append(kr)
            width.append(wr)
            first.append(fb)
            fb += (s + wr - 1) // wr
            prev_end = a + s
            t = cache.get(kr)
            if t is None:
                t = rice_table(kr)
                cache[kr] = t
            tabs.append(t)
        if fb != nbk:
            raise BodyError("bucket count does not match the ranges")
        self.lo = lo
        self.span = span
        self.k = k
        self.width = width
        self.first = first
        self.tabs = tabs
        if deep is not None:
            self._check(deep)

    def _bucket(self, b):
        """(start bit, end bit) of bucket b, from two index entries."""
        ib = self.ib
        _read_exact(self.f, self.ix + b * self.iw, ib, len(ib))
        if self.iw == 3:
            return (ib[0] << 16) | (ib[1] << 8) | ib[2], (ib[3] << 16) | (ib[4] << 8) | ib[5]
        return _u(ib, 0, 4), _u(ib, 4, 4)

    def _check(self, deep):
        """The index (monotonic, starts at 0, ends at the data length, buckets of at most
        MAX_BUCKET_BYTES), zero padding; deep: every bucket decoded, positions within their
        bucket, the count as the header says."""
        for _ in self.check_steps(deep, 1 << 30):
            pass

    def check_steps(self, deep, per_step):
        """_check in bounded steps: a generator that yields after every per_step buckets (the
        reader's housekeeping runs one step between taps); raises BodyError like _check."""
        seen = 0
        step = 0
        buf = self.buf
        prev = 0
        r = 0
        j = 0
        for b in range(self.nbuckets):
            step += 1
            if step >= per_step:
                step = 0
                yield None
            s, e = self._bucket(b)
            if (b == 0 and s != 0) or s != prev or e < s:
                raise BodyError("index entry %d" % b)
            n = ((e + 7) >> 3) - (s >> 3)
            if n > MAX_BUCKET_BYTES:
                raise BodyError("bucket %d too long" % b)
            prev = e
            if deep:
                while j * self.width[r] >= self.span[r]:
                    r += 1
                    j = 0
                w = self.width[r]
                limit = self.span[r] - j * w
                if limit > w:
                    limit = w
                if e > s:
                    _read_exact(self.f, self.data + (s >> 3), buf, n)
                    seen += rice_scan(buf, n, s & 7, e - (s & ~7), self.k[r], limit)
                j += 1
        if self.nbuckets == 0:
            prev = _u(self._bucket_entry0(), 0, self.iw)
        if prev != self.total:
            raise BodyError("last index entry is not the data length")
        t = self.total
        if t & 7:
            one = bytearray(1)
            _read_exact(self.f, self.data + (t >> 3), one, 1)
            if one[0] & ((1 << (8 - (t & 7))) - 1):
                raise BodyError("padding bits are not zero")
        if deep and seen != self.count:
            raise BodyError("the header counts %d serials, the buckets hold %d" % (self.count, seen))

    def _bucket_entry0(self):
        e = bytearray(self.iw)
        _read_exact(self.f, self.ix, e, self.iw)
        return e

    def has(self, serial):
        los = self.lo
        a = 0
        b = len(los)
        while a < b:
            m = (a + b) >> 1
            if los[m] <= serial:
                a = m + 1
            else:
                b = m
        r = a - 1
        if r < 0:
            return False
        o = serial - los[r]
        if o >= self.span[r]:
            return False
        w = self.width[r]
        j = o // w
        f = self.f
        ib = self.ib
        f.seek(self.ix + (self.first[r] + j) * self.iw)
        if f.readinto(ib) != len(ib):
            raise BodyError("truncated index")
        if self.iw == 3:
            s = (ib[0] << 16) | (ib[1] << 8) | ib[2]
            e = (ib[3] << 16) | (ib[4] << 8) | ib[5]
        else:
            s = _u(ib, 0, 4)
            e = _u(ib, 4, 4)
        if e <= s:
            return False
        sb = s >> 3
        n = ((e + 7) >> 3) - sb
        if n > MAX_BUCKET_BYTES:
            raise BodyError("bucket too long")
        buf = self.buf
        f.seek(self.data + sb)
        got = f.readinto(buf)
        if got is None or got < n:
            raise BodyError("truncated bucket")
        return rice_find(buf, n, s & 7, e - (sb << 3), self.k[r], self.tabs[r], o - j * w)


# ---- the delta -----------------------------------------------------------------------------

class DeltaSet:
    """Serials added (or removed) by a delta: Exp-Golomb-coded, decoded once at load to build
    a sample table (every step-th serial: its 7 bytes, the bit offset after its code, its
    number), so a lookup binary-searches RAM and decodes at most step - 1 codes."""

    def __init__(self, f, off, nbits, k, count, buf):
        self.f = f
        self.off = off
        self.n = count
        self.k = k
        self.buf = buf
        self.first = 0
        self.last = -1
        step = (count + MAX_SAMPLES - 1) // MAX_SAMPLES
        if step < 1:
            step = 1
        keys = bytearray()
        offs = array("I")
        idx = array("I")
        bits = _Bits(f, off, (nbits + 7) >> 3, bytearray(64))
        prev = -1
        since = 0
        seg_start = 0
        # a segment (sample to sample) is at most seg_limit bits plus two codes (<= 108 bits
        # each), so it fits the lookup buffer at any bit alignment
        seg_limit = (MAX_BUCKET_BYTES - 1) * 8 - 232
        for i in range(count):
            before = bits.pos
            prev += bits.exp_golomb(k) + 1
            if prev >= SERIAL_LIMIT:
                raise BodyError("serial beyond 2^53")
            if bits.pos > nbits:
                raise BodyError("code runs past its section")
            if i == 0:
                self.first = prev
            if i == 0 or since >= step or before - seg_start > seg_limit:
                keys.extend(prev.to_bytes(7, "big"))
                offs.append(bits.pos)
                idx.append(i)
                seg_start = bits.pos
                since = 0
            since += 1
        if bits.pos != nbits:
            raise BodyError("bits left over after the last code")
        if nbits & 7:
            last = bits.acc & ((1 << bits.nb) - 1)
            if last:
                raise BodyError("padding bits are not zero")
        self.last = prev
        self.keys = bytes(keys)
        self.offs = offs
        self.idx = idx
        self.ns = len(idx)
        self.nbits = nbits

    def has(self, serial):
        if self.n == 0 or serial < self.first or serial > self.last:
            return False
        kb = serial.to_bytes(7, "big")
        keys = self.keys
        a = 0
        b = self.ns
        while a < b:
            m = (a + b) >> 1
            if keys[m * 7:m * 7 + 7] <= kb:
                a = m + 1
            else:
                b = m
        j = a - 1
        key = keys[j * 7:j * 7 + 7]
        if key == kb:
            return True
        nxt = j + 1
        count = (self.idx[nxt] if nxt < self.ns else self.n) - self.idx[j] - 1
        if count <= 0:
            return False
        s = self.offs[j]
        # the segment ends where the next sample's code ends, or at the end of the set
        e = self.nbits
        if nxt < self.ns:
            e = self.offs[nxt]
        sb = s >> 3
        n = ((e + 7) >> 3) - sb
        if n > MAX_BUCKET_BYTES:
            raise BodyError("segment too long")
        buf = self.buf
        _read_exact(self.f, self.off + sb, buf, n)
        return eg_find(buf, n, s & 7, e - (sb << 3), self.k, count, int.from_bytes(key, "big"), serial)


class DeltaBody:
    def __init__(self, f, off, length, buf):
        if length < DELTA_HEAD:
            raise BodyError("short body")
        h = bytearray(DELTA_HEAD)
        _read_exact(f, off, h, DELTA_HEAD)
        if bytes(h[0:4]) != MAGIC or h[4] != BODY_VERSION or h[5] != KIND_DELTA:
            raise BodyError("not a delta body of version 1")
        ka = h[6]
        kr = h[7]
        na = _u(h, 8, 4)
        nr = _u(h, 12, 4)
        ta = _u(h, 16, 4)
        tr = _u(h, 20, 4)
        if ka > MAX_EG_K or kr > MAX_EG_K or na > MAX_DELTA_ENTRIES or nr > MAX_DELTA_ENTRIES:
            raise BodyError("delta parameters")
        la = (ta + 7) >> 3
        if DELTA_HEAD + la + ((tr + 7) >> 3) != length:
            raise BodyError("section sizes do not add up to the body length")
        self.added = DeltaSet(f, off + DELTA_HEAD, ta, ka, na, buf)
        self.removed = DeltaSet(f, off + DELTA_HEAD + la, tr, kr, nr, buf)
        if na and nr and self._overlap():
            raise BodyError("a serial is both added and removed")

    def _overlap(self):
        # both sets are small (<= 16384): walk the smaller one through the other's lookup
        small = self.added if self.added.n <= self.removed.n else self.removed
        other = self.removed if small is self.added else self.added
        bits = _Bits(small.f, small.off, (small.nbits + 7) >> 3, bytearray(64))
        prev = -1
        for _ in range(small.n):
            prev += bits.exp_golomb(small.k) + 1
            if other.has(prev):
                return True
        return False


# ---- objects: header + body ----------------------------------------------------------------

class Header:
    def __init__(self, seq, iat, kind, length, digest, base_seq, base_digest, body_at):
        self.seq = seq
        self.iat = iat
        self.kind = kind
        self.length = length
        self.digest = digest
        self.base_seq = base_seq
        self.base_digest = base_digest
        self.body_at = body_at


def header_end(buf):
    """End of the COSE_Sign1 item at the start of buf (CborError/ValueError when none)."""
    end = len(buf)
    if end < 1 or buf[0] != 0xD2:
        raise BodyError("not a tagged COSE_Sign1")
    count, pos = cbor.array_head(buf, 1, end)
    if count != 4:
        raise BodyError("COSE_Sign1 must have 4 elements")
    pos = cbor.span(buf, pos, end, 2)[1]
    if pos >= end or buf[pos] >> 5 != 5:
        raise BodyError("unprotected header must be a map")
    pos = cbor.skip(buf, pos, end, 1)
    pos = cbor.span(buf, pos, end, 2)[1]
    return cbor.span(buf, pos, end, 2)[1]


def _is_digest(v):
    return isinstance(v, bytes) and len(v) == 32


def parse_header(blob, root):
    """Verify a header (the COSE_Sign1 alone) under the root; returns (status, Header)."""
    status, p = signed.open_signed(blob, MAX_HEADER, root)
    if status != signed.OK:
        return status, None
    t = p.get(0)
    kind = p.get(4)
    seq = p.get(2)
    length = p.get(5)
    digest = p.get(6)
    if not (isinstance(t, str) and t == TYPE and signed.is_version(p.get(1), VERSION)
            and signed.is_uint(seq) and signed.is_uint(p.get(3)) and signed.is_uint(kind)
            and signed.is_uint(length) and _is_digest(digest)):
        return signed.MALFORMED, None
    base_seq = p.get(7)
    base_digest = p.get(8)
    if kind == KIND_FULL:
        if 7 in p or 8 in p:
            return signed.MALFORMED, None
        limit = MAX_FULL_BODY
    elif kind == KIND_DELTA:
        if not (signed.is_uint(base_seq) and base_seq < seq and _is_digest(base_digest)):
            return signed.MALFORMED, None
        limit = MAX_DELTA_BODY
    else:
        return signed.MALFORMED, None
    if length > limit:
        return TOO_LARGE, None
    return signed.OK, Header(seq, p.get(3), kind, length, digest, base_seq, base_digest, len(blob))


def read_header(path, root):
    """(status, Header) for the object file at path: header verified, body length checked."""
    try:
        size = os.stat(path)[6]
        with open(path, "rb") as f:
            pre = f.read(size if size < MAX_HEADER else MAX_HEADER)
    except OSError:
        return "io_error", None
    try:
        end = header_end(pre)
    except ValueError:
        return signed.MALFORMED, None
    status, h = parse_header(pre[0:end], root)
    if status != signed.OK:
        return status, None
    if size - end != h.length:
        return BAD_LENGTH, h
    return signed.OK, h


def digest_steps(path, off, length, per_step):
    """SHA-256 of length bytes at off in bounded steps: yields None after every per_step bytes,
    then the digest (a short file gives the digest of what is there: it will not match)."""
    h = hashlib.sha256()
    buf = bytearray(_HASH_BUF)
    mv = memoryview(buf)
    done = 0
    with open(path, "rb") as f:
        f.seek(off)
        while length > 0:
            k = f.readinto(buf)
            if not k:
                break
            if k > length:
                k = length
            h.update(mv[0:k])
            length -= k
            done += k
            if done >= per_step and length > 0:
                done = 0
                yield None
    yield h.digest()


def body_digest(path, off, length):
    h = hashlib.sha256()
    buf = bytearray(_HASH_BUF)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        f.seek(off)
        while length > 0:
            k = f.readinto(buf)
            if not k:
                break
            if k > length:
                k = length
            h.update(mv[0:k])
            length -= k
    return h.digest()


class Stream:
    """An object arriving in order: the header first, then body chunks, each hashed and written
    as it arrives (the file at path is what offer() then takes)."""

    def __init__(self, path, header, root):
        self.status, self.h = parse_header(header, root)
        self.path = path
        self.f = None
        self.left = 0
        if self.status == signed.OK:
            self.sha = hashlib.sha256()
            self.left = self.h.length
            self.f = open(path, "wb")
            self.f.write(header)

    def write(self, chunk):
        f = self.f
        if self.status != signed.OK or f is None:
            return self.status
        if len(chunk) > self.left:
            self.status = BAD_LENGTH
            f.close()
            self.f = None
            return self.status
        self.sha.update(chunk)
        f.write(chunk)
        self.left -= len(chunk)
        return signed.OK

    def finish(self):
        if self.f is not None:
            self.f.close()
            self.f = None
        if self.status == signed.OK:
            if self.left:
                self.status = BAD_LENGTH
            elif self.sha.digest() != self.h.digest:
                self.status = BAD_DIGEST
        return self.status


class NationalList:
    """The reader's national list: a full list on flash and at most one delta beside it."""

    def __init__(self, root, folder, deep=True):
        self.root = root
        self.folder = folder
        self.deep = deep
        self.detail = ""
        self.base = None            # FullBody
        self.base_h = None
        self.delta = None           # DeltaBody
        self.delta_h = None
        self.seq = None             # the delta's seq when one is held, else the base's
        self._files = [None, None]
        self.buf = bytearray(MAX_BUCKET_BYTES + 8)

    def _path(self, name):
        return self.folder + "/" + name

    def count(self):
        n = 0 if self.base is None else self.base.count
        if self.delta is not None:
            n += self.delta.added.n - self.delta.removed.n
        return n

    def is_revoked(self, serial):
        base = self.base
        if base is None or serial < 0 or serial >= SERIAL_LIMIT:
            return False
        hit = base.has(serial)
        d = self.delta
        if d is None:
            return hit
        if hit:
            return not d.removed.has(serial)
        return d.added.has(serial)

    def _open(self, path, h, deep):
        """Open the body of a checked object; returns (file, body) or raises BodyError."""
        f = open(path, "rb")
        try:
            if h.kind == KIND_FULL:
                return f, FullBody(f, h.body_at, h.length, self.buf, deep)
            return f, DeltaBody(f, h.body_at, h.length, self.buf)
        except (BodyError, OSError, IndexError):
            f.close()
            raise

    def check(self, path, deep=True):
        """Every check of offer(), nothing installed: (status, Header, file, body)."""
        self.detail = ""
        status, h = read_header(path, self.root)
        if status != signed.OK:
            return status, None, None, None
        if h.kind == KIND_DELTA:
            bh = self.base_h
            if bh is None or h.base_seq != bh.seq or h.base_digest != bh.digest:
                return WRONG_BASE, None, None, None
        status = signed.seq_status(h.seq, self.seq)
        if status != signed.OK:
            return status, None, None, None
        try:
            if body_digest(path, h.body_at, h.length) != h.digest:
                return BAD_DIGEST, None, None, None
            f, body = self._open(path, h, deep)
        except (BodyError, IndexError) as e:
            self.detail = str(e)
            return signed.MALFORMED, None, None, None
        except OSError:
            return "io_error", None, None, None
        return signed.OK, h, f, body

    def offer(self, path):
        """Verify the object file at path; when ok, move it into place and use it."""
        status, h, f, body = self.check(path, self.deep)
        if status != signed.OK:
            return status
        f.close()
        return self._install(path, h)

    def _held_status(self, h):
        # wrong_base, then the seq against the held one (checks 2 and 3 of offer)
        if h.kind == KIND_DELTA:
            bh = self.base_h
            if bh is None or h.base_seq != bh.seq or h.base_digest != bh.digest:
                return WRONG_BASE
        return signed.seq_status(h.seq, self.seq)

    def offer_steps(self, path, buckets=STEP_BUCKETS, hash_bytes=STEP_HASH_BYTES):
        """offer() in bounded steps, for a caller that runs one step between taps: a generator
        that yields None after each step (the header's RSA check; every hash_bytes of the body's
        SHA-256; every `buckets` buckets of the structural check) and finally the status. The
        same checks in the same order as offer(); the held lists stay in use until the last step,
        which installs the object (the seq and base are checked again there). Closing the
        generator early abandons the check and installs nothing."""
        self.detail = ""
        status, h = read_header(path, self.root)
        if status == signed.OK:
            status = self._held_status(h)
        if status != signed.OK:
            yield status
            return
        yield None
        d = None
        try:
            for d in digest_steps(path, h.body_at, h.length, hash_bytes):
                if d is None:
                    yield None
        except OSError:
            yield "io_error"
            return
        if d != h.digest:
            yield BAD_DIGEST
            return
        status = signed.OK
        f = None
        try:
            f = open(path, "rb")
            if h.kind == KIND_FULL:
                body = FullBody(f, h.body_at, h.length, self.buf, None)
                yield None
                if self.deep is not None:
                    for _ in body.check_steps(self.deep, buckets):
                        yield None
            else:
                DeltaBody(f, h.body_at, h.length, self.buf)
        except (BodyError, IndexError) as e:
            self.detail = str(e)
            status = signed.MALFORMED
        except OSError:
            status = "io_error"
        finally:
            if f is not None:
                f.close()
        if status == signed.OK:
            status = self._held_status(h)     # unchanged while the steps ran, unless offered to
        if status != signed.OK:
            yield status
            return
        yield self._install(path, h)

    def _install(self, path, h):
        slot = 0 if h.kind == KIND_FULL else 1
        dest = self._path(BASE_FILE if slot == 0 else DELTA_FILE)
        self._close(slot)
        if slot == 0:
            self._close(1)
        _replace(path, dest)
        if slot == 0:
            _remove(self._path(DELTA_FILE))
            self.delta = None
            self.delta_h = None
        f, body = self._open(dest, h, None)
        self._files[slot] = f
        if slot == 0:
            self.base = body
            self.base_h = h
        else:
            self.delta = body
            self.delta_h = h
        self.seq = h.seq
        return signed.OK

    def load_held(self):
        """At boot: the held base and delta (signature, length and digest checked again; the
        structure was checked in full when they were offered). Returns the base's status."""
        self.close()
        self.base = self.base_h = self.delta = self.delta_h = self.seq = None
        got = []  # type: list
        for slot, name in ((0, BASE_FILE), (1, DELTA_FILE)):
            p = self._path(name)
            try:
                os.stat(p)
            except OSError:
                got.append(None)
                continue
            status, h, f, body = self.check(p, False)
            if status == signed.OK and (slot == 0) != (h.kind == KIND_FULL):
                f.close()
                status = signed.MALFORMED
            if status != signed.OK:
                _remove(p)        # a delta for another base, or a damaged copy
                got.append(status)
                continue
            self._files[slot] = f
            if slot == 0:
                self.base = body
                self.base_h = h
            else:
                self.delta = body
                self.delta_h = h
            self.seq = h.seq
            got.append(signed.OK)
        return got[0]

    def _close(self, slot):
        f = self._files[slot]
        if f is not None:
            f.close()
            self._files[slot] = None

    def close(self):
        self._close(0)
        self._close(1)


def _remove(p):
    try:
        os.remove(p)
    except OSError:
        pass


_replace = statefile.replace  # the firmware's one atomic rename (statefile.py)
