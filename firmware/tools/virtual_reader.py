# A virtual reader: the real reader firmware under the MicroPython unix port, with the RF
# simulator as its MFRC522 and cards, a file as its journal flash, and a real broker.
#   micropython firmware/tools/virtual_reader.py CONFIG.json [--taps SCRIPT.json]
#
# CONFIG.json: {"reader_id", "password", "mac_key" (hex), "role" ("door"|"attendance"),
#   "broker": {"host", "port", "ca_der", "server_hostname" (TLS name; default: host, as on the
#   device)}, "root_key", "config_key" (COSE_Key
#   files), "state_dir", "journal_image", "journal_blocks", "issuer_keys": {"amk", "read", "uid",
#   "picc"} (hex; used only to personalise the simulated cards), "cards": {name: {"credential":
#   file, "uid": hex, "random_uid": bool} or {"image": a card image file an encoder saved}},
#   "trust", "crl", "config" (optional initial files),
#   "unix_ms" (optional initial clock), "boot" (optional; else counted in state_dir/boot)}
# SCRIPT.json: a list of steps, each with "at_ms" (from start) and one of: "present": card name
#   (into the field), "remove": card name, "door": "open"|"close", "rex": bool, "fire": bool,
#   "tamper": bool, "wait_delivered": ms (until the journal is empty), "clock": Unix ms (the reader's
#   wall clock jumps there and every later gateway time reply is shifted by the same offset: a demo
#   plays a day at another date and hour through the real clock and time sync), "exit": true.
#   Without a script the reader runs until killed.
# Prints one JSON line per decision ({"decision", "reason", "serial", "tech", "t_ms"; "seq" when
# the tap was journalled}), per applied object, and a final {"exit": ...} line with the counters.
# "t_ms" is the host's wall clock (Unix ms, the clock a browser's Date.now() reads), so a test can
# time a tap end to end against one clock. With "trace_publish": true in CONFIG.json it also
# prints {"published": seq, "t_ms"} when an event's PUBLISH has been written to the socket.
# The reader itself is built by assembly.build_reader, as on the ESP32 (device/main.py): CONFIG.json
# is the site file over assembly.DEFAULTS and this tool's VIRTUAL_DEFAULTS (shorter MQTT timers
# for tests); only the parts differ: the simulated board and chip, and a file as flash.
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import asyncio
import binascii
import json
import time

import assembly
import card_layout
import cbor
import events
import iso14443a
import isodep
import mfrc522
import mqtt
import sim
from sim.board import SimBoard
from sim.file_flash import FileFlash

# This tool's defaults between assembly.DEFAULTS and CONFIG.json: timers short enough for tests.
VIRTUAL_DEFAULTS = {"firmware": "cbcc-fw 0.1", "keepalive": 30, "backoff_max_s": 30}


def say(**kw):
    print(json.dumps(kw))


def wall_ms():
    return time.time_ns() // 1000000


def trace_publish():
    """Print each event PUBLISH once written (its seq from the sealed payload) with the wall
    clock: where a tap's latency goes, reader side (the uplink itself is not touched)."""
    start = mqtt.Client.publish_start

    async def publish_start(self, topic, payload, qos=0, retain=False):
        pid = await start(self, topic, payload, qos, retain)
        if topic.endswith("/ev"):
            say(published=cbor.decode(payload)[1], t_ms=wall_ms())
        return pid

    mqtt.Client.publish_start = publish_start  # type: ignore[method-assign]


def _hex(s):
    return binascii.unhexlify(s)


def _unhex(b):
    return binascii.hexlify(b).decode()


def personalise(rig, chip, issuer, cred, uid, random_uid):
    """Issue a simulated DESFire card through the reader's own stack, as provisioning does."""
    card = sim.cards.DesfireEV3(uid=uid)
    rig.field.add(card)
    iso14443a.activate(chip, True)
    dep = isodep.IsoDep(chip)
    dep.activate()
    card_layout.personalise(dep, bytes(16), issuer, cred, random_uid=random_uid)
    dep.deselect()
    chip.reset_protocol()
    rig.field.remove(card)
    return card


class ShiftedClock:
    """The reader's own clock with an offset on every setting, for the "clock" step: the firmware
    still syncs from the gateway (quality "synced"), only the world it lives in is shifted."""

    def __init__(self, clk):
        self.shift_ms = 0
        self._set = clk.set_from_gateway
        clk.set_from_gateway = self.set_from_gateway

    def set_from_gateway(self, unix_ms):
        self._set(unix_ms + self.shift_ms)

    def jump(self, unix_ms):
        self.shift_ms = unix_ms - time.time_ns() // 1000000
        self._set(unix_ms)


async def run_script(board, rig, cards, steps, t0, journal=None, clock=None):
    for step in steps:
        wait = step.get("at_ms", 0) - board.ms() + t0
        if wait > 0:
            await asyncio.sleep_ms(wait)
        if "present" in step:
            rig.field.add(cards[step["present"]])
        elif "remove" in step:
            rig.field.remove(cards[step["remove"]])
        elif "door" in step:
            board.door_open = step["door"] == "open"
        elif "rex" in step:
            board.rex = bool(step["rex"])
        elif "fire" in step:
            board.emergency = bool(step["fire"])
        elif "tamper" in step:
            board.tamper = bool(step["tamper"])
        elif "clock" in step:
            clock.jump(step["clock"])
        elif "wait_delivered" in step:
            # until the uplink has emptied the journal, or the given number of ms
            limit = board.ms() + step["wait_delivered"]
            while journal is not None and journal.depth() and board.ms() < limit:
                await asyncio.sleep_ms(50)
        elif step.get("exit"):
            return


USAGE = ("usage: micropython firmware/tools/virtual_reader.py CONFIG.json [--taps SCRIPT.json]"
         "  (docs/virtual-reader.md)")


def _load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise toolkit.Usage("cannot read " + what + " " + path)
    except ValueError:
        raise toolkit.Usage(what + " " + path + " is not valid JSON")


def main():
    try:
        pos, opts = toolkit.parse(sys.argv[1:], {"taps": ""}, 1)
        cfg = _load_json(pos[0], "reader configuration")
        steps = _load_json(opts["taps"], "tap script") if opts["taps"] else []
    except toolkit.Usage as e:
        print("error: " + str(e), file=sys.stderr)
        print(USAGE, file=sys.stderr)
        sys.exit(2)

    rig = sim.Rig(seed=cfg.get("seed", 1))
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, None, clock_us=lambda: int(rig.clock.us),
                           sleep_us=rig.sleep_us)
    ik = cfg["issuer_keys"]
    issuer = card_layout.IssuerKeys(_hex(ik["amk"]), _hex(ik["read"]), _hex(ik["uid"]), _hex(ik["picc"]))
    cards = {}
    for name in cfg.get("cards", {}):
        c = cfg["cards"][name]
        if "image" in c:      # a card issued elsewhere (an encoder), as its EEPROM was left
            with open(c["image"]) as f:
                cards[name] = sim.cards.DesfireEV3.from_image(json.load(f))
            continue
        cards[name] = personalise(rig, chip, issuer, toolkit.read(c["credential"], 2048), _hex(c["uid"]),
                                  c.get("random_uid", True))

    rk = issuer.reader_keys()
    cfg["reader_keys"] = {"read_master": _unhex(rk.read_master), "uid_key": _unhex(rk.uid_key)}
    flash = FileFlash(cfg["journal_image"], blocks=cfg.get("journal_blocks", 32))
    board = SimBoard(rig)
    reader = assembly.build_reader(assembly.configure(cfg, VIRTUAL_DEFAULTS), board, chip, flash)
    reader.on_applied = lambda what, status, info: say(applied=what, status=status,
                                                       seq=(info or {}).get("seq"))
    rid, journal, term, up = cfg["reader_id"], reader.journal, reader.terminal, reader.uplink
    clock = ShiftedClock(reader.clock)
    tl, crl, rc, ncrl = reader.trust, reader.crl, reader.config, reader.national

    if cfg.get("trace_publish"):
        trace_publish()
    tap_seq = [None]  # the seq of the tap record the terminal just journalled
    journal_event = term.journal_event

    def journal_tap(kind, fields):
        ok = journal_event(kind, fields)
        if ok and kind == events.KIND_TAP:
            tap_seq[0] = journal.last_seq()
        return ok

    term.journal_event = journal_tap

    def decided(result, fields):
        t = wall_ms()
        if fields is None:
            say(decision="read_failed", reason=result.reason, t_ms=t)
            return
        kw = {}  # type: dict[str, int]
        if tap_seq[0] is not None:  # a duplicate tap is not journalled
            kw["seq"] = tap_seq[0]
            tap_seq[0] = None
        say(decision=fields[events.DECISION], reason=fields[events.REASON],
            serial=fields[events.SERIAL], tech=fields[events.TECH], t_ms=t, **kw)

    async def supervise():
        t0 = board.ms()
        tasks = [asyncio.create_task(t) for t in reader.tasks(on_decision=decided)]
        say(started=rid, journal_depth=journal.depth(), trust_seq=tl.seq, crl_seq=crl.seq, config_seq=rc.seq,
            ncrl_seq=ncrl.seq)
        if steps:
            await run_script(board, rig, cards, steps, t0, journal, clock)
        else:
            await asyncio.gather(*tasks)
        for t in tasks:
            t.cancel()
        say(exit=True, stats=term.stats, journal_depth=journal.depth(), uplink=up.stats,
            relay_changes=len(board.relay_history))

    asyncio.run(supervise())


main()
