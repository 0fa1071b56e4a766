"""A tiny register-level MFRC522 client used by the simulator's own tests (NOT the reader's
driver): it talks to sim.Rig through rig.spi / rig.cs exactly as the data sheet describes, with
no knowledge of the simulator's internals. It is plain MicroPython-compatible code, so
test_sim_micropython.py runs the same helper under the unix port by prepending this file.
"""

import sim

CommandReg = 0x01
ComIEnReg = 0x02
DivIEnReg = 0x03
ComIrqReg = 0x04
DivIrqReg = 0x05
ErrorReg = 0x06
Status1Reg = 0x07
Status2Reg = 0x08
FIFODataReg = 0x09
FIFOLevelReg = 0x0A
WaterLevelReg = 0x0B
ControlReg = 0x0C
BitFramingReg = 0x0D
CollReg = 0x0E
ModeReg = 0x11
TxModeReg = 0x12
RxModeReg = 0x13
TxControlReg = 0x14
TxASKReg = 0x15
CRCResultRegH = 0x21
CRCResultRegL = 0x22
TModeReg = 0x2A
TPrescalerReg = 0x2B
TReloadRegH = 0x2C
TReloadRegL = 0x2D
TCounterValRegH = 0x2E
TCounterValRegL = 0x2F
AutoTestReg = 0x36
VersionReg = 0x37

IDLE = 0x00
MEM = 0x01
CALC_CRC = 0x03
TRANSMIT = 0x04
RECEIVE = 0x08
TRANSCEIVE = 0x0C
MF_AUTHENT = 0x0E
SOFT_RESET = 0x0F


def crc_a(data):
    crc = 0x6363
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


class Rx:
    def __init__(self, status, data=b"", last_bits=0, error=0, coll=0, irq=0):
        self.status = status        # "ok", "timeout", "error"
        self.data = data
        self.last_bits = last_bits
        self.error = error
        self.coll = coll
        self.irq = irq

    def __repr__(self):
        return "Rx(" + self.status + ", " + self.data.hex() + ", last_bits=" + str(self.last_bits) + \
            ", err=" + hex(self.error) + ", coll=" + hex(self.coll) + ")"


class Pcd:
    def __init__(self, rig):
        self.rig = rig
        self.spi = rig.spi
        self.cs = rig.cs
        self.hw_crc = False     # True: TxCRCEn/RxCRCEn (mandatory above 106 kbit/s)

    # ---- SPI framing (data sheet 8.1.2) ----
    def wr(self, reg, value):
        self.cs(0)
        self.spi.write(bytes(((reg << 1) & 0x7E, value & 0xFF)))
        self.cs(1)

    def wr_fifo(self, data):
        self.cs(0)
        self.spi.write(bytes(((FIFODataReg << 1) & 0x7E,)) + bytes(data))
        self.cs(1)

    def rd(self, reg):
        self.cs(0)
        buf = bytearray(2)
        self.spi.write_readinto(bytes((0x80 | ((reg << 1) & 0x7E), 0x00)), buf)
        self.cs(1)
        return buf[1]

    def rd_fifo(self, n):
        if n == 0:
            return b""
        addr = 0x80 | (FIFODataReg << 1)
        out = bytes([addr] * n + [0x00])
        buf = bytearray(len(out))
        self.cs(0)
        self.spi.write_readinto(out, buf)
        self.cs(1)
        return bytes(buf[1:])

    def set_bits(self, reg, mask):
        self.wr(reg, self.rd(reg) | mask)

    def clear_bits(self, reg, mask):
        self.wr(reg, self.rd(reg) & ~mask & 0xFF)

    # ---- setup ----
    def init(self, timeout_ms=25):
        self.wr(CommandReg, SOFT_RESET)
        n = 0
        while self.rd(CommandReg) & 0x10 and n < 100:
            n += 1
        self.set_timeout_ms(timeout_ms)
        self.wr(TxASKReg, 0x40)
        self.wr(ModeReg, 0x3D)
        self.antenna(True)

    def set_timeout_ms(self, ms):
        # f_timer = 13.56 MHz / (2 * 169 + 1) = 40 kHz: 25 us per tick; TAuto on.
        ticks = int(ms * 40) - 1
        self.wr(TModeReg, 0x80)
        self.wr(TPrescalerReg, 0xA9)
        self.wr(TReloadRegH, (ticks >> 8) & 0xFF)
        self.wr(TReloadRegL, ticks & 0xFF)

    def antenna(self, on):
        if on:
            self.set_bits(TxControlReg, 0x03)
        else:
            self.clear_bits(TxControlReg, 0x03)

    def speed(self, code, crc):
        v = (code << 4) | (0x80 if crc else 0)
        self.wr(TxModeReg, v)
        self.wr(RxModeReg, v)
        self.hw_crc = crc

    # ---- data exchange ----
    def transceive(self, data, tx_last=0, rx_align=0, max_polls=20000):
        self.wr(CommandReg, IDLE)
        self.wr(ComIrqReg, 0x7F)
        self.wr(FIFOLevelReg, 0x80)
        self.wr_fifo(data)
        self.wr(BitFramingReg, (rx_align << 4) | tx_last)
        self.wr(CommandReg, TRANSCEIVE)
        self.wr(BitFramingReg, 0x80 | (rx_align << 4) | tx_last)
        irq = 0
        polls = 0
        while polls < max_polls:
            irq = self.rd(ComIrqReg)
            if irq & 0x30 or irq & 0x01:
                break
            polls += 1
        self.clear_bits(BitFramingReg, 0x80)
        if not irq & 0x30:
            return Rx("timeout", irq=irq)
        err = self.rd(ErrorReg)
        n = self.rd(FIFOLevelReg)
        got = self.rd_fifo(n)
        last = self.rd(ControlReg) & 0x07
        coll = self.rd(CollReg)
        status = "error" if err & 0x1F else "ok"
        return Rx(status, got, last, err, coll, irq)

    def calc_crc(self, data):
        self.wr(CommandReg, IDLE)
        self.wr(DivIrqReg, 0x04)
        self.wr(FIFOLevelReg, 0x80)
        self.wr_fifo(data)
        self.wr(CommandReg, CALC_CRC)
        n = 0
        while not self.rd(DivIrqReg) & 0x04 and n < 1000:
            n += 1
        self.wr(CommandReg, IDLE)
        return bytes((self.rd(CRCResultRegL), self.rd(CRCResultRegH)))

    # ---- ISO/IEC 14443-3 ----
    def reqa(self, wake=False):
        self.wr(CollReg, 0x80)
        return self.transceive(bytes((0x52 if wake else 0x26,)), tx_last=7)

    def hlta(self):
        return self.transceive(b"\x50\x00" + crc_a(b"\x50\x00"))

    def select(self, max_levels=3):
        """Full anticollision + select; with several cards it follows the 1-branch at each
        collision. Returns (uid bytes, sak) or (None, rx) on failure."""
        uid = b""
        self.wr(CollReg, 0x00)   # ValuesAfterColl = 0
        for level in range(max_levels):
            sel = (0x93, 0x95, 0x97)[level]
            known = bytearray(5)
            known_bits = 0
            for _ in range(40):
                nbytes = known_bits // 8
                nbits = known_bits % 8
                partial = bytes(known[:nbytes + (1 if nbits else 0)])
                frame = bytes((sel, 0x20 + (nbytes << 4) + nbits)) + partial
                rx = self.transceive(frame, tx_last=nbits, rx_align=nbits)
                if rx.status == "timeout":
                    return None, rx
                # merge the received bits after the known ones
                got = rx.data
                for i in range(len(got)):
                    b = got[i]
                    if i == 0 and nbits:
                        b &= (0xFF << nbits) & 0xFF
                    known[nbytes + i] |= b
                if rx.error & 0x08:
                    pos = rx.coll & 0x1F
                    if rx.coll & 0x20:
                        return None, rx
                    if pos == 0:
                        pos = 32
                    # CollPos counts from the first bit of the first FIFO byte (RxAlign included)
                    coll_bit = nbytes * 8 + pos - 1
                    known[coll_bit // 8] |= 1 << (coll_bit % 8)
                    for j in range(coll_bit + 1, 40):
                        known[j // 8] &= ~(1 << (j % 8)) & 0xFF
                    known_bits = coll_bit + 1
                    continue
                break
            cl = bytes(known)
            if cl[0] ^ cl[1] ^ cl[2] ^ cl[3] != cl[4]:
                return None, "bcc"
            frame = bytes((sel, 0x70)) + cl
            rx = self.send_crc(frame)
            if rx.status != "ok" or len(rx.data) != 1:
                return None, rx
            sak = rx.data[0]
            if sak & 0x04:
                uid += cl[1:4]
            else:
                uid += cl[0:4]
                return uid, sak
        return None, "levels"

    def send_crc(self, payload):
        """A frame protected by CRC_A (by the chip when hw_crc, else by this helper); the answer
        comes back without its CRC, status "crc" when the CRC was wrong."""
        if self.hw_crc:
            return self.transceive(bytes(payload))
        rx = self.transceive(bytes(payload) + crc_a(payload))
        if rx.status == "ok":
            if len(rx.data) < 3 or crc_a(rx.data[:-2]) != rx.data[-2:]:
                rx.status = "crc"
            else:
                rx.data = rx.data[:-2]
        return rx

    def rats(self, fsdi=5, cid=0):
        rx = self.send_crc(bytes((0xE0, (fsdi << 4) | cid)))
        if rx.status == "ok":
            ats = rx.data
            if len(ats) > 1 and ats[1] & 0x20:          # TB present: honour SFGT
                pos = 2 + (1 if ats[1] & 0x10 else 0)
                sfgi = ats[pos] & 0x0F
                if sfgi:
                    self.rig.time.sleep_us(302.1 * (1 << sfgi) + 10)
        return rx


class IsoDep:
    """ISO-DEP reader side, just enough to drive the card tests: block numbers, chaining both
    ways, S(WTX)."""

    def __init__(self, pcd, fsc=64, fsd=64):
        self.pcd = pcd
        self.bn = 0
        self.fsc = fsc
        self.fsd = fsd
        self.wtx_seen = 0
        self.log = []

    def _xfer(self, frame):
        rx = self.pcd.send_crc(frame)
        self.log.append((bytes(frame), rx))
        if rx.status != "ok" or not rx.data:
            return None
        return rx.data

    def exchange(self, apdu):
        room = self.fsc - 3
        rest = bytes(apdu)
        while len(rest) > room:
            blk = self._xfer(bytes((0x12 | self.bn,)) + rest[:room])
            if blk is None or (blk[0] & 0xF6) != 0xA2:
                raise OSError("chaining to card failed: " + repr(blk))
            self.bn ^= 1
            rest = rest[room:]
        blk = self._xfer(bytes((0x02 | self.bn,)) + rest)
        out = b""
        while True:
            if blk is None:
                raise OSError("no answer")
            pcb = blk[0]
            if (pcb & 0xF7) == 0xF2:           # S(WTX) request
                self.wtx_seen += 1
                blk = self._xfer(bytes((0xF2, blk[1])))
                continue
            if (pcb & 0xE2) != 0x02:
                raise OSError("unexpected block " + blk.hex())
            out += blk[1:]
            self.bn ^= 1
            if pcb & 0x10:
                blk = self._xfer(bytes((0xA2 | self.bn,)))
                continue
            return out


class Desfire:
    """Native DESFire command framing with AF continuation, over IsoDep."""

    def __init__(self, dep, iso_wrap=False):
        self.dep = dep
        self.iso_wrap = iso_wrap
        self.frames = 0

    def send(self, cmd, data=b""):
        if self.iso_wrap:
            apdu = bytes((0x90, cmd, 0, 0))
            if data:
                apdu += bytes((len(data),)) + bytes(data)
            apdu += b"\x00"
            r = self.dep.exchange(apdu)
            return r[-1], r[:-2]
        r = self.dep.exchange(bytes((cmd,)) + bytes(data))
        return r[0], r[1:]

    def cmd(self, cmd, data=b""):
        status, out = self.send(cmd, data)
        self.frames = 1
        while status == 0xAF:
            s2, more = self.send(0xAF)
            self.frames += 1
            out += more
            status = s2
        return status, out


def activate(rig, fsdi=5):
    """REQA, select, RATS; returns (pcd, uid, ats)."""
    pcd = Pcd(rig)
    pcd.init(timeout_ms=100)
    rx = pcd.reqa()
    assert rx.status == "ok", rx
    uid, sak = pcd.select()
    assert uid is not None, sak
    ats = pcd.rats(fsdi)
    assert ats.status == "ok", ats
    return pcd, uid, ats.data


def test_helper_talks_to_the_chip():
    rig = sim.Rig(seed=1)
    pcd = Pcd(rig)
    assert pcd.rd(VersionReg) == 0x92
    pcd.wr(WaterLevelReg, 0x15)
    assert pcd.rd(WaterLevelReg) == 0x15
