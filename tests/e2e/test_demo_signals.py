"""``cbcc demo`` (it serves until a signal) stopped by SIGTERM removes its temporary folder (issue 16):
before the signal handlers, it left a plaintext passphrase, the master key and the keys behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CBCC = str(Path(sys.executable).parent / "cbcc")


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBCC_")}
    env.update(CBCC_HOME=str(tmp / "home"), CBCC_PASSPHRASE="first hour passphrase", TMPDIR=str(tmp),
               LANG="C.UTF-8")  # fmt: skip
    return env


def test_demo_serve_stopped_by_sigterm_removes_its_temporary_folder(tmp_path: Path) -> None:
    """The folder holds a plaintext passphrase and the gateway's master key."""
    proc = subprocess.Popen(
        [CBCC, "demo"],  # serves until a signal by default
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + 300
    while "Ctrl-C" not in out and time.monotonic() < deadline and proc.poll() is None:
        out += proc.stdout.readline()
    assert "Ctrl-C" in out, out[-3000:]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("cbcc-demo-")], "the demo runs in TMPDIR"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode in (0, 143), rest
    assert "Traceback" not in rest
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith("cbcc-demo-")]
    assert left == [], f"temporary folders left behind: {left}"
