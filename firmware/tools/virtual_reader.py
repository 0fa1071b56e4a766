# A virtual reader: the real reader firmware under the MicroPython unix port, with the RF
# simulator as its MFRC522 and cards, a file as its journal flash, and a real broker.
#   micropython firmware/tools/virtual_reader.py CONFIG.json [--taps SCRIPT.json]
#
# CONFIG.json: {"reader_id", "password", "mac_key" (hex), "role" ("door"|"attendance"),
#   "broker": {"host", "port", "ca_der", "server_hostname"}, "root_key", "config_key" (COSE_Key
#   files), "state_dir", "journal_image", "journal_blocks", "issuer_keys": {"amk", "read", "uid",
#   "picc"} (hex; used only to personalise the simulated cards), "cards": {name: {"credential":
#   file, "uid": hex, "random_uid": bool}}, "trust", "crl", "config" (optional initial files),
#   "unix_ms" (optional initial clock), "boot" (optional; else counted in state_dir/boot)}
# SCRIPT.json: a list of steps, each with "at_ms" (from start) and one of: "present": card name
#   (into the field), "remove": card name, "door": "open"|"close", "rex": bool, "fire": bool,
#   "tamper": bool, "wait_delivered": ms (until the journal is empty), "exit": true. Without a
#   script the reader runs until killed.
# Prints one JSON line per decision ({"decision", "reason", "serial", "tech"}), per applied
# object, and a final {"exit": ...} line with the counters.
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import asyncio
import binascii
import json
import ssl

import app
import card_layout
import card_reader
import clock
import cose_key
import crl_national
import events
import iso14443a
import isodep
import mfrc522
import reader_config
import revocation
import sim
import statefile
import terminal
import trust_store
import uplink
from journal import Journal
from sim.board import SimBoard
from sim.file_flash import FileFlash


def say(**kw):
    print(json.dumps(kw))


def _hex(s):
    return binascii.unhexlify(s)


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


async def run_script(board, rig, cards, steps, t0, journal=None):
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
        elif "wait_delivered" in step:
            # until the uplink has emptied the journal, or the given number of ms
            limit = board.ms() + step["wait_delivered"]
            while journal is not None and journal.depth() and board.ms() < limit:
                await asyncio.sleep_ms(50)
        elif step.get("exit"):
            return


def main():
    pos, opts = toolkit.parse(sys.argv[1:], {"taps": ""}, 1)
    with open(pos[0]) as f:
        cfg = json.load(f)
    steps = []
    if opts["taps"]:
        with open(opts["taps"]) as f:
            steps = json.load(f)

    rig = sim.Rig(seed=cfg.get("seed", 1))
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, None, clock_us=lambda: int(rig.clock.us),
                           sleep_us=rig.sleep_us)
    ik = cfg["issuer_keys"]
    issuer = card_layout.IssuerKeys(_hex(ik["amk"]), _hex(ik["read"]), _hex(ik["uid"]), _hex(ik["picc"]))
    cards = {}
    for name in cfg.get("cards", {}):
        c = cfg["cards"][name]
        cards[name] = personalise(rig, chip, issuer, toolkit.read(c["credential"], 2048), _hex(c["uid"]),
                                  c.get("random_uid", True))

    root = cose_key.load(toolkit.read(cfg["root_key"]))
    config_key = cose_key.load(toolkit.read(cfg["config_key"]))
    rid = cfg["reader_id"]
    state_dir = cfg["state_dir"]
    tl = trust_store.TrustStore(root, state_dir)  # trust.cbor + trust.idx (amendment 1)
    crl = revocation.RevocationList(root)
    rc = reader_config.ReaderConfig(config_key, rid)
    ncrl = crl_national.NationalList(root, state_dir)  # ncrl.base / ncrl.delta, arriving over MQTT
    held = uplink.load_held(state_dir, tl, crl, rc, ncrl)
    for name, holder in (("trust", tl), ("crl", crl), ("config", rc)):
        if held.get(name) is None and cfg.get(name):
            holder.update(toolkit.read(cfg[name]))

    flash = FileFlash(cfg["journal_image"], blocks=cfg.get("journal_blocks", 32))
    journal = Journal(flash)
    clk = clock.Clock(clock.FileStore(state_dir + "/time"))
    if cfg.get("unix_ms"):
        clk.set_from_gateway(cfg["unix_ms"])
    board = SimBoard(rig)
    boot = cfg["boot"] if "boot" in cfg else statefile.next_boot(state_dir)
    reader = card_reader.CardReader(chip, keys=issuer.reader_keys(), size_hint=cfg.get("size_hint", 512))
    term = terminal.Terminal(board, rid, cfg.get("role", terminal.ROLE_DOOR), tl,
                             terminal.Revocations(crl, ncrl), rc, journal, clk, reader, boot_count=boot)

    b = cfg["broker"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # MicroPython has it; the stubs lag
    ctx.load_verify_locations(cadata=toolkit.read(b["ca_der"]))

    def applied(what, status, info):
        if status == "ok":
            term.lists_changed()
        term._journal(events.KIND_NOTICE, {events.DETAIL: "%s:%s" % (what, status)})
        say(applied=what, status=status, seq=(info or {}).get("seq"))

    def status_fn():
        return {1: board.ms() // 1000, 4: term.stats["read_failed"], 5: journal.depth(),
                6: journal.fill_percent(), 7: clk.quality()}

    up = uplink.Uplink(rid, cfg["password"], _hex(cfg["mac_key"]), b["host"], b["port"], ctx,
                       b.get("server_hostname", "localhost"), journal, config_key, tl, crl, rc, state_dir,
                       status_fn=status_fn, on_command=lambda a, args: app.on_command(term, a, args),
                       on_applied=applied, clock=clk, firmware="cbcc-fw 0.1", boot=boot,
                       role=term.role, keepalive=cfg.get("keepalive", 30),
                       health_every_s=cfg.get("health_every_s", 60),
                       backoff_min_s=cfg.get("backoff_min_s", 1), backoff_max_s=cfg.get("backoff_max_s", 30),
                       national_list=ncrl)
    term.kick = up.kick

    def decided(result, fields):
        if fields is None:
            say(decision="read_failed", reason=result.reason)
        else:
            say(decision=fields[events.DECISION], reason=fields[events.REASON],
                serial=fields[events.SERIAL], tech=fields[events.TECH])

    async def supervise():
        t0 = board.ms()
        tasks = [asyncio.create_task(app.rf_loop(term, reader, decided)),
                 asyncio.create_task(app.door_loop(term)),
                 asyncio.create_task(app.housekeeping(term, background=up.background_step)),
                 asyncio.create_task(up.run())]
        say(started=rid, journal_depth=journal.depth(), trust_seq=tl.seq, crl_seq=crl.seq, config_seq=rc.seq,
            ncrl_seq=ncrl.seq)
        if steps:
            await run_script(board, rig, cards, steps, t0, journal)
        else:
            await asyncio.gather(*tasks)
        for t in tasks:
            t.cancel()
        say(exit=True, stats=term.stats, journal_depth=journal.depth(), uplink=up.stats,
            relay_changes=len(board.relay_history))

    asyncio.run(supervise())


main()
