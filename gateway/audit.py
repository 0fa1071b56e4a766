"""Audit trail: who did what to which reader, door, token or configuration (append-only)."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from gateway.models import AuditEntry, now_utc


def record(session: Session, actor: str, action: str, target: str = "", *, role: str = "",
           **detail: Any) -> AuditEntry:  # fmt: skip
    """Add an audit entry to ``session`` (committed with the change it describes)."""
    text = json.dumps(detail, ensure_ascii=False, default=str)[:2000]
    entry = AuditEntry(at=now_utc(), actor=actor[:64], role=role[:16], action=action[:64],
                       target=target[:128], detail=text)  # fmt: skip
    session.add(entry)
    return entry
