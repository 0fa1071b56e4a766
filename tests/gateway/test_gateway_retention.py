"""Retention purge on both engines: old personal data goes, recent stays, in bounded batches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import gateway.retention as retention
from gateway import db
from gateway.models import AuditEntry, Event, Quarantine, now_utc
from gateway.settings import RetentionSettings


def _seed(url: str) -> sa.Engine:
    db.migrate(url)
    engine = db.make_engine(url)
    now = now_utc()
    ev = []
    for i in range(1, 701):
        t = now - timedelta(days=800 if i <= 600 else 10)
        ev.append({"reader_id": "r1", "seq": i, "kind": "tap", "occurred_at": t, "received_at": t,
                   "time_quality": 2, "time_corrected": False, "record": b"x", "mac": b"m"})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(Event.__table__), ev)  # type: ignore[attr-defined]
        conn.execute(sa.insert(Quarantine.__table__), [  # type: ignore[attr-defined]
            {"received_at": now - timedelta(days=d), "topic": "t", "reason": "bad_mac", "detail": "",
             "payload": b"", "payload_size": 0} for d in (1, 40, 90)])  # fmt: skip
        conn.execute(sa.insert(AuditEntry.__table__), [  # type: ignore[attr-defined]
            {"at": now - timedelta(days=d), "actor": "a", "role": "admin", "action": "x", "target": "",
             "detail": "{}"} for d in (1, 2000)])  # fmt: skip
    return engine


def _check(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 250)  # several batches for 600 old events
    report = retention.purge(engine, RetentionSettings(events_days=730, quarantine_days=30, audit_days=1825))
    assert (report.events, report.quarantine, report.audit) == (600, 2, 1)
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(sa.text("SELECT seq FROM event ORDER BY seq"))]
        assert seqs == list(range(601, 701))
        assert conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM auditentry")).scalar() == 1
    assert retention.purge(engine, RetentionSettings()).total() == 0  # idempotent
    engine.dispose()


def test_purge_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_seed(f"sqlite:///{tmp_path / 'g.db'}"), monkeypatch)


def test_purge_postgresql(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_seed(pg_url), monkeypatch)
