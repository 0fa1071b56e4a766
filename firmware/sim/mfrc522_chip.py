# Register-level model of the NXP MFRC522 (data sheet rev. 3.9): SPI framing, the register file
# with its reset values, the 64-byte FIFO with level and water level, the command set (Idle, Mem,
# GenerateRandomID, CalcCRC incl. the digital self test, Transmit, NoCmdChange, Receive,
# Transceive, MFAuthent, SoftReset), bit-oriented framing, collision reporting, error and
# interrupt registers, the timer, the antenna drivers, TX/RX speeds and hardware CRC, soft and
# hard power-down. Time comes from the rig's Clock: chip events (end of a frame, a timer
# expiring) take effect when the modelled time reaches them.
from . import crc as crcmod
from . import timing

# ---- register addresses --------------------------------------------------------------------
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
TxSelReg = 0x16
RxSelReg = 0x17
RxThresholdReg = 0x18
DemodReg = 0x19
MfTxReg = 0x1C
MfRxReg = 0x1D
SerialSpeedReg = 0x1F
CRCResultRegH = 0x21
CRCResultRegL = 0x22
ModWidthReg = 0x24
RFCfgReg = 0x26
GsNReg = 0x27
CWGsPReg = 0x28
ModGsPReg = 0x29
TModeReg = 0x2A
TPrescalerReg = 0x2B
TReloadRegH = 0x2C
TReloadRegL = 0x2D
TCounterValRegH = 0x2E
TCounterValRegL = 0x2F
TestSel1Reg = 0x31
TestSel2Reg = 0x32
TestPinEnReg = 0x33
TestPinValueReg = 0x34
TestBusReg = 0x35
AutoTestReg = 0x36
VersionReg = 0x37
AnalogTestReg = 0x38
TestDAC1Reg = 0x39
TestDAC2Reg = 0x3A
TestADCReg = 0x3B

# Reset values (data sheet register overview; reserved registers as read from a real chip).
RESET_VALUES = (
    (CommandReg, 0x20), (ComIEnReg, 0x80), (DivIEnReg, 0x00), (ComIrqReg, 0x14),
    (DivIrqReg, 0x00), (ErrorReg, 0x00), (Status2Reg, 0x00), (WaterLevelReg, 0x08),
    (ControlReg, 0x10), (BitFramingReg, 0x00), (CollReg, 0xA0), (ModeReg, 0x3F),
    (TxModeReg, 0x00), (RxModeReg, 0x00), (TxControlReg, 0x80), (TxASKReg, 0x00),
    (TxSelReg, 0x10), (RxSelReg, 0x84), (RxThresholdReg, 0x84), (DemodReg, 0x4D),
    (MfTxReg, 0x62), (MfRxReg, 0x00), (SerialSpeedReg, 0xEB), (CRCResultRegH, 0xFF),
    (CRCResultRegL, 0xFF), (ModWidthReg, 0x26), (RFCfgReg, 0x48), (GsNReg, 0x88),
    (CWGsPReg, 0x20), (ModGsPReg, 0x20), (TModeReg, 0x00), (TPrescalerReg, 0x00),
    (TReloadRegH, 0x00), (TReloadRegL, 0x00), (TestSel1Reg, 0x00), (TestSel2Reg, 0x00),
    (TestPinEnReg, 0x80), (TestPinValueReg, 0x00), (AutoTestReg, 0x40), (AnalogTestReg, 0x00),
    (0x23, 0x88), (0x25, 0x87), (0x3C, 0xFF), (0x3E, 0x03),
)

# ---- commands ------------------------------------------------------------------------------
CMD_IDLE = 0x0
CMD_MEM = 0x1
CMD_GENERATE_RANDOM_ID = 0x2
CMD_CALC_CRC = 0x3
CMD_TRANSMIT = 0x4
CMD_NO_CMD_CHANGE = 0x7
CMD_RECEIVE = 0x8
CMD_TRANSCEIVE = 0xC
CMD_MF_AUTHENT = 0xE
CMD_SOFT_RESET = 0xF

# ComIrqReg / ComIEnReg bits
IRQ_TX = 0x40
IRQ_RX = 0x20
IRQ_IDLE = 0x10
IRQ_HIALERT = 0x08
IRQ_LOALERT = 0x04
IRQ_ERR = 0x02
IRQ_TIMER = 0x01
# DivIrqReg / DivIEnReg bits
DIV_MFIN_ACT = 0x10
DIV_CRC = 0x04
# ErrorReg bits
ERR_WR = 0x80
ERR_TEMP = 0x40
ERR_BUFFER_OVFL = 0x10
ERR_COLL = 0x08
ERR_CRC = 0x04
ERR_PARITY = 0x02
ERR_PROTOCOL = 0x01
RX_ERRORS = ERR_COLL | ERR_CRC | ERR_PARITY | ERR_PROTOCOL

FIFO_SIZE = 64
CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)

# Digital self test (data sheet section 16.1.1): FIFO contents after the test, per version.
SELFTEST_V1 = bytes((
    0x00, 0xC6, 0x37, 0xD5, 0x32, 0xB7, 0x57, 0x5C, 0xC2, 0xD8, 0x7C, 0x4D, 0xD9, 0x70, 0xC7, 0x73,
    0x10, 0xE6, 0xD2, 0xAA, 0x5E, 0xA1, 0x3E, 0x5A, 0x14, 0xAF, 0x30, 0x61, 0xC9, 0x70, 0xDB, 0x2E,
    0x64, 0x22, 0x72, 0xB5, 0xBD, 0x65, 0xF4, 0xEC, 0x22, 0xBC, 0xD3, 0x72, 0x35, 0xCD, 0xAA, 0x41,
    0x1F, 0xA7, 0xF3, 0x53, 0x14, 0xDE, 0x7E, 0x02, 0xD9, 0x0F, 0xB5, 0x5E, 0x25, 0x1D, 0x29, 0x79,
))
SELFTEST_V2 = bytes((
    0x00, 0xEB, 0x66, 0xBA, 0x57, 0xBF, 0x23, 0x95, 0xD0, 0xE3, 0x0D, 0x3D, 0x27, 0x89, 0x5C, 0xDE,
    0x9D, 0x3B, 0xA7, 0x00, 0x21, 0x5B, 0x89, 0x82, 0x51, 0x3A, 0xEB, 0x02, 0x0C, 0xA5, 0x00, 0x49,
    0x7C, 0x84, 0x4D, 0xB3, 0xCC, 0xD2, 0x1B, 0x81, 0x5D, 0x48, 0x76, 0xD5, 0x71, 0x61, 0x21, 0xA9,
    0x86, 0x96, 0x83, 0x38, 0xCF, 0x9D, 0x5B, 0x6D, 0xDC, 0x15, 0xBA, 0x3E, 0x7D, 0x95, 0x3B, 0x2F,
))

# Status2Reg ModemState values
MODEM_IDLE = 0
MODEM_WAIT_STARTSEND = 1
MODEM_TRANSMITTING = 3
MODEM_WAIT_DATA = 5
MODEM_RECEIVING = 6


def _bits_of(data, nbits):
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(nbits)]


def _pack(bits):
    out = bytearray((len(bits) + 7) // 8)
    for i in range(len(bits)):
        if bits[i]:
            out[i >> 3] |= 1 << (i & 7)
    return out


class RxPlan:
    """A frame the receiver will see: when it starts and ends, and what it leaves in the FIFO."""

    def __init__(self):
        self.start = 0.0
        self.end = 0.0
        self.out = b""          # bytes that will enter the FIFO (RxAlign applied, CRC removed)
        self.last_bits = 0      # ControlReg RxLastBits
        self.errors = 0         # ErrorReg bits
        self.coll = 0x20        # CollReg bits 5..0 (CollPosNotValid when no collision)
        self.speed = 0


class Chip:
    def __init__(self, clock, field, rng, version=0x92, bitrate_max=848):
        self.clock = clock
        self.field = field
        self.rng = rng
        self.version = version
        if bitrate_max not in timing.SPEED_KBPS:
            raise ValueError("bitrate_max must be one of 106, 212, 424, 848")
        self.max_speed = timing.SPEED_KBPS.index(bitrate_max)
        self.powered = True         # NRSTPD high
        self.hung = False
        self.hang_readback = None
        self.buf25 = bytearray(25)  # survives SoftReset and hard power-down
        self.warnings = []
        self.spi_selected = False
        self._reset_state()

    # ---- reset and power --------------------------------------------------------------------
    def _reset_state(self):
        self.regs = bytearray(64)
        for addr, value in RESET_VALUES:
            self.regs[addr] = value
        self.regs[VersionReg] = self.version
        self.fifo = []
        self.command = CMD_IDLE
        self.gen = 0                # bumps whenever the running command is cancelled
        self.events = []            # [time, seq, gen, kind, arg]
        self._seq = 0
        self.timer_running = False
        self.timer_start = 0.0
        self.timer_fire = 0.0
        self.timer_period = 0.0
        self.timer_reload = 0
        self.timer_value = 0
        self.crc_value = 0xFFFF
        self.crc_ok = False
        self.crc_ready = True
        self.crypto_card = None     # card whose Crypto1 session is on (MFCrypto1On)
        self.air_plan = None        # answer to a Transmit still on air (for a later Receive)
        self.rx_window = None       # (tx_end, rx_end) while WrErr applies
        self.modem = MODEM_IDLE
        self.soft_pd = False
        self._lo = True
        self._hi = False
        self._warned = {}
        self._spi_reset()
        self._update_field()

    def hard_power_down(self):
        self.powered = False
        self.events = []
        self.gen += 1
        self.field.set_power(False)

    def hard_power_up(self):
        self.powered = True
        self.hung = False
        self._reset_state()
        self.clock.advance(timing.RESET_PHASE_US + timing.XTAL_START_US, "reset")

    def _update_field(self):
        on = self.powered and not self.soft_pd and (self.regs[TxControlReg] & 0x03) != 0
        self.field.set_power(on)

    def field_on(self):
        return self.field.powered

    def _warn(self, key, text):
        if key not in self._warned:
            self._warned[key] = True
            self.warnings.append(text)

    # ---- SPI (data sheet 8.1.2) ---------------------------------------------------------------
    def _spi_reset(self):
        self._sp_first = True
        self._sp_read = False
        self._sp_addr = 0
        self._sp_pending = None

    def spi_select(self, selected):
        self.spi_selected = selected
        self._spi_reset()

    def garbage(self):
        if self.hang_readback is not None:
            return self.hang_readback & 0xFF
        return 0xFF if self.rng.below(2) else 0x00

    def spi_byte(self, mosi):
        """One byte clocked while NSS is low; returns the byte the chip drives on MISO."""
        if not self.powered:
            return 0xFF
        if self.hung:
            return self.garbage()
        if self._sp_first:
            self._sp_first = False
            if mosi & 0x01:
                self._warn("spilsb", "SPI address byte with bit 0 set (data sheet: LSB is 0)")
            self._sp_read = (mosi & 0x80) != 0
            self._sp_addr = (mosi >> 1) & 0x3F
            self._sp_pending = self._sp_addr if self._sp_read else None
            return 0x00
        if not self._sp_read:
            self.write_reg(self._sp_addr, mosi)
            return 0x00
        # Read mode: MISO carries the register named by the previous MOSI byte, while MOSI names
        # the next one (bit 7 set); a byte without bit 7 (the closing 00h) names none.
        miso = 0x00
        if self._sp_pending is not None:
            miso = self.read_reg(self._sp_pending)
        else:
            self._warn("spiread", "SPI read continued after a byte without bit 7: each MOSI byte "
                       "of a read names the next register (data sheet 8.1.2.1); MISO gives 00h")
        self._sp_pending = ((mosi >> 1) & 0x3F) if (mosi & 0x80) else None
        return miso

    # ---- time --------------------------------------------------------------------------------
    def _schedule(self, t, kind, arg=None):
        self._seq += 1
        ev = [t, self._seq, self.gen, kind, arg]
        i = len(self.events)
        while i > 0 and (self.events[i - 1][0] > t):
            i -= 1
        self.events.insert(i, ev)

    def _cancel(self):
        """The running command is replaced: its future events and RF accounting are dropped."""
        self.gen += 1
        self.events = []
        self.clock.truncate_segments(self.clock.now)
        self.rx_window = None

    def sync(self):
        if not self.powered or self.hung:
            return
        now = self.clock.now
        while True:
            t_ev = self.events[0][0] if self.events else None
            t_tm = self.timer_fire if self.timer_running else None
            if t_ev is not None and t_ev <= now and (t_tm is None or t_ev <= t_tm):
                ev = self.events.pop(0)
                if ev[2] == self.gen:
                    self._event(ev[0], ev[3], ev[4])
            elif t_tm is not None and t_tm <= now:
                self._timer_expired(now)
            else:
                break

    # ---- timer (data sheet 8.5) ---------------------------------------------------------------
    def _timer_params(self):
        presc = ((self.regs[TModeReg] & 0x0F) << 8) | self.regs[TPrescalerReg]
        even = self.version >= 0x92 and (self.regs[DemodReg] & 0x10)
        period = (2 * presc + (2 if even else 1)) / timing.FC_MHZ
        reload = (self.regs[TReloadRegH] << 8) | self.regs[TReloadRegL]
        return period, reload

    def timer_start_at(self, t):
        period, reload = self._timer_params()
        self.timer_period = period
        self.timer_reload = reload
        self.timer_running = True
        self.timer_start = t
        self.timer_fire = t + (reload + 1) * period

    def timer_stop_at(self, t):
        if self.timer_running:
            self.timer_value = self._timer_value_at(t)
            self.timer_running = False

    def _timer_value_at(self, t):
        if not self.timer_running:
            return self.timer_value
        if self.timer_period <= 0:
            return 0
        ticks = int((t - self.timer_start) / self.timer_period)
        if self.regs[TModeReg] & 0x10:
            return self.timer_reload - (ticks % (self.timer_reload + 1))
        v = self.timer_reload - ticks
        return v if v > 0 else 0

    def _timer_expired(self, now):
        self._set_irq(IRQ_TIMER)
        if self.regs[TModeReg] & 0x10:      # TAutoRestart
            span = (self.timer_reload + 1) * self.timer_period
            if span <= 0:
                self.timer_running = False
                return
            n = int((now - self.timer_fire) / span) + 1
            self.timer_start = self.timer_fire + (n - 1) * span
            self.timer_fire += n * span
        else:
            self.timer_running = False
            self.timer_value = 0

    def timer_span_us(self):
        period, reload = self._timer_params()
        return (reload + 1) * period

    # ---- interrupts and FIFO -------------------------------------------------------------------
    def _set_irq(self, bits):
        self.regs[ComIrqReg] |= bits & 0x7F

    def _set_error(self, bits):
        if bits:
            self.regs[ErrorReg] |= bits
            self._set_irq(IRQ_ERR)

    def irq_active(self):
        com = self.regs[ComIrqReg] & self.regs[ComIEnReg] & 0x7F
        div = self.regs[DivIrqReg] & self.regs[DivIEnReg] & (DIV_MFIN_ACT | DIV_CRC)
        return bool(com or div)

    def irq_pin_level(self):
        active = self.irq_active()
        if self.regs[ComIEnReg] & 0x80:     # IRqInv: pin low while an interrupt is pending
            return 0 if active else 1
        return 1 if active else 0

    def _fifo_changed(self):
        water = self.regs[WaterLevelReg] & 0x3F
        n = len(self.fifo)
        lo = n <= water
        hi = (FIFO_SIZE - n) <= water
        if lo and not self._lo:
            self._set_irq(IRQ_LOALERT)
        if hi and not self._hi:
            self._set_irq(IRQ_HIALERT)
        self._lo = lo
        self._hi = hi

    def _fifo_push(self, b):
        if len(self.fifo) >= FIFO_SIZE:
            self._set_error(ERR_BUFFER_OVFL)
            return False
        self.fifo.append(b & 0xFF)
        self._fifo_changed()
        return True

    def _fifo_take_all(self):
        data = bytes(self.fifo)
        self.fifo = []
        self._fifo_changed()
        return data

    # ---- register access -----------------------------------------------------------------------
    def read_reg(self, addr):
        addr &= 0x3F
        r = self.regs
        if addr == FIFODataReg:
            if self.fifo:
                b = self.fifo.pop(0)
                self._fifo_changed()
                return b
            return 0x00
        if addr == FIFOLevelReg:
            return len(self.fifo)
        if addr == ComIrqReg:
            return r[ComIrqReg] & 0x7F
        if addr == DivIrqReg:
            return r[DivIrqReg] & 0x14
        if addr == Status1Reg:
            v = 0
            if self.crc_ok:
                v |= 0x40
            if self.crc_ready:
                v |= 0x20
            if self.irq_active():
                v |= 0x10
            if self.timer_running:
                v |= 0x08
            if self._hi:
                v |= 0x02
            if self._lo:
                v |= 0x01
            return v
        if addr == Status2Reg:
            v = r[Status2Reg] & 0xC0
            if self.crypto_card is not None:
                v |= 0x08
            return v | (self.modem & 0x07)
        if addr == TCounterValRegH:
            return (self._timer_value_at(self.clock.now) >> 8) & 0xFF
        if addr == TCounterValRegL:
            return self._timer_value_at(self.clock.now) & 0xFF
        if addr == CommandReg:
            v = r[CommandReg] & 0x30
            if self.soft_pd:
                v |= 0x10
            return v | (self.command & 0x0F)
        if addr == VersionReg:
            return self.version
        return r[addr]

    def write_reg(self, addr, value):
        addr &= 0x3F
        value &= 0xFF
        r = self.regs
        if addr == CommandReg:
            self._write_command(value)
        elif addr == ComIrqReg:
            if value & 0x80:
                r[ComIrqReg] |= value & 0x7F
            else:
                r[ComIrqReg] &= ~value & 0x7F
        elif addr == DivIrqReg:
            if value & 0x80:
                r[DivIrqReg] |= value & 0x14
            else:
                r[DivIrqReg] &= ~value & 0x14
        elif addr in (ErrorReg, Status1Reg, FIFOLevelReg, CRCResultRegH, CRCResultRegL,
                      TCounterValRegH, TCounterValRegL, VersionReg):
            if addr == FIFOLevelReg and value & 0x80:   # FlushBuffer
                self.fifo = []
                r[ErrorReg] &= ~ERR_BUFFER_OVFL & 0xFF
                self._fifo_changed()
        elif addr == Status2Reg:
            r[Status2Reg] = value & 0xC0
            if not value & 0x08:
                self.crypto_card = None
        elif addr == FIFODataReg:
            self._write_fifo(value)
        elif addr == WaterLevelReg:
            r[WaterLevelReg] = value & 0x3F
            self._fifo_changed()
        elif addr == ControlReg:
            if value & 0x80:        # TStopNow
                self.timer_stop_at(self.clock.now)
            if value & 0x40:        # TStartNow
                self.timer_start_at(self.clock.now)
        elif addr == BitFramingReg:
            r[BitFramingReg] = value & 0xF7
            if value & 0x80 and self.command == CMD_TRANSCEIVE and not self.soft_pd:
                self._start_transmission(CMD_TRANSCEIVE)
        elif addr == CollReg:
            r[CollReg] = (r[CollReg] & 0x7F) | (value & 0x80)
        elif addr == TxControlReg:
            r[TxControlReg] = value
            self._update_field()
        else:
            r[addr] = value

    def _write_fifo(self, value):
        if self.command == CMD_MF_AUTHENT:
            self._set_error(ERR_WR)
        elif self.rx_window is not None and self.rx_window[0] <= self.clock.now < self.rx_window[1]:
            self._set_error(ERR_WR)
        if not self._fifo_push(value):
            return
        if self.command == CMD_CALC_CRC and not self._selftest_armed():
            self._crc_consume()

    # ---- commands -------------------------------------------------------------------------------
    def _write_command(self, value):
        r = self.regs
        cmd = value & 0x0F
        r[CommandReg] = (r[CommandReg] & 0x0F) | (value & 0x20)
        pd = (value & 0x10) != 0
        if cmd == CMD_SOFT_RESET:
            self._soft_reset()
            return
        if pd != self.soft_pd:
            if pd:
                self._cancel()
                self.command = CMD_IDLE
                self.modem = MODEM_IDLE
                self.soft_pd = True
                self.timer_running = False
            else:
                self.soft_pd = False
                self.clock.advance(timing.RESET_PHASE_US + timing.XTAL_START_US, "reset")
            self._update_field()
        if cmd == CMD_NO_CMD_CHANGE or self.soft_pd:
            return
        self._start_command(cmd)

    def _soft_reset(self):
        buf = self.buf25
        self._cancel()
        self._reset_state()
        self.buf25 = buf
        self.clock.advance(timing.RESET_PHASE_US, "reset")

    def _finish(self, irq=IRQ_IDLE):
        self.command = CMD_IDLE
        self.modem = MODEM_IDLE
        self._set_irq(irq)

    def _start_command(self, cmd):
        self._cancel()
        self.regs[ErrorReg] &= ~ERR_WR & 0xFF
        self.command = cmd
        if cmd == CMD_IDLE:
            self.modem = MODEM_IDLE
            return      # the host's own Idle does not set IdleIRq
        if cmd == CMD_MEM:
            if self.fifo:
                data = self._fifo_take_all()[:25]
                self.buf25[0:len(data)] = data
            else:
                for b in self.buf25:
                    self._fifo_push(b)
            self._finish()
        elif cmd == CMD_GENERATE_RANDOM_ID:
            self.buf25[0:10] = self.rng.bytes(10)
            self._finish()
        elif cmd == CMD_CALC_CRC:
            if self._selftest_armed():
                self._self_test()
            else:
                self.crc_value = CRC_PRESETS[self.regs[ModeReg] & 0x03]
                self.crc_ready = False
                self._crc_consume()
        elif cmd == CMD_TRANSMIT:
            self._start_transmission(CMD_TRANSMIT)
        elif cmd == CMD_RECEIVE:
            self._start_receive()
        elif cmd == CMD_TRANSCEIVE:
            self.modem = MODEM_WAIT_STARTSEND
        elif cmd == CMD_MF_AUTHENT:
            self._mf_authent()
        else:
            # Unknown command codes: CommandReg returns to Idle and IdleIRq is set.
            self._finish()

    def _selftest_armed(self):
        return (self.regs[AutoTestReg] & 0x0F) == 0x09

    def _self_test(self):
        first = self.fifo[0] if self.fifo else None
        clean = first == 0x00 and not any(self.buf25)
        self.fifo = []
        if clean and self.version in (0x91, 0x92):
            result = SELFTEST_V1 if self.version == 0x91 else SELFTEST_V2
        else:
            result = bytes(FIFO_SIZE)
        for b in result:
            self._fifo_push(b)
        self.regs[DivIrqReg] |= DIV_CRC
        self.crc_ready = True

    def _crc_consume(self):
        data = self._fifo_take_all()
        msb_first = (self.regs[ModeReg] & 0x80) != 0
        if msb_first:
            data = bytes(crcmod.bit_reverse8(b) for b in data)
        self.crc_value = crcmod.crc16_reflected(data, self.crc_value)
        value = self.crc_value
        if msb_first:
            lo = crcmod.bit_reverse8(value >> 8)
            hi = crcmod.bit_reverse8(value & 0xFF)
        else:
            lo = value & 0xFF
            hi = value >> 8
        self.regs[CRCResultRegL] = lo
        self.regs[CRCResultRegH] = hi
        self.crc_ok = value == 0
        self.crc_ready = True
        self.regs[DivIrqReg] |= DIV_CRC

    def _tx_crc(self, data):
        c = crcmod.crc16_reflected(data, CRC_PRESETS[self.regs[ModeReg] & 0x03])
        return bytes((c & 0xFF, c >> 8))

    # ---- RF: transmit, receive, transceive -----------------------------------------------------
    def _speeds(self):
        return (self.regs[TxModeReg] >> 4) & 0x07, (self.regs[RxModeReg] >> 4) & 0x07

    def _rf_checks(self, tx_speed):
        if not self.regs[TxASKReg] & 0x40:
            self._warn("ask", "TxASKReg.Force100ASK is 0: type A cards need 100% ASK")
        if tx_speed > self.max_speed:
            self._warn("speed", "TX speed above the rig's bitrate_max: frames are lost")
            return False
        return tx_speed <= 3

    def _start_transmission(self, cmd):
        now = self.clock.now
        self._cancel()
        self.command = cmd
        r = self.regs
        data = self._fifo_take_all()
        tx_last = r[BitFramingReg] & 0x07
        rx_align = (r[BitFramingReg] >> 4) & 0x07
        tx_speed, rx_speed = self._speeds()
        if not data:
            nbits = 0
        elif tx_last:
            nbits = (len(data) - 1) * 8 + tx_last
        else:
            nbits = len(data) * 8
        if data and not tx_last and (r[TxModeReg] & 0x80 or tx_speed != 0):
            data = data + self._tx_crc(data)
            nbits += 16
        r[ErrorReg] &= ~RX_ERRORS & 0xFF
        air = timing.frame_air_us(nbits, tx_speed) if nbits else 0.0
        tx_end = now + air
        self.clock.add_segment(now, tx_end, "air")
        self.clock.frames += 1
        self.modem = MODEM_TRANSMITTING
        answers = []
        if nbits and self.field_on() and self._rf_checks(tx_speed):
            answers = self.field.transmit(data, nbits, tx_speed, self.crypto_card, now, tx_end)
        plan = self._plan_rx(answers, tx_end, rx_speed, rx_align)
        self._schedule(tx_end, "txend", cmd)
        if plan is not None:
            self.clock.add_segment(tx_end, plan.start, "card")
            self.clock.add_segment(plan.start, plan.end, "air")
        if cmd == CMD_TRANSCEIVE:
            if plan is not None:
                self._schedule_rx(plan)
            elif self.regs[TModeReg] & 0x80:
                self.clock.add_segment(tx_end, tx_end + self.timer_span_us(), "timeout")
            self.air_plan = None
        else:
            self.air_plan = plan

    def _start_receive(self):
        self.regs[ErrorReg] &= ~RX_ERRORS & 0xFF
        self.modem = MODEM_WAIT_DATA
        plan = self.air_plan
        self.air_plan = None
        if plan is not None and plan.start >= self.clock.now and not (self.regs[CommandReg] & 0x20):
            self._schedule_rx(plan)

    def _schedule_rx(self, plan):
        if self.regs[CommandReg] & 0x20:     # RcvOff: analog receiver switched off
            return
        n = len(plan.out)
        dur = plan.end - plan.start
        if not self.regs[RxModeReg] & 0x04:  # timer stops after the 5th received bit
            self._schedule(plan.start + 5 * timing.bit_us(plan.speed), "tstop")
        for i in range(n - 1):
            self._schedule(plan.start + dur * (i + 1) / n, "rxbyte", plan.out[i])
        self._schedule(plan.end, "rxend", plan)

    def _plan_rx(self, answers, tx_end, rx_speed, rx_align):
        if not answers:
            return None
        heard = [a for a in answers if a.speed == rx_speed]
        if not heard:
            return None
        plan = RxPlan()
        plan.speed = rx_speed
        delay = heard[0].delay_us()
        for a in heard:
            if a.delay_us() < delay:
                delay = a.delay_us()
        plan.start = tx_end + delay
        nbits = 0
        for a in heard:
            if a.nbits > nbits:
                nbits = a.nbits
        bits = [0] * nbits
        coll = -1
        parity = False
        garbled = False
        for a in heard:
            abits = _bits_of(a.data, a.nbits)
            if a.encrypted_for is not self.crypto_card:
                # Deciphered with the wrong (or no) Crypto1 stream: noise with broken parity.
                noise = self.rng.bytes(len(a.data))
                abits = _bits_of(bytes(x ^ y for x, y in zip(a.data, noise)), a.nbits)
                parity = True
            if a.parity_error:
                parity = True
            for i in range(a.nbits):
                bits[i] |= abits[i]
        if len(heard) > 1:
            ref = _bits_of(heard[0].data, heard[0].nbits)
            for a in heard[1:]:
                other = _bits_of(a.data, a.nbits)
                for i in range(min(len(ref), len(other))):
                    if ref[i] != other[i]:
                        if coll < 0 or i < coll:
                            coll = i
                        break
            if coll >= 0 and rx_speed != 0:
                garbled = True
                coll = -1
        plan.end = plan.start + timing.frame_air_us(nbits, rx_speed)
        errors = 0
        if parity and rx_speed == 0:
            errors |= ERR_PARITY
        if coll >= 0:
            errors |= ERR_COLL
            pos = rx_align + coll + 1
            if pos <= 32:
                plan.coll = pos & 0x1F
            if not self.regs[CollReg] & 0x80:   # ValuesAfterColl = 0: later bits cleared
                for i in range(coll + 1, nbits):
                    bits[i] = 0
        if garbled:
            for i in range(nbits):
                bits[i] ^= self.rng.below(2)
        crc_on = (self.regs[RxModeReg] & 0x80) != 0 or rx_speed != 0
        if crc_on:
            if nbits % 8 or nbits < 24:
                errors |= ERR_CRC
            else:
                frame = bytes(_pack(bits))
                if self._tx_crc(frame[:-2]) != frame[-2:]:
                    errors |= ERR_CRC
                bits = bits[:-16]
        placed = [0] * rx_align + bits
        plan.out = bytes(_pack(placed))
        plan.last_bits = len(placed) % 8
        plan.errors = errors
        return plan

    def _event(self, t, kind, arg):
        if kind == "txend":
            if arg == CMD_TRANSMIT:
                self._set_irq(IRQ_TX)
                self._finish()
            elif arg == CMD_TRANSCEIVE:
                self._set_irq(IRQ_TX)
                self.modem = MODEM_WAIT_DATA
                self.rx_window = (t, t + 1e12)
            if self.regs[TModeReg] & 0x80:
                self.timer_start_at(t)
        elif kind == "auth_txend":
            if self.regs[TModeReg] & 0x80:
                self.timer_start_at(t)
        elif kind == "tstop":
            if self.regs[TModeReg] & 0x80:
                self.timer_stop_at(t)
            self.modem = MODEM_RECEIVING
        elif kind == "rxbyte":
            self._fifo_push(arg)
        elif kind == "rxend":
            plan = arg
            if plan.out:
                self._fifo_push(plan.out[-1])
            r = self.regs
            r[ControlReg] = (r[ControlReg] & 0xF8) | plan.last_bits
            r[CollReg] = (r[CollReg] & 0x80) | plan.coll
            self._set_error(plan.errors)
            self.clock.rx_frames += 1
            self.rx_window = None
            self._set_irq(IRQ_RX)
            if self.command == CMD_RECEIVE:
                self._finish()
            elif self.command == CMD_TRANSCEIVE:
                self.modem = MODEM_WAIT_STARTSEND
        elif kind == "auth_done":
            self.crypto_card = arg
            self._finish()

    # ---- MFAuthent (Crypto1 abstracted) ----------------------------------------------------------
    def _mf_authent(self):
        now = self.clock.now
        data = self._fifo_take_all()
        data = data + bytes(12 - len(data)) if len(data) < 12 else data[:12]
        auth_cmd = data[0]
        block = data[1]
        key = data[2:8]
        uid4 = data[8:12]
        tx_speed, rx_speed = self._speeds()
        previous = self.crypto_card
        self.crypto_card = None
        self.modem = MODEM_TRANSMITTING
        t1 = now + timing.frame_air_us(32, tx_speed)            # auth command + CRC
        self.clock.add_segment(now, t1, "air")
        self.clock.frames += 1
        self._schedule(t1, "auth_txend")
        card = None
        ok = False
        if self.field_on() and self._rf_checks(tx_speed) and auth_cmd in (0x60, 0x61):
            card, ok = self.field.mf_authent(auth_cmd, block, key, uid4, previous, tx_speed, now)
            if card is not None and card.tx_speed != rx_speed:
                card = None
                ok = False
        if card is None:
            if self.regs[TModeReg] & 0x80:
                self.clock.add_segment(t1, t1 + self.timer_span_us(), "timeout")
            return
        t2 = t1 + timing.FDT_MIN_US                                # card answers Nt
        t3 = t2 + timing.frame_air_us(32, rx_speed)
        self.clock.add_segment(t1, t2, "card")
        self.clock.add_segment(t2, t3, "air")
        self._schedule(t2 + 5 * timing.bit_us(rx_speed), "tstop")
        t4 = t3 + timing.FDT_MIN_US                                # reader sends {Nr, Ar}
        t5 = t4 + timing.frame_air_us(64, tx_speed)
        self.clock.add_segment(t4, t5, "air")
        self.clock.frames += 1
        self._schedule(t5, "auth_txend")
        if not ok:
            if self.regs[TModeReg] & 0x80:
                self.clock.add_segment(t5, t5 + self.timer_span_us(), "timeout")
            return
        t6 = t5 + timing.FDT_MIN_US                                # card answers At
        t7 = t6 + timing.frame_air_us(32, rx_speed)
        self.clock.add_segment(t5, t6, "card")
        self.clock.add_segment(t6, t7, "air")
        self._schedule(t6 + 5 * timing.bit_us(rx_speed), "tstop")
        self._schedule(t7, "auth_done", card)
