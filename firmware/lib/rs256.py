# Strict RS256 (RSASSA-PKCS1-v1_5 with SHA-256) verification, credential-v1 §1.
#
# The expected EMSA-PKCS1-v1_5 block is built in full and compared byte for byte with
# s^e mod n: nothing in the decrypted block is parsed, so the padding-parsing forgeries
# (Bleichenbacher 2006 and its variants) have nothing to work on. Only e = 65537 exists here.

# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"
E = 65537

_prefixes = {}  # type: dict[int, bytes]


def _prefix(k):
    p = _prefixes.get(k)
    if p is None:
        p = b"\x00\x01" + b"\xff" * (k - 3 - len(_DIGEST_INFO) - 32) + b"\x00" + _DIGEST_INFO
        _prefixes[k] = p
    return p


def verify(n, k, digest, sig):
    """True when sig is a valid RS256 signature of the SHA-256 digest under modulus n (k bytes)."""
    if len(sig) != k or len(digest) != 32:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    # compared as integers: the expected block is k bytes with a leading 00, so equal
    # integers are equal blocks
    return pow(s, E, n) == int.from_bytes(_prefix(k) + digest, "big")
