# The reader's read path: poll -> detect -> anticollision/select -> by SAK:
#   ISO-DEP (DESFire): RATS/PPS, then card_layout.read_credential over the IsoDep transport
#                      (select application, authenticate with the diversified key = anti-clone,
#                      GetCardUID, read the credential enciphered);
#   MIFARE Classic:    sector keys diversified per UID, credential across sectors;
#   NTAG21x:           credential in user memory, optional diversified PWD_AUTH.
# The outcome is a ReadResult; its credential then goes to the trust core
# (credential.verify(cred, uid, now, trust, revocation)), see CardReader.verify.
#
# Nothing escapes as an exception: chip trouble, card trouble and even a bug in a layer below
# end as ReadResult(ok=False, reason=...), the card is halted, the chip is put back to ISO
# 14443-3 defaults, and a chip that stopped answering is reset before the next poll.
import iso14443a
import rferror
from isodep import FIFO_SIZE, IsoDep
from rferror import CardError

DESFIRE = "desfire"
CLASSIC = "classic"
NTAG = "ntag"


# Outcomes after which trying another card in the same poll makes no sense.
_FINAL = (rferror.NO_CARD, rferror.CHIP, rferror.CARD_REMOVED, rferror.TIMEOUT, rferror.COLLISION)


class ReadResult:
    """ok: a credential was read. tech: "desfire" | "classic" | "ntag" | None. anti_clone: True only
    for DESFire after the card proved it holds its diversified key. uid: the UID the credential
    must be bound to (the real UID of a random-UID DESFire). reason/detail: the CardError."""

    # Defaults as class attributes: a tap sets only what it learns (one object per tap, on the
    # critical path). details is replaced, never changed in place.
    ok = False
    tech = None  # type: str | None
    anti_clone = False
    uid = b""
    anticollision_uid = b""
    sak = 0
    atqa = b""
    ats = b""
    bitrate = (106, 106)
    credential = b""
    reason = None  # type: str | None
    detail = ""
    details = {}  # type: dict

    def __repr__(self):
        if self.ok:
            return "ReadResult(ok, %s, anti_clone=%s, uid=%s, %d bytes)" % (
                self.tech, self.anti_clone, _hex(self.uid), len(self.credential))
        return "ReadResult(failed: %s %s)" % (self.reason, self.detail)


def _hex(b):
    return "".join("%02x" % x for x in b)


def tech_for_sak(sak):
    if sak & iso14443a.SAK_CASCADE:
        return None
    if sak & 0x20:
        return DESFIRE                  # ISO 14443-4 (DESFire; SmartMX with Classic too)
    if sak & 0x08 or sak & 0x18 == 0x18 or sak == 0x09:
        return CLASSIC                  # 08 1K, 18 4K, 09 Mini, 88 / 98 Infineon variants
    if sak == 0x00:
        return NTAG                     # type 2 tag
    return None


class CardReader:
    """keys: the DESFire reader keys handed to card_layout.read_credential (card_layout.ReaderKeys).
    legacy_key: 16-byte AES master for Classic sector keys and NTAG passwords (None: legacy
    cards are refused as unsupported). ntag_password: authenticate NTAGs with PWD_AUTH.
    max_kbps caps the ISO-DEP bit rate negotiated by PPS. size_hint: credential bytes read in
    the first DESFire ReadData. low_power: soft power-down between polls. rng: random source
    for the DESFire layer (n -> bytes; None: os.urandom)."""

    def __init__(self, chip, keys=None, legacy_key=None, ntag_password=False, max_kbps=848,
                 size_hint=0, low_power=False, check_every=32, field_settle_us=5000,
                 max_response=2048, rng=None, max_cards=2):
        self.chip = chip
        self.keys = keys
        self.legacy_key = legacy_key
        self.ntag_password = ntag_password
        self.max_kbps = max_kbps
        self.size_hint = size_hint
        self.low_power = low_power
        self.check_every = check_every
        self.field_settle_us = field_settle_us
        self.max_response = max_response
        self.rng = rng                  # None: the DESFire layer uses os.urandom
        # known(real_uid) -> credential or None: the terminal's cache of credentials it verified
        # from anti-clone-authenticated DESFire chips (card_layout.read_credential skips the read).
        self.known = None
        self.max_cards = max_cards      # cards tried per poll when several are in the field
        self.polls = 0
        self.reads = 0
        self.failures = 0
        self._classic_keys = None
        self._asleep = False
        self._dep = None
        self._isodep = None
        self._pending = None

    # ---- polling ---------------------------------------------------------------------------

    def poll(self, wake=False):
        """One poll: wake the chip if it sleeps, look for a card, read it. Returns a ReadResult
        (reason NO_CARD when the field is empty). REQA (wake=False) leaves cards that were read
        and halted alone, so a card resting on the reader is read once."""
        chip = self.chip
        if self._asleep:
            try:
                chip.power_up()
                chip.delay_us(self.field_settle_us)
            except CardError:
                chip.healthy = False
            self._asleep = False
        r = self.read(wake)
        if self.low_power and r.reason == rferror.NO_CARD:
            try:
                chip.power_down()
                self._asleep = True
            except CardError:
                chip.healthy = False
        return r

    def read(self, wake=False, finish=True):
        """Detect and read one card. finish=False returns as soon as the credential is in hand
        and leaves the card's release (S(DESELECT) or HLTA, chip back to 106 kbit/s) to
        finish(), which the caller runs after acting on the result; the next read runs it
        anyway if the caller did not.

        Several cards in the field: when the selected card cannot be read (not ours, wrong
        keys, unsupported), it is halted and the next card is tried, up to max_cards per poll;
        the first failure is reported if none can be read."""
        if self._pending is not None:
            self.finish()
        self.polls += 1
        first = None
        for attempt in range(max(1, self.max_cards)):
            r = self._read_one(wake and attempt == 0)
            if r.ok or r.reason in _FINAL:
                break
            if first is None:
                first = r
            uid = r.anticollision_uid
            self.finish()
            # Make sure that card stays quiet (a Classic card that failed authentication is
            # IDLE, not HALT): select it by its UID and halt it, then look for another one.
            try:
                iso14443a.select_uid(self.chip, uid, False)
                iso14443a.halt(self.chip)
            except CardError:
                pass
            self.chip.reset_protocol()
        else:
            r = first
        if not r.ok and first is not None and r.reason == rferror.NO_CARD:
            r = first
        if not r.ok and r.reason != rferror.NO_CARD:
            self.failures += 1
        if self._pending is not None and finish:
            self.finish()
        return r

    def _read_one(self, wake):
        r = ReadResult()
        chip = self.chip
        target = None
        self._dep = None
        try:
            chip.ensure()
            if self.check_every and self.polls % self.check_every == 0:
                chip.check()
            target = iso14443a.activate(chip, wake)
            r.anticollision_uid = target.uid
            r.uid = target.uid
            r.sak = target.sak
            r.atqa = target.atqa
            tech = tech_for_sak(target.sak)
            r.tech = tech
            if tech == DESFIRE:
                self._read_desfire(target, r)
            elif tech == CLASSIC:
                self._read_classic(target, r)
            elif tech == NTAG:
                self._read_ntag(target, r)
            else:
                raise CardError(rferror.UNSUPPORTED, "SAK %02x" % target.sak)
            r.ok = True
            self.reads += 1
        except CardError as e:
            r.reason = e.reason
            r.detail = e.detail
        except Exception as e:  # a bug below must not stop the reader
            r.reason = rferror.PROTOCOL
            r.detail = "internal: %r" % (e,)
        if not r.ok and r.reason not in (rferror.NO_CARD, rferror.CHIP):
            # A failed read: was it the card, or has the chip stopped answering?
            try:
                chip.check()
            except CardError as e:
                r.reason = e.reason
                r.detail = e.detail + " (after: " + r.detail + ")"
            except Exception:
                chip.healthy = False
        if not r.ok:
            r.credential = b""
            r.anti_clone = False
        if target is not None:
            self._pending = r
        return r

    def finish(self):
        """Release the card of the last read: S(DESELECT) for ISO-DEP (an ISO-DEP card ignores
        HLTA), HLTA otherwise, and put the chip back to ISO 14443-3 defaults. Never raises."""
        r = self._pending
        if r is None:
            return
        self._pending = None
        chip = self.chip
        dep = self._dep
        self._dep = None
        try:
            if dep is not None and (r.ok or r.reason not in (
                    rferror.CARD_REMOVED, rferror.TIMEOUT, rferror.CHIP)):
                dep.active = True
                dep.deselect()
            elif r.tech != DESFIRE:
                iso14443a.halt(chip)
            chip.reset_protocol()
        except CardError as e:
            if e.reason == rferror.CHIP:
                chip.healthy = False
        except Exception:
            chip.healthy = False

    # ---- per technology --------------------------------------------------------------------

    def _read_desfire(self, target, r):
        try:
            import card_layout
        except ImportError:
            raise CardError(rferror.UNSUPPORTED, "no DESFire layout on this reader")
        if self.keys is None:
            raise CardError(rferror.UNSUPPORTED, "no DESFire reader keys")
        dep = self._isodep
        if dep is None:
            # one ISO-DEP object for every tap (activate() starts each session afresh)
            dep = IsoDep(self.chip, FIFO_SIZE, self.max_response, self.max_kbps)
            self._isodep = dep
        dep.max_kbps = self.max_kbps
        self._dep = dep
        ats = dep.activate()
        r.ats = ats.raw
        r.bitrate = dep.kbps
        cred, uid, details = card_layout.read_credential(dep, self.keys, target.uid, self.rng,
                                                         self.size_hint, self.known)
        r.credential = bytes(cred)
        r.uid = bytes(uid)
        r.details = details if isinstance(details, dict) else {}
        r.anti_clone = bool(r.details.get("anti_clone", True))

    def _read_classic(self, target, r):
        import classic
        if self.legacy_key is None:
            raise CardError(rferror.UNSUPPORTED, "legacy cards not accepted (no legacy key)")
        if self._classic_keys is None:
            self._classic_keys = classic.Keys(self.legacy_key)
        r.credential = classic.read_credential(self.chip, target.uid, target.sak, self._classic_keys)
        r.details = {"size": classic.size_from_sak(target.sak)}

    def _read_ntag(self, target, r):
        import ntag
        if self.legacy_key is None:
            raise CardError(rferror.UNSUPPORTED, "legacy cards not accepted (no legacy key)")
        master = self.legacy_key if self.ntag_password else None
        cred, tag = ntag.read_credential(self.chip, target.uid, master)
        r.credential = cred
        r.details = {"model": tag.model, "password": master is not None}

    # ---- trust core ------------------------------------------------------------------------

    @staticmethod
    def verify(result, now, trust, revocation=None):
        """Hand a read credential to the trust core. Returns (reason, claims)."""
        import credential
        if not result.ok:
            return result.reason, None
        return credential.verify(result.credential, result.uid, now, trust, revocation)
