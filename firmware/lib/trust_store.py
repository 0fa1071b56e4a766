# The reader's trust list on flash (credential-v1 §3 and amendment 1): verified as a stream,
# kept as received with an index beside it, one issuer read per lookup (docs/trust-core.md,
# "The trust list on a reader").
#
#   st = TrustStore(root, folder)   # root: the pinned root PublicKey (root_chain may replace it)
#   st.load_held()                  # at boot: the held list, its signature checked again
#   for r in st.offer_steps(path):  # a downloaded list file, a bounded step at a time
#       ...                         # None while working, then the status ("ok" moves it in)
#   st.get(kid)                     # -> trust.Issuer or None (credential.verify's trust)
#
# Files in folder: trust.cbor (the signed list exactly as received) and trust.idx (the index,
# written by trust_stream.py, whose header and docs/trust-core.md give the byte layout).
# digest is the SHA-256 of the list's Sig_structure (what its signature covers), so an index
# belongs to exactly one verified list; lo/hi are clamped to 2^53 (serials are below it); name
# offsets point into trust.cbor. Records sit in kid order, each inside one LittleFS block (a read
# that crosses a block walks the file's skip-list again: sim/lfs_timing.py). RAM: the slots
# (12 bytes per entry) and where each first kid byte starts among them (514 bytes), a 2 KiB window
# while verifying, a few cached issuers. A lookup finds the kid in RAM (its first byte's bucket:
# one or two compares) and reads one record (its key beside it).
#
# Streaming verification order (the same answers as trust.parse on the whole blob): size
# (too_large) -> envelope (malformed) -> alg -> root kid -> signature over the payload hashed
# from flash -> payload, one entry at a time (malformed, too_large over MAX_ENTRIES) -> seq
# (noop / rollback). Anything but ok leaves the held list and index untouched; `detail` says why.
import array
import gc
import hashlib
import os
import struct

import cose
import cose_key
import rs256
import signed
import trust
from trust_stream import (
    HASH_BUF,
    HDR,
    HEAD,
    MAGIC,
    MAX_KEY,
    SLOT,
    SREC,  # noqa: F401 (the benchmark's count of scratch bytes)
    VERSION,
    StreamError,
    TooMany,
    _digest_steps,
    _index_steps,
    _payload_steps,
    _Pending,
    _remove,
    _signature,
    _u,
    read_head,
)

LIST_FILE = "trust.cbor"
INDEX_FILE = "trust.idx"
OFFER_FILE = "trust.offer"
REC_FILE = "trust.rec"
_HEAD_FMT = ">QQQQBBHHH"  # a record from byte 8: nbf exp lo hi kty | name offset (high byte, low
                          # 16 bits) | name length | key length: the whole head in one unpack
STEP_HASH_BYTES = 16384  # offer_steps: payload bytes hashed per step
STEP_ENTRIES = 8         # offer_steps: entries checked (and index records written) per step
CACHE = 8                # issuers kept decoded (a door sees few issuers)
_NO_KIDS = array.array("H", bytes(2 * 257))   # the buckets of an empty store (never written)


def _replace(src, dst):
    try:
        os.rename(src, dst)
    except OSError:
        _remove(dst)
        os.rename(src, dst)


def _size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return -1

class TrustStore:
    """The reader's current trust list, on flash, under a pinned root key."""

    def __init__(self, root, folder):
        self.root = root
        self.old_roots = ()     # roots before the current one (root_chain.py): a held list
                                # accepted under one of them still loads at boot
        self.folder = folder
        self.seq = None
        self.iat = None
        self.count = 0
        self.detail = ""
        self.errors = 0         # lookups that failed on flash (each one refused its tap)
        self._kids = b""        # the sorted kids, 8 bytes each
        self._loc = b""         # per kid: record offset u24 | record length / 2
        self._bkt = _NO_KIDS    # index of the first kid with each first byte, then the count
        self._idx = None
        self._lst = None
        self._rec = bytearray(HEAD + MAX_KEY)
        self._mv = memoryview(self._rec)
        self._cache = {}
        self._order = []

    def _path(self, name):
        return self.folder + "/" + name

    # ---- lookups (every tap) ---------------------------------------------------------------

    def get(self, kid):
        """The Issuer for kid, or None; reads one index record (its key inside) from flash."""
        iss = self._cache.get(kid)
        if iss is not None:
            return iss
        if len(kid) != 8:
            return None
        kids = self._kids
        b = kid[0]
        i = self._bkt[b]
        end = self._bkt[b + 1]
        o = i << 3
        while i < end:
            if kids[o:o + 8] == kid:
                try:
                    iss = self._load(i, kid)
                except (OSError, ValueError):
                    # flash trouble: this tap fails closed (unknown_issuer), never crashes
                    self.errors += 1
                    return None
                self._remember(kid, iss)
                return iss
            i += 1
            o += 8
        return None

    def _load(self, i, kid):
        idx = self._idx
        if idx is None:
            raise OSError("closed")
        loc = self._loc
        o = i << 2
        ln = loc[o + 3] << 1
        rec = self._rec
        mv = self._mv
        idx.seek((loc[o] << 16) | (loc[o + 1] << 8) | loc[o + 2])
        if idx.readinto(mv[0:ln]) != ln or rec[0:8] != kid:
            raise OSError("trust index")
        nbf, exp, lo, hi, kty, _nh, _nl, _nn, klen = struct.unpack_from(_HEAD_FMT, rec, 8)
        if HEAD + klen != ln:
            raise OSError("trust index")
        key = cose_key.PublicKey(kty, kid)
        if kty == cose_key.KTY_RSA:
            key.n = int.from_bytes(mv[HEAD:ln], "big")
            key.k = klen
        else:
            key.x = bytes(mv[HEAD:HEAD + 32])
            key.y = bytes(mv[HEAD + 32:ln])
        return trust.Issuer(key, nbf, exp, lo, hi, None)

    def name(self, kid):
        """The issuing authority's name (read from the list on flash), or None."""
        kids = self._kids
        idx = self._idx
        lst = self._lst
        if idx is None or lst is None:
            return None
        for i in range(len(kids) >> 3):
            if kids[i << 3:(i << 3) + 8] == kid:
                idx.seek(_u(self._loc, i << 2, 3))
                rec = idx.read(HEAD)
                lst.seek(_u(rec, 41, 3))
                return str(lst.read(_u(rec, 44, 2)), "utf-8")
        return None

    def _remember(self, kid, iss):
        if len(self._order) >= CACHE:
            self._cache.pop(self._order.pop(0), None)
        self._order.append(kid)
        self._cache[kid] = iss

    # ---- offering a new list ---------------------------------------------------------------

    def _check_steps(self, path, roots, per_entries, per_hash):
        # Yields None between steps, then (status, digest, pending).
        self.detail = ""
        p = None
        handed = False
        size = _size(path)
        if size > trust.MAX_SIZE:
            self.detail = "%d bytes, at most %d" % (size, trust.MAX_SIZE)
            yield (trust.TOO_LARGE, None, None)
            return
        f = None
        try:
            f = open(path, "rb")
            try:
                h = read_head(f, size)
            except StreamError as e:
                self.detail = str(e)
                yield (signed.MALFORMED, None, None)
                return
            root = None
            for k in roots:
                if k is not None and k.kid == h.kid:
                    root = k
            if h.alg != cose.ALG_RS256 or (root is not None and root.kty != cose_key.KTY_RSA):
                yield (signed.UNSUPPORTED_ALG, None, None)
                return
            if root is None:
                yield (signed.UNKNOWN_ROOT, None, None)
                return
            yield None
            digest = None
            try:
                for digest in _digest_steps(f, h, per_hash):
                    if digest is None:
                        yield None
            except StreamError as e:
                self.detail = str(e)
                yield (signed.MALFORMED, None, None)
                return
            if not rs256.verify(root.n, root.k, digest, _signature(f, h)):
                yield (signed.BAD_SIGNATURE, None, None)
                return
            yield None
            p = _Pending(self._path(REC_FILE))
            try:
                for x in _payload_steps(f, h, p, per_entries):
                    yield x
            except TooMany as e:
                self.detail = str(e)
                yield (trust.TOO_LARGE, None, None)
                return
            except StreamError as e:
                self.detail = str(e)
                yield (signed.MALFORMED, None, None)
                return
            handed = True
            yield (signed.OK, digest, p)
        except OSError:
            yield ("io_error", None, None)
        finally:
            if f is not None:
                f.close()
            if p is not None and not handed:
                p.close()      # refused, failed or abandoned: no scratch file stays behind
                _remove(p.rec_path)

    def offer_steps(self, path, per_entries=STEP_ENTRIES, per_hash=STEP_HASH_BYTES):
        """Offer a list file in bounded steps: a generator yielding None after each step (the
        head, every per_hash payload bytes, the RSA check, every per_entries entries) and last
        the status. "ok" renames the file into place and installs its index; anything else
        leaves the held list in use and the offered file where it was. Closing the generator
        early installs nothing."""
        gen = self._check_steps(path, (self.root,), per_entries, per_hash)
        try:
            while True:
                res = next(gen)
                if res is not None:
                    break
                yield None
        finally:
            gen.close()   # runs its finally: the list file is closed now, not at collection
        status, digest, p = res
        if status == signed.OK:
            status = signed.seq_status(p.seq, self.seq)
            if status != signed.OK:
                p.close()
                _remove(p.rec_path)
        if status != signed.OK:
            yield status
            return
        try:
            for x in self._install_steps(path, digest, p, per_entries):
                if x is None:
                    yield None
        except OSError:
            yield "io_error"
            return
        yield signed.OK

    def offer(self, path):
        r = None
        for r in self.offer_steps(path, 1 << 30, 1 << 30):
            pass
        return r

    def update(self, blob):
        """Offer a list held in RAM (small lists, tools): written to flash, then offered."""
        if len(blob) > trust.MAX_SIZE:
            self.detail = "%d bytes, at most %d" % (len(blob), trust.MAX_SIZE)
            return trust.TOO_LARGE
        p = self._path(OFFER_FILE)
        with open(p, "wb") as f:
            f.write(blob)
        st = self.offer(p)
        _remove(p)
        return st

    def _install_steps(self, path, digest, p, per_step):
        # The new index is written beside the held one (lookups go on meanwhile), then the list
        # and the index are renamed into place: a power cut leaves the old pair, or the new list
        # with an index of another list (refused at boot, rebuilt from the list), never a mix.
        tmp = self._path(INDEX_FILE + ".new")
        got = None
        try:
            for x in _index_steps(p, digest, tmp, path, per_step):
                if x is None:
                    yield None
                else:
                    got = x
        finally:
            if got is None:
                _remove(tmp)    # abandoned or failed: no half index stays behind
        if got is None:
            raise OSError("trust index")
        hdr, sk, loc = got
        got = None
        self.close()
        if path != self._path(LIST_FILE):
            _replace(path, self._path(LIST_FILE))
        _replace(tmp, self._path(INDEX_FILE))
        self._open(hdr, sk, loc)

    def _install(self, path, digest, p):
        for _ in self._install_steps(path, digest, p, 1 << 30):
            pass
        return signed.OK

    def _open(self, hdr, kids, loc):
        # What stays allocated while the list is held is placed after a collection, low in the
        # heap: not in the middle of the install's garbage, where it would split the free heap
        # (a 1 MiB heap then had no 256 KiB piece left for tests/bench/tap.py's flash model).
        gc.collect()
        self.seq = _u(hdr, 7, 8)
        self.iat = _u(hdr, 15, 8)
        kids = bytes(kids)
        self._kids = kids
        self._loc = bytes(loc)
        bkt = array.array("H", bytes(2 * 257))
        j = 0
        n = len(kids) >> 3
        for b in range(256):
            bkt[b] = j
            while j < n and kids[j << 3] == b:
                j += 1
        bkt[256] = n
        self._bkt = bkt
        self.count = len(kids) >> 3
        self._cache = {}
        self._order = []
        self._idx = open(self._path(INDEX_FILE), "rb")
        self._lst = open(self._path(LIST_FILE), "rb")

    def close(self):
        for f in (self._idx, self._lst):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._idx = self._lst = None
        self._kids = b""
        self._loc = b""
        self._bkt = _NO_KIDS
        self.count = 0
        self.seq = self.iat = None
        self._cache = {}
        self._order = []

    # ---- boot --------------------------------------------------------------------------------

    def load_held(self):
        """At boot: the held list's signature is checked again (streamed) and its index used if
        it belongs to it (same digest, intact); a missing or stale index is rebuilt from the
        list. Returns the status, or None when no list is held."""
        self.close()
        _remove(self._path(INDEX_FILE + ".new"))    # an install cut short by a power loss
        _remove(self._path(REC_FILE))
        lp = self._path(LIST_FILE)
        if _size(lp) < 0:
            return None
        roots = (self.root,) + tuple(self.old_roots)
        got = self._read_index()
        if got is not None:
            hdr, kids, loc = got
            if self._verify_only(lp, roots, hdr[23:55]) == signed.OK:
                self._open(hdr, kids, loc)
                return signed.OK
        # no usable index: check the whole list again and write a new one
        gen = self._check_steps(lp, roots, 1 << 30, 1 << 30)
        res = None
        while res is None:
            res = next(gen)
        gen.close()
        status, digest, p = res
        if status != signed.OK:
            return status
        try:
            return self._install(lp, digest, p)
        except OSError:
            return "io_error"

    def _read_index(self):
        # (header, kids, locs) of an intact index of this version, else None (a version 1 index,
        # from before keys sat in their records, is rebuilt from the list like a damaged one)
        try:
            with open(self._path(INDEX_FILE), "rb") as f:
                hdr = f.read(HDR)
                if len(hdr) != HDR or hdr[0:5] != MAGIC + bytes((VERSION,)):
                    return None
                n = _u(hdr, 5, 2)
                if n > trust.MAX_ENTRIES:
                    return None
                h = hashlib.sha256(hdr)
                kids = bytearray(8 * n)
                loc = bytearray(4 * n)
                slot = bytearray(SLOT)
                for i in range(n):
                    if f.readinto(slot) != SLOT:
                        return None
                    h.update(slot)
                    kids[i * 8:i * 8 + 8] = slot[0:8]
                    loc[i * 4:i * 4 + 4] = slot[8:12]
                # the records: hashed up to the checksum (the last 32 bytes)
                left = _size(self._path(INDEX_FILE)) - HDR - SLOT * n - 32
                if left < 0:
                    return None
                buf = bytearray(HASH_BUF)
                mv = memoryview(buf)
                while left > 0:
                    k = f.readinto(mv[0:min(HASH_BUF, left)])
                    if not k:
                        return None
                    h.update(mv[0:k])
                    left -= k
                if f.read(33) != h.digest():
                    return None
        except OSError:
            return None
        return hdr, bytes(kids), bytes(loc)

    def _verify_only(self, path, roots, want):
        try:
            with open(path, "rb") as f:
                h = read_head(f, _size(path))
                root = None
                for k in roots:
                    if k is not None and k.kid == h.kid and k.kty == cose_key.KTY_RSA:
                        root = k
                if root is None or h.alg != cose.ALG_RS256:
                    return signed.UNKNOWN_ROOT
                d = None
                for d in _digest_steps(f, h, 1 << 30):
                    pass
                if d != want:
                    return signed.MALFORMED
                if not rs256.verify(root.n, root.k, d, _signature(f, h)):
                    return signed.BAD_SIGNATURE
        except (OSError, StreamError):
            return signed.MALFORMED
        return signed.OK
