# Root replacement (docs/key-ceremony.md): the national root key pinned in every reader is
# replaced by signed root transitions, each the next root key signed by the current one.
#
# Transition (COSE_Sign1, RS256, signed by the root it replaces; kid = that root's kid):
#   {0: "root", 1: 1, 2: seq, 3: iat, 4: new root COSE_Key, 5: kid of the root it replaces}
# seq counts replacements: 1 replaces the root pinned at provisioning, 2 replaces that one, ...
# Chain (what the gateway publishes, kind "root", same manifest and chunks as the lists): a CBOR
# array of byte strings, each one transition, seq 1..k in order. A reader holding seq j takes the
# transitions above j in order, each verified under the key the previous one installed; all of
# them or none (a bad link leaves the held root in place).
#
# Statuses: ok (moved to the chain's last root), noop (nothing newer), rollback (the chain ends
# below the held seq), out_of_order (a gap or a link in the wrong place), malformed,
# unsupported_alg, unknown_root (a link not signed by the root before it), bad_signature,
# too_large.
#
# State file <folder>/root.state: CBOR [seq, [COSE_Key bytes of root 1, ..., root seq]], replaced
# atomically; without it the reader uses the pinned root (seq 0). Holders get .root = the current
# root and, when they have the attribute, .old_roots = the earlier ones (a trust list accepted
# before a transition still loads at boot until the new root's list replaces it).
import cbor
import cose_key
import signed
import statefile

TYPE = "root"
VERSION = 1
MAX_CHAIN = 16384
MAX_LINK = 2048
MAX_LINKS = 16
STATE = "root.state"
OUT_OF_ORDER = "out_of_order"
TOO_LARGE = "too_large"


def _key_bytes(m):
    return cbor.encode(m)


def check_link(blob, key):
    """Verify one transition under `key`; returns (status, seq, new key map, new PublicKey)."""
    if len(blob) > MAX_LINK:
        return TOO_LARGE, None, None, None
    st, p = signed.open_signed(blob, MAX_LINK, key)
    if st != signed.OK:
        return st, None, None, None
    t = p.get(0)
    seq = p.get(2)
    m = p.get(4)
    prev = p.get(5)
    if not (isinstance(t, str) and t == TYPE and signed.is_version(p.get(1), VERSION)
            and signed.is_uint(seq) and seq >= 1 and signed.is_uint(p.get(3))
            and isinstance(prev, bytes) and prev == key.kid):
        return signed.MALFORMED, None, None, None
    try:
        new = cose_key.from_map(m)
    except ValueError:
        return signed.MALFORMED, None, None, None
    if new.kty != cose_key.KTY_RSA or new.kid == key.kid:
        return signed.MALFORMED, None, None, None
    return signed.OK, seq, m, new


class RootChain:
    """The reader's current root key: the pinned one, or the last accepted transition's."""

    def __init__(self, pinned, folder, holders=()):
        self.pinned = pinned
        self.folder = folder
        self.holders = list(holders)   # objects with .root (lists signed by the root)
        self.key = pinned
        self.seq = 0
        self.keys = []        # roots 1..seq as COSE_Key bytes (the state file's list)
        self.old = []         # PublicKeys before the current one, the pinned root first

    def _path(self):
        return statefile.path(self.folder, STATE)

    def load_held(self):
        """At boot: the state file (if any); returns "ok", None (none held) or "malformed"."""
        data = statefile.read(self._path(), (MAX_LINKS + 1) * 1024)
        if data is None:
            self._apply()
            return None
        try:
            w = cbor.decode(data)
            if not (isinstance(w, list) and len(w) == 2 and signed.is_uint(w[0])
                    and isinstance(w[1], list) and len(w[1]) == w[0] and 1 <= w[0] <= MAX_LINKS):
                raise ValueError("shape")
            ks = [cose_key.load(b) for b in w[1]]
        except ValueError:
            self._apply()
            return signed.MALFORMED
        self.seq = w[0]
        self.keys = w[1]
        self.key = ks[-1]
        self.old = [self.pinned] + ks[:-1]
        self._apply()
        return signed.OK

    def _apply(self):
        for h in self.holders:
            h.root = self.key
            if hasattr(h, "old_roots"):
                h.old_roots = self.old

    def check(self, blob):
        """Verify a chain against the held root; returns (status, [(seq, key map, PublicKey)])."""
        if len(blob) > MAX_CHAIN:
            return TOO_LARGE, None
        try:
            links = cbor.decode(blob)
        except cbor.CborError:
            return signed.MALFORMED, None
        if not isinstance(links, list) or not links or len(links) > MAX_LINKS:
            return signed.MALFORMED, None
        for x in links:
            if not isinstance(x, bytes):
                return signed.MALFORMED, None
        # links at or below the held seq are history: they are not checked again, but they must
        # be numbered 1..k in place (their seq is read from where they sit in the chain)
        k = len(links)
        if k < self.seq:
            return signed.ROLLBACK, None
        if k == self.seq:
            return signed.NOOP, None
        key = self.key
        out = []
        for i in range(self.seq, k):
            st, seq, m, new = check_link(links[i], key)
            if st != signed.OK:
                return st, None
            if seq != i + 1:
                return OUT_OF_ORDER, None
            out.append((seq, m, new))
            key = new
        return signed.OK, out

    def update(self, blob):
        """Offer a chain: "ok" moves to its last root (state written first), else nothing."""
        st, got = self.check(blob)
        if st != signed.OK:
            return st
        keys = self.keys + [_key_bytes(m) for _, m, _ in got]
        statefile.write(self._path(), cbor.encode([got[-1][0], keys]))
        old = self.old + [self.key]
        for _, _, new in got[:-1]:
            old.append(new)
        self.keys = keys
        self.old = old
        self.key = got[-1][2]
        self.seq = got[-1][0]
        self._apply()
        return signed.OK
