# The project's DESFire card layout (docs/card-layout.md explains every choice) and the two
# procedures built on it: the reader's read path and the issuer's personalisation.
#
#   application  AID 56 43 31 ("VC1" on the wire), AES, 3 keys, key settings 0x09
#   key 0        application master key   AN10922(M_amk,  UID || AID || SYSID)   issuer only
#   key 1        read key                 AN10922(M_read, UID || AID || SYSID)   readers
#   key 2        UID key                  AN10922(M_uid,  AID || SYSID)          readers
#                (same on every card: it only unlocks GetCardUID on random-UID cards)
#   file 01      standard data file, 1028 bytes, CommMode FULL (enciphered),
#                read = key 1, write = key 0, read&write = never, change = key 0
#                content: C1 01 LEN_hi LEN_lo || COSE_Sign1 credential (<= 1024 bytes)
#   PICC         master key AN10922(M_picc, UID || 00 00 00 || SYSID), random UID on
import struct

import aes
import desfire_crypto as dc
from desfire import (
    CMD_READ_DATA,
    ST_APPLICATION_NOT_FOUND,
    ST_ILLEGAL_COMMAND,
    Desfire,
    DesfireError,
    access_rights,
    read_header,
)
from desfire_crypto import FULL
from rferror import AUTH, PROTOCOL, TOO_LONG, UNSUPPORTED, CardError

AID = b"\x56\x43\x31"          # as sent (least significant byte first): value 0x314356
PICC_AID = b"\x00\x00\x00"
SYSID = b"CBCCVC"               # system identifier in every diversification input

KEY_AMK = 0
KEY_READ = 1
KEY_UID = 2
NUM_KEYS = 3
KEY_VERSION = 1

# KeySettings1: bit0 AMK changeable, bit1 free directory listing (off), bit2 free create/delete
# (off), bit3 settings changeable; high nibble 0 = the AMK is needed to change any key.
APP_KEY_SETTINGS = 0x09

FILE_CREDENTIAL = 0x01
CRED_MAX = 1024
HEADER_LEN = 4
FILE_SIZE = HEADER_LEN + CRED_MAX
MAGIC = 0xC1
LAYOUT_VERSION = 1
NEVER = 0x0F
FILE_RIGHTS = access_rights(KEY_READ, KEY_AMK, NEVER, KEY_AMK)

PICC_OPT_CONFIG = 0x00
PICC_RANDOM_UID = 0x02          # SetConfiguration option 00, bit 1 (irreversible)
PICC_KEY_AES = 0x80             # key-type bits of KeyNo when changing the PICC master key

ZERO_KEY = bytes(16)


# ---------------------------------------------------------------- keys

def card_key(master, uid, aid=AID, sysid=SYSID, subkeys=None):
    """A UID-diversified application key (keys 0 and 1)."""
    return dc.an10922_aes128(master, dc.div_input(uid, aid, sysid), subkeys)


def system_key(master, aid=AID, sysid=SYSID):
    """The UID key (key 2): diversified by AID and system only, so it is usable before the UID is known."""
    return dc.an10922_aes128(master, bytes(aid) + bytes(sysid))


def picc_key(master, uid, sysid=SYSID):
    return dc.an10922_aes128(master, dc.div_input(uid, PICC_AID, sysid))


class ReaderKeys:
    """What a reader holds: the read-key master and the UID key (never the AMK or PICC masters)."""

    def __init__(self, read_master, uid_key, sysid=SYSID, aid=AID):
        if len(read_master) != 16 or len(uid_key) != 16:
            raise ValueError("AES-128 keys are 16 bytes")
        self.read_master = bytes(read_master)
        self.uid_key = bytes(uid_key)
        self.sysid = bytes(sysid)
        self.aid = bytes(aid)
        self._sub = aes.cmac_subkeys(self.read_master)  # one AES block saved per tap
        self.uid_key_sub = aes.cmac_subkeys(self.uid_key)  # and one for key 2's session keys
        # AN10922 input for UIDs of 4, 7 and 10 bytes: 01 || UID || AID || SYSID, padded to two
        # blocks, the second XORed with K2. Only bytes 1..len(UID) depend on the card, so
        # everything after them is made here, once: a tap's read key is one two-block CBC call.
        self._rest = {}  # type: dict
        tail = self.aid + self.sysid
        for n in (4, 7, 10):
            if 1 + n + len(tail) > 31:
                continue                # no padding (K1): card_key() as it is
            d = b"\x01" + bytes(n) + tail
            d = d + b"\x80" + bytes(31 - len(d))
            self._rest[n] = d[1 + n:16] + aes.xor(d[16:], self._sub[1])

    def read_key(self, uid):
        rest = self._rest.get(len(uid))
        if rest is None:
            return card_key(self.read_master, uid, self.aid, self.sysid, self._sub)
        return aes.cbc_encrypt(self.read_master, dc.ZERO16, b"\x01" + bytes(uid) + rest)[16:]


class IssuerKeys:
    """The issuer's master keys (host side, from the HSM or key ceremony)."""

    def __init__(self, amk_master, read_master, uid_master, picc_master, sysid=SYSID, aid=AID):
        self.amk_master = bytes(amk_master)
        self.read_master = bytes(read_master)
        self.uid_master = bytes(uid_master)
        self.picc_master = bytes(picc_master)
        self.sysid = bytes(sysid)
        self.aid = bytes(aid)

    def amk(self, uid):
        return card_key(self.amk_master, uid, self.aid, self.sysid)

    def read(self, uid):
        return card_key(self.read_master, uid, self.aid, self.sysid)

    def uid_key(self):
        return system_key(self.uid_master, self.aid, self.sysid)

    def picc(self, uid):
        return picc_key(self.picc_master, uid, self.sysid)

    def reader_keys(self):
        return ReaderKeys(self.read_master, self.uid_key(), self.sysid, self.aid)


# ---------------------------------------------------------------- file content

def encode_file(credential):
    n = len(credential)
    if not 0 < n <= CRED_MAX:
        raise ValueError("credential must be 1..%d bytes" % CRED_MAX)
    return bytes([MAGIC, LAYOUT_VERSION]) + struct.pack(">H", n) + bytes(credential)


def parse_header(h):
    """Credential length from the 4-byte file header; refuses unknown layouts and lying lengths."""
    if len(h) < HEADER_LEN or h[0] != MAGIC:
        raise CardError(UNSUPPORTED, "credential file has no CBCC header")
    if h[1] != LAYOUT_VERSION:
        raise CardError(UNSUPPORTED, "credential layout version %d" % h[1])
    n = (h[2] << 8) | h[3]
    if n == 0:
        raise CardError(PROTOCOL, "empty credential")
    if n > CRED_MAX:
        raise CardError(TOO_LONG, "credential length %d over %d" % (n, CRED_MAX))
    return n


def is_random_uid(uid):
    """ISO 14443-3: a 4-byte UID starting with 0x08 is a random ID (the real UID is hidden)."""
    return uid is None or (len(uid) == 4 and uid[0] == 0x08)


# ---------------------------------------------------------------- reader read path

def read_credential(transport, reader_keys, uid_from_anticollision, rng=None, size_hint=0, known=None):
    """Select, authenticate (anti-clone), learn the real UID, read the credential enciphered.

    Returns (credential bytes, real UID, details). Random-UID cards (4-byte UID 08 ..) take
    two authentications: key 2 (same on every card) to run GetCardUID, then key 1 diversified
    with the real UID. Cards showing their real 7-byte UID authenticate key 1 at once; that
    authentication is itself the proof that the chip is the one personalised for this UID.
    size_hint > 0 reads header + size_hint bytes in the first ReadData (one command less when
    the credential fits, a few wasted bytes when it is shorter).

    known(real_uid) -> credential bytes or None: the reader's cache of credentials it read
    and verified recently from the chip with that UID. Asked only after the card has proved it
    holds key 1 diversified with that very UID (so it is the chip that was personalised for
    it); a hit skips the enciphered ReadData, the longest part of a tap (details["cached"]).
    """
    d = Desfire(transport, rng)
    try:
        d.select_application(reader_keys.aid)
    except DesfireError as e:
        if e.status == ST_APPLICATION_NOT_FOUND:
            raise CardError(UNSUPPORTED, "no CBCC application on this card")
        raise
    random_uid = is_random_uid(uid_from_anticollision)
    first = HEADER_LEN + max(0, min(size_hint, CRED_MAX))
    if random_uid:
        kind = d.authenticate(KEY_UID, reader_keys.uid_key, True, getattr(reader_keys, "uid_key_sub", None))
        if kind == "ev2":
            # Inside the EV2 transaction key 2 opened: the same proof of key 1, 16 bytes shorter.
            # Its first part does not depend on the UID, so it goes out as soon as GetCardUID's
            # answer is in; that answer is checked and opened, and the read key derived from
            # the UID, while the card works on the first part. Nothing derived from the UID
            # reaches the card before its MAC was checked.
            opened = _Opened(d.send_get_card_uid(), reader_keys)
            then = (CMD_READ_DATA, read_header(FILE_CREDENTIAL, 0, first))
            try:
                d.authenticate_ev2_non_first(KEY_READ, None, opened.read_key, None, then)
            except DesfireError as e:
                if e.status != ST_ILLEGAL_COMMAND:
                    raise
                d.authenticate_ev2_first(KEY_READ, opened.read_key(None))  # no NonFirst
            uid = opened.uid()
        else:
            uid = d.get_card_uid()
            d.authenticate_aes(KEY_READ, reader_keys.read_key(uid))
    else:
        uid = bytes(uid_from_anticollision)
        # the read key is derived while the card works on the authentication's first part
        kind = d.authenticate(KEY_READ, None, True, None, reader_keys.read_key, uid)
    cached = known(uid) if known is not None else None
    if cached is not None:
        return cached, uid, {"auth": kind, "random_uid": random_uid, "reads": 0,
                             "exchanges": d.exchanges, "anti_clone": True, "cached": True}
    blob = d.read_data(FILE_CREDENTIAL, 0, first, FULL)
    n = parse_header(blob)
    cred = blob[HEADER_LEN:HEADER_LEN + n]
    reads = 1
    if len(cred) < n:
        cred = cred + d.read_data(FILE_CREDENTIAL, HEADER_LEN + len(cred), n - len(cred), FULL)
        reads += 1
    details = {"auth": kind, "random_uid": random_uid, "reads": reads,
               "exchanges": d.exchanges, "anti_clone": True}
    return cred, uid, details


class _Opened:
    """GetCardUID's answer, opened once (in the driver's wait or after it): the UID or the error."""

    def __init__(self, sent, reader_keys):
        self.sent = sent
        self.keys = reader_keys
        self.out = None

    def uid(self):
        if self.out is None:
            try:
                self.out = Desfire.open_card_uid(self.sent)
            except CardError as e:
                self.out = e
        if isinstance(self.out, CardError):
            raise self.out
        return self.out

    def read_key(self, _):
        return self.keys.read_key(self.uid())


# ---------------------------------------------------------------- personalisation

def personalise(transport, picc_master_key, keys, credential, rng=None, random_uid=True,
                version=KEY_VERSION):
    """Create the CBCC application on a card and store `credential` (issuer side).

    picc_master_key: the card's current AES PICC master key, or None for a card whose PICC
    level still allows free CreateApplication (factory state). With a key, the real UID comes
    from GetCardUID and the PICC is hardened afterwards (random UID if asked, PICC master key
    replaced by its diversified value). Without one the UID comes from GetVersion and the
    PICC level is left alone (see docs/card-layout.md: DES factory keys are out of scope here).
    Returns a dict with the real UID and what was done. The credential must already be bound
    to that UID (credential key 11); the caller mints it after a first pass with read_uid().
    """
    blob = encode_file(credential)
    d = Desfire(transport, rng)
    d.select_application(PICC_AID)
    if picc_master_key is not None:
        kind = d.authenticate(0, picc_master_key)
        uid = d.get_card_uid()
    else:
        kind = "none"
        uid = d.get_version()["uid"]
        if uid == bytes(len(uid)):
            raise CardError(UNSUPPORTED, "random-UID card: the PICC master key is needed")
    d.create_application(keys.aid, APP_KEY_SETTINGS, NUM_KEYS)
    d.select_application(keys.aid)
    d.authenticate(KEY_AMK, ZERO_KEY)          # a new application's keys are all zero
    d.create_std_data_file(FILE_CREDENTIAL, FULL, FILE_RIGHTS, FILE_SIZE)
    d.write_data(FILE_CREDENTIAL, 0, blob, FULL)
    d.change_key(KEY_READ, keys.read(uid), version, ZERO_KEY)
    d.change_key(KEY_UID, keys.uid_key(), version, ZERO_KEY)
    d.change_key(KEY_AMK, keys.amk(uid), version)       # ends the session
    # Read back the way a reader will, with the keys just written.
    d.authenticate(KEY_READ, keys.read(uid))
    if d.get_card_uid() != uid:
        raise CardError(AUTH, "GetCardUID changed during personalisation")
    if d.read_data(FILE_CREDENTIAL, 0, len(blob), FULL) != blob:
        raise CardError(PROTOCOL, "credential read back differs")
    hardened = False
    if picc_master_key is not None:
        d.select_application(PICC_AID)
        d.authenticate(0, picc_master_key)
        if random_uid:
            d.set_configuration(PICC_OPT_CONFIG, bytes([PICC_RANDOM_UID]))
        new = keys.picc(uid)
        if new != bytes(picc_master_key):
            d.change_key(PICC_KEY_AES | 0, new, version)
        hardened = True
    return {"uid": uid, "auth": kind, "random_uid": hardened and random_uid,
            "picc_hardened": hardened, "exchanges": d.exchanges}


def read_uid(transport, picc_master_key=None, rng=None):
    """The real UID before personalisation (to mint the credential bound to it)."""
    d = Desfire(transport, rng)
    d.select_application(PICC_AID)
    if picc_master_key is None:
        uid = d.get_version()["uid"]
        if uid == bytes(len(uid)):
            raise CardError(UNSUPPORTED, "random-UID card: the PICC master key is needed")
        return uid
    d.authenticate(0, picc_master_key)
    return d.get_card_uid()
