# MIFARE Classic 1K/4K card model: memory as blocks and sectors (4K: 32 sectors of 4 blocks, then
# 8 of 16), sector trailers with keys A/B and access bits (C1 C2 C3 per block group, stored with
# their complements), authentication, READ and the two-step WRITE. Crypto1 is abstracted: the
# chip's MFAuthent hands the key to the card, which checks it against its sector trailer; frames
# afterwards are "enciphered" only in the sense that both ends must agree the session is on.
from . import crc as crcmod
from . import timing
from .field import Response
from .picc14443a import ACTIVE, READY, Picc14443A

ACK = 0x0A
NAK_NOT_ALLOWED = 0x04
NAK_TRANSMISSION = 0x05

TRANSPORT_TRAILER = b"\xff" * 6 + b"\xff\x07\x80\x69" + b"\xff" * 6


def _nibble_ok(b6, b7, b8):
    c1 = b7 >> 4
    c2 = b8 & 0x0F
    c3 = b8 >> 4
    return (b6 & 0x0F) == (~c1 & 0x0F) and (b6 >> 4) == (~c2 & 0x0F) and (b7 & 0x0F) == (~c3 & 0x0F)


def access_bytes(conditions):
    """Trailer bytes 6..8 for [(c1, c2, c3)] x 4 (block groups 0..2 and the trailer)."""
    c1 = c2 = c3 = 0
    for g in range(4):
        a, b, c = conditions[g]
        c1 |= a << g
        c2 |= b << g
        c3 |= c << g
    b6 = ((~c2 & 0x0F) << 4) | (~c1 & 0x0F)
    b7 = (c1 << 4) | (~c3 & 0x0F)
    b8 = (c3 << 4) | c2
    return bytes((b6, b7, b8))


class Classic(Picc14443A):
    def __init__(self, uid=bytes(4), size=1024):
        if size not in (1024, 4096):
            raise ValueError("size must be 1024 or 4096")
        uid = bytes(uid)
        if len(uid) == 4:
            atqa = b"\x04\x00" if size == 1024 else b"\x02\x00"
        else:
            atqa = b"\x44\x00" if size == 1024 else b"\x42\x00"
        sak = 0x08 if size == 1024 else 0x18
        Picc14443A.__init__(self, uid, atqa, sak)
        self.size = size
        self.n_blocks = 64 if size == 1024 else 256
        self.n_sectors = 16 if size == 1024 else 40
        self.blocks = [bytearray(16) for _ in range(self.n_blocks)]
        b0 = bytearray(16)
        if len(uid) == 4:
            b0[0:4] = uid
            b0[4] = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
            b0[5] = sak
            b0[6:8] = atqa
            b0[8:16] = b"\x62\x63\x64\x65\x66\x67\x68\x69"
        else:
            b0[0:7] = uid
            b0[7] = sak
            b0[8:10] = atqa
            b0[10:16] = b"\x1d\x49\x00\x00\x00\x00"
        self.blocks[0] = b0
        for s in range(self.n_sectors):
            self.blocks[self.trailer_block(s)] = bytearray(TRANSPORT_TRAILER)
        self._reset_session()

    # ---- layout -----------------------------------------------------------------------------
    def sector_of(self, block):
        if block < 128:
            return block // 4
        return 32 + (block - 128) // 16

    def first_block(self, sector):
        if sector < 32:
            return sector * 4
        return 128 + (sector - 32) * 16

    def trailer_block(self, sector):
        if sector < 32:
            return sector * 4 + 3
        return 128 + (sector - 32) * 16 + 15

    def _group(self, block):
        rel = block - self.first_block(self.sector_of(block))
        if self.sector_of(block) < 32:
            return rel
        return 3 if rel == 15 else rel // 5

    def conditions(self, block):
        """(C1, C2, C3) for the block, or None when the access bits are inconsistent (the sector
        is then blocked)."""
        t = self.blocks[self.trailer_block(self.sector_of(block))]
        if not _nibble_ok(t[6], t[7], t[8]):
            return None
        g = self._group(block)
        return ((t[7] >> (4 + g)) & 1, (t[8] >> g) & 1, (t[8] >> (4 + g)) & 1)

    def set_keys(self, sector, key_a=None, key_b=None, access=None):
        """Personalise a sector trailer directly (test convenience)."""
        t = self.blocks[self.trailer_block(sector)]
        if key_a is not None:
            t[0:6] = bytes(key_a)
        if access is not None:
            t[6:9] = bytes(access)
        if key_b is not None:
            t[10:16] = bytes(key_b)

    def write_block(self, block, data):
        self.blocks[block] = bytearray(bytes(data))

    # ---- session ----------------------------------------------------------------------------
    def _reset_session(self):
        self.auth_sector = None
        self.auth_key = None
        self._pending_write = None
        self._auth_req = None

    def on_power_up(self):
        self._reset_session()

    def on_halt(self):
        self._reset_session()

    def expects_crypto(self):
        return self.auth_sector is not None

    def _crypto_uid(self):
        uid = self.active_uid()
        return uid[0:4] if len(uid) == 4 else uid[-4:]

    def mf_auth_begin(self, auth_cmd, block, crypto_card, speed, t_start):
        if self.state not in (READY, ACTIVE) or self._muted or self._leaving:
            return False
        if speed != self.rx_speed or t_start < self.ready_at:
            return False
        self.frames_received += 1
        if self.state != ACTIVE or (crypto_card is self) != self.expects_crypto():
            self._to_idle()
            return False
        if block >= self.n_blocks:
            self._to_idle()
            return False
        self._auth_req = (auth_cmd, block)
        return True

    def mf_auth_finish(self, auth_cmd, block, key, uid4):
        self._auth_req = None
        t = self.blocks[self.trailer_block(self.sector_of(block))]
        stored = bytes(t[0:6]) if auth_cmd == 0x60 else bytes(t[10:16])
        if bytes(key) == stored and bytes(uid4) == self._crypto_uid():
            self.auth_sector = self.sector_of(block)
            self.auth_key = "A" if auth_cmd == 0x60 else "B"
            self._pending_write = None
            return True
        self._reset_session()
        self._to_idle()
        return False

    # ---- access rules (MIFARE Classic access conditions) --------------------------------------
    def _key_b_readable(self, sector):
        c = self.conditions(self.trailer_block(sector))
        return c in ((0, 0, 0), (0, 1, 0), (0, 0, 1))

    def _data_allowed(self, block, op):
        c = self.conditions(block)
        if c is None:
            return False
        key = self.auth_key
        if key == "B" and self._key_b_readable(self.sector_of(block)):
            return False
        if op == "read":
            if c in ((0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1)):
                return True
            return c in ((0, 1, 1), (1, 0, 1)) and key == "B"
        if c == (0, 0, 0):
            return True
        return c in ((1, 0, 0), (1, 1, 0), (0, 1, 1)) and key == "B"

    def _trailer_rights(self, sector):
        """(keyA write, access read, access write, keyB read, keyB write) for the current key."""
        c = self.conditions(self.trailer_block(sector))
        k = self.auth_key
        if c is None:
            return (False, False, False, False, False)
        a = k == "A"
        b = k == "B"
        table = {
            (0, 0, 0): (a, a, False, a, a),
            (0, 1, 0): (False, a, False, a, False),
            (1, 0, 0): (b, True, False, False, b),
            (1, 1, 0): (False, True, False, False, False),
            (0, 0, 1): (a, a, a, a, a),
            (0, 1, 1): (b, True, b, False, b),
            (1, 0, 1): (False, True, b, False, False),
            (1, 1, 1): (False, True, False, False, False),
        }
        rights = table[c]
        if b and self._key_b_readable(sector):
            return (False, False, False, False, False)
        return rights

    # ---- commands in ACTIVE state ------------------------------------------------------------
    def _nak(self, code):
        self._reset_session()
        self._to_idle()
        return Response(bytes([code]), nbits=4)

    def handle_active(self, data, nbits):
        if self.auth_sector is None:
            if nbits == 32 and data[0] in (0x60, 0x61) and crcmod.check_crc_a(data):
                # An authentication sent as a plain frame: the card answers its nonce, but only
                # the chip's MFAuthent can complete the exchange.
                self.auth_sector = None
                return Response(self.rng.bytes(4) if self.rng else b"\x01\x02\x03\x04")
            self._to_idle()
            return None
        if nbits % 8 or not crcmod.check_crc_a(data):
            return self._nak(NAK_TRANSMISSION)
        body = data[:-2]
        if self._pending_write is not None:
            block = self._pending_write
            self._pending_write = None
            if len(body) != 16:
                return self._nak(NAK_NOT_ALLOWED)
            self._store(block, body)
            return Response(bytes([ACK]), nbits=4, card_us=timing.CARD_US["classic_write"])
        cmd = body[0]
        if cmd == 0x30 and len(body) == 2:
            block = body[1]
            if block >= self.n_blocks or self.sector_of(block) != self.auth_sector:
                return self._nak(NAK_NOT_ALLOWED)
            content = self._read(block)
            if content is None:
                return self._nak(NAK_NOT_ALLOWED)
            return Response(crcmod.with_crc_a(content), card_us=timing.CARD_US["classic_read"])
        if cmd == 0xA0 and len(body) == 2:
            block = body[1]
            if block == 0 or block >= self.n_blocks or self.sector_of(block) != self.auth_sector:
                return self._nak(NAK_NOT_ALLOWED)
            if block == self.trailer_block(self.auth_sector):
                if not any(self._trailer_rights(self.auth_sector)):
                    return self._nak(NAK_NOT_ALLOWED)
            elif not self._data_allowed(block, "write"):
                return self._nak(NAK_NOT_ALLOWED)
            self._pending_write = block
            return Response(bytes([ACK]), nbits=4)
        return self._nak(NAK_NOT_ALLOWED)

    def _read(self, block):
        sector = self.sector_of(block)
        if block == self.trailer_block(sector):
            t = self.blocks[block]
            ka_w, acc_r, acc_w, kb_r, kb_w = self._trailer_rights(sector)
            out = bytearray(16)
            if acc_r:
                out[6:10] = t[6:10]
            if kb_r:
                out[10:16] = t[10:16]
            return bytes(out)
        if not self._data_allowed(block, "read"):
            return None
        return bytes(self.blocks[block])

    def _store(self, block, data):
        sector = self.sector_of(block)
        if block != self.trailer_block(sector):
            self.blocks[block] = bytearray(data)
            return
        t = self.blocks[block]
        ka_w, acc_r, acc_w, kb_r, kb_w = self._trailer_rights(sector)
        if ka_w:
            t[0:6] = data[0:6]
        if acc_w:
            t[6:10] = data[6:10]
        if kb_w:
            t[10:16] = data[10:16]
