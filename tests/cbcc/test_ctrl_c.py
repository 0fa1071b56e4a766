"""Ctrl-C on ``cbcc gateway run`` and ``cbcc demo`` (issue 16): the cleanup runs, the process exits
130 (128 + SIGINT, as a shell reports it) and says in one line, in the operator's language, that it
stopped on request — before, it ended silently."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from support.broker import free_port
from test_first_hour import CBCC, _env, run

STOPPED = "Đã dừng theo yêu cầu (Ctrl-C)."


def _terminal_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a job started in the background (as a test run may be)
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_port(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def test_ctrl_c_stops_the_gateway_with_one_line_and_exit_130(tmp_path: Path) -> None:
    assert run(tmp_path, "gateway", "init").returncode == 0
    http, mqtt, tls = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [CBCC, "gateway", "run", "--port", str(http), "--mqtt-port", str(mqtt), "--mqtt-tls-port", str(tls)],
        env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_terminal_sigint,
    )  # fmt: skip
    try:
        _wait_for_port(http, proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == STOPPED
    assert err.count(STOPPED) == 1


def test_ctrl_c_stops_the_demo_with_one_line_and_exit_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [CBCC, "demo"], env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=_terminal_sigint,
    )  # fmt: skip
    assert proc.stdout is not None
    out = ""
    try:
        deadline = time.monotonic() + 300
        while "Ctrl-C" not in out and time.monotonic() < deadline and proc.poll() is None:
            out += proc.stdout.readline()
        assert "Ctrl-C" in out, out[-3000:]
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == STOPPED
    assert "Đang dừng bản trình diễn" in rest  # what it stops while the operator waits
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("cbcc-demo-")] == []  # cleanup ran
