# The reader's main program on an ESP32 (MicroPython main.py; boot.py has already forced the
# lock relay off). Reads /reader.json (written by provisioning: reader id, role, board, broker,
# credentials and key material), brings the network up, and runs the application's tasks.
#
# Safe mode (maintenance without the door loop: network and REPL only, relay untouched): the
# safe-mode button held at start-up, or three boots in a row that crashed within a minute.
import json
import os
import ssl

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


def main():
    machine.freq(240000000)  # stock builds start at 160 MHz
    try:
        os.mkdir("/state")
    except OSError:
        pass
    with open("/reader.json") as f:
        cfg = json.load(f)
    import board_esp32

    board = board_esp32.EspBoard(cfg["board"])
    crashes = _crash_count()
    if board.safe_mode_requested() or crashes >= 3:
        board.feedback("maintenance", None)
        _network(cfg)
        print("cbcc: safe mode (crashes=%d); door loop not started" % crashes)
        return
    _set_crash_count(crashes + 1)  # cleared after a healthy minute

    import asyncio
    import binascii

    import app
    import card_layout
    import card_reader
    import clock
    import cose_key
    import crl_national
    import events
    import mfrc522
    import reader_config
    import revocation
    import terminal
    import trust_store
    import uplink
    from journal import Journal

    def hexb(s):
        return binascii.unhexlify(s)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    wdt = machine.WDT(timeout=30000)
    _network(cfg)
    chip = mfrc522.MFRC522(board.spi, board.rfid_cs, board.rfid_rst)
    k = cfg["reader_keys"]
    keys = card_layout.ReaderKeys(hexb(k["read_master"]), hexb(k["uid_key"]))
    reader = card_reader.CardReader(chip, keys=keys, size_hint=cfg.get("size_hint", 512))
    root = cose_key.load(read("/keys/root.cose_key"))
    config_key = cose_key.load(read("/keys/config.cose_key"))
    rid = cfg["reader_id"]
    tl = trust_store.TrustStore(root, "/state")  # /state/trust.cbor + trust.idx, never in RAM
    crl = revocation.RevocationList(root)
    rc = reader_config.ReaderConfig(config_key, rid)
    ncrl = crl_national.NationalList(root, "/state")  # national list: /state/ncrl.base (+ .delta)
    uplink.load_held("/state", tl, crl, rc, ncrl)
    import esp32

    part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0]
    journal = Journal(part)
    import ds3231

    rtc = None
    if board.i2c is not None and ds3231.ADDR in board.i2c.scan():
        rtc = ds3231.DS3231(board.i2c)
    clk = clock.Clock(clock.FileStore("/state/time"), rtc=rtc)
    import statefile

    boot = statefile.next_boot("/state")
    term = terminal.Terminal(board, rid, cfg.get("role", "door"), tl, terminal.Revocations(crl, ncrl), rc,
                             journal, clk, reader, boot_count=boot)
    b = cfg["broker"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # MicroPython has it; the stubs lag
    ctx.load_verify_locations(cadata=read("/keys/broker-ca.der"))

    def applied(what, status, info):
        if status == "ok":
            term.lists_changed()
        term._journal(events.KIND_NOTICE, {events.DETAIL: "%s:%s" % (what, status)})

    def status_fn():
        import gc

        return {1: board.ms() // 1000, 2: gc.mem_free(), 3: machine.reset_cause(),
                4: term.stats["read_failed"], 5: journal.depth(), 6: journal.fill_percent(),
                7: clk.quality()}

    up = uplink.Uplink(rid, cfg["password"], hexb(cfg["mac_key"]), b["host"], b.get("port", 8883), ctx,
                       b.get("server_hostname", b["host"]), journal, config_key, tl, crl, rc, "/state",
                       status_fn=status_fn, on_command=lambda a, args: app.on_command(term, a, args),
                       on_applied=applied, clock=clk, firmware=cfg.get("firmware", ""), boot=boot,
                       role=term.role, national_list=ncrl)
    term.kick = up.kick

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
        await asyncio.gather(app.rf_loop(term, reader), app.door_loop(term),
                             app.housekeeping(term, wdt, background=up.background_step),
                             up.run(), healthy_after(), ntp_sync())

    asyncio.run(run())


main()
