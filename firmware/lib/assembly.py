# The one assembly of a reader: every object of the door / attendance reader wired from one
# configuration dict and the board's parts. Used by device/main.py on the ESP32 and by
# tools/virtual_reader.py under the unix port (and by the encoder mode to come), so the two
# cannot drift apart.
#
#   cfg = assembly.configure(site)                  # DEFAULTS, then the device's /reader.json
#   r = assembly.build_reader(cfg, board, chip, flash, rtc)
#   asyncio.run(asyncio.gather(*r.tasks(watchdog)))
#
# The configuration is micropython-mqtt style: DEFAULTS holds every optional key; a site file
# (the reader.json provisioning writes, docs/reader-provisioning.md) overrides what it names;
# nested tables ("broker") merge one level deep. Keys read here:
#   reader_id, password, mac_key (hex), reader_keys {read_master, uid_key} (hex), role, firmware,
#   size_hint, door_id, state_dir, root_key / config_key (COSE_Key files),
#   broker {host, port, server_hostname (TLS name; default: host), ca_der (pinned CA, DER)},
#   keepalive, health_every_s, backoff_min_s, backoff_max_s (uplink timing),
#   boot (else counted in state_dir), unix_ms (an initial clock), trust / crl / config (files
#   installed when no copy is held yet).
import binascii
import ssl

import card_layout
import card_reader
import clock
import cose_key
import crl_national
import events
import reader_config
import revocation
import root_chain
import statefile
import terminal
import trust_store
import uplink

# The reader id rule (the host's is trustcore/ids.py): MQTT username and client id, a topic
# level, the reader_id of its signed configuration: [a-z0-9][a-z0-9-]{0,62}.
READER_ID_MAX = 63

DEFAULTS = {
    "role": terminal.ROLE_DOOR,
    "firmware": "",
    "size_hint": 512,
    "door_id": 0,
    "state_dir": "/state",
    "root_key": "/keys/root.cose_key",
    "config_key": "/keys/config.cose_key",
    "broker": {"port": 8883, "server_hostname": None, "ca_der": "/keys/broker-ca.der"},
    "keepalive": uplink.DEFAULTS["keepalive"],
    "health_every_s": uplink.DEFAULTS["health_every_s"],
    "backoff_min_s": uplink.DEFAULTS["backoff_min_s"],
    "backoff_max_s": uplink.DEFAULTS["backoff_max_s"],
}


def valid_reader_id(rid):
    """True when rid follows the reader id rule (checked without re: bounded, no backtracking)."""
    if not isinstance(rid, str) or not 0 < len(rid) <= READER_ID_MAX or rid[0] == "-":
        return False
    for c in rid:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c == "-"):
            return False
    return True


def configure(site, *layers):
    """DEFAULTS, then each layer (a tool's own defaults, say), then the site file: a new dict."""
    cfg = {}  # type: dict
    for src in (DEFAULTS,) + layers + (site,):
        for k in src:
            v = src[k]
            if isinstance(v, dict):
                merged = dict(cfg.get(k) or {})
                merged.update(v)
                v = merged
            cfg[k] = v
    return cfg


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _copy(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as g:
        while True:
            b = f.read(512)
            if not b:
                break
            g.write(b)


def tls_context(ca_der):
    """TLS client context that verifies the broker against the pinned CA (DER bytes)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # MicroPython has it; the stubs lag
    ctx.load_verify_locations(cadata=ca_der)
    return ctx


class Reader:
    """A wired reader: the holders of its signed objects, its journal, clock, card reader,
    terminal and uplink. on_applied(what, status, info) and on_decision(result, fields) are
    optional observers (the virtual reader prints them)."""

    def __init__(self, board, card_reader_, trust_list, crl, config, national, journal, clk, term, up):
        self.board = board
        self.card_reader = card_reader_
        self.trust = trust_list
        self.crl = crl
        self.config = config
        self.national = national
        self.journal = journal
        self.clock = clk
        self.terminal = term
        self.uplink = up
        self.on_applied = None

    def applied(self, what, status, info):
        """The uplink installed (or refused) an object: caches follow, a notice is journalled."""
        if status == "ok":
            self.terminal.lists_changed()
        self.terminal.journal_event(events.KIND_NOTICE, {events.DETAIL: "%s:%s" % (what, status)})
        if self.on_applied is not None:
            self.on_applied(what, status, info)

    def status(self):
        """The retained status's counters; a board may add its own (heap, reset cause)."""
        out = {1: self.board.ms() // 1000, 4: self.terminal.stats["read_failed"],
               5: self.journal.depth(), 6: self.journal.fill_percent(), 7: self.clock.quality()}
        extra = getattr(self.board, "status_extra", None)
        if extra is not None:
            out.update(extra())
        return out

    def tasks(self, watchdog=None, on_decision=None):
        """The coroutines a running reader is made of (app.py explains each)."""
        import app

        return [app.rf_loop(self.terminal, self.card_reader, on_decision),
                app.door_loop(self.terminal),
                app.housekeeping(self.terminal, watchdog, background=self.uplink.background_step),
                self.uplink.run()]


def build_reader(cfg, board, chip, flash, rtc=None):
    """Every object of a reader from cfg (see configure) and the board's parts: the board, the
    MFRC522 driver on it, the journal's flash and an optional battery-backed RTC."""
    import app
    from journal import Journal

    rid = cfg["reader_id"]
    if not valid_reader_id(rid):
        raise ValueError("reader_id %r does not follow the reader id rule" % (rid,))
    state_dir = cfg["state_dir"]
    k = cfg["reader_keys"]
    keys = card_layout.ReaderKeys(binascii.unhexlify(k["read_master"]), binascii.unhexlify(k["uid_key"]))
    reader = card_reader.CardReader(chip, keys=keys, size_hint=cfg["size_hint"])

    root = cose_key.load(_read(cfg["root_key"]))
    config_key = cose_key.load(_read(cfg["config_key"]))
    tl = trust_store.TrustStore(root, state_dir)  # trust.cbor + trust.idx, never whole in RAM
    crl = revocation.RevocationList(root)
    rc = reader_config.ReaderConfig(config_key, rid)
    ncrl = crl_national.NationalList(root, state_dir)  # ncrl.base (+ .delta) in the state folder
    chain = root_chain.RootChain(root, state_dir, (tl, crl, ncrl))  # root transitions taken
    held = uplink.load_held(state_dir, tl, crl, rc, ncrl, root_chain=chain)
    first = cfg.get("trust")
    if held.get("trust") is None and first:
        _copy(first, statefile.path(state_dir, "trust.first"))  # streamed, then offered
        tl.offer(statefile.path(state_dir, "trust.first"))
        statefile.remove(statefile.path(state_dir, "trust.first"))
    for name, holder in (("crl", crl), ("config", rc)):
        if held.get(name) is None and cfg.get(name):
            holder.update(_read(cfg[name]))

    journal = Journal(flash)
    clk = clock.Clock(clock.FileStore(statefile.path(state_dir, "time")), rtc=rtc)
    unix_ms = cfg.get("unix_ms")
    if unix_ms:
        clk.set_from_gateway(unix_ms)
    boot = cfg.get("boot")
    if boot is None:
        boot = statefile.next_boot(state_dir)
    term = terminal.Terminal(board, {"reader_id": rid, "role": cfg["role"], "boot_count": boot,
                                     "door_id": cfg["door_id"]},
                             {"trust": tl, "revocation": terminal.Revocations(crl, ncrl), "config": rc},
                             journal, clk, reader)

    b = cfg["broker"]
    link = {"reader_id": rid, "password": cfg["password"], "mac_key": binascii.unhexlify(cfg["mac_key"]),
            "host": b["host"], "port": b["port"], "server_hostname": b.get("server_hostname") or b["host"],
            "state_dir": state_dir, "firmware": cfg["firmware"], "boot": boot, "role": term.role,
            "keepalive": cfg["keepalive"], "health_every_s": cfg["health_every_s"],
            "backoff_min_s": cfg["backoff_min_s"], "backoff_max_s": cfg["backoff_max_s"],
            "confirm": cfg.get("confirm")}   # None: wait for the gateway's confirmations once seen
    r = Reader(board, reader, tl, crl, rc, ncrl, journal, clk, term, None)
    up = uplink.Uplink(link, journal, {"config_key": config_key, "trust": tl, "crl": crl, "config": rc,
                                       "ncrl": ncrl, "root": chain},
                       ssl_ctx=tls_context(_read(b["ca_der"])), clock=clk, status_fn=r.status,
                       on_command=lambda a, args: app.on_command(term, a, args), on_applied=r.applied)
    term.kick = up.kick
    r.uplink = up
    return r
