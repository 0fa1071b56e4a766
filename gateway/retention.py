"""Retention: personal data is kept only as long as configured (Decree 13/2023/NĐ-CP).

Attendance events, quarantined messages and audit entries each have their own period
(`[retention]` in the settings). The purge deletes in bounded batches so it never holds a long
lock against ingest, and reports what it removed; the service runs it every
``purge_interval_s`` and `cbcc gateway purge` runs it on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.models import AuditEntry, Event, Quarantine, now_utc
from gateway.settings import RetentionSettings

BATCH = 5000


@dataclass
class PurgeReport:
    events: int = 0
    quarantine: int = 0
    audit: int = 0

    def total(self) -> int:
        return self.events + self.quarantine + self.audit


def _purge_table(engine: Engine, table: sa.Table, column: sa.Column, cutoff: datetime) -> int:  # type: ignore[type-arg]
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = sa.select(table.c.id).where(column < cutoff).order_by(table.c.id).limit(BATCH)
            n = conn.execute(sa.delete(table).where(table.c.id.in_(ids.scalar_subquery()))).rowcount
        removed += n
        if n < BATCH:
            return removed


def purge(engine: Engine, policy: RetentionSettings, *, now: datetime | None = None) -> PurgeReport:
    now = now or now_utc()
    ev = Event.__table__  # type: ignore[attr-defined]
    q = Quarantine.__table__  # type: ignore[attr-defined]
    au = AuditEntry.__table__  # type: ignore[attr-defined]
    return PurgeReport(
        events=_purge_table(engine, ev, ev.c.occurred_at, now - timedelta(days=policy.events_days)),
        quarantine=_purge_table(engine, q, q.c.received_at, now - timedelta(days=policy.quarantine_days)),
        audit=_purge_table(engine, au, au.c.at, now - timedelta(days=policy.audit_days)),
    )
