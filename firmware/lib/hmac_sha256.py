# HMAC-SHA256 (RFC 2104) over hashlib.sha256: MicroPython has no hmac module. The pads are
# computed once per key, so each MAC costs two SHA-256 passes (hardware on the ESP32).
import hashlib

_BLOCK = 64


class Hmac:
    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key + bytes(_BLOCK - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)

    def digest(self, *parts):
        h = hashlib.sha256(self._ipad)
        for p in parts:
            h.update(p)
        return hashlib.sha256(self._opad + h.digest()).digest()


def equal(a, b):
    """Constant-time comparison of two MACs."""
    if len(a) != len(b):
        return False
    d = 0
    for x, y in zip(a, b):
        d |= x ^ y
    return d == 0
