"""Corrected times for events stamped while the reader's clock was unset (time quality 0).

A reader counts boots and milliseconds since boot, so within one boot ``true Unix ms = offset_ms +
uptime_ms`` for a fixed ``offset_ms``: the boot's *anchor* (:class:`gateway.models.BootAnchor`).
An anchor comes from the first event of that boot stamped with a trustworthy clock (RTC or synced:
``offset = time × 1000 − uptime_ms``, source ``synced_event``, written by ingest) or from a
heartbeat (``offset = receive time − uptime``, source ``heartbeat``, written by the fleet module).
The first anchor of a boot wins; it is never moved afterwards.

An event of quality 0 whose boot has no anchor yet is stored with its receive time as a provisional
``occurred_at`` and ``time_corrected`` False; :func:`fix_pending` corrects such rows once an anchor
exists. The reader's own time is always kept in ``Event.reader_time``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.models import BootAnchor, Event

Pair = tuple[str, int]  # (reader id, boot counter)

TQ_UNSET = 0
# A corrected time outside this window means a broken anchor: the row stays provisional.
_MIN_MS = 946_684_800_000  # 2000-01-01
_MAX_MS = 4_102_444_800_000  # 2100-01-01

_EVENT = Event.__table__  # type: ignore[attr-defined]
_ANCHOR = BootAnchor.__table__  # type: ignore[attr-defined]


def offset_from_event(time_s: int, uptime_ms: int) -> int:
    """The anchor a trustworthy event gives its boot."""
    return time_s * 1000 - uptime_ms


def offset_from_heartbeat(received_unix_ms: int, uptime_ms: int) -> int:
    return received_unix_ms - uptime_ms


def corrected(offset_ms: int, uptime_ms: int) -> datetime | None:
    """The corrected time, or None when the result is not plausible."""
    ms = offset_ms + uptime_ms
    if not _MIN_MS <= ms < _MAX_MS:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def _insert(conn: sa.Connection) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(_ANCHOR)
    return sqlite.insert(_ANCHOR)


def record_anchors(conn: sa.Connection, anchors: Mapping[Pair, int], source: str = "synced_event") -> None:
    """Store anchors for boots that have none yet (first wins, never moved)."""
    if not anchors:
        return
    now = datetime.now(UTC)
    rows = [{"reader_id": r, "boot": b, "offset_ms": o, "source": source, "at": now}
            for (r, b), o in sorted(anchors.items())]  # fmt: skip  # sorted: no deadlock between processes
    conn.execute(_insert(conn).on_conflict_do_nothing(index_elements=["reader_id", "boot"]), rows)


def _pair_filter(table: sa.Table, pairs: list[Pair]) -> sa.ColumnElement[bool]:
    return sa.or_(*[sa.and_(table.c.reader_id == r, table.c.boot == b) for r, b in pairs])


def load_anchors(conn: sa.Connection, pairs: Iterable[Pair]) -> dict[Pair, int]:
    """The stored anchors of these boots (absent: unknown)."""
    want = sorted(set(pairs))
    found: dict[Pair, int] = {}
    for i in range(0, len(want), 200):
        chunk = want[i:i + 200]
        q = sa.select(_ANCHOR.c.reader_id, _ANCHOR.c.boot, _ANCHOR.c.offset_ms)
        q = q.where(_pair_filter(_ANCHOR, chunk))
        for r, b, o in conn.execute(q):
            found[(r, b)] = int(o)
    return found


def fix_pending(conn: sa.Connection, pairs: Iterable[Pair] | None = None, *, limit: int = 5000) -> int:
    """Correct provisional rows (quality 0, not yet corrected) whose boot now has an anchor.

    ``pairs`` restricts the pass to those boots (ingest calls it for the anchors a batch created);
    without it every pending row is looked at. Runs in the caller's transaction; returns the number
    of rows corrected.
    """
    e, a = _EVENT, _ANCHOR
    base = (
        sa.select(e.c.id, e.c.uptime_ms, a.c.offset_ms)
        .select_from(e.join(a, sa.and_(a.c.reader_id == e.c.reader_id, a.c.boot == e.c.boot)))
        .where(e.c.time_quality == TQ_UNSET, e.c.time_corrected == sa.false(), e.c.uptime_ms.is_not(None))
    )
    chunks: list[sa.Select[Any]]
    if pairs is None:
        chunks = [base]
    else:
        want = sorted(set(pairs))
        chunks = [base.where(_pair_filter(e, want[i:i + 100])) for i in range(0, len(want), 100)]
    update = (
        sa.update(e)
        .where(e.c.id == sa.bindparam("p_id"))
        .values(occurred_at=sa.bindparam("p_t", type_=e.c.occurred_at.type), time_corrected=True)
    )
    total = 0
    for q in chunks:
        last_id = 0
        while True:
            rows = conn.execute(q.where(e.c.id > last_id).order_by(e.c.id).limit(limit)).all()
            if not rows:
                break
            params = []
            for row in rows:
                t = corrected(int(row[2]), int(row[1]))
                if t is not None:
                    params.append({"p_id": row[0], "p_t": t})
            if params:
                conn.execute(update, params)
                total += len(params)
            last_id = rows[-1][0]
            if len(rows) < limit:
                break
    return total
