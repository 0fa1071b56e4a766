"""A virtual MicroPython board on a pseudo-terminal, for ``mpremote`` (``cbcc reader deploy/setup``).

mpremote talks to a board through its **raw REPL** (Ctrl-A, then code ending in Ctrl-D; answers
``OK``, output, ``\\x04``, error output, ``\\x04``, ``>``) and its **raw-paste** mode (``\\x05A\\x01``
→ ``R\\x01`` + a flow-control window, ``\\x01`` for each window consumed, ``\\x04`` at the end). The
unix port offers neither on a pty, so this fixture speaks that protocol on the pty's master side and
hands every received block to the REAL unix-port ``micropython`` (``tests/mpy/raw_repl_board.py``),
whose ``/`` is a temporary folder: what mpremote writes lands in that folder as it would land in a
reader's flash. Soft reset (Ctrl-D at the raw prompt) and ``machine.reset()`` start a fresh
interpreter. Not modelled: boot.py/main.py runs after a reset, the friendly REPL's line editing,
baud rates and DTR/RTS (a pty has none).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import struct
import subprocess
import termios
import threading
import tty
from pathlib import Path

from simulators.firmware_runner import micropython_binary

BOARD_SCRIPT = Path(__file__).resolve().parents[1] / "mpy" / "raw_repl_board.py"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_BANNER = b"\r\nMicroPython v1.26.1 on cbcc-virtual; ESP32 module with ESP32\r\n>>> "
PASTE_WINDOW = 128


class ReplDevice:
    """``port`` is the device path to give mpremote; ``root`` the board's file system."""

    def __init__(self, root: Path, *, raw_paste: bool = True) -> None:
        self.root = root
        self.raw_paste = raw_paste  # False: answer R\x00 (a board without raw-paste, MicroPython < 1.14)
        root.mkdir(parents=True, exist_ok=True)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        self.port = os.ttyname(self._slave)
        self.resets = 0  # machine.reset() calls (a hard reset of the board)
        self.soft_resets = 0
        self.blocks: list[bytes] = []  # every code block executed, for assertions
        self._tag = secrets.token_hex(6)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="repl-device", daemon=True)

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> ReplDevice:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._kill()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> ReplDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _interp(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [micropython_binary(), "-X", "heapsize=4M", str(BOARD_SCRIPT), str(self.root), self._tag],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={"MICROPYPATH": ".frozen", "PATH": os.environ.get("PATH", "")},
            )  # fmt: skip
        return self._proc

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    # ---- the serial line ----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def _read_some(self) -> bytes:
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    return os.read(self.master, 4096)
                except OSError:  # no process has the slave side open right now
                    self._stop.wait(0.05)
        return b""

    def _serve(self) -> None:
        raw = False
        buf = bytearray()
        pending = bytearray()
        while not self._stop.is_set():
            if not pending:
                pending += self._read_some()
                if not pending:
                    continue
            b = pending[0]
            del pending[0]
            if b == 0x01:  # Ctrl-A: (re-)enter the raw REPL
                raw, buf = True, bytearray()
                self._write(b"\r\n" + RAW_BANNER)
            elif b == 0x02:  # Ctrl-B: friendly REPL
                raw, buf = False, bytearray()
                self._write(FRIENDLY_BANNER)
            elif b == 0x03:  # Ctrl-C: nothing runs between blocks; drop a half-typed one
                buf = bytearray()
                if not raw:
                    self._write(b"\r\nKeyboardInterrupt\r\n>>> ")
            elif not raw:
                if b == 0x04:
                    self._soft_reset(friendly=True)
            elif b == 0x05 and not buf:  # raw-paste request: 05 'A' 01
                while len(pending) < 2:
                    pending += self._read_some()
                    if self._stop.is_set():
                        return
                if bytes(pending[:2]) == b"A\x01":
                    del pending[:2]
                    if self.raw_paste:
                        self._execute(self._raw_paste(pending))
                    else:
                        self._write(b"R\x00")
                else:
                    buf.append(b)
            elif b == 0x04:
                if not buf:
                    self._soft_reset(friendly=False)
                else:
                    self._write(b"OK")
                    code, buf = bytes(buf), bytearray()
                    self._execute(code)
            else:
                buf.append(b)

    def _raw_paste(self, pending: bytearray) -> bytes:
        """Receive one block in raw-paste mode with MicroPython's flow control."""
        self._write(b"R\x01" + struct.pack("<H", PASTE_WINDOW) + b"\x01")
        code = bytearray()
        taken = 0
        while not self._stop.is_set():
            if not pending:
                pending += self._read_some()
                continue
            b = pending[0]
            del pending[0]
            if b == 0x04:
                self._write(b"\x04")
                return bytes(code)
            code.append(b)
            taken += 1
            if taken % PASTE_WINDOW == 0:
                self._write(b"\x01")
        return bytes(code)

    def _soft_reset(self, *, friendly: bool) -> None:
        self.soft_resets += 1
        self._kill()
        self._write(b"MPY: soft reboot\r\n" if friendly else b"soft reboot\r\n")
        self._write(FRIENDLY_BANNER if friendly else RAW_BANNER)

    def _execute(self, code: bytes) -> None:
        """Run one block in the interpreter; answer output \\x04 error \\x04 >."""
        self.blocks.append(code)
        proc = self._interp()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"%d\n" % len(code) + code)
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        out = bytearray()
        marker = b"\0" + self._tag.encode()
        while True:
            line = proc.stdout.readline()
            if not line:  # the interpreter died
                self._write(bytes(out) + b"\x04" + b"board crashed\r\n\x04>")
                self._kill()
                return
            at = line.find(marker)
            if at < 0:
                out += line
                continue
            out += line[:at]
            kind = line[at + len(marker) : at + len(marker) + 1]
            if kind == b"R":  # machine.reset(): mpremote does not wait for an answer
                self.resets += 1
                self._kill()
                return
            if kind == b"E":
                err = bytearray()
                while True:
                    line = proc.stdout.readline()
                    if not line or line.startswith(marker):
                        break
                    err += line
                self._write(_crlf(bytes(out)) + b"\x04" + _crlf(bytes(err)) + b"\x04>")
                return
            self._write(_crlf(bytes(out)) + b"\x04\x04>")
            return


def _crlf(data: bytes) -> bytes:
    """A board's stdout turns \\n into \\r\\n."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
