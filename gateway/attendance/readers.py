"""Punches from reader events: taps an attendance terminal accepted (decision ``punch``), granted
entries a ``both`` terminal marked as punches (``punch`` true), and granted entries at doors opted
in for attendance (``att_door``). The event's ``occurred_at`` is used: for a reader whose clock was
unset that is the gateway's corrected time (``gateway.timefix``).

Ingest calls :func:`from_ingest` with exactly the rows its transaction inserted (no cursor, so
concurrent ingest processes cannot skip an event). A row whose time is still provisional (clock
unset, boot not anchored yet) is left for :func:`catch_up`, which takes it once corrected — or
after ``PROVISIONAL_WAIT`` with its provisional (receive) time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.attendance import store
from gateway.attendance.models import AttDoor
from gateway.models import Event, now_utc

PROVISIONAL_WAIT = timedelta(hours=24)
T_EVENT = Event.__table__  # type: ignore[attr-defined]
T_DOOR = AttDoor.__table__  # type: ignore[attr-defined]


def is_punch(row: Mapping[str, Any], doors: set[str]) -> bool:
    if row.get("kind") != "tap" or not row.get("staff_code"):
        return False
    decision = row.get("decision")
    if decision == "punch":
        return row.get("reason") in ("ok", "duplicate")
    return decision == "grant" and (bool(row.get("punch")) or row.get("door") in doors)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _doors(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(T_DOOR.c.door_id))}


def from_ingest(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store the punches among freshly inserted event rows (dicts of ``gateway.ingest.COLUMNS``)."""
    taps = [r for r in rows if r.get("kind") == "tap" and r.get("staff_code")]
    if not taps:
        return 0
    doors = _doors(conn) if any(r.get("decision") == "grant" and r.get("door") for r in taps) else set()
    final = [r for r in taps if r["time_quality"] or r["time_corrected"]]  # clock-unset: catch_up
    return store.add_punches(conn, _punches(final, doors))


def catch_up(conn: Connection, lo: datetime, hi: datetime) -> int:
    """Punches of clock-unset events that were provisional at ingest and are final now (corrected,
    or waited long enough) in [lo, hi). Door events of doors opted in after the fact are not taken."""
    e, p = T_EVENT, store.T_PUNCH
    missing = ~sa.exists().where(p.c.staff_code == e.c.staff_code, p.c.at == e.c.occurred_at)
    old = now_utc() - PROVISIONAL_WAIT
    q = sa.select(
        e.c.reader_id,
        e.c.seq,
        e.c.kind,
        e.c.staff_code,
        e.c.occurred_at,
        e.c.decision,
        e.c.reason,
        e.c.punch,
        e.c.door,
        e.c.time_quality,
        e.c.time_corrected,
    ).where(
        e.c.occurred_at >= lo,
        e.c.occurred_at < hi,
        e.c.kind == "tap",
        e.c.time_quality == 0,
        e.c.staff_code.is_not(None),
        sa.or_(e.c.time_corrected == sa.true(), e.c.received_at < old),
        missing,
    )
    rows = [dict(r._mapping) for r in conn.execute(q)]
    if not rows:
        return 0
    doors = _doors(conn)
    return store.add_punches(conn, _punches(rows, doors))


def _punches(rows: Sequence[Mapping[str, Any]], doors: set[str]) -> list[store.PunchRow]:
    """The punches among stored event rows (raw source ``event:<reader>:<seq>``)."""
    return [
        store.PunchRow(
            r["staff_code"],
            _aware(r["occurred_at"]),
            "reader",
            f"event:{r['reader_id']}:{r['seq']}",
            r["reader_id"],
        )
        for r in rows
        if is_punch(r, doors)
    ]


BACKFILL_STEP = timedelta(days=31)


def backfill(conn: Connection, since: datetime | None = None, until: datetime | None = None) -> int:
    """Punches of stored reader events that have none yet: events stored before the attendance
    tables existed (ingest only takes the rows it inserts), or granted entries at a door opted in
    after they happened. Every event in [since, until) (default: all) whose time is final and that
    :func:`is_punch` accepts; idempotent (a punch already stored for the person and exact time adds
    nothing), in 31-day steps so a year of events never sits in memory at once. Returns the new
    punches."""
    e, p = T_EVENT, store.T_PUNCH
    if since is None:
        first = conn.execute(
            sa.select(sa.func.min(e.c.occurred_at)).where(e.c.kind == "tap", e.c.staff_code.is_not(None))
        ).scalar()
        if first is None:
            return 0
        since = _aware(first)
    until = until or now_utc() + timedelta(days=1)
    doors = _doors(conn)
    old = now_utc() - PROVISIONAL_WAIT
    missing = ~sa.exists().where(p.c.staff_code == e.c.staff_code, p.c.at == e.c.occurred_at)
    cols = (
        e.c.reader_id,
        e.c.seq,
        e.c.kind,
        e.c.staff_code,
        e.c.occurred_at,
        e.c.decision,
        e.c.reason,
        e.c.punch,
        e.c.door,
    )
    total = 0
    lo = since
    while lo < until:
        hi = min(lo + BACKFILL_STEP, until)
        q = sa.select(*cols).where(
            e.c.occurred_at >= lo,
            e.c.occurred_at < hi,
            e.c.kind == "tap",
            e.c.staff_code.is_not(None),
            e.c.decision.in_(("punch", "grant")),
            sa.or_(e.c.time_quality != 0, e.c.time_corrected == sa.true(), e.c.received_at < old),
            missing,
        )
        rows = [dict(r._mapping) for r in conn.execute(q)]
        punches = _punches(rows, doors)
        for i in range(0, len(punches), 5000):
            total += store.add_punches(conn, punches[i : i + 5000])
        lo = hi
    return total


def opt_in_door(conn: Connection, door_id: str, on: bool) -> None:
    conn.execute(sa.delete(T_DOOR).where(T_DOOR.c.door_id == door_id))
    if on:
        conn.execute(sa.insert(T_DOOR).values(door_id=door_id, since=now_utc()))
