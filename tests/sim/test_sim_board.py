"""The simulator as a board (firmware/sim/as_board): MFRC522 drivers written by others for ESP32 /
ESP8266 boards run against the simulated MFRC522 unchanged, through `machine.Pin(number, ...)`,
`machine.SPI(...)` and `os.uname()`, with GPIO numbers wired by a table (the project's pin map by
default, an ESP8266 wiring when the test gives one).

Fixtures (tests/fixtures/mfrc522_drivers, MIT licence files beside them, SOURCE names the commit):
- wendlers/micropython-mfrc522: ESP8266/WiPy only (os.uname()[0] decides); 4-byte UIDs;
- danjperron/micropython-mfrc522: ESP32/ESP8266/RP2; cascade levels 2 and 3 (SelectTagSN).
Both read and write a MIFARE Classic block after the chip's MFAuthent with key A; a wrong key
is refused; danjperron's driver selects a 7-byte-UID card through cascade level 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any

import pytest
from support.micropython_runner import ROOT, micropython_binary

DRIVERS = ROOT / "tests" / "fixtures" / "mfrc522_drivers"
SCRIPT = ROOT / "tests" / "mpy" / "outside_driver.py"
# SHA-256 of the files exactly as published at the commit named in SOURCE: the fixtures stay unmodified.
UPSTREAM = {
    "wendlers": "5cf7b829e2a5d4220be7bfdda06cfbaefef6499c323c8e379e420c4bc1e18047",
    "danjperron": "b9456632b9ea3d1ed0835595c812548e3f3af19066d987f00a39f9be5644ccba",
}
ESP8266 = {"sysname": "esp8266", "rfid_sck": 0, "rfid_mosi": 2, "rfid_miso": 4, "rfid_rst": 5, "rfid_ss": 14}


def _mpy(args: list[str], driver: str | None = None) -> str:
    """Run MicroPython with the simulated board first on the path (then the driver's folder)."""
    folders = [ROOT / "firmware/sim/as_board", *([DRIVERS / driver] if driver else []), ROOT / "firmware",
               ROOT / "firmware/lib"]  # fmt: skip
    env = {**os.environ, "MICROPYPATH": ":".join(str(f) for f in folders)}
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=4M", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _run(driver: str, wiring: dict[str, Any] | None = None) -> dict[str, Any]:
    args = [str(SCRIPT), driver] + ([json.dumps(wiring)] if wiring is not None else [])
    return dict(json.loads(_mpy(args, driver)))


def test_fixtures_are_the_published_files_with_their_licence() -> None:
    for name, digest in UPSTREAM.items():
        d = DRIVERS / name
        assert hashlib.sha256((d / "mfrc522.py").read_bytes()).hexdigest() == digest
        lic = (d / "LICENSE").read_text()
        assert "MIT License" in lic and "Permission is hereby granted" in lic
        assert f"github.com/{name}/micropython-mfrc522" in (d / "SOURCE").read_text()


@pytest.mark.micropython
def test_wendlers_driver_on_an_esp8266_wiring() -> None:
    got = _run("wendlers", ESP8266)
    assert got["sysname"] == "esp8266"
    assert got["request"] == [0, 16]  # OK, 16-bit ATQA
    assert got["anticoll"] == [0, [0x8E, 0x3F, 0x12, 0xA0, 0x8E ^ 0x3F ^ 0x12 ^ 0xA0]]
    assert got["select"] == 0 and got["auth"] == 0
    assert got["read_before"] == list(range(16))
    assert got["write"] == 0 and got["read_after"] == list(range(100, 116))
    assert got["card_block"] == list(range(100, 116))  # written on the card itself
    assert got["auth_wrong_key"] != 0


@pytest.mark.micropython
def test_danjperron_driver_on_the_project_pinmap_with_a_7_byte_uid() -> None:
    got = _run("danjperron")  # default wiring: hardware/pinmap.json, esp32-devkitc
    assert got["sysname"] == "esp32"
    assert got["select"] == [0, [0x8E, 0x3F, 0x12, 0xA0]]
    assert got["auth"] == 0 and got["read_before"] == [0, list(range(16))]
    assert got["write"] == 0 and got["read_after"] == [0, list(range(100, 116))]
    assert got["card_block"] == list(range(100, 116))
    assert got["auth_wrong_key"] != 0
    assert got["request7"] == [0, 16]
    assert got["select7"] == [0, [0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6]]  # cascade level 2


@pytest.mark.micropython
def test_a_driver_on_pins_the_chip_is_not_wired_to_sees_nothing() -> None:
    # the wiring table says MISO is GPIO 19; the driver is told 25: its SPI reaches no chip
    wiring = {
        "sysname": "esp32",
        "rfid_sck": 18,
        "rfid_mosi": 23,
        "rfid_miso": 19,
        "rfid_rst": 4,
        "rfid_ss": 5,
    }
    code = (
        "import machine, sim\n"
        "rig = sim.Rig(seed=1)\n"
        f"machine.attach(rig, {wiring!r})\n"
        "rig.field.add(sim.cards.Classic(uid=b'\\x01\\x02\\x03\\x04'))\n"
        "import mfrc522\n"
        "r = mfrc522.MFRC522(18, 23, 25, 4, 5)\n"
        "print(r.request(r.REQIDL)[0], r.OK)\n"
    )
    status, ok = _mpy(["-c", code], "danjperron").split()
    assert status != ok  # nothing answered


@pytest.mark.micropython
def test_pinmap_is_the_default_wiring() -> None:
    doc = json.loads((ROOT / "hardware" / "pinmap.json").read_text())
    sig = doc["boards"]["esp32-devkitc"]["signals"]
    keys = ["rfid_sck", "rfid_mosi", "rfid_miso", "rfid_ss", "rfid_rst"]
    code = f"import machine\nw = machine.load_pinmap()\nprint(*[w[k] for k in {keys!r}])\n"
    want = [sig[k]["gpio"] for k in ("rfid_sck", "rfid_mosi", "rfid_miso", "rfid_ss", "rfid_rst")]
    assert _mpy(["-c", code]).split() == [str(x) for x in want]
