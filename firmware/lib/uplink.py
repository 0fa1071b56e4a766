# The reader's link to the gateway over MQTT (docs/mqtt.md, docs/asyncapi.yaml: contract v1).
#
#   up = Uplink({"reader_id": ..., "password": ..., "mac_key": ..., "host": ..., "state_dir": ...},
#               journal, {"config_key": ..., "trust": ..., "crl": ..., "config": ..., "ncrl": ...},
#               ssl_ctx=ctx, clock=clk, status_fn=..., on_command=..., on_applied=...)
#   (settings over DEFAULTS below; assembly.build_reader is the one place a reader builds it)
#   asyncio.create_task(up.run())      # never returns (only cancellation stops it)
#   journal.append(record); up.kick()  # the pump publishes it at once
#
# One connection at a time (mqtt.Client), TLS with the CA pinned in the caller's ssl context,
# username and client id = reader id, persistent session (clean session 0), Last Will {1: false}
# retained on `status`. On every connection it subscribes to its own cfg/cmd/time, to the
# broadcast trust/crl manifests and commands, and to the chunks of any list download in
# progress; publishes its retained status; then runs three tasks until the connection drops:
#   pump    the journal, in sequence order, sealed (events.seal), QoS 1, at most WINDOW in
#           flight; wakes on kick(). Who releases a record (journal.ack) depends on `confirm`:
#           False, or None before any confirmation was ever seen: that record's PUBACK (brokers
#           acknowledge in order). True (None turns True, for good, with the first valid
#           confirmation; the file state_dir/confirm remembers it): only the gateway's MAC'd
#           confirmation on r/{rid}/ack (docs/mqtt.md "Confirmations"), which names committed
#           seq ranges, so a broker that crashes before saving, loses the session or is
#           replaced loses nothing. The pump then publishes up to confirm_cap records beyond
#           the last confirmed one, and sends again from there after every reconnection and
#           when nothing was confirmed for confirm_timeout_s (doubling per repeat up to 16x
#           while the gateway stays silent; ingest is idempotent);
#   worker  retained status after anything is applied, subscriptions asked for by a manifest,
#           checking and installing a completed list download, throttled reports;
#   health  every health_every_s a heartbeat with a fresh nonce for the gateway's time reply.
# Downlink messages are handled in the client's receive task (its PUBACK follows the handler):
# configuration -> reader_config.update; commands -> commands.Commands then on_command; time
# replies -> timesync then clock.set_from_gateway; manifests and chunks -> blob_transfer. The
# handler never raises: whatever is wrong with a message is counted (stats) and reported through
# on_applied (throttled), and the message is acknowledged so it cannot loop. Nothing waits for a
# PUBACK or SUBACK inside the handler (the receive task is the one that reads them).
# After any disconnect: exponential backoff with jitter between backoff_min_s and backoff_max_s,
# forever; the attempt count resets after a connection that stayed up backoff_reset_s.
#
# Commands: seq above the last executed one (cmd.seq, written before on_command runs: at most
# once), exp enforced when clock.quality() >= events.TQ_RTC; "resync" also makes the uplink ask
# for every retained object again. Time replies: accepted once, for the latest heartbeat nonce,
# within time_window_s; the clock gets unix_ms + half the round trip. Lists: a signed manifest
# whose seq (= the announced object's seq) exceeds the held list's starts a download
# (blob_transfer: staged on flash, resumable); the object is verified by trust_list.update /
# revocation_list.update, then renamed over the held copy. The same retained configuration or
# manifest bytes seen again (every reconnection) are recognised by their SHA-256 and cost no
# RSA verification. Oversize messages (> MAX_PACKET) are skipped and counted, not fatal.
#
# Callbacks (all optional; exceptions in them are caught and counted):
#   status_fn()                   -> dict of health keys the app knows: 1 uptime s, 2 free heap,
#                                    3 reset cause, 4 RF errors, 7 time quality, 9 reader time
#                                    (the uplink adds 5 journal depth, 6 fill %, 8 nonce)
#   on_command(action, args)      executes a verified command; must return promptly (schedule
#                                    a reboot or a door pulse rather than doing it inline);
#                                    returning False reports it as "failed", a string as that
#                                    status (e.g. "ok"), anything else as "ok"
#   on_applied(what, status, info) every outcome worth journalling: what is "config", "trust",
#                                    "crl", "cmd", "time", "<kind>_manifest", "<kind>_chunk",
#                                    "topic" or "internal"; status "ok" or the refusal;
#                                    info a small dict (seq, action, count of refusals). The app
#                                    journals a notice for it (every command, executed or not).
#   clock: .quality() -> events.TQ_*, .now() -> Unix s, .set_from_gateway(unix_ms); or None
# Files in state_dir: config.cbor, trust.cbor, crl.cbor (held copies, replaced atomically),
# cmd.seq (last executed command), <kind>.part/.prog (a list download in progress).
#
# National revocation list (national_list = crl_national.NationalList, optional): two retained
# manifests, kind "ncrl" on cbcc/v1/all/ncrl (the current full list) and "ncrl_delta" on
# cbcc/v1/all/ncrl_delta (the current delta, cumulative since that full list; an empty retained
# message when there is none). Both compare with national_list.seq (the delta's when one is held);
# a full list at or above the held base is not fetched again. A completed download is NOT
# checked in the receive task: background_step() (the app's housekeeping loop calls it between
# taps) hashes the staged file against the manifest and runs national_list.offer_steps() on it
# a bounded step at a time (the list verifies it and renames the staged file into place). A
# delta waits while a full list is under way (it may be the delta's base); a delta refused with
# wrong_base makes the reader ask for the retained full list again (re-subscribing), and after a
# new full list the retained delta is asked for again. Status key 4 is then the national list's
# seq and key 8 the inline (building) list's.
import asyncio
import hashlib
import os
import struct

import blob_transfer
import cbor
import commands
import events
import hmac_sha256
import mqtt
import signed
import statefile
import timesync
from ticks import elapsed_ms, ticks_ms

ROOT = "cbcc/v1/"
ALL = ROOT + "all/"
WINDOW = 8                       # journal records in flight
MAX_CONFIG = 16384               # reader_config.MAX_SIZE
MAX_PACKET = MAX_CONFIG + 256    # largest valid downlink: a configuration plus its topic
WILL = cbor.encode({1: False})
KINDS = blob_transfer.KINDS
NATIONAL = ("ncrl", "ncrl_delta")    # full list first: a delta waits for its base
STEPPED = ("trust",) + NATIONAL      # checked by background_step, in this order
STEP_BYTES = 16384                   # bytes hashed per background step
HELD = {"config": "config.cbor", "trust": "trust.cbor", "crl": "crl.cbor", "root": "root.chain"}
MAX_REPORT_KEYS = 24
ACK_DOMAIN = b"cbcc-ack1"
ACK_MAX_RANGES = 32                  # per confirmation (docs/mqtt.md)
ACK_HELD = 8                         # confirmed ranges kept above a gap (bounded RAM)


def _urandom_unit():
    b = os.urandom(2)
    return ((b[0] << 8) | b[1]) / 65536


def load_held(state_dir, trust_list=None, revocation_list=None, reader_config=None,
              national_list=None, root_chain=None):
    """Offer the copies kept in state_dir to the (empty) holders at boot; returns their statuses
    ({"trust": "ok", "crl": None, ...}: None when there is no copy). The national list loads
    its own files (ncrl.base, ncrl.delta in its folder): "ncrl" is the base's status."""
    out = {}  # type: dict
    if root_chain is not None:
        # first: the lists below are checked under the root it gives them
        try:
            out["root"] = root_chain.load_held()
        except Exception:  # noqa: BLE001 - a damaged copy must not stop the boot
            out["root"] = "error"
    if national_list is not None:
        try:
            out["ncrl"] = national_list.load_held()
        except Exception:  # noqa: BLE001 - a damaged copy must not stop the boot
            out["ncrl"] = "error"
    if trust_list is not None and hasattr(trust_list, "load_held"):
        try:
            out["trust"] = trust_list.load_held()   # trust_store: its own files, streamed
        except Exception:  # noqa: BLE001 - a damaged copy must not stop the boot
            out["trust"] = "error"
        trust_list = None
    for name, holder, limit in (("trust", trust_list, blob_transfer.MAX_OBJECT),
                                ("crl", revocation_list, blob_transfer.MAX_OBJECT),
                                ("config", reader_config, MAX_CONFIG)):
        if name in out:
            continue
        out[name] = None
        if holder is None:
            continue
        blob = statefile.read(statefile.path(state_dir, HELD[name]), limit)
        if blob is not None:
            try:
                out[name] = holder.update(blob)
            except Exception:  # noqa: BLE001 - a damaged copy must not stop the boot
                out[name] = "error"
    return out


# What an Uplink's settings default to; the caller's settings dict names the rest: reader_id,
# password, mac_key (bytes), host, state_dir (and server_hostname: the TLS name, default host).
DEFAULTS = {"port": 8883, "server_hostname": None, "firmware": "", "boot": 0, "role": "door",
            "keepalive": 60, "health_every_s": 60, "backoff_min_s": 1, "backoff_max_s": 300,
            "backoff_reset_s": 30, "report_every_s": 60, "max_object": blob_transfer.MAX_OBJECT,
            "connect_timeout_s": 10, "ack_timeout_s": 15, "time_window_s": 10,
            "confirm": None, "confirm_timeout_s": 30, "confirm_cap": 64}


class Uplink:
    def __init__(self, settings, journal, lists, ssl_ctx=None, clock=None, status_fn=None,
                 on_command=None, on_applied=None, rng=None):
        """settings: a dict over DEFAULTS; lists: the holders it installs into, by name
        ("config_key", "trust", "crl", "config", "ncrl", "root"; without "ncrl" the national
        list's topics are not subscribed to, without "root" the root chain's)."""
        s = dict(DEFAULTS)  # type: dict
        s.update(settings)
        reader_id = s["reader_id"]
        state_dir = s["state_dir"]
        config_key = lists.get("config_key")
        trust_list = lists.get("trust")
        revocation_list = lists.get("crl")
        reader_config = lists.get("config")
        national_list = lists.get("ncrl")
        root_chain = lists.get("root")   # root_chain.RootChain, or None (no root transitions)
        self.rid = reader_id
        self.password = s["password"]
        self.mac = hmac_sha256.Hmac(s["mac_key"])
        self.host = s["host"]
        self.port = s["port"]
        self.ssl = ssl_ctx
        self.server_hostname = s["server_hostname"] or s["host"]
        self.journal = journal
        self.config_key = config_key
        self.lists = {"trust": trust_list, "crl": revocation_list, "ncrl": national_list,
                      "ncrl_delta": national_list, "root": root_chain}
        self.national = national_list
        self.reader_config = reader_config
        self.state_dir = state_dir
        self.status_fn = status_fn
        self.on_command = on_command
        self.on_applied = on_applied
        self.clock = clock
        self.firmware = s["firmware"]
        self.boot = s["boot"]
        self.role = s["role"]
        self.keepalive = s["keepalive"]
        self.health_every_ms = int(s["health_every_s"] * 1000)
        self.backoff_min_ms = int(s["backoff_min_s"] * 1000)
        self.backoff_max_ms = int(s["backoff_max_s"] * 1000)
        self.backoff_reset_ms = int(s["backoff_reset_s"] * 1000)
        self.rng = rng or _urandom_unit
        self.report_every_ms = int(s["report_every_s"] * 1000)
        self.max_object = s["max_object"]
        self.connect_timeout_s = s["connect_timeout_s"]
        self.ack_timeout_s = s["ack_timeout_s"]
        me = ROOT + "r/" + reader_id + "/"
        self.t_ev = me + "ev"
        self.t_status = me + "status"
        self.t_health = me + "health"
        self.t_cfg = me + "cfg"
        self.t_cmd = me + "cmd"
        self.t_time = me + "time"
        self.t_ack = me + "ack"
        self.confirm = s["confirm"]
        self._confirm_file = statefile.path(state_dir, "confirm")
        if self.confirm is None and statefile.read(self._confirm_file, 8) is not None:
            self.confirm = True
        self.confirm_timeout_ms = int(s["confirm_timeout_s"] * 1000)
        self._confirm_wait = self.confirm_timeout_ms   # doubles per timeout, up to 16x
        self.confirm_cap = s["confirm_cap"] if s["confirm_cap"] > WINDOW else WINDOW
        self._held = []          # confirmed (lo, hi) above a gap in the journal, at most ACK_HELD
        self._confirm_t = ticks_ms()  # of the last confirmation progress (or of nothing pending)
        subs = [self.t_cfg, self.t_cmd, self.t_time, ALL + "trust", ALL + "crl", ALL + "cmd"]
        self.manifest_topics = {ALL + "trust": "trust", ALL + "crl": "crl"}
        if national_list is not None:
            subs.append(ALL + "ncrl")
            subs.append(ALL + "ncrl_delta")
            self.manifest_topics[ALL + "ncrl"] = "ncrl"
            self.manifest_topics[ALL + "ncrl_delta"] = "ncrl_delta"
        if root_chain is not None:
            subs.append(ALL + "root")
            self.manifest_topics[ALL + "root"] = "root"
        self.subscriptions = tuple(subs)
        self.commands = commands.Commands(config_key, reader_id,
                                          statefile.path(state_dir, "cmd.seq"))
        self.timesync = timesync.TimeSync(self.mac, reader_id, int(s["time_window_s"] * 1000))
        self.client = None
        self.connected = False
        self.transfers = {}      # kind -> blob_transfer.Transfer (at most one per kind)
        self._seen = {}          # kind -> SHA-256 of the last object finalized: not fetched again
        self._known = {}         # "config"/kind -> SHA-256 of the last verified message taken:
                                 # the same retained bytes on every connection cost no RSA
        self._want_subs = []     # topics the worker subscribes to (asked for by the handler)
        self._resubscribe = False
        self._status_dirty = True
        self._max_sent = 0
        self._kick = asyncio.Event()
        self._work = asyncio.Event()
        self._reports = {}       # "what:status" -> [unreported count, ticks of last report]
        self._job = None         # (Transfer, generator): a national list being checked in steps
        self.trace = None        # optional callable(event, info) for diagnostics and tests
        self.last_error = None
        self.stats = {"connects": 0, "reconnects": 0, "connect_failures": 0, "published": 0,
                      "delivered": 0, "resent": 0, "health": 0, "rejected": 0, "oversize": 0,
                      "stray_chunks": 0, "chunks": 0, "commands": 0, "applied": 0,
                      "time_set": 0, "errors": 0, "last_connect_ms": -1, "confirmations": 0,
                      "confirm_timeouts": 0}

    # ---- the application's side --------------------------------------------------------------

    def kick(self):
        """A record was appended: publish it now."""
        self._kick.set()

    async def run(self):
        """Connect, serve, reconnect with backoff: forever."""
        try:
            self._startup()
        except Exception as e:  # noqa: BLE001
            self._error(e)
        attempt = 0
        while True:
            t0 = ticks_ms()
            up = False
            try:
                up = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - nothing may end the uplink
                self._error(e)
            self.connected = False
            self.client = None
            if up and elapsed_ms(t0) >= self.backoff_reset_ms:
                attempt = 0
            if not up:
                self.stats["connect_failures"] += 1
            delay = self.backoff_ms(attempt)
            attempt = attempt + 1 if attempt < 30 else 30
            self._trace("backoff", {"ms": delay, "attempt": attempt})
            await asyncio.sleep(delay / 1000)

    def backoff_ms(self, attempt):
        """Delay before the next connection attempt: min * 2^attempt capped at max, the upper
        half of it random (jitter), never below min."""
        base = self.backoff_min_ms << (attempt if attempt < 24 else 24)
        if base > self.backoff_max_ms:
            base = self.backoff_max_ms
        try:
            r = self.rng()
        except Exception:  # noqa: BLE001
            r = 0.5
        d = base // 2 + int(base / 2 * r)
        return d if d > self.backoff_min_ms else self.backoff_min_ms

    # ---- one connection ------------------------------------------------------------------

    async def _session(self):
        c = mqtt.Client(self.rid, user=self.rid, password=self.password, keepalive=self.keepalive,
                    will=(self.t_status, WILL, True, 1), clean=False, max_packet=MAX_PACKET,
                    handler=self._on_message, window=WINDOW + 4, skip_oversize=True)
        self.client = c
        t0 = ticks_ms()
        await c.connect(self.host, self.port, ssl=self.ssl, server_hostname=self.server_hostname,
                        timeout=self.connect_timeout_s)
        self.stats["connects"] += 1
        if self.stats["connects"] > 1:
            self.stats["reconnects"] += 1
        self.stats["last_connect_ms"] = elapsed_ms(t0)
        tasks = []
        try:
            # chunks of downloads in progress: subscribed by the worker, with any a manifest
            # arriving meanwhile asks for
            self._want_subs = [x.topic() for x in self.transfers.values()]
            self._resubscribe = False
            for t in self.subscriptions:
                await c.subscribe(t, 1)
            try:
                await c.subscribe(self.t_ack, 1)
            except mqtt.MQTTError:
                # a broker whose ACL predates confirmations: the PUBACK releases records
                self._trace("ack_refused", {})
            self._status_dirty = True
            self.connected = True
            self._trace("connected", {"session_present": c.session_present,
                                      "ms": self.stats["last_connect_ms"]})
            tasks = [asyncio.create_task(self._guard(self._pump(c), c)),
                     asyncio.create_task(self._guard(self._worker(c), c)),
                     asyncio.create_task(self._guard(self._health(c), c))]
            await c.wait_closed()
        finally:
            self.connected = False
            for t in tasks:
                t.cancel()
            await c.disconnect()
            self._trace("disconnected", {"error": repr(c.error)})
        return True

    async def _guard(self, coro, c):
        # A task's failure ends this connection (the session starts again after the backoff).
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self._error(e)
        await c.disconnect()

    async def _pump(self, c):
        j = self.journal
        inflight = []  # type: list  # (seq, pid) in sequence order
        last = j.delivered_seq()      # highest seq published on this connection
        self._confirm_t = ticks_ms()
        while c.connected:
            confirm = self.confirm is True
            if confirm:
                d = j.delivered_seq()
                if last <= d:
                    last = d
                    self._confirm_t = ticks_ms()
                elif not inflight and elapsed_ms(self._confirm_t) >= self._confirm_wait:
                    last = d                  # nothing confirmed for too long: again from there
                    self._confirm_t = ticks_ms()
                    self.stats["confirm_timeouts"] += 1
                    if self._confirm_wait < 16 * self.confirm_timeout_ms:
                        self._confirm_wait *= 2   # a gateway away for long: fewer repeats queued
            if len(inflight) <= WINDOW // 2:
                self._kick.clear()
                if confirm:
                    room = j.delivered_seq() + self.confirm_cap - last
                    if room > WINDOW - len(inflight):
                        room = WINDOW - len(inflight)
                    batch = j.peek_after(last, room) if room > 0 else []
                else:
                    batch = j.peek(WINDOW)
                for seq, rec in batch:
                    if seq <= last:
                        continue
                    if len(inflight) >= WINDOW:
                        break
                    pid = await c.publish_start(self.t_ev, events.seal(self.mac, self.rid, seq, rec), 1)
                    inflight.append((seq, pid))
                    last = seq
                    self.stats["published"] += 1
                    if seq <= self._max_sent:
                        self.stats["resent"] += 1   # published before, PUBACK never seen
                    else:
                        self._max_sent = seq
            if not inflight:
                try:
                    await asyncio.wait_for(self._kick.wait(), 5)
                except asyncio.TimeoutError:
                    pass
                continue
            seq, pid = inflight.pop(0)
            await c.wait_ack(pid, self.ack_timeout_s)
            if not confirm:
                j.ack(seq)
                self.stats["delivered"] += 1

    def _on_ack(self, payload):
        """The gateway's confirmation: release the records it names as committed (in order)."""
        n = len(payload)
        k = (n - 33) // 8
        if n < 41 or (n - 33) % 8 or payload[0] != k or k > ACK_MAX_RANGES:
            self._reject("ack", "malformed")
            return
        body = payload[:n - 32]
        rid = self.rid.encode()
        if not hmac_sha256.equal(payload[n - 32:],
                                 self.mac.digest(ACK_DOMAIN, bytes((len(rid),)), rid, body)):
            self._reject("ack", timesync.BAD_MAC)
            return
        rs = []
        prev = -2
        for i in range(k):
            lo, hi = struct.unpack_from("!II", body, 1 + 8 * i)
            if lo > hi or lo <= prev + 1:
                self._reject("ack", "malformed")
                return
            prev = hi
            rs.append((lo, hi))
        self.stats["confirmations"] += 1
        if self.confirm is None:
            self.confirm = True               # this gateway confirms: from now on, for good
            try:
                statefile.write(self._confirm_file, b"1")
            except OSError:
                pass
        self._take(rs)

    def _take(self, rs):
        j = self.journal
        held = self._held
        d = j.delivered_seq()
        for r in rs:
            if r[1] > d:
                held.append(r)
        held.sort()
        done = 0
        while held:
            lo, hi = held[0]
            d = j.delivered_seq()
            if hi <= d:
                held.pop(0)
                continue
            if lo > d + 1:
                break                         # a gap: an earlier record is not committed yet
            top = hi if hi <= j.last_seq() else j.last_seq()
            if top <= d:
                break
            done += j.ack(top)
            if top < hi:
                break
            held.pop(0)
        if len(held) > ACK_HELD:
            del held[ACK_HELD:]
        if done:
            self.stats["delivered"] += done
            self._confirm_t = ticks_ms()
            self._confirm_wait = self.confirm_timeout_ms
            self._kick.set()                  # room under the cap again

    async def _worker(self, c):
        while c.connected:
            self._work.clear()
            if self._resubscribe:
                self._resubscribe = False
                for t in self.subscriptions:
                    await c.subscribe(t, 1)
            while self._want_subs:
                await c.subscribe(self._want_subs.pop(0), 1)
            for kind in KINDS:
                x = self.transfers.get(kind)
                if x is not None and x.complete() and not self._stepped(kind):
                    self._finalize(kind)
            if self._status_dirty:
                self._status_dirty = False
                try:
                    await c.publish(self.t_status, self.status_payload(), 1, True, self.ack_timeout_s)
                except Exception:
                    self._status_dirty = True
                    raise
            self._flush_reports()
            try:
                await asyncio.wait_for(self._work.wait(), 1)
            except asyncio.TimeoutError:
                pass

    async def _health(self, c):
        while c.connected:
            await c.publish(self.t_health, self.health_payload(), 0)
            self.stats["health"] += 1
            await asyncio.sleep(self.health_every_ms / 1000)

    # ---- payloads ------------------------------------------------------------------------------

    def status_payload(self):
        st = {1: True, 2: self.firmware, 3: self._seq(self.lists["trust"]),
              4: self._seq(self.lists["crl"]), 5: self._seq(self.reader_config),
              6: self.boot, 7: self.role}
        if self.national is not None:
            st[8] = st[4]                    # the building's inline list
            st[4] = self.national.seq        # the national list (the delta's seq when held)
        return cbor.encode(st)

    @staticmethod
    def _seq(holder):
        return None if holder is None else holder.seq

    def health_payload(self):
        h = {}
        if self.status_fn is not None:
            try:
                got = self.status_fn()
                for k in (1, 2, 3, 4, 7, 9):
                    if k in got:
                        h[k] = got[k]
            except Exception as e:  # noqa: BLE001
                self._error(e)
        if 7 not in h and self.clock is not None:
            try:
                h[7] = self.clock.quality()
            except Exception:  # noqa: BLE001
                pass
        if 9 not in h and self.clock is not None:
            try:
                h[9] = self.clock.now()
            except Exception:  # noqa: BLE001
                pass
        h[5] = self.journal.depth()
        h[6] = self.journal.fill_percent()
        h[8] = self.timesync.nonce()
        try:
            return cbor.encode(h)
        except Exception:  # noqa: BLE001 - status_fn gave something CBOR cannot carry
            return cbor.encode({5: h[5], 6: h[6], 8: h[8]})

    # ---- downlink ------------------------------------------------------------------------------

    async def _on_message(self, topic, payload, retained):
        c = self.client
        try:
            if c is not None and c.truncated:
                c.truncated = False
                self.stats["oversize"] += 1
                self._reject(self._what(topic), "oversize")
                return
            if topic == self.t_cfg:
                self._on_config(payload)
            elif topic == self.t_cmd or topic == ALL + "cmd":
                await self._on_command(payload)
            elif topic == self.t_time:
                self._on_time(payload)
            elif topic == self.t_ack:
                self._on_ack(payload)
            elif topic in self.manifest_topics:
                kind = self.manifest_topics[topic]
                if payload or kind != "ncrl_delta":  # empty: no delta on the current full list
                    self._on_manifest(kind, payload)
            elif topic.startswith(blob_transfer.BLOB_PREFIX):
                self._on_chunk(topic, payload)
            else:
                self._reject("topic", "unexpected")
        except Exception as e:  # noqa: BLE001 - a message must never take the link down
            self._error(e)
            self._reject("internal", "error")

    def _what(self, topic):
        if topic == self.t_cfg:
            return "config"
        if topic == self.t_cmd or topic == ALL + "cmd":
            return "cmd"
        if topic == self.t_time:
            return "time"
        if topic == self.t_ack:
            return "ack"
        if topic in self.manifest_topics:
            return self.manifest_topics[topic] + "_manifest"
        if topic.startswith(blob_transfer.BLOB_PREFIX):
            return "chunk"
        return "topic"

    def _on_config(self, payload):
        if self.reader_config is None:
            return
        if len(payload) > MAX_CONFIG:
            self._reject("config", "oversize")
            return
        d = hashlib.sha256(payload).digest()
        if d == self._known.get("config"):
            return                           # the held configuration again (retained)
        st = self.reader_config.update(payload)
        if st == signed.OK or st == signed.NOOP:
            self._known["config"] = d
        if st == signed.OK:
            self._keep("config", payload)
            self._applied("config", st, {"seq": self.reader_config.seq})
        elif st != signed.NOOP:
            self._reject("config", st)

    def _now(self):
        clk = self.clock
        if clk is None:
            return None, False
        try:
            return clk.now(), clk.quality() >= events.TQ_RTC
        except Exception:  # noqa: BLE001
            return None, False

    async def _on_command(self, payload):
        now, time_ok = self._now()
        st, seq, action, args = self.commands.check(payload, now, time_ok)
        if st != signed.OK:
            self._reject("cmd", st, {"seq": seq, "action": action})
            return
        try:
            self.commands.commit(seq)   # before running it: a crash never runs it twice
        except OSError:
            self._reject("cmd", "io_error", {"seq": seq, "action": action})
            return
        self.stats["commands"] += 1
        result = signed.OK
        if action == "resync":
            self._seen = {}
            self._known = {}
            self._resubscribe = True
            self._status_dirty = True
            self._work.set()
        if self.on_command is not None:
            try:
                r = self.on_command(action, args)
                if r is not None and hasattr(r, "send"):
                    r = await r
                if r is False:
                    result = "failed"
                elif isinstance(r, str):
                    result = r           # the app's own word ("ok", "unknown_action", ...)
            except Exception as e:  # noqa: BLE001
                self._error(e)
                result = "failed"
        self._applied("cmd", result, {"seq": seq, "action": action})

    def _on_time(self, payload):
        st, ms, rtt = self.timesync.check(payload)
        if st != timesync.OK:
            self._reject("time", st)
            return
        self.stats["time_set"] += 1
        self._trace("time", {"unix_ms": ms, "rtt_ms": rtt})
        if self.clock is not None:
            self.clock.set_from_gateway(ms)

    def _on_manifest(self, kind, payload):
        d = hashlib.sha256(payload).digest()
        if d == self._known.get(kind):
            return                           # handled already (a retained manifest again)
        st, m = blob_transfer.parse_manifest(payload, self.config_key, kind, self.max_object)
        if st != signed.OK:
            self._reject(kind + "_manifest", st)
            return
        holder = self.lists.get(kind)
        if holder is None:
            return
        self._known[kind] = d
        held = self._seq(holder)
        if held is not None and m.seq <= held:
            floor = held
            if kind in NATIONAL:
                # the full list under a held delta, or a delta a newer full list replaced: not
                # fetched, and refused only below the held base
                bh = getattr(holder, "base_h", None)
                floor = bh.seq if bh is not None else held
            if m.seq < floor:
                self._reject(kind + "_manifest", signed.ROLLBACK, {"seq": m.seq})
            return
        x = self.transfers.get(kind)
        if x is not None:
            if x.sha == m.sha and x.seq == m.seq:
                return                       # already under way (a retained manifest again)
            if m.seq < x.seq:
                self._reject(kind + "_manifest", signed.ROLLBACK, {"seq": m.seq})
                return
            self._cancel_job(x)
            del self.transfers[kind]
            x.discard()
        if self._seen.get(kind) == m.sha:
            return                           # this very object was checked already (this boot)
        try:
            x = blob_transfer.start(self.state_dir, m)
        except OSError:
            self._reject(kind, "io_error", {"seq": m.seq})
            return
        self.transfers[kind] = x
        t = x.topic()
        if t not in self._want_subs and len(self._want_subs) < 2 * len(KINDS):
            self._want_subs.append(t)
        self._work.set()
        self._trace("transfer", {"kind": kind, "seq": m.seq, "chunks": x.n})

    def _on_chunk(self, topic, payload):
        s8, i = blob_transfer.parse_chunk_topic(topic)
        x = None
        for t in self.transfers.values():
            if t.sha8 == s8:
                x = t
        if x is None:
            self.stats["stray_chunks"] += 1     # an old subscription, or nothing in progress
            return
        try:
            st = x.write(i, payload)
        except OSError:
            del self.transfers[x.kind]
            x.discard()
            self._reject(x.kind, "io_error", {"seq": x.seq})
            return
        if st == blob_transfer.OK:
            self.stats["chunks"] += 1
            self._trace("chunk", {"kind": x.kind, "i": i, "have": x.have, "of": x.n})
            if x.complete():
                self._work.set()
        elif st != blob_transfer.DUPLICATE:
            self._reject(x.kind + "_chunk", st)

    # ---- lists: install a completed download ---------------------------------------------------

    def _startup(self):
        rc = self.reader_config
        if rc is not None and rc.seq is not None:
            held = statefile.read(statefile.path(self.state_dir, HELD["config"]), MAX_CONFIG)
            if held is not None:
                self._known["config"] = hashlib.sha256(held).digest()
        for kind in KINDS:
            if (kind in NATIONAL and self.national is None) or self.lists.get(kind) is None:
                continue
            x = blob_transfer.resume(self.state_dir, kind, self.max_object)
            if x is None:
                continue
            held = self._seq(self.lists[kind])
            if held is not None and x.seq <= held:
                x.discard()
                continue
            self.transfers[kind] = x
            self._trace("resume", {"kind": kind, "seq": x.seq, "have": x.have, "of": x.n})
            if x.complete() and not self._stepped(kind):
                self._finalize(kind)             # a stepped list: background_step checks it

    def _stepped(self, kind):
        """Lists checked between taps in bounded steps (background_step), not in the receive
        task: the national revocation list, and the trust list when it is held on flash
        (trust_store.TrustStore: up to 128 KiB, credential-v1 amendment 1)."""
        return kind in NATIONAL or hasattr(self.lists.get(kind), "offer_steps")

    def _finalize(self, kind):
        x = self.transfers.pop(kind)
        self._seen[kind] = x.sha
        try:
            st = blob_transfer.BAD_DIGEST
            if x.verify():
                st = self.lists[kind].update(x.read())
        except OSError:
            st = "io_error"
        except Exception as e:  # noqa: BLE001
            self._error(e)
            st = "error"
        if st == signed.OK:
            try:
                x.commit(statefile.path(self.state_dir, HELD[kind]))
            except OSError:
                x.discard()
                self._reject(kind, "io_error", {"seq": x.seq})
            if kind == "root":
                # a new root: lists refused under the old one (unknown_root) are taken again
                for k in ("trust", "crl", "ncrl", "ncrl_delta"):
                    if self.lists.get(k) is not None and k not in self.transfers:
                        self._forget(k)
            self._status_dirty = True
            self._applied(kind, st, {"seq": self._seq(self.lists[kind])})
            return
        x.discard()
        if st != signed.NOOP:
            self._reject(kind, st, {"seq": x.seq})

    # ---- the national list: checked in bounded steps between taps ---------------------------

    def background_step(self):
        """One bounded step of checking a downloaded national list (the app's housekeeping loop
        calls it between taps: at most a few tens of ms on an ESP32). Returns True while there
        is more to do, False when idle. Never raises."""
        try:
            if self._job is None:
                x = None
                for kind in STEPPED:
                    if not self._stepped(kind):
                        continue
                    t = self.transfers.get(kind)
                    if t is None or not t.complete():
                        continue
                    if kind == "ncrl_delta" and "ncrl" in self.transfers:
                        continue                 # its base may be the full list under way
                    x = t
                    break
                if x is None:
                    return False
                self._job = (x, self._check_steps(x))
                self._trace("check", {"kind": x.kind, "seq": x.seq})
            x, gen = self._job
            try:
                r = next(gen)
            except StopIteration:
                r = "error"
            except Exception as e:  # noqa: BLE001
                self._error(e)
                r = "error"
            if r is None:
                return True
            self._job = None
            self._close_gen(gen)
            self._national_done(x, r)
        except Exception as e:  # noqa: BLE001 - never the housekeeping loop's problem
            self._error(e)
            self._job = None
        return True

    def _check_steps(self, x):
        ok = False
        for r in x.verify_steps(STEP_BYTES):
            if r is None:
                yield None
            else:
                ok = r
        if not ok:
            yield blob_transfer.BAD_DIGEST      # the staged object is not the manifest's
            return
        for r in self.lists[x.kind].offer_steps(x.part):
            yield r                             # None while checking, then the status
            if r is not None:
                return

    @staticmethod
    def _close_gen(gen):
        try:
            gen.close()
        except Exception:  # noqa: BLE001
            pass

    def _cancel_job(self, x):
        job = self._job
        if job is not None and job[0] is x:
            self._job = None
            self._close_gen(job[1])

    def _national_done(self, x, st):
        kind = x.kind
        if self.transfers.get(kind) is x:
            del self.transfers[kind]
        if st == signed.OK:
            self._seen[kind] = x.sha
            statefile.remove(x.prog)            # the list renamed the staged file into place
            statefile.remove(x.part)
            if kind == "ncrl":
                # a new base: the retained delta (if any) applies to it now
                self._forget("ncrl_delta")
            self._status_dirty = True
            self._applied(kind, st, {"seq": self.lists[kind].seq})
            return
        x.discard()
        detail = getattr(self.lists[kind], "detail", "")
        if st == "wrong_base":
            self._forget("ncrl")                # fetch the retained full list again
        else:
            self._seen[kind] = x.sha
        if st != signed.NOOP:
            info = {"seq": x.seq}
            if detail:
                info["detail"] = detail
            self._reject(kind, st, info)

    def _forget(self, kind):
        """Take the retained manifest of kind again, even if seen this boot (re-subscribing makes
        the broker send it again)."""
        self._known.pop(kind, None)
        self._seen.pop(kind, None)
        t = ALL + kind
        if t not in self._want_subs and len(self._want_subs) < 2 * len(KINDS):
            self._want_subs.append(t)
        self._work.set()

    def _keep(self, name, blob):
        try:
            statefile.write(statefile.path(self.state_dir, HELD[name]), blob)
        except OSError:
            self._reject(name, "io_error")

    # ---- reporting -----------------------------------------------------------------------------

    def _applied(self, what, status, info):
        self.stats["applied"] += 1
        if status == signed.OK and what != "cmd":
            self._status_dirty = True
            self._work.set()
        self._call_applied(what, status, info)

    def _call_applied(self, what, status, info):
        if self.on_applied is not None:
            try:
                self.on_applied(what, status, info)
            except Exception as e:  # noqa: BLE001
                self._error(e)
        self._kick.set()

    def _reject(self, what, status, info=None):
        """A refused or unusable message: counted always, reported at most once per
        report_every_s for each (what, status), with the number of refusals since the last
        report; a journal can never be flooded by a broker repeating bad messages."""
        self.stats["rejected"] += 1
        key = what + ":" + str(status)
        ent = self._reports.get(key)
        if ent is None:
            if len(self._reports) >= MAX_REPORT_KEYS:
                key = "other:limit"
                what = "other"
                status = "limit"
                ent = self._reports.get(key)
            if ent is None:
                ent = [0, None]
                self._reports[key] = ent
        ent[0] += 1
        if ent[1] is None or elapsed_ms(ent[1]) >= self.report_every_ms:
            d = {"count": ent[0]}
            if info:
                for k in info:
                    d[k] = info[k]
            ent[0] = 0
            ent[1] = ticks_ms()
            self._call_applied(what, status, d)

    def _flush_reports(self):
        for key in list(self._reports):
            ent = self._reports[key]
            if ent[0] and elapsed_ms(ent[1]) >= self.report_every_ms:
                what, status = key.split(":", 1)
                n = ent[0]
                ent[0] = 0
                ent[1] = ticks_ms()
                self._call_applied(what, status, {"count": n})
            elif not ent[0] and elapsed_ms(ent[1]) >= 4 * self.report_every_ms:
                del self._reports[key]

    def _error(self, e):
        self.stats["errors"] += 1
        self.last_error = repr(e)
        self._trace("error", {"error": self.last_error})

    def _trace(self, event, info):
        if self.trace is not None:
            try:
                self.trace(event, info)
            except Exception:  # noqa: BLE001
                pass
