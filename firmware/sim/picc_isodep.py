# Card side of ISO/IEC 14443-4 (ISO-DEP) for type A: RATS -> ATS (FSCI, FWI, SFGI, TA bit rates,
# CID), PPS, I-blocks with block numbers, chaining in both directions (the card honours the FSD
# the reader announced in RATS and the FSC it announced itself), R(ACK)/R(NAK) with
# re-transmission of the last block, S(WTX) requests and S(DESELECT). The application on top
# (DESFire) implements process_apdu().
from . import crc as crcmod
from . import timing
from .field import Response
from .picc14443a import HALT, PROTOCOL, Picc14443A

FS_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)


def fs_from_index(i):
    return FS_TABLE[i] if i < len(FS_TABLE) else 256


class IsoDepCard(Picc14443A):
    def __init__(self, uid, atqa, sak=0x20, fsci=5, fwi=8, sfgi=1, ta=0x77, cid_supported=True,
                 historical=b"\x80"):
        Picc14443A.__init__(self, uid, atqa, sak)
        self.fsci = fsci
        self.fwi = fwi
        self.sfgi = sfgi
        self.ta = ta
        self.cid_supported = cid_supported
        self.historical = bytes(historical)
        self.wtxm = 1
        self.wtx_delay_us = None
        self._wtx_left = 0
        self.blocks_received = 0
        self.l4_reset()

    # ---- configuration / faults ----------------------------------------------------------------
    def ats(self):
        tc = 0x02 if self.cid_supported else 0x00
        body = bytes([0x70 | (self.fsci & 0x0F), self.ta, ((self.fwi & 0x0F) << 4) |
                      (self.sfgi & 0x0F), tc]) + self.historical
        return bytes([len(body) + 1]) + body

    def fsc(self):
        return fs_from_index(self.fsci)

    def fwt_us(self):
        return timing.fwt_us(self.fwi)

    def wtx(self, n_requests, wtxm=1, delay_us=None):
        """Before answering the next command the card sends n_requests S(WTX) requests (WTXM
        wtxm), each after delay_us of modelled processing (default: half the FWT)."""
        self._wtx_left = n_requests
        self.wtxm = wtxm
        self.wtx_delay_us = delay_us

    # ---- state ------------------------------------------------------------------------------
    def l4_reset(self):
        self.cid = 0
        self.fsd = 16
        self.bn = 1
        self.last_block = None
        self._reply_cid = False
        self._rx_chain = b""
        self._tx_rest = b""
        self._pending = None
        self._pps_window = False

    def on_power_up(self):
        self.l4_reset()

    def on_halt(self):
        self.l4_reset()

    def deselected(self):
        pass

    # ---- ISO 14443-3 ACTIVE: RATS ---------------------------------------------------------------
    def handle_active(self, data, nbits):
        if nbits == 32 and data[0] == 0xE0 and crcmod.check_crc_a(data):
            param = data[1]
            cid = param & 0x0F
            if cid == 0x0F:
                return None
            self.l4_reset()
            self.fsd = fs_from_index(param >> 4)
            self.cid = cid
            self.state = PROTOCOL
            self._pps_window = True
            r = Response(crcmod.with_crc_a(self.ats()), card_us=timing.CARD_US["rats"])
            r.guard_us = timing.sfgt_us(self.sfgi)
            return r
        return Picc14443A.handle_active(self, data, nbits)

    # ---- ISO 14443-4 blocks ---------------------------------------------------------------------
    def _send(self, pcb, inf, card_us):
        frame = bytes([pcb | (0x08 if self._reply_cid else 0)])
        if self._reply_cid:
            frame += bytes([self.cid])
        frame += inf
        self.last_block = frame
        return Response(crcmod.with_crc_a(frame), card_us=card_us)

    def _resend(self):
        if self.last_block is None:
            return None
        return Response(crcmod.with_crc_a(self.last_block), card_us=timing.CARD_US["block"])

    def handle_protocol(self, data, nbits):
        if nbits % 8 or len(data) < 3 or not crcmod.check_crc_a(data):
            return None     # an erroneous frame: stay silent, keep receiving
        if len(data) > self.fsc():
            return None
        frame = data[:-2]
        pcb = frame[0]
        if (pcb & 0xF0) == 0xD0 and self._pps_window:
            return self._pps(frame)
        self._pps_window = False
        if pcb & 0x08:
            if len(frame) < 2 or (frame[1] & 0x0F) != self.cid or not self.cid_supported:
                return None
            self._reply_cid = True
            idx = 2
        else:
            if self.cid != 0:
                return None
            self._reply_cid = False
            idx = 1
        self.blocks_received += 1
        if (pcb & 0xE2) == 0x02:                    # I-block
            if pcb & 0x04:
                idx += 1                            # NAD: not used by this card
            return self._i_block(pcb, frame[idx:])
        if (pcb & 0xE6) == 0xA2:                    # R-block
            return self._r_block(pcb)
        if (pcb & 0xC7) == 0xC2:                    # S-block
            return self._s_block(pcb, frame[idx:])
        return None

    def _i_block(self, pcb, inf):
        self.bn ^= 1
        self._tx_rest = b""
        if pcb & 0x10:                              # the reader chains: acknowledge
            self._rx_chain += inf
            return self._send(0xA2 | self.bn, b"", timing.CARD_US["block"])
        apdu = self._rx_chain + inf
        self._rx_chain = b""
        if self._wtx_left > 0:
            self._pending = apdu
            return self._wtx_request()
        return self._answer(apdu)

    def _wtx_request(self):
        self._wtx_left -= 1
        delay = self.wtx_delay_us
        if delay is None:
            delay = self.fwt_us() / 2
        return self._send(0xF2, bytes([self.wtxm & 0x3F]), delay)

    def _answer(self, apdu):
        resp, card_us = self.process_apdu(apdu)
        self._tx_rest = bytes(resp)
        return self._next_chunk(card_us)

    def _max_inf(self):
        return self.fsd - 3 - (1 if self._reply_cid else 0)

    def _next_chunk(self, card_us):
        room = self._max_inf()
        chunk = self._tx_rest[:room]
        self._tx_rest = self._tx_rest[room:]
        pcb = 0x02 | self.bn
        if self._tx_rest:
            pcb |= 0x10
        return self._send(pcb, chunk, card_us)

    def _r_block(self, pcb):
        n = pcb & 0x01
        if pcb & 0x10:                              # R(NAK)
            if n == self.bn:
                return self._resend()
            return self._send(0xA2 | self.bn, b"", timing.CARD_US["block"])
        if n == self.bn:                            # R(ACK) for our own number: send it again
            return self._resend()
        if self._tx_rest:                           # continue chaining towards the reader
            self.bn ^= 1
            return self._next_chunk(timing.CARD_US["block"])
        return None

    def _s_block(self, pcb, inf):
        kind = pcb & 0x30
        if kind == 0x00:                            # S(DESELECT)
            r = self._send(0xC2, b"", timing.CARD_US["block"])
            self.state = HALT
            self.halted = True
            self.l4_reset()
            self.deselected()
            return r
        if kind == 0x30 and self._pending is not None:      # S(WTX) response
            if not inf or (inf[0] & 0x3F) != (self.wtxm & 0x3F):
                return None
            if self._wtx_left > 0:
                return self._wtx_request()
            apdu = self._pending
            self._pending = None
            return self._answer(apdu)
        return None

    def _pps(self, frame):
        if (frame[0] & 0x0F) != self.cid or len(frame) < 2:
            return None
        self._pps_window = False
        pps0 = frame[1]
        dsi = 0
        dri = 0
        if pps0 & 0x10:
            if len(frame) < 3:
                return None
            dsi = (frame[2] >> 2) & 0x03
            dri = frame[2] & 0x03
        ds_ok = dsi == 0 or self.ta & (0x08 << dsi)
        dr_ok = dri == 0 or self.ta & (0x01 << (dri - 1))
        if not ds_ok or not dr_ok or (self.ta & 0x80 and dsi != dri):
            return None
        r = Response(crcmod.with_crc_a(frame[0:1]), card_us=timing.CARD_US["pps"])
        self.tx_speed = dsi        # takes effect after this answer
        self.rx_speed = dri
        return r

    def process_apdu(self, apdu):
        """Application layer: returns (response bytes, processing time in us)."""
        return b"", timing.CARD_US["block"]
