"""Personalising one DESFire card per docs/card-layout.md so that a broken link at ANY command can be
resumed: look at the card (:func:`probe`, read-only), then :func:`complete` does only the steps the
card has not done yet.

Why not ``card_layout.personalise`` as it is: it runs the steps blindly from a blank card, so a card
pulled away after ChangeKey 1 could never be finished (the next run would XOR with the wrong old key)
and one pulled away after SetConfiguration would no longer show its UID. Every step here is decided
from what the card itself says, without authentication where DESFire allows it:

==============================  =============================================================
what the card shows             what is left to do
==============================  =============================================================
no application VC1              CreateApplication (PICC master key: factory), then all below
key 0 version 0                 authenticate key 0 with the zero key; CreateStdDataFile unless
                                GetFileIDs lists file 01; WriteData (idempotent); ChangeKey 1
                                and 2 where their version is still 0; ChangeKey 0 last
key 0 at version v              the application is done (key 0 changes last)
PICC key version 0              authenticate with the factory PICC key; SetConfiguration random
                                UID unless GetVersion already shows a zero UID; ChangeKey PICC
PICC key version v              done (random UID set first; checked on GetVersion all the same)
==============================  =============================================================

Key versions are read with GetKeyVersion, which DESFire answers without authentication. Between the
application and the PICC the credential is read back in-session with the new key 1 (a card whose
key 1 is wrong is never hardened, so it can still be wiped with the factory PICC key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from messages import _
from provisioning import fw
from provisioning.encoders.base import ApduTransport, CardInfo
from provisioning.errors import ProvisioningError

CMD_GET_KEY_VERSION = 0x64
CMD_GET_FILE_IDS = 0x6F
# DESFire generations by GetVersion hardware type 01 (DESFire) and major version.
GENERATIONS = {0x01: "DESFire EV1", 0x12: "DESFire EV2", 0x22: "DESFire EV2 XL", 0x33: "DESFire EV3"}
MAX_CANDIDATES = 8  # PICC keys tried on a random-UID card of unknown identity


class CardRefused(ProvisioningError):
    """This card cannot be issued (wrong type, not blank, keys unknown): nothing was written to it."""


@dataclass
class Probe:
    """What a card says about itself (read-only look, no key written)."""

    info: CardInfo
    generation: str
    random_uid: bool
    uid: bytes | None  # the real UID when it could be learnt
    picc_key_version: int
    app: bool
    app_key_versions: tuple[int, ...] = ()
    picc_key: str = "unknown"  # factory | issuer | unknown (on random-UID cards, as learnt)
    notes: list[str] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not self.app and self.picc_key_version == 0

    def done(self, version: int) -> bool:
        return (self.app and self.app_key_versions[:1] == (version,) and self.picc_key_version == version
                and self.random_uid)  # fmt: skip


def _layout() -> Any:
    return fw.module("card_layout")


def _m() -> tuple[Any, Any, Any]:
    return fw.module("desfire"), fw.module("desfire_crypto"), fw.module("rferror")


def key_version(d: Any, key_no: int) -> int:
    """GetKeyVersion (64): free on DESFire; MACed inside a session."""
    _desfire, dc, _rferror = _m()
    mode = dc.MAC if d.session is not None else dc.PLAIN
    return int(d.command(CMD_GET_KEY_VERSION, bytes([key_no]), cmd_mode=mode, resp_mode=mode, length=1,
                         limit=16)[0])  # fmt: skip


def file_ids(d: Any) -> bytes:
    _desfire, dc, _rferror = _m()
    mode = dc.MAC if d.session is not None else dc.PLAIN
    return bytes(d.command(CMD_GET_FILE_IDS, cmd_mode=mode, resp_mode=mode, limit=64))


def _new(transport: ApduTransport) -> Any:
    desfire, _dc, _rferror = _m()
    return desfire.Desfire(transport)


def _select_app(d: Any, aid: bytes) -> bool:
    desfire, _dc, _rferror = _m()
    try:
        d.select_application(aid)
    except desfire.DesfireError as e:
        if e.status == desfire.ST_APPLICATION_NOT_FOUND:
            return False
        raise
    return True


def _try_auth(d: Any, key_no: int, key: bytes) -> bool:
    desfire, _dc, _rferror = _m()
    try:
        d.authenticate(key_no, key)
    except desfire.DesfireError as e:
        if e.status in (desfire.ST_AUTHENTICATION_ERROR, desfire.ST_INTEGRITY_ERROR):
            return False
        raise
    return True


def probe(transport: ApduTransport, info: CardInfo, keys: Any, factory_key: bytes,
          candidates: list[bytes] | tuple[bytes, ...] = ()) -> Probe:  # fmt: skip
    """Look at the card: type, generation, random UID, key versions, the real UID. Writes nothing.

    ``keys`` is a ``card_layout.IssuerKeys``; ``candidates`` are real UIDs of unfinished issuances
    (a random-UID card whose PICC key was already changed is recognised by trying theirs).
    Raises :class:`CardRefused` for a card that is not a DESFire EV1/EV2/EV3.
    """
    cl = _layout()
    _desfire, _dc, rferror = _m()
    if not info.iso_dep:
        raise CardRefused(
            _("wrong card type: SAK {sak} is not ISO 14443-4 (MIFARE Classic, NTAG?)", sak=f"{info.sak:02X}")
        )
    d = _new(transport)
    try:
        d.select_application(cl.PICC_AID)
        v = d.get_version()
    except rferror.CardError as e:
        if e.reason == rferror.UNSUPPORTED:
            raise CardRefused(_("wrong card type: not a DESFire card ({detail})", detail=e.detail)) from None
        raise
    if v["hw_type"] != 0x01 or v["hw_major"] not in GENERATIONS:
        raise CardRefused(
            _(
                "wrong card type: hardware type {hw} version {major} is not DESFire EV1/EV2/EV3",
                hw=f"{v['hw_type']:02X}",
                major=f"{v['hw_major']:02X}",
            )
        )  # fmt: skip
    gen = GENERATIONS[v["hw_major"]]
    random_uid = v["uid"] == bytes(len(v["uid"]))
    picc_ver = key_version(d, 0)
    app = _select_app(d, keys.aid)
    kv: tuple[int, ...] = ()
    if app:
        kv = tuple(key_version(d, k) for k in range(cl.NUM_KEYS))
    p = Probe(info, gen, random_uid, None if random_uid else bytes(v["uid"]), picc_ver, app, kv)
    if not random_uid:
        p.picc_key = "factory" if picc_ver == 0 else "unknown"
        return p
    # Random UID on: learn the real UID with a key we hold.
    if app and len(kv) > 2 and kv[2] != 0 and _try_auth(d, cl.KEY_UID, keys.uid_key()):
        p.uid = bytes(d.get_card_uid())
        p.notes.append(_("UID learnt with key 2"))
    d.select_application(cl.PICC_AID)
    if picc_ver == 0 and _try_auth(d, 0, factory_key):
        p.picc_key = "factory"
        if p.uid is None:
            p.uid = bytes(d.get_card_uid())
        return p
    tried = [p.uid] if p.uid is not None else list(candidates)[:MAX_CANDIDATES]
    for uid in tried:
        d.select_application(cl.PICC_AID)
        if _try_auth(d, 0, keys.picc(uid)):
            p.picc_key = "issuer"
            p.uid = bytes(d.get_card_uid())
            break
    return p


def complete(transport: ApduTransport, uid: bytes, keys: Any, factory_key: bytes, credential: bytes,
             *, random_uid: bool = True, version: int = 1) -> dict[str, Any]:  # fmt: skip
    """Do what is left of the personalisation of the card with real UID ``uid`` (see the module doc).

    Idempotent: run it again after any broken link. Returns {"steps": [...], "exchanges": n}.
    """
    cl = _layout()
    _desfire, dc, rferror = _m()
    if not 1 <= version <= 255:
        raise ValueError("key version 1..255")
    blob = cl.encode_file(credential)
    d = _new(transport)
    steps: list[str] = []
    d.select_application(cl.PICC_AID)
    if not _select_app(d, keys.aid):
        d.select_application(cl.PICC_AID)
        if key_version(d, 0) != 0:
            raise CardRefused(_("the PICC master key is not the factory key but application VC1 is missing"))
        if not _try_auth(d, 0, factory_key):
            raise CardRefused(_("the factory PICC master key does not open this card"))
        d.create_application(keys.aid, cl.APP_KEY_SETTINGS, cl.NUM_KEYS)
        steps.append("create_application")
        d.select_application(keys.aid)
    kv = [key_version(d, k) for k in range(cl.NUM_KEYS)]
    if kv[0] == 0:
        if not _try_auth(d, cl.KEY_AMK, cl.ZERO_KEY):
            raise CardRefused(_("application VC1 key 0 has version 0 but is not the zero key"))
        if cl.FILE_CREDENTIAL not in file_ids(d):
            d.create_std_data_file(cl.FILE_CREDENTIAL, dc.FULL, cl.FILE_RIGHTS, cl.FILE_SIZE)
            steps.append("create_file")
        d.write_data(cl.FILE_CREDENTIAL, 0, blob, dc.FULL)
        steps.append("write_data")
        if kv[1] == 0:
            d.change_key(cl.KEY_READ, keys.read(uid), version, cl.ZERO_KEY)
            steps.append("change_key_1")
        if kv[2] == 0:
            d.change_key(cl.KEY_UID, keys.uid_key(), version, cl.ZERO_KEY)
            steps.append("change_key_2")
        d.change_key(cl.KEY_AMK, keys.amk(uid), version)
        steps.append("change_key_0")
    elif kv != [version] * cl.NUM_KEYS:
        raise CardRefused(
            _(
                "application VC1 key versions {kv}: not this issuer's key generation {version}",
                kv=kv,
                version=version,
            )
        )
    # In-session read-back with the new key 1 before the PICC level is touched.
    d.select_application(keys.aid)
    if not _try_auth(d, cl.KEY_READ, keys.read(uid)):
        raise CardRefused(_("key 1 of this card is not the one derived for its UID (not our card?)"))
    if bytes(d.get_card_uid()) != uid:
        raise CardRefused(_("GetCardUID does not match the UID the credential is bound to"))
    if bytes(d.read_data(cl.FILE_CREDENTIAL, 0, len(blob), dc.FULL)) != blob:
        raise rferror.CardError(rferror.PROTOCOL, _("the credential read back differs from what was written"))
    steps.append("read_back")
    # PICC level: random UID, then the diversified PICC master key.
    d.select_application(cl.PICC_AID)
    picc_ver = key_version(d, 0)
    shows_zero_uid = d.get_version()["uid"] == bytes(7)
    if picc_ver == 0:
        if not _try_auth(d, 0, factory_key):
            raise CardRefused(_("the factory PICC master key does not open this card"))
        if random_uid and not shows_zero_uid:
            d.set_configuration(cl.PICC_OPT_CONFIG, bytes([cl.PICC_RANDOM_UID]))
            steps.append("random_uid")
        d.change_key(cl.PICC_KEY_AES | 0, keys.picc(uid), version)
        steps.append("change_picc_key")
    elif picc_ver == version:
        if random_uid and not shows_zero_uid:
            if not _try_auth(d, 0, keys.picc(uid)):
                raise CardRefused(_("the PICC master key is neither the factory key nor ours"))
            d.set_configuration(cl.PICC_OPT_CONFIG, bytes([cl.PICC_RANDOM_UID]))
            steps.append("random_uid")
    else:
        raise CardRefused(
            _("PICC master key version {version}: not the factory key nor ours", version=picc_ver)
        )
    return {"steps": steps, "exchanges": d.exchanges}
