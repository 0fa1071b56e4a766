# Benchmark of the national compact revocation list on the reader (crl_national.py).
#   micropython firmware/tools/bench_crl.py ROOT.cose_key FULL PROBES [--delta DELTA]
#       [--dir STATE_DIR] [--batch 32]
# FULL and DELTA are object files (signed header + body); they are copied into STATE_DIR and
# offered there as a download would be (verify, SHA-256 of the body, full structural check),
# then the held copies are loaded again as at boot. PROBES is a binary file of 9-byte records:
# a serial (8 bytes big-endian), then flags: bit 0 revoked by FULL, bit 1 revoked once DELTA is
# applied, bits 2-3 the probe's class (0 revoked, 1 issued, 2 never issued or outside ranges).
# Each lookup is timed on its own (percentiles; the maximum also catches the host OS preempting
# the process) and in batches of --batch (lookup_us_mean is the median of the batch means), and
# the slowest lookup there is (the last serial of the longest bucket) is timed 101 times
# (median); every answer is checked against the flags. Unix-port microseconds are projected to
# an ESP32 at 240 MHz with x70 (shared/context/esp32-projection.md). The final line of output
# is one JSON object.
import gc
import os
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
from array import array

import cose_key
import crl_national
from toolkit import ticks_diff, ticks_us

ESP32_FACTOR = 70
CLASSES = ("revoked", "issued", "outside")
REC = 9
_BATCH_RECS = 64


def _copy(src, dst):
    buf = bytearray(1024)
    with open(src, "rb") as a:
        with open(dst, "wb") as b:
            while True:
                k = a.readinto(buf)
                if not k:
                    break
                b.write(buf if k == len(buf) else buf[0:k])


def _clean(folder):
    for name in (crl_national.BASE_FILE, crl_national.DELTA_FILE, "in.obj"):
        try:
            os.remove(folder + "/" + name)
        except OSError:
            pass


def _pct(hist, total, p):
    want = (total * p + 99) // 100
    acc = 0
    for us in range(len(hist)):
        acc += hist[us]
        if acc >= want:
            return us
    return len(hist) - 1


def _probe(lst, path, bit, batch):
    """Time every probe alone and in batches; returns a dict of figures."""
    hist = array("I", [0] * 2048)
    sums = [0, 0, 0]
    counts = [0, 0, 0]
    batch_us = 0
    batch_n = 0
    means = []
    wrong = 0
    n = 0
    recs = bytearray(REC * _BATCH_RECS)
    serials = [0] * _BATCH_RECS
    flags = bytearray(_BATCH_RECS)
    with open(path, "rb") as f:
        while True:
            got = f.readinto(recs)
            if not got:
                break
            m = got // REC
            for i in range(m):
                o = i * REC
                serials[i] = int.from_bytes(recs[o:o + 8], "big")
                flags[i] = recs[o + 8]
            gc.collect()
            for i in range(m):
                s = serials[i]
                t0 = ticks_us()
                hit = lst.is_revoked(s)
                dt = ticks_diff(ticks_us(), t0)
                if hit != bool(flags[i] & bit):
                    wrong += 1
                c = (flags[i] >> 2) & 3
                sums[c] += dt
                counts[c] += 1
                hist[dt if dt < 2047 else 2047] += 1
                n += 1
            # the same probes again, timed as batches (no per-lookup clock reads)
            j = 0
            while j + batch <= m:
                t0 = ticks_us()
                for i in range(j, j + batch):
                    lst.is_revoked(serials[i])
                dt = ticks_diff(ticks_us(), t0)
                means.append(dt / batch)
                batch_us += dt
                batch_n += batch
                j += batch
    out = {"probes": n, "wrong_answers": wrong}  # type: dict
    # the median of the batch means: one batch the OS preempted does not move it
    mean = toolkit.median(means) if means else 0.0
    out["lookup_us_mean"] = mean
    out["lookup_us_mean_all_batches"] = batch_us / batch_n if batch_n else 0.0
    out["lookup_ms_projected_mean"] = mean * ESP32_FACTOR / 1000
    for p in (50, 90, 99):
        out["lookup_us_p%d" % p] = _pct(hist, n, p)
    mx = 0
    for us in range(len(hist)):
        if hist[us]:
            mx = us
    out["lookup_us_max"] = mx
    out["lookup_ms_projected_p99"] = out["lookup_us_p99"] * ESP32_FACTOR / 1000
    out["lookup_ms_projected_max"] = mx * ESP32_FACTOR / 1000
    for c in range(3):
        if counts[c]:
            out["lookup_us_mean_" + CLASSES[c]] = sums[c] / counts[c]
    return out


def _worst(lst, reps=101):
    """The slowest lookup there is: the last serial of the longest bucket (every code of the
    bucket decoded), timed reps times; returns (median us, bucket bytes, serial)."""
    b = lst.base
    best = -1
    at = 0
    for i in range(b.nbuckets):
        s, e = b._bucket(i)
        if e - s > best:
            best = e - s
            at = i
    r = 0
    while r + 1 < len(b.first) and b.first[r + 1] <= at:
        r += 1
    j = at - b.first[r]
    w = b.width[r]
    last = b.span[r] - j * w
    serial = b.lo[r] + j * w + (w if w < last else last) - 1
    ts = []
    gc.collect()
    for _ in range(reps):
        t0 = ticks_us()
        lst.is_revoked(serial)
        ts.append(ticks_diff(ticks_us(), t0))
    return toolkit.median(ts), (best + 7) // 8, serial


def _offer(lst, src, folder):
    _copy(src, folder + "/in.obj")
    gc.collect()
    t0 = ticks_us()
    st = lst.offer(folder + "/in.obj")
    dt = ticks_diff(ticks_us(), t0)
    if st != "ok":
        raise SystemExit("offer of %s: %s %s" % (src, st, lst.detail))
    return dt


def main():
    defaults = {"delta": "", "dir": "/tmp/cbcc-bench-crl", "batch": "32"}
    pos, o = toolkit.parse(sys.argv[1:], defaults, 3)
    folder = o["dir"]
    try:
        os.mkdir(folder)
    except OSError:
        pass
    _clean(folder)
    root = cose_key.load(toolkit.read(pos[0]))
    batch = int(o["batch"])
    out = {"bench": "crl_national_reader", "esp32_factor": ESP32_FACTOR}
    lst = crl_national.NationalList(root, folder)
    us = _offer(lst, pos[1], folder)
    out["full_offer_ms"] = us / 1000
    out["full_offer_s_projected"] = us * ESP32_FACTOR / 1e6
    out["count"] = lst.count()
    gc.collect()
    t0 = ticks_us()
    st = lst.load_held()
    us = ticks_diff(ticks_us(), t0)
    if st != "ok":
        raise SystemExit("load_held: " + str(st))
    out["boot_load_ms"] = us / 1000
    out["boot_load_s_projected"] = us * ESP32_FACTOR / 1e6
    gc.collect()
    out["heap_free_after_load"] = gc.mem_free() if hasattr(gc, "mem_free") else -1
    base = _probe(lst, pos[2], 1, batch)
    us, nbytes, serial = _worst(lst)
    base["lookup_us_worst_bucket"] = us
    base["lookup_ms_projected_worst_bucket"] = us * ESP32_FACTOR / 1000
    base["worst_bucket_bytes"] = nbytes
    for k in base:
        out["full_" + k] = base[k]
    if o["delta"]:
        us = _offer(lst, o["delta"], folder)
        out["delta_offer_ms"] = us / 1000
        out["delta_count"] = lst.count()
        d = _probe(lst, pos[2], 2, batch)
        us, nbytes, serial = _worst(lst)
        d["lookup_us_worst_bucket"] = us
        d["lookup_ms_projected_worst_bucket"] = us * ESP32_FACTOR / 1000
        for k in d:
            out["delta_" + k] = d[k]
    lst.close()
    _clean(folder)
    print("lookup %.1f us mean (x70 = %.2f ms), p99 %d us, longest bucket %d us (x70 = %.2f ms), "
          "wrong %d" % (base["lookup_us_mean"], base["lookup_ms_projected_mean"],
                        base["lookup_us_p99"], base["lookup_us_worst_bucket"],
                        base["lookup_ms_projected_worst_bucket"], base["wrong_answers"]))
    print(toolkit.json_line(out))


if __name__ == "__main__":
    toolkit.run_main(lambda argv: main() or 0,
                     "usage: bench_crl.py ROOT.cose_key FULL PROBES [--delta DELTA] [--dir D]")
