"""Putting the reader firmware on an ESP32: flash MicroPython (esptool), compile the firmware for the
chip (``mpy-cross -march=xtensawin``) and copy it (mpremote). ``cbcc reader flash`` / ``deploy``.

Why compile: ``.mpy`` files load without parsing on the device (faster boot, less heap than
``.py``); the ESP32's Xtensa LX6 is ``xtensawin`` for mpy-cross. ``boot.py`` and ``main.py`` stay
source (MicroPython runs only those names at boot). The MicroPython image itself is the user's
file or the pinned release below, checked against its SHA-256 before anything is written.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cbcc.errors import CbccError
from simulators.firmware_runner import FIRMWARE, mpy_cross_binary

# MicroPython for generic ESP32 boards, the release the firmware is tested against (unix port 1.26).
PINNED_IMAGE = "ESP32_GENERIC-20250911-v1.26.1.bin"
PINNED_URL = "https://micropython.org/resources/firmware/" + PINNED_IMAGE
FLASH_OFFSET = "0x1000"  # ESP32 (not S2/S3/C3): the bootloader lives at 0x1000
MPY_MAGIC = ord("M")
MPY_VERSION = 6  # .mpy format of MicroPython 1.19 and later
ARCH_XTENSAWIN = 10  # mpy header: feature byte >> 2


@dataclass(frozen=True)
class Compiled:
    files: dict[str, Path]  # device path -> local file


def check_image(image: Path, sha256: str | None) -> str:
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise CbccError(f"cannot read MicroPython image {image}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256.lower():
        raise CbccError(f"{image}: SHA-256 {digest} is not the expected {sha256}")
    if len(data) < 4096 or data[0] != 0xE9:  # ESP image magic
        raise CbccError(f"{image} is not an ESP32 firmware image")
    return digest


def esptool_commands(port: str, image: Path, baud: int = 460800, erase: bool = True) -> list[list[str]]:
    base = [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", port, "--baud", str(baud)]
    out = [[*base, "erase_flash"]] if erase else []
    out.append([*base, "write_flash", "-z", FLASH_OFFSET, str(image)])
    return out


def manifest_files() -> list[str]:
    """What ships to a reader, as ``firmware/manifest.py`` names it (``lib/x.py``, ``main.py`` …).

    Read with ``ast`` (only ``module("name", base_path="lib")`` calls count), not executed."""
    path = FIRMWARE / "manifest.py"
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "module":
            name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            base = next((k.value.value for k in node.keywords if k.arg == "base_path"
                         and isinstance(k.value, ast.Constant)), ".")  # fmt: skip
            if not isinstance(name, str) or not isinstance(base, str):
                raise CbccError(f"{path}: a module() entry that is not a plain string")
            out.append(name if base == "device" else f"{base}/{name}")
    return out


def compile_firmware(out: Path) -> Compiled:
    """The manifest's ``lib/*.py`` → ``out/lib/*.mpy`` for xtensawin; the device root's files
    (boot.py, main.py, board_pins.py) stay source: MicroPython runs only those names at boot."""
    lib = out / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for entry in manifest_files():
        if not entry.startswith("lib/"):
            files[entry] = FIRMWARE / "device" / entry
            continue
        src = FIRMWARE / entry
        dst = lib / (src.stem + ".mpy")
        cmd = [mpy_cross_binary(), "-march=xtensawin", "-o", str(dst), str(src)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 — argv list: mpy-cross and the repo's sources; no shell
        if p.returncode != 0:
            raise CbccError(f"mpy-cross failed on {src.name}: {p.stderr.strip()}")
        head = dst.read_bytes()[:4]
        # the arch field is set only for files holding native code; bytecode runs on any port
        if head[0] != MPY_MAGIC or head[1] != MPY_VERSION or head[2] >> 2 not in (0, ARCH_XTENSAWIN):
            raise CbccError(f"{dst.name}: not a MicroPython 1.19+ .mpy for xtensawin (header {head.hex()})")
        files[f"lib/{dst.name}"] = dst
    return Compiled(files)


def mpremote_copy_commands(port: str, compiled: Compiled) -> list[list[str]]:
    base = [sys.executable, "-m", "mpremote", "connect", port]
    cmds = [[*base, "fs", "mkdir", ":lib"]]
    for remote, local in sorted(compiled.files.items()):
        cmds.append([*base, "fs", "cp", str(local), f":{remote}"])
    cmds.append([*base, "reset"])
    return cmds


def run_all(cmds: list[list[str]], what: str) -> None:
    for cmd in cmds:
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 — argv list built above (esptool / mpremote, user's port and files); no shell
        if p.returncode != 0 and not (cmd[-2:] == ["mkdir", ":lib"] and "EEXIST" in p.stderr + p.stdout):
            raise CbccError(
                f"{what} failed at `{' '.join(cmd[2:])}`: {(p.stderr or p.stdout).strip()[-500:]}"
            )
