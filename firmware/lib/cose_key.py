# COSE_Key (RFC 9052 §7) parsing for the key types credential-v1 uses, and the kid rule:
# kid = first 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo of the public key.
import hashlib

import cbor

KTY_EC2 = 2
KTY_RSA = 3
RSA_E = b"\x01\x00\x01"

_RSA_ALG_ID = b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00"
_P256_SPKI_HEAD = (
    b"\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"
    b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00\x04"
)


# NIST P-256 curve y^2 = x^3 - 3x + b over GF(p)
_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


class KeyError_(ValueError):
    pass


class PublicKey:
    """A verified-shape public key: RSA (n as int, k = modulus bytes) or EC2 P-256 (x, y)."""

    def __init__(self, kty, kid, n=None, k=0, x=None, y=None):
        self.kty = kty
        self.kid = kid
        self.n = n
        self.k = k
        self.x = x
        self.y = y


def _der_len(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _der(tag, body):
    return bytes((tag,)) + _der_len(len(body)) + body


def _der_uint(b):
    # b is big-endian without leading zeros; DER needs a 0x00 when the top bit is set.
    if b[0] & 0x80:
        b = b"\x00" + b
    return _der(0x02, b)


def rsa_spki(n_bytes, e_bytes):
    rsa_key = _der(0x30, _der_uint(n_bytes) + _der_uint(e_bytes))
    return _der(0x30, _RSA_ALG_ID + _der(0x03, b"\x00" + rsa_key))


def kid_of_spki(spki):
    return hashlib.sha256(spki).digest()[:8]


def from_map(m):
    """Build a PublicKey from a decoded COSE_Key map; raise KeyError_ on any unsupported shape.

    RSA keys must have e = 65537 and a 2048- or 3072-bit modulus without a leading zero byte.
    """
    if not isinstance(m, dict):
        raise KeyError_("not a map")
    kty = m.get(1)
    if kty == KTY_RSA:
        n = m.get(-1)
        e = m.get(-2)
        if not isinstance(n, bytes) or not isinstance(e, bytes):
            raise KeyError_("rsa n/e")
        if e != RSA_E:
            raise KeyError_("rsa e must be 65537")
        if len(n) not in (256, 384) or not n[0] & 0x80:
            raise KeyError_("rsa modulus size")
        kid = kid_of_spki(rsa_spki(n, e))
        return PublicKey(KTY_RSA, kid, n=int.from_bytes(n, "big"), k=len(n))
    if kty == KTY_EC2:
        x = m.get(-2)
        y = m.get(-3)
        if m.get(-1) != 1 or not isinstance(x, bytes) or not isinstance(y, bytes):
            raise KeyError_("ec2 shape")
        if len(x) != 32 or len(y) != 32:
            raise KeyError_("ec2 coordinate size")
        xi = int.from_bytes(x, "big")
        yi = int.from_bytes(y, "big")
        p = _P256_P
        if xi >= p or yi >= p or (yi * yi - (xi * xi * xi - 3 * xi + _P256_B)) % p:
            raise KeyError_("ec2 point not on P-256")
        kid = kid_of_spki(_P256_SPKI_HEAD + x + y)
        return PublicKey(KTY_EC2, kid, x=x, y=y)
    raise KeyError_("unsupported kty")


def load(buf):
    """Parse a CBOR-encoded COSE_Key (the pinned root key file)."""
    if len(buf) > 1024:
        raise KeyError_("too large")
    try:
        m = cbor.decode(buf)
    except cbor.CborError:
        raise KeyError_("malformed cbor")
    return from_map(m)
