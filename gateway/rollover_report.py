"""Cards an issuer key still has out, from the gateway's card register and its issuance records
(``cbcc keys rollover-report``, ``cbcc keys retire``; provisioning/rollover.py has the rollover
records, docs/key-ceremony.md §3).

From the register (table ``card``) a card counts while its status is ``issued``, it has not
expired, its serial is in the old key's range and — with a shared range, where the serial cannot
tell the keys apart — it was issued before the rollover instant (issuance moved to the new key
then). The register does not record the signing kid.

From the issuance records (table ``card_issuance``, ``cbcc card issue``) two kinds of card are not
in the register yet and would be stranded all the same: a ``pending`` issuance (the signed
credential is committed before the card is touched, so the card may already hold it; it is
finished by presenting the card again) counts when its credential's kid is the old key's — the
one place the signing kid is known; and a ``done`` issuance in the old range whose card is
missing from the register counts by the same rules as a register card (its expiry unknown).
``abandoned`` issuances are revoked serials and never count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from trustcore import trust_list

REGISTER = "register"
PENDING = "issuance pending"
UNREGISTERED = "issuance done, not in register"


@dataclass(frozen=True)
class OutstandingCard:
    serial: int
    staff_code: str
    issued_at: str
    expires_at: str
    source: str = REGISTER  # where the card was found (REGISTER, PENDING, UNREGISTERED)


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def _signing_kid(blob: bytes | None) -> bytes | None:
    """The kid in a credential's protected header (None when there is no readable credential)."""
    if blob is None:
        return None
    from trustcore import cose, credential

    try:
        return cose.parse_sign1(blob, credential.MAX_SIZE).kid
    except ValueError:
        return None


def outstanding_cards(
    db_url: str,
    old: trust_list.IssuerEntry,
    rollover_at: int | None,
    shared_range: bool,
    now: int | None = None,
) -> list[OutstandingCard]:
    """Valid cards the old key signed, from the register and the issuance records (module doc)."""
    from sqlmodel import Session, select

    from gateway.db import make_engine
    from gateway.models import Card, CardIssuance

    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)

    def after_rollover(issued: datetime | None) -> bool:
        return rollover_at is not None and issued is not None and issued.timestamp() >= rollover_at

    engine = make_engine(db_url)
    out: dict[int, OutstandingCard] = {}
    try:
        with Session(engine) as s:
            registered: set[int] = set()
            q = select(Card).where(Card.serial >= old.serial_lo, Card.serial < old.serial_hi)
            for c in s.exec(q).all():
                registered.add(c.serial)
                if c.status != "issued":
                    continue
                issued, expires = _aware(c.issued_at), _aware(c.expires_at)
                if expires is not None and expires <= now_dt:
                    continue
                if shared_range and after_rollover(issued):
                    continue  # issued after the rollover: signed by the new key
                out[c.serial] = OutstandingCard(c.serial, c.staff_code, issued.isoformat() if issued else "",
                                                expires.isoformat() if expires else "")  # fmt: skip
            iq = select(CardIssuance).where(CardIssuance.serial >= old.serial_lo,
                                            CardIssuance.serial < old.serial_hi)  # fmt: skip
            for r in s.exec(iq).all():
                started = _aware(r.started_at)
                at = started.isoformat() if started else ""
                if r.state == "pending":
                    kid = _signing_kid(r.credential)
                    if kid is not None and kid != old.kid:
                        continue  # signed by another key (the new one)
                    if kid is None and shared_range and after_rollover(started):
                        continue
                    out[r.serial] = OutstandingCard(r.serial, r.staff_code, at, "", PENDING)
                elif r.state == "done" and r.serial not in registered:
                    if shared_range and after_rollover(started):
                        continue
                    out[r.serial] = OutstandingCard(r.serial, r.staff_code, at, "", UNREGISTERED)
    finally:
        engine.dispose()
    return [out[k] for k in sorted(out)]
