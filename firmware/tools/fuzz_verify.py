# Mutation fuzzing of the reader's parsers and verifier under MicroPython.
#   micropython firmware/tools/fuzz_verify.py CRED TRUST ROOT --uid HEX --now EPOCH
#       [--crl CRL] [--cases N] [--seed S]
# Mutates a valid credential, trust list, revocation list and root key (bit flips, CBOR-aware
# byte substitutions, truncation, insertion, deletion, duplication, length inflation) and
# feeds each case to the same entry points a reader uses. Any exception that escapes, any
# reason outside the contract, or a mutated object that verifies differently from its
# original when its bytes did not change, is a crash. Prints a final JSON line; exit 1 on
# any crash.
import binascii
import gc
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import cbor
import cose
import cose_key
import credential
import revocation
import signed
import trust
from toolkit import read, ticks_diff, ticks_us

# CBOR initial bytes that stress a parser: length escapes, indefinite forms, tags, floats,
# breaks and big counts for every major type.
_INTERESTING = (0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x20, 0x38, 0x3B, 0x40, 0x58, 0x5B, 0x5F,
                0x60, 0x78, 0x7B, 0x7F, 0x80, 0x98, 0x9B, 0x9F, 0xA0, 0xB8, 0xBB, 0xBF, 0xC0, 0xD2,
                0xD8, 0xDB, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFF)

_STATUSES = (signed.OK, signed.NOOP, signed.ROLLBACK, signed.MALFORMED, signed.UNSUPPORTED_ALG,
             signed.UNKNOWN_ROOT, signed.BAD_SIGNATURE, trust.TOO_LARGE)


def mutate(rng, data):
    # Built from slices: MicroPython's bytearray has no slice deletion or insertion.
    b = data
    for _ in range(1 + rng.below(3)):
        op = rng.below(8)
        n = len(b)
        if n == 0:
            b = bytes((rng.below(256),))
            continue
        i = rng.below(n)
        if op == 0:
            b = b[:i] + bytes((b[i] ^ (1 << rng.below(8)),)) + b[i + 1:]
        elif op == 1:
            b = b[:i] + bytes((_INTERESTING[rng.below(len(_INTERESTING))],)) + b[i + 1:]
        elif op == 2:
            b = b[:rng.below(n + 1)]
        elif op == 3:
            b = b[:i] + bytes(rng.below(256) for _ in range(1 + rng.below(8))) + b[i:]
        elif op == 4:
            b = b[:i] + b[i + 1 + rng.below(16):]
        elif op == 5:
            j = rng.below(n)
            b = b[:i] + b[j:j + 1 + rng.below(32)] + b[i:]
        elif op == 6:
            b = b[:i] + bytes((rng.below(256),)) + b[i + 1:]
        else:
            b = b + bytes(rng.below(64))
    return b


def _signed_parts(blob):
    s1 = cose.parse_sign1(blob, credential.MAX_SIZE)
    return s1.digest(), s1.signature


def main():
    defaults = {"uid": "", "now": "0", "crl": "", "cases": "100000", "seed": "1"}
    pos, o = toolkit.parse(sys.argv[1:], defaults, 3)
    cred = read(pos[0])
    tl_blob = read(pos[1])
    root_blob = read(pos[2])
    crl_blob = read(o["crl"]) if o["crl"] else None
    root = cose_key.load(root_blob)
    tl = trust.TrustList(root)
    assert tl.update(tl_blob) == signed.OK
    crl = None
    if crl_blob:
        crl = revocation.RevocationList(root)
        assert crl.update(crl_blob) == signed.OK
    uid = binascii.unhexlify(o["uid"])
    now = int(o["now"])
    cases = int(o["cases"])
    rng = toolkit.Rng(int(o["seed"]))
    base_reason = credential.verify(cred, uid, now, tl, crl)[0]

    counts = {}  # type: dict[str, int]
    crashes = 0
    first = None
    gc.collect()
    low_water = gc.mem_free()
    t0 = ticks_us()
    for n in range(cases):
        target = rng.below(16)
        m = b""
        try:
            if target < 11:
                m = mutate(rng, cred)
                r, claims = credential.verify(m, uid, now, tl, crl)
                if r not in credential.REASONS or (m == cred and r != base_reason):
                    raise AssertionError("bad reason " + str(r))
                if (claims is None) != (r == credential.MALFORMED):
                    raise AssertionError("claims/reason mismatch")
                if r == credential.OK and m != cred and _signed_parts(m) != _signed_parts(cred):
                    # Only the unsigned envelope (unprotected header, head encodings) may differ.
                    raise AssertionError("a changed credential verified")
                key = "cred:" + r
            elif target < 13:
                m = mutate(rng, tl_blob)
                r = trust.TrustList(root).update(m)
                if r not in _STATUSES:
                    raise AssertionError("bad status " + str(r))
                key = "trust:" + r
            elif target < 14 and crl_blob:
                m = mutate(rng, crl_blob)
                rl = revocation.RevocationList(root)
                r = rl.update(m)
                if r not in _STATUSES:
                    raise AssertionError("bad status " + str(r))
                rl.is_revoked(rng.next())
                key = "crl:" + r
            elif target < 15:
                m = mutate(rng, root_blob)
                try:
                    cose_key.load(m)
                    key = "rootkey:ok"
                except cose_key.KeyError_:
                    key = "rootkey:rejected"
            else:
                m = mutate(rng, cred)
                try:
                    cbor.decode(m)
                    key = "cbor:ok"
                except cbor.CborError:
                    key = "cbor:rejected"
        except Exception as e:  # noqa: BLE001 - the point is to catch anything that escapes
            crashes += 1
            key = "CRASH"
            if first is None:
                first = "case %d target %d: %s %s data=%s" % (
                    n, target, type(e).__name__, e, binascii.hexlify(m).decode())
        counts[key] = counts.get(key, 0) + 1
        if n & 1023 == 0:
            gc.collect()  # live heap only: a leak shows as a falling minimum
            free = gc.mem_free()
            if free < low_water:
                low_water = free
    us = ticks_diff(ticks_us(), t0)
    if first:
        print("first crash:", first)
    parts = []
    for k in sorted(counts):
        parts.append('"%s": %d' % (k, counts[k]))
    print('{"bench": "fuzz_verify", "cases": %d, "crashes": %d, "seconds": %.1f, "us_per_case": %.1f, '
          '"min_free_heap": %d, "outcomes": {%s}}' % (
              cases, crashes, us / 1e6, us / cases, low_water, ", ".join(parts)))
    sys.exit(1 if crashes else 0)


main()
