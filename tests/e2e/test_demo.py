"""The README's main command works and its verdicts are right on both verifiers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.micropython_runner import ROOT


def test_cbcc_demo_runs_green(tmp_path: Path) -> None:
    cbcc = Path(sys.executable).parent / "cbcc"
    proc = subprocess.run(
        [str(cbcc), "demo", "--check", "--out", str(tmp_path / "demo")], cwd=ROOT, capture_output=True, text=True,
        check=False, timeout=300, env={**os.environ, "CBCC_LANG": "vi"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Tất cả tình huống đúng" in proc.stdout
    # Keys the demo leaves behind are encrypted at rest.
    for pem in (tmp_path / "demo").glob("*.key.pem"):
        assert b"ENCRYPTED" in pem.read_bytes()
