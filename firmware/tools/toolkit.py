# Shared plumbing for the firmware command-line tools (run from a checkout with the unix port,
# or with CPython for cross-checks): the path to the reader's modules, a microsecond clock,
# option parsing and file reading.
import sys
import time

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
if _here + "/../lib" not in sys.path:
    sys.path.insert(0, _here + "/../lib")
# firmware/ itself, after the reader's modules, for the RF simulator package `sim` (bench tools).
if _here + "/.." not in sys.path:
    sys.path.append(_here + "/..")


class Usage(Exception):
    pass


def ticks_us():
    f = getattr(time, "ticks_us", None)
    if f is not None:
        return f()
    return int(getattr(time, "perf_counter")() * 1000000)


def ticks_diff(a, b):
    f = getattr(time, "ticks_diff", None)
    if f is not None:
        return f(a, b)
    return a - b


def parse(argv, defaults, npos):
    """Split argv into npos positionals and --name VALUE options known in defaults (all str)."""
    pos = []
    opts = dict(defaults)
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name = a[2:]
            if name not in opts or i + 1 >= len(argv):
                raise Usage("unknown or incomplete option " + a)
            opts[name] = argv[i + 1]
            i += 2
        else:
            pos.append(a)
            i += 1
    if len(pos) != npos:
        raise Usage("expected %d file arguments" % npos)
    return pos, opts


def read(path, limit=65536):
    """Read a file, but never more than limit + 1 bytes: an oversize object is refused by its
    parser's size check without ever being held whole."""
    import os

    try:
        size = os.stat(path)[6]
        with open(path, "rb") as f:
            # MicroPython's read(n) allocates n bytes up front: ask for no more than is there.
            return f.read(min(size, limit + 1))
    except OSError:
        raise Usage("cannot read " + path)


def median(xs):
    """The middle element (the upper one for an even count), so callers can find it in xs."""
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bare_rsa_us(rounds):
    """Host-speed reference, in this run: median microseconds of RSA-2048 pow(s, 65537, n) plus
    SHA-256 of 420 bytes. The x70 ESP32 factor was calibrated on a host where this took about
    700 us (esp32-projection.md): a host-normalised projection scales CPU by 700 / this."""
    return median(bare_rsa_samples(rounds))


def bare_rsa_samples(rounds):
    """bare_rsa_us's individual samples (microseconds)."""
    import hashlib

    # a real-shaped 2048-bit modulus: the top bit set, odd; s below it
    n = (1 << 2047) | int.from_bytes(hashlib.sha256(b"n").digest() * 8, "big") | 1
    s = n // 3
    blob = b"\x5a" * 420
    ts = []
    for _ in range(rounds):
        t0 = ticks_us()
        pow(s, 65537, n)
        hashlib.sha256(blob).digest()
        ts.append(ticks_diff(ticks_us(), t0))
    return ts


BARE_CALIBRATION_US = 700


def trust_flash_us(store, kid):
    """Modelled LittleFS flash time of one cold lookup of kid in a trust_store.TrustStore (its
    reads of the index and the list, as LittleFS would make them: sim/lfs_timing.py); the
    lookup runs once, untimed, with the store's files wrapped, then the store is as before."""
    import os

    # the model alone, not the simulator package (whose import would load every card model
    # into the reader-sized heap bench_trust.py runs in)
    sys.path.append(_here + "/../sim")
    try:
        import lfs_timing  # type: ignore[import-not-found]
    finally:
        sys.path.pop()

    idx, lst = store._idx, store._lst
    mi = lfs_timing.FileMeter(idx, os.stat(store._path("trust.idx"))[6])
    ml = lfs_timing.FileMeter(lst, os.stat(store._path("trust.cbor"))[6])
    cache, order = store._cache, store._order
    store._idx, store._lst, store._cache, store._order = mi, ml, {}, []
    try:
        if store.get(kid) is None:
            raise SystemExit("lookup failed")
    finally:
        store._idx, store._lst, store._cache, store._order = idx, lst, cache, order
    return mi.modelled_us + ml.modelled_us


class Rng:
    """xorshift32: deterministic and identical under MicroPython and CPython (fuzzing, torture)."""

    def __init__(self, seed):
        self.s = (seed & 0xFFFFFFFF) or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.next() % n if n > 0 else 0


def json_line(d):
    """One JSON object from a flat dict, floats with 3 decimals (the benchmarks' final line)."""
    parts = []
    for k in d:
        v = d[k]
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, float):
            s = "%.3f" % v
        elif isinstance(v, int):
            s = "%d" % v
        else:
            s = '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')
        parts.append('"%s": %s' % (k, s))
    return "{" + ", ".join(parts) + "}"


def run_main(run, usage):
    """Run a tool's run(argv) -> exit code; a Usage error prints the usage line and exits 2."""
    try:
        code = run(sys.argv[1:])
    except Usage as e:
        sys.stderr.write(str(e) + "\n" + usage + "\n")
        code = 2
    sys.exit(code)
