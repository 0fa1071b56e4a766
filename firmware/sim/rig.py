# The rig: one simulated MFRC522 on an SPI bus with its NSS, NRSTPD and IRQ pins, an RF field
# holding cards, and the timing model that charges every access.
from . import timing
from .field import Field
from .machine_shim import SPI, Pin, Time
from .mfrc522_chip import Chip
from .rng import Rng


class Rig:
    def __init__(self, bitrate_max=848, seed=None, version=0x92, spi_call_us=None,
                 pin_us=None, spi_baudrate=None):
        self.clock = timing.Clock()
        self.rng = Rng(seed)
        self.spi_call_us = timing.SPI_CALL_US if spi_call_us is None else spi_call_us
        self.pin_us = timing.PIN_CALL_US if pin_us is None else pin_us
        self.spi_baudrate = timing.SPI_DEFAULT_BAUDRATE if spi_baudrate is None else spi_baudrate
        self.bitrate_max = bitrate_max
        self.field = Field(self.clock, self.rng)
        self.chip = Chip(self.clock, self.field, self.rng.fork("chip"), version, bitrate_max)
        self.spi = SPI(self)
        self.cs = Pin(self, "NSS", "cs", 1)
        self.rst = Pin(self, "NRSTPD", "rst", 1)
        self.irq = Pin(self, "IRQ", "irq", 1)
        self.time = Time(self)
        self._irq_pins = []
        self._irq_last = self.chip.irq_pin_level()

    # ---- faults -------------------------------------------------------------------------------
    def chip_hang(self, hung=True, readback=None):
        """The MFRC522 stops answering: SPI reads return 00h/FFh garbage (or `readback`), writes
        are ignored, no command completes and the IRQ pin freezes. Only a hard reset through
        rig.rst (low, then high) brings it back; chip_hang(False) clears it for tests."""
        self.chip.hung = bool(hung)
        self.chip.hang_readback = readback

    # ---- called by the machine stand-ins --------------------------------------------------------
    def _spi_transfer(self, spi, out):
        n = len(out)
        baud = spi.baudrate or self.spi_baudrate
        cost = self.spi_call_us + n * 8 * 1e6 / baud
        self.clock.spi_calls += 1
        self.clock.spi_total_us += cost
        self.clock.advance(cost, "spi")
        chip = self.chip
        chip.sync()
        if baud > 10000000:
            chip._warn("spibaud", "SPI faster than the MFRC522's 10 Mbit/s")
        if not self.cs._level == 0:
            result = b"\xff" * n
        else:
            lsb = spi.firstbit == SPI.LSB
            got = bytearray(n)
            for i in range(n):
                b = out[i]
                if lsb:
                    b = _rev(b)
                m = chip.spi_byte(b)
                got[i] = _rev(m) if lsb else m
            result = bytes(got)
        self._after()
        return result

    def _pin_cost(self):
        self.clock.advance(self.pin_us, "spi")
        self.chip.sync()

    def _pin_edge(self, role, level):
        if role == "cs":
            self.chip.spi_select(level == 0)
        elif role == "rst":
            if level == 0:
                self.chip.hard_power_down()
            else:
                self.chip.hard_power_up()
        self._after()

    def _irq_level(self):
        if not self.chip.powered:
            return 1
        if self.chip.hung:
            return self._irq_last
        return self.chip.irq_pin_level()

    def _irq_watch(self, pin):
        if pin not in self._irq_pins:
            self._irq_pins.append(pin)

    def _after(self):
        level = self._irq_level()
        last = self._irq_last
        self._irq_last = level
        if level == last:
            return
        for pin in self._irq_pins:
            trig = pin._trigger
            if pin._handler is None:
                continue
            if (level == 0 and trig & Pin.IRQ_FALLING) or (level == 1 and trig & Pin.IRQ_RISING):
                pin._handler(pin)

    def sleep_us(self, us):
        self.clock.sleep_us(us)
        self.chip.sync()
        self._after()

    def sleep_ms(self, ms):
        self.sleep_us(ms * 1000.0)


def _rev(b):
    r = 0
    for i in range(8):
        if b & (1 << i):
            r |= 0x80 >> i
    return r
