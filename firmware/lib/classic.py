# MIFARE Classic 1K/4K (legacy cards): the signed credential stored across data blocks, read
# after MIFARE authentication done by the MFRC522's Crypto1 unit (MFAuthent).
#
# Layout (this project's own, for cards the offices already hold):
#   sector 0 is left alone (manufacturer block, MAD). The credential starts in sector 1, block 0
#   (block 4) with a 4-byte header  CB 01 LEN_HI LEN_LO  followed by LEN credential bytes,
#   streamed through the data blocks of sectors 1, 2, 3, ... (trailers skipped), zero padded.
#   Capacity: 1K 15 sectors x 48 B = 720 B; 4K 31 x 48 + 8 x 240 = 3408 B (the reader caps the
#   credential at MAX_CREDENTIAL).
# Keys, diversified per card and per sector from a 16-byte AES master key M:
#   key A(s) = AES-CMAC(M, 01 || "CBCC-MFC" || UID || s)[0:6]   (reading)
#   key B(s) = AES-CMAC(M, 02 || "CBCC-MFC" || UID || s)[0:6]   (rewriting)
#   UID is the anticollision UID (4 or 7 bytes), s the sector number as one byte.
# Access conditions written at provisioning (bytes 6..9 of the trailer: 78 77 88 00): data blocks
# read with key A or B, written with key B only; key A unreadable; access bits and keys changed
# with key B only.
# A Classic card can be cloned (Crypto1 is broken): the reader reports it as "no anti-clone".
import aes
import iso14443a
import rferror
from rferror import CardError

MAGIC = 0xCB
VERSION = 0x01
HEADER = 4
MAX_CREDENTIAL = 1024
FIRST_SECTOR = 1
KEY_A = 0x60
KEY_B = 0x61
CMD_WRITE = 0xA0
ACCESS_BITS = b"\x78\x77\x88\x00"
TRANSPORT_KEY = b"\xff" * 6
T_READ_US = 5000
T_WRITE_US = 15000


def sector_count(size):
    return 40 if size == 4096 else 16


def sector_first_block(s):
    return 4 * s if s < 32 else 128 + 16 * (s - 32)


def sector_data_blocks(s):
    """Block numbers of the data blocks of sector s (trailer excluded)."""
    first = sector_first_block(s)
    n = 3 if s < 32 else 15
    return list(range(first, first + n))


def trailer_block(s):
    return sector_first_block(s) + (3 if s < 32 else 15)


def capacity(size):
    total = 0
    for s in range(FIRST_SECTOR, sector_count(size)):
        total += 16 * len(sector_data_blocks(s))
    return total - HEADER


def size_from_sak(sak):
    return 4096 if sak & 0x18 == 0x18 else 1024


def auth_uid(uid):
    """The 4 UID bytes Crypto1 authentication uses: the UID of a 4-byte card, the last four bytes
    (cascade level 2) of a 7-byte card."""
    return bytes(uid[-4:])


class Keys:
    """Per-card key diversification; the CMAC subkeys of the master are computed once."""

    def __init__(self, master):
        if len(master) != 16:
            raise CardError(rferror.AUTH, "Classic master key must be 16 bytes")
        self.master = bytes(master)
        self._sub = aes.cmac_subkeys(self.master)

    def key(self, uid, sector, key_type=KEY_A):
        tag = 0x01 if key_type == KEY_A else 0x02
        msg = bytes((tag,)) + b"CBCC-MFC" + bytes(uid) + bytes((sector,))
        return aes.cmac(self.master, msg, self._sub)[:6]


def authenticate(chip, uid, sector, key, key_type=KEY_A):
    chip.mf_authent(key_type, sector_first_block(sector), key, auth_uid(uid))


def read_block(chip, block):
    return iso14443a.mifare_read(chip, block, T_READ_US)


def write_block(chip, block, data):
    """WRITE (two steps, each acknowledged by a 4-bit ACK)."""
    if len(data) != 16:
        raise CardError(rferror.PROTOCOL, "a block is 16 bytes")
    chip.set_crc(True, False)
    for frame in (bytes((CMD_WRITE, block)), bytes(data)):
        rx = chip.transceive(frame, T_WRITE_US)
        if rx != b"\x0a":
            raise CardError(rferror.STATUS, "WRITE not acknowledged (%s)" % _hex(rx))


def _hex(b):
    return "".join("%02x" % x for x in b)


def _blocks_for(size, nbytes):
    """(sector, block) pairs holding the first nbytes of the layout, in order."""
    out = []  # type: list
    need = (nbytes + 15) // 16
    for s in range(FIRST_SECTOR, sector_count(size)):
        for b in sector_data_blocks(s):
            if len(out) >= need:
                return out
            out.append((s, b))
    if len(out) < need:
        raise CardError(rferror.TOO_LONG, "credential does not fit the card")
    return out


def read_credential(chip, uid, sak, keys, max_len=MAX_CREDENTIAL):
    """Read the credential from a selected Classic card. keys: a Keys object. Returns bytes."""
    size = size_from_sak(sak)
    key_cache = {}  # type: dict

    def sector_key(s):
        k = key_cache.get(s)
        if k is None:
            k = keys.key(uid, s, KEY_A)
            key_cache[s] = k
        return k

    authenticate(chip, uid, FIRST_SECTOR, sector_key(FIRST_SECTOR))
    first = read_block(chip, sector_first_block(FIRST_SECTOR))
    if first[0] != MAGIC or first[1] != VERSION:
        raise CardError(rferror.UNSUPPORTED, "no credential header")
    n = (first[2] << 8) | first[3]
    if n == 0 or n > max_len or n > capacity(size):
        raise CardError(rferror.TOO_LONG, "credential length %d" % n)
    plan = _blocks_for(size, HEADER + n)
    out = bytearray(first)
    current = FIRST_SECTOR
    for s, b in plan[1:]:
        if s != current:
            authenticate(chip, uid, s, sector_key(s))
            current = s
        out += read_block(chip, b)
    return bytes(out[HEADER:HEADER + n])


def provision(chip, uid, sak, keys, credential, old_keys=None):
    """Write a credential and diversified keys to a selected card.

    old_keys None: the card still has transport keys (FF..FF, access FF 07 80); otherwise a Keys
    object whose diversified key B opens the sectors (re-provisioning). Sectors the layout does
    not need are left untouched."""
    size = size_from_sak(sak)
    n = len(credential)
    if n == 0 or n > MAX_CREDENTIAL or n > capacity(size):
        raise CardError(rferror.TOO_LONG, "credential of %d bytes" % n)
    blob = bytes((MAGIC, VERSION, n >> 8, n & 0xFF)) + bytes(credential)
    blob += bytes(-len(blob) % 16)
    plan = _blocks_for(size, len(blob))
    sectors = []
    for s, _ in plan:
        if s not in sectors:
            sectors.append(s)
    i = 0
    for s in sectors:
        if old_keys is None:
            authenticate(chip, uid, s, TRANSPORT_KEY, KEY_A)
        else:
            authenticate(chip, uid, s, old_keys.key(uid, s, KEY_B), KEY_B)
        for s2, b in plan:
            if s2 == s:
                write_block(chip, b, blob[16 * i:16 * i + 16])
                i += 1
        trailer = keys.key(uid, s, KEY_A) + ACCESS_BITS + keys.key(uid, s, KEY_B)
        write_block(chip, trailer_block(s), trailer)
    chip.stop_crypto1()
