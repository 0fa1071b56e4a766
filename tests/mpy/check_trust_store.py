# The reader's on-flash trust list (trust_store.TrustStore) against the committed vectors: every
# trust-list case of tests/vectors/manifest.json (and of the amendment-1 manifest, when given)
# offered as a file, every credential case verified against a list installed in the store.
# Prints one JSON object: {"trust_cases": {name: status}, "cases": {name: [reason, serial,
# staff]}, "national": {name: [status, detail, lookups]}}. MicroPython and CPython.
#   micropython tests/mpy/check_trust_store.py tests/vectors SCRATCH_DIR [tests/vectors/national]
import binascii
import json
import os
import sys

import cose_key
import credential
import revocation
import signed
import trust_store


def _read(path, limit=16384):
    with open(path, "rb") as f:
        return f.read(limit + 1)


def _clean(d):
    for n in os.listdir(d):
        os.remove(d + "/" + n)


def _copy(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as g:
        while True:
            b = f.read(512)
            if not b:
                break
            g.write(b)


def _offer(root, scratch, path, held_seq=None):
    st = trust_store.TrustStore(root, scratch)
    st.seq = held_seq
    _copy(path, scratch + "/in.cbor")
    status = st.offer(scratch + "/in.cbor")
    return st, status


def main(d, scratch, national=None):
    with open(d + "/manifest.json") as f:
        m = json.load(f)
    root = cose_key.load(_read(d + "/" + m["root"]))
    crl = revocation.RevocationList(root)
    crl.update(_read(d + "/" + m["crl"]))
    out = {"trust_cases": {}, "cases": {}, "national": {}}
    for c in m["trust_cases"]:
        _clean(scratch)
        st, status = _offer(root, scratch, d + "/" + c["file"], c["held_seq"])
        st.close()
        out["trust_cases"][c["name"]] = status
    stores = {}
    for c in m["cases"]:
        tname = c.get("trust") or m["trust"]
        st = stores.get(tname)
        if st is None:
            sub = scratch + "/" + tname.replace(".", "_")
            try:
                os.mkdir(sub)
            except OSError:
                _clean(sub)
            st, _ = _offer(root, sub, d + "/" + tname)
            stores[tname] = st
        reason, claims = credential.verify(
            _read(d + "/" + c["file"], 1024), binascii.unhexlify(c["uid"]), c["now"], st,
            crl if c["crl"] else None)
        out["cases"][c["name"]] = [
            reason,
            None if claims is None else claims[credential.SERIAL],
            None if claims is None else claims[credential.STAFF],
        ]
    for st in stores.values():
        st.close()
    if national is not None:
        with open(national + "/manifest.json") as f:
            nm = json.load(f)
        nroot = cose_key.load(_read(national + "/" + nm["root"]))
        for c in nm["trust_cases"]:
            sub = scratch + "/n"
            try:
                os.mkdir(sub)
            except OSError:
                _clean(sub)
            st = trust_store.TrustStore(nroot, sub)
            if c.get("held"):
                _copy(national + "/" + c["held"], sub + "/held.cbor")
                if st.offer(sub + "/held.cbor") != signed.OK:
                    raise SystemExit("held list of %s does not load" % c["name"])
            held_seq = st.seq
            _copy(national + "/" + c["file"], sub + "/in.cbor")
            status = st.offer(sub + "/in.cbor")
            looked = []
            for kid in c.get("lookup", []):
                iss = st.get(binascii.unhexlify(kid))
                looked.append(None if iss is None else [iss.lo, iss.hi])
            kept = st.seq == held_seq if status != signed.OK else st.seq
            out["national"][c["name"]] = [status, st.count, kept, looked]
            st.close()
    print(json.dumps(out))


main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
