"""Cards an issuer key still has out, from the gateway's card register (``cbcc keys rollover-report``,
``cbcc keys retire``; provisioning/rollover.py has the rollover records, docs/key-ceremony.md §3).

A card counts while its status is ``issued``, it has not expired, its serial is in the old key's
range and — with a shared range, where the serial cannot tell the keys apart — it was issued before
the rollover instant (issuance moved to the new key then). No table records the signing kid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from trustcore import trust_list


@dataclass(frozen=True)
class OutstandingCard:
    serial: int
    staff_code: str
    issued_at: str
    expires_at: str


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def outstanding_cards(
    db_url: str,
    old: trust_list.IssuerEntry,
    rollover_at: int | None,
    shared_range: bool,
    now: int | None = None,
) -> list[OutstandingCard]:
    """Valid cards in the register that the old key signed (see the module doc)."""
    from sqlmodel import Session, select

    from gateway.db import make_engine
    from gateway.models import Card

    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    engine = make_engine(db_url)
    out: list[OutstandingCard] = []
    try:
        with Session(engine) as s:
            in_range = (Card.serial >= old.serial_lo, Card.serial < old.serial_hi)
            q = select(Card).where(Card.status == "issued", *in_range)
            for c in sorted(s.exec(q).all(), key=lambda c: c.serial):
                issued, expires = _aware(c.issued_at), _aware(c.expires_at)
                if expires is not None and expires <= now_dt:
                    continue
                after = rollover_at is not None and issued is not None and issued.timestamp() >= rollover_at
                if shared_range and after:
                    continue  # issued after the rollover: signed by the new key
                out.append(OutstandingCard(c.serial, c.staff_code, issued.isoformat() if issued else "",
                                           expires.isoformat() if expires else ""))  # fmt: skip
    finally:
        engine.dispose()
    return out
