# MFRC522 driver (NXP MFRC522 product data sheet rev. 3.9) over SPI.
#
# The chip is reached through duck-typed objects so the same code runs on the reader and
# against the RF simulator:
#   spi  - write(buf), write_readinto(wbuf, rbuf)      (machine.SPI or a stand-in)
#   cs   - NSS pin, callable: cs(0) / cs(1)            (machine.Pin or a stand-in)
#   rst  - NRSTPD pin (low = hard power-down, rising edge = reset), optional
#   irq  - IRQ pin, optional; value() is low while an enabled interrupt is pending
# Nothing here imports `machine`: the board code builds the objects and passes them in.
#
# SPI framing (data sheet 8.1.2): one transaction = NSS low, an address byte
# (bit 7 = read, bits 6..1 = register, bit 0 = 0), then data; NSS high. A read transaction may
# carry several address bytes: each MISO byte returns the register named by the previous MOSI
# byte, and the last MOSI byte is 00h. A write transaction writes every data byte to the one
# register named first (that is how the FIFO is filled in one go).
#
# Every wait is bounded twice: by an iteration count and by a deadline on a microsecond clock
# (time.ticks_us on the reader; a modelled clock can be injected for the simulator). A chip
# that stops answering (garbage registers, a command that never ends) is hard-reset through
# NRSTPD and re-initialised; the caller gets CardError(CHIP) for that one operation and the
# next operation finds a working chip again. The reader never needs a reboot.
import time

import rferror
from rferror import CardError

# Registers (data sheet 9.2)
COMMAND = 0x01
COM_IEN = 0x02
DIV_IEN = 0x03
COM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
STATUS1 = 0x07
STATUS2 = 0x08
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
WATER_LEVEL = 0x0B
CONTROL = 0x0C
BIT_FRAMING = 0x0D
COLL = 0x0E
MODE = 0x11
TX_MODE = 0x12
RX_MODE = 0x13
TX_CONTROL = 0x14
TX_ASK = 0x15
TX_SEL = 0x16
RX_SEL = 0x17
RX_THRESHOLD = 0x18
DEMOD = 0x19
MF_TX = 0x1C
MF_RX = 0x1D
CRC_RESULT_H = 0x21
CRC_RESULT_L = 0x22
MOD_WIDTH = 0x24
RF_CFG = 0x26
T_MODE = 0x2A
T_PRESCALER = 0x2B
T_RELOAD_H = 0x2C
T_RELOAD_L = 0x2D
T_COUNTER_H = 0x2E
T_COUNTER_L = 0x2F
AUTO_TEST = 0x36
VERSION = 0x37

# Commands (data sheet 10.3)
CMD_IDLE = 0x00
CMD_MEM = 0x01
CMD_RANDOM_ID = 0x02
CMD_CALC_CRC = 0x03
CMD_TRANSMIT = 0x04
CMD_NO_CHANGE = 0x07
CMD_RECEIVE = 0x08
CMD_TRANSCEIVE = 0x0C
CMD_MF_AUTHENT = 0x0E
CMD_SOFT_RESET = 0x0F
POWER_DOWN = 0x10  # CommandReg bit 4
RCV_OFF = 0x20     # CommandReg bit 5

# ComIrqReg bits
IRQ_TX = 0x40
IRQ_RX = 0x20
IRQ_IDLE = 0x10
IRQ_HI_ALERT = 0x08
IRQ_LO_ALERT = 0x04
IRQ_ERR = 0x02
IRQ_TIMER = 0x01
# DivIrqReg bits
DIV_CRC = 0x04
# ErrorReg bits
ERR_WR = 0x80
ERR_TEMP = 0x40
ERR_BUFFER_OVFL = 0x10
ERR_COLL = 0x08
ERR_CRC = 0x04
ERR_PARITY = 0x02
ERR_PROTOCOL = 0x01
# Status2Reg
MF_CRYPTO1_ON = 0x08
# CollReg
COLL_POS_NOT_VALID = 0x20

FIFO_SIZE = 64
FC_HZ = 13560000

# VersionReg values of parts that speak this register map: 0x91 / 0x92 are NXP MFRC522 v1.0 /
# v2.0, 0x90 the early v0.0, 0x88 and 0xB2 the Fudan FM17522 / FM17522E, 0x12 a common clone.
KNOWN_VERSIONS = (0x88, 0x90, 0x91, 0x92, 0x12, 0xB2)

# Self-test FIFO contents (data sheet 16.1.1) for versions 1.0 and 2.0.
SELFTEST = {
    0x91: bytes((
        0x00, 0xC6, 0x37, 0xD5, 0x32, 0xB7, 0x57, 0x5C, 0xC2, 0xD8, 0x7C, 0x4D, 0xD9, 0x70, 0xC7, 0x73,
        0x10, 0xE6, 0xD2, 0xAA, 0x5E, 0xA1, 0x3E, 0x5A, 0x14, 0xAF, 0x30, 0x61, 0xC9, 0x70, 0xDB, 0x2E,
        0x64, 0x22, 0x72, 0xB5, 0xBD, 0x65, 0xF4, 0xEC, 0x22, 0xBC, 0xD3, 0x72, 0x35, 0xCD, 0xAA, 0x41,
        0x1F, 0xA7, 0xF3, 0x53, 0x14, 0xDE, 0x7E, 0x02, 0xD9, 0x0F, 0xB5, 0x5E, 0x25, 0x1D, 0x29, 0x79)),
    0x92: bytes((
        0x00, 0xEB, 0x66, 0xBA, 0x57, 0xBF, 0x23, 0x95, 0xD0, 0xE3, 0x0D, 0x3D, 0x27, 0x89, 0x5C, 0xDE,
        0x9D, 0x3B, 0xA7, 0x00, 0x21, 0x5B, 0x89, 0x82, 0x51, 0x3A, 0xEB, 0x02, 0x0C, 0xA5, 0x00, 0x49,
        0x7C, 0x84, 0x4D, 0xB3, 0xCC, 0xD2, 0x1B, 0x81, 0x5D, 0x48, 0x76, 0xD5, 0x71, 0x61, 0x21, 0xA9,
        0x86, 0x96, 0x83, 0x38, 0xCF, 0x9D, 0x5B, 0x6D, 0xDC, 0x15, 0xBA, 0x3E, 0x7D, 0x95, 0x3B, 0x2F)),
}

# TxModeReg / RxModeReg speed field (bits 6..4) per bit rate in kbit/s.
SPEED_BITS = {106: 0x00, 212: 0x10, 424: 0x20, 848: 0x30}
# ModWidthReg: the Miller pause width in carrier clocks minus one. 0x26 (39 clocks, ~2.9 us) is
# the reset value for 106 kbit/s; the pause is halved with each doubling of the bit rate.
MOD_WIDTH_BY_RATE = {106: 0x26, 212: 0x12, 424: 0x08, 848: 0x03}
# RFCfgReg RxGain codes (bits 6..4) by dB.
RX_GAIN = {18: 0x00, 23: 0x10, 33: 0x40, 38: 0x50, 43: 0x60, 48: 0x70}

# Default timer prescaler: f_timer = 13.56 MHz / (2*31 + 1) = 215.2 kHz (4.65 us per tick),
# 16-bit reload -> up to 304 ms; longer timeouts raise the prescaler.
PRESCALER_DEFAULT = 31
MAX_TIMEOUT_US = 39000000

_FIFO_WR = bytes((FIFO_DATA << 1,))
FIFO_WRITE = FIFO_DATA << 1         # first byte of a transceive_raw(..., pre=1) buffer
_W_CLEAR_IRQ = bytes((COM_IRQ << 1, 0x7F))          # clear every ComIrqReg bit (Set1 = 0)
_W_START_SEND = bytes((BIT_FRAMING << 1, 0x80))     # StartSend, whole bytes
_W_FRAMING_0 = bytes((BIT_FRAMING << 1, 0x00))
_FIFO_RD = bytes(((FIFO_DATA << 1) | 0x80,)) * (FIFO_SIZE + 1)
# One read transaction for the state after a command: ComIrq, Error, FIFOLevel, Control, Coll;
# when the answer delay is being learnt, also the timer's count, which TAuto stops at the
# answer's 5th bit (two more bytes on the bus).
_POLL_TX = bytes((0x80 | (COM_IRQ << 1), 0x80 | (ERROR << 1), 0x80 | (FIFO_LEVEL << 1),
                  0x80 | (CONTROL << 1), 0x80 | (COLL << 1), 0))
_POLL_TX_T = _POLL_TX[:5] + bytes((0x80 | (T_COUNTER_H << 1), 0x80 | (T_COUNTER_L << 1), 0))
# Longest answer delay learnt per command (us): beyond it the driver polls as for an unknown one.
DELAY_LEARN_MAX_US = 5000


def timer_regs(timeout_us, prescaler_floor=PRESCALER_DEFAULT):
    """(prescaler, reload) for a timeout: t = (2*P + 1) * (reload + 1) / 13.56 MHz >= timeout.

    The prescaler stays at prescaler_floor unless the 16-bit reload cannot hold the timeout."""
    if timeout_us < 1:
        timeout_us = 1
    if timeout_us > MAX_TIMEOUT_US:
        timeout_us = MAX_TIMEOUT_US
    clocks = (timeout_us * 1356 + 99) // 100          # carrier clocks, rounded up
    p = prescaler_floor
    if clocks > (2 * p + 1) * 65536:
        # smallest P with (2P+1) * 65536 >= clocks
        p = (clocks // 65536) // 2
        while (2 * p + 1) * 65536 < clocks:
            p += 1
    if p > 0xFFF:
        p = 0xFFF
    div = 2 * p + 1
    reload = (clocks + div - 1) // div - 1
    if reload < 1:
        reload = 1
    if reload > 0xFFFF:
        reload = 0xFFFF
    return p, reload


def timer_us(prescaler, reload):
    """The period the timer counts for a (prescaler, reload) pair, in microseconds."""
    return (2 * prescaler + 1) * (reload + 1) * 1000000 // FC_HZ


def crc_a(data):
    """CRC_A of ISO/IEC 14443-3 (preset 6363h, reflected polynomial 8408h): two bytes, LSB first.

    The chip computes it in hardware; this software version serves tests and cross-checks."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return bytes((crc & 0xFF, crc >> 8))


def _default_clock():
    f = getattr(time, "ticks_us", None)
    if f is not None:
        return f, getattr(time, "ticks_diff")
    pc = getattr(time, "perf_counter")

    def us():
        return int(pc() * 1000000)

    def diff(a, b):
        return a - b

    return us, diff


def _default_sleep():
    f = getattr(time, "sleep_us", None)
    if f is not None:
        return f
    sl = getattr(time, "sleep")

    def sleep_us(us):
        sl(us / 1000000)

    return sleep_us


class MFRC522:
    """One MFRC522 on an SPI bus.

    spi, cs, rst, irq: see the module header (rst and irq optional; irq used when use_irq).
    Time (deadlines, guard times, polling pauses) comes from, in order of preference:
      clock_us / sleep_us: callables (a monotonic microsecond count without wrap-around, and a
        sleep), e.g. the simulator's modelled clock;
      timebase: a time-module-like object with ticks_us(), ticks_diff(a, b), sleep_us(us)
        (MicroPython's time, or the simulator's rig.time);
      the time module itself (time.ticks_us on MicroPython, perf_counter on CPython).
    slack_us: how far past the chip's own timer a wait may run before the chip is presumed
    hung; max_polls: a fixed iteration bound for every wait (default: from the timeout).
    poll_min_us / poll_max_us / rx_poll_bytes / irq_poll_us: the pauses between status polls.
    gain_db: receiver gain (18, 23, 33, 38, 43 or 48 dB). init=False skips the bring-up.
    """

    raw_checks = True   # transceive_raw(..., check=True) is transceive() in one call (isodep.py)

    def __init__(self, spi, cs, rst=None, irq=None, clock_us=None, sleep_us=None,
                 gain_db=48, slack_us=50000, max_polls=None, init=True, use_irq=False,
                 poll_min_us=100, poll_max_us=2000, irq_poll_us=50,
                 rx_poll_bytes=4, timebase=None):
        self.spi = spi
        self.cs = cs
        self.rst = rst
        self.irq = irq if use_irq else None
        if clock_us is not None:
            self._now = clock_us
            self._diff = _sub
        elif timebase is not None:
            self._now = timebase.ticks_us
            self._diff = timebase.ticks_diff
        else:
            self._now, self._diff = _default_clock()
        if sleep_us is not None:
            self._sleep = sleep_us
        elif timebase is not None:
            self._sleep = timebase.sleep_us
        else:
            self._sleep = _default_sleep()
        self.gain_db = gain_db
        self.slack_us = slack_us
        self.max_polls = max_polls      # None: derived from each timeout
        self.poll_min_us = poll_min_us  # shortest pause between two status polls
        self.poll_max_us = poll_max_us  # longest pause between two status polls
        self.irq_poll_us = irq_poll_us  # pause between two looks at the IRQ pin
        self.rx_poll_bytes = rx_poll_bytes  # while a frame arrives, poll every this many bytes
        self.last_rx_us = 0             # clock when the last frame was seen complete
        self.version = 0
        self.healthy = False
        self.resets = 0                 # hard resets performed by recovery
        self.chip_faults = 0            # times the chip was found not answering
        self.frames = 0                 # transceive calls (statistics)
        # idle / idle_args: a function and its arguments the layer above registers for the next
        # frame's wait. The driver runs it (once) while that frame is on air and the card works
        # on it, before the first pause and poll, instead of idling, and leaves its return
        # value in idle_result: CPU work that does not need the answer (session keys, the next
        # key) then costs no time of its own unless it outlasts the wait.
        # job_hook(fn, args), when set, runs the job instead (benchmarks time and account it).
        self.idle = None
        self.idle_args = ()  # type: tuple
        self.idle_result = None
        self.job_hook = None
        # delays: the answer delay (us from the end of our frame to the start of the card's
        # answer) last learnt per command kind, keyed by what callers pass as transceive_raw's
        # `learn`. Measured by the chip's own timer, so the first look at the chip can come
        # when that command's answer should be complete instead of a frame delay after the
        # frame (each early poll is an SPI transaction and a turn of this loop). Replaced,
        # never changed in place.
        self.delays = {}  # type: dict
        self._rx1 = bytearray(2)
        self._rtx = bytearray(2)
        self._wbuf = bytearray(2)
        self._fifo_tx = bytearray(_FIFO_RD)
        self._fifo_rx = bytearray(len(_FIFO_RD))
        self._mv = [None] * (FIFO_SIZE + 1)  # type: list  # memoryviews per read length, on demand
        self._rxp = bytearray(len(_POLL_TX))
        self._rxpt = bytearray(len(_POLL_TX_T))
        self._reset_cache()
        cs(1)
        if rst is not None:
            rst(1)
        if init:
            try:
                self.init()
            except CardError:
                # The reader keeps running; the next operation retries recovery.
                self.healthy = False

    # ---- register access -------------------------------------------------------------------

    def _reset_cache(self):
        self._tmode = -1
        self._tpresc = -1
        self._treload = -1
        self._txmode = 0
        self._rxmode = 0
        self._bitrate_tx = 106
        self._bitrate_rx = 106
        self._tx_bit_ns = 9440          # one bit on air PCD->PICC at the current rate
        self._rx_byte_ns = 84960        # one byte (9 bits) PICC->PCD at the current rate
        self._rx5_us = 47               # 5 bits PICC->PCD (where TAuto stops the timer)
        self._tick_x100 = 6300          # (2P + 1) * 100: one timer tick is this / 1356 us
        self._ready = False             # chip sits in Transceive with an empty FIFO
        self._framing = 0
        self._timeout_us = 0

    # The SPI helpers allocate nothing on the way out (preallocated buffers) and use no
    # try/finally: an SPI call does not fail on the reader, and if NSS were ever left low the
    # next transaction's garbage is caught by the sanity checks, which reset the chip.

    def read(self, reg):
        tx = self._rtx
        tx[0] = 0x80 | (reg << 1)
        rx = self._rx1
        cs = self.cs
        cs(0)
        self.spi.write_readinto(tx, rx)
        cs(1)
        return rx[1]

    def read_many(self, regs):
        """Several registers in one SPI transaction; returns a bytearray of their values."""
        tx = bytearray(len(regs) + 1)
        for i in range(len(regs)):
            tx[i] = 0x80 | (regs[i] << 1)
        rx = bytearray(len(tx))
        cs = self.cs
        cs(0)
        self.spi.write_readinto(tx, rx)
        cs(1)
        return rx[1:]

    def write(self, reg, value):
        w = self._wbuf
        w[0] = reg << 1
        w[1] = value
        cs = self.cs
        cs(0)
        self.spi.write(w)
        cs(1)

    def _write_fifo(self, data):
        cs = self.cs
        cs(0)
        self.spi.write(_FIFO_WR + data)
        cs(1)

    def _read_fifo(self, n):
        tx = self._fifo_tx
        rx = self._fifo_rx
        tx[n] = 0
        cs = self.cs
        cs(0)
        self.spi.write_readinto(memoryview(tx)[:n + 1], memoryview(rx)[:n + 1])
        cs(1)
        tx[n] = _FIFO_RD[0]
        return bytes(rx[1:n + 1])

    def set_bits(self, reg, mask):
        v = self.read(reg)
        if v & mask != mask:
            self.write(reg, v | mask)

    def clear_bits(self, reg, mask):
        v = self.read(reg)
        if v & mask:
            self.write(reg, v & ~mask & 0xFF)

    # ---- time ------------------------------------------------------------------------------

    def now_us(self):
        return self._now()

    def elapsed_us(self, t0):
        return self._diff(self._now(), t0)

    def delay_us(self, us):
        if us > 0:
            self._sleep(us)

    # ---- bring-up and recovery -------------------------------------------------------------

    def _wait_awake(self, what):
        # After a (soft or hard) reset or leaving power-down the oscillator starts up; the
        # PowerDown bit reads 1 until the chip is ready (data sheet 8.6.2).
        t0 = self._now()
        for _ in range(200):
            v = self.read(COMMAND)
            if v & POWER_DOWN == 0 and v != 0xFF:
                return
            if self._diff(self._now(), t0) > 100000:
                break
            self._sleep(50)
        raise CardError(rferror.CHIP, what + ": chip does not wake up")

    def soft_reset(self):
        self.write(COMMAND, CMD_SOFT_RESET)
        self._reset_cache()
        self._sleep(50)
        self._wait_awake("soft reset")

    def hard_reset(self):
        """Pulse NRSTPD: hard power-down, then a reset on the rising edge."""
        self._reset_cache()
        if self.rst is None:
            self.write(COMMAND, CMD_SOFT_RESET)
            self._sleep(50)
        else:
            self.cs(1)
            self.rst(0)
            self._sleep(100)           # t_reset >= 100 ns; be generous
            self.rst(1)
            self._sleep(100)
        self.resets += 1
        self._wait_awake("hard reset")

    def init(self):
        """Soft reset and configure: timer with TAuto, 100 % ASK, CRC preset 6363h, gain,
        106 kbit/s both ways, antenna on. Raises CardError(CHIP) if the chip is not there."""
        self.healthy = False
        self.soft_reset()
        v = self.read(VERSION)
        if v not in KNOWN_VERSIONS:
            raise CardError(rferror.CHIP, "VersionReg %02x" % v)
        self.version = v
        self.write(TX_MODE, 0x00)
        self.write(RX_MODE, 0x00)
        self.write(MOD_WIDTH, MOD_WIDTH_BY_RATE[106])
        self.write(TX_ASK, 0x40)              # Force100ASK
        self.write(MODE, 0x3D)                # TxWaitRF, PolMFin high, CRC preset 6363h
        self.write(RF_CFG, RX_GAIN.get(self.gain_db, 0x70))
        self.write(COLL, 0x00)                # ValuesAfterColl = 0: bits after a collision read 0
        self.write(COM_IEN, 0x80 | IRQ_RX | IRQ_IDLE | IRQ_TIMER)  # IRQ pin active low
        self.write(DIV_IEN, 0x80)             # IRQ pin push-pull
        self._set_timer(5000)
        self.antenna(True)
        self.healthy = True

    def recover(self):
        """Hard reset (NRSTPD) and re-init, a few attempts. Raises CardError(CHIP) if the chip
        still does not answer; calling again later retries."""
        last = None
        for _ in range(3):
            try:
                self.hard_reset()
                self.init()
                return
            except CardError as e:
                last = e
        self.healthy = False
        raise CardError(rferror.CHIP, "recovery failed: " + (last.detail if last else ""))

    def ensure(self):
        """Make sure the chip is usable before an operation (recover if it was found hung)."""
        if not self.healthy:
            self.recover()

    def alive(self):
        """VersionReg still reads what init found (one SPI read, no side effects)."""
        return self.read(VERSION) == self.version

    def check(self):
        """Cheap health check: VersionReg must read back a known value."""
        try:
            v = self.read(VERSION)
        except OSError:
            v = -1
        if v != self.version or v not in KNOWN_VERSIONS:
            self._fault("VersionReg %02x" % (v & 0xFF))
        return True

    def _fault(self, what):
        # The chip stopped answering: count it, reset it at once, and fail this operation.
        self.chip_faults += 1
        self.healthy = False
        try:
            self.recover()
        except CardError:
            pass
        raise CardError(rferror.CHIP, what)

    def antenna(self, on):
        v = self.read(TX_CONTROL)
        if on:
            if v & 0x03 != 0x03:
                self.write(TX_CONTROL, v | 0x03)
        elif v & 0x03:
            self.write(TX_CONTROL, v & 0xFC)
        self._ready = False

    def power_down(self):
        """Soft power-down between polls (data sheet 8.6.2): oscillator, receiver and
        transmitter off; registers kept."""
        self.write(COMMAND, POWER_DOWN)
        self._ready = False

    def power_up(self):
        self.write(COMMAND, CMD_IDLE)
        self._wait_awake("power up")
        self._ready = False

    def self_test(self):
        """Digital self-test (data sheet 16.1.1). True if the FIFO holds the reference bytes of
        this chip version, False if it does not, None if the version has no reference (clones).
        The chip is re-initialised afterwards."""
        try:
            self.soft_reset()
            self.write(FIFO_LEVEL, 0x80)
            self._write_fifo(bytes(25))
            self.write(COMMAND, CMD_MEM)
            self._wait_idle(20000, IRQ_IDLE)
            self.write(AUTO_TEST, 0x09)
            self.write(FIFO_LEVEL, 0x80)
            self._write_fifo(b"\x00")
            self.write(COMMAND, CMD_CALC_CRC)
            t0 = self._now()
            n = 0
            for _ in range(2000):
                n = self.read(FIFO_LEVEL)
                if n >= FIFO_SIZE:
                    break
                if self._diff(self._now(), t0) > 100000:
                    break
            self.write(COMMAND, CMD_IDLE)
            got = self._read_fifo(FIFO_SIZE) if n >= FIFO_SIZE else b""
            self.write(AUTO_TEST, 0x00)
            ref = SELFTEST.get(self.version)
            if ref is None:
                return None
            return got == ref
        finally:
            self.init()

    # ---- timer, CRC, bit rate --------------------------------------------------------------

    def _set_timer(self, timeout_us):
        if timeout_us == self._timeout_us:
            return
        p, reload = timer_regs(timeout_us)
        self._tick_x100 = (2 * p + 1) * 100
        tmode = 0x80 | (p >> 8)                # TAuto
        if tmode != self._tmode:
            self.write(T_MODE, tmode)
            self._tmode = tmode
        if p & 0xFF != self._tpresc:
            self.write(T_PRESCALER, p & 0xFF)
            self._tpresc = p & 0xFF
        if reload != self._treload:
            if (reload >> 8) != (self._treload >> 8) or self._treload < 0:
                self.write(T_RELOAD_H, reload >> 8)
            if (reload & 0xFF) != (self._treload & 0xFF) or self._treload < 0:
                self.write(T_RELOAD_L, reload & 0xFF)
            self._treload = reload
        self._timeout_us = timeout_us

    def set_crc(self, tx, rx):
        """Hardware CRC_A on transmission (TxModeReg.TxCRCEn) and reception (RxCRCEn)."""
        txm = (self._txmode & 0x7F) | (0x80 if tx else 0)
        rxm = (self._rxmode & 0x7F) | (0x80 if rx else 0)
        if txm != self._txmode:
            self.write(TX_MODE, txm)
            self._txmode = txm
        if rxm != self._rxmode:
            self.write(RX_MODE, rxm)
            self._rxmode = rxm

    def set_bitrate(self, tx_kbps, rx_kbps=None):
        """Bit rate PCD->PICC (tx) and PICC->PCD (rx): 106, 212, 424 or 848 kbit/s."""
        if rx_kbps is None:
            rx_kbps = tx_kbps
        if tx_kbps not in SPEED_BITS or rx_kbps not in SPEED_BITS:
            raise CardError(rferror.UNSUPPORTED, "bit rate")
        txm = (self._txmode & 0x8F) | SPEED_BITS[tx_kbps]
        rxm = (self._rxmode & 0x8F) | SPEED_BITS[rx_kbps]
        if txm != self._txmode:
            self.write(TX_MODE, txm)
            self._txmode = txm
        if rxm != self._rxmode:
            self.write(RX_MODE, rxm)
            self._rxmode = rxm
        if tx_kbps != self._bitrate_tx:
            self.write(MOD_WIDTH, MOD_WIDTH_BY_RATE[tx_kbps])
        self._tx_bit_ns = 9440 * 106 // tx_kbps
        self._rx_byte_ns = 84960 * 106 // rx_kbps
        self._rx5_us = 47200 * 106 // rx_kbps // 1000
        self._bitrate_tx = tx_kbps
        self._bitrate_rx = rx_kbps

    def bitrate(self):
        return self._bitrate_tx, self._bitrate_rx

    def calc_crc(self, data):
        """CRC_A of data by the chip's coprocessor (CalcCRC), as the two bytes sent LSB first."""
        if len(data) > FIFO_SIZE:
            raise CardError(rferror.TOO_LONG, "CalcCRC input")
        self.write(COMMAND, CMD_IDLE)
        self._ready = False
        self.write(DIV_IRQ, 0x04)              # clear CRCIRq (Set2 = 0)
        self.write(FIFO_LEVEL, 0x80)
        self._write_fifo(bytes(data))
        self.write(COMMAND, CMD_CALC_CRC)
        t0 = self._now()
        for _ in range(500):
            if self.read(DIV_IRQ) & DIV_CRC:
                r = self.read_many((CRC_RESULT_L, CRC_RESULT_H))
                self.write(COMMAND, CMD_IDLE)
                return bytes((r[0], r[1]))
            if self._diff(self._now(), t0) > self.slack_us:
                break
        self._fault("CalcCRC never finished")
        return b""

    # ---- communication ---------------------------------------------------------------------

    def _poll_limit(self, timeout_us):
        if self.max_polls is not None:
            return self.max_polls
        return 2000 + timeout_us // 10

    def _wait_idle(self, timeout_us, mask, first_us=0):
        """Poll ComIrqReg until one of mask's bits is set (a command other than Transceive
        ending), with the same growing pauses as a transceive; bounded by iterations and time."""
        if first_us:
            self._sleep(first_us)
        now = self._now
        t0 = now()
        budget = timeout_us + self.slack_us
        pmin = self.poll_min_us
        for _ in range(self._poll_limit(timeout_us)):
            irq = self.read(COM_IRQ)
            if irq & mask:
                return irq
            el = self._diff(now(), t0)
            if el > budget:
                break
            w = el >> 2
            self._sleep(pmin if w < pmin else w)
        self._fault("command never finished")
        return 0

    def transceive_raw(self, data, timeout_us, tx_last_bits=0, rx_align=0, expect=0, check=False,
                       pre=0, learn=None):
        """Send a frame and receive the answer. Returns (rx, last_bits, error, coll):
        rx the FIFO content (a bytearray), last_bits the valid bits of its last byte (0 = all
        8), error the ErrorReg value, coll the CollReg value. Raises CardError(TIMEOUT) when the
        timer expires with nothing received, CardError(CHIP) when the chip misbehaves.

        expect: the number of bytes the answer is expected to leave in the FIFO (0 = unknown).
        check=True: return what transceive() returns (the answer bytes, errors raised) without
        a second call layer; the ISO-DEP block path runs through it once per frame.
        pre=1: data starts with the FIFODataReg write address (FIFO_WRITE), the frame follows:
        the FIFO is filled straight from the caller's buffer (no copy).

        It only shapes the waiting: once the answer is seen arriving, the driver sleeps until
        the expected last byte (and CRC) should be in instead of polling every few bytes. A
        wrong value costs time (one more poll, or a wait past a shorter answer), never data.
        learn: a key naming the kind of command (None: none). The card's answer delay is
        measured for it (the timer, started by TAuto at the end of the frame, stops at the
        answer's 5th bit) and the next frame with the same key sleeps that delay plus the
        expected answer before its first poll. A delay that fell is taken at once, one that
        rose by a quarter of the rise, so one slow answer costs later frames little; a wrong
        value again costs time, never data.

        Steady state (the chip already in Transceive with an empty FIFO) costs five SPI
        transactions plus the status polls: clear ComIrq, fill the FIFO, StartSend, [poll],
        read the FIFO, clear StartSend."""
        n = len(data) - pre
        if n <= 0 or n > FIFO_SIZE:
            raise CardError(rferror.TOO_LONG, "frame of %d bytes" % n)
        self.frames += 1
        cs = self.cs
        spi = self.spi
        ready = self._ready
        if not ready:
            self.write(COMMAND, CMD_IDLE)
            self.write(FIFO_LEVEL, 0x80)
        plain = not (tx_last_bits or rx_align)
        if not plain:
            cs(0)
            spi.write(_W_CLEAR_IRQ)
            cs(1)
        cs(0)
        spi.write(data if pre else _FIFO_WR + data)
        cs(1)
        if timeout_us != self._timeout_us:
            self._set_timer(timeout_us)
        if not ready:
            if self._framing:
                self.write(BIT_FRAMING, 0)
            self.write(COMMAND, CMD_TRANSCEIVE)
        now = self._now
        if plain:
            cs(0)
            spi.write(_W_START_SEND)
            cs(1)
            t0 = now()
            # While the frame is on air (it lasts longer than these two writes, and no answer
            # can end before it plus the frame delay): clear the previous frame's interrupt
            # bits and StartSend (the transmitter latched it; whole bytes, RxAlign 0, so
            # nothing of the reception depends on BitFramingReg). Both writes are then off the
            # critical path instead of before the frame and after its answer.
            cs(0)
            spi.write(_W_CLEAR_IRQ)
            cs(1)
            cs(0)
            spi.write(_W_FRAMING_0)
            cs(1)
            self._framing = 0
        else:
            self.write(BIT_FRAMING, 0x80 | (rx_align << 4) | tx_last_bits)
            t0 = now()
            self._framing = 0x80
        # Wait for the end of the reception or the timer. Nothing can be complete before our
        # frame is on air, the minimum frame delay has passed and (when the caller knows how
        # long the answer is) that many bytes have come in, so sleep that long first; then
        # poll with a pause that grows with the time already waited (a quarter of it), which
        # bounds the overshoot while keeping the number of SPI polls (and CPU) small.
        if tx_last_bits:
            bits = n * 9 - 7 + tx_last_bits
        else:
            bits = n * 9 + 2
            if self._txmode & 0x80:
                bits += 18
        rxb = self._rx_byte_ns
        if expect and self._rxmode & 0x80:
            expect += 2                 # the CRC_A still has to arrive after the last data byte
        tx_us = (bits * self._tx_bit_ns) // 1000
        span = expect * rxb // 1000                 # the expected answer on air
        first = tx_us + 80 + span
        known = None
        if learn is not None:
            known = self.delays.get(learn)
            if known is not None:
                first = tx_us + known + span
        sleep = self._sleep
        diff = None if self._diff is _sub else self._diff      # plain clocks: no call
        if self.idle is not None:
            # the frame is on its way: do the caller's waiting-time work now (the sleep below
            # is shortened by whatever time it took)
            self._run_idle()
        el = now() - t0 if diff is None else diff(now(), t0)
        if first > el:
            sleep(first - el)
        if learn is None:
            ptx = _POLL_TX
            rx = self._rxp
        else:
            ptx = _POLL_TX_T
            rx = self._rxpt
        st = None
        polled = self.irq is None
        if polled:
            # the usual case, the answer in at the first look: no polling loop to set up
            cs(0)
            spi.write_readinto(ptx, rx)
            cs(1)
            if rx[1] & (IRQ_RX | IRQ_TIMER | IRQ_IDLE):
                st = rx
        if st is None:
            st = self._wait_rx(t0, tx_us, timeout_us, expect, rxb, span, polled, ptx, rx)
        self.last_rx_us = now()
        if st is None:
            self._ready = False
            self._fault("no RxIRq/TimerIRq within %d us" % (tx_us + timeout_us + self.slack_us))
            return b"", 0, 0, 0
        irq = st[1]
        err = st[2]
        level = st[3]
        if level > FIFO_SIZE or err & 0x20:
            # FIFOLevel beyond 64 or a reserved ErrorReg bit: the chip is not answering sanely
            self._ready = False
            self._fault("garbage status irq=%02x err=%02x level=%d" % (irq, err, level))
        if err & (ERR_TEMP | ERR_WR):
            self._ready = False
            if err & ERR_TEMP:
                self._fault("overheated (TempErr)")
            raise CardError(rferror.CHIP, "WrErr")
        last_bits = st[4] & 0x07
        coll = st[5]
        if learn is not None and irq & IRQ_RX:
            # the answer delay: timer ticks from the end of our frame to the answer's 5th bit
            # (where TAuto stopped it), less those 5 bits
            d = (self._treload - ((st[6] << 8) | st[7])) * self._tick_x100 // 1356 - self._rx5_us
            if d != known:
                self._learn(learn, d, known)
        if self._framing:
            cs(0)
            spi.write(_W_FRAMING_0)
            cs(1)
            self._framing = 0
        if not irq & IRQ_RX:
            # Timer ran out (or the command stopped) before a frame came in. A hung chip can
            # look like that too: make sure it still answers before calling it a timeout.
            self.write(COMMAND, CMD_IDLE)
            self._ready = False
            if level:
                self.write(FIFO_LEVEL, 0x80)
            if not self.alive():
                self._fault("VersionReg changed (after a timeout)")
            if err & ERR_BUFFER_OVFL:
                raise CardError(rferror.TOO_LONG, "FIFO overflow")
            raise CardError(rferror.TIMEOUT, "no answer")
        if not level and not err and not last_bits and not self.alive():
            # an empty frame with no error is what garbage status bytes look like
            self._ready = False
            self._fault("VersionReg changed (empty frame)")
        if level:
            mv = self._mv[level]
            if mv is None:
                mv = (memoryview(self._fifo_tx)[:level + 1], memoryview(self._fifo_rx)[:level + 1])
                self._mv[level] = mv
            ftx = self._fifo_tx
            ftx[level] = 0
            cs(0)
            spi.write_readinto(mv[0], mv[1])
            cs(1)
            ftx[level] = _FIFO_RD[0]
            data_rx = self._fifo_rx[1:level + 1]
        else:
            data_rx = bytearray()
        if err & ERR_BUFFER_OVFL:
            self.write(COMMAND, CMD_IDLE)
            self.write(FIFO_LEVEL, 0x80)
            self._ready = False
        else:
            self._ready = True
        if check:
            if err or last_bits:
                return self._checked(data_rx, last_bits, err, coll)
            return data_rx
        return data_rx, last_bits, err, coll

    def _wait_rx(self, t0, tx_us, timeout_us, expect, rxb, span, polled, tx, rx):
        """Poll until the answer is in or the timer ran out: the status bytes (rx, read by the
        transaction tx), or None past the budget. polled: the first status read was done and
        showed neither."""
        cs = self.cs
        spi = self.spi
        now = self._now
        sleep = self._sleep
        diff = None if self._diff is _sub else self._diff      # plain clocks: no call
        budget = tx_us + timeout_us + self.slack_us
        span = (span * 3) >> 2          # most of the expected answer's time on air
        pmin = self.poll_min_us
        pmax = self.poll_max_us
        irqpin = self.irq
        rxw = rxb * self.rx_poll_bytes // 1000
        if not polled:
            rx[3] = 0
        if irqpin is not None:
            pmin = self.irq_poll_us
        limit = self.max_polls or 2000 + timeout_us // 10
        for i in range(limit):
            if polled:
                polled = False
            elif irqpin is None or not irqpin.value() or i & 31 == 31:
                # (with an IRQ pin: read the registers once it is active (low), and every 32nd
                # turn anyway, so a stuck pin cannot stall the wait)
                cs(0)
                spi.write_readinto(tx, rx)
                cs(1)
                if rx[1] & (IRQ_RX | IRQ_TIMER | IRQ_IDLE):
                    return rx
            el = now() - t0 if diff is None else diff(now(), t0)
            if el > budget:
                break
            w = el >> 2
            if irqpin is not None:
                # a pin read is cheap and the pin alone cannot show a frame arriving (no FIFO
                # level): look again after the short pause, never a growing quarter of the wait
                w = pmin
            elif w < span:
                # the expected answer lasts long enough that pausing most of its length
                # still finds it arriving (and then the wait below ends with it)
                w = span
            if w < pmin:
                w = pmin
            elif w > pmax:
                w = pmax
            lv = rx[3]
            if lv:
                # A frame is arriving: sleep until its expected end (bytes still to come at the
                # receive rate, plus a little), else look again after a few more bytes.
                if expect > lv:
                    w = (expect - lv) * rxb // 1000 + 12
                elif w > rxw:
                    w = rxw
            sleep(w)
        return None

    def _learn(self, key, d, old):
        # a new answer delay d for key (old: the one known, or None): a fall is taken at once,
        # a rise by a quarter; the table is replaced, not changed in place
        if d < 0 or d > DELAY_LEARN_MAX_US:
            return
        if old is not None and d > old:
            d = old + ((d - old + 3) >> 2)
        delays = dict(self.delays)
        delays[key] = d
        self.delays = delays

    def _run_idle(self):
        # the registered job, once; a failing one just leaves no result (the caller computes
        # it after the answer) and the frame in flight is still collected
        job = getattr(self, "idle")         # (getattr: any callable, for the type checker)
        hook = getattr(self, "job_hook")
        self.idle = None
        try:
            if hook is None:
                self.idle_result = job(*self.idle_args)
            else:
                self.idle_result = hook(job, self.idle_args)
        except Exception:  # noqa: BLE001
            pass

    def transceive(self, data, timeout_us=5000, tx_last_bits=0, expect=0, learn=None):
        """Send a frame, return the answer bytes. Errors become CardError: CRC or parity ->
        CRC, collision -> COLLISION, FIFO overflow -> TOO_LONG, framing -> PROTOCOL. A 4-bit
        answer is returned as one byte (ACK/NAK of Classic and NTAG) unless the hardware CRC
        check is on, in which case it raises CardError(STATUS, "nak XX") for anything but ACK.
        learn: see transceive_raw."""
        return self.transceive_raw(data, timeout_us, tx_last_bits, 0, expect, True, 0, learn)

    def _checked(self, rx, last_bits, err, coll):
        # transceive()'s verdict on an answer with error bits or an incomplete last byte
        if len(rx) == 1 and last_bits == 4 and not err & (ERR_COLL | ERR_BUFFER_OVFL):
            v = rx[0] & 0x0F
            if self._rxmode & 0x80 and v != 0x0A:
                raise CardError(rferror.STATUS, "nak %x" % v)
            return bytes((v,))
        if err:
            if err & ERR_BUFFER_OVFL:
                raise CardError(rferror.TOO_LONG, "frame beyond the FIFO")
            if err & ERR_COLL:
                raise CardError(rferror.COLLISION, "collision at %d" % (coll & 0x1F))
            if err & (ERR_CRC | ERR_PARITY):
                raise CardError(rferror.CRC, "crc" if err & ERR_CRC else "parity")
            raise CardError(rferror.PROTOCOL, "ErrorReg %02x" % err)
        if last_bits:
            raise CardError(rferror.PROTOCOL, "incomplete last byte (%d bits)" % last_bits)
        return rx

    def mf_authent(self, key_type, block, key, uid4, timeout_us=10000):
        """MIFARE Classic three-pass authentication by the chip's Crypto1 unit (MFAuthent).
        key_type 0x60 (key A) or 0x61 (key B). Raises CardError(AUTH) if the card refused."""
        if len(key) != 6 or len(uid4) != 4:
            raise CardError(rferror.PROTOCOL, "MFAuthent arguments")
        self.write(COMMAND, CMD_IDLE)
        self._ready = False
        self.write(COM_IRQ, 0x7F)
        self.write(FIFO_LEVEL, 0x80)
        self._write_fifo(bytes((key_type, block)) + bytes(key) + bytes(uid4))
        self._set_timer(timeout_us)
        self.write(COMMAND, CMD_MF_AUTHENT)
        # four frames on air (auth command, Nt, {Nr, Ar}, At) and three frame delays at least
        irq = self._wait_idle(timeout_us, IRQ_IDLE | IRQ_TIMER | IRQ_ERR,
                              ((32 + 32 + 64 + 32 + 8) * 9 // 8) * self._tx_bit_ns // 1000 + 250)
        st = self.read_many((ERROR, STATUS2))
        self.write(COMMAND, CMD_IDLE)
        if st[1] & MF_CRYPTO1_ON:
            return
        if irq & IRQ_TIMER and not irq & IRQ_IDLE:
            raise CardError(rferror.AUTH, "no answer to authentication")
        raise CardError(rferror.AUTH, "authentication failed (ErrorReg %02x)" % st[0])

    def stop_crypto1(self):
        self.clear_bits(STATUS2, MF_CRYPTO1_ON)

    def reset_protocol(self):
        """Back to ISO 14443-3 defaults for the next card: 106 kbit/s, no CRC, Crypto1 off."""
        self.set_bitrate(106, 106)
        self.set_crc(False, False)
        self.stop_crypto1()


def _sub(a, b):
    return a - b
