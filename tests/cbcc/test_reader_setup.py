"""``cbcc reader deploy`` and ``cbcc reader setup`` with REAL mpremote against a virtual board
(tests/support/repl_device.py: the raw REPL on a pty, the unix-port MicroPython behind it with a
temporary folder as its flash), then the deployed firmware booted from that folder under the unix
port (tests/mpy/boot_device.py) in encoder mode, answering the host's encoder protocol.

esptool cannot write a chip here: its exact invocation is checked to reach the ROM bootloader's
SYNC on a pty (and to fail there, no chip answering); image refusals are checked before that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.micropython_runner import ROOT
from support.repl_device import ReplDevice
from typer.testing import CliRunner

from cbcc import device as rd
from cbcc.app import app
from provisioning.encoders.serial_link import SerialEncoder
from simulators.firmware_runner import micropython_binary

pytestmark = pytest.mark.micropython
BOOT = ROOT / "tests" / "mpy" / "boot_device.py"
PASS = "setup passphrase 123"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[ReplDevice]:
    with ReplDevice(tmp_path / "flash") as dev:
        yield dev


def boot_plain(root: Path, *extra: str) -> str:
    """Boot ``root`` with nothing on the line; stderr of the boot runner (the serial line is stdout)."""
    p = subprocess.run([micropython_binary(), "-X", "heapsize=8M", str(BOOT), str(root), str(ROOT), *extra],
                       capture_output=True, text=True, timeout=60,
                       env={"MICROPYPATH": ".frozen"})  # fmt: skip
    return p.stdout + p.stderr


def boot_encoder(root: Path) -> tuple[dict[str, Any], bytes, str]:
    """Boot ``root`` as an ESP32 under the unix port; talk HELLO, DETECT, GetVersion over a pty."""
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(
        [micropython_binary(), "-X", "heapsize=8M", str(BOOT), str(root), str(ROOT)],
        stdin=master, stdout=master, stderr=subprocess.PIPE, env={"MICROPYPATH": ".frozen"},
    )  # fmt: skip
    os.close(master)
    try:
        enc = SerialEncoder.open(os.ttyname(slave), timeout_s=20)
        info = dict(enc.info)
        card = enc.detect()
        version = enc.transceive(bytes.fromhex("9060000000"))
        enc.close()
    finally:
        os.close(slave)
        _, err = proc.communicate(timeout=60)
    return info, card.uid + bytes([card.sak]) + version, err.decode(errors="replace")


def test_deploy_lands_on_the_board_and_boots_in_encoder_mode(board: ReplDevice, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["reader", "deploy", "--port", board.port, "--out", str(tmp_path / "fw")])
    assert r.exit_code == 0, r.output
    shipped = rd.manifest_files()
    landed = sorted(str(p.relative_to(board.root)) for p in board.root.rglob("*") if p.is_file())
    assert landed == sorted(e[:-3] + ".mpy" if e.startswith("lib/") else e for e in shipped)
    for rel in landed:  # byte for byte what was compiled / shipped
        local = tmp_path / "fw" / rel if rel.startswith("lib/") else ROOT / "firmware" / "device" / rel
        assert (board.root / rel).read_bytes() == local.read_bytes(), rel
    # `mpremote reset` reached machine.reset(): mpremote sends it without waiting for an answer, so
    # the board's thread may still be running that block when the command returns
    deadline = time.monotonic() + 30
    while board.resets < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert board.resets == 1
    # raw-paste mode was used (mpremote's default), and the mkdir of an existing /lib is no error
    before = len(board.blocks)
    again = CliRunner().invoke(app, ["reader", "deploy", "--port", board.port])
    assert again.exit_code == 0, again.output
    assert not any(b.startswith(b"f=open(") for b in board.blocks[before:])  # all "Up to date"
    # the deployed flash boots (boot.py, main.py, lib/*.mpy for xtensawin: bytecode, portable)
    # into encoder mode when /encoder.json says so, the relay never driven high
    (board.root / "encoder.json").write_text('{"board": "esp32-devkitc"}')
    shutil.copy(ROOT / "hardware" / "pinmap.json", board.root / "pinmap.json")
    info, answer, err = boot_encoder(board.root)
    assert info["name"] == "cbcc-encoder mfrc522" and info["version"] == 1
    assert answer[:8] == bytes.fromhex("04a1b2c3d4e5f6") + b"\x20"  # UID, SAK (ISO-DEP)
    assert answer[-2:] == b"\x91\xaf" and answer[8] == 0x04  # GetVersion part 1, vendor NXP
    assert '{"relay_high": 0}' in err, err


def test_boot_selection_under_the_unix_port(tmp_path: Path) -> None:
    """main.py from source: /reader.json with "mode": "encoder" boots the encoder too; a board with
    neither file stops at boot (nothing to run), the relay off all along."""
    root = tmp_path / "flash"
    root.mkdir()
    for f in (ROOT / "firmware" / "device").glob("*.py"):
        shutil.copy(f, root / f.name)
    (root / "lib").symlink_to(ROOT / "firmware" / "lib")
    shutil.copy(ROOT / "hardware" / "pinmap.json", root / "pinmap.json")
    (root / "reader.json").write_text(json.dumps({"board": "esp32-devkitc", "mode": "encoder"}))
    info, answer, err = boot_encoder(root)
    assert info["version"] == 1 and answer[-2:] == b"\x91\xaf"
    assert '{"relay_high": 0}' in err, err
    # the way out of encoder mode: the safe-mode button held at reset leaves the REPL on the line
    out = boot_plain(root, "04a1b2c3d4e5f6", "safe")
    assert "cbcc: safe mode; encoder not started" in out and '{"relay_high": 0}' in out, out
    (root / "reader.json").unlink()
    out = boot_plain(root)
    assert "boot: /main.py" in out and '{"relay_high": 0}' in out, out


def test_esptool_invocation_reaches_the_bootloader_sync(tmp_path: Path) -> None:
    """No chip here: the exact write command runs esptool, which sends the ROM loader's SLIP SYNC
    (C0 00 08 24 …) on the port and gives up when nothing answers. Writing flash is hardware-only."""
    img = tmp_path / "mp.bin"
    img.write_bytes(b"\xe9" + bytes(8191))
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        cmd = rd.esptool_commands(os.ttyname(slave), img, erase=False)[0]
        assert cmd[-4:] == ["write-flash", "-z", "0x1000", str(img)]
        cmd = [*cmd[:-4], "--connect-attempts", "1", *cmd[-4:]]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        seen = os.read(master, 4096)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode != 0 and "Failed to connect to ESP32" in p.stdout + p.stderr
    assert seen.startswith(b"\xc0\x00\x08\x24\x00") and b"\x07\x07\x12\x20" + b"\x55" * 32 in seen


def test_pinned_image_needs_a_checksum(tmp_path: Path) -> None:
    img = tmp_path / rd.PINNED_IMAGE
    img.write_bytes(b"\xe9" + bytes(8191))
    args = ["reader", "flash", "--port", "/dev/null", "--image", str(img), "--dry-run"]
    r = CliRunner().invoke(app, args, env={"CBCC_LANG": "en"})  # the English text matched
    assert r.exit_code == 1 and "no recorded SHA-256" in r.output
    digest = hashlib.sha256(img.read_bytes()).hexdigest()
    r = CliRunner().invoke(app, ["reader", "flash", "--port", "/dev/ttyUSB9", "--image", str(img),
                                 "--sha256", digest, "--dry-run"])  # fmt: skip
    assert r.exit_code == 0 and "write-flash -z 0x1000" in r.output, r.output


# ---- cbcc reader setup ---------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    """A gateway (SQLite, embedded broker files) and the keys a bench has, made with the CLI."""
    env = {"CBCC_HOME": str(tmp_path / "home"), "CBCC_PASSPHRASE": PASS, "CBCC_LANG": "en"}
    runner = CliRunner()
    keys = tmp_path / "keys"
    for args in (["keys", "init-root", "--out", str(keys / "root")],
                 ["keys", "card-keys", "init", "--out", str(keys / "card-keys.gen1")],
                 ["gateway", "init", "--server-name", "mqtt.snv.local"]):  # fmt: skip
        r = runner.invoke(app, args, env=env)
        assert r.exit_code == 0, r.output
    return {"env": env, "keys": keys, "home": tmp_path / "home"}


def setup_args(site: dict[str, Any], port: str, work: Path, rid: str = "hn-snv-t3-p302") -> list[str]:
    return ["reader", "setup", "--reader-id", rid, "--port", port, "--work", str(work),
            "--broker-host", "mqtt.snv.local", "--root-key", str(site["keys"] / "root" / "root.cose_key"),
            "--card-keys", str(site["keys"] / "card-keys.gen1"), "--board", "esp32-devkitc",
            "--network", "wifi", "--ssid", "SNV-IoT",
            "--wifi-password-file", str(ROOT / "examples" / "wifi-password.txt")]  # fmt: skip


def registered(site: dict[str, Any]) -> list[str]:
    r = CliRunner().invoke(app, ["gateway", "reader", "list"], env={**site["env"], "COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    return [line.split()[1] for line in r.output.splitlines() if "hn-snv" in line]


def test_setup_one_flow_resumes_and_is_idempotent(
    board: ReplDevice, site: dict[str, Any], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    args = setup_args(site, board.port, work)
    # the board is unplugged at the deploy step: register is done and recorded, nothing else
    broken = [*args[:4], "--port", "/dev/nonexistent-tty", *args[6:]]
    r = CliRunner().invoke(app, broken, env=site["env"])
    assert r.exit_code == 1 and "[3/5] deploy" in r.output, r.output
    state = json.loads((work / "setup.json").read_text())
    assert list(state["done"]) == ["register"]
    assert (work / "secrets.json").stat().st_mode & 0o777 == 0o600
    # second run: continues with the board, does not register again
    r = CliRunner().invoke(app, args, env=site["env"])
    assert r.exit_code == 0, r.output
    assert "[1/5] register — done before" in r.output and "is set up" in r.output
    assert list(json.loads((work / "setup.json").read_text())["done"]) == ["register", "deploy",
                                                                          "provision", "copy"]  # fmt: skip
    for rel in ("reader.json", "pinmap.json", "board_pins.py", "keys/root.cose_key",
                "keys/config.cose_key", "keys/broker-ca.der", "main.py", "lib/encoder.mpy"):  # fmt: skip
        assert (board.root / rel).is_file(), rel
    cfg = json.loads((board.root / "reader.json").read_text())
    secrets = json.loads((work / "secrets.json").read_text())
    assert cfg["reader_id"] == "hn-snv-t3-p302" and cfg["password"] == secrets["mqtt_password"]
    assert registered(site) == ["hn-snv-t3-p302"]
    # the embedded broker will know the reader's password (hash) when the gateway starts
    from gateway.mqtt import broker_config as bc

    passwd = bc.parse_password_file((site["home"] / "gateway" / "broker" / "passwd").read_text())
    assert bc.verify_password(secrets["mqtt_password"], passwd["hn-snv-t3-p302"])
    # a third run on the set-up reader changes nothing and registers nothing twice
    blocks = len(board.blocks)
    r = CliRunner().invoke(app, args, env=site["env"])
    assert r.exit_code == 0 and r.output.count("done before") == 4, r.output
    assert registered(site) == ["hn-snv-t3-p302"] and len(board.blocks) == blocks


def test_setup_refusals(board: ReplDevice, site: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    args = setup_args(site, board.port, tmp_path / "w1")
    bad_id = [*args[:2], "--reader-id", "Not_An_Id", *args[4:]]
    r = runner.invoke(app, bad_id, env=site["env"])
    assert r.exit_code == 1 and not (tmp_path / "w1").exists(), r.output
    r = runner.invoke(app, [*args, "--image", str(tmp_path / "missing.bin")], env=site["env"])
    assert r.exit_code == 1 and "--image" in r.output and not (tmp_path / "w1").exists()
    notes = tmp_path / "notes.bin"
    notes.write_bytes(b"hello" * 2000)
    r = runner.invoke(app, [*args, "--image", str(notes)], env=site["env"])
    assert r.exit_code == 1 and "not an ESP32 firmware image" in r.output and not (tmp_path / "w1").exists()
    # a reader id registered elsewhere (no secrets in this work folder) is refused, nothing written
    r = runner.invoke(app, ["gateway", "reader", "add", "hn-snv-t3-p303"], env=site["env"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, setup_args(site, board.port, tmp_path / "w2", "hn-snv-t3-p303"), env=site["env"])
    assert r.exit_code == 1 and "already registered" in r.output, r.output
    assert not board.blocks  # the board was never touched
    # a work folder of another reader
    (tmp_path / "w3").mkdir()
    (tmp_path / "w3" / "setup.json").write_text(json.dumps({"version": 1, "reader_id": "x1", "done": {}}))
    r = runner.invoke(app, setup_args(site, board.port, tmp_path / "w3"), env=site["env"])
    assert r.exit_code == 1 and "not hn-snv-t3-p302" in r.output, r.output


@pytest.mark.parametrize("raw_paste", [True, False])
def test_virtual_board_speaks_both_raw_modes(tmp_path: Path, raw_paste: bool) -> None:
    """The fixture itself: mpremote's raw-paste path and the plain raw REPL path (the board answers
    R\\x00 to raw-paste) both execute on the unix port, errors come back as tracebacks."""
    with ReplDevice(tmp_path / "flash", raw_paste=raw_paste) as board:
        _exercise(board)


def _exercise(board: ReplDevice) -> None:
    mp = [sys.executable, "-m", "mpremote", "connect", board.port]
    p = subprocess.run([*mp, "exec", "import sys; print(sys.implementation.name, 6*7)"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0 and p.stdout.split() == ["micropython", "42"], p.stdout + p.stderr
    p = subprocess.run([*mp, "exec", "open('/nope')"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "ENOENT" in p.stdout + p.stderr
    p = subprocess.run([*mp, "fs", "cp", str(ROOT / "README.md"), ":/r.md"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0 and (board.root / "r.md").read_bytes() == (ROOT / "README.md").read_bytes()
    assert board.soft_resets >= 3  # each mpremote run soft-resets at its first command


def test_setup_registers_through_the_gateway_api(
    board: ReplDevice, site: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bench on another machine: --gateway-url registers over HTTP; the running gateway's embedded
    broker learns the password at once; a second run does not register again."""
    import threading
    import time

    import uvicorn
    from support.broker import free_port

    from gateway.service import Gateway
    from gateway.settings import load_settings

    for k, v in site["env"].items():
        monkeypatch.setenv(k, v)
    settings = load_settings(None)
    settings.mqtt.port = free_port()
    settings.mqtt.embedded_tls_host, settings.mqtt.embedded_tls_port = "127.0.0.1", free_port()
    token_file = tmp_path / "token"
    make = ["gateway", "token", "create", "--name", "bench", "--role", "admin"]
    r = CliRunner().invoke(app, make, env=site["env"])
    assert r.exit_code == 0, r.output
    token_file.write_text(r.output.strip().splitlines()[-1] + "\n")
    gw = Gateway(settings)
    gw.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gw.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        data = site["home"] / "gateway"
        args = [*setup_args(site, board.port, tmp_path / "work", "hn-snv-t3-p304"),
                "--gateway-url", f"http://127.0.0.1:{port}", "--token-file", str(token_file),
                "--broker-ca", str(data / "broker" / "ca.der"),
                "--config-key", str(data / "config.cose_key")]  # fmt: skip
        r = CliRunner().invoke(app, args, env={"CBCC_LANG": "en"})
        assert r.exit_code == 0 and "is set up" in r.output, r.output
        secrets = json.loads((tmp_path / "work" / "secrets.json").read_text())
        assert gw.broker is not None
        from gateway.mqtt import broker_config as bc

        passwd = bc.parse_password_file((data / "broker" / "passwd").read_text())
        assert bc.verify_password(secrets["mqtt_password"], passwd["hn-snv-t3-p304"])
        r = CliRunner().invoke(app, args, env={"CBCC_LANG": "en"})
        assert r.exit_code == 0 and r.output.count("done before") == 4, r.output
        assert registered(site).count("hn-snv-t3-p304") == 1
    finally:
        server.should_exit = True
        thread.join(10)
        gw.stop()
