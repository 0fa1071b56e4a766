# Trust list v1 (credential-v1 §3): the issuer keys a reader accepts, signed by the pinned
# national root key. A new list replaces the held one only if it verifies and its seq is
# greater; a failed update leaves the held list untouched.
#
# Amendment 1: up to MAX_SIZE bytes and MAX_ENTRIES entries. This module holds the entry rules
# and an in-RAM list for tools and tests; a reader keeps its list on flash (trust_store.py), which
# applies the same rules to a stream. Rules beyond §3 (docs/trust-core.md, "Trust list rules"):
# serial ranges of two entries are disjoint, or identical with the same name (one authority's old
# and new key during a rollover); more than MAX_ENTRIES entries or MAX_SIZE bytes is too_large.
import cose_key
import signed

MAX_SIZE = 131072
MAX_ENTRIES = 256
SERIAL_LIMIT = 1 << 53
TOO_LARGE = "too_large"


class Issuer:
    """One trusted issuer key with its validity window and serial range."""

    def __init__(self, key, nbf, exp, lo, hi, name):
        self.key = key
        self.nbf = nbf
        self.exp = exp
        self.lo = lo
        self.hi = hi
        self.name = name


def _uint(entry, key):
    v = entry.get(key)
    if not signed.is_uint(v):
        raise ValueError(key)
    return v


def _issuer(entry):
    # Returns an Issuer or None when the entry is malformed (which rejects the whole list).
    if not isinstance(entry, dict):
        return None
    kid = entry.get(1)
    name = entry.get(7)
    if not isinstance(kid, bytes) or len(kid) != 8 or not isinstance(name, str):
        return None
    try:
        nbf = _uint(entry, 3)
        exp = _uint(entry, 4)
        lo = _uint(entry, 5)
        hi = _uint(entry, 6)
        key = cose_key.from_map(entry.get(2))
    except ValueError:  # cose_key.KeyError_ is a ValueError too
        return None
    if nbf >= exp or lo >= hi or key.kid != kid:  # the kid must name this very key
        return None
    return Issuer(key, nbf, exp, lo, hi, name)


def ranges_ok(ranges):
    """ranges: list of (lo, hi, name). True when any two are disjoint or identical with the same
    name. Sorts the list in place."""
    ranges.sort()
    prev = None
    for r in ranges:
        if prev is not None and r[0] < prev[1] and r != prev:
            return False
        prev = r
    return True


def clamp(v):
    # serials are < 2^53, so a bound above it means the same as 2^53
    return v if v < SERIAL_LIMIT else SERIAL_LIMIT


def parse(blob, root):
    """Verify and parse a trust list; return (status, seq, iat, {kid: Issuer})."""
    if len(blob) > MAX_SIZE:
        return TOO_LARGE, None, None, None
    status, p = signed.open_signed(blob, MAX_SIZE, root)
    if status != signed.OK:
        return status, None, None, None
    seq = p.get(2)
    iat = p.get(3)
    entries = p.get(4)
    if not (signed.is_version(p.get(1), 1) and signed.is_uint(seq) and signed.is_uint(iat)
            and isinstance(entries, list)):
        return signed.MALFORMED, None, None, None
    if len(entries) > MAX_ENTRIES:
        return TOO_LARGE, None, None, None
    issuers = {}
    ranges = []
    for e in entries:
        iss = _issuer(e)
        if iss is None or iss.key.kid in issuers:
            return signed.MALFORMED, None, None, None
        issuers[iss.key.kid] = iss
        ranges.append((clamp(iss.lo), clamp(iss.hi), iss.name))
    if not ranges_ok(ranges):
        return signed.MALFORMED, None, None, None
    return signed.OK, seq, iat, issuers


class TrustList:
    """The reader's current trust list under a pinned root key."""

    def __init__(self, root):
        self.root = root
        self.seq = None
        self.iat = None
        self.issuers = {}

    def update(self, blob):
        """Offer a trust list; returns a status from signed (ok, noop, rollback, malformed…)."""
        status, seq, iat, issuers = parse(blob, self.root)
        if status != signed.OK:
            return status
        status = signed.seq_status(seq, self.seq)
        if status == signed.OK:
            self.seq = seq
            self.iat = iat
            self.issuers = issuers
        return status

    def get(self, kid):
        return self.issuers.get(kid)
