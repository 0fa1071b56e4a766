"""Issuing one card end to end: staff record → serial → credential → card → reader-style check → record.

The order is what makes a broken link harmless (docs/card-issuance.md):

1. the card is looked at (:func:`card.probe`, read-only) and refused unless it is blank, or it is
   the card of an unfinished issuance (then that issuance is completed, whatever was asked);
2. the serial is allocated and a ``pending`` :class:`CardIssuance` row with the signed credential
   is **committed before the card is touched**;
3. :func:`card.complete` personalises (it can be re-run from any broken command);
4. the field is switched off, the card activated again and read exactly as a door reader reads it
   (random ID, key 2, GetCardUID, key 1, enciphered ReadData), and the credential verified against
   the trust list with the real UID;
5. one transaction: the issuance ``done`` (the credential dropped), the :class:`Card` row, the old
   card of a reissue ``revoked`` (pushed upstream), change log and audit entry.

A card lost for good between 2 and 5 is :func:`abandon`-ed: its serial is revoked, never reused.
"""

from __future__ import annotations

import csv
import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from cbcc.errors import CbccError
from gateway import audit
from gateway.models import Card, CardChange, CardIssuance, Counter, StaffRecord, now_utc
from messages import _
from provisioning import fw
from provisioning.card_keys import CardMasterKeys
from provisioning.encoders.base import ApduTransport, Encoder
from provisioning.issuance import card
from trustcore import credential, keys, timeutil
from trustcore.trust_list import IssuerEntry, TrustList

PENDING, DONE, ABANDONED = "pending", "done", "abandoned"
LIVE = "issued"  # Card.status a reader accepts


class IssuanceError(CbccError):
    """Issuance refused before anything was changed (bad input, staff already holding a card, …)."""


class SerialRangeExhausted(IssuanceError):
    pass


@dataclass(frozen=True)
class Staff:
    """What a credential says about its holder (NFC text)."""

    staff_code: str
    name: str
    agency: str
    unit: str = ""
    position: str = ""
    title: str = ""


@dataclass
class Issuer:
    """The issuing authority at this station: signing key (file or HSM), its trust-list entry, the
    agency code the gateway files its cards under, and the DESFire master keys."""

    signing_key: keys.PrivateKey
    entry: IssuerEntry
    agency_code: str
    card_keys: CardMasterKeys
    factory_picc_key: bytes = bytes(16)
    valid_years: int = 5

    def layout_keys(self) -> Any:
        cl = fw.module("card_layout")
        k = self.card_keys
        return cl.IssuerKeys(k.amk, k.read, k.uid, k.picc)

    def trust(self) -> TrustList:
        return TrustList(seq=0, iat=0, entries={self.entry.kid: self.entry})


@dataclass(frozen=True)
class Station:
    operator: str
    station: str


@dataclass
class Issued:
    serial: int
    staff_code: str
    uid: bytes
    gen: int
    resumed: bool = False  # an unfinished issuance found on this card was completed
    replaces: int | None = None
    steps: list[str] = field(default_factory=list)
    exchanges: int = 0
    generation: str = ""


# ---------------------------------------------------------------- staff records


def _nfc(text: object) -> str:
    return unicodedata.normalize("NFC", str(text or "")).strip()


def staff_from_db(engine: Engine, staff_code: str, agency_name: str | None = None) -> Staff:
    """The holder as the national sync left them in the gateway database (must be active)."""
    with Session(engine) as s:
        row = s.get(StaffRecord, staff_code)
    if row is None:
        raise IssuanceError(
            _("staff code {staff} is not in the national records synced here", staff=staff_code)
        )
    if not row.active:
        raise IssuanceError(
            _("staff code {staff} is no longer active in the national records", staff=staff_code)
        )
    return Staff(row.staff_code, _nfc(row.full_name), _nfc(agency_name or row.agency_code), _nfc(row.unit),
                 _nfc(row.position))  # fmt: skip


CSV_COLUMNS = ("staff_code", "name", "agency", "unit", "position", "title")


def staff_from_csv(path: Path, staff_code: str | None = None) -> list[Staff]:
    """Rows of a UTF-8 CSV with a header naming at least staff_code, name and agency."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IssuanceError(_("cannot read {path}: {reason}", path=path, reason=exc)) from None
    reader = csv.DictReader(text.splitlines())
    cols = set(reader.fieldnames or [])
    missing = [c for c in ("staff_code", "name", "agency") if c not in cols]
    if missing:
        raise IssuanceError(_("{path}: missing column(s) {columns}", path=path, columns=", ".join(missing)))
    unknown = sorted(cols - set(CSV_COLUMNS))
    if unknown:
        raise IssuanceError(_("{path}: unknown column(s) {columns}", path=path, columns=", ".join(unknown)))
    out: list[Staff] = []
    for i, row in enumerate(reader, start=2):
        st = Staff(*(_nfc(row.get(c)) for c in CSV_COLUMNS))
        if not st.staff_code or not st.name or not st.agency:
            raise IssuanceError(
                _("{path}:{line}: staff_code, name and agency must not be empty", path=path, line=i)
            )
        if len(st.staff_code) > 32:
            raise IssuanceError(_("{path}:{line}: staff code over 32 characters", path=path, line=i))
        if staff_code is None or st.staff_code == staff_code:
            out.append(st)
    if staff_code is not None and not out:
        raise IssuanceError(_("staff code {staff} is not in {path}", staff=staff_code, path=path))
    return out


# ---------------------------------------------------------------- database steps


def _counter_name(entry: IssuerEntry) -> str:
    return f"issuance.serial.{entry.serial_lo}"


def _live_card(s: Session, staff_code: str) -> Card | None:
    return s.exec(select(Card).where(Card.staff_code == staff_code, Card.status == LIVE)).first()


def _max_gen(s: Session, staff_code: str) -> int:
    a = s.exec(select(sa.func.max(Card.gen)).where(Card.staff_code == staff_code)).one()
    b = s.exec(select(sa.func.max(CardIssuance.gen)).where(CardIssuance.staff_code == staff_code)).one()
    return max(int(a or 0), int(b or 0))


def pending_issuances(engine: Engine) -> list[CardIssuance]:
    with Session(engine) as s:
        return list(s.exec(select(CardIssuance).where(CardIssuance.state == PENDING)).all())


def _check_staff(s: Session, staff_code: str, reissue: bool) -> tuple[int, int | None]:
    """(gen, replaced serial) for a new card of ``staff_code``, or IssuanceError."""
    pend = s.exec(select(CardIssuance).where(CardIssuance.staff_code == staff_code,
                                             CardIssuance.state == PENDING)).first()  # fmt: skip
    if pend is not None:
        raise IssuanceError(_("staff code {staff} has an unfinished issuance (serial {serial}, card {uid}): "
                              "present that card to complete it, or abandon it",
                              staff=staff_code, serial=pend.serial, uid=pend.uid))  # fmt: skip
    live = _live_card(s, staff_code)
    if live is not None and not reissue:
        raise IssuanceError(_("staff code {staff} already holds live card serial {serial} (gen {gen}); "
                              "use reissue to replace it", staff=staff_code, serial=live.serial,
                              gen=live.gen))  # fmt: skip
    if live is None and reissue:
        raise IssuanceError(_("staff code {staff} holds no live card to replace", staff=staff_code))
    return _max_gen(s, staff_code) + 1, (live.serial if live is not None else None)


def _allocate(s: Session, entry: IssuerEntry) -> int:
    """The next free serial in the issuer's range (the counter row is locked on PostgreSQL)."""
    name = _counter_name(entry)
    row = s.exec(select(Counter).where(Counter.name == name).with_for_update()).first()
    if row is None:
        row = Counter(name=name, value=entry.serial_lo)
    serial = max(row.value, entry.serial_lo)
    while serial < entry.serial_hi and (s.get(Card, serial) is not None
                                        or s.get(CardIssuance, serial) is not None):
        serial += 1
    if serial >= entry.serial_hi:
        raise SerialRangeExhausted(_("serial range {lo}…{hi} of {issuer} is exhausted", lo=entry.serial_lo,
                                     hi=entry.serial_hi - 1, issuer=entry.name))  # fmt: skip
    row.value = serial + 1
    s.add(row)
    return serial


def _record_change(s: Session, kind: str, serial: int, staff_code: str, detail: dict[str, Any]) -> None:
    name = "national.local_change"  # the local change ids gateway.national.local uses
    row = s.exec(select(Counter).where(Counter.name == name).with_for_update()).first()
    if row is None:
        row = Counter(name=name, value=0)
    row.value += 1
    s.add(row)
    s.add(CardChange(change_id=f"local:{row.value}", source="local", kind=kind, serial=serial,
                     staff_code=staff_code, detail=json.dumps(detail, ensure_ascii=False),
                     applied_at=now_utc()))  # fmt: skip


# ---------------------------------------------------------------- the issuance


def _claims(staff: Staff, serial: int, uid: bytes, gen: int, issuer: Issuer, now: int) -> dict[int, Any]:
    exp = min(timeutil.add_years(now, issuer.valid_years), issuer.entry.exp)
    record = {"serial": serial, "staff": staff.staff_code, "name": staff.name, "agency": staff.agency,
              "unit": staff.unit, "position": staff.position, "title": staff.title,
              "issued_at": timeutil.to_iso(now), "expires_at": timeutil.to_iso(exp), "uid": uid.hex(),
              "gen": gen}  # fmt: skip
    return credential.claims_from_record(record)


def _finish(engine: Engine, encoder: Encoder, issuer: Issuer, row: CardIssuance, station: Station,
            resumed: bool, generation: str) -> Issued:  # fmt: skip
    """Personalise what is left, read back as a reader, verify, record (steps 3–5)."""
    blob = row.credential
    if blob is None:
        raise IssuanceError(_("issuance {serial} holds no credential", serial=row.serial))
    uid = bytes.fromhex(row.uid)
    transport = ApduTransport(encoder)
    done = card.complete(transport, uid, issuer.layout_keys(), issuer.factory_picc_key, blob,
                         version=issuer.card_keys.key_version)  # fmt: skip
    verify_as_reader(encoder, issuer, blob, uid)
    now = now_utc()
    with Session(engine) as s:
        live = s.get(CardIssuance, row.serial)
        if live is None or live.state != PENDING:
            raise IssuanceError(_("issuance {serial} is no longer pending", serial=row.serial))
        claims = credential.parse_payload(_payload(blob)) or {}
        live.state = DONE
        live.credential = None
        live.finished_at = now
        s.add(live)
        s.add(Card(serial=row.serial, staff_code=row.staff_code, issuer=row.issuer, gen=row.gen, status=LIVE,
                   issued_at=datetime.fromtimestamp(int(claims.get(credential.IAT, 0)), UTC),
                   expires_at=datetime.fromtimestamp(int(claims.get(credential.EXP, 0)), UTC),
                   updated_at=now))  # fmt: skip
        info = {"uid": row.uid, "gen": row.gen, "station": row.station, "operator": row.operator}
        _record_change(s, "card.issued", row.serial, row.staff_code, info)
        if row.replaces is not None:
            old = s.get(Card, row.replaces)
            if old is not None and old.status == LIVE:
                old.status = "revoked"
                old.pending_upstream = True
                old.updated_at = now
                s.add(old)
                _record_change(s, "card.revoked", old.serial, old.staff_code,
                               {"status": "revoked", "reason": f"reissued as {row.serial}"})  # fmt: skip
        audit.record(s, station.operator, "card.issue", str(row.serial), role="issuer",
                     staff_code=row.staff_code, uid=row.uid, gen=row.gen, station=station.station,
                     replaces=row.replaces, resumed=resumed)  # fmt: skip
        s.commit()
    return Issued(row.serial, row.staff_code, uid, row.gen, resumed, row.replaces, done["steps"],
                  done["exchanges"], generation)  # fmt: skip


def _payload(blob: bytes) -> bytes:
    from trustcore import cose

    return cose.parse_sign1(blob, credential.MAX_SIZE).payload


def verify_as_reader(encoder: Encoder, issuer: Issuer, expected: bytes, uid: bytes) -> None:
    """Power the card afresh and read it with nothing but a reader's keys, then run the reader's
    nine checks; anything short of ``ok`` with the same bytes and UID is an error."""
    cl = fw.module("card_layout")
    rferror = fw.module("rferror")
    encoder.field_off()
    info = encoder.detect()
    try:
        got, real_uid, _info = cl.read_credential(ApduTransport(encoder), issuer.layout_keys().reader_keys(),
                                              info.uid)  # fmt: skip
    except rferror.CardError as e:
        detail = f"{e.reason}: {e.detail}"
        raise IssuanceError(
            _("the card does not read back as a reader reads it ({detail})", detail=detail)
        ) from None
    if bytes(real_uid) != uid or bytes(got) != expected:
        raise IssuanceError(_("the card read back as a reader does not hold what was written"))
    verdict = credential.verify(bytes(got), issuer.trust(), bytes(real_uid), int(time.time()))
    if not verdict.valid:
        raise IssuanceError(_("the credential on the card does not verify: {reason}", reason=verdict.reason))


def issue_card(engine: Engine, encoder: Encoder, issuer: Issuer, staff: Staff, station: Station, *,
               reissue: bool = False, now: int | None = None,
               on_step: Callable[[str], None] | None = None) -> Issued:  # fmt: skip
    """Issue a card for ``staff`` on the card in the encoder's field (the function ``cbcc demo`` calls).

    A card carrying an unfinished issuance is completed instead, whoever it was for (``resumed``);
    the caller then presents a blank card again. Everything refused raises before any change.
    """
    say = on_step or (lambda _s: None)
    at = int(time.time()) if now is None else now
    info = encoder.detect()
    transport = ApduTransport(encoder)
    pending = pending_issuances(engine)
    lk = issuer.layout_keys()
    say("probe")
    p = card.probe(transport, info, lk, issuer.factory_picc_key, [bytes.fromhex(r.uid) for r in pending])
    if p.uid is not None:
        for row in pending:
            if bytes.fromhex(row.uid) == p.uid:
                say("resume")
                return _finish(engine, encoder, issuer, row, station, True, p.generation)
    if not p.blank or p.uid is None:
        with Session(engine) as s:
            known = s.exec(select(CardIssuance).where(CardIssuance.uid == (p.uid or b"").hex())).first()
        if known is not None:
            raise card.CardRefused(_("card {uid} is not blank: it was issued as serial {serial} to {staff} "
                                     "({state})", uid=known.uid, serial=known.serial, staff=known.staff_code,
                                     state=known.state))  # fmt: skip
        if p.app:
            raise card.CardRefused(_("card is not blank: it holds application VC1"))
        raise card.CardRefused(
            _("card is not blank: its PICC master key is not the factory key ({key})", key=p.picc_key)
        )
    if len(staff.staff_code) > 32:
        raise IssuanceError(_("staff code over 32 characters"))
    with Session(engine) as s:
        gen, replaces = _check_staff(s, staff.staff_code, reissue)
        serial = _allocate(s, issuer.entry)
        claims = _claims(staff, serial, p.uid, gen, issuer, at)
        say("sign")
        blob = credential.mint(claims, issuer.signing_key)
        row = CardIssuance(serial=serial, staff_code=staff.staff_code, issuer=issuer.agency_code[:32],
                           gen=gen,
                           uid=p.uid.hex(), state=PENDING, operator=station.operator[:64],
                           station=station.station[:64], replaces=replaces, credential=blob,
                           started_at=now_utc())  # fmt: skip
        s.add(row)
        s.commit()
        s.refresh(row)
    say("personalise")
    return _finish(engine, encoder, issuer, row, station, False, p.generation)


def abandon(engine: Engine, serial: int, station: Station, reason: str) -> None:
    """Give up an unfinished issuance whose card is lost: the serial is revoked and never reused
    (the card may hold a valid credential already), the staff member may be issued a new card."""
    with Session(engine) as s:
        row = s.get(CardIssuance, serial)
        if row is None or row.state != PENDING:
            raise IssuanceError(_("no unfinished issuance with serial {serial}", serial=serial))
        now = now_utc()
        row.state = ABANDONED
        row.credential = None
        row.finished_at = now
        s.add(row)
        s.add(Card(serial=serial, staff_code=row.staff_code, issuer=row.issuer, gen=row.gen, status="revoked",
                   updated_at=now, pending_upstream=True))  # fmt: skip
        info = {"status": "revoked", "reason": reason[:500]}
        _record_change(s, "card.revoked", serial, row.staff_code, info)
        audit.record(s, station.operator, "card.abandon", str(serial), role="issuer", uid=row.uid,
                     station=station.station, reason=reason)  # fmt: skip
        s.commit()
