# Benchmark one tap through the terminal's whole decision pipeline on the unix port.
#   micropython firmware/tools/bench_tap.py CRED TRUST ROOT --uid HEX --now EPOCH --crl CRL
#       --config CFG --config-key COSE_KEY --read-json READ.json [--repeat-read-json READ2.json]
#       [--rounds R] [--gc-after-tap 1|0] [--trust-store DIR]
# --trust-store DIR: the trust list is installed in the reader's on-flash store in DIR
# (trust_store.py, amendment 1) and every first tap looks its issuer up on flash (the store's
# issuer cache is emptied with the verified-credential cache).
# The card read itself (RF, SPI, card time and the driver's CPU) comes from bench_read.py's JSON
# (--read-json, produced in the same run by tests/bench/tap.py); this tool times what follows the
# read on the reader: credential verification (a first-seen card: the full nine checks with
# RSA; a repeat tap: the verified cache, checks 7-9 only, after a read that skipped ReadData because
# the chip proved its per-UID key and its credential was cached), revocation, door policy, the event
# record and the journal append on the NOR-flash simulator, relay and feedback. CPU is projected
# to an ESP32 at 240 MHz with x70; the journal append adds the modelled flash program time, a
# first tap with --trust-store the modelled LittleFS reads of its issuer lookup (sim/lfs_timing.py:
# the worst over the list's issuers, trust_flash_worst_ms; this card's issuer: trust_flash_ms).
# The final line is one JSON object: first_tap_ms, repeat_tap_ms, journal_append_ms and the RAM
# high-water mark of the pipeline, with the p99 and worst pipeline times. --gc-after-tap 1 (the
# default) collects garbage after every decision, as app.rf_loop does; 0 leaves collections to the
# allocator, so one lands inside a tap whenever the heap runs out (what the tail used to show).
import gc
import json
import sys

import toolkit  # first: puts the reader's modules (and firmware/ for sim) on the path

# isort: split
import binascii

import clock
import cose_key
import reader_config
import revocation
import terminal
import trust
from journal import Journal
from sim.board import SimBoard
from sim.nor_flash import NorFlash
from toolkit import ticks_diff, ticks_us

ESP32_FACTOR = 70


class _Result:
    # What card_reader.ReadResult carries into the pipeline (the read itself is benched apart).
    def __init__(self, cred, uid):
        self.ok = True
        self.tech = "desfire"
        self.anti_clone = True
        self.uid = uid
        self.credential = cred
        self.reason = None
        self.details = {}


def _pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, (len(s) * p + 99) // 100 - 1)]


def main():
    defaults = {"uid": "", "now": "0", "crl": "", "config": "", "config-key": "", "read-json": "",
                "repeat-read-json": "", "rounds": "15", "gc-after-tap": "1", "trust-store": ""}
    pos, o = toolkit.parse(sys.argv[1:], defaults, 3)
    cred = toolkit.read(pos[0])
    root = cose_key.load(toolkit.read(pos[2]))
    if o["trust-store"]:
        import trust_store

        store = trust_store.TrustStore(root, o["trust-store"])
        st = store.offer(pos[1])   # the list file is moved into the store
        tl = store  # type: object
    else:
        store = None
        mem = trust.TrustList(root)
        st = mem.update(toolkit.read(pos[1]))
        tl = mem
    crl = revocation.RevocationList(root)
    if st != "ok" or crl.update(toolkit.read(o["crl"])) != "ok":
        raise SystemExit("trust or revocation list does not load")
    rc = reader_config.ReaderConfig(cose_key.load(toolkit.read(o["config-key"])))
    if rc.update(toolkit.read(o["config"])) != "ok":
        raise SystemExit("configuration does not load")
    with open(o["read-json"]) as f:
        read = json.load(f)
    repeat_read = read
    if o["repeat-read-json"]:
        # a repeat tap: the chip proves its key, the credential comes from the terminal's cache
        with open(o["repeat-read-json"]) as f:
            repeat_read = json.load(f)
    uid = binascii.unhexlify(o["uid"])
    rounds = int(o["rounds"])
    gc_after = o["gc-after-tap"] != "0"

    ms = [0]
    board = SimBoard(None, clock_ms=lambda: ms[0])
    flash = NorFlash(blocks=64, block_size=4096)
    journal = Journal(flash)
    clk = clock.Clock()
    clk.set_from_gateway(int(o["now"]) * 1000)
    term = terminal.Terminal(board, {"reader_id": "bench", "role": terminal.ROLE_DOOR},
                             {"trust": tl, "revocation": crl, "config": rc}, journal, clk, None)
    result = _Result(cred, uid)

    first = []
    repeat = []
    append = []
    append_flash = []  # modelled flash program time of each append
    gc.collect()
    free0 = gc.mem_free()
    low = free0
    collected = 0
    bares = []  # type: list[int]  # host-speed reference, sampled every round (the load changes)
    for i in range(rounds):
        bares.append(toolkit.bare_rsa_us(3))
        ms[0] += 10000                 # beyond any re-tap window: every tap is a new event
        term.cache.clear()
        if store is not None:
            store._cache = {}          # the issuer comes from flash on this tap
            store._order = []
        h0 = gc.mem_free()
        t0 = ticks_us()
        fields = term.on_read(result)
        first.append(ticks_diff(ticks_us(), t0))
        low = min(low, gc.mem_free())
        collected += gc.mem_free() > h0  # more free after than before: a collection ran inside
        if gc_after:
            gc.collect()               # after the decision, as app.rf_loop does
        if fields is None or fields[10] != "grant":
            raise SystemExit("the bench tap was not granted: %r" % (fields,))
        ms[0] += 10000
        h0 = gc.mem_free()
        t0 = ticks_us()
        term.on_read(result)
        repeat.append(ticks_diff(ticks_us(), t0))
        collected += gc.mem_free() > h0
        if gc_after:
            gc.collect()
        rec = b"x" * 96
        journal.prepare()              # what housekeeping does in idle time: erase ahead
        f0 = flash.modelled_us
        t0 = ticks_us()
        journal.append(rec)
        append.append(ticks_diff(ticks_us(), t0))
        append_flash.append(flash.modelled_us - f0)
        journal.ack(journal.last_seq())
    bare = toolkit.median(bares)
    # the issuer lookup's LittleFS reads (not in the unix-port CPU): modelled for this card's
    # issuer and for every issuer of the list (the worst counts in first_tap_ms)
    flash_ms = flash_worst_ms = 0.0
    if store is not None:
        import cose

        kid = cose.parse_sign1(cred, 4096).kid
        flash_ms = toolkit.trust_flash_us(store, kid) / 1000
        kids = [store._kids[i * 8:i * 8 + 8] for i in range(store.count)]
        flash_worst_ms = max(toolkit.trust_flash_us(store, k) for k in kids) / 1000
    f_ms = toolkit.median(first) * ESP32_FACTOR / 1000 + flash_worst_ms
    r_ms = toolkit.median(repeat) * ESP32_FACTOR / 1000
    a_ms = toolkit.median(append) * ESP32_FACTOR / 1000 + toolkit.median(append_flash) / 1000
    read_ms = read["total_ms"]
    repeat_read_ms = repeat_read["total_ms"]
    print("first: read %.1f + pipeline %.1f ms; repeat: read %.1f + pipeline %.1f ms (projected)"
          % (read_ms, f_ms, repeat_read_ms, r_ms))
    print(json.dumps({
        "bench": "tap", "card": read.get("card"), "bitrate": read.get("bitrate"),
        "read_ms": read_ms, "read_modelled_rf_ms": read.get("modelled_rf_ms"),
        "read_projected_cpu_ms": read.get("projected_cpu_ms"),
        "pipeline_first_us_unix": toolkit.median(first), "pipeline_repeat_us_unix": toolkit.median(repeat),
        # the fastest first tap and bare sample: on a loaded shared host the least disturbed
        "pipeline_first_min_us_unix": min(first), "bare_rsa2048_sha256_min_us_unix": min(bares),
        "pipeline_first_ms": round(f_ms, 2), "pipeline_repeat_ms": round(r_ms, 2),
        "repeat_read_ms": repeat_read_ms,
        "first_tap_ms": round(read_ms + f_ms, 1), "repeat_tap_ms": round(repeat_read_ms + r_ms, 1),
        "journal_append_ms": round(a_ms, 3), "journal_append_us_unix": toolkit.median(append),
        "pipeline_first_p99_ms": round(_pct(first, 99) * ESP32_FACTOR / 1000 + flash_worst_ms, 2),
        "pipeline_first_worst_ms": round(max(first) * ESP32_FACTOR / 1000 + flash_worst_ms, 2),
        "trust_flash_ms": round(flash_ms, 3), "trust_flash_worst_ms": round(flash_worst_ms, 3),
        "first_tap_p99_ms": round(read.get("total_p99_ms", read_ms) + _pct(first, 99) * ESP32_FACTOR / 1000
                                  + flash_worst_ms, 1),
        "first_tap_worst_ms": round(read.get("total_worst_ms", read_ms) + max(first) * ESP32_FACTOR / 1000
                                    + flash_worst_ms, 1),
        "pipeline_repeat_p99_ms": round(_pct(repeat, 99) * ESP32_FACTOR / 1000, 2),
        "pipeline_repeat_worst_ms": round(max(repeat) * ESP32_FACTOR / 1000, 2),
        "gc_after_tap": gc_after, "collections_inside_taps": collected, "taps": 2 * rounds,
        "ram_high_water_bytes": free0 - low, "rounds": rounds, "esp32_factor": ESP32_FACTOR,
        "trust_entries": getattr(tl, "count", None) or len(getattr(tl, "issuers", ())),
        "trust_store": bool(o["trust-store"]),
        "bare_rsa2048_sha256_us_unix": bare,
        # CPU share scaled to the 700 us host the x70 factor was calibrated on (esp32-projection.md)
        # (the read's own host-normalised total when bench_read.py gives one: its jobs' overlap
        # is projected again there; else its CPU share scaled here)
        "first_tap_host_normalised_ms": round(
            (read["host_normalised_total_ms"] if "host_normalised_total_ms" in read
             else read_ms - read.get("projected_cpu_ms", 0) + read.get("projected_cpu_ms", 0) * 700 / bare)
            + (f_ms - flash_worst_ms) * 700 / bare + flash_worst_ms, 1),
        "goals_ms": {"first_tap": 120, "repeat_tap": 50, "journal_append": 2},
    }))


main()
