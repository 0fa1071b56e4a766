# The reader's main program on an ESP32 (MicroPython main.py; boot.py has already forced the
# lock relay off). Reads /reader.json (written by provisioning: reader id, role, board, broker,
# credentials and key material), brings the network up, and runs the reader that
# assembly.build_reader wires from that file over assembly.DEFAULTS (the same assembly the
# virtual reader uses), plus the device-only tasks: the healthy-boot timer and NTP.
#
# Safe mode (maintenance without the door loop: network and REPL only, relay untouched): the
# safe-mode button held at start-up, or three boots in a row that crashed within a minute.
#
# Encoder mode (an issuing station's card encoder, docs/encoder-protocol.md): chosen by the
# configuration, never by a pin — "mode": "encoder" in /reader.json, or an /encoder.json
# ({"board": ...}) on a board that holds no reader configuration at all. The MFRC522 then serves
# the host over the USB serial line (the board layer's serial_stream); no network, no door loop,
# and the lock relay stays at the off level boot.py set.
import json
import os

import machine

CRASH_FILE = "/state/crashes"
HEALTHY_AFTER_S = 60


def _crash_count():
    try:
        with open(CRASH_FILE) as f:
            return int(f.read(8))
    except (OSError, ValueError):
        return 0


def _set_crash_count(n):
    try:
        with open(CRASH_FILE, "w") as f:
            f.write(str(n))
    except OSError:
        pass


def _network(cfg):
    import network

    n = cfg["network"]
    if n.get("type") == "lan":
        lan = network.LAN(mdc=machine.Pin(n.get("mdc", 23)), mdio=machine.Pin(n.get("mdio", 18)),
                          phy_type=network.PHY_LAN8720, phy_addr=n.get("phy_addr", 0),
                          power=machine.Pin(n["power"]) if n.get("power") is not None else None)  # type: ignore[call-arg]
        lan.active(True)
        return lan
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect(n["ssid"], n["password"])
    return wlan


def boot_config():
    """(configuration, mode): /reader.json and its "mode" (default "reader"); without it,
    /encoder.json selects encoder mode. Neither file: OSError (nothing to run)."""
    try:
        with open("/reader.json") as f:
            cfg = json.load(f)
    except OSError:
        with open("/encoder.json") as f:
            cfg = json.load(f)
        return cfg, "encoder"
    mode = cfg.get("mode", "reader")
    return cfg, mode if mode in ("reader", "encoder") else "reader"


def run_encoder(board):
    """Serve the issuing host until the line closes. The relay is never touched here."""
    import encoder
    import mfrc522

    board.feedback("maintenance", None)
    chip = mfrc522.MFRC522(board.spi, board.rfid_cs, board.rfid_rst, timebase=board.timebase)
    read, write = board.serial_stream()
    try:
        encoder.Encoder(chip).serve(read, write)
    except OSError:  # the host side went away
        pass


def main():
    machine.freq(240000000)  # stock builds start at 160 MHz
    try:
        os.mkdir("/state")
    except OSError:
        pass
    cfg, mode = boot_config()
    import board_esp32

    board = board_esp32.EspBoard(cfg["board"])
    if mode == "encoder":
        if board.safe_mode_requested():  # the way out: the REPL stays on the line
            print("cbcc: safe mode; encoder not started")
            return
        print("cbcc: encoder mode (protocol on this serial line)")
        run_encoder(board)
        return
    crashes = _crash_count()
    if board.safe_mode_requested() or crashes >= 3:
        board.feedback("maintenance", None)
        _network(cfg)
        print("cbcc: safe mode (crashes=%d); door loop not started" % crashes)
        return
    _set_crash_count(crashes + 1)  # cleared after a healthy minute

    import asyncio

    import assembly
    import ds3231
    import esp32
    import mfrc522

    wdt = machine.WDT(timeout=30000)
    _network(cfg)
    chip = mfrc522.MFRC522(board.spi, board.rfid_cs, board.rfid_rst)
    flash = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0]
    rtc = None
    if board.i2c is not None and ds3231.ADDR in board.i2c.scan():
        rtc = ds3231.DS3231(board.i2c)
    reader = assembly.build_reader(assembly.configure(cfg), board, chip, flash, rtc)
    term, clk = reader.terminal, reader.clock

    async def healthy_after():
        await asyncio.sleep(HEALTHY_AFTER_S)
        _set_crash_count(0)
        while True:
            await asyncio.sleep(1)
            if term.reboot_requested:
                machine.reset()

    async def ntp_sync():
        # NTP when online (the gateway's MAC'd time reply, when it comes, is as good and cannot be
        # spoofed by the network); ntptime answers in this port's epoch.
        import localtime
        import ntptime

        while True:
            try:
                clk.set_from_ntp(ntptime.time() + localtime.port_epoch_offset())
                wait = 6 * 3600
            except Exception:  # noqa: BLE001 - offline: try again later
                wait = 300
            await asyncio.sleep(wait)

    async def run():
        await asyncio.gather(*reader.tasks(wdt), healthy_after(), ntp_sync())

    asyncio.run(run())


main()
