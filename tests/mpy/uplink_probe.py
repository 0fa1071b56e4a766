# A reader under the MicroPython unix port for tests/firmware/test_uplink.py: the real uplink
# (firmware/lib/uplink.py) with the real journal on a file-backed NOR flash (so the journal
# survives the process being killed; like sim.file_flash, without importing the RF simulator),
# real trust/revocation/configuration holders and a test clock, against a real broker over TLS.
#   micropython tests/mpy/uplink_probe.py CONFIG.json
# (a file: the unix port aborts on a command-line argument of 256 bytes or more)
# Commands arrive as JSON lines on stdin: {"op": "append", "n": N, "every_ms": M, "tag": T},
# {"op": "stats"}, {"op": "exit"}. Everything the reader does is printed as JSON lines
# ({"ev": ...}); on_applied journals a notice record, as the application does.
import asyncio
import binascii
import gc
import json
import os
import ssl
import sys

import cose_key
import events
import reader_config
import revocation
import trust
import uplink
from journal import Journal, JournalFull
from ticks import elapsed_ms, ticks_ms

with open(sys.argv[1]) as _f:
    cfg = json.load(_f)
T0 = ticks_ms()


def say(**kw):
    print(json.dumps(kw))


def plain(v):
    # JSON-safe view of what a callback receives
    if isinstance(v, (bytes, bytearray)):
        return binascii.hexlify(v).decode()
    if isinstance(v, dict):
        return {str(k): plain(v[k]) for k in v}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


class FileFlash:
    """NOR flash behind the extended block-device protocol, kept in a file: programming ANDs
    into the old contents, erase sets a block to 0xFF. Every write reaches the file before the
    call returns, so a killed process leaves what a power cut after that call would."""

    def __init__(self, path, blocks, block_size=4096):
        self.blocks = blocks
        self.bs = block_size
        try:
            size = os.stat(path)[6]
        except OSError:
            size = -1
        if size != blocks * block_size:
            with open(path, "wb") as f:
                for _ in range(blocks):
                    f.write(b"\xff" * block_size)
        self.f = open(path, "r+b")

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * self.bs + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        old = bytearray(len(buf))
        self.f.seek(a)
        self.f.readinto(old)
        for i in range(len(buf)):
            old[i] &= buf[i]
        self.f.seek(a)
        self.f.write(old)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bs
        if op == 6:
            self.f.seek(arg * self.bs)
            self.f.write(b"\xff" * self.bs)
            self.f.flush()
            return 0
        return 0


class Clock:
    def __init__(self, quality, now):
        self.q = quality
        self.fixed = now
        self.set_ms = None

    def quality(self):
        return self.q

    def now(self):
        if self.fixed is not None:
            return self.fixed
        import localtime
        return localtime.unix_now()

    def set_from_gateway(self, unix_ms):
        self.set_ms = unix_ms
        self.q = events.TQ_SYNCED
        say(ev="clock", unix_ms=unix_ms)


def tls_context(ca_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(ca_path, "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    return ctx


def load_key(path):
    with open(path, "rb") as f:
        return cose_key.load(f.read())


flash = FileFlash(cfg["flash"], cfg.get("blocks", 8))
journal = Journal(flash)
rid = cfg["rid"]
config_key = load_key(cfg["config_key"])
root = load_key(cfg["root"])
if cfg.get("trust_store"):
    import trust_store

    trust_list = trust_store.TrustStore(root, cfg["state"])  # on flash, checked between "taps"
else:
    trust_list = trust.TrustList(root)
crl = revocation.RevocationList(root)
rc = reader_config.ReaderConfig(config_key, rid)
chain = None
if cfg.get("root_chain"):
    import root_chain

    chain = root_chain.RootChain(root, cfg["state"], (trust_list, crl))
held = uplink.load_held(cfg["state"], trust_list, crl, rc, root_chain=chain)
clock_cfg = cfg.get("clock")
clock = None if clock_cfg is None else Clock(clock_cfg.get("quality", 2), clock_cfg.get("now"))


def record(kind, fields):
    tq = clock.quality() if clock is not None else 0
    return events.record(kind, 0 if clock is None else clock.now(), tq, cfg.get("boot", 1),
                         elapsed_ms(T0), fields)


up = None  # the Uplink, once made


def append(rec):
    try:
        seq = journal.append(rec)
    except JournalFull:
        say(ev="journal_full")
        return None
    if up is not None:
        up.kick()
    return seq


def on_applied(what, status, info):
    seq = append(record(events.KIND_NOTICE, {events.DETAIL: {"what": what, "status": status,
                                                               "info": info}}))
    say(ev="applied", what=what, status=status, info=plain(info), journal_seq=seq)


def on_command(action, args):
    say(ev="command", action=action, args=plain(args))
    if action in cfg.get("raise_on", ()):
        raise RuntimeError("the door controller failed")
    return True


def status_fn():
    return {1: elapsed_ms(T0) // 1000, 2: gc.mem_free(), 3: "probe", 4: 0}


def trace(event, info):
    d = plain(info)
    d["ev"] = event
    d["t_ms"] = elapsed_ms(T0)
    print(json.dumps(d))


up = uplink.Uplink(
    {"reader_id": rid, "password": cfg["password"], "mac_key": binascii.unhexlify(cfg["mac"]),
     "host": "127.0.0.1", "port": cfg["tls_port"], "server_hostname": "localhost", "state_dir": cfg["state"],
     "firmware": "probe-1", "boot": cfg.get("boot", 1), "role": "door", "keepalive": cfg.get("keepalive", 10),
     "health_every_s": cfg.get("health_every", 60), "backoff_min_s": cfg.get("backoff_min", 0.2),
     "backoff_max_s": cfg.get("backoff_max", 2), "backoff_reset_s": cfg.get("backoff_reset", 2),
     "report_every_s": cfg.get("report_every", 60), "confirm": cfg.get("confirm"),
     "confirm_timeout_s": cfg.get("confirm_timeout", 30)},
    journal, {"config_key": config_key, "trust": trust_list, "crl": crl, "config": rc, "root": chain},
    ssl_ctx=tls_context(cfg["ca"]), clock=clock, status_fn=status_fn, on_command=on_command,
    on_applied=on_applied)
up.trace = trace


def stats():
    gc.collect()
    return {"ev": "stats", "heap_used": gc.mem_alloc(), "uplink": up.stats, "journal": journal.stats(),
            "trust": trust_list.seq, "crl": crl.seq, "root": None if chain is None else chain.seq,
            "root_kid": None if chain is None else binascii.hexlify(chain.key.kid).decode(),
            "config": rc.seq, "cmd_seq": up.commands.last,
            "transfers": {k: [x.seq, x.have, x.n, x.written] for k, x in up.transfers.items()},
            "clock_ms": None if clock is None else clock.set_ms, "connected": up.connected,
            "last_error": up.last_error}


async def appender(n, every_ms, tag):
    for i in range(n):
        seq = append(record(events.KIND_TAP, {events.DECISION: "punch", events.STAFF: "%s-%d" % (tag, i),
                                              events.SERIAL: i}))
        if seq is None:
            break
        if every_ms:
            await asyncio.sleep_ms(every_ms)
    say(ev="appended", tag=tag, n=n, last=journal.last_seq())


async def background():
    # what app.housekeeping does between taps: one bounded step of checking a downloaded list
    while True:
        busy = up.background_step()
        await asyncio.sleep_ms(0 if busy else 50)


async def main():
    say(ev="ready", held=held, journal=journal.stats())
    asyncio.create_task(up.run())
    asyncio.create_task(background())
    r = asyncio.StreamReader(sys.stdin)
    while True:
        line = await r.readline()
        if not line:
            return
        op = json.loads(line)
        if op["op"] == "append":
            asyncio.create_task(appender(op["n"], op.get("every_ms", 0), op.get("tag", "t")))
        elif op["op"] == "stats":
            print(json.dumps(stats()))
        elif op["op"] == "exit":
            print(json.dumps(stats()))
            return


asyncio.run(main())
