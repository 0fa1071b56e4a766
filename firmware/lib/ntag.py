# NTAG213/215/216 (legacy cards): the signed credential in user memory.
#
# Layout (this project's own): user memory starts at page 4 with a 4-byte header
#   CB 01 LEN_HI LEN_LO   then LEN credential bytes, zero padded to a page.
#   Capacity: NTAG213 144 - 4 = 140 B, NTAG215 504 - 4 = 500 B, NTAG216 888 - 4 = 884 B.
# Optional password (PWD_AUTH), diversified per card from a 16-byte AES master key M:
#   T = AES-CMAC(M, 03 || "CBCC-NTAG" || UID);  PWD = T[0:4], PACK = T[4:6]
# Provisioning with a password sets AUTH0 = 4 (protection from the first user page) and
# PROT = 0 (writes need the password) or 1 (reads too). The reader checks that the PACK the tag
# returns matches. None of this stops a clone (an NTAG has no secret the reader can challenge),
# so the reader reports NTAG reads as "no anti-clone".
import aes
import iso14443a
import rferror
from rferror import CardError

MAGIC = 0xCB
VERSION = 0x01
HEADER = 4
FIRST_PAGE = 4
MAX_CREDENTIAL = 1024
CMD_GET_VERSION = 0x60
CMD_FAST_READ = 0x3A
CMD_WRITE = 0xA2
CMD_PWD_AUTH = 0x1B
CMD_READ_SIG = 0x3C
FAST_READ_PAGES = 15          # 60 bytes + CRC fit the 64-byte FIFO
T_READ_US = 5000
T_WRITE_US = 10000

# storage-size byte of GET_VERSION -> (model, user bytes, first configuration page)
MODELS = {
    0x0F: (213, 144, 0x29),
    0x11: (215, 504, 0x83),
    0x13: (216, 888, 0xE3),
}


class Tag:
    def __init__(self, model, user_bytes, cfg_page, version):
        self.model = model
        self.user_bytes = user_bytes
        self.cfg_page = cfg_page
        self.version = version

    def last_user_page(self):
        return FIRST_PAGE + self.user_bytes // 4 - 1


def password(master, uid):
    """(PWD, PACK) for a card, from the AES master key."""
    if len(master) != 16:
        raise CardError(rferror.AUTH, "NTAG master key must be 16 bytes")
    t = aes.cmac(bytes(master), b"\x03CBCC-NTAG" + bytes(uid))
    return t[:4], t[4:6]


def get_version(chip):
    """GET_VERSION: identify an NTAG21x. Raises UNSUPPORTED for other type 2 tags."""
    chip.set_crc(True, True)
    try:
        v = chip.transceive(bytes((CMD_GET_VERSION,)), T_READ_US)
    except CardError as e:
        if e.reason == rferror.STATUS:
            raise CardError(rferror.UNSUPPORTED, "type 2 tag without GET_VERSION")
        raise
    if len(v) != 8 or v[1] != 0x04 or v[2] != 0x04:
        raise CardError(rferror.UNSUPPORTED, "not an NXP NTAG")
    m = MODELS.get(v[6])
    if m is None:
        raise CardError(rferror.UNSUPPORTED, "NTAG storage size %02x" % v[6])
    return Tag(m[0], m[1], m[2], v)


def read_pages(chip, start, count):
    """count pages from start with FAST_READ (split to fit the FIFO)."""
    chip.set_crc(True, True)
    out = bytearray()
    page = start
    end = start + count
    while page < end:
        n = min(FAST_READ_PAGES, end - page)
        rx = chip.transceive(bytes((CMD_FAST_READ, page, page + n - 1)), T_READ_US)
        if len(rx) != 4 * n:
            raise CardError(rferror.PROTOCOL, "FAST_READ answered %d bytes" % len(rx))
        out += rx
        page += n
    return bytes(out)


def read4(chip, page):
    """READ: 16 bytes (four pages) from page."""
    return iso14443a.mifare_read(chip, page, T_READ_US)


def write_page(chip, page, data):
    if len(data) != 4:
        raise CardError(rferror.PROTOCOL, "a page is 4 bytes")
    chip.set_crc(True, False)
    rx = chip.transceive(bytes((CMD_WRITE, page)) + bytes(data), T_WRITE_US)
    if rx != b"\x0a":
        raise CardError(rferror.STATUS, "WRITE not acknowledged")


def pwd_auth(chip, pwd, pack=None):
    chip.set_crc(True, True)
    try:
        rx = chip.transceive(bytes((CMD_PWD_AUTH,)) + bytes(pwd), T_READ_US)
    except CardError as e:
        if e.reason == rferror.STATUS:
            raise CardError(rferror.AUTH, "PWD_AUTH refused")
        raise
    if len(rx) != 2:
        raise CardError(rferror.PROTOCOL, "PACK of %d bytes" % len(rx))
    if pack is not None and rx != pack:
        raise CardError(rferror.AUTH, "PACK mismatch")
    return rx


def read_credential(chip, uid, master=None, max_len=MAX_CREDENTIAL, tag=None):
    """Read the credential from a selected NTAG. With master, authenticate with the diversified
    password first (and check PACK). Returns (credential, tag)."""
    if tag is None:
        tag = get_version(chip)
    if master is not None:
        pwd, pack = password(master, uid)
        pwd_auth(chip, pwd, pack)
    cap = tag.user_bytes - HEADER
    first = read_pages(chip, FIRST_PAGE, min(FAST_READ_PAGES, tag.user_bytes // 4))
    if first[0] != MAGIC or first[1] != VERSION:
        raise CardError(rferror.UNSUPPORTED, "no credential header")
    n = (first[2] << 8) | first[3]
    if n == 0 or n > max_len or n > cap:
        raise CardError(rferror.TOO_LONG, "credential length %d" % n)
    total_pages = (HEADER + n + 3) // 4
    have = len(first) // 4
    data = first
    if total_pages > have:
        data = first + read_pages(chip, FIRST_PAGE + have, total_pages - have)
    return bytes(data[HEADER:HEADER + n]), tag


def provision(chip, uid, credential, master=None, protect_reads=False, tag=None, old_master=None):
    """Write the credential (and, with master, the diversified password and protection).
    old_master: the master whose password the tag already holds (re-provisioning)."""
    if tag is None:
        tag = get_version(chip)
    if old_master is not None:
        pwd, pack = password(old_master, uid)
        pwd_auth(chip, pwd, pack)
    n = len(credential)
    if n == 0 or n > MAX_CREDENTIAL or n > tag.user_bytes - HEADER:
        raise CardError(rferror.TOO_LONG, "credential of %d bytes" % n)
    blob = bytes((MAGIC, VERSION, n >> 8, n & 0xFF)) + bytes(credential)
    blob += bytes(-len(blob) % 4)
    for i in range(len(blob) // 4):
        write_page(chip, FIRST_PAGE + i, blob[4 * i:4 * i + 4])
    if master is not None:
        pwd, pack = password(master, uid)
        cfg = read4(chip, tag.cfg_page)            # CFG0, CFG1, PWD (reads 0), PACK
        write_page(chip, tag.cfg_page + 2, pwd)
        write_page(chip, tag.cfg_page + 3, pack + b"\x00\x00")
        access = (cfg[4] & 0x7F) | (0x80 if protect_reads else 0)
        write_page(chip, tag.cfg_page + 1, bytes((access,)) + cfg[5:8])
        write_page(chip, tag.cfg_page, cfg[0:3] + bytes((FIRST_PAGE,)))   # AUTH0 last
    return tag
