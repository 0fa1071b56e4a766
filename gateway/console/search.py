"""Staff and card search by staff code, card serial or name without diacritics, within a unit scope.

A name is matched as a prefix of the folded full name (:mod:`gateway.textfold`): on PostgreSQL
the expression index ``ix_staffrecord_name_fold`` (``cbcc_fold(full_name) text_pattern_ops``)
answers it without reading the 2 M rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sqlmodel import Session, col, func, select

from gateway.api.deps import unit_filter
from gateway.auth import Principal
from gateway.models import Card, StaffRecord
from gateway.textfold import fold

LIMIT: Final = 50


@dataclass
class Hit:
    staff: StaffRecord
    cards: list[Card] = field(default_factory=list)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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
        name: Any = func.cbcc_fold(StaffRecord.full_name)
        if session.get_bind().dialect.name == "postgresql":
            name = name.collate("C")  # the index's byte order: the LIMIT stops the scan early
        by_name = session.exec(
            select(StaffRecord)
            .where(name.like(_like_prefix(folded), escape="\\"), scope)
            .order_by(name, col(StaffRecord.staff_code))
            .limit(limit)
        ).all()
        for st in by_name:
            staff.setdefault(st.staff_code, st)
    hits = {code: Hit(st) for code, st in list(staff.items())[:limit]}
    if hits:
        for c in session.exec(
            select(Card).where(col(Card.staff_code).in_(list(hits))).order_by(col(Card.serial))
        ):
            hits[c.staff_code].cards.append(c)
    return list(hits.values())
