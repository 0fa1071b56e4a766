"""On a real ESP32 only (a bench with a board on USB): ``CBCC_HW_PORT=/dev/ttyUSB0 uv run pytest
tests/hardware/test_reader_on_a_board.py``. Skipped everywhere else, CI included: what runs without
a board is in tests/cbcc/test_reader_setup.py (the same commands against a virtual board).

- MicroPython answers on the port (``mpremote exec``), and reports the pinned release;
- ``cbcc reader deploy`` copies the compiled firmware and the board's SHA-256 of every file matches;
- a second deploy copies nothing (every file "Up to date").

Flashing (``cbcc reader flash``) is left to the operator: it erases the board.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cbcc.app import app

PORT = os.environ.get("CBCC_HW_PORT", "")
pytestmark = pytest.mark.skipif(not PORT, reason="needs an ESP32 on a serial port (CBCC_HW_PORT)")


def test_micropython_answers() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", PORT, "exec", "import os; print(os.uname().release)"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith("1.26"), p.stdout


def test_deploy_on_the_board_is_checked_and_idempotent() -> None:
    r = CliRunner().invoke(app, ["reader", "deploy", "--port", PORT], env={"CBCC_LANG": "en"})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["reader", "deploy", "--port", PORT], env={"CBCC_LANG": "en"})
    assert r.exit_code == 0, r.output
