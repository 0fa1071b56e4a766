# AES-128 primitives behind one tiny interface: MicroPython's cryptolib on the reader (ESP32
# hardware AES), the `cryptography` package on CPython for host tools and tests.
# Everything above this module (DESFire secure messaging, key diversification, the card
# simulator) speaks only these five functions.
try:
    import cryptolib

    def ecb_encrypt(key, data):
        return cryptolib.aes(key, 1).encrypt(data)

    def ecb_decrypt(key, data):
        return cryptolib.aes(key, 1).decrypt(data)

    def cbc_encrypt(key, iv, data):
        return cryptolib.aes(key, 2, iv).encrypt(data)

    def cbc_decrypt(key, iv, data):
        return cryptolib.aes(key, 2, iv).decrypt(data)

except ImportError:  # CPython
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def _run(key, mode, data, encrypt):
        c = Cipher(algorithms.AES(bytes(key)), mode)
        ctx = c.encryptor() if encrypt else c.decryptor()
        return ctx.update(bytes(data)) + ctx.finalize()

    def ecb_encrypt(key, data):
        return _run(key, modes.ECB(), data, True)

    def ecb_decrypt(key, data):
        return _run(key, modes.ECB(), data, False)

    def cbc_encrypt(key, iv, data):
        return _run(key, modes.CBC(bytes(iv)), data, True)

    def cbc_decrypt(key, iv, data):
        return _run(key, modes.CBC(bytes(iv)), data, False)


ZERO16 = bytes(16)


def xor(a, b):
    # One big-integer XOR instead of a per-byte generator: several times faster under MicroPython,
    # and it sits on the tap path (CMAC, secure messaging, key diversification).
    n = len(a)
    if len(b) != n:
        if len(b) < n:
            n = len(b)
            a = a[:n]
        else:
            b = b[:n]
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")


_MASK128 = (1 << 128) - 1


def _dbl(block):
    # Doubling in GF(2^128) as RFC 4493 §2.3 derives the CMAC subkeys.
    v = int.from_bytes(block, "big") << 1
    if v >> 128:
        v = (v & _MASK128) ^ 0x87
    return v.to_bytes(16, "big")


def cmac_subkeys(key):
    k1 = _dbl(ecb_encrypt(key, ZERO16))
    return k1, _dbl(k1)


def cmac(key, msg, subkeys=None):
    """AES-CMAC (RFC 4493 / NIST SP 800-38B), full 16-byte tag.

    The whole blocks before the last are CBC-enciphered straight from the caller's buffer (a
    memoryview, no copy); the last block, padded and XORed with K1/K2 as one integer, is
    enciphered with the chaining value as its IV. A one-block message takes its subkey as the
    IV of a one-block CBC call (no integer arithmetic: the tap's short command MACs)."""
    k1, k2 = subkeys or cmac_subkeys(key)
    n = len(msg)
    if n <= 16:
        # one block: E(K, M ^ K1) or E(K, pad(M) ^ K2) is one CBC block with the subkey as IV
        if n == 16:
            return cbc_encrypt(key, k1, msg)
        return cbc_encrypt(key, k2, bytes(msg) + b"\x80" + bytes(15 - n))
    r = n % 16
    if r == 0:
        cut = n - 16
        v = int.from_bytes(msg[cut:], "big") ^ int.from_bytes(k1, "big")
    else:
        cut = n - r
        v = ((int.from_bytes(msg[cut:], "big") << (128 - 8 * r) | (0x80 << (120 - 8 * r)))
             ^ int.from_bytes(k2, "big"))
    # E(K, C[n-1] ^ last): the last block with the chaining value as its IV
    c = cbc_encrypt(key, ZERO16, memoryview(msg)[:cut])
    return cbc_encrypt(key, memoryview(c)[cut - 16:], v.to_bytes(16, "big"))
