# Boot a reader's file system the way an ESP32 does (boot.py, then main.py), under the REAL
# MicroPython unix port: BOARD is mounted as "/" (the flash file system: /boot.py, /main.py,
# /lib/*.mpy or *.py, /reader.json or /encoder.json, /pinmap.json), the repository at /host for
# the simulated board (firmware/sim/as_board: machine and os) with one simulated DESFire card in
# the field. The serial line is stdin/stdout (a pty in the tests). On exit, stderr gets one JSON
# line: {"relay_high": n} — how often anything drove the lock relay's GPIO high (must be 0).
#
#   micropython boot_device.py BOARD REPO [UIDHEX [safe]]
#
# The safe-mode button (GPIO0, pulled up on the board) reads released, or held with "safe".
import os
import sys

BOARD = sys.argv[1]
REPO = sys.argv[2]
UID = sys.argv[3] if len(sys.argv) > 3 else "04a1b2c3d4e5f6"
SAFE_HELD = len(sys.argv) > 4 and sys.argv[4] == "safe"

os.umount("/")
os.mount(os.VfsPosix(BOARD), "/")
os.mount(os.VfsPosix(REPO), "/host")
os.chdir("/")
sys.path[:] = ["", "/host/firmware/sim/as_board", "/host/firmware", ".frozen", "/lib"]

import binascii  # noqa: E402
import json  # noqa: E402

import machine  # noqa: E402 - firmware/sim/as_board/machine.py
import sim  # noqa: E402
from sim.desfire_card import DesfireEV3  # noqa: E402

with open("/board_pins.py") as f:
    _src = f.read()
RELAY = int(_src.split("LOCK_RELAY = ")[1].split()[0])
_high = [0]
_Pin = machine.Pin


class _RecordingPin(_Pin):
    """as_board's Pin, counting every high level driven on the relay's GPIO."""

    def __init__(self, id, mode=-1, pull=-1, value=None, *args, **kwargs):
        if id == RELAY and value:
            _high[0] += 1
        _Pin.__init__(self, id, mode, pull, value)
        if id == 0:  # the BOOT / safe-mode button: the board's pull-up, unless held
            _Pin.value(self, 0 if SAFE_HELD else 1)

    def value(self, v=None):
        if v and self.id == RELAY:
            _high[0] += 1
        return _Pin.value(self, v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def high(self):
        self.value(1)


class I2C:
    """An I2C bus with nothing on it (no RTC, no display, no expander)."""

    def __init__(self, *args, **kwargs):
        pass

    def scan(self):
        return []

    def writeto(self, *args):
        raise OSError(19)

    def readfrom_mem(self, *args):
        raise OSError(19)

    def writeto_mem(self, *args):
        raise OSError(19)


machine.Pin = _RecordingPin
machine.I2C = I2C
rig = sim.Rig(seed=1)
rig.field.add(DesfireEV3(uid=binascii.unhexlify(UID)))
machine.attach(rig)


class _RigTime:
    """The MFRC522 driver's clock: the rig's simulated microseconds (RF takes sim time)."""

    def ticks_us(self):
        return int(rig.clock.us)

    def ticks_diff(self, a, b):
        return a - b

    def sleep_us(self, us):
        rig.sleep_us(us)


import board_esp32  # noqa: E402 - /lib, as main.py will find it

board_esp32.EspBoard.timebase = _RigTime()

for name in ("/boot.py", "/main.py"):
    try:
        exec(open(name).read(), {"__name__": "__main__"})
    except OSError as e:
        sys.stderr.write("boot: %s: %r\n" % (name, e))
sys.stderr.write(json.dumps({"relay_high": _high[0]}) + "\n")
