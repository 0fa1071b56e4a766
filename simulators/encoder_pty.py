"""A virtual serial encoder: the reader firmware in encoder mode (``firmware/tools/encoder_sim.py``)
under the MicroPython unix port, on the master side of a pseudo-terminal; the host opens the slave
side with pyserial exactly as it opens an ESP32's USB serial port. Used by tests and ``cbcc demo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tty
from pathlib import Path
from typing import Any

from simulators.firmware_runner import FIRMWARE_TOOLS, micropython_binary, micropython_env


class FirmwareOnPty:
    """``with FirmwareOnPty(blank=uid) as dev: SerialEncoder.open(dev.device)``; ``save`` gets the
    card's image when the line closes (a virtual reader can then tap that card)."""

    def __init__(self, *, blank: bytes | None = None, random_uid: bool = False, image: Path | None = None,
                 save: Path | None = None, version: int | None = None,
                 unplug_at: int = 0) -> None:  # fmt: skip
        self.args: list[str] = []
        if blank is not None:
            self.args += ["--blank", blank.hex(), "--random-uid", "1" if random_uid else "0"]
        if image is not None:
            self.args += ["--image", str(image)]
        if save is not None:
            self.args += ["--save", str(save)]
        if unplug_at:
            self.args += ["--unplug-at", str(unplug_at)]
        if version is not None:
            self.args += ["--version", str(version)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.device = ""
        self._slave = -1
        self.exit: dict[str, Any] = {}

    def __enter__(self) -> FirmwareOnPty:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        self._slave = slave
        tool = str(FIRMWARE_TOOLS / "encoder_sim.py")
        argv = [micropython_binary(), "-X", "heapsize=8M", tool, "-", *self.args]
        self.proc = subprocess.Popen(argv, stdin=master, stdout=master, stderr=subprocess.PIPE,  # noqa: S603 — argv list: the venv's micropython and the repo's tool; no shell
                                     env=micropython_env())  # fmt: skip
        os.close(master)
        err = self.proc.stderr
        line = err.readline() if err is not None else b""
        if b'"ready"' not in line:
            self.close()
            raise RuntimeError(f"the firmware encoder did not start: {line.decode(errors='replace')}")
        return self

    def close(self) -> None:
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1
        if self.proc is not None:
            try:
                _, err = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            for raw in err.decode(errors="replace").splitlines():
                if raw.startswith("{"):
                    self.exit = json.loads(raw)
            self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.close()
