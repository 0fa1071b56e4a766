# Inline revocation list v1: a small signed list of revoked serials, carried whole in the
# COSE_Sign1 payload and searched in place (no list of ints is built in RAM).
#
# payload = {0: "crl", 1: 1, 2: seq, 3: iat, 4: bstr} where the bstr is the revoked serials,
# strictly ascending, each 7 bytes big-endian (serials are < 2^53). Signed by the pinned root.
# The national list (compact, detached, streamed from flash) arrives with its own module and
# the same is_revoked() interface.
import signed

MAX_SIZE = 16384
WIDTH = 7
TYPE = "crl"


def parse(blob, root):
    """Verify and parse; return (status, seq, packed_serials)."""
    status, p = signed.open_signed(blob, MAX_SIZE, root)
    if status != signed.OK:
        return status, None, None
    seq = p.get(2)
    packed = p.get(4)
    kind = p.get(0)
    shape_ok = (isinstance(kind, str) and kind == TYPE and signed.is_version(p.get(1), 1)
                and signed.is_uint(seq) and signed.is_uint(p.get(3))
                and isinstance(packed, bytes) and len(packed) % WIDTH == 0)
    if not shape_ok:
        return signed.MALFORMED, None, None
    prev = b""
    for i in range(0, len(packed), WIDTH):
        cur = packed[i:i + WIDTH]
        if cur <= prev or cur[0] >= 0x20:  # ascending, and < 2^53
            return signed.MALFORMED, None, None
        prev = cur
    return signed.OK, seq, packed


class RevocationList:
    """The reader's current revocation list; is_revoked() is a binary search over the bytes."""

    def __init__(self, root):
        self.root = root
        self.seq = None
        self.packed = b""

    def update(self, blob):
        status, seq, packed = parse(blob, self.root)
        if status != signed.OK:
            return status
        status = signed.seq_status(seq, self.seq)
        if status == signed.OK:
            self.seq = seq
            self.packed = packed
        return status

    def count(self):
        return len(self.packed) // WIDTH

    def is_revoked(self, serial):
        key = serial.to_bytes(WIDTH, "big")
        packed = self.packed
        lo = 0
        hi = len(packed) // WIDTH
        while lo < hi:
            mid = (lo + hi) >> 1
            cur = packed[mid * WIDTH:mid * WIDTH + WIDTH]
            if cur == key:
                return True
            if cur < key:
                lo = mid + 1
            else:
                hi = mid
        return False
