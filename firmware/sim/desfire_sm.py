# Card side of DESFire secure messaging after an AES authentication. EV2 (AuthenticateEV2First,
# as in NXP's DESFire EV2/EV3, DESFire Light and NTAG 424 DNA documentation): session keys
# SesAuthENC/SesAuthMAC = CMAC(K, SV1/SV2), a 4-byte transaction identifier TI, a 16-bit command
# counter CmdCtr, MACt = the 8 odd-indexed bytes of a CMAC, IVs E(SesAuthENC, A55A|5AA5 || TI ||
# CmdCtr || 0^8), ISO/IEC 9797-1 padding method 2. EV1 (AuthenticateAES): one session key, a
# running IV chained through CMACs and ciphertexts, CRC32 inside enciphered data.
import aes

from . import crc as crcmod

ZERO16 = bytes(16)


class SmError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


INTEGRITY_ERROR = 0x1E
LENGTH_ERROR = 0x7E


def rotl1(b):
    return bytes(b[1:]) + bytes(b[0:1])


def mac_t(full):
    return bytes(full[i] for i in range(1, 16, 2))


def pad_m2(data):
    n = 16 - (len(data) % 16)
    return bytes(data) + b"\x80" + bytes(n - 1)


def unpad_m2(data):
    i = len(data) - 1
    limit = len(data) - 16
    while i >= 0 and i >= limit and data[i] == 0x00:
        i -= 1
    if i < 0 or i < limit or data[i] != 0x80:
        raise SmError(INTEGRITY_ERROR)
    return bytes(data[:i])


def cmac_iv(key, iv, msg):
    """AES-CMAC whose CBC chain starts from iv instead of zero (DESFire EV1 secure messaging)."""
    k1, k2 = aes.cmac_subkeys(key)
    n = len(msg)
    if n and n % 16 == 0:
        last = aes.xor(msg[n - 16:], k1)
        head = msg[:n - 16]
    else:
        cut = n - n % 16
        last = aes.xor(bytes(msg[cut:]) + b"\x80" + bytes(15 - n % 16), k2)
        head = msg[:cut]
    return aes.cbc_encrypt(key, iv, bytes(head) + last)[-16:]


def ev2_session_keys(key, rnd_a, rnd_b):
    """SesAuthENCKey, SesAuthMACKey from the SV1/SV2 vectors (RndA[15] is the first byte)."""
    tail = bytes(rnd_a[0:2]) + aes.xor(rnd_a[2:8], rnd_b[0:6]) + bytes(rnd_b[6:16]) + \
        bytes(rnd_a[8:16])
    sv1 = b"\xa5\x5a\x00\x01\x00\x80" + tail
    sv2 = b"\x5a\xa5\x00\x01\x00\x80" + tail
    return aes.cmac(key, sv1), aes.cmac(key, sv2)


def ev1_session_key(rnd_a, rnd_b):
    return bytes(rnd_a[0:4]) + bytes(rnd_b[0:4]) + bytes(rnd_a[12:16]) + bytes(rnd_b[12:16])


class Ev2Session:
    kind = "ev2"

    def __init__(self, key_no, key, rnd_a, rnd_b, ti, cmd_ctr=0):
        self.key_no = key_no
        self.enc, self.mac = ev2_session_keys(key, rnd_a, rnd_b)
        self.ti = bytes(ti)
        self.cmd_ctr = cmd_ctr

    def _ctr(self):
        return bytes((self.cmd_ctr & 0xFF, (self.cmd_ctr >> 8) & 0xFF))

    def _iv(self, tag):
        return aes.ecb_encrypt(self.enc, tag + self.ti + self._ctr() + bytes(8))

    def command_in(self, cmd, header, rest, mode, full_len=None):
        """Check (and for Full decipher) command data; returns the plain command data."""
        if mode == "plain":
            return bytes(rest)
        if len(rest) < 8:
            raise SmError(LENGTH_ERROR)
        body = bytes(rest[:-8])
        want = mac_t(aes.cmac(self.mac, bytes([cmd]) + self._ctr() + self.ti + bytes(header) +
                              body))
        if want != bytes(rest[-8:]):
            raise SmError(INTEGRITY_ERROR)
        if mode in ("mac", "macdata"):
            return body
        if not body or len(body) % 16:
            raise SmError(LENGTH_ERROR)
        return unpad_m2(aes.cbc_decrypt(self.enc, self._iv(b"\xa5\x5a"), body))

    def response_out(self, status, data, mode):
        """Count the command and build the response payload (after the status byte)."""
        self.cmd_ctr = (self.cmd_ctr + 1) & 0xFFFF
        data = bytes(data)
        if mode == "plain":
            return data
        if mode == "full":
            data = aes.cbc_encrypt(self.enc, self._iv(b"\x5a\xa5"), pad_m2(data))
        mac = mac_t(aes.cmac(self.mac, bytes([status]) + self._ctr() + self.ti + data))
        return data + mac


class Ev1Session:
    kind = "ev1"

    def __init__(self, key_no, rnd_a, rnd_b):
        self.key_no = key_no
        self.key = ev1_session_key(rnd_a, rnd_b)
        self.iv = ZERO16

    def command_in(self, cmd, header, rest, mode, full_len=None):
        msg = bytes([cmd]) + bytes(header)
        if mode in ("plain", "mac"):
            self.iv = cmac_iv(self.key, self.iv, msg + bytes(rest))
            return bytes(rest)
        if mode == "macdata":
            if len(rest) < 8:
                raise SmError(LENGTH_ERROR)
            body = bytes(rest[:-8])
            c = cmac_iv(self.key, self.iv, msg + body)
            if c[:8] != bytes(rest[-8:]):
                raise SmError(INTEGRITY_ERROR)
            self.iv = c
            return body
        if not rest or len(rest) % 16 or full_len is None or full_len + 4 > len(rest):
            raise SmError(LENGTH_ERROR)
        plain = aes.cbc_decrypt(self.key, self.iv, bytes(rest))
        self.iv = bytes(rest[-16:])
        data = plain[:full_len]
        if plain[full_len:full_len + 4] != crcmod.crc32_desfire(msg + data):
            raise SmError(INTEGRITY_ERROR)
        if any(plain[full_len + 4:]):
            raise SmError(INTEGRITY_ERROR)
        return data

    def decipher_raw(self, rest):
        """Decipher enciphered command data whose layout the command checks itself."""
        if not rest or len(rest) % 16:
            raise SmError(LENGTH_ERROR)
        plain = aes.cbc_decrypt(self.key, self.iv, bytes(rest))
        self.iv = bytes(rest[-16:])
        return plain

    def response_out(self, status, data, mode):
        data = bytes(data)
        if mode == "full":
            body = data + crcmod.crc32_desfire(data + bytes([status]))
            if len(body) % 16:
                body += bytes(16 - len(body) % 16)
            enc = aes.cbc_encrypt(self.key, self.iv, body)
            self.iv = enc[-16:]
            return enc
        c = cmac_iv(self.key, self.iv, data + bytes([status]))
        self.iv = c
        return data + c[:8]
