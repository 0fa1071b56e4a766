# MIFARE DESFire cryptography for the reader (and, unchanged, for host provisioning):
#  - NXP AN10922 AES-128 key diversification (CMAC over 0x01 || M, always padded to 32 bytes),
#  - AuthenticateEV2First session keys (SV1/SV2) and EV2 secure messaging (TI, CmdCtr, MAC and
#    fully enciphered modes, both directions),
#  - AES "EV1" (AuthenticateAES) session key and EV1 secure messaging (CMAC IV chaining, CRC32 in
#    enciphered data),
#  - DESFire CRC32 (for ChangeKey and EV1), ISO/IEC 9797-1 method 2 padding,
#  - ECDSA secp224r1 verification of NXP's originality signature (ReadSig).
# Everything is a pure function or a small class over aes.py (cryptolib on the device, the
# `cryptography` package on CPython). Byte strings in, byte strings out; failures of the card's
# cryptography raise rferror.CardError with reason INTEGRITY (or AUTH), never anything else.
import binascii
import struct

import aes
from rferror import AUTH, INTEGRITY, PROTOCOL, CardError

# C CRC32 where the port has it (unix, ESP32); a table-driven fallback otherwise.
_zcrc32 = getattr(binascii, "crc32", None)

ZERO16 = bytes(16)

# DESFire communication modes (the values used in file settings).
PLAIN = 0x00
MAC = 0x01
FULL = 0x03

CMDCTR_MAX = 0xFFFF


# ---------------------------------------------------------------- small helpers

def ct_equal(a, b):
    """Compare two byte strings in time independent of where they differ."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def rotl1(b):
    """Rotate left by one byte (RndB' / RndA' of the authentication protocols)."""
    return bytes(b[1:]) + bytes(b[:1])


def pad_m2(data, block=16):
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros; always adds at least one byte."""
    n = len(data) % block
    return bytes(data) + b"\x80" + bytes(block - 1 - n)


def unpad_m2(data, block=16, length=None):
    """Strip method-2 padding; a missing 0x80 marker or non-zero filler is an integrity error.
    length: the plain length the caller expects (None: unknown); when the padding sits right
    after it, it is checked there without scanning from the end (same outcome either way)."""
    n = len(data)
    if n == 0 or n % block:
        raise CardError(INTEGRITY, "padded data not a whole number of blocks")
    if (length is not None and n - block <= length < n and data[length] == 0x80
            and data[length + 1:] == bytes(n - length - 1)):
        return bytes(memoryview(data)[:length])
    i = n - 1
    stop = n - block  # the marker is always inside the last block
    while i >= stop and data[i] == 0:
        i -= 1
    if i < stop or data[i] != 0x80:
        raise CardError(INTEGRITY, "bad padding")
    return bytes(memoryview(data)[:i])


def pad_zero(data, block=16):
    """Zero padding to a whole number of blocks (EV1 enciphered data; nothing added if aligned)."""
    n = len(data) % block
    if n == 0 and len(data):
        return bytes(data)
    return bytes(data) + bytes(block - n)


def mac_odd(tag):
    """EV2 truncation: the 8 odd-indexed bytes (1, 3, ..., 15) of a 16-byte CMAC."""
    return bytes([tag[1], tag[3], tag[5], tag[7], tag[9], tag[11], tag[13], tag[15]])


def cmac_iv(key, iv, msg, subkeys):
    """AES-CMAC with a caller-chosen IV (EV1 secure messaging chains the IV); full 16 bytes."""
    k1, k2 = subkeys
    n = len(msg)
    if n and n % 16 == 0:
        last = aes.xor(msg[n - 16:], k1)
        head = msg[:n - 16]
    else:
        cut = n - n % 16
        last = aes.xor(bytes(msg[cut:]) + b"\x80" + bytes(15 - n % 16), k2)
        head = msg[:cut]
    return aes.cbc_encrypt(key, iv, bytes(head) + last)[-16:]


# ---------------------------------------------------------------- CRC32 (DESFire flavour)

_CRC_TABLE = None


def _crc_table():
    global _CRC_TABLE
    if _CRC_TABLE is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _CRC_TABLE = t
    return _CRC_TABLE


def crc32_desfire(data):
    """DESFire CRC32: IEEE 802.3 polynomial, preset 0xFFFFFFFF, NO final inversion."""
    if _zcrc32 is not None:
        return (_zcrc32(bytes(data)) ^ 0xFFFFFFFF) & 0xFFFFFFFF
    t = _crc_table()
    c = 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def crc32_le(data):
    """The CRC32 as the card transmits it: 4 bytes, least significant first."""
    return struct.pack("<I", crc32_desfire(data))


# ---------------------------------------------------------------- AN10922 diversification

def an10922_aes128(master, m, subkeys=None):
    """NXP AN10922 §2.2 AES-128 diversification of `master` with diversification input M.

    D = 0x01 || M; if D is shorter than 32 bytes it is padded (80 00 ..) to 32 and the last
    block XORed with K2, otherwise (32 bytes) the last block is XORed with K1; the key is the
    last block of AES-CBC(master, IV = 0, D). This differs from a plain CMAC for |M| < 15, where
    CMAC would pad to 16 bytes only. `subkeys` (K1, K2 of the master) may be cached by callers.
    """
    if len(master) != 16:
        raise ValueError("AES-128 master key must be 16 bytes")
    if not 1 <= len(m) <= 31:
        raise ValueError("diversification input must be 1..31 bytes")
    k1, k2 = subkeys or aes.cmac_subkeys(master)
    d = b"\x01" + bytes(m)
    if len(d) < 32:
        d = d + b"\x80" + bytes(31 - len(d))
        last = aes.xor(d[16:], k2)
    else:
        last = aes.xor(d[16:], k1)
    return aes.cbc_encrypt(master, ZERO16, d[:16] + last)[-16:]


def div_input(uid, aid, sysid):
    """The diversification input M = UID || AID || system identifier (AN10922 §2.2 example)."""
    return bytes(uid) + bytes(aid) + bytes(sysid)


# ---------------------------------------------------------------- EV2 session keys

def ev2_sv(prefix, rnda, rndb):
    """SV1 (prefix A5 5A) or SV2 (prefix 5A A5) of AuthenticateEV2First.

    NXP numbers bytes from the most significant end (RndA[15] is the first byte sent), so
    RndA[15:14] = rnda[0:2], RndA[13:8] ^ RndB[15:10] = rnda[2:8] ^ rndb[0:6],
    RndB[9:0] = rndb[6:16], RndA[7:0] = rnda[8:16]; checked against AN12196 Table 14 SV1.
    """
    if len(rnda) != 16 or len(rndb) != 16:
        raise ValueError("RndA and RndB must be 16 bytes")
    return (bytes(prefix) + b"\x00\x01\x00\x80" + bytes(rnda[0:2])
            + aes.xor(rnda[2:8], rndb[0:6]) + bytes(rndb[6:16]) + bytes(rnda[8:16]))


def ev2_session_keys(key, rnda, rndb, subkeys=None):
    """(SesAuthENCKey, SesAuthMACKey) = (CMAC(K, SV1), CMAC(K, SV2)).

    SV1 and SV2 are two whole blocks each and differ only in their first two bytes, so both
    CMACs are E(K, E(K, SVx[0:16]) ^ SV[16:32] ^ K1): two two-block ECB calls in all.
    subkeys: (K1, K2) of key when the caller has them (a fixed key)."""
    if len(rnda) != 16 or len(rndb) != 16:
        raise ValueError("RndA and RndB must be 16 bytes")
    k1 = (subkeys or aes.cmac_subkeys(key))[0]
    mid = b"\x00\x01\x00\x80" + bytes(rnda[0:2]) + aes.xor(rnda[2:8], rndb[0:6]) + bytes(rndb[6:8])
    x = aes.ecb_encrypt(key, b"\xA5\x5A" + mid + b"\x5A\xA5" + mid)
    t = int.from_bytes(bytes(rndb[8:16]) + bytes(rnda[8:16]), "big") ^ int.from_bytes(k1, "big")
    y = int.from_bytes(x, "big") ^ ((t << 128) | t)
    out = aes.ecb_encrypt(key, y.to_bytes(32, "big"))
    return out[:16], out[16:]


def ev1_session_key(rnda, rndb):
    """AES session key of AuthenticateAES (EV1): RndA[0..3] || RndB[0..3] || RndA[12..15] || RndB[12..15]."""
    if len(rnda) != 16 or len(rndb) != 16:
        raise ValueError("RndA and RndB must be 16 bytes")
    return bytes(rnda[0:4]) + bytes(rndb[0:4]) + bytes(rnda[12:16]) + bytes(rndb[12:16])


# ---------------------------------------------------------------- authentication steps
# Both protocols are three-pass: card sends E(K, RndB); reader answers E(K, RndA || RndB');
# card proves itself with E(K, ... RndA' ...). These helpers hold the reader's side.

def ev2_auth_step1(key, enc_rndb, rnda):
    """From E(K, RndB) compute (RndB, E(K, RndA || RndB')) for AuthenticateEV2First part 2."""
    if len(enc_rndb) != 16 or len(rnda) != 16:
        raise CardError(PROTOCOL, "EV2 auth: RndB must be one block")
    rndb = aes.cbc_decrypt(key, ZERO16, enc_rndb)
    return rndb, aes.cbc_encrypt(key, ZERO16, bytes(rnda) + rotl1(rndb))


def ev2_session_material(key, rnda, rndb, subkeys=None):
    """(SesAuthENCKey, SesAuthMACKey, CMAC subkeys of the MAC key): everything of an EV2
    session but TI and counter. It needs only RndA and RndB, so a reader computes it while the
    card is still working on the last authentication step (see Desfire, set_idle)."""
    enc, mac = ev2_session_keys(key, rnda, rndb, subkeys)
    return enc, mac, aes.cmac_subkeys(mac)


def ev2_auth_step2(key, enc_answer, rnda, rndb, key_no, subkeys=None, material=None):
    """Check the card's answer TI || RndA' || PDcap2 || PCDcap2; return (EV2Session, PDcap2, PCDcap2).
    material: ev2_session_material() already computed (None: computed here)."""
    if len(enc_answer) != 32:
        raise CardError(PROTOCOL, "EV2 auth: answer must be 32 bytes")
    plain = aes.cbc_decrypt(key, ZERO16, enc_answer)
    if not ct_equal(plain[4:20], rotl1(rnda)):
        raise CardError(AUTH, "card did not return RndA' (wrong key or not a genuine card)")
    m = material or ev2_session_material(key, rnda, rndb, subkeys)
    return EV2Session(m[0], m[1], plain[0:4], key_no, 0, m[2]), plain[20:26], plain[26:32]


def ev2_non_first_step2(key, enc_answer, rnda, rndb, key_no, ti, cmd_ctr, subkeys=None, material=None):
    """AuthenticateEV2NonFirst: check the card's E(K, RndA') and return the new EV2Session, which
    keeps the transaction's TI and command counter (session keys from the new RndA/RndB)."""
    ev2_non_first_check(key, enc_answer, rnda)
    m = material or ev2_session_material(key, rnda, rndb, subkeys)
    return EV2Session(m[0], m[1], ti, key_no, cmd_ctr, m[2])


def ev2_non_first_check(key, enc_answer, rnda):
    """The card's last AuthenticateEV2NonFirst answer must be E(K, RndA'): raise otherwise."""
    if len(enc_answer) != 16:
        raise CardError(PROTOCOL, "EV2 auth: answer must be one block")
    if not ct_equal(aes.cbc_decrypt(key, ZERO16, enc_answer), rotl1(rnda)):
        raise CardError(AUTH, "card did not return RndA' (wrong key or not a genuine card)")


def ev1_auth_step1(key, enc_rndb, rnda):
    """AuthenticateAES: returns (RndB, token E(K, RndA || RndB'), iv after the token)."""
    if len(enc_rndb) != 16 or len(rnda) != 16:
        raise CardError(PROTOCOL, "EV1 auth: RndB must be one block")
    # EV1 chains the CBC IV through the three messages, starting from zero.
    rndb = aes.cbc_decrypt(key, ZERO16, enc_rndb)
    token = aes.cbc_encrypt(key, bytes(enc_rndb), bytes(rnda) + rotl1(rndb))
    return rndb, token, token[-16:]


def ev1_auth_step2(key, iv, enc_rnda, rnda, rndb, key_no):
    if len(enc_rnda) != 16:
        raise CardError(PROTOCOL, "EV1 auth: answer must be one block")
    if not ct_equal(aes.cbc_decrypt(key, iv, enc_rnda), rotl1(rnda)):
        raise CardError(AUTH, "card did not return RndA' (wrong key or not a genuine card)")
    return EV1Session(ev1_session_key(rnda, rndb), key_no)


# ---------------------------------------------------------------- EV2 secure messaging

class EV2Session:
    """EV2 secure messaging state after AuthenticateEV2First.

    wrap() protects a command (cmd byte, header sent in clear, data), unwrap() checks and opens
    the response. The command counter advances once per command/response pair, as the card's
    does, including for CommMode.Plain commands. MACs use the 8 odd bytes of the CMAC:
      command  MAC over Cmd || CmdCtr || TI || header || (enciphered) data
      response MAC over RC  || CmdCtr+1 || TI || (enciphered) response data
    enciphering uses AES-CBC with IV = E(SesAuthENCKey, A5 5A || TI || CmdCtr || 0^8) (5A A5 for
    responses, with the incremented counter) and method-2 padding.
    """

    kind = "ev2"

    def __init__(self, enc_key, mac_key, ti, key_no=0, cmd_ctr=0, mac_sub=None):
        self.enc_key = bytes(enc_key)
        self.mac_key = bytes(mac_key)
        self.ti = bytes(ti)
        self.key_no = key_no
        self.cmd_ctr = cmd_ctr
        self._mac_sub = mac_sub or aes.cmac_subkeys(self.mac_key)

    def _ctr(self):
        return struct.pack("<H", self.cmd_ctr)

    def mac(self, msg):
        return mac_odd(aes.cmac(self.mac_key, msg, self._mac_sub))

    def _mac_input(self, first, ctr, parts_len):
        # first || CmdCtr (LE) || TI, followed by parts_len bytes the caller fills in: the MAC
        # input of a command or an answer built in one buffer instead of a chain of copies.
        m = bytearray(7 + parts_len)
        m[0] = first
        m[1] = ctr & 0xFF
        m[2] = ctr >> 8
        m[3:7] = self.ti
        return m

    def _iv(self, prefix):
        v = bytearray(16)
        v[0:2] = prefix
        v[2:6] = self.ti
        c = self.cmd_ctr
        v[6] = c & 0xFF
        v[7] = c >> 8
        return aes.ecb_encrypt(self.enc_key, v)

    def iv_cmd(self):
        return self._iv(b"\xA5\x5A")

    def iv_resp(self):
        return self._iv(b"\x5A\xA5")

    def wrap(self, cmd, header, data, mode, crc=True):
        """Payload (after the command byte) to send: header || data' || MAC as the mode requires
        (a bytearray when MACed)."""
        if self.cmd_ctr >= CMDCTR_MAX:
            raise CardError(PROTOCOL, "EV2 command counter exhausted: authenticate again")
        if mode == PLAIN:
            return bytes(header) + bytes(data)
        if mode == FULL and data:
            data = aes.cbc_encrypt(self.enc_key, self.iv_cmd(), pad_m2(data))
        h = len(header)
        n = len(data)
        m = self._mac_input(cmd, self.cmd_ctr, h + n)
        m[7:7 + h] = header
        m[7 + h:] = data
        out = bytearray(h + n + 8)
        out[0:h + n] = memoryview(m)[7:]
        out[h + n:] = self.mac(m)
        return out

    def unwrap(self, status, resp, mode, length=None):
        """Verify and open a response (all frames joined); advances the counter."""
        self.cmd_ctr += 1
        if mode == PLAIN:
            return bytes(resp)
        n = len(resp) - 8
        if n < 0:
            raise CardError(INTEGRITY, "response MAC missing")
        m = self._mac_input(status, self.cmd_ctr, n)
        m[7:] = memoryview(resp)[:n]
        if not ct_equal(self.mac(m), memoryview(resp)[n:]):
            raise CardError(INTEGRITY, "response MAC mismatch")
        body = memoryview(m)[7:]
        if mode == FULL and n:
            if n % 16:
                raise CardError(INTEGRITY, "enciphered response not whole blocks")
            return unpad_m2(aes.cbc_decrypt(self.enc_key, self.iv_resp(), body), 16, length)
        return bytes(body)


# ---------------------------------------------------------------- EV1 (AES) secure messaging

class EV1Session:
    """AES secure messaging after AuthenticateAES (DESFire EV1 "native" AES).

    One 16-byte IV is chained through the whole session: every command is CMACed to advance it
    (the CMAC is only sent for MAC-mode data), every response carries the first 8 bytes of
    CMAC(data || status); enciphered data is data || CRC32 || zero padding under AES-CBC with
    the running IV (command CRC over cmd || header || data, response CRC over data || status).
    """

    kind = "ev1"

    def __init__(self, key, key_no=0):
        self.key = bytes(key)
        self.key_no = key_no
        self.iv = ZERO16
        self._sub = aes.cmac_subkeys(self.key)

    def _cmac(self, msg):
        self.iv = cmac_iv(self.key, self.iv, msg, self._sub)
        return self.iv

    def encipher(self, plain):
        out = aes.cbc_encrypt(self.key, self.iv, plain)
        self.iv = out[-16:]
        return out

    def wrap(self, cmd, header, data, mode, crc=True):
        header = bytes(header)
        data = bytes(data)
        if mode == FULL and data:
            plain = data + crc32_le(bytes([cmd]) + header + data) if crc else data
            return header + self.encipher(pad_zero(plain))
        tag = self._cmac(bytes([cmd]) + header + data)
        if mode == MAC and data:
            return header + data + tag[:8]
        return header + data

    def unwrap(self, status, resp, mode, length=None):
        if mode == FULL and (length or len(resp) > 8):
            if length is None:
                raise CardError(PROTOCOL, "EV1 enciphered response needs its length")
            need = len(pad_zero(bytes(length + 4)))
            if len(resp) != need:
                raise CardError(PROTOCOL, "EV1 enciphered response of unexpected length")
            plain = aes.cbc_decrypt(self.key, self.iv, bytes(resp))
            self.iv = bytes(resp[-16:])
            data = plain[:length]
            ok = ct_equal(plain[length:length + 4], crc32_le(data + bytes([status])))
            for b in plain[length + 4:]:
                if b:
                    ok = False
            if not ok:
                raise CardError(INTEGRITY, "EV1 CRC32 or padding mismatch")
            return data
        if len(resp) < 8:
            raise CardError(INTEGRITY, "response CMAC missing")
        body = bytes(resp[:-8])
        if not ct_equal(self._cmac(body + bytes([status]))[:8], resp[-8:]):
            raise CardError(INTEGRITY, "response CMAC mismatch")
        return body


# ---------------------------------------------------------------- ChangeKey cryptograms

def change_key_data(session, cmd, key_no, new_key, version, old_key=None):
    """Key data of ChangeKey (before the session's FULL wrap; EV1 data already carries CRCs).

    Changing the key that opened the session: NewKey || KeyVer.
    Changing another key: (NewKey XOR OldKey) || KeyVer || CRC32(NewKey).
    EV1 additionally puts CRC32 over cmd || KeyNo || cryptogram before that CRC32(NewKey).
    """
    if len(new_key) != 16:
        raise ValueError("AES keys are 16 bytes")
    same = (key_no & 0x3F) == (session.key_no & 0x3F)
    if same:
        body = bytes(new_key) + bytes([version])
    else:
        if old_key is None or len(old_key) != 16:
            raise ValueError("changing another key needs its current value")
        body = aes.xor(new_key, old_key) + bytes([version])
    if session.kind == "ev1":
        body = body + crc32_le(bytes([cmd, key_no]) + body)
    if not same:
        body = body + crc32_le(new_key)
    return body, same


# ---------------------------------------------------------------- NXP originality signature
# ECDSA over secp224r1 with no hashing: the "digest" is the 7-byte UID itself (as an integer).

P224_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001
P224_B = 0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4
P224_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D
P224_GX = 0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21
P224_GY = 0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34

# Public keys NXP uses for the originality signature (SEC1 uncompressed, 57 bytes).
# "light" is printed in NXP AN12343 §11.2.1; the EV2 and EV3 keys are the ones published by the
# Proxmark3 project (recovered from, and checked against, genuine chips' signatures).
NXP_ORIGINALITY_KEYS = (
    ("DESFire EV3", "041DB46C145D0A36539C6544BD6D9B0AA62FF91EC48CBC6ABAE36E0089A46F0D08"
                    "C8A715EA40A63313B92E90DDC1730230E0458A33276FB743"),
    ("DESFire EV2", "04B304DC4C615F5326FE9383DDEC9AA892DF3A57FA7FFB3276192BC0EAA252ED45"
                    "A865E3B093A3D0DCE5BE29E92F1392CE7DE321E3E5C52B3A"),
    ("DESFire EV2 XL", "04CD5D45E50B1502F0BA4656FF37669597E7E183251150F9574CC8DA56BF01C7AB"
                       "E019E29FEA48F9CE22C3EA4029A765E1BC95A89543BAD1BC"),
    ("DESFire Light", "040E98E117AAA36457F43173DC920A8757267F44CE4EC5ADD3C54075571AEBBF7B"
                      "942A9774A1D94AD02572427E5AE0A2DD36591B1FB34FCF3D"),
)


def _jdbl(pt):
    # Jacobian doubling for a = -3 (dbl-2001-b).
    x, y, z = pt
    if z == 0 or y == 0:
        return (1, 1, 0)
    p = P224_P
    delta = z * z % p
    gamma = y * y % p
    beta = x * gamma % p
    alpha = 3 * (x - delta) * (x + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    z3 = ((y + z) * (y + z) - gamma - delta) % p
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p
    return (x3, y3, z3)


def _jadd_affine(pt, qx, qy):
    # Jacobian + affine addition (madd-2004-hmv shape), handling doubling and infinity.
    x1, y1, z1 = pt
    if z1 == 0:
        return (qx, qy, 1)
    p = P224_P
    z1z1 = z1 * z1 % p
    u2 = qx * z1z1 % p
    s2 = qy * z1 * z1z1 % p
    h = (u2 - x1) % p
    r = (s2 - y1) % p
    if h == 0:
        if r == 0:
            return _jdbl(pt)
        return (1, 1, 0)
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    z3 = z1 * h % p
    return (x3, y3, z3)


def _affine(pt):
    x, y, z = pt
    if z == 0:
        return None
    p = P224_P
    zi = pow(z, p - 2, p)
    zi2 = zi * zi % p
    return (x * zi2 % p, y * zi2 * zi % p)


def p224_point(sec1):
    """Decode an uncompressed SEC1 point and check it lies on the curve; None if not."""
    if len(sec1) != 57 or sec1[0] != 0x04:
        return None
    x = int.from_bytes(sec1[1:29], "big")
    y = int.from_bytes(sec1[29:57], "big")
    p = P224_P
    if x >= p or y >= p or (y * y - (x * x * x - 3 * x + P224_B)) % p:
        return None
    return (x, y)


def p224_verify(pub, msg, sig):
    """ECDSA P-224 verification of raw r || s (56 bytes) over `msg` taken as the digest."""
    if len(sig) != 56 or pub is None:
        return False
    n = P224_N
    r = int.from_bytes(sig[0:28], "big")
    s = int.from_bytes(sig[28:56], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(msg[:28], "big")  # leftmost 224 bits; a UID is far shorter
    w = pow(s, n - 2, n)
    u1 = e * w % n
    u2 = r * w % n
    # Shamir's trick over u1*G + u2*Q with G, Q and G+Q in affine form.
    g = (P224_GX, P224_GY)
    gq = _affine(_jadd_affine((pub[0], pub[1], 1), g[0], g[1]))
    acc = (1, 1, 0)
    for i in range(223, -1, -1):
        acc = _jdbl(acc)
        b = ((u1 >> i) & 1) | (((u2 >> i) & 1) << 1)
        if b == 1:
            acc = _jadd_affine(acc, g[0], g[1])
        elif b == 2:
            acc = _jadd_affine(acc, pub[0], pub[1])
        elif b == 3 and gq is not None:  # gq is None only when Q == -G: adding infinity
            acc = _jadd_affine(acc, gq[0], gq[1])
    xy = _affine(acc)
    return xy is not None and xy[0] % n == r


def originality_key_name(uid, sig, keys=None):
    """Name of the NXP key under which `sig` verifies for `uid`, or None (not a genuine chip)."""
    for name, hexkey in keys or NXP_ORIGINALITY_KEYS:
        if p224_verify(p224_point(binascii.unhexlify(hexkey)), bytes(uid), bytes(sig)):
            return name
    return None
