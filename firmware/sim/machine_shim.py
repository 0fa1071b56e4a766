# Stand-ins for machine.SPI and machine.Pin wired to a simulated MFRC522 (see rig.py). A driver
# written for MicroPython's machine module takes these objects unmodified.
import sys


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, rig=None, name="", role="gpio", level=1):
        self._rig = rig
        self.name = name
        self._role = role           # "cs", "rst", "irq" or "gpio"
        self._level = 1 if level else 0
        self._mode = Pin.IN if role == "irq" else Pin.OUT
        self._handler = None
        self._trigger = 0

    def __repr__(self):
        return "Pin(%s)" % (self.name,)

    def init(self, mode=-1, pull=-1, value=None, *args, **kwargs):
        if mode != -1 and mode is not None:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if self._rig is not None:
            self._rig._pin_cost()
        if v is None:
            if self._role == "irq" and self._rig is not None:
                return self._rig._irq_level()
            return self._level
        new = 1 if v else 0
        if self._role == "irq":
            return None     # an input: driving it does nothing
        old = self._level
        self._level = new
        if self._rig is not None and old != new:
            self._rig._pin_edge(self._role, new)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def low(self):
        self.value(0)

    def high(self):
        self.value(1)

    def irq(self, handler=None, trigger=3, *args, **kwargs):
        self._handler = handler
        self._trigger = trigger
        if self._rig is not None and self._role == "irq":
            self._rig._irq_watch(self)
        return None


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, rig=None, id=1):
        self._rig = rig
        self.baudrate = 0
        self.polarity = 0
        self.phase = 0
        self.bits = 8
        self.firstbit = SPI.MSB
        self.init()

    def init(self, baudrate=None, polarity=0, phase=0, bits=8, firstbit=0, *args, **kwargs):
        if baudrate is not None:
            self.baudrate = baudrate
        elif not self.baudrate and self._rig is not None:
            self.baudrate = self._rig.spi_baudrate
        self.polarity = polarity
        self.phase = phase
        self.bits = bits
        self.firstbit = firstbit

    def deinit(self):
        pass

    def _xfer(self, out):
        if self._rig is None:
            return bytes(len(out))
        return self._rig._spi_transfer(self, bytes(out))

    def write(self, buf):
        self._xfer(buf)
        return None

    def read(self, nbytes, write=0x00):
        return self._xfer(bytes([write & 0xFF]) * nbytes)

    def readinto(self, buf, write=0x00):
        got = self._xfer(bytes([write & 0xFF]) * len(buf))
        for i in range(len(buf)):
            buf[i] = got[i]
        return None

    def write_readinto(self, write_buf, read_buf):
        got = self._xfer(write_buf)
        for i in range(len(read_buf)):
            read_buf[i] = got[i]
        return None


def install():
    """Make `import machine` resolve to these stand-ins where no machine module with SPI and Pin
    exists (CPython, the unix port), so a driver that imports machine at module level loads."""
    existing = sys.modules.get("machine")
    if existing is None:
        try:
            existing = __import__("machine")
        except ImportError:
            existing = None
    if existing is not None and hasattr(existing, "SPI") and hasattr(existing, "Pin"):
        return existing
    mod = sys.modules[__name__]
    sys.modules["machine"] = mod
    return mod


class Time:
    """Stand-in for MicroPython's `time` module on modelled time: a driver that takes its clock
    and sleeps from here (e.g. `drv = Driver(spi, cs, rst, time=rig.time)`) waits in modelled
    microseconds, so SFGT, FWT and reset delays cost what they would on the reader."""

    def __init__(self, rig):
        self._rig = rig

    def ticks_us(self):
        return int(self._rig.clock.now) & 0x3FFFFFFF

    def ticks_ms(self):
        return int(self._rig.clock.now / 1000) & 0x3FFFFFFF

    def ticks_add(self, ticks, delta):
        return (ticks + delta) & 0x3FFFFFFF

    def ticks_diff(self, end, start):
        d = (end - start) & 0x3FFFFFFF
        if d & 0x20000000:
            d -= 0x40000000
        return d

    def sleep_us(self, us):
        self._rig.sleep_us(us)

    def sleep_ms(self, ms):
        self._rig.sleep_us(ms * 1000)

    def sleep(self, s):
        self._rig.sleep_us(s * 1000000)
