"""``cbcc reader flash | deploy`` without a board: the image check refuses what is not an ESP32 image
or not the expected one, the firmware compiles for xtensawin into loadable .mpy files (the unix
port imports one), and the esptool / mpremote command lines. Writing to a chip is hardware-only."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cbcc import device as rd
from cbcc.app import app
from cbcc.errors import CbccError
from simulators.firmware_runner import run_micropython


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the refusals matched below (tests/messages: Vietnamese)


def test_image_is_checked_before_flashing(tmp_path: Path) -> None:
    good = tmp_path / "mp.bin"
    good.write_bytes(b"\xe9" + bytes(8191))
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert rd.check_image(good, digest) == digest
    with pytest.raises(CbccError, match="is not the expected"):
        rd.check_image(good, "00" * 32)
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"hello" * 1000)
    with pytest.raises(CbccError, match="not an ESP32 firmware image"):
        rd.check_image(bad, None)
    r = CliRunner().invoke(
        app, ["reader", "flash", "--port", "/dev/ttyUSB9", "--image", str(good), "--dry-run"]
    )
    assert r.exit_code == 0, r.output
    assert "erase-flash" in r.output and "write-flash -z 0x1000" in r.output
    r = CliRunner().invoke(app, ["reader", "flash", "--port", "/dev/ttyUSB9", "--image", str(bad)])
    assert r.exit_code == 1 and "not an ESP32 firmware image" in r.output


@pytest.mark.micropython
def test_firmware_compiles_for_the_esp32_and_loads(tmp_path: Path) -> None:
    compiled = rd.compile_firmware(tmp_path / "fw")
    shipped = rd.manifest_files()
    assert "lib/card_reader.py" in shipped and "main.py" in shipped and "lib/encoder.py" in shipped
    assert set(compiled.files) == {e[:-3] + ".mpy" if e.startswith("lib/") else e for e in shipped}
    # a compiled module really loads: the unix port imports the .mpy (bytecode is portable)
    work = tmp_path / "load"
    work.mkdir()
    shutil.copy(compiled.files["lib/aes.mpy"], work / "aes.mpy")
    (work / "probe.py").write_text(
        "import sys\nsys.path.insert(0, '.')\nimport aes\n"
        "print(aes.__file__, len(aes.ecb_encrypt(bytes(16), bytes(16))))\n"
    )
    p = run_micropython(["probe.py"], cwd=work)
    assert p.returncode == 0 and p.stdout.split() == ["./aes.mpy", "16"], p.stdout + p.stderr
    cmds = rd.mpremote_copy_commands("/dev/ttyUSB9", compiled)
    assert len(cmds) == 2 and cmds[0][5:7] == ["exec", rd.MKDIR_LIB] and cmds[-1][-1] == "reset"
    at = cmds[0].index(str(compiled.files["lib/aes.mpy"]))
    assert cmds[0][at - 3 : at + 2] == ["+", "fs", "cp", str(compiled.files["lib/aes.mpy"]), ":/lib/aes.mpy"]
    assert cmds[0][-3:-1] == ["+", "exec"] and "hashlib" in cmds[0][-1]
