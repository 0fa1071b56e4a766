"""A real ``pcscd`` with vsmartcard's virtual reader (``vpcd``) on a free port, for the PC/SC encoder
tests. pcscd's client socket is fixed (/run/pcscd/pcscd.comm in Debian's build), so one test pcscd
runs at a time; a system pcscd already running is stopped for the test's duration only if the test
started nothing else — here we simply refuse to run beside one (skip, or fail under CI=true)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SOCKET = Path("/run/pcscd/pcscd.comm")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pcscd_with_vpcd(tmp: Path) -> Iterator[int]:
    """Start pcscd (foreground) whose only reader is vpcd; yields the port a virtual card connects to."""
    pcscd = shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)
    if pcscd is None or not VPCD_DRIVER.exists():
        _unavailable("pcscd and vsmartcard-vpcd are not installed (.ci/run installs them)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        _unavailable("pyscard is not installed (uv sync --extra pcsc)")
    if SOCKET.exists():
        _unavailable(f"a pcscd is already serving {SOCKET}")
    port = _free_port()
    conf = tmp / "reader.conf.d"
    conf.mkdir()
    (conf / "vpcd").write_text(f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{port:X}\n'
                               f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{port:X}\n")  # fmt: skip
    log = (tmp / "pcscd.log").open("w")
    proc = subprocess.Popen([str(pcscd), "-f", "-c", str(conf), "-i"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while "daemon ready" not in (tmp / "pcscd.log").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("pcscd did not start: " + (tmp / "pcscd.log").read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
