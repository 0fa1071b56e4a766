# The simulator as an ESP32 (or ESP8266) board: what MicroPython's `machine` module offers to an
# MFRC522 driver — Pin(number, mode, ...), SPI(id, baudrate=..., sck=..., mosi=..., miso=...),
# SoftSPI — with GPIO numbers wired to the simulated MFRC522 of a sim.Rig by a wiring table.
# A driver written by others imports `machine` and runs unchanged; the test that owns the rig
# calls attach() first (docs/simulator.md, "The simulator as a board").
#
#   import machine                      # this file: firmware/sim/board first on the path
#   machine.attach(rig)                 # wiring: hardware/pinmap.json, board esp32-devkitc
#   machine.attach(rig, {"sysname": "esp8266", "rfid_sck": 0, "rfid_mosi": 2, "rfid_miso": 4,
#                        "rfid_rst": 5, "rfid_ss": 14})      # another board's wiring
#
# Pins: the wired NSS, NRSTPD and IRQ numbers are the rig's own pins (so the chip sees the
# driver's levels); any other number is a free GPIO. SPI: connected to the chip only when its
# SCK, MOSI and MISO are the wired ones (given as Pin objects or numbers, or the ESP32's default
# pins of a hardware SPI id); an SPI on other pins reads 0xFF, as a bus with nothing on it.
import json

from sim.machine_shim import SPI as _ShimSPI
from sim.machine_shim import Pin as _ShimPin

_state = {"rig": None, "wiring": {}, "sysname": "esp32"}  # type: dict

# ESP32 hardware SPI default pins (MicroPython esp32 port): id -> (sck, mosi, miso)
_ESP32_SPI_PINS = {1: (14, 13, 12), 2: (18, 23, 19)}
_ROLES = {"rfid_ss": "cs", "rfid_rst": "rst", "rfid_irq": "irq"}


def _pinmap_path():
    here = __file__.replace("\\", "/")
    root = here.rsplit("/", 4)[0] if here.count("/") >= 4 else "."
    return root + "/hardware/pinmap.json"


def load_pinmap(board="esp32-devkitc", path=None):
    """The RFID signals of one board of hardware/pinmap.json as a wiring table."""
    with open(path or _pinmap_path()) as f:
        pm = json.load(f)
    sig = pm["boards"][board]["signals"]
    w = {"sysname": "esp32"}
    for name in ("rfid_sck", "rfid_mosi", "rfid_miso", "rfid_ss", "rfid_rst", "rfid_irq"):
        s = sig.get(name)
        if s is not None and s.get("gpio") is not None:
            w[name] = s["gpio"]
    return w


def attach(rig, wiring=None):
    """Wire the rig's MFRC522 to GPIO numbers (a dict like load_pinmap's; default the project's
    pin map). `sysname` in the table is what os.uname()[0] reports (esp32, esp8266, ...)."""
    if wiring is None:
        wiring = load_pinmap()
    _state["rig"] = rig
    _state["wiring"] = dict(wiring)
    _state["sysname"] = wiring.get("sysname", "esp32")


def sysname():
    return _state["sysname"]


def _role_of(number):
    w = _state["wiring"]
    for sig in _ROLES:
        if w.get(sig) == number:
            return _ROLES[sig]
    return None


def _number(p):
    if isinstance(p, Pin):
        return p.id
    return p


class Pin:
    IN = _ShimPin.IN
    OUT = _ShimPin.OUT
    OPEN_DRAIN = _ShimPin.OPEN_DRAIN
    PULL_UP = _ShimPin.PULL_UP
    PULL_DOWN = _ShimPin.PULL_DOWN
    IRQ_RISING = _ShimPin.IRQ_RISING
    IRQ_FALLING = _ShimPin.IRQ_FALLING

    def __init__(self, id, mode=-1, pull=-1, value=None, *args, **kwargs):
        self.id = id
        rig = _state["rig"]
        role = _role_of(id)
        if rig is not None and role is not None:
            self._p = {"cs": rig.cs, "rst": rig.rst, "irq": rig.irq}[role]
        else:
            self._p = _ShimPin(None, "GPIO%s" % (id,), "gpio", 0)
        self._p.init(mode, pull, value)

    def __repr__(self):
        return "Pin(%s)" % (self.id,)

    def init(self, mode=-1, pull=-1, value=None, *args, **kwargs):
        self._p.init(mode, pull, value)

    def value(self, v=None):
        return self._p.value(v)

    def __call__(self, v=None):
        return self._p.value(v)

    def on(self):
        self._p.value(1)

    def off(self):
        self._p.value(0)

    def low(self):
        self._p.value(0)

    def high(self):
        self._p.value(1)

    def irq(self, handler=None, trigger=3, *args, **kwargs):
        return self._p.irq(handler, trigger)


class SPI(_ShimSPI):
    MASTER = 0

    def __init__(self, id=-1, baudrate=None, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None,
                 miso=None, *args, **kwargs):
        pins = (_number(sck), _number(mosi), _number(miso))
        if sck is None and id in _ESP32_SPI_PINS:
            pins = _ESP32_SPI_PINS[id]
        w = _state["wiring"]
        wired = (w.get("rfid_sck"), w.get("rfid_mosi"), w.get("rfid_miso"))
        rig = _state["rig"] if pins == wired else None
        self.id = id
        self.connected = rig is not None
        _ShimSPI.__init__(self, rig, id)
        _ShimSPI.init(self, baudrate, polarity, phase, bits, firstbit)

    def init(self, *args, **kwargs):
        # init() may name the pins again, or (WiPy style) a mode first; only settings change here
        baudrate = kwargs.get("baudrate")
        if baudrate is None and args and isinstance(args[0], int) and len(args) == 1:
            baudrate = args[0]
        _ShimSPI.init(self, baudrate, kwargs.get("polarity", 0), kwargs.get("phase", 0),
                      kwargs.get("bits", 8), kwargs.get("firstbit", 0))

    def _xfer(self, out):
        if self._rig is None:
            return b"\xff" * len(out)
        return _ShimSPI._xfer(self, out)


class SoftSPI(SPI):
    def __init__(self, baudrate=500000, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None,
                 miso=None, *args, **kwargs):
        SPI.__init__(self, -1, baudrate, polarity, phase, bits, firstbit, sck, mosi, miso)


def freq(hz=None):
    return 240000000 if hz is None else None


def reset_cause():
    return 1


def unique_id():
    return b"\x24\x0a\xc4\x00\x00\x01"
