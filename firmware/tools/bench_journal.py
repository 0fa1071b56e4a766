# Benchmark of the event journal, and its power-cut torture run (docs/journal.md).
#   micropython firmware/tools/bench_journal.py [--blocks 64] [--payload 96] [--samples 2000]
#       [--cuts 0] [--cut-blocks 4] [--cut-block-size 4096] [--seed 1] [--bench 1]
# Timing (--bench 1): appends, acks and peeks one at a time on a NorFlash of --blocks 4 KiB
# sectors, with prepare() in the idle time between appends as the reader's loop does; recovery
# of a full journal; wear over ten trips round the ring. Unix-port microseconds are projected to
# an ESP32 at 240 MHz with x70 (shared/context/esp32-projection.md); the flash part's own
# program/erase/read time is modelled separately (sim/nor_flash.py, W25Q32JV-class figures).
# Torture (--cuts N): N power cuts at random points of a random workload (appends, acks, peeks,
# prepare, offline phases until JournalFull), each followed by power-on, recovery and a check of
# everything the journal promises. The final line of output is one JSON object.
import gc
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import journal
from journal import Journal, JournalFull
from toolkit import ticks_diff, ticks_us

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
if _here + "/.." not in sys.path:
    sys.path.append(_here + "/..")  # firmware/, for the simulator package `sim`

from sim.nor_flash import ERASE_4K_US, NorFlash, PowerCut  # noqa: E402

ESP32_FACTOR = 70
BATCH = 20
ENDURANCE = 100000          # erase cycles per sector (W25Q32JV: 100,000 minimum)
EVENTS_PER_DAY = 2000       # a busy door


class Violation(Exception):
    pass


def _rand(seed):
    # spread small seeds (0, 1, 2 …) apart before xorshift
    return toolkit.Rng(seed * 2246822519 + 374761393)


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, len(xs) * p // 100)]


def recovery_bound(blocks, block_size):
    """Bytes a recovery may read: sector headers a few times over, one record per sector, and a
    handful of whole sectors (head, its blank check, the delivered-point sector, the cursor)."""
    return 4 * blocks * journal.SHDR + blocks * (journal.ROVER + journal.MAX_PAYLOAD) + 5 * block_size


# ---- power-cut torture ---------------------------------------------------------------------

class Torture:
    """A workload with an oracle. The oracle knows which appends returned (and their payloads),
    which append was in flight at the cut, the highest ack that returned and the highest ack
    started; after every recovery it checks the journal against that knowledge."""

    def __init__(self, seed=1, blocks=4, block_size=4096, max_payload=200, erase_units=1024,
                 max_ops=60):
        self.flash = NorFlash(blocks, block_size, seed=seed, erase_units=erase_units)
        self.rng = _rand(seed + 17)
        self.blocks = blocks
        self.block_size = block_size
        self.maxp = max_payload
        self.max_ops = max_ops
        self.recs = {}          # seq -> payload: appended, not known delivered
        self.acked = 0          # highest seq whose ack() returned
        self.ack_hi = 0         # highest seq an ack() was started for
        self.inflight = None    # (seq, payload) of an append that had not returned at the cut
        self.last = 0           # highest seq an append returned
        self.k = 0
        self.offline = False
        self.full_in_phase = 0
        self.epochs = 0
        self.cuts = 0
        self.cuts_in_erase = 0
        self.cuts_partial = 0
        self.cuts_page = 0
        self.partial = False
        self.page = False
        self.aim = ""
        self.aim_at = 0
        self.clean_reboots = 0
        self.torn = 0
        self.full = 0
        self.appends = 0
        self.acks = 0
        self.inflight_kept = 0
        self.inflight_gone = 0
        self.partial_acks = 0
        self.max_recover_bytes = 0
        self.max_recover_reads = 0
        self.bound = recovery_bound(blocks, block_size)

    def fail(self, msg):
        raise Violation("epoch %d: %s" % (self.epochs, msg))

    def payload(self, size):
        self.k += 1
        head = ("ev%d:" % self.k).encode()
        if size < len(head):
            size = len(head)
        fill = (self.k * 7 + 3) & 0xFF
        return head + bytes([fill]) * (size - len(head))

    def run(self, cuts):
        while self.cuts < cuts:
            self.epoch()
        return self

    def epoch(self):
        f = self.flash
        self.epochs += 1
        r0 = f.reads
        b0 = f.bytes_read
        j = Journal(f, max_payload=self.maxp)
        self.check(j, f.reads - r0, f.bytes_read - b0)
        rng = self.rng
        # where the cut goes: at a random unit of work from now (most epochs), or aimed at a
        # random ack (between its flag writes), at the last bytes of a random append, or at a
        # random prepare() (header zeroing or erase)
        c = rng.below(100)
        style = rng.below(3)
        self.partial = style == 1   # the last byte lands partly
        self.page = style == 2      # the whole page being programmed lands partly
        self.aim = ""
        self.aim_at = rng.below(self.max_ops)
        if c < 60:
            c = rng.below(100)
            if c < 70:
                n = 1 + rng.below(1500)
            elif c < 95:
                n = 1 + rng.below(8000)
            else:
                n = 1 + rng.below(40000)
            f.cut_after(n, self.partial, self.page)
        elif c < 80:
            self.aim = "ack"
        elif c < 90:
            self.aim = "append"
        else:
            self.aim = "prepare"
        try:
            for i in range(self.max_ops):
                self.op(j, i >= self.aim_at)
            f.disarm()
            self.clean_reboots += 1
        except PowerCut:
            self.cuts += 1
            if f.last_cut == "erase":
                self.cuts_in_erase += 1
            elif self.partial:
                self.cuts_partial += 1
            elif self.page:
                self.cuts_page += 1
            f.power_on()

    def arm(self, what, n):
        if self.aim == what:
            self.aim = ""
            self.flash.cut_after(n, self.partial, self.page)

    def op(self, j, aim):
        rng = self.rng
        if rng.below(150) == 0:
            self.offline = not self.offline
            self.full_in_phase = 0
        r = rng.below(100)
        if self.offline:
            if r < 92:
                self.op_append(j, aim)
            elif r < 97:
                self.op_peek(j)
            else:
                self.op_prepare(j, aim)
        elif r < 45:
            self.op_append(j, aim)
        elif r < 85:
            self.op_ack(j, aim)
        elif r < 95:
            self.op_peek(j)
        else:
            self.op_prepare(j, aim)

    def op_prepare(self, j, aim):
        if aim:
            self.arm("prepare", 1 + self.rng.below(self.flash.erase_units + 2 * journal.SHDR))
        j.prepare()

    def op_append(self, j, aim):
        rng = self.rng
        c = rng.below(10)
        if c < 6:
            size = 40 + rng.below(80)
        elif c < 9:
            size = rng.below(self.maxp + 1)
        else:
            size = self.maxp
        pl = self.payload(size)
        exp = j.last_seq() + 1
        if exp <= self.last:
            self.fail("append would reuse seq %d" % exp)
        self.inflight = (exp, pl)
        if aim:
            # the record is len + 11 bytes (its delivered flag is left erased): cut on its last
            # byte or the one before
            self.arm("append", len(pl) + 11 - self.rng.below(2))
        try:
            seq = j.append(pl)
        except JournalFull:
            self.inflight = None
            self.full += 1
            if j.free_bytes() >= journal.ROVER + len(pl):
                self.fail("JournalFull with %d bytes free" % j.free_bytes())
            if j.last_seq() != self.last or j.delivered_seq() != self.acked:
                self.fail("JournalFull changed the journal")
            if not j.nearly_full() and (journal.ROVER + self.maxp) * 10 <= j.capacity():
                self.fail("JournalFull without nearly_full")
            self.full_in_phase += 1
            if self.full_in_phase >= 3:
                self.offline = False
            return
        self.inflight = None
        if seq != exp:
            self.fail("append returned %d, expected %d" % (seq, exp))
        self.recs[seq] = pl
        self.last = seq
        self.appends += 1

    def op_ack(self, j, aim):
        d = j.depth()
        if d == 0:
            return
        dl = j.delivered_seq()
        if dl != self.acked:
            self.fail("delivered point %d, acked %d" % (dl, self.acked))
        target = dl + 1
        if self.rng.below(4) == 0:
            target += self.rng.below(d)
        self.ack_hi = target
        if aim:
            self.arm("ack", 1 + self.rng.below(target - dl))  # one flag byte per record
        j.ack(target)
        for s in range(self.acked + 1, target + 1):
            self.recs.pop(s, None)
        self.acked = target
        self.acks += 1

    def op_peek(self, j):
        items = j.peek(1 + self.rng.below(4))
        s = j.delivered_seq() + 1
        for seq, pl in items:
            if seq != s or self.recs.get(seq) != pl:
                self.fail("peek returned seq %d (expected %d) or a wrong payload" % (seq, s))
            s += 1

    def check(self, j, reads, nbytes):
        dlv = j.delivered_seq()
        last = j.last_seq()
        if dlv < self.acked:
            self.fail("acked records %d..%d came back" % (dlv + 1, self.acked))
        if dlv > max(self.acked, self.ack_hi):
            self.fail("delivered point %d beyond any ack (%d)" % (dlv, max(self.acked, self.ack_hi)))
        if dlv > self.acked:
            self.partial_acks += 1
        if last < self.last:
            self.fail("last seq %d < %d returned before the cut" % (last, self.last))
        kept = last > self.last
        if kept:
            inf = self.inflight
            if inf is None or last != self.last + 1 or inf[0] != last:
                self.fail("record %d was never appended" % last)
        if j.depth() != last - dlv:
            self.fail("depth %d != %d" % (j.depth(), last - dlv))
        s = dlv + 1
        for seq, pl in j.pending():
            if seq != s:
                self.fail("pending seq %d, expected %d" % (seq, s))
            want = self.recs.get(seq)
            if want is None and kept and self.inflight is not None and seq == last:
                want = self.inflight[1]
            if want is None or pl != want:
                self.fail("record %d is corrupt or foreign" % seq)
            s += 1
        if s != last + 1:
            self.fail("pending stopped at %d, last is %d" % (s - 1, last))
        st = j.stats()
        if st["lost"]:
            self.fail("records lost: %d" % st["lost"])
        self.torn += st["torn_at_recovery"]
        if self.inflight is not None:
            if kept:
                self.inflight_kept += 1
                self.recs[last] = self.inflight[1]
                self.last = last
            else:
                self.inflight_gone += 1
        self.inflight = None
        for x in range(self.acked + 1, dlv + 1):
            self.recs.pop(x, None)
        self.acked = dlv
        self.ack_hi = dlv
        if nbytes > self.bound:
            self.fail("recovery read %d bytes, bound %d" % (nbytes, self.bound))
        if nbytes > self.max_recover_bytes:
            self.max_recover_bytes = nbytes
        if reads > self.max_recover_reads:
            self.max_recover_reads = reads

    def report(self):
        f = self.flash
        lo, hi, tot = f.wear()
        return {
            "cuts": self.cuts, "cuts_in_erase": self.cuts_in_erase, "cuts_partial_byte": self.cuts_partial,
            "cuts_partial_page": self.cuts_page,
            "epochs": self.epochs, "clean_reboots": self.clean_reboots, "appends": self.appends,
            "acks": self.acks, "journal_full": self.full, "torn_found": self.torn,
            "inflight_kept": self.inflight_kept, "inflight_gone": self.inflight_gone,
            "partial_acks": self.partial_acks, "ring_wraps": tot // self.blocks,
            "max_recover_bytes": self.max_recover_bytes, "recover_bound_bytes": self.bound,
            "max_recover_reads": self.max_recover_reads, "erase_min": lo, "erase_max": hi,
        }


def torture(cuts, seed=1, blocks=4, block_size=4096, max_payload=200):
    """Returns (report dict, first violation message or "")."""
    t = Torture(seed, blocks, block_size, max_payload)
    msg = ""
    try:
        t.run(cuts)
    except Violation as e:
        msg = str(e)
    return t.report(), msg


# ---- timing --------------------------------------------------------------------------------

def _event(size):
    # stands in for a CBOR event: reader id, seq, time, card serial, decision, HMAC-SHA256
    return bytes([(i * 37 + 11) & 0xFF for i in range(size)])


def bench(blocks, payload, samples):
    bs = 4096
    pl = _event(payload)
    rec = journal.ROVER + payload
    rps = (bs - journal.SHDR) // rec
    out = {"blocks": blocks, "block_size": bs, "partition_kib": blocks * bs // 1024,
           "payload_bytes": payload, "bytes_per_record": rec, "records_per_sector": rps,
           "capacity_records": blocks * rps}

    # appends in batches of BATCH (less than a sector, so at most one roll-over per batch, onto
    # the sector prepare() erased in the idle time before it); acks keep the ring moving
    f = NorFlash(blocks, bs)
    j = Journal(f)
    app = []
    flash_us = []
    for i in range(samples // BATCH):
        if j.depth() > blocks * rps // 2:
            j.ack(j.last_seq() - 10)
        j.prepare()
        gc.collect()
        m0 = f.modelled_us
        t0 = ticks_us()
        for _ in range(BATCH):
            j.append(pl)
        app.append(ticks_diff(ticks_us(), t0) / BATCH)
        flash_us.append((f.modelled_us - m0) / BATCH)
    # the same flash writes without the journal: the simulator's own share of the time
    g = NorFlash(blocks, bs)
    mv = memoryview(bytearray(rec))
    dev = []
    off = journal.SHDR
    blk = 0
    for i in range(samples // BATCH):
        gc.collect()
        k = 0
        t0 = ticks_us()
        for _ in range(BATCH):
            if off + rec > bs:
                blk += 1
                if blk == blocks:
                    break
                off = journal.SHDR
            g.writeblocks(blk, mv[0:rec - 1], off)
            off += rec
            k += 1
        if k:
            dev.append(ticks_diff(ticks_us(), t0) / k)
        if blk == blocks:
            for b in range(blocks):
                g.erase(b)
            blk = 0
            off = journal.SHDR
    # peeks of one record and acks of one record, in batches
    ack = []
    peek = []
    while j.depth() > BATCH:
        gc.collect()
        t0 = ticks_us()
        for _ in range(BATCH):
            j.peek(1)
        peek.append(ticks_diff(ticks_us(), t0) / BATCH)
        d = j.delivered_seq()
        t0 = ticks_us()
        for k in range(BATCH):
            j.ack(d + 1 + k)
        ack.append(ticks_diff(ticks_us(), t0) / BATCH)
    a = toolkit.median(app)
    d = toolkit.median(dev)
    fl = toolkit.median(flash_us)
    out["journal_append_us"] = a
    out["journal_append_p90_us"] = _pct(app, 90)
    out["journal_append_ms_projected"] = a * ESP32_FACTOR / 1000
    out["sim_write_us"] = d
    out["journal_append_cpu_us"] = a - d
    out["journal_append_cpu_ms_projected"] = (a - d) * ESP32_FACTOR / 1000
    out["journal_append_flash_ms_modelled"] = fl / 1000
    out["journal_append_total_ms_modelled"] = (a * ESP32_FACTOR + fl) / 1000
    out["journal_append_rollover_erase_ms_modelled"] = ERASE_4K_US / 1000
    out["journal_ack_us"] = toolkit.median(ack)
    out["journal_ack_ms_projected"] = toolkit.median(ack) * ESP32_FACTOR / 1000
    out["journal_peek1_us"] = toolkit.median(peek)
    out["records_per_s_projected_cpu"] = int(1000000 / (a * ESP32_FACTOR))
    out["records_per_s_projected_with_flash"] = int(1000000 / (a * ESP32_FACTOR + fl))

    # recovery of a full journal: everything undelivered (the delivered-point search walks back
    # over every sector), half delivered, everything delivered
    f = NorFlash(blocks, bs)
    j = Journal(f)
    try:
        while True:
            j.append(pl)
    except JournalFull:
        pass
    worst = 0.0
    worst_bytes = 0
    worst_flash = 0.0
    for case in range(3):
        if case == 1:
            j.ack(j.last_seq() // 2)
        elif case == 2:
            j.ack(j.last_seq())
        ts = []
        for _ in range(7):
            gc.collect()
            b0 = f.bytes_read
            m0 = f.modelled_us
            t0 = ticks_us()
            j = Journal(f)
            ts.append(ticks_diff(ticks_us(), t0))
            nb = f.bytes_read - b0
            fm = f.modelled_us - m0
        t = toolkit.median(ts)
        if t > worst:
            worst = t
            worst_bytes = nb
            worst_flash = fm
    out["recover_full_us"] = worst
    out["recover_ms_projected"] = worst * ESP32_FACTOR / 1000
    out["recover_bytes_read"] = worst_bytes
    out["recover_flash_ms_modelled"] = worst_flash / 1000

    # wear: ten trips round the ring with the uplink keeping up
    f = NorFlash(blocks, bs)
    j = Journal(f)
    n = 0
    while f.wear()[2] < 10 * blocks:
        j.append(pl)
        n += 1
        if j.depth() > 20:
            j.ack(j.last_seq())
        j.prepare()
    lo, hi, tot = f.wear()
    out["wear_records"] = n
    out["erase_min"] = lo
    out["erase_max"] = hi
    out["erases_per_1000_records"] = tot * 1000 / n
    out["program_ops_per_record"] = f.writes / n   # the record, its delivered flag, headers
    out["lifetime_years_at_%d_per_day" % EVENTS_PER_DAY] = int(
        ENDURANCE * blocks * rps / EVENTS_PER_DAY / 365)
    return out


def main():
    defaults = {"blocks": "64", "payload": "96", "samples": "4000", "cuts": "0", "cut-blocks": "4",
                "cut-block-size": "4096", "seed": "1", "bench": "1"}
    _, o = toolkit.parse(sys.argv[1:], defaults, 0)
    out = {"bench": "journal", "esp32_factor": ESP32_FACTOR}
    if o["bench"] == "1":
        b = bench(int(o["blocks"]), int(o["payload"]), int(o["samples"]))
        out.update(b)
        print("append %.1f us (x70 = %.2f ms; journal code alone %.1f us), ack %.1f us, recover "
              "%.0f us (x70 = %.0f ms)" % (b["journal_append_us"], b["journal_append_ms_projected"],
                                           b["journal_append_cpu_us"], b["journal_ack_us"],
                                           b["recover_full_us"], b["recover_ms_projected"]))
    cuts = int(o["cuts"])
    if cuts:
        t0 = ticks_us()
        rep, msg = torture(cuts, int(o["seed"]), int(o["cut-blocks"]), int(o["cut-block-size"]))
        for k in rep:
            out["torture_" + k] = rep[k]
        out["torture_violations"] = 1 if msg else 0
        out["torture_first_violation"] = msg
        out["torture_s"] = ticks_diff(ticks_us(), t0) / 1000000
        print("power cuts: %d (%d in erases, %d partial bytes, %d partial pages), violations: %s" % (
            rep["cuts"], rep["cuts_in_erase"], rep["cuts_partial_byte"], rep["cuts_partial_page"],
            msg or "none"))
    print(toolkit.json_line(out))


if __name__ == "__main__":
    main()
