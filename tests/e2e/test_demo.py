"""The README's main command: ``cbcc demo --check`` plays the whole story headless and its verdicts are
right; without ``--check`` it serves the console until stopped, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.micropython_runner import ROOT

CBCC = Path(sys.executable).parent / "cbcc"


def test_cbcc_demo_check_runs_green(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [str(CBCC), "demo", "--check", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
        check=False, timeout=400, env={**os.environ, "CBCC_LANG": "vi"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "Tất cả tình huống đúng" in text
    assert "Gateway: mọi sự kiện đến đủ, đúng một lần." in text
    assert "qua máy ghi thẻ ảo" in text  # cards issued through the virtual encoder
    assert "cửa bị giữ mở quá lâu" in text and "cửa bị mở cưỡng bức" in text
    assert "hn-snv-cua-sau" in text and "gửi lên khi có mạng lại" in text
    assert re.search(r"đăng nhập admin / mật khẩu \S{10,}", text)
    assert re.search(r"đăng nhập nhansu / mật khẩu \S{10,}", text)
    flat = " ".join(text.split())  # the console wraps long lines at spaces
    # The agency's people came from the national simulator through the gateway's sync.
    assert "5 người của cơ quan" in flat and "Đỗ Quang Minh" in flat
    # The story day, played live at the attendance terminal: on time, late, an early leave.
    day = re.search(r"ngày làm việc được diễn lại: (\d\d/\d\d/\d{4})", flat)
    assert day is not None, text
    assert re.search(r"Trần Văn Đức đúng giờ \(07:25–17:05\), Đỗ Quang Minh đi muộn \(07:48–17:06\), "
                     r"Nguyễn Thị Hương về sớm \(07:26–16:20\)", flat), text  # fmt: skip
    for hms in ("07:25:40", "07:48:10", "16:20:05"):  # the terminal's taps at the story day's hours
        assert f"{hms} {day.group(1)[:5]}" in flat
    # Doors by their names, and the HR officer's timesheet page in the console.
    for door in ("Cổng chính (cong-chinh)", "Sảnh tầng 1 (sanh-tang-1)", "Cửa sau (cua-sau)"):
        assert door in flat
    hr_page = r"\(đăng nhập bằng nhansu\): http://127\.0\.0\.1:\d+/console/attendance\?month=\d{4}-\d\d"
    assert re.search(hr_page, flat)
    sheets = sorted(p.name for p in out.glob("bang-cham-cong-*"))
    assert [p.rsplit(".", 1)[1] for p in sheets] == ["pdf", "xlsx", "xlsx"], sheets
    for name in sheets:
        assert f"{out / name}" in text.replace("\n", "")
    # Keys the demo leaves behind are encrypted at rest.
    for pem in out.glob("*.key.pem"):
        assert b"ENCRYPTED" in pem.read_bytes()


def test_cbcc_demo_serves_until_sigterm_then_stops_cleanly() -> None:
    proc = subprocess.Popen(
        [str(CBCC), "demo"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CBCC_LANG": "en", "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 400
    try:
        for line in proc.stdout:
            lines.append(line)
            if "The demo keeps running until Ctrl-C." in line or time.monotonic() > deadline:
                break
        text = "".join(lines)
        assert "The demo keeps running until Ctrl-C." in text, text
        url = re.search(r"web console: (http://127\.0\.0\.1:\d+/console/)", text)
        assert url is not None, text
        import httpx

        assert httpx.get(url.group(1) + "login", timeout=10).status_code == 200  # it is serving
        work = re.search(r"timesheet: (\S+)/bang-cham-cong-", text)
        assert work is not None, text
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not Path(work.group(1)).exists()  # the temporary folder (passphrase, keys) is gone
    try:
        httpx.get(url.group(1) + "login", timeout=3)
        raise AssertionError("the console still answers after SIGTERM")
    except httpx.TransportError:
        pass
