# Runs every case of tests/vectors/manifest.json through the reader's own code and prints one
# JSON object with the outcomes. Runs under the MicroPython unix port (MICROPYPATH has
# firmware/lib) and under CPython (tests put firmware/lib on sys.path).
#   micropython tests/mpy/check_vectors.py tests/vectors
import binascii
import json
import sys

import cose_key
import credential
import revocation
import signed
import trust


def _read(d, name):
    # Like a reader: never hold more than one byte past the largest object's limit.
    with open(d + "/" + name, "rb") as f:
        return f.read(trust.MAX_SIZE + 1)


def main(d):
    with open(d + "/manifest.json") as f:
        m = json.load(f)
    root = cose_key.load(_read(d, m["root"]))
    trusts = {}
    crl = revocation.RevocationList(root)
    if crl.update(_read(d, m["crl"])) != signed.OK:
        raise SystemExit("default revocation list does not load")
    out = {"cases": {}, "trust_cases": {}, "crl_cases": {}}
    for c in m["cases"]:
        tname = c.get("trust") or m["trust"]
        tl = trusts.get(tname)
        if tl is None:
            tl = trust.TrustList(root)
            tl.update(_read(d, tname))  # a rejected list leaves it empty: every issuer unknown
            trusts[tname] = tl
        reason, claims = credential.verify(
            _read(d, c["file"]), binascii.unhexlify(c["uid"]), c["now"], tl, crl if c["crl"] else None)
        out["cases"][c["name"]] = [
            reason,
            None if claims is None else claims[credential.SERIAL],
            None if claims is None else claims[credential.STAFF],
        ]
    for c in m["trust_cases"]:
        tl = trust.TrustList(root)
        tl.seq = c["held_seq"]
        out["trust_cases"][c["name"]] = tl.update(_read(d, c["file"]))
    for c in m["crl_cases"]:
        rl = revocation.RevocationList(root)
        rl.seq = c["held_seq"]
        status = rl.update(_read(d, c["file"]))
        looked = []
        if status == signed.OK:
            looked = [[s, rl.is_revoked(s)] for s in c.get("revoked", []) + c.get("not_revoked", [])]
        out["crl_cases"][c["name"]] = [status, looked]
    print(json.dumps(out))


main(sys.argv[1])
