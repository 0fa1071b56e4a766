# Benchmark the reader's credential verification against the bare math it cannot avoid.
#   micropython firmware/tools/bench_verify.py CRED TRUST ROOT --uid HEX --now EPOCH [--crl CRL]
#       [--rounds R] [--per-round N]
# Runs R rounds; each round times N full verifications (all nine checks) and N bare
# pow(s, 65537, n) + sha256(Sig_structure-sized input) on the same key and sizes, interleaved
# so both see the same machine state. Reports medians, the ratio, and the ESP32 projection
# (x70 from this unix-port binary to an ESP32 at 240 MHz, shared/context/esp32-projection.md).
# The final line of output is one JSON object.
import binascii
import hashlib
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import cose
import cose_key
import credential
import revocation
import trust
from toolkit import read, ticks_diff, ticks_us

ESP32_FACTOR = 70


def main():
    defaults = {"uid": "", "now": "0", "crl": "", "rounds": "15", "per-round": "40"}
    pos, o = toolkit.parse(sys.argv[1:], defaults, 3)
    cred = read(pos[0])
    root = cose_key.load(read(pos[2]))
    tl = trust.TrustList(root)
    if tl.update(read(pos[1])) != "ok":
        raise SystemExit("trust list did not load")
    crl = None
    if o["crl"]:
        crl = revocation.RevocationList(root)
        if crl.update(read(o["crl"])) != "ok":
            raise SystemExit("revocation list did not load")
    uid = binascii.unhexlify(o["uid"])
    now = int(o["now"])
    rounds = int(o["rounds"])
    per = int(o["per-round"])

    reason, claims = credential.verify(cred, uid, now, tl, crl)
    if reason != "ok":
        raise SystemExit("credential does not verify: " + reason)

    # The bare math on identical sizes: the issuer's modulus, the credential's signature and
    # a hash over as many bytes as the Sig_structure has.
    s1 = cose.parse_sign1(cred, credential.MAX_SIZE)
    key = tl.get(s1.kid).key
    n = key.n
    s = int.from_bytes(s1.signature, "big")
    sig_structure_len = len(cred) + 12  # prefix + empty aad, minus the COSE wrapping: an upper bound
    blob = bytes(sig_structure_len)

    full = []
    bare = []
    for _ in range(rounds):
        t0 = ticks_us()
        for _ in range(per):
            credential.verify(cred, uid, now, tl, crl)
        full.append(ticks_diff(ticks_us(), t0) / per)
        t0 = ticks_us()
        for _ in range(per):
            pow(s, 65537, n)
            hashlib.sha256(blob).digest()
        bare.append(ticks_diff(ticks_us(), t0) / per)

    f = toolkit.median(full)
    b = toolkit.median(bare)
    print("full verification: %.1f us   bare pow+sha256: %.1f us   ratio %.3f" % (f, b, f / b))
    print('{"bench": "verify_credential", "alg": "RS256", "modulus_bits": %d, "credential_bytes": %d, '
          '"rounds": %d, "per_round": %d, "us_per_verify": %.1f, "us_bare_math": %.1f, "ratio": %.3f, '
          '"esp32_factor": %d, "projected_esp32_ms": %.1f, "projected_bare_esp32_ms": %.1f, '
          '"revocation_list": %s}' % (
              key.k * 8, len(cred), rounds, per, f, b, f / b, ESP32_FACTOR,
              f * ESP32_FACTOR / 1000, b * ESP32_FACTOR / 1000, "true" if crl else "false"))


main()
