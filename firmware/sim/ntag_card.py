# NTAG213/215/216 card model: 4-byte pages (UID and BCCs in pages 0-2, capability container in
# page 3, user memory, dynamic lock bytes, CFG0 with AUTH0, CFG1 with ACCESS (PROT, AUTHLIM),
# PWD and PACK), GET_VERSION, READ (4 pages, rolling over), FAST_READ, WRITE, COMPATIBILITY_WRITE,
# PWD_AUTH, READ_SIG. A NAK sends the tag back to IDLE (or HALT).
from . import crc as crcmod
from . import timing
from .field import Response
from .picc14443a import Picc14443A

ACK = 0x0A
NAK_INVALID = 0x00
NAK_CRC = 0x01
NAK_AUTH_LIMIT = 0x04

# model -> (pages, GET_VERSION storage byte, CC size byte)
MODELS = {213: (45, 0x0F, 0x12), 215: (135, 0x11, 0x3E), 216: (231, 0x13, 0x6D)}


class Ntag(Picc14443A):
    def __init__(self, model=213, uid=bytes(7)):
        if model not in MODELS:
            raise ValueError("model must be 213, 215 or 216")
        uid = bytes(uid)
        if len(uid) != 7:
            raise ValueError("NTAG21x UIDs are 7 bytes")
        Picc14443A.__init__(self, uid, b"\x44\x00", 0x00)
        self.model = model
        self.n_pages, self.storage, cc_size = MODELS[model]
        self.memory = bytearray(self.n_pages * 4)
        m = self.memory
        m[0:3] = uid[0:3]
        m[3] = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
        m[4:8] = uid[3:7]
        m[8] = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
        m[9] = 0x48
        m[12:16] = bytes((0xE1, 0x10, cc_size, 0x00))
        m[16:20] = b"\x03\x00\xfe\x00"          # empty NDEF message TLV, terminator
        self.dynlock_page = self.n_pages - 5
        self.cfg0_page = self.n_pages - 4
        self.cfg1_page = self.n_pages - 3
        self.pwd_page = self.n_pages - 2
        self.pack_page = self.n_pages - 1
        self._set_page(self.dynlock_page, b"\x00\x00\x00\xbd")
        self._set_page(self.cfg0_page, b"\x04\x00\x00\xff")
        self._set_page(self.cfg1_page, b"\x00\x05\x00\x00")
        self._set_page(self.pwd_page, b"\xff\xff\xff\xff")
        self._set_page(self.pack_page, b"\x00\x00\x00\x00")
        self.signature = bytes(32)
        self.authenticated = False
        self.auth_failures = 0
        self._compat = None

    # ---- memory helpers -----------------------------------------------------------------------
    def page(self, n):
        return bytes(self.memory[n * 4:n * 4 + 4])

    def _set_page(self, n, data):
        self.memory[n * 4:n * 4 + 4] = bytes(data)

    def write_user(self, data, start_page=4):
        """Personalise user memory directly (test convenience)."""
        self.memory[start_page * 4:start_page * 4 + len(data)] = bytes(data)

    def set_password(self, pwd, pack, auth0, prot=False, authlim=0):
        self._set_page(self.pwd_page, pwd)
        self._set_page(self.pack_page, bytes(pack) + b"\x00\x00")
        self.memory[self.cfg0_page * 4 + 3] = auth0
        access = (0x80 if prot else 0) | (authlim & 0x07)
        self.memory[self.cfg1_page * 4] = access

    def auth0(self):
        return self.memory[self.cfg0_page * 4 + 3]

    def _access(self):
        return self.memory[self.cfg1_page * 4]

    def _read_blocked(self, n):
        return n >= self.auth0() and (self._access() & 0x80) and not self.authenticated

    def _write_blocked(self, n):
        return n >= self.auth0() and not self.authenticated

    def _page_as_read(self, n):
        if n in (self.pwd_page, self.pack_page):
            return b"\x00\x00\x00\x00"
        return self.page(n)

    # ---- session ---------------------------------------------------------------------------
    def on_power_up(self):
        self.authenticated = False
        self._compat = None

    def on_halt(self):
        self.authenticated = False
        self._compat = None

    def _nak(self, code):
        self._compat = None
        self._to_idle()
        return Response(bytes([code]), nbits=4)

    def handle_active(self, data, nbits):
        if nbits % 8 or len(data) < 3 or not crcmod.check_crc_a(data):
            return self._nak(NAK_CRC)
        body = data[:-2]
        if self._compat is not None:
            page = self._compat
            self._compat = None
            if len(body) != 16:
                return self._nak(NAK_INVALID)
            return self._write(page, body[0:4])
        cmd = body[0]
        if cmd == 0x60 and len(body) == 1:
            v = bytes((0x00, 0x04, 0x04, 0x02, 0x01, 0x00, self.storage, 0x03))
            return Response(crcmod.with_crc_a(v))
        if cmd == 0x30 and len(body) == 2:
            start = body[1]
            if start >= self.n_pages:
                return self._nak(NAK_INVALID)
            pages = [(start + i) % self.n_pages for i in range(4)]
            return self._read_pages(pages)
        if cmd == 0x3A and len(body) == 3:
            start, end = body[1], body[2]
            if start > end or end >= self.n_pages:
                return self._nak(NAK_INVALID)
            return self._read_pages(list(range(start, end + 1)))
        if cmd == 0xA2 and len(body) == 6:
            return self._write(body[1], body[2:6])
        if cmd == 0xA0 and len(body) == 2:
            if body[1] < 2 or body[1] >= self.n_pages or self._write_blocked(body[1]):
                return self._nak(NAK_INVALID)
            self._compat = body[1]
            return Response(bytes([ACK]), nbits=4)
        if cmd == 0x1B and len(body) == 5:
            limit = self._access() & 0x07
            if limit and self.auth_failures >= (1 << limit):
                return self._nak(NAK_AUTH_LIMIT)
            if bytes(body[1:5]) == self.page(self.pwd_page):
                self.authenticated = True
                self.auth_failures = 0
                return Response(crcmod.with_crc_a(self.page(self.pack_page)[0:2]))
            self.auth_failures += 1
            return self._nak(NAK_INVALID)
        if cmd == 0x3C and len(body) == 2:
            return Response(crcmod.with_crc_a(self.signature))
        if cmd == 0x39 and len(body) == 2:
            return Response(crcmod.with_crc_a(b"\x00\x00\x00"))
        return self._nak(NAK_INVALID)

    def _read_pages(self, pages):
        for n in pages:
            if self._read_blocked(n):
                return self._nak(NAK_INVALID)
        out = b""
        for n in pages:
            out += self._page_as_read(n)
        return Response(crcmod.with_crc_a(out), card_us=timing.CARD_US["ntag_read"])

    def _write(self, page, data):
        if page < 2 or page >= self.n_pages or self._write_blocked(page):
            return self._nak(NAK_INVALID)
        if page == 2:
            cur = bytearray(self.page(2))
            cur[2] |= data[2]
            cur[3] |= data[3]
            self._set_page(2, cur)
        elif page == 3:
            cur = bytearray(self.page(3))
            for i in range(4):
                cur[i] |= data[i]
            self._set_page(3, cur)
        else:
            self._set_page(page, data)
        return Response(bytes([ACK]), nbits=4, card_us=timing.CARD_US["ntag_write"])
