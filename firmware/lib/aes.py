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
    memoryview, no copy); the last block is folded with the chaining value and K1/K2 in one
    big-integer XOR and enciphered alone. A one-block message takes its subkey as the IV of a
    one-block CBC call (no integer arithmetic: the tap's short command MACs)."""
    k1, k2 = subkeys or cmac_subkeys(key)
    n = len(msg)
    if n <= 16:
        # one block: E(K, M ^ K1) or E(K, pad(M) ^ K2) is one CBC block with the subkey as IV
        if n == 16:
            return cbc_encrypt(key, k1, msg)
        return cbc_encrypt(key, k2, bytes(msg) + b"\x80" + bytes(15 - n))
    if n % 16 == 0:
        cut = n - 16
        last = msg[cut:]
        k = k1
    else:
        cut = n - n % 16
        last = bytes(msg[cut:]) + b"\x80" + bytes(15 - n % 16)
        k = k2
    v = int.from_bytes(last, "big") ^ int.from_bytes(k, "big")
    if cut:
        c = cbc_encrypt(key, ZERO16, memoryview(msg)[:cut])
        v ^= int.from_bytes(c[cut - 16:], "big")
    return ecb_encrypt(key, v.to_bytes(16, "big"))
