# A trust list file checked as a stream from flash (credential-v1 amendment 1) and the reader's
# index of it written a bounded step at a time: the install half of trust_store.py, which holds
# the list, its lookups and the file layout's description (kept apart so that neither module's
# compile at import needs the RAM of both).
#
# Index layout (docs/trust-core.md, "The trust list on a reader"):
#   "TIDX" | ver 2 | count u16 | seq u64 | iat u64 | digest[32] | count x slot | records | SHA-256
#   slot (12 bytes, sorted by kid): kid[8] | record offset u24 | record length / 2 u8
#   record: kid[8] | nbf u64 | exp u64 | lo u64 | hi u64 | kty u8 | name offset u24 | name length
#           u16 | key length u16 | key (RSA n, or EC2 x | y)
import hashlib
import os

import cbor
import cose
import cose_key
import signed
import trust

MAGIC = b"TIDX"
VERSION = 2              # 1: records without keys (the modulus read from trust.cbor): rebuilt
HDR = 4 + 1 + 2 + 8 + 8 + 32
SLOT = 12                # kid[8] | record offset u24 | record length / 2 u8
HEAD = 48                # a record up to its key
SREC = HEAD + 6          # a scratch record: a record's head | key offset u24 | EC2 y offset u24
MAX_KEY = 384            # RSA-3072 (cose_key.from_map)
LFS_BLOCK = 4096         # LittleFS block on an ESP32 (a flash sector): records never straddle one
WINDOW = 2048            # the largest single item read whole (an entry, an unknown value)
HASH_BUF = 512
_SIG1_PREFIX = b"\x84\x6aSignature1"

class StreamError(ValueError):
    pass


def _u(b, off, n):
    return int.from_bytes(b[off:off + n], "big")


def _utf8_pieces_ok(f, left, buf):
    # A long text value read in pieces; a piece never ends inside a UTF-8 sequence.
    carry = b""
    mv = memoryview(buf)
    while left > 0:
        k = f.readinto(mv[0:min(len(buf), left)])
        if not k:
            return False
        left -= k
        piece = carry + bytes(mv[0:k])
        cut = len(piece)
        if left > 0:
            back = 0
            while back < 3 and cut > 0 and piece[cut - 1] & 0xC0 == 0x80:
                cut -= 1
                back += 1
            if cut > 0 and piece[cut - 1] >= 0xC0:
                cut -= 1
            else:
                cut = len(piece)
        try:
            cbor.decode(cbor.head(3, cut) + piece[0:cut])
        except cbor.CborError:
            return False
        carry = piece[cut:]
    return not carry


class _Reader:
    """Items of a CBOR object read from a file through a fixed window."""

    def __init__(self, f, start, end):
        self.f = f
        self.end = end
        self.buf = b""
        self.base = start     # file offset of buf[0]
        self.have = 0         # valid bytes in buf
        self.pos = start      # file offset of the next item

    def _refill(self):
        # bytes, not a bytearray: decoded strings must come out as bytes like everywhere else
        self.f.seek(self.pos)
        want = min(WINDOW, self.end - self.pos)
        self.buf = self.f.read(want) if want > 0 else b""
        if len(self.buf) < want:
            raise StreamError("truncated")
        self.base = self.pos
        self.have = want

    def _ensure(self, n):
        i = self.pos - self.base
        if i < 0 or self.have - i < min(n, self.end - self.pos):
            self._refill()

    def head(self, major):
        """The count of an array or map head of the given major type."""
        self._ensure(9)
        i = self.pos - self.base
        b = self.buf
        if i >= self.have or b[i] >> 5 != major:
            raise StreamError("wrong type")
        try:
            n, j = cbor._arg(b, i + 1, self.have, b[i] & 31)
        except cbor.CborError as e:
            raise StreamError(str(e))
        self.pos = self.base + j
        return n

    def item(self, depth):
        """(obj, file offset of the item, window offset of the item): one item that fits the
        window, decoded with `depth` containers open around it."""
        self._ensure(9)
        for attempt in (0, 1):
            i = self.pos - self.base
            try:
                obj, j = cbor.item(self.buf, i, self.have, depth)
            except cbor.CborError as e:
                if attempt == 0 and i > 0 and self.base + self.have < self.end:
                    self._refill()   # it may only run past the window: read from its start
                    continue
                raise StreamError(str(e))
            at = self.pos
            self.pos = self.base + j
            return obj, at, i
        raise StreamError("unreachable")

    def skip(self, depth):
        """Skip one item; strings longer than the window are skipped (text checked) piecewise."""
        self._ensure(9)
        i = self.pos - self.base
        b = self.buf
        if i >= self.have:
            raise StreamError("truncated")
        major = b[i] >> 5
        if major in (2, 3):
            try:
                n, j = cbor._arg(b, i + 1, self.have, b[i] & 31)
            except cbor.CborError as e:
                raise StreamError(str(e))
            start = self.base + j
            if n > self.end - start:
                raise StreamError("truncated")
            if start + n - self.pos > WINDOW:
                if major == 3:
                    self.f.seek(start)
                    if not _utf8_pieces_ok(self.f, n, bytearray(HASH_BUF)):
                        raise StreamError("invalid utf-8")
                self.pos = start + n
                return
        self.item(depth)


class _Head:
    # The outer COSE_Sign1 of a list file: where its parts are.
    def __init__(self, alg, kid, prot, ys, ye, ss, se):
        self.alg = alg
        self.kid = kid
        self.prot = prot
        self.ys = ys
        self.ye = ye
        self.ss = ss
        self.se = se


def read_head(f, size):
    """Parse the COSE_Sign1 around the payload without reading the payload; StreamError."""
    n = min(size, WINDOW)
    buf = bytearray(n)
    f.seek(0)
    if f.readinto(buf) != n:
        raise StreamError("truncated")
    if n < 1 or buf[0] != 0xD2:
        raise StreamError("not a tagged COSE_Sign1")
    try:
        count, pos = cbor.array_head(buf, 1, n)
        if count != 4:
            raise StreamError("COSE_Sign1 must have 4 elements")
        ps, pe = cbor.span(buf, pos, n, 2)
        prot = bytes(buf[ps:pe])
        hdr = cbor.decode(prot)
        if pe >= n or buf[pe] >> 5 != 5:
            raise StreamError("unprotected header must be a map")
        pos = cbor.skip(buf, pe, n, 1)
        if pos >= n or buf[pos] >> 5 != 2:
            raise StreamError("payload must be a byte string")
        ylen, ys = cbor._arg(buf, pos + 1, n, buf[pos] & 31)
    except cbor.CborError as e:
        raise StreamError(str(e))
    try:
        alg, kid = cose.protected_fields(hdr)
    except cose.CoseError as e:
        raise StreamError(str(e))
    ye = ys + ylen
    if ylen > size - ys:
        raise StreamError("truncated")
    tail = bytearray(min(9, size - ye))
    f.seek(ye)
    if f.readinto(tail) != len(tail):
        raise StreamError("truncated")
    try:
        if not tail or tail[0] >> 5 != 2:
            raise StreamError("signature must be a byte string")
        slen, j = cbor._arg(tail, 1, len(tail), tail[0] & 31)
    except cbor.CborError as e:
        raise StreamError(str(e))
    ss = ye + j
    if slen > size - ss:
        raise StreamError("truncated")
    if ss + slen != size:
        raise StreamError("trailing bytes")
    return _Head(alg, kid, prot, ys, ye, ss, ss + slen)


def _digest_steps(f, h, per_step):
    # SHA-256 of Sig_structure with the payload streamed from the file; yields None, then it.
    d = hashlib.sha256(_SIG1_PREFIX + cbor.head(2, len(h.prot)) + h.prot + b"\x40"
                       + cbor.head(2, h.ye - h.ys))
    buf = bytearray(HASH_BUF)
    mv = memoryview(buf)
    f.seek(h.ys)
    left = h.ye - h.ys
    done = 0
    while left > 0:
        k = f.readinto(mv[0:min(HASH_BUF, left)])
        if not k:
            raise StreamError("truncated")
        d.update(mv[0:k])
        left -= k
        done += k
        if done >= per_step and left > 0:
            done = 0
            yield None
    yield d.digest()


def _signature(f, h):
    f.seek(h.ss)
    return f.read(h.se - h.ss)


class _Sorted:
    """Fixed-width records kept in byte order in one preallocated bytearray (insertion: binary
    search, then one move); no per-entry objects stay behind."""

    def __init__(self, width, cap):
        self.w = width
        self.b = bytearray(width * cap)
        self.n = 0

    def at(self, j):
        w = self.w
        return self.b[j * w:j * w + w]

    def insert(self, rec):
        w = self.w
        b = self.b
        lo = 0
        hi = self.n
        while lo < hi:
            mid = (lo + hi) >> 1
            if b[mid * w:mid * w + w] < rec:
                lo = mid + 1
            else:
                hi = mid
        end = self.n * w
        if lo * w < end:
            b[lo * w + w:end + w] = b[lo * w:end]
        b[lo * w:lo * w + w] = rec
        self.n += 1
        return lo


class _Pending:
    # What the payload walk found, before it is written as an index: seq, iat, kid + slot (10
    # bytes per entry), lo | hi | name hash (22 bytes per entry, compared as bytes = in serial
    # order) and the index records in a scratch file in list order.
    def __init__(self, rec_path):
        self.seq = None
        self.iat = None
        self.kids = None      # _Sorted: kid | slot, in kid order
        self.ranges = None    # _Sorted: lo | hi | name hash, in serial order
        self.rec_path = rec_path
        self.rec = open(rec_path, "wb")

    def close(self):
        if self.rec is not None:
            self.rec.close()
            self.rec = None


def _scratch(iss, name_off, name_len, key_len, k1_off, k2_off):
    # A record's head (key length set) with where the key sits in the list: RSA n at k1_off, or
    # EC2 x at k1_off and y at k2_off (32 bytes each).
    k = iss.key
    return (k.kid + iss.nbf.to_bytes(8, "big") + iss.exp.to_bytes(8, "big")
            + trust.clamp(iss.lo).to_bytes(8, "big") + trust.clamp(iss.hi).to_bytes(8, "big")
            + bytes((k.kty,)) + name_off.to_bytes(3, "big") + name_len.to_bytes(2, "big")
            + key_len.to_bytes(2, "big") + k1_off.to_bytes(3, "big") + k2_off.to_bytes(3, "big"))


def _lfs_at(pos):
    """(block index, offset in that block) of file position pos: LittleFS's CTZ skip-list
    layout (lfs_ctz_index), where block i > 0 starts with ctz(i) + 1 pointers."""
    b = LFS_BLOCK - 8
    i = pos // b
    if i == 0:
        return 0, pos
    x = i - 1
    n = 0
    while x:
        x &= x - 1
        n += 1
    i = (pos - 4 * (n + 2)) // b
    x = i
    n = 0
    while x:
        x &= x - 1
        n += 1
    return i, pos - b * i - 4 * n


def _place(pos, n):
    """The first position >= pos where n bytes sit inside one LittleFS block."""
    off = _lfs_at(pos)[1]
    if off + n > LFS_BLOCK:
        return pos + LFS_BLOCK - off    # the next block's first data byte
    return pos


def _tail_pad(pos):
    """Zero bytes to put before the checksum (due at pos) so that the file's last block index
    is not 3 mod 4. Every read after a seek walks the skip-list from the last block, and block i
    holds ctz(i) + 1 pointers: from an index 3 mod 4 the walk starts one block at a time, from the
    next index 4 or more at a time (the 192-issuer list: worst modelled lookup 1.07 -> 0.84 ms,
    for one more block written)."""
    last = _lfs_at(pos + 31)[0]
    if last & 3 != 3:
        return 0
    at = pos
    while _lfs_at(at)[0] <= last:
        at += LFS_BLOCK - _lfs_at(at)[1]      # the next block's first data byte
    return at - pos


def _payload_steps(f, h, out, per_step):
    """Walk the payload map; entries are checked one at a time. Yields None between steps;
    raises StreamError (malformed) or returns normally; out gets seq, iat and the records."""
    r = _Reader(f, h.ys, h.ye)
    count = r.head(5)
    if count > (h.ye - h.ys) >> 1:
        raise StreamError("truncated")
    seen = []
    ver = None
    got_entries = False
    for _ in range(count):
        key, _at, _i = r.item(1)
        if not isinstance(key, (int, str)) or isinstance(key, bool) or key in seen:
            raise StreamError("map key")
        seen.append(key)
        if key == 4 and isinstance(key, int):
            got_entries = True
            for x in _entries_steps(r, out, per_step):
                yield x
        elif key in (1, 2, 3) and isinstance(key, int):
            v, _at, _i = r.item(1)
            if key == 1:
                ver = v
            elif key == 2:
                out.seq = v
            else:
                out.iat = v
        else:
            r.skip(1)
    if r.pos != h.ye:
        raise StreamError("trailing bytes")
    if not (signed.is_version(ver, 1) and signed.is_uint(out.seq) and signed.is_uint(out.iat)
            and got_entries):
        raise StreamError("payload shape")


class TooMany(StreamError):
    pass


def _entries_steps(r, out, per_step):
    n = r.head(4)
    if n > trust.MAX_ENTRIES:
        raise TooMany("%d entries, at most %d" % (n, trust.MAX_ENTRIES))
    kids = out.kids = _Sorted(11, n)     # kid | slot u16 | record length / 2
    ranges = out.ranges = _Sorted(22, n)
    done = 0
    for slot in range(n):
        e, at, i = r.item(2)
        iss = trust._issuer(e)
        if iss is None:
            raise StreamError("bad entry")
        kid = iss.key.kid
        end = r.pos - r.base
        k1 = k2 = name_off = 0
        if iss.key.kty == cose_key.KTY_RSA:
            nb = e[2][-1]
            key_len = len(nb)
            k1 = at + r.buf.find(nb, i, end) - i
        else:
            key_len = 64
            k1 = at + r.buf.find(iss.key.x, i, end) - i
            k2 = at + r.buf.find(iss.key.y, i, end) - i
        j = kids.insert(kid + slot.to_bytes(2, "big") + bytes(((HEAD + key_len) >> 1,)))
        if (j > 0 and kids.at(j - 1)[0:8] == kid) or (j + 1 < kids.n and kids.at(j + 1)[0:8] == kid):
            raise StreamError("duplicate kid")
        nm = iss.name.encode()
        name_len = len(nm)
        if name_len:
            name_off = at + r.buf.find(nm, i, end) - i
        out.rec.write(_scratch(iss, name_off, name_len, key_len, k1, k2))
        ranges.insert(trust.clamp(iss.lo).to_bytes(7, "big") + trust.clamp(iss.hi).to_bytes(7, "big")
                      + hashlib.sha256(nm).digest()[:8])
        e = iss = None
        done += 1
        if done >= per_step:
            done = 0
            yield None
    prev = None
    for j in range(ranges.n):
        cur = ranges.at(j)
        # disjoint, or the very same range of the same authority (a rollover)
        if prev is not None and cur[0:7] < prev[7:14] and cur != prev:
            raise StreamError("overlapping serial ranges")
        prev = cur
    out.ranges = None


def _index_steps(p, digest, dest, list_path, per_step):
    """Write the index (slots, then records in kid order with their keys copied from the list)
    a bounded step at a time: yields None every per_step records, then (header, kids, locs)."""
    p.close()
    kids = p.kids          # sorted by kid already, each with its slot in the list
    n = 0 if kids is None else kids.n
    hdr = (MAGIC + bytes((VERSION,)) + n.to_bytes(2, "big") + p.seq.to_bytes(8, "big")
           + p.iat.to_bytes(8, "big") + digest)
    sk = bytearray(8 * n)
    loc = bytearray(4 * n)
    table = bytearray(SLOT * n)
    pos = HDR + SLOT * n
    for j in range(n):
        k = kids.at(j)
        ln = k[10] << 1
        pos = _place(pos, ln)
        sk[j * 8:j * 8 + 8] = k[0:8]
        loc[j * 4:j * 4 + 4] = pos.to_bytes(3, "big") + k[10:11]
        table[j * SLOT:j * SLOT + SLOT] = k[0:8] + loc[j * 4:j * 4 + 4]
        pos += ln
    h = hashlib.sha256(hdr)
    h.update(table)
    src = lst = f = None
    try:
        src = open(p.rec_path, "rb")
        lst = open(list_path, "rb")
        f = open(dest, "wb")
        f.write(hdr)
        f.write(table)
        del table
        pos = HDR + SLOT * n
        srec = bytearray(SREC)
        rec = bytearray(HEAD + MAX_KEY)
        mv = memoryview(rec)
        done = 0
        for j in range(n):
            k = kids.at(j)
            src.seek(((k[8] << 8) | k[9]) * SREC)
            if src.readinto(srec) != SREC:
                raise OSError("scratch")
            at = _u(loc, j * 4, 3)
            if at > pos:
                pad = bytes(at - pos)
                f.write(pad)
                h.update(pad)
            klen = _u(srec, HEAD - 2, 2)
            mv[0:HEAD] = srec[0:HEAD]
            part = klen if srec[40] == cose_key.KTY_RSA else 32
            lst.seek(_u(srec, HEAD, 3))
            if lst.readinto(mv[HEAD:HEAD + part]) != part:
                raise OSError("trust list")
            if part < klen:
                lst.seek(_u(srec, HEAD + 3, 3))
                if lst.readinto(mv[HEAD + part:HEAD + klen]) != klen - part:
                    raise OSError("trust list")
            w = mv[0:HEAD + klen]
            f.write(w)
            h.update(w)
            pos = at + HEAD + klen
            done += 1
            if done >= per_step and j + 1 < n:
                done = 0
                yield None
        pad = _tail_pad(pos)
        if pad:
            pad = bytes(pad)
            f.write(pad)
            h.update(pad)
        f.write(h.digest())
    finally:
        for x in (src, lst, f):
            if x is not None:
                x.close()
        _remove(p.rec_path)
    yield hdr, sk, loc


def _remove(p):
    try:
        os.remove(p)
    except OSError:
        pass
