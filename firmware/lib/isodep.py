# ISO/IEC 14443-4 (ISO-DEP), PCD side, type A: RATS/ATS, PPS, the half-duplex block protocol
# (I-blocks with block-number toggling, chaining in both directions, R(ACK)/R(NAK) with the
# retransmission rules for the PCD, S(WTX), S(DESELECT)) and timeouts from FWT programmed into
# the MFRC522 timer. A caller that knows how long the answer will be passes it as a timing
# hint (exchange(data, expect)): the driver then sleeps until the end of each answer frame
# instead of polling the chip every few bytes.
#
# The MFRC522 FIFO holds 64 bytes, so the reader announces FSD = 64 (FSDI 5) in RATS and never
# sends a frame longer than min(FSC, 64). The hardware CRC is on for the whole ISO-DEP session.
# No CID and no NAD are used (the PCD may omit CID when the card was given CID 0 in RATS).
#
# Every loop is bounded: retransmissions per block, frames per exchange, WTX count and total
# waiting time, reassembled response length. A card that breaks the protocol ends the exchange
# with a CardError; the session is then unusable and the card should be deselected / halted.
import rferror
from rferror import CardError

FC_HZ = 13560000
FS_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)   # FSDI/FSCI 0..8 -> frame size in bytes
FIFO_SIZE = 64

PCB_I = 0x02
PCB_CHAIN = 0x10
PCB_R_ACK = 0xA2
PCB_R_NAK = 0xB2
PCB_S_DESELECT = 0xC2
PCB_S_WTX = 0xF2

# One-byte PCBs, indexed by block number (I-blocks: + 2 when chaining).
_I = (b"\x02", b"\x03", b"\x12", b"\x13")
_R_ACK = (b"\xa2", b"\xa3")
# The FIFO write address of the MFRC522 (FIFODataReg << 1) with the I-block PCB: the one-frame
# path hands the driver the whole SPI buffer (transceive_raw(..., pre=1)).
_FI = (b"\x12\x02", b"\x12\x03")
_R_NAK = (b"\xb2", b"\xb3")

# Keys under which the driver learns the card's answer delay (mfrc522 transceive_raw `learn`)
# for RATS and PPS; I-blocks use INS | APDU length << 8 (>= 0x100).
_LEARN_ATS = 0xE0
_LEARN_PPS = 0xD0

DEFAULT_FWI = 4
FWI_MAX = 14
# ISO/IEC 14443-4: FWT_ACTIVATION = 71680/fc (the time a PICC has to send its ATS) and the
# additional PCD tolerance delta-FWT = 49152/fc.
FWT_ACTIVATION_US = 71680 * 1000000 // FC_HZ + 1
DELTA_FWT_US = 49152 * 1000000 // FC_HZ + 1


def fwt_us(fwi):
    """FWT = 256 * 16 / fc * 2^FWI, in microseconds (rounded up)."""
    return ((4096 << fwi) * 1000000 + FC_HZ - 1) // FC_HZ


def sfgt_us(sfgi):
    """SFGT = 256 * 16 / fc * 2^SFGI; SFGI 0 means no extra guard time."""
    if sfgi == 0:
        return 0
    return ((4096 << sfgi) * 1000000 + FC_HZ - 1) // FC_HZ


def fsdi_for(fsd):
    """The largest FSDI whose frame size does not exceed fsd."""
    best = 0
    for i in range(len(FS_TABLE)):
        if FS_TABLE[i] <= fsd:
            best = i
    return best


_FSDI_FIFO = fsdi_for(FIFO_SIZE)
_FWT_DEFAULT = fwt_us(DEFAULT_FWI)


class Ats:
    """Parsed ATS. ds/dr are the divisors (1, 2, 4, 8) the PICC supports PICC->PCD and
    PCD->PICC; same_d when it requires the same divisor both ways."""

    def __init__(self):
        self.raw = b""
        self.fsci = 2
        self.fsc = 32
        self.ta = 0
        self.fwi = DEFAULT_FWI
        self.sfgi = 0
        self.cid = False
        self.nad = False
        self.hist = b""
        self.ds = (1,)  # type: tuple
        self.dr = (1,)  # type: tuple
        self.same_d = False


def parse_ats(ats):
    """Parse an ATS (CRC already removed). Raises CardError(PROTOCOL) for a malformed one."""
    n = len(ats)
    if n < 1:
        raise CardError(rferror.PROTOCOL, "empty ATS")
    tl = ats[0]
    if tl != n:
        raise CardError(rferror.PROTOCOL, "ATS length byte %d, %d bytes received" % (tl, n))
    a = Ats()
    a.raw = bytes(ats)
    if tl == 1:
        return a
    t0 = ats[1]
    if t0 & 0x80:
        raise CardError(rferror.PROTOCOL, "ATS T0 bit 8 set")
    i = 2
    if t0 & 0x10:
        if i >= n:
            raise CardError(rferror.PROTOCOL, "ATS shorter than T0 announces")
        a.ta = ats[i]
        i += 1
    if t0 & 0x20:
        if i >= n:
            raise CardError(rferror.PROTOCOL, "ATS shorter than T0 announces")
        tb = ats[i]
        i += 1
        fwi = tb >> 4
        a.fwi = DEFAULT_FWI if fwi == 15 else fwi      # FWI 15 is RFU: read as the default
        sfgi = tb & 0x0F
        a.sfgi = 0 if sfgi == 15 else sfgi
    if t0 & 0x40:
        if i >= n:
            raise CardError(rferror.PROTOCOL, "ATS shorter than T0 announces")
        tc = ats[i]
        i += 1
        a.nad = bool(tc & 0x01)
        a.cid = bool(tc & 0x02)
    a.hist = bytes(ats[i:])
    fsci = t0 & 0x0F
    a.fsci = fsci
    a.fsc = FS_TABLE[fsci] if fsci < len(FS_TABLE) else 256   # RFU values read as 256
    ta = a.ta
    if ta & 0x08:
        ta = 0          # b4 = 1 is RFU: only 106 kbit/s
    ds = [1]
    dr = [1]
    if ta & 0x10:
        ds.append(2)
    if ta & 0x20:
        ds.append(4)
    if ta & 0x40:
        ds.append(8)
    if ta & 0x01:
        dr.append(2)
    if ta & 0x02:
        dr.append(4)
    if ta & 0x04:
        dr.append(8)
    a.ds = tuple(ds)
    a.dr = tuple(dr)
    a.same_d = bool(ta & 0x80)
    return a


_DI = {1: 0, 2: 1, 4: 2, 8: 3}


def choose_divisors(ats, max_kbps):
    """(ds, dr) to ask for in PPS, or None to stay at 106 kbit/s. ds: PICC->PCD, dr: PCD->PICC."""
    cap = max_kbps // 106
    ds = [d for d in ats.ds if d <= cap]
    dr = [d for d in ats.dr if d <= cap]
    if ats.same_d:
        both = [d for d in ds if d in dr]
        d = max(both) if both else 1
        pick = (d, d)
    else:
        pick = (max(ds) if ds else 1, max(dr) if dr else 1)
    if pick == (1, 1):
        return None
    return pick


def pps_frame(ds, dr, cid=0):
    """PPSS, PPS0 (PPS1 follows), PPS1 = DSI << 2 | DRI."""
    return bytes((0xD0 | cid, 0x11, (_DI[ds] << 2) | _DI[dr]))


class IsoDep:
    """An ISO-DEP session with one activated (selected) type A card.

    exchange(data) sends one command (any length, chained as needed) and returns the whole
    reassembled response. Parameters bound everything a card could stretch."""

    takes_expect = True     # exchange(data, expect): callers may pass a response-length hint

    def __init__(self, chip, fsd=FIFO_SIZE, max_response=2048, max_kbps=848, retries=2,
                 max_wtx=16, max_wtx_wait_ms=3000):
        self.chip = chip
        # the driver's transceive in one call layer where it offers that (mfrc522.MFRC522)
        self._raw = chip.transceive_raw if getattr(chip, "raw_checks", False) else None
        # the driver whose idle slot runs work while an answer is awaited (mfrc522.MFRC522)
        self.idle_chip = chip if hasattr(chip, "idle") else None
        self._same = None
        self._same_buf = (b"", b"")
        self._same_key = 0
        self._pick = None               # (bit-rate cap, choose_divisors() for self.ats)
        if fsd >= FIFO_SIZE:
            self.fsdi = _FSDI_FIFO
            self.fsd = FIFO_SIZE
        else:
            self.fsdi = fsdi_for(fsd)
            self.fsd = FS_TABLE[self.fsdi]
        self.max_response = max_response
        self.max_kbps = max_kbps
        self.retries = retries
        self.max_wtx = max_wtx
        self.max_wtx_wait_us = max_wtx_wait_ms * 1000
        self.block = 0
        self.ats = None
        self.fwt_base = _FWT_DEFAULT
        self.fwt = _FWT_DEFAULT + DELTA_FWT_US
        self.fsc = 32
        self.kbps = (106, 106)
        self.active = False
        # statistics of the last exchange (for tests and benchmarks)
        self.stats_frames = 0
        self.stats_wtx = 0
        self.stats_retx = 0

    # ---- activation ------------------------------------------------------------------------

    def activate(self, max_kbps=None):
        """RATS -> ATS, then PPS when both sides allow a higher bit rate. Returns the Ats."""
        chip = self.chip
        chip.set_crc(True, True)
        self.kbps = (106, 106)
        rats = bytes((0xE0, self.fsdi << 4))
        rx = b""
        # The same ATS as the last card's (the usual case: one card model in use) keeps its
        # parsed form and bit-rate choice, and its length is the timing hint (with the answer
        # delay the driver learnt for RATS, the first look at the chip finds the ATS complete).
        prev = self.ats
        hint = 1 if prev is None else len(prev.raw)                 # TL at least
        for attempt in range(2):
            try:
                rx = chip.transceive(rats, FWT_ACTIVATION_US + DELTA_FWT_US, 0, hint, _LEARN_ATS)
                break
            except CardError as e:
                if attempt or e.reason not in (rferror.CRC, rferror.TIMEOUT):
                    raise
        if prev is not None and rx == prev.raw:
            ats = prev
        else:
            ats = parse_ats(rx)
            self._pick = None
        self.ats = ats
        self.fsc = min(ats.fsc, FIFO_SIZE)
        self.fwt_base = fwt_us(ats.fwi)
        self.fwt = self.fwt_base + DELTA_FWT_US
        self.block = 0
        self.active = True
        # SFGT counts from the end of the ATS; part of it has passed while the driver read it.
        chip.delay_us(sfgt_us(ats.sfgi) - chip.elapsed_us(chip.last_rx_us))
        cap = self.max_kbps if max_kbps is None else min(max_kbps, self.max_kbps)
        if self._pick is not None and self._pick[0] == cap:
            pick = self._pick[1]
        else:
            pick = choose_divisors(ats, cap)
            self._pick = (cap, pick)
        if pick is not None:
            self._pps(pick[0], pick[1])
        return ats

    def _pps(self, ds, dr):
        chip = self.chip
        rx = chip.transceive(pps_frame(ds, dr), max(self.fwt, FWT_ACTIVATION_US + DELTA_FWT_US), 0, 1,
                             _LEARN_PPS)
        if len(rx) != 1 or rx[0] != 0xD0:
            raise CardError(rferror.PROTOCOL, "PPS response")
        # the new divisors apply from the next frame on
        chip.set_bitrate(106 * dr, 106 * ds)
        self.kbps = (106 * dr, 106 * ds)

    # ---- block protocol --------------------------------------------------------------------

    def exchange(self, data, expect=0):
        """One command in, the full response out (ISO 14443-4 7.5.3 rules for the PCD).

        expect: the response length the caller expects (0 = unknown). It is only a timing hint
        for the driver (when to look for the end of each answer frame), never a check."""
        if not self.active:
            raise CardError(rferror.PROTOCOL, "ISO-DEP session not active")
        # The usual case, a command in one I-block answered by one unchained I-block, takes a
        # short path; anything else (chaining either way, WTX, an error or an invalid block) is
        # carried on by the general loop from the answer already in hand.
        n = len(data)
        if n > self.fsc - 3:
            return self._exchange(bytes(data), expect, None, None)
        blk = self.block
        hint = 0
        if expect:
            rmax = self.fsd - 3
            hint = (expect if expect < rmax else rmax) + 1          # PCB + INF
        try:
            if self._raw is not None:
                # the card's answer delay is learnt per command: INS and APDU length (an
                # additional frame carrying data is not one that fetches an answer's next part)
                if data is self._same:
                    # the same command object again (DESFire's additional-frame request):
                    # its two SPI buffers, one per block number, and its key are kept
                    buf = self._same_buf[blk]
                    key = self._same_key
                else:
                    buf = _FI[blk] + data
                    key = (n << 8 | data[1]) if n > 1 else n
                rx = self._raw(buf, self.fwt, 0, 0, hint, True, 1, key)
            else:
                rx = self.chip.transceive(_I[blk] + data, self.fwt, 0, hint)
        except CardError as e:
            if e.reason == rferror.CHIP or e.reason == rferror.NO_CARD:
                self.active = False
                raise
            return self._exchange(bytes(data), expect, None, e)
        if len(rx) and rx[0] == PCB_I | blk and len(rx) <= self.max_response + 1:
            self.block = blk ^ 1                                    # rule B
            self.stats_frames = 1
            self.stats_wtx = 0
            self.stats_retx = 0
            return bytes(memoryview(rx)[1:])
        return self._exchange(bytes(data), expect, rx, None)

    def keep(self, data):
        """A command the caller will send again and again (bytes): its frames are built once."""
        if data is not self._same:
            self._same = data
            self._same_buf = (_FI[0] + data, _FI[1] + data)
            n = len(data)
            self._same_key = (n << 8 | data[1]) if n > 1 else n

    def _exchange(self, data, expect, first_rx, first_error):
        """The general block protocol; first_rx / first_error: the outcome of the first I-block
        when exchange() already sent it (both None: nothing sent yet)."""
        chip = self.chip
        n = len(data)
        maxinf = self.fsc - 3                  # PCB + CRC_A
        fwt = self.fwt
        resp = bytearray()
        max_resp = self.max_response
        off = 0
        # The I-block in flight (for rule 6 retransmission), and whether PCD chaining is on.
        chunk_len = min(maxinf, n)
        chaining = chunk_len < n
        iblock = _I[self.block | (2 if chaining else 0)] + data[:chunk_len]
        send = iblock
        receiving = False                      # the PICC is chaining its answer to us
        errors = 0
        last_error = None
        wtx = 0
        wtx_wait = 0
        timeout = fwt
        frames = 0
        # Honest cards fill their chained blocks; one averaging under 16 bytes a block is cut off.
        frame_limit = ((n // maxinf + 2) + (max_resp // 16 + 2)) * (self.retries + 1) + self.max_wtx
        rmax = self.fsd - 3                    # INF bytes in one answer frame from the PICC
        self.stats_wtx = 0
        self.stats_retx = 0
        pending = first_rx is not None or first_error is not None
        while True:
            frames += 1
            if frames > frame_limit:
                self.active = False
                raise CardError(rferror.PROTOCOL, "exchange exceeded %d frames" % frame_limit)
            hint = 0
            if chaining and not receiving:
                hint = 1                                     # R(ACK) expected
            elif expect:
                left = expect - len(resp)
                if left > 0:
                    hint = (left if left < rmax else rmax) + 1   # PCB + INF
            if pending:
                pending = False
                rx = first_rx
                if first_error is not None:
                    last_error = first_error
            else:
                try:
                    rx = chip.transceive(send, timeout, 0, hint)
                except CardError as e:
                    rx = None
                    if e.reason == rferror.CHIP or e.reason == rferror.NO_CARD:
                        self.active = False
                        raise
                    last_error = e
            timeout = fwt
            invalid = rx is None or len(rx) == 0
            if not invalid:
                pcb = rx[0]
                if pcb & 0xE2 == 0x02 and not pcb & 0x0C:
                    # I-block (no CID, no NAD)
                    if (pcb & 1) != self.block or (chaining and not receiving):
                        invalid = True
                        last_error = CardError(rferror.PROTOCOL, "unexpected I-block %02x" % pcb)
                    else:
                        self.block ^= 1                          # rule B
                        if len(resp) + len(rx) - 1 > max_resp:
                            self.active = False
                            raise CardError(rferror.TOO_LONG, "response beyond %d bytes" % max_resp)
                        resp += rx[1:]
                        errors = 0
                        if pcb & PCB_CHAIN:
                            receiving = True                     # rule 2: acknowledge
                            send = _R_ACK[self.block]
                            continue
                        self.stats_frames = frames
                        return bytes(resp)
                elif pcb & 0xE6 == 0xA2 and len(rx) == 1:
                    # R-block; a PICC never sends R(NAK)
                    if pcb & 0x10 or receiving:
                        invalid = True
                        last_error = CardError(rferror.PROTOCOL, "unexpected R-block %02x" % pcb)
                    elif (pcb & 1) == self.block:
                        if not chaining:
                            invalid = True
                            last_error = CardError(rferror.PROTOCOL, "R(ACK) without chaining")
                        else:
                            # rule 7 (and rule B): chaining continues with the next block
                            self.block ^= 1
                            off += chunk_len
                            chunk_len = min(maxinf, n - off)
                            chaining = off + chunk_len < n
                            iblock = _I[self.block | (2 if chaining else 0)] + data[off:off + chunk_len]
                            send = iblock
                            errors = 0
                            continue
                    else:
                        # rule 6: the PICC did not get our last I-block: send it again
                        errors += 1
                        self.stats_retx += 1
                        if errors > self.retries:
                            self.active = False
                            raise CardError(rferror.PROTOCOL, "I-block not acknowledged")
                        send = iblock
                        continue
                elif pcb == PCB_S_WTX and len(rx) == 2:
                    wtxm = rx[1] & 0x3F
                    if wtxm == 0 or wtxm > 59:
                        self.active = False
                        raise CardError(rferror.PROTOCOL, "WTXM %d" % wtxm)
                    wtx += 1
                    self.stats_wtx = wtx
                    # FWT_temp = FWT * WTXM, never beyond FWT(14), for the next answer only
                    t = min(self.fwt_base * wtxm, fwt_us(FWI_MAX)) + DELTA_FWT_US
                    wtx_wait += t
                    if wtx > self.max_wtx or wtx_wait > self.max_wtx_wait_us:
                        self.active = False
                        raise CardError(rferror.TIMEOUT, "card keeps asking for more time (WTX)")
                    send = bytes((PCB_S_WTX, wtxm))              # rule 3: S-blocks in pairs
                    timeout = t
                    continue
                else:
                    invalid = True
                    last_error = CardError(rferror.PROTOCOL, "invalid block %02x" % pcb)
            # rule 4 / rule 5: an invalid block or a timeout
            errors += 1
            if errors > self.retries:
                self.active = False
                why = last_error
                if why is None:
                    why = CardError(rferror.PROTOCOL, "empty frame")
                if why.reason == rferror.TIMEOUT:
                    raise CardError(rferror.CARD_REMOVED, "no answer (card removed or mute)")
                raise CardError(why.reason, why.detail)
            if receiving:
                send = _R_ACK[self.block]
            else:
                send = _R_NAK[self.block]
            self.stats_retx += 1

    def deselect(self):
        """S(DESELECT): the card goes to HALT. Best effort (rule 8: one retransmission)."""
        chip = self.chip
        ok = False
        if self.active:
            for _ in range(2):
                try:
                    rx = chip.transceive(bytes((PCB_S_DESELECT,)), self.fwt)
                except CardError as e:
                    if e.reason == rferror.CHIP:
                        self.active = False
                        raise
                    continue
                if rx == bytes((PCB_S_DESELECT,)):
                    ok = True
                    break
        self.active = False
        chip.set_bitrate(106, 106)
        self.kbps = (106, 106)
        return ok
