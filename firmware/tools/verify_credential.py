# Verify a card credential with the reader's own code (credential-v1 §5):
#   micropython firmware/tools/verify_credential.py CRED.cbor TRUST.cbor ROOT.cose_key --uid HEX
#       [--now EPOCH] [--crl CRL] [--repeat N]
# Prints one JSON line and exits 0 when valid, 1 when invalid, 2 on a usage error.
# The trust list (and revocation list) are loaded once, as a reader does at boot; --repeat
# repeats the credential verification alone and reports its mean time.
import binascii
import sys
import time

import toolkit  # first: puts the reader's modules on the path

# isort: split
import cose_key
import credential
import revocation
import signed
import trust_store
from toolkit import Usage, read, ticks_diff, ticks_us

USAGE = "usage: verify_credential.py CRED TRUST ROOT --uid HEX [--now EPOCH] [--crl CRL] [--repeat N]"


def parse_args(argv):
    pos, opts = toolkit.parse(argv, {"uid": "", "now": "", "crl": "", "repeat": "1"}, 3)
    if not opts["uid"]:
        raise Usage("--uid is required")
    try:
        uid = binascii.unhexlify(opts["uid"])
        now = int(opts["now"]) if opts["now"] else int(time.time())
        repeat = int(opts["repeat"])
    except Exception:
        raise Usage("bad --uid, --now or --repeat")
    if repeat < 1 or now < 0:
        raise Usage("--repeat must be >= 1 and --now >= 0")
    return pos[0], pos[1], pos[2], uid, now, opts["crl"], repeat


def _json_str(s):
    if s is None:
        return "null"
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def result_line(reason, claims, us):
    serial = "null" if claims is None else str(claims[credential.SERIAL])
    staff = None if claims is None else claims[credential.STAFF]
    return '{"valid": %s, "reason": "%s", "serial": %s, "staff": %s, "us_per_verify": %.1f}' % (
        "true" if reason == credential.OK else "false", reason, serial, _json_str(staff), us)


def _scratch():
    import os

    base = (os.getenv("TMPDIR") or "/tmp") + "/cbcc-verify-%x" % (ticks_us() & 0xFFFFFFF)
    os.mkdir(base)
    return base


def _copy(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as g:
        while True:
            b = f.read(512)
            if not b:
                break
            g.write(b)


def _cleanup(tl, folder):
    import os

    tl.close()
    for name in os.listdir(folder):
        os.remove(folder + "/" + name)
    os.rmdir(folder)


def run(argv):
    cred_path, trust_path, root_path, uid, now, crl_path, repeat = parse_args(argv)
    cred = read(cred_path)
    try:
        root = cose_key.load(read(root_path))
    except cose_key.KeyError_ as e:
        raise Usage("root key: " + str(e))
    # The reader's own on-flash store (amendment 1: up to 128 KiB, streamed, never whole in RAM),
    # in a scratch folder removed at the end.
    scratch = _scratch()
    tl = trust_store.TrustStore(root, scratch)
    try:
        _copy(trust_path, scratch + "/offer.cbor")
        st = tl.offer(scratch + "/offer.cbor")
    except OSError:
        _cleanup(tl, scratch)
        raise Usage("cannot read " + trust_path)
    if st != signed.OK:
        # A reader without a valid trust list knows no issuers.
        sys.stderr.write("trust list rejected: %s\n" % st)
    crl = None
    if crl_path:
        crl = revocation.RevocationList(root)
        st = crl.update(read(crl_path))
        if st != signed.OK:
            sys.stderr.write("revocation list rejected: %s\n" % st)
            crl = None
    t0 = ticks_us()
    for _ in range(repeat):
        reason, claims = credential.verify(cred, uid, now, tl, crl)
    us = ticks_diff(ticks_us(), t0) / repeat
    _cleanup(tl, scratch)
    print(result_line(reason, claims, us))
    return 0 if reason == credential.OK else 1


def main():
    toolkit.run_main(run, USAGE)


if __name__ == "__main__":
    main()
