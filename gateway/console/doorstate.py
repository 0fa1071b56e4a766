"""A door's state as the console shows it, from what its reader last reported.

The reader journals ``door`` events (``opened``/``closed``), ``notice`` ``mode:<mode>`` when its
door mode changes (configuration, lockdown and release commands), ``alarm`` events (kept as
``Alarm`` rows by the fleet) and taps. The state is the most serious that applies:
lockdown > forced > held open > open > unlocked > locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gateway.db import utc
from gateway.models import Alarm, Command, Event, Reader, now_utc

STATES: Final = ("lockdown", "forced", "held_open", "open", "unlocked", "locked", "unknown")
UNLOCK_WINDOW: Final = timedelta(seconds=5)  # a grant unlocks for unlock_seconds (default 5)
DOOR_ALARMS: Final = ("forced_open", "held_open", "tamper", "fire", "offline")


@dataclass
class ReaderDoor:
    reader_id: str
    mode: str | None = None  # normal | scheduled_unlocked | locked_down
    opened: bool | None = None  # from the last door event
    last_grant: datetime | None = None
    alarms: set[str] = field(default_factory=set)
    online: bool = False

    def state(self, now: datetime | None = None) -> str:
        now = now or now_utc()
        if self.mode == "locked_down":
            return "lockdown"
        if "forced_open" in self.alarms:
            return "forced"
        if "held_open" in self.alarms:
            return "held_open"
        if self.opened:
            return "open"
        if self.mode == "scheduled_unlocked" or "fire" in self.alarms:
            return "unlocked"
        if self.last_grant is not None and now - self.last_grant < UNLOCK_WINDOW:
            return "unlocked"
        if self.opened is None and self.mode is None and not self.online:
            return "unknown"  # never told us anything and not connected: we cannot say
        return "locked"  # the relay is off unless something above holds it (boot never energises it)


def worst(states: Iterable[str]) -> str:
    found = list(states)
    for s in STATES:
        if s in found:
            return s
    return "unknown"


def _latest(column: Any, *where: Any) -> Any:
    """The newest ``column`` among the current reader's events matching ``where``: a backward
    scan of ``ix_event_reader_kind_seq`` (reader_id, kind, seq) that stops at the first match."""
    return (
        select(column)
        .where(Event.reader_id == Reader.id, *where)
        .order_by(col(Event.seq).desc())
        .limit(1)
        .correlate(Reader)
        .scalar_subquery()
    )


def read(session: Session, readers: Sequence[Reader]) -> dict[str, ReaderDoor]:
    """The door state of each reader, in two queries whatever the number of readers or events:
    the active alarms, then one row per reader with its latest door event, mode notice, grant and
    acknowledged lockdown / release command (correlated subqueries, each an index lookup)."""
    out = {r.id: ReaderDoor(r.id, online=r.online) for r in readers}
    if not out:
        return out
    active = select(Alarm.reader_id, Alarm.kind).where(
        Alarm.active == True,  # noqa: E712
        col(Alarm.reader_id).in_(list(out)),
    )
    for rid, kind in session.exec(active):
        out[rid].alarms.add(kind)
    door = _latest(Event.detail, Event.kind == "door", col(Event.detail).in_(("opened", "closed")))
    mode = _latest(Event.detail, Event.kind == "notice", col(Event.detail).startswith("mode:"))
    grant = _latest(Event.occurred_at, Event.kind == "tap", Event.decision == "grant")
    cmd = (
        select(Command.action)
        .where(
            Command.target == Reader.id,
            col(Command.action).in_(("lockdown", "release")),
            Command.outcome == "ok",
        )
        .order_by(col(Command.id).desc())
        .limit(1)
        .correlate(Reader)
        .scalar_subquery()
    )
    ids = list(out)
    rows = session.connection().execute(
        sa.select(col(Reader.id), door, mode, grant, cmd).where(col(Reader.id).in_(ids))
    )
    for rid, d, m, g, c in rows:
        rd = out[rid]
        rd.opened = None if d is None else d == "opened"
        rd.mode = m.split(":", 1)[1] if m else ("locked_down" if c == "lockdown" else None)
        rd.last_grant = utc(g) if g is not None else None
    return out
