# The door / attendance terminal: the decision pipeline for every tap and the door loop.
#
#   read (card_reader) -> verify (credential, trust list) -> revocation -> door policy
#   -> actuate (door) -> feedback (LED, buzzer, display) -> journal (flash) -> publish (uplink)
#
# Everything hardware-specific sits behind `board` (board_sim.py under the unix port, board_esp32.py
# on the device): ms() a non-wrapping millisecond count, relay(on), inputs() -> (door_open, rex,
# emergency, tamper), feedback(pattern, lines). The pipeline itself never blocks on the network:
# a decision is made, actuated and journalled locally; the uplink delivers the journal later.
import gc
import hashlib

import credential
import door as door_io
import events
import policy
from journal import JournalFull

ROLE_DOOR = "door"
ROLE_ATTENDANCE = "attendance"
ROLE_BOTH = "both"

CACHE_SIZE = 32
PUNCH_RETAP_S = 60   # attendance: the same card within a minute is one punch
# A repeat tap of a DESFire card that has just proved its per-UID key reuses the credential read
# from that chip (no enciphered ReadData). Revocation and validity are still checked every tap;
# the TTL bounds how long a re-personalised chip could still present its previous credential.
CHIP_TTL_MS = 12 * 3600 * 1000

# Credential verdicts whose signature was checked: only their time, UID and revocation checks
# can change on a later tap, so a repeat tap re-runs just those (credential.recheck).
_SIGNATURE_CHECKED = (credential.OK, credential.NOT_YET_VALID, credential.EXPIRED,
                      credential.UID_MISMATCH, credential.REVOKED)


class Revocations:
    """The lists a tap is checked against (the building's inline list and the national list):
    revoked when any of them says so. A lookup that fails (a flash read error in a list that
    was checked when it was installed) counts as revoked: the door fails closed for that card,
    and `errors` shows it in the counters."""

    def __init__(self, *lists):
        self.lists = [x for x in lists if x is not None]
        self.errors = 0

    def is_revoked(self, serial):
        for x in self.lists:
            try:
                if x.is_revoked(serial):
                    return True
            except Exception:  # noqa: BLE001 - see the class comment
                self.errors += 1
                return True
        return False


class VerifiedCache:
    """Credentials whose signature has been verified, keyed by SHA-256 of the credential bytes.
    Cleared whenever the trust list changes (a removed issuer must stop working at once)."""

    def __init__(self, size=CACHE_SIZE):
        self.size = size
        self._d = {}
        self._order = []
        self.hits = 0

    def get(self, key):
        c = self._d.get(key)
        if c is not None:
            self.hits += 1
        return c

    def put(self, key, claims):
        if key not in self._d:
            if len(self._order) >= self.size:
                self._d.pop(self._order.pop(0), None)
            self._order.append(key)
        self._d[key] = claims

    def clear(self):
        self._d = {}
        self._order = []


# What a Terminal's settings default to; the caller's settings dict names reader_id.
DEFAULTS = {"role": ROLE_DOOR, "boot_count": 0, "door_id": 0}


class Terminal:
    def __init__(self, board, settings, lists, journal, clock, card_reader, kick=None):
        """settings: a dict over DEFAULTS; lists: "trust", "revocation" (a Revocations or one
        list) and "config" (the signed reader configuration's holder)."""
        s = dict(DEFAULTS)  # type: dict
        s.update(settings)
        self.board = board
        self.reader_id = s["reader_id"]
        self.role = s["role"]
        self.trust = lists["trust"]
        self.revocation = lists["revocation"]
        self.config = lists["config"]
        self.journal = journal
        self.clock = clock
        self.reader = card_reader
        self.boot_count = s["boot_count"]
        self.door_id = s["door_id"]
        self.kick = kick                  # called after each journal append (wakes the uplink)
        self.policy_state = policy.State()
        self.door = door_io.Door()
        self.cache = VerifiedCache()
        self.chips = VerifiedCache()      # real chip UID -> (credential, ms when read)
        if card_reader is not None and hasattr(card_reader, "known"):
            card_reader.known = self._known_credential
        self._trust_seq = None
        self._punches = {}                # serial -> last punch Unix s (attendance re-tap)
        self.stats = {"taps": 0, "granted": 0, "denied": 0, "read_failed": 0, "journal_full": 0}
        self.last = None                  # the last decision, for tests and the display
        self.reboot_requested = False     # set by a verified "reboot" command; main.py resets
        self._apply_door_settings()

    # ---- configuration -------------------------------------------------------------------

    def _door_cfg(self):
        cfg = self.config.current
        if cfg is None:
            return None
        try:
            return cfg.door(self.door_id)
        except Exception:  # noqa: BLE001 - no such door: not configured
            return None

    def _apply_door_settings(self):
        d = self._door_cfg()
        if d is not None:
            self.door.unlock_ms = d.unlock_s * 1000
            self.door.held_open_ms = d.held_open_s * 1000

    def lists_changed(self):
        """Call after a trust list, revocation list or configuration was applied."""
        if self.trust.seq != self._trust_seq:
            self.cache.clear()
            self.chips.clear()
            self._trust_seq = self.trust.seq
        self._apply_door_settings()

    # ---- one tap -------------------------------------------------------------------------

    def verify(self, cred, uid, now):
        key = hashlib.sha256(cred).digest()[:16] + bytes(uid)
        claims = self.cache.get(key)
        if claims is not None:
            return credential.recheck(claims, uid, now, self.revocation), claims
        reason, claims = credential.verify(cred, uid, now, self.trust, self.revocation)
        if reason in _SIGNATURE_CHECKED and claims is not None:
            self.cache.put(key, claims)
        return reason, claims

    def _known_credential(self, uid):
        entry = self.chips.get(bytes(uid))
        if entry is not None and 0 <= self.board.ms() - entry[1] < CHIP_TTL_MS:
            return entry[0]
        return None

    def on_read(self, result):
        """Run the pipeline for one ReadResult; returns the journalled decision record fields."""
        self.stats["taps"] += 1
        t_ms = self.board.ms()
        if not result.ok:
            self.stats["read_failed"] += 1
            self.board.feedback("error", None)
            return None
        now = self.clock.now()
        reason, claims = self.verify(result.credential, result.uid, now)
        if (result.anti_clone and reason in _SIGNATURE_CHECKED
                and not result.details.get("cached")):
            self.chips.put(bytes(result.uid), (result.credential, t_ms))
        serial = staff = None
        if claims is not None:
            serial = claims[credential.SERIAL]
            staff = claims[credential.STAFF]
        unlock = False
        journal = True
        if reason != credential.OK:
            decision = "deny"
        elif self.role == ROLE_ATTENDANCE:
            last = self._punches.get(serial)
            if last is not None and 0 <= now - last < PUNCH_RETAP_S:
                decision, reason, journal = "punch", policy.DUPLICATE, False
            else:
                decision, reason = "punch", credential.OK
                self._punch(serial, now)
        else:
            d = policy.decide(claims, result.tech, result.anti_clone, self._door_cfg(),
                              self.clock.now_for_schedules(), self.policy_state)
            decision = "grant" if d.granted else "deny"
            reason = d.reason
            unlock = d.unlock
            journal = d.journal
        if unlock:
            self.door.grant(t_ms)
            self.board.relay(self.door.relay)
        self.stats["granted" if decision in ("grant", "punch") else "denied"] += 1
        name = claims[credential.NAME] if claims is not None else None
        cfg = self.config.current
        local = now + (cfg.tz * 60 if cfg is not None else 0)
        self.board.feedback(decision if reason != policy.DUPLICATE else "duplicate",
                            (name, decision, reason, local))
        fields = {
            events.DECISION: decision, events.REASON: reason, events.SERIAL: serial,
            events.STAFF: staff, events.TECH: result.tech, events.ANTI_CLONE: result.anti_clone,
            events.DOOR: self.door_id,
        }
        if self.role == ROLE_BOTH and decision == "grant":
            fields[events.PUNCH] = True  # one tap opens the door and clocks in
        self.last = (decision, reason, serial)
        if journal:
            self.journal_event(events.KIND_TAP, fields)
        return fields

    def _punch(self, serial, now):
        if len(self._punches) >= 256:  # bounded: forget the oldest
            oldest = min(self._punches, key=lambda s: self._punches[s])
            del self._punches[oldest]
        self._punches[serial] = now

    def journal_event(self, kind, fields):
        rec = events.record(kind, self.clock.now(), self.clock.quality(), self.boot_count,
                            self.board.ms(), fields)
        try:
            self.journal.append(rec)
        except JournalFull:
            # Never drop silently: the door keeps working offline, the count and the alarm go out
            # in status/health, and the LED shows maintenance.
            self.stats["journal_full"] += 1
            self.board.feedback("maintenance", None)
            return False
        if self.kick is not None:
            self.kick()
        return True

    # ---- door loop -----------------------------------------------------------------------

    def door_step(self):
        door_open, rex, emergency, tamper = self.board.inputs()
        self.policy_state.set_emergency(self.door.emergency.state)
        for kind, name, active in self.door.step(self.board.ms(), door_open, rex, emergency, tamper):
            if kind == "alarm":
                self.journal_event(events.KIND_ALARM, {events.ALARM: name, events.ACTIVE: active})
            else:
                self.journal_event(events.KIND_DOOR, {events.DETAIL: name})
        self.board.relay(self.door.relay)

    def set_mode(self, mode):
        self.door.set_mode(mode)
        self.board.relay(self.door.relay)
        self.journal_event(events.KIND_NOTICE, {events.DETAIL: "mode:" + mode})

    def housekeeping(self):
        self.clock.persist()
        try:
            self.journal.prepare()
        except Exception:  # noqa: BLE001 - flash trouble shows in health
            pass
        gc.collect()
