"""Staff and card search by staff code, card serial or name without diacritics, within a unit scope.

A name is matched as a prefix of the folded full name (:mod:`gateway.textfold`). On PostgreSQL
the prefix is a byte-order range (``COLLATE "C"``) on expression indexes, never a ``LIKE``: a
``LIKE`` is re-checked on every row the index returns, and ``cbcc_fold`` costs ~20 µs a row
(its ``translate``), which made a scoped search over 100 k out-of-scope matches take seconds.

- Unscoped: ``ix_staffrecord_name_fold`` (name, staff code) is read in order; the LIMIT stops it.
- Scoped: the agency codes under the scope are listed by a skip scan of
  ``ix_staffrecord_unit_name`` (agency code, name, staff code: one probe per code), then each
  code's first ``limit`` matches are read in order from that index and the union is sorted:
  the cost follows the page size and the number of codes, not how many people elsewhere share
  the name. A scope with more than ``MAX_CODES`` codes (a whole ministry) reads name first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from gateway.api.deps import unit_filter
from gateway.attendance.store import AGENCY_CODES_PG
from gateway.auth import Principal, in_scope
from gateway.models import Card, StaffRecord
from gateway.textfold import fold

LIMIT: Final = 50
MAX_CODES: Final = 40  # agency codes under a scope searched one by one (else name first)


@dataclass
class Hit:
    staff: StaffRecord
    cards: list[Card] = field(default_factory=list)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _after(text: str) -> str | None:
    """The least string above every string starting with ``text`` (code point order = the byte
    order of UTF-8 = ``COLLATE "C"``), or None when the last character has no usable successor."""
    nxt = ord(text[-1]) + 1
    if nxt > 0x10FFFF or 0xD800 <= nxt <= 0xDFFF:
        return None
    return text[:-1] + chr(nxt)


def _scope_codes(session: Session, scope: str) -> list[str] | None:
    """The agency codes of the staff under ``scope``, or None if more than MAX_CODES."""
    hi = _after(scope)
    if hi is None:
        return None
    params = {"lo": scope, "hi": hi, "cap": MAX_CODES + 1}
    raw = [str(c) for c in session.connection().execute(AGENCY_CODES_PG, params).scalars()]
    if len(raw) > MAX_CODES:
        return None
    return [c for c in raw if in_scope(scope, c)]


def _by_name(session: Session, principal: Principal, folded: str, limit: int) -> list[StaffRecord]:
    name: Any = func.cbcc_fold(StaffRecord.full_name)
    hi = _after(folded)
    if session.get_bind().dialect.name != "postgresql" or hi is None:
        return list(
            session.exec(
                select(StaffRecord)
                .where(
                    name.like(_like_prefix(folded), escape="\\"),
                    unit_filter(StaffRecord.agency_code, principal),
                )
                .order_by(name, col(StaffRecord.staff_code))
                .limit(limit)
            ).all()
        )
    name = name.collate("C")  # the indexes' byte order
    match = [name >= folded, name < hi]
    codes = _scope_codes(session, principal.unit_scope) if principal.scoped else None
    if codes is None:  # unscoped, or a scope too wide to list: name first, the LIMIT stops it
        q = select(StaffRecord).where(*match, unit_filter(StaffRecord.agency_code, principal))
        return list(session.exec(q.order_by(name, col(StaffRecord.staff_code)).limit(limit)).all())
    if not codes:
        return []
    # (code, name) as one row comparison, in the order of ix_staffrecord_unit_name's key, which
    # only that index serves (given a separate name range and ORDER BY name, the planner took the
    # name index and filtered by code, on an estimate 50 times too low). Within the range the
    # code is fixed, so this is name order.
    unit = col(StaffRecord.agency_code).collate("C")
    key = sa.tuple_(unit, name)
    parts = [
        select(StaffRecord)
        .where(key >= sa.tuple_(code, folded), key < sa.tuple_(code, hi))
        .order_by(unit, name, col(StaffRecord.staff_code))
        .limit(limit)
        for code in codes
    ]
    both = aliased(StaffRecord, sa.union_all(*parts).subquery())
    outer = func.cbcc_fold(both.full_name).collate("C")
    return list(session.exec(select(both).order_by(outer, both.staff_code).limit(limit)).all())


def search(session: Session, principal: Principal, query: str, *, limit: int = LIMIT) -> list[Hit]:
    q = query.strip()[:100]
    if not q:
        return []
    scope = unit_filter(StaffRecord.agency_code, principal)
    staff: dict[str, StaffRecord] = {}
    if q.isdigit() and len(q) <= 16:
        card = session.get(Card, int(q))
        if card is not None:
            st = session.exec(
                select(StaffRecord).where(StaffRecord.staff_code == card.staff_code, scope)
            ).first()
            if st is not None:
                staff[st.staff_code] = st
    code = q.upper() if len(q) <= 32 else None
    if code is not None:
        for st in session.exec(select(StaffRecord).where(col(StaffRecord.staff_code).in_([q, code]), scope)):
            staff[st.staff_code] = st
    folded = fold(q)
    if len(folded) >= 2:
        for st in _by_name(session, principal, folded, limit):
            staff.setdefault(st.staff_code, st)
    hits = {code: Hit(st) for code, st in list(staff.items())[:limit]}
    if hits:
        for c in session.exec(
            select(Card).where(col(Card.staff_code).in_(list(hits))).order_by(col(Card.serial))
        ):
            hits[c.staff_code].cards.append(c)
    return list(hits.values())
