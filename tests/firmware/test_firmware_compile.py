"""Every firmware module must compile with mpy-cross: this catches CPython-only syntax."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.micropython_runner import ROOT, mpy_cross_binary

FIRMWARE_SOURCES = sorted((ROOT / "firmware").rglob("*.py"))


def test_there_is_firmware_to_compile() -> None:
    assert len(FIRMWARE_SOURCES) >= 8


@pytest.mark.parametrize("source", FIRMWARE_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles_with_mpy_cross(source: Path, tmp_path: Path) -> None:
    out = tmp_path / (source.stem + ".mpy")
    proc = subprocess.run(
        [mpy_cross_binary(), "-o", str(out), str(source)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
