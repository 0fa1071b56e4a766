# os for the simulated board: MicroPython's own os, plus uname() saying which board the
# simulator plays (machine.attach(..., {"sysname": ...}); esp32 by default).
from uos import *  # noqa: F403 - the real module, extended


class _Uname:
    def __init__(self, sysname):
        self.sysname = sysname
        self.nodename = sysname
        self.release = "1.26.0"
        self.version = "v1.26.0 (cbcc simulator)"
        self.machine = "ESP32 module with ESP32" if sysname == "esp32" else sysname

    def __getitem__(self, i):
        return (self.sysname, self.nodename, self.release, self.version, self.machine)[i]

    def __len__(self):
        return 5


def uname():
    import machine

    return _Uname(machine.sysname())
