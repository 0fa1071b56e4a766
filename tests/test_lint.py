"""Code-shape gates that run with the test suite: ruff, mypy (host, strict) and mypy on firmware
against MicroPython's own stubs."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from support.micropython_runner import ROOT

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, env=env)


def test_ruff_clean() -> None:
    proc = _run([str(BIN / "ruff"), "check", "."])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_on_host_code() -> None:
    proc = _run([str(BIN / "mypy")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _micropython_stub_tree(dest: Path) -> Path:
    """Link the .pyi files of the MicroPython stub distributions into one tree.

    micropython-esp32-stubs puts machine.pyi, time.pyi, hashlib.pyi … at the top of
    site-packages and micropython-stdlib-stubs ships a typeshed-shaped ``stdlib/``; mypy must see
    those and nothing else of the CPython environment.
    """
    for dist_name in ("micropython-esp32-stubs", "micropython-stdlib-stubs"):
        dist = metadata.distribution(dist_name)
        for f in dist.files or []:
            if f.suffix != ".pyi" and f.name != "VERSIONS":
                continue
            src = Path(str(f.locate()))
            target = dest / f.as_posix()
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(src)
    return dest


def test_mypy_on_firmware_with_micropython_stubs(tmp_path: Path) -> None:
    """Reader modules, tools and the RF simulator, against the stubs of the device they run on."""
    stubs = _micropython_stub_tree(tmp_path / "stubs")
    fw = ROOT / "firmware"
    env = {"MYPYPATH": f"{fw / 'lib'}:{fw / 'tools'}:{fw / 'device'}:{fw}:{stubs}", "PATH": str(BIN)}
    proc = _run(
        [
            str(BIN / "mypy"),
            "--config-file", "firmware/mypy.ini",
            "--custom-typeshed-dir", str(stubs),
            "--cache-dir", str(tmp_path / "cache"),
            "firmware/lib", "firmware/tools", "firmware/sim", "firmware/device",
        ],
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
