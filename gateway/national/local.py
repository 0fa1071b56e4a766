"""Local actions on cards: a facility manager locks a lost card here, the gateway denies it at
once, and the lock is pushed to the national database later (``pending_upstream``).

The lock, its :class:`CardChange` (source ``local``, change id ``local:<n>``) and an audit entry
commit together. :func:`push_pending` POSTs each pending card to the national service with that
change id as an idempotency reference, and clears the flag only after a 2xx answer; a lost answer
is simply pushed again (the national side acknowledges the same reference once).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import audit
from gateway.errors import GatewayError
from gateway.models import Card, CardChange, Counter, now_utc
from gateway.national.sync import OnChange, denied
from messages import _

log = logging.getLogger(__name__)
COUNTER = "national.local_change"


class LocalActionError(GatewayError):
    pass


def _next_id(session: Session) -> str:
    row = session.get(Counter, COUNTER)
    if row is None:
        row = Counter(name=COUNTER, value=0)
    row.value += 1
    session.add(row)
    return f"local:{row.value}"


def lock_card(engine: Engine, serial: int, *, actor: str, reason: str = "", role: str = "facility",
              on_change: OnChange | None = None) -> str:  # fmt: skip
    """Lock card ``serial`` now (readers deny it from the next revocation list on); returns the
    local change id. Locking a card that is not ``issued`` is refused (nothing to do)."""
    with Session(engine) as s:
        card = s.exec(select(Card).where(Card.serial == serial).with_for_update()).first()
        if card is None:
            raise LocalActionError(_("no card {serial}", serial=serial))
        if card.status != "issued":
            raise LocalActionError(_("card {serial} is already {status}", serial=serial, status=card.status))
        change_id = _next_id(s)
        now = now_utc()
        was_denied = denied(card.status)
        card.status = "locked"
        card.pending_upstream = True
        card.updated_at = now
        s.add(card)
        info = {"status": "locked", "reason": reason[:500], "by": actor[:64]}
        detail = json.dumps(info, ensure_ascii=False)
        s.add(CardChange(change_id=change_id, source="local", kind="card.locked", serial=serial,
                         staff_code=card.staff_code, detail=detail, applied_at=now))  # fmt: skip
        audit.record(s, actor, "card.lock", str(serial), role=role, reason=reason, change_id=change_id)
        s.commit()
    if on_change is not None and not was_denied:
        try:
            on_change([serial])
        except Exception:
            log.exception(_("on_change hook failed after a local lock"))
    return change_id


@dataclass
class PushReport:
    pushed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def push_pending(client: httpx.Client, engine: Engine, *, limit: int = 1000) -> PushReport:
    """POST every pending local action upstream (``client`` carries base URL and credentials):
    ``POST /v1/cards/{serial}/actions {"action", "staff_code", "ref", "reason", "at"}``."""
    report = PushReport()
    with Session(engine) as s:
        cards = s.exec(select(Card).where(Card.pending_upstream == sa.true()).limit(limit)).all()
        todo = []
        for card in cards:
            change = s.exec(select(CardChange).where(CardChange.serial == card.serial,
                                                     CardChange.source == "local")
                            .order_by(sa.text("id DESC"))).first()  # fmt: skip
            if change is None:
                report.failed[card.serial] = "no local change recorded"
                continue
            reason = json.loads(change.detail).get("reason", "")
            todo.append((card.serial, card.staff_code, card.status, change.change_id, reason,
                         change.applied_at))  # fmt: skip
    for serial, staff_code, status, ref, reason, at in todo:
        action = {"locked": "lock", "revoked": "revoke"}.get(status)
        if action is None:
            report.failed[serial] = f"nothing to push for status {status}"
            continue
        body = {"action": action, "staff_code": staff_code, "ref": ref, "reason": reason,
                "at": at.isoformat() if at else None}  # fmt: skip
        try:
            resp = client.post(f"/v1/cards/{serial}/actions", json=body)
        except httpx.HTTPError as exc:
            report.failed[serial] = f"{type(exc).__name__}"
            continue
        if resp.is_success:
            with Session(engine) as s:
                row = s.get(Card, serial)
                if row is not None and row.pending_upstream:
                    row.pending_upstream = False
                    s.add(row)
                    audit.record(s, "gateway", "card.push_upstream", str(serial), ref=ref,
                                 answer=resp.text[:200])  # fmt: skip
                    s.commit()
            report.pushed.append(serial)
        else:
            report.failed[serial] = f"HTTP {resp.status_code}"
    return report
