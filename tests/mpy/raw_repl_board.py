# The interpreter behind the virtual serial board of tests/support/repl_device.py: the REAL
# MicroPython unix port, with a host folder mounted as its root file system ("/" is that folder,
# as "/" is the flash file system on an ESP32), running each code block the pty side received in
# one persistent namespace (what a board's raw REPL does between two soft resets).
#
#   micropython raw_repl_board.py ROOT TAG
#
# stdin: "<length>\n<code>" blocks. stdout: the code's own output, then "\0<TAG>E\n" and the
# traceback if it raised, then "\0<TAG>.\n". machine.reset() prints "\0<TAG>R\n" and exits: the
# host side counts the reset and starts a fresh interpreter (a rebooted board).
import os
import sys

ROOT = sys.argv[1]
TAG = sys.argv[2]

os.umount("/")
os.mount(os.VfsPosix(ROOT), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]   # an ESP32 build's sys.path

import machine as _machine  # noqa: E402


class _HardReset(Exception):
    pass


class _Machine:
    """The unix port's machine module, plus reset() / reset_cause() as a board has them."""

    def __getattr__(self, name):
        return getattr(_machine, name)

    def reset(self):
        raise _HardReset()

    def reset_cause(self):
        return 1


sys.modules["machine"] = _Machine()

_out = sys.stdout
_g = {"__name__": "__main__"}
while True:
    head = sys.stdin.buffer.readline()
    if not head:
        break
    n = int(head)
    code = b""
    while len(code) < n:
        got = sys.stdin.buffer.read(n - len(code))
        if not got:
            break
        code += got
    try:
        exec(code, _g)
    except _HardReset:
        _out.write("\0" + TAG + "R\n")
        break
    except BaseException as e:  # noqa: BLE001 - the REPL reports everything, KeyboardInterrupt too
        _out.write("\0" + TAG + "E\n")
        sys.print_exception(e, _out)
    _out.write("\0" + TAG + ".\n")
