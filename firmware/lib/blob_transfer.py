# Chunked, resumable download of a signed list (trust list, revocation list) announced by a
# list manifest (docs/mqtt.md, "Signed objects from the gateway").
#
# Manifest: COSE_Sign1 under the configuration key, payload
#   {0: "manifest", 1: 1, 2: seq, 3: iat, 4: kind ("trust" | "crl" | "ncrl" | "ncrl_delta"),
#    5: length, 6: SHA-256,
#    7: chunk size}
# seq is the seq of the object it announces (the reader compares it with the list it holds).
# The object arrives in retained chunks on cbcc/v1/all/blob/{sha8}/{i}, sha8 = the first 8 hex
# digits (lower case) of its SHA-256. Each chunk is written at its offset into <kind>.part in
# the state folder (preallocated at the start), then a small progress file <kind>.prog (the
# manifest's fields and a bitmap of chunks on flash) is replaced atomically; only then does the
# MQTT client acknowledge the chunk. After a reboot the progress file resumes the transfer and
# chunks already on flash are not written again. A complete file is checked for its length and
# SHA-256 (streamed through a 512-byte buffer) before anything parses it.
import binascii
import hashlib

import cbor
import signed
import statefile

TYPE = "manifest"
VERSION = 1
# "ncrl": the national revocation list's current full list, "ncrl_delta": its current delta
# (docs/revocation-list-national-v1.md); both are staged on flash and checked by the list itself.
KINDS = ("trust", "crl", "ncrl", "ncrl_delta", "root")  # root: the root chain (root_chain.py)
MAX_MANIFEST = 2048
MAX_CHUNK = 2048          # contract: chunks of at most 2 KiB
MAX_CHUNKS = 512          # bitmap of at most 64 bytes; 64 KiB needs chunks of >= 128 bytes
MAX_OBJECT = 65536
# Per-kind bounds above MAX_OBJECT (flash, never RAM: chunks go straight to the staging file):
# a national full list (~80 KB at 5 % revoked, ~210 KB at 20 %) up to MAX_CHUNKS chunks of 2 KiB,
# a delta up to its 256 KiB body limit plus a 2 KiB signed header.
MAX_OBJECTS = {"ncrl": MAX_CHUNKS * MAX_CHUNK, "ncrl_delta": (1 << 18) + 2048,
               "trust": 131072}   # credential-v1 amendment 1 (trust_store.py)
BLOB_PREFIX = "cbcc/v1/all/blob/"
_BUF = 512
_PROG_MAX = 256

OK = "ok"
DUPLICATE = "duplicate"
BAD_INDEX = "bad_index"
BAD_LENGTH = "bad_length"
BAD_DIGEST = "bad_digest"
TOO_LARGE = "too_large"


class Manifest:
    def __init__(self, kind, seq, length, sha, chunk):
        self.kind = kind
        self.seq = seq
        self.length = length
        self.sha = sha
        self.chunk = chunk


def _shape(kind, seq, length, sha, chunk, max_object):
    # "ok", "too_large" or "malformed"
    if not (isinstance(kind, str) and kind in KINDS and signed.is_uint(seq) and signed.is_uint(length)
            and isinstance(sha, bytes) and len(sha) == 32 and signed.is_uint(chunk)):
        return signed.MALFORMED
    if length < 1 or chunk < 1 or chunk > MAX_CHUNK:
        return signed.MALFORMED
    if length > max_object:
        return TOO_LARGE
    if (length + chunk - 1) // chunk > MAX_CHUNKS:
        return TOO_LARGE
    return OK


def limit_for(kind, max_object=MAX_OBJECT):
    """The largest object accepted for kind (max_object unless the kind has its own bound)."""
    return MAX_OBJECTS.get(kind, max_object)


def parse_manifest(blob, key, kind, max_object=MAX_OBJECT):
    """Verify a manifest received on the topic of `kind`; returns (status, Manifest or None)."""
    max_object = limit_for(kind, max_object)
    status, p = signed.open_signed(blob, MAX_MANIFEST, key)
    if status != signed.OK:
        return status, None
    t = p.get(0)
    if not (isinstance(t, str) and t == TYPE and signed.is_version(p.get(1), VERSION)
            and signed.is_uint(p.get(3))):
        return signed.MALFORMED, None
    m = Manifest(p.get(4), p.get(2), p.get(5), p.get(6), p.get(7))
    status = _shape(m.kind, m.seq, m.length, m.sha, m.chunk, max_object)
    if status != OK:
        return status, None
    if m.kind != kind:
        return signed.MALFORMED, None
    return signed.OK, m


def sha8(sha):
    return binascii.hexlify(sha[0:4]).decode()


def parse_chunk_topic(topic):
    """cbcc/v1/all/blob/{sha8}/{i} -> (sha8, i), or (None, -1) when it is not of that form."""
    if not topic.startswith(BLOB_PREFIX):
        return None, -1
    rest = topic[len(BLOB_PREFIX):]
    slash = rest.find("/")
    if slash != 8:
        return None, -1
    idx = rest[9:]
    if not idx or len(idx) > 5 or not idx.isdigit() or (len(idx) > 1 and idx[0] == "0"):
        return None, -1
    return rest[0:8], int(idx)


class Transfer:
    """One download in progress for one kind of list (at most one per kind)."""

    def __init__(self, folder, m, bitmap=None):
        self.kind = m.kind
        self.seq = m.seq
        self.length = m.length
        self.sha = m.sha
        self.chunk = m.chunk
        self.n = (m.length + m.chunk - 1) // m.chunk
        self.bitmap = bitmap if bitmap is not None else bytearray((self.n + 7) // 8)
        self.part = statefile.path(folder, m.kind + ".part")
        self.prog = statefile.path(folder, m.kind + ".prog")
        self.sha8 = sha8(m.sha)
        self.have = 0
        for i in range(self.n):
            if self.bitmap[i >> 3] & (1 << (i & 7)):
                self.have += 1
        self.written = 0   # chunks written since this object was made (this boot)

    def topic(self):
        return BLOB_PREFIX + self.sha8 + "/+"

    def complete(self):
        return self.have == self.n

    def _save(self):
        statefile.write(self.prog, cbor.encode(
            [1, self.kind, self.seq, self.length, self.sha, self.chunk, bytes(self.bitmap)]))

    def write(self, i, data):
        """Store chunk i; returns OK, DUPLICATE, BAD_INDEX or BAD_LENGTH (OSError: flash)."""
        if i < 0 or i >= self.n:
            return BAD_INDEX
        want = self.chunk if i < self.n - 1 else self.length - self.chunk * (self.n - 1)
        if len(data) != want:
            return BAD_LENGTH
        bit = 1 << (i & 7)
        if self.bitmap[i >> 3] & bit:
            return DUPLICATE
        with open(self.part, "r+b") as f:
            f.seek(i * self.chunk)
            f.write(data)
        self.bitmap[i >> 3] |= bit
        self.have += 1
        self.written += 1
        self._save()
        return OK

    def verify(self):
        """Length and SHA-256 of the staged file, read back through a small buffer."""
        if statefile.size(self.part) != self.length:
            return False
        h = hashlib.sha256()
        buf = bytearray(_BUF)
        mv = memoryview(buf)
        left = self.length
        with open(self.part, "rb") as f:
            while left > 0:
                k = f.readinto(buf)
                if not k:
                    return False
                k = min(k, left)
                h.update(mv[0:k])
                left -= k
        return h.digest() == self.sha

    def verify_steps(self, per_step=16384):
        """verify() in bounded steps: yields None after every per_step bytes, then True/False."""
        if statefile.size(self.part) != self.length:
            yield False
            return
        h = hashlib.sha256()
        buf = bytearray(_BUF)
        mv = memoryview(buf)
        left = self.length
        done = 0
        with open(self.part, "rb") as f:
            while left > 0:
                k = f.readinto(buf)
                if not k:
                    break
                k = min(k, left)
                h.update(mv[0:k])
                left -= k
                done += k
                if done >= per_step and left > 0:
                    done = 0
                    yield None
        yield left == 0 and h.digest() == self.sha

    def read(self):
        with open(self.part, "rb") as f:
            return f.read(self.length)

    def commit(self, dest):
        """Make the staged object the held copy (atomic rename), then forget the transfer."""
        statefile.replace(self.part, dest)
        statefile.remove(self.prog)

    def discard(self):
        statefile.remove(self.part)
        statefile.remove(self.prog)


def start(folder, m):
    """Begin a transfer: a preallocated staging file (checks the space up front) and progress."""
    t = Transfer(folder, m)
    t.discard()
    zero = bytes(_BUF)
    left = m.length
    with open(t.part, "wb") as f:
        while left > 0:
            k = min(left, _BUF)
            f.write(zero if k == _BUF else zero[0:k])
            left -= k
    t._save()
    return t


def resume(folder, kind, max_object=MAX_OBJECT):
    """The transfer left by an earlier boot, or None (anything inconsistent is discarded)."""
    max_object = limit_for(kind, max_object)
    prog = statefile.path(folder, kind + ".prog")
    data = statefile.read(prog, _PROG_MAX)
    if data is None:
        statefile.remove(statefile.path(folder, kind + ".part"))
        return None
    try:
        w = cbor.decode(data)
        if isinstance(w, list) and len(w) == 7 and w[0] == 1 and w[1] == kind:
            m = Manifest(w[1], w[2], w[3], w[4], w[5])
            bitmap = w[6]
            if (_shape(m.kind, m.seq, m.length, m.sha, m.chunk, max_object) == OK
                    and isinstance(bitmap, bytes)
                    and len(bitmap) == ((m.length + m.chunk - 1) // m.chunk + 7) // 8):
                t = Transfer(folder, m, bytearray(bitmap))
                if statefile.size(t.part) == t.length:
                    return t
    except Exception:  # noqa: BLE001 - a damaged progress file only costs a new download
        pass
    statefile.remove(prog)
    statefile.remove(statefile.path(folder, kind + ".part"))
    return None
